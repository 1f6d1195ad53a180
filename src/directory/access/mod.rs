//! Access control (DESIGN.md "Roles"): one policy engine in the core, the
//! same for LDAP and SCIM. A front end says who asks (a [`Principal`]); the
//! core decides, per entry and per attribute, from the rules of a [`Policy`]
//! (`schema/policy/*.toml`), which are data, not code.
//!
//! Semantics, the secure reading of DESIGN.md:
//! - rules only grant; nothing granted means refused;
//! - an entry that may not be read is absent: searches skip it, a base or a
//!   write target gets noSuchObject;
//! - an attribute that may not be read is not returned, cannot be compared,
//!   and a filter on it is Undefined (RFC 4511 §4.5.1.7), so never matches;
//! - a write needs the right on the entry and on every attribute it changes,
//!   and on DN values (group members) the place they must come from.

pub mod policy;

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use super::{Directory, Entry, Result, TokenScope, dn};
use crate::directory::DirectoryError;
use crate::directory::filter::Tri;
use crate::directory::schema::MatchingRule;
use crate::store::Reader;
pub use policy::Policy;

/// The rights a rule grants, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    /// See the entry and the rule's attributes, test them in filters, compare.
    pub const READ: Rights = Rights(1);
    /// Use the entry as a search base; discloses its existence only.
    pub const BROWSE: Rights = Rights(2);
    /// Modify the rule's attributes.
    pub const WRITE: Rights = Rights(4);
    pub const ADD: Rights = Rights(8);
    pub const DELETE: Rights = Rights(16);

    pub fn with(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }

    pub fn has(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Who asks, as the core sees it.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The server itself (import, first-start seed, command line): no policy.
    Server,
    Anonymous,
    /// A bound directory entry, with what the policy needs to know about it.
    Entry(Arc<BoundEntry>),
    /// A SCIM bearer token.
    Token(Arc<TokenPrincipal>),
}

#[derive(Debug)]
pub struct BoundEntry {
    pub dn: String,
    pub ndn: String,
    /// Read from the directory when a check first needs them: a connection
    /// that only binds (the login of a legacy application) never does.
    roles: OnceLock<Roles>,
}

/// What the policy needs to know about a bound entry.
#[derive(Debug, Default)]
pub struct Roles {
    /// Normalised DNs of the groups it is a direct member of.
    pub groups: HashSet<String>,
    /// A CIG administrator (DESIGN.md: cn=admin, cn=administrateurs, the `admins` setting).
    pub admin: bool,
}

impl BoundEntry {
    pub fn new(dn: String, ndn: String) -> BoundEntry {
        BoundEntry { dn, ndn, roles: OnceLock::new() }
    }

    pub fn roles(&self, dir: &Directory) -> &Roles {
        self.roles.get_or_init(|| match dir.roles_of(&self.ndn) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(dn = %self.dn, "could not read the groups of a bound entry: {e}");
                Roles { groups: HashSet::new(), admin: dir.is_named_admin(&self.ndn) }
            }
        })
    }
}

#[derive(Debug)]
pub struct TokenPrincipal {
    pub scope: TokenScope,
    /// The normalised DN of the token's organisation.
    pub org_ndn: Option<String>,
}

impl Principal {
    /// The name recorded in creatorsName / modifiersName and the audit trail.
    pub fn name(&self) -> String {
        match self {
            Principal::Server | Principal::Anonymous => String::new(),
            Principal::Entry(e) => e.dn.clone(),
            Principal::Token(t) => match &t.scope {
                TokenScope::Cig => "cn=scim,cn=cig".into(),
                TokenScope::Organisation(dn) => format!("cn=scim,{dn}"),
            },
        }
    }

    pub fn is_admin(&self, dir: &Directory) -> bool {
        match self {
            Principal::Server => true,
            Principal::Entry(e) => e.roles(dir).admin,
            Principal::Token(t) => t.scope == TokenScope::Cig,
            Principal::Anonymous => false,
        }
    }

    fn entry_ndn(&self) -> Option<&str> {
        match self {
            Principal::Entry(e) => Some(&e.ndn),
            _ => None,
        }
    }
}

#[derive(Debug)]
pub(crate) enum Who {
    Anonymous,
    Authenticated,
    Admin,
    Own,
    Member(String),
    /// A member of `<rdn>,<the organisation>`.
    OrgMember(String),
    Under(String),
    CigToken,
    OrgToken,
}

#[derive(Debug)]
pub(crate) enum Place {
    Any,
    Own,
    OutsideOrg,
    Absolute(String),
    /// Relative to the organisation: `<head>,<org>` (the org itself when empty).
    Org(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach {
    Base,
    Children,
    Subtree,
    /// The place and every entry above it.
    Ancestors,
}

#[derive(Debug)]
pub(crate) struct Attrs {
    all: bool,
    names: Vec<String>,
    except: Vec<String>,
}

impl Attrs {
    fn allows(&self, lname: &str) -> bool {
        (self.all || self.names.iter().any(|n| n == lname)) && !self.except.iter().any(|n| n == lname)
    }
}

#[derive(Debug)]
pub(crate) struct Rule {
    #[allow(dead_code)]
    description: String,
    who: Vec<Who>,
    target: Place,
    scope: Reach,
    filter: Option<super::Filter>,
    attrs: Attrs,
    rights: Rights,
    /// Organisation-relative terms refer to each DN value's organisation
    /// (application grants), not the target's.
    org_from_value: bool,
    /// DN values written must lie below this place.
    values: Option<Place>,
    /// The organisation's attribute that must list the target's RDN value.
    subscribed: Option<String>,
}

/// Which attributes of a readable entry an identity may see.
pub struct ReadMask<'a> {
    all: bool,
    /// The usual case, one rule, without allocating.
    first: Option<&'a Attrs>,
    more: Vec<&'a Attrs>,
}

impl ReadMask<'_> {
    const EVERYTHING: ReadMask<'static> = ReadMask { all: true, first: None, more: Vec::new() };

    /// `lname` is a lower-case primary attribute name.
    pub fn allows(&self, lname: &str) -> bool {
        self.all || self.first.is_some_and(|a| a.allows(lname)) || self.more.iter().any(|a| a.allows(lname))
    }

    pub fn is_everything(&self) -> bool {
        self.all
    }
}

/// The policy applied to one principal for one operation.
pub struct Access<'a> {
    dir: &'a Directory,
    principal: &'a Principal,
    rules: Vec<&'a Rule>,
    /// Organisation lookups may use the shared cache (a read snapshot, not a write transaction).
    cached: bool,
}

/// The organisation of the entry a rule is evaluated for (a slice of its DN), found once.
#[derive(Default)]
struct OrgOf<'n> {
    found: Option<Option<&'n str>>,
}

impl Directory {
    /// The access rules for `principal`, ready to check entries of one operation.
    pub fn access<'a>(&'a self, principal: &'a Principal) -> Access<'a> {
        let rules = match principal {
            Principal::Server => Vec::new(),
            _ => self.policy.rules.iter().filter(|r| r.who.iter().any(|w| may_apply(self, w, principal))).collect(),
        };
        Access { dir: self, principal, rules, cached: true }
    }

    /// The organisation entry `dn` belongs to (see [`Directory::organisation_of`]).
    pub fn organisation(&self, dn: &super::Dn) -> Result<Option<Entry>> {
        let r = self.store.read()?;
        match self.organisation_id(&r, &self.normalize_dn(dn)?)? {
            Some(id) => r.entry(id)?.map(|mut rec| self.take_entry(&mut rec)).transpose(),
            None => Ok(None),
        }
    }

    /// The id of the organisation entry `ndn` belongs to.
    fn organisation_id(&self, r: &impl Reader, ndn: &str) -> Result<Option<u64>> {
        match self.organisation_of(r, ndn, true)? {
            Some(org) => Ok(r.id_of_dn(org)?),
            None => Ok(None),
        }
    }

    /// The SIREN of the organisation the entry named `ndn` (normalised)
    /// belongs to (its `cigSiren`, else its `o`), read in place: rendering a
    /// SCIM user needs nothing else of it.
    pub fn organisation_siren(&self, ndn: &str) -> Result<Option<String>> {
        // Taken before the snapshot: a SIREN read from a snapshot older than
        // the last change to organisations is not remembered.
        let epoch = self.sirens.epoch();
        let r = self.store.read()?;
        let Some(org) = self.organisation_of(&r, ndn, true)? else { return Ok(None) };
        if let Some(siren) = self.sirens.get(org) {
            return Ok(Some(siren));
        }
        let Some(id) = r.id_of_dn(org)? else { return Ok(None) };
        let found = r.entry_view(id, |view| {
            let (mut siren, mut o) = (None, None);
            view.for_each_attr(|name, values| {
                let slot = if name.eq_ignore_ascii_case(b"cigSiren") {
                    &mut siren
                } else if name.eq_ignore_ascii_case(b"o") {
                    &mut o
                } else {
                    return;
                };
                if let Some(Ok(v)) = values.next() {
                    *slot = std::str::from_utf8(v).ok().map(str::to_string);
                }
            })?;
            Ok(siren.or(o))
        })?;
        let found = found.flatten();
        if let Some(siren) = &found {
            self.sirens.remember(epoch, org, siren);
        }
        Ok(found)
    }

    /// The organisation an entry belongs to: the nearest entry, at or above it,
    /// that has an `ou=agents` child (issue 4's contract: the DIT is not fixed).
    pub(crate) fn organisation_of<'n>(&self, r: &impl Reader, ndn: &'n str, cached: bool) -> Result<Option<&'n str>> {
        // Most entries are agents: their organisation shows in their name.
        for anc in ancestors(ndn) {
            if let Some(org) = anc.strip_prefix("ou=agents,") {
                return Ok(Some(org));
            }
        }
        for anc in ancestors(ndn) {
            if anc.len() < self.suffix_ndn.len() {
                break;
            }
            if self.is_organisation(r, anc, cached)? {
                return Ok(Some(anc));
            }
        }
        Ok(None)
    }

    /// Whether the entry of this normalised DN is an organisation (has an `ou=agents` child).
    pub(crate) fn is_organisation_ndn(&self, r: &impl Reader, ndn: &str) -> bool {
        self.is_organisation(r, ndn, true).unwrap_or(false)
    }

    fn is_organisation(&self, r: &impl Reader, ndn: &str, cached: bool) -> Result<bool> {
        if cached
            && let Ok(c) = self.org_cache.read()
            && let Some(&known) = c.get(ndn)
        {
            return Ok(known);
        }
        let yes = r.id_of_dn(&format!("ou=agents,{ndn}"))?.is_some();
        if cached && let Ok(mut c) = self.org_cache.write() {
            // Bounded: entries that are no organisation (particuliers …) are many.
            if c.len() > 65_536 {
                c.clear();
            }
            c.insert(ndn.to_string(), yes);
        }
        Ok(yes)
    }

    /// Forget cached organisations after a write that may add, remove or move one.
    pub(crate) fn forget_organisations(&self) {
        if let Ok(mut c) = self.org_cache.write() {
            c.clear();
        }
        self.sirens.forget();
    }
}

/// Organisations' SIRENs by ndn, read for every SCIM user rendered, until
/// the next write that may touch an organisation. A SIREN read from a
/// snapshot taken before such a write is not put back (`epoch`).
#[derive(Default)]
pub(crate) struct SirenCache {
    known: std::sync::RwLock<(u64, std::collections::HashMap<String, String>)>,
}

/// Most SIRENs remembered: every organisation of a large centre fits.
const MAX_CACHED_SIRENS: usize = 16_384;

impl SirenCache {
    fn epoch(&self) -> u64 {
        self.known.read().map(|k| k.0).unwrap_or(u64::MAX)
    }

    fn get(&self, org_ndn: &str) -> Option<String> {
        self.known.read().ok()?.1.get(org_ndn).cloned()
    }

    fn remember(&self, epoch: u64, org_ndn: &str, siren: &str) {
        if let Ok(mut k) = self.known.write()
            && k.0 == epoch
        {
            if k.1.len() >= MAX_CACHED_SIRENS {
                k.1.clear();
            }
            k.1.insert(org_ndn.to_string(), siren.to_string());
        }
    }

    fn forget(&self) {
        if let Ok(mut k) = self.known.write() {
            k.0 = k.0.wrapping_add(1);
            k.1.clear();
        }
    }
}

/// A normalised DN and each of its ancestors, nearest first.
fn ancestors(ndn: &str) -> impl Iterator<Item = &str> {
    let b = ndn.as_bytes();
    let mut next = if ndn.is_empty() { None } else { Some(0usize) };
    std::iter::from_fn(move || {
        let start = next?;
        let mut escaped = false;
        next = None;
        for (i, &c) in b.iter().enumerate().skip(start) {
            match c {
                b'\\' if !escaped => escaped = true,
                b',' if !escaped => {
                    next = Some(i + 1).filter(|&n| n < b.len());
                    break;
                }
                _ => escaped = false,
            }
        }
        Some(&ndn[start..])
    })
}

/// Whether `w` could hold for `p` on some entry (a first cut per operation).
fn may_apply(dir: &Directory, w: &Who, p: &Principal) -> bool {
    match (w, p) {
        (Who::Anonymous, Principal::Anonymous) => true,
        (Who::Authenticated, Principal::Entry(_) | Principal::Token(_)) => true,
        (Who::Admin, _) => p.is_admin(dir) && !matches!(p, Principal::Token(_)),
        (Who::Own, Principal::Entry(_)) => true,
        (Who::Member(g), Principal::Entry(e)) => e.roles(dir).groups.contains(g),
        (Who::OrgMember(rdn), Principal::Entry(e)) => e
            .roles(dir)
            .groups
            .iter()
            .any(|g| g.len() > rdn.len() && g.starts_with(rdn.as_str()) && g.as_bytes()[rdn.len()] == b','),
        (Who::Under(base), Principal::Entry(e)) => dn::is_under(&e.ndn, base),
        (Who::CigToken, Principal::Token(t)) => t.scope == TokenScope::Cig,
        (Who::OrgToken, Principal::Token(t)) => t.org_ndn.is_some(),
        _ => false,
    }
}

/// Whether `s` is exactly `head,tail` (both normalised DNs).
fn is_joined(s: &str, head: &str, tail: &str) -> bool {
    s.len() == head.len() + 1 + tail.len()
        && s.starts_with(head)
        && s.ends_with(tail)
        && s.as_bytes()[head.len()] == b','
}

/// [`reaches`] with the base `head,tail`, without building it.
fn reaches_joined(reach: Reach, ndn: &str, head: &str, tail: &str) -> bool {
    let base_len = head.len() + 1 + tail.len();
    match reach {
        Reach::Ancestors => {
            // The base is under ndn: ndn is `tail` or above, or a `…,tail` that `head` ends with.
            dn::is_under(tail, ndn) || (ndn.len() > tail.len() && dn::is_under(&format!("{head},{tail}"), ndn))
        }
        _ => {
            if ndn.len() < base_len || !dn::is_under(ndn, tail) {
                return false;
            }
            // The part of ndn above `tail` must end with `head` at an RDN boundary.
            let above = &ndn[..ndn.len() - tail.len() - 1];
            let ok = above.ends_with(head) && (above.len() == head.len() || dn::is_under(above, head));
            ok && match reach {
                Reach::Base => ndn.len() == base_len,
                Reach::Children => ndn.len() > base_len,
                _ => true,
            }
        }
    }
}

fn reaches(reach: Reach, ndn: &str, base: &str) -> bool {
    match reach {
        Reach::Base => ndn == base,
        Reach::Subtree => dn::is_under(ndn, base),
        Reach::Children => ndn != base && dn::is_under(ndn, base),
        Reach::Ancestors => dn::is_under(base, ndn),
    }
}

impl<'a> Access<'a> {
    /// For checks made inside a write transaction: no shared cache.
    pub(crate) fn uncached(mut self) -> Self {
        self.cached = false;
        self
    }

    pub fn principal(&self) -> &Principal {
        self.principal
    }

    /// Whether a rule that may grant `right` looks at the entry's content (a
    /// filter): if none does, checks of that right need only the DN.
    pub fn needs_entry(&self, right: Rights) -> bool {
        self.rules.iter().any(|r| r.filter.is_some() && r.rights.has(right))
    }

    /// The server itself: every check passes.
    pub fn unrestricted(&self) -> bool {
        matches!(self.principal, Principal::Server)
    }

    fn org<'n>(&self, r: &impl Reader, ndn: &'n str, memo: &mut OrgOf<'n>) -> Result<Option<&'n str>> {
        if memo.found.is_none() {
            memo.found = Some(self.dir.organisation_of(r, ndn, self.cached)?);
        }
        Ok(memo.found.flatten())
    }

    fn place_holds(&self, place: &Place, reach: Reach, ndn: &str, org: Option<&str>) -> bool {
        match place {
            Place::Any => true,
            Place::OutsideOrg => org.is_none(),
            Place::Own => self.principal.entry_ndn().is_some_and(|own| reaches(reach, ndn, own)),
            Place::Absolute(base) => reaches(reach, ndn, base),
            Place::Org(head) => match org {
                Some(o) if head.is_empty() => reaches(reach, ndn, o),
                Some(o) => reaches_joined(reach, ndn, head, o),
                None => false,
            },
        }
    }

    fn who_holds(&self, w: &Who, ndn: &str, org: Option<&str>) -> bool {
        let p = self.principal;
        match w {
            Who::Own => p.entry_ndn() == Some(ndn),
            // On an entry outside every organisation (an application group),
            // "of the organisation" means "of some organisation".
            Who::OrgMember(rdn) => match (p, org) {
                (Principal::Entry(e), Some(o)) => {
                    e.roles(self.dir).groups.iter().any(|g| is_joined(g, rdn, o) && g.len() == rdn.len() + 1 + o.len())
                }
                (Principal::Entry(_), None) => may_apply(self.dir, w, p),
                _ => false,
            },
            Who::OrgToken => match (p, org) {
                (Principal::Token(t), Some(o)) => t.org_ndn.as_deref() == Some(o),
                (Principal::Token(t), None) => t.org_ndn.is_some(),
                _ => false,
            },
            other => may_apply(self.dir, other, p),
        }
    }

    fn needs_org(rule: &Rule) -> bool {
        matches!(rule.target, Place::Org(_) | Place::OutsideOrg)
            || rule.values.as_ref().is_some_and(|v| matches!(v, Place::Org(_)))
            || rule.who.iter().any(|w| matches!(w, Who::OrgMember(_) | Who::OrgToken))
    }

    /// Whether `rule` grants `right` on the entry `ndn` (who, place, filter).
    fn grants<'n>(
        &self,
        r: &impl Reader,
        rule: &Rule,
        right: Rights,
        ndn: &'n str,
        entry: Option<&Entry>,
        memo: &mut OrgOf<'n>,
    ) -> Result<bool> {
        if !rule.rights.has(right) {
            return Ok(false);
        }
        let org = if Self::needs_org(rule) { self.org(r, ndn, memo)? } else { None };
        if !self.place_holds(&rule.target, rule.scope, ndn, org) {
            return Ok(false);
        }
        // With `org = "value"`, who is checked per value (see `values_allowed`).
        if !rule.org_from_value && !rule.who.iter().any(|w| self.who_holds(w, ndn, org)) {
            return Ok(false);
        }
        if let Some(f) = &rule.filter {
            match entry {
                Some(e) if f.evaluate(&self.dir.schema, e) == Tri::True => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// What of the entry `ndn` may be read: `None` when the entry is invisible.
    pub fn readable(&self, r: &impl Reader, ndn: &str, entry: &Entry) -> Result<Option<ReadMask<'a>>> {
        if self.unrestricted() {
            return Ok(Some(ReadMask::EVERYTHING));
        }
        let mut memo = OrgOf::default();
        let mut mask = ReadMask { all: false, first: None, more: Vec::new() };
        for &rule in &self.rules {
            if self.grants(r, rule, Rights::READ, ndn, Some(entry), &mut memo)? {
                if rule.attrs.all && rule.attrs.except.is_empty() {
                    return Ok(Some(ReadMask::EVERYTHING));
                }
                if mask.first.is_none() {
                    mask.first = Some(&rule.attrs);
                } else {
                    mask.more.push(&rule.attrs);
                }
            }
        }
        Ok(mask.first.is_some().then_some(mask))
    }

    /// Whether the entry may be named as a search base (read or browse).
    pub fn browsable(&self, r: &impl Reader, ndn: &str, entry: &Entry) -> Result<bool> {
        if self.unrestricted() {
            return Ok(true);
        }
        let mut memo = OrgOf::default();
        for &rule in &self.rules {
            if self.grants(r, rule, Rights::BROWSE, ndn, Some(entry), &mut memo)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn denied(&self, what: String) -> DirectoryError {
        let who = match self.principal {
            Principal::Anonymous => "an anonymous client".to_string(),
            p => p.name(),
        };
        DirectoryError::InsufficientAccess(format!("{who} may not {what} (access policy '{}')", self.dir.policy.name))
    }

    /// A new entry at `ndn` (its attributes as they will be stored).
    pub fn check_add(&self, r: &impl Reader, ndn: &str, entry: &Entry) -> Result<()> {
        if self.unrestricted() {
            return Ok(());
        }
        let mut memo = OrgOf::default();
        for &rule in &self.rules {
            if !self.grants(r, rule, Rights::ADD, ndn, Some(entry), &mut memo)? {
                continue;
            }
            let mut ok = true;
            for a in &entry.attrs {
                let Some(id) = self.dir.schema.attr_id(&a.name) else { continue };
                let at = self.dir.schema.attr(id);
                if at.no_user_modification || super::write::is_stored_operational(&at.name) {
                    continue;
                }
                let org = memo.found.flatten();
                if !rule.attrs.allows(&at.lname)
                    || !self.values_allowed(r, rule, ndn, is_dn_valued(at), &a.values, org)?
                {
                    ok = false;
                    break;
                }
            }
            if ok {
                return Ok(());
            }
        }
        Err(self.denied(format!("add {}", entry.dn)))
    }

    pub fn check_delete(&self, r: &impl Reader, ndn: &str, entry: &Entry) -> Result<()> {
        if self.unrestricted() {
            return Ok(());
        }
        let mut memo = OrgOf::default();
        for &rule in &self.rules {
            if self.grants(r, rule, Rights::DELETE, ndn, Some(entry), &mut memo)? {
                return Ok(());
            }
        }
        Err(self.denied(format!("delete {}", entry.dn)))
    }

    /// A modify of `old` into `new`, which changed the attributes `touched`.
    pub fn check_modify(&self, r: &impl Reader, ndn: &str, old: &Entry, new: &Entry, touched: &[String]) -> Result<()> {
        if self.unrestricted() {
            return Ok(());
        }
        let mut memo = OrgOf::default();
        'attrs: for name in touched {
            let Some(id) = self.dir.schema.attr_id(name) else { continue };
            let at = self.dir.schema.attr(id);
            let changed = changed_values(old, new, &at.name);
            for &rule in &self.rules {
                if !rule.attrs.allows(&at.lname) || !self.grants(r, rule, Rights::WRITE, ndn, Some(old), &mut memo)? {
                    continue;
                }
                let org = memo.found.flatten();
                if self.values_allowed(r, rule, ndn, is_dn_valued(at), &changed, org)? {
                    continue 'attrs;
                }
            }
            return Err(self.denied(format!("change {} of {}", at.name, old.dn)));
        }
        Ok(())
    }

    /// The value rules of `rule` for DN values written to an attribute of `ndn`.
    fn values_allowed(
        &self,
        r: &impl Reader,
        rule: &Rule,
        ndn: &str,
        dn_valued: bool,
        values: &[Vec<u8>],
        target_org: Option<&str>,
    ) -> Result<bool> {
        if !rule.org_from_value && (rule.values.is_none() || !dn_valued) && rule.subscribed.is_none() {
            return Ok(true);
        }
        if !dn_valued {
            return Ok(!rule.org_from_value);
        }
        for v in values {
            if v.as_slice() == super::EMPTY_GROUP_MEMBER.as_bytes() {
                continue;
            }
            let Some(vndn) = std::str::from_utf8(v)
                .ok()
                .and_then(|s| super::Dn::parse(s).ok())
                .and_then(|d| self.dir.schema.normalize_dn(&d).ok())
            else {
                return Ok(false);
            };
            let org = if rule.org_from_value {
                let value_org = self.dir.organisation_of(r, &vndn, self.cached)?;
                if !rule.who.iter().any(|w| self.who_holds(w, ndn, value_org)) {
                    return Ok(false);
                }
                value_org
            } else {
                target_org
            };
            if let Some(place) = &rule.values
                && !self.place_holds(place, Reach::Children, &vndn, org)
            {
                return Ok(false);
            }
            if let Some(attr) = &rule.subscribed {
                let Some(o) = org else { return Ok(false) };
                if !self.org_lists(r, o, attr, ndn)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Whether the organisation `org` lists, in `attr`, the RDN value of `target`
    /// (`cigApplication: bip` for `cn=bip,ou=applications`).
    fn org_lists(&self, r: &impl Reader, org: &str, attr: &str, target: &str) -> Result<bool> {
        let Some(rdn_value) = ancestors(target).next().and_then(|rdn| rdn.split_once('=')).map(|(_, v)| v) else {
            return Ok(false);
        };
        let Some(id) = r.id_of_dn(org)? else { return Ok(false) };
        let Some(rec) = r.entry(id)? else { return Ok(false) };
        let rdn_value = rdn_value.split(',').next().unwrap_or_default();
        Ok(rec
            .attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(attr))
            .flat_map(|(_, vs)| vs)
            .any(|v| std::str::from_utf8(v).is_ok_and(|s| s.trim().eq_ignore_ascii_case(rdn_value))))
    }
}

fn is_dn_valued(at: &super::schema::Attr) -> bool {
    matches!(at.equality, Some(MatchingRule::DistinguishedName | MatchingRule::UniqueMember))
}

/// Values added or removed between two versions of an attribute.
fn changed_values(old: &Entry, new: &Entry, name: &str) -> Vec<Vec<u8>> {
    let before: &[Vec<u8>] = old.get(name).map(|a| a.values.as_slice()).unwrap_or_default();
    let after: &[Vec<u8>] = new.get(name).map(|a| a.values.as_slice()).unwrap_or_default();
    let mut out: Vec<Vec<u8>> = after.iter().filter(|v| !before.contains(v)).cloned().collect();
    out.extend(before.iter().filter(|v| !after.contains(v)).cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::{Reach, ancestors, reaches, reaches_joined};

    #[test]
    fn ancestors_are_listed_nearest_first_and_escaped_commas_are_kept() {
        let got: Vec<&str> = ancestors("cn=a\\,b,ou=x,dc=fr").collect();
        assert_eq!(got, vec!["cn=a\\,b,ou=x,dc=fr", "ou=x,dc=fr", "dc=fr"]);
    }

    #[test]
    fn an_organisation_relative_place_matches_as_if_its_dn_were_built() {
        let (head, org) = ("ou=agents", "o=1,ou=orgs,dc=fr");
        let dns = [
            "uid=a,ou=agents,o=1,ou=orgs,dc=fr",
            "ou=agents,o=1,ou=orgs,dc=fr",
            "o=1,ou=orgs,dc=fr",
            "dc=fr",
            "uid=a,ou=agents,o=2,ou=orgs,dc=fr",
            "uid=a,xou=agents,o=1,ou=orgs,dc=fr",
            "uid=a\\,ou=agents,o=1,ou=orgs,dc=fr",
            "cn=g,ou=groupes,o=1,ou=orgs,dc=fr",
        ];
        for reach in [Reach::Base, Reach::Children, Reach::Subtree, Reach::Ancestors] {
            for dn in dns {
                let built = format!("{head},{org}");
                assert_eq!(reaches_joined(reach, dn, head, org), reaches(reach, dn, &built), "{reach:?} {dn}");
            }
        }
    }
}
