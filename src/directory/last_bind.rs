//! The time of each account's last successful bind (issue 21 §5), read as
//! the password-policy draft's `pwdLastSuccess`, so that an employer can
//! list the accounts nobody has used for a year (`(pwdLastSuccess<=…)`,
//! `(!(pwdLastSuccess=*))`).
//!
//! A bind never rewrites its entry for this: the time is kept in a table of
//! its own (`store::kept`), noted at most once per `last_bind_interval_secs`
//! per account, and the noted binds are written together, once a second, by
//! the server ([`Directory::flush_last_binds`]): a crash loses at most that
//! second of last uses, never a login.

use std::collections::HashMap;
use std::sync::Mutex;

use super::schema::syntax::format_epoch;
use super::*;
use crate::store::Kept;

/// The attribute the time is read as.
pub const ATTR: &str = "pwdLastSuccess";

/// Most binds noted between two flushes (memory stays bounded under a
/// burst; a bind not noted is noted at the account's next bind).
const MAX_NOTED: usize = 1 << 20;

/// Binds noted since the last flush: entry id → seconds since the epoch.
#[derive(Default)]
pub(crate) struct NotedBinds(Mutex<HashMap<u64, u64>>);

/// A stored time (big-endian seconds).
pub(super) fn decode(v: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(v).ok().map(u64::from_be_bytes)
}

impl Directory {
    /// After a successful bind of entry `id`, whose last one recorded is
    /// `recorded`: note it, unless that one is recent enough.
    pub(super) fn note_bind(&self, id: u64, recorded: Option<u64>) {
        let now = lifecycle::now_secs();
        if recorded.is_some_and(|t| now < t.saturating_add(self.last_bind_interval)) {
            return;
        }
        if let Ok(mut noted) = self.noted_binds.0.lock()
            && (noted.len() < MAX_NOTED || noted.contains_key(&id))
        {
            noted.insert(id, now);
        }
    }

    /// After a bind without a password (SASL EXTERNAL, by certificate or on
    /// the local socket) of the entry `ndn`: note it as a simple bind's is.
    pub fn note_bind_of(&self, ndn: &str) -> Result<()> {
        let r = self.store.read()?;
        let Some(id) = r.id_of_dn(ndn)? else { return Ok(()) };
        let recorded = r.kept_value(Kept::LastBind, &id.to_be_bytes())?.as_deref().and_then(decode);
        self.note_bind(id, recorded);
        Ok(())
    }

    /// Write the binds noted since the last flush, in one transaction; how many.
    pub fn flush_last_binds(&self) -> Result<usize> {
        let noted = match self.noted_binds.0.lock() {
            Ok(mut n) if !n.is_empty() => std::mem::take(&mut *n),
            _ => return Ok(0),
        };
        // In id order: the entries and the last-bind table are keyed by id,
        // so that the transaction walks both B-trees once instead of
        // touching a random page per bind (a morning's first binds at 1M).
        let mut noted: Vec<(u64, u64)> = noted.into_iter().collect();
        noted.sort_unstable();
        self.store.write_with(|w| -> Result<()> {
            for (id, secs) in &noted {
                // An entry deleted since its bind has no last bind to keep.
                if w.entry_dn(*id)?.is_some() {
                    w.put_kept(Kept::LastBind, &id.to_be_bytes(), &secs.to_be_bytes())?;
                }
            }
            Ok(())
        })?;
        Ok(noted.len())
    }

    /// `pwdLastSuccess` of entry `id`, when it has bound since recording began.
    pub(super) fn last_bind_value(&self, r: &impl Reader, id: u64) -> Result<Option<Vec<u8>>> {
        let secs = r.kept_value(Kept::LastBind, &id.to_be_bytes())?.as_deref().and_then(decode);
        Ok(secs.map(|s| format_epoch(s as i64).into_bytes()))
    }
}
