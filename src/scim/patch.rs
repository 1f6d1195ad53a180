//! SCIM PATCH (RFC 7644 §3.5.2) applied to a resource's rendered document,
//! every path checked against the mapping table, with the forms real
//! clients send: Entra ID's capitalised ops ("Replace"), Booleans as
//! strings, `add` to a filtered path nothing matches yet, path-less values
//! whose keys are attribute paths (`name.givenName`, `urn:…:department`),
//! `remove` of `members` with the list of those to remove, and its null
//! update (`replace` with "" or null clears); Okta's path-less `replace` of
//! `{"active": false}` and its group rename that repeats the group's `id`.
//! The patched document is then written like a PUT, in one transaction:
//! all operations or none.

use scim_v2::filter::{AttrExp, AttrPath, CompValue, CompareOp, PatchPath, ValFilter};
use serde_json::{Map, Value};

use super::ScimError;
use super::evaluate::element_matches;
use super::mapping::{Attr, Mutability, Path, Resource, Type};
use super::parse::get_ci;

pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Add,
    Replace,
    Remove,
}

/// One operation, its path parsed.
#[derive(Debug, Clone)]
pub struct Operation {
    pub kind: Kind,
    pub path: Option<PatchPath>,
    pub value: Option<Value>,
}

fn no_target(detail: impl Into<String>) -> ScimError {
    ScimError::new(axum::http::StatusCode::BAD_REQUEST, Some("noTarget"), detail)
}

/// The operations of a PatchOp request body.
pub fn operations(body: &Value) -> Result<Vec<Operation>, ScimError> {
    let obj = body.as_object().ok_or_else(|| ScimError::invalid_syntax("a PatchOp request is a JSON object"))?;
    let schemas_ok = get_ci(obj, "schemas")
        .and_then(Value::as_array)
        .is_some_and(|s| s.iter().any(|x| x.as_str().is_some_and(|x| x.eq_ignore_ascii_case(PATCH_OP))));
    if !schemas_ok {
        return Err(ScimError::invalid_syntax(format!("schemas must list {PATCH_OP}")));
    }
    let ops = get_ci(obj, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let op = op.as_object().ok_or_else(|| ScimError::invalid_syntax("each operation is a JSON object"))?;
        let kind = match get_ci(op, "op").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("add") => Kind::Add,
            Some("replace") => Kind::Replace,
            Some("remove") => Kind::Remove,
            other => {
                return Err(ScimError::invalid_value(format!("unknown PATCH op {other:?}: add, replace or remove")));
            }
        };
        let path = match get_ci(op, "path") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if p.trim().is_empty() => None,
            Some(Value::String(p)) => Some(parse_path(p)?),
            Some(_) => return Err(ScimError::invalid_path("path must be a string")),
        };
        if kind == Kind::Remove && path.is_none() {
            return Err(no_target("remove needs a path (RFC 7644 §3.5.2.2)"));
        }
        out.push(Operation { kind, path, value: get_ci(op, "value").cloned() });
    }
    Ok(out)
}

/// A PATCH path. The forms clients send all day (`title`, `name.givenName`,
/// `urn:…:User:department`, `emails[type eq "work"].value`) are read
/// directly, as the general parser reads them: it costs a hundred times more.
pub fn parse_path(p: &str) -> Result<PatchPath, ScimError> {
    if let Some(path) = simple_path(p.trim()) {
        return Ok(path);
    }
    p.parse::<PatchPath>().map_err(|e| ScimError::invalid_path(format!("bad path '{p}': {e}")))
}

/// An RFC 7644 ATTRNAME: a letter, then letters, digits, `_` or `-`.
fn attr_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `[urn:]name[.sub]` with plain names.
fn simple_attr(p: &str) -> Option<AttrPath> {
    let (uri, rest) = match p.rfind(':') {
        Some(i) if p[..i].to_ascii_lowercase().starts_with("urn:") => (Some(p[..i].to_string()), &p[i + 1..]),
        Some(_) => return None,
        None => (None, p),
    };
    let (name, sub) = match rest.split_once('.') {
        Some((n, s)) => (n, Some(s)),
        None => (rest, None),
    };
    if !attr_name(name) || !sub.is_none_or(attr_name) {
        return None;
    }
    Some(AttrPath { uri, name: name.to_string(), sub_attr: sub.map(str::to_string) })
}

fn simple_path(p: &str) -> Option<PatchPath> {
    let Some(open) = p.find('[') else { return simple_attr(p).map(PatchPath::Attr) };
    // `name[sub eq "value"][.sub]`, the value without quotes or escapes inside.
    let attr = simple_attr(&p[..open])?;
    if attr.sub_attr.is_some() {
        return None;
    }
    let close = p.rfind(']')?;
    let inner = p.get(open + 1..close)?.trim();
    let after = &p[close + 1..];
    let sub_attr = match after.strip_prefix('.') {
        Some(s) if attr_name(s) => Some(s.to_string()),
        Some(_) => return None,
        None if after.is_empty() => None,
        None => return None,
    };
    let (left, value) = inner.split_once(char::is_whitespace)?;
    let value = value.trim_start();
    let value = value.get(..2).filter(|op| op.eq_ignore_ascii_case("eq")).map(|_| value[2..].trim_start())?;
    let value = value.strip_prefix('"')?.strip_suffix('"')?;
    if !attr_name(left) || value.contains(['"', '\\']) || value.chars().any(char::is_control) {
        return None;
    }
    let filter = ValFilter::Attr(AttrExp::Comparison(
        AttrPath { uri: None, name: left.to_string(), sub_attr: None },
        CompareOp::Eq,
        CompValue::Str(value.to_string()),
    ));
    Some(PatchPath::Value(scim_v2::filter::PatchValuePath { attr, filter, sub_attr }))
}

/// Apply the operations to a document, all or none.
pub fn apply(res: &Resource, doc: &mut Value, ops: &[Operation]) -> Result<(), ScimError> {
    let before = doc.clone();
    let mut work = doc.clone();
    for op in ops {
        match &op.path {
            Some(path) => match whole_extension(res, path) {
                // A path that is an extension's URN: the extension object itself.
                Some(ext) => match (op.kind, &op.value) {
                    (Kind::Remove, _) => {
                        if let Some(root) = work.as_object_mut() {
                            let key = key_of(root, ext.id);
                            root.remove(&key);
                        }
                    }
                    (_, Some(Value::Object(inner))) => {
                        for (k, iv) in inner {
                            let path = AttrPath { uri: Some(ext.id.to_string()), name: k.clone(), sub_attr: None };
                            apply_known(res, &mut work, op.kind, &PatchPath::Attr(path), iv.clone())?;
                        }
                    }
                    _ => return Err(ScimError::invalid_value(format!("{} takes an object value", ext.id))),
                },
                None => apply_path(res, &mut work, op.kind, path, op.value.clone())?,
            },
            None => {
                let Some(Value::Object(fields)) = &op.value else {
                    return Err(ScimError::invalid_value("an operation without a path needs an object value"));
                };
                for (key, v) in fields {
                    // A whole extension: its attributes one by one.
                    if let Some(ext) = res.schema(key).filter(|s| !std::ptr::eq(*s, res.core)) {
                        let Value::Object(inner) = v else {
                            return Err(ScimError::invalid_value(format!("{key} must be an object")));
                        };
                        for (k, iv) in inner {
                            let path = AttrPath { uri: Some(ext.id.to_string()), name: k.clone(), sub_attr: None };
                            apply_known(res, &mut work, op.kind, &PatchPath::Attr(path), iv.clone())?;
                        }
                        continue;
                    }
                    // `name.givenName`, `urn:…:User:department`: attribute paths as keys.
                    let Ok(path) = parse_path(key) else { continue };
                    apply_known(res, &mut work, op.kind, &path, v.clone())?;
                }
            }
        }
    }
    check_read_only(res, &before, &work)?;
    *doc = work;
    Ok(())
}

/// The extension a path names as a whole (`urn:…:enterprise:2.0:User`), if it does.
fn whole_extension(res: &Resource, path: &PatchPath) -> Option<&'static super::mapping::Schema> {
    let PatchPath::Attr(a) = path else { return None };
    if a.sub_attr.is_some() {
        return None;
    }
    let urn = match &a.uri {
        Some(u) => format!("{u}:{}", a.name),
        None => a.name.clone(),
    };
    res.extensions.iter().copied().find(|e| e.id.eq_ignore_ascii_case(&urn))
}

/// A path-less operation's key: unknown attributes are ignored (RFC 7644 §3.3).
fn apply_known(res: &Resource, doc: &mut Value, kind: Kind, path: &PatchPath, v: Value) -> Result<(), ScimError> {
    let attr = match path {
        PatchPath::Attr(a) => a,
        PatchPath::Value(vp) => &vp.attr,
    };
    if res.resolve(attr.uri.as_deref(), &attr.name, attr.sub_attr.as_deref()).is_none() {
        return Ok(());
    }
    apply_path(res, doc, kind, path, Some(v))
}

/// The object a path's attribute lives in (an extension's is made when missing).
fn container<'a>(doc: &'a mut Value, path: &Path) -> Result<&'a mut Map<String, Value>, ScimError> {
    let root = doc.as_object_mut().ok_or_else(|| ScimError::invalid_path("the resource is not an object"))?;
    let Some(ext) = path.extension else { return Ok(root) };
    let key = key_of(root, ext.id);
    let slot = root.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut().ok_or_else(|| ScimError::invalid_path("an extension is not an object"))
}

/// The key an attribute has in an object, whatever its case (RFC 7643 §2.1).
fn key_of(obj: &Map<String, Value>, name: &str) -> String {
    obj.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

/// "" and null ask for the attribute to be cleared (Entra ID's null update).
fn is_empty(v: &Value) -> bool {
    matches!(v, Value::Null) || v.as_str().is_some_and(str::is_empty)
}

fn apply_path(
    res: &Resource,
    doc: &mut Value,
    kind: Kind,
    path: &PatchPath,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let need = |v: Option<Value>| v.ok_or_else(|| ScimError::invalid_value("this operation needs a value"));
    let (attr_path, filter, sub_after) = match path {
        PatchPath::Attr(a) => (a, None, None),
        PatchPath::Value(vp) => (&vp.attr, Some(&vp.filter), vp.sub_attr.as_deref()),
    };
    let resolved = res
        .resolve(attr_path.uri.as_deref(), &attr_path.name, attr_path.sub_attr.as_deref())
        .ok_or_else(|| ScimError::invalid_path(format!("'{}' names no attribute of {}", attr_path.name, res.name)))?;
    let attr = resolved.attr;
    if let Some(s) = sub_after
        && attr.sub(s).is_none()
    {
        return Err(ScimError::invalid_path(format!("'{s}' is not a sub-attribute of {}", attr.name)));
    }
    let obj = container(doc, &resolved)?;
    let key = key_of(obj, attr.name);
    match (filter, resolved.sub) {
        (None, None) => whole(obj, key, attr, kind, value),
        (None, Some(sub)) => {
            let slot = obj.entry(key.clone()).or_insert(Value::Null);
            match slot {
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        set_sub(item, sub, kind, value.clone())?;
                    }
                    Ok(())
                }
                _ => {
                    if slot.is_null() {
                        *slot = Value::Object(Map::new());
                    }
                    set_sub(slot, sub, kind, value)?;
                    if slot.as_object().is_some_and(Map::is_empty) {
                        obj.remove(&key);
                    }
                    Ok(())
                }
            }
        }
        (Some(f), _) => {
            if !attr.multi {
                return Err(ScimError::invalid_path(format!(
                    "{} is single-valued: it takes no value filter",
                    attr.name
                )));
            }
            let slot = obj.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let Value::Array(items) = slot else { return Ok(()) };
            let hits: Vec<usize> = (0..items.len()).filter(|&i| element_matches(attr, &items[i], f)).collect();
            let sub = sub_after.and_then(|s| attr.sub(s));
            match kind {
                Kind::Remove => {
                    for &i in hits.iter().rev() {
                        match sub {
                            None => {
                                items.remove(i);
                            }
                            Some(s) => set_sub(&mut items[i], s, Kind::Remove, None)?,
                        }
                    }
                }
                Kind::Add | Kind::Replace => {
                    let v = need(value)?;
                    if hits.is_empty() {
                        // Nothing matches yet: make the element the path describes (Entra ID does this).
                        let mut elem = Map::new();
                        equalities(attr, f, &mut elem);
                        let mut elem = Value::Object(elem);
                        match sub {
                            Some(s) => set_sub(&mut elem, s, Kind::Add, Some(v.clone()))?,
                            None => merge(&mut elem, v.clone()),
                        }
                        items.push(elem);
                        let last = items.len() - 1;
                        reset_primary(items, last);
                    }
                    for &i in &hits {
                        match sub {
                            Some(s) => set_sub(&mut items[i], s, Kind::Replace, Some(v.clone()))?,
                            None if kind == Kind::Replace => items[i] = v.clone(),
                            None => merge(&mut items[i], v.clone()),
                        }
                        reset_primary(items, i);
                    }
                }
            }
            if items.is_empty() {
                obj.remove(&key);
            }
            Ok(())
        }
    }
}

/// An operation on a whole attribute.
fn whole(
    obj: &mut Map<String, Value>,
    key: String,
    attr: &Attr,
    kind: Kind,
    value: Option<Value>,
) -> Result<(), ScimError> {
    match kind {
        Kind::Remove => {
            match (attr.multi, value) {
                // Entra ID removes some members by listing them.
                (true, Some(Value::Array(gone))) if !gone.is_empty() => {
                    if let Some(Value::Array(items)) = obj.get_mut(&key) {
                        items.retain(|i| !gone.iter().any(|g| same_element(g, i)));
                        if items.is_empty() {
                            obj.remove(&key);
                        }
                    }
                }
                _ => {
                    obj.remove(&key);
                }
            }
            Ok(())
        }
        Kind::Add | Kind::Replace => {
            let Some(v) = value else { return Err(ScimError::invalid_value("this operation needs a value")) };
            if is_empty(&v) || v.as_array().is_some_and(Vec::is_empty) && kind == Kind::Replace {
                obj.remove(&key);
                return Ok(());
            }
            if attr.multi {
                let new = match v {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                if kind == Kind::Replace {
                    obj.insert(key, Value::Array(new));
                    return Ok(());
                }
                let slot = obj.entry(key).or_insert_with(|| Value::Array(Vec::new()));
                if !slot.is_array() {
                    *slot = Value::Array(Vec::new());
                }
                if let Value::Array(items) = slot {
                    for item in new {
                        match items.iter().position(|i| same_element(&item, i)) {
                            Some(i) => {
                                merge(&mut items[i], item);
                                reset_primary(items, i);
                            }
                            None => {
                                items.push(item);
                                let last = items.len() - 1;
                                reset_primary(items, last);
                            }
                        }
                    }
                }
                return Ok(());
            }
            match (obj.get_mut(&key), v) {
                // RFC 7644 §3.5.2.1 / .3: sub-attributes given replace theirs, the others stay.
                (Some(existing @ Value::Object(_)), v @ Value::Object(_)) if attr.ty == Type::Complex => {
                    merge(existing, v)
                }
                (_, v) => {
                    obj.insert(key, v);
                }
            }
            Ok(())
        }
    }
}

/// Two elements of a multi-valued attribute are the same value when their
/// `value`s are (members, emails …), or when they are equal.
fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn set_sub(slot: &mut Value, sub: &Attr, kind: Kind, value: Option<Value>) -> Result<(), ScimError> {
    let Value::Object(o) = slot else { return Err(ScimError::invalid_path("the target is not a complex value")) };
    let key = key_of(o, sub.name);
    match (kind, value) {
        (Kind::Remove, _) => {
            o.remove(&key);
        }
        (_, None) => return Err(ScimError::invalid_value("this operation needs a value")),
        (_, Some(v)) if is_empty(&v) => {
            o.remove(&key);
        }
        (_, Some(v)) => {
            o.insert(key, v);
        }
    }
    Ok(())
}

fn merge(target: &mut Value, value: Value) {
    match (target, value) {
        (Value::Object(existing), Value::Object(fields)) => {
            for (k, v) in fields {
                let key = key_of(existing, &k);
                if is_empty(&v) {
                    existing.remove(&key);
                } else {
                    existing.insert(key, v);
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// RFC 7644 §3.5.2: a value made primary makes the others not primary.
fn reset_primary(items: &mut [Value], chosen: usize) {
    let is_primary = |v: &Value| match v.get("primary") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    };
    if !items.get(chosen).is_some_and(is_primary) {
        return;
    }
    for (i, item) in items.iter_mut().enumerate() {
        if i != chosen
            && is_primary(item)
            && let Value::Object(o) = item
        {
            o.insert("primary".into(), Value::Bool(false));
        }
    }
}

/// The `attr eq "x"` terms of a filter: what a new element must carry when an
/// `add` targets a filtered path nothing matches yet.
fn equalities(parent: &Attr, f: &ValFilter, out: &mut Map<String, Value>) {
    match f {
        ValFilter::And(xs) => xs.iter().for_each(|x| equalities(parent, x, out)),
        ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, v)) => {
            let name = parent.sub(&p.name).map_or(p.name.as_str(), |s| s.name);
            let value = match v {
                CompValue::Str(s) => Value::String(s.clone()),
                CompValue::True => Value::Bool(true),
                CompValue::False => Value::Bool(false),
                CompValue::Number(n) => Value::Number(n.clone()),
                CompValue::Null => Value::Null,
            };
            out.insert(name.to_string(), value);
        }
        _ => {}
    }
}

/// RFC 7643 §7: a client may not change a read-only attribute, nor an
/// immutable one that has a value. One sent with the value it has is ignored
/// (Okta repeats a group's `id` when it renames it).
fn check_read_only(res: &Resource, before: &Value, after: &Value) -> Result<(), ScimError> {
    let (Some(b), Some(a)) = (before.as_object(), after.as_object()) else { return Ok(()) };
    let mut tables: Vec<(Option<&str>, &[Attr])> = vec![(None, super::mapping::COMMON_ATTRS), (None, res.core.attrs)];
    tables.extend(res.extensions.iter().map(|e| (Some(e.id), e.attrs)));
    for (ext, attrs) in tables {
        let (b, a) = match ext {
            None => (Some(b), Some(a)),
            Some(id) => (get_ci(b, id).and_then(Value::as_object), get_ci(a, id).and_then(Value::as_object)),
        };
        for attr in attrs {
            let old = b.and_then(|o| get_ci(o, attr.name)).filter(|v| !is_empty(v));
            let new = a.and_then(|o| get_ci(o, attr.name)).filter(|v| !is_empty(v));
            let changed = old != new;
            let refused = match attr.mutability {
                Mutability::ReadOnly => changed,
                Mutability::Immutable => changed && old.is_some(),
                _ => read_only_subs_changed(attr, old, new),
            };
            if refused {
                return Err(ScimError::mutability(format!(
                    "{} is {} (RFC 7643 §7)",
                    attr.name,
                    mutability_words(attr.mutability)
                )));
            }
        }
    }
    Ok(())
}

/// A complex singular attribute's read-only sub-attributes (manager.displayName).
fn read_only_subs_changed(attr: &Attr, old: Option<&Value>, new: Option<&Value>) -> bool {
    if attr.multi || attr.ty != Type::Complex {
        return false;
    }
    attr.subs.iter().filter(|s| s.mutability == Mutability::ReadOnly).any(|s| {
        let get = |v: Option<&Value>| v.and_then(Value::as_object).and_then(|o| get_ci(o, s.name)).cloned();
        let (o, n) = (get(old), get(new));
        // Dropped with its attribute (a new manager) is no change of the client's.
        n.is_some() && o != n
    })
}

fn mutability_words(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "read-only",
        Mutability::Immutable => "immutable once set",
        _ => "not writable here",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_path_fast_path_reads_paths_as_the_general_parser_does() {
        for p in [
            "title",
            "name.givenName",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            r#"emails[type eq "work"].value"#,
            r#"emails[type EQ "work"]"#,
            r#"members[value eq "7f4bc1a3-285e-48ae-8202-5accb43efb0e"]"#,
            r#"addresses[type eq "work"].locality"#,
        ] {
            let general: PatchPath = p.parse().unwrap();
            assert_eq!(simple_path(p), Some(general), "{p}");
        }
        for p in
            [r#"emails[type eq "a"b"]"#, r#"emails[type eq "x" and value co "y"]"#, "a.b.c", "emails[type pr]", "1abc"]
        {
            assert_eq!(simple_path(p), None, "{p}");
        }
    }
}
