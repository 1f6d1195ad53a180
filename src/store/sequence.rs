//! Change sequence numbers as a write transaction issues them, and the
//! deletion log replicas read (see [`super::Csn`]): both kept in the same
//! transaction as the changes they order.

use redb::ReadableTable;

use super::csn::now_micros;
use super::write::WriteTx;
use super::{Csn, Kept, Result, StoreError};

/// The meta table's names of the last CSN issued, in two halves.
pub(super) const CSN_HIGH: &str = "csn_high";
pub(super) const CSN_LOW: &str = "csn_low";
/// The CSN up to which the deletion log was pruned, in two halves.
pub(super) const DELETIONS_PRUNED: &str = "deletions_pruned_high";
pub(super) const DELETIONS_PRUNED_LOW: &str = "deletions_pruned_low";

impl WriteTx<'_> {
    /// Record in the deletion log, under a new CSN, that the entry of this
    /// UUID is no longer at `ndn` (deleted, or renamed away): a replica
    /// whose search held it there loses it.
    pub fn log_departure(&mut self, uuid: &[u8; 16], ndn: &str) -> Result<()> {
        let csn = self.next_csn()?;
        let mut value = Vec::with_capacity(16 + ndn.len());
        value.extend_from_slice(uuid);
        value.extend_from_slice(ndn.as_bytes());
        self.put_kept(Kept::Deletions, &csn.0.to_be_bytes(), &value)
    }

    /// This store's deletion log holds no deletion made before now: entries
    /// came in whole (an import, a replica's first refresh) rather than one
    /// change at a time, so a cookie older than them must get the present
    /// phase, not the deletes since.
    pub fn deletions_known_from_now(&mut self) -> Result<()> {
        let now = self.issued_csn()?;
        let known = {
            let hi = self.t.meta.get(DELETIONS_PRUNED)?.map_or(0, |g| g.value());
            let lo = self.t.meta.get(DELETIONS_PRUNED_LOW)?.map_or(0, |g| g.value());
            Csn((u128::from(hi) << 64) | u128::from(lo))
        };
        if now > known {
            self.set_meta(DELETIONS_PRUNED, (now.0 >> 64) as u64)?;
            self.set_meta(DELETIONS_PRUNED_LOW, now.0 as u64)?;
        }
        Ok(())
    }

    /// Forget the deletions logged before `before`, at most `max` of them
    /// (the oldest); a refresh from a cookie older than what is forgotten
    /// sends what is present instead. How many went.
    pub fn prune_deletions(&mut self, before: Csn, max: usize) -> Result<usize> {
        let mut gone = Vec::new();
        for item in self.t.deletions.range::<&[u8]>(..&before.0.to_be_bytes()[..])?.take(max) {
            gone.push(item?.0.value().to_vec());
        }
        let Some(last) = gone.last() else { return Ok(0) };
        let last: [u8; 16] =
            last.as_slice().try_into().map_err(|_| StoreError::Corrupt("a deletion log key is malformed".into()))?;
        let last = u128::from_be_bytes(last);
        for k in &gone {
            self.delete_kept(Kept::Deletions, k)?;
        }
        self.set_meta(DELETIONS_PRUNED, (last >> 64) as u64)?;
        self.set_meta(DELETIONS_PRUNED_LOW, last as u64)?;
        Ok(gone.len())
    }

    /// The last CSN issued, as the meta table has it.
    pub(super) fn issued_csn(&mut self) -> Result<Csn> {
        if let Some(c) = self.csn {
            return Ok(c);
        }
        let hi = self.t.meta.get(CSN_HIGH)?.map_or(0, |g| g.value());
        let lo = self.t.meta.get(CSN_LOW)?.map_or(0, |g| g.value());
        let c = Csn((u128::from(hi) << 64) | u128::from(lo));
        self.csn = Some(c);
        Ok(c)
    }

    /// A CSN for a change made now, later than every CSN this store issued
    /// or followed (the clock may step back; the CSNs never do).
    pub fn next_csn(&mut self) -> Result<Csn> {
        let c = Csn::next(self.issued_csn()?, now_micros(), self.server_id);
        self.csn = Some(c);
        self.csn_moved = true;
        Ok(c)
    }

    pub(super) fn follow_csn(&mut self, csn: Csn) -> Result<()> {
        if csn > self.issued_csn()? {
            self.csn = Some(csn);
            self.csn_moved = true;
        }
        Ok(())
    }
}
