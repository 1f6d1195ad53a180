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
