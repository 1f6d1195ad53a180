//! Every redb table of the store, in one place.

use redb::{MultimapTableDefinition, TableDefinition};

/// entry id → encoded [`super::Record`]
pub const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// normalised DN → entry id
pub const DN2ID: TableDefinition<&str, u64> = TableDefinition::new("dn2id");
/// entryUUID (big-endian u128) → entry id
pub const UUID2ID: TableDefinition<u128, u64> = TableDefinition::new("uuid2id");
/// parent id << 64 | child id → nothing: a parent's children are one key
/// range, and linking a child is one B-tree insert (an integer key: the
/// cheapest comparison redb makes).
pub const CHILD_LINKS: TableDefinition<u128, ()> = TableDefinition::new("child_links");

/// The [`CHILD_LINKS`] key of a link.
pub fn child_link(parent: u64, child: u64) -> u128 {
    (u128::from(parent) << 64) | u128::from(child)
}

/// The (parent, child) of a [`CHILD_LINKS`] key.
pub fn link_ends(key: u128) -> (u64, u64) {
    ((key >> 64) as u64, key as u64)
}
/// parent id → child ids, up to format 4 (moved to [`CHILD_LINKS`] when opened):
/// a multimap insert updates two B-trees, the parent's set and the outer one.
pub const CHILDREN: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("children");
/// escaped index key (see [`super::index_key`]) + chunk start → a chunk of entry ids ([`super::postings`])
pub const POSTINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("postings");
/// sequence → encoded [`super::ChangeRecord`]
pub const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
/// counters and the format version
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// SHA-256 of a SCIM bearer token → encoded [`super::TokenRecord`]
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
/// entryUUID (16 bytes) → encoded [`super::DeletedRecord`]: the recycle bin
pub const BIN: TableDefinition<&[u8], &[u8]> = TableDefinition::new("bin");
/// entry id (big-endian) → its last successful bind, seconds since the epoch (big-endian)
pub const LAST_BIND: TableDefinition<&[u8], &[u8]> = TableDefinition::new("last_bind");
/// entry id (big-endian) → its previous password hashes, newline-separated, oldest first
pub const HISTORY: TableDefinition<&[u8], &[u8]> = TableDefinition::new("password_history");
/// CSN of an entry's last change (see [`super::Csn`]) → entry id: the entries
/// in the order they last changed, for a replica's refresh from its cookie.
/// Derived from the records' headers, in the same transaction.
pub const CSN_INDEX: TableDefinition<u128, u64> = TableDefinition::new("entry_csns");
/// CSN of a deletion (16 bytes, big-endian) → the deleted entry's entryUUID
/// (16 bytes) and normalised DN: the deletion log a replica's refresh reads.
pub const DELETIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("deletions");
/// What this server keeps as a replica: the provider's cookie under `cookie`.
pub const REPLICATION: TableDefinition<&[u8], &[u8]> = TableDefinition::new("replication");
