//! Postings committed but not yet written to the postings table.
//!
//! A group commit of creations touches some fifty posting lists shared by
//! every new entry (objectClass values, presence keys, the trigrams of
//! common names): in redb each is one B-tree leaf copied and rewritten per
//! transaction, the bulk of a group's cost. The redo log already makes the
//! postings durable, so they need not reach the table at every commit:
//! they are kept here, in memory, and written to the table together every
//! [`MAX_DEFERRED`] postings (each shared list once), when a transaction
//! removes a posting, and before a checkpoint (which empties the redo log)
//! or a backup (which copies the table).
//!
//! Readers merge these lists with the table's. A *generation* is the set
//! of postings deferred since the last write to the table: a reader takes
//! the current generation before its redb snapshot, so whatever the
//! snapshot lacks, the generation has. Once a transaction writes a
//! generation to the table, a new empty one replaces it; readers still on
//! the old snapshot keep the old generation, which no longer changes.
//! Postings are added to a generation only after their transaction is
//! committed in redb, so a reader may see an id its snapshot does not hold
//! yet: every lookup by postings fetches the entry and tests it, so such an
//! id is skipped, never answered.

use crate::fasthash::FoldMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Write the deferred postings to the table once they number this many:
/// enough that a list shared by every new entry is rewritten once per few
/// hundred creations, few enough that readers merge small lists and that
/// the commit writing them (tens of milliseconds) stays short.
pub const MAX_DEFERRED: usize = 20_000;

/// One generation of deferred postings: index key → ascending ids.
#[derive(Default)]
pub struct Deferred {
    lists: RwLock<FoldMap<Vec<u8>, Vec<u64>>>,
    /// Ids held, over all keys (read without the lock).
    held: AtomicUsize,
}

impl Deferred {
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// The ids deferred under `key`, ascending.
    pub fn ids(&self, key: &[u8]) -> Vec<u64> {
        if self.is_empty() {
            return Vec::new();
        }
        self.lists().get(key).cloned().unwrap_or_default()
    }

    /// The lists, for reading. A writer that panicked left them whole: each
    /// list is replaced in one assignment.
    fn lists(&self) -> std::sync::RwLockReadGuard<'_, FoldMap<Vec<u8>, Vec<u64>>> {
        self.lists.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The ids deferred under any key starting with `prefix` (unsorted).
    pub fn ids_with_prefix(&self, prefix: &[u8]) -> Vec<u64> {
        if self.is_empty() {
            return Vec::new();
        }
        self.lists().iter().filter(|(k, _)| k.starts_with(prefix)).flat_map(|(_, ids)| ids.iter().copied()).collect()
    }

    /// Every deferred list, sorted by key (to write them to the table).
    pub fn snapshot(&self) -> Vec<(Vec<u8>, Vec<u64>)> {
        let mut all: Vec<(Vec<u8>, Vec<u64>)> = self.lists().iter().map(|(k, ids)| (k.clone(), ids.clone())).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Add a committed transaction's postings (ids ascending per key).
    pub fn publish(&self, postings: FoldMap<Vec<u8>, Vec<u64>>) {
        let mut lists = self.lists.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut added = 0;
        for (key, ids) in postings {
            let list = lists.entry(key).or_default();
            let before = list.len();
            if list.last().is_none_or(|&last| ids.first().is_some_and(|&first| first > last)) {
                // New entries have the highest ids: most often an append.
                list.extend_from_slice(&ids);
            } else {
                *list = merge(list, &ids);
            }
            added += list.len() - before;
        }
        self.held.fetch_add(added, Ordering::AcqRel);
    }
}

/// Union of two ascending, deduplicated lists.
pub fn merge(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use redb::ReadableDatabase;

    use crate::store::{Reader, Store};

    const KEY: &[u8] = b"pobjectclass\0";

    /// One committed transaction posting `ids` under KEY, deferred.
    fn post_deferred(store: &Store, ids: &[u64]) {
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.defer_postings();
        for &id in ids {
            w.index(&[KEY.to_vec()], id, true).unwrap();
        }
        let staged = w.finish().unwrap();
        txn.commit(staged).unwrap();
    }

    fn in_table(store: &Store) -> Vec<u64> {
        let r = store.db.begin_read().unwrap();
        let t = r.open_table(crate::store::tables::POSTINGS).unwrap();
        super::super::postings::read(&t, KEY).unwrap()
    }

    #[test]
    fn deferred_postings_are_read_before_they_reach_the_table() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("t.redb"), 1 << 20, 1 << 20).unwrap();
        post_deferred(&store, &[3, 1]);
        post_deferred(&store, &[2]);
        assert!(in_table(&store).is_empty(), "deferred, not written");
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1, 2, 3]);
        assert_eq!(store.read().unwrap().postings_with_prefix(b"pobject", 10).unwrap().unwrap(), [1, 2, 3]);
        // A write transaction sees them too, with its own pending ones.
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.defer_postings();
        w.index(&[KEY.to_vec()], 4, true).unwrap();
        assert_eq!(w.postings(KEY).unwrap(), [1, 2, 3, 4]);
        drop(w);
        drop(txn);
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1, 2, 3], "the aborted one is not published");
    }

    #[test]
    fn a_removal_writes_the_deferred_postings_first() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("t.redb"), 1 << 20, 1 << 20).unwrap();
        post_deferred(&store, &[1, 2, 3]);
        let before = store.read().unwrap();
        store.write_with(|w| w.index(&[KEY.to_vec()], 2, false)).unwrap();
        assert_eq!(in_table(&store), [1, 3]);
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1, 3]);
        // A snapshot taken before still reads the state it began with.
        assert_eq!(before.postings(KEY).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn a_checkpoint_writes_the_deferred_postings_and_a_restart_replays_them() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.redb");
        {
            let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
            post_deferred(&store, &[1, 2]);
            store.checkpoint().unwrap();
            assert_eq!(in_table(&store), [1, 2]);
            post_deferred(&store, &[5]);
            // Closed as if it crashed: the log, which alone has 5, looks
            // empty to the store's drop (no checkpoint), but its records stay.
            let mut log = store.lock_redo().unwrap();
            let last = log.last_seq();
            log.restart(last);
        }
        let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
        assert_eq!(in_table(&store), [1, 2, 5]);
    }

    #[test]
    fn a_full_generation_is_written_to_the_table() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("t.redb"), 1 << 20, 1 << 20).unwrap();
        let ids: Vec<u64> = (1..=super::MAX_DEFERRED as u64 + 1).collect();
        post_deferred(&store, &ids[..super::MAX_DEFERRED / 2]);
        assert!(in_table(&store).is_empty());
        post_deferred(&store, &ids[super::MAX_DEFERRED / 2..]);
        assert_eq!(in_table(&store), ids, "past the limit, everything is written");
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), ids);
    }
}
