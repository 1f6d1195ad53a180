//! Write transactions: the changes of one commit, through its open tables, and the commit itself.

use std::sync::{Arc, Mutex};

use redb::{Durability, ReadableTable};

use super::deferred::{self, Deferred, MAX_DEFERRED};
use super::redo::{Op, RedoLog};
use super::sequence::{CSN_HIGH, CSN_LOW};
use super::tables::*;
use super::{
    ChangeRecord, Csn, GateGuard, Kept, Record, RecordView, Result, SharedSnapshot, StoreError, TokenRecord, lock,
    postings,
};
use crate::fasthash::{FoldMap, FoldState};

/// Room for the keys a group commit posts, reserved up front.
const DEFERRED_GROUP_KEYS: usize = 512;

/// A write transaction. Its changes go through the [`WriteTx`] of
/// [`Txn::tables`], then [`WriteTx::finish`] and [`Txn::commit`] make them
/// durable and visible; dropped uncommitted, it is thrown away.
pub struct Txn {
    pub(super) txn: redb::WriteTransaction,
    /// Whether operations are recorded for the redo log (not while replaying
    /// it, nor in a transaction that will commit durably in redb anyway).
    pub(super) logging: bool,
    pub(super) redo: Arc<Mutex<RedoLog>>,
    pub(super) snapshot: Arc<SharedSnapshot>,
    pub(super) checkpoint_bytes: u64,
    /// The deferred postings, which only this transaction may change.
    pub(super) deferred: Arc<Deferred>,
    /// The server id this transaction's CSNs carry.
    pub(super) server_id: u16,
    /// Held until the transaction ends (`None`: its caller holds the gate).
    pub(super) _gate: Option<GateGuard>,
}

/// Every table of a write transaction, opened once: opening a table in
/// redb looks its root up and closing it stages the new root, which cost as
/// much as a lookup; a group commit of creations would otherwise open a
/// dozen tables per entry.
pub(super) struct Tables<'t> {
    pub(super) entries: redb::Table<'t, u64, &'static [u8]>,
    dn2id: redb::Table<'t, &'static str, u64>,
    uuid2id: redb::Table<'t, u128, u64>,
    pub(super) children: redb::Table<'t, u128, ()>,
    pub(super) postings: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) changelog: redb::Table<'t, u64, &'static [u8]>,
    pub(super) meta: redb::Table<'t, &'static str, u64>,
    pub(super) tokens: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) bin: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) last_bind: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) history: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) csns: redb::Table<'t, u128, u64>,
    pub(super) deletions: redb::Table<'t, &'static [u8], &'static [u8]>,
    pub(super) replication: redb::Table<'t, &'static [u8], &'static [u8]>,
}

/// The changes of a write transaction, through its open tables.
pub struct WriteTx<'t> {
    pub(super) t: Tables<'t>,
    /// Bulk-load mode: postings added here are kept in memory, merged into
    /// lookups, and written chunk by chunk at commit (see [`WriteTx::bulk`]).
    pub(super) bulk: Option<FoldMap<Vec<u8>, Vec<u64>>>,
    /// Counters taken in this transaction and their next values: written
    /// to the meta table (and the redo log) once, by [`WriteTx::finish`],
    /// not at every creation.
    pub(super) counters: Vec<(&'static str, u64)>,
    pub(super) logging: bool,
    /// This transaction's operations, encoded for the redo log.
    pub(super) ops: Vec<u8>,
    /// The postings deferred by earlier transactions (see [`deferred`]).
    pub(super) deferred: &'t Deferred,
    /// This transaction's bulk postings may be deferred rather than written.
    pub(super) defer: bool,
    /// The deferred postings were written to the table in this transaction.
    pub(super) wrote_deferred: bool,
    pub(super) redo: &'t Mutex<RedoLog>,
    pub(super) checkpoint_bytes: u64,
    /// The last CSN issued (read from the meta table at the first change),
    /// and whether this transaction issued or followed one.
    pub(super) csn: Option<Csn>,
    pub(super) csn_moved: bool,
    pub(super) server_id: u16,
}

/// A write transaction's changes, all written to its tables, ready to commit.
pub struct Staged {
    pub(super) ops: Vec<u8>,
    /// Postings to defer once committed (ids ascending per key).
    pub(super) deferred: Option<FoldMap<Vec<u8>, Vec<u64>>>,
    /// The earlier deferred postings are in the table now: a new generation starts.
    pub(super) wrote_deferred: bool,
}

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
                csns: txn.open_table(CSN_INDEX)?,
                deletions: txn.open_table(DELETIONS)?,
                replication: txn.open_table(REPLICATION)?,
            },
            csn: None,
            csn_moved: false,
            server_id: self.server_id,
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
    pub(super) fn with_dn2id<T>(&self, f: impl FnOnce(&redb::Table<'_, &'static str, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.dn2id)
    }

    pub(super) fn with_postings<T>(
        &self,
        f: impl FnOnce(&redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.t.postings)
    }

    pub(super) fn with_children<T>(&self, f: impl FnOnce(&redb::Table<'_, u128, ()>) -> Result<T>) -> Result<T> {
        f(&self.t.children)
    }

    pub(super) fn with_uuid2id<T>(&self, f: impl FnOnce(&redb::Table<'_, u128, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.uuid2id)
    }

    pub(super) fn with_entries<T>(
        &self,
        f: impl FnOnce(&redb::Table<'_, u64, &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.t.entries)
    }

    pub(super) fn with_tokens<T>(
        &self,
        f: impl FnOnce(&redb::Table<'_, &'static [u8], &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.t.tokens)
    }

    pub(super) fn with_changelog<T>(
        &self,
        f: impl FnOnce(&redb::Table<'_, u64, &'static [u8]>) -> Result<T>,
    ) -> Result<T> {
        f(&self.t.changelog)
    }

    pub(super) fn with_meta<T>(&self, f: impl FnOnce(&redb::Table<'_, &'static str, u64>) -> Result<T>) -> Result<T> {
        f(&self.t.meta)
    }

    /// Set a value of the meta table (a note the directory keeps, such as
    /// which attributes have posting lists).
    pub fn set_meta(&mut self, name: &str, value: u64) -> Result<()> {
        self.t.meta.insert(name, value)?;
        self.log(|| Op::SetCounter(name.to_string(), value));
        Ok(())
    }

    pub(super) fn entry_with<T>(&self, id: u64, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
        match self.t.entries.get(id)? {
            Some(g) => Ok(Some(f(g.value())?)),
            None => Ok(None),
        }
    }

    /// Record an operation for the redo log.
    pub(super) fn log(&mut self, op: impl FnOnce() -> Op) {
        if self.logging {
            op().encode(&mut self.ops);
        }
    }

    /// Redo one logged operation.
    pub(super) fn apply(&mut self, op: Op) -> Result<()> {
        match op {
            Op::PutEntry(id, rec) => self.store_record(id, &rec)?,
            Op::DeleteEntry(id) => {
                self.remove_record(id)?;
            }
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

    pub(super) fn next_counter(&mut self, name: &'static str) -> Result<u64> {
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

    /// Store an entry's record already encoded ([`Record::encode`]), with a
    /// new CSN: every change of an entry, whoever makes it, gets one.
    pub fn put_encoded_entry(&mut self, id: u64, encoded: Vec<u8>) -> Result<()> {
        let csn = self.next_csn()?;
        self.put_entry_at(id, &encoded, csn)
    }

    /// Store an entry's record with the CSN it already has (a provider's, an
    /// import's): later CSNs of this store follow it.
    pub fn put_encoded_entry_at(&mut self, id: u64, encoded: &[u8], csn: Csn) -> Result<()> {
        self.follow_csn(csn)?;
        self.put_entry_at(id, encoded, csn)
    }

    fn put_entry_at(&mut self, id: u64, encoded: &[u8], csn: Csn) -> Result<()> {
        let stamped = Record::stamped(encoded, None, csn)?;
        self.store_record(id, &stamped)?;
        self.log(|| Op::PutEntry(id, stamped));
        Ok(())
    }

    /// Write a stamped record and move its key in the CSN index: what a
    /// change and its replay from the redo log both do.
    fn store_record(&mut self, id: u64, stamped: &[u8]) -> Result<()> {
        let old = match self.t.entries.insert(id, stamped)? {
            Some(g) => RecordView::parse(g.value())?.csn,
            None => None,
        };
        if let Some(old) = old {
            self.t.csns.remove(old.0)?;
        }
        if let Some(new) = RecordView::parse(stamped)?.csn {
            self.t.csns.insert(new.0, id)?;
        }
        Ok(())
    }

    /// Remove a record and its key in the CSN index; its normalised DN.
    fn remove_record(&mut self, id: u64) -> Result<Option<String>> {
        let old = match self.t.entries.remove(id)? {
            Some(g) => {
                let v = RecordView::parse(g.value())?;
                Some((v.csn, v.ndn.to_string()))
            }
            None => None,
        };
        let Some((csn, ndn)) = old else { return Ok(None) };
        if let Some(csn) = csn {
            self.t.csns.remove(csn.0)?;
        }
        Ok(Some(ndn))
    }

    /// Delete an entry; with its entryUUID, the deletion goes in the deletion
    /// log under a new CSN, for the replicas that still hold it.
    pub fn delete_entry(&mut self, id: u64, uuid: Option<&[u8; 16]>) -> Result<()> {
        let ndn = self.remove_record(id)?;
        self.log(|| Op::DeleteEntry(id));
        if let (Some(uuid), Some(ndn)) = (uuid, ndn) {
            self.log_departure(uuid, &ndn)?;
        }
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

    pub(super) fn flush_bulk(&mut self) -> Result<()> {
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
    pub(super) fn overlay(&self, key: &[u8]) -> Vec<u64> {
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

    pub(super) fn overlay_prefix(&self, prefix: &[u8]) -> Vec<u64> {
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
        if let (true, Some(c)) = (self.csn_moved, self.csn) {
            self.set_meta(CSN_HIGH, (c.0 >> 64) as u64)?;
            self.set_meta(CSN_LOW, c.0 as u64)?;
        }
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
