//! Posting lists: for each index key, the ascending ids of the entries that
//! have it, stored in chunks of at most [`CHUNK`] ids.
//!
//! A chunk's table key is the escaped index key, `00 00`, then the chunk's
//! first id (big-endian): chunks of one key are adjacent and ordered, and the
//! escaping (`00` → `00 01`) keeps index keys in byte order, so a prefix scan
//! over values still works. A chunk's value is its ids, 8 bytes each (LE),
//! then zeros (no entry has id 0) up to a power of two of ids: adding an id
//! to a chunk with room is then a same-size replacement, which redb does in
//! place, or by copying the page, instead of rebuilding the B-tree leaf —
//! the bulk of a group commit's cost for keys every new entry shares. A
//! chunk keeps its room when ids are removed, until it is a quarter full.
//!
//! Chunks keep the number of B-tree records low: a key shared by 100k entries
//! (`objectClass=person`) is 800 records, not 100k, and a bulk load writes
//! each chunk once.

use redb::{ReadableTable, Table};

use super::Result;
use super::deferred::merge;

/// Most ids in one chunk (1 KiB of ids): small enough that appending to a
/// key shared by every entry rewrites little, large enough that a list of
/// 100k ids is under a thousand records.
pub const CHUNK: usize = 128;

/// Escape an index key (or a prefix of one) for the postings table.
pub fn escape(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 12);
    // Copied a run at a time: an index key holds one NUL (after the
    // attribute name) and seldom another.
    let mut runs = key.split(|&b| b == 0);
    if let Some(first) = runs.next() {
        out.extend_from_slice(first);
    }
    for run in runs {
        out.extend_from_slice(&[0, 1]);
        out.extend_from_slice(run);
    }
    out
}

fn chunk_key(escaped: &[u8], first: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(escaped.len() + 10);
    k.extend_from_slice(escaped);
    k.extend_from_slice(&[0, 0]);
    k.extend_from_slice(&first.to_be_bytes());
    k
}

fn decode(v: &[u8]) -> impl Iterator<Item = u64> + '_ {
    v.chunks_exact(8)
        .map(|c| {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            u64::from_le_bytes(b)
        })
        .take_while(|&id| id != 0)
}

/// `ids` (at most [`CHUNK`]), padded with zeros to `room` ids.
fn encode(ids: &[u64], room: usize) -> Vec<u8> {
    let mut out = vec![0u8; room.max(ids.len()) * 8];
    for (slot, id) in out.chunks_exact_mut(8).zip(ids) {
        slot.copy_from_slice(&id.to_le_bytes());
    }
    out
}

/// The room (in ids) of a chunk of `n` ids that had `old` ids of room.
fn room_for(n: usize, old: usize) -> usize {
    if n <= old && n > old / 4 { old } else { n.next_power_of_two().min(CHUNK) }
}

/// The table-key range holding every chunk of one index key.
fn bounds(key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut lo = escape(key);
    lo.extend_from_slice(&[0, 0]);
    let mut hi = lo.clone();
    if let Some(last) = hi.last_mut() {
        *last = 1;
    }
    (lo, hi)
}

/// Every id posted under `key`, ascending.
#[cfg(test)]
pub fn read(t: &impl ReadableTable<&'static [u8], &'static [u8]>, key: &[u8]) -> Result<Vec<u64>> {
    Ok(read_at_most(t, key, usize::MAX)?.unwrap_or_default())
}

/// The ids posted under `key`, ascending; `None` as soon as there are more
/// than `cap` (the rest is not read).
pub fn read_at_most(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
    cap: usize,
) -> Result<Option<Vec<u64>>> {
    let (lo, hi) = bounds(key);
    let mut out = Vec::new();
    for item in t.range::<&[u8]>(lo.as_slice()..hi.as_slice())? {
        let (_, v) = item?;
        out.extend(decode(v.value()));
        if out.len() > cap {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// Ids under any key starting with `prefix` (unsorted, may repeat); `None` past `cap`.
pub fn read_prefix(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    cap: usize,
) -> Result<Option<Vec<u64>>> {
    let e = escape(prefix);
    let mut out = Vec::new();
    for item in t.range::<&[u8]>(e.as_slice()..)? {
        let (k, v) = item?;
        if !k.value().starts_with(&e) {
            break;
        }
        out.extend(decode(v.value()));
        if out.len() > cap {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// The ids posted under `key` after `after`, ascending, at most `n` of
/// them, and whether more follow: a window of a long list (a paged search's
/// next page) costs its own ids, not those before it.
pub fn read_window(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
    after: u64,
    n: usize,
) -> Result<(Vec<u64>, bool)> {
    let (_, hi) = bounds(key);
    let start = window_start(t, &escape(key), after)?;
    let mut out = Vec::new();
    for item in t.range::<&[u8]>(start.as_slice()..hi.as_slice())? {
        let (_, v) = item?;
        out.extend(decode(v.value()).filter(|&id| id > after));
        if out.len() > n {
            out.truncate(n);
            return Ok((out, true));
        }
    }
    Ok((out, false))
}

/// Where an (escaped) key's ids after `after` start: the last of its chunks
/// whose first id is at most `after` (it may hold later ids too), else the
/// lowest chunk key it can have.
fn window_start(t: &impl ReadableTable<&'static [u8], &'static [u8]>, escaped: &[u8], after: u64) -> Result<Vec<u8>> {
    let lo = chunk_key(escaped, 0);
    if after == 0 {
        return Ok(lo);
    }
    let upto = chunk_key(escaped, after);
    Ok(match t.range::<&[u8]>(lo.as_slice()..=upto.as_slice())?.next_back() {
        Some(item) => item?.0.value().to_vec(),
        None => lo,
    })
}

/// The ids after `after` under any key starting with `prefix`, each key's
/// list read from its chunk holding `after` up to its `n` next ids and the
/// rest of it skipped (unsorted, may repeat), and whether some list was cut:
/// the caller's `n` smallest of the union are among them, at a cost that
/// follows `n` and the number of keys, not how many entries the prefix matches.
pub fn read_prefix_window(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    after: u64,
    n: usize,
) -> Result<(Vec<u64>, bool)> {
    let e = escape(prefix);
    let mut out = Vec::new();
    let mut cut = false;
    let mut range = t.range::<&[u8]>(e.as_slice()..)?;
    // The key being read, and how many of its ids were taken.
    let (mut current, mut taken) = (Vec::new(), 0usize);
    while let Some(item) = range.next() {
        let (k, v) = item?;
        let Some(key) = escaped_key(k.value()).filter(|key| key.starts_with(&e)) else { break };
        if key != current.as_slice() {
            (current, taken) = (key.to_vec(), 0);
            if after > 0 && first_id(k.value()) < after {
                // Straight to the chunk holding `after`, past those before it.
                let start = window_start(t, &current, after)?;
                if start.as_slice() != k.value() {
                    range = t.range::<&[u8]>(start.as_slice()..)?;
                    continue;
                }
            }
        }
        if taken >= n {
            // Past its other chunks (`00 00` + first id): on to the next key.
            cut = true;
            let mut next = current.clone();
            next.extend_from_slice(&[0, 1]);
            range = t.range::<&[u8]>(next.as_slice()..)?;
            continue;
        }
        let before = out.len();
        out.extend(decode(v.value()).filter(|&id| id > after));
        taken += out.len() - before;
    }
    Ok((out, cut))
}

/// The escaped index key a chunk belongs to: its table key without the
/// `00 00` and first id that [`chunk_key`] appends.
fn escaped_key(chunk: &[u8]) -> Option<&[u8]> {
    let split = chunk.len().checked_sub(10).filter(|&i| chunk[i..i + 2] == [0, 0])?;
    Some(&chunk[..split])
}

/// Remove every posting list whose index key starts with `prefix`; how many
/// chunks went.
pub fn remove_prefix(t: &mut Table<&'static [u8], &'static [u8]>, prefix: &[u8]) -> Result<u64> {
    let e = escape(prefix);
    let mut doomed = Vec::new();
    for item in t.range::<&[u8]>(e.as_slice()..)? {
        let (k, _) = item?;
        if !k.value().starts_with(&e) {
            break;
        }
        doomed.push(k.value().to_vec());
    }
    for k in &doomed {
        t.remove(k.as_slice())?;
    }
    Ok(doomed.len() as u64)
}

/// Every posting list, in key order: `f(index key, ids)` with the ids of all
/// the key's chunks, as stored. For the consistency check, which also needs
/// to know of chunks that are out of order or misfiled (`Err` in `bad`).
pub fn for_each_list(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    mut f: impl FnMut(&[u8], &[u64]),
    mut bad: impl FnMut(String),
) -> Result<()> {
    let mut current: Option<(Vec<u8>, Vec<u64>)> = None;
    for item in t.iter()? {
        let (k, v) = item?;
        let k = k.value();
        let Some(escaped) = escaped_key(k) else {
            bad(format!("posting chunk key {k:02x?} has no chunk suffix"));
            continue;
        };
        let key = unescape(escaped);
        let ids: Vec<u64> = decode(v.value()).collect();
        if v.value().len() % 8 != 0 || ids.is_empty() {
            bad(format!("posting chunk of {} is empty or truncated", String::from_utf8_lossy(&key)));
        }
        if ids.first().is_some_and(|&i| i != first_id(k)) || ids.windows(2).any(|w| w[0] >= w[1]) {
            bad(format!("posting chunk of {} is not ascending from its first id", String::from_utf8_lossy(&key)));
        }
        match &mut current {
            Some((ck, cids)) if *ck == key => {
                if cids.last().zip(ids.first()).is_some_and(|(a, b)| a >= b) {
                    bad(format!("posting chunks of {} overlap", String::from_utf8_lossy(&key)));
                }
                cids.extend(ids);
            }
            _ => {
                if let Some((ck, cids)) = current.take() {
                    f(&ck, &cids);
                }
                current = Some((key, ids));
            }
        }
    }
    if let Some((ck, cids)) = current {
        f(&ck, &cids);
    }
    Ok(())
}

/// The inverse of [`escape`].
fn unescape(escaped: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        out.push(escaped[i]);
        i += if escaped[i] == 0 { 2 } else { 1 };
    }
    out
}

/// A chunk as read: its first id, its ids, the first id of the next chunk,
/// and its room in ids.
type Chunk = (u64, Vec<u64>, Option<u64>, usize);

/// The chunk that should hold `id`: the last one starting at or before it,
/// else the key's first chunk. Returns (its first id, its ids, the first id of
/// the chunk after it).
fn find_chunk(t: &Table<&'static [u8], &'static [u8]>, escaped: &[u8], id: u64) -> Result<Option<Chunk>> {
    let lo = chunk_key(escaped, 0);
    let hi = chunk_key(escaped, u64::MAX);
    // New entries get the highest ids: most often `id` goes in the key's last
    // chunk, found with one lookup.
    if let Some(item) = t.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?.next_back() {
        let (k, v) = item?;
        let first = first_id(k.value());
        if first <= id {
            let v = v.value();
            return Ok(Some((first, decode(v).collect(), None, v.len() / 8)));
        }
    } else {
        return Ok(None);
    }
    let upto = chunk_key(escaped, id);
    let found = match t.range::<&[u8]>(lo.as_slice()..=upto.as_slice())?.next_back() {
        Some(item) => Some(item?),
        None => match t.range::<&[u8]>(lo.as_slice()..=hi.as_slice())?.next() {
            Some(item) => Some(item?),
            None => None,
        },
    };
    let Some((k, v)) = found else { return Ok(None) };
    let first = first_id(k.value());
    let ids: Vec<u64> = decode(v.value()).collect();
    let room = v.value().len() / 8;
    let next = match first.checked_add(1) {
        Some(after) => {
            let after = chunk_key(escaped, after);
            match t.range::<&[u8]>(after.as_slice()..=hi.as_slice())?.next() {
                Some(item) => Some(first_id(item?.0.value())),
                None => None,
            }
        }
        None => None,
    };
    Ok(Some((first, ids, next, room)))
}

fn first_id(chunk_key: &[u8]) -> u64 {
    let mut first = [0u8; 8];
    if let Some(tail) = chunk_key.len().checked_sub(8).and_then(|at| chunk_key.get(at..)) {
        first.copy_from_slice(tail);
    }
    u64::from_be_bytes(first)
}

/// Replace the chunk that started at `old_first`, with `old_room` ids of
/// room, by `ids`, split into chunks of at most [`CHUNK`]. A chunk whose
/// first id is unchanged is overwritten in place (keeping its room) rather
/// than removed and re-inserted.
fn rewrite_chunk(
    t: &mut Table<&'static [u8], &'static [u8]>,
    escaped: &[u8],
    old_first: u64,
    old_room: usize,
    ids: &[u64],
) -> Result<()> {
    if ids.first() != Some(&old_first) {
        t.remove(chunk_key(escaped, old_first).as_slice())?;
    }
    write_chunks(t, escaped, ids, old_room)
}

/// Write `ids` as chunks; the first keeps `room` ids of room when they fit.
fn write_chunks(t: &mut Table<&'static [u8], &'static [u8]>, escaped: &[u8], ids: &[u64], room: usize) -> Result<()> {
    for (i, part) in ids.chunks(CHUNK).enumerate() {
        if let Some(&first) = part.first() {
            let room = room_for(part.len(), if i == 0 { room } else { 0 });
            t.insert(chunk_key(escaped, first).as_slice(), encode(part, room).as_slice())?;
        }
    }
    Ok(())
}

/// Post `id` under `key` (no-op when already there).
pub fn add(t: &mut Table<&'static [u8], &'static [u8]>, key: &[u8], id: u64) -> Result<()> {
    add_many(t, key, &[id])
}

/// Unpost `id` from `key` (no-op when absent).
pub fn remove(t: &mut Table<&'static [u8], &'static [u8]>, key: &[u8], id: u64) -> Result<()> {
    let escaped = escape(key);
    if let Some((first, mut ids, _, room)) = find_chunk(t, &escaped, id)? {
        let Ok(pos) = ids.binary_search(&id) else { return Ok(()) };
        ids.remove(pos);
        rewrite_chunk(t, &escaped, first, room, &ids)?;
    }
    Ok(())
}

/// Merge ascending, deduplicated `ids` into `key`'s list. Each chunk they
/// fall into is read and written once, whatever the number of ids: a group
/// commit of many new entries costs one chunk rewrite per shared key, and a
/// bulk load writes each chunk once.
pub fn add_many(t: &mut Table<&'static [u8], &'static [u8]>, key: &[u8], ids: &[u64]) -> Result<()> {
    let escaped = escape(key);
    let mut rest = ids;
    while let Some(&head) = rest.first() {
        let Some((first, existing, next, room)) = find_chunk(t, &escaped, head)? else {
            return write_chunks(t, &escaped, rest, 0);
        };
        // The ids that belong to this chunk: those before the next chunk's first.
        let take = match next {
            Some(next) => rest.partition_point(|&id| id < next),
            None => rest.len(),
        };
        let (mine, later) = rest.split_at(take.max(1));
        let merged = merge(&existing, mine);
        if merged.len() != existing.len() {
            rewrite_chunk(t, &escaped, first, room, &merged)?;
        }
        rest = later;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::tables::POSTINGS;

    /// Run `f` on the postings table of a fresh store, in one committed transaction.
    fn in_postings_table(f: impl FnOnce(&mut Table<&'static [u8], &'static [u8]>)) {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("t.redb"), 1 << 20, 1 << 20).unwrap();
        let txn = store.write().unwrap();
        f(&mut txn.txn.open_table(POSTINGS).unwrap());
        let staged = txn.tables().unwrap().finish().unwrap();
        txn.commit(staged).unwrap();
    }

    #[test]
    fn escaping_doubles_every_nul_and_keeps_byte_order() {
        let keys: [&[u8]; 7] = [b"", b"\0", b"\0\0", b"eattr\0", b"eattr\0v\0\0w", b"\0lead", b"plain"];
        for key in keys {
            let slow: Vec<u8> = key.iter().flat_map(|&b| if b == 0 { vec![0, 1] } else { vec![b] }).collect();
            assert_eq!(escape(key), slow, "{key:?}");
            assert_eq!(unescape(&escape(key)), key);
        }
        let mut sorted = keys.to_vec();
        sorted.sort();
        let mut by_escaped = keys.to_vec();
        by_escaped.sort_by_key(|k| escape(k));
        assert_eq!(sorted, by_escaped);
        let (lo, hi) = bounds(b"eattr\0v");
        assert_eq!(lo, b"eattr\0\x01v\0\0");
        assert_eq!(hi, b"eattr\0\x01v\0\x01");
    }

    #[test]
    fn chunks_split_merge_and_stay_sorted() {
        in_postings_table(|t| {
            // Interleaved keys, one a prefix of the other and one holding a NUL byte.
            for id in (1..=2000u64).rev() {
                add(t, b"ecn\0ab", id).unwrap();
                if id % 3 == 0 {
                    add(t, b"ecn\0a", id).unwrap();
                    add(t, b"ecn\0a\0b", id).unwrap();
                }
            }
            add(t, b"ecn\0ab", 7).unwrap();
            let all = read(t, b"ecn\0ab").unwrap();
            assert_eq!(all, (1..=2000).collect::<Vec<_>>());
            assert_eq!(read(t, b"ecn\0a").unwrap().len(), 666);
            assert_eq!(read(t, b"ecn\0a\0b").unwrap().len(), 666);
            for id in (1..=2000u64).filter(|i| i % 2 == 0) {
                remove(t, b"ecn\0ab", id).unwrap();
            }
            remove(t, b"ecn\0ab", 99_999).unwrap();
            assert_eq!(read(t, b"ecn\0ab").unwrap(), (1..=2000).filter(|i| i % 2 == 1).collect::<Vec<_>>());
            let mut under_a = read_prefix(t, b"ecn\0a", usize::MAX).unwrap().unwrap();
            under_a.sort_unstable();
            under_a.dedup();
            assert_eq!(under_a.len(), 1000 + 666 - 333);
            add_many(t, b"ecn\0new", &[5, 6, 7]).unwrap();
            add_many(t, b"ecn\0new", &[1, 6, 9]).unwrap();
            assert_eq!(read(t, b"ecn\0new").unwrap(), [1, 5, 6, 7, 9]);
        });
    }

    #[test]
    fn a_window_holds_the_smallest_ids_after_a_point_and_says_whether_more_follow() {
        in_postings_table(|t| {
            // Several chunks per key, a key that prefixes another, gaps.
            let long: Vec<u64> = (1..=700).filter(|i| i % 3 != 0).collect();
            let short: Vec<u64> = (5..=600).step_by(7).collect();
            add_many(t, b"esn\0dup", &long).unwrap();
            add_many(t, b"esn\0dupont", &short).unwrap();
            add_many(t, b"esn\0e", &[1, 2, 3]).unwrap();
            let mut union: Vec<u64> = long.iter().chain(&short).copied().collect();
            union.sort_unstable();
            union.dedup();
            for after in [0, 1, 2, 3, 127, 128, 129, 300, 599, 699, 700, 10_000] {
                for n in [1, 2, 50, 128, 129, 1000] {
                    let expect = |list: &[u64]| {
                        let rest: Vec<u64> = list.iter().copied().filter(|&id| id > after).collect();
                        (rest.iter().copied().take(n).collect::<Vec<_>>(), rest.len() > n)
                    };
                    assert_eq!(read_window(t, b"esn\0dup", after, n).unwrap(), expect(&long), "{after} {n}");
                    let (mut ids, cut) = read_prefix_window(t, b"esn\0dup", after, n).unwrap();
                    ids.sort_unstable();
                    ids.dedup();
                    let (first, more) = expect(&union);
                    assert_eq!(ids[..ids.len().min(n)], first[..], "{after} {n}");
                    assert_eq!(cut || ids.len() > n, more, "{after} {n}");
                }
            }
        });
    }

    #[test]
    fn chunks_have_room_in_powers_of_two_and_keep_it() {
        in_postings_table(|t| {
            let value_len = |t: &Table<&'static [u8], &'static [u8]>, first: u64| {
                t.get(chunk_key(&escape(b"pobjectclass\0"), first).as_slice()).unwrap().unwrap().value().len()
            };
            add(t, b"pobjectclass\0", 1).unwrap();
            assert_eq!(value_len(t, 1), 8, "one id, no padding");
            add_many(t, b"pobjectclass\0", &[2, 3]).unwrap();
            assert_eq!(value_len(t, 1), 4 * 8, "three ids in room for four");
            add(t, b"pobjectclass\0", 4).unwrap();
            assert_eq!(value_len(t, 1), 4 * 8, "the fourth fills the room: same size");
            assert_eq!(read(t, b"pobjectclass\0").unwrap(), [1, 2, 3, 4]);
            add_many(t, b"pobjectclass\0", &(5..=200).collect::<Vec<_>>()).unwrap();
            assert_eq!(value_len(t, 1), CHUNK * 8);
            assert_eq!(value_len(t, 129), 128 * 8, "72 ids: room for 128");
            for id in 129..=180 {
                remove(t, b"pobjectclass\0", id).unwrap();
            }
            assert_eq!(value_len(t, 181), 32 * 8, "under a quarter full, the room shrinks");
            assert_eq!(read(t, b"pobjectclass\0").unwrap(), (1..=128).chain(181..=200).collect::<Vec<_>>());
        });
    }
}
