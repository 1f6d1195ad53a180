//! `/Users` (RFC 7644 §3.3–3.6): agents under their organisation's `ou=agents`.

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::Value;

use super::mapping::{self, AGENT};
use super::{Caller, ScimError};
use crate::directory::{
    Actor, AddMode, Change, Directory, Dn, Entry, Filter, ModOp, Modification, Rdn, Scope, SearchRequest, TokenScope,
    password,
};

/// Where a caller's users live: its organisation, or the whole tree for the CIG.
pub(super) fn base_of(dir: &Directory, caller: &Caller) -> Dn {
    match &caller.0 {
        TokenScope::Cig => dir.suffix().clone(),
        TokenScope::Organisation(dn) => dn.clone(),
    }
}

/// The actor the core judges and records in creatorsName / modifiersName and the audit trail.
pub(super) fn actor_of(caller: &Caller) -> Actor {
    caller.1.clone()
}

fn users_filter(extra: Filter) -> Filter {
    Filter::And(vec![Filter::Equality("objectClass".into(), b"inetOrgPerson".to_vec()), extra])
}

fn search(dir: &Directory, caller: &Caller, base: Dn, filter: Filter) -> Result<Vec<Entry>, ScimError> {
    let mut req = SearchRequest::new(base, Scope::Sub, users_filter(filter));
    req.attrs = vec!["*".into(), "+".into()];
    let mut out = Vec::new();
    dir.search(&caller.1.principal, &req, |e| {
        out.push(e);
        Ok(())
    })?;
    Ok(out)
}

/// The caller's user with this id; another organisation's is a 404, as if absent.
pub(super) fn find_user(dir: &Directory, caller: &Caller, id: &str) -> Result<Entry, ScimError> {
    let f = Filter::Equality("entryUUID".into(), id.as_bytes().to_vec());
    search(dir, caller, base_of(dir, caller), f)?.pop().ok_or_else(|| ScimError::not_found("User"))
}

/// The organisation an agent or group belongs to (the core's definition).
pub(super) fn organisation_of(dir: &Directory, dn: &Dn) -> Option<Entry> {
    dir.organisation(dn).ok().flatten()
}

/// What a User shows besides its entry: the applications it is granted and
/// its organisation's SIREN.
pub(super) struct Context {
    apps: Vec<String>,
    siren: Option<String>,
}

impl Context {
    pub(super) fn of(dir: &Directory, entry: &Entry) -> Context {
        // Normalised once for both lookups.
        let ndn = dir.normalize_dn(&entry.dn).ok();
        let siren = ndn.as_deref().and_then(|ndn| dir.organisation_siren(ndn).ok().flatten());
        let apps = ndn.as_deref().map(|ndn| mapping::applications_of(dir, ndn)).unwrap_or_default();
        Context { apps, siren }
    }

    pub(super) fn doc<'a>(&'a self, entry: &'a Entry) -> mapping::UserDoc<'a> {
        mapping::UserDoc::new(entry, &self.apps, self.siren.as_deref())
    }
}

pub(super) fn render(dir: &Directory, entry: &Entry) -> Value {
    Context::of(dir, entry).doc(entry).to_value()
}

pub(super) fn parse_body(body: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(body).map_err(|e| {
        ScimError::new(StatusCode::BAD_REQUEST, Some("invalidSyntax"), format!("the body is not valid JSON: {e}"))
    })
}

/// The application groups to add the user to / remove it from, checked
/// against the organisation's subscriptions (`cigApplication`): a request
/// naming an application its organisation does not subscribe to is refused whole.
fn grant_changes(
    dir: &Directory,
    org: &Entry,
    member: &str,
    wanted: &[String],
    current: &[String],
) -> Result<Vec<Change>, ScimError> {
    let subscribed: Vec<String> = org
        .get("cigApplication")
        .map(|a| a.values.iter().filter_map(|v| std::str::from_utf8(v).ok()).map(str::to_lowercase).collect())
        .unwrap_or_default();
    let mut changes = Vec::new();
    for app in wanted {
        if !subscribed.contains(app) {
            return Err(ScimError::invalid_value(format!(
                "the organisation does not subscribe to the application '{app}'"
            )));
        }
        if !current.iter().any(|c| c.eq_ignore_ascii_case(app)) {
            changes.push(app_change(dir, app, member, ModOp::Add));
        }
    }
    for app in current {
        if !wanted.iter().any(|w| w.eq_ignore_ascii_case(app)) {
            changes.push(app_change(dir, app, member, ModOp::Delete));
        }
    }
    Ok(changes)
}

fn app_change(dir: &Directory, app: &str, member: &str, op: ModOp) -> Change {
    let group = dir.suffix().child(Rdn::single("ou", "applications")).child(Rdn::single("cn", app));
    Change::Modify(group, vec![Modification { op, attr: "member".into(), values: vec![member.as_bytes().to_vec()] }])
}

/// Check and hash a plain password before the write transaction (argon2 takes milliseconds).
fn hash_passwords(
    dir: &Directory,
    caller: &Caller,
    attrs: &mut [(&'static str, Vec<Vec<u8>>)],
) -> Result<(), ScimError> {
    for (_, values) in attrs.iter_mut().filter(|(n, _)| *n == "userPassword") {
        for v in values.iter_mut() {
            if !password::is_hashed(v) {
                *v = dir.prepare_password(&caller.1, v)?;
            }
        }
    }
    Ok(())
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, "the operation failed"))?
}

pub(super) fn apply(dir: &Directory, caller: &Caller, changes: Vec<Change>) -> Result<(), ScimError> {
    dir.apply_batch(&actor_of(caller), changes.into_iter().map(Ok), AddMode::Client, |_| {})
        .map_err(refused)
        .map(|_| ())
}

/// A batch the core refused: it has already recorded the refusal in the audit trail.
pub(super) fn refused((_, e): (usize, crate::directory::DirectoryError)) -> ScimError {
    ScimError { audited: true, ..e.into() }
}

/// The changes that create a user from its JSON: its entry, then the
/// application groups it is granted.
pub(super) fn create_changes(dir: &Directory, caller: &Caller, u: &Value) -> Result<Vec<Change>, ScimError> {
    let org_dn = match &caller.0 {
        TokenScope::Organisation(dn) => dn.clone(),
        TokenScope::Cig => {
            let siren = u.get(AGENT).and_then(|a| a.get("siren")).and_then(Value::as_str).ok_or_else(|| {
                ScimError::invalid_value(format!("a CIG token must say where the user goes: {AGENT}:siren"))
            })?;
            dir.find_organisation(siren)?
        }
    };
    let mut attrs = mapping::user_attributes(u)?;
    hash_passwords(dir, caller, &mut attrs)?;
    let uid = attrs.iter().find(|(n, _)| *n == "uid").and_then(|(_, v)| v.first()).cloned().unwrap_or_default();
    let uid = String::from_utf8(uid).map_err(|_| ScimError::invalid_value("userName is not UTF-8"))?;
    let dn = org_dn.child(Rdn::single("ou", "agents")).child(Rdn::single("uid", &uid));
    let wanted = mapping::entitlements(u)?;
    // The organisation's entry says which applications it subscribes to:
    // read only when some are asked for (an organisation that is gone
    // fails the add itself, its ou=agents being gone too).
    let grants = if wanted.is_empty() {
        Vec::new()
    } else {
        let org = dir.get(&org_dn)?.ok_or_else(|| ScimError::not_found("organisation"))?;
        grant_changes(dir, &org, &dn.to_string(), &wanted, &[])?
    };
    let mut entry = Entry::new(dn).with("objectClass", ["inetOrgPerson", "cigAgent"]);
    for (name, values) in attrs.into_iter().filter(|(_, v)| !v.is_empty()) {
        entry.add_values(name, values);
    }
    let mut changes = vec![Change::Add(entry)];
    changes.extend(grants);
    Ok(changes)
}

/// RFC 7644 §3.14: the version a client expects (`If-Match`, or a Bulk
/// operation's `version`) must be the entry's current one, or `*`.
pub(super) fn check_version(wanted: Option<&str>, entry: &Entry) -> Result<(), ScimError> {
    let Some(wanted) = wanted else { return Ok(()) };
    let current = mapping::version(entry);
    if wanted.split(',').map(str::trim).any(|w| w == "*" || w == current) {
        Ok(())
    } else {
        Err(ScimError::new(StatusCode::PRECONDITION_FAILED, None, format!("the resource is at version {current}")))
    }
}

/// Make the entry say what the User JSON `u` says: every mapped attribute
/// replaced, uid renamed, applications granted or revoked, in one transaction.
pub(super) fn write_user(dir: &Directory, caller: &Caller, entry: &Entry, u: &Value) -> Result<(), ScimError> {
    let org = organisation_of(dir, &entry.dn).ok_or_else(|| ScimError::not_found("organisation"))?;
    let mut attrs = mapping::user_attributes(u)?;
    hash_passwords(dir, caller, &mut attrs)?;
    let mut changes = Vec::new();
    let mut dn = entry.dn.clone();
    let new_uid = attrs.iter().find(|(n, _)| *n == "uid").and_then(|(_, v)| v.first()).cloned().unwrap_or_default();
    let new_uid = String::from_utf8(new_uid).map_err(|_| ScimError::invalid_value("userName is not UTF-8"))?;
    if entry.first_str("uid").is_none_or(|old| old != new_uid) {
        let rdn = Rdn::single("uid", &new_uid);
        changes.push(Change::Rename { dn: dn.clone(), new_rdn: rdn.clone(), delete_old_rdn: true, new_superior: None });
        dn = dn.parent().child(rdn);
    }
    let mut mods = Vec::new();
    let has_class =
        entry.get("objectClass").is_some_and(|a| a.values.iter().any(|v| v.eq_ignore_ascii_case(b"cigAgent")));
    if !has_class {
        mods.push(Modification::new(ModOp::Add, "objectClass", ["cigAgent"]));
    }
    for (name, values) in attrs.into_iter().filter(|(n, _)| *n != "uid") {
        mods.push(Modification { op: ModOp::Replace, attr: name.into(), values });
    }
    changes.push(Change::Modify(dn.clone(), mods));
    let current = mapping::applications(dir, entry);
    changes.extend(grant_changes(dir, &org, &dn.to_string(), &mapping::entitlements(u)?, &current)?);
    apply(dir, caller, changes)
}

/// The caller's users matching a SCIM filter.
pub(super) fn list_entries(dir: &Directory, caller: &Caller, filter: Option<&str>) -> Result<Vec<Entry>, ScimError> {
    let filter = match filter {
        Some(f) => super::filter::parse(f)?,
        None => Filter::And(Vec::new()),
    };
    search(dir, caller, base_of(dir, caller), filter)
}
