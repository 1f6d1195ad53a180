//! Group commit: concurrent client writes share one redb transaction and one
//! fsync, without weakening durability (every write is on disk before its
//! caller hears back). The disk does a few thousand fsyncs a second; SCIM
//! clients pushing a whole staff need more creations than that.
//!
//! There is no writer thread: a caller queues its changes; the first caller
//! to find no one committing becomes the leader, applies everything queued
//! (its own and what others queued meanwhile) in one transaction, commits,
//! hands every caller its own result, and passes the lead to the first
//! caller queued meanwhile (or steps down). Each caller waits on its own
//! channel: a finished group wakes its callers, not every waiting thread.
//! Each caller checks and prepares its own adds (schema, normalisation,
//! index keys) before it queues: only what needs the store is serial.
//! Each caller's changes stay all-or-nothing: when one caller's changes
//! fail, the transaction is thrown away and replayed without them, so a
//! refusal never touches the others.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc::{SyncSender, sync_channel};

use super::write::PreparedAdd;
use super::*;

/// Most callers' changes applied in one transaction.
const MAX_GROUP: usize = 256;

/// What one caller gets back: the number of changes applied, or the index
/// of the change that failed and why.
pub type Outcome = std::result::Result<usize, (usize, DirectoryError)>;

struct Pending {
    ticket: u64,
    actor: Actor,
    changes: Vec<Queued>,
    /// Where this caller hears back; each caller waits on its own, so that
    /// a finished group wakes its callers and no one else.
    reply: SyncSender<Word>,
}

/// A change waiting for the leader: an add is checked and prepared by its
/// own caller first, so the leader only does what needs the store.
enum Queued {
    Add(Box<PreparedAdd>),
    Other(Change),
}

impl Queued {
    /// What the audit trail says of it when it is refused.
    fn describe(&self) -> (&'static str, Dn, Vec<String>) {
        match self {
            Queued::Add(p) => ("add", p.dn().clone(), p.attr_names()),
            Queued::Other(c) => super::write::describe(c),
        }
    }
}

/// What a waiting caller is told.
enum Word {
    Done(Outcome),
    /// Lead the next group (which holds this caller's changes).
    Lead,
}

#[derive(Default)]
struct State {
    queue: Vec<Pending>,
    leading: bool,
    next_ticket: u64,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
}

fn poisoned() -> (usize, DirectoryError) {
    (0, DirectoryError::Internal("the commit queue is unusable".into()))
}

impl Directory {
    /// Apply one caller's changes, all or none, durably, sharing the
    /// transaction with concurrent callers.
    pub(crate) fn commit_with_others(&self, actor: &Actor, changes: Vec<Change>) -> Outcome {
        let queued = self.prepare_queued(actor, changes)?;
        self.commit_queued(actor, queued)
    }

    /// Like [`Directory::commit_with_others`] for changes that begin with an
    /// add: returns the entry as stored, operational attributes included, so
    /// that the caller need not search for what it has just written.
    pub fn add_with_others(&self, actor: &Actor, changes: Vec<Change>) -> Result<Entry, (usize, DirectoryError)> {
        let queued = self.prepare_queued(actor, changes)?;
        let Some(Queued::Add(first)) = queued.first() else {
            return Err((0, DirectoryError::Internal("add_with_others without an add first".into())));
        };
        let stored = first.stored().clone();
        self.commit_queued(actor, queued)?;
        Ok(stored)
    }

    /// Each add is checked and prepared by its own caller, before it queues.
    fn prepare_queued(
        &self,
        actor: &Actor,
        changes: Vec<Change>,
    ) -> std::result::Result<Vec<Queued>, (usize, DirectoryError)> {
        let mut queued = Vec::with_capacity(changes.len());
        for (i, change) in changes.into_iter().enumerate() {
            queued.push(match change {
                Change::Add(entry) => {
                    let (dn, attrs) = (entry.dn.clone(), entry.attrs.iter().map(|a| a.name.clone()).collect());
                    match self.prepare_add(actor, entry, AddMode::Client) {
                        Ok(p) => Queued::Add(Box::new(p)),
                        Err(e) => {
                            self.audit_refusal(actor, "add", &dn, attrs, &e);
                            return Err((i, e));
                        }
                    }
                }
                other => Queued::Other(other),
            });
        }
        Ok(queued)
    }

    fn commit_queued(&self, actor: &Actor, queued: Vec<Queued>) -> Outcome {
        let (reply, words) = sync_channel(1);
        let lead = {
            let mut st = self.group_commit.state.lock().map_err(|_| poisoned())?;
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            st.queue.push(Pending { ticket, actor: actor.clone(), changes: queued, reply });
            !std::mem::replace(&mut st.leading, true)
        };
        if lead {
            self.lead()?;
        }
        loop {
            match words.recv() {
                Ok(Word::Done(outcome)) => return outcome,
                Ok(Word::Lead) => self.lead()?,
                Err(_) => return Err(poisoned()),
            }
        }
    }

    /// Commit the queued changes as one group, answer its callers, then hand
    /// the lead to the first caller still queued (or step down).
    fn lead(&self) -> std::result::Result<(), (usize, DirectoryError)> {
        let gc = &self.group_commit;
        let group: Vec<Pending> = {
            let mut st = gc.state.lock().map_err(|_| poisoned())?;
            let take = st.queue.len().min(MAX_GROUP);
            st.queue.drain(..take).collect()
        };
        let replies: HashMap<u64, SyncSender<Word>> = group.iter().map(|p| (p.ticket, p.reply.clone())).collect();
        for (ticket, outcome) in self.run_group(group) {
            if let Some(reply) = replies.get(&ticket) {
                // A caller gone (its thread ended) has nobody to tell.
                let _ = reply.send(Word::Done(outcome));
            }
        }
        let mut st = gc.state.lock().map_err(|_| poisoned())?;
        match st.queue.first() {
            Some(next) => {
                let _ = next.reply.send(Word::Lead);
            }
            None => st.leading = false,
        }
        Ok(())
    }

    /// One transaction for the group; replayed without a caller whose changes fail.
    fn run_group(&self, mut group: Vec<Pending>) -> Vec<(u64, Outcome)> {
        let started = std::time::Instant::now();
        let mut outcomes = Vec::with_capacity(group.len());
        let mut refusals: Vec<(Actor, &'static str, Dn, Vec<String>, String)> = Vec::new();
        loop {
            let txn = match self.store.write() {
                Ok(txn) => txn,
                Err(e) => {
                    outcomes.extend(fail_all(group, &format!("store: {e}")));
                    return outcomes;
                }
            };
            let mut w = match txn.tables() {
                Ok(w) => w,
                Err(e) => {
                    outcomes.extend(fail_all(group, &format!("store: {e}")));
                    return outcomes;
                }
            };
            // Postings touched by every creation (objectClass, presence keys) are
            // gathered and written once per group, not once per caller.
            w.bulk();
            let mut failed = None;
            'callers: for (k, p) in group.iter().enumerate() {
                for (i, change) in p.changes.iter().enumerate() {
                    let applied = match change {
                        Queued::Add(add) => self.store_add(&mut w, &p.actor, add, AddMode::Client),
                        Queued::Other(c) => self.apply_in(&mut w, &p.actor, c.clone(), AddMode::Client),
                    };
                    if let Err(e) = applied {
                        failed = Some((k, i, e));
                        break 'callers;
                    }
                }
            }
            match failed {
                Some((k, i, e)) => {
                    drop(w);
                    drop(txn);
                    let p = group.remove(k);
                    let (op, target, attrs) = p.changes[i].describe();
                    if !matches!(p.actor.principal, Principal::Server) {
                        refusals.push((p.actor.clone(), op, target, attrs, super::error::result_name(&e)));
                    }
                    outcomes.push((p.ticket, Err((i, e))));
                    if group.is_empty() && refusals.is_empty() {
                        return outcomes;
                    }
                }
                None => {
                    // The refusals go in the same transaction as what succeeded.
                    for (actor, op, target, attrs, result) in refusals.drain(..) {
                        if let Err(e) = self.log_audit(&mut w, &actor, op, &target.to_string(), attrs, &result) {
                            tracing::warn!(%target, "could not record a refused {op} in the audit trail: {e}");
                        }
                    }
                    let applied = started.elapsed();
                    let committed = w.finish().and_then(|staged| txn.commit(staged));
                    tracing::trace!(
                        callers = group.len(),
                        apply_us = applied.as_micros() as u64,
                        commit_us = (started.elapsed() - applied).as_micros() as u64,
                        "group commit"
                    );
                    match committed {
                        Ok(()) => {
                            self.committed(true);
                            outcomes.extend(group.into_iter().map(|p| (p.ticket, Ok(p.changes.len()))));
                        }
                        Err(e) => outcomes.extend(fail_all(group, &format!("commit: {e}"))),
                    }
                    return outcomes;
                }
            }
        }
    }
}

/// The same internal error for every caller of a group the store failed.
fn fail_all(group: Vec<Pending>, why: &str) -> impl Iterator<Item = (u64, Outcome)> + '_ {
    group.into_iter().map(move |p| (p.ticket, Err((0, DirectoryError::Internal(why.to_string())))))
}
