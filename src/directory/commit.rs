//! Group commit: concurrent client writes share one redb transaction and one
//! fsync, without weakening durability (every write is on disk before its
//! caller hears back). The disk does a few thousand fsyncs a second; SCIM
//! clients pushing a whole staff need more creations than that.
//!
//! A server runs one writer thread ([`Directory::start_writer`]): callers
//! queue their changes and wait; the writer takes everything queued, applies
//! it in one transaction, commits, hands every caller its own result, and
//! takes what was queued meanwhile. Under load the writer never sleeps, and
//! no caller's thread has to be woken to carry on committing (handing the
//! work from one caller's thread to the next cost a fifth of each group's
//! time on a busy machine). Without a writer (command-line tools, tests),
//! the first caller to find no one committing becomes the leader, commits
//! the group, and passes the lead to the first caller queued meanwhile (or
//! steps down). Each caller waits on its own channel: a finished group wakes
//! its callers, not every waiting thread.
//! Each caller checks and prepares its own adds (schema, normalisation,
//! index keys) before it queues: only what needs the store is serial.
//! Each caller's changes stay all-or-nothing: when one caller's changes
//! fail, the transaction is thrown away and replayed without them, so a
//! refusal never touches the others.

use std::collections::HashMap;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, Weak};

use super::request::Guard;
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
    /// Checked in the transaction before any of `changes` is applied.
    guard: Option<Guard>,
    /// Where this caller hears back; each caller waits on its own, so that
    /// a finished group wakes its callers and no one else. (Taken by the
    /// committer before the group runs.)
    reply: Option<Reply>,
}

/// How a caller waits for its group.
enum Reply {
    /// On its thread, which may be asked to lead.
    Thread(SyncSender<Word>),
    /// As an async task (with a writer thread only): no thread is held while
    /// the group commits, and a task never leads.
    Task(tokio::sync::oneshot::Sender<Outcome>),
}

impl Reply {
    fn answer(self, outcome: Outcome) {
        // A caller gone (its thread ended, its request dropped) has nobody to tell.
        match self {
            Reply::Thread(s) => {
                let _ = s.send(Word::Done(outcome));
            }
            Reply::Task(s) => {
                let _ = s.send(outcome);
            }
        }
    }
}

/// A change waiting for the leader: an add is checked and prepared by its
/// own caller first, so the leader only does what needs the store.
pub(super) enum Queued {
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
    /// A writer thread commits what is queued (no caller leads).
    writer: bool,
    /// The writer is asleep, waiting for work.
    writer_idle: bool,
    /// The directory is gone: the writer stops.
    stopped: bool,
}

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    /// Wakes the idle writer.
    work: Condvar,
}

impl State {
    /// The next group: the oldest queued callers, at most [`MAX_GROUP`].
    fn take_group(&mut self) -> Vec<Pending> {
        let take = self.queue.len().min(MAX_GROUP);
        self.queue.drain(..take).collect()
    }
}

impl GroupCommit {
    /// Stop the writer thread, if any (the directory is being dropped).
    pub(crate) fn stop(&self) {
        if let Ok(mut st) = self.state.lock() {
            st.stopped = true;
        }
        self.work.notify_all();
    }
}

fn poisoned() -> (usize, DirectoryError) {
    (0, DirectoryError::Internal("the commit queue is unusable".into()))
}

impl Directory {
    /// Queue prepared changes for an async caller and wait for the writer
    /// thread without holding a thread; without a writer thread, the commit
    /// runs on the blocking pool.
    pub(super) async fn commit_queued_async(
        self: &Arc<Self>,
        actor: &Actor,
        queued: Vec<Queued>,
        guard: Option<Guard>,
    ) -> Outcome {
        let has_writer = self.group_commit.state.lock().map_err(|_| poisoned())?.writer;
        if has_writer {
            // A writer, once started, runs until the directory is dropped:
            // this task is never asked to lead.
            let (reply, outcome) = tokio::sync::oneshot::channel();
            self.enqueue(actor, queued, guard, Reply::Task(reply))?;
            outcome.await.map_err(|_| poisoned())?
        } else {
            let (directory, actor) = (Arc::clone(self), actor.clone());
            tokio::task::spawn_blocking(move || directory.commit_queued(&actor, queued, guard))
                .await
                .map_err(|_| poisoned())?
        }
    }

    /// Queue a caller's changes and wake the writer if it sleeps; returns
    /// whether the caller must lead (there is no writer and no leader).
    fn enqueue(
        &self,
        actor: &Actor,
        changes: Vec<Queued>,
        guard: Option<Guard>,
        reply: Reply,
    ) -> std::result::Result<bool, (usize, DirectoryError)> {
        let (lead, wake) = {
            let mut st = self.group_commit.state.lock().map_err(|_| poisoned())?;
            let ticket = st.next_ticket;
            st.next_ticket += 1;
            st.queue.push(Pending { ticket, actor: actor.clone(), changes, guard, reply: Some(reply) });
            if st.writer {
                (false, std::mem::take(&mut st.writer_idle))
            } else {
                (!std::mem::replace(&mut st.leading, true), false)
            }
        };
        if wake {
            self.group_commit.work.notify_one();
        }
        Ok(lead)
    }

    /// Queue prepared changes and wait for their group to commit (leading
    /// it when there is no writer thread and no leader).
    pub(super) fn commit_queued(&self, actor: &Actor, queued: Vec<Queued>, guard: Option<Guard>) -> Outcome {
        let (reply, words) = sync_channel(1);
        if self.enqueue(actor, queued, guard, Reply::Thread(reply))? {
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

    /// Start the writer thread that commits every queued change from now on.
    /// Call it before the directory takes writes. The thread holds no
    /// strong reference: it stops when the directory is dropped.
    pub fn start_writer(self: &Arc<Self>) -> std::io::Result<()> {
        let gc = Arc::clone(&self.group_commit);
        let directory = Arc::downgrade(self);
        if let Ok(mut st) = gc.state.lock() {
            st.writer = true;
        }
        std::thread::Builder::new().name("group-commit".into()).spawn(move || write_loop(&gc, &directory))?;
        Ok(())
    }

    /// Commit the queued changes as one group, answer its callers, then hand
    /// the lead to the first caller still queued (or step down).
    fn lead(&self) -> std::result::Result<(), (usize, DirectoryError)> {
        let gc = &self.group_commit;
        loop {
            let group = gc.state.lock().map_err(|_| poisoned())?.take_group();
            self.commit_group(group);
            let mut st = gc.state.lock().map_err(|_| poisoned())?;
            match st.queue.first() {
                Some(Pending { reply: Some(Reply::Thread(next)), .. }) => {
                    let _ = next.send(Word::Lead);
                    return Ok(());
                }
                // A task cannot lead (it queues only when a writer thread
                // runs, which is being started): commit its group from here.
                Some(_) => {}
                None => {
                    st.leading = false;
                    return Ok(());
                }
            }
        }
    }

    /// Commit one group and tell each of its callers how its changes went.
    fn commit_group(&self, group: Vec<Pending>) {
        answer(self.run_group_answers(group));
    }

    /// Commit one group; returns what to tell each of its callers.
    fn run_group_answers(&self, mut group: Vec<Pending>) -> Vec<(Reply, Outcome)> {
        let mut replies: HashMap<u64, Reply> =
            group.iter_mut().filter_map(|p| Some((p.ticket, p.reply.take()?))).collect();
        let outcomes = self.run_group(group);
        outcomes.into_iter().filter_map(|(ticket, outcome)| Some((replies.remove(&ticket)?, outcome))).collect()
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
            // gathered once per group, and written to the table once per many
            // groups (see store::deferred).
            w.defer_postings();
            let mut failed = None;
            // Callers whose precondition does not hold: nothing of theirs is
            // applied, so the others' transaction goes on without a replay.
            let mut unmet: Vec<(usize, DirectoryError)> = Vec::new();
            'callers: for (k, p) in group.iter().enumerate() {
                if let Some(guard) = &p.guard
                    && let Err(e) = self.check_guard(&w, &p.actor, guard, &p.changes)
                {
                    unmet.push((k, e));
                    continue;
                }
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
                    for (k, e) in unmet.into_iter().rev() {
                        let p = group.remove(k);
                        if let Some(first) = p.changes.first()
                            && !matches!(p.actor.principal, Principal::Server)
                        {
                            let (op, target, attrs) = first.describe();
                            refusals.push((p.actor.clone(), op, target, attrs, super::error::result_name(&e)));
                        }
                        outcomes.push((p.ticket, Err((0, e))));
                    }
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
                            let touched = group.iter().flat_map(|p| &p.changes).any(|c| match c {
                                Queued::Add(add) => add.is_agents_container(),
                                Queued::Other(_) => true,
                            });
                            self.committed(touched);
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

/// The writer thread: commit whatever is queued, group after group; sleep
/// when nothing is.
fn write_loop(gc: &GroupCommit, directory: &Weak<Directory>) {
    loop {
        let group: Vec<Pending> = {
            let Ok(mut st) = gc.state.lock() else { return };
            while st.queue.is_empty() && !st.stopped {
                st.writer_idle = true;
                st = match gc.work.wait(st) {
                    Ok(st) => st,
                    Err(_) => return,
                };
            }
            st.writer_idle = false;
            if st.stopped {
                // Callers still queued cannot be: they hold the directory.
                return;
            }
            st.take_group()
        };
        let Some(answers) = directory.upgrade().map(|directory| directory.run_group_answers(group)) else {
            return;
        };
        // The directory is let go before its callers hear back: once the last
        // caller drops it, it is closed, not kept open by this thread.
        answer(answers);
    }
}

fn answer(answers: Vec<(Reply, Outcome)>) {
    for (reply, outcome) in answers {
        reply.answer(outcome);
    }
}

/// The same internal error for every caller of a group the store failed.
fn fail_all(group: Vec<Pending>, why: &str) -> impl Iterator<Item = (u64, Outcome)> + '_ {
    group.into_iter().map(move |p| (p.ticket, Err((0, DirectoryError::Internal(why.to_string())))))
}
