//! SCIM bearer tokens: made by the command line, shown once, stored only as
//! a SHA-256 hash (a 256-bit random secret needs no slow hash), each bound to
//! one organisation or to the CIG as a whole.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest;

use super::schema::syntax::{format_epoch, now_generalized};
use super::*;
use crate::store::TokenRecord;

/// What a token may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// The CIG as a whole.
    Cig,
    /// One organisation: the entry with `ou=agents` / `ou=groupes` children.
    Organisation(Dn),
}

/// What a valid token grants a SCIM request.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    pub scope: TokenScope,
    /// Whom the access policy judges.
    pub principal: Principal,
    /// Who the request is, for the log ("token of …").
    pub label: Arc<str>,
    /// The principal's name, as creatorsName and the audit trail record it
    /// (written out once, not per request).
    pub name: Arc<str>,
    /// The minute (since the epoch) of its last use already noted: a
    /// request costs one atomic swap, a minute of requests one note.
    noted: Arc<AtomicU64>,
}

impl TokenGrant {
    /// The identity a request with this token acts as, from `peer`.
    pub fn actor(&self, peer: String) -> Actor {
        Actor { dn: self.name.to_string(), principal: self.principal.clone(), peer }
    }
}

/// Valid tokens remembered at most (a deployment has a few per organisation).
const MAX_CACHED_TOKENS: usize = 4096;

/// Tokens found valid, by hash: every SCIM request presents one, and
/// reading it, parsing its scope and normalising the organisation's DN cost
/// as much as a small search. Emptied at every token change.
#[derive(Default)]
pub(super) struct TokenCache {
    valid: RwLock<crate::fasthash::FoldMap<Vec<u8>, TokenGrant>>,
    /// Bumped at every token change, before the cache is emptied: a lookup
    /// that began before a change does not put back what it read.
    changes: AtomicU64,
    /// Uses not yet written (token hash → seconds since the epoch).
    uses: std::sync::Mutex<HashMap<Vec<u8>, u64>>,
}

impl TokenCache {
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut valid) = self.valid.write() {
            valid.clear();
        }
    }
}

/// A token as `token list` shows it.
#[derive(Debug, Clone)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: TokenScope,
    pub created: String,
    /// GeneralizedTime of its last use, to the minute; empty: never used.
    pub last_used: String,
}

/// Prefix of every token, so that a leaked one is recognisable by secret scanners.
const TOKEN_PREFIX: &str = "cvg_";

fn digest(secret: &str) -> Vec<u8> {
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

impl Directory {
    /// The organisation named by a DN or a SIREN: an entry that has an
    /// `ou=agents` child (the tree's shape, not its place, makes an organisation).
    pub fn find_organisation(&self, dn_or_siren: &str) -> Result<Dn> {
        let candidates: Vec<Dn> = if dn_or_siren.contains('=') {
            vec![Dn::parse(dn_or_siren)?]
        } else {
            // Agents may carry their employer's `o` too: only organization
            // entries are candidates (both lists indexed, their intersection small).
            let value = dn_or_siren.as_bytes().to_vec();
            let f = Filter::Or(vec![
                Filter::Equality("cigSiren".into(), value.clone()),
                Filter::And(vec![
                    Filter::Equality("o".into(), value),
                    Filter::Equality("objectClass".into(), b"organization".to_vec()),
                ]),
            ]);
            let mut req = SearchRequest::new(self.suffix.clone(), Scope::Sub, f);
            req.attrs = vec!["1.1".into()];
            let mut found = Vec::new();
            self.search(&Principal::Server, &req, |e| {
                found.push(e.dn);
                Ok(())
            })?;
            found
        };
        let mut orgs = Vec::new();
        for dn in candidates {
            if self.get(&dn.child(Rdn::single("ou", "agents")))?.is_some() {
                orgs.push(dn);
            }
        }
        match <[Dn; 1]>::try_from(orgs) {
            Ok([dn]) => Ok(dn),
            Err(v) if v.is_empty() => {
                Err(DirectoryError::NoSuchObject { dn: dn_or_siren.to_string(), matched: String::new() })
            }
            Err(_) => Err(DirectoryError::ConstraintViolation(format!("'{dn_or_siren}' names several organisations"))),
        }
    }

    /// Make a token; returns its id and the secret, which is not kept.
    pub fn create_token(&self, scope: &TokenScope, name: &str) -> Result<(String, String)> {
        self.make_token(scope, name, None)
    }

    /// [`Directory::create_token`]; with `actor`, recorded in the audit
    /// trail in the same transaction (the organisation, the token's name and id).
    fn make_token(&self, scope: &TokenScope, name: &str, actor: Option<&Actor>) -> Result<(String, String)> {
        let scope_dn = match scope {
            TokenScope::Cig => String::new(),
            TokenScope::Organisation(dn) => dn.to_string(),
        };
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| DirectoryError::Internal(e.to_string()))?;
        let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
        let hash = digest(&secret);
        let id: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
        let rec = TokenRecord {
            id: id.clone(),
            name: name.to_string(),
            scope: scope_dn,
            created: now_generalized(),
            last_used: String::new(),
        };
        self.store.write_with(|w| {
            w.put_token(&hash, &rec)?;
            if let Some(actor) = actor {
                let target = if rec.scope.is_empty() { self.suffix.to_string() } else { rec.scope.clone() };
                self.log_audit(w, actor, "token-create", &target, vec![format!("{} ({id})", rec.name)], "success")?;
            }
            Ok::<_, DirectoryError>(())
        })?;
        self.tokens.changed();
        Ok((id, secret))
    }

    /// What a presented token grants, if it is one of ours.
    pub fn check_token(&self, secret: &str) -> Result<Option<TokenGrant>> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = digest(secret);
        let seen = self.tokens.changes.load(Ordering::Acquire);
        if let Ok(valid) = self.tokens.valid.read()
            && let Some(grant) = valid.get(&hash)
        {
            self.note_token_use(&hash, grant);
            return Ok(Some(grant.clone()));
        }
        let r = self.store.read()?;
        let Some(rec) = r.token(&hash)? else { return Ok(None) };
        let scope = scope_of(&rec)?;
        let label = match &scope {
            TokenScope::Organisation(dn) => format!("token of {dn}"),
            TokenScope::Cig => "token of the CIG".to_string(),
        };
        let principal = self.token_principal(&scope);
        let grant = TokenGrant {
            name: principal.name().into(),
            principal,
            scope,
            label: label.into(),
            noted: Arc::new(AtomicU64::new(0)),
        };
        self.note_token_use(&hash, &grant);
        if let Ok(mut valid) = self.tokens.valid.write()
            && self.tokens.changes.load(Ordering::Acquire) == seen
        {
            if valid.len() >= MAX_CACHED_TOKENS {
                valid.clear();
            }
            valid.insert(hash, grant.clone());
        }
        Ok(Some(grant))
    }

    fn note_token_use(&self, hash: &[u8], grant: &TokenGrant) {
        let now = super::lifecycle::now_secs();
        if grant.noted.swap(now / 60, Ordering::Relaxed) != now / 60
            && let Ok(mut uses) = self.tokens.uses.lock()
        {
            uses.insert(hash.to_vec(), now);
        }
    }

    /// Write the uses noted since the last call (the server does it every
    /// second, and at shutdown); how many tokens' records changed.
    pub fn flush_token_uses(&self) -> Result<usize> {
        let uses = match self.tokens.uses.lock() {
            Ok(mut u) if !u.is_empty() => std::mem::take(&mut *u),
            _ => return Ok(0),
        };
        let written = self.store.write_with(|w| {
            let mut n = 0;
            for (hash, secs) in &uses {
                // A token revoked meanwhile stays revoked.
                if let Some(mut rec) = w.token(hash)? {
                    rec.last_used = format_epoch(*secs as i64);
                    w.put_token(hash, &rec)?;
                    n += 1;
                }
            }
            Ok::<_, crate::store::StoreError>(n)
        })?;
        Ok(written)
    }

    pub fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        let r = self.store.read()?;
        r.tokens()?
            .into_iter()
            .map(|(_, rec)| {
                Ok(TokenInfo {
                    scope: scope_of(&rec)?,
                    id: rec.id,
                    name: rec.name,
                    created: rec.created,
                    last_used: rec.last_used,
                })
            })
            .collect()
    }

    /// Tokens are the CIG administrators' to make, list and revoke (DESIGN.md),
    /// whichever front end asks.
    fn may_manage_tokens(&self, who: &Principal) -> Result<()> {
        if who.is_admin(self) {
            Ok(())
        } else {
            Err(DirectoryError::InsufficientAccess("only CIG administrators manage SCIM tokens".into()))
        }
    }

    /// [`Directory::create_token`] for a client identity, recorded in the audit trail.
    pub fn create_token_as(&self, actor: &Actor, scope: &TokenScope, name: &str) -> Result<(String, String)> {
        self.may_manage_tokens(&actor.principal)?;
        self.make_token(scope, name, Some(actor))
    }

    /// The tokens of one organisation (its DN), or all, for a client identity.
    pub fn list_tokens_as(&self, who: &Principal, org: Option<&Dn>) -> Result<Vec<TokenInfo>> {
        self.may_manage_tokens(who)?;
        let org = org.map(|o| self.normalize_dn(o)).transpose()?;
        let mut out = Vec::new();
        for t in self.list_tokens()? {
            let ndn = match &t.scope {
                TokenScope::Organisation(dn) => Some(self.normalize_dn(dn)?),
                TokenScope::Cig => None,
            };
            if org.is_none() || ndn == org {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// [`Directory::revoke_token`] for a client identity, recorded in the audit trail.
    pub fn revoke_token_as(&self, actor: &Actor, id: &str) -> Result<bool> {
        self.may_manage_tokens(&actor.principal)?;
        self.drop_token(id, Some(actor))
    }

    /// Revoke by id; false when no token has it.
    pub fn revoke_token(&self, id: &str) -> Result<bool> {
        self.drop_token(id, None)
    }

    fn drop_token(&self, id: &str, actor: Option<&Actor>) -> Result<bool> {
        let revoked = self.store.write_with(|w| {
            let found: Vec<(Vec<u8>, TokenRecord)> = w.tokens()?.into_iter().filter(|(_, r)| r.id == id).collect();
            for (h, rec) in &found {
                w.delete_token(h)?;
                if let Some(actor) = actor {
                    let target = if rec.scope.is_empty() { self.suffix.to_string() } else { rec.scope.clone() };
                    self.log_audit(w, actor, "token-revoke", &target, vec![format!("{} ({id})", rec.name)], "success")?;
                }
            }
            Ok::<_, DirectoryError>(!found.is_empty())
        })?;
        self.tokens.changed();
        Ok(revoked)
    }
}

fn scope_of(rec: &TokenRecord) -> Result<TokenScope> {
    Ok(if rec.scope.is_empty() { TokenScope::Cig } else { TokenScope::Organisation(Dn::parse(&rec.scope)?) })
}
