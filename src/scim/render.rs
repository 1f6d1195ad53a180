//! An entry → the attributes of a SCIM document, row by row of a mapping
//! table. What the server computes (id, meta, groups, members …) is added
//! by the resource's own code.

use serde_json::{Map, Value};

use super::elements::{self, Stored, Syntax};
use super::mapping::{Attr, Fill, Home, Type, iso_time};
use crate::directory::{Entry, Schema, lifecycle};

/// The directory's schema as the elements need it.
pub struct DirSyntax<'a>(pub &'a Schema);

impl Syntax for DirSyntax<'_> {
    fn accepts(&self, ldap: &str, value: &[u8]) -> bool {
        self.0.accepts(ldap, value)
    }

    fn same(&self, ldap: &str, a: &[u8], b: &[u8]) -> bool {
        let Ok((_, attr)) = self.0.attr_of(ldap) else { return a == b };
        match (self.0.normalize_eq(attr, a), self.0.normalize_eq(attr, b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        }
    }
}

/// A referenced resource: its id and display name.
pub type Referenced = (String, Option<String>);

/// What rendering reads besides the tables.
pub struct Sources<'a> {
    pub entry: &'a Entry,
    /// The applications the entry is granted (entitlements).
    pub applications: &'a [String],
    pub syntax: &'a dyn Syntax,
    /// The resource a DN names (its id and display name), for references
    /// (the enterprise manager); `None` when the caller may not see it.
    pub resolve: &'a dyn Fn(&str) -> Option<Referenced>,
}

impl Sources<'_> {
    fn values(&self, ldap: &str) -> Vec<&[u8]> {
        match self.entry.get(ldap) {
            Some(a) => a.values.iter().map(Vec::as_slice).collect(),
            None => Vec::new(),
        }
    }

    fn first(&self, ldap: &str) -> Option<&str> {
        self.entry.first_str(ldap)
    }
}

/// The value the server fills a required LDAP attribute with, from the
/// other values of the entry (the client's).
pub fn filled_value(
    fill: Fill,
    user_name: Option<&str>,
    given: Option<&str>,
    family: Option<&str>,
    display: Option<&str>,
) -> Option<String> {
    match fill {
        Fill::UserName => user_name.map(str::to_string),
        Fill::FullName => match (given, family) {
            (Some(g), Some(f)) => Some(format!("{g} {f}")),
            _ => display.or(user_name).map(str::to_string),
        },
    }
}

/// Whether a required attribute holds what the server filled (not shown).
fn is_filled(src: &Sources<'_>, ldap: &str, fill: Fill) -> bool {
    let noted = src
        .entry
        .get("cigScimFilled")
        .is_some_and(|a| a.values.iter().any(|v| v.eq_ignore_ascii_case(ldap.as_bytes())));
    if !noted {
        return false;
    }
    let family = if ldap == "sn" || is_filled(src, "sn", Fill::UserName) { None } else { src.first("sn") };
    let expected = filled_value(fill, src.first("uid"), src.first("givenName"), family, src.first("displayName"));
    expected.as_deref() == src.first(ldap)
}

/// Render the attributes of one table into `out`.
pub fn attributes(attrs: &[Attr], src: &Sources<'_>, out: &mut Map<String, Value>) {
    for attr in attrs {
        if let Some(v) = attribute(attr, src) {
            out.insert(attr.name.to_string(), v);
        }
    }
}

fn attribute(attr: &Attr, src: &Sources<'_>) -> Option<Value> {
    match attr.home {
        Home::Server | Home::Password => None,
        Home::Ldap(ldap) if attr.ty == Type::DateTime => src.first(ldap).map(|v| Value::String(iso_time(v))),
        Home::Ldap(ldap) => src.first(ldap).map(|v| Value::String(v.to_string())),
        Home::Required(ldap, fill) => {
            if is_filled(src, ldap, fill) {
                None
            } else {
                src.first(ldap).map(|v| Value::String(v.to_string()))
            }
        }
        Home::Active(ldap) => {
            let set = src.first(ldap).is_none_or(|v| v.eq_ignore_ascii_case("TRUE"));
            let open = lifecycle::validity_of(src.entry, &lifecycle::now_instant()) == lifecycle::Validity::Open;
            Some(Value::Bool(set && open))
        }
        Home::Parts => {
            let mut inner = Map::new();
            attributes(attr.subs, src, &mut inner);
            (!inner.is_empty()).then_some(Value::Object(inner))
        }
        Home::Elements(el) => {
            let values = |ldap: &str| src.values(ldap);
            let stored = Stored { values: &values, applications: src.applications };
            let elems = elements::render(el, &stored, src.syntax);
            (!elems.is_empty()).then_some(Value::Array(elems))
        }
        Home::Reference(ldap) => {
            let dn = src.first(ldap)?;
            let (id, display) = (src.resolve)(dn)?;
            let mut m = Map::new();
            m.insert("$ref".into(), Value::String(format!("/scim/v2/Users/{id}")));
            if let Some(d) = display {
                m.insert("displayName".into(), Value::String(d));
            }
            m.insert("value".into(), Value::String(id));
            Some(Value::Object(m))
        }
    }
}
