//! Entry validation against the schema (RFC 4512 §2.4, §3.4; result codes of
//! RFC 4511 Appendix A): the checks every write goes through.

use super::syntax::Syntax;
use super::{AttrId, ClassKind, Schema};
use crate::directory::entry::Entry;
use crate::directory::error::{DirectoryError, Result};

impl Schema {
    /// Rename attributes to their primary names, merge duplicates, and refuse
    /// unknown types (undefinedAttributeType, 17).
    pub fn canonicalize(&self, entry: &mut Entry) -> Result<()> {
        let mut out: Vec<crate::directory::entry::Attribute> = Vec::with_capacity(entry.attrs.len());
        // Duplicates found by id (an integer), names copied only when they differ.
        let mut ids: Vec<AttrId> = Vec::with_capacity(entry.attrs.len());
        for mut a in std::mem::take(&mut entry.attrs) {
            let (id, attr) = self.attr_of(&a.name)?;
            if a.name != attr.name {
                a.name = attr.name.clone();
            }
            match ids.iter().position(|&i| i == id) {
                Some(k) => out[k].values.append(&mut a.values),
                None => {
                    ids.push(id);
                    out.push(a);
                }
            }
        }
        entry.attrs = out;
        Ok(())
    }

    /// Full validation of an entry about to be stored. `entry` must be
    /// canonicalised. Adds missing superclasses to `objectClass` (so that
    /// `(objectClass=person)` finds inetOrgPerson entries through the index) and
    /// returns the structural object class name.
    pub fn check_entry(&self, entry: &mut Entry) -> Result<String> {
        let oc_values = match entry.get("objectClass") {
            Some(a) if !a.values.is_empty() => a.values.clone(),
            _ => {
                return Err(DirectoryError::ObjectClassViolation(format!("entry '{}' has no objectClass", entry.dn)));
            }
        };
        let mut classes = Vec::new();
        for v in &oc_values {
            let name = String::from_utf8_lossy(v);
            let id = self
                .class_id(name.trim())
                .ok_or_else(|| DirectoryError::ObjectClassViolation(format!("unknown object class '{name}'")))?;
            if !classes.contains(&id) {
                classes.push(id);
            }
        }
        let mut all = classes.clone();
        for &c in &classes {
            for &a in &self.class(c).ancestors {
                if !all.contains(&a) {
                    all.push(a);
                }
            }
        }
        // The structural chain: every structural class must be an ancestor of (or
        // equal to) one most-specific structural class (RFC 4512 §2.4.2).
        let structural: Vec<_> = all.iter().copied().filter(|&c| self.class(c).kind == ClassKind::Structural).collect();
        let most_specific: Vec<_> = structural
            .iter()
            .copied()
            .filter(|&c| !structural.iter().any(|&o| o != c && self.class(o).ancestors.contains(&c)))
            .collect();
        let structural_name = match most_specific.as_slice() {
            [] => {
                return Err(DirectoryError::ObjectClassViolation(format!(
                    "entry '{}' has no structural object class",
                    entry.dn
                )));
            }
            [one] => self.class(*one).name.clone(),
            many => {
                let names: Vec<_> = many.iter().map(|&c| self.class(c).name.as_str()).collect();
                return Err(DirectoryError::ObjectClassViolation(format!(
                    "entry '{}' has several structural object classes: {}",
                    entry.dn,
                    names.join(", ")
                )));
            }
        };
        // Store every class, superclasses included, under its primary name.
        let mut names: Vec<Vec<u8>> = Vec::with_capacity(all.len());
        for &c in &all {
            names.push(self.class(c).name.clone().into_bytes());
        }
        if let Some(a) = entry.get_mut("objectClass") {
            a.values = names;
        }

        let extensible = all.iter().any(|&c| self.class(c).lname == "extensibleobject");
        let mut must: Vec<AttrId> = Vec::new();
        let mut may: Vec<AttrId> = Vec::new();
        for &c in &all {
            must.extend(&self.class(c).must);
            may.extend(&self.class(c).may);
        }
        for &m in &must {
            let attr = self.attr(m);
            if entry.get(&attr.name).is_none_or(|a| a.values.is_empty()) {
                return Err(DirectoryError::ObjectClassViolation(format!(
                    "attribute '{}' is required by the object classes of '{}'",
                    attr.name, entry.dn
                )));
            }
        }
        for a in &entry.attrs {
            let (id, attr) = self.attr_of(&a.name)?;
            if !attr.operational && !extensible && !must.contains(&id) && !may.contains(&id) {
                return Err(DirectoryError::ObjectClassViolation(format!(
                    "attribute '{}' is not allowed by the object classes of '{}'",
                    attr.name, entry.dn
                )));
            }
            self.check_values(id, &a.values)?;
        }
        // RFC 4512 §2.3: the RDN's values must be present in the entry.
        if let Some(rdn) = entry.dn.rdn() {
            for ava in &rdn.avas {
                if !self.holds_naming_value(entry, ava)? {
                    return Err(DirectoryError::NamingViolation(format!(
                        "the naming value {}={} is not present in the entry",
                        ava.attr, ava.value
                    )));
                }
            }
        }
        Ok(structural_name)
    }

    /// RFC 4511 §4.7: "Clients MAY or MAY NOT include the RDN attribute(s)
    /// in this list": the RDN's values an added entry lacks are added to it,
    /// before its schema is checked.
    pub fn add_naming_values(&self, entry: &mut Entry) -> Result<()> {
        let Some(rdn) = entry.dn.rdn().cloned() else { return Ok(()) };
        for ava in &rdn.avas {
            if !self.holds_naming_value(entry, ava)? {
                let (_, attr) = self.attr_of(&ava.attr)?;
                let name = entry.get(&attr.name).map(|a| a.name.clone()).unwrap_or_else(|| ava.attr.clone());
                entry.add_values(&name, vec![ava.value.as_bytes().to_vec()]);
            }
        }
        Ok(())
    }

    /// Whether the entry holds this value of its RDN, by the attribute's equality rule.
    fn holds_naming_value(&self, entry: &Entry, ava: &crate::directory::dn::Ava) -> Result<bool> {
        let (_, attr) = self.attr_of(&ava.attr)?;
        let want = self
            .normalize_eq(attr, ava.value.as_bytes())
            .map_err(|e| DirectoryError::InvalidDn(format!("{}: {e}", ava.attr)))?;
        Ok(entry
            .get(&attr.name)
            .is_some_and(|a| a.values.iter().any(|v| self.normalize_eq(attr, v).is_ok_and(|n| n == want))))
    }

    /// Whether an attribute (by name) accepts this value, by its syntax.
    pub fn accepts(&self, name: &str, value: &[u8]) -> bool {
        let Some(id) = self.attr_id(name) else { return false };
        let attr = self.attr(id);
        attr.syntax.validate(value).is_ok()
            && (!matches!(attr.syntax, Syntax::Dn | Syntax::NameAndOptionalUid)
                || self.normalize_eq(attr, value).is_ok())
    }

    pub fn check_values(&self, id: AttrId, values: &[Vec<u8>]) -> Result<()> {
        let attr = self.attr(id);
        if values.is_empty() {
            return Err(DirectoryError::Protocol(format!("attribute '{}' has no values", attr.name)));
        }
        if attr.single_value && values.len() > 1 {
            return Err(DirectoryError::ConstraintViolation(format!("attribute '{}' is single-valued", attr.name)));
        }
        // Most attributes hold one value: no set to build for the duplicate check.
        let mut seen: std::collections::HashSet<Vec<u8>> =
            std::collections::HashSet::with_capacity(if values.len() > 1 { values.len() } else { 0 });
        for (i, v) in values.iter().enumerate() {
            attr.syntax.validate(v).map_err(|why| {
                DirectoryError::InvalidAttributeSyntax(format!("{}: value #{i} invalid per syntax: {why}", attr.name))
            })?;
            // A lone value needs no duplicate check: normalised only where the
            // rule refuses more than the syntax does (a DN naming unknown types).
            if values.len() == 1 && !matches!(attr.syntax, Syntax::Dn | Syntax::NameAndOptionalUid) {
                continue;
            }
            let n = self.normalize_eq(attr, v).map_err(|why| {
                DirectoryError::InvalidAttributeSyntax(format!("{}: value #{i} invalid per syntax: {why}", attr.name))
            })?;
            if values.len() > 1 && !seen.insert(n) {
                return Err(DirectoryError::AttributeOrValueExists(format!(
                    "{}: value #{i} provided more than once",
                    attr.name
                )));
            }
        }
        Ok(())
    }
}
