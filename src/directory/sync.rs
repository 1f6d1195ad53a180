//! Content synchronisation (RFC 4533) as the core sees it: which entries a
//! replica must be sent to hold exactly what its identity may read under its
//! search, from the CSN its cookie names. The LDAP front end turns these
//! items into Sync State controls and syncInfo messages; the rules (scope,
//! filter, access) are the same search as any other.

use super::*;
use crate::store::{Csn, Reader};

/// A replica following this server now (a persist stage in progress).
#[derive(Debug, Clone)]
pub struct Follower {
    pub peer: String,
    pub who: String,
    pub base: String,
    /// The CSN it has been sent up to.
    pub at: Option<Csn>,
}

/// The replicas following this server, by the number of their search.
#[derive(Default)]
pub(super) struct Followers {
    next: std::sync::atomic::AtomicU64,
    now: std::sync::Mutex<std::collections::BTreeMap<u64, Follower>>,
}

/// A replica's place among the followers, given back when its search ends.
pub struct Following<'d> {
    dir: &'d Directory,
    id: u64,
}

impl Following<'_> {
    /// It has been sent everything up to `csn`.
    pub fn reached(&self, csn: Csn) {
        if let Ok(mut now) = self.dir.followers.now.lock()
            && let Some(f) = now.get_mut(&self.id)
        {
            f.at = Some(csn);
        }
    }
}

impl Drop for Following<'_> {
    fn drop(&mut self) {
        if let Ok(mut now) = self.dir.followers.now.lock() {
            now.remove(&self.id);
        }
    }
}

/// Most deletions the deletion log forgets in one lifecycle step.
const PRUNE_BATCH: usize = 10_000;

/// One thing a refresh or a persist step sends, in order.
#[derive(Debug)]
pub enum SyncItem {
    /// An entry added or changed since the cookie, as the identity reads it;
    /// `added` when it did not exist before its last change.
    Entry { entry: Entry, uuid: [u8; 16], csn: Csn, added: bool },
    /// An entry the replica may hold that is no longer in its content
    /// (deleted, moved out of the base, no longer matching or readable).
    Gone { uuid: [u8; 16], ndn: String, csn: Csn },
    /// Entries unchanged since the cookie (the present phase, RFC 4533 §3.3.1).
    Present(Vec<[u8; 16]>),
}

/// How a refresh told the replica what it lost (RFC 4533 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The deletions since the cookie were sent (`Gone` items): the
    /// replica deletes those, keeps the rest.
    Deletes,
    /// Every entry still in the content was sent (`Entry` or `Present`):
    /// the replica deletes whatever it holds that was not.
    Present,
}

impl Directory {
    /// The refresh stage of a sync search: what changed after `since` (all
    /// of it without a cookie), then either the deletions since (when the
    /// deletion log reaches back to `since`) or what is still present.
    /// Returns the CSN the replica's content is at once all is sent (the
    /// cookie to give it), and which kind of refresh it was.
    pub fn sync_refresh(
        &self,
        who: &Principal,
        req: &SearchRequest,
        since: Option<Csn>,
        batch: usize,
        mut emit: impl FnMut(SyncItem) -> Result<()>,
    ) -> Result<(Option<Csn>, Refresh)> {
        let (with_uuid, with_csn) = (wants(&req.attrs, "entryUUID"), wants(&req.attrs, "entryCSN"));
        let req = &replica_request(req);
        let r = self.store.read()?;
        let upto = r.last_csn()?;
        let batch = batch.max(1);
        let deletes_known = since.is_some_and(|s| s >= r.deletions_known_since().unwrap_or(Csn(u128::MAX)));
        if let (Some(since), true) = (since, deletes_known) {
            let scope = SyncScope::of(self, req)?;
            let mut after = since;
            loop {
                let changed = r.changed_after(after, batch)?;
                for &(csn, id) in &changed {
                    self.sync_change(&r, who, req, &scope, csn, id, &mut emit)?;
                    after = csn;
                }
                if changed.len() < batch {
                    break;
                }
            }
            let mut after = since;
            loop {
                let gone = r.deletions_after(after, batch)?;
                for (csn, uuid, ndn) in &gone {
                    after = *csn;
                    if scope.holds(ndn) && !scope.still_holds(&r, uuid)? {
                        emit(SyncItem::Gone { uuid: *uuid, ndn: ndn.clone(), csn: *csn })?;
                    }
                }
                if gone.len() < batch {
                    break;
                }
            }
            return Ok((upto.or(Some(since)), Refresh::Deletes));
        }
        // Without a usable cookie: every entry, the changed ones whole, the
        // others by their UUID alone.
        let mut present = Vec::new();
        self.search(who, req, |mut entry| {
            // The UUID and CSN come from the store: they are the protocol's,
            // sent whether or not the identity may read them as attributes.
            let Some((uuid, csn)) = self.stamp_of(&r, &entry)? else { return Ok(()) };
            if since.is_some_and(|s| csn <= s) {
                present.push(uuid);
                if present.len() >= batch {
                    emit(SyncItem::Present(std::mem::take(&mut present)))?;
                }
                return Ok(());
            }
            let added = created_with_last_change(&entry);
            if !with_uuid {
                entry.remove("entryUUID");
            }
            if !with_csn {
                entry.remove("entryCSN");
            }
            emit(SyncItem::Entry { entry, uuid, csn, added })
        })?;
        if !present.is_empty() {
            emit(SyncItem::Present(present))?;
        }
        Ok((upto, Refresh::Present))
    }

    /// The changes committed after `after`, at most about `batch` of them,
    /// in commit order (the persist stage, RFC 4533 §3.4). Returns the CSN
    /// reached: give it back for the next step.
    pub fn sync_changes(
        &self,
        who: &Principal,
        req: &SearchRequest,
        after: Csn,
        batch: usize,
        mut emit: impl FnMut(SyncItem) -> Result<()>,
    ) -> Result<Csn> {
        let req = &replica_request(req);
        let r = self.store.read()?;
        let batch = batch.max(1);
        let scope = SyncScope::of(self, req)?;
        let changed = r.changed_after(after, batch)?;
        let gone = r.deletions_after(after, batch)?;
        // Either list may stop short of the other: go no further than the
        // first full one reaches, or a later change would pass an earlier one.
        let limit = [(changed.len(), changed.last().map(|c| c.0)), (gone.len(), gone.last().map(|g| g.0))]
            .into_iter()
            .filter(|(n, _)| *n >= batch)
            .filter_map(|(_, last)| last)
            .min()
            .unwrap_or(Csn(u128::MAX));
        let mut reached = after;
        let (mut c, mut g) = (changed.iter().peekable(), gone.iter().peekable());
        loop {
            let next_change = c.peek().map(|x| x.0).filter(|&x| x <= limit);
            let next_gone = g.peek().map(|x| x.0).filter(|&x| x <= limit);
            match (next_change, next_gone) {
                (Some(cc), Some(gg)) if cc < gg => {
                    if let Some(&(csn, id)) = c.next() {
                        self.sync_change(&r, who, req, &scope, csn, id, &mut emit)?;
                        reached = csn;
                    }
                }
                (Some(_), None) => {
                    if let Some(&(csn, id)) = c.next() {
                        self.sync_change(&r, who, req, &scope, csn, id, &mut emit)?;
                        reached = csn;
                    }
                }
                (_, Some(_)) => {
                    if let Some((csn, uuid, ndn)) = g.next() {
                        if scope.holds(ndn) && !scope.still_holds(&r, uuid)? {
                            emit(SyncItem::Gone { uuid: *uuid, ndn: ndn.clone(), csn: *csn })?;
                        }
                        reached = *csn;
                    }
                }
                (None, None) => break,
            }
        }
        Ok(reached)
    }

    /// Forget the deletions older than `deletion_log_days`, and the oldest
    /// beyond `deletion_log_max`, at most [`PRUNE_BATCH`] per step; a
    /// replica whose cookie is older then gets the present phase.
    pub(super) fn prune_deletion_log(&self) -> Result<usize> {
        let r = self.store.read()?;
        let len = r.kept_len(crate::store::Kept::Deletions)?;
        let excess = usize::try_from(len).unwrap_or(usize::MAX).saturating_sub(self.deletion_log_max);
        let by_count = match excess {
            0 => Csn::default(),
            n => {
                r.deletions_after(Csn::default(), n.min(PRUNE_BATCH))?.last().map_or(Csn::default(), |d| Csn(d.0.0 + 1))
            }
        };
        let age = self.deletion_log_days.saturating_mul(86_400_000_000);
        let by_age = Csn::new(crate::store::now_micros().saturating_sub(age), 0, 0, 0);
        let cutoff = by_count.max(by_age);
        let oldest = r.deletions_after(Csn::default(), 1)?.first().map(|d| d.0);
        drop(r);
        if oldest.is_none_or(|o| o >= cutoff) {
            return Ok(0);
        }
        let pruned = self.store.write_with(|w| w.prune_deletions(cutoff, PRUNE_BATCH))?;
        if pruned > 0 {
            tracing::info!(deletions = pruned, "pruned the replicas' deletion log");
        }
        Ok(pruned)
    }

    /// A replica starts following (its persist stage).
    pub fn follow(&self, peer: &str, who: &str, base: &Dn, at: Option<Csn>) -> Following<'_> {
        let id = self.followers.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let f = Follower { peer: peer.into(), who: who.into(), base: base.to_string(), at };
        if let Ok(mut now) = self.followers.now.lock() {
            now.insert(id, f);
        }
        Following { dir: self, id }
    }

    /// The replicas following now.
    pub fn followers(&self) -> Vec<Follower> {
        self.followers.now.lock().map(|n| n.values().cloned().collect()).unwrap_or_default()
    }

    /// How many deletions the deletion log holds.
    pub fn deletion_log_len(&self) -> Result<u64> {
        Ok(self.store.read()?.kept_len(crate::store::Kept::Deletions)?)
    }

    /// Hears of every commit (see [`crate::store::Store::commits`]).
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.store.commits()
    }

    /// The last CSN committed, if any.
    pub fn last_csn(&self) -> Result<Option<Csn>> {
        Ok(self.store.read()?.last_csn()?)
    }

    /// The entryUUID and CSN of a returned entry, as stored; `None` when it
    /// is gone from the snapshot or has no UUID (nothing to replicate it by).
    fn stamp_of(&self, r: &crate::store::ReadTx, entry: &Entry) -> Result<Option<([u8; 16], Csn)>> {
        let Some(id) = r.id_of_dn(&self.normalize_dn(&entry.dn)?)? else { return Ok(None) };
        let Some(rec) = r.entry(id)? else { return Ok(None) };
        let Some(uuid) = record_uuid(&rec) else { return Ok(None) };
        let csn = rec.csn.or_else(|| Csn::parse(&super::search::entry_csn(&rec, entry))).unwrap_or_default();
        Ok(Some((uuid, csn)))
    }

    /// One changed entry: sent whole when the replica's search returns it,
    /// as gone when it is under the base but no longer returned.
    #[allow(clippy::too_many_arguments)]
    fn sync_change(
        &self,
        r: &crate::store::ReadTx,
        who: &Principal,
        req: &SearchRequest,
        scope: &SyncScope,
        csn: Csn,
        id: u64,
        emit: &mut impl FnMut(SyncItem) -> Result<()>,
    ) -> Result<()> {
        let Some(rec) = r.entry(id)? else { return Ok(()) };
        if !scope.holds(&rec.ndn) {
            return Ok(());
        }
        let Some(uuid) = record_uuid(&rec) else { return Ok(()) };
        let dn = Dn::parse(&rec.dn)?;
        let one = SearchRequest {
            base: dn,
            scope: Scope::Base,
            size_limit: 0,
            time_limit: None,
            cancel: None,
            ..req.clone()
        };
        let mut found = None;
        match self.search(who, &one, |e| {
            found = Some(e);
            Ok(())
        }) {
            Ok(_) | Err(DirectoryError::NoSuchObject { .. }) => {}
            Err(e) => return Err(e),
        }
        match found {
            Some(entry) => {
                let stamp = |name: &str| rec.attrs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v);
                let added = stamp("createTimestamp").is_some() && stamp("createTimestamp") == stamp("modifyTimestamp");
                emit(SyncItem::Entry { entry, uuid, csn, added })
            }
            None => emit(SyncItem::Gone { uuid, ndn: rec.ndn, csn }),
        }
    }
}

/// The base and scope of a replica's search, normalised once.
struct SyncScope {
    base: String,
    scope: Scope,
}

impl SyncScope {
    fn of(dir: &Directory, req: &SearchRequest) -> Result<SyncScope> {
        Ok(SyncScope { base: dir.normalize_dn(&req.base)?, scope: req.scope })
    }

    /// Whether an entry of this normalised DN is under the search.
    fn holds(&self, ndn: &str) -> bool {
        match self.scope {
            Scope::Base => ndn == self.base,
            Scope::One => dn::parent_ndn(ndn) == self.base && ndn != self.base,
            Scope::Sub => dn::is_under(ndn, &self.base),
            Scope::Children => ndn != self.base && dn::is_under(ndn, &self.base),
        }
    }

    /// Whether the entry of this UUID exists under the search now: then its
    /// last change, later than its deletion or move, says what the replica
    /// holds (it was restored, or moved here).
    fn still_holds(&self, r: &crate::store::ReadTx, uuid: &[u8; 16]) -> Result<bool> {
        let Some(id) = r.id_of_uuid(uuid)? else { return Ok(false) };
        Ok(r.entry_view(id, |v| Ok(self.holds(v.ndn)))?.unwrap_or(false))
    }
}

/// What `+` means in a replica's search: the operational attributes the
/// server stores, not those it computes on read (a replica computes its
/// own, as slapd's syncprov sends none), and of those the ones a stock
/// slapd consumer knows (its own, its ppolicy module's); this server's own
/// are sent when named.
const REPLICATED_OPERATIONAL: &[&str] = &[
    "entryUUID",
    "entryCSN",
    "createTimestamp",
    "modifyTimestamp",
    "creatorsName",
    "modifiersName",
    "structuralObjectClass",
    "pwdChangedTime",
    "pwdAccountLockedTime",
    "pwdFailureTime",
    "pwdReset",
];

/// A replica's search as the core runs it: no size or time limit (the
/// replica must end with all of its content), `+` as
/// [`REPLICATED_OPERATIONAL`], and the entryUUID and entryCSN the messages
/// need (dropped again when not asked for).
fn replica_request(req: &SearchRequest) -> SearchRequest {
    let mut attrs: Vec<String> = Vec::new();
    if req.attrs.is_empty() {
        attrs.push("*".into());
    }
    for a in &req.attrs {
        if a == "+" {
            attrs.extend(REPLICATED_OPERATIONAL.iter().map(|s| s.to_string()));
        } else {
            attrs.push(a.clone());
        }
    }
    attrs.extend(["entryUUID".to_string(), "entryCSN".to_string()]);
    SearchRequest { size_limit: 0, time_limit: None, attrs, ..req.clone() }
}

/// Whether a search's attribute list returns this operational attribute.
fn wants(attrs: &[String], name: &str) -> bool {
    attrs.iter().any(|a| a == "+" || a.eq_ignore_ascii_case(name))
}

pub(super) fn record_uuid(rec: &crate::store::Record) -> Option<[u8; 16]> {
    (rec.attrs.iter())
        .find(|(n, _)| n.eq_ignore_ascii_case("entryUUID"))
        .and_then(|(_, v)| v.first())
        .and_then(|v| uuid::Uuid::try_parse_ascii(v).ok())
        .map(|u| *u.as_bytes())
}

/// An entry whose last change is its creation (RFC 4533 §3.4: state add
/// rather than modify).
fn created_with_last_change(entry: &Entry) -> bool {
    match (entry.first_str("createTimestamp"), entry.first_str("modifyTimestamp")) {
        (Some(c), Some(m)) => c == m,
        _ => false,
    }
}
