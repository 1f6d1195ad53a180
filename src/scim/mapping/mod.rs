//! The mapping tables: for each SCIM resource, one row per attribute and
//! sub-attribute (RFC 7643 §2, §7) saying what it is (type, mutability,
//! returned, uniqueness, caseExact, canonical values) and where it lives in
//! the directory. The same rows drive rendering, parsing, PATCH paths,
//! filters, sorting and `/Schemas`: what `/Schemas` says cannot disagree
//! with what is stored, and a new attribute is one row.

pub mod group;
mod markdown;
mod time;
pub mod user;

pub use markdown::markdown;
pub use time::{generalized_time, iso_time};

use serde_json::{Map, Value, json};

use crate::directory::lifecycle;

/// RFC 7643 §2.3 data types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    String,
    Boolean,
    DateTime,
    Binary,
    Reference,
    Complex,
}

/// RFC 7643 §7 `mutability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutability {
    ReadOnly,
    ReadWrite,
    Immutable,
    WriteOnly,
}

/// RFC 7643 §7 `returned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Returned {
    Always,
    Never,
    Default,
    Request,
}

/// RFC 7643 §7 `uniqueness`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uniqueness {
    None,
    Server,
}

/// Where an attribute lives in the directory.
#[derive(Debug, Clone, Copy)]
pub enum Home {
    /// Computed by the server (id, meta, groups, members …): the resource's code renders it.
    Server,
    /// The first value of one LDAP attribute.
    Ldap(&'static str),
    /// An LDAP attribute the schema requires: when the client gives no value,
    /// the server fills one (`Fill`) and notes it in `cigScimFilled`, so that
    /// the filled value is not shown as the client's.
    Required(&'static str, Fill),
    /// The administrative status (`active`): `TRUE` / `FALSE` in this LDAP
    /// attribute, absent meaning true; shown false, whatever it says, outside
    /// the account's window of validity (`pwdStartTime` / `pwdEndTime`, see
    /// `directory::lifecycle`), which a bind honours too.
    Active(&'static str),
    /// A complex attribute whose sub-attributes say where they live.
    Parts,
    /// A multi-valued complex attribute (see [`Elements`]).
    Elements(&'static Elements),
    /// The password: hashed into `userPassword`, never read back.
    Password,
    /// A reference to another resource by its id, kept as a DN in this LDAP
    /// attribute (the enterprise `manager`): referential integrity follows it.
    Reference(&'static str),
}

/// How the server fills a required LDAP attribute the client left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// The userName (an agent's `sn`).
    UserName,
    /// "given family", else the displayName, else the userName (an agent's `cn`).
    FullName,
}

/// A multi-valued complex attribute: each element is kept whole, as compact
/// JSON, one value of `store`; the sub-attribute values that have a
/// standard LDAP home are also written there (`mirrors`), so that legacy
/// applications read them, and what an LDAP client changes there is what
/// SCIM shows.
#[derive(Debug)]
pub struct Elements {
    pub store: &'static str,
    pub mirrors: &'static [Mirror],
    /// The `type` of an element found only in a mirror with no type of its own.
    pub default_type: Option<&'static str>,
    /// Without stored elements, the first mirrored value is the primary one
    /// (legacy entries: the first `mail` is the address applications use).
    pub first_is_primary: bool,
}

/// One sub-attribute of the elements of one `type` (any type when `None`)
/// kept in an LDAP attribute, every such element's value, or only the
/// first element's (`first_only`: the work address in `street`, `l` …).
#[derive(Debug)]
pub struct Mirror {
    pub when_type: Option<&'static str>,
    pub sub: &'static str,
    pub source: Source,
    pub first_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Text in this LDAP attribute.
    Ldap(&'static str),
    /// Base64 in SCIM, the bytes in this LDAP attribute (certificates).
    Base64(&'static str),
    /// Lines of a formatted address in this Postal Address attribute (`$`-separated, RFC 4517 §3.3.28).
    Postal(&'static str),
    /// Membership of `cn=<value>,ou=applications` (entitlements).
    Applications,
}

impl Source {
    pub fn ldap(self) -> Option<&'static str> {
        match self {
            Source::Ldap(a) | Source::Base64(a) | Source::Postal(a) => Some(a),
            Source::Applications => None,
        }
    }
}

/// One attribute or sub-attribute.
#[derive(Debug)]
pub struct Attr {
    pub name: &'static str,
    pub ty: Type,
    pub multi: bool,
    pub required: bool,
    pub case_exact: bool,
    pub mutability: Mutability,
    pub returned: Returned,
    pub uniqueness: Uniqueness,
    pub canonical: &'static [&'static str],
    pub reference_types: &'static [&'static str],
    pub description: &'static str,
    pub subs: &'static [Attr],
    pub home: Home,
}

impl Attr {
    pub const fn new(name: &'static str, ty: Type, home: Home, description: &'static str) -> Attr {
        Attr {
            name,
            ty,
            multi: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical: &[],
            reference_types: &[],
            description,
            subs: &[],
            home,
        }
    }

    pub const fn string(name: &'static str, home: Home, description: &'static str) -> Attr {
        Attr::new(name, Type::String, home, description)
    }

    pub const fn multi(self) -> Attr {
        Attr { multi: true, ..self }
    }

    pub const fn required(self) -> Attr {
        Attr { required: true, ..self }
    }

    pub const fn case_exact(self) -> Attr {
        Attr { case_exact: true, ..self }
    }

    pub const fn read_only(self) -> Attr {
        Attr { mutability: Mutability::ReadOnly, ..self }
    }

    pub const fn immutable(self) -> Attr {
        Attr { mutability: Mutability::Immutable, ..self }
    }

    pub const fn write_only(self) -> Attr {
        Attr { mutability: Mutability::WriteOnly, returned: Returned::Never, ..self }
    }

    pub const fn always(self) -> Attr {
        Attr { returned: Returned::Always, ..self }
    }

    pub const fn unique(self) -> Attr {
        Attr { uniqueness: Uniqueness::Server, ..self }
    }

    pub const fn canonical(self, values: &'static [&'static str]) -> Attr {
        Attr { canonical: values, ..self }
    }

    pub const fn references(self, types: &'static [&'static str]) -> Attr {
        Attr { reference_types: types, ..self }
    }

    pub const fn subs(self, subs: &'static [Attr]) -> Attr {
        Attr { subs, ..self }
    }

    /// A sub-attribute by name, case-insensitively (RFC 7643 §2.1).
    pub fn sub(&self, name: &str) -> Option<&'static Attr> {
        self.subs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// Whether a client may write it (RFC 7643 §7: readOnly is the server's).
    pub fn writable(&self) -> bool {
        self.mutability != Mutability::ReadOnly
    }

    /// This attribute's `/Schemas` description (RFC 7643 §7).
    fn describe(&self) -> Value {
        let mut out = Map::new();
        out.insert("name".into(), self.name.into());
        out.insert("type".into(), type_name(self.ty).into());
        out.insert("multiValued".into(), self.multi.into());
        out.insert("description".into(), self.description.into());
        out.insert("required".into(), self.required.into());
        if self.ty != Type::Complex && self.ty != Type::Boolean {
            out.insert("caseExact".into(), self.case_exact.into());
        }
        if !self.canonical.is_empty() {
            out.insert("canonicalValues".into(), json!(self.canonical));
        }
        if self.ty == Type::Reference {
            out.insert("referenceTypes".into(), json!(self.reference_types));
        }
        out.insert("mutability".into(), mutability_name(self.mutability).into());
        out.insert("returned".into(), returned_name(self.returned).into());
        if self.ty != Type::Complex && self.ty != Type::Boolean {
            out.insert(
                "uniqueness".into(),
                match self.uniqueness {
                    Uniqueness::None => "none",
                    Uniqueness::Server => "server",
                }
                .into(),
            );
        }
        if !self.subs.is_empty() {
            out.insert("subAttributes".into(), Value::Array(self.subs.iter().map(Attr::describe).collect()));
        }
        Value::Object(out)
    }
}

fn type_name(t: Type) -> &'static str {
    match t {
        Type::String => "string",
        Type::Boolean => "boolean",
        Type::DateTime => "dateTime",
        Type::Binary => "binary",
        Type::Reference => "reference",
        Type::Complex => "complex",
    }
}

fn mutability_name(m: Mutability) -> &'static str {
    match m {
        Mutability::ReadOnly => "readOnly",
        Mutability::ReadWrite => "readWrite",
        Mutability::Immutable => "immutable",
        Mutability::WriteOnly => "writeOnly",
    }
}

fn returned_name(r: Returned) -> &'static str {
    match r {
        Returned::Always => "always",
        Returned::Never => "never",
        Returned::Default => "default",
        Returned::Request => "request",
    }
}

/// One schema (a core schema or an extension): its URN and attributes.
#[derive(Debug)]
pub struct Schema {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub attrs: &'static [Attr],
}

impl Schema {
    /// An attribute by name, case-insensitively.
    pub fn attr(&self, name: &str) -> Option<&'static Attr> {
        self.attrs.iter().find(|a| a.name.eq_ignore_ascii_case(name))
    }

    /// The `/Schemas` resource (RFC 7643 §7). `canonical` gives canonical
    /// values decided at run time (an organisation's applications), by
    /// attribute path.
    pub fn describe(&self, canonical: &dyn Fn(&str) -> Option<Vec<String>>) -> Value {
        let mut attrs: Vec<Value> = self.attrs.iter().map(Attr::describe).collect();
        for (attr, described) in self.attrs.iter().zip(attrs.iter_mut()) {
            for (sub, d) in attr.subs.iter().zip(described["subAttributes"].as_array_mut().into_iter().flatten()) {
                if let Some(values) = canonical(&format!("{}.{}", attr.name, sub.name)) {
                    d["canonicalValues"] = json!(values);
                }
            }
        }
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": attrs,
            "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{}", self.id)},
        })
    }
}

/// A resource type (RFC 7643 §6): its core schema and extensions.
#[derive(Debug)]
pub struct Resource {
    pub name: &'static str,
    pub endpoint: &'static str,
    pub description: &'static str,
    pub core: &'static Schema,
    pub extensions: &'static [&'static Schema],
}

const META_SUBS: &[Attr] = &[
    Attr::string("resourceType", Home::Server, "The name of the resource type of the resource.")
        .case_exact()
        .read_only(),
    Attr::new("created", Type::DateTime, Home::Server, "When the resource was added (createTimestamp).").read_only(),
    Attr::new("lastModified", Type::DateTime, Home::Server, "When the resource was last changed (modifyTimestamp).")
        .read_only(),
    Attr::new("location", Type::Reference, Home::Server, "The URI of the resource.")
        .references(&["uri"])
        .case_exact()
        .read_only(),
    Attr::string("version", Home::Server, "The version (ETag) of the resource: its revision and its groups.")
        .case_exact()
        .read_only(),
];

/// Attributes common to every resource (RFC 7643 §3.1), part of no schema.
pub const COMMON_ATTRS: &[Attr] = &[
    Attr::string("id", Home::Server, "A unique identifier for the resource, its entryUUID.")
        .case_exact()
        .read_only()
        .always()
        .unique(),
    Attr::string(
        "externalId",
        Home::Ldap("cigExternalId"),
        "An identifier for the resource as defined by the provisioning client.",
    )
    .case_exact(),
    Attr::new("meta", Type::Complex, Home::Server, "Resource metadata.").read_only().subs(META_SUBS),
];

/// An attribute path resolved against a resource's tables.
#[derive(Debug, Clone, Copy)]
pub struct Path {
    /// The extension it belongs to (its URN is its key in a document); `None`
    /// for the core schema and the common attributes.
    pub extension: Option<&'static Schema>,
    pub attr: &'static Attr,
    pub sub: Option<&'static Attr>,
}

impl Path {
    /// The row the path ends at.
    pub fn leaf(&self) -> &'static Attr {
        self.sub.unwrap_or(self.attr)
    }
}

impl Resource {
    /// The LDAP attribute of the `active` row (see [`Home::Active`]), if the resource has one.
    pub fn active_flag(&self) -> Option<&'static str> {
        std::iter::once(self.core).chain(self.extensions.iter().copied()).flat_map(|s| s.attrs).find_map(|a| {
            match a.home {
                Home::Active(l) => Some(l),
                _ => None,
            }
        })
    }

    /// The schema a URN names, case-insensitively (the core or an extension).
    pub fn schema(&self, urn: &str) -> Option<&'static Schema> {
        std::iter::once(self.core).chain(self.extensions.iter().copied()).find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// Split an attribute path's URN prefix (`urn:…:User:name.givenName`)
    /// from the attribute: the schema it names, and the rest.
    pub fn split_urn<'p>(&self, path: &'p str) -> Option<(&'static Schema, &'p str)> {
        for schema in std::iter::once(self.core).chain(self.extensions.iter().copied()) {
            let id = schema.id;
            if path.len() > id.len() && path.is_char_boundary(id.len()) && path[..id.len()].eq_ignore_ascii_case(id) {
                let rest = &path[id.len()..];
                if let Some(rest) = rest.strip_prefix(':') {
                    return Some((schema, rest));
                }
            }
        }
        None
    }

    /// Resolve `[uri:]name[.sub]`, parts already split (the filter and PATCH
    /// parsers give them so); `None` when the path names nothing.
    pub fn resolve(&self, uri: Option<&str>, name: &str, sub: Option<&str>) -> Option<Path> {
        let (extension, attrs): (Option<&'static Schema>, &[&'static [Attr]]) = match uri {
            None => (None, &[COMMON_ATTRS, self.core.attrs]),
            Some(u) if u.eq_ignore_ascii_case(self.core.id) => (None, &[COMMON_ATTRS, self.core.attrs]),
            Some(u) => {
                let ext = self.extensions.iter().copied().find(|s| s.id.eq_ignore_ascii_case(u))?;
                (Some(ext), std::slice::from_ref(&ext.attrs))
            }
        };
        let attr = attrs.iter().flat_map(|t| t.iter()).find(|a| a.name.eq_ignore_ascii_case(name))?;
        let sub = match sub {
            Some(s) => Some(attr.sub(s)?),
            None => None,
        };
        Some(Path { extension, attr, sub })
    }

    /// Resolve a path written out (`sortBy`, `attributes`):
    /// `urn:…:User:name.givenName`, `name.givenName`, `emails`.
    pub fn resolve_text(&self, path: &str) -> Option<Path> {
        let path = path.trim();
        let (uri, rest) = match self.split_urn(path) {
            Some((schema, rest)) => (Some(schema.id), rest),
            None => (None, path),
        };
        let (name, sub) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        self.resolve(uri, name, sub)
    }

    /// The `/ResourceTypes` resource (RFC 7643 §6).
    pub fn describe(&self) -> Value {
        let extensions: Vec<Value> =
            self.extensions.iter().map(|s| json!({"schema": s.id, "required": false})).collect();
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.core.id,
            "schemaExtensions": extensions,
            "meta": {"resourceType": "ResourceType", "location": format!("/scim/v2/ResourceTypes/{}", self.name)},
        })
    }

    /// The LDAP attributes this resource's mapping writes (what a PUT may clear).
    pub fn ldap_attributes(&self) -> Vec<&'static str> {
        let mut out = vec!["cigScimFilled"];
        collect_ldap(COMMON_ATTRS, &mut out);
        for schema in std::iter::once(self.core).chain(self.extensions.iter().copied()) {
            collect_ldap(schema.attrs, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn collect_ldap(attrs: &[Attr], out: &mut Vec<&'static str>) {
    for a in attrs {
        match a.home {
            Home::Ldap(l) | Home::Required(l, _) | Home::Reference(l) => out.push(l),
            Home::Active(l) => out.extend([l, lifecycle::START, lifecycle::END]),
            Home::Elements(e) => {
                out.push(e.store);
                out.extend(e.mirrors.iter().filter_map(|m| m.source.ldap()));
            }
            Home::Parts => collect_ldap(a.subs, out),
            Home::Server | Home::Password => {}
        }
    }
}
