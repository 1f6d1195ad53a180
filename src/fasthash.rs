//! A fast keyed hash for the maps on hot paths: index keys on the write
//! path, attribute and class names everywhere. std's SipHash-1-3 cost about
//! a hundred instructions per index key, and a group commit of creations
//! hashes a few hundred keys per entry.
//!
//! Eight bytes at a time, each step a folded multiply (the 128-bit product's
//! halves xor-ed, as foldhash and aHash's fallback do) of the state with the
//! next word; the state starts from a per-process random seed. Index keys
//! come from client data: the seed keeps collisions from being precomputed,
//! and the multiply mixes every bit of a word into the next step. It is not
//! a cryptographic MAC: a client that managed to flood a map with colliding
//! keys would slow the writes sharing it, never change what they do.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// A `HashMap` keyed with [`FoldState`].
pub type FoldMap<K, V> = std::collections::HashMap<K, V, FoldState>;
/// A `HashSet` keyed with [`FoldState`].
pub type FoldSet<K> = std::collections::HashSet<K, FoldState>;

/// An odd constant with well-spread bits (the fractional part of pi).
const SPREAD: u64 = 0x243f_6a88_85a3_08d3;

fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// The process's seed, drawn once from std's random keys.
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1)
}

/// Builds [`FoldHasher`]s from the process's seed.
#[derive(Clone, Copy)]
pub struct FoldState {
    seed: u64,
}

impl Default for FoldState {
    fn default() -> Self {
        FoldState { seed: seed() }
    }
}

impl BuildHasher for FoldState {
    type Hasher = FoldHasher;

    fn build_hasher(&self) -> FoldHasher {
        FoldHasher { state: self.seed }
    }
}

pub struct FoldHasher {
    state: u64,
}

impl FoldHasher {
    fn mix(&mut self, word: u64) {
        self.state = fold(self.state ^ word, SPREAD);
    }
}

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            self.mix(u64::from_le_bytes(b));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0".
            self.mix(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 60));
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    fn finish(&self) -> u64 {
        // A last fold so that the low bits, which pick the bucket, depend on
        // every bit of the last word.
        fold(self.state, SPREAD ^ self.state.rotate_left(29))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_equal_and_near_keys_spread() {
        let s = FoldState::default();
        assert_eq!(s.hash_one(b"ecn\0agent charge 1".as_slice()), s.hash_one(b"ecn\0agent charge 1".as_slice()));
        // Keys differing in one byte, anywhere, land in different low bits.
        let mut low = std::collections::HashSet::new();
        for i in 0..1000u32 {
            low.insert(s.hash_one(format!("euid\0agent-{i}").as_bytes()) & 0xffff);
        }
        assert!(low.len() > 980, "{} distinct of 1000", low.len());
        assert_ne!(s.hash_one(b"ab".as_slice()), s.hash_one(b"ab\0".as_slice()));
        let mut m: FoldMap<Vec<u8>, u32> = FoldMap::default();
        m.insert(b"x".to_vec(), 1);
        assert_eq!(m.get(b"x".as_slice()), Some(&1));
    }
}
