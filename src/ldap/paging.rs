//! Paged results (RFC 2696) and Server Side Sort (RFC 2891): an unsorted
//! paged search is read a page at a time, each page starting after the entry
//! the last one ended on; a sorted one gathers its DNs once (sorted), then
//! serves them page by page, each entry re-read and re-checked when its page
//! is sent.

use std::collections::VecDeque;

use crate::directory::schema::MatchingRule;
use crate::directory::{Dn, Entry, Schema};

/// A paged search in progress on one connection.
pub struct Cursor {
    /// What the cookie was issued for: a later page must repeat the same search (RFC 2696 §3).
    pub fingerprint: String,
    pub position: Position,
}

/// Where a paged search's next page starts.
pub enum Position {
    /// In the directory's order: after the entry of this id.
    After(u64),
    /// In a sorted result set gathered whole: its DNs, and the next to send.
    Listed { dns: Vec<Dn>, next: usize },
}

/// The connection's open cursors, oldest first, bounded.
pub struct Cursors {
    max: usize,
    open: VecDeque<(Vec<u8>, Cursor)>,
    counter: u64,
}

impl Cursors {
    pub fn new(max: usize) -> Cursors {
        Cursors { max: max.max(1), open: VecDeque::new(), counter: 0 }
    }

    /// Keep a cursor; returns its cookie. The oldest goes when the bound is reached.
    pub fn insert(&mut self, cursor: Cursor) -> Vec<u8> {
        self.counter += 1;
        let cookie = self.counter.to_be_bytes().to_vec();
        if self.open.len() >= self.max {
            self.open.pop_front();
        }
        self.open.push_back((cookie.clone(), cursor));
        cookie
    }

    pub fn take(&mut self, cookie: &[u8]) -> Option<Cursor> {
        let i = self.open.iter().position(|(c, _)| c == cookie)?;
        self.open.remove(i).map(|(_, c)| c)
    }
}

/// One sort key of RFC 2891.
pub struct SortKey {
    pub attr: String,
    pub rule: Option<MatchingRule>,
    pub reverse: bool,
}

/// Sort entries by the keys. Per RFC 2891 §2.2 an entry without the attribute
/// sorts after all others, and a multi-valued attribute sorts by its least
/// (or, reversed, greatest) value.
pub fn sort(schema: &Schema, entries: &mut [Entry], keys: &[SortKey]) {
    let sort_values: Vec<Vec<Option<Vec<u8>>>> = entries
        .iter()
        .map(|e| {
            keys.iter()
                .map(|k| {
                    let attr = schema.attr(schema.attr_id(&k.attr)?);
                    let rule = k.rule.or(attr.ordering).or(attr.equality).unwrap_or(MatchingRule::OctetString);
                    let values = e.get(&attr.name)?.values.iter().filter_map(|v| schema.normalize(rule, v).ok());
                    if k.reverse {
                        values.max_by(|a, b| rule.compare(a, b))
                    } else {
                        values.min_by(|a, b| rule.compare(a, b))
                    }
                })
                .collect()
        })
        .collect();
    let mut order: Vec<usize> = (0..entries.len()).collect();
    order.sort_by(|&a, &b| {
        for (i, k) in keys.iter().enumerate() {
            let rule = schema
                .attr_id(&k.attr)
                .map(|id| schema.attr(id))
                .and_then(|attr| k.rule.or(attr.ordering).or(attr.equality))
                .unwrap_or(MatchingRule::OctetString);
            let ord = match (&sort_values[a][i], &sort_values[b][i]) {
                (Some(x), Some(y)) => {
                    let o = rule.compare(x, y);
                    if k.reverse { o.reverse() } else { o }
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if ord.is_ne() {
                return ord;
            }
        }
        std::cmp::Ordering::Equal
    });
    let sorted: Vec<Entry> = order.iter().map(|&i| std::mem::take(&mut entries[i])).collect();
    for (slot, e) in entries.iter_mut().zip(sorted) {
        *slot = e;
    }
}
