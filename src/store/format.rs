//! The on-disk format's version, and the upgrades of older stores.

use redb::{ReadableMultimapTable, ReadableTable};

use super::tables::*;
use super::{Result, StoreError};

/// The version of the on-disk layout this build writes and reads. Format 2
/// adds the redo log beside the redb file: a build that ignored it would lose
/// the writes it holds, so format-1 builds must refuse the store. Format 3
/// pads posting chunks with zero ids (see [`postings`]), which a format-2
/// build would read as entry 0. Format 4 keeps no posting lists for
/// entryUUID (the UUID table answers those filters): a format-3 build would
/// find no entry by its entryUUID. Format 5 keeps the tree's links in
/// `child_links`, where an older build would find no children. Format 6
/// stamps records with their CSN (record version 2, which a format-5 build
/// cannot read) and keeps the CSN index and the deletion log; records
/// written before it have no CSN until they change. Older stores
/// are upgraded in place: their links are moved, and the directory drops
/// the posting lists it no longer keeps when it opens the store.
pub(super) const FORMAT_VERSION: u64 = 6;

/// The oldest format this build upgrades (and restores from a backup).
pub(super) const OLDEST_FORMAT: u64 = 1;

/// Check the store's format, writing it into a new store and upgrading an
/// older one in place.
pub(super) fn settle(
    txn: &redb::WriteTransaction,
    meta: &mut redb::Table<'_, &'static str, u64>,
    links: &mut redb::Table<'_, u128, ()>,
) -> Result<()> {
    let found = meta.get("format")?.map(|g| g.value());
    match found {
        Some(FORMAT_VERSION) => {}
        None => {
            meta.insert("format", FORMAT_VERSION)?;
        }
        Some(older) if (OLDEST_FORMAT..FORMAT_VERSION).contains(&older) => {
            tracing::info!("upgrading the store from format {older} to {FORMAT_VERSION}");
            let moved = move_child_links(txn, links)?;
            tracing::info!(links = moved, "moved the tree's links to their format-5 table");
            meta.insert("format", FORMAT_VERSION)?;
        }
        Some(other) => return Err(StoreError::Format { found: other, supported: FORMAT_VERSION }),
    }
    Ok(())
}

/// Formats up to 4 kept the tree's links in a multimap table: move them to
/// [`CHILD_LINKS`] and drop it. How many links moved.
fn move_child_links(txn: &redb::WriteTransaction, links: &mut redb::Table<'_, u128, ()>) -> Result<u64> {
    let mut moved = 0;
    {
        let old = txn.open_multimap_table(CHILDREN)?;
        for item in old.iter()? {
            let (parent, kids) = item?;
            let parent = parent.value();
            for kid in kids {
                links.insert(child_link(parent, kid?.value()), ())?;
                moved += 1;
            }
        }
    }
    txn.delete_multimap_table(CHILDREN)?;
    Ok(moved)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use redb::ReadableDatabase;

    use super::super::tables::*;
    use super::super::{Reader, Store};
    use super::*;

    fn link(store: &Store, parent: u64, child: u64) {
        let txn = store.write().unwrap();
        let mut w = txn.tables().unwrap();
        w.add_child(parent, child).unwrap();
        let staged = w.finish().unwrap();
        txn.commit(staged).unwrap();
    }

    #[test]
    fn a_store_of_format_4_has_its_tree_links_moved_when_opened() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.redb");
        {
            let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
            link(&store, 1, 2);
            store.checkpoint().unwrap();
            // Rewrite it as format 4 kept it: a multimap, no links table.
            let txn = store.db.begin_write().unwrap();
            {
                let mut old = txn.open_multimap_table(CHILDREN).unwrap();
                for (p, c) in [(1, 2), (1, 3), (1, 9), (3, 4)] {
                    old.insert(p, c).unwrap();
                }
                txn.open_table(META).unwrap().insert("format", 4).unwrap();
            }
            txn.delete_table(CHILD_LINKS).unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path, 1 << 20, 1 << 20).unwrap();
        let r = store.read().unwrap();
        assert_eq!(r.children(1).unwrap(), [2, 3, 9]);
        assert_eq!(r.children_at_most(1, 2).unwrap(), None);
        assert_eq!(r.children_at_most(1, 3).unwrap().unwrap(), [2, 3, 9]);
        assert_eq!(r.child_count(1).unwrap(), 3);
        assert!(r.has_children(3).unwrap());
        assert!(!r.has_children(2).unwrap());
        let txn = store.db.begin_read().unwrap();
        assert!(txn.list_multimap_tables().unwrap().next().is_none());
        assert_eq!(txn.open_table(META).unwrap().get("format").unwrap().unwrap().value(), FORMAT_VERSION);
    }
}
