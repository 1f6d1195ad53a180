//! Persistence on redb. No schema checks, no access control, no protocol
//! types: the store keeps records, the DN and children maps, index postings
//! and the changelog, and answers primitive lookups. Which keys an entry has in
//! which index is decided by the directory core; the store only writes them, in
//! the same transaction as the entry, so they can never disagree.

mod backup;
mod codec;
mod deferred;
pub mod kept;
mod postings;
mod redo;
mod tables;

use crate::fasthash::{FoldMap, FoldState};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

pub use codec::{ChangeRecord, Record, RecordView, TokenRecord};
use deferred::{Deferred, MAX_DEFERRED};
pub use kept::{DeletedRecord, Kept};
use redb::{Durability, ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata};
use redo::{Op, RedoLog};
use tables::*;

/// Room for the keys a group commit posts, reserved up front.
const DEFERRED_GROUP_KEYS: usize = 512;

/// Everything that can go wrong below the directory core.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Redb(#[from] redb::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store format {found} is not supported (this build reads format {supported})")]
    Format { found: u64, supported: u64 },
    /// Another process has the store open.
    #[error("another process has the store open")]
    Locked,
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The version of the on-disk layout this build writes and reads. Format 2
/// adds the redo log beside the redb file: a build that ignored it would lose
/// the writes it holds, so format-1 builds must refuse the store. Format 3
/// pads posting chunks with zero ids (see [`postings`]), which a format-2
/// build would read as entry 0. Format 4 keeps no posting lists for
/// entryUUID (the UUID table answers those filters): a format-3 build would
/// find no entry by its entryUUID. Format 5 keeps the tree's links in
/// `child_links`, where an older build would find no children. Older stores
/// are upgraded in place: their links are moved, and the directory drops
/// the posting lists it no longer keeps when it opens the store.
const FORMAT_VERSION: u64 = 5;

/// The oldest format this build upgrades (and restores from a backup).
const OLDEST_FORMAT: u64 = 1;

/// Which posting list an index key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// attribute = normalised value
    Equality,
    /// attribute present
    Presence,
    /// attribute value contains a trigram
    Substring,
    /// attribute ~= folded value (`schema::approx`)
    Approx,
}

/// Build the key of an index posting: kind, attribute, value.
pub fn index_key(kind: IndexKind, attr: &str, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(attr.len() + value.len() + 2);
    k.push(match kind {
        IndexKind::Equality => b'e',
        IndexKind::Presence => b'p',
        IndexKind::Substring => b's',
        IndexKind::Approx => b'a',
    });
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    k.extend_from_slice(value);
    k
}

/// Formats up to 4 kept the tree's links in a multimap table: move them to
/// [`CHILD_LINKS`] and drop it. How many links moved.
fn move_child_links(txn: &redb::WriteTransaction, links: &mut redb::Table<'_, u128, ()>) -> Result<u64> {
    let mut moved = 0;
    {
        let old = txn.open_multimap_table(CHILDREN)?;
        for item in old.iter()? {
            let (parent, kids) = item?;
            let parent = parent.value();
            for kid in kids {
                links.insert(child_link(parent, kid?.value()), ())?;
                moved += 1;
            }
        }
    }
    txn.delete_multimap_table(CHILDREN)?;
    Ok(moved)
}

/// Hand `f` the ids under `parent` in the links table, ascending, until it
/// returns `false`.
fn each_child(t: &impl redb::ReadableTable<u128, ()>, parent: u64, mut f: impl FnMut(u64) -> bool) -> Result<()> {
    for item in t.range(child_link(parent, 0)..=child_link(parent, u64::MAX))? {
        let (k, _) = item?;
        if !f(link_ends(k.value()).1) {
            break;
        }
    }
    Ok(())
}

/// The database handle. Cheap to share behind an `Arc`.
pub struct Store {
    db: redb::Database,
    path: std::path::PathBuf,
    redo: Arc<Mutex<RedoLog>>,
    snapshot: Arc<SharedSnapshot>,
    /// Checkpoint once this many bytes are logged (see [`redo`]).
    checkpoint_bytes: u64,
    /// One write transaction at a time, from before redb's own lock until
    /// its deferred postings are published (see [`deferred`]).
    gate: Arc<WriterGate>,
}

impl Store {
    /// Open or create the store file, with redb's page cache set to
    /// `cache_bytes`, and replay what its redo log holds beyond the last
    /// checkpoint. The log is checkpointed after `checkpoint_bytes`.
    pub fn open(path: &Path, cache_bytes: usize, checkpoint_bytes: u64) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Redb(redb::Error::Io(e)))?;
        }
        let db = match redb::Database::builder().set_cache_size(cache_bytes).create(path) {
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(StoreError::Locked),
            other => other?,
        };
        let (log, records) = RedoLog::open(&path.with_extension("redo"))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
            redo: Arc::new(Mutex::new(log)),
            snapshot: Arc::default(),
            checkpoint_bytes,
            gate: Arc::default(),
        };
        let txn = store.write_unlogged()?;
        let mut w = txn.tables()?;
        let checkpoint = {
            let found = w.t.meta.get("format")?.map(|g| g.value());
            match found {
                Some(FORMAT_VERSION) => {}
                None => {
                    w.t.meta.insert("format", FORMAT_VERSION)?;
                }
                Some(older) if (OLDEST_FORMAT..FORMAT_VERSION).contains(&older) => {
                    tracing::info!("upgrading the store from format {older} to {FORMAT_VERSION}");
                    let links = move_child_links(&txn.txn, &mut w.t.children)?;
                    tracing::info!(links, "moved the tree's links to their format-5 table");
                    w.t.meta.insert("format", FORMAT_VERSION)?;
                }
                Some(other) => {
                    return Err(StoreError::Format { found: other, supported: FORMAT_VERSION });
                }
            }
            w.t.meta.get("redo_checkpoint")?.map(|g| g.value()).unwrap_or(0)
        };
        let replay: Vec<&(u64, Vec<u8>)> = records.iter().filter(|(seq, _)| *seq > checkpoint).collect();
        if let Some((first, _)) = replay.first()
            && *first != checkpoint + 1
        {
            return Err(StoreError::Corrupt(format!(
                "the redo log starts at record {first} but the store was checkpointed at {checkpoint}: records are missing"
            )));
        }
        let mut last = checkpoint;
        if !replay.is_empty() {
            w.bulk();
            for (seq, payload) in &replay {
                for op in Op::decode_all(payload)? {
                    w.apply(op)?;
                }
                last = *seq;
            }
            tracing::info!(records = replay.len(), "replayed the redo log up to record {last}");
        }
        let staged = w.finish()?;
        store.lock_redo()?.restart(last);
        txn.commit_durable(staged)?;
        Ok(store)
    }

    /// A consistent snapshot for one operation. Keep it short and never hold it
    /// across an `.await`.
    ///
    /// Readers share one snapshot until the next commit: beginning a read
    /// transaction and opening its tables cost more than a lookup by uid.
    pub fn read(&self) -> Result<ReadTx> {
        // The deferred postings' generation is taken before the snapshot:
        // what the snapshot's postings table lacks, the generation holds.
        let (seen, deferred) = {
            let shared = self.snapshot.lock()?;
            if let Some(r) = &shared.current {
                return Ok(r.clone());
            }
            (shared.commits, shared.deferred.clone())
        };
        let txn = self.db.begin_read()?;
        let entries = txn.open_table(ENTRIES)?;
        let r = ReadTx {
            inner: Arc::new(ReadInner {
                txn,
                deferred,
                entries,
                dn2id: OnceLock::new(),
                postings: OnceLock::new(),
                children: OnceLock::new(),
                last_bind: OnceLock::new(),
            }),
        };
        let mut shared = self.snapshot.lock()?;
        // Shared only if no commit landed since `seen`: this snapshot might
        // predate it, and a write once acknowledged must be seen by every read.
        if shared.commits == seen && shared.current.is_none() {
            shared.current = Some(r.clone());
        }
        Ok(r)
    }

    /// A write transaction; nothing is visible until [`Txn::commit`], which
    /// returns only once the data is durable. Its tables are opened once,
    /// by [`Txn::tables`].
    pub fn write(&self) -> Result<Txn> {
        self.write_gated(Some(GateGuard::enter(&self.gate)?))
    }

    /// A write transaction holding `gate`, or for a caller that holds it.
    fn write_gated(&self, gate: Option<GateGuard>) -> Result<Txn> {
        let txn = self.db.begin_write()?;
        let deferred = self.snapshot.lock()?.deferred.clone();
        Ok(Txn {
            txn,
            logging: true,
            redo: self.redo.clone(),
            snapshot: self.snapshot.clone(),
            checkpoint_bytes: self.checkpoint_bytes,
            deferred,
            _gate: gate,
        })
    }

    /// Run `f` in a write transaction, committed (durably) when it returns `Ok`.
    pub fn write_with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut WriteTx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let txn = self.write()?;
        let mut w = txn.tables()?;
        let v = f(&mut w)?;
        let staged = w.finish()?;
        txn.commit(staged)?;
        Ok(v)
    }

    /// A write transaction for a large batch (an import): not logged, it
    /// commits durably in redb (see [`Txn::commit_durable`]).
    pub fn write_unlogged(&self) -> Result<Txn> {
        let mut w = self.write()?;
        w.logging = false;
        Ok(w)
    }

    /// Remove every posting list whose index key starts with `prefix`, durably
    /// (for lists an older build kept and this one does not); how many chunks went.
    pub fn drop_posting_lists(&self, prefix: &[u8]) -> Result<u64> {
        let txn = self.write_unlogged()?;
        let mut w = txn.tables()?;
        w.flush_deferred()?;
        let dropped = postings::remove_prefix(&mut w.t.postings, prefix)?;
        let staged = w.finish()?;
        txn.commit_durable(staged)?;
        Ok(dropped)
    }

    /// Commit durably in redb and empty the redo log: for a clean shutdown,
    /// so that the next start has nothing to replay.
    pub fn checkpoint(&self) -> Result<()> {
        let txn = self.write_unlogged()?;
        let staged = txn.tables()?.finish()?;
        txn.commit_durable(staged)
    }

    /// Write a consistent backup of the whole store, taken from one read
    /// snapshot: the server may keep serving and writing meanwhile. Returns
    /// the number of records written.
    pub fn backup(&self, out: impl std::io::Write) -> Result<u64> {
        // The backup holds the postings table: the deferred postings are
        // written there first, and the snapshot taken before another write
        // can defer more.
        let gate = self.settle()?;
        let snapshot = self.db.begin_read()?;
        drop(gate);
        backup::write(&snapshot, out)
    }

    /// Write the deferred postings to the postings table; no other write can
    /// defer more until the returned gate is dropped.
    fn settle(&self) -> Result<GateGuard> {
        let gate = GateGuard::enter(&self.gate)?;
        let txn = self.write_gated(None)?;
        let mut w = txn.tables()?;
        w.flush_deferred()?;
        let staged = w.finish()?;
        txn.commit(staged)?;
        Ok(gate)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A read snapshot whose postings table holds every posting (none pending
    /// in memory), for a check of the running server's store: the deferred
    /// postings are written first, and the snapshot taken before another
    /// write can defer more.
    pub fn read_settled(&self) -> Result<ReadTx> {
        let gate = self.settle()?;
        let r = self.read()?;
        drop(gate);
        Ok(r)
    }

    /// Create the store file `path`, which must not exist yet, from a backup.
    pub fn restore(path: &Path, input: impl std::io::Read) -> Result<u64> {
        backup::restore(path, input)
    }

    /// What the health and metrics endpoints report: the store file's size,
    /// the redo log's used bytes and the number of entries.
    pub fn stats(&self) -> Result<StoreStats> {
        let store_bytes = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let redo_bytes = self.lock_redo()?.len();
        let entries = self.read()?.entry_count()?;
        Ok(StoreStats { store_bytes, redo_bytes, entries })
    }

    /// Whether the store takes writes: not when a commit failed after its
    /// redo record was synced (the log then waits for a restart to replay it).
    pub fn writable(&self) -> Result<()> {
        match self.lock_redo()?.unapplied() {
            Some(why) => Err(StoreError::Corrupt(format!("writes are refused until a restart: {why}"))),
            None => Ok(()),
        }
    }

    fn lock_redo(&self) -> Result<std::sync::MutexGuard<'_, RedoLog>> {
        lock(&self.redo)
    }
}

impl Drop for Store {
    /// A store closed cleanly leaves nothing to replay.
    fn drop(&mut self) {
        // No read snapshot may outlive the database it reads.
        self.snapshot.invalidate();
        if lock(&self.redo).is_ok_and(|log| log.len() == 0) {
            return;
        }
        if let Err(e) = self.checkpoint() {
            tracing::warn!("closing the store without a checkpoint (the next start replays the redo log): {e}");
        }
    }
}

/// See [`Store::stats`].
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    pub store_bytes: u64,
    pub redo_bytes: u64,
    pub entries: u64,
}

/// The read snapshot readers share (see [`Store::read`]).
#[derive(Default)]
struct SharedSnapshot(Mutex<Shared>);

#[derive(Default)]
struct Shared {
    /// Commits so far.
    commits: u64,
    current: Option<ReadTx>,
    /// The current generation of deferred postings.
    deferred: Arc<Deferred>,
}

impl SharedSnapshot {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Shared>> {
        self.0.lock().map_err(|_| StoreError::Corrupt("the snapshot lock is poisoned".into()))
    }

    /// A commit landed: later reads must see it. The old snapshot is released
    /// here rather than at the next read, so that a run of writes without
    /// reads does not keep redb from reusing the pages they free.
    fn invalidate(&self) {
        self.committed(false);
    }

    /// [`SharedSnapshot::invalidate`], and when the commit wrote the deferred
    /// postings to the table, start a new generation.
    fn committed(&self, wrote_deferred: bool) {
        let old = match self.0.lock() {
            Ok(mut shared) => {
                shared.commits += 1;
                if wrote_deferred {
                    shared.deferred = Arc::default();
                }
                shared.current.take()
            }
            Err(_) => None,
        };
        drop(old);
    }
}

/// Admits one write transaction at a time (see [`Store::write`]).
#[derive(Default)]
struct WriterGate {
    busy: Mutex<bool>,
    free: Condvar,
}

/// The gate held by a write transaction, released when it ends.
struct GateGuard(Arc<WriterGate>);

impl GateGuard {
    fn enter(gate: &Arc<WriterGate>) -> Result<GateGuard> {
        let poisoned = |_| StoreError::Corrupt("the writer gate is poisoned".into());
        let mut busy = gate.busy.lock().map_err(poisoned)?;
        while *busy {
            busy = gate.free.wait(busy).map_err(poisoned)?;
        }
        *busy = true;
        Ok(GateGuard(gate.clone()))
    }
}

impl Drop for GateGuard {
    fn drop(&mut self) {
        let mut busy = match self.0.busy.lock() {
            Ok(busy) => busy,
            Err(poisoned) => poisoned.into_inner(),
        };
        *busy = false;
        drop(busy);
        self.0.free.notify_one();
    }
}

fn lock(redo: &Mutex<RedoLog>) -> Result<std::sync::MutexGuard<'_, RedoLog>> {
    redo.lock().map_err(|_| StoreError::Corrupt("the redo log lock is poisoned".into()))
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
    /// Every entry id, ascending.
    fn all_ids(&self) -> Result<Vec<u64>>;
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
}

/// A read snapshot; clones share it.
#[derive(Clone)]
pub struct ReadTx {
    inner: Arc<ReadInner>,
}

/// Tables are opened once per snapshot: a search reads hundreds of entries,
/// and every lookup by uid would otherwise open three tables.
pub struct ReadInner {
    txn: redb::ReadTransaction,
    /// The deferred postings this snapshot's postings table may lack.
    deferred: Arc<Deferred>,
    entries: redb::ReadOnlyTable<u64, &'static [u8]>,
    dn2id: OnceLock<redb::ReadOnlyTable<&'static str, u64>>,
    postings: OnceLock<redb::ReadOnlyTable<&'static [u8], &'static [u8]>>,
    children: OnceLock<redb::ReadOnlyTable<u128, ()>>,
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
fn opened<T>(cell: &OnceLock<T>, open: impl FnOnce() -> Result<T>) -> Result<&T> {
    if let Some(t) = cell.get() {
        return Ok(t);
    }
    let t = open()?;
    Ok(cell.get_or_init(|| t))
}

/// A write transaction. Its changes go through the [`WriteTx`] of
/// [`Txn::tables`], then [`WriteTx::finish`] and [`Txn::commit`] make them
/// durable and visible; dropped uncommitted, it is thrown away.
pub struct Txn {
    txn: redb::WriteTransaction,
    /// Whether operations are recorded for the redo log (not while replaying
    /// it, nor in a transaction that will commit durably in redb anyway).
    logging: bool,
    redo: Arc<Mutex<RedoLog>>,
    snapshot: Arc<SharedSnapshot>,
    checkpoint_bytes: u64,
    /// The deferred postings, which only this transaction may change.
    deferred: Arc<Deferred>,
    /// Held until the transaction ends (`None`: its caller holds the gate).
    _gate: Option<GateGuard>,
}

/// Every table of a write transaction, opened once: opening a table in
/// redb looks its root up and closing it stages the new root, which cost as
/// much as a lookup; a group commit of creations would otherwise open a
/// dozen tables per entry.
struct Tables<'t> {
    entries: redb::Table<'t, u64, &'static [u8]>,
    dn2id: redb::Table<'t, &'static str, u64>,
    uuid2id: redb::Table<'t, u128, u64>,
    children: redb::Table<'t, u128, ()>,
    postings: redb::Table<'t, &'static [u8], &'static [u8]>,
    changelog: redb::Table<'t, u64, &'static [u8]>,
    meta: redb::Table<'t, &'static str, u64>,
    tokens: redb::Table<'t, &'static [u8], &'static [u8]>,
    bin: redb::Table<'t, &'static [u8], &'static [u8]>,
    last_bind: redb::Table<'t, &'static [u8], &'static [u8]>,
    history: redb::Table<'t, &'static [u8], &'static [u8]>,
}

/// The changes of a write transaction, through its open tables.
pub struct WriteTx<'t> {
    t: Tables<'t>,
    /// Bulk-load mode: postings added here are kept in memory, merged into
    /// lookups, and written chunk by chunk at commit (see [`WriteTx::bulk`]).
    bulk: Option<FoldMap<Vec<u8>, Vec<u64>>>,
    /// Counters taken in this transaction and their next values: written
    /// to the meta table (and the redo log) once, by [`WriteTx::finish`],
    /// not at every creation.
    counters: Vec<(&'static str, u64)>,
    logging: bool,
    /// This transaction's operations, encoded for the redo log.
    ops: Vec<u8>,
    /// The postings deferred by earlier transactions (see [`deferred`]).
    deferred: &'t Deferred,
    /// This transaction's bulk postings may be deferred rather than written.
    defer: bool,
    /// The deferred postings were written to the table in this transaction.
    wrote_deferred: bool,
    redo: &'t Mutex<RedoLog>,
    checkpoint_bytes: u64,
}

/// A write transaction's changes, all written to its tables, ready to commit.
pub struct Staged {
    ops: Vec<u8>,
    /// Postings to defer once committed (ids ascending per key).
    deferred: Option<FoldMap<Vec<u8>, Vec<u64>>>,
    /// The earlier deferred postings are in the table now: a new generation starts.
    wrote_deferred: bool,
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
    fn with_dn2id<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<&'static str, u64>) -> Result<T>) -> Result<T> {
        f(opened(&self.dn2id, || Ok(self.txn.open_table(DN2ID)?))?)
    }

    fn with_postings<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(opened(&self.postings, || Ok(self.txn.open_table(POSTINGS)?))?)
    }

    fn with_children<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u128, ()>) -> Result<T>) -> Result<T> {
        f(opened(&self.children, || Ok(self.txn.open_table(CHILD_LINKS)?))?)
    }

    fn with_uuid2id<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u128, u64>) -> Result<T>) -> Result<T> {
        f(&self.txn.open_table(UUID2ID)?)
    }

    fn with_entries<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u64, &'static [u8]>) -> Result<T>) -> Result<T> {
        f(&self.entries)
    }

    fn with_tokens<T>(
        &self,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.txn.open_table(TOKENS)?)
    }

    fn with_changelog<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<u64, &'static [u8]>) -> Result<T>) -> Result<T> {
        f(&self.txn.open_table(CHANGELOG)?)
    }

    fn with_meta<T>(&self, f: impl FnOnce(&redb::ReadOnlyTable<&'static str, u64>) -> Result<T>) -> Result<T> {
        f(&self.txn.open_table(META)?)
    }

    /// Read an entry in place (see [`RecordView`]).
    pub fn entry_view<T>(&self, id: u64, f: impl FnOnce(RecordView<'_>) -> Result<T>) -> Result<Option<T>> {
        self.entry_with(id, |b| f(RecordView::parse(b)?))
    }

    fn entry_with<T>(&self, id: u64, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
        match self.entries.get(id)? {
            Some(g) => Ok(Some(f(g.value())?)),
            None => Ok(None),
        }
    }

    fn overlay(&self, key: &[u8]) -> Vec<u64> {
        self.deferred.ids(key)
    }

    fn overlay_prefix(&self, prefix: &[u8]) -> Vec<u64> {
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
                    each_child(t, id, |kid| {
                        out.push(kid);
                        true
                    })?;
                    Ok(out)
                })
            }

            fn children_at_most(&self, id: u64, max: usize) -> Result<Option<Vec<u64>>> {
                self.with_children(|t| {
                    let (mut out, mut over) = (Vec::new(), false);
                    each_child(t, id, |kid| {
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
                    each_child(t, id, |_| {
                        any = true;
                        false
                    })?;
                    Ok(any)
                })
            }

            fn child_count(&self, id: u64) -> Result<u64> {
                self.with_children(|t| {
                    let mut n = 0;
                    each_child(t, id, |_| {
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

            fn all_ids(&self) -> Result<Vec<u64>> {
                self.with_entries(|t| {
                    let mut out = Vec::with_capacity(t.len()? as usize);
                    for item in t.iter()? {
                        out.push(item?.0.value());
                    }
                    Ok(out)
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

impl Txn {
    /// Open every table, once for the whole transaction.
    pub fn tables(&self) -> Result<WriteTx<'_>> {
        let txn = &self.txn;
        Ok(WriteTx {
            t: Tables {
                entries: txn.open_table(ENTRIES)?,
                dn2id: txn.open_table(DN2ID)?,
                uuid2id: txn.open_table(UUID2ID)?,
                children: txn.open_table(CHILD_LINKS)?,
                postings: txn.open_table(POSTINGS)?,
                changelog: txn.open_table(CHANGELOG)?,
                meta: txn.open_table(META)?,
                tokens: txn.open_table(TOKENS)?,
                bin: txn.open_table(BIN)?,
                last_bind: txn.open_table(LAST_BIND)?,
                history: txn.open_table(HISTORY)?,
            },
            bulk: None,
            counters: Vec::new(),
            logging: self.logging,
            ops: Vec::new(),
            deferred: &self.deferred,
            defer: false,
            wrote_deferred: false,
            redo: &self.redo,
            checkpoint_bytes: self.checkpoint_bytes,
        })
    }

    /// Make the transaction durable and visible: its operations are appended
    /// to the redo log and synced, then committed in redb without a sync. When
    /// the log has grown past its limit, this commit is a checkpoint instead.
    pub fn commit(mut self, staged: Staged) -> Result<()> {
        let started = std::time::Instant::now();
        let redo = self.redo.clone();
        let mut log = lock(&redo)?;
        // A checkpoint empties the log: only once no posting is left deferred
        // (WriteTx::finish writes them when a checkpoint is due).
        let all_written = staged.wrote_deferred || self.deferred.is_empty();
        if (!self.logging || log.len() + staged.ops.len() as u64 > self.checkpoint_bytes)
            && staged.deferred.is_none()
            && all_written
        {
            drop(log);
            return self.commit_durable(staged);
        }
        if !staged.ops.is_empty() {
            log.append(&staged.ops)?;
        }
        let logged = started.elapsed();
        let committed = self
            .txn
            .set_durability(Durability::None)
            .map_err(StoreError::from)
            .and_then(|()| self.txn.commit().map_err(StoreError::from));
        tracing::trace!(
            redo_us = logged.as_micros() as u64,
            redo_bytes = staged.ops.len(),
            redb_us = (started.elapsed() - logged).as_micros() as u64,
            "commit"
        );
        if committed.is_ok() {
            // Published only once committed: an id of a transaction redb did
            // not take would be handed out again.
            if let Some(postings) = staged.deferred {
                self.deferred.publish(postings);
            }
            self.snapshot.committed(staged.wrote_deferred);
        }
        if let Err(e) = &committed {
            // The log holds a transaction redb did not take: acknowledging
            // anything more would build on a state a restart would not see.
            log.break_with(format!("commit after logging failed: {e}"));
        }
        committed
    }

    /// Commit durably in redb (`Durability::Immediate`: synced before return),
    /// which also persists every earlier commit: the redo log starts over.
    /// For imports, whose transactions are too large to log. Nothing is
    /// logged; `staged` must hold every posting written (none deferred), or
    /// the emptied log would lose them.
    pub fn commit_durable(self, staged: Staged) -> Result<()> {
        let redo = self.redo.clone();
        let mut log = lock(&redo)?;
        if let Some(why) = log.unapplied() {
            return Err(StoreError::Corrupt(format!(
                "no checkpoint while the redo log holds an unapplied write ({why}); restart the server"
            )));
        }
        if staged.deferred.is_some() || !(staged.wrote_deferred || self.deferred.is_empty()) {
            return Err(StoreError::Corrupt("a checkpoint would lose postings not yet in the table".into()));
        }
        let last = log.last_seq();
        self.txn.open_table(META)?.insert("redo_checkpoint", last)?;
        self.txn.commit()?;
        self.snapshot.committed(staged.wrote_deferred);
        log.restart(last);
        Ok(())
    }
}

impl WriteTx<'_> {
    fn with_dn2id<T>(&self, f: impl FnOnce(&redb::Table<'_, &'static str, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.dn2id)
    }

    fn with_postings<T>(
        &self,
        f: impl FnOnce(&redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.t.postings)
    }

    fn with_children<T>(&self, f: impl FnOnce(&redb::Table<'_, u128, ()>) -> Result<T>) -> Result<T> {
        f(&self.t.children)
    }

    fn with_uuid2id<T>(&self, f: impl FnOnce(&redb::Table<'_, u128, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.uuid2id)
    }

    fn with_entries<T>(&self, f: impl FnOnce(&redb::Table<'_, u64, &'static [u8]>) -> Result<T>) -> Result<T> {
        f(&self.t.entries)
    }

    fn with_tokens<T>(&self, f: impl FnOnce(&redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<T>) -> Result<T> {
        f(&self.t.tokens)
    }

    fn with_changelog<T>(&self, f: impl FnOnce(&redb::Table<'_, u64, &'static [u8]>) -> Result<T>) -> Result<T> {
        f(&self.t.changelog)
    }

    fn with_meta<T>(&self, f: impl FnOnce(&redb::Table<'_, &'static str, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.meta)
    }

    /// Set a value of the meta table (a note the directory keeps, such as
    /// which attributes have posting lists).
    pub fn set_meta(&mut self, name: &str, value: u64) -> Result<()> {
        self.t.meta.insert(name, value)?;
        self.log(|| Op::SetCounter(name.to_string(), value));
        Ok(())
    }

    fn entry_with<T>(&self, id: u64, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
        match self.t.entries.get(id)? {
            Some(g) => Ok(Some(f(g.value())?)),
            None => Ok(None),
        }
    }

    /// Record an operation for the redo log.
    fn log(&mut self, op: impl FnOnce() -> Op) {
        if self.logging {
            op().encode(&mut self.ops);
        }
    }

    /// Redo one logged operation.
    fn apply(&mut self, op: Op) -> Result<()> {
        match op {
            Op::PutEntry(id, rec) => {
                self.t.entries.insert(id, rec.as_slice())?;
            }
            Op::DeleteEntry(id) => self.delete_entry(id)?,
            Op::PutDn(ndn, id) => self.put_dn(&ndn, id)?,
            Op::DeleteDn(ndn) => self.delete_dn(&ndn)?,
            Op::PutUuid(uuid, id) => self.put_uuid(&uuid, id)?,
            Op::DeleteUuid(uuid) => self.delete_uuid(&uuid)?,
            Op::AddChild(p, c) => self.add_child(p, c)?,
            Op::RemoveChild(p, c) => self.remove_child(p, c)?,
            Op::Post(key, id) => self.index(&[key], id, true)?,
            Op::Unpost(key, id) => self.index(&[key], id, false)?,
            Op::PutToken(hash, rec) => {
                self.t.tokens.insert(hash.as_slice(), rec.as_slice())?;
            }
            Op::DeleteToken(hash) => self.delete_token(&hash)?,
            Op::PutChange(seq, rec) => {
                self.t.changelog.insert(seq, rec.as_slice())?;
            }
            Op::SetCounter(name, value) => {
                self.t.meta.insert(name.as_str(), value)?;
            }
            Op::PutKept(table, key, value) => self.put_kept(Kept::of_tag(table)?, &key, &value)?,
            Op::DeleteKept(table, key) => self.delete_kept(Kept::of_tag(table)?, &key)?,
            Op::DeleteChange(seq) => self.delete_change(seq)?,
        }
        Ok(())
    }

    /// Allocate the next entry id.
    pub fn next_id(&mut self) -> Result<u64> {
        self.next_counter("next_id")
    }

    fn next_counter(&mut self, name: &'static str) -> Result<u64> {
        if let Some((_, next)) = self.counters.iter_mut().find(|(n, _)| *n == name) {
            *next += 1;
            return Ok(*next - 1);
        }
        let id = self.t.meta.get(name)?.map(|g| g.value()).unwrap_or(1);
        self.counters.push((name, id + 1));
        Ok(id)
    }

    pub fn put_entry(&mut self, id: u64, rec: &Record) -> Result<()> {
        self.put_encoded_entry(id, rec.encode())
    }

    /// Store an entry's record already encoded ([`Record::encode`]).
    pub fn put_encoded_entry(&mut self, id: u64, encoded: Vec<u8>) -> Result<()> {
        self.t.entries.insert(id, encoded.as_slice())?;
        self.log(|| Op::PutEntry(id, encoded));
        Ok(())
    }

    pub fn delete_entry(&mut self, id: u64) -> Result<()> {
        self.t.entries.remove(id)?;
        self.log(|| Op::DeleteEntry(id));
        Ok(())
    }

    pub fn put_dn(&mut self, ndn: &str, id: u64) -> Result<()> {
        self.t.dn2id.insert(ndn, id)?;
        self.log(|| Op::PutDn(ndn.to_string(), id));
        Ok(())
    }

    pub fn delete_dn(&mut self, ndn: &str) -> Result<()> {
        self.t.dn2id.remove(ndn)?;
        self.log(|| Op::DeleteDn(ndn.to_string()));
        Ok(())
    }

    pub fn put_uuid(&mut self, uuid: &[u8; 16], id: u64) -> Result<()> {
        self.t.uuid2id.insert(u128::from_be_bytes(*uuid), id)?;
        self.log(|| Op::PutUuid(*uuid, id));
        Ok(())
    }

    pub fn delete_uuid(&mut self, uuid: &[u8; 16]) -> Result<()> {
        self.t.uuid2id.remove(u128::from_be_bytes(*uuid))?;
        self.log(|| Op::DeleteUuid(*uuid));
        Ok(())
    }

    pub fn add_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.t.children.insert(child_link(parent, child), ())?;
        self.log(|| Op::AddChild(parent, child));
        Ok(())
    }

    pub fn remove_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.t.children.remove(child_link(parent, child))?;
        self.log(|| Op::RemoveChild(parent, child));
        Ok(())
    }

    /// Post (or unpost) an id under each key.
    pub fn index(&mut self, keys: &[Vec<u8>], id: u64, add: bool) -> Result<()> {
        if self.logging {
            for k in keys {
                Op::encode_posting(&mut self.ops, add, k, id);
            }
        }
        if add {
            if let Some(bulk) = self.bulk.as_mut() {
                for k in keys {
                    match bulk.get_mut(k.as_slice()) {
                        Some(ids) => ids.push(id),
                        None => {
                            bulk.insert(k.clone(), vec![id]);
                        }
                    }
                }
                return Ok(());
            }
        } else {
            // A posting to remove may still be pending or deferred: write
            // those first (removals are rare in a bulk load or a push of
            // creations).
            self.flush_deferred()?;
            if self.bulk.is_some() {
                self.flush_bulk()?;
            }
        }
        for k in keys {
            if add {
                postings::add(&mut self.t.postings, k, id)?;
            } else {
                postings::remove(&mut self.t.postings, k, id)?;
            }
        }
        Ok(())
    }

    /// Enter bulk-load mode: index postings are gathered in memory and written
    /// once per chunk at commit, instead of one B-tree update per id. For
    /// imports; lookups in this transaction still see the pending postings.
    pub fn bulk(&mut self) {
        if self.bulk.is_none() {
            self.bulk = Some(FoldMap::default());
        }
    }

    fn flush_bulk(&mut self) -> Result<()> {
        let Some(pending) = self.bulk.take() else { return Ok(()) };
        // Write in key order: neighbouring B-tree pages, fewer page splits.
        let mut pending: Vec<(Vec<u8>, Vec<u64>)> = pending.into_iter().collect();
        pending.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (key, mut ids) in pending {
            ids.sort_unstable();
            ids.dedup();
            postings::add_many(&mut self.t.postings, &key, &ids)?;
        }
        self.bulk = Some(FoldMap::default());
        Ok(())
    }

    /// Pending and deferred ids of `key`, ascending.
    fn overlay(&self, key: &[u8]) -> Vec<u64> {
        let deferred = if self.wrote_deferred { Vec::new() } else { self.deferred.ids(key) };
        match self.bulk.as_ref().and_then(|b| b.get(key)) {
            Some(pending) => {
                let mut pending = pending.clone();
                pending.sort_unstable();
                pending.dedup();
                deferred::merge(&deferred, &pending)
            }
            None => deferred,
        }
    }

    fn overlay_prefix(&self, prefix: &[u8]) -> Vec<u64> {
        let mut out = if self.wrote_deferred { Vec::new() } else { self.deferred.ids_with_prefix(prefix) };
        if let Some(b) = self.bulk.as_ref() {
            out.extend(b.iter().filter(|(k, _)| k.starts_with(prefix)).flat_map(|(_, v)| v.iter().copied()));
        }
        out
    }

    /// Let this transaction's postings be deferred (see [`deferred`]) rather
    /// than written at commit; implies [`WriteTx::bulk`].
    pub fn defer_postings(&mut self) {
        if self.bulk.is_none() {
            // A group of creations posts a few hundred keys: no regrowth.
            self.bulk = Some(FoldMap::with_capacity_and_hasher(DEFERRED_GROUP_KEYS, FoldState::default()));
        }
        self.defer = true;
    }

    /// Write the postings deferred by earlier transactions to the table.
    pub fn flush_deferred(&mut self) -> Result<()> {
        if self.wrote_deferred || self.deferred.is_empty() {
            return Ok(());
        }
        for (key, ids) in self.deferred.snapshot() {
            postings::add_many(&mut self.t.postings, &key, &ids)?;
        }
        self.wrote_deferred = true;
        Ok(())
    }

    pub fn put_token(&mut self, hash: &[u8], rec: &TokenRecord) -> Result<()> {
        let encoded = rec.encode();
        self.t.tokens.insert(hash, encoded.as_slice())?;
        self.log(|| Op::PutToken(hash.to_vec(), encoded));
        Ok(())
    }

    pub fn delete_token(&mut self, hash: &[u8]) -> Result<()> {
        self.t.tokens.remove(hash)?;
        self.log(|| Op::DeleteToken(hash.to_vec()));
        Ok(())
    }

    /// Append to the changelog; returns the sequence number.
    pub fn log_change(&mut self, change: &ChangeRecord) -> Result<u64> {
        let seq = self.next_counter("next_change")?;
        let encoded = change.encode();
        self.t.changelog.insert(seq, encoded.as_slice())?;
        self.log(|| Op::PutChange(seq, encoded));
        Ok(seq)
    }

    /// Remove an audit record (its retention is over).
    pub fn delete_change(&mut self, seq: u64) -> Result<()> {
        self.t.changelog.remove(seq)?;
        self.log(|| Op::DeleteChange(seq));
        Ok(())
    }

    /// Write what is pending (bulk postings) and close the tables: the
    /// transaction can then be committed ([`Txn::commit`]).
    pub fn finish(mut self) -> Result<Staged> {
        for (name, next) in std::mem::take(&mut self.counters) {
            self.t.meta.insert(name, next)?;
            self.log(|| Op::SetCounter(name.to_string(), next));
        }
        let started = std::time::Instant::now();
        let pending = self.bulk.as_ref().map_or(0, |b| b.values().map(Vec::len).sum::<usize>());
        let checkpoint_due = !self.logging || lock(self.redo)?.len() + self.ops.len() as u64 > self.checkpoint_bytes;
        let deferring =
            self.defer && !self.wrote_deferred && !checkpoint_due && self.deferred.len() + pending < MAX_DEFERRED;
        let deferred = if deferring {
            self.bulk.take().map(|mut b| {
                for ids in b.values_mut() {
                    ids.sort_unstable();
                    ids.dedup();
                }
                b
            })
        } else {
            self.flush_deferred()?;
            self.flush_bulk()?;
            None
        };
        tracing::trace!(postings_us = started.elapsed().as_micros() as u64, deferred = deferring, "postings written");
        Ok(Staged { ops: self.ops, deferred, wrote_deferred: self.wrote_deferred })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use redb::ReadableDatabase;

    use super::*;

    fn link(store: &Store, parent: u64, child: u64) {
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.add_child(parent, child).unwrap();
        let staged = w.finish().unwrap();
        txn.commit(staged).unwrap();
    }

    #[test]
    fn a_store_of_format_4_has_its_tree_links_moved_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.redb");
        {
            let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
            link(&store, 1, 2);
            store.checkpoint().unwrap();
            // Rewrite it as format 4 kept it: a multimap, no links table.
            let txn = store.db.begin_write().unwrap();
            {
                let mut old = txn.open_multimap_table(CHILDREN).unwrap();
                for (p, c) in [(1, 2), (1, 3), (1, 9), (3, 4)] {
                    old.insert(p, c).unwrap();
                }
                txn.open_table(META).unwrap().insert("format", 4).unwrap();
            }
            txn.delete_table(CHILD_LINKS).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
        let r = store.read().unwrap();
        assert_eq!(r.children(1).unwrap(), [2, 3, 9]);
        assert_eq!(r.children_at_most(1, 2).unwrap(), None);
        assert_eq!(r.children_at_most(1, 3).unwrap().unwrap(), [2, 3, 9]);
        assert_eq!(r.child_count(1).unwrap(), 3);
        assert!(r.has_children(3).unwrap());
        assert!(!r.has_children(2).unwrap());
        let txn = store.db.begin_read().unwrap();
        assert!(txn.list_multimap_tables().unwrap().next().is_none());
        assert_eq!(txn.open_table(META).unwrap().get("format").unwrap().unwrap().value(), FORMAT_VERSION);
    }
}
