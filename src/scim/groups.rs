//! `/Groups` (RFC 7644 §3.3–3.6): `groupOfNames` under the organisation's
//! `ou=groupes`, whose members are that organisation's users.

use serde_json::{Value, json};

use super::users::{apply, base_of, find_user, organisation_of};
use super::{Caller, ScimError, mapping};
use crate::directory::{
    Change, Directory, Dn, EMPTY_GROUP_MEMBER, Entry, Filter, ModOp, Modification, Rdn, Scope, SearchRequest,
    TokenScope,
};

pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn groups(dir: &Directory, caller: &Caller, base: Dn, extra: Filter) -> Result<Vec<Entry>, ScimError> {
    let f = Filter::And(vec![Filter::Equality("objectClass".into(), b"groupOfNames".to_vec()), extra]);
    let mut req = SearchRequest::new(base, Scope::Sub, f);
    req.attrs = vec!["*".into(), "+".into()];
    let mut out = Vec::new();
    dir.search(&caller.1.principal, &req, |e| {
        // Only groups that sit in an organisation's ou=groupes are SCIM Groups.
        if e.dn.parent().rdn().and_then(|r| r.avas.first()).is_some_and(|a| a.value.eq_ignore_ascii_case("groupes")) {
            out.push(e);
        }
        Ok(())
    })?;
    Ok(out)
}

pub(super) fn find(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
    let f = Filter::Equality("entryUUID".into(), id.as_bytes().to_vec());
    groups(dir, caller, base_of(dir, caller), f)?.pop().ok_or_else(|| ScimError::not_found("Group"))
}

pub(super) fn render(dir: &Directory, g: &Entry) -> Value {
    let id = g.first_str("entryUUID").unwrap_or_default().to_string();
    let members: Vec<Value> = g
        .get("member")
        .map(|a| a.values.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|v| v.as_slice() != EMPTY_GROUP_MEMBER.as_bytes())
        .filter_map(|v| std::str::from_utf8(v).ok().and_then(|s| Dn::parse(s).ok()))
        .filter_map(|d| dir.get(&d).ok().flatten())
        .filter_map(|m| {
            let mid = m.first_str("entryUUID")?.to_string();
            Some(json!({"value": mid, "display": m.first_str("cn"), "$ref": format!("/scim/v2/Users/{mid}"), "type": "User"}))
        })
        .collect();
    json!({
        "schemas": [GROUP],
        "id": id,
        "displayName": g.first_str("cn"),
        "members": members,
        "meta": {
            "resourceType": "Group",
            "created": g.first_str("createTimestamp").map(mapping::iso_time),
            "lastModified": g.first_str("modifyTimestamp").map(mapping::iso_time),
            "location": format!("/scim/v2/Groups/{id}"),
            "version": mapping::version(g),
        },
    })
}

/// The DNs of the members a Group JSON lists: users of the same organisation only.
fn member_dns(dir: &Directory, caller: &Caller, org: &Dn, g: &Value) -> Result<Vec<Vec<u8>>, ScimError> {
    let Some(items) = g.get("members").filter(|m| !m.is_null()) else { return Ok(Vec::new()) };
    let items = items.as_array().ok_or_else(|| ScimError::invalid_value("members must be an array"))?;
    let org_ndn = dir.normalize_dn(org)?;
    let mut out = Vec::new();
    for m in items {
        let id =
            m.get("value").and_then(Value::as_str).ok_or_else(|| ScimError::invalid_value("a member needs a value"))?;
        let user = find_user(dir, caller, id)
            .map_err(|_| ScimError::invalid_value(format!("no user {id} in this organisation")))?;
        if !crate::directory::dn::is_under(&dir.normalize_dn(&user.dn)?, &org_ndn) {
            return Err(ScimError::invalid_value(format!("user {id} belongs to another organisation")));
        }
        let dn = user.dn.to_string().into_bytes();
        if !out.contains(&dn) {
            out.push(dn);
        }
    }
    Ok(out)
}

fn display_name(g: &Value) -> Result<String, ScimError> {
    g.get("displayName")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| ScimError::invalid_value("displayName is required"))
}

fn or_placeholder(members: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if members.is_empty() { vec![EMPTY_GROUP_MEMBER.as_bytes().to_vec()] } else { members }
}

/// The change that creates a group from its JSON (with an organisation's token).
pub(super) fn create_changes(dir: &Directory, caller: &Caller, g: &Value) -> Result<Vec<Change>, ScimError> {
    let org = match &caller.0 {
        TokenScope::Organisation(dn) => dn.clone(),
        TokenScope::Cig => return Err(ScimError::invalid_value("groups are created with an organisation's token")),
    };
    let name = display_name(g)?;
    let members = or_placeholder(member_dns(dir, caller, &org, g)?);
    let dn = org.child(Rdn::single("ou", "groupes")).child(Rdn::single("cn", &name));
    let mut entry = Entry::new(dn.clone()).with("objectClass", ["groupOfNames"]).with("cn", [name.as_str()]);
    entry.add_values("member", members);
    Ok(vec![Change::Add(entry)])
}

/// The group as SCIM shows it once created (its members resolved).
pub(super) fn created(dir: &Directory, caller: &Caller, stored: Entry) -> Result<Entry, ScimError> {
    groups(dir, caller, stored.dn, Filter::everything())?.pop().ok_or_else(|| ScimError::not_found("Group"))
}

/// Make the group say what the Group JSON says (name and members), in one transaction.
pub(super) fn write_group(dir: &Directory, caller: &Caller, entry: &Entry, g: &Value) -> Result<(), ScimError> {
    let org = organisation_of(dir, &entry.dn).map(|o| o.dn).ok_or_else(|| ScimError::not_found("organisation"))?;
    let name = display_name(g)?;
    let members = or_placeholder(member_dns(dir, caller, &org, g)?);
    let mut changes = Vec::new();
    let mut dn = entry.dn.clone();
    if entry.first_str("cn").is_none_or(|c| c != name) {
        let rdn = Rdn::single("cn", &name);
        changes.push(Change::Rename { dn: dn.clone(), new_rdn: rdn.clone(), delete_old_rdn: true, new_superior: None });
        dn = dn.parent().child(rdn);
    }
    changes.push(Change::Modify(dn, vec![Modification { op: ModOp::Replace, attr: "member".into(), values: members }]));
    apply(dir, caller, changes)
}

/// The caller's groups matching a SCIM filter.
pub(super) fn list_entries(dir: &Directory, caller: &Caller, filter: Option<&str>) -> Result<Vec<Entry>, ScimError> {
    let filter = match filter {
        Some(f) => super::filter::parse_group(f, dir)?,
        None => Filter::And(Vec::new()),
    };
    groups(dir, caller, base_of(dir, caller), filter)
}
