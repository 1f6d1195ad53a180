//! Bringing the store file into the operating system's page cache at start,
//! while the server already serves.
//!
//! redb reads its pages with `pread`. After a reboot, or on a standby that
//! never served, the file is on disk only: every lookup then waits for a
//! few random disk reads, and on the 1M-agent store binds took ten seconds
//! to reach their usual rate. Asking the kernel to read the file ahead, in
//! order, brings it in at the disk's sequential speed (2 GB in about a
//! second here) for a fraction of a second of CPU, without copying it into
//! the process: the memory is the kernel's cache, which gives it back under
//! pressure.
//!
//! redb's own cache then still fills one random read at a time: on the 1M
//! store, uid searches took about fifteen seconds to reach their rate, and
//! minutes to their best. [`Store::warm`] reads the tables in key order
//! instead (from the kernel's cache by then: a few seconds), most useful
//! first: the DN index a bind walks, the posting lists a lookup by uid or
//! mail reads, the entries, the last binds; it stops at a share of the
//! cache's budget, so that it does not evict what it brought. The memory is
//! what the cache would hold after a while of serving anyway.

use std::num::NonZeroU64;
use std::time::Instant;

use redb::{ReadableDatabase, ReadableTable};

use super::tables::*;
use super::{Result, Store, StoreError, postings};

/// The kernel is asked for the file this much at a time: one request for
/// the whole file was cut short by its read-ahead limit.
const STEP: u64 = 2 * 1024 * 1024;

/// What a prefetch asked for.
#[derive(Debug, Default)]
pub struct Prefetched {
    /// The store file's size, in bytes.
    pub bytes: u64,
    pub millis: u64,
}

impl Store {
    /// Ask the kernel to read the whole store file into its page cache.
    /// Returns once every part was asked for (the kernel reads them
    /// meanwhile); nothing is held by the process.
    pub fn prefetch(&self) -> Result<Prefetched> {
        let started = Instant::now();
        let io = |e: std::io::Error| StoreError::Redb(redb::Error::Io(e));
        let file = std::fs::File::open(&self.path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut offset = 0;
        while offset < size {
            rustix::fs::fadvise(&file, offset, NonZeroU64::new(STEP), rustix::fs::Advice::WillNeed)
                .map_err(|e| io(e.into()))?;
            offset += STEP;
        }
        Ok(Prefetched { bytes: size, millis: started.elapsed().as_millis() as u64 })
    }
}

/// What a warm-up read.
#[derive(Debug, Default)]
pub struct Warmed {
    /// Keys and values read, in bytes.
    pub bytes: u64,
    pub millis: u64,
    /// Whether every table was read whole within the budget.
    pub complete: bool,
}

impl Store {
    /// Read the hot tables into redb's cache until `budget` bytes of keys and
    /// values: DN2ID, the posting lists under `hot_keys` (index-key
    /// prefixes), the entries, the last binds, then the other tables a read
    /// may walk.
    pub fn warm(&self, budget: u64, hot_keys: &[Vec<u8>]) -> Result<Warmed> {
        let started = Instant::now();
        let txn = self.db.begin_read()?;
        let mut read = 0u64;
        let mut within = |bytes: usize| {
            read += bytes as u64;
            read < budget
        };
        let postings_table = txn.open_table(POSTINGS)?;
        let complete = 'walk: {
            for item in txn.open_table(DN2ID)?.iter()? {
                if !within(item?.0.value().len() + 8) {
                    break 'walk false;
                }
            }
            for prefix in hot_keys {
                let escaped = postings::escape(prefix);
                for item in postings_table.range::<&[u8]>(escaped.as_slice()..)? {
                    let (k, v) = item?;
                    if !k.value().starts_with(&escaped) {
                        break;
                    }
                    if !within(k.value().len() + v.value().len()) {
                        break 'walk false;
                    }
                }
            }
            for item in txn.open_table(ENTRIES)?.iter()? {
                if !within(8 + item?.1.value().len()) {
                    break 'walk false;
                }
            }
            for item in txn.open_table(LAST_BIND)?.iter()? {
                let (k, v) = item?;
                if !within(k.value().len() + v.value().len()) {
                    break 'walk false;
                }
            }
            for item in txn.open_table(CHILD_LINKS)?.iter()? {
                item?;
                if !within(16) {
                    break 'walk false;
                }
            }
            for item in postings_table.iter()? {
                let (k, v) = item?;
                if !within(k.value().len() + v.value().len()) {
                    break 'walk false;
                }
            }
            true
        };
        Ok(Warmed { bytes: read, millis: started.elapsed().as_millis() as u64, complete })
    }
}
