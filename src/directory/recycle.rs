//! The recycle bin (issue 21): deleting an agent keeps it, restorable by its
//! entryUUID during its organisation's retention, then purges it for good.
//!
//! A deleted agent leaves the tree entirely (its DN, entryUUID, index keys
//! and its groups' member values go, as for any delete), so that no read,
//! bind or uniqueness check sees it. The bin, a table of its own
//! (`store::kept`), holds the entry as it was stored, password hash and
//! operational attributes included, the groups it was in and its last bind.
//! While it is there its entryUUID stays reserved (RFC 4530 §2: a UUID is
//! never reused); its uid is free for a new agent, and a restore then fails
//! with a clear error.

use super::schema::syntax::format_epoch;
use super::*;
use crate::store::{DeletedRecord, Kept, WriteTx};

/// The attribute of an organisation's entry that overrides `recycle_bin_days`.
pub const RETENTION_ATTR: &str = "cigRecycleBinDays";

/// A deleted agent, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedAgent {
    pub uuid: String,
    /// Its DN when it was deleted (and when restored).
    pub dn: String,
    /// When it was deleted, and when it will be purged (GeneralizedTime).
    pub deleted: String,
    pub purge_at: String,
}

fn no_such(uuid: &str) -> DirectoryError {
    DirectoryError::NoSuchObject {
        dn: format!("entryUUID={uuid}: nothing with this entryUUID is in the recycle bin"),
        matched: String::new(),
    }
}

impl Directory {
    /// In a delete: when the entry is an agent (a child of an organisation's
    /// `ou=agents`), keep it in the bin before it leaves the tree.
    pub(super) fn keep_in_bin(&self, w: &mut WriteTx, id: u64, entry: &Entry, ndn: &str) -> Result<()> {
        let Some(org) = dn::parent_ndn(ndn).strip_prefix("ou=agents,") else { return Ok(()) };
        let Some(Ok(uuid)) = entry.first_str("entryUUID").map(uuid::Uuid::try_parse) else { return Ok(()) };
        let last_bind = w.kept(Kept::LastBind, &id.to_be_bytes())?;
        let record = DeletedRecord {
            deleted: lifecycle::now_secs(),
            org: org.to_string(),
            entry: self.record(entry, ndn, 0),
            groups: memberships(w, ndn)?,
            last_bind: last_bind.and_then(|v| v.try_into().ok()).map(u64::from_be_bytes).unwrap_or(0),
        };
        Ok(w.put_kept(Kept::Bin, uuid.as_bytes(), &record.encode())?)
    }

    /// Days an organisation's deleted agents stay in the bin.
    fn retention_days(&self, r: &impl Reader, org_ndn: &str) -> Result<u64> {
        let own = lifecycle::organisation_days(r, org_ndn, RETENTION_ATTR)?;
        Ok(own.unwrap_or(self.recycle_bin_days))
    }

    /// Days a deleted agent of this organisation stays in the bin.
    pub fn recycle_bin_days_of(&self, org: &Dn) -> Result<u64> {
        let ndn = self.normalize_dn(org)?;
        self.retention_days(&self.store.read()?, &ndn)
    }

    /// The deleted agents `who` may restore (those it could create again),
    /// of one organisation (its normalised DN) or of all, oldest first.
    pub fn deleted_agents(&self, who: &Principal, org: Option<&str>) -> Result<Vec<DeletedAgent>> {
        let r = self.store.read()?;
        let access = self.access(who);
        let mut out = Vec::new();
        for (key, value) in r.kept_all(Kept::Bin)? {
            let d = DeletedRecord::decode(&value)?;
            if org.is_some_and(|o| o != d.org) {
                continue;
            }
            let entry = self.to_entry(&crate::store::Record::decode(&d.entry)?)?;
            let ndn = self.normalize_dn(&entry.dn)?;
            if !access.unrestricted() && access.check_add(&r, &ndn, &entry).is_err() {
                continue;
            }
            let Ok(bytes) = <[u8; 16]>::try_from(key.as_slice()) else { continue };
            let days = self.retention_days(&r, &d.org)?;
            out.push(DeletedAgent {
                uuid: uuid::Uuid::from_bytes(bytes).to_string(),
                dn: entry.dn.to_string(),
                deleted: format_epoch(d.deleted as i64),
                purge_at: format_epoch(lifecycle::days_after(d.deleted, days) as i64),
            });
        }
        out.sort_by(|a, b| a.deleted.cmp(&b.deleted));
        Ok(out)
    }

    /// Put a deleted agent back where it was, with its entryUUID, attributes,
    /// password and group memberships (the groups that still exist); its DN.
    pub fn restore(&self, actor: &Actor, uuid: &str) -> Result<Dn> {
        let target = self.bin_entry(uuid)?.map(|e| e.dn);
        self.write_one(actor, Write::one(Change::Restore(uuid.to_string())))?;
        target.ok_or_else(|| no_such(uuid))
    }

    fn bin_entry(&self, uuid: &str) -> Result<Option<Entry>> {
        let u = parse_uuid(uuid)?;
        let r = self.store.read()?;
        let Some(v) = r.kept(Kept::Bin, u.as_bytes())? else { return Ok(None) };
        let d = DeletedRecord::decode(&v)?;
        Ok(Some(self.to_entry(&crate::store::Record::decode(&d.entry)?)?))
    }

    /// [`Directory::restore`] inside a write transaction.
    pub(super) fn restore_in(&self, w: &mut WriteTx, actor: &Actor, uuid: &str) -> Result<()> {
        let u = parse_uuid(uuid)?;
        let Some(v) = w.kept(Kept::Bin, u.as_bytes())? else { return Err(no_such(uuid)) };
        let d = DeletedRecord::decode(&v)?;
        let entry = self.to_entry(&crate::store::Record::decode(&d.entry)?)?;
        let ndn = self.normalize_dn(&entry.dn)?;
        let access = self.access(&actor.principal).uncached();
        // Another organisation's agent is not there, for this identity.
        if !access.unrestricted() && access.check_add(w, &ndn, &entry).is_err() {
            return Err(no_such(uuid));
        }
        if w.id_of_dn(&ndn)?.is_some() {
            return Err(DirectoryError::AlreadyExists(format!(
                "{}: another account has had this DN (its uid) since the agent was deleted; the deleted agent \
                 stays in the recycle bin until that one is renamed or deleted",
                entry.dn
            )));
        }
        w.delete_kept(Kept::Bin, u.as_bytes())?;
        let prepared = self.prepare_add(actor, entry.clone(), AddMode::Import)?;
        self.store_add(w, actor, &prepared, AddMode::Import)?;
        if d.last_bind > 0
            && let Some(id) = w.id_of_dn(&ndn)?
        {
            w.put_kept(Kept::LastBind, &id.to_be_bytes(), &d.last_bind.to_be_bytes())?;
        }
        // Its memberships come back, under the restorer's rights: a group
        // it may no longer add the agent to (an application the
        // organisation no longer subscribes to, a group gone) is left out.
        for group in &d.groups {
            let (attr, group) = group.split_once('\t').unwrap_or(("member", group.as_str()));
            let Ok(gdn) = Dn::parse(group) else { continue };
            let gndn = self.normalize_dn(&gdn)?;
            if w.id_of_dn(&gndn)?.is_none() {
                continue;
            }
            let add = Modification::new(ModOp::Add, attr, [entry.dn.to_string()]);
            match self.modify_in(w, actor, &gdn, &[add]) {
                Ok(())
                | Err(DirectoryError::AttributeOrValueExists(_))
                | Err(DirectoryError::InsufficientAccess(_))
                | Err(DirectoryError::NoSuchObject { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.log(w, actor, "restore", &entry.dn, &ndn, Vec::new())
    }

    /// Purge for good the deleted agents whose retention has run out at
    /// `as_of` (the form of [`lifecycle::instant`]); their DNs. Each purge is
    /// its own transaction and is recorded in the audit trail.
    pub(super) fn purge_bin(&self, as_of: &str) -> Result<Vec<String>> {
        let due = {
            let r = self.store.read()?;
            let mut due = Vec::new();
            for (key, value) in r.kept_all(Kept::Bin)? {
                let d = DeletedRecord::decode(&value)?;
                let days = self.retention_days(&r, &d.org)?;
                let purge_at = lifecycle::days_after(d.deleted, days);
                let due_at = super::schema::syntax::epoch_of(as_of).unwrap_or(0).max(0) as u64;
                if purge_at <= due_at {
                    due.push(key);
                }
            }
            due
        };
        let server = Actor { peer: "lifecycle".into(), ..Actor::new(lifecycle::SERVER_ACTOR) };
        let mut purged = Vec::new();
        for key in due {
            let done = self.store.write_with(|w| -> Result<Option<String>> {
                let Some(v) = w.kept(Kept::Bin, &key)? else { return Ok(None) };
                let d = DeletedRecord::decode(&v)?;
                let dn = crate::store::Record::decode_dn(&d.entry)?;
                w.delete_kept(Kept::Bin, &key)?;
                self.log_audit(w, &server, "purge", &dn, Vec::new(), "purged: end of the recycle bin's retention")?;
                Ok(Some(dn))
            })?;
            purged.extend(done);
        }
        if !purged.is_empty() {
            self.committed(false);
        }
        Ok(purged)
    }

    /// An add may not take the entryUUID of an agent in the bin.
    pub(super) fn check_uuid_not_binned(&self, w: &WriteTx, uuid: &uuid::Uuid) -> Result<()> {
        if w.kept(Kept::Bin, uuid.as_bytes())?.is_some() {
            return Err(DirectoryError::ConstraintViolation(format!(
                "entryUUID {uuid} is that of a deleted agent in the recycle bin (restore it instead)"
            )));
        }
        Ok(())
    }
}

/// The groups an entry is a member of, each as `attribute<TAB>group DN`
/// (`member` of a groupOfNames, `uniqueMember` of a groupOfUniqueNames),
/// so that a restore puts it back in the attribute it was in.
fn memberships(r: &impl crate::store::Reader, ndn: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (attr, index) in [("member", "member"), ("uniqueMember", "uniquemember")] {
        let key = crate::store::index_key(crate::store::IndexKind::Equality, index, ndn.as_bytes());
        for id in r.postings(&key)? {
            if let Some(dn) = r.entry_dn(id)? {
                out.push(format!("{attr}\t{dn}"));
            }
        }
    }
    Ok(out)
}

fn parse_uuid(uuid: &str) -> Result<uuid::Uuid> {
    uuid::Uuid::try_parse(uuid.trim())
        .map_err(|_| DirectoryError::InvalidAttributeSyntax(format!("'{uuid}' is not an entryUUID")))
}
