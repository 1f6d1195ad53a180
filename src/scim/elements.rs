//! Multi-valued complex attributes (RFC 7643 §2.4: emails, phoneNumbers,
//! addresses …) ⇄ an entry. Each element the client sends is kept whole,
//! as compact JSON, in the attribute's store (`cigScimEmail` …), and the
//! sub-attribute values that have a standard LDAP home are written there
//! too (`mail`, `telephoneNumber`, `street` …, see [`Mirror`]).
//!
//! Reading reconciles the two, so that the standard attributes stay the
//! truth legacy applications and LDAP administrators share: a stored
//! element whose mirrored value is no longer in its LDAP attribute was
//! changed or removed over LDAP and is not shown; a value found only in the
//! LDAP attribute becomes an element of its own. Elements that the mirrors
//! alone give back exactly are not stored twice (an agent with one work
//! email costs no JSON).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value};

use super::ScimError;
use super::mapping::{Attr, Elements, Mirror, Source, Type, generalized_time};

/// What the directory's schema says of LDAP values, for deciding what a
/// mirror can hold.
pub trait Syntax {
    /// Whether the LDAP attribute accepts this value.
    fn accepts(&self, ldap: &str, value: &[u8]) -> bool;
    /// Whether two values are the same for the attribute's equality rule.
    fn same(&self, ldap: &str, a: &[u8], b: &[u8]) -> bool;
}

/// The LDAP side of an entry, as far as elements need it.
pub struct Stored<'a> {
    /// The values of an LDAP attribute.
    pub values: &'a dyn Fn(&str) -> Vec<&'a [u8]>,
    /// The applications the entry is granted (entitlements).
    pub applications: &'a [String],
}

fn type_of(e: &Map<String, Value>) -> Option<&str> {
    e.get("type").and_then(Value::as_str)
}

fn fits(m: &Mirror, e: &Map<String, Value>) -> bool {
    m.when_type.is_none_or(|t| type_of(e).is_some_and(|et| et.eq_ignore_ascii_case(t)))
}

/// The SCIM value a mirror's LDAP value stands for.
fn decode(m: &Mirror, v: &[u8]) -> Option<String> {
    match m.source {
        Source::Ldap(_) | Source::Applications => std::str::from_utf8(v).ok().map(str::to_string),
        Source::Base64(_) => Some(B64.encode(v)),
        // RFC 4517 §3.3.28: lines separated by `$`, with `\24` and `\5C` for `$` and `\`.
        Source::Postal(_) => {
            let s = std::str::from_utf8(v).ok()?;
            let lines: Vec<String> =
                s.split('$').map(|l| l.replace("\\24", "$").replace("\\5C", "\\").replace("\\5c", "\\")).collect();
            Some(lines.join("\n"))
        }
    }
}

/// The LDAP value a mirror keeps for a SCIM value; `None` when it cannot.
fn encode(m: &Mirror, v: &str) -> Option<Vec<u8>> {
    match m.source {
        Source::Ldap(_) | Source::Applications => Some(v.as_bytes().to_vec()),
        Source::Base64(_) => B64.decode(v.trim()).ok(),
        Source::Postal(_) => {
            let lines: Vec<String> =
                v.lines().map(|l| l.replace('\\', "\\5C").replace('$', "\\24")).filter(|l| !l.is_empty()).collect();
            (!lines.is_empty()).then(|| lines.join("$").into_bytes())
        }
    }
}

/// The LDAP value of a SCIM value when the mirror's attribute accepts it.
fn mirrored(m: &Mirror, v: &str, syntax: &dyn Syntax) -> Option<Vec<u8>> {
    let bytes = encode(m, v)?;
    match m.source.ldap() {
        Some(ldap) => syntax.accepts(ldap, &bytes).then_some(bytes),
        None => Some(bytes),
    }
}

/// The mirror's current values, as SCIM values.
fn current(m: &Mirror, stored: &Stored<'_>) -> Vec<String> {
    match m.source.ldap() {
        Some(ldap) => (stored.values)(ldap).into_iter().filter_map(|v| decode(m, v)).collect(),
        None => stored.applications.to_vec(),
    }
}

/// The elements an entry shows for one attribute.
pub fn render(el: &Elements, stored: &Stored<'_>, syntax: &dyn Syntax) -> Vec<Value> {
    // Most attributes are absent from most entries: nothing to build then.
    let held = |ldap: &str| !(stored.values)(ldap).is_empty();
    let any_mirrored = el.mirrors.iter().any(|m| match m.source.ldap() {
        Some(ldap) => held(ldap),
        None => !stored.applications.is_empty(),
    });
    if !any_mirrored && !held(el.store) {
        return Vec::new();
    }
    let mut elems: Vec<Map<String, Value>> = (stored.values)(el.store)
        .into_iter()
        .filter_map(|v| match serde_json::from_slice(v) {
            Ok(Value::Object(o)) => Some(o),
            _ => None,
        })
        .collect();
    let legacy = elems.is_empty();
    let mut dropped = vec![false; elems.len()];
    for m in el.mirrors {
        let values = current(m, stored);
        let same = |a: &str, b: &str| match m.source.ldap() {
            Some(ldap) => a == b || syntax.same(ldap, a.as_bytes(), b.as_bytes()),
            None => a.eq_ignore_ascii_case(b),
        };
        let mut claimed = vec![false; values.len()];
        let mut fitting = (0..elems.len()).filter(|&i| !dropped[i] && fits(m, &elems[i])).collect::<Vec<_>>();
        if m.first_only {
            fitting.truncate(1);
        }
        for &i in &fitting {
            let value = elems[i].get(m.sub).and_then(Value::as_str).map(str::to_string);
            match value {
                Some(v) if mirrored(m, &v, syntax).is_some() => {
                    let held: Vec<usize> = (0..values.len()).filter(|&j| same(&values[j], &v)).collect();
                    if !held.is_empty() {
                        held.iter().for_each(|&j| claimed[j] = true);
                    } else if m.sub == "value" {
                        // Changed or removed over LDAP: the element is gone with its value.
                        dropped[i] = true;
                    } else {
                        elems[i].remove(m.sub);
                    }
                }
                // Kept only in the element (the LDAP attribute cannot hold it).
                Some(_) => {}
                None => {}
            }
        }
        for (j, v) in values.into_iter().enumerate().filter(|(j, _)| !claimed[*j]) {
            if m.first_only {
                // A part of the one address this mirror follows: set on its
                // element, or on a new one; further LDAP values are not SCIM's.
                let target = (0..elems.len()).find(|&i| !dropped[i] && fits(m, &elems[i]));
                let i = match target {
                    Some(i) => i,
                    None => {
                        let mut e = Map::new();
                        if let Some(t) = m.when_type.or(el.default_type) {
                            e.insert("type".into(), t.into());
                        }
                        elems.push(e);
                        dropped.push(false);
                        elems.len() - 1
                    }
                };
                elems[i].entry(m.sub.to_string()).or_insert(Value::String(v));
                break;
            }
            let _ = j;
            let mut e = Map::new();
            e.insert(m.sub.to_string(), Value::String(v));
            if let Some(t) = m.when_type.or(el.default_type) {
                e.insert("type".into(), t.into());
            }
            elems.push(e);
            dropped.push(false);
        }
    }
    let mut out: Vec<Value> =
        elems.into_iter().zip(dropped).filter(|(_, d)| !d).map(|(e, _)| Value::Object(e)).collect();
    if legacy
        && el.first_is_primary
        && let Some(Value::Object(first)) = out.first_mut()
    {
        first.insert("primary".into(), Value::Bool(true));
    }
    out
}

/// What an attribute's elements write: the store's values and each mirror's.
#[derive(Debug, Default)]
pub struct Written {
    pub store: Vec<Vec<u8>>,
    pub mirrors: Vec<(&'static str, Vec<Vec<u8>>)>,
    /// The applications the elements grant (entitlements), lower-case.
    pub applications: Option<Vec<String>>,
}

/// The elements a client sent, checked and canonicalised: names as the
/// schema spells them (RFC 7643 §2.1), unknown and read-only sub-attributes
/// and empty values left out, `primary` a Boolean ("True" as Entra sends it),
/// at most one primary (RFC 7643 §2.4), no duplicates.
pub fn canonical(attr: &Attr, v: &Value) -> Result<Vec<Map<String, Value>>, ScimError> {
    let items: Vec<&Value> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items.iter().collect(),
        // A lone element where an array belongs, as some clients send it.
        Value::Object(_) => vec![v],
        _ => return Err(ScimError::invalid_value(format!("{} must be an array of objects", attr.name))),
    };
    let mut out: Vec<Map<String, Value>> = Vec::new();
    for item in items {
        let Value::Object(fields) = item else {
            return Err(ScimError::invalid_value(format!("each value of {} must be an object", attr.name)));
        };
        let mut e = Map::new();
        for (k, v) in fields {
            let Some(sub) = attr.sub(k) else { continue };
            if !sub.writable() {
                continue;
            }
            if let Some(v) = scalar(attr, sub, v)? {
                e.insert(sub.name.to_string(), v);
            }
        }
        if !e.is_empty() && !out.contains(&e) {
            out.push(e);
        }
    }
    if out.iter().filter(|e| e.get("primary") == Some(&Value::Bool(true))).count() > 1 {
        return Err(ScimError::invalid_value(format!("at most one of {} may be primary (RFC 7643 §2.4)", attr.name)));
    }
    Ok(out)
}

/// A simple value checked against its type; `None` for null or "".
pub fn scalar(parent: &Attr, attr: &Attr, v: &Value) -> Result<Option<Value>, ScimError> {
    let what = || {
        if std::ptr::eq(parent, attr) { attr.name.to_string() } else { format!("{}.{}", parent.name, attr.name) }
    };
    Ok(match (attr.ty, v) {
        (_, Value::Null) => None,
        (Type::Boolean, Value::Bool(b)) => Some(Value::Bool(*b)),
        // Entra ID sends Booleans as "True" / "False".
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("true") => Some(Value::Bool(true)),
        (Type::Boolean, Value::String(s)) if s.eq_ignore_ascii_case("false") => Some(Value::Bool(false)),
        (Type::Boolean, _) => return Err(ScimError::invalid_value(format!("{} must be a boolean", what()))),
        (_, Value::String(s)) if s.is_empty() => None,
        (Type::Binary, Value::String(s)) => {
            if B64.decode(s.trim()).is_err() {
                return Err(ScimError::invalid_value(format!("{} must be base64 (RFC 7643 §2.3.6)", what())));
            }
            Some(Value::String(s.clone()))
        }
        (Type::DateTime, Value::String(s)) => {
            if generalized_time(s).is_none() {
                return Err(ScimError::invalid_value(format!(
                    "{} must be a dateTime such as 2026-12-31T23:59:59Z (RFC 7643 §2.3.5): '{s}'",
                    what()
                )));
            }
            Some(Value::String(s.clone()))
        }
        (Type::String | Type::Reference, Value::String(s)) => Some(Value::String(s.clone())),
        _ => return Err(ScimError::invalid_value(format!("{} must be a string", what()))),
    })
}

/// What no elements write: every mirror emptied.
pub fn none(el: &Elements) -> Written {
    let mut written = Written::default();
    for m in el.mirrors {
        match m.source.ldap() {
            Some(ldap) => written.mirrors.push((ldap, Vec::new())),
            None => written.applications = Some(Vec::new()),
        }
    }
    written
}

/// What canonical elements write.
pub fn write(el: &Elements, elems: &[Map<String, Value>], syntax: &dyn Syntax) -> Written {
    // The primary element's values come first: legacy applications take the first mail.
    let mut ordered: Vec<&Map<String, Value>> = elems.iter().collect();
    ordered.sort_by_key(|e| e.get("primary") != Some(&Value::Bool(true)));
    let mut written = Written::default();
    for m in el.mirrors {
        let mut fitting = ordered.iter().filter(|e| fits(m, e)).collect::<Vec<_>>();
        if m.first_only {
            fitting.truncate(1);
        }
        let mut values: Vec<Vec<u8>> = Vec::new();
        for e in fitting {
            let Some(v) = e.get(m.sub).and_then(Value::as_str) else { continue };
            let Some(bytes) = mirrored(m, v, syntax) else { continue };
            let duplicate = match m.source.ldap() {
                Some(ldap) => values.iter().any(|x| syntax.same(ldap, x, &bytes)),
                None => values.iter().any(|x| x.eq_ignore_ascii_case(&bytes)),
            };
            if !duplicate {
                values.push(bytes);
            }
        }
        match m.source.ldap() {
            Some(ldap) => written.mirrors.push((ldap, values)),
            None => {
                let apps = values.into_iter().filter_map(|v| String::from_utf8(v).ok()).map(|a| a.to_lowercase());
                written.applications = Some(apps.collect());
            }
        }
    }
    // Stored whole unless the mirrors alone give the elements back: a
    // sub-attribute no mirror holds (a display) rules that out at once.
    let plain = elems.iter().all(|e| {
        e.keys().all(|k| k == "type" || k == "primary" || el.mirrors.iter().any(|m| m.sub == k))
            && type_of(e).is_none_or(|t| {
                el.mirrors.iter().any(|m| m.when_type.or(el.default_type).is_some_and(|w| w.eq_ignore_ascii_case(t)))
            })
    });
    if !plain {
        written.store = elems.iter().map(|e| serde_json::to_vec(e).unwrap_or_default()).collect();
        return written;
    }
    let values = |ldap: &str| -> Vec<&[u8]> {
        written
            .mirrors
            .iter()
            .find(|(a, _)| *a == ldap)
            .map(|(_, v)| v.iter().map(Vec::as_slice).collect())
            .unwrap_or_default()
    };
    // In the order a read finds them (the application groups, sorted).
    let mut apps = written.applications.clone().unwrap_or_default();
    apps.sort();
    let rebuilt = render(el, &Stored { values: &values, applications: &apps }, syntax);
    if !rebuilt.iter().map(Value::as_object).eq(elems.iter().map(Some)) {
        written.store = elems.iter().map(|e| serde_json::to_vec(e).unwrap_or_default()).collect();
    }
    written
}
