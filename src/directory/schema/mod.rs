//! The schema registry: attribute types, object classes, matching rules and
//! syntaxes loaded from `schema/*.schema` (RFC 4512). Everything that depends
//! on "what kind of value is this" goes through here: normalisation for
//! indexes and DNs, filter matching, syntax checks on write.

pub mod approx;
mod check;
mod parse;
pub mod syntax;

use std::fmt;
use std::path::Path;

pub use parse::{SchemaFile, SchemaParseError, parse_schema_file};
pub use syntax::{MatchingRule, Syntax};

use super::dn::{Dn, escape_value_into};
use super::error::{DirectoryError, Result};

/// RFC 4512 §4.1.2 AttributeUsage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Usage {
    #[default]
    UserApplications,
    DirectoryOperation,
    DistributedOperation,
    DsaOperation,
}

/// An attribute type definition as written in the file.
#[derive(Debug, Clone, Default)]
pub struct AttributeType {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Option<String>,
    pub equality: Option<String>,
    pub ordering: Option<String>,
    pub substr: Option<String>,
    pub syntax: Option<String>,
    pub syntax_len: Option<u32>,
    pub single_value: bool,
    pub collective: bool,
    pub no_user_modification: bool,
    pub usage: Usage,
}

/// RFC 4512 §2.4.1–3 object class kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClassKind {
    Abstract,
    #[default]
    Structural,
    Auxiliary,
}

/// An object class definition as written in the file.
#[derive(Debug, Clone, Default)]
pub struct ObjectClass {
    pub oid: String,
    pub names: Vec<String>,
    pub desc: Option<String>,
    pub obsolete: bool,
    pub sup: Vec<String>,
    pub kind: ClassKind,
    pub must: Vec<String>,
    pub may: Vec<String>,
}

/// Index of an attribute type in the registry.
pub type AttrId = usize;
/// Index of an object class in the registry.
pub type ClassId = usize;

/// An attribute type with its inherited properties resolved.
#[derive(Debug, Clone)]
pub struct Attr {
    pub def: AttributeType,
    /// The primary name, as the schema spells it: what entries are stored and returned under.
    pub name: String,
    /// `name` lower-cased, for comparisons.
    pub lname: String,
    pub equality: Option<MatchingRule>,
    pub ordering: Option<MatchingRule>,
    pub substr: Option<MatchingRule>,
    pub syntax: Syntax,
    pub single_value: bool,
    pub operational: bool,
    pub no_user_modification: bool,
    /// This type and every type whose SUP chain reaches it: a filter on `name`
    /// matches `cn` and `sn` (RFC 4511 §4.5.1.7).
    pub with_subtypes: Vec<AttrId>,
}

/// An object class with its superclass chain and attribute lists resolved.
#[derive(Debug, Clone)]
pub struct Class {
    pub def: ObjectClass,
    pub name: String,
    pub lname: String,
    pub kind: ClassKind,
    /// Every superclass, transitively, this class excluded.
    pub ancestors: Vec<ClassId>,
    pub must: Vec<AttrId>,
    pub may: Vec<AttrId>,
}

/// The loaded schema. Immutable once built; shared as `Arc<Schema>`.
#[derive(Debug)]
pub struct Schema {
    attrs: Vec<Attr>,
    attr_index: NameIndex,
    classes: Vec<Class>,
    class_index: NameIndex,
}

/// Why a schema could not be loaded: the file and line, or the definition.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{file}: {source}")]
    Parse { file: String, source: SchemaParseError },
    #[error("{file}: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{0}")]
    Definition(String),
}

impl Schema {
    /// Load every `*.schema` file of a directory (sorted by name).
    pub fn load_dir(dir: &Path) -> Result<Schema, SchemaError> {
        let io = |source| SchemaError::Io { file: dir.display().to_string(), source };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "schema"))
            .collect();
        paths.sort();
        let mut files = Vec::new();
        for p in paths {
            let file = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|source| SchemaError::Io { file: file.clone(), source })?;
            files.push(parse_schema_file(&text).map_err(|source| SchemaError::Parse { file, source })?);
        }
        Schema::build(files)
    }

    /// The schema shipped in the binary (`schema/*.schema` at build time), used
    /// by tests and when no schema directory is configured.
    pub fn builtin() -> Result<Schema, SchemaError> {
        let mut files = Vec::new();
        for (name, text) in BUILTIN_FILES {
            files
                .push(parse_schema_file(text).map_err(|source| SchemaError::Parse { file: name.to_string(), source })?);
        }
        Schema::build(files)
    }

    /// Resolve references between definitions of all files.
    pub fn build(files: Vec<SchemaFile>) -> Result<Schema, SchemaError> {
        let def_err = SchemaError::Definition;
        let mut defs: Vec<AttributeType> = Vec::new();
        let mut class_defs: Vec<ObjectClass> = Vec::new();
        for f in files {
            defs.extend(f.attribute_types);
            class_defs.extend(f.object_classes);
        }
        let attr_index = name_index(defs.iter().map(|d| (&d.names, &d.oid)), "attribute type")?;
        // Resolve SUP chains (bounded: a cycle is an error, not a hang).
        let mut attrs = Vec::with_capacity(defs.len());
        for (i, d) in defs.iter().enumerate() {
            let mut chain = vec![i];
            let mut cur = d;
            while let Some(sup) = &cur.sup {
                let j = *attr_index
                    .get(&sup.to_ascii_lowercase())
                    .ok_or_else(|| def_err(format!("attribute type {}: unknown SUP '{sup}'", d.oid)))?;
                if chain.contains(&j) {
                    return Err(def_err(format!("attribute type {}: SUP cycle", d.oid)));
                }
                chain.push(j);
                cur = &defs[j];
            }
            let inherit = |f: fn(&AttributeType) -> Option<&String>| chain.iter().find_map(|&k| f(&defs[k]).cloned());
            let rule = |name: Option<String>| -> Result<Option<MatchingRule>, SchemaError> {
                match name {
                    None => Ok(None),
                    Some(n) => MatchingRule::from_name(&n)
                        .map(Some)
                        .ok_or_else(|| def_err(format!("attribute type {}: unsupported matching rule '{n}'", d.oid))),
                }
            };
            let syntax_oid = inherit(|a| a.syntax.as_ref());
            let name = d.names.first().cloned().unwrap_or_else(|| d.oid.clone());
            attrs.push(Attr {
                lname: name.to_ascii_lowercase(),
                name,
                equality: rule(inherit(|a| a.equality.as_ref()))?,
                ordering: rule(inherit(|a| a.ordering.as_ref()))?,
                substr: rule(inherit(|a| a.substr.as_ref()))?,
                syntax: syntax_oid.as_deref().map(Syntax::from_oid).unwrap_or(Syntax::Other),
                single_value: d.single_value,
                operational: d.usage != Usage::UserApplications,
                no_user_modification: d.no_user_modification,
                with_subtypes: chain.clone(), // replaced below
                def: d.clone(),
            });
        }
        // with_subtypes: invert the chains.
        let chains: Vec<Vec<AttrId>> = attrs.iter().map(|a| a.with_subtypes.clone()).collect();
        for a in attrs.iter_mut() {
            a.with_subtypes.clear();
        }
        for (sub, chain) in chains.iter().enumerate() {
            for &sup in chain {
                attrs[sup].with_subtypes.push(sub);
            }
        }

        let class_index = name_index(class_defs.iter().map(|c| (&c.names, &c.oid)), "object class")?;
        let mut classes = Vec::with_capacity(class_defs.len());
        for (i, c) in class_defs.iter().enumerate() {
            let mut ancestors: Vec<ClassId> = Vec::new();
            let mut stack: Vec<ClassId> = Vec::new();
            for s in &c.sup {
                stack.push(
                    *class_index
                        .get(&s.to_ascii_lowercase())
                        .ok_or_else(|| def_err(format!("object class {}: unknown SUP '{s}'", c.oid)))?,
                );
            }
            while let Some(j) = stack.pop() {
                if j == i {
                    return Err(def_err(format!("object class {}: SUP cycle", c.oid)));
                }
                if ancestors.contains(&j) {
                    continue;
                }
                ancestors.push(j);
                for s in &class_defs[j].sup {
                    if let Some(&k) = class_index.get(&s.to_ascii_lowercase()) {
                        stack.push(k);
                    }
                }
            }
            let resolve = |list: &[String]| -> Result<Vec<AttrId>, SchemaError> {
                list.iter()
                    .map(|a| {
                        attr_index
                            .get(&a.to_ascii_lowercase())
                            .copied()
                            .ok_or_else(|| def_err(format!("object class {}: unknown attribute '{a}'", c.oid)))
                    })
                    .collect()
            };
            let mut must = resolve(&c.must)?;
            let mut may = resolve(&c.may)?;
            for &j in &ancestors {
                must.extend(resolve(&class_defs[j].must)?);
                may.extend(resolve(&class_defs[j].may)?);
            }
            must.sort_unstable();
            must.dedup();
            may.sort_unstable();
            may.dedup();
            let name = c.names.first().cloned().unwrap_or_else(|| c.oid.clone());
            classes.push(Class {
                lname: name.to_ascii_lowercase(),
                name,
                kind: c.kind,
                ancestors,
                must,
                may,
                def: c.clone(),
            });
        }
        let schema = Schema { attrs, attr_index, classes, class_index };
        for required in ["objectclass", "top", "entryuuid", "createtimestamp", "member", "uid"] {
            if schema.attr_id(required).is_none() && schema.class_id(required).is_none() {
                return Err(def_err(format!("the schema must define '{required}'")));
            }
        }
        Ok(schema)
    }

    /// Look up an attribute description (name or OID, any case); `;binary` and
    /// other options are stripped (RFC 4512 §2.5).
    pub fn attr_id(&self, desc: &str) -> Option<AttrId> {
        if let Some(&i) = self.attr_index.get(desc) {
            return Some(i);
        }
        let base = desc.split(';').next().unwrap_or(desc);
        if let Some(&i) = self.attr_index.get(base) {
            return Some(i);
        }
        self.attr_index.get(&base.to_ascii_lowercase()).copied()
    }

    pub fn attr(&self, id: AttrId) -> &Attr {
        &self.attrs[id]
    }

    /// The attribute or `undefinedAttributeType` (RFC 4511 §4.1.9 code 17).
    pub fn attr_of(&self, desc: &str) -> Result<(AttrId, &Attr)> {
        self.attr_id(desc)
            .map(|i| (i, &self.attrs[i]))
            .ok_or_else(|| DirectoryError::UndefinedAttributeType(desc.to_string()))
    }

    pub fn attrs(&self) -> &[Attr] {
        &self.attrs
    }

    pub fn class_id(&self, name: &str) -> Option<ClassId> {
        self.class_index.get(name).or_else(|| self.class_index.get(&name.to_ascii_lowercase())).copied()
    }

    pub fn class(&self, id: ClassId) -> &Class {
        &self.classes[id]
    }

    pub fn classes(&self) -> &[Class] {
        &self.classes
    }

    /// Normalise a value by a matching rule, for equality comparison and index keys.
    pub fn normalize(&self, rule: MatchingRule, value: &[u8]) -> Result<Vec<u8>, String> {
        match rule {
            MatchingRule::DistinguishedName => {
                let s = std::str::from_utf8(value).map_err(|_| "DN is not UTF-8".to_string())?;
                let dn = Dn::parse(s).map_err(|e| e.to_string())?;
                self.normalize_dn(&dn).map(String::into_bytes).map_err(|e| e.to_string())
            }
            MatchingRule::UniqueMember => {
                let s = std::str::from_utf8(value).map_err(|_| "value is not UTF-8".to_string())?;
                // RFC 4517 §3.3.21: DN [ "#" BitString ]; the DN part is what matters.
                let (dn_part, uid) = match s.rfind("#'") {
                    Some(i) if s.ends_with("'B") => (&s[..i], Some(&s[i..])),
                    _ => (s, None),
                };
                let dn = Dn::parse(dn_part).map_err(|e| e.to_string())?;
                let mut n = self.normalize_dn(&dn).map_err(|e| e.to_string())?;
                if let Some(u) = uid {
                    n.push_str(u);
                }
                Ok(n.into_bytes())
            }
            MatchingRule::ObjectIdentifier => {
                let s = std::str::from_utf8(value).map_err(|_| "OID is not UTF-8".to_string())?.trim();
                if let Some(c) = self.class_id(s) {
                    return Ok(self.classes[c].lname.clone().into_bytes());
                }
                if let Some(a) = self.attr_id(s) {
                    return Ok(self.attrs[a].lname.clone().into_bytes());
                }
                Ok(s.to_ascii_lowercase().into_bytes())
            }
            other => syntax::normalize(other, value),
        }
    }

    /// Whether `stored` normalises by `rule` to `normalized` (an asserted value,
    /// normalised already), without building the normalised value when the
    /// answer shows otherwise: a class name is looked up in place, and plain
    /// ASCII text compares case-folded as it stands.
    pub fn matches_normalized(&self, rule: MatchingRule, stored: &[u8], normalized: &[u8]) -> bool {
        match rule {
            MatchingRule::ObjectIdentifier => {
                if let Some(c) = std::str::from_utf8(stored).ok().and_then(|s| self.class_id(s.trim())) {
                    return self.classes[c].lname.as_bytes() == normalized;
                }
            }
            MatchingRule::CaseIgnore | MatchingRule::CaseIgnoreIa5 | MatchingRule::CaseIgnoreList
                if plain_ascii_text(stored) =>
            {
                return stored.eq_ignore_ascii_case(normalized);
            }
            MatchingRule::CaseExact | MatchingRule::CaseExactIa5 if plain_ascii_text(stored) => {
                return stored == normalized;
            }
            _ => {}
        }
        self.normalize(rule, stored).is_ok_and(|n| n == normalized)
    }

    /// Normalise a value for equality by its attribute's rule; attributes with no
    /// equality rule compare as octet strings.
    pub fn normalize_eq(&self, attr: &Attr, value: &[u8]) -> Result<Vec<u8>, String> {
        self.normalize(attr.equality.unwrap_or(MatchingRule::OctetString), value)
    }

    /// The normalised form of a DN: lower-case primary attribute names, values
    /// normalised by their equality rule and escaped, multi-valued RDNs sorted.
    /// Unknown attribute types are an invalid DN, as in slapd.
    pub fn normalize_dn(&self, dn: &Dn) -> Result<String> {
        let mut out = String::with_capacity(
            dn.rdns().iter().map(|r| r.avas.iter().map(|a| a.attr.len() + a.value.len() + 2).sum::<usize>()).sum(),
        );
        for (i, rdn) in dn.rdns().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Nearly every RDN has one AVA: written straight into the result.
            if let [ava] = rdn.avas.as_slice() {
                self.push_normalized_ava(&mut out, &ava.attr, &ava.value)?;
                continue;
            }
            let mut avas = Vec::with_capacity(rdn.avas.len());
            for ava in &rdn.avas {
                let mut one = String::new();
                self.push_normalized_ava(&mut one, &ava.attr, &ava.value)?;
                avas.push(one);
            }
            avas.sort();
            out.push_str(&avas.join("+"));
        }
        Ok(out)
    }

    fn push_normalized_ava(&self, out: &mut String, attr: &str, value: &str) -> Result<()> {
        let id = self
            .attr_id(attr)
            .ok_or_else(|| DirectoryError::InvalidDn(format!("unknown attribute type '{attr}' in DN")))?;
        let def = &self.attrs[id];
        let rule = match def.equality {
            Some(MatchingRule::DistinguishedName | MatchingRule::UniqueMember) | None => MatchingRule::CaseExact,
            Some(r) => r,
        };
        out.push_str(&def.lname);
        out.push('=');
        if plain_ascii_dn_value(value) {
            match rule {
                // The common case (uid, ou, o, dc): no spaces to collapse, nothing
                // to escape, case folded straight into the result.
                MatchingRule::CaseIgnore | MatchingRule::CaseIgnoreIa5 | MatchingRule::CaseIgnoreList => {
                    out.extend(value.chars().map(|c| c.to_ascii_lowercase()));
                    return Ok(());
                }
                MatchingRule::CaseExact | MatchingRule::CaseExactIa5 => {
                    out.push_str(value);
                    return Ok(());
                }
                _ => {}
            }
        }
        let v =
            self.normalize(rule, value.as_bytes()).map_err(|e| DirectoryError::InvalidDn(format!("{attr}: {e}")))?;
        let v =
            std::str::from_utf8(&v).map_err(|_| DirectoryError::InvalidDn(format!("{attr}: value is not UTF-8")))?;
        escape_value_into(out, v);
        Ok(())
    }

    /// Render an attribute type in RFC 4512 §4.1.2 form, for the subschema subentry.
    pub fn render_attribute_type(&self, a: &Attr) -> String {
        a.def.to_string()
    }
}

/// Whether a DN's attribute value is printable ASCII that neither the string
/// rules (no space to collapse) nor DN escaping (RFC 4514 §2.4) would change.
fn plain_ascii_dn_value(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b[0] != b'#'
        && b.iter().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, b'-' | b'.' | b'_' | b'@' | b'\'' | b'(' | b')' | b'/' | b':' | b'?')
        })
}

/// Whether the string rules leave a value as it is, but for case: printable
/// ASCII, no space at either end, none doubled (RFC 4518's insignificant
/// space handling would change it).
fn plain_ascii_text(v: &[u8]) -> bool {
    v.first().is_some_and(|&c| c != b' ')
        && v.last().is_some_and(|&c| c != b' ')
        && v.iter().all(|&c| (0x20..0x7f).contains(&c))
        && !v.windows(2).any(|w| w == b"  ")
}

/// Names to definitions. Looked up for every attribute of every entry a
/// search touches: the fast hash rather than SipHash.
type NameIndex = crate::fasthash::FoldMap<String, usize>;

/// Map every name (lower-cased, and as spelled) and OID of the definitions to
/// their index; a name or OID defined twice is an error.
fn name_index<'a>(
    defs: impl Iterator<Item = (&'a Vec<String>, &'a String)>,
    what: &str,
) -> Result<NameIndex, SchemaError> {
    let mut index = NameIndex::default();
    for (i, (names, oid)) in defs.enumerate() {
        for key in names.iter().map(|n| n.to_ascii_lowercase()).chain([oid.clone()]) {
            if index.insert(key.clone(), i).is_some() {
                return Err(SchemaError::Definition(format!("{what} '{key}' is defined twice")));
            }
        }
        // The names as the schema spells them too: the common lookup needs no lower-casing.
        for n in names {
            index.insert(n.clone(), i);
        }
    }
    Ok(index)
}

fn qdescrs(names: &[String]) -> String {
    match names {
        [one] => format!("'{one}'"),
        many => format!("( {} )", many.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(" ")),
    }
}

fn oids(list: &[String]) -> String {
    match list {
        [one] => one.clone(),
        many => format!("( {} )", many.join(" $ ")),
    }
}

impl fmt::Display for AttributeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "( {}", self.oid)?;
        if !self.names.is_empty() {
            write!(f, " NAME {}", qdescrs(&self.names))?;
        }
        if let Some(d) = &self.desc {
            write!(f, " DESC '{}'", d.replace('\\', "\\5C").replace('\'', "\\27"))?;
        }
        if self.obsolete {
            f.write_str(" OBSOLETE")?;
        }
        if let Some(s) = &self.sup {
            write!(f, " SUP {s}")?;
        }
        if let Some(s) = &self.equality {
            write!(f, " EQUALITY {s}")?;
        }
        if let Some(s) = &self.ordering {
            write!(f, " ORDERING {s}")?;
        }
        if let Some(s) = &self.substr {
            write!(f, " SUBSTR {s}")?;
        }
        if let Some(s) = &self.syntax {
            write!(f, " SYNTAX {s}")?;
            if let Some(l) = self.syntax_len {
                write!(f, "{{{l}}}")?;
            }
        }
        if self.single_value {
            f.write_str(" SINGLE-VALUE")?;
        }
        if self.collective {
            f.write_str(" COLLECTIVE")?;
        }
        if self.no_user_modification {
            f.write_str(" NO-USER-MODIFICATION")?;
        }
        match self.usage {
            Usage::UserApplications => {}
            Usage::DirectoryOperation => f.write_str(" USAGE directoryOperation")?,
            Usage::DistributedOperation => f.write_str(" USAGE distributedOperation")?,
            Usage::DsaOperation => f.write_str(" USAGE dSAOperation")?,
        }
        f.write_str(" )")
    }
}

impl fmt::Display for ObjectClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "( {}", self.oid)?;
        if !self.names.is_empty() {
            write!(f, " NAME {}", qdescrs(&self.names))?;
        }
        if let Some(d) = &self.desc {
            write!(f, " DESC '{}'", d.replace('\\', "\\5C").replace('\'', "\\27"))?;
        }
        if self.obsolete {
            f.write_str(" OBSOLETE")?;
        }
        if !self.sup.is_empty() {
            write!(f, " SUP {}", oids(&self.sup))?;
        }
        f.write_str(match self.kind {
            ClassKind::Abstract => " ABSTRACT",
            ClassKind::Structural => " STRUCTURAL",
            ClassKind::Auxiliary => " AUXILIARY",
        })?;
        if !self.must.is_empty() {
            write!(f, " MUST {}", oids(&self.must))?;
        }
        if !self.may.is_empty() {
            write!(f, " MAY {}", oids(&self.may))?;
        }
        f.write_str(" )")
    }
}

/// The shipped schema files, compiled in so that tests and a bare binary work
/// without a schema directory.
const BUILTIN_FILES: &[(&str, &str)] = &[
    ("core.schema", include_str!("../../../schema/core.schema")),
    ("cosine.schema", include_str!("../../../schema/cosine.schema")),
    ("inetorgperson.schema", include_str!("../../../schema/inetorgperson.schema")),
    ("nis.schema", include_str!("../../../schema/nis.schema")),
    ("operational.schema", include_str!("../../../schema/operational.schema")),
    ("cig.schema", include_str!("../../../schema/cig.schema")),
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_schema_file_loads() {
        let s = Schema::builtin().unwrap();
        for name in ["cn", "uid", "mail", "memberOf", "entryUUID", "cigSiren", "cigActive", "uidNumber"] {
            assert!(s.attr_id(name).is_some(), "{name}");
        }
        for name in ["inetOrgPerson", "groupOfNames", "cigOrganisation", "cigAgent", "posixAccount"] {
            assert!(s.class_id(name).is_some(), "{name}");
        }
        let cn = s.attr(s.attr_id("commonName").unwrap());
        assert_eq!(cn.name, "cn");
        assert_eq!(cn.equality, Some(MatchingRule::CaseIgnore));
        let name = s.attr(s.attr_id("name").unwrap());
        assert!(name.with_subtypes.contains(&s.attr_id("sn").unwrap()));
    }

    #[test]
    fn shipped_files_load_from_the_directory_too() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
        Schema::load_dir(&dir).unwrap();
    }

    #[test]
    fn dn_normalisation_folds_case_and_spaces() {
        let s = Schema::builtin().unwrap();
        let a = s.normalize_dn(&Dn::parse("UID=JDupont , OU=Agents,DC=CIG,dc=fr").unwrap()).unwrap();
        let b = s.normalize_dn(&Dn::parse("uid=jdupont,ou=agents,dc=cig,dc=fr").unwrap()).unwrap();
        assert_eq!(a, b);
        let a = s.normalize_dn(&Dn::parse("cn=Hélène  Dupré+uid=x,dc=fr").unwrap()).unwrap();
        let b = s.normalize_dn(&Dn::parse("uid=X+commonName=hélène dupré,dc=fr").unwrap()).unwrap();
        assert_eq!(a, b);
        assert!(s.normalize_dn(&Dn::parse("bogus=x").unwrap()).is_err());
    }

    #[test]
    fn plain_dn_values_normalise_as_the_matching_rules_do() {
        let s = Schema::builtin().unwrap();
        for (attr, value) in [
            ("uid", "J.Dupont-2_x@cig"),
            ("o", "219400280"),
            ("dc", "CIG"),
            ("cn", "O'Brien(2)/a:b?"),
            ("uid", "#x"),
            ("cn", "Jean Dupont"),
            ("cn", "Hélène"),
        ] {
            let mut fast = String::new();
            s.push_normalized_ava(&mut fast, attr, value).unwrap();
            let def = s.attr(s.attr_id(attr).unwrap());
            let v = s.normalize_eq(def, value.as_bytes()).unwrap();
            let mut slow = format!("{}=", def.lname);
            escape_value_into(&mut slow, std::str::from_utf8(&v).unwrap());
            assert_eq!(fast, slow, "{attr}={value}");
        }
    }

    #[test]
    fn matching_a_normalised_assertion_agrees_with_normalising_both() {
        let s = Schema::builtin().unwrap();
        let values = [
            "inetOrgPerson",
            " person ",
            "2.5.6.6",
            "cigAgent",
            "Jean Dupont",
            "jean  dupont",
            " Jean",
            "JEAN DUPONT",
            "Hélène",
            "hélène",
            "x",
            "",
            "2.5.4.3",
            "cn",
            "K",
        ];
        for rule in [
            MatchingRule::ObjectIdentifier,
            MatchingRule::CaseIgnore,
            MatchingRule::CaseIgnoreIa5,
            MatchingRule::CaseExact,
        ] {
            for stored in values {
                for asserted in values {
                    let Ok(n) = s.normalize(rule, asserted.as_bytes()) else { continue };
                    let slow = s.normalize(rule, stored.as_bytes()).is_ok_and(|v| v == n);
                    assert_eq!(
                        s.matches_normalized(rule, stored.as_bytes(), &n),
                        slow,
                        "{rule:?} {stored:?} {asserted:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_parent_of_a_normalised_dn_is_the_normalised_parent() {
        let s = Schema::builtin().unwrap();
        for text in [
            r"uid=jdupont,ou=agents,dc=cig,dc=fr",
            r"cn=Dupont\, Jean+uid=jd,ou=agents , dc=cig,dc=fr",
            r"cn=a\\,dc=fr",
            r"cn=x\2Cy,dc=fr",
            "dc=fr",
        ] {
            let dn = Dn::parse(text).unwrap();
            let ndn = s.normalize_dn(&dn).unwrap();
            assert_eq!(crate::directory::dn::parent_ndn(&ndn), s.normalize_dn(&dn.parent()).unwrap(), "{text}");
        }
    }

    #[test]
    fn rendered_definitions_parse_back() {
        let s = Schema::builtin().unwrap();
        for a in s.attrs() {
            let text = s.render_attribute_type(a);
            parse::parse_attribute_type_value(&text).unwrap();
        }
    }
}
