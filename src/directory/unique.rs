//! Values that must be unique: `uid` in the whole directory, `cigExternalId`
//! among the entries of one container. Checked in the write transaction.

use super::*;
use crate::store::WriteTx;

impl Directory {
    /// `uid` is unique in the whole directory (DESIGN.md): constraintViolation on a duplicate.
    pub(super) fn check_uid_unique(&self, w: &WriteTx, entry: &Entry, own: Option<u64>) -> Result<()> {
        let Some(uids) = entry.get("uid") else { return Ok(()) };
        let (_, attr) = self.schema.attr_of("uid")?;
        for v in &uids.values {
            let n = self
                .schema
                .normalize_eq(attr, v)
                .map_err(|e| DirectoryError::InvalidAttributeSyntax(format!("uid: {e}")))?;
            let holders = w.postings(&index_key(IndexKind::Equality, "uid", &n))?;
            if holders.iter().any(|&h| Some(h) != own) {
                return Err(DirectoryError::NotUnique(format!(
                    "uid '{}' is already used by another entry",
                    String::from_utf8_lossy(v)
                )));
            }
        }
        Ok(())
    }

    /// `cigExternalId` (a SCIM externalId) is unique among the entries of one
    /// container, an organisation's agents or its groups: its HR software
    /// finds them by it. NotUnique on a duplicate.
    pub(super) fn check_external_id_unique(
        &self,
        w: &WriteTx,
        entry: &Entry,
        own: Option<u64>,
        parent: u64,
    ) -> Result<()> {
        let Some(ids) = entry.get("cigExternalId") else { return Ok(()) };
        let (_, attr) = self.schema.attr_of("cigExternalId")?;
        for v in &ids.values {
            let n = self
                .schema
                .normalize_eq(attr, v)
                .map_err(|e| DirectoryError::InvalidAttributeSyntax(format!("cigExternalId: {e}")))?;
            for holder in w.postings(&index_key(IndexKind::Equality, &attr.lname, &n))? {
                if Some(holder) != own && w.entry(holder)?.is_some_and(|r| r.parent == parent) {
                    return Err(DirectoryError::NotUnique(format!(
                        "externalId '{}' is already used by another entry of {}",
                        String::from_utf8_lossy(v),
                        entry.dn.parent()
                    )));
                }
            }
        }
        Ok(())
    }
}

impl Directory {
    /// A `uid` no entry of the directory holds, made from a person's names
    /// the way the CIG spells them: the first letter of the given name and
    /// the family name, unaccented, lower case (Hélène Dupré: `hdupre`),
    /// then `hdupre2`, `hdupre3` …, none of `avoid` either (the uids
    /// already given to earlier rows of one import). A proposal only: the
    /// add checks again.
    pub fn propose_uid(&self, given: &str, family: &str, avoid: &[String]) -> Result<String> {
        let letters = |s: &str| -> String {
            String::from_utf8_lossy(&schema::approx::fold(s.as_bytes()))
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect()
        };
        let family = letters(family);
        let given = letters(given);
        let mut base: String = given.chars().take(1).chain(family.chars()).take(32).collect();
        if base.is_empty() {
            base = "agent".into();
        }
        let r = self.store.read()?;
        for n in 1..10_000u32 {
            let candidate = if n == 1 { base.clone() } else { format!("{base}{n}") };
            if !avoid.contains(&candidate)
                && r.postings(&index_key(IndexKind::Equality, "uid", candidate.as_bytes()))?.is_empty()
            {
                return Ok(candidate);
            }
        }
        Err(DirectoryError::Unwilling(format!("no free uid starting with '{base}'")))
    }
}
