//! What the store keeps beside the tree (issue 21): the recycle bin
//! (entryUUID → the deleted entry, its groups and its last bind) and the
//! time of each account's last successful bind (entry id → seconds since
//! the epoch). Neither is an entry: no read of the tree sees the bin, and a
//! bind records its time without rewriting its entry.

use redb::{ReadableTable, TableDefinition};

use super::codec::{Cursor, put_bytes, put_varint};
use super::redo::Op;
use super::tables::{BIN, DELETIONS, HISTORY, LAST_BIND, REPLICATION};
use super::{ReadTx, Result, StoreError, WriteTx};

/// The tables of this module, as the redo log names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Bin = 1,
    LastBind = 2,
    /// entry id → its old password hashes, newest last (see `directory::ppolicy`)
    History = 3,
    /// deletion CSN → entryUUID and normalised DN (see [`super::Csn`])
    Deletions = 4,
    /// what this server keeps as a replica (its provider's cookie)
    Replication = 5,
}

impl Kept {
    pub(super) fn of_tag(tag: u8) -> Result<Kept> {
        match tag {
            1 => Ok(Kept::Bin),
            2 => Ok(Kept::LastBind),
            3 => Ok(Kept::History),
            4 => Ok(Kept::Deletions),
            5 => Ok(Kept::Replication),
            other => Err(StoreError::Corrupt(format!("unknown kept table {other}"))),
        }
    }

    fn def(self) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
        match self {
            Kept::Bin => BIN,
            Kept::LastBind => LAST_BIND,
            Kept::History => HISTORY,
            Kept::Deletions => DELETIONS,
            Kept::Replication => REPLICATION,
        }
    }
}

/// A deleted entry, as the recycle bin keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeletedRecord {
    /// When it was deleted, in seconds since the epoch.
    pub deleted: u64,
    /// The normalised DN of its organisation, for listings and retention.
    pub org: String,
    /// The entry as it was stored (an encoded [`super::Record`]).
    pub entry: Vec<u8>,
    /// The groups it was a member of: `attribute<TAB>DN`.
    pub groups: Vec<String>,
    /// Its last successful bind (seconds since the epoch), 0 for none.
    pub last_bind: u64,
}

const DELETED_V1: u8 = 1;

impl DeletedRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![DELETED_V1];
        put_varint(&mut out, self.deleted);
        put_bytes(&mut out, self.org.as_bytes());
        put_bytes(&mut out, &self.entry);
        put_varint(&mut out, self.groups.len() as u64);
        for g in &self.groups {
            put_bytes(&mut out, g.as_bytes());
        }
        put_varint(&mut out, self.last_bind);
        out
    }

    pub fn decode(b: &[u8]) -> Result<DeletedRecord> {
        let mut c = Cursor { b };
        if c.byte()? != DELETED_V1 {
            return Err(StoreError::Corrupt("unknown recycle bin record version".into()));
        }
        let deleted = c.varint()?;
        let org = c.string()?;
        let entry = c.bytes()?.to_vec();
        let n = c.varint()?;
        let mut groups = Vec::new();
        for _ in 0..n {
            groups.push(c.string()?);
        }
        Ok(DeletedRecord { deleted, org, entry, groups, last_bind: c.varint()? })
    }
}

impl<'t> WriteTx<'t> {
    fn kept_table(&mut self, kind: Kept) -> &mut redb::Table<'t, &'static [u8], &'static [u8]> {
        match kind {
            Kept::Bin => &mut self.t.bin,
            Kept::LastBind => &mut self.t.last_bind,
            Kept::History => &mut self.t.history,
            Kept::Deletions => &mut self.t.deletions,
            Kept::Replication => &mut self.t.replication,
        }
    }

    pub fn put_kept(&mut self, kind: Kept, key: &[u8], value: &[u8]) -> Result<()> {
        self.kept_table(kind).insert(key, value)?;
        self.log(|| Op::PutKept(kind as u8, key.to_vec(), value.to_vec()));
        Ok(())
    }

    pub fn delete_kept(&mut self, kind: Kept, key: &[u8]) -> Result<()> {
        self.kept_table(kind).remove(key)?;
        self.log(|| Op::DeleteKept(kind as u8, key.to_vec()));
        Ok(())
    }

    pub fn kept(&self, kind: Kept, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let t = match kind {
            Kept::Bin => &self.t.bin,
            Kept::LastBind => &self.t.last_bind,
            Kept::History => &self.t.history,
            Kept::Deletions => &self.t.deletions,
            Kept::Replication => &self.t.replication,
        };
        Ok(t.get(key)?.map(|g| g.value().to_vec()))
    }

    /// Every (key, value) of a kept table, in key order.
    pub fn kept_all(&self, kind: Kept) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = match kind {
            Kept::Bin => &self.t.bin,
            Kept::LastBind => &self.t.last_bind,
            Kept::History => &self.t.history,
            Kept::Deletions => &self.t.deletions,
            Kept::Replication => &self.t.replication,
        };
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

impl ReadTx {
    pub fn kept(&self, kind: Kept, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if kind == Kept::LastBind {
            let t = super::read::opened(&self.last_bind, || Ok(self.txn.open_table(LAST_BIND)?))?;
            return Ok(t.get(key)?.map(|g| g.value().to_vec()));
        }
        let t = self.txn.open_table(kind.def())?;
        Ok(t.get(key)?.map(|g| g.value().to_vec()))
    }

    /// At most `max` (key, value) of a kept table after `key` (exclusive), in key order.
    pub fn kept_after(&self, kind: Kept, key: &[u8], max: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.txn.open_table(kind.def())?;
        let mut out = Vec::new();
        for item in t.range::<&[u8]>((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))?.take(max) {
            let (k, v) = item?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }

    /// How many records a kept table holds.
    pub fn kept_len(&self, kind: Kept) -> Result<u64> {
        use redb::ReadableTableMetadata;
        Ok(self.txn.open_table(kind.def())?.len()?)
    }

    /// The first key of a kept table, if any.
    pub fn kept_first(&self, kind: Kept) -> Result<Option<Vec<u8>>> {
        let t = self.txn.open_table(kind.def())?;
        Ok(t.first()?.map(|(k, _)| k.value().to_vec()))
    }

    /// Every (key, value) of a kept table, in key order.
    pub fn kept_all(&self, kind: Kept) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let t = self.txn.open_table(kind.def())?;
        let mut out = Vec::new();
        for item in t.iter()? {
            let (k, v) = item?;
            out.push((k.value().to_vec(), v.value().to_vec()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_record_round_trips() {
        let d = DeletedRecord {
            deleted: 1_796_000_100,
            org: "o=219400280,ou=organisations,dc=cig,dc=fr".into(),
            entry: vec![1, 2, 3],
            groups: vec!["cn=bip,ou=applications,dc=cig,dc=fr".into()],
            last_bind: 1_796_000_000,
        };
        assert_eq!(DeletedRecord::decode(&d.encode()).ok(), Some(d));
    }
}
