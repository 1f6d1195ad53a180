//! Persistence on redb. No schema checks, no access control, no protocol
//! types: the store keeps records, the DN and children maps, index postings
//! and the changelog, and answers primitive lookups. Which keys an entry has in
//! which index is decided by the directory core; the store only writes them, in
//! the same transaction as the entry, so they can never disagree.

mod codec;
mod postings;
mod tables;

use std::collections::HashMap;
use std::path::Path;

pub use codec::{ChangeRecord, Record, TokenRecord};
use redb::{ReadableDatabase, ReadableMultimapTable, ReadableTable, ReadableTableMetadata};
use tables::*;

/// Everything that can go wrong below the directory core.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Redb(#[from] redb::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("store format {found} is not supported (this build reads format {supported})")]
    Format { found: u64, supported: u64 },
}

macro_rules! redb_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Redb(e.into()) }
        }
    )*};
}
redb_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The version of the on-disk layout this build writes and reads.
const FORMAT_VERSION: u64 = 1;

/// Which posting list an index key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKind {
    /// attribute = normalised value
    Equality,
    /// attribute present
    Presence,
    /// attribute value contains a trigram
    Substring,
}

/// Build the key of an index posting: kind, attribute, value.
pub fn index_key(kind: IndexKind, attr: &str, value: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(attr.len() + value.len() + 2);
    k.push(match kind {
        IndexKind::Equality => b'e',
        IndexKind::Presence => b'p',
        IndexKind::Substring => b's',
    });
    k.extend_from_slice(attr.as_bytes());
    k.push(0);
    k.extend_from_slice(value);
    k
}

/// The database handle. Cheap to share behind an `Arc`.
pub struct Store {
    db: redb::Database,
}

impl Store {
    /// Open or create the store file, with redb's page cache set to `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Redb(redb::Error::Io(e)))?;
        }
        let db = redb::Database::builder().set_cache_size(cache_bytes).create(path)?;
        let store = Store { db };
        let w = store.db.begin_write()?;
        {
            let mut meta = w.open_table(META)?;
            let found = meta.get("format")?.map(|g| g.value());
            match found {
                None => {
                    meta.insert("format", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(other) => {
                    return Err(StoreError::Format { found: other, supported: FORMAT_VERSION });
                }
            }
            w.open_table(ENTRIES)?;
            w.open_table(DN2ID)?;
            w.open_table(UUID2ID)?;
            w.open_table(CHANGELOG)?;
            w.open_table(TOKENS)?;
            w.open_multimap_table(CHILDREN)?;
            w.open_table(POSTINGS)?;
        }
        w.commit()?;
        Ok(store)
    }

    /// A consistent snapshot for one operation. Keep it short and never hold it
    /// across an `.await`.
    pub fn read(&self) -> Result<ReadTx> {
        Ok(ReadTx { txn: self.db.begin_read()? })
    }

    /// A write transaction; nothing is visible until [`WriteTx::commit`], which
    /// returns only once the data is durable.
    pub fn write(&self) -> Result<WriteTx> {
        Ok(WriteTx { txn: self.db.begin_write()?, bulk: None })
    }
}

/// Lookups shared by read and write transactions.
pub trait Reader {
    fn entry(&self, id: u64) -> Result<Option<Record>>;
    /// Just the DN of an entry, without decoding its attributes.
    fn entry_dn(&self, id: u64) -> Result<Option<String>>;
    fn id_of_dn(&self, ndn: &str) -> Result<Option<u64>>;
    fn id_of_uuid(&self, uuid: &[u8; 16]) -> Result<Option<u64>>;
    /// Children ids in ascending order.
    fn children(&self, id: u64) -> Result<Vec<u64>>;
    fn has_children(&self, id: u64) -> Result<bool>;
    fn child_count(&self, id: u64) -> Result<u64>;
    /// Ids posted under exactly this key, ascending.
    fn postings(&self, key: &[u8]) -> Result<Vec<u64>>;
    /// Ids posted under any key starting with `prefix`, ascending and deduplicated;
    /// `None` when more than `cap` postings were seen (the caller then scans).
    fn postings_with_prefix(&self, prefix: &[u8], cap: usize) -> Result<Option<Vec<u64>>>;
    /// Every entry id, ascending.
    fn all_ids(&self) -> Result<Vec<u64>>;
    fn entry_count(&self) -> Result<u64>;
    fn changes_since(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>>;
    /// The token stored under this secret's hash.
    fn token(&self, hash: &[u8]) -> Result<Option<TokenRecord>>;
    /// Every token (hash, record).
    fn tokens(&self) -> Result<Vec<(Vec<u8>, TokenRecord)>>;
}

/// A read snapshot.
pub struct ReadTx {
    txn: redb::ReadTransaction,
}

/// A write transaction.
pub struct WriteTx {
    txn: redb::WriteTransaction,
    /// Bulk-load mode: postings added here are kept in memory, merged into
    /// lookups, and written chunk by chunk at commit (see [`WriteTx::bulk`]).
    bulk: Option<HashMap<Vec<u8>, Vec<u64>>>,
}

impl ReadTx {
    fn overlay(&self, _key: &[u8]) -> &[u64] {
        &[]
    }

    fn overlay_prefix(&self, _prefix: &[u8]) -> Vec<u64> {
        Vec::new()
    }
}

macro_rules! impl_reader {
    ($t:ty) => {
        impl Reader for $t {
            fn entry(&self, id: u64) -> Result<Option<Record>> {
                let t = self.txn.open_table(ENTRIES)?;
                match t.get(id)? {
                    Some(g) => Ok(Some(Record::decode(g.value())?)),
                    None => Ok(None),
                }
            }

            fn entry_dn(&self, id: u64) -> Result<Option<String>> {
                let t = self.txn.open_table(ENTRIES)?;
                match t.get(id)? {
                    Some(g) => Ok(Some(Record::decode_dn(g.value())?)),
                    None => Ok(None),
                }
            }

            fn id_of_dn(&self, ndn: &str) -> Result<Option<u64>> {
                let t = self.txn.open_table(DN2ID)?;
                Ok(t.get(ndn)?.map(|g| g.value()))
            }

            fn id_of_uuid(&self, uuid: &[u8; 16]) -> Result<Option<u64>> {
                let t = self.txn.open_table(UUID2ID)?;
                Ok(t.get(u128::from_be_bytes(*uuid))?.map(|g| g.value()))
            }

            fn children(&self, id: u64) -> Result<Vec<u64>> {
                let t = self.txn.open_multimap_table(CHILDREN)?;
                let mut out = Vec::new();
                for v in t.get(id)? {
                    out.push(v?.value());
                }
                Ok(out)
            }

            fn has_children(&self, id: u64) -> Result<bool> {
                let t = self.txn.open_multimap_table(CHILDREN)?;
                Ok(t.get(id)?.next().is_some())
            }

            fn child_count(&self, id: u64) -> Result<u64> {
                let t = self.txn.open_multimap_table(CHILDREN)?;
                Ok(t.get(id)?.len())
            }

            fn postings(&self, key: &[u8]) -> Result<Vec<u64>> {
                let t = self.txn.open_table(POSTINGS)?;
                let mut out = postings::read(&t, key)?;
                let extra = self.overlay(key);
                if !extra.is_empty() {
                    out.extend_from_slice(extra);
                    out.sort_unstable();
                    out.dedup();
                }
                Ok(out)
            }

            fn postings_with_prefix(&self, prefix: &[u8], cap: usize) -> Result<Option<Vec<u64>>> {
                let t = self.txn.open_table(POSTINGS)?;
                let Some(mut out) = postings::read_prefix(&t, prefix, cap)? else {
                    return Ok(None);
                };
                out.extend(self.overlay_prefix(prefix));
                if out.len() > cap {
                    return Ok(None);
                }
                out.sort_unstable();
                out.dedup();
                Ok(Some(out))
            }

            fn all_ids(&self) -> Result<Vec<u64>> {
                let t = self.txn.open_table(ENTRIES)?;
                let mut out = Vec::with_capacity(t.len()? as usize);
                for item in t.iter()? {
                    out.push(item?.0.value());
                }
                Ok(out)
            }

            fn entry_count(&self) -> Result<u64> {
                Ok(self.txn.open_table(ENTRIES)?.len()?)
            }

            fn token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
                let t = self.txn.open_table(TOKENS)?;
                match t.get(hash)? {
                    Some(g) => Ok(Some(TokenRecord::decode(g.value())?)),
                    None => Ok(None),
                }
            }

            fn tokens(&self) -> Result<Vec<(Vec<u8>, TokenRecord)>> {
                let t = self.txn.open_table(TOKENS)?;
                let mut out = Vec::new();
                for item in t.iter()? {
                    let (k, v) = item?;
                    out.push((k.value().to_vec(), TokenRecord::decode(v.value())?));
                }
                Ok(out)
            }

            fn changes_since(&self, seq: u64, max: usize) -> Result<Vec<(u64, ChangeRecord)>> {
                let t = self.txn.open_table(CHANGELOG)?;
                let mut out = Vec::new();
                for item in t.range(seq..)?.take(max) {
                    let (k, v) = item?;
                    out.push((k.value(), ChangeRecord::decode(v.value())?));
                }
                Ok(out)
            }
        }
    };
}
impl_reader!(ReadTx);
impl_reader!(WriteTx);

impl WriteTx {
    /// Allocate the next entry id.
    pub fn next_id(&mut self) -> Result<u64> {
        self.next_counter("next_id")
    }

    fn next_counter(&mut self, name: &str) -> Result<u64> {
        let mut meta = self.txn.open_table(META)?;
        let id = meta.get(name)?.map(|g| g.value()).unwrap_or(1);
        meta.insert(name, id + 1)?;
        Ok(id)
    }

    pub fn put_entry(&mut self, id: u64, rec: &Record) -> Result<()> {
        self.txn.open_table(ENTRIES)?.insert(id, rec.encode().as_slice())?;
        Ok(())
    }

    pub fn delete_entry(&mut self, id: u64) -> Result<()> {
        self.txn.open_table(ENTRIES)?.remove(id)?;
        Ok(())
    }

    pub fn put_dn(&mut self, ndn: &str, id: u64) -> Result<()> {
        self.txn.open_table(DN2ID)?.insert(ndn, id)?;
        Ok(())
    }

    pub fn delete_dn(&mut self, ndn: &str) -> Result<()> {
        self.txn.open_table(DN2ID)?.remove(ndn)?;
        Ok(())
    }

    pub fn put_uuid(&mut self, uuid: &[u8; 16], id: u64) -> Result<()> {
        self.txn.open_table(UUID2ID)?.insert(u128::from_be_bytes(*uuid), id)?;
        Ok(())
    }

    pub fn delete_uuid(&mut self, uuid: &[u8; 16]) -> Result<()> {
        self.txn.open_table(UUID2ID)?.remove(u128::from_be_bytes(*uuid))?;
        Ok(())
    }

    pub fn add_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.txn.open_multimap_table(CHILDREN)?.insert(parent, child)?;
        Ok(())
    }

    pub fn remove_child(&mut self, parent: u64, child: u64) -> Result<()> {
        self.txn.open_multimap_table(CHILDREN)?.remove(parent, child)?;
        Ok(())
    }

    /// Post (or unpost) an id under each key.
    pub fn index(&mut self, keys: &[Vec<u8>], id: u64, add: bool) -> Result<()> {
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
        } else if self.bulk.is_some() {
            // Removals are rare in a bulk load (change records): write what is pending first.
            self.flush_bulk()?;
        }
        let mut t = self.txn.open_table(POSTINGS)?;
        for k in keys {
            if add {
                postings::add(&mut t, k, id)?;
            } else {
                postings::remove(&mut t, k, id)?;
            }
        }
        Ok(())
    }

    /// Enter bulk-load mode: index postings are gathered in memory and written
    /// once per chunk at commit, instead of one B-tree update per id. For
    /// imports; lookups in this transaction still see the pending postings.
    pub fn bulk(&mut self) {
        if self.bulk.is_none() {
            self.bulk = Some(HashMap::new());
        }
    }

    fn flush_bulk(&mut self) -> Result<()> {
        let Some(pending) = self.bulk.take() else { return Ok(()) };
        // Write in key order: neighbouring B-tree pages, fewer page splits.
        let mut pending: Vec<(Vec<u8>, Vec<u64>)> = pending.into_iter().collect();
        pending.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut t = self.txn.open_table(POSTINGS)?;
        for (key, mut ids) in pending {
            ids.sort_unstable();
            ids.dedup();
            postings::add_many(&mut t, &key, &ids)?;
        }
        drop(t);
        self.bulk = Some(HashMap::new());
        Ok(())
    }

    fn overlay(&self, key: &[u8]) -> &[u64] {
        self.bulk.as_ref().and_then(|b| b.get(key)).map(Vec::as_slice).unwrap_or(&[])
    }

    fn overlay_prefix(&self, prefix: &[u8]) -> Vec<u64> {
        let Some(b) = self.bulk.as_ref() else { return Vec::new() };
        b.iter().filter(|(k, _)| k.starts_with(prefix)).flat_map(|(_, v)| v.iter().copied()).collect()
    }

    pub fn put_token(&mut self, hash: &[u8], rec: &TokenRecord) -> Result<()> {
        self.txn.open_table(TOKENS)?.insert(hash, rec.encode().as_slice())?;
        Ok(())
    }

    pub fn delete_token(&mut self, hash: &[u8]) -> Result<()> {
        self.txn.open_table(TOKENS)?.remove(hash)?;
        Ok(())
    }

    /// Append to the changelog; returns the sequence number.
    pub fn log_change(&mut self, change: &ChangeRecord) -> Result<u64> {
        let seq = self.next_counter("next_change")?;
        self.txn.open_table(CHANGELOG)?.insert(seq, change.encode().as_slice())?;
        Ok(seq)
    }

    /// Make the transaction durable (redb `Durability::Immediate`: fsync before return).
    pub fn commit(mut self) -> Result<()> {
        self.flush_bulk()?;
        self.txn.commit()?;
        Ok(())
    }

    /// Throw the transaction away.
    pub fn abort(self) -> Result<()> {
        self.txn.abort()?;
        Ok(())
    }
}
