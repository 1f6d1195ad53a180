//! The audit trail: every write, accepted or refused, is a changelog record
//! (who, when, from where, what, result; never a password value). It is read
//! by `convergences audit` and, by CIG administrators, over LDAP under
//! `cn=changelog` as draft-good-ldap-changelog entries.

use super::filter::Tri;
use super::search::CHANGELOG_NDN;
use super::*;
use crate::store::ChangeRecord;

/// Records read from the store at a time.
const BATCH: usize = 1024;

/// Which records `convergences audit` lists.
#[derive(Debug, Default, Clone)]
pub struct AuditQuery {
    /// Only changes to entries of this organisation (its normalised DN).
    pub org_ndn: Option<String>,
    /// Only changes at or after this time (GeneralizedTime, `YYYYMMDDHHMMSSZ`).
    pub since: Option<String>,
}

/// Turn `2026-11-23`, `2026-11-23T10:00:00Z` or `20261123100000Z` into the
/// changelog's GeneralizedTime form, for comparisons.
pub fn parse_since(s: &str) -> Result<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < 8 || digits.len() > 14 || !s.chars().all(|c| c.is_ascii_digit() || "-:TZ ".contains(c)) {
        return Err(DirectoryError::InvalidAttributeSyntax(format!(
            "'{s}' is not a date (2026-11-23, 2026-11-23T10:00:00Z or 20261123100000Z)"
        )));
    }
    Ok(format!("{digits:0<14}Z"))
}

impl Directory {
    /// The audit trail, oldest first.
    pub fn audit(&self, q: &AuditQuery, mut each: impl FnMut(u64, &ChangeRecord) -> Result<()>) -> Result<()> {
        let r = self.store.read()?;
        let mut next = 0u64;
        loop {
            let batch = r.changes_since(next, BATCH)?;
            let Some((last, _)) = batch.last() else { return Ok(()) };
            next = last + 1;
            for (seq, rec) in &batch {
                if q.since.as_deref().is_some_and(|s| rec.time.as_str() < s) {
                    continue;
                }
                if let Some(org) = &q.org_ndn
                    && !(rec.org == *org || self.normalize_dn_str(&rec.dn).is_some_and(|n| dn::is_under(&n, org)))
                {
                    continue;
                }
                each(*seq, rec)?;
            }
        }
    }

    /// The audit trail as a client identity may read it: all of it for
    /// whoever the policy lets read `cn=changelog` (CIG administrators);
    /// one organisation's records (`q.org_ndn`) for whoever may read that
    /// organisation's own entry (its référents), DESIGN.md's "each
    /// référent sees what happened to their organisation".
    pub fn audit_as(
        &self,
        who: &Principal,
        q: &AuditQuery,
        each: impl FnMut(u64, &ChangeRecord) -> Result<()>,
    ) -> Result<()> {
        self.may_read_trail(who, q.org_ndn.as_deref())?;
        self.audit(q, each)
    }

    /// Whether `who` may read the whole trail, or (`org`) one organisation's.
    fn may_read_trail(&self, who: &Principal, org: Option<&str>) -> Result<()> {
        let r = self.store.read()?;
        let access = self.access(who);
        let container = Entry::new(Dn::parse(CHANGELOG_NDN)?)
            .with("objectClass", ["top", "applicationProcess"])
            .with("cn", ["changelog"]);
        if access.readable(&r, CHANGELOG_NDN, &container)?.is_some() {
            return Ok(());
        }
        let refused = || DirectoryError::InsufficientAccess("the audit trail of this organisation".into());
        let org = org.ok_or_else(refused)?;
        let id = r.id_of_dn(org)?.ok_or_else(refused)?;
        let entry = r.entry(id)?.map(|rec| self.to_entry(&rec)).transpose()?.ok_or_else(refused)?;
        if access.readable(&r, org, &entry)?.is_none() {
            return Err(refused());
        }
        Ok(())
    }

    /// The `limit` most recent records of the trail `q` names (one
    /// organisation's, since a time) that `wanted` keeps, newest first, for
    /// whoever may read them (see [`Directory::audit_as`]). Read from the
    /// end, at most `scan` records looked at: a page of the journal or a
    /// dashboard's glance, not a search of the whole trail. Whether more
    /// were left unread is the second value.
    pub fn recent_changes_as(
        &self,
        who: &Principal,
        q: &AuditQuery,
        limit: usize,
        scan: usize,
        mut wanted: impl FnMut(&ChangeRecord) -> bool,
    ) -> Result<(Vec<ChangeRecord>, bool)> {
        self.may_read_trail(who, q.org_ndn.as_deref())?;
        let r = self.store.read()?;
        let (mut out, mut next, mut seen) = (Vec::new(), u64::MAX, 0usize);
        loop {
            if seen >= scan {
                return Ok((out, true));
            }
            let batch = r.changes_before(next, BATCH.min(scan - seen))?;
            let Some((first, _)) = batch.last() else { return Ok((out, false)) };
            next = *first;
            seen += batch.len();
            for (_, rec) in batch {
                // Records are in time order: past `since`, nothing older counts.
                if q.since.as_deref().is_some_and(|s| rec.time.as_str() < s) {
                    return Ok((out, false));
                }
                let ours = match &q.org_ndn {
                    None => true,
                    Some(org) if rec.org == *org => true,
                    // The organisation is stored with each record; only
                    // records without one are placed by their DN.
                    Some(org) => {
                        rec.org.is_empty() && self.normalize_dn_str(&rec.dn).is_some_and(|n| dn::is_under(&n, org))
                    }
                };
                if ours && wanted(&rec) {
                    if out.len() == limit {
                        return Ok((out, true));
                    }
                    out.push(rec);
                }
            }
        }
    }

    pub(super) fn normalize_dn_str(&self, s: &str) -> Option<String> {
        Dn::parse(s).ok().and_then(|d| self.normalize_dn(&d).ok())
    }

    /// A search under `cn=changelog`.
    pub(super) fn search_changelog(
        &self,
        who: &Principal,
        req: &SearchRequest,
        mut emit: impl FnMut(Entry) -> Result<()>,
    ) -> Result<usize> {
        let r = self.store.read()?;
        let access = self.access(who);
        let container = Entry::new(Dn::parse(CHANGELOG_NDN)?)
            .with("objectClass", ["top", "applicationProcess"])
            .with("cn", ["changelog"]);
        if access.readable(&r, CHANGELOG_NDN, &container)?.is_none() {
            return Err(self.hidden(&req.base));
        }
        let base_ndn = self.normalize_dn(&req.base)?;
        // The base is the container or one change, `changeNumber=N,cn=changelog`.
        let only: Option<u64> = if base_ndn == CHANGELOG_NDN {
            None
        } else {
            let n = req
                .base
                .rdn()
                .filter(|_| req.base.rdns().len() == 2)
                .and_then(|rdn| rdn.avas.first())
                .filter(|a| a.attr.eq_ignore_ascii_case("changeNumber"))
                .and_then(|a| a.value.parse().ok());
            match n {
                Some(n) if r.changes_since(n, 1)?.first().is_some_and(|(s, _)| *s == n) => Some(n),
                _ => return Err(self.hidden(&req.base)),
            }
        };
        let selection_all = req.attrs.is_empty() || req.attrs.iter().any(|a| a == "*");
        let mut sent = 0usize;
        let mut send = |e: Entry, sent: &mut usize| -> Result<()> {
            if req.filter.evaluate(&self.schema, &e) != Tri::True {
                return Ok(());
            }
            if req.size_limit > 0 && *sent >= req.size_limit {
                return Err(DirectoryError::SizeLimitExceeded);
            }
            let mut e = e;
            if !selection_all {
                e.attrs.retain(|a| req.attrs.iter().any(|w| w.eq_ignore_ascii_case(&a.name)));
            }
            if req.types_only {
                e.attrs.iter_mut().for_each(|a| a.values.clear());
            }
            emit(e)?;
            *sent += 1;
            Ok(())
        };
        let container_in_scope = only.is_none() && matches!(req.scope, Scope::Base | Scope::Sub);
        if container_in_scope {
            send(container, &mut sent)?;
        }
        let changes_in_scope = match only {
            Some(_) => matches!(req.scope, Scope::Base | Scope::Sub),
            None => req.scope != Scope::Base,
        };
        if !changes_in_scope {
            return Ok(sent);
        }
        let mut next = only.unwrap_or(0);
        loop {
            let batch = r.changes_since(next, if only.is_some() { 1 } else { BATCH })?;
            let Some((last, _)) = batch.last() else { break };
            next = last + 1;
            for (seq, rec) in batch {
                if req.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed)) {
                    return Err(DirectoryError::Abandoned);
                }
                send(change_entry(seq, &rec)?, &mut sent)?;
            }
            if only.is_some() {
                break;
            }
        }
        Ok(sent)
    }
}

/// One change as a `changeLogEntry`.
fn change_entry(seq: u64, rec: &ChangeRecord) -> Result<Entry> {
    let dn = Dn::parse(&format!("changeNumber={seq},{CHANGELOG_NDN}"))?;
    let mut e = Entry::new(dn)
        .with("objectClass", ["top", "changeLogEntry"])
        .with("changeNumber", [seq.to_string()])
        .with("targetDN", [rec.dn.as_str()])
        .with("changeType", [rec.op.as_str()])
        .with("changeTime", [rec.time.as_str()])
        .with("cigAuditActor", [rec.actor.as_str()])
        .with("cigAuditResult", [rec.result.as_str()]);
    if !rec.peer.is_empty() {
        e = e.with("cigAuditPeer", [rec.peer.as_str()]);
    }
    if !rec.org.is_empty() {
        e = e.with("cigAuditOrganisation", [rec.org.as_str()]);
    }
    if rec.op == "modrdn" {
        if let Some(to) = rec.attrs.first().and_then(|t| Dn::parse(t).ok()) {
            e = e.with("newSuperior", [to.parent().to_string()]);
        }
    } else if !rec.attrs.is_empty() {
        e = e.with("cigAuditAttribute", rec.attrs.iter());
    }
    Ok(e)
}
