//! Read snapshots, and the lookups read and write transactions share ([`Reader`]).

use std::sync::{Arc, OnceLock};

use redb::{ReadableTable, ReadableTableMetadata};

use super::deferred::{self, Deferred};
use super::tables::*;
use super::{ChangeRecord, Csn, Kept, Record, RecordView, Result, StoreError, TokenRecord, WriteTx, postings};

/// Hand `f` the ids under `parent` in the links table after `after` (0: all
/// of them; no entry has id 0), ascending, until it returns `false`.
fn each_child(
    t: &impl redb::ReadableTable<u128, ()>,
    parent: u64,
    after: u64,
    mut f: impl FnMut(u64) -> bool,
) -> Result<()> {
    for item in t.range(child_link(parent, after.saturating_add(1))..=child_link(parent, u64::MAX))? {
        let (k, _) = item?;
        if !f(link_ends(k.value()).1) {
            break;
        }
    }
    Ok(())
}

/// A window of stored ids (ascending, at most `n`, `more` when cut) merged
/// with the deferred ones: the union's `n` smallest after `after` are among
/// the window's and the deferred, since the window holds the stored list's.
fn with_deferred(stored: Vec<u64>, more: bool, deferred: Vec<u64>, after: u64, n: usize) -> (Vec<u64>, bool) {
    let mut extra: Vec<u64> = deferred.into_iter().filter(|&id| id > after).collect();
    if extra.is_empty() {
        return (stored, more);
    }
    extra.sort_unstable();
    extra.dedup();
    let mut out = deferred::merge(&stored, &extra);
    let cut = out.len() > n;
    out.truncate(n);
    (out, more || cut)
}

/// Lookups shared by read and write transactions.
pub trait Reader {
    fn entry(&self, id: u64) -> Result<Option<Record>>;
    /// An entry with only the attributes whose stored name (bytes) `keep` accepts.
    fn entry_keeping(&self, id: u64, keep: &dyn Fn(&[u8]) -> bool) -> Result<Option<Record>>;
    /// Just the DN of an entry, without decoding its attributes.
    fn entry_dn(&self, id: u64) -> Result<Option<String>>;
    fn id_of_dn(&self, ndn: &str) -> Result<Option<u64>>;
    fn id_of_uuid(&self, uuid: &[u8; 16]) -> Result<Option<u64>>;
    /// Children ids in ascending order.
    fn children(&self, id: u64) -> Result<Vec<u64>>;
    /// Children ids in ascending order; `None` when there are more than `max`.
    fn children_at_most(&self, id: u64, max: usize) -> Result<Option<Vec<u64>>>;
    fn has_children(&self, id: u64) -> Result<bool>;
    fn child_count(&self, id: u64) -> Result<u64>;
    /// Ids posted under exactly this key, ascending.
    fn postings(&self, key: &[u8]) -> Result<Vec<u64>>;
    /// Like [`Reader::postings`], but `None` as soon as there are more than `cap`.
    fn postings_at_most(&self, key: &[u8], cap: usize) -> Result<Option<Vec<u64>>>;
    /// Ids posted under any key starting with `prefix`, ascending and deduplicated;
    /// `None` when more than `cap` postings were seen (the caller then scans).
    fn postings_with_prefix(&self, prefix: &[u8], cap: usize) -> Result<Option<Vec<u64>>>;
    /// The `n` smallest ids after `after` posted under exactly this key,
    /// ascending, and whether more follow (a limited search reads what it
    /// returns, a page what it sends, not the whole list).
    fn postings_window(&self, key: &[u8], after: u64, n: usize) -> Result<(Vec<u64>, bool)>;
    /// The same over every key starting with `prefix`.
    fn postings_with_prefix_window(&self, prefix: &[u8], after: u64, n: usize) -> Result<(Vec<u64>, bool)>;
    /// The `n` smallest children ids of `id` after `after`, and whether more follow.
    fn children_window(&self, id: u64, after: u64, n: usize) -> Result<(Vec<u64>, bool)>;
    /// Every entry id, ascending.
    fn all_ids(&self) -> Result<Vec<u64>>;
    /// The `n` smallest entry ids after `after`, and whether more follow.
    fn ids_window(&self, after: u64, n: usize) -> Result<(Vec<u64>, bool)>;
    fn entry_count(&self) -> Result<u64>;
    fn changes_since(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>>;
    /// At most `max` changelog records before `seq` (exclusive), newest first.
    fn changes_before(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>>;
    /// The token stored under this secret's hash.
    fn token(&self, hash: &[u8]) -> Result<Option<TokenRecord>>;
    /// Every token (hash, record).
    fn tokens(&self) -> Result<Vec<(Vec<u8>, TokenRecord)>>;
    /// A value of the meta table (counters, format, the directory's notes).
    fn meta(&self, name: &str) -> Result<Option<u64>>;
    /// A value of a table of [`kept`].
    fn kept_value(&self, kind: Kept, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The meta table's values whose names start with `prefix`, in name order.
    fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>>;
    /// The last CSN this store issued or followed; `None` before the first.
    fn last_csn(&self) -> Result<Option<Csn>>;
}

/// A read snapshot; clones share it.
#[derive(Clone)]
pub struct ReadTx {
    pub(super) inner: Arc<ReadInner>,
}

/// Tables are opened once per snapshot: a search reads hundreds of entries,
/// and every lookup by uid would otherwise open three tables.
pub struct ReadInner {
    pub(super) txn: redb::ReadTransaction,
    /// The deferred postings this snapshot's postings table may lack.
    pub(super) deferred: Arc<Deferred>,
    pub(super) entries: redb::ReadOnlyTable<u64, &'static [u8]>,
    pub(super) dn2id: OnceLock<redb::ReadOnlyTable<&'static str, u64>>,
    pub(super) postings: OnceLock<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
    pub(super) children: OnceLock<redb::ReadOnlyTable<u128, ()>>,
    /// Read by every bind (`pwdLastSuccess`): opened once per snapshot too.
    pub(super) last_bind: OnceLock<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
}

impl std::ops::Deref for ReadTx {
    type Target = ReadInner;

    fn deref(&self) -> &ReadInner {
        &self.inner
    }
}

/// The table in `cell`, opened on first use.
pub(super) fn opened<T>(cell: &OnceLock<T>, open: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let t = open()?;
    Ok(cell.get_or_init(|| t))
}

/// What a replica's refresh reads: the entries by their last change, and
/// the deletion log (see [`super::Csn`]).
impl ReadTx {
    /// At most `max` (CSN, entry id) of entries whose last change is after
    /// `after`, in CSN order.
    pub fn changed_after(&self, after: Csn, max: usize) -> Result<Vec<(Csn, u64)>> {
        let t = self.txn.open_table(CSN_INDEX)?;
        let mut out = Vec::new();
        for item in t.range((std::ops::Bound::Excluded(after.0), std::ops::Bound::Unbounded))?.take(max) {
            let (k, v) = item?;
            out.push((Csn(k.value()), v.value()));
        }
        Ok(out)
    }

    /// At most `max` deletions after `after`, in CSN order: (CSN, entryUUID,
    /// normalised DN).
    pub fn deletions_after(&self, after: Csn, max: usize) -> Result<Vec<(Csn, [u8; 16], String)>> {
        let mut out = Vec::new();
        for (k, v) in self.kept_after(Kept::Deletions, &after.0.to_be_bytes(), max)? {
            let corrupt = || StoreError::Corrupt("a deletion log record is malformed".into());
            let key: [u8; 16] = k.as_slice().try_into().map_err(|_| corrupt())?;
            let (uuid, ndn) = v.split_at_checked(16).ok_or_else(corrupt)?;
            let uuid: [u8; 16] = uuid.try_into().map_err(|_| corrupt())?;
            let ndn = String::from_utf8(ndn.to_vec()).map_err(|_| corrupt())?;
            out.push((Csn(u128::from_be_bytes(key)), uuid, ndn));
        }
        Ok(out)
    }

    /// The CSN before which the deletion log may have forgotten deletions:
    /// a refresh from an older cookie must send what is present instead.
    pub fn deletions_known_since(&self) -> Result<Csn> {
        let hi = self.with_meta(|t| Ok(t.get(super::sequence::DELETIONS_PRUNED)?.map(|g| g.value())))?;
        let lo = self.with_meta(|t| Ok(t.get(super::sequence::DELETIONS_PRUNED_LOW)?.map(|g| g.value())))?;
        Ok(Csn((u128::from(hi.unwrap_or(0)) << 64) | u128::from(lo.unwrap_or(0))))
    }

    /// Every (CSN, entry id) of the CSN index, for the consistency check.
    pub fn for_each_csn(&self, mut f: impl FnMut(Csn, u64)) -> Result<()> {
        let t = self.txn.open_table(CSN_INDEX)?;
        for item in t.iter()? {
            let (k, v) = item?;
            f(Csn(k.value()), v.value());
        }
        Ok(())
    }
}

/// Whole-table walks, for the consistency check (`convergences check`).
impl ReadTx {
    /// Every (normalised DN, id) of the DN index.
    pub fn for_each_dn(&self, mut f: impl FnMut(&str, u64)) -> Result<()> {
        self.with_dn2id(|t| {
            for item in t.iter()? {
                let (k, v) = item?;
                f(k.value(), v.value());
            }
            Ok(())
        })
    }

    /// Every (parent, child) link.
    pub fn for_each_child(&self, mut f: impl FnMut(u64, u64)) -> Result<()> {
        self.with_children(|t| {
            for item in t.iter()? {
                let (link, _) = item?;
                let (parent, child) = link_ends(link.value());
                f(parent, child);
            }
            Ok(())
        })
    }

    /// Every (entryUUID, id) of the UUID index.
    pub fn for_each_uuid(&self, mut f: impl FnMut([u8; 16], u64)) -> Result<()> {
        let t = self.txn.open_table(UUID2ID)?;
        for item in t.iter()? {
            let (k, v) = item?;
            f(k.value().to_be_bytes(), v.value());
        }
        Ok(())
    }

    /// Whether every posting is in the postings table (none pending in memory).
    pub fn settled(&self) -> bool {
        self.deferred.is_empty()
    }

    /// Every posting list (index key, ids); `bad` hears of malformed chunks.
    pub fn for_each_posting_list(&self, f: impl FnMut(&[u8], &[u64]), bad: impl FnMut(String)) -> Result<()> {
        if !self.deferred.is_empty() {
            // The table alone would look incomplete: read through `Store::read_settled`.
            return Err(StoreError::Corrupt("index postings are pending in memory".into()));
        }
        self.with_postings(|t| postings::for_each_list(t, f, bad))
    }
}

impl ReadTx {
    pub(super) fn with_dn2id<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, u64>) -> Result<T>,
    ) -> Result<T> {
        f(opened(&self.dn2id, || Ok(self.txn.open_table(DN2ID)?))?)
    }

    pub(super) fn with_postings<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(opened(&self.postings, || Ok(self.txn.open_table(POSTINGS)?))?)
    }

    pub(super) fn with_children<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u128, ()>) -> Result<T>) -> Result<T> {
        f(opened(&self.children, || Ok(self.txn.open_table(CHILD_LINKS)?))?)
    }

    pub(super) fn with_uuid2id<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u128, u64>) -> Result<T>) -> Result<T> {
        f(&self.txn.open_table(UUID2ID)?)
    }

    pub(super) fn with_entries<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<u64, &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.entries)
    }

    pub(super) fn with_tokens<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.txn.open_table(TOKENS)?)
    }

    pub(super) fn with_changelog<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<u64, &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.txn.open_table(CHANGELOG)?)
    }

    pub(super) fn with_meta<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static str, u64>) -> Result<T>,
    ) -> Result<T> {
        f(&self.txn.open_table(META)?)
    }

    /// Read an entry in place (see [`RecordView`]).
    pub fn entry_view<T>(&self, id: u64, f: impl FnOnce(RecordView<'_>) -> Result<T>) -> Result<Option<T>> {
        self.entry_with(id, |b| f(RecordView::parse(b)?))
    }

    pub(super) fn entry_with<T>(&self, id: u64, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
        match self.entries.get(id)? {
            Some(g) => Ok(Some(f(g.value())?)),
            None => Ok(None),
        }
    }

    pub(super) fn overlay(&self, key: &[u8]) -> Vec<u64> {
        self.deferred.ids(key)
    }

    pub(super) fn overlay_prefix(&self, prefix: &[u8]) -> Vec<u64> {
        self.deferred.ids_with_prefix(prefix)
    }
}

macro_rules! impl_reader {
    ($t:ty) => {
        impl Reader for $t {
            fn entry(&self, id: u64) -> Result<Option<Record>> {
                self.entry_with(id, Record::decode)
            }

            fn entry_keeping(&self, id: u64, keep: &dyn Fn(&[u8]) -> bool) -> Result<Option<Record>> {
                self.entry_with(id, |b| Record::decode_keeping(b, keep))
            }

            fn entry_dn(&self, id: u64) -> Result<Option<String>> {
                self.entry_with(id, Record::decode_dn)
            }

            fn id_of_dn(&self, ndn: &str) -> Result<Option<u64>> {
                self.with_dn2id(|t| Ok(t.get(ndn)?.map(|g| g.value())))
            }

            fn id_of_uuid(&self, uuid: &[u8; 16]) -> Result<Option<u64>> {
                self.with_uuid2id(|t| Ok(t.get(u128::from_be_bytes(*uuid))?.map(|g| g.value())))
            }

            fn children(&self, id: u64) -> Result<Vec<u64>> {
                self.with_children(|t| {
                    let mut out = Vec::new();
                    each_child(t, id, 0, |kid| {
                        out.push(kid);
                        true
                    })?;
                    Ok(out)
                })
            }

            fn children_at_most(&self, id: u64, max: usize) -> Result<Option<Vec<u64>>> {
                self.with_children(|t| {
                    let (mut out, mut over) = (Vec::new(), false);
                    each_child(t, id, 0, |kid| {
                        over = out.len() == max;
                        out.push(kid);
                        !over
                    })?;
                    Ok((!over).then_some(out))
                })
            }

            fn has_children(&self, id: u64) -> Result<bool> {
                self.with_children(|t| {
                    let mut any = false;
                    each_child(t, id, 0, |_| {
                        any = true;
                        false
                    })?;
                    Ok(any)
                })
            }

            fn child_count(&self, id: u64) -> Result<u64> {
                self.with_children(|t| {
                    let mut n = 0;
                    each_child(t, id, 0, |_| {
                        n += 1;
                        true
                    })?;
                    Ok(n)
                })
            }

            fn postings(&self, key: &[u8]) -> Result<Vec<u64>> {
                Ok(self.postings_at_most(key, usize::MAX)?.unwrap_or_default())
            }

            fn postings_at_most(&self, key: &[u8], cap: usize) -> Result<Option<Vec<u64>>> {
                let Some(mut out) = self.with_postings(|t| postings::read_at_most(t, key, cap))? else {
                    return Ok(None);
                };
                let extra = self.overlay(key);
                if !extra.is_empty() {
                    out = deferred::merge(&out, &extra);
                    if out.len() > cap {
                        return Ok(None);
                    }
                }
                Ok(Some(out))
            }

            fn postings_with_prefix(&self, prefix: &[u8], cap: usize) -> Result<Option<Vec<u64>>> {
                let Some(mut out) = self.with_postings(|t| postings::read_prefix(t, prefix, cap))? else {
                    return Ok(None);
                };
                out.extend(self.overlay_prefix(prefix));
                if out.len() > cap {
                    return Ok(None);
                }
                out.sort_unstable();
                out.dedup();
                Ok(Some(out))
            }

            fn postings_window(&self, key: &[u8], after: u64, n: usize) -> Result<(Vec<u64>, bool)> {
                let (out, more) = self.with_postings(|t| postings::read_window(t, key, after, n))?;
                Ok(with_deferred(out, more, self.overlay(key), after, n))
            }

            fn postings_with_prefix_window(&self, prefix: &[u8], after: u64, n: usize) -> Result<(Vec<u64>, bool)> {
                let (mut out, cut) = self.with_postings(|t| postings::read_prefix_window(t, prefix, after, n))?;
                out.sort_unstable();
                out.dedup();
                Ok(with_deferred(out, cut, self.overlay_prefix(prefix), after, n))
            }

            fn children_window(&self, id: u64, after: u64, n: usize) -> Result<(Vec<u64>, bool)> {
                self.with_children(|t| {
                    let (mut out, mut more) = (Vec::new(), false);
                    each_child(t, id, after, |kid| {
                        more = out.len() == n;
                        if !more {
                            out.push(kid);
                        }
                        !more
                    })?;
                    Ok((out, more))
                })
            }

            fn all_ids(&self) -> Result<Vec<u64>> {
                self.with_entries(|t| {
                    let mut out = Vec::with_capacity(t.len()? as usize);
                    for item in t.iter()? {
                        out.push(item?.0.value());
                    }
                    Ok(out)
                })
            }

            fn ids_window(&self, after: u64, n: usize) -> Result<(Vec<u64>, bool)> {
                self.with_entries(|t| {
                    let mut out = Vec::new();
                    for item in t.range(after.saturating_add(1)..)? {
                        if out.len() == n {
                            return Ok((out, true));
                        }
                        out.push(item?.0.value());
                    }
                    Ok((out, false))
                })
            }

            fn entry_count(&self) -> Result<u64> {
                self.with_entries(|t| Ok(t.len()?))
            }

            fn token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
                self.with_tokens(|t| match t.get(hash)? {
                    Some(g) => Ok(Some(TokenRecord::decode(g.value())?)),
                    None => Ok(None),
                })
            }

            fn tokens(&self) -> Result<Vec<(Vec<u8>, TokenRecord)>> {
                self.with_tokens(|t| {
                    let mut out = Vec::new();
                    for item in t.iter()? {
                        let (k, v) = item?;
                        out.push((k.value().to_vec(), TokenRecord::decode(v.value())?));
                    }
                    Ok(out)
                })
            }

            fn meta(&self, name: &str) -> Result<Option<u64>> {
                self.with_meta(|t| Ok(t.get(name)?.map(|g| g.value())))
            }

            fn kept_value(&self, kind: Kept, key: &[u8]) -> Result<Option<Vec<u8>>> {
                self.kept(kind, key)
            }

            fn last_csn(&self) -> Result<Option<Csn>> {
                let hi = self.with_meta(|t| Ok(t.get(super::sequence::CSN_HIGH)?.map(|g| g.value())))?;
                let lo = self.with_meta(|t| Ok(t.get(super::sequence::CSN_LOW)?.map(|g| g.value())))?;
                Ok(hi.map(|hi| Csn((u128::from(hi) << 64) | u128::from(lo.unwrap_or(0)))))
            }

            fn meta_with_prefix(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
                self.with_meta(|t| {
                    let mut out = Vec::new();
                    for item in t.range(prefix..)? {
                        let (k, v) = item?;
                        if !k.value().starts_with(prefix) {
                            break;
                        }
                        out.push((k.value().to_string(), v.value()));
                    }
                    Ok(out)
                })
            }

            fn changes_since(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>> {
                self.with_changelog(|t| {
                    let mut out = Vec::new();
                    for item in t.range(seq..)?.take(max) {
                        let (k, v) = item?;
                        out.push((k.value(), ChangeRecord::decode(v.value())?));
                    }
                    Ok(out)
                })
            }

            fn changes_before(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>> {
                self.with_changelog(|t| {
                    let mut out = Vec::new();
                    for item in t.range(..seq)?.rev().take(max) {
                        let (k, v) = item?;
                        out.push((k.value(), ChangeRecord::decode(v.value())?));
                    }
                    Ok(out)
                })
            }
        }
    };
}
impl_reader!(ReadTx);
impl_reader!(WriteTx<'_>);
