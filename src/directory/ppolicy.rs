//! The rest of the password policy (issue 21 §4), in the vocabulary of
//! draft-behera-ldap-password-policy so that existing tools read it:
//! maximum age with an expiry warning (pwdMaxAge / pwdExpireWarning,
//! counted from `pwdChangedTime`), history (pwdInHistory: none of the last
//! N passwords again) and "must change after reset" (`pwdReset`: set when
//! someone else sets a person's password, cleared when they change it
//! themselves). What a bind or a password change learns of it is a
//! [`PolicyNotice`], which LDAP sends as the Password Policy response
//! control (draft §6.2) to the clients that ask for it.
//!
//! The history holds old hashes: it is kept in a table of its own
//! (`store::kept`), never in the entry, where whoever reads the entry
//! would read it.

use super::schema::syntax::epoch_of;
use super::*;
use crate::store::{Kept, WriteTx};

/// draft §6.2 `error` values, as the response control carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    Expired = 0,
    AccountLocked = 1,
    ChangeAfterReset = 2,
    InsufficientQuality = 5,
    TooShort = 6,
    InHistory = 8,
}

/// What the policy tells a client about its bind or password change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyNotice {
    /// draft §6.2 `timeBeforeExpiration`, in seconds.
    pub expires_in: Option<u64>,
    pub problem: Option<PasswordProblem>,
}

impl PolicyNotice {
    pub fn is_empty(&self) -> bool {
        self.expires_in.is_none() && self.problem.is_none()
    }
}

/// The entry's flag: its password was set by someone else.
pub const RESET: &str = "pwdReset";

/// Where a password stands against the maximum age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Age {
    Fresh,
    /// Expires in this many seconds (within the warning).
    Expiring(u64),
    Expired,
}

fn is_person(entry: &Entry) -> bool {
    entry.get("objectClass").is_some_and(|a| {
        a.values.iter().any(|v| {
            ["person", "inetOrgPerson", "organizationalPerson"].iter().any(|c| c.as_bytes().eq_ignore_ascii_case(v))
        })
    })
}

impl Directory {
    /// The age of a password changed at `changed` (the form of
    /// [`lifecycle::instant`]); a password with no change time never expires.
    pub(super) fn password_age(&self, changed: Option<&str>) -> Age {
        let p = &self.password_policy;
        let Some(changed) = changed.and_then(epoch_of) else { return Age::Fresh };
        if p.max_age_secs == 0 {
            return Age::Fresh;
        }
        let left = changed.saturating_add(p.max_age_secs as i64).saturating_sub(lifecycle::now_secs() as i64);
        if left <= 0 {
            Age::Expired
        } else if (left as u64) <= p.expire_warning_secs {
            Age::Expiring(left as u64)
        } else {
            Age::Fresh
        }
    }

    /// Refuse a new password that is the entry's current one or one of its
    /// last `history` ones (constraintViolation, draft passwordInHistory),
    /// when a person changes their own: a password someone else sets is a
    /// temporary one, which its person must change anyway (`pwdReset`).
    /// Checked on a snapshot with the password in clear, before it is hashed.
    pub(super) fn refuse_reused(&self, actor: &Actor, dn: &Dn, plain: &[&[u8]]) -> Result<()> {
        let n = self.password_policy.history;
        if n == 0 || plain.is_empty() {
            return Ok(());
        }
        let Ok(ndn) = self.normalize_dn(dn) else { return Ok(()) };
        if !matches!(&actor.principal, Principal::Entry(e) if e.ndn == ndn) {
            return Ok(());
        }
        let r = self.store.read()?;
        let Some(id) = r.id_of_dn(&ndn)? else { return Ok(()) };
        let Some(rec) = r.entry(id)? else { return Ok(()) };
        let mut used: Vec<Vec<u8>> = (rec.attrs.into_iter())
            .filter(|(name, _)| name.eq_ignore_ascii_case("userPassword"))
            .flat_map(|(_, v)| v)
            .collect();
        used.extend(history(&r.kept_value(Kept::History, &id.to_be_bytes())?));
        if plain.iter().any(|p| used.iter().any(|h| password::verify(h, p))) {
            return Err(DirectoryError::PasswordRefused(
                PasswordProblem::InHistory,
                format!("the new password is the current one or one of the last {n}: choose another"),
            ));
        }
        Ok(())
    }

    /// A modify changed an entry's `userPassword`: its old values go into the
    /// history, and `pwdReset` says whether someone else set it.
    pub(super) fn password_changed(
        &self,
        w: &mut WriteTx,
        actor: &Actor,
        id: u64,
        ndn: &str,
        old: &Entry,
        new: &mut Entry,
    ) -> Result<()> {
        let p = &self.password_policy;
        let values = |e: &Entry| e.get("userPassword").map(|a| a.values.clone()).unwrap_or_default();
        let (before, after) = (values(old), values(new));
        if p.history > 0 {
            let key = id.to_be_bytes();
            let mut kept = history(&w.kept(Kept::History, &key)?);
            kept.extend(before.iter().filter(|v| !after.contains(v)).cloned());
            let drop = kept.len().saturating_sub(p.history);
            kept.drain(..drop);
            w.put_kept(Kept::History, &key, &kept.join(&b'\n'))?;
        }
        let own = matches!(&actor.principal, Principal::Entry(e) if e.ndn == ndn);
        if own || after.is_empty() {
            new.remove(RESET);
        } else if p.must_change_after_reset && !matches!(actor.principal, Principal::Server) && is_person(new) {
            new.set(RESET, vec![b"TRUE".to_vec()]);
        }
        Ok(())
    }

    /// Whether the session bound as `ndn` must still change its password.
    pub fn must_change_password(&self, ndn: &str) -> Result<bool> {
        let r = self.store.read()?;
        let Some(id) = r.id_of_dn(ndn)? else { return Ok(false) };
        let reset = r.entry_view(id, |v| {
            let mut reset = false;
            v.for_each_attr(|name, values| {
                if name.eq_ignore_ascii_case(RESET.as_bytes()) {
                    reset = values.filter_map(|x| x.ok()).any(|x| x.eq_ignore_ascii_case(b"TRUE"));
                }
            })?;
            Ok(reset)
        })?;
        Ok(reset.unwrap_or(false) && self.password_policy.must_change_after_reset)
    }
}

/// The hashes of a stored history, oldest first.
fn history(stored: &Option<Vec<u8>>) -> Vec<Vec<u8>> {
    match stored {
        Some(v) => v.split(|&b| b == b'\n').filter(|h| !h.is_empty()).map(<[u8]>::to_vec).collect(),
        None => Vec::new(),
    }
}
