//! `/Users` (RFC 7644 §3.3–3.6): agents under their organisation's
//! `ou=agents`, rendered and parsed through the User mapping table. What
//! the caller may do is the access policy's call, in the core: this module
//! only says what the document asks for.

use serde_json::{Map, Value, json};

use super::lookup::{self, Memberships};
use super::mapping::user::{AGENT, AGENT_SCHEMA, ENTERPRISE, ENTERPRISE_SCHEMA, USER, USER_SCHEMA, USERS};
use super::mapping::{COMMON_ATTRS, iso_time};
use super::parse::{self, Parsed};
use super::render::{self, DirSyntax, Sources};
use super::{Caller, ScimError};
use crate::directory::request::version;
use crate::directory::{Change, Directory, Dn, Entry, ModOp, Modification, Rdn, lifecycle};

/// Everything a User shows besides its entry.
pub(super) struct Context {
    memberships: Memberships,
    /// The SCIM Groups it is in: (id, DN, display name).
    groups: Vec<(String, String, String)>,
    siren: Option<String>,
}

impl Context {
    pub(super) fn of(dir: &Directory, caller: &Caller, entry: &Entry) -> Context {
        // Normalised once for both lookups.
        let ndn = dir.normalize_dn(&entry.dn).ok();
        let memberships = Memberships::of_ndn(dir, ndn.as_deref());
        let scim_groups = memberships.scim_groups();
        let groups = if scim_groups.is_empty() {
            Vec::new()
        } else {
            let found = dir.read_many(&caller.1.principal, &scim_groups, &["entryUUID", "cn"]).unwrap_or_default();
            scim_groups
                .iter()
                .zip(found)
                .filter_map(|(dn, e)| {
                    let e = e?;
                    Some((
                        e.first_str("entryUUID")?.to_string(),
                        dn.to_string(),
                        e.first_str("cn").unwrap_or("").to_string(),
                    ))
                })
                .collect()
        };
        let siren = ndn.as_deref().and_then(|ndn| dir.organisation_siren(ndn).ok().flatten());
        Context { memberships, groups, siren }
    }
}

/// The User an agent entry is, as the caller sees it.
pub(super) fn render(dir: &Directory, caller: &Caller, entry: &Entry) -> Value {
    let ctx = Context::of(dir, caller, entry);
    let syntax = DirSyntax(dir.schema());
    let resolve = |dn: &str| -> Option<render::Referenced> {
        let found = dir.read_many(&caller.1.principal, &[dn], &["entryUUID", "displayName", "cn"]).ok()?.pop()??;
        let display = found.first_str("displayName").or(found.first_str("cn")).map(str::to_string);
        Some((found.first_str("entryUUID")?.to_string(), display))
    };
    let src = Sources { entry, applications: &ctx.memberships.applications, syntax: &syntax, resolve: &resolve };
    let id = entry.first_str("entryUUID").unwrap_or_default().to_string();
    let mut doc = Map::new();
    doc.insert("id".into(), Value::String(id.clone()));
    render::attributes(COMMON_ATTRS, &src, &mut doc);
    render::attributes(USER_SCHEMA.attrs, &src, &mut doc);
    if !ctx.groups.is_empty() {
        let groups: Vec<Value> = ctx
            .groups
            .iter()
            .map(|(gid, _, display)| {
                json!({"value": gid, "$ref": format!("/scim/v2/Groups/{gid}"), "display": display, "type": "direct"})
            })
            .collect();
        doc.insert("groups".into(), Value::Array(groups));
    }
    let mut schemas = vec![Value::String(USER.into())];
    let mut enterprise = Map::new();
    render::attributes(ENTERPRISE_SCHEMA.attrs, &src, &mut enterprise);
    if !enterprise.is_empty() {
        schemas.push(ENTERPRISE.into());
        doc.insert(ENTERPRISE.into(), Value::Object(enterprise));
    }
    let mut agent = Map::new();
    render::attributes(AGENT_SCHEMA.attrs, &src, &mut agent);
    agent.insert("status".into(), lifecycle::standing(entry).into());
    if let Some(s) = &ctx.siren {
        agent.insert("siren".into(), Value::String(s.clone()));
    }
    if !ctx.memberships.applications.is_empty() {
        agent.insert("applications".into(), json!(ctx.memberships.applications));
    }
    if !agent.is_empty() {
        schemas.push(AGENT.into());
        doc.insert(AGENT.into(), Value::Object(agent));
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    doc.insert("meta".into(), meta(entry, "User", &id, &ctx.memberships.groups));
    Value::Object(doc)
}

/// RFC 7643 §3.1 `meta`.
pub(super) fn meta(entry: &Entry, resource_type: &str, id: &str, memberships: &[String]) -> Value {
    let mut m = Map::new();
    m.insert("resourceType".into(), resource_type.into());
    if let Some(t) = entry.first_str("createTimestamp") {
        m.insert("created".into(), iso_time(t).into());
    }
    if let Some(t) = entry.first_str("modifyTimestamp") {
        m.insert("lastModified".into(), iso_time(t).into());
    }
    m.insert("location".into(), format!("/scim/v2/{resource_type}s/{id}").into());
    m.insert("version".into(), version(entry, memberships).into());
    Value::Object(m)
}

/// The version of a User as the precondition check computes it.
pub(super) fn version_of(dir: &Directory, entry: &Entry) -> String {
    version(entry, &Memberships::of(dir, entry).groups)
}

/// The DN a reference's id names, as the caller sees it (a manager must be
/// a User), and its display name.
fn reference_dn(dir: &Directory, caller: &Caller, attr: &str, id: &str) -> Result<(Dn, Option<String>), ScimError> {
    let found = dir.read_by_uuid(&caller.1.principal, id, &["objectClass", "displayName", "cn"])?;
    let base = dir.normalize_dn(&lookup::base_of(dir, caller))?;
    match found {
        Some(e)
            if lookup::has_class(&e, "person")
                && dir.normalize_dn(&e.dn).is_ok_and(|n| crate::directory::dn::is_under(&n, &base)) =>
        {
            let display = e.first_str("displayName").or(e.first_str("cn")).map(str::to_string);
            Ok((e.dn, display))
        }
        _ => Err(ScimError::invalid_value(format!("{attr}: no user with id {id}"))),
    }
}

fn parse_user(dir: &Directory, doc: &Value) -> Result<Parsed, ScimError> {
    parse::parse(&USERS, doc, &DirSyntax(dir.schema()))
}

/// The changes that create a user: its entry, then the application groups
/// it is granted; and the User as stored, but for what the server computes.
pub(super) fn create_changes(dir: &Directory, caller: &Caller, doc: &Value) -> Result<(Vec<Change>, Value), ScimError> {
    let named = doc.get(AGENT).and_then(|a| a.get("siren")).and_then(Value::as_str);
    let org_dn = lookup::organisation_for(dir, caller, named, "user", AGENT)?;
    let mut parsed = parse_user(dir, doc)?;
    let uid = parsed.first("uid").ok_or_else(|| ScimError::invalid_value("userName is required"))?.to_string();
    let dn = org_dn.child(Rdn::single("ou", "agents")).child(Rdn::single("uid", &uid));
    let mut entry = Entry::new(dn.clone()).with("objectClass", ["inetOrgPerson", "cigAgent"]);
    // Each LDAP attribute once in the mapping: appended, not looked up.
    for (name, values) in std::mem::take(&mut parsed.values).into_iter().filter(|(_, v)| !v.is_empty()) {
        entry.attrs.push(crate::directory::Attribute { name: name.to_string(), values });
    }
    if !parsed.filled.is_empty() {
        entry.add_values("cigScimFilled", parsed.filled.iter().map(|f| f.as_bytes().to_vec()));
    }
    if let Some(p) = &parsed.password {
        entry.add_values("userPassword", [p.clone()]);
    }
    for (attr, id) in &parsed.references {
        if let Some(id) = id {
            let (target, display) = reference_dn(dir, caller, attr, id)?;
            entry.add_values(attr, [target.to_string().into_bytes()]);
            // The manager as a GET shows it.
            if let Some(Value::Object(m)) = parsed.doc.get_mut(ENTERPRISE).and_then(|e| e.get_mut("manager")) {
                m.insert("$ref".into(), format!("/scim/v2/Users/{id}").into());
                if let Some(d) = display {
                    m.insert("displayName".into(), d.into());
                }
            }
        }
    }
    let mut changes = vec![Change::Add(entry)];
    for app in parsed.applications.iter().flatten() {
        changes.push(grant(dir, app, &dn, ModOp::Add));
    }
    let mut answer = parsed.doc;
    if let Some(mut apps) = parsed.applications.filter(|a| !a.is_empty()) {
        apps.sort();
        answer.insert(AGENT.into(), json!({"applications": apps}));
    }
    Ok((changes, Value::Object(answer)))
}

/// The User just created, from the document it was created with (what a
/// GET reads back, without rendering the entry again): the server's id,
/// meta and SIREN added.
pub(super) fn created(dir: &Directory, entry: &Entry, answer: Value) -> Value {
    let Value::Object(mut doc) = answer else { return answer };
    let id = entry.first_str("entryUUID").unwrap_or_default().to_string();
    doc.insert("id".into(), Value::String(id.clone()));
    let siren = dir.normalize_dn(&entry.dn).ok().and_then(|ndn| dir.organisation_siren(&ndn).ok().flatten());
    let mut agent = match doc.remove(AGENT) {
        Some(Value::Object(a)) => a,
        _ => Map::new(),
    };
    let applications: Vec<String> = agent
        .get("applications")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(s) = siren {
        agent.insert("siren".into(), s.into());
    }
    agent.insert("status".into(), lifecycle::standing(entry).into());
    let mut schemas = vec![Value::String(USER.into())];
    if doc.contains_key(ENTERPRISE) {
        schemas.push(ENTERPRISE.into());
    }
    if !agent.is_empty() {
        schemas.push(AGENT.into());
        doc.insert(AGENT.into(), Value::Object(agent));
    }
    doc.insert("schemas".into(), Value::Array(schemas));
    let memberships: Vec<String> = applications.iter().map(|a| lookup::application_dn(dir, a).to_string()).collect();
    doc.insert("meta".into(), meta(entry, "User", &id, &memberships));
    Value::Object(doc)
}

fn grant(dir: &Directory, app: &str, member: &Dn, op: ModOp) -> Change {
    let values = vec![member.to_string().into_bytes()];
    let mut mods = vec![Modification { op, attr: "member".into(), values }];
    if op == ModOp::Delete {
        // The application's group keeps the placeholder when its last member goes.
        mods.push(crate::directory::keep_placeholder_member());
    }
    Change::Modify(lookup::application_dn(dir, app), mods)
}

/// The values an entry holds of an attribute.
fn current<'a>(entry: &'a Entry, attr: &str) -> &'a [Vec<u8>] {
    entry.get(attr).map(|a| a.values.as_slice()).unwrap_or_default()
}

/// The changes that make the entry say what the document says: mapped
/// attributes that differ replaced, uid renamed, applications granted or
/// revoked. `complete`: the document is the whole resource (a patched
/// one), so that an attribute it lacks is cleared; a PUT body that does
/// not mention `entitlements` leaves the grants as they are (RFC 7644
/// §3.5.1 lets the server choose; référents grant applications over LDAP
/// too, and an HR system's PUT must not revoke them).
pub(super) fn write_changes(
    dir: &Directory,
    caller: &Caller,
    entry: &Entry,
    doc: &Value,
    complete: bool,
) -> Result<Vec<Change>, ScimError> {
    let parsed = parse_user(dir, doc)?;
    let mut changes = Vec::new();
    let mut dn = entry.dn.clone();
    let uid = parsed.first("uid").ok_or_else(|| ScimError::invalid_value("userName is required"))?.to_string();
    if entry.first_str("uid").is_none_or(|old| old != uid) {
        let rdn = Rdn::single("uid", &uid);
        changes.push(Change::Rename { dn: dn.clone(), new_rdn: rdn.clone(), delete_old_rdn: true, new_superior: None });
        dn = dn.parent().child(rdn);
    }
    let mut mods = Vec::new();
    if !lookup::has_class(entry, "cigAgent") {
        mods.push(Modification::new(ModOp::Add, "objectClass", ["cigAgent"]));
    }
    let filled: Vec<Vec<u8>> = parsed.filled.iter().map(|f| f.as_bytes().to_vec()).collect();
    let values = parsed.values.iter().filter(|(n, _)| *n != "uid").map(|(n, v)| (*n, v.clone()));
    // Outside its dates an account reads `active: false` whatever its flag:
    // that false, sent back, is what the dates say, not a suspension (a PUT
    // of what a GET read changes nothing).
    let flag = USERS.active_flag();
    let dated_out = lifecycle::validity_of(entry, &lifecycle::now_instant()) != lifecycle::Validity::Open;
    for (name, values) in values.chain([("cigScimFilled", filled)]) {
        let suspends = values.first().is_some_and(|v| v.eq_ignore_ascii_case(b"FALSE"));
        let suspended = current(entry, name).first().is_some_and(|v| v.eq_ignore_ascii_case(b"FALSE"));
        if Some(name) == flag && dated_out && suspends && !suspended {
            continue;
        }
        if !same_values(current(entry, name), &values) {
            mods.push(Modification { op: ModOp::Replace, attr: name.into(), values });
        }
    }
    if let Some(p) = &parsed.password {
        mods.push(Modification { op: ModOp::Replace, attr: "userPassword".into(), values: vec![p.clone()] });
    }
    for (attr, id) in &parsed.references {
        let values = match id {
            Some(id) => vec![reference_dn(dir, caller, attr, id)?.0.to_string().into_bytes()],
            None => Vec::new(),
        };
        let same = match (current(entry, attr).first(), values.first()) {
            (Some(a), Some(b)) => dir
                .schema()
                .attr_of(attr)
                .is_ok_and(|(_, at)| dir.schema().normalize_eq(at, a).ok() == dir.schema().normalize_eq(at, b).ok()),
            (None, None) => true,
            _ => false,
        };
        if !same {
            mods.push(Modification { op: ModOp::Replace, attr: (*attr).into(), values });
        }
    }
    if !mods.is_empty() {
        changes.push(Change::Modify(dn.clone(), mods));
    }
    let wanted = match (&parsed.applications, complete) {
        (Some(apps), _) => Some(apps.clone()),
        (None, true) => Some(Vec::new()),
        (None, false) => None,
    };
    if let Some(wanted) = wanted {
        let held = Memberships::of(dir, entry).applications;
        for app in &wanted {
            if !held.iter().any(|h| h.eq_ignore_ascii_case(app)) {
                changes.push(grant(dir, app, &dn, ModOp::Add));
            }
        }
        for app in &held {
            if !wanted.iter().any(|w| w.eq_ignore_ascii_case(app)) {
                changes.push(grant(dir, app, &dn, ModOp::Delete));
            }
        }
    }
    Ok(changes)
}

/// Whether two value lists hold the same values, in the same order (the
/// first mail is the one applications use).
fn same_values(a: &[Vec<u8>], b: &[Vec<u8>]) -> bool {
    a == b
}
