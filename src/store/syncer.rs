//! Syncing the redo log off the writer's path.
//!
//! A commit's `fdatasync` is most of its time, and the writer would wait for
//! it doing nothing. With a syncer ([`super::Store::start_syncer`]), a
//! commit appends its record without syncing, commits in redb, and hands
//! the syncer what to do once the record is durable: the writer goes on to
//! the next transaction meanwhile, and one sync covers every record written
//! before it.
//!
//! Nothing is seen before it is durable: readers keep the snapshot taken
//! before the first unsynced commit, and the syncer publishes a commit's
//! snapshot (taken just after it, before any later commit) only once its
//! record is synced, then tells its callers. After a failed sync no later
//! commit is acknowledged: Linux may not report the lost pages again.

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::{ReadTx, Result, SharedSnapshot, StoreError};
use crate::store::redo::RedoLog;

impl State {
    #[cfg(test)]
    fn held(&self) -> bool {
        self.paused
    }

    #[cfg(not(test))]
    fn held(&self) -> bool {
        false
    }
}

/// What to do once a commit's record is durable (or cannot be).
pub type Then = Box<dyn FnOnce(Result<()>) + Send>;

/// A commit in redb whose redo record is not synced yet.
struct Unsynced {
    /// The store as of this commit, published once it is durable.
    snapshot: ReadTx,
    then: Then,
}

#[derive(Default)]
struct State {
    pending: Vec<Unsynced>,
    /// The syncer is syncing a batch taken from `pending`.
    busy: bool,
    stop: bool,
    /// Why syncing failed, once it has.
    failed: Option<String>,
    /// Tests hold the syncer to look at what readers see meanwhile.
    #[cfg(test)]
    paused: bool,
}

pub struct Syncer {
    state: Mutex<State>,
    /// Wakes the syncer thread.
    work: Condvar,
    /// Wakes whoever waits for every pending commit to be synced.
    drained: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Syncer {
    /// Start the thread syncing `file` for the commits handed to it.
    pub fn start(file: Arc<File>, redo: Arc<Mutex<RedoLog>>, shared: Arc<SharedSnapshot>) -> Result<Arc<Syncer>> {
        let syncer = Arc::new(Syncer {
            state: Mutex::default(),
            work: Condvar::new(),
            drained: Condvar::new(),
            thread: Mutex::new(None),
        });
        let s = Arc::clone(&syncer);
        let handle = std::thread::Builder::new()
            .name("redo-sync".into())
            .spawn(move || s.run(&file, &redo, &shared))
            .map_err(|e| StoreError::Redb(redb::Error::Io(e)))?;
        *syncer.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(handle);
        Ok(syncer)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in `then` is the caller's; the state is whole between steps.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Run `then` once the record just appended is durable, and publish
    /// `snapshot` to readers then.
    pub fn after_sync(&self, snapshot: ReadTx, then: Then) {
        let mut st = self.lock();
        if let Some(why) = st.failed.clone() {
            drop(st);
            then(Err(unsynced(&why)));
            return;
        }
        st.pending.push(Unsynced { snapshot, then });
        drop(st);
        self.work.notify_one();
    }

    /// Wait until every commit handed over is synced and its callers told.
    pub fn drain(&self) {
        let mut st = self.lock();
        while !st.pending.is_empty() || st.busy {
            st = self.drained.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Sync what is pending, then stop the thread.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.work.notify_one();
        let handle = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    fn run(&self, file: &File, redo: &Mutex<RedoLog>, shared: &SharedSnapshot) {
        loop {
            let batch = {
                let mut st = self.lock();
                while (st.pending.is_empty() || st.held()) && !st.stop {
                    st = self.work.wait(st).unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                if st.pending.is_empty() {
                    return;
                }
                st.busy = true;
                std::mem::take(&mut st.pending)
            };
            let failed = self.lock().failed.clone();
            let outcome = match failed {
                Some(why) => Err(why),
                None => file.sync_data().map_err(|e| {
                    let why = format!("fdatasync: {e}");
                    if let Ok(mut log) = redo.lock() {
                        log.fail(why.clone());
                    }
                    self.lock().failed = Some(why.clone());
                    why
                }),
            };
            let count = batch.len() as u64;
            let mut latest = None;
            let mut thens = Vec::with_capacity(batch.len());
            for u in batch {
                latest = Some(u.snapshot);
                thens.push(u.then);
            }
            match (&outcome, latest) {
                (Ok(()), Some(snapshot)) => shared.publish(snapshot, count),
                _ => shared.forget_unsynced(count),
            }
            for then in thens {
                then(outcome.clone().map_err(|why| unsynced(&why)));
            }
            let mut st = self.lock();
            st.busy = false;
            if st.pending.is_empty() {
                self.drained.notify_all();
            }
        }
    }
}

fn unsynced(why: &str) -> StoreError {
    StoreError::Corrupt(format!("the redo log could not be synced ({why}); restart the server"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::mpsc;

    use crate::store::{Reader, Store};

    const KEY: &[u8] = b"pobjectclass\0";

    fn hold(store: &Store, paused: bool) {
        let syncer = store.syncer.get().unwrap();
        syncer.lock().paused = paused;
        syncer.work.notify_one();
    }

    /// Post `id` under KEY in a transaction that does not wait for its sync;
    /// `told` hears when its caller would be told.
    fn post(store: &Store, id: u64, told: &mpsc::Sender<u64>) {
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.index(&[KEY.to_vec()], id, true).unwrap();
        let staged = w.finish().unwrap();
        let told = told.clone();
        txn.commit_then(
            staged,
            Box::new(move |r| {
                r.unwrap();
                told.send(id).unwrap();
            }),
        );
    }

    #[test]
    fn a_commit_is_seen_only_once_synced_and_the_next_builds_on_it_meanwhile() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("t.redb");
        let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
        store.start_syncer().unwrap();
        let (told, heard) = mpsc::channel();
        post(&store, 1, &told);
        assert_eq!(heard.recv().unwrap(), 1);
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1]);

        hold(&store, true);
        post(&store, 2, &told);
        // The writer is free before the sync: the next transaction sees 2.
        let txn = store.write().unwrap();
        assert_eq!(txn.tables().unwrap().postings(KEY).unwrap(), [1, 2]);
        drop(txn);
        post(&store, 3, &told);
        assert!(heard.try_recv().is_err(), "told before the sync");
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1], "seen before the sync");

        hold(&store, false);
        assert_eq!([heard.recv().unwrap(), heard.recv().unwrap()], [2, 3]);
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1, 2, 3]);
        drop(store);
        let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1, 2, 3]);
    }

    #[test]
    fn a_checkpoint_waits_for_the_commits_before_it_to_be_synced() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("t.redb"), 1 << 20, 1 << 20).unwrap();
        store.start_syncer().unwrap();
        let (told, heard) = mpsc::channel();
        hold(&store, true);
        post(&store, 1, &told);
        let checkpoint = std::thread::scope(|s| {
            let running = s.spawn(|| store.checkpoint());
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!running.is_finished(), "checkpointed over an unsynced commit");
            hold(&store, false);
            running.join().unwrap()
        });
        checkpoint.unwrap();
        assert_eq!(heard.recv().unwrap(), 1);
        assert_eq!(store.read().unwrap().postings(KEY).unwrap(), [1]);
    }
}
