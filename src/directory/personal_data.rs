//! What the directory holds about people, for the RGPD (issue 21 §6): the
//! audit trail's retention (records older than their organisation's
//! retention are purged on schedule; what remains of them is a count per
//! month and organisation, never a name), and everything held about one
//! person, for a data-subject access request.

use std::collections::HashMap;

use super::schema::syntax::epoch_of;
use super::*;
use crate::store::ChangeRecord;

/// The attribute of an organisation's entry that overrides `audit_retention_days`.
pub const AUDIT_RETENTION_ATTR: &str = "cigAuditRetentionDays";

/// Where the counts of purged audit records are kept (meta table keys
/// `audit_purged:<YYYYMM>:<organisation ndn>`).
const PURGED: &str = "audit_purged:";

/// Audit records purged in one transaction.
const BATCH: usize = 1024;

/// Everything the directory holds about one person.
#[derive(Debug)]
pub struct PersonRecord {
    /// The entry, without its password hash.
    pub entry: Entry,
    /// Whether a password (hash) is held.
    pub password_held: bool,
    /// DNs of the groups the person is a member of.
    pub groups: Vec<String>,
    /// `pwdLastSuccess`, when recorded.
    pub last_bind: Option<String>,
    /// Audit records in which the person is the target or the actor.
    pub audit: Vec<(u64, ChangeRecord)>,
}

impl Directory {
    /// Days an organisation's audit records are kept (its
    /// `cigAuditRetentionDays`, else the setting).
    fn audit_retention(&self, r: &impl Reader, org_ndn: &str) -> Result<u64> {
        if org_ndn.is_empty() {
            return Ok(self.audit_retention_days);
        }
        let own = lifecycle::organisation_days(r, org_ndn, AUDIT_RETENTION_ATTR)?;
        Ok(own.unwrap_or(self.audit_retention_days))
    }

    /// The shortest retention of any organisation (and the setting): no
    /// record younger than that is due, so the scan of the trail, oldest
    /// first, stops there.
    fn shortest_audit_retention(&self, r: &impl Reader) -> Result<u64> {
        let mut shortest = self.audit_retention_days;
        let container = format!("ou=organisations,{}", self.suffix_ndn);
        if let Some(id) = r.id_of_dn(&container)? {
            for org in r.children(id)? {
                if let Some(rec) = r.entry(org)? {
                    shortest = shortest.min(self.audit_retention(r, &rec.ndn)?);
                }
            }
        }
        Ok(shortest)
    }

    /// Purge the audit records whose retention is over at `as_of` (the form
    /// of [`lifecycle::instant`]), counting them per month and organisation;
    /// how many. A batch is one transaction, which counts only the records
    /// it removes: a crash between two leaves the rest to the next step,
    /// and nothing is counted twice.
    pub(super) fn purge_audit(&self, as_of: &str) -> Result<usize> {
        let Some(now) = epoch_of(as_of) else { return Ok(0) };
        let (due, mut purged) = (|| -> Result<(Vec<u64>, usize)> {
            let r = self.store.read()?;
            let horizon = lifecycle::epoch_instant(lifecycle::days_before(now, self.shortest_audit_retention(&r)?));
            let mut cutoffs: HashMap<String, String> = HashMap::new();
            let mut due = Vec::new();
            let mut next = 0;
            loop {
                let batch = r.changes_since(next, BATCH)?;
                let Some((last, _)) = batch.last() else { break };
                next = last + 1;
                for (seq, c) in &batch {
                    let time = c.time.get(..14).unwrap_or(&c.time);
                    if time >= horizon.as_str() {
                        return Ok((due, 0));
                    }
                    let org = self.record_org(&r, c)?;
                    let cutoff = match cutoffs.get(&org) {
                        Some(t) => t.clone(),
                        None => {
                            let days = self.audit_retention(&r, &org)?;
                            let t = lifecycle::epoch_instant(lifecycle::days_before(now, days));
                            cutoffs.insert(org, t.clone());
                            t
                        }
                    };
                    if time < cutoff.as_str() {
                        due.push(*seq);
                    }
                }
            }
            Ok((due, 0))
        })()?;
        for chunk in due.chunks(BATCH) {
            purged += self.store.write_with(|w| -> Result<usize> {
                let mut counts: HashMap<String, u64> = HashMap::new();
                for &seq in chunk {
                    let Some((found, c)) = w.changes_since(seq, 1)?.into_iter().next() else { continue };
                    if found != seq {
                        continue;
                    }
                    w.delete_change(seq)?;
                    let month = c.time.get(..6).unwrap_or("");
                    let org = self.record_org(w, &c)?;
                    *counts.entry(format!("{PURGED}{month}:{org}")).or_default() += 1;
                }
                let mut n = 0;
                for (key, add) in counts {
                    let held = w.meta(&key)?.unwrap_or(0);
                    w.set_meta(&key, held + add)?;
                    n += add as usize;
                }
                Ok(n)
            })?;
        }
        Ok(purged)
    }

    /// The organisation an audit record is about: the one it names, else
    /// (records written before their organisation was one) the one its
    /// target lies in now, as `convergences audit --org` finds it.
    fn record_org(&self, r: &impl Reader, c: &ChangeRecord) -> Result<String> {
        if !c.org.is_empty() {
            return Ok(c.org.clone());
        }
        let Some(ndn) = self.normalize_dn_str(&c.dn) else { return Ok(String::new()) };
        Ok(self.organisation_of(r, &ndn, true)?.map(str::to_string).unwrap_or_default())
    }

    /// The audit records purged so far: (month `YYYYMM`, organisation ndn, count).
    pub fn purged_audit_counts(&self) -> Result<Vec<(String, String, u64)>> {
        let r = self.store.read()?;
        let mut out = Vec::new();
        for (key, n) in r.meta_with_prefix(PURGED)? {
            let rest = key.strip_prefix(PURGED).unwrap_or(&key);
            let (month, org) = rest.split_once(':').unwrap_or((rest, ""));
            out.push((month.to_string(), org.to_string(), n));
        }
        Ok(out)
    }

    /// Everything held about the person named `dn`: a data-subject access request.
    pub fn person_record(&self, dn: &Dn) -> Result<PersonRecord> {
        let ndn = self.normalize_dn(dn)?;
        let (mut entry, groups, last_bind) = {
            let r = self.store.read()?;
            let Some(id) = r.id_of_dn(&ndn)? else { return Err(self.no_such_object(&r, dn)) };
            let Some(rec) = r.entry(id)? else { return Err(self.no_such_object(&r, dn)) };
            (self.to_entry(&rec)?, self.member_of_in(&r, &ndn)?, self.last_bind_value(&r, id)?)
        };
        let password_held = entry.remove("userPassword").is_some();
        let mut audit = Vec::new();
        self.audit(&AuditQuery::default(), |seq, c| {
            let names = |s: &str| self.normalize_dn_str(s).is_some_and(|n| n == ndn);
            if names(&c.dn) || names(&c.actor) {
                audit.push((seq, c.clone()));
            }
            Ok(())
        })?;
        let last_bind = last_bind.and_then(|v| String::from_utf8(v).ok());
        Ok(PersonRecord { entry, password_held, groups, last_bind, audit })
    }
}
