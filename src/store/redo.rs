//! The redo log: how a write becomes durable with one sequential append and
//! one `fdatasync`, instead of redb writing every B-tree page it touched.
//!
//! A creation touches some sixty index keys spread over the postings table;
//! committing it durably in redb means writing and syncing one page per key,
//! about 4 ms for a group on this class of disk. Instead, a committing
//! transaction appends the list of its store operations ([`Op`]) to this log
//! and syncs it, then commits in redb without syncing (`Durability::None`),
//! which makes it visible. Every so often a *checkpoint* commits durably in
//! redb — which persists every earlier non-durable commit — together with the
//! sequence number of the last logged record, and the log starts over.
//!
//! After a crash redb comes back at its last durable commit; the records
//! logged after that checkpoint are replayed, in order, through the same
//! store operations. A record is acknowledged only once synced, so a torn
//! record at the end of the log (bad checksum, short) was never acknowledged
//! and is ignored.
//!
//! Record: `len: u32 LE` (of seq + payload), `crc32(seq ‖ payload): u32 LE`,
//! `seq: u64 LE`, payload. The file is reused from offset 0 after each
//! checkpoint: stale records after the live ones have older sequence numbers
//! or fail their checksum, so reading stops there.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Result, StoreError};

/// Room added to the file at a time, written as zeros once so that later
/// appends are overwrites and `fdatasync` has no file-size metadata to flush.
const GROW: u64 = 4 << 20;
/// A record larger than this is corrupt (a group commit is a few hundred KiB).
const MAX_RECORD: u32 = 1 << 30;

/// One store operation, as logged and replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    PutEntry(u64, Vec<u8>),
    DeleteEntry(u64),
    PutDn(String, u64),
    DeleteDn(String),
    PutUuid([u8; 16], u64),
    DeleteUuid([u8; 16]),
    AddChild(u64, u64),
    RemoveChild(u64, u64),
    Post(Vec<u8>, u64),
    Unpost(Vec<u8>, u64),
    PutToken(Vec<u8>, Vec<u8>),
    DeleteToken(Vec<u8>),
    PutChange(u64, Vec<u8>),
    SetCounter(String, u64),
    /// A value of a table of `kept` (its [`super::kept::Kept`] tag), key, value.
    PutKept(u8, Vec<u8>, Vec<u8>),
    DeleteKept(u8, Vec<u8>),
    /// An audit record purged at the end of its retention.
    DeleteChange(u64),
}

impl Op {
    /// Append the encoding of `Post(key, id)` (or `Unpost`) to `out`, without
    /// building the operation: a creation posts some forty keys.
    pub fn encode_posting(out: &mut Vec<u8>, add: bool, key: &[u8], id: u64) {
        out.push(if add { 9 } else { 10 });
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&id.to_le_bytes());
    }

    /// Append this operation's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        fn bytes(out: &mut Vec<u8>, b: &[u8]) {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        fn num(out: &mut Vec<u8>, n: u64) {
            out.extend_from_slice(&n.to_le_bytes());
        }
        match self {
            Op::PutEntry(id, rec) => {
                out.push(1);
                num(out, *id);
                bytes(out, rec);
            }
            Op::DeleteEntry(id) => {
                out.push(2);
                num(out, *id);
            }
            Op::PutDn(ndn, id) => {
                out.push(3);
                bytes(out, ndn.as_bytes());
                num(out, *id);
            }
            Op::DeleteDn(ndn) => {
                out.push(4);
                bytes(out, ndn.as_bytes());
            }
            Op::PutUuid(uuid, id) => {
                out.push(5);
                out.extend_from_slice(uuid);
                num(out, *id);
            }
            Op::DeleteUuid(uuid) => {
                out.push(6);
                out.extend_from_slice(uuid);
            }
            Op::AddChild(p, c) => {
                out.push(7);
                num(out, *p);
                num(out, *c);
            }
            Op::RemoveChild(p, c) => {
                out.push(8);
                num(out, *p);
                num(out, *c);
            }
            Op::Post(key, id) => Op::encode_posting(out, true, key, *id),
            Op::Unpost(key, id) => Op::encode_posting(out, false, key, *id),
            Op::PutToken(hash, rec) => {
                out.push(11);
                bytes(out, hash);
                bytes(out, rec);
            }
            Op::DeleteToken(hash) => {
                out.push(12);
                bytes(out, hash);
            }
            Op::PutChange(seq, rec) => {
                out.push(13);
                num(out, *seq);
                bytes(out, rec);
            }
            Op::SetCounter(name, value) => {
                out.push(14);
                bytes(out, name.as_bytes());
                num(out, *value);
            }
            Op::PutKept(table, key, value) => {
                out.push(15);
                out.push(*table);
                bytes(out, key);
                bytes(out, value);
            }
            Op::DeleteKept(table, key) => {
                out.push(16);
                out.push(*table);
                bytes(out, key);
            }
            Op::DeleteChange(seq) => {
                out.push(17);
                num(out, *seq);
            }
        }
    }

    /// Every operation of a record's payload, in order.
    pub fn decode_all(mut b: &[u8]) -> Result<Vec<Op>> {
        let mut ops = Vec::new();
        while !b.is_empty() {
            ops.push(Op::decode(&mut b)?);
        }
        Ok(ops)
    }

    fn decode(b: &mut &[u8]) -> Result<Op> {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
            if b.len() < n {
                return Err(StoreError::Corrupt("redo record ends inside an operation".into()));
            }
            let (head, rest) = b.split_at(n);
            *b = rest;
            Ok(head)
        }
        fn num(b: &mut &[u8]) -> Result<u64> {
            let mut a = [0u8; 8];
            a.copy_from_slice(take(b, 8)?);
            Ok(u64::from_le_bytes(a))
        }
        fn bytes(b: &mut &[u8]) -> Result<Vec<u8>> {
            let mut a = [0u8; 4];
            a.copy_from_slice(take(b, 4)?);
            Ok(take(b, u32::from_le_bytes(a) as usize)?.to_vec())
        }
        fn text(b: &mut &[u8]) -> Result<String> {
            String::from_utf8(bytes(b)?).map_err(|_| StoreError::Corrupt("redo record holds a non-UTF-8 DN".into()))
        }
        fn uuid(b: &mut &[u8]) -> Result<[u8; 16]> {
            let mut a = [0u8; 16];
            a.copy_from_slice(take(b, 16)?);
            Ok(a)
        }
        let tag = take(b, 1)?[0];
        Ok(match tag {
            1 => Op::PutEntry(num(b)?, bytes(b)?),
            2 => Op::DeleteEntry(num(b)?),
            3 => Op::PutDn(text(b)?, num(b)?),
            4 => Op::DeleteDn(text(b)?),
            5 => Op::PutUuid(uuid(b)?, num(b)?),
            6 => Op::DeleteUuid(uuid(b)?),
            7 => Op::AddChild(num(b)?, num(b)?),
            8 => Op::RemoveChild(num(b)?, num(b)?),
            9 => Op::Post(bytes(b)?, num(b)?),
            10 => Op::Unpost(bytes(b)?, num(b)?),
            11 => Op::PutToken(bytes(b)?, bytes(b)?),
            12 => Op::DeleteToken(bytes(b)?),
            13 => Op::PutChange(num(b)?, bytes(b)?),
            14 => Op::SetCounter(text(b)?, num(b)?),
            15 => Op::PutKept(take(b, 1)?[0], bytes(b)?, bytes(b)?),
            16 => Op::DeleteKept(take(b, 1)?[0], bytes(b)?),
            17 => Op::DeleteChange(num(b)?),
            other => return Err(StoreError::Corrupt(format!("unknown redo operation {other}"))),
        })
    }
}

/// A record read back: its sequence number and payload.
pub type Record = (u64, Vec<u8>);

/// The open log file and where the next record goes.
pub struct RedoLog {
    file: File,
    /// Where the next record is written.
    end: u64,
    /// How far the file has been filled with zeros.
    allocated: u64,
    /// The sequence number of the last record written (or checkpointed).
    last_seq: u64,
    /// Set after an I/O error: what is on disk is no longer known, so no
    /// further write is acknowledged until a restart replays the log.
    broken: Option<String>,
    /// The last record was logged but redb did not take it: only a restart's
    /// replay may apply it, so no checkpoint may pass over it.
    unapplied: bool,
}

impl RedoLog {
    /// Open (or create) the log and read the records it holds, in order: the
    /// contiguous run from its start whose checksums hold.
    pub fn open(path: &Path) -> Result<(RedoLog, Vec<Record>)> {
        let io = |e: std::io::Error| StoreError::Redb(redb::Error::Io(e));
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        let allocated = file.metadata().map_err(io)?.len();
        let mut content = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        file.read_to_end(&mut content).map_err(io)?;
        let mut records = Vec::new();
        let mut at = 0usize;
        let mut expected: Option<u64> = None;
        while let Some((seq, payload, next)) = read_record(&content, at) {
            if expected.is_some_and(|e| e != seq) {
                break;
            }
            records.push((seq, payload.to_vec()));
            expected = seq.checked_add(1);
            at = next;
        }
        let log = RedoLog { file, end: 0, allocated, last_seq: 0, broken: None, unapplied: false };
        Ok((log, records))
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Bytes logged since the last checkpoint.
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Start over after a checkpoint that covered every record up to `last_seq`.
    pub fn restart(&mut self, last_seq: u64) {
        self.end = 0;
        self.last_seq = last_seq;
    }

    /// Append one record and make it durable; returns its sequence number.
    pub fn append(&mut self, payload: &[u8]) -> Result<u64> {
        if let Some(why) = &self.broken {
            return Err(StoreError::Corrupt(format!(
                "the redo log is unusable since an earlier error ({why}); restart the server"
            )));
        }
        let seq = self.last_seq + 1;
        let mut record = Vec::with_capacity(payload.len() + 16);
        let len = u32::try_from(payload.len() + 8)
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| StoreError::Corrupt("a transaction too large for the redo log".into()))?;
        record.extend_from_slice(&len.to_le_bytes());
        let mut crc = Crc32::new();
        crc.update(&seq.to_le_bytes());
        crc.update(payload);
        record.extend_from_slice(&crc.finish().to_le_bytes());
        record.extend_from_slice(&seq.to_le_bytes());
        record.extend_from_slice(payload);
        match self.write_synced(&record) {
            Ok(()) => {
                self.end += record.len() as u64;
                self.last_seq = seq;
                Ok(seq)
            }
            Err(e) => {
                self.broken = Some(e.to_string());
                Err(StoreError::Redb(redb::Error::Io(e)))
            }
        }
    }

    /// Mark the log unusable: the store could not apply what it logged.
    pub fn break_with(&mut self, why: String) {
        self.broken = Some(why);
        self.unapplied = true;
    }

    /// Why a checkpoint may not be taken now, if it may not.
    pub fn unapplied(&self) -> Option<&str> {
        if self.unapplied { self.broken.as_deref() } else { None }
    }

    fn write_synced(&mut self, record: &[u8]) -> std::io::Result<()> {
        let needed = self.end + record.len() as u64;
        if needed > self.allocated {
            // Zero-fill ahead once (and sync the new size) so that the
            // appends' fdatasync need not flush file metadata each time.
            let target = needed.div_ceil(GROW) * GROW;
            let zeros = vec![0u8; 1 << 20];
            let mut at = self.allocated;
            while at < target {
                let n = (target - at).min(zeros.len() as u64) as usize;
                self.file.write_all_at(&zeros[..n], at)?;
                at += n as u64;
            }
            self.file.sync_all()?;
            self.allocated = target;
        }
        // Positioned writes: no seek before each record.
        self.file.write_all_at(record, self.end)?;
        self.file.sync_data()
    }
}

/// The record at `at`: (seq, payload, offset after it), when whole and intact.
fn read_record(content: &[u8], at: usize) -> Option<(u64, &[u8], usize)> {
    let header = content.get(at..at + 8)?;
    let len = u32::from_le_bytes(header[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(header[4..].try_into().ok()?);
    if !(8..=MAX_RECORD).contains(&len) {
        return None;
    }
    let body = content.get(at + 8..at + 8 + len as usize)?;
    let mut check = Crc32::new();
    check.update(body);
    if check.finish() != crc {
        return None;
    }
    let seq = u64::from_le_bytes(body[..8].try_into().ok()?);
    Some((seq, &body[8..], at + 8 + len as usize))
}

/// CRC-32 (IEEE 802.3, as in zlib), to tell a torn or stale record.
pub(super) struct Crc32(u32);

/// Slicing-by-8 tables: `CRC_TABLES[0]` is the byte-at-a-time table, and
/// `CRC_TABLES[k][b]` the CRC of byte `b` followed by `k` zero bytes, so that
/// eight bytes are folded in with eight lookups and no dependency between
/// them (every commit checksums its whole redo record).
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

impl Crc32 {
    pub(super) fn new() -> Crc32 {
        Crc32(0xFFFF_FFFF)
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut c = self.0;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let lo = c ^ u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in words.remainder() {
            c = t[0][((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
        }
        self.0 = c;
    }

    pub(super) fn finish(&self) -> u32 {
        self.0 ^ 0xFFFF_FFFF
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_the_zlib_check_value() {
        let mut c = Crc32::new();
        c.update(b"123456789");
        assert_eq!(c.finish(), 0xCBF4_3926);
        // Eight bytes at a time and the rest byte by byte, in any split.
        let data: Vec<u8> = (0..1000u32).map(|i| ((i * 7 + 3) % 256) as u8).collect();
        for split in [0, 1, 7, 8, 13, 999] {
            let mut c = Crc32::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), 0x17BC_2A46, "split at {split}");
        }
    }

    #[test]
    fn operations_round_trip() {
        let ops = vec![
            Op::PutEntry(7, b"record".to_vec()),
            Op::DeleteEntry(8),
            Op::PutDn("uid=a,dc=cig,dc=fr".into(), 7),
            Op::DeleteDn("uid=b".into()),
            Op::PutUuid([3; 16], 7),
            Op::DeleteUuid([4; 16]),
            Op::AddChild(1, 7),
            Op::RemoveChild(1, 8),
            Op::Post(b"euid\0a".to_vec(), 7),
            Op::Unpost(b"euid\0b".to_vec(), 8),
            Op::PutToken(vec![1, 2], vec![3]),
            Op::DeleteToken(vec![9]),
            Op::PutChange(42, b"change".to_vec()),
            Op::SetCounter("next_id".into(), 9),
            Op::PutKept(1, vec![7; 16], b"corbeille".to_vec()),
            Op::DeleteKept(2, 42u64.to_be_bytes().to_vec()),
            Op::DeleteChange(7),
        ];
        let mut buf = Vec::new();
        for op in &ops {
            op.encode(&mut buf);
        }
        assert_eq!(Op::decode_all(&buf).unwrap(), ops);
        assert!(Op::decode_all(&buf[..buf.len() - 1]).is_err());
    }

    #[test]
    fn a_torn_tail_and_stale_records_are_not_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("redo");
        let (mut log, records) = RedoLog::open(&path).unwrap();
        assert!(records.is_empty());
        for i in 0..5u8 {
            log.append(&[i; 100]).unwrap();
        }
        // A checkpoint, then two shorter records over the old ones.
        log.restart(5);
        log.append(b"six").unwrap();
        log.append(b"seven").unwrap();
        drop(log);
        let (_, records) = RedoLog::open(&path).unwrap();
        assert_eq!(records, vec![(6, b"six".to_vec()), (7, b"seven".to_vec())]);

        // A record cut short by a crash is dropped with what follows.
        let (mut log, _) = RedoLog::open(&path).unwrap();
        log.restart(7);
        log.append(b"eight").unwrap();
        log.append(&[9; 50]).unwrap();
        let torn_at = log.len() - 10;
        drop(log);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, &[0xFF; 10], torn_at).unwrap();
        let (_, records) = RedoLog::open(&path).unwrap();
        assert_eq!(records, vec![(8, b"eight".to_vec())]);
    }
}
