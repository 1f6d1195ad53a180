//! Persistence on redb. No schema checks, no access control, no protocol
//! types: the store keeps records, the DN and children maps, index postings
//! and the changelog, and answers primitive lookups. Which keys an entry has in
//! which index is decided by the directory core; the store only writes them, in
//! the same transaction as the entry, so they can never disagree.

mod backup;
mod codec;
mod csn;
mod deferred;
mod error;
mod format;
pub mod kept;
mod keys;
mod postings;
mod read;
mod redo;
mod sequence;
mod tables;
mod warm;
mod write;

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use redb::{ReadableDatabase, ReadableTable};

pub use codec::{ChangeRecord, Record, RecordView, TokenRecord};
pub use csn::{Csn, MAX_SERVER_ID, now_micros};
use deferred::Deferred;
pub use error::{Result, StoreError};
pub use kept::{DeletedRecord, Kept};
pub use keys::{IndexKind, index_key};
pub use read::{ReadInner, ReadTx, Reader};
use redo::{Op, RedoLog};
use tables::*;
pub use warm::{Prefetched, Warmed};
pub use write::{Staged, Txn, WriteTx};

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
    /// The server id of the CSNs this store issues (`replication.server_id`).
    server_id: std::sync::atomic::AtomicU16,
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
            server_id: Default::default(),
        };
        let txn = store.write_unlogged()?;
        let mut w = txn.tables()?;
        format::settle(&txn.txn, &mut w.t.meta, &mut w.t.children)?;
        let checkpoint = w.t.meta.get("redo_checkpoint")?.map(|g| g.value()).unwrap_or(0);
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
            server_id: self.server_id.load(std::sync::atomic::Ordering::Relaxed),
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

    /// The server id the CSNs of later changes carry (at most [`MAX_SERVER_ID`]).
    pub fn set_server_id(&self, sid: u16) {
        self.server_id.store(sid.min(MAX_SERVER_ID), std::sync::atomic::Ordering::Relaxed);
    }

    /// Hears of every commit, once it is visible to reads.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.snapshot.commits.subscribe()
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
struct SharedSnapshot {
    shared: Mutex<Shared>,
    /// Commits so far, for whoever follows them as they land (a replica's
    /// persist stage): a watch, so that a follower busy when one lands
    /// still sees it.
    commits: tokio::sync::watch::Sender<u64>,
}

impl Default for SharedSnapshot {
    fn default() -> Self {
        SharedSnapshot { shared: Mutex::default(), commits: tokio::sync::watch::channel(0).0 }
    }
}

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
        self.shared.lock().map_err(|_| StoreError::Corrupt("the snapshot lock is poisoned".into()))
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
        let old = match self.shared.lock() {
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
        self.commits.send_modify(|n| *n += 1);
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
