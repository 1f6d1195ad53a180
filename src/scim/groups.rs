//! `/Groups` (RFC 7644 §3.3–3.6): `groupOfNames` under the organisation's
//! `ou=groupes`, whose members are that organisation's users.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::users::{actor_of, base_of, blocking, check_version, find_user, organisation_of, parse_body};
use super::{Caller, ScimContext, ScimError, mapping, scim_json};
use crate::directory::{
    AddMode, Change, Directory, Dn, EMPTY_GROUP_MEMBER, Entry, Filter, ModOp, Modification, Rdn, Scope, SearchRequest,
    TokenScope,
};

pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

fn groups(dir: &Directory, base: Dn, extra: Filter) -> Result<Vec<Entry>, ScimError> {
    let f = Filter::And(vec![Filter::Equality("objectClass".into(), b"groupOfNames".to_vec()), extra]);
    let mut req = SearchRequest::new(base, Scope::Sub, f);
    req.attrs = vec!["*".into(), "+".into()];
    let mut out = Vec::new();
    dir.search(&req, |e| {
        // Only groups that sit in an organisation's ou=groupes are SCIM Groups.
        if e.dn.parent().rdn().and_then(|r| r.avas.first()).is_some_and(|a| a.value.eq_ignore_ascii_case("groupes")) {
            out.push(e);
        }
        Ok(())
    })?;
    Ok(out)
}

fn find(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
    let f = Filter::Equality("entryUUID".into(), id.as_bytes().to_vec());
    groups(dir, base_of(dir, caller), f)?.pop().ok_or_else(|| ScimError::not_found("Group"))
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

fn apply(dir: &Directory, caller: &Caller, changes: Vec<Change>) -> Result<(), ScimError> {
    dir.apply_batch(&actor_of(caller), changes.into_iter().map(Ok), AddMode::Client, |_| {})
        .map_err(|(_, e)| e.into())
        .map(|_| ())
}

fn respond(dir: &Directory, status: StatusCode, g: &Entry) -> Response {
    let mut r = scim_json(status, render(dir, g));
    if let Ok(v) = HeaderValue::from_str(&mapping::version(g)) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Create a group from its JSON (with an organisation's token).
pub(super) fn create_entry(dir: &Directory, caller: &Caller, g: &Value) -> Result<Entry, ScimError> {
    let org = match &caller.0 {
        TokenScope::Organisation(dn) => dn.clone(),
        TokenScope::Cig => return Err(ScimError::invalid_value("groups are created with an organisation's token")),
    };
    let name = display_name(g)?;
    let members = or_placeholder(member_dns(dir, caller, &org, g)?);
    let dn = org.child(Rdn::single("ou", "groupes")).child(Rdn::single("cn", &name));
    let mut entry = Entry::new(dn.clone()).with("objectClass", ["groupOfNames"]).with("cn", [name.as_str()]);
    entry.add_values("member", members);
    apply(dir, caller, vec![Change::Add(entry)])?;
    groups(dir, dn, Filter::everything())?.pop().ok_or_else(|| ScimError::not_found("Group"))
}

pub async fn create(caller: Caller, State(ctx): State<Arc<ScimContext>>, body: Bytes) -> Result<Response, ScimError> {
    let g = parse_body(&body)?;
    blocking(move || {
        let dir = &ctx.directory;
        let created = create_entry(dir, &caller, &g)?;
        let mut r = respond(dir, StatusCode::CREATED, &created);
        let id = created.first_str("entryUUID").unwrap_or_default();
        if let Ok(loc) = HeaderValue::from_str(&format!("/scim/v2/Groups/{id}")) {
            r.headers_mut().insert(header::LOCATION, loc);
        }
        Ok(r)
    })
    .await
}

pub async fn read(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
) -> Result<Response, ScimError> {
    let dir = &ctx.directory;
    let g = find(dir, &caller, &id)?;
    Ok(respond(dir, StatusCode::OK, &g))
}

/// POST /Groups/.search (RFC 7644 §3.4.3).
pub async fn search_post(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<Response, ScimError> {
    let q = super::query::from_search_request(&parse_body(&body)?)?;
    list(caller, State(ctx), Query(q)).await
}

pub async fn list(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ScimError> {
    let params = super::query::ListParams::from_query(&q, ctx.max_results)?;
    let filter = match &params.filter {
        Some(f) => super::filter::parse_group(f, &ctx.directory)?,
        None => Filter::And(Vec::new()),
    };
    blocking(move || {
        let dir = &ctx.directory;
        let all: Vec<Value> = groups(dir, base_of(dir, &caller), filter)?.iter().map(|g| render(dir, g)).collect();
        Ok(params.respond(all))
    })
    .await
}

/// Make the group say what the Group JSON says (name and members), in one transaction.
fn write_group(dir: &Directory, caller: &Caller, entry: &Entry, g: &Value) -> Result<(), ScimError> {
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

/// PUT (`patch` false) or PATCH of a group.
pub(super) fn update_entry(
    dir: &Directory,
    caller: &Caller,
    id: &str,
    body: &Value,
    patch: bool,
    version: Option<&str>,
) -> Result<Entry, ScimError> {
    let entry = find(dir, caller, id)?;
    check_version(version, &entry)?;
    if patch {
        let mut doc = render(dir, &entry);
        super::patch::apply(&mut doc, body)?;
        write_group(dir, caller, &entry, &doc)?;
    } else {
        write_group(dir, caller, &entry, body)?;
    }
    find(dir, caller, id)
}

pub(super) fn delete_entry(dir: &Directory, caller: &Caller, id: &str, version: Option<&str>) -> Result<(), ScimError> {
    let entry = find(dir, caller, id)?;
    check_version(version, &entry)?;
    apply(dir, caller, vec![Change::Delete(entry.dn)])
}

fn if_match(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok())
}

pub async fn replace(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let g = parse_body(&body)?;
    blocking(move || {
        let dir = &ctx.directory;
        let updated = update_entry(dir, &caller, &id, &g, false, if_match(&headers))?;
        Ok(respond(dir, StatusCode::OK, &updated))
    })
    .await
}

pub async fn patch(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let ops = parse_body(&body)?;
    blocking(move || {
        let dir = &ctx.directory;
        let updated = update_entry(dir, &caller, &id, &ops, true, if_match(&headers))?;
        Ok(respond(dir, StatusCode::OK, &updated))
    })
    .await
}

pub async fn remove(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    blocking(move || {
        delete_entry(&ctx.directory, &caller, &id, if_match(&headers))?;
        Ok(axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT))
    })
    .await
}
