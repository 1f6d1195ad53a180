//! Many changes in one transaction, all or nothing: an LDIF import, or a
//! client's batch. An import is loaded on two threads: one reads the changes
//! and does what needs no store (`prepare_add`: schema checks, normalisation,
//! operational attributes, index keys, the record's encoding), the other
//! stores them in order, a bounded queue between them. Ids, order and
//! outcome are those of a load on one thread.

use std::sync::mpsc;

use super::write::{AddMode, PreparedAdd, describe};
use super::*;

/// Changes prepared ahead of the one being stored, at most.
const IMPORT_QUEUE: usize = 512;

/// A change as the storing thread receives it.
enum Staged {
    Add(PreparedAdd),
    Other(Change),
}

/// A change's position, what the audit trail records of it if it is
/// refused, and the change prepared (or why it could not be).
type Prepared = (usize, Option<(&'static str, Dn, Vec<String>)>, Result<Staged>);

impl Directory {
    /// Apply many changes in one transaction: all of them, or none when one
    /// fails (its index and the error are returned). `progress` is called after
    /// each change. Used by LDIF import.
    pub fn apply_batch<I>(
        &self,
        actor: &Actor,
        changes: I,
        mode: AddMode,
        mut progress: impl FnMut(usize),
    ) -> std::result::Result<usize, (usize, DirectoryError)>
    where
        I: IntoIterator<Item = std::result::Result<Change, (usize, DirectoryError)>>,
        I::IntoIter: Send,
    {
        if mode == AddMode::Client {
            // A client's batch (a SCIM request) is committed with concurrent ones.
            let changes = changes.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
            let n = changes.len();
            self.write(actor, super::request::Write::new(changes))?;
            progress(n);
            return Ok(n);
        }
        let txn = self.store.write_unlogged().map_err(|e| (0, e.into()))?;
        let mut w = txn.tables().map_err(|e| (0, e.into()))?;
        w.bulk();
        let changes = changes.into_iter();
        let stored = std::thread::scope(|scope| {
            let (queue, prepared) = mpsc::sync_channel::<Prepared>(IMPORT_QUEUE);
            let preparer = scope.spawn(move || self.prepare_all(actor, changes, mode, queue));
            let mut n = 0;
            for (i, described, staged) in prepared {
                let r = staged.and_then(|staged| match staged {
                    Staged::Add(p) => self.store_add(&mut w, actor, &p, mode),
                    Staged::Other(change) => self.apply_in(&mut w, actor, change, mode),
                });
                if let Err(e) = r {
                    // Dropping the queue's end stops the preparing thread.
                    return Err(Box::new((i, described, e)));
                }
                n += 1;
                progress(n);
            }
            // The queue ended: every change was read, unless the preparing
            // thread failed, which must not pass for the end of the file.
            if preparer.join().is_err() {
                let e = DirectoryError::Internal("the import stopped while preparing an entry".into());
                return Err(Box::new((n, None, e)));
            }
            Ok(n)
        });
        let n = match stored {
            Ok(n) => n,
            Err(refused) => {
                let (i, described, e) = *refused;
                // Released first: the refusal is recorded in a transaction of its own.
                drop(w);
                drop(txn);
                if let Some((op, target, attrs)) = described {
                    self.audit_refusal(actor, op, &target, attrs, &e);
                }
                return Err((i, e));
            }
        };
        // Replicas with cookies from before the import (from the slapd it
        // came from) get the present phase: its deletions are not in the log.
        w.deletions_known_from_now().map_err(|e| (n, e.into()))?;
        // An import is one large transaction: written to redb durably, not logged.
        let staged = w.finish().map_err(|e| (n, e.into()))?;
        txn.commit_durable(staged).map_err(|e| (n, e.into()))?;
        self.committed(true);
        Ok(n)
    }

    /// The preparing thread: each change read and prepared, in order, until
    /// the first that fails (sent, then nothing more) or the storing thread
    /// stops listening.
    fn prepare_all(
        &self,
        actor: &Actor,
        changes: impl Iterator<Item = std::result::Result<Change, (usize, DirectoryError)>>,
        mode: AddMode,
        queue: mpsc::SyncSender<Prepared>,
    ) {
        for (i, change) in changes.enumerate() {
            let item: Prepared = match change {
                // A reading error carries its own position.
                Err((at, e)) => (at, None, Err(e)),
                Ok(change) => {
                    let described = describe(&change);
                    let staged = match change {
                        Change::Add(entry) => self.prepare_add(actor, entry, mode).map(Staged::Add),
                        other => Ok(Staged::Other(other)),
                    };
                    (i, Some(described), staged)
                }
            };
            let failed = item.2.is_err();
            if queue.send(item).is_err() || failed {
                return;
            }
        }
    }
}
