//! Write operations: add, modify, delete, rename. Each runs in one store write
//! transaction that also maintains indexes, operational attributes,
//! referential integrity and the changelog; the public methods commit before
//! returning, so an acknowledged write is on disk.

use super::access::Rights;
use super::schema::syntax::now_generalized;
use super::*;
use crate::store::{ChangeRecord, Csn, WriteTx};

/// Operational attributes the core writes; a client may not (RFC 4512 §3.4),
/// but an import of a slapcat file keeps them.
const STORED_OPERATIONAL: &[&str] = &[
    "entryUUID",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "structuralObjectClass",
    "cigRevision",
];

/// Computed on read, never stored; dropped if an import carries them.
const VIRTUAL: &[&str] = &[
    "entryDN",
    "hasSubordinates",
    "numSubordinates",
    "memberOf",
    "subschemaSubentry",
    "pwdLastSuccess",
    "entryCSN",
    "contextCSN",
];

/// Drop the computed attributes an entry from elsewhere (an import, a
/// provider) may carry: they are never stored.
pub(super) fn strip_virtual(entry: &mut Entry) {
    for v in VIRTUAL {
        entry.remove(v);
    }
}

/// The member value a group keeps when it has no one: the empty DN.
pub const EMPTY_GROUP_MEMBER: &str = "";

/// The modification that keeps a group valid when a change of the same
/// modify may remove its last member (SCIM, whose groups may be empty): the
/// placeholder, dropped by the core beside real members.
pub fn keep_placeholder_member() -> Modification {
    Modification { op: ModOp::Add, attr: "member".into(), values: vec![EMPTY_GROUP_MEMBER.into()] }
}

/// Where an add comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddMode {
    /// A client request: operational attributes are the server's.
    Client,
    /// An LDIF import: operational attributes present in the file are kept.
    Import,
}

/// An add checked and prepared outside the write transaction (see
/// [`Directory::prepare_add`]).
pub(super) struct PreparedAdd {
    /// As the client sent it, checked and canonicalised.
    entry: Entry,
    /// With its operational attributes: what is stored.
    full: Entry,
    ndn: String,
    uuid: uuid::Uuid,
    keys: Vec<Vec<u8>>,
    /// `full`'s record, encoded with parent 0 (see `Record::with_parent`),
    /// and its DN as text: work done before the serial part of the commit.
    record: Vec<u8>,
    dn_text: String,
    /// The CSN an imported entry carries (a slapcat file's `entryCSN`),
    /// kept; otherwise the store gives it a new one.
    csn: Option<Csn>,
}

impl PreparedAdd {
    pub(super) fn dn(&self) -> &Dn {
        &self.entry.dn
    }

    pub(super) fn attr_names(&self) -> Vec<String> {
        self.entry.attrs.iter().map(|a| a.name.clone()).collect()
    }

    /// The entry as it will be stored.
    pub(super) fn stored(&self) -> &Entry {
        &self.full
    }

    pub(super) fn ndn(&self) -> &str {
        &self.ndn
    }
}

/// One change of an LDIF change record or of a batch.
#[derive(Debug, Clone)]
pub enum Change {
    Add(Entry),
    Modify(Dn, Vec<Modification>),
    Delete(Dn),
    Rename {
        dn: Dn,
        new_rdn: Rdn,
        delete_old_rdn: bool,
        new_superior: Option<Dn>,
    },
    /// Put the agent with this entryUUID back from the recycle bin.
    Restore(String),
}

impl PreparedAdd {
    /// Whether the entry is an `ou=agents`: its parent becomes an organisation.
    pub(super) fn is_agents_container(&self) -> bool {
        self.ndn.starts_with("ou=agents,") || self.ndn == "ou=agents"
    }
}

impl Directory {
    /// One change inside a transaction.
    pub(super) fn apply_in(&self, w: &mut WriteTx, actor: &Actor, change: Change, mode: AddMode) -> Result<()> {
        match change {
            Change::Add(e) => self.add_in(w, actor, e, mode),
            Change::Modify(dn, mods) => self.modify_in(w, actor, &dn, &mods),
            Change::Delete(dn) => self.delete_in(w, actor, &dn),
            Change::Rename { dn, new_rdn, delete_old_rdn, new_superior } => {
                self.rename_in(w, actor, &dn, &new_rdn, delete_old_rdn, new_superior.as_ref())
            }
            Change::Restore(uuid) => self.restore_in(w, actor, &uuid),
        }
    }

    /// Run one write that bypasses group commit and changes no structure (a
    /// re-hash) in its own transaction; a refusal is recorded in the audit trail.
    pub(super) fn audited<T>(
        &self,
        actor: &Actor,
        op: &str,
        dn: &Dn,
        attrs: Vec<String>,
        f: impl FnOnce(&mut WriteTx) -> Result<T>,
    ) -> Result<T> {
        let txn = self.store.write()?;
        let mut w = txn.tables()?;
        match f(&mut w) {
            Ok(v) => {
                let staged = w.finish()?;
                txn.commit(staged)?;
                self.committed(false);
                Ok(v)
            }
            Err(e) => {
                // The refusal is recorded in a transaction of its own, which
                // would wait forever for this one's write lock.
                drop(w);
                drop(txn);
                self.audit_refusal(actor, op, dn, attrs, &e);
                Err(e)
            }
        }
    }

    /// Record a refused write (DESIGN.md / issue 5: every write, with its result).
    pub(super) fn audit_refusal(&self, actor: &Actor, op: &str, dn: &Dn, attrs: Vec<String>, e: &DirectoryError) {
        self.record_audit(actor, op, &dn.to_string(), attrs, &super::error::result_name(e));
    }

    /// Record a write a front end refused before it reached the core; `target`
    /// is the entry's DN when known, else what the client named.
    pub fn record_refusal(&self, actor: &Actor, op: &str, target: &str, why: &str) {
        self.record_audit(actor, op, target, Vec::new(), why);
    }

    fn record_audit(&self, actor: &Actor, op: &str, target: &str, attrs: Vec<String>, result: &str) {
        if matches!(actor.principal, Principal::Server) {
            return;
        }
        let outcome = self.store.write_with(|w| self.log_audit(w, actor, op, target, attrs, result));
        if let Err(err) = outcome {
            tracing::warn!(%target, %err, "could not record a refused {op} in the audit trail");
        }
    }

    /// Append one audit record (who, when, from where, what, result) in `w`;
    /// `target` is a DN, or what the client named when there is none.
    pub(super) fn log_audit(
        &self,
        w: &mut WriteTx,
        actor: &Actor,
        op: &str,
        target: &str,
        attrs: Vec<String>,
        result: &str,
    ) -> Result<()> {
        let ndn = Dn::parse(target).ok().and_then(|d| self.normalize_dn(&d).ok());
        self.log_change(w, actor, op, target, ndn.as_deref(), attrs, result)
    }

    /// [`Directory::log_audit`] when the target's normalised DN is known.
    #[allow(clippy::too_many_arguments)]
    fn log_change(
        &self,
        w: &mut WriteTx,
        actor: &Actor,
        op: &str,
        target: &str,
        target_ndn: Option<&str>,
        attrs: Vec<String>,
        result: &str,
    ) -> Result<()> {
        let org = target_ndn.and_then(|n| self.organisation_of(w, n, false).ok().flatten().map(str::to_string));
        w.log_change(&ChangeRecord {
            time: now_generalized(),
            actor: actor.dn.clone(),
            op: op.to_string(),
            dn: target.to_string(),
            attrs,
            peer: actor.peer.clone(),
            result: result.to_string(),
            org: org.unwrap_or_default(),
        })?;
        Ok(())
    }

    pub(super) fn add_in(&self, w: &mut WriteTx, actor: &Actor, entry: Entry, mode: AddMode) -> Result<()> {
        let prepared = self.prepare_add(actor, entry, mode)?;
        self.store_add(w, actor, &prepared, mode)
    }

    /// What an add needs that does not depend on the store: schema checks,
    /// normalisation, operational attributes, index keys. Done before the
    /// write transaction, so that concurrent clients do it in parallel and
    /// the group commit's leader only checks and stores.
    pub(super) fn prepare_add(&self, actor: &Actor, mut entry: Entry, mode: AddMode) -> Result<PreparedAdd> {
        let ndn = self.normalize_dn(&entry.dn)?;
        self.schema.canonicalize(&mut entry)?;
        let csn = match mode {
            AddMode::Import => entry.first_str("entryCSN").and_then(Csn::parse),
            AddMode::Client => None,
        };
        for v in VIRTUAL {
            entry.remove(v);
        }
        if mode == AddMode::Client {
            for a in &entry.attrs {
                let (_, attr) = self.schema.attr_of(&a.name)?;
                if attr.no_user_modification {
                    return Err(DirectoryError::ConstraintNoUserModification(attr.name.clone()));
                }
            }
        }
        self.schema.add_naming_values(&mut entry)?;
        self.hash_plain_passwords(actor, &mut entry)?;
        if entry.get("userPassword").is_some() && entry.get("pwdChangedTime").is_none() {
            entry.set("pwdChangedTime", vec![now_generalized().into_bytes()]);
        }
        let structural = self.schema.check_entry(&mut entry)?;
        super::lifecycle::canonicalize_window(&mut entry);
        super::lifecycle::check_window(&entry)?;

        // Operational attributes (RFC 4512 §3.4, RFC 4530).
        let now = now_generalized();
        let uuid = match entry.first_str("entryUUID").map(uuid::Uuid::try_parse) {
            Some(Ok(u)) => u,
            Some(Err(_)) => {
                return Err(DirectoryError::InvalidAttributeSyntax("entryUUID: not a UUID".into()));
            }
            // Time-ordered (RFC 9562 §5.7): entries created together get
            // neighbouring keys in the UUID and entryUUID indexes, so a group
            // commit touches a few B-tree pages there instead of one per entry.
            None => uuid::Uuid::now_v7(),
        };
        let defaults: [(&str, String); 7] = [
            ("entryUUID", uuid.to_string()),
            ("createTimestamp", now.clone()),
            ("modifyTimestamp", now),
            ("creatorsName", actor.dn.clone()),
            ("modifiersName", actor.dn.clone()),
            ("structuralObjectClass", structural),
            ("cigRevision", "1".into()),
        ];
        let mut full = entry.clone();
        for (name, value) in defaults {
            if full.get(name).is_none() {
                full.set(name, vec![value.into_bytes()]);
            }
        }
        let keys = self.index_keys(&full);
        // The DN is written out once, for the record and the changelog.
        let dn_text = full.dn.to_string();
        let record = encode(&full, &dn_text, &ndn, 0);
        Ok(PreparedAdd { entry, full, ndn, uuid, keys, record, dn_text, csn })
    }

    /// Store a prepared add: the checks that need the store (access, existence,
    /// parent, uniqueness), then the entry and its indexes.
    pub(super) fn store_add(&self, w: &mut WriteTx, actor: &Actor, p: &PreparedAdd, mode: AddMode) -> Result<()> {
        let PreparedAdd { entry, full, ndn, uuid, keys, record, dn_text, csn } = p;
        let access = self.access(&actor.principal).uncached();
        let mut visible_parent = None;
        if !access.unrestricted() {
            // The parent must be visible, then the policy must allow this entry
            // there: before any existence check, so refusals disclose nothing.
            let pndn = dn::parent_ndn(ndn);
            let parent = w.id_of_dn(pndn).ok().flatten();
            let Some(pid) = parent else { return Err(self.no_such_object_for(&access, w, &entry.dn)) };
            let Some(parent_entry) = self.entry_for_rules(&access, Rights::BROWSE, w, pid)? else {
                return Err(self.no_such_object_for(&access, w, &entry.dn));
            };
            if !access.browsable(w, pndn, &parent_entry)? {
                return Err(self.no_such_object_for(&access, w, &entry.dn));
            }
            access.check_add(w, ndn, entry)?;
            visible_parent = Some(pid);
        }
        if w.id_of_dn(ndn)?.is_some() {
            return Err(DirectoryError::AlreadyExists(entry.dn.to_string()));
        }
        let parent = if *ndn == self.suffix_ndn {
            0
        } else if !dn::is_under(ndn, &self.suffix_ndn) {
            return Err(DirectoryError::NoSuchObject { dn: entry.dn.to_string(), matched: String::new() });
        } else if let Some(pid) = visible_parent {
            pid
        } else {
            match w.id_of_dn(dn::parent_ndn(ndn))? {
                Some(p) => p,
                None => return Err(self.no_such_object(w, &entry.dn)),
            }
        };
        self.check_uid_unique(w, entry, None)?;
        self.check_external_id_unique(w, entry, None, parent)?;
        if w.id_of_uuid(uuid.as_bytes())?.is_some() {
            return Err(DirectoryError::ConstraintViolation(format!("entryUUID {uuid} is already used")));
        }
        self.check_uuid_not_binned(w, uuid)?;

        let id = w.next_id()?;
        match csn {
            Some(csn) => w.put_encoded_entry_at(id, &Record::with_parent(record, parent), *csn)?,
            None => w.put_encoded_entry(id, Record::with_parent(record, parent))?,
        }
        w.put_dn(ndn, id)?;
        w.put_uuid(uuid.as_bytes(), id)?;
        if parent != 0 {
            w.add_child(parent, id)?;
        }
        w.index(keys, id, true)?;
        if mode == AddMode::Client {
            let attrs = full.attrs.iter().map(|a| a.name.clone()).collect();
            self.log_change(w, actor, "add", dn_text, Some(ndn), attrs, "success")?;
        }
        Ok(())
    }

    pub(super) fn modify_in(&self, w: &mut WriteTx, actor: &Actor, dn: &Dn, mods: &[Modification]) -> Result<()> {
        let ndn = self.normalize_dn(dn)?;
        let Some(id) = w.id_of_dn(&ndn)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let Some(rec) = w.entry(id)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let old = self.to_entry(&rec)?;
        let access = self.access(&actor.principal).uncached();
        if !access.unrestricted() {
            if access.readable(w, &ndn, &old)?.is_none() {
                return Err(self.no_such_object_for(&access, w, dn));
            }
            // Attribute by attribute first, so a refusal says nothing of the values.
            let names: Vec<String> = mods.iter().map(|m| m.attr.clone()).collect();
            access.check_modify(w, &ndn, &old, &old, &names)?;
        }
        let mut new = old.clone();
        let mut touched = Vec::new();
        for m in mods {
            let (aid, attr) = self.schema.attr_of(&m.attr)?;
            if attr.no_user_modification || VIRTUAL.iter().any(|v| v.eq_ignore_ascii_case(&attr.name)) {
                return Err(DirectoryError::ConstraintNoUserModification(attr.name.clone()));
            }
            let name = attr.name.clone();
            let norm = |v: &[u8]| {
                self.schema
                    .normalize_eq(attr, v)
                    .map_err(|e| DirectoryError::InvalidAttributeSyntax(format!("{name}: {e}")))
            };
            let mut values = m.values.clone();
            if attr.lname == "userpassword" {
                values = values.into_iter().map(|v| self.hash_if_plain(actor, v)).collect::<Result<_>>()?;
            }
            match m.op {
                ModOp::Add => {
                    if values.is_empty() {
                        return Err(DirectoryError::Protocol(format!("add of '{name}' without values")));
                    }
                    self.schema.check_values(aid, &values)?;
                    let existing: std::collections::HashSet<Vec<u8>> = new
                        .get(&name)
                        .map(|a| a.values.iter().filter_map(|v| norm(v).ok()).collect())
                        .unwrap_or_default();
                    for v in &values {
                        if existing.contains(&norm(v)?) {
                            return Err(DirectoryError::AttributeOrValueExists(format!(
                                "{name}: value '{}' already exists",
                                String::from_utf8_lossy(v)
                            )));
                        }
                    }
                    new.add_values(&name, values);
                }
                ModOp::Delete => {
                    let Some(current) = new.get(&name).cloned() else {
                        return Err(DirectoryError::NoSuchAttribute(format!("{name} is not present in {dn}")));
                    };
                    if values.is_empty() {
                        new.remove(&name);
                    } else {
                        let mut kept = current.values.clone();
                        for v in &values {
                            let nv = norm(v)?;
                            let before = kept.len();
                            kept.retain(|k| norm(k).map(|nk| nk != nv).unwrap_or(true));
                            if kept.len() == before {
                                return Err(DirectoryError::NoSuchAttribute(format!(
                                    "{name}: value '{}' is not present",
                                    String::from_utf8_lossy(v)
                                )));
                            }
                        }
                        new.set(&name, kept);
                    }
                }
                ModOp::Replace => {
                    if !values.is_empty() {
                        self.schema.check_values(aid, &values)?;
                    }
                    new.set(&name, values);
                }
                ModOp::Increment => {
                    // RFC 4525: one integer delta, applied to every value.
                    let [delta] = values.as_slice() else {
                        return Err(DirectoryError::Protocol("increment takes exactly one value".into()));
                    };
                    let delta: i64 =
                        std::str::from_utf8(delta).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
                            DirectoryError::InvalidAttributeSyntax(format!("{name}: increment is not an integer"))
                        })?;
                    let Some(current) = new.get(&name).cloned() else {
                        return Err(DirectoryError::NoSuchAttribute(format!("{name} is not present in {dn}")));
                    };
                    let mut out = Vec::new();
                    for v in current.values {
                        let n: i64 = std::str::from_utf8(&v)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                            .ok_or_else(|| DirectoryError::ConstraintViolation(format!("{name} is not an integer")))?;
                        let sum = n
                            .checked_add(delta)
                            .ok_or_else(|| DirectoryError::ConstraintViolation(format!("{name}: overflow")))?;
                        out.push(sum.to_string().into_bytes());
                    }
                    new.set(&name, out);
                }
            }
            touched.push(name);
        }
        // RFC 4511 §4.6: the RDN's values may not be removed by a modify.
        if let Some(rdn) = dn.rdn() {
            for ava in &rdn.avas {
                let (_, attr) = self.schema.attr_of(&ava.attr)?;
                let want = self.schema.normalize_eq(attr, ava.value.as_bytes()).ok();
                let present = new
                    .get(&attr.name)
                    .is_some_and(|a| a.values.iter().any(|v| self.schema.normalize_eq(attr, v).ok() == want));
                if !present {
                    return Err(DirectoryError::NotAllowedOnRdn(format!(
                        "the naming value {}={} cannot be removed",
                        attr.name, ava.value
                    )));
                }
            }
        }
        keep_group_member(&mut new);
        if touched.iter().any(|t| t.eq_ignore_ascii_case("userPassword")) {
            new.set("pwdChangedTime", vec![now_generalized().into_bytes()]);
            self.password_changed(w, actor, id, &ndn, &old, &mut new)?;
        }
        // An administrator's unlock forgets the failures that led to the lock.
        let unlocked = touched.iter().any(|t| t.eq_ignore_ascii_case("pwdAccountLockedTime"))
            && new.get("pwdAccountLockedTime").is_none()
            && new.remove("pwdFailureTime").is_some();
        // A new end date is a new transition to record when it passes (the
        // same date in another spelling is not one).
        super::lifecycle::canonicalize_window(&mut new);
        let end_moved = touched.iter().any(|t| t.eq_ignore_ascii_case(super::lifecycle::END))
            && old.get(super::lifecycle::END).map(|a| &a.values) != new.get(super::lifecycle::END).map(|a| &a.values);
        if end_moved {
            new.remove(super::lifecycle::END_RECORDED);
        }
        access.check_modify(w, &ndn, &old, &new, &touched)?;
        self.schema.check_entry(&mut new)?;
        super::lifecycle::check_window(&new)?;
        self.check_uid_unique(w, &new, Some(id))?;
        if touched.iter().any(|t| t.eq_ignore_ascii_case("cigExternalId")) {
            self.check_external_id_unique(w, &new, Some(id), rec.parent)?;
        }
        new.set("modifyTimestamp", vec![now_generalized().into_bytes()]);
        super::request::bump_revision(&mut new);
        new.set("modifiersName", vec![actor.dn.clone().into_bytes()]);
        // Only what the modify touched can have other index keys (and what it sets itself).
        let mut changed = touched.clone();
        changed
            .extend(["modifyTimestamp", "modifiersName", "cigRevision", "pwdChangedTime", "member"].map(String::from));
        if end_moved {
            changed.push(super::lifecycle::END_RECORDED.to_string());
        }
        if unlocked {
            changed.push("pwdFailureTime".to_string());
        }
        self.reindex_changed(w, id, &old, &new, &changed)?;
        w.put_encoded_entry(id, self.record(&new, &ndn, rec.parent))?;
        self.log(w, actor, "modify", dn, &ndn, touched)?;
        Ok(())
    }

    pub(super) fn delete_in(&self, w: &mut WriteTx, actor: &Actor, dn: &Dn) -> Result<()> {
        let ndn = self.normalize_dn(dn)?;
        let Some(id) = w.id_of_dn(&ndn)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let Some(rec) = w.entry(id)? else {
            return Err(self.no_such_object_for(&self.access(&actor.principal).uncached(), w, dn));
        };
        let entry = self.to_entry(&rec)?;
        let access = self.access(&actor.principal).uncached();
        if !access.unrestricted() {
            if access.readable(w, &ndn, &entry)?.is_none() {
                return Err(self.no_such_object_for(&access, w, dn));
            }
            access.check_delete(w, &ndn, &entry)?;
        }
        if w.has_children(id)? {
            return Err(DirectoryError::NotAllowedOnNonLeaf(format!("{dn} has subordinate entries")));
        }
        self.keep_in_bin(w, id, &entry, &ndn)?;
        w.delete_kept(crate::store::Kept::LastBind, &id.to_be_bytes())?;
        w.delete_kept(crate::store::Kept::History, &id.to_be_bytes())?;
        w.index(&self.index_keys(&entry), id, false)?;
        w.delete_dn(&ndn)?;
        let uuid = entry.first_str("entryUUID").and_then(|u| uuid::Uuid::try_parse(u).ok());
        if let Some(u) = &uuid {
            w.delete_uuid(u.as_bytes())?;
        }
        if rec.parent != 0 {
            w.remove_child(rec.parent, id)?;
        }
        w.delete_entry(id, uuid.as_ref().map(|u| u.as_bytes()))?;
        self.update_references(w, &ndn, None)?;
        self.log(w, actor, "delete", dn, &ndn, Vec::new())?;
        Ok(())
    }

    pub(super) fn reindex(&self, w: &mut WriteTx, id: u64, old: &Entry, new: &Entry) -> Result<()> {
        let before = self.index_keys(old);
        let after = self.index_keys(new);
        let gone: Vec<Vec<u8>> = before.iter().filter(|k| after.binary_search(k).is_err()).cloned().collect();
        let added: Vec<Vec<u8>> = after.iter().filter(|k| before.binary_search(k).is_err()).cloned().collect();
        w.index(&gone, id, false)?;
        w.index(&added, id, true)?;
        Ok(())
    }

    /// [`Directory::reindex`] for a change confined to these attributes.
    fn reindex_changed(&self, w: &mut WriteTx, id: u64, old: &Entry, new: &Entry, changed: &[String]) -> Result<()> {
        let lnames: Vec<&str> = changed
            .iter()
            .filter_map(|n| self.schema.attr_id(n))
            .flat_map(|id| self.schema.attr(id).with_subtypes.iter().map(|&s| self.schema.attr(s).lname.as_str()))
            .collect();
        let only = |set: &FoldSet<String>| -> FoldSet<String> {
            set.iter().filter(|a| lnames.contains(&a.as_str())).cloned().collect()
        };
        let (eq, sub, approx) = (only(&self.eq_indexed), only(&self.sub_indexed), only(&self.approx_indexed));
        if eq.is_empty() && sub.is_empty() && approx.is_empty() {
            return Ok(());
        }
        let before = self.index_keys_with(old, &eq, &sub, &approx);
        let after = self.index_keys_with(new, &eq, &sub, &approx);
        let gone: Vec<Vec<u8>> = before.iter().filter(|k| after.binary_search(k).is_err()).cloned().collect();
        let added: Vec<Vec<u8>> = after.iter().filter(|k| before.binary_search(k).is_err()).cloned().collect();
        w.index(&gone, id, false)?;
        w.index(&added, id, true)?;
        Ok(())
    }

    pub(super) fn hash_plain_passwords(&self, actor: &Actor, entry: &mut Entry) -> Result<()> {
        if let Some(a) = entry.get_mut("userPassword") {
            let values = std::mem::take(&mut a.values);
            a.values = values.into_iter().map(|v| self.hash_if_plain(actor, v)).collect::<Result<_>>()?;
        }
        Ok(())
    }

    /// A plain-text userPassword is checked against the password policy and
    /// hashed before it is stored; a value that is already a `{SCHEME}` hash
    /// is kept as it is (who may send one is [`Directory::may_store_hashes`]'s
    /// call, before any hashing).
    pub(super) fn hash_if_plain(&self, actor: &Actor, v: Vec<u8>) -> Result<Vec<u8>> {
        if password::is_hashed(&v) { Ok(v) } else { self.prepare_password(actor, &v) }
    }

    /// A `{SCHEME}` hash escapes the password policy: only an administrator
    /// (migrating accounts) or the server itself (import) may store one;
    /// anyone else who may write a password sends the password itself.
    pub(super) fn may_store_hashes<'v>(&self, actor: &Actor, mut values: impl Iterator<Item = &'v [u8]>) -> Result<()> {
        if values.any(password::is_hashed) && !actor.principal.is_admin(self) {
            return Err(DirectoryError::ConstraintViolation(
                "userPassword: only an administrator may store a {SCHEME} hash; send the password itself".into(),
            ));
        }
        Ok(())
    }

    /// An entry's record, encoded from the entry (no copy of its values).
    pub(super) fn record(&self, entry: &Entry, ndn: &str, parent: u64) -> Vec<u8> {
        encode(entry, &entry.dn.to_string(), ndn, parent)
    }

    pub(super) fn log(
        &self,
        w: &mut WriteTx,
        actor: &Actor,
        op: &str,
        dn: &Dn,
        ndn: &str,
        attrs: Vec<String>,
    ) -> Result<()> {
        self.log_change(w, actor, op, &dn.to_string(), Some(ndn), attrs, "success")
    }
}

fn encode(entry: &Entry, dn_text: &str, ndn: &str, parent: u64) -> Vec<u8> {
    Record::encode_parts(parent, dn_text, ndn, entry.attrs.iter().map(|a| (a.name.as_str(), a.values.as_slice())))
}

/// What the audit trail says of a change: operation, target, attributes.
pub(super) fn describe(change: &Change) -> (&'static str, Dn, Vec<String>) {
    match change {
        Change::Add(e) => ("add", e.dn.clone(), e.attrs.iter().map(|a| a.name.clone()).collect()),
        Change::Modify(dn, mods) => ("modify", dn.clone(), mods.iter().map(|m| m.attr.clone()).collect()),
        Change::Delete(dn) => ("delete", dn.clone(), Vec::new()),
        Change::Rename { dn, new_rdn, new_superior, .. } => {
            let to = new_superior.clone().unwrap_or_else(|| dn.parent()).child(new_rdn.clone());
            ("modrdn", dn.clone(), vec![to.to_string()])
        }
        Change::Restore(uuid) => ("restore", Dn::root().child(Rdn::single("entryUUID", uuid)), Vec::new()),
    }
}

/// No placeholder member beside real ones. A modify that removes a group's
/// last member is refused by the schema (RFC 4519 groupOfNames MUST member:
/// objectClassViolation, as slapd answers); the placeholder is only written
/// by the server's own cascades (referential integrity) and by SCIM, whose
/// groups may be empty.
fn keep_group_member(new: &mut Entry) {
    let placeholder = EMPTY_GROUP_MEMBER.as_bytes();
    if let Some(a) = new.get_mut("member")
        && a.values.len() > 1
    {
        a.values.retain(|v| v.as_slice() != placeholder);
    }
}

/// Operational attributes a client may not write but an import keeps.
pub fn is_stored_operational(name: &str) -> bool {
    STORED_OPERATIONAL.iter().any(|s| s.eq_ignore_ascii_case(name))
}
