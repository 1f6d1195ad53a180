//! SCIM User JSON ⇄ directory entries (the mapping table of DESIGN.md).

use serde::Serialize;
use serde_json::Value;

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
    // Pieces pushed in place: `format!` costs ten times as much, twice per rendered user.
    let mut out = String::with_capacity(20);
    for (piece, sep) in [(0..4, "-"), (4..6, "-"), (6..8, "T"), (8..10, ":"), (10..12, ":"), (12..14, "Z")] {
        out.push_str(&gt[piece]);
        out.push_str(sep);
    }
    out
}

/// The resource version (ETag) of an entry: its modification time and id.
pub fn version(entry: &Entry) -> String {
    let modified = entry.first_str("modifyTimestamp").unwrap_or("");
    let uuid = entry.first_str("entryUUID").unwrap_or("");
    let uuid = uuid.get(..8).unwrap_or(uuid);
    let mut out = String::with_capacity(modified.len() + uuid.len() + 5);
    for piece in ["W/\"", modified, "-", uuid, "\""] {
        out.push_str(piece);
    }
    out
}

/// An agent entry as a SCIM User, borrowed from the entry: serialised
/// straight to the response body, or to a `Value` when a projection or a
/// PATCH needs the document. Fields in the order of RFC 7643 §8.2's example.
#[derive(Debug, Serialize)]
pub struct UserDoc<'a> {
    schemas: [&'static str; 3],
    id: &'a str,
    #[serde(rename = "userName")]
    user_name: Option<&'a str>,
    #[serde(rename = "externalId", skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Name::is_empty")]
    name: Name<'a>,
    #[serde(rename = "displayName", skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    active: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    emails: Vec<Contact<'a>>,
    #[serde(rename = "phoneNumbers", skip_serializing_if = "Vec::is_empty")]
    phone_numbers: Vec<Contact<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entitlements: Vec<Entitlement<'a>>,
    #[serde(
        rename = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        skip_serializing_if = "Enterprise::is_empty"
    )]
    enterprise: Enterprise<'a>,
    #[serde(
        rename = "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent",
        skip_serializing_if = "Agent::is_empty"
    )]
    agent: Agent<'a>,
    meta: Meta,
}

#[derive(Debug, Serialize)]
struct Name<'a> {
    #[serde(rename = "givenName", skip_serializing_if = "Option::is_none")]
    given_name: Option<&'a str>,
    #[serde(rename = "familyName", skip_serializing_if = "Option::is_none")]
    family_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    formatted: Option<&'a str>,
}

impl Name<'_> {
    fn is_empty(&self) -> bool {
        self.given_name.is_none() && self.family_name.is_none() && self.formatted.is_none()
    }
}

/// An email or a phone number.
#[derive(Debug, Serialize)]
struct Contact<'a> {
    value: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary: Option<bool>,
}

#[derive(Debug, Serialize)]
struct Entitlement<'a> {
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct Enterprise<'a> {
    #[serde(rename = "employeeNumber", skip_serializing_if = "Option::is_none")]
    employee_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
}

impl Enterprise<'_> {
    fn is_empty(&self) -> bool {
        self.employee_number.is_none() && self.department.is_none()
    }
}

#[derive(Debug, Serialize)]
struct Agent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    siren: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    applications: &'a [String],
}

impl Agent<'_> {
    fn is_empty(&self) -> bool {
        self.siren.is_none() && self.applications.is_empty()
    }
}

#[derive(Debug, Serialize)]
struct Meta {
    #[serde(rename = "resourceType")]
    resource_type: &'static str,
    created: Option<String>,
    #[serde(rename = "lastModified")]
    last_modified: Option<String>,
    location: String,
    version: String,
}

impl<'a> UserDoc<'a> {
    /// The User for an agent entry. `apps` are the cn of the application
    /// groups it belongs to; `siren` its organisation's.
    pub fn new(entry: &'a Entry, apps: &'a [String], siren: Option<&'a str>) -> UserDoc<'a> {
        let s = |a: &str| entry.first_str(a);
        let all = |a: &str| {
            entry
                .get(a)
                .map(|x| x.values.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|v| std::str::from_utf8(v).ok())
        };
        let id = s("entryUUID").unwrap_or_default();
        let emails =
            all("mail").enumerate().map(|(i, m)| Contact { value: m, kind: "work", primary: Some(i == 0) }).collect();
        let phone_numbers = all("telephoneNumber")
            .map(|p| Contact { value: p, kind: "work", primary: None })
            .chain(all("mobile").map(|p| Contact { value: p, kind: "mobile", primary: None }))
            .collect();
        UserDoc {
            schemas: [USER, ENTERPRISE, AGENT],
            id,
            user_name: s("uid"),
            external_id: s("cigExternalId"),
            name: Name { given_name: s("givenName"), family_name: s("sn"), formatted: s("cn") },
            display_name: s("displayName"),
            title: s("title"),
            active: !s("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")),
            emails,
            phone_numbers,
            entitlements: apps.iter().map(|a| Entitlement { value: a }).collect(),
            enterprise: Enterprise { employee_number: s("employeeNumber"), department: s("departmentNumber") },
            agent: Agent { siren, applications: apps },
            meta: Meta {
                resource_type: "User",
                created: s("createTimestamp").map(iso_time),
                last_modified: s("modifyTimestamp").map(iso_time),
                location: format!("/scim/v2/Users/{id}"),
                version: version(entry),
            },
        }
    }

    /// The document as a JSON value, for projections and PATCH.
    pub fn to_value(&self) -> Value {
        // Only string keys and plain values: serialising cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The document as a response body.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn location(&self) -> &str {
        &self.meta.location
    }
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
