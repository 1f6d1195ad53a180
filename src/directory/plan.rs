//! The search planner: candidate ids for a filter from the indexes (a
//! limited search reads them a window at a time: `window.rs`).

use super::filter::{Substrings, normalize_component};
use super::*;

/// Most candidate ids a prefix scan may collect before the planner gives up on it.
const PREFIX_SCAN_CAP: usize = 200_000;
/// A subtree this small is examined entry by entry, without the indexes.
pub(super) const SMALL_SUBTREE: usize = 16;

impl Directory {
    /// Candidate ids for a filter from indexes, ascending; `None` when the
    /// filter cannot be answered from indexes and a scan is needed. Candidates
    /// are a superset: every one is re-checked against the filter. An index
    /// list longer than `cap` is not read: it is then as if unindexed.
    pub(super) fn plan(&self, r: &impl Reader, f: &Filter, cap: usize) -> Result<Option<Vec<u64>>> {
        Ok(match f {
            Filter::And(fs) => {
                // Most selective first, so that the break below can skip the
                // long lists (objectClass=person holds every agent).
                let mut ordered: Vec<&Filter> = fs.iter().collect();
                ordered.sort_by_key(|sub| self.plan_rank(sub));
                let mut best: Option<Vec<u64>> = None;
                for sub in ordered {
                    // A conjunct is only worth reading if it could narrow what we have.
                    let sub_cap = best.as_ref().map_or(cap, Vec::len);
                    if let Some(ids) = self.plan(r, sub, sub_cap)? {
                        best = Some(match best {
                            None => ids,
                            Some(b) => intersect(&b, &ids),
                        });
                        // Small enough: evaluating the rest on entries is cheaper than more lookups.
                        if best.as_ref().is_some_and(|b| b.len() <= 8) {
                            break;
                        }
                    }
                }
                best
            }
            Filter::Or(fs) => {
                let mut all = Vec::new();
                for sub in fs {
                    match self.plan(r, sub, cap)? {
                        Some(ids) if all.len() + ids.len() <= cap.saturating_mul(2) => all.extend(ids),
                        _ => return Ok(None),
                    }
                }
                all.sort_unstable();
                all.dedup();
                (all.len() <= cap).then_some(all)
            }
            Filter::Equality(a, v) => self.plan_equality(r, a, v, cap)?,
            Filter::Approx(a, v) => self.plan_approx(r, a, v, cap)?,
            Filter::Present(a) => {
                let Some(id) = self.schema.attr_id(a) else {
                    return Ok(Some(Vec::new()));
                };
                if self.schema.attr(id).lname == "objectclass" {
                    return Ok(None);
                }
                self.union_over_subtypes(r, id, cap, |lname| index_key(IndexKind::Presence, lname, b""))?
            }
            Filter::Substrings(a, s) => self.plan_substrings(r, a, s, cap)?,
            _ => None,
        })
    }

    /// How selective a conjunct's index lookup usually is (lower first).
    pub(super) fn plan_rank(&self, f: &Filter) -> u8 {
        match f {
            Filter::Equality(a, _) if a.eq_ignore_ascii_case("objectClass") => 4,
            Filter::Equality(..) => 0,
            Filter::Approx(..) | Filter::Substrings(..) => 1,
            Filter::And(_) | Filter::Or(_) => 2,
            _ => 3,
        }
    }

    /// `~=` on a string attribute: the entries whose folded value is the
    /// asserted one's, from the approximate list (values that fold to
    /// something else than their normalised form) and the equality list
    /// (those that fold to themselves). Other syntaxes match by equality.
    fn plan_approx(&self, r: &impl Reader, a: &str, v: &[u8], cap: usize) -> Result<Option<Vec<u64>>> {
        let Some(id) = self.schema.attr_id(a) else {
            return Ok(Some(Vec::new()));
        };
        let attr = self.schema.attr(id);
        let Some(rule) = attr.equality.filter(|r| schema::approx::folds(*r)) else {
            return self.plan_equality(r, a, v, cap);
        };
        if attr.with_subtypes.len() != 1 || !self.approx_indexed.contains(&attr.lname) {
            return Ok(None);
        }
        let Ok(n) = self.schema.normalize(rule, v) else { return Ok(Some(Vec::new())) };
        let folded = schema::approx::fold(&n);
        if folded.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let Some(mut ids) = r.postings_at_most(&index_key(IndexKind::Approx, &attr.lname, &folded), cap)? else {
            return Ok(None);
        };
        if self.eq_indexed.contains(&attr.lname) {
            let Some(same) = r.postings_at_most(&index_key(IndexKind::Equality, &attr.lname, &folded), cap)? else {
                return Ok(None);
            };
            ids.extend(same);
            ids.sort_unstable();
            ids.dedup();
        }
        Ok((ids.len() <= cap).then_some(ids))
    }

    fn plan_equality(&self, r: &impl Reader, a: &str, v: &[u8], cap: usize) -> Result<Option<Vec<u64>>> {
        let Some(id) = self.schema.attr_id(a) else {
            return Ok(Some(Vec::new()));
        };
        let attr = self.schema.attr(id);
        match attr.lname.as_str() {
            "memberof" => {
                // memberOf=G: the members of G, resolved to ids.
                let Ok(g) = self.schema.normalize_eq(attr, v) else {
                    return Ok(Some(Vec::new()));
                };
                let Ok(gndn) = String::from_utf8(g) else {
                    return Ok(Some(Vec::new()));
                };
                let Some(gid) = r.id_of_dn(&gndn)? else {
                    return Ok(Some(Vec::new()));
                };
                let Some(grec) = r.entry(gid)? else {
                    return Ok(Some(Vec::new()));
                };
                let mut ids = Vec::new();
                for (name, values) in &grec.attrs {
                    if !(name.eq_ignore_ascii_case("member") || name.eq_ignore_ascii_case("uniqueMember")) {
                        continue;
                    }
                    let (_, mattr) = self.schema.attr_of(name)?;
                    for mv in values {
                        let Ok(n) = self.schema.normalize_eq(mattr, mv) else {
                            continue;
                        };
                        if let Some(mid) = std::str::from_utf8(&n).ok().map(|s| r.id_of_dn(s)).transpose()?.flatten() {
                            ids.push(mid);
                        }
                    }
                }
                ids.sort_unstable();
                ids.dedup();
                Ok(Some(ids))
            }
            UUID_ATTR => {
                // The UUID table, not a posting list (format 4).
                let Ok(n) = self.schema.normalize_eq(attr, v) else {
                    return Ok(Some(Vec::new()));
                };
                let uuid = std::str::from_utf8(&n).ok().and_then(|s| uuid::Uuid::try_parse(s).ok());
                let id = uuid.map(|u| r.id_of_uuid(u.as_bytes())).transpose()?.flatten();
                Ok(Some(id.into_iter().collect()))
            }
            "entrydn" => {
                let Ok(n) = self.schema.normalize_eq(attr, v) else {
                    return Ok(Some(Vec::new()));
                };
                let id = std::str::from_utf8(&n).ok().map(|s| r.id_of_dn(s)).transpose()?.flatten();
                Ok(Some(id.into_iter().collect()))
            }
            _ => {
                let mut all = Vec::new();
                for &sub in &attr.with_subtypes {
                    let sattr = self.schema.attr(sub);
                    if !self.eq_indexed.contains(&sattr.lname) {
                        return Ok(None);
                    }
                    // The asserted value is normalised by the asserted type's rule.
                    let Ok(n) = self.schema.normalize_eq(attr, v) else {
                        continue;
                    };
                    let Some(ids) = r.postings_at_most(&index_key(IndexKind::Equality, &sattr.lname, &n), cap)? else {
                        return Ok(None);
                    };
                    all.extend(ids);
                }
                all.sort_unstable();
                all.dedup();
                Ok((all.len() <= cap).then_some(all))
            }
        }
    }

    /// Every candidate: from the indexes, or every entry when they cannot say.
    pub(super) fn plan_or_scan(&self, r: &impl Reader, f: &Filter) -> Result<Vec<u64>> {
        match self.plan(r, f, usize::MAX)? {
            Some(ids) => Ok(ids),
            None => Ok(r.all_ids()?),
        }
    }

    /// The equality keys' prefix that a substring filter's initial component
    /// selects, when the attribute has an equality index of its own.
    pub(super) fn initial_prefix(&self, a: &str, s: &Substrings) -> Option<Vec<u8>> {
        let attr = self.schema.attr(self.schema.attr_id(a)?);
        let rule = attr.substr.or(attr.equality)?;
        if attr.with_subtypes.len() != 1 || !self.eq_indexed.contains(&attr.lname) {
            return None;
        }
        let n = normalize_component(&self.schema, rule, s.initial.as_ref()?)?;
        Some(index_key(IndexKind::Equality, &attr.lname, &n))
    }

    fn plan_substrings(&self, r: &impl Reader, a: &str, s: &Substrings, cap: usize) -> Result<Option<Vec<u64>>> {
        let Some(id) = self.schema.attr_id(a) else {
            return Ok(Some(Vec::new()));
        };
        let attr = self.schema.attr(id);
        if attr.with_subtypes.len() != 1 {
            return Ok(None);
        }
        let Some(rule) = attr.substr.or(attr.equality) else {
            return Ok(None);
        };
        let mut best: Option<Vec<u64>> = None;
        // The initial component: a range scan over the equality keys.
        if let Some(prefix) = self.initial_prefix(a, s) {
            best = r.postings_with_prefix(&prefix, PREFIX_SCAN_CAP.min(cap))?;
        }
        // Any other component of three bytes or more: intersect its trigrams.
        if self.sub_indexed.contains(&attr.lname) {
            let comps =
                s.any.iter().chain(s.final_.iter()).chain(if best.is_none() { s.initial.iter() } else { None.iter() });
            for c in comps {
                let Some(n) = normalize_component(&self.schema, rule, c) else {
                    continue;
                };
                for t in trigrams(&n) {
                    // A trigram list longer than the candidates so far cannot narrow them.
                    let limit = best.as_ref().map_or(cap, Vec::len);
                    let Some(ids) = r.postings_at_most(&index_key(IndexKind::Substring, &attr.lname, t), limit)? else {
                        continue;
                    };
                    best = Some(match best {
                        None => ids,
                        Some(b) => intersect(&b, &ids),
                    });
                }
            }
        }
        Ok(best)
    }

    fn union_over_subtypes(
        &self,
        r: &impl Reader,
        id: schema::AttrId,
        cap: usize,
        key: impl Fn(&str) -> Vec<u8>,
    ) -> Result<Option<Vec<u64>>> {
        let mut all = Vec::new();
        for &sub in &self.schema.attr(id).with_subtypes {
            let lname = &self.schema.attr(sub).lname;
            if !self.eq_indexed.contains(lname) && !self.sub_indexed.contains(lname) {
                return Ok(None);
            }
            let Some(ids) = r.postings_at_most(&key(lname), cap)? else { return Ok(None) };
            all.extend(ids);
        }
        all.sort_unstable();
        all.dedup();
        Ok((all.len() <= cap).then_some(all))
    }
}

/// The ids of `base` and everything below it, ascending; `None` as soon as
/// there are more than `limit`.
pub(super) fn subtree_ids(r: &impl Reader, base: u64, limit: usize) -> Result<Option<Vec<u64>>> {
    let mut out = vec![base];
    let mut stack = vec![base];
    while let Some(id) = stack.pop() {
        let room = limit.saturating_sub(out.len());
        let Some(kids) = r.children_at_most(id, room)? else { return Ok(None) };
        out.extend(&kids);
        stack.extend(kids);
    }
    if out.len() > limit {
        return Ok(None);
    }
    out.sort_unstable();
    Ok(Some(out))
}

/// Intersection of two ascending id lists.
pub(super) fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    small.iter().copied().filter(|x| large.binary_search(x).is_ok()).collect()
}
