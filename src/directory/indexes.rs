//! Which attributes the store keeps posting lists for, kept in line with the
//! configuration at every start. The store notes each indexed attribute in
//! its meta table (`index.eq.<name>`, `index.sub.<name>`, `index.approx.<name>`): an attribute newly
//! indexed (a configuration change, or one this version always indexes, as
//! `cigExternalId` for SCIM's uniqueness) gets its lists built from the
//! entries before the server serves, and one no longer indexed has them
//! dropped, so that a search never trusts lists that miss entries.

use super::*;
use crate::store::IndexKind;

/// Set once a store's indexed attributes are noted.
const NOTED: &str = "index.noted";

/// Attributes a store noted before this version did not index: a store from
/// before the notes gets their lists built, the others are taken as built.
const INDEXED_SINCE_NOTES: &[&str] = &["cigexternalid"];

fn note(kind: &str, lname: &str) -> String {
    format!("index.{kind}.{lname}")
}

impl Directory {
    /// Build the posting lists of newly indexed attributes and drop those of
    /// attributes no longer indexed, in one durable transaction.
    pub(super) fn maintain_indexes(&self) -> Result<()> {
        let r = self.store.read()?;
        let legacy = r.meta(NOTED)?.is_none() && r.entry_count()? > 0;
        let (mut build_eq, mut build_sub, mut build_approx) =
            (FoldSet::default(), FoldSet::default(), FoldSet::default());
        let mut dropped: Vec<(String, Vec<IndexKind>)> = Vec::new();
        let mut notes: Vec<(String, u64)> = Vec::new();
        for attr in self.schema.attrs() {
            let lname = &attr.lname;
            if lname == UUID_ATTR {
                continue;
            }
            let (eq_wanted, sub_wanted) = (self.eq_indexed.contains(lname), self.sub_indexed.contains(lname));
            let eq_kept = r.meta(&note("eq", lname))?.is_some_and(|v| v == 1)
                || (legacy && eq_wanted && !INDEXED_SINCE_NOTES.contains(&lname.as_str()));
            let sub_kept = r.meta(&note("sub", lname))?.is_some_and(|v| v == 1)
                || (legacy && sub_wanted && !INDEXED_SINCE_NOTES.contains(&lname.as_str()));
            // Approximate lists are newer than the notes: a legacy store has none.
            let approx_wanted = self.approx_indexed.contains(lname);
            let approx_kept = r.meta(&note("approx", lname))?.is_some_and(|v| v == 1);
            if eq_wanted && !eq_kept {
                build_eq.insert(lname.clone());
            }
            if sub_wanted && !sub_kept {
                build_sub.insert(lname.clone());
            }
            // An equality list built or dropped changes which folded values need their own key.
            if approx_wanted && (!approx_kept || eq_wanted != eq_kept) {
                build_approx.insert(lname.clone());
            }
            let mut gone = Vec::new();
            if eq_kept && !eq_wanted {
                gone.push(IndexKind::Equality);
            }
            if sub_kept && !sub_wanted {
                gone.push(IndexKind::Substring);
            }
            if approx_kept && (!approx_wanted || eq_wanted != eq_kept) {
                gone.push(IndexKind::Approx);
            }
            if (eq_kept || sub_kept) && !eq_wanted && !sub_wanted {
                // Presence lists serve either index: they go with the last one.
                gone.push(IndexKind::Presence);
            }
            if !gone.is_empty() {
                dropped.push((lname.clone(), gone));
            }
            if eq_wanted != eq_kept || legacy {
                notes.push((note("eq", lname), u64::from(eq_wanted)));
            }
            if sub_wanted != sub_kept || legacy {
                notes.push((note("sub", lname), u64::from(sub_wanted)));
            }
            if approx_wanted != approx_kept {
                notes.push((note("approx", lname), u64::from(approx_wanted)));
            }
        }
        if r.meta(NOTED)?.is_none() {
            notes.push((NOTED.to_string(), 1));
        }
        if notes.is_empty() {
            return Ok(());
        }
        drop(r);
        for (lname, kinds) in &dropped {
            for &kind in kinds {
                let chunks = self.store.drop_posting_lists(&index_key(kind, lname, b""))?;
                tracing::info!(chunks, "dropped the {kind:?} posting lists of {lname}: no longer indexed");
            }
        }
        let txn = self.store.write_unlogged()?;
        let mut w = txn.tables()?;
        w.bulk();
        if !build_eq.is_empty() || !build_sub.is_empty() || !build_approx.is_empty() {
            let started = std::time::Instant::now();
            let mut entries = 0u64;
            for id in w.all_ids()? {
                let Some(rec) = w.entry(id)? else { continue };
                let keys = self.index_keys_with(&self.to_entry(&rec)?, &build_eq, &build_sub, &build_approx);
                w.index(&keys, id, true)?;
                entries += 1;
            }
            let mut names: Vec<&String> = build_eq.iter().chain(build_sub.iter()).chain(build_approx.iter()).collect();
            names.sort();
            names.dedup();
            tracing::info!(
                entries,
                ms = started.elapsed().as_millis() as u64,
                "built the posting lists of newly indexed attributes: {names:?}"
            );
        }
        for (name, value) in &notes {
            w.set_meta(name, *value)?;
        }
        let staged = w.finish()?;
        txn.commit_durable(staged)?;
        Ok(())
    }
}
