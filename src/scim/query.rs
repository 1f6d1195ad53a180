//! List query parameters (RFC 7644 §3.4.2): filter, sortBy / sortOrder,
//! startIndex / count, attributes / excludedAttributes — shared by every
//! resource type.

use std::collections::HashMap;

use axum::response::Response;
use serde_json::{Map, Value};

use super::ScimError;

/// A SearchRequest body (RFC 7644 §3.4.3) as the equivalent query parameters.
pub fn from_search_request(body: &Value) -> Result<HashMap<String, String>, ScimError> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_value("a SearchRequest is a JSON object"))?;
    let mut q = HashMap::new();
    for (k, v) in obj {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            _ => continue,
        };
        if !k.eq_ignore_ascii_case("schemas") {
            q.insert(k.clone(), text);
        }
    }
    Ok(q)
}

/// The parsed query string of a list request.
pub struct ListParams {
    pub filter: Option<String>,
    pub start: usize,
    pub count: usize,
    sort_by: Option<String>,
    descending: bool,
    pub projection: Projection,
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5).
#[derive(Default, Clone)]
pub struct Projection {
    attributes: Vec<String>,
    excluded: Vec<String>,
}

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
}

fn list_of(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()).unwrap_or_default()
}

impl Projection {
    pub fn from_query(q: &HashMap<String, String>) -> Projection {
        Projection { attributes: list_of(param(q, "attributes")), excluded: list_of(param(q, "excludedAttributes")) }
    }

    /// Whether the whole resource is asked for (no `attributes`, no `excludedAttributes`).
    pub fn is_whole(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Apply to a rendered resource. `id` and `schemas` are always returned (RFC 7643 §7).
    pub fn apply(&self, doc: Value) -> Value {
        let Value::Object(obj) = doc else { return doc };
        let mut out = obj;
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            for key in ["id", "schemas"] {
                if let Some(v) = out.get(key) {
                    kept.insert(key.to_string(), v.clone());
                }
            }
            for a in &self.attributes {
                copy_path(&out, &mut kept, a);
            }
            out = kept;
        }
        for a in &self.excluded {
            if !a.eq_ignore_ascii_case("id") && !a.eq_ignore_ascii_case("schemas") {
                remove_path(&mut out, a);
            }
        }
        Value::Object(out)
    }
}

/// Split `urn:…:attr.sub` / `attr.sub` into (container key, attribute, sub-attribute).
fn split(path: &str) -> (Option<String>, String, Option<String>) {
    let (urn, rest) = match path.rfind(':') {
        Some(i) if path.to_ascii_lowercase().starts_with("urn:") => (Some(path[..i].to_string()), &path[i + 1..]),
        _ => (None, path),
    };
    match rest.split_once('.') {
        Some((a, s)) => (urn, a.to_string(), Some(s.to_string())),
        None => (urn, rest.to_string(), None),
    }
}

fn find_key(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn copy_path(from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    // A whole extension by its URN.
    if let Some(k) = find_key(from, path) {
        if let Some(v) = from.get(&k) {
            to.insert(k, v.clone());
        }
        return;
    }
    let (urn, attr, sub) = split(path);
    let (src, dst): (&Map<String, Value>, &mut Map<String, Value>) = match &urn {
        Some(u) => {
            let Some(k) = find_key(from, u) else { return };
            let Some(Value::Object(inner)) = from.get(&k) else { return };
            let slot = to.entry(k).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(dst) = slot else { return };
            (inner, dst)
        }
        None => (from, to),
    };
    let Some(k) = find_key(src, &attr) else { return };
    let Some(v) = src.get(&k) else { return };
    match (sub, v) {
        (None, v) => {
            dst.insert(k, v.clone());
        }
        (Some(s), Value::Object(o)) => {
            if let Some(sk) = find_key(o, &s) {
                let slot = dst.entry(k).or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(d) = slot {
                    d.insert(sk.clone(), o[&sk].clone());
                }
            }
        }
        (Some(s), Value::Array(items)) => {
            let picked: Vec<Value> = items
                .iter()
                .filter_map(|i| i.as_object())
                .filter_map(|o| find_key(o, &s).map(|sk| Value::Object(Map::from_iter([(sk.clone(), o[&sk].clone())]))))
                .collect();
            dst.insert(k, Value::Array(picked));
        }
        _ => {}
    }
}

fn remove_path(obj: &mut Map<String, Value>, path: &str) {
    if let Some(k) = find_key(obj, path) {
        obj.remove(&k);
        return;
    }
    let (urn, attr, sub) = split(path);
    let target = match &urn {
        Some(u) => match find_key(obj, u).and_then(|k| obj.get_mut(&k)) {
            Some(Value::Object(inner)) => inner,
            _ => return,
        },
        None => obj,
    };
    let Some(k) = find_key(target, &attr) else { return };
    match sub {
        None => {
            target.remove(&k);
        }
        Some(s) => match target.get_mut(&k) {
            Some(Value::Object(o)) => {
                if let Some(sk) = find_key(o, &s) {
                    o.remove(&sk);
                }
            }
            Some(Value::Array(items)) => {
                for i in items.iter_mut() {
                    if let Value::Object(o) = i
                        && let Some(sk) = find_key(o, &s)
                    {
                        o.remove(&sk);
                    }
                }
            }
            _ => {}
        },
    }
}

/// The value a resource sorts by: a path's first value, as lower-case text.
fn sort_key(doc: &Value, path: &str) -> Option<String> {
    let (urn, attr, sub) = split(path);
    let obj = doc.as_object()?;
    let container = match &urn {
        Some(u) => obj.get(&find_key(obj, u)?)?.as_object()?,
        None => obj,
    };
    let v = container.get(&find_key(container, &attr)?)?;
    let v = match (v, sub) {
        (Value::Array(items), s) => {
            let first = items.iter().find(|i| i.get("primary") == Some(&Value::Bool(true))).or(items.first())?;
            match s {
                Some(s) => first.as_object().and_then(|o| o.get(&find_key(o, &s)?).cloned())?,
                None => first.get("value").cloned().unwrap_or_else(|| first.clone()),
            }
        }
        (Value::Object(o), Some(s)) => o.get(&find_key(o, &s)?)?.clone(),
        (v, _) => v.clone(),
    };
    Some(match v {
        Value::String(s) => s.to_lowercase(),
        other => other.to_string(),
    })
}

impl ListParams {
    pub fn from_query(
        q: &HashMap<String, String>,
        max_results: usize,
        limits: &FilterLimits,
    ) -> Result<ListParams, ScimError> {
        if let Some(f) = param(q, "filter") {
            limits.check(f)?;
        }
        let number = |k: &str, default: usize| -> Result<usize, ScimError> {
            match param(q, k) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map(|n| n.max(0) as usize)
                    .map_err(|_| ScimError::invalid_value(format!("{k} must be an integer"))),
            }
        };
        let descending = match param(q, "sortOrder").map(str::to_ascii_lowercase).as_deref() {
            None | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!("sortOrder '{other}' is not ascending or descending")));
            }
        };
        Ok(ListParams {
            filter: param(q, "filter").filter(|f| !f.trim().is_empty()).map(str::to_string),
            // RFC 7644 §3.4.2.4: startIndex below 1 means 1; count is capped by maxResults.
            start: number("startIndex", 1)?.max(1),
            count: number("count", max_results)?.min(max_results),
            sort_by: param(q, "sortBy").filter(|s| !s.trim().is_empty()).map(str::to_string),
            descending,
            projection: Projection::from_query(q),
        })
    }

    /// Whether the page is a plain slice of the matches, in directory order,
    /// each resource whole: it can be written out without building values.
    pub fn is_plain(&self) -> bool {
        self.sort_by.is_none() && self.projection.is_whole()
    }

    /// Sort (resources without the attribute last, RFC 7644 §3.4.2.3), page, project.
    pub fn respond(&self, mut all: Vec<Value>) -> Response {
        if let Some(path) = &self.sort_by {
            let mut keyed: Vec<(Option<String>, Value)> = all.into_iter().map(|d| (sort_key(&d, path), d)).collect();
            keyed.sort_by(|(a, _), (b, _)| match (a, b) {
                (Some(x), Some(y)) => {
                    if self.descending {
                        y.cmp(x)
                    } else {
                        x.cmp(y)
                    }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            });
            all = keyed.into_iter().map(|(_, d)| d).collect();
        }
        let total = all.len();
        let page: Vec<Value> =
            all.into_iter().skip(self.start - 1).take(self.count).map(|d| self.projection.apply(d)).collect();
        super::list_response_with_total(page, self.start, total)
    }
}

/// How large a `filter` may be: checked before parsing, so that a filter
/// nested thousands deep never reaches the recursive parser.
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    pub max_length: usize,
    pub max_depth: usize,
}

impl FilterLimits {
    pub fn check(&self, filter: &str) -> Result<(), ScimError> {
        if filter.len() > self.max_length {
            return Err(ScimError::invalid_filter(format!(
                "the filter is {} bytes long; at most {} are accepted",
                filter.len(),
                self.max_length
            )));
        }
        // Depth of parentheses and `[` value paths outside string literals;
        // each `not` opens a level too (`not (`).
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
        for c in filter.chars() {
            if in_string {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => escaped = false,
                }
                continue;
            }
            match c {
                '"' => in_string = true,
                '(' | '[' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                ')' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if deepest > self.max_depth {
            return Err(ScimError::invalid_filter(format!(
                "the filter nests {deepest} levels deep; at most {} are accepted",
                self.max_depth
            )));
        }
        Ok(())
    }
}
