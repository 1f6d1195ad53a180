//! `convergences check`: does the store agree with itself? Every derived
//! structure (the DN and UUID indexes, the children links, the attribute
//! indexes memberOf and uniqueness rest on) is recomputed from the entries
//! and compared with what is stored. Run after a crash, a restore, or before
//! trusting a copied store.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::store::{IndexKind, index_key};

/// Problems listed one by one beyond this many are only counted.
const LISTED: usize = 50;

/// What `check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub entries: u64,
    pub posting_lists: u64,
    /// Broken invariants, each in a sentence (the first [`LISTED`]).
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub problem_count: u64,
    /// Things allowed but worth knowing: a member naming no entry, say.
    pub warnings: Vec<String>,
}

impl CheckReport {
    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < LISTED {
            self.problems.push(p);
        }
    }

    fn warning(&mut self, w: String) {
        if self.warnings.len() < LISTED {
            self.warnings.push(w);
        }
    }

    pub fn is_consistent(&self) -> bool {
        self.problem_count == 0
    }
}

/// What an entry says about itself, kept for the cross-checks.
struct Seen {
    ndn: String,
    parent: u64,
    /// The normalised DN of its parent, from its own DN.
    parent_ndn: String,
}

impl Directory {
    /// Recompute every index from the entries of one snapshot and compare.
    pub fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        // A running server keeps recent postings in memory: have them written first.
        let mut r = self.store.read()?;
        if !r.settled() {
            drop(r);
            r = self.store.read_settled()?;
        }
        let mut seen: HashMap<u64, Seen> = HashMap::new();
        let mut by_ndn: HashSet<String> = HashSet::new();
        let mut uuids: HashMap<[u8; 16], u64> = HashMap::new();
        let mut expected: HashMap<Vec<u8>, Vec<u64>> = HashMap::new();
        let mut members: Vec<(String, String)> = Vec::new();
        let mut csns: HashMap<u128, u64> = HashMap::new();
        let last_csn = r.last_csn()?.unwrap_or_default();
        for id in r.all_ids()? {
            report.entries += 1;
            let mut rec = match r.entry(id) {
                Ok(Some(rec)) => rec,
                Ok(None) => continue,
                Err(e) => {
                    report.problem(format!("entry {id} cannot be decoded: {e}"));
                    continue;
                }
            };
            if r.id_of_dn(&rec.ndn)? != Some(id) {
                report.problem(format!("{}: the DN index does not lead to entry {id}", rec.dn));
            }
            if let Some(csn) = rec.csn {
                if csn > last_csn {
                    report.problem(format!("{}: its CSN {csn} is after the last one issued, {last_csn}", rec.dn));
                }
                if let Some(other) = csns.insert(csn.0, id) {
                    report.problem(format!("{}: its CSN {csn} is also entry {other}'s", rec.dn));
                }
            }
            let entry = match self.take_entry(&mut rec) {
                Ok(e) => e,
                Err(e) => {
                    report.problem(format!("entry {id}: its DN '{}' does not parse: {e}", rec.dn));
                    continue;
                }
            };
            match self.normalize_dn(&entry.dn) {
                Ok(n) if n == rec.ndn => {}
                Ok(n) => report.problem(format!("{}: stored as '{}' but normalises to '{n}'", rec.dn, rec.ndn)),
                Err(e) => report.problem(format!("{}: {e}", rec.dn)),
            }
            match entry.first_str("entryUUID").map(uuid::Uuid::try_parse) {
                Some(Ok(u)) => {
                    if let Some(other) = uuids.insert(*u.as_bytes(), id) {
                        report.problem(format!("{}: entryUUID {u} is also entry {other}'s", rec.dn));
                    }
                }
                Some(Err(_)) => report.problem(format!("{}: entryUUID is not a UUID", rec.dn)),
                None => report.problem(format!("{}: has no entryUUID", rec.dn)),
            }
            for key in self.index_keys(&entry) {
                expected.entry(key).or_default().push(id);
            }
            for attr in ["member", "uniqueMember"] {
                for v in entry.get(attr).map(|a| a.values.as_slice()).unwrap_or_default() {
                    if v.is_empty() || v.as_slice() == EMPTY_GROUP_MEMBER.as_bytes() {
                        continue;
                    }
                    let value = String::from_utf8_lossy(v).into_owned();
                    members.push((rec.dn.clone(), value));
                }
            }
            by_ndn.insert(rec.ndn.clone());
            let parent_ndn = self.normalize_dn(&entry.dn.parent()).unwrap_or_default();
            seen.insert(id, Seen { ndn: std::mem::take(&mut rec.ndn), parent: rec.parent, parent_ndn });
        }

        // The tree: each entry under an existing parent, the suffix at the top.
        let mut linked: HashSet<(u64, u64)> = HashSet::new();
        r.for_each_child(|parent, child| {
            linked.insert((parent, child));
        })?;
        for (&id, s) in &seen {
            if s.parent == 0 {
                if s.ndn != self.suffix_ndn {
                    report.problem(format!("{}: has no parent but is not the suffix", s.ndn));
                }
                continue;
            }
            match seen.get(&s.parent) {
                None => report.problem(format!("{}: its parent {} does not exist", s.ndn, s.parent)),
                Some(p) if p.ndn != s.parent_ndn => {
                    report.problem(format!("{}: recorded under {}, which is not its parent", s.ndn, p.ndn))
                }
                Some(_) => {}
            }
            if !linked.contains(&(s.parent, id)) {
                report.problem(format!("{}: missing from its parent's children", s.ndn));
            }
        }
        for &(parent, child) in &linked {
            if seen.get(&child).is_none_or(|c| c.parent != parent) {
                report.problem(format!("children of {parent} list {child}, which is not its child"));
            }
        }

        // The DN and UUID indexes: nothing stale.
        let mut stale = Vec::new();
        r.for_each_dn(|ndn, id| {
            if seen.get(&id).is_none_or(|s| s.ndn != ndn) {
                stale.push(format!("the DN index maps '{ndn}' to entry {id}, which has another DN or none"));
            }
        })?;
        let mut indexed = 0usize;
        r.for_each_csn(|csn, id| {
            indexed += 1;
            if csns.get(&csn.0) != Some(&id) {
                stale.push(format!("the CSN index maps {csn} to entry {id}, whose CSN it is not"));
            }
        })?;
        if indexed != csns.len() {
            stale.push(format!("the CSN index holds {indexed} entries for {} entries with a CSN", csns.len()));
        }
        r.for_each_uuid(|uuid, id| {
            if uuids.get(&uuid) != Some(&id) {
                let u = uuid::Uuid::from_bytes(uuid);
                stale.push(format!("the UUID index maps {u} to entry {id}, which does not have it"));
            }
        })?;
        for (uuid, id) in &uuids {
            if r.id_of_uuid(uuid)? != Some(*id) {
                stale.push(format!(
                    "entryUUID {} of entry {id} is missing from the UUID index",
                    uuid::Uuid::from_bytes(*uuid)
                ));
            }
        }
        stale.into_iter().for_each(|p| report.problem(p));

        // Attribute indexes: every stored list equals the one recomputed; and
        // uid uniqueness, which adds and renames enforce through the index.
        let uid_prefix = index_key(IndexKind::Equality, "uid", b"");
        let mut found = Vec::new();
        let mut malformed = Vec::new();
        let mut lists = 0;
        r.for_each_posting_list(
            |key, ids| {
                lists += 1;
                let want = expected.remove(key).unwrap_or_default();
                if want != ids {
                    found.push(describe_mismatch(key, &want, ids));
                }
                if key.starts_with(&uid_prefix) && ids.len() > 1 {
                    let uid = String::from_utf8_lossy(&key[uid_prefix.len()..]);
                    found.push(format!("uid '{uid}' is held by {} entries: {ids:?}", ids.len()));
                }
            },
            |bad| malformed.push(bad),
        )?;
        report.posting_lists = lists;
        for (key, ids) in expected {
            found.push(describe_mismatch(&key, &ids, &[]));
        }
        malformed.into_iter().chain(found).for_each(|p| report.problem(p));

        // memberOf is read from the member index checked above; a member
        // naming no entry is allowed (an add may name one to come) but shown.
        for (group, member) in members {
            let exists =
                Dn::parse(&member).ok().and_then(|d| self.normalize_dn(&d).ok()).is_some_and(|n| by_ndn.contains(&n));
            if !exists {
                report.warning(format!("{group}: member '{member}' names no entry"));
            }
        }
        Ok(report)
    }
}

fn describe_mismatch(key: &[u8], want: &[u64], have: &[u64]) -> String {
    let kind = match key.first() {
        Some(b'e') => "equality",
        Some(b'p') => "presence",
        Some(b's') => "substring",
        Some(b'a') => "approximate",
        _ => "unknown",
    };
    let name = String::from_utf8_lossy(key.get(1..).unwrap_or_default()).replace('\0', "=");
    // Both lists are ascending.
    let missing: Vec<u64> = want.iter().filter(|i| have.binary_search(i).is_err()).copied().collect();
    let extra: Vec<u64> = have.iter().filter(|i| want.binary_search(i).is_err()).copied().collect();
    format!("{kind} index '{name}': entries {missing:?} missing, {extra:?} listed but without the value")
}
