//! The protocol-neutral directory core: the only place with directory rules.
//! Front ends (`ldap`, later `scim`) call [`Directory`]; it validates against
//! the schema, maintains operational attributes, indexes, memberOf and
//! referential integrity, and talks to the store. It never sees an LDAP
//! message or an HTTP request.

pub mod access;
pub mod audit;
pub mod auth;
pub mod check;
mod commit;
pub mod dn;
pub mod entry;
pub mod error;
pub mod filter;
mod import;
mod indexes;
pub mod last_bind;
pub mod lifecycle;
mod lookup;
pub mod organisation;
pub mod password;
pub mod personal_data;
mod plan;
pub mod ppolicy;
pub mod recycle;
mod rename;
pub mod replica;
pub mod request;
pub mod schema;
mod search;
pub mod sync;
pub mod tokens;
mod unique;
mod window;
pub mod write;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::fasthash::FoldSet;

pub use access::{Access, BoundEntry, Policy, Principal, TokenPrincipal};
pub use audit::AuditQuery;
pub use auth::{Account, PasswordPolicy};
pub use check::CheckReport;
pub use dn::{Dn, Rdn};
pub use entry::{Attribute, Entry, ModOp, Modification};
pub use error::{DirectoryError, Result};
pub use filter::Filter;
pub use request::{Condition, Guard, Write, Written};
pub use schema::Schema;
pub use search::{Page, PageEnd, Scope, SearchRequest};
pub use tokens::{TokenGrant, TokenInfo, TokenScope};
pub use write::{AddMode, Change, EMPTY_GROUP_MEMBER, keep_placeholder_member};

use crate::store::{IndexKind, Reader, Record, Store, index_key};

/// What the core needs from the configuration.
#[derive(Debug, Clone)]
pub struct DirectorySettings {
    /// The naming context, e.g. `dc=cig,dc=fr`.
    pub suffix: Dn,
    /// Attributes with equality and presence indexes.
    pub indexed: Vec<String>,
    /// Attributes with a substring (trigram) index as well.
    pub substring_indexed: Vec<String>,
    /// Attributes with an approximate (`~=`) index: folded values.
    pub approx_indexed: Vec<String>,
    /// DNs of CIG administrators besides `cn=admin` and `cn=administrateurs,ou=admins`.
    pub admins: Vec<Dn>,
    /// A shipped access policy (`cig`, `baseline`) or the path of a policy file.
    pub policy: String,
    pub password: PasswordPolicy,
    /// Days a deleted agent stays in the recycle bin (an organisation's
    /// `cigRecycleBinDays` overrides it).
    pub recycle_bin_days: u64,
    /// Seconds within which an account's next successful bind is not
    /// recorded again (`pwdLastSuccess`).
    pub last_bind_interval_secs: u64,
    /// Days audit records are kept (an organisation's
    /// `cigAuditRetentionDays` overrides it).
    pub audit_retention_days: u64,
    /// Days and count of deletions the deletion log keeps for replicas
    /// (`replication.deletion_log_days` / `deletion_log_max`).
    pub deletion_log_days: u64,
    pub deletion_log_max: usize,
}

/// Attributes that are always indexed for equality, whatever the
/// configuration: uniqueness (uid, cigExternalId), memberOf and referential
/// integrity (member, uniqueMember, manager) and object class filters depend on them;
/// pwdEndTime: the lifecycle step finds the accounts with an end date from its presence list.
const ALWAYS_INDEXED: &[&str] =
    &["objectClass", "uid", "member", "uniqueMember", "manager", "cigExternalId", "pwdEndTime"];

/// The attribute found through the store's UUID table, never through
/// posting lists: an entryUUID list would hold one id, at a B-tree record
/// per creation. The planner reads the table instead.
const UUID_ATTR: &str = "entryuuid";

/// Posting lists kept before store format 4 and no longer: entryUUID's, and
/// objectClass presence (every entry has one; the planner never read it).
/// A store written before is cleared of them when opened.
fn unkept_posting_lists() -> [Vec<u8>; 3] {
    [
        index_key(IndexKind::Equality, UUID_ATTR, b""),
        index_key(IndexKind::Presence, UUID_ATTR, b""),
        index_key(IndexKind::Presence, "objectclass", b""),
    ]
}

/// The lower-case primary names of these attributes and of their subtypes
/// (names the schema does not know are left out: no entry holds them).
fn lnames_with_subtypes(schema: &Schema, names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for id in names.iter().filter_map(|n| schema.attr_id(n)) {
        for &sub in &schema.attr(id).with_subtypes {
            let lname = &schema.attr(sub).lname;
            if !out.contains(lname) {
                out.push(lname.clone());
            }
        }
    }
    out
}

/// Attributes whose DN values follow the entries they name (referential integrity).
pub const REFERENCE_ATTRS: &[&str] = &["member", "uniqueMember", "manager"];

/// Who performs an operation: whom the access policy judges, and what
/// creatorsName / modifiersName and the audit trail record.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The DN as bound (or the token's name), empty for anonymous or the server itself.
    pub dn: String,
    pub principal: Principal,
    /// Where the request came from (the peer address), for the audit trail.
    pub peer: String,
}

impl Actor {
    /// The server itself acting under a name (import, seed, command line):
    /// the access policy does not apply.
    pub fn new(dn: impl Into<String>) -> Actor {
        Actor { dn: dn.into(), principal: Principal::Server, peer: "local".into() }
    }

    /// A client identity, judged by the access policy.
    pub fn client(principal: Principal, peer: impl Into<String>) -> Actor {
        Actor { dn: principal.name(), principal, peer: peer.into() }
    }
}

/// The directory: schema, settings and store. Shared as `Arc<Directory>`.
pub struct Directory {
    store: Store,
    schema: Arc<Schema>,
    suffix: Dn,
    suffix_ndn: String,
    /// Lower-case primary names of equality-indexed attributes.
    eq_indexed: FoldSet<String>,
    sub_indexed: FoldSet<String>,
    approx_indexed: FoldSet<String>,
    /// By attribute id: whether any of the three index sets names it. Most
    /// of an entry's attributes are not indexed; one look skips them.
    indexed_ids: Vec<bool>,
    policy: Policy,
    /// What the policy's rule filters test (lower-case names, subtypes
    /// included): read of every entry a search examines.
    policy_attrs: Vec<String>,
    /// Normalised DNs of the administrators named directly (cn=admin, config).
    admins: Vec<String>,
    admins_group_ndn: String,
    /// Whether an entry is an organisation (has an `ou=agents` child), by ndn.
    org_cache: RwLock<HashMap<String, bool>>,
    /// Organisations' SIRENs, by ndn (see [`access::SirenCache`]).
    sirens: access::SirenCache,
    /// Bumped at every commit: a principal resolved earlier may be stale.
    generation: AtomicU64,
    /// The provider this server follows as a replica, if any.
    replica_of: replica::ReplicaOf,
    /// The replicas following this server.
    followers: sync::Followers,
    tokens: tokens::TokenCache,
    password_policy: PasswordPolicy,
    recycle_bin_days: u64,
    last_bind_interval: u64,
    audit_retention_days: u64,
    deletion_log_days: u64,
    deletion_log_max: usize,
    noted_binds: last_bind::NotedBinds,
    noted_failures: auth::FailureNotes,
    decoy: auth::Decoy,
    group_commit: Arc<commit::GroupCommit>,
}

impl Drop for Directory {
    fn drop(&mut self) {
        self.group_commit.stop();
    }
}

impl Directory {
    /// Persist everything in the store file so that the next start has no
    /// redo log to replay (a clean shutdown).
    pub fn checkpoint(&self) -> Result<()> {
        Ok(self.store.checkpoint()?)
    }

    pub fn new(store: Store, schema: Arc<Schema>, settings: DirectorySettings) -> Result<Directory> {
        let suffix_ndn = schema.normalize_dn(&settings.suffix)?;
        let mut eq_indexed = FoldSet::default();
        for a in settings.indexed.iter().map(String::as_str).chain(ALWAYS_INDEXED.iter().copied()) {
            let (_, attr) = schema.attr_of(a)?;
            if attr.lname != UUID_ATTR {
                eq_indexed.insert(attr.lname.clone());
            }
        }
        let mut sub_indexed = FoldSet::default();
        for a in &settings.substring_indexed {
            let (_, attr) = schema.attr_of(a)?;
            if attr.lname != UUID_ATTR {
                sub_indexed.insert(attr.lname.clone());
            }
        }
        let mut approx_indexed = FoldSet::default();
        for a in &settings.approx_indexed {
            let (_, attr) = schema.attr_of(a)?;
            if attr.lname != UUID_ATTR {
                approx_indexed.insert(attr.lname.clone());
            }
        }
        let indexed_ids = (schema.attrs().iter())
            .map(|a| [&eq_indexed, &sub_indexed, &approx_indexed].iter().any(|set| set.contains(&a.lname)))
            .collect();
        for prefix in unkept_posting_lists() {
            if store.read()?.postings_with_prefix(&prefix, 0)?.is_none() {
                let chunks = store.drop_posting_lists(&prefix)?;
                tracing::info!(chunks, "dropped the posting lists under {}", String::from_utf8_lossy(&prefix));
            }
        }
        let policy = Policy::load(&settings.policy, &schema, &settings.suffix)?;
        let policy_attrs = lnames_with_subtypes(&schema, &policy.filter_attributes());
        let first_admin = settings.suffix.child(Rdn::single("cn", "admin"));
        let admins = settings
            .admins
            .iter()
            .chain([&first_admin])
            .map(|dn| schema.normalize_dn(dn))
            .collect::<Result<Vec<_>>>()?;
        let group = settings.suffix.child(Rdn::single("ou", "admins")).child(Rdn::single("cn", "administrateurs"));
        let admins_group_ndn = schema.normalize_dn(&group)?;
        let directory = Directory {
            store,
            schema,
            suffix: settings.suffix,
            suffix_ndn,
            eq_indexed,
            sub_indexed,
            approx_indexed,
            indexed_ids,
            policy,
            policy_attrs,
            admins,
            admins_group_ndn,
            org_cache: RwLock::new(HashMap::new()),
            sirens: Default::default(),
            generation: AtomicU64::new(0),
            replica_of: replica::ReplicaOf::default(),
            followers: sync::Followers::default(),
            tokens: Default::default(),
            password_policy: settings.password,
            recycle_bin_days: settings.recycle_bin_days,
            last_bind_interval: settings.last_bind_interval_secs,
            audit_retention_days: settings.audit_retention_days,
            deletion_log_days: settings.deletion_log_days,
            deletion_log_max: settings.deletion_log_max,
            noted_binds: Default::default(),
            noted_failures: Default::default(),
            decoy: Default::default(),
            group_commit: Default::default(),
        };
        directory.maintain_indexes()?;
        Ok(directory)
    }

    /// A consistent backup of the whole store (see [`crate::store::Store::backup`]).
    /// The directory holding the store (and its redo log).
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.store.path().parent()
    }

    pub fn backup(&self, out: impl std::io::Write) -> Result<u64> {
        Ok(self.store.backup(out)?)
    }

    /// Store size and entry count, for the metrics endpoint.
    pub fn stats(&self) -> Result<crate::store::StoreStats> {
        Ok(self.store.stats()?)
    }

    /// Have the store file read ahead into the kernel's page cache (at start).
    pub fn prefetch(&self) -> Result<crate::store::Prefetched> {
        Ok(self.store.prefetch()?)
    }

    /// Fill the store's cache (see store/warm.rs) up to `budget` bytes,
    /// the posting lists of the lookups a login makes first (`uid`, `mail`).
    pub fn warm_cache(&self, budget: u64) -> Result<crate::store::Warmed> {
        let hot: Vec<Vec<u8>> = ["uid", "mail"]
            .into_iter()
            .filter(|a| self.eq_indexed.contains(*a))
            .map(|a| crate::store::index_key(crate::store::IndexKind::Equality, a, b""))
            .collect();
        Ok(self.store.warm(budget, &hot)?)
    }

    /// Ready to serve: a snapshot can be read and writes are accepted.
    pub fn ready(&self) -> Result<()> {
        self.store.read()?;
        Ok(self.store.writable()?)
    }

    /// Changes at every commit; see [`Directory::refresh`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// After a commit. `organisations_touched`: it may have added, removed,
    /// moved or changed an organisation (anything but adds of entries other
    /// than an `ou=agents`).
    pub(crate) fn committed(&self, organisations_touched: bool) {
        if organisations_touched {
            self.forget_organisations();
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The principal of a bound entry; its groups are read when first needed.
    pub fn principal_of(&self, entry_dn: &Dn) -> Result<Principal> {
        let ndn = self.normalize_dn(entry_dn)?;
        Ok(Principal::Entry(Arc::new(BoundEntry::new(entry_dn.to_string(), ndn))))
    }

    /// The groups of a bound entry and whether it is a CIG administrator.
    pub(crate) fn roles_of(&self, ndn: &str) -> Result<access::Roles> {
        let r = self.store.read()?;
        let mut groups = HashSet::new();
        for g in self.member_of_in(&r, ndn)? {
            if let Ok(n) = Dn::parse(&g).and_then(|d| self.normalize_dn(&d)) {
                groups.insert(n);
            }
        }
        let admin = self.is_named_admin(ndn) || groups.contains(&self.admins_group_ndn);
        Ok(access::Roles { groups, admin })
    }

    /// `cn=admin` or a DN of the `admins` setting.
    pub(crate) fn is_named_admin(&self, ndn: &str) -> bool {
        self.admins.iter().any(|a| a == ndn)
    }

    /// The principal of a SCIM token.
    fn token_principal(&self, scope: &TokenScope) -> Principal {
        let org_ndn = match scope {
            TokenScope::Organisation(dn) => self.normalize_dn(dn).ok(),
            TokenScope::Cig => None,
        };
        Principal::Token(Arc::new(TokenPrincipal { scope: scope.clone(), org_ndn }))
    }

    /// The same principal with its groups read again (after a commit changed them).
    pub fn refresh(&self, p: &Principal) -> Result<Principal> {
        match p {
            // Groups are read again at the next check.
            Principal::Entry(e) => Ok(Principal::Entry(Arc::new(BoundEntry::new(e.dn.clone(), e.ndn.clone())))),
            other => Ok(other.clone()),
        }
    }

    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    pub fn suffix(&self) -> &Dn {
        &self.suffix
    }

    /// Normalise a DN with this directory's schema.
    pub fn normalize_dn(&self, dn: &Dn) -> Result<String> {
        self.schema.normalize_dn(dn)
    }

    /// Whether the store holds no entry at all (first start).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.store.read()?.entry_count()? == 0)
    }

    pub fn entry_count(&self) -> Result<u64> {
        Ok(self.store.read()?.entry_count()?)
    }

    /// Read one entry by DN, with all stored attributes (no virtual ones).
    pub fn get(&self, dn: &Dn) -> Result<Option<Entry>> {
        let ndn = self.normalize_dn(dn)?;
        let r = self.store.read()?;
        match r.id_of_dn(&ndn)? {
            Some(id) => Ok(r.entry(id)?.map(|mut rec| self.take_entry(&mut rec)).transpose()?),
            None => Ok(None),
        }
    }

    /// Every entry, parents before children, for export: its stored attributes
    /// and its entryCSN, as slapcat writes them.
    pub fn for_each_entry(&self, f: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
        self.for_each_entry_under(&self.suffix.clone(), f)
    }

    /// [`Directory::for_each_entry`] for the subtree of `base`, parents first.
    pub fn for_each_entry_under(&self, base: &Dn, mut f: impl FnMut(&Entry) -> Result<()>) -> Result<()> {
        let r = self.store.read()?;
        let Some(root) = r.id_of_dn(&self.normalize_dn(base)?)? else {
            return Err(self.no_such_object(&r, base));
        };
        let mut stack = vec![root];
        while let Some(id) = stack.pop() {
            if let Some(rec) = r.entry(id)? {
                let mut entry = self.to_entry(&rec)?;
                // Where slapcat writes it: after createTimestamp.
                let at = entry.attrs.iter().position(|a| a.name.eq_ignore_ascii_case("createTimestamp"));
                let csn =
                    Attribute { name: "entryCSN".into(), values: vec![search::entry_csn(&rec, &entry).into_bytes()] };
                entry.attrs.insert(at.map_or(entry.attrs.len(), |i| i + 1), csn);
                f(&entry)?;
            }
            let mut kids = r.children(id)?;
            kids.reverse();
            stack.extend(kids);
        }
        Ok(())
    }

    /// The entry a record holds, its attributes moved out of the record (the
    /// search loop's hot path: no copy of every value).
    fn take_entry(&self, rec: &mut Record) -> Result<Entry> {
        let dn = Dn::from_stored(&rec.dn);
        let attrs = std::mem::take(&mut rec.attrs);
        Ok(Entry { dn, attrs: attrs.into_iter().map(|(name, values)| Attribute { name, values }).collect() })
    }

    fn to_entry(&self, rec: &Record) -> Result<Entry> {
        self.take_entry(&mut rec.clone())
    }

    /// Index keys of an entry's stored attributes.
    fn index_keys(&self, entry: &Entry) -> Vec<Vec<u8>> {
        self.index_keys_with(entry, &self.eq_indexed, &self.sub_indexed, &self.approx_indexed)
    }

    /// Index keys of an entry's stored attributes, for these indexed
    /// attributes (each set a subset of the configured one).
    fn index_keys_with(
        &self,
        entry: &Entry,
        eq_indexed: &FoldSet<String>,
        sub_indexed: &FoldSet<String>,
        approx_indexed: &FoldSet<String>,
    ) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        for a in &entry.attrs {
            let Some(id) = self.schema.attr_id(&a.name).filter(|&id| self.indexed_ids.get(id) == Some(&true)) else {
                continue;
            };
            let attr = self.schema.attr(id);
            let eq = eq_indexed.contains(&attr.lname);
            let sub = sub_indexed.contains(&attr.lname);
            let approx = approx_indexed.contains(&attr.lname) && attr.equality.is_some_and(schema::approx::folds);
            if !eq && !sub && !approx {
                continue;
            }
            // Every entry has an objectClass: its presence list would never narrow a search.
            if (eq || sub) && attr.lname != "objectclass" {
                keys.push(index_key(IndexKind::Presence, &attr.lname, b""));
            }
            for v in &a.values {
                let Ok(n) = self.schema.normalize_eq(attr, v) else {
                    continue;
                };
                if sub {
                    for t in trigrams(&n) {
                        keys.push(index_key(IndexKind::Substring, &attr.lname, t));
                    }
                }
                if approx {
                    // A folded value equal to the normalised one is found
                    // through the equality list (see `plan_approx`).
                    let folded = schema::approx::fold(&n);
                    if !folded.is_empty() && (folded != n || !self.eq_indexed.contains(&attr.lname)) {
                        keys.push(index_key(IndexKind::Approx, &attr.lname, &folded));
                    }
                }
                if eq || sub {
                    keys.push(index_key(IndexKind::Equality, &attr.lname, &n));
                }
            }
        }
        // Equal keys are identical bytes: an unstable sort loses nothing and
        // is half the work of the stable one on a create.
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The deepest existing ancestor of `dn`, as stored, for noSuchObject's matchedDN.
    fn matched_dn(&self, r: &impl Reader, dn: &Dn) -> Result<String> {
        let mut cur = dn.parent();
        while !cur.is_root() {
            if let Some(id) = r.id_of_dn(&self.normalize_dn(&cur)?)? {
                return Ok(r.entry(id)?.map(|rec| rec.dn.to_string()).unwrap_or_else(|| cur.to_string()));
            }
            cur = cur.parent();
        }
        Ok(String::new())
    }

    fn no_such_object(&self, r: &impl Reader, dn: &Dn) -> DirectoryError {
        match self.matched_dn(r, dn) {
            Ok(matched) => DirectoryError::NoSuchObject { dn: dn.to_string(), matched },
            Err(e) => e,
        }
    }

    /// The groups (DNs) an entry is a member of, through member / uniqueMember.
    pub fn member_of(&self, ndn: &str) -> Result<Vec<String>> {
        let r = self.store.read()?;
        self.member_of_in(&r, ndn)
    }

    fn member_of_in(&self, r: &impl Reader, ndn: &str) -> Result<Vec<String>> {
        let mut ids = r.postings(&index_key(IndexKind::Equality, "member", ndn.as_bytes()))?;
        ids.extend(r.postings(&index_key(IndexKind::Equality, "uniquemember", ndn.as_bytes()))?);
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // Only the DN: an application group's record holds thousands of members.
            if let Some(dn) = r.entry_dn(id)? {
                out.push(dn);
            }
        }
        Ok(out)
    }
}

/// Byte trigrams of a normalised value, for the substring index.
fn trigrams(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    v.windows(3)
}
