//! Simple-bind authentication and the password policy (issue 5 §5–6):
//! quality of new passwords, lockout after repeated failures (counted in
//! `pwdFailureTime`, locked with `pwdAccountLockedTime`, draft-behera names;
//! both in the store, so that a restart forgets nothing), disabled accounts
//! and windows of validity, and the move of old hashes to argon2id after a
//! successful bind.
//!
//! Every refusal is the same invalidCredentials after the same kind of work,
//! whether the DN is unknown, the password wrong, the account locked or
//! disabled (RFC 4513 §6.2): a failed bind is no oracle for which accounts exist.

use std::time::{SystemTime, UNIX_EPOCH};

use super::lifecycle;
use super::password::{self, Argon2Params};
use super::ppolicy::{Age, PasswordProblem, PolicyNotice};
use super::schema::syntax::{format_epoch, now_generalized};
use super::*;
use crate::store::WriteTx;

/// What a simple bind reads of an entry.
#[derive(Debug, Default)]
pub struct Account {
    /// The DN as stored.
    pub dn: String,
    pub ndn: String,
    /// The stored `userPassword` values.
    pub passwords: Vec<Vec<u8>>,
    pub locked_at: Option<String>,
    /// `cigActive: FALSE`.
    pub disabled: bool,
    /// `pwdStartTime` / `pwdEndTime`, in the form of [`lifecycle::instant`].
    pub valid_from: Option<String>,
    pub valid_until: Option<String>,
    /// Failed binds are counted (`pwdFailureTime`): a success clears them.
    pub failed: bool,
    /// The `pwdFailureTime` values, in the form of [`lifecycle::instant`].
    pub failure_times: Vec<String>,
    /// The entry's id, and its last successful bind recorded (seconds).
    pub id: u64,
    pub last_bind: Option<u64>,
    /// `pwdChangedTime`, in the form of [`lifecycle::instant`].
    pub changed: Option<String>,
    /// `pwdReset: TRUE`: someone else set the password.
    pub reset: bool,
}

/// Failed binds noted for one account, not yet written.
pub(crate) struct NotedFailures {
    dn: String,
    peer: String,
    times: Vec<String>,
}

/// Most accounts with noted failures between two flushes (memory stays
/// bounded under a spray; the store still counts what was written).
const MAX_NOTED_FAILURES: usize = 100_000;

pub(crate) type FailureNotes = std::sync::Mutex<std::collections::HashMap<String, NotedFailures>>;

/// The draft's attributes of the lockout.
const FAILURES: &str = "pwdFailureTime";
const LOCKED: &str = "pwdAccountLockedTime";

/// The configurable password policy.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Shortest new password, in characters.
    pub min_length: usize,
    /// How many of lower case, upper case, digits and other characters a new password mixes.
    pub min_classes: usize,
    /// Failed binds in a row that lock an account; 0 turns lockout off.
    pub max_failures: u32,
    /// How long a lock lasts, in seconds; 0 means until an administrator
    /// deletes `pwdAccountLockedTime`. Failures older than this are forgotten.
    pub lockout_secs: u64,
    /// Re-hash to argon2id after a successful bind with an older scheme.
    pub rehash: bool,
    pub argon2: Argon2Params,
    /// draft pwdMaxAge: a password this old no longer binds; 0: never.
    pub max_age_secs: u64,
    /// draft pwdExpireWarning: binds are warned this long before.
    pub expire_warning_secs: u64,
    /// draft pwdInHistory: none of the last this many passwords again.
    pub history: usize,
    /// draft pwdMustChange: a password someone else set must be changed
    /// by its person before anything else.
    pub must_change_after_reset: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: 12,
            min_classes: 2,
            max_failures: 5,
            lockout_secs: 900,
            rehash: true,
            argon2: Argon2Params::default(),
            max_age_secs: 0,
            expire_warning_secs: 14 * 86_400,
            history: 5,
            must_change_after_reset: true,
        }
    }
}

/// Now as a GeneralizedTime to the microsecond: failures within one second
/// stay distinct values of `pwdFailureTime`.
fn now_precise() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:06}Z", lifecycle::epoch_instant(d.as_secs() as i64), d.subsec_micros())
}

impl Directory {
    /// The password policy in force, for a front end to explain it before
    /// a person types a new password.
    pub fn password_policy(&self) -> &PasswordPolicy {
        &self.password_policy
    }

    /// The entry a person signing in by name means: a DN as such, or the one
    /// entry whose `uid` is that name (what an application does with its
    /// service account before binding). None when no entry, or several,
    /// have it: the sign-in then fails like a wrong password.
    pub fn login_dn(&self, name: &str) -> Result<Option<Dn>> {
        let name = name.trim();
        if name.contains('=') {
            return Ok(Dn::parse(name).ok());
        }
        if name.is_empty() || name.len() > 256 {
            return Ok(None);
        }
        let filter = Filter::Equality("uid".into(), name.as_bytes().to_vec());
        let mut req = SearchRequest::new(self.suffix.clone(), Scope::Sub, filter);
        req.attrs = vec!["1.1".into()];
        req.size_limit = 2;
        let mut found = Vec::new();
        match self.search(&Principal::Server, &req, |e| {
            found.push(e.dn);
            Ok(())
        }) {
            Ok(_) | Err(DirectoryError::SizeLimitExceeded) => {}
            Err(e) => return Err(e),
        }
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// Whether a session signed in as this DN may go on: the entry still
    /// exists, is not suspended, is inside its window of validity and is
    /// not locked. A console asks at every request, as an LDAP connection
    /// binds again (a suspension takes effect at once, not at sign-out).
    pub fn may_stay_signed_in(&self, dn: &Dn) -> Result<bool> {
        let Some(a) = self.account(dn)? else { return Ok(false) };
        let now = lifecycle::now_instant();
        let window = lifecycle::validity(a.valid_from.as_deref(), a.valid_until.as_deref(), &now);
        let locked = a.locked_at.as_deref().is_some_and(|t| self.lock_holds(t));
        Ok(!a.disabled && !locked && window == lifecycle::Validity::Open)
    }

    /// A new random password the quality policy accepts (a reset by a
    /// référent): letters of both cases and digits, without the look-alikes
    /// (0/O, 1/l/I), at least 16 characters.
    pub fn generate_password(&self) -> Result<String> {
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let len = self.password_policy.min_length.max(16);
        for _ in 0..64 {
            let mut b = vec![0u8; len];
            getrandom::fill(&mut b).map_err(|e| DirectoryError::Internal(e.to_string()))?;
            let candidate: String = b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect();
            // Letters and digits are three kinds; a policy asking for a
            // fourth gets one from the punctuation a person types easily.
            let candidate = if self.password_policy.min_classes > 3 { format!("{candidate}-") } else { candidate };
            if self.check_password_quality(candidate.as_bytes()).is_ok() {
                return Ok(candidate);
            }
        }
        Err(DirectoryError::Unwilling(
            "no generated password meets the password policy (min_classes above 4?): set the password by hand".into(),
        ))
    }

    /// Refuse a new plain-text password the policy does not accept (constraintViolation).
    pub fn check_password_quality(&self, plain: &[u8]) -> Result<()> {
        let p = &self.password_policy;
        let s = std::str::from_utf8(plain)
            .map_err(|_| DirectoryError::ConstraintViolation("the new password is not valid UTF-8".into()))?;
        let len = s.chars().count();
        if len < p.min_length {
            return Err(DirectoryError::PasswordRefused(
                PasswordProblem::TooShort,
                format!("the new password is too short: {len} characters, at least {} are required", p.min_length),
            ));
        }
        let classes = [
            s.chars().any(char::is_lowercase),
            s.chars().any(char::is_uppercase),
            s.chars().any(|c| c.is_ascii_digit()),
            s.chars().any(|c| !c.is_alphanumeric()),
        ]
        .iter()
        .filter(|&&b| b)
        .count();
        if classes < p.min_classes {
            return Err(DirectoryError::PasswordRefused(
                PasswordProblem::InsufficientQuality,
                format!(
                    "the new password mixes {classes} kinds of characters, at least {} of lower case, upper case, \
                     digits and others are required",
                    p.min_classes
                ),
            ));
        }
        Ok(())
    }

    /// Hash a new password with the configured argon2id parameters, after the
    /// quality check when a client (not the server itself) sets it.
    pub fn prepare_password(&self, actor: &Actor, plain: &[u8]) -> Result<Vec<u8>> {
        if !matches!(actor.principal, Principal::Server) {
            self.check_password_quality(plain)?;
        }
        password::hash_with(plain, &self.password_policy.argon2)
            .map(String::into_bytes)
            .map_err(DirectoryError::Internal)
    }

    /// RFC 3062 Password Modify's change: the new password is a password,
    /// checked by the quality policy and hashed here, whoever asks; a
    /// `{SCHEME}` value is refused, administrators included (they may store
    /// a hash with a modify of `userPassword`).
    pub fn change_password(&self, actor: &Actor, dn: &Dn, new: &[u8]) -> Result<()> {
        if password::is_hashed(new) {
            return Err(DirectoryError::ConstraintViolation(
                "the new password is the password itself, not a {SCHEME} hash (RFC 3062)".into(),
            ));
        }
        let m = Modification { op: ModOp::Replace, attr: "userPassword".into(), values: vec![new.to_vec()] };
        self.modify(actor, dn, &[m])
    }

    /// Whether a bind against this entry is only a salted-digest check: no
    /// argon2 or crypt, and no write to follow (re-hash). Such binds run inline.
    pub fn bind_is_cheap(&self, account: Option<&Account>) -> bool {
        let cheap = |v: &[u8]| password::is_cheap(v) && !(self.password_policy.rehash && password::needs_rehash(v));
        match account {
            // The decoy runs where the accounts it stands for run.
            Some(a) if !a.passwords.is_empty() => a.passwords.iter().all(|v| cheap(v)),
            _ => cheap(&self.decoy.current()),
        }
    }

    /// What a bind needs of the entry named `dn`, read in place: its stored
    /// passwords, lock and activity, not its other attributes.
    pub fn account(&self, dn: &Dn) -> Result<Option<Account>> {
        let ndn = self.normalize_dn(dn)?;
        let r = self.store.read()?;
        let Some(id) = r.id_of_dn(&ndn)? else { return Ok(None) };
        let last_bind = r.kept_value(crate::store::Kept::LastBind, &id.to_be_bytes())?;
        // The change time matters only where passwords expire.
        let expiring = self.password_policy.max_age_secs > 0;
        let account = r.entry_view(id, |v| {
            let mut a = Account {
                dn: v.dn.to_string(),
                ndn: v.ndn.to_string(),
                id,
                last_bind: last_bind.as_deref().and_then(super::last_bind::decode),
                ..Account::default()
            };
            v.for_each_attr(|name, values| {
                if name.eq_ignore_ascii_case(b"userPassword") {
                    a.passwords.extend(values.filter_map(|x| x.ok()).map(<[u8]>::to_vec));
                } else if name.eq_ignore_ascii_case(b"pwdAccountLockedTime") {
                    let first = values.next().and_then(|x| x.ok());
                    a.locked_at = first.and_then(|x| std::str::from_utf8(x).ok()).map(str::to_string);
                } else if name.eq_ignore_ascii_case(b"cigActive") {
                    a.disabled = values.filter_map(|x| x.ok()).any(|x| x.eq_ignore_ascii_case(b"FALSE"));
                } else if name.eq_ignore_ascii_case(lifecycle::START.as_bytes()) {
                    a.valid_from = values.next().and_then(|x| x.ok()).and_then(lifecycle::instant);
                } else if name.eq_ignore_ascii_case(lifecycle::END.as_bytes()) {
                    a.valid_until = values.next().and_then(|x| x.ok()).and_then(lifecycle::instant);
                } else if name.eq_ignore_ascii_case(FAILURES.as_bytes()) {
                    a.failed = true;
                    a.failure_times = values.filter_map(|x| x.ok()).filter_map(lifecycle::instant).collect();
                } else if expiring && name.eq_ignore_ascii_case(b"pwdChangedTime") {
                    a.changed = values.next().and_then(|x| x.ok()).and_then(lifecycle::instant);
                } else if name.eq_ignore_ascii_case(super::ppolicy::RESET.as_bytes()) {
                    a.reset = values.filter_map(|x| x.ok()).any(|x| x.eq_ignore_ascii_case(b"TRUE"));
                }
            })?;
            Ok(a)
        })?;
        Ok(account)
    }

    /// A simple bind (RFC 4513 §5.1.3) against an account read before with
    /// [`Directory::account`]. On success, the principal the session acts as.
    pub fn authenticate(&self, account: Option<Account>, password: &[u8], peer: &str) -> Result<Principal> {
        self.authenticate_with_policy(account, password, peer).0
    }

    /// [`Directory::authenticate`], and what the password policy tells the
    /// client (draft §6.2). A refusal tells it something only when the
    /// password was right (an expired password, a locked account): to
    /// anyone else every refusal is the same.
    pub fn authenticate_with_policy(
        &self,
        account: Option<Account>,
        password: &[u8],
        peer: &str,
    ) -> (Result<Principal>, PolicyNotice) {
        let mut notice = PolicyNotice::default();
        let outcome = self.check_bind(account, password, peer, &mut notice);
        (outcome, notice)
    }

    fn check_bind(
        &self,
        account: Option<Account>,
        password: &[u8],
        peer: &str,
        notice: &mut PolicyNotice,
    ) -> Result<Principal> {
        let Some(account) = account else {
            password::verify(&self.decoy.current(), password);
            return Err(DirectoryError::InvalidCredentials);
        };
        let Account {
            dn,
            ndn,
            passwords: stored,
            locked_at,
            disabled,
            valid_from,
            valid_until,
            failed,
            failure_times,
            id,
            last_bind,
            changed,
            reset,
        } = account;
        if stored.is_empty() {
            password::verify(&self.decoy.current(), password);
        }
        let matched = stored.iter().find(|v| password::verify(v, password)).cloned();
        let policy = &self.password_policy;
        let now = lifecycle::now_secs();
        let locked = locked_at.as_deref().is_some_and(|t| self.lock_holds(t));
        if locked {
            if matched.is_some() {
                notice.problem = Some(PasswordProblem::AccountLocked);
            }
            return Err(DirectoryError::InvalidCredentials);
        }
        let Some(matched) = matched else {
            if !stored.is_empty() && policy.max_failures > 0 {
                // Noted in memory and written in the background (see
                // `flush_failures`): a failure costs what a bind to an unknown
                // DN costs, except the one that locks the account.
                let horizon = (policy.lockout_secs > 0)
                    .then(|| lifecycle::epoch_instant(now.saturating_sub(policy.lockout_secs) as i64));
                let recent = failure_times.iter().filter(|t| horizon.as_ref().is_none_or(|h| *t > h)).count();
                let noted = self.note_failure(&ndn, &dn, peer);
                if recent + noted >= policy.max_failures as usize {
                    match self.write_failures(&ndn) {
                        Ok(true) => {
                            tracing::warn!(%dn, %peer, "account locked after {} failed binds", policy.max_failures)
                        }
                        Ok(false) => {}
                        Err(e) => tracing::warn!(%dn, "could not record failed binds: {e}"),
                    }
                }
            }
            return Err(DirectoryError::InvalidCredentials);
        };
        // Suspended, or outside the window of validity: refused after the
        // same work as a wrong password (no oracle).
        let dated = valid_from.is_some() || valid_until.is_some();
        let outside = dated
            && lifecycle::validity(valid_from.as_deref(), valid_until.as_deref(), &lifecycle::now_instant())
                != lifecycle::Validity::Open;
        if disabled || outside {
            return Err(DirectoryError::InvalidCredentials);
        }
        match self.password_age(changed.as_deref()) {
            Age::Fresh => {}
            Age::Expiring(secs) => notice.expires_in = Some(secs),
            Age::Expired => {
                notice.problem = Some(PasswordProblem::Expired);
                return Err(DirectoryError::InvalidCredentials);
            }
        }
        if reset && self.password_policy.must_change_after_reset {
            notice.problem = Some(PasswordProblem::ChangeAfterReset);
        }
        self.note_bind(id, last_bind);
        // Sampled from successful binds only, so that failed binds (anyone can
        // send those) do not steer it; what a re-hash leaves, where there is one.
        let rehashed = policy.rehash && password::needs_rehash(&matched);
        self.decoy.sample(if rehashed { password::decoy() } else { &matched });
        // Failures count in a row: a success forgets them, and a lock that
        // has run its time.
        self.forget_failures(&ndn);
        if (failed || locked_at.is_some())
            && let Err(e) = self.clear_failures(&dn, peer)
        {
            tracing::warn!(dn = %dn, "could not clear failed binds or an expired lock: {e}");
        }
        if policy.rehash && password::needs_rehash(&matched) {
            match password::hash_with(password, &policy.argon2) {
                Ok(new) => {
                    if let Err(e) = self.rehash(&Dn::parse(&dn)?, &matched, new.into_bytes(), peer) {
                        tracing::warn!(dn = %dn, "could not re-hash a password: {e}");
                    }
                }
                Err(e) => tracing::warn!("argon2: {e}"),
            }
        }
        Ok(Principal::Entry(std::sync::Arc::new(BoundEntry::new(dn, ndn))))
    }

    /// Note a failed bind of `ndn` in memory; how many are noted for it now.
    fn note_failure(&self, ndn: &str, dn: &str, peer: &str) -> usize {
        let Ok(mut noted) = self.noted_failures.lock() else { return 0 };
        if noted.len() >= MAX_NOTED_FAILURES && !noted.contains_key(ndn) {
            return 0;
        }
        let f = noted.entry(ndn.to_string()).or_insert_with(|| NotedFailures {
            dn: dn.to_string(),
            peer: peer.to_string(),
            times: Vec::new(),
        });
        f.times.push(now_precise());
        f.times.len()
    }

    fn forget_failures(&self, ndn: &str) {
        if let Ok(mut noted) = self.noted_failures.lock() {
            noted.remove(ndn);
        }
    }

    /// Write the failed binds noted since the last flush (the server does
    /// once a second); how many accounts they locked.
    pub fn flush_failures(&self) -> Result<usize> {
        let ndns: Vec<String> = match self.noted_failures.lock() {
            Ok(n) => n.keys().cloned().collect(),
            Err(_) => return Ok(0),
        };
        let mut locked = 0;
        for ndn in ndns {
            if self.write_failures(&ndn)? {
                locked += 1;
            }
        }
        Ok(locked)
    }

    /// Add the failed binds noted for `ndn` to its `pwdFailureTime` (the
    /// ones older than the lockout's duration are forgotten), and lock the
    /// account when they reach the threshold; true when this locked it.
    /// Read and written in one transaction: concurrent failures all count.
    fn write_failures(&self, ndn: &str) -> Result<bool> {
        let Some(noted) = self.noted_failures.lock().ok().and_then(|mut n| n.remove(ndn)) else { return Ok(false) };
        let policy = &self.password_policy;
        let keep = (policy.max_failures as usize).max(1);
        let horizon = (policy.lockout_secs > 0)
            .then(|| lifecycle::epoch_instant(lifecycle::now_secs().saturating_sub(policy.lockout_secs) as i64));
        let server = Actor { peer: noted.peer.clone(), ..Actor::new(noted.dn.clone()) };
        let locked = self.store.write_with(|w| -> Result<bool> {
            let Some(id) = w.id_of_dn(ndn)? else { return Ok(false) };
            let Some(rec) = w.entry(id)? else { return Ok(false) };
            let before = self.to_entry(&rec)?;
            let mut times = before.get(FAILURES).map(|a| a.values.clone()).unwrap_or_default();
            if let Some(h) = &horizon {
                times.retain(|t| lifecycle::instant(t).is_some_and(|i| i > *h));
            }
            times.extend(noted.times.iter().map(|t| t.clone().into_bytes()));
            if times.len() > keep {
                times.drain(..times.len() - keep);
            }
            let still_locked = before
                .get(LOCKED)
                .and_then(|a| a.values.first())
                .and_then(|v| std::str::from_utf8(v).ok())
                .is_some_and(|t| self.lock_holds(t));
            let lock = times.len() >= keep && !still_locked;
            let mut after = before.clone();
            after.set(FAILURES, times);
            if lock {
                after.set(LOCKED, vec![now_generalized().into_bytes()]);
            }
            self.reindex(w, id, &before, &after)?;
            w.put_encoded_entry(id, self.record(&after, &rec.ndn, rec.parent))?;
            if lock {
                self.log_audit(w, &server, "modify", &rec.dn, vec![LOCKED.into()], "success")?;
            }
            Ok(lock)
        })?;
        self.committed(false);
        Ok(locked)
    }

    /// Whether a lock set at `t` (`pwdAccountLockedTime`) still holds now.
    fn lock_holds(&self, t: &str) -> bool {
        let policy = &self.password_policy;
        policy.lockout_secs == 0
            || t > format_epoch(lifecycle::now_secs().saturating_sub(policy.lockout_secs) as i64).as_str()
    }

    /// Forget an account's failed binds and its lock (which has run its
    /// time) after a successful bind.
    fn clear_failures(&self, dn: &str, peer: &str) -> Result<()> {
        let server = Actor { peer: peer.to_string(), ..Actor::new(dn.to_string()) };
        let ndn = self.normalize_dn(&Dn::parse(dn)?)?;
        self.store.write_with(|w| -> Result<()> {
            let Some(id) = w.id_of_dn(&ndn)? else { return Ok(()) };
            let Some(rec) = w.entry(id)? else { return Ok(()) };
            let before = self.to_entry(&rec)?;
            let mut after = before.clone();
            after.remove(FAILURES);
            // A lock set since the bind's snapshot stays.
            let fresh = (after.get(LOCKED).and_then(|a| a.values.first()))
                .and_then(|v| std::str::from_utf8(v).ok())
                .is_some_and(|t| self.lock_holds(t));
            let unlocked = !fresh && after.remove(LOCKED).is_some();
            if after.attrs.len() == before.attrs.len() {
                return Ok(());
            }
            self.reindex(w, id, &before, &after)?;
            w.put_encoded_entry(id, self.record(&after, &rec.ndn, rec.parent))?;
            if unlocked {
                self.log_audit(w, &server, "modify", &rec.dn, vec![LOCKED.into()], "success")?;
            }
            Ok(())
        })?;
        self.committed(false);
        Ok(())
    }

    /// Replace one stored hash by its argon2id equivalent; the password is the
    /// same, so pwdChangedTime does not move. Audited as `rehash`.
    fn rehash(&self, dn: &Dn, old: &[u8], new: Vec<u8>, peer: &str) -> Result<()> {
        let server = Actor { peer: peer.to_string(), ..Actor::new(dn.to_string()) };
        self.audited(&server, "rehash", dn, vec!["userPassword".into()], |w: &mut WriteTx| {
            let ndn = self.normalize_dn(dn)?;
            let Some(id) = w.id_of_dn(&ndn)? else { return Err(self.hidden(dn)) };
            let Some(rec) = w.entry(id)? else { return Err(self.hidden(dn)) };
            let before = self.to_entry(&rec)?;
            let mut after = before.clone();
            if let Some(a) = after.get_mut("userPassword") {
                for v in a.values.iter_mut().filter(|v| v.as_slice() == old) {
                    *v = new.clone();
                }
            }
            super::request::bump_revision(&mut after);
            self.reindex(w, id, &before, &after)?;
            w.put_encoded_entry(id, self.record(&after, &ndn, rec.parent))?;
            self.log_audit(w, &server, "rehash", &dn.to_string(), vec!["userPassword".into()], "success")
        })
    }
}

/// What a bind to a DN with no password (unknown, or without userPassword)
/// is checked against, so that it costs what a bind to an account costs and
/// response time does not tell which DNs exist: the hash a recent
/// successful bind checked, sampled every [`DECOY_SAMPLE`] of them, so that
/// the decoy's scheme and cost follow the accounts people use (salted
/// digests after an import from slapd, argon2 once they are re-hashed).
/// Before the first sample, argon2.
#[derive(Default)]
pub(crate) struct Decoy {
    stored: std::sync::RwLock<Option<std::sync::Arc<[u8]>>>,
    binds: std::sync::atomic::AtomicU64,
}

/// One bind in this many to an existing account refreshes the decoy.
const DECOY_SAMPLE: u64 = 256;

impl Decoy {
    fn current(&self) -> std::sync::Arc<[u8]> {
        match self.stored.read().ok().and_then(|s| s.clone()) {
            Some(s) => s,
            None => std::sync::Arc::from(password::decoy()),
        }
    }

    fn sample(&self, stored: &[u8]) {
        let n = self.binds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !n.is_multiple_of(DECOY_SAMPLE) {
            return;
        }
        if let Ok(mut s) = self.stored.write() {
            *s = Some(std::sync::Arc::from(stored));
        }
    }
}
