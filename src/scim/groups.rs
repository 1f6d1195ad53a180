//! `/Groups` (RFC 7644 §3.3–3.6): `groupOfNames` under an organisation's
//! `ou=groupes`, rendered and parsed through the Group mapping table. Who
//! may be a member is the access policy's call, in the core.
//!
//! A PATCH that only adds or removes members (what Entra ID and Okta send,
//! a member at a time, to groups of thousands) is applied to the member
//! DNs directly: the members are not rendered to be patched.

use serde_json::{Map, Value, json};

use super::lookup::{self, Memberships};
use super::mapping::COMMON_ATTRS;
use super::mapping::group::{GROUP, GROUP_EXTENSION, GROUP_SCHEMA, GROUPS};
use super::parse::{self, get_ci};
use super::patch::{Kind, Operation};
use super::render::{self, DirSyntax, Sources};
use super::users::meta;
use super::{Caller, ScimError};
use crate::directory::request::version;
use crate::directory::{Change, Directory, Dn, EMPTY_GROUP_MEMBER, Entry, ModOp, Modification, Rdn};
use scim_v2::filter::{AttrExp, CompValue, CompareOp, PatchPath, ValFilter};

/// The DNs a group lists, its placeholder left out.
fn member_dns(entry: &Entry) -> Vec<String> {
    entry
        .get("member")
        .map(|a| a.values.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|v| v.as_slice() != EMPTY_GROUP_MEMBER.as_bytes())
        .filter_map(|v| String::from_utf8(v.clone()).ok())
        .collect()
}

/// The Group a group entry is, as the caller sees it; `with_members` false
/// leaves the members out (`excludedAttributes=members`).
pub(super) fn render(dir: &Directory, caller: &Caller, entry: &Entry, with_members: bool) -> Value {
    let syntax = DirSyntax(dir.schema());
    let resolve = |_: &str| None;
    let src = Sources { entry, applications: &[], syntax: &syntax, resolve: &resolve };
    let id = entry.first_str("entryUUID").unwrap_or_default().to_string();
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([GROUP, GROUP_EXTENSION]));
    doc.insert("id".into(), Value::String(id.clone()));
    render::attributes(COMMON_ATTRS, &src, &mut doc);
    render::attributes(GROUP_SCHEMA.attrs, &src, &mut doc);
    if with_members {
        let dns = member_dns(entry);
        let refs: Vec<&str> = dns.iter().map(String::as_str).collect();
        let found = dir
            .read_many(&caller.1.principal, &refs, &["entryUUID", "cn", "displayName", "objectClass"])
            .unwrap_or_default();
        let members: Vec<Value> = found
            .into_iter()
            .flatten()
            .filter_map(|m| {
                let mid = m.first_str("entryUUID")?.to_string();
                let kind = if lookup::has_class(&m, "groupOfNames") { "Group" } else { "User" };
                let display = m.first_str("displayName").or(m.first_str("cn")).map(str::to_string);
                let mut v = Map::new();
                v.insert("value".into(), mid.clone().into());
                v.insert("$ref".into(), format!("/scim/v2/{kind}s/{mid}").into());
                if let Some(d) = display {
                    v.insert("display".into(), d.into());
                }
                v.insert("type".into(), kind.into());
                Some(Value::Object(v))
            })
            .collect();
        if !members.is_empty() {
            doc.insert("members".into(), Value::Array(members));
        }
    }
    if let Some(siren) = dir.normalize_dn(&entry.dn).ok().and_then(|ndn| dir.organisation_siren(&ndn).ok().flatten()) {
        doc.insert(GROUP_EXTENSION.into(), json!({"siren": siren}));
    }
    let memberships = Memberships::of(dir, entry).groups;
    doc.insert("meta".into(), meta(entry, "Group", &id, &memberships));
    Value::Object(doc)
}

/// The version of a Group as the precondition check computes it.
pub(super) fn version_of(dir: &Directory, entry: &Entry) -> String {
    version(entry, &Memberships::of(dir, entry).groups)
}

/// The DN of a member the document names by id, as the caller sees it.
fn member_dn(dir: &Directory, caller: &Caller, id: &str) -> Result<Option<Dn>, ScimError> {
    Ok(lookup::dn_of(dir, caller, id)?.map(|(dn, _)| dn))
}

/// The ids a `members` value lists (`[{"value": id}, …]`).
fn listed_ids(v: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().collect(),
        Value::Object(_) => vec![v],
        _ => return Err(ScimError::invalid_value("members must be an array of {\"value\": id}")),
    };
    items
        .into_iter()
        .map(|m| match m.as_object().and_then(|o| get_ci(o, "value")) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(ScimError::invalid_value("a member needs a value (the id of a User or Group)")),
        })
        .collect()
}

/// The member DNs for ids a client sent; an id the caller cannot see is refused.
fn resolve_members(dir: &Directory, caller: &Caller, ids: &[String]) -> Result<Vec<Dn>, ScimError> {
    let mut out: Vec<Dn> = Vec::with_capacity(ids.len());
    for id in ids {
        let dn = member_dn(dir, caller, id)?
            .ok_or_else(|| ScimError::invalid_value(format!("members: no User or Group with id {id}")))?;
        if !out.contains(&dn) {
            out.push(dn);
        }
    }
    Ok(out)
}

fn or_placeholder(members: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if members.is_empty() { vec![EMPTY_GROUP_MEMBER.as_bytes().to_vec()] } else { members }
}

fn parse_group(dir: &Directory, doc: &Value) -> Result<parse::Parsed, ScimError> {
    parse::parse(&GROUPS, doc, &DirSyntax(dir.schema()))
}

/// The change that creates a group from its document.
pub(super) fn create_changes(dir: &Directory, caller: &Caller, doc: &Value) -> Result<Vec<Change>, ScimError> {
    let named = doc.get(GROUP_EXTENSION).and_then(|a| a.get("siren")).and_then(Value::as_str);
    let org = lookup::organisation_for(dir, caller, named, "group", GROUP_EXTENSION)?;
    let parsed = parse_group(dir, doc)?;
    let name = parsed.first("cn").ok_or_else(|| ScimError::invalid_value("displayName is required"))?.to_string();
    let ids = doc.as_object().and_then(|o| get_ci(o, "members")).map(listed_ids).transpose()?.unwrap_or_default();
    let members = resolve_members(dir, caller, &ids)?;
    let dn = org.child(Rdn::single("ou", "groupes")).child(Rdn::single("cn", &name));
    let mut entry = Entry::new(dn).with("objectClass", ["groupOfNames", "cigGroup"]);
    for (attr, values) in parsed.values.into_iter().filter(|(_, v)| !v.is_empty()) {
        entry.add_values(attr, values);
    }
    entry.add_values("member", or_placeholder(members.iter().map(|d| d.to_string().into_bytes()).collect()));
    Ok(vec![Change::Add(entry)])
}

/// The changes that make the group say what the document says: name and
/// externalId, and its members when the document lists them (a PUT that
/// leaves them out leaves them as they are; `complete`: a patched whole
/// document, where no members means none).
pub(super) fn write_changes(
    dir: &Directory,
    caller: &Caller,
    entry: &Entry,
    doc: &Value,
    complete: bool,
) -> Result<Vec<Change>, ScimError> {
    let parsed = parse_group(dir, doc)?;
    let name = parsed.first("cn").ok_or_else(|| ScimError::invalid_value("displayName is required"))?.to_string();
    let mut changes = Vec::new();
    let mut dn = entry.dn.clone();
    if entry.first_str("cn").is_none_or(|c| c != name) {
        let rdn = Rdn::single("cn", &name);
        changes.push(Change::Rename { dn: dn.clone(), new_rdn: rdn.clone(), delete_old_rdn: true, new_superior: None });
        dn = dn.parent().child(rdn);
    }
    let mut mods = Vec::new();
    if !lookup::has_class(entry, "cigGroup") {
        mods.push(Modification::new(ModOp::Add, "objectClass", ["cigGroup"]));
    }
    for (attr, values) in parsed.values.into_iter().filter(|(a, _)| *a != "cn") {
        let held = entry.get(attr).map(|a| a.values.clone()).unwrap_or_default();
        if held != values {
            mods.push(Modification { op: ModOp::Replace, attr: attr.into(), values });
        }
    }
    let listed = doc.as_object().and_then(|o| get_ci(o, "members")).filter(|v| !v.is_null());
    let ids = match (listed, complete) {
        (Some(v), _) => Some(listed_ids(v)?),
        (None, true) => Some(Vec::new()),
        (None, false) => None,
    };
    if let Some(ids) = ids {
        let wanted = resolve_members(dir, caller, &ids)?;
        mods.extend(member_diff(dir, entry, &wanted.iter().map(Dn::to_string).collect::<Vec<_>>()));
    }
    if !mods.is_empty() {
        changes.push(Change::Modify(dn, mods));
    }
    Ok(changes)
}

/// Add and delete modifications that turn the group's members into `wanted`.
fn member_diff(dir: &Directory, entry: &Entry, wanted: &[String]) -> Vec<Modification> {
    let norm = |s: &str| Dn::parse(s).ok().and_then(|d| dir.normalize_dn(&d).ok()).unwrap_or_else(|| s.to_lowercase());
    let held = member_dns(entry);
    let held_n: Vec<String> = held.iter().map(|h| norm(h)).collect();
    let wanted_n: Vec<String> = wanted.iter().map(|w| norm(w)).collect();
    let added: Vec<Vec<u8>> = wanted
        .iter()
        .zip(&wanted_n)
        .filter(|(_, n)| !held_n.contains(n))
        .map(|(w, _)| w.clone().into_bytes())
        .collect();
    let gone: Vec<Vec<u8>> =
        held.iter().zip(&held_n).filter(|(_, n)| !wanted_n.contains(n)).map(|(h, _)| h.clone().into_bytes()).collect();
    let mut mods = Vec::new();
    if !added.is_empty() {
        mods.push(Modification { op: ModOp::Add, attr: "member".into(), values: added });
    }
    if !gone.is_empty() {
        mods.push(Modification { op: ModOp::Delete, attr: "member".into(), values: gone });
        // A SCIM group may be empty; a groupOfNames may not: the placeholder
        // stays when the last member goes (dropped by the core beside real ones).
        mods.push(crate::directory::keep_placeholder_member());
    }
    mods
}

/// A member operation in one of the forms clients send, on member ids.
enum MemberOp {
    Add(Vec<String>),
    Remove(Vec<String>),
    RemoveAll,
    Replace(Vec<String>),
}

/// The operation's effect on members, when it touches only members and in
/// a form the member DNs can take directly; `None` otherwise.
fn member_op(op: &Operation) -> Option<MemberOp> {
    let value = op.value.as_ref();
    match &op.path {
        Some(PatchPath::Attr(a))
            if a.sub_attr.is_none() && a.name.eq_ignore_ascii_case("members") && uri_is_core(&a.uri) =>
        {
            match op.kind {
                Kind::Add => Some(MemberOp::Add(listed_ids(value?).ok()?)),
                Kind::Replace => Some(MemberOp::Replace(listed_ids(value.unwrap_or(&Value::Null)).ok()?)),
                Kind::Remove => match value {
                    // Entra ID removes some members by listing them.
                    Some(v @ (Value::Array(_) | Value::Object(_))) => Some(MemberOp::Remove(listed_ids(v).ok()?)),
                    _ => Some(MemberOp::RemoveAll),
                },
            }
        }
        Some(PatchPath::Value(vp))
            if op.kind == Kind::Remove
                && vp.sub_attr.is_none()
                && vp.attr.name.eq_ignore_ascii_case("members")
                && uri_is_core(&vp.attr.uri) =>
        {
            match &vp.filter {
                ValFilter::Attr(AttrExp::Comparison(p, CompareOp::Eq, CompValue::Str(id)))
                    if p.name.eq_ignore_ascii_case("value") =>
                {
                    Some(MemberOp::Remove(vec![id.clone()]))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn uri_is_core(uri: &Option<String>) -> bool {
    uri.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(GROUP))
}

/// A PATCH whose operations on members all have a direct form: the other
/// operations applied to the group rendered without its members, the
/// member operations to its member DNs. `None` when some member operation
/// needs the rendered members (a filter on `display` …).
pub(super) fn patch_changes(
    dir: &Directory,
    caller: &Caller,
    entry: &Entry,
    ops: &[Operation],
) -> Result<Option<Vec<Change>>, ScimError> {
    let touches_members = |op: &Operation| match &op.path {
        Some(PatchPath::Attr(a)) => a.name.eq_ignore_ascii_case("members"),
        Some(PatchPath::Value(vp)) => vp.attr.name.eq_ignore_ascii_case("members"),
        None => op.value.as_ref().and_then(Value::as_object).is_some_and(|o| get_ci(o, "members").is_some()),
    };
    let mut member_ops = Vec::new();
    let mut others = Vec::new();
    for op in ops {
        if touches_members(op) {
            match member_op(op) {
                Some(m) => member_ops.push(m),
                None => return Ok(None),
            }
        } else {
            others.push(op.clone());
        }
    }
    let mut doc = render(dir, caller, entry, false);
    super::patch::apply(&GROUPS, &mut doc, &others)?;
    let mut changes = write_changes(dir, caller, entry, &doc, false)?;
    if member_ops.is_empty() {
        return Ok(Some(changes));
    }
    let norm = |d: &Dn| dir.normalize_dn(d).unwrap_or_else(|_| d.to_string().to_lowercase());
    let mut members: Vec<String> = member_dns(entry);
    for op in member_ops {
        match op {
            MemberOp::Add(ids) => {
                for dn in resolve_members(dir, caller, &ids)? {
                    let n = norm(&dn);
                    if !members.iter().any(|m| Dn::parse(m).is_ok_and(|d| norm(&d) == n)) {
                        members.push(dn.to_string());
                    }
                }
            }
            MemberOp::Replace(ids) => members = resolve_members(dir, caller, &ids)?.iter().map(Dn::to_string).collect(),
            MemberOp::RemoveAll => members.clear(),
            MemberOp::Remove(ids) => {
                // Removing a member the caller cannot see, or that is not one, changes nothing.
                let gone: Vec<String> =
                    ids.iter().filter_map(|id| member_dn(dir, caller, id).ok().flatten()).map(|d| norm(&d)).collect();
                members.retain(|m| Dn::parse(m).map(|d| !gone.contains(&norm(&d))).unwrap_or(true));
            }
        }
    }
    let mods = member_diff(dir, entry, &members);
    if !mods.is_empty() {
        // After a rename in the same request, the group has its new DN.
        let target = match changes.iter().find_map(|c| match c {
            Change::Rename { dn, new_rdn, .. } => Some(dn.parent().child(new_rdn.clone())),
            _ => None,
        }) {
            Some(renamed) => renamed,
            None => entry.dn.clone(),
        };
        match changes.iter_mut().find_map(|c| match c {
            Change::Modify(dn, m) if *dn == target => Some(m),
            _ => None,
        }) {
            Some(existing) => existing.extend(mods),
            None => changes.push(Change::Modify(target, mods)),
        }
    }
    Ok(Some(changes))
}
