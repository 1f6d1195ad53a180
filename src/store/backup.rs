//! Backups: every table of one read snapshot, written as a stream of
//! records, and restored into a new store file.
//!
//! Taken from a read transaction, a backup is consistent while the server
//! keeps writing (redb's MVCC): it holds every write committed before it
//! began, and none after. It is not a copy of the redb file, which a running
//! server keeps locked and which would need the redo log beside it.
//!
//! Layout: the magic line, the store format (u64 LE), then records
//! `table: u8, key: varint-length bytes, value: varint-length bytes`, then
//! `0xFF`, the record count (u64 LE) and the CRC-32 of everything before it.

use std::io::{Read, Write};
use std::path::Path;

use redb::ReadableTable;

use super::format::{FORMAT_VERSION, OLDEST_FORMAT};
use super::redo::Crc32;
use super::tables::*;
use super::{Result, StoreError};

const MAGIC: &[u8] = b"CONVERGENCES BACKUP 1\n";
const END: u8 = 0xFF;

/// Table numbers in a backup.
const T_ENTRIES: u8 = 1;
const T_DN2ID: u8 = 2;
const T_UUID2ID: u8 = 3;
const T_CHILDREN: u8 = 4;
const T_POSTINGS: u8 = 5;
const T_CHANGELOG: u8 = 6;
const T_META: u8 = 7;
const T_TOKENS: u8 = 8;
const T_BIN: u8 = 9;
const T_LAST_BIND: u8 = 10;
const T_HISTORY: u8 = 11;
const T_DELETIONS: u8 = 12;
const T_REPLICATION: u8 = 13;

/// A writer that keeps the CRC and the record count.
struct Out<W> {
    w: W,
    crc: Crc32,
    records: u64,
}

impl<W: Write> Out<W> {
    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        self.w.write_all(b).map_err(io)
    }

    fn bytes(&mut self, b: &[u8]) -> Result<()> {
        let mut len = Vec::with_capacity(10);
        super::codec::put_varint(&mut len, b.len() as u64);
        self.raw(&len)?;
        self.raw(b)
    }

    fn record(&mut self, table: u8, key: &[u8], value: &[u8]) -> Result<()> {
        self.raw(&[table])?;
        self.bytes(key)?;
        self.bytes(value)?;
        self.records += 1;
        Ok(())
    }
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Redb(redb::Error::Io(e))
}

/// Write every table of `txn` to `out`; the number of records.
pub fn write(txn: &redb::ReadTransaction, out: impl Write) -> Result<u64> {
    let mut o = Out { w: out, crc: Crc32::new(), records: 0 };
    o.raw(MAGIC)?;
    o.raw(&FORMAT_VERSION.to_le_bytes())?;
    for item in txn.open_table(ENTRIES)?.iter()? {
        let (k, v) = item?;
        o.record(T_ENTRIES, &k.value().to_be_bytes(), v.value())?;
    }
    for item in txn.open_table(DN2ID)?.iter()? {
        let (k, v) = item?;
        o.record(T_DN2ID, k.value().as_bytes(), &v.value().to_be_bytes())?;
    }
    for item in txn.open_table(UUID2ID)?.iter()? {
        let (k, v) = item?;
        o.record(T_UUID2ID, &k.value().to_be_bytes(), &v.value().to_be_bytes())?;
    }
    for item in txn.open_table(CHILD_LINKS)?.iter()? {
        let (link, _) = item?;
        let (parent, child) = link_ends(link.value());
        o.record(T_CHILDREN, &parent.to_be_bytes(), &child.to_be_bytes())?;
    }
    for (table, def) in [
        (T_POSTINGS, POSTINGS),
        (T_TOKENS, TOKENS),
        (T_BIN, BIN),
        (T_LAST_BIND, LAST_BIND),
        (T_HISTORY, HISTORY),
        (T_DELETIONS, DELETIONS),
    ] {
        for item in txn.open_table(def)?.iter()? {
            let (k, v) = item?;
            o.record(table, k.value(), v.value())?;
        }
    }
    for item in txn.open_table(CHANGELOG)?.iter()? {
        let (k, v) = item?;
        o.record(T_CHANGELOG, &k.value().to_be_bytes(), v.value())?;
    }
    for item in txn.open_table(META)?.iter()? {
        let (k, v) = item?;
        // The restored store starts with an empty redo log of its own.
        let value = if k.value() == "redo_checkpoint" { 0 } else { v.value() };
        o.record(T_META, k.value().as_bytes(), &value.to_le_bytes())?;
    }
    let records = o.records;
    o.raw(&[END])?;
    o.raw(&records.to_le_bytes())?;
    let crc = o.crc.finish();
    o.w.write_all(&crc.to_le_bytes()).map_err(io)?;
    o.w.flush().map_err(io)?;
    Ok(records)
}

/// A reader that keeps the CRC.
struct In<R> {
    r: R,
    crc: Crc32,
}

impl<R: Read> In<R> {
    /// `n` bytes; memory follows what is actually there, not what a
    /// (possibly damaged) length announces.
    fn exact(&mut self, n: usize) -> Result<Vec<u8>> {
        let mut b = Vec::with_capacity(n.min(64 * 1024));
        (&mut self.r).take(n as u64).read_to_end(&mut b).map_err(|e| corrupt(format!("unreadable backup: {e}")))?;
        if b.len() != n {
            return Err(corrupt("truncated backup".into()));
        }
        self.crc.update(&b);
        Ok(b)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.exact(1)?[0])
    }

    fn bytes(&mut self) -> Result<Vec<u8>> {
        let mut len = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
        }
        // A length beyond any sane record (entries are limited by max_pdu_bytes) is corruption.
        if len > 64 << 20 {
            return Err(corrupt(format!("a record of {len} bytes")));
        }
        self.exact(len as usize)
    }
}

fn corrupt(why: String) -> StoreError {
    StoreError::Corrupt(why)
}

fn u64_of(b: &[u8], le: bool) -> Result<u64> {
    let a: [u8; 8] = b.try_into().map_err(|_| corrupt("an 8-byte number expected".into()))?;
    Ok(if le { u64::from_le_bytes(a) } else { u64::from_be_bytes(a) })
}

/// Create the store file `path` (which must not exist) from a backup; the
/// number of records restored. The store is built beside it and renamed into
/// place once complete and synced: an interrupted or refused restore leaves
/// no store a server would open as an empty directory.
pub fn restore(path: &Path, input: impl Read) -> Result<u64> {
    if path.exists() || path.with_extension("redo").exists() {
        return Err(corrupt(format!("{} exists: restore only into an empty data directory", path.display())));
    }
    let partial = path.with_extension("restoring");
    let _ = std::fs::remove_file(&partial);
    let result = restore_into(&partial, input).and_then(|n| {
        std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)?;
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        Ok(n)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn restore_into(path: &Path, input: impl Read) -> Result<u64> {
    let mut i = In { r: std::io::BufReader::new(input), crc: Crc32::new() };
    if i.exact(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a Convergences backup".into()));
    }
    let format = u64_of(&i.exact(8)?, true)?;
    // An older store's records are valid in this format; opening the
    // restored store upgrades it (see `Store::open`).
    if !(OLDEST_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(StoreError::Format { found: format, supported: FORMAT_VERSION });
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    let mut records = 0u64;
    {
        let mut entries = txn.open_table(ENTRIES)?;
        let mut dn2id = txn.open_table(DN2ID)?;
        let mut uuid2id = txn.open_table(UUID2ID)?;
        let mut children = txn.open_table(CHILD_LINKS)?;
        let mut postings = txn.open_table(POSTINGS)?;
        let mut changelog = txn.open_table(CHANGELOG)?;
        let mut meta = txn.open_table(META)?;
        let mut tokens = txn.open_table(TOKENS)?;
        let mut bin = txn.open_table(BIN)?;
        let mut last_bind = txn.open_table(LAST_BIND)?;
        let mut history = txn.open_table(HISTORY)?;
        let mut deletions = txn.open_table(DELETIONS)?;
        let mut replication = txn.open_table(REPLICATION)?;
        // Derived from the records' headers, as the store derives it.
        let mut csns = txn.open_table(CSN_INDEX)?;
        loop {
            let table = i.byte()?;
            if table == END {
                break;
            }
            let (k, v) = (i.bytes()?, i.bytes()?);
            match table {
                T_ENTRIES => {
                    let id = u64_of(&k, false)?;
                    if let Some(csn) = super::RecordView::parse(&v)?.csn {
                        csns.insert(csn.0, id)?;
                    }
                    entries.insert(id, v.as_slice())?;
                }
                T_DN2ID => {
                    let ndn = std::str::from_utf8(&k).map_err(|_| corrupt("a DN is not UTF-8".into()))?;
                    dn2id.insert(ndn, u64_of(&v, false)?)?;
                }
                T_UUID2ID => {
                    let a: [u8; 16] = k.as_slice().try_into().map_err(|_| corrupt("a UUID is not 16 bytes".into()))?;
                    uuid2id.insert(u128::from_be_bytes(a), u64_of(&v, false)?)?;
                }
                T_CHILDREN => {
                    children.insert(child_link(u64_of(&k, false)?, u64_of(&v, false)?), ())?;
                }
                T_POSTINGS => insert_bytes(&mut postings, &k, &v)?,
                T_TOKENS => insert_bytes(&mut tokens, &k, &v)?,
                T_BIN => insert_bytes(&mut bin, &k, &v)?,
                T_LAST_BIND => insert_bytes(&mut last_bind, &k, &v)?,
                T_HISTORY => insert_bytes(&mut history, &k, &v)?,
                T_DELETIONS => insert_bytes(&mut deletions, &k, &v)?,
                T_REPLICATION => insert_bytes(&mut replication, &k, &v)?,
                T_CHANGELOG => {
                    changelog.insert(u64_of(&k, false)?, v.as_slice())?;
                }
                T_META => {
                    let key = std::str::from_utf8(&k).map_err(|_| corrupt("a meta key is not UTF-8".into()))?;
                    meta.insert(key, u64_of(&v, true)?)?;
                }
                other => return Err(corrupt(format!("unknown table {other} in the backup"))),
            }
            records += 1;
        }
    }
    let count = u64_of(&i.exact(8)?, true)?;
    let computed = i.crc.finish();
    let mut stored = [0u8; 4];
    i.r.read_exact(&mut stored).map_err(|e| corrupt(format!("truncated backup: {e}")))?;
    if count != records || u32::from_le_bytes(stored) != computed {
        return Err(corrupt("the backup's checksum or record count does not match: it is damaged".into()));
    }
    txn.commit()?;
    Ok(records)
}

fn insert_bytes(t: &mut redb::Table<&'static [u8], &'static [u8]>, k: &[u8], v: &[u8]) -> Result<()> {
    t.insert(k, v)?;
    Ok(())
}
