//! Search (RFC 4511 §4.5) and compare (§4.10): plan with indexes, check scope,
//! evaluate the filter, select attributes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::filter::Tri;
use super::plan::{SMALL_SUBTREE, intersect, subtree_ids};
use super::*;

/// RFC 4511 §4.5.1.2 scopes, plus the subordinate scope of draft-sermersheim-ldap-subordinate-scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Base,
    One,
    Sub,
    /// Everything below the base, the base excluded.
    Children,
}

/// A search as the core sees it.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub base: Dn,
    pub scope: Scope,
    pub filter: Filter,
    /// 0 means no limit.
    pub size_limit: usize,
    pub time_limit: Option<Duration>,
    /// Requested attribute descriptions; empty means all user attributes.
    /// `*`, `+` and `1.1` have their RFC 4511 §4.5.1.8 / RFC 3673 meanings.
    pub attrs: Vec<String>,
    pub types_only: bool,
    /// Set by the front end when the client abandons the search.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl SearchRequest {
    pub fn new(base: Dn, scope: Scope, filter: Filter) -> SearchRequest {
        SearchRequest {
            base,
            scope,
            filter,
            size_limit: 0,
            time_limit: None,
            attrs: Vec::new(),
            types_only: false,
            cancel: None,
        }
    }
}

/// Which attributes go back to the client.
struct Selection {
    all_user: bool,
    all_operational: bool,
    /// Lower-case primary names explicitly asked for (subtypes included).
    named: Vec<String>,
}

impl Selection {
    fn new(schema: &Schema, attrs: &[String]) -> Selection {
        let mut s = Selection { all_user: attrs.is_empty(), all_operational: false, named: Vec::new() };
        for a in attrs {
            match a.as_str() {
                "*" => s.all_user = true,
                "+" => s.all_operational = true,
                "1.1" => {}
                // RFC 4529 §2: every attribute the class allows, its superclasses'
                // included; an unknown class is an unknown attribute: ignored.
                other if other.starts_with('@') => {
                    let Some(cid) = schema.class_id(other.trim_start_matches('@')) else { continue };
                    let class = schema.class(cid);
                    let classes = std::iter::once(class).chain(class.ancestors.iter().map(|&c| schema.class(c)));
                    for c in classes {
                        for &id in c.must.iter().chain(&c.may) {
                            for &sub in &schema.attr(id).with_subtypes {
                                s.named.push(schema.attr(sub).lname.clone());
                            }
                        }
                    }
                }
                other => {
                    if let Some(id) = schema.attr_id(other) {
                        for &sub in &schema.attr(id).with_subtypes {
                            s.named.push(schema.attr(sub).lname.clone());
                        }
                    } else if other.eq_ignore_ascii_case("objectclasses") {
                        s.named.push(other.to_ascii_lowercase());
                    }
                }
            }
        }
        if attrs.len() == 1 && attrs[0] == "1.1" {
            s.all_user = false;
        }
        s
    }

    fn wants(&self, lname: &str, operational: bool) -> bool {
        (if operational { self.all_operational } else { self.all_user }) || self.named.iter().any(|n| n == lname)
    }
}

/// Where one page of a paged search starts, and how many entries it sends.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// The id the previous page ended on (0 for the first page).
    pub after: u64,
    pub size: usize,
}

/// What a page sent, and where the next one starts (`None`: it was the last).
#[derive(Debug, Clone, Copy)]
pub struct PageEnd {
    pub sent: usize,
    pub next: Option<u64>,
}

/// The most candidates a limited search reads in one window.
const MAX_WINDOW: usize = 1 << 16;

/// Where the audit trail is published over LDAP (draft-good-ldap-changelog).
pub const CHANGELOG_NDN: &str = "cn=changelog";

impl Directory {
    /// Whether a search of `base` reads the audit trail's changelog, which
    /// is not paged in the directory's id order.
    pub fn is_changelog(&self, base: &Dn) -> bool {
        self.normalize_dn(base).is_ok_and(|n| dn::is_under(&n, CHANGELOG_NDN))
    }

    /// Run a search; each matching entry, with the selected attributes, goes to
    /// `emit`. Returns the number of entries sent. On a size or time limit the
    /// entries found so far have been sent and the error says which limit.
    pub fn search(&self, who: &Principal, req: &SearchRequest, emit: impl FnMut(Entry) -> Result<()>) -> Result<usize> {
        self.search_bounded(who, req, None, emit).map(|n| n.unwrap_or(0))
    }

    /// Like [`Directory::search`], but gives up (and returns `None`) when it
    /// would examine more than `max_candidates` entries: when the index leaves
    /// more, before sending anything; for a limited search, whose candidates
    /// come a window at a time, as soon as it gets there. The front end then
    /// discards what was sent and runs the search off its reactor thread.
    pub fn search_bounded(
        &self,
        who: &Principal,
        req: &SearchRequest,
        max_candidates: Option<usize>,
        emit: impl FnMut(Entry) -> Result<()>,
    ) -> Result<Option<usize>> {
        Ok(self.run_search(who, req, max_candidates, None, emit)?.map(|end| end.sent))
    }

    /// One page of a search (RFC 2696): at most `page.size` entries after
    /// the one a previous page ended on, in the order of [`Directory::search`].
    /// A page costs what it sends, not what comes before it. A size limit
    /// counts this page's entries.
    pub fn search_page(
        &self,
        who: &Principal,
        req: &SearchRequest,
        page: Page,
        emit: impl FnMut(Entry) -> Result<()>,
    ) -> Result<PageEnd> {
        // Without `max_candidates` the search does not give up.
        Ok(self.run_search(who, req, None, Some(page), emit)?.unwrap_or(PageEnd { sent: 0, next: None }))
    }

    fn run_search(
        &self,
        who: &Principal,
        req: &SearchRequest,
        max_candidates: Option<usize>,
        page: Option<Page>,
        mut emit: impl FnMut(Entry) -> Result<()>,
    ) -> Result<Option<PageEnd>> {
        let started = Instant::now();
        let r = self.store.read()?;
        let base_ndn = self.normalize_dn(&req.base)?;
        if dn::is_under(&base_ndn, CHANGELOG_NDN) {
            let sent = self.search_changelog(who, req, emit)?;
            return Ok(Some(PageEnd { sent, next: None }));
        }
        let access = self.access(who);
        let Some(base_id) = r.id_of_dn(&base_ndn)? else {
            return Err(self.no_such_object_for(&access, &r, &req.base));
        };
        // A base the identity may not see is absent (DESIGN.md): one it may
        // only browse serves as the base of a one-level or subtree search.
        if !access.unrestricted() {
            let right = if req.scope == Scope::Base { access::Rights::READ } else { access::Rights::BROWSE };
            let base_entry =
                self.entry_for_rules(&access, right, &r, base_id)?.ok_or_else(|| self.hidden(&req.base))?;
            let visible = match req.scope {
                Scope::Base => access.readable(&r, &base_ndn, &base_entry)?.is_some(),
                _ => access.browsable(&r, &base_ndn, &base_entry)?,
            };
            if !visible {
                return Err(self.hidden(&req.base));
            }
        }

        // A limited search (a size limit, a page) reads its candidates a
        // window at a time, from the last one examined: the first window
        // holds one more than it may send, the next four times as many.
        let stop_at = page.map(|p| p.size).into_iter().chain((req.size_limit > 0).then_some(req.size_limit)).min();
        let mut after = page.map_or(0, |p| p.after);
        let mut window = stop_at.map_or(usize::MAX, |n| n.saturating_add(1));
        let (source, mut candidates, mut more) = match stop_at {
            Some(_) => {
                let at_suffix = base_ndn == self.suffix_ndn;
                let source = self.limited_source(&r, req.scope, base_id, at_suffix, &req.filter, window)?;
                let (ids, more) = self.window(&r, &source, after, window)?;
                (Some(source), ids, more)
            }
            None => (None, self.candidates(&r, req, base_id, &base_ndn)?, false),
        };

        if max_candidates.is_some_and(|m| candidates.len() > m) {
            return Ok(None);
        }
        let mut wanted_virtual = Vec::new();
        req.filter.attributes(&mut wanted_virtual);
        let selection = Selection::new(&self.schema, &req.attrs);
        let filter_spans_all_attributes = req.filter.has_typeless_extensible();
        // What of each entry is read: what is asked for, what the filter and
        // the policy's rule filters test; everything when that is open-ended.
        let stored_needed = if selection.all_user || selection.all_operational || filter_spans_all_attributes {
            None
        } else {
            let mut names = lnames_with_subtypes(&self.schema, &wanted_virtual);
            names.extend(selection.named.iter().cloned());
            names.extend(self.policy_attrs.iter().cloned());
            Some(names)
        };
        let keep = |stored: &[u8]| {
            stored_needed.as_ref().is_none_or(|names| names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(stored)))
        };
        let mut sent = 0usize;
        let mut examined = 0usize;
        let mut last_sent = 0;
        loop {
            for id in std::mem::take(&mut candidates) {
                after = id;
                examined += 1;
                // A limited search whose windows match little (an unindexed
                // filter under a small size limit) leaves the reactor thread.
                if max_candidates.is_some_and(|m| examined > m) {
                    return Ok(None);
                }
                if examined % 256 == 255 {
                    if req.time_limit.is_some_and(|limit| started.elapsed() > limit) {
                        return Err(DirectoryError::TimeLimitExceeded);
                    }
                    if req.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                        return Err(DirectoryError::Abandoned);
                    }
                }
                let Some(mut rec) = r.entry_keeping(id, &keep)? else { continue };
                let in_scope = match req.scope {
                    Scope::Base => true,
                    Scope::One => rec.parent == base_id,
                    Scope::Sub => dn::is_under(&rec.ndn, &base_ndn),
                    Scope::Children => id != base_id && dn::is_under(&rec.ndn, &base_ndn),
                };
                if !in_scope {
                    continue;
                }
                let mut entry = self.take_entry(&mut rec)?;
                self.add_virtual(&r, id, &rec, &mut entry, &wanted_virtual, &selection)?;
                let Some(mask) = access.readable(&r, &rec.ndn, &entry)? else { continue };
                let matched = if mask.is_everything() {
                    req.filter.evaluate(&self.schema, &entry)
                } else {
                    if filter_spans_all_attributes {
                        // An extensible match without a type tests every attribute: hide them first.
                        self.mask(&mut entry, &mask);
                    }
                    req.filter.evaluate_masked(&self.schema, &entry, &|a| mask.allows(a))
                };
                if matched != Tri::True {
                    continue;
                }
                if stop_at.is_some_and(|n| sent >= n) {
                    // A page is full and another entry follows it; a size limit is exceeded.
                    if page.is_some_and(|p| sent >= p.size) {
                        return Ok(Some(PageEnd { sent, next: Some(last_sent) }));
                    }
                    return Err(DirectoryError::SizeLimitExceeded);
                }
                emit(self.select(entry, &selection, &mask, req.types_only))?;
                sent += 1;
                last_sent = id;
            }
            let Some(source) = source.as_ref().filter(|_| more) else { break };
            window = window.saturating_mul(4).min(MAX_WINDOW);
            (candidates, more) = self.window(&r, source, after, window)?;
        }
        Ok(Some(PageEnd { sent, next: None }))
    }

    /// Every candidate of an unlimited search, ascending.
    fn candidates(&self, r: &impl Reader, req: &SearchRequest, base_id: u64, base_ndn: &str) -> Result<Vec<u64>> {
        Ok(match req.scope {
            Scope::Base => vec![base_id],
            Scope::One => {
                // An index list longer than the children cannot narrow them
                // (objectClass=person while listing one organisation): not read.
                let kids = r.children(base_id)?;
                match self.plan(r, &req.filter, kids.len())? {
                    Some(ids) => intersect(&kids, &ids),
                    None => kids,
                }
            }
            Scope::Sub | Scope::Children if base_ndn == self.suffix_ndn => self.plan_or_scan(r, &req.filter)?,
            Scope::Sub | Scope::Children => match subtree_ids(r, base_id, SMALL_SUBTREE)? {
                // A leaf or a small branch (reading an entry back after a write):
                // its entries are fewer than any index list worth reading.
                Some(ids) => ids,
                None => {
                    // Below a smaller base (one organisation) its subtree may
                    // be far smaller than what the index gives: take the smaller.
                    let planned = self.plan(r, &req.filter, usize::MAX)?;
                    let limit = planned.as_ref().map_or(usize::MAX, Vec::len);
                    match subtree_ids(r, base_id, limit)? {
                        Some(ids) => ids,
                        None => planned.unwrap_or_default(),
                    }
                }
            },
        })
    }

    /// Compare (RFC 4511 §4.10): true, false, or an error (noSuchObject,
    /// undefinedAttributeType, noSuchAttribute when the entry lacks the type).
    pub fn compare(&self, who: &Principal, dn: &Dn, attr: &str, value: &[u8]) -> Result<bool> {
        let (_, at) = self.schema.attr_of(attr)?;
        let Some(rule) = at.equality else {
            return Err(DirectoryError::InappropriateMatching(format!("{} has no equality rule", at.name)));
        };
        let r = self.store.read()?;
        let ndn = self.normalize_dn(dn)?;
        let Some(id) = r.id_of_dn(&ndn)? else {
            return Err(self.no_such_object(&r, dn));
        };
        let Some(rec) = r.entry(id)? else {
            return Err(self.no_such_object(&r, dn));
        };
        let mut entry = self.to_entry(&rec)?;
        let all = Selection { all_user: true, all_operational: true, named: Vec::new() };
        self.add_virtual(&r, id, &rec, &mut entry, &[attr.to_string()], &all)?;
        let access = self.access(who);
        let Some(mask) = access.readable(&r, &ndn, &entry)? else {
            return Err(self.hidden(dn));
        };
        // RFC 4511 §4.10 with access control: comparing needs read access to the type.
        if !mask.allows(&at.lname) {
            return Err(DirectoryError::InsufficientAccess(format!("{} of {dn} cannot be compared", at.name)));
        }
        let asserted = self
            .schema
            .normalize(rule, value)
            .map_err(|e| DirectoryError::InvalidAttributeSyntax(format!("{}: {e}", at.name)))?;
        let mut present = false;
        for &sub in &at.with_subtypes {
            if let Some(a) = entry.get(&self.schema.attr(sub).name) {
                present = true;
                if a.values.iter().any(|v| self.schema.normalize(rule, v).is_ok_and(|n| n == asserted)) {
                    return Ok(true);
                }
            }
        }
        if present { Ok(false) } else { Err(DirectoryError::NoSuchAttribute(format!("{dn} has no {}", at.name))) }
    }

    /// Computed operational attributes (RFC 4512 §3.4, RFC 3045-era names), added
    /// only when the filter or the selection needs them.
    fn add_virtual(
        &self,
        r: &impl Reader,
        id: u64,
        rec: &Record,
        entry: &mut Entry,
        filter_attrs: &[String],
        sel: &Selection,
    ) -> Result<()> {
        // By lower-case name: no allocation per entry and attribute.
        let needed = |lname: &str| sel.wants(lname, true) || filter_attrs.iter().any(|a| a.eq_ignore_ascii_case(lname));
        if needed("entrydn") {
            entry.set("entryDN", vec![rec.dn.clone().into_bytes()]);
        }
        if needed("hassubordinates") {
            let has = r.has_children(id)?;
            entry.set("hasSubordinates", vec![if has { b"TRUE".to_vec() } else { b"FALSE".to_vec() }]);
        }
        if needed("numsubordinates") {
            entry.set("numSubordinates", vec![r.child_count(id)?.to_string().into_bytes()]);
        }
        if needed("pwdlastsuccess")
            && let Some(t) = self.last_bind_value(r, id)?
        {
            entry.set(super::last_bind::ATTR, vec![t]);
        }
        if needed("entrycsn") {
            entry.set("entryCSN", vec![entry_csn(rec, entry).into_bytes()]);
        }
        if needed("contextcsn")
            && rec.ndn == self.suffix_ndn
            && let Some(csn) = r.last_csn()?
        {
            entry.set("contextCSN", vec![csn.to_string().into_bytes()]);
        }
        if needed("subschemasubentry") {
            entry.set("subschemaSubentry", vec![b"cn=Subschema".to_vec()]);
        }
        if needed("memberof") {
            let groups = self.member_of_in(r, &rec.ndn)?;
            entry.set("memberOf", groups.into_iter().map(String::into_bytes).collect());
        }
        Ok(())
    }

    /// The computed attributes a filter tests, for testing it outside a search.
    pub(super) fn add_filter_virtuals(
        &self,
        r: &impl Reader,
        id: u64,
        rec: &Record,
        entry: &mut Entry,
        filter_attrs: &[String],
    ) -> Result<()> {
        let nothing = Selection { all_user: false, all_operational: false, named: Vec::new() };
        self.add_virtual(r, id, rec, entry, filter_attrs, &nothing)
    }

    /// Drop the attributes an identity may not read.
    fn mask(&self, entry: &mut Entry, mask: &access::ReadMask<'_>) {
        entry.attrs.retain(|a| self.schema.attr_id(&a.name).is_some_and(|id| mask.allows(&self.schema.attr(id).lname)));
    }

    /// The entry `id` as the policy's rule filters for `right` test it, or a
    /// bare stand-in when no rule filter applies: a record decode saved for
    /// every search base and every add's parent. `None` when it is gone.
    pub(super) fn entry_for_rules(
        &self,
        access: &Access<'_>,
        right: access::Rights,
        r: &impl Reader,
        id: u64,
    ) -> Result<Option<Entry>> {
        if !access.needs_entry(right) {
            return Ok(Some(Entry::new(Dn::root())));
        }
        r.entry(id)?.map(|rec| self.to_entry(&rec)).transpose()
    }

    /// noSuchObject whose matchedDN is the deepest ancestor the identity may
    /// name as a search base, so that it discloses nothing hidden: the same
    /// whether `dn` exists or not, and whether an ancestor it may not see
    /// exists or not.
    pub(super) fn no_such_object_for(&self, access: &Access<'_>, r: &impl Reader, dn: &Dn) -> DirectoryError {
        if access.unrestricted() || access.principal().is_admin(self) {
            return self.no_such_object(r, dn);
        }
        let mut cur = dn.parent();
        while !cur.is_root() {
            let found = self.normalize_dn(&cur).ok().and_then(|n| {
                let id = r.id_of_dn(&n).ok().flatten()?;
                let rec = r.entry(id).ok().flatten()?;
                let e = self.to_entry(&rec).ok()?;
                Some((access.browsable(r, &n, &e).unwrap_or(false), e.dn))
            });
            match found {
                // The ancestor's DN as stored, as slapd gives it.
                Some((true, stored)) => {
                    return DirectoryError::NoSuchObject { dn: dn.to_string(), matched: stored.to_string() };
                }
                Some((false, _)) | None => cur = cur.parent(),
            }
        }
        self.hidden(dn)
    }

    /// noSuchObject for an entry the identity may not see, with no matchedDN:
    /// the answer is the same whether the entry exists or not.
    pub(super) fn hidden(&self, dn: &Dn) -> DirectoryError {
        DirectoryError::NoSuchObject { dn: dn.to_string(), matched: String::new() }
    }

    fn select(&self, entry: Entry, sel: &Selection, mask: &access::ReadMask<'_>, types_only: bool) -> Entry {
        let mut out = Entry { dn: entry.dn, attrs: Vec::with_capacity(entry.attrs.len()) };
        for mut a in entry.attrs {
            let (lname, operational) = match self.schema.attr_id(&a.name) {
                Some(id) => (self.schema.attr(id).lname.as_str(), self.schema.attr(id).operational),
                None => continue,
            };
            if sel.wants(lname, operational) && mask.allows(lname) {
                if types_only {
                    a.values.clear();
                }
                out.attrs.push(a);
            }
        }
        out
    }
}

/// An entry's `entryCSN`: its record's, or for a record written before CSNs,
/// one made of its `modifyTimestamp` (older than any CSN issued since).
pub(super) fn entry_csn(rec: &Record, entry: &Entry) -> String {
    if let Some(csn) = rec.csn {
        return csn.to_string();
    }
    let stamp = entry.first_str("modifyTimestamp").unwrap_or("19700101000000Z");
    let digits: String = stamp.chars().take_while(char::is_ascii_digit).take(14).collect();
    format!("{digits:0<14}.000000Z#000000#000#000000")
}
