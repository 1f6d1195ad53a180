//! Search (RFC 4511 §4.5): the root DSE and the subschema, then the
//! directory's own search, answered inline when the index leaves few
//! candidates and on the blocking pool otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchScope};

use super::{InFlight, Reply, Session, Shape, parse_dn};
use crate::directory::filter::Tri;
use crate::directory::schema::MatchingRule;
use crate::directory::{DirectoryError, Entry, Principal, Scope, SearchRequest};
use crate::ldap::controls::{self, WriteControls};
use crate::ldap::paging::SortKey;
use crate::ldap::result::{from_error, result, success};
use crate::ldap::rootdse::{self, SUBSCHEMA_DN};
use crate::ldap::{Conn, ber, convert};

/// A search whose index candidates are at most this many is answered inline
/// on the connection task; a larger one goes to the blocking pool.
const INLINE_CANDIDATES: usize = 64;
/// A large search is written in buffers of about this size.
pub(super) const FLUSH_BYTES: usize = 64 * 1024;

/// The search request's controls we act on.
#[derive(Default)]
pub(super) struct SearchControls {
    pub paged: Option<(i64, Vec<u8>)>,
    pub sort: Option<Vec<SortKey>>,
}
fn search_controls(ctrls: &[LdapControl]) -> SearchControls {
    let mut out = SearchControls::default();
    for c in ctrls {
        match c {
            LdapControl::SimplePagedResults { size, cookie } => out.paged = Some((*size, cookie.clone())),
            LdapControl::ServerSort { sort_requests } => {
                out.sort = Some(
                    sort_requests
                        .iter()
                        .map(|r| SortKey {
                            attr: r.attribute_name.clone(),
                            rule: r.ordering_rule.as_deref().and_then(MatchingRule::from_name),
                            reverse: r.reverse_order,
                        })
                        .collect(),
                )
            }
            // ManageDsaIT: there are no referral objects, so it changes nothing (RFC 3296).
            _ => {}
        }
    }
    out
}

pub fn search(conn: &Arc<Conn>, session: Session, id: i32, req: LdapSearchRequest, ctrls: Vec<LdapControl>) -> Reply {
    let done = move |conn: &Conn, r: &LdapResult| conn.result_pdu(id, ber::SEARCH_RESULT_DONE, r, &[]);
    let base = match parse_dn(&req.base) {
        Ok(d) => d,
        Err(r) => return Reply::Now(done(conn, &r)),
    };
    let filter = convert::filter(&req.filter);
    let scope = match req.scope {
        LdapSearchScope::Base => Scope::Base,
        LdapSearchScope::OneLevel => Scope::One,
        LdapSearchScope::Subtree => Scope::Sub,
        LdapSearchScope::Children => Scope::Children,
    };
    let dir = &conn.ctx.directory;
    // Root DSE and subschema: readable by anyone (RFC 4512 §5.1, §4.4).
    if scope == Scope::Base && (base.is_root() || base.to_string().eq_ignore_ascii_case(SUBSCHEMA_DN)) {
        let entry =
            if base.is_root() { rootdse::root_dse(dir, mechanisms(conn, &session)) } else { rootdse::subschema(dir) };
        let mut out = Vec::new();
        if filter.evaluate(dir.schema(), &entry) == Tri::True {
            ber::search_entry(&mut out, id, &rootdse::select(entry, &req.attrs, req.typesonly));
        }
        out.extend(done(conn, &success()));
        return Reply::Now(out);
    }
    // ldap3_proto does not sign-extend: a negative limit reads as huge; clamp (RFC 4511 §4.5.1.4: 0 = none).
    let requested = usize::try_from(req.sizelimit).unwrap_or(0);
    let (server_size, server_time) = server_limits(conn, &session.principal);
    let size_limit = match (requested, server_size) {
        (0, s) => s,
        (r, 0) => r,
        (r, s) => r.min(s),
    };
    // A zero time limit is none (RFC 4511 §4.5.1.5), on either side.
    let time_limit = match (u64::try_from(req.timelimit).unwrap_or(0), server_time.is_zero()) {
        (0, true) => None,
        (0, false) => Some(server_time),
        (t, true) => Some(std::time::Duration::from_secs(t)),
        (t, false) => Some(server_time.min(std::time::Duration::from_secs(t))),
    };
    let op = InFlight::new(conn, id, Shape::Result(ber::SEARCH_RESULT_DONE));
    let sreq = SearchRequest {
        base,
        scope,
        filter,
        size_limit,
        time_limit,
        attrs: req.attrs,
        types_only: req.typesonly,
        cancel: Some(op.cancel.clone()),
    };
    match controls::write_controls(&ctrls) {
        Err(why) => {
            let r = done(conn, &result(LdapResultCode::ProtocolError, why));
            op.settle();
            return Reply::Now(r);
        }
        Ok(WriteControls { assertion: Some(filter), .. }) => {
            let refusal = match super::write::assertion_holds(dir, &session, &sreq.base, &filter) {
                Ok(true) => None,
                Ok(false) => Some(result(
                    LdapResultCode::AssertionFailed,
                    "the assertion control's filter does not match the base",
                )),
                Err(e) => Some(from_error(&e)),
            };
            if let Some(r) = refusal {
                let r = done(conn, &r);
                op.settle();
                return Reply::Now(r);
            }
        }
        Ok(_) => {}
    }
    let sync = ctrls.iter().find_map(|c| match c {
        LdapControl::SyncRequest { mode, cookie, .. } => Some((mode.clone(), cookie.clone())),
        _ => None,
    });
    if let Some((mode, cookie)) = sync {
        op.settle();
        return super::sync::sync_search(conn, session, id, sreq, mode, cookie);
    }
    let controls = search_controls(&ctrls);
    if controls.paged.is_some() || controls.sort.is_some() {
        let conn = conn.clone();
        return Reply::Pending(tokio::task::spawn_blocking(move || {
            let out = super::paged::result_set_search(&conn, &session, id, sreq, controls);
            if !op.cancelled() {
                op.answer(out);
            }
        }));
    }
    // Inline when the index leaves few candidates; otherwise on the blocking pool.
    let mut out = Vec::new();
    let r = dir.search_bounded(&session.principal, &sreq, Some(INLINE_CANDIDATES), |e| {
        emit(&mut out, id, e, None, &op.cancel)
    });
    match r {
        Ok(Some(_)) => {
            out.extend(done(conn, &success()));
            op.settle();
            Reply::Now(out)
        }
        Err(DirectoryError::Abandoned) => Reply::Silent,
        Err(e) => {
            out.extend(done(conn, &from_error(&e)));
            op.settle();
            Reply::Now(out)
        }
        Ok(None) => {
            let conn = conn.clone();
            Reply::Pending(tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let dir = conn.ctx.directory.clone();
                let r = dir.search(&session.principal, &sreq, |e| emit(&mut out, id, e, Some(&conn), &op.cancel));
                let res = match r {
                    Ok(_) => success(),
                    // Dropping the guard unregisters the abandoned operation.
                    Err(DirectoryError::Abandoned) => return,
                    Err(e) => from_error(&e),
                };
                out.extend(done(&conn, &res));
                op.answer(out);
            }))
        }
    }
}

/// The SASL mechanisms this session may use: EXTERNAL on the ldapi socket
/// (the peer's uid), and over TCP when client certificates are set up.
fn mechanisms(conn: &Conn, session: &Session) -> &'static [&'static str] {
    if session.local_uid.is_some() || !conn.ctx.sasl_mechanisms.is_empty() { &["EXTERNAL"] } else { &[] }
}

/// The server's size and time limits for this identity: the first matching
/// `limits.search_rules` entry, else `search_size` (administrators: none) and
/// `search_time_secs`.
fn server_limits(conn: &Conn, who: &Principal) -> (usize, std::time::Duration) {
    let ctx = &conn.ctx;
    if let Some(rule) = ctx.search_rules.iter().find(|r| r.applies_to(&ctx.directory, who)) {
        return (rule.size, rule.time);
    }
    let size = if who.is_admin(&ctx.directory) { 0 } else { ctx.search_size_limit };
    (size, ctx.search_time_limit)
}

/// Encode one entry; hand full buffers to the writer when streaming.
fn emit(
    out: &mut Vec<u8>,
    id: i32,
    e: Entry,
    stream: Option<&Conn>,
    cancel: &AtomicBool,
) -> Result<(), DirectoryError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(DirectoryError::Abandoned);
    }
    ber::search_entry(out, id, &e);
    if let Some(conn) = stream
        && out.len() >= FLUSH_BYTES
    {
        conn.send(std::mem::take(out));
    }
    Ok(())
}
