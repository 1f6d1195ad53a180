//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's JSON document, with
//! the forms real clients send: Entra ID's capitalised ops ("Replace"),
//! boolean strings ("False") and `Add` to a filtered path on an empty
//! attribute; Okta's path-less `replace` of `{"active": false}`. The patched
//! document then goes through the same mapping as a PUT, in one transaction.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::ScimError;
use super::mapping::USER;
use axum::http::StatusCode;

const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::new(StatusCode::BAD_REQUEST, Some("noTarget"), detail)
}

fn invalid_path(detail: impl Into<String>) -> ScimError {
    ScimError::new(StatusCode::BAD_REQUEST, Some("invalidPath"), detail)
}

/// Attributes no client may change (RFC 7643 §3.1: id and meta are readOnly).
fn check_mutable(name: &str) -> Result<(), ScimError> {
    if ["id", "meta", "schemas"].iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(ScimError::new(StatusCode::BAD_REQUEST, Some("mutability"), format!("{name} is read-only")));
    }
    Ok(())
}

/// A key of an object, found case-insensitively (RFC 7643 §2.1: names are case-insensitive).
fn key_of(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

fn get_ci<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_object().and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// The object an attribute path lives in: the resource, or its extension.
fn container<'a>(doc: &'a mut Value, uri: Option<&str>) -> Result<&'a mut Map<String, Value>, ScimError> {
    let root = doc.as_object_mut().ok_or_else(|| invalid_path("the resource is not an object"))?;
    match uri {
        None => Ok(root),
        Some(u) if u.eq_ignore_ascii_case(USER) => Ok(root),
        Some(u) => {
            let k = key_of(root, u);
            let slot = root.entry(k).or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut().ok_or_else(|| invalid_path("extension is not an object"))
        }
    }
}

fn merge(target: &mut Value, value: Value, add: bool) {
    match (target, value) {
        (Value::Array(existing), Value::Array(items)) if add => {
            for item in items {
                if !existing.contains(&item) {
                    existing.push(item);
                }
            }
        }
        (Value::Object(existing), Value::Object(fields)) => {
            for (k, v) in fields {
                let key = key_of(existing, &k);
                match existing.get_mut(&key) {
                    Some(slot) if v.is_object() || (add && v.is_array()) => merge(slot, v, add),
                    _ => {
                        existing.insert(key, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn set_attr(obj: &mut Map<String, Value>, name: &str, value: Value, add: bool) -> Result<(), ScimError> {
    check_mutable(name)?;
    let key = key_of(obj, name);
    match obj.get_mut(&key) {
        Some(slot) => merge(slot, value, add),
        None => {
            obj.insert(key, value);
        }
    }
    Ok(())
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn comp_text(v: &CompValue) -> Option<String> {
    match v {
        CompValue::Str(s) => Some(s.clone()),
        CompValue::True => Some("true".into()),
        CompValue::False => Some("false".into()),
        CompValue::Number(n) => Some(n.to_string()),
        CompValue::Null => None,
    }
}

/// Whether an element of a multi-valued attribute matches a value filter.
/// Strings compare case-insensitively (the mapped sub-attributes are caseExact=false).
fn matches(elem: &Value, f: &ValFilter) -> bool {
    match f {
        ValFilter::Not(x) => !matches(elem, x),
        ValFilter::And(xs) => xs.iter().all(|x| matches(elem, x)),
        ValFilter::Or(xs) => xs.iter().any(|x| matches(elem, x)),
        ValFilter::Attr(AttrExp::Present(p)) => get_ci(elem, &p.name).is_some_and(|v| !v.is_null()),
        ValFilter::Attr(AttrExp::Comparison(p, op, v)) => {
            let actual = get_ci(elem, &p.name).and_then(text_of).map(|s| s.to_lowercase());
            let wanted = comp_text(v).map(|s| s.to_lowercase());
            match (actual, wanted, op) {
                (a, w, CompareOp::Eq) => a == w,
                (a, w, CompareOp::Ne) => a != w,
                (Some(a), Some(w), CompareOp::Co) => a.contains(&w),
                (Some(a), Some(w), CompareOp::Sw) => a.starts_with(&w),
                (Some(a), Some(w), CompareOp::Ew) => a.ends_with(&w),
                (Some(a), Some(w), CompareOp::Gt) => a > w,
                (Some(a), Some(w), CompareOp::Ge) => a >= w,
                (Some(a), Some(w), CompareOp::Lt) => a < w,
                (Some(a), Some(w), CompareOp::Le) => a <= w,
                _ => false,
            }
        }
    }
}

/// The `attr eq "x"` terms of a filter: what a new element must carry when an
/// `add` targets a filtered path nothing matches yet (Entra ID does this).
fn equalities(f: &ValFilter, out: &mut Map<String, Value>) {
    match f {
        ValFilter::And(xs) => xs.iter().for_each(|x| equalities(x, out)),
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) => {
            let value = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => Value::Null,
            };
            out.insert(p.name.clone(), value);
        }
        _ => {}
    }
}

enum Op {
    Add,
    Replace,
    Remove,
}

/// Apply a PatchOp request body to a document, all operations or none.
pub fn apply(doc: &mut Value, body: &Value) -> Result<(), ScimError> {
    let schemas_ok = get_ci(body, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(PATCH_OP))));
    if !schemas_ok {
        return Err(ScimError::new(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            format!("schemas must list {PATCH_OP}"),
        ));
    }
    let ops = get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), "Operations must be an array"))?;
    let mut work = doc.clone();
    for op in ops {
        let kind = match get_ci(op, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Op::Add,
            Some("replace") => Op::Replace,
            Some("remove") => Op::Remove,
            other => return Err(ScimError::invalid_value(format!("unknown PATCH op {other:?}"))),
        };
        let value = get_ci(op, "value").cloned();
        let path = get_ci(op, "path").and_then(Value::as_str).filter(|p| !p.trim().is_empty());
        match path {
            None => {
                if matches!(kind, Op::Remove) {
                    return Err(no_target("remove needs a path"));
                }
                let Some(Value::Object(fields)) = value else {
                    return Err(ScimError::invalid_value("a PATCH without path needs an object value"));
                };
                for (k, v) in fields {
                    // `urn:…:enterprise:2.0:User:employeeNumber` or a nested extension object.
                    let (uri, name) = split_urn(&k);
                    let obj = container(&mut work, uri)?;
                    match name {
                        Some(n) => set_attr(obj, n, v, matches!(kind, Op::Add))?,
                        None => {
                            let Value::Object(inner) = v else {
                                return Err(ScimError::invalid_value(format!("{k} must be an object")));
                            };
                            for (ik, iv) in inner {
                                set_attr(obj, &ik, iv, matches!(kind, Op::Add))?;
                            }
                        }
                    }
                }
            }
            Some(p) => {
                let parsed: PatchPath = p.parse().map_err(|e| invalid_path(format!("bad path '{p}': {e}")))?;
                apply_path(&mut work, parsed, kind, value)?;
            }
        }
    }
    *doc = work;
    Ok(())
}

/// Split `urn:…:User:attr` into (`urn:…:User`, `attr`); a bare URN gives no attribute.
fn split_urn(k: &str) -> (Option<&str>, Option<&str>) {
    if !k.to_ascii_lowercase().starts_with("urn:") {
        return (None, Some(k));
    }
    for schema in [USER, super::mapping::ENTERPRISE, super::mapping::AGENT] {
        if k.eq_ignore_ascii_case(schema) {
            return (Some(schema), None);
        }
        if k.len() > schema.len() + 1 && k[..schema.len()].eq_ignore_ascii_case(schema) {
            return (Some(schema), Some(&k[schema.len() + 1..]));
        }
    }
    (Some(k), None)
}

fn apply_path(doc: &mut Value, path: PatchPath, kind: Op, value: Option<Value>) -> Result<(), ScimError> {
    let need_value = || value.clone().ok_or_else(|| ScimError::invalid_value("this operation needs a value"));
    match path {
        PatchPath::Attr(AttrPath { uri, name, sub_attr }) => {
            let obj = container(doc, uri.as_deref())?;
            check_mutable(&name)?;
            let key = key_of(obj, &name);
            match (kind, sub_attr) {
                (Op::Remove, None) => {
                    obj.remove(&key);
                }
                (Op::Remove, Some(sub)) => {
                    if let Some(Value::Object(inner)) = obj.get_mut(&key) {
                        let k = key_of(inner, &sub);
                        inner.remove(&k);
                    }
                }
                (kind, None) => set_attr(obj, &name, need_value()?, matches!(kind, Op::Add))?,
                (_, Some(sub)) => {
                    let slot = obj.entry(key).or_insert_with(|| Value::Object(Map::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    if let Value::Object(inner) = slot {
                        let k = key_of(inner, &sub);
                        inner.insert(k, need_value()?);
                    }
                }
            }
        }
        PatchPath::Value(vp) => {
            let obj = container(doc, vp.attr.uri.as_deref())?;
            check_mutable(&vp.attr.name)?;
            let key = key_of(obj, &vp.attr.name);
            let slot = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else { return Ok(()) };
            let hits: Vec<usize> = (0..items.len()).filter(|&i| matches(&items[i], &vp.filter)).collect();
            match kind {
                Op::Remove => {
                    for &i in hits.iter().rev() {
                        match &vp.sub_attr {
                            None => {
                                items.remove(i);
                            }
                            Some(sub) => {
                                if let Value::Object(o) = &mut items[i] {
                                    let k = key_of(o, sub);
                                    o.remove(&k);
                                }
                            }
                        }
                    }
                }
                Op::Add | Op::Replace => {
                    let v = need_value()?;
                    if hits.is_empty() {
                        // Nothing matches yet: make the element the path describes.
                        let mut elem = Map::new();
                        equalities(&vp.filter, &mut elem);
                        match &vp.sub_attr {
                            Some(sub) => {
                                elem.insert(sub.clone(), v.clone());
                            }
                            None => {
                                if let Value::Object(fields) = v.clone() {
                                    elem.extend(fields);
                                }
                            }
                        }
                        items.push(Value::Object(elem));
                    }
                    for &i in &hits {
                        match &vp.sub_attr {
                            Some(sub) => {
                                if let Value::Object(o) = &mut items[i] {
                                    let k = key_of(o, sub);
                                    o.insert(k, v.clone());
                                }
                            }
                            None => merge(&mut items[i], v.clone(), false),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(doc: Value, ops: Value) -> Result<Value, ScimError> {
        let mut d = doc;
        apply(&mut d, &json!({"schemas": [PATCH_OP], "Operations": ops}))?;
        Ok(d)
    }

    #[test]
    fn entra_and_okta_forms_apply() {
        let doc =
            json!({"userName": "a", "active": true, "emails": [{"value": "a@x", "type": "work", "primary": true}]});
        // Entra: capitalised op, boolean as a string, filtered path with a sub-attribute.
        let d = patch(doc.clone(), json!([
            {"op": "Replace", "path": "active", "value": "False"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "b@x"},
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "0601"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42"}
        ])).unwrap();
        assert_eq!(d["active"], "False");
        assert_eq!(d["emails"][0]["value"], "b@x");
        assert_eq!(d["phoneNumbers"][0], json!({"type": "mobile", "value": "0601"}));
        assert_eq!(d["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"], "42");
        // Okta: path-less replace.
        let d = patch(doc.clone(), json!([{"op": "replace", "value": {"active": false, "name": {"familyName": "B"}}}]))
            .unwrap();
        assert_eq!(d["active"], false);
        assert_eq!(d["name"]["familyName"], "B");
        // Remove a filtered element.
        let d = patch(doc.clone(), json!([{"op": "remove", "path": "emails[value eq \"A@X\"]"}])).unwrap();
        assert_eq!(d["emails"], json!([]));
    }

    #[test]
    fn bad_patches_are_refused_whole() {
        let doc = json!({"userName": "a"});
        assert!(patch(doc.clone(), json!([{"op": "remove"}])).is_err());
        assert!(patch(doc.clone(), json!([{"op": "replace", "path": "id", "value": "x"}])).is_err());
        assert!(patch(doc.clone(), json!([{"op": "frobnicate", "path": "userName"}])).is_err());
        assert!(patch(doc.clone(), json!([{"op": "replace", "path": "emails[", "value": 1}])).is_err());
        let mut d = doc.clone();
        assert!(apply(&mut d, &json!({"Operations": []})).is_err(), "schemas are required");
    }
}
