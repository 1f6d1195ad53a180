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
//! pressure. Reading the tables into redb's own cache instead was measured
//! and did worse: it competes with the first requests for CPU, and it holds
//! the cache's whole budget in the process at once.

use std::num::NonZeroU64;
use std::time::Instant;

use super::{Result, Store, StoreError};

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
