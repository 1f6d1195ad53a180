//! Console sessions: who signed in, kept in memory behind an opaque random
//! cookie (a restart signs everybody out, which a directory's console can
//! afford), with an idle timeout and an absolute lifetime, and the token
//! every form carries against cross-site requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::directory::{Dn, Principal};

/// A signed-in person.
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub principal: Principal,
    /// The DN signed in with, as the directory spells it.
    pub dn: Dn,
    /// How the pages greet the person (their `cn`).
    pub name: String,
    /// Carried by every form of this session (hidden field `jeton`).
    pub csrf: String,
    created: Instant,
    last_seen: Instant,
    /// The password was set by someone else: nothing but its change until done.
    pub must_change: bool,
    /// A message for the next page shown, then forgotten (a generated
    /// password is shown once this way).
    pub notice: Option<String>,
}

/// Every open session.
pub struct Sessions {
    open: Mutex<HashMap<String, Session>>,
    /// What a session keeps for one later page, by session id and purpose:
    /// a generated password or token shown once, a CSV file between its
    /// dry run and its import. Apart from [`Session`], which every request
    /// copies.
    kept: Mutex<HashMap<(String, String), String>>,
    idle: Duration,
    lifetime: Duration,
    max: usize,
}

/// A random value for a cookie or a form: 32 bytes, hex.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    // Without randomness no session can be safe: an empty token never matches.
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Sessions {
    pub fn new(limits: &crate::config::ConsoleLimits) -> Sessions {
        Sessions {
            open: Mutex::new(HashMap::new()),
            kept: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(limits.idle_minutes.saturating_mul(60)),
            lifetime: Duration::from_secs(limits.lifetime_minutes.saturating_mul(60)),
            max: limits.max_sessions.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock left a map that is still consistent.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for a successful sign-in. Past the limit the oldest
    /// session ends: a flood of sign-ins never grows memory without bound.
    pub fn open(&self, principal: Principal, dn: Dn, name: String, must_change: bool) -> Option<Session> {
        let (id, csrf) = (random_token(), random_token());
        if id.is_empty() || csrf.is_empty() {
            return None;
        }
        let now = Instant::now();
        let s = Session {
            id: id.clone(),
            principal,
            dn,
            name,
            csrf,
            created: now,
            last_seen: now,
            must_change,
            notice: None,
        };
        let mut open = self.lock();
        open.retain(|_, s| !self.expired(s, now));
        if open.len() >= self.max
            && let Some(oldest) = open.values().min_by_key(|s| s.created).map(|s| s.id.clone())
        {
            open.remove(&oldest);
        }
        open.insert(id, s.clone());
        let alive: std::collections::HashSet<String> = open.keys().cloned().collect();
        drop(open);
        self.kept_lock().retain(|(id, _), _| alive.contains(id));
        Some(s)
    }

    fn expired(&self, s: &Session, now: Instant) -> bool {
        now.duration_since(s.last_seen) > self.idle || now.duration_since(s.created) > self.lifetime
    }

    /// The session of this cookie, if it is still open; its use is noted.
    pub fn touch(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let mut open = self.lock();
        let s = open.get_mut(id)?;
        if self.expired(s, now) {
            open.remove(id);
            return None;
        }
        s.last_seen = now;
        Some(s.clone())
    }

    pub fn close(&self, id: &str) {
        self.lock().remove(id);
        self.kept_lock().retain(|(s, _), _| s != id);
    }

    /// End every session signed in as this DN (normalised): its account
    /// may no longer sign in.
    pub fn close_all_of(&self, ndn: &str, normalize: impl Fn(&Dn) -> Option<String>) {
        let ids: Vec<String> =
            self.lock().values().filter(|s| normalize(&s.dn).as_deref() == Some(ndn)).map(|s| s.id.clone()).collect();
        for id in ids {
            self.close(&id);
        }
    }

    fn kept_lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), String>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The password was changed: the session may do everything again.
    pub fn changed_password(&self, id: &str) {
        if let Some(s) = self.lock().get_mut(id) {
            s.must_change = false;
        }
    }

    pub fn set_notice(&self, id: &str, notice: String) {
        if let Some(s) = self.lock().get_mut(id) {
            s.notice = Some(notice);
        }
    }

    pub fn take_notice(&self, id: &str) -> Option<String> {
        self.lock().get_mut(id).and_then(|s| s.notice.take())
    }

    /// Keep `value` for this session under `purpose`, until taken.
    pub fn set_secret(&self, id: &str, purpose: &str, value: String) {
        if self.lock().contains_key(id) {
            self.kept_lock().insert((id.to_string(), purpose.to_string()), value);
        }
    }

    /// What was kept for this session under `purpose`, once.
    pub fn take_secret(&self, id: &str, purpose: &str) -> Option<String> {
        self.kept_lock().remove(&(id.to_string(), purpose.to_string()))
    }
}

/// Compare two tokens in time independent of where they differ.
pub fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && !a.is_empty() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
