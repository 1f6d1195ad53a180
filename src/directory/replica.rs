//! This server as a replica (RFC 4533 consumer): a provider's changes,
//! applied by entryUUID in transactions of their own with the cookie they
//! bring, so that a restart resumes where the last commit left. While it
//! follows a provider, clients' writes are referred to it (RFC 4511
//! §4.1.10); promoted, it takes them again.

use std::sync::RwLock;

use super::write::{AddMode, strip_virtual};
use super::*;
use crate::store::{Csn, Kept, Reader, WriteTx};

/// The key of the cookie in the replication table.
const COOKIE: &[u8] = b"cookie";
/// The key under which a promotion is remembered (its time, seconds since the epoch).
const PROMOTED: &[u8] = b"promoted";

/// One change a provider sent.
#[derive(Debug, Clone)]
pub enum Replicated {
    /// The entry as the provider has it now (its entryUUID and entryCSN
    /// included): added, or replacing the local one of the same UUID.
    Upsert(Entry),
    /// The entry of this UUID is gone from the replica's content.
    Delete([u8; 16]),
}

/// Whom clients' writes go to while this server follows a provider, and
/// how the following goes.
#[derive(Default)]
pub(super) struct ReplicaOf(RwLock<Following>);

#[derive(Default, Clone)]
struct Following {
    provider: Option<String>,
    /// `refreshing`, `following`, or why the last attempt failed.
    state: String,
    /// When the last change was applied (seconds since the epoch).
    applied_at: u64,
}

/// What `convergences replication status` and the metrics say.
#[derive(Debug, Clone)]
pub struct ReplicationStatus {
    /// The last CSN committed here: the suffix's contextCSN.
    pub context_csn: Option<Csn>,
    /// As a replica: the provider, how it goes, the cookie, when the last
    /// change was applied.
    pub provider: Option<String>,
    pub state: String,
    pub cookie: Option<String>,
    pub applied_at: u64,
    /// As a provider: the replicas following it now.
    pub followers: Vec<super::sync::Follower>,
}

impl Directory {
    /// Follow `provider` (its URL, for the referrals), or stop (promotion).
    pub fn set_replica_of(&self, provider: Option<String>) {
        if let Ok(mut p) = self.replica_of.0.write() {
            p.provider = provider;
        }
    }

    /// The provider this server follows, if it is a replica.
    pub fn replica_of(&self) -> Option<String> {
        self.replica_of.0.read().ok().and_then(|p| p.provider.clone())
    }

    /// Stop following the provider and take clients' writes, now and after
    /// every restart (the configuration's consumer is then ignored).
    pub fn promote(&self) -> Result<()> {
        let at = super::lifecycle::now_secs().to_string();
        self.store.write_with(|w| w.put_kept(Kept::Replication, PROMOTED, at.as_bytes()))?;
        self.set_replica_of(None);
        tracing::info!("promoted: this server takes clients' writes and follows no provider");
        Ok(())
    }

    /// Whether this server was promoted (see [`Directory::promote`]).
    pub fn promoted(&self) -> Result<bool> {
        Ok(self.store.read()?.kept_value(Kept::Replication, PROMOTED)?.is_some())
    }

    /// How following the provider goes (`refreshing`, `following`, an error).
    pub fn set_replica_state(&self, state: impl Into<String>) {
        if let Ok(mut p) = self.replica_of.0.write() {
            p.state = state.into();
        }
    }

    /// Where replication stands, on either side.
    pub fn replication_status(&self) -> Result<ReplicationStatus> {
        let following = self.replica_of.0.read().map(|f| f.clone()).unwrap_or_default();
        let cookie = self.replication_cookie()?.map(|c| String::from_utf8_lossy(&c).into_owned());
        Ok(ReplicationStatus {
            context_csn: self.last_csn()?,
            provider: following.provider,
            state: following.state,
            cookie: cookie.filter(|c| !c.is_empty()),
            applied_at: following.applied_at,
            followers: self.followers(),
        })
    }

    /// A client's write on a replica goes to the provider.
    pub(super) fn refuse_on_replica(&self, actor: &Actor) -> Result<()> {
        match (&actor.principal, self.replica_of()) {
            (Principal::Server, _) | (_, None) => Ok(()),
            (_, Some(url)) => Err(DirectoryError::Referral(url)),
        }
    }

    /// The cookie of the last change applied, as the provider wrote it.
    pub fn replication_cookie(&self) -> Result<Option<Vec<u8>>> {
        Ok(self.store.read()?.kept_value(Kept::Replication, COOKIE)?)
    }

    /// Apply a provider's changes in one transaction, with the cookie that
    /// follows them (`None`: the cookie stays, as in the middle of a
    /// refresh, which a restart does again).
    pub fn apply_replicated(&self, changes: &[Replicated], cookie: Option<&[u8]>) -> Result<usize> {
        let actor = Actor::new("cn=replication");
        let txn = self.store.write()?;
        let mut w = txn.tables()?;
        // Deletes deepest first: a subtree's entries may come in any order.
        let mut deletes: Vec<u64> = Vec::new();
        for change in changes {
            match change {
                Replicated::Upsert(entry) => self.upsert_replicated(&mut w, &actor, entry.clone())?,
                Replicated::Delete(uuid) => {
                    if let Some(id) = w.id_of_uuid(uuid)? {
                        deletes.push(id);
                    }
                }
            }
        }
        let mut depth = Vec::with_capacity(deletes.len());
        for id in deletes {
            if let Some(dn) = w.entry_dn(id)? {
                depth.push((Dn::parse(&dn).map(|d| d.rdns().len()).unwrap_or(0), id));
            }
        }
        depth.sort_unstable_by_key(|d| std::cmp::Reverse(d.0));
        for (_, id) in depth {
            self.delete_subtree_replicated(&mut w, id)?;
        }
        if let Some(c) = cookie {
            // The first refresh brought the entries whole: replicas of this
            // replica whose cookies are older get the present phase.
            if w.kept(Kept::Replication, COOKIE)?.is_none_or(|old| old.is_empty()) {
                w.deletions_known_from_now()?;
            }
            w.put_kept(Kept::Replication, COOKIE, c)?;
        }
        let staged = w.finish()?;
        txn.commit(staged)?;
        self.committed(true);
        if !changes.is_empty()
            && let Ok(mut f) = self.replica_of.0.write()
        {
            f.applied_at = super::lifecycle::now_secs();
        }
        Ok(changes.len())
    }

    /// The UUIDs of the local entries under `base` (itself included), for
    /// the end of a present phase: what the provider did not name is gone.
    pub fn uuids_under(&self, base: &Dn) -> Result<Vec<[u8; 16]>> {
        let mut out = Vec::new();
        let r = self.store.read()?;
        let Some(root) = r.id_of_dn(&self.normalize_dn(base)?)? else { return Ok(out) };
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if let Some(u) = r.entry(id)?.as_ref().and_then(super::sync::record_uuid) {
                out.push(u);
            }
            stack.extend(r.children(id)?);
        }
        Ok(out)
    }

    fn upsert_replicated(&self, w: &mut WriteTx, actor: &Actor, mut entry: Entry) -> Result<()> {
        let uuid = entry
            .first_str("entryUUID")
            .and_then(|u| uuid::Uuid::try_parse(u).ok())
            .ok_or_else(|| DirectoryError::Protocol(format!("the provider sent {} without an entryUUID", entry.dn)))?;
        let ndn = self.normalize_dn(&entry.dn)?;
        // By UUID; else the entry of the same DN (created here before, say
        // by a load) takes the provider's UUID.
        let id = match w.id_of_uuid(uuid.as_bytes())? {
            Some(id) => Some(id),
            None => w.id_of_dn(&ndn)?,
        };
        let Some(id) = id else {
            let prepared = self.prepare_add(actor, entry, AddMode::Import)?;
            return self.store_add(w, actor, &prepared, AddMode::Import);
        };
        let Some(rec) = w.entry(id)? else { return Ok(()) };
        let old = self.to_entry(&rec)?;
        let csn = entry.first_str("entryCSN").and_then(Csn::parse);
        self.schema.canonicalize(&mut entry)?;
        strip_virtual(&mut entry);
        self.schema.check_entry(&mut entry)?;
        let mut parent = rec.parent;
        if ndn != rec.ndn {
            // Renamed or moved at the provider: the tree follows.
            if ndn != self.suffix_ndn {
                parent = w.id_of_dn(dn::parent_ndn(&ndn))?.ok_or_else(|| self.no_such_object(w, &entry.dn.parent()))?;
            }
            w.delete_dn(&rec.ndn)?;
            w.put_dn(&ndn, id)?;
            if parent != rec.parent {
                if rec.parent != 0 {
                    w.remove_child(rec.parent, id)?;
                }
                w.add_child(parent, id)?;
            }
            self.rebase_children(w, id, &entry.dn)?;
        }
        if let Some(old_uuid) = old.first_str("entryUUID").and_then(|u| uuid::Uuid::try_parse(u).ok())
            && old_uuid != uuid
        {
            w.delete_uuid(old_uuid.as_bytes())?;
            w.put_uuid(uuid.as_bytes(), id)?;
        }
        self.reindex(w, id, &old, &entry)?;
        let record = self.record(&entry, &ndn, parent);
        match csn {
            Some(csn) => w.put_encoded_entry_at(id, &record, csn)?,
            None => w.put_encoded_entry(id, record)?,
        }
        Ok(())
    }

    /// The descendants of a moved entry keep their RDNs under its new DN.
    fn rebase_children(&self, w: &mut WriteTx, id: u64, new_dn: &Dn) -> Result<()> {
        let mut stack: Vec<(u64, Dn)> = w.children(id)?.into_iter().map(|c| (c, new_dn.clone())).collect();
        while let Some((child, parent_dn)) = stack.pop() {
            let Some(crec) = w.entry(child)? else { continue };
            let cdn = Dn::parse(&crec.dn)?;
            let Some(rdn) = cdn.rdns().first().cloned() else { continue };
            let moved = parent_dn.child(rdn);
            let moved_ndn = self.normalize_dn(&moved)?;
            w.delete_dn(&crec.ndn)?;
            w.put_dn(&moved_ndn, child)?;
            let mut centry = self.to_entry(&crec)?;
            centry.dn = moved.clone();
            match crec.csn {
                Some(csn) => w.put_encoded_entry_at(child, &self.record(&centry, &moved_ndn, crec.parent), csn)?,
                None => w.put_encoded_entry(child, self.record(&centry, &moved_ndn, crec.parent))?,
            }
            stack.extend(w.children(child)?.into_iter().map(|c| (c, moved.clone())));
        }
        Ok(())
    }

    /// Remove an entry and whatever is still below it (the provider removed
    /// them all; their own deletes may come later or not at all).
    fn delete_subtree_replicated(&self, w: &mut WriteTx, id: u64) -> Result<()> {
        let mut order = Vec::new();
        let mut stack = vec![id];
        while let Some(x) = stack.pop() {
            order.push(x);
            stack.extend(w.children(x)?);
        }
        for x in order.into_iter().rev() {
            let Some(rec) = w.entry(x)? else { continue };
            let entry = self.to_entry(&rec)?;
            w.index(&self.index_keys(&entry), x, false)?;
            w.delete_dn(&rec.ndn)?;
            let uuid = entry.first_str("entryUUID").and_then(|u| uuid::Uuid::try_parse(u).ok());
            if let Some(u) = &uuid {
                w.delete_uuid(u.as_bytes())?;
            }
            if rec.parent != 0 {
                w.remove_child(rec.parent, x)?;
            }
            w.delete_kept(Kept::LastBind, &x.to_be_bytes())?;
            w.delete_kept(Kept::History, &x.to_be_bytes())?;
            w.delete_entry(x, uuid.as_ref().map(|u| u.as_bytes()))?;
        }
        Ok(())
    }
}
