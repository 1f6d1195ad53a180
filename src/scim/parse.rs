//! A SCIM document → the LDAP values it asks for, row by row of a mapping
//! table: every value checked against its type (RFC 7643 §2.3), names
//! matched case-insensitively (§2.1), unknown attributes ignored (RFC 7644
//! §3.3) and read-only ones left to the server (§3.5.1).

use serde_json::{Map, Value};

use super::ScimError;
use super::elements::{self, Syntax};
use super::mapping::{Attr, COMMON_ATTRS, Fill, Home, Resource, Type, generalized_time, iso_time};
use super::render::filled_value;

/// What a document asks of the directory.
#[derive(Debug, Default)]
pub struct Parsed {
    /// Every LDAP attribute the mapping writes, with its new values (none: absent).
    pub values: Vec<(&'static str, Vec<Vec<u8>>)>,
    /// Required attributes the server filled (`cigScimFilled`).
    pub filled: Vec<&'static str>,
    /// A new password, in clear: the core checks and hashes it.
    pub password: Option<Vec<u8>>,
    /// Attributes holding a reference (the manager), with the id of the
    /// resource it names; the resource's code turns it into a DN.
    pub references: Vec<(&'static str, Option<String>)>,
    /// The applications granted (entitlements); `None` when the document does not say.
    pub applications: Option<Vec<String>>,
    /// The document as stored: what reading it back gives, but for what the
    /// server computes (id, meta, groups, a reference's `$ref` and display).
    pub doc: Map<String, Value>,
}

impl Parsed {
    /// The first new value of an LDAP attribute, as text.
    pub fn first(&self, ldap: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(ldap))
            .and_then(|(_, v)| v.first())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// A key of an object, case-insensitively (RFC 7643 §2.1).
pub fn get_ci<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| obj.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v))
}

/// Parse a resource document (a POST or PUT body, or a patched document).
pub fn parse(res: &Resource, doc: &Value, syntax: &dyn Syntax) -> Result<Parsed, ScimError> {
    let Value::Object(root) = doc else {
        return Err(ScimError::invalid_syntax(format!("a {} is a JSON object", res.name)));
    };
    let mut parsed = Parsed::default();
    let mut required = Vec::new();
    let mut doc = Map::new();
    table(COMMON_ATTRS, root, syntax, &mut parsed, &mut required, &mut doc)?;
    table(res.core.attrs, root, syntax, &mut parsed, &mut required, &mut doc)?;
    let empty = Map::new();
    for ext in res.extensions {
        let inner = match get_ci(root, ext.id) {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(o)) => o,
            Some(_) => return Err(ScimError::invalid_value(format!("{} must be an object", ext.id))),
        };
        let mut ext_doc = Map::new();
        table(ext.attrs, inner, syntax, &mut parsed, &mut required, &mut ext_doc)?;
        if !ext_doc.is_empty() {
            doc.insert(ext.id.to_string(), Value::Object(ext_doc));
        }
    }
    parsed.doc = doc;
    for (ldap, fill) in required {
        let family = if ldap == "sn" { None } else { parsed.first("sn").map(str::to_string) };
        let value = filled_value(
            fill,
            parsed.first("uid"),
            parsed.first("givenName"),
            family.as_deref(),
            parsed.first("displayName"),
        );
        if let Some(v) = value {
            parsed.values.push((ldap, vec![v.into_bytes()]));
            parsed.filled.push(ldap);
        }
    }
    Ok(parsed)
}

fn table(
    attrs: &[Attr],
    obj: &Map<String, Value>,
    syntax: &dyn Syntax,
    parsed: &mut Parsed,
    required: &mut Vec<(&'static str, Fill)>,
    doc: &mut Map<String, Value>,
) -> Result<(), ScimError> {
    // Each key of the document matched to its row once (names are case-insensitive).
    let mut found: Vec<Option<&Value>> = vec![None; attrs.len()];
    for (k, v) in obj {
        if let Some(i) = attrs.iter().position(|a| a.name.eq_ignore_ascii_case(k)) {
            found[i] = Some(v);
        }
    }
    for (attr, given) in attrs.iter().zip(found) {
        let present = given.is_some();
        let given = given.filter(|v| !v.is_null());
        if attr.required && attr.writable() && given.is_none_or(|v| v.as_str().is_some_and(|s| s.trim().is_empty())) {
            return Err(ScimError::invalid_value(format!("{} is required", attr.name)));
        }
        if !attr.writable() {
            continue;
        }
        let given = given.unwrap_or(&Value::Null);
        match attr.home {
            Home::Server => {}
            Home::Ldap(ldap) if attr.ty == Type::DateTime => {
                // Kept as a GeneralizedTime in UTC (RFC 4517 §3.3.13), shown back in RFC 3339.
                let values = text(attr, given)?;
                let times: Vec<Vec<u8>> = (values.iter().filter_map(|v| std::str::from_utf8(v).ok()))
                    .filter_map(generalized_time)
                    .map(String::into_bytes)
                    .collect();
                if let Some(t) = times.first().and_then(|t| std::str::from_utf8(t).ok()) {
                    doc.insert(attr.name.into(), Value::String(iso_time(t)));
                }
                parsed.values.push((ldap, times));
            }
            Home::Ldap(ldap) => {
                let values = text(attr, given)?;
                keep_text(doc, attr, &values);
                parsed.values.push((ldap, values));
            }
            Home::Required(ldap, fill) => {
                let values = text(attr, given)?;
                if values.is_empty() {
                    required.push((ldap, fill));
                } else {
                    keep_text(doc, attr, &values);
                    parsed.values.push((ldap, values));
                }
            }
            Home::Active(ldap) => {
                let on = match elements::scalar(attr, attr, given)? {
                    Some(Value::Bool(b)) => b,
                    _ => true,
                };
                // Written explicitly: legacy applications filter on (cigActive=TRUE).
                parsed.values.push((ldap, vec![if on { b"TRUE".to_vec() } else { b"FALSE".to_vec() }]));
                doc.insert(attr.name.into(), Value::Bool(on));
            }
            Home::Parts => {
                let empty = Map::new();
                let inner = match given {
                    Value::Null => &empty,
                    Value::Object(o) => o,
                    _ => return Err(ScimError::invalid_value(format!("{} must be an object", attr.name))),
                };
                let mut sub_doc = Map::new();
                table(attr.subs, inner, syntax, parsed, required, &mut sub_doc)?;
                if !sub_doc.is_empty() {
                    doc.insert(attr.name.into(), Value::Object(sub_doc));
                }
            }
            Home::Elements(el) => {
                let elems = elements::canonical(attr, given)?;
                let written = if elems.is_empty() { elements::none(el) } else { elements::write(el, &elems, syntax) };
                if !elems.is_empty() {
                    doc.insert(attr.name.into(), Value::Array(elems.into_iter().map(Value::Object).collect()));
                }
                parsed.values.push((el.store, written.store));
                parsed.values.extend(written.mirrors);
                if written.applications.is_some() {
                    // Entitlements the document does not mention are left as they are (see users::write).
                    parsed.applications = if present { written.applications } else { None };
                }
            }
            Home::Password => {
                if let Some(Value::String(p)) = elements::scalar(attr, attr, given)? {
                    parsed.password = Some(p.into_bytes());
                }
            }
            Home::Reference(ldap) => {
                let id = match given {
                    Value::Null => None,
                    // Entra ID sends the manager's id alone.
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => match get_ci(o, "value") {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) if s.is_empty() => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(_) => {
                            return Err(ScimError::invalid_value(format!("{}.value must be a string", attr.name)));
                        }
                    },
                    _ => return Err(ScimError::invalid_value(format!("{} must be an object", attr.name))),
                };
                if let Some(id) = &id {
                    let mut m = Map::new();
                    m.insert("value".into(), Value::String(id.clone()));
                    doc.insert(attr.name.into(), Value::Object(m));
                }
                parsed.references.push((ldap, id));
            }
        }
    }
    Ok(())
}

/// A simple value, in the document as stored.
fn keep_text(doc: &mut Map<String, Value>, attr: &Attr, values: &[Vec<u8>]) {
    if let Some(v) = values.first().and_then(|v| std::str::from_utf8(v).ok()) {
        doc.insert(attr.name.into(), Value::String(v.to_string()));
    }
}

/// A single-valued simple attribute's value, as the LDAP value.
fn text(attr: &Attr, v: &Value) -> Result<Vec<Vec<u8>>, ScimError> {
    if attr.ty == Type::Complex || attr.multi {
        return Err(ScimError::invalid_value(format!("{} is not a simple attribute", attr.name)));
    }
    Ok(match elements::scalar(attr, attr, v)? {
        Some(Value::String(s)) => vec![s.into_bytes()],
        _ => Vec::new(),
    })
}
