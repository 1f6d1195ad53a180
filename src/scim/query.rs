//! List queries (RFC 7644 §3.4.2): filter, sortBy / sortOrder, index
//! paging (startIndex / count, the default: Entra ID and Okta use it) or
//! cursor paging (RFC 9865: cursor / count), attributes /
//! excludedAttributes — shared by every resource type.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::ScimError;
use super::cursor::{Cursors, Direction, Position};
use super::evaluate;
use super::mapping::{COMMON_ATTRS, Path, Resource, Returned};

/// A SearchRequest body (RFC 7644 §3.4.3) as the equivalent query parameters.
pub fn from_search_request(body: &Value) -> Result<HashMap<String, String>, ScimError> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_value("a SearchRequest is a JSON object"))?;
    let mut q = HashMap::new();
    for (k, v) in obj {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","),
            Value::Null if k.eq_ignore_ascii_case("cursor") => String::new(),
            _ => continue,
        };
        if !k.eq_ignore_ascii_case("schemas") {
            q.insert(k.clone(), text);
        }
    }
    Ok(q)
}

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
}

fn list_of(v: Option<&str>) -> Vec<String> {
    v.map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect()).unwrap_or_default()
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5), with the
/// attributes the table returns always (id, active) kept either way.
#[derive(Default, Clone)]
pub struct Projection {
    attributes: Vec<String>,
    excluded: Vec<String>,
}

impl Projection {
    pub fn from_query(q: &HashMap<String, String>) -> Projection {
        Projection { attributes: list_of(param(q, "attributes")), excluded: list_of(param(q, "excludedAttributes")) }
    }

    pub fn is_whole(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether the response leaves this top-level attribute out.
    pub fn leaves_out(&self, name: &str) -> bool {
        self.excluded.iter().any(|e| e.eq_ignore_ascii_case(name))
            || (!self.attributes.is_empty()
                && !self.attributes.iter().any(|a| {
                    a.eq_ignore_ascii_case(name)
                        || a.to_ascii_lowercase().starts_with(&format!("{}.", name.to_ascii_lowercase()))
                }))
    }

    /// Apply to a rendered resource.
    pub fn apply(&self, res: &Resource, doc: Value) -> Value {
        if self.is_whole() {
            return doc;
        }
        let Value::Object(obj) = doc else { return doc };
        let always = always_returned(res);
        let mut out = obj;
        if !self.attributes.is_empty() {
            let mut kept = Map::new();
            if let Some(schemas) = out.get("schemas") {
                kept.insert("schemas".into(), schemas.clone());
            }
            for key in &always {
                copy_path(res, &out, &mut kept, key);
            }
            for a in &self.attributes {
                copy_path(res, &out, &mut kept, a);
            }
            out = kept;
        }
        for a in &self.excluded {
            if a.eq_ignore_ascii_case("schemas") || always.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                continue;
            }
            remove_path(res, &mut out, a);
        }
        Value::Object(out)
    }
}

/// The attributes a resource returns whatever the request asks (RFC 7643 §7 `returned: always`).
fn always_returned(res: &Resource) -> Vec<String> {
    let mut out: Vec<String> = COMMON_ATTRS
        .iter()
        .chain(res.core.attrs)
        .filter(|a| a.returned == Returned::Always)
        .map(|a| a.name.to_string())
        .collect();
    for ext in res.extensions {
        out.extend(
            ext.attrs.iter().filter(|a| a.returned == Returned::Always).map(|a| format!("{}:{}", ext.id, a.name)),
        );
    }
    out
}

fn key_of(obj: &Map<String, Value>, name: &str) -> Option<String> {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Where a path's attribute is in a document: the extension's key, if any.
fn resolved(res: &Resource, path: &str) -> Option<(Option<&'static str>, Path)> {
    if let Some(ext) = res.schema(path).filter(|s| !std::ptr::eq(*s, res.core)) {
        let _ = ext;
        return None;
    }
    let p = res.resolve_text(path)?;
    Some((p.extension.map(|e| e.id), p))
}

fn copy_path(res: &Resource, from: &Map<String, Value>, to: &mut Map<String, Value>, path: &str) {
    // A whole extension by its URN.
    if let Some(ext) = res.schema(path).filter(|s| !std::ptr::eq(*s, res.core)) {
        if let Some(k) = key_of(from, ext.id) {
            to.insert(k.clone(), from[&k].clone());
        }
        return;
    }
    let Some((ext, p)) = resolved(res, path) else { return };
    let (src, dst): (&Map<String, Value>, &mut Map<String, Value>) = match ext {
        Some(id) => {
            let Some(k) = key_of(from, id) else { return };
            let Some(Value::Object(inner)) = from.get(&k) else { return };
            let Value::Object(dst) = to.entry(k).or_insert_with(|| Value::Object(Map::new())) else { return };
            (inner, dst)
        }
        None => (from, to),
    };
    let Some(k) = key_of(src, p.attr.name) else { return };
    let v = &src[&k];
    match (p.sub, v) {
        (None, v) => {
            dst.insert(k, v.clone());
        }
        (Some(s), Value::Object(o)) => {
            if let Some(sk) = key_of(o, s.name)
                && let Value::Object(d) = dst.entry(k).or_insert_with(|| Value::Object(Map::new()))
            {
                d.insert(sk.clone(), o[&sk].clone());
            }
        }
        (Some(s), Value::Array(items)) => {
            let picked: Vec<Value> = items
                .iter()
                .filter_map(Value::as_object)
                .filter_map(|o| key_of(o, s.name).map(|sk| json!({ sk.clone(): o[&sk].clone() })))
                .collect();
            dst.insert(k, Value::Array(picked));
        }
        _ => {}
    }
}

fn remove_path(res: &Resource, obj: &mut Map<String, Value>, path: &str) {
    if let Some(ext) = res.schema(path).filter(|s| !std::ptr::eq(*s, res.core)) {
        if let Some(k) = key_of(obj, ext.id) {
            obj.remove(&k);
        }
        return;
    }
    let Some((ext, p)) = resolved(res, path) else { return };
    let target = match ext {
        Some(id) => match key_of(obj, id).and_then(|k| obj.get_mut(&k)) {
            Some(Value::Object(inner)) => inner,
            _ => return,
        },
        None => obj,
    };
    let Some(k) = key_of(target, p.attr.name) else { return };
    match p.sub {
        None => {
            target.remove(&k);
        }
        Some(s) => match target.get_mut(&k) {
            Some(Value::Object(o)) => {
                if let Some(sk) = key_of(o, s.name) {
                    o.remove(&sk);
                }
            }
            Some(Value::Array(items)) => {
                for i in items.iter_mut() {
                    if let Value::Object(o) = i
                        && let Some(sk) = key_of(o, s.name)
                    {
                        o.remove(&sk);
                    }
                }
            }
            _ => {}
        },
    }
}

/// How a list is paged.
#[derive(Debug, Clone)]
pub enum Paging {
    /// RFC 7644 §3.4.2.4: 1-based start.
    Index { start: usize },
    /// RFC 9865: the first page (`cursor` empty) or the one a cursor names.
    Cursor(Option<String>),
}

/// The parsed query of a list request.
pub struct ListParams {
    pub filter: Option<String>,
    pub paging: Paging,
    pub count: usize,
    pub sort_by: Option<String>,
    pub descending: bool,
    pub projection: Projection,
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
        let number = |k: &str| -> Result<Option<i64>, ScimError> {
            match param(q, k) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map(Some)
                    .map_err(|_| ScimError::invalid_value(format!("{k} must be an integer"))),
            }
        };
        let descending = match param(q, "sortOrder").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("ascending") => false,
            Some("descending") => true,
            Some(other) => {
                return Err(ScimError::invalid_value(format!("sortOrder '{other}' is not ascending or descending")));
            }
        };
        let cursor = param(q, "cursor").map(|c| c.trim().to_string());
        let start = number("startIndex")?;
        let count = number("count")?;
        let paging = match (cursor, start) {
            (Some(_), Some(_)) => {
                return Err(ScimError::invalid_value("page with startIndex or with cursor, not both"));
            }
            (Some(c), None) => Paging::Cursor(Some(c).filter(|c| !c.is_empty())),
            // RFC 7644 §3.4.2.4: startIndex below 1 means 1.
            (None, s) => Paging::Index { start: s.unwrap_or(1).max(1) as usize },
        };
        let count = match (&paging, count) {
            (_, None) => max_results,
            // RFC 9865 §2: a negative count is 0; beyond the page size, invalidCount.
            (Paging::Cursor(_), Some(n)) if n > max_results as i64 => {
                return Err(ScimError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    Some("invalidCount"),
                    format!("count is at most {max_results} (maxPageSize)"),
                ));
            }
            // RFC 7644 §3.4.2.4: count is capped by maxResults.
            (_, Some(n)) => (n.max(0) as usize).min(max_results),
        };
        Ok(ListParams {
            filter: param(q, "filter").filter(|f| !f.trim().is_empty()).map(str::to_string),
            paging,
            count,
            sort_by: param(q, "sortBy").filter(|s| !s.trim().is_empty()).map(str::to_string),
            descending,
            projection: Projection::from_query(q),
        })
    }

    /// The resolved sortBy path (`invalidValue` when it names nothing).
    pub fn sort_path(&self, res: &Resource) -> Result<Option<Path>, ScimError> {
        match &self.sort_by {
            None => Ok(None),
            Some(s) => res
                .resolve_text(s)
                .map(Some)
                .ok_or_else(|| ScimError::invalid_value(format!("sortBy '{s}' is not an attribute of {}", res.name))),
        }
    }

    /// What a cursor must come back with (everything but the cursor).
    pub fn digest(&self, res: &Resource, caller: &str) -> String {
        let p = &self.projection;
        Cursors::query_digest(&[
            res.name,
            caller,
            self.filter.as_deref().unwrap_or(""),
            self.sort_by.as_deref().unwrap_or(""),
            if self.descending { "d" } else { "a" },
            &p.attributes.join(","),
            &p.excluded.join(","),
        ])
    }
}

/// One resource in a listing: its position and, when already rendered, its document.
pub struct Listed<T> {
    pub position: Position,
    pub item: T,
}

/// Order a listing by its positions (sort key, then id).
pub fn sort_positions<T>(items: &mut [Listed<T>], descending: bool) {
    items.sort_by(|a, b| {
        evaluate::order(&a.position.0, &b.position.0, descending).then_with(|| a.position.1.cmp(&b.position.1))
    });
}

fn after(p: &Position, cursor: &Position, descending: bool) -> bool {
    evaluate::order(&p.0, &cursor.0, descending).then_with(|| p.1.cmp(&cursor.1)).is_gt()
}

/// The page a cursor request asks for, in a sorted listing: its range, and
/// the cursors around it.
pub fn cursor_page<T>(
    items: &[Listed<T>],
    opened: Option<(Position, Direction)>,
    count: usize,
    descending: bool,
    cursors: &Cursors,
    query: &str,
) -> (std::ops::Range<usize>, Option<String>, Option<String>) {
    let range = match &opened {
        None => 0..count.min(items.len()),
        Some((pos, Direction::After)) => {
            let first = items.iter().position(|i| after(&i.position, pos, descending)).unwrap_or(items.len());
            first..(first + count).min(items.len())
        }
        Some((pos, Direction::Before)) => {
            let end = items.iter().position(|i| !after(pos, &i.position, descending)).unwrap_or(items.len());
            end.saturating_sub(count)..end
        }
    };
    let next = (range.end < items.len() && range.end > 0)
        .then(|| cursors.seal(items[range.end - 1].position.clone(), Direction::After, query, count));
    let previous = (opened.is_some() && range.start > 0 && range.start < items.len())
        .then(|| cursors.seal(items[range.start].position.clone(), Direction::Before, query, count));
    (range, next, previous)
}

/// RFC 7644 §3.4.2 ListResponse, with RFC 9865's cursors when paged by cursor.
pub fn list_response(
    resources: Vec<Value>,
    paging: &Paging,
    total: usize,
    next: Option<String>,
    previous: Option<String>,
) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"]));
    body.insert("totalResults".into(), total.into());
    body.insert("itemsPerPage".into(), resources.len().into());
    match paging {
        Paging::Index { start } => {
            body.insert("startIndex".into(), (*start).into());
        }
        Paging::Cursor(_) => {
            if let Some(n) = next {
                body.insert("nextCursor".into(), n.into());
            }
            if let Some(p) = previous {
                body.insert("previousCursor".into(), p.into());
            }
        }
    }
    body.insert("Resources".into(), Value::Array(resources));
    Value::Object(body)
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
        // Depth of parentheses and `[` value paths outside string literals.
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
