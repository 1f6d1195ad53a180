//! An account's life in time (issue 21): its window of validity, in
//! draft-behera-ldap-password-policy's `pwdStartTime` / `pwdEndTime` (which
//! slapd's ppolicy overlay and LTB's tools already read), and the
//! transitions the server records itself when a date passes.
//!
//! Transitions are computed from the store, never from timers held in
//! memory: [`Directory::lifecycle`] finds the entries whose end date has
//! passed and whose passing is not recorded yet (`cigValidityEnded`), and
//! records each in its own transaction, after checking again inside it that
//! it is still due. A restart, a crash between two transitions, or two steps
//! running at once (the server's own and `convergences lifecycle`) apply
//! each transition exactly once.

use super::schema::syntax::{format_epoch, parse_generalized_time};
use super::*;
use crate::store::{Reader, WriteTx};

/// The attributes of the window, and the server's note of a recorded end.
pub const START: &str = "pwdStartTime";
pub const END: &str = "pwdEndTime";
pub const END_RECORDED: &str = "cigValidityEnded";

/// The name the server signs its own transitions with in the audit trail.
pub const SERVER_ACTOR: &str = "convergences";

/// Where an account stands against its window of validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Before `pwdStartTime`.
    NotYet,
    Open,
    /// At or after `pwdEndTime`.
    Ended,
}

/// A stored GeneralizedTime to the second, in UTC (`YYYYMMDDHHMMSS`): the
/// form times are compared in. `None` when it does not parse (the schema
/// refuses such values; an entry imported without checks counts as no date).
pub fn instant(value: &[u8]) -> Option<String> {
    let canonical = parse_generalized_time(std::str::from_utf8(value).ok()?).ok()?;
    canonical.get(..14).map(str::to_string)
}

/// Now, in seconds since the epoch: the one clock of the lifecycle, the
/// password policy and the recycle bin.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The current time in the form of [`instant`].
pub fn now_instant() -> String {
    epoch_instant(now_secs() as i64)
}

pub fn epoch_instant(secs: i64) -> String {
    let mut t = format_epoch(secs);
    t.pop();
    t
}

/// Where the window `[start, end)` puts `now` (all in the form of [`instant`]).
pub fn validity(start: Option<&str>, end: Option<&str>, now: &str) -> Validity {
    if start.is_some_and(|s| now < s) {
        Validity::NotYet
    } else if end.is_some_and(|e| now >= e) {
        Validity::Ended
    } else {
        Validity::Open
    }
}

/// An entry's window, read from its attributes.
pub fn validity_of(entry: &Entry, now: &str) -> Validity {
    let date = |name| entry.get(name).and_then(|a| a.values.first()).and_then(|v| instant(v));
    validity(date(START).as_deref(), date(END).as_deref(), now)
}

/// Whether an account may authenticate now: not suspended (`cigActive:
/// FALSE`) and inside its window of validity.
pub fn usable(entry: &Entry) -> bool {
    let suspended = entry.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE"));
    !suspended && validity_of(entry, &now_instant()) == Validity::Open
}

/// Why an account may or may not log in now, as an administrator reads it
/// (SCIM `status`): `suspended` (`cigActive: FALSE`), `notYetValid`,
/// `ended`, or `active`.
pub fn standing(entry: &Entry) -> &'static str {
    if entry.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")) {
        return "suspended";
    }
    match validity_of(entry, &now_instant()) {
        Validity::NotYet => "notYetValid",
        Validity::Ended => "ended",
        Validity::Open => "active",
    }
}

/// A retention of `days` after `secs` (seconds since the epoch), capped at
/// the last second GeneralizedTime can write: "keep for ever" never wraps
/// round into the past.
pub fn days_after(secs: u64, days: u64) -> u64 {
    const LAST: u64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    secs.saturating_add(days.saturating_mul(86_400)).min(LAST)
}

/// Seconds since the epoch of `secs` minus `days` (at least the epoch).
pub fn days_before(secs: i64, days: u64) -> i64 {
    secs.saturating_sub(i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX)).max(0)
}

/// The window's dates as stored: canonical GeneralizedTime in UTC
/// (RFC 4517 §3.3.13), so that they read back as they compare, and a value
/// sent back unchanged in another spelling is no new end date.
pub(super) fn canonicalize_window(entry: &mut Entry) {
    for name in [START, END] {
        if let Some(a) = entry.get_mut(name) {
            for v in a.values.iter_mut() {
                if let Some(c) = std::str::from_utf8(v).ok().and_then(|s| parse_generalized_time(s).ok()) {
                    let second = c.get(..14).map(|t| format!("{t}Z")).unwrap_or(c);
                    *v = second.into_bytes();
                }
            }
        }
    }
}

/// Refuse a window that never opens (constraintViolation): an end at or
/// before the start is a mistake, not a way to disable an account.
pub(super) fn check_window(entry: &Entry) -> Result<()> {
    let date = |name| entry.get(name).and_then(|a| a.values.first()).map(|v| (String::from_utf8_lossy(v), instant(v)));
    if let (Some((start, Some(s))), Some((end, Some(e)))) = (date(START), date(END))
        && e <= s
    {
        return Err(DirectoryError::ConstraintViolation(format!(
            "pwdEndTime ({end}) is not after pwdStartTime ({start}): the account would never be valid"
        )));
    }
    Ok(())
}

/// A count of days an organisation's entry sets in `attr` (a retention
/// that overrides the server's setting), when it sets one.
pub(super) fn organisation_days(r: &impl Reader, org_ndn: &str, attr: &str) -> Result<Option<u64>> {
    let Some(id) = r.id_of_dn(org_ndn)? else { return Ok(None) };
    Ok(r.entry(id)?.and_then(|rec| {
        (rec.attrs.into_iter())
            .find(|(n, _)| n.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.into_iter().next())
            .and_then(|v| String::from_utf8(v).ok()?.trim().parse::<u64>().ok())
    }))
}

/// What one lifecycle step did.
#[derive(Debug, Default)]
pub struct LifecycleReport {
    /// Accounts whose end of validity was recorded (DNs as stored).
    pub ended: Vec<String>,
    /// Deleted agents purged from the recycle bin, their retention over.
    pub purged: Vec<String>,
    /// Audit records purged, their retention over.
    pub audit_purged: usize,
    /// Deletions forgotten by the deletion log, beyond its days or count.
    pub deletions_pruned: usize,
}

impl Directory {
    /// Apply every transition due at `as_of` (the form of [`instant`]) that
    /// is not applied yet: the end of validity of accounts, recorded in the
    /// audit trail as `disabled: end of validity` by the server, and the
    /// purge of deleted agents whose time in the recycle bin is over.
    pub fn lifecycle(&self, as_of: &str) -> Result<LifecycleReport> {
        if self.replica_of().is_some() {
            // A replica's entries change with its provider's, which applies
            // the transitions; only its own deletion log is its to keep.
            return Ok(LifecycleReport { deletions_pruned: self.prune_deletion_log()?, ..Default::default() });
        }
        let candidates = {
            let r = self.store.read()?;
            let ids = r.postings(&crate::store::index_key(crate::store::IndexKind::Presence, "pwdendtime", b""))?;
            let mut due = Vec::new();
            for id in ids {
                if let Some(Some(dn)) = r.entry_view(id, |v| Ok(end_due(&v, as_of).then(|| v.dn.to_string())))? {
                    due.push((id, dn));
                }
            }
            due
        };
        let mut report = LifecycleReport::default();
        for (id, dn) in candidates {
            match self.record_end(id, &dn, as_of) {
                Ok(true) => report.ended.push(dn),
                Ok(false) => {}
                Err(e) => tracing::warn!(%dn, "could not record the end of validity: {e}"),
            }
        }
        if !report.ended.is_empty() {
            tracing::info!(accounts = report.ended.len(), "end of validity recorded");
        }
        report.purged = self.purge_bin(as_of)?;
        report.audit_purged = self.purge_audit(as_of)?;
        report.deletions_pruned = self.prune_deletion_log()?;
        if !report.purged.is_empty() {
            tracing::info!(agents = report.purged.len(), "purged from the recycle bin");
        }
        Ok(report)
    }

    /// Record one account's end of validity, if it is still due once inside
    /// the transaction (another step may have recorded it meanwhile, or a
    /// référent moved the date). True when this call recorded it.
    fn record_end(&self, id: u64, dn: &str, as_of: &str) -> Result<bool> {
        let server = Actor { peer: "lifecycle".into(), ..Actor::new(SERVER_ACTOR) };
        let target = Dn::parse(dn)?;
        let attrs = vec![END.to_string()];
        self.audited(&server, "lifecycle", &target, attrs.clone(), |w: &mut WriteTx| {
            let Some(rec) = w.entry(id)? else { return Ok(false) };
            let before = self.to_entry(&rec)?;
            let end = before.get(END).and_then(|a| a.values.first()).cloned();
            let Some(end) = end.filter(|e| instant(e).is_some_and(|e| e.as_str() <= as_of)) else {
                return Ok(false);
            };
            if before.get(END_RECORDED).and_then(|a| a.values.first()) == Some(&end) {
                return Ok(false);
            }
            let mut after = before.clone();
            after.set(END_RECORDED, vec![end]);
            // The SCIM view changes (active: false): a new revision, a new ETag.
            super::request::bump_revision(&mut after);
            self.reindex(w, id, &before, &after)?;
            w.put_encoded_entry(id, self.record(&after, &rec.ndn, rec.parent))?;
            self.log_audit(w, &server, "lifecycle", &rec.dn, attrs, "disabled: end of validity")?;
            Ok(true)
        })
    }
}

/// Whether the entry's end of validity has passed at `as_of` without being recorded.
fn end_due(v: &crate::store::RecordView<'_>, as_of: &str) -> bool {
    let mut end = None;
    let mut recorded = None;
    let _ = v.for_each_attr(|name, values| {
        if name.eq_ignore_ascii_case(END.as_bytes()) {
            end = values.next().and_then(|x| x.ok()).map(<[u8]>::to_vec);
        } else if name.eq_ignore_ascii_case(END_RECORDED.as_bytes()) {
            recorded = values.next().and_then(|x| x.ok()).map(<[u8]>::to_vec);
        }
    });
    match end {
        Some(e) => instant(&e).is_some_and(|i| i.as_str() <= as_of) && recorded.as_deref() != Some(e.as_slice()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_opens_at_its_start_and_closes_at_its_end() {
        let (s, e) = (Some("20260101000000"), Some("20261231000000"));
        assert_eq!(validity(s, e, "20251231235959"), Validity::NotYet);
        assert_eq!(validity(s, e, "20260101000000"), Validity::Open);
        assert_eq!(validity(s, e, "20261230235959"), Validity::Open);
        assert_eq!(validity(s, e, "20261231000000"), Validity::Ended);
        assert_eq!(validity(None, None, "20261231000000"), Validity::Open);
    }

    #[test]
    fn stored_times_compare_in_utc_to_the_second() {
        assert_eq!(instant(b"202612311000+0100").as_deref(), Some("20261231090000"));
        assert_eq!(instant(b"20261231090000.75Z").as_deref(), Some("20261231090000"));
        assert_eq!(instant(b"demain"), None);
    }
}
