//! The one write entry point of the core: a client's changes, applied all
//! or none, durably, under an optional precondition that is checked inside
//! the transaction that applies them (RFC 4528's Assertion control, RFC
//! 7644 §3.14's `If-Match`): no other write can come between the check and
//! the change. LDAP, SCIM and the command line all write through
//! [`Directory::write`]; `add`, `modify`, `delete` and `rename` are its
//! one-change forms.

use std::sync::Arc;

use super::access::Rights;
use super::commit::Queued;
use super::filter::Tri;
use super::*;
use crate::store::WriteTx;

/// What a client asks the directory to change.
#[derive(Debug, Clone)]
pub struct Write {
    pub changes: Vec<Change>,
    pub guard: Option<Guard>,
}

/// A precondition on one entry: the write applies only if it holds when its
/// transaction reaches it.
#[derive(Debug, Clone)]
pub struct Guard {
    pub dn: Dn,
    pub condition: Condition,
}

#[derive(Debug, Clone)]
pub enum Condition {
    /// RFC 4528: the entry matches the filter, as the identity sees it (an
    /// attribute it may not read is Undefined). On an add, the entry to be added.
    Matches(Filter),
    /// RFC 7644 §3.14: the entry is at one of these versions ([`version`]);
    /// `*` is any version of an entry that exists.
    Version(Vec<String>),
    /// The entry is still at this revision: a read-modify-write (a SCIM
    /// PATCH computed from what was read) that another write overtook is
    /// refused rather than applied over it.
    Revision(u64),
}

impl Write {
    pub fn new(changes: Vec<Change>) -> Write {
        Write { changes, guard: None }
    }

    pub fn one(change: Change) -> Write {
        Write::new(vec![change])
    }

    pub fn guarded(mut self, dn: Dn, condition: Condition) -> Write {
        self.guard = Some(Guard { dn, condition });
        self
    }
}

/// What a write did.
#[derive(Debug, Default)]
pub struct Written {
    /// The first entry it added, as stored (operational attributes included).
    pub added: Option<Entry>,
}

/// The revision of an entry: 1 when created, one more at every change (0 for
/// an entry written before revisions were kept).
pub fn revision(entry: &Entry) -> u64 {
    entry.first_str("cigRevision").and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// The next revision, set on the entry about to be stored.
pub(super) fn bump_revision(entry: &mut Entry) {
    let next = revision(entry).saturating_add(1);
    entry.set("cigRevision", vec![next.to_string().into_bytes()]);
}

/// The version of an entry as SCIM shows it (`meta.version`, the ETag, RFC
/// 7644 §3.14): its revision, and a digest of the groups it is a member of,
/// since a resource's `groups` change without a write to its entry. Stable
/// across restarts (FNV-1a), so that an ETag stays valid.
pub fn version(entry: &Entry, memberships: &[String]) -> String {
    let rev = revision(entry);
    if memberships.is_empty() {
        return format!("W/\"{rev}\"");
    }
    // The same groups however their DNs are spelled (case, spaces).
    let mut sorted: Vec<String> =
        memberships.iter().map(|m| m.chars().filter(|c| *c != ' ').collect::<String>().to_lowercase()).collect();
    sorted.sort_unstable();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for m in &sorted {
        for b in m.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("W/\"{rev}-{:08x}\"", h as u32)
}

impl Directory {
    /// Apply a client's changes, all or none, durably, sharing the
    /// transaction with concurrent callers (group commit). On failure, the
    /// index of the change refused and why; a refusal is in the audit trail.
    pub fn write(&self, actor: &Actor, write: Write) -> std::result::Result<Written, (usize, DirectoryError)> {
        let (queued, guard) = self.prepare_write(actor, write)?;
        let added = first_added(&queued);
        self.commit_queued(actor, queued, guard)?;
        Ok(Written { added })
    }

    /// [`Directory::write`] for an async caller: the changes are prepared on
    /// the caller's task, which then waits for the writer thread without
    /// holding a thread of its own. Without a writer thread, the commit runs
    /// on the blocking pool.
    pub async fn write_async(
        self: &Arc<Self>,
        actor: &Actor,
        write: Write,
    ) -> std::result::Result<Written, (usize, DirectoryError)> {
        let (queued, guard) = self.prepare_write(actor, write)?;
        let added = first_added(&queued);
        self.commit_queued_async(actor, queued, guard).await?;
        Ok(Written { added })
    }

    /// Judge changes as [`Directory::write`] would, all of them in one
    /// transaction that is then abandoned: nothing is written, nothing is
    /// recorded. A CSV import's dry run; the index of the first change
    /// refused, and why.
    pub fn dry_run(&self, actor: &Actor, changes: Vec<Change>) -> std::result::Result<usize, (usize, DirectoryError)> {
        let txn = self.store.write_unlogged().map_err(|e| (0, e.into()))?;
        let mut w = txn.tables().map_err(|e| (0, e.into()))?;
        let n = changes.len();
        for (i, change) in changes.into_iter().enumerate() {
            self.apply_in(&mut w, actor, change, AddMode::Client).map_err(|e| (i, e))?;
        }
        // Dropped uncommitted: redb discards the transaction.
        Ok(n)
    }

    /// Add an entry (RFC 4511 §4.7).
    pub fn add(&self, actor: &Actor, entry: Entry) -> Result<()> {
        self.write_one(actor, Write::one(Change::Add(entry)))
    }

    /// Modify an entry (RFC 4511 §4.6): all changes or none.
    pub fn modify(&self, actor: &Actor, dn: &Dn, mods: &[Modification]) -> Result<()> {
        self.write_one(actor, Write::one(Change::Modify(dn.clone(), mods.to_vec())))
    }

    /// Delete a leaf entry (RFC 4511 §4.8).
    pub fn delete(&self, actor: &Actor, dn: &Dn) -> Result<()> {
        self.write_one(actor, Write::one(Change::Delete(dn.clone())))
    }

    /// Rename or move an entry with its subtree (RFC 4511 §4.9).
    pub fn rename(
        &self,
        actor: &Actor,
        dn: &Dn,
        new_rdn: &Rdn,
        delete_old_rdn: bool,
        new_superior: Option<&Dn>,
    ) -> Result<()> {
        let rename = Change::Rename {
            dn: dn.clone(),
            new_rdn: new_rdn.clone(),
            delete_old_rdn,
            new_superior: new_superior.cloned(),
        };
        self.write_one(actor, Write::one(rename))
    }

    /// A write whose caller needs only the error, not which change it was.
    pub fn write_one(&self, actor: &Actor, write: Write) -> Result<()> {
        self.write(actor, write).map(|_| ()).map_err(|(_, e)| e)
    }

    /// What a write needs before it queues: a plain password is checked and
    /// hashed here (argon2 takes milliseconds and every other writer would
    /// wait for it in the transaction), once the values-free access checks
    /// have passed, so that a refused write is refused as such whatever its
    /// password; each add is checked and prepared by its own caller.
    fn prepare_write(
        &self,
        actor: &Actor,
        write: Write,
    ) -> std::result::Result<(Vec<Queued>, Option<Guard>), (usize, DirectoryError)> {
        self.refuse_on_replica(actor).map_err(|e| (0, e))?;
        let Write { changes, guard } = write;
        let mut queued = Vec::with_capacity(changes.len());
        // Where an earlier change of the same write renamed an entry: a later
        // change names it by its new DN, the snapshot knows it by its old one.
        let mut renamed: Vec<(Dn, Dn)> = Vec::new();
        for (i, change) in changes.into_iter().enumerate() {
            let (op, dn, attrs) = write::describe(&change);
            if let Change::Rename { dn, new_rdn, new_superior, .. } = &change {
                let to = new_superior.clone().unwrap_or_else(|| dn.parent()).child(new_rdn.clone());
                renamed.push((to, dn.clone()));
            }
            let known_as = renamed.iter().rev().find(|(to, _)| *to == dn).map(|(_, from)| from.clone());
            match self.prepare_change(actor, change, known_as.as_ref()) {
                Ok(q) => queued.push(q),
                Err(e) => {
                    self.audit_refusal(actor, op, &dn, attrs, &e);
                    return Err((i, e));
                }
            }
        }
        Ok((queued, guard))
    }

    fn prepare_change(&self, actor: &Actor, change: Change, known_as: Option<&Dn>) -> Result<Queued> {
        match change {
            Change::Add(mut entry) => {
                // Whatever the attribute is called (`2.5.4.35`, `userPassword;binary`).
                self.refuse_password_rdn(&entry.dn)?;
                let sent = entry.attrs.iter().filter(|a| self.is_password(&a.name)).flat_map(|a| a.values.iter());
                self.may_store_hashes(actor, sent.map(Vec::as_slice))?;
                if entry.get("userPassword").is_some_and(|a| a.values.iter().any(|v| !password::is_hashed(v))) {
                    self.precheck(actor, &entry.dn, None)?;
                    self.hash_plain_passwords(actor, &mut entry)?;
                }
                Ok(Queued::Add(Box::new(self.prepare_add(actor, entry, AddMode::Client)?)))
            }
            Change::Modify(dn, mut mods) => {
                let is_password = |m: &Modification| self.is_password(&m.attr);
                // Values deleted are named, not stored: a hash is how they are named.
                let stored = |m: &&Modification| is_password(m) && m.op != ModOp::Delete;
                let sent = mods.iter().filter(stored).flat_map(|m| m.values.iter().map(Vec::as_slice));
                self.may_store_hashes(actor, sent)?;
                if mods.iter().any(|m| is_password(m) && m.values.iter().any(|v| !password::is_hashed(v))) {
                    let names: Vec<String> = mods.iter().map(|m| m.attr.clone()).collect();
                    self.precheck(actor, known_as.unwrap_or(&dn), Some(&names))?;
                    let plain: Vec<&[u8]> = (mods.iter().filter(|m| is_password(m) && m.op != ModOp::Delete))
                        .flat_map(|m| m.values.iter().map(Vec::as_slice))
                        .filter(|v| !password::is_hashed(v))
                        .collect();
                    self.refuse_reused(actor, known_as.unwrap_or(&dn), &plain)?;
                    for m in mods.iter_mut().filter(|m| is_password(m)) {
                        let values = std::mem::take(&mut m.values);
                        m.values = values.into_iter().map(|v| self.hash_if_plain(actor, v)).collect::<Result<_>>()?;
                    }
                }
                Ok(Queued::Other(Change::Modify(dn, mods)))
            }
            Change::Rename { dn, new_rdn, delete_old_rdn, new_superior } => {
                self.refuse_password_rdn(&Dn::root().child(new_rdn.clone()))?;
                Ok(Queued::Other(Change::Rename { dn, new_rdn, delete_old_rdn, new_superior }))
            }
            other => Ok(Queued::Other(other)),
        }
    }

    /// Whether an attribute description names `userPassword`, whatever its
    /// spelling (`2.5.4.35`, `userPassword;binary`).
    fn is_password(&self, name: &str) -> bool {
        self.schema.attr_id(name).is_some_and(|id| self.schema.attr(id).lname == "userpassword")
    }

    /// A password never names an entry: its value would be in the DN, in
    /// clear, and would escape the password policy.
    fn refuse_password_rdn(&self, dn: &Dn) -> Result<()> {
        let named = dn.rdn().is_some_and(|r| r.avas.iter().any(|a| self.is_password(&a.attr)));
        if named {
            return Err(DirectoryError::NamingViolation("userPassword cannot name an entry".into()));
        }
        Ok(())
    }

    /// The access checks that need no values, on a read snapshot, before any
    /// password is checked or hashed: the target (or, for an add, its parent)
    /// must be visible, and each attribute a modify names writable. A target
    /// missing or hidden gets the same noSuchObject, whose matchedDN is the
    /// deepest ancestor the identity may see (RFC 4511 §4.1.9). The write
    /// transaction checks everything again, values included.
    fn precheck(&self, actor: &Actor, dn: &Dn, modified: Option<&[String]>) -> Result<()> {
        let access = self.access(&actor.principal);
        if access.unrestricted() {
            return Ok(());
        }
        let r = self.store.read()?;
        let target = if modified.is_some() { dn.clone() } else { dn.parent() };
        let ndn = self.normalize_dn(&target)?;
        let Some(id) = r.id_of_dn(&ndn)? else { return Err(self.no_such_object_for(&access, &r, dn)) };
        // A modify's rules test the entry itself; an add only needs its parent browsable.
        let entry = match modified {
            Some(_) => r.entry(id)?.map(|rec| self.to_entry(&rec)).transpose()?,
            None => self.entry_for_rules(&access, Rights::BROWSE, &r, id)?,
        };
        let Some(entry) = entry else { return Err(self.no_such_object_for(&access, &r, dn)) };
        match modified {
            Some(names) => {
                if access.readable(&r, &ndn, &entry)?.is_none() {
                    return Err(self.no_such_object_for(&access, &r, dn));
                }
                access.check_modify(&r, &ndn, &entry, &entry, names)
            }
            None if access.browsable(&r, &ndn, &entry)? => Ok(()),
            None => Err(self.no_such_object_for(&access, &r, dn)),
        }
    }

    /// Whether a write's precondition holds, in its own transaction, before
    /// any of its changes is applied. An entry the identity may not see is
    /// absent, as for the change itself.
    pub(super) fn check_guard(&self, w: &WriteTx, actor: &Actor, guard: &Guard, queued: &[Queued]) -> Result<()> {
        let ndn = self.normalize_dn(&guard.dn)?;
        let access = self.access(&actor.principal).uncached();
        let found = match w.id_of_dn(&ndn)? {
            Some(id) => w.entry(id)?.map(|rec| (id, rec)),
            None => None,
        };
        let Some((id, rec)) = found else {
            // RFC 4528 §3 on an add: the assertion is tested on the entry to be added.
            if let Condition::Matches(filter) = &guard.condition
                && let Some(add) = queued.iter().find_map(|q| match q {
                    Queued::Add(add) if add.ndn() == ndn => Some(add),
                    _ => None,
                })
            {
                return match filter.evaluate(&self.schema, add.stored()) {
                    Tri::True => Ok(()),
                    _ => Err(DirectoryError::PreconditionFailed(
                        "the entry to be added does not match the assertion".into(),
                    )),
                };
            }
            return Err(self.no_such_object_for(&access, w, &guard.dn));
        };
        let mut entry = self.to_entry(&rec)?;
        if let Condition::Matches(filter) = &guard.condition {
            let mut wanted = Vec::new();
            filter.attributes(&mut wanted);
            self.add_filter_virtuals(w, id, &rec, &mut entry, &wanted)?;
        }
        let Some(mask) = access.readable(w, &ndn, &entry)? else { return Err(self.hidden(&guard.dn)) };
        match &guard.condition {
            Condition::Matches(filter) => {
                let matched = if mask.is_everything() {
                    filter.evaluate(&self.schema, &entry)
                } else {
                    filter.evaluate_masked(&self.schema, &entry, &|a| mask.allows(a))
                };
                if matched == Tri::True {
                    Ok(())
                } else {
                    Err(DirectoryError::PreconditionFailed(format!("{} does not match the assertion", guard.dn)))
                }
            }
            Condition::Version(wanted) => {
                let current = version(&entry, &self.member_of_in(w, &ndn)?);
                if wanted.iter().any(|v| v == "*" || *v == current) {
                    Ok(())
                } else {
                    Err(DirectoryError::PreconditionFailed(format!("the resource is at version {current}")))
                }
            }
            Condition::Revision(expected) => {
                let current = revision(&entry);
                if current == *expected {
                    Ok(())
                } else {
                    Err(DirectoryError::PreconditionFailed(format!(
                        "{} changed meanwhile (revision {current}, expected {expected})",
                        guard.dn
                    )))
                }
            }
        }
    }
}

fn first_added(queued: &[Queued]) -> Option<Entry> {
    queued.iter().find_map(|q| match q {
        Queued::Add(add) => Some(add.stored().clone()),
        Queued::Other(_) => None,
    })
}
