//! Every redb table of the store, in one place.

use redb::{MultimapTableDefinition, TableDefinition};

/// entry id → encoded [`super::Record`]
pub const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");
/// normalised DN → entry id
pub const DN2ID: TableDefinition<&str, u64> = TableDefinition::new("dn2id");
/// entryUUID (big-endian u128) → entry id
pub const UUID2ID: TableDefinition<u128, u64> = TableDefinition::new("uuid2id");
/// parent id → child ids
pub const CHILDREN: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("children");
/// escaped index key (see [`super::index_key`]) + chunk start → a chunk of entry ids ([`super::postings`])
pub const POSTINGS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("postings");
/// sequence → encoded [`super::ChangeRecord`]
pub const CHANGELOG: TableDefinition<u64, &[u8]> = TableDefinition::new("changelog");
/// counters and the format version
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// SHA-256 of a SCIM bearer token → encoded [`super::TokenRecord`]
pub const TOKENS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tokens");
