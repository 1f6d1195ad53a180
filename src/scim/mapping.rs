//! SCIM User JSON ⇄ directory entries (the mapping table of DESIGN.md).

use serde_json::{Value, json};

use super::ScimError;
use crate::directory::{Directory, Entry};

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
pub const AGENT: &str = "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent";

/// `20261123213000Z` → `2026-11-23T21:30:00Z` (RFC 7643 §2.3.5 dateTime).
pub fn iso_time(gt: &str) -> String {
    let b = gt.as_bytes();
    if b.len() < 15 || !b[..14].iter().all(u8::is_ascii_digit) {
        return gt.to_string();
    }
    format!("{}-{}-{}T{}:{}:{}Z", &gt[0..4], &gt[4..6], &gt[6..8], &gt[8..10], &gt[10..12], &gt[12..14])
}

/// The resource version (ETag) of an entry: its modification time and id.
pub fn version(entry: &Entry) -> String {
    format!(
        "W/\"{}-{}\"",
        entry.first_str("modifyTimestamp").unwrap_or(""),
        entry.first_str("entryUUID").map(|u| &u[..8.min(u.len())]).unwrap_or("")
    )
}

/// Render an agent entry as a SCIM User. `apps` are the cn of the
/// application groups it belongs to; `siren` its organisation's.
pub fn user_json(entry: &Entry, apps: &[String], siren: Option<&str>) -> Value {
    let s = |a: &str| entry.first_str(a).map(str::to_string);
    let all = |a: &str| -> Vec<String> {
        entry
            .get(a)
            .map(|x| x.values.iter().filter_map(|v| String::from_utf8(v.clone()).ok()).collect())
            .unwrap_or_default()
    };
    let id = s("entryUUID").unwrap_or_default();
    let mut u = json!({
        "schemas": [USER, ENTERPRISE, AGENT],
        "id": id,
        "userName": s("uid"),
        "active": !entry.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")),
        "meta": {
            "resourceType": "User",
            "created": s("createTimestamp").map(|t| iso_time(&t)),
            "lastModified": s("modifyTimestamp").map(|t| iso_time(&t)),
            "location": format!("/scim/v2/Users/{id}"),
            "version": version(entry),
        },
    });
    let mut name = serde_json::Map::new();
    for (k, a) in [("givenName", "givenName"), ("familyName", "sn"), ("formatted", "cn")] {
        if let Some(v) = s(a) {
            name.insert(k.into(), v.into());
        }
    }
    if !name.is_empty() {
        u["name"] = Value::Object(name);
    }
    for (k, a) in [("externalId", "cigExternalId"), ("displayName", "displayName"), ("title", "title")] {
        if let Some(v) = s(a) {
            u[k] = v.into();
        }
    }
    let mails = all("mail");
    if !mails.is_empty() {
        u["emails"] = mails
            .iter()
            .enumerate()
            .map(|(i, m)| json!({"value": m, "type": "work", "primary": i == 0}))
            .collect::<Vec<_>>()
            .into();
    }
    let mut phones: Vec<Value> =
        all("telephoneNumber").into_iter().map(|p| json!({"value": p, "type": "work"})).collect();
    phones.extend(all("mobile").into_iter().map(|p| json!({"value": p, "type": "mobile"})));
    if !phones.is_empty() {
        u["phoneNumbers"] = phones.into();
    }
    if !apps.is_empty() {
        u["entitlements"] = apps.iter().map(|a| json!({"value": a})).collect::<Vec<_>>().into();
    }
    let mut ent = serde_json::Map::new();
    if let Some(v) = s("employeeNumber") {
        ent.insert("employeeNumber".into(), v.into());
    }
    if let Some(v) = s("departmentNumber") {
        ent.insert("department".into(), v.into());
    }
    if !ent.is_empty() {
        u[ENTERPRISE] = Value::Object(ent);
    }
    let mut agent = serde_json::Map::new();
    if let Some(siren) = siren {
        agent.insert("siren".into(), siren.into());
    }
    if !apps.is_empty() {
        agent.insert("applications".into(), apps.to_vec().into());
    }
    if !agent.is_empty() {
        u[AGENT] = Value::Object(agent);
    }
    u
}

fn text(v: &Value, what: &str) -> Result<Option<String>, ScimError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(ScimError::invalid_value(format!("{what} must be a string"))),
    }
}

/// Values of a multi-valued complex attribute (`emails`, `phoneNumbers`),
/// primary first, optionally only those of a `type`.
fn multi(v: &Value, what: &str, kind: Option<&str>) -> Result<Vec<String>, ScimError> {
    let Some(items) = v.as_array() else {
        return if v.is_null() {
            Ok(Vec::new())
        } else {
            Err(ScimError::invalid_value(format!("{what} must be an array")))
        };
    };
    let mut out: Vec<(bool, String)> = Vec::new();
    for item in items {
        let t = item.get("type").and_then(Value::as_str);
        let keep = match kind {
            Some("mobile") => t == Some("mobile"),
            Some(_) => t != Some("mobile"),
            None => true,
        };
        if !keep {
            continue;
        }
        if let Some(value) = text(item.get("value").unwrap_or(&Value::Null), what)? {
            out.push((is_true(item.get("primary")), value));
        }
    }
    out.sort_by_key(|(primary, _)| !primary);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// Entra ID sends booleans as the strings "True" / "False".
pub fn is_true(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// LDAP attribute values, by attribute name (empty: the attribute is absent).
pub type LdapValues = Vec<(&'static str, Vec<Vec<u8>>)>;

/// The LDAP attribute values a User JSON asks for (every mapped attribute,
/// plus the password when one is given): what a PUT replaces.
pub fn user_attributes(u: &Value) -> Result<LdapValues, ScimError> {
    if !u.is_object() {
        return Err(ScimError::new(
            axum::http::StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            "a User is a JSON object",
        ));
    }
    let user_name = text(u.get("userName").unwrap_or(&Value::Null), "userName")?
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ScimError::invalid_value("userName is required"))?;
    let name = u.get("name").cloned().unwrap_or(Value::Null);
    let field = |v: &Value, k: &str| text(v.get(k).unwrap_or(&Value::Null), k);
    let given = field(&name, "givenName")?;
    let family = field(&name, "familyName")?;
    let display = field(u, "displayName")?;
    let formatted = field(&name, "formatted")?
        .or_else(|| match (&given, &family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            _ => None,
        })
        .or_else(|| display.clone())
        .unwrap_or_else(|| user_name.clone());
    let ent = u.get(ENTERPRISE).cloned().unwrap_or(Value::Null);
    let active = match u.get("active") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        // Entra ID sends "True" / "False".
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(ScimError::invalid_value("active must be a boolean")),
    };
    let one = |s: Option<String>| s.map(|v| vec![v.into_bytes()]).unwrap_or_default();
    let many = |v: Vec<String>| v.into_iter().map(String::into_bytes).collect::<Vec<_>>();
    let mut out = vec![
        ("uid", one(Some(user_name.clone()))),
        ("cigExternalId", one(field(u, "externalId")?)),
        ("givenName", one(given)),
        ("sn", one(family.or(Some(user_name)))),
        ("cn", one(Some(formatted))),
        ("displayName", one(display)),
        ("mail", many(multi(u.get("emails").unwrap_or(&Value::Null), "emails", None)?)),
        ("telephoneNumber", many(multi(u.get("phoneNumbers").unwrap_or(&Value::Null), "phoneNumbers", Some("work"))?)),
        ("mobile", many(multi(u.get("phoneNumbers").unwrap_or(&Value::Null), "phoneNumbers", Some("mobile"))?)),
        ("title", one(field(u, "title")?)),
        ("cigActive", vec![if active { b"TRUE".to_vec() } else { b"FALSE".to_vec() }]),
        ("employeeNumber", one(field(&ent, "employeeNumber")?)),
        ("departmentNumber", one(field(&ent, "department")?)),
    ];
    if let Some(pw) = field(u, "password")? {
        out.push(("userPassword", vec![pw.into_bytes()]));
    }
    Ok(out)
}

/// The application names in `entitlements`.
pub fn entitlements(u: &Value) -> Result<Vec<String>, ScimError> {
    let mut apps = multi(u.get("entitlements").unwrap_or(&Value::Null), "entitlements", None)?;
    apps.iter_mut().for_each(|a| *a = a.to_lowercase());
    apps.sort();
    apps.dedup();
    Ok(apps)
}

/// The applications (cn under ou=applications) an entry belongs to.
pub fn applications(dir: &Directory, entry: &Entry) -> Vec<String> {
    dir.normalize_dn(&entry.dn).map(|ndn| applications_of(dir, &ndn)).unwrap_or_default()
}

/// [`applications`] of the entry named `ndn` (normalised).
pub fn applications_of(dir: &Directory, ndn: &str) -> Vec<String> {
    let groups = match dir.member_of(ndn) {
        Ok(groups) if !groups.is_empty() => groups,
        _ => return Vec::new(),
    };
    let apps_suffix = format!(",ou=applications,{}", dir.suffix()).to_lowercase();
    let mut out: Vec<String> = groups
        .iter()
        .filter(|g| g.to_lowercase().ends_with(&apps_suffix))
        .filter_map(|g| crate::directory::Dn::parse(g).ok())
        .filter_map(|d| d.rdn().and_then(|r| r.avas.first()).map(|a| a.value.clone()))
        .collect();
    out.sort();
    out
}
