//! Candidates of a limited search (a size limit, or one page of a paged
//! search), read a window at a time in id order: the ids after the last one
//! examined, a few more than are still wanted. Where the index order allows
//! it, a search that returns fifty entries reads some fifty ids, however many
//! the filter matches, and a page deep into a result starts where the last
//! one stopped.

use super::plan::{SMALL_SUBTREE, intersect, subtree_ids};
use super::search::Scope;
use super::*;

/// Up to this many candidates (per id wanted, and at least), what an index
/// or a subtree gives is read whole rather than a window at a time.
const LISTED_PER_WANTED: usize = 8;
const LISTED_AT_LEAST: usize = 1024;

/// Where a limited search's candidates come from, in ascending id order.
pub(super) enum Source {
    /// Read whole when the search started: few of them.
    Listed(Vec<u64>),
    /// The children of an entry (a one-level search).
    Children(u64),
    /// Every entry: nothing in the indexes narrows the filter.
    All,
    /// The union of index lists: exact keys, and key prefixes (`sn=Dup*`).
    Postings { keys: Vec<Vec<u8>>, prefixes: Vec<Vec<u8>> },
}

impl Directory {
    /// The source of a limited search's candidates, `wanted` of which are
    /// asked for first. Every candidate is still checked for scope and
    /// filter: a source is a superset of the scope's matches.
    pub(super) fn limited_source(
        &self,
        r: &impl Reader,
        scope: Scope,
        base_id: u64,
        at_suffix: bool,
        f: &Filter,
        wanted: usize,
    ) -> Result<Source> {
        let listed = wanted.saturating_mul(LISTED_PER_WANTED).max(LISTED_AT_LEAST);
        Ok(match scope {
            Scope::Base => Source::Listed(vec![base_id]),
            // The filter's index when it names few entries, else the children in order.
            Scope::One => match self.plan(r, f, listed)? {
                Some(ids) => Source::Listed(ids),
                None => Source::Children(base_id),
            },
            Scope::Sub | Scope::Children if at_suffix => self.filter_source(r, f, listed)?,
            Scope::Sub | Scope::Children => match subtree_ids(r, base_id, listed)? {
                // One organisation: its subtree, narrowed by an index no longer than it.
                Some(ids) if ids.len() <= SMALL_SUBTREE => Source::Listed(ids),
                Some(ids) => match self.plan(r, f, ids.len())? {
                    Some(narrow) => Source::Listed(intersect(&ids, &narrow)),
                    None => Source::Listed(ids),
                },
                None => self.filter_source(r, f, listed)?,
            },
        })
    }

    /// The candidates of `f` anywhere in the tree: its index lists a window
    /// at a time when they can be read so, else what the indexes give when
    /// that is at most `listed` ids, else every entry.
    fn filter_source(&self, r: &impl Reader, f: &Filter, listed: usize) -> Result<Source> {
        let postings = || {
            let (mut keys, mut prefixes) = (Vec::new(), Vec::new());
            self.windowed_keys(f, &mut keys, &mut prefixes).then_some(Source::Postings { keys, prefixes })
        };
        // A conjunction or a disjunction may narrow to few ids, which one
        // of its lists read a window at a time would not see: planned first.
        if !matches!(f, Filter::And(_) | Filter::Or(_))
            && let Some(source) = postings()
        {
            return Ok(source);
        }
        if let Some(ids) = self.plan(r, f, listed)? {
            return Ok(Source::Listed(ids));
        }
        Ok(postings().unwrap_or(Source::All))
    }

    /// The index keys and key prefixes whose lists together hold every entry
    /// `f` may match, when there are such (false: read otherwise). A
    /// conjunction needs only one conjunct's: the most selective that has them.
    /// An unknown attribute, or a value its rule cannot normalise, matches
    /// nothing (RFC 4511 §4.5.1.7: Undefined): true, with no key added.
    fn windowed_keys(&self, f: &Filter, keys: &mut Vec<Vec<u8>>, prefixes: &mut Vec<Vec<u8>>) -> bool {
        match f {
            Filter::Equality(a, v) => {
                let Some(id) = self.schema.attr_id(a) else { return true };
                let attr = self.schema.attr(id);
                // Resolved through other tables than the postings (see `plan_equality`).
                if matches!(attr.lname.as_str(), "memberof" | "entrydn") || attr.lname == UUID_ATTR {
                    return false;
                }
                // The asserted value is normalised by the asserted type's rule.
                let Ok(n) = self.schema.normalize_eq(attr, v) else { return true };
                for &sub in &attr.with_subtypes {
                    let sattr = self.schema.attr(sub);
                    if !self.eq_indexed.contains(&sattr.lname) {
                        return false;
                    }
                    keys.push(index_key(IndexKind::Equality, &sattr.lname, &n));
                }
                true
            }
            Filter::Present(a) => {
                let Some(id) = self.schema.attr_id(a) else { return true };
                if self.schema.attr(id).lname == "objectclass" {
                    return false;
                }
                for &sub in &self.schema.attr(id).with_subtypes {
                    let lname = &self.schema.attr(sub).lname;
                    if !self.eq_indexed.contains(lname) && !self.sub_indexed.contains(lname) {
                        return false;
                    }
                    keys.push(index_key(IndexKind::Presence, lname, b""));
                }
                true
            }
            Filter::Substrings(a, s) => match self.initial_prefix(a, s) {
                Some(prefix) => {
                    prefixes.push(prefix);
                    true
                }
                None => false,
            },
            Filter::Or(fs) => fs.iter().all(|sub| self.windowed_keys(sub, keys, prefixes)),
            Filter::And(fs) => {
                let mut ordered: Vec<&Filter> = fs.iter().collect();
                ordered.sort_by_key(|sub| self.plan_rank(sub));
                ordered.into_iter().any(|sub| {
                    let (mut k, mut p) = (Vec::new(), Vec::new());
                    let found = self.windowed_keys(sub, &mut k, &mut p);
                    if found {
                        keys.extend(k);
                        prefixes.extend(p);
                    }
                    found
                })
            }
            _ => false,
        }
    }

    /// The `n` smallest candidates of `source` after `after`, ascending, and
    /// whether more follow.
    pub(super) fn window(&self, r: &impl Reader, source: &Source, after: u64, n: usize) -> Result<(Vec<u64>, bool)> {
        Ok(match source {
            Source::Listed(ids) => {
                let rest = &ids[ids.partition_point(|&id| id <= after)..];
                (rest[..rest.len().min(n)].to_vec(), rest.len() > n)
            }
            Source::Children(parent) => r.children_window(*parent, after, n)?,
            Source::All => r.ids_window(after, n)?,
            Source::Postings { keys, prefixes } => {
                let (mut out, mut more) = (Vec::new(), false);
                for key in keys {
                    let (ids, cut) = r.postings_window(key, after, n)?;
                    out.extend(ids);
                    more |= cut;
                }
                for prefix in prefixes {
                    let (ids, cut) = r.postings_with_prefix_window(prefix, after, n)?;
                    out.extend(ids);
                    more |= cut;
                }
                if keys.len() + prefixes.len() > 1 {
                    out.sort_unstable();
                    out.dedup();
                }
                more |= out.len() > n;
                out.truncate(n);
                (out, more)
            }
        })
    }
}
