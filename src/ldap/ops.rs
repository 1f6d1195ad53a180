//! One handler per LDAP operation. Handlers own no socket: they encode their
//! whole response and hand it to the connection's writer. The response type
//! always matches the request (RFC 4511 §4.2–4.12); Abandon and Unbind get
//! none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapAddRequest, LdapBindCred, LdapBindRequest, LdapCompareRequest, LdapExtendedRequest, LdapExtendedResponse,
    LdapModifyDNRequest, LdapModifyRequest, LdapModifyType, LdapMsg, LdapOp, LdapPasswordModifyRequest,
    LdapPasswordModifyResponse, LdapResult, LdapResultCode, LdapSearchRequest, LdapSearchScope,
};

use super::ber::{self, ResponseControl};
use super::controls::{self, WriteControls};
use super::paging::{Cursor, SortKey};
use super::result::{from_error, result, success};
use super::rootdse::{self, OID_PASSWORD_MODIFY, OID_WHOAMI, SUBSCHEMA_DN};
use super::{Conn, Context, convert};
use crate::directory::filter::Tri;
use crate::directory::schema::MatchingRule;
use crate::directory::{
    Actor, Attribute, Change, Condition, Directory, DirectoryError, Dn, Entry, ModOp, Modification, Principal, Rdn,
    Scope, SearchRequest, Write,
};

/// A search whose index candidates are at most this many is answered inline
/// on the connection task; a larger one goes to the blocking pool.
const INLINE_CANDIDATES: usize = 64;
/// A large search is written in buffers of about this size.
const FLUSH_BYTES: usize = 64 * 1024;
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";
pub const OID_SORT_REQUEST: &str = "1.2.840.113556.1.4.473";
pub const OID_SORT_RESPONSE: &str = "1.2.840.113556.1.4.474";
pub const OID_MANAGE_DSA_IT: &str = "2.16.840.1.113730.3.4.2";

/// Per-connection identity.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bound DN as the client gave it; empty when anonymous.
    pub bound_dn: String,
    pub bound_ndn: String,
    /// Who the access policy judges; resolved at bind, refreshed after commits.
    pub principal: Principal,
    /// The directory generation `principal` was resolved at.
    pub generation: u64,
    /// Whether the connection is protected by TLS (LDAPS or after StartTLS).
    pub is_tls: bool,
    /// The subject of the verified TLS client certificate, for SASL EXTERNAL.
    pub tls_client_dn: Option<Dn>,
    /// The client's address, for the audit trail.
    pub peer: String,
}

impl Default for Session {
    fn default() -> Session {
        Session {
            bound_dn: String::new(),
            bound_ndn: String::new(),
            principal: Principal::Anonymous,
            generation: 0,
            is_tls: false,
            tls_client_dn: None,
            peer: String::new(),
        }
    }
}

impl Session {
    fn actor(&self) -> Actor {
        let mut a = Actor::client(self.principal.clone(), self.peer.clone());
        if !self.bound_dn.is_empty() {
            a.dn = self.bound_dn.clone();
        }
        a
    }

    fn anonymous(&self) -> bool {
        self.bound_ndn.is_empty()
    }

    /// Group memberships may have changed since the bind: read them again
    /// when anything was committed meanwhile.
    fn refresh(&mut self, dir: &Directory) {
        let now = dir.generation();
        if now != self.generation && matches!(self.principal, Principal::Entry(_)) {
            if let Ok(p) = dir.refresh(&self.principal) {
                self.principal = p;
            }
            self.generation = now;
        }
    }
}

/// Handle one request (Unbind is the caller's).
pub async fn dispatch(conn: &Arc<Conn>, session: &mut Session, msg: LdapMsg) {
    let id = msg.msgid;
    if let Some(op) = metrics_op(&msg.op) {
        conn.begin(id, op, || (session.bound_dn.clone(), describe(&msg.op)));
    }
    // RFC 4511 §4.1.11: an unknown critical control must be refused.
    if let Some(oid) = msg.ctrl.iter().find_map(|c| match c {
        LdapControl::Unknown { oid, criticality: true, .. } => Some(oid.clone()),
        _ => None,
    }) {
        let res =
            result(LdapResultCode::UnavailableCriticalExtension, format!("critical control {oid} is not supported"));
        return refuse(conn, id, &msg.op, res);
    }
    if let Some(refusal) = over_limits(conn, session, &msg.op) {
        return refuse(conn, id, &msg.op, refusal);
    }
    if !matches!(msg.op, LdapOp::BindRequest(_)) {
        session.refresh(&conn.ctx.directory);
    }
    match msg.op {
        LdapOp::BindRequest(req) => {
            let res = bind(&conn.ctx, session, req).await;
            conn.send(conn.result_pdu(id, ber::BIND_RESPONSE, &res, &[]));
        }
        LdapOp::SearchRequest(req) => search(conn, session.clone(), id, req, msg.ctrl),
        LdapOp::AddRequest(_)
        | LdapOp::ModifyRequest(_)
        | LdapOp::DelRequest(_)
        | LdapOp::ModifyDNRequest(_)
        | LdapOp::CompareRequest(_) => {
            let tag = response_tag(&msg.op).unwrap_or(ber::MODIFY_RESPONSE);
            let wc = match controls::write_controls(&msg.ctrl) {
                Ok(wc) => wc,
                Err(why) => {
                    return conn.send(conn.result_pdu(id, tag, &result(LdapResultCode::ProtocolError, why), &[]));
                }
            };
            match msg.op {
                LdapOp::AddRequest(req) => {
                    let target = Target { dn: req.dn.clone(), after: Some(req.dn.clone()) };
                    spawn_write(conn, session, WriteOp { id, tag, controls: wc, target }, move || add(req))
                }
                LdapOp::ModifyRequest(req) => {
                    let target = Target { dn: req.dn.clone(), after: Some(req.dn.clone()) };
                    spawn_write(conn, session, WriteOp { id, tag, controls: wc, target }, move || modify(req))
                }
                LdapOp::DelRequest(dn) => {
                    let target = Target { dn: dn.clone(), after: None };
                    spawn_write(conn, session, WriteOp { id, tag, controls: wc, target }, move || delete(dn))
                }
                LdapOp::ModifyDNRequest(req) => {
                    let target = Target { dn: req.dn.clone(), after: renamed_dn(&req) };
                    spawn_write(conn, session, WriteOp { id, tag, controls: wc, target }, move || moddn(req))
                }
                LdapOp::CompareRequest(req) => {
                    let res = compare(&conn.ctx, session, req, &wc);
                    conn.send(conn.result_pdu(id, tag, &res, &[]));
                }
                _ => {}
            }
        }
        LdapOp::ExtendedRequest(req) => extended(conn, session, id, req),
        // RFC 4511 §4.11: no response to Abandon; the operation stops if it still runs.
        // The operation stays outstanding until its task ends (it unregisters
        // itself): abandoning does not free a slot of max_outstanding_ops.
        LdapOp::AbandonRequest(target) => {
            if let Ok(o) = conn.outstanding.lock()
                && let Some(flag) = o.get(&target)
            {
                flag.store(true, Ordering::Relaxed);
            }
        }
        LdapOp::UnbindRequest => {}
        // A response PDU sent to a server is a protocol error (RFC 4511 §4.1.1).
        _ => {
            let mut out = Vec::new();
            ber::encode_msg(
                &mut out,
                ldap3_proto::DisconnectionNotice::gen_response(
                    LdapResultCode::ProtocolError,
                    "unexpected PDU from a client",
                ),
            );
            conn.send(out);
        }
    }
}

/// Answer a request that will not run with `res`, in the response type its
/// operation calls for (none for Abandon and Unbind).
fn refuse(conn: &Conn, id: i32, op: &LdapOp, res: LdapResult) {
    if let Some(tag) = response_tag(op) {
        conn.send(conn.result_pdu(id, tag, &res, &[]));
    } else if let LdapOp::ExtendedRequest(_) = op {
        conn.send(conn.extended_pdu(id, ext(res)));
    }
}

/// Why this request is refused before it runs: an anonymous session where
/// binding first is required, or too many operations already running on the
/// connection (busy, RFC 4511 §4.1.9: the client may retry).
fn over_limits(conn: &Conn, session: &Session, op: &LdapOp) -> Option<LdapResult> {
    if matches!(op, LdapOp::BindRequest(_) | LdapOp::AbandonRequest(_) | LdapOp::UnbindRequest) {
        return None;
    }
    if conn.ctx.require_bind && matches!(session.principal, Principal::Anonymous) {
        let root_dse = matches!(op, LdapOp::SearchRequest(r) if r.base.is_empty() && r.scope == LdapSearchScope::Base);
        let whoami = matches!(op, LdapOp::ExtendedRequest(r) if r.name == OID_WHOAMI);
        if !root_dse && !whoami {
            return Some(result(LdapResultCode::UnwillingToPerform, "this server requires a bind first"));
        }
    }
    let running = conn.outstanding.lock().map(|o| o.len()).unwrap_or(0);
    if running >= conn.ctx.max_outstanding_ops {
        tracing::warn!(peer = %session.peer, running, "operation refused: too many outstanding on one connection");
        return Some(result(LdapResultCode::Busy, "too many operations outstanding on this connection"));
    }
    None
}

/// The operation as counted in the metrics; `None` for Abandon and Unbind, which have no response.
fn metrics_op(op: &LdapOp) -> Option<crate::metrics::LdapOp> {
    use crate::metrics::LdapOp as M;
    Some(match op {
        LdapOp::BindRequest(_) => M::Bind,
        LdapOp::SearchRequest(_) => M::Search,
        LdapOp::ModifyRequest(_) => M::Modify,
        LdapOp::AddRequest(_) => M::Add,
        LdapOp::DelRequest(_) => M::Delete,
        LdapOp::ModifyDNRequest(_) => M::ModDn,
        LdapOp::CompareRequest(_) => M::Compare,
        LdapOp::ExtendedRequest(_) => M::Extended,
        _ => return None,
    })
}

/// What an operation is about, for its log line: a DN, or a search's base,
/// scope and filter, or an extended operation's OID. Values written are not
/// logged, nor is any credential.
fn describe(op: &LdapOp) -> String {
    match op {
        LdapOp::BindRequest(r) => r.dn.clone(),
        LdapOp::SearchRequest(r) => {
            format!("{} {:?} {}", r.base, r.scope, convert::filter(&r.filter))
        }
        LdapOp::ModifyRequest(r) => r.dn.clone(),
        LdapOp::AddRequest(r) => r.dn.clone(),
        LdapOp::DelRequest(dn) => dn.clone(),
        LdapOp::ModifyDNRequest(r) => format!("{} -> {}", r.dn, r.newrdn),
        LdapOp::CompareRequest(r) => format!("{} {}", r.dn, r.atype),
        LdapOp::ExtendedRequest(r) => r.name.clone(),
        _ => String::new(),
    }
}

/// The response tag answering a request op with a plain LDAPResult.
fn response_tag(op: &LdapOp) -> Option<u8> {
    Some(match op {
        LdapOp::BindRequest(_) => ber::BIND_RESPONSE,
        LdapOp::SearchRequest(_) => ber::SEARCH_RESULT_DONE,
        LdapOp::ModifyRequest(_) => ber::MODIFY_RESPONSE,
        LdapOp::AddRequest(_) => ber::ADD_RESPONSE,
        LdapOp::DelRequest(_) => ber::DEL_RESPONSE,
        LdapOp::ModifyDNRequest(_) => ber::MODDN_RESPONSE,
        LdapOp::CompareRequest(_) => ber::COMPARE_RESPONSE,
        _ => return None,
    })
}

fn ext(res: LdapResult) -> LdapExtendedResponse {
    LdapExtendedResponse { res, name: None, value: None }
}

fn parse_dn(s: &str) -> Result<Dn, LdapResult> {
    Dn::parse(s).map_err(|e| from_error(&e))
}

fn register(conn: &Conn, id: i32) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    if let Ok(mut o) = conn.outstanding.lock() {
        o.insert(id, flag.clone());
    }
    flag
}

/// An operation that stopped because it was abandoned: no response, so no
/// metric or log line either.
fn abandoned(conn: &Conn, id: i32) {
    unregister(conn, id);
    if let Ok(mut s) = conn.started.lock() {
        s.remove(&id);
    }
}

fn unregister(conn: &Conn, id: i32) {
    if let Ok(mut o) = conn.outstanding.lock() {
        o.remove(&id);
    }
}

async fn bind(ctx: &Arc<Context>, session: &mut Session, req: LdapBindRequest) -> LdapResult {
    // A new bind starts from anonymous whatever its outcome (RFC 4511 §4.2.1).
    let tls_client_dn = session.tls_client_dn.take();
    *session = Session { is_tls: session.is_tls, tls_client_dn: tls_client_dn.clone(), ..Session::default() };
    if req.version != 3 {
        return result(LdapResultCode::ProtocolError, "only LDAP version 3 is supported");
    }
    let password = match req.cred {
        LdapBindCred::Simple(pw) => pw,
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => {
            return external_bind(ctx, session, tls_client_dn, &sasl.credentials).await;
        }
        LdapBindCred::SASL(sasl) => {
            let why = format!("SASL mechanism {} is not supported", sasl.mechanism);
            return result(LdapResultCode::AuthMethodNotSupported, why);
        }
        LdapBindCred::Unsupported => {
            return result(LdapResultCode::AuthMethodNotSupported, "this authentication method is not supported");
        }
    };
    if req.dn.is_empty() && password.is_empty() {
        return success();
    }
    if ctx.require_tls_for_bind && !session.is_tls {
        return result(LdapResultCode::ConfidentialityRequired, "simple binds need TLS here: use LDAPS or StartTLS");
    }
    if password.is_empty() {
        // RFC 4513 §5.1.2: an unauthenticated bind (DN, no password) is refused.
        return result(
            LdapResultCode::UnwillingToPerform,
            "unauthenticated bind (DN with an empty password) is not allowed",
        );
    }
    let Ok(dn) = Dn::parse(&req.dn) else {
        return result(LdapResultCode::InvalidCredentials, "");
    };
    let dir = ctx.directory.clone();
    let account = dir.account(&dn).ok().flatten();
    let cheap = dir.bind_is_cheap(account.as_ref());
    let peer = session.peer.clone();
    let check = move || dir.authenticate(account, password.as_bytes(), &peer);
    // Salted digests ({SSHA} …) take a microsecond: check inline. argon2, crypt,
    // the decoy of an unknown DN and a re-hash take milliseconds: keep them off
    // the reactor threads.
    let outcome = if cheap { Ok(check()) } else { tokio::task::spawn_blocking(check).await };
    match outcome {
        Ok(Ok(principal)) => {
            session.bound_ndn = match &principal {
                Principal::Entry(e) => e.ndn.clone(),
                _ => String::new(),
            };
            session.principal = principal;
            session.generation = ctx.directory.generation();
            session.bound_dn = req.dn;
            success()
        }
        Ok(Err(e)) => from_error(&e),
        Err(_) => result(LdapResultCode::Other, "bind failed"),
    }
}

/// SASL EXTERNAL: bind as the entry the TLS client certificate names. Its
/// subject is read as a DN: the entry with that DN if there is one, else the
/// entry whose `uid` (unique in the directory) is the subject's `uid`, else
/// the one entry whose `mail` is the subject's `emailAddress` — what CIG
/// certificates carry. An authorization identity, when given, must name the
/// same entry (RFC 4422 Appendix A); a disabled account is refused.
async fn external_bind(ctx: &Arc<Context>, session: &mut Session, client_dn: Option<Dn>, authz: &[u8]) -> LdapResult {
    let Some(subject) = client_dn else {
        return result(LdapResultCode::InappropriateAuthentication, "EXTERNAL needs a TLS client certificate");
    };
    let dir = ctx.directory.clone();
    let authz = String::from_utf8_lossy(authz).into_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let entry = certificate_entry(&dir, &subject)?.ok_or(DirectoryError::InvalidCredentials)?;
        let ndn = dir.normalize_dn(&entry.dn)?;
        if !authz.is_empty() {
            let asked = Dn::parse(authz.strip_prefix("dn:").unwrap_or(&authz))?;
            if dir.normalize_dn(&asked)? != ndn {
                return Err(DirectoryError::InvalidCredentials);
            }
        }
        if entry.first_str("cigActive").is_some_and(|v| v.eq_ignore_ascii_case("FALSE")) {
            return Err(DirectoryError::InvalidCredentials);
        }
        let principal = dir.principal_of(&entry.dn)?;
        Ok((entry.dn.to_string(), ndn, principal, dir.generation()))
    })
    .await;
    match outcome {
        Ok(Ok((dn, ndn, principal, generation))) => {
            session.principal = principal;
            session.generation = generation;
            session.bound_dn = dn;
            session.bound_ndn = ndn;
            success()
        }
        Ok(Err(e)) => from_error(&e),
        Err(_) => result(LdapResultCode::Other, "bind failed"),
    }
}

/// The entry a certificate subject designates (see [`external_bind`]).
fn certificate_entry(dir: &Directory, subject: &Dn) -> Result<Option<Entry>, DirectoryError> {
    if dir.normalize_dn(subject).is_ok()
        && let Some(e) = dir.get(subject)?
    {
        return Ok(Some(e));
    }
    let value_of = |attr: &str| {
        subject.rdns().iter().flat_map(|r| &r.avas).find(|a| a.attr.eq_ignore_ascii_case(attr)).map(|a| a.value.clone())
    };
    let candidates = [("uid", value_of("uid")), ("mail", value_of("emailAddress"))];
    for (attr, value) in candidates {
        let Some(value) = value else { continue };
        let filter = crate::directory::Filter::Equality(attr.into(), value.into_bytes());
        let mut req = SearchRequest::new(dir.suffix().clone(), Scope::Sub, filter);
        req.size_limit = 2;
        let mut found = Vec::new();
        match dir.search(&Principal::Server, &req, |e| {
            found.push(e);
            Ok(())
        }) {
            Ok(_) if found.len() == 1 => return Ok(found.pop()),
            Ok(_) | Err(DirectoryError::SizeLimitExceeded) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The search request's controls we act on.
#[derive(Default)]
struct SearchControls {
    paged: Option<(i64, Vec<u8>)>,
    sort: Option<Vec<SortKey>>,
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

fn search(conn: &Arc<Conn>, session: Session, id: i32, req: LdapSearchRequest, ctrls: Vec<LdapControl>) {
    let done = move |conn: &Conn, r: &LdapResult| conn.result_pdu(id, ber::SEARCH_RESULT_DONE, r, &[]);
    let base = match parse_dn(&req.base) {
        Ok(d) => d,
        Err(r) => return conn.send(done(conn, &r)),
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
            if base.is_root() { rootdse::root_dse(dir, &conn.ctx.sasl_mechanisms) } else { rootdse::subschema(dir) };
        let mut out = Vec::new();
        if filter.evaluate(dir.schema(), &entry) == Tri::True {
            ber::search_entry(&mut out, id, &rootdse::select(entry, &req.attrs, req.typesonly));
        }
        out.extend(done(conn, &success()));
        return conn.send(out);
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
    let cancel = register(conn, id);
    let sreq = SearchRequest {
        base,
        scope,
        filter,
        size_limit,
        time_limit,
        attrs: req.attrs,
        types_only: req.typesonly,
        cancel: Some(cancel.clone()),
    };
    match controls::write_controls(&ctrls) {
        Err(why) => {
            unregister(conn, id);
            return conn.send(done(conn, &result(LdapResultCode::ProtocolError, why)));
        }
        Ok(WriteControls { assertion: Some(filter), .. }) => {
            match assertion_holds(dir, &session, &sreq.base, &filter) {
                Ok(true) => {}
                Ok(false) => {
                    unregister(conn, id);
                    let r = result(
                        LdapResultCode::AssertionFailed,
                        "the assertion control's filter does not match the base",
                    );
                    return conn.send(done(conn, &r));
                }
                Err(e) => {
                    unregister(conn, id);
                    return conn.send(done(conn, &from_error(&e)));
                }
            }
        }
        Ok(_) => {}
    }
    let controls = search_controls(&ctrls);
    if controls.paged.is_some() || controls.sort.is_some() {
        let conn = conn.clone();
        tokio::task::spawn_blocking(move || {
            let out = result_set_search(&conn, &session, id, sreq, controls);
            if cancel.load(Ordering::Relaxed) {
                abandoned(&conn, id);
            } else {
                unregister(&conn, id);
                conn.send(out);
            }
        });
        return;
    }
    // Inline when the index leaves few candidates; otherwise on the blocking pool.
    let mut out = Vec::new();
    let r = dir
        .search_bounded(&session.principal, &sreq, Some(INLINE_CANDIDATES), |e| emit(&mut out, id, e, None, &cancel));
    match r {
        Ok(Some(_)) => {
            unregister(conn, id);
            out.extend(done(conn, &success()));
            conn.send(out);
        }
        Err(DirectoryError::Abandoned) => abandoned(conn, id),
        Err(e) => {
            unregister(conn, id);
            out.extend(done(conn, &from_error(&e)));
            conn.send(out);
        }
        Ok(None) => {
            let conn = conn.clone();
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let dir = conn.ctx.directory.clone();
                let r = dir.search(&session.principal, &sreq, |e| emit(&mut out, id, e, Some(&conn), &cancel));
                let res = match r {
                    Ok(_) => success(),
                    Err(DirectoryError::Abandoned) => return abandoned(&conn, id),
                    Err(e) => from_error(&e),
                };
                unregister(&conn, id);
                out.extend(done(&conn, &res));
                conn.send(out);
            });
        }
    }
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

/// Paged and/or sorted search: gather the matching DNs once, then serve a page.
fn result_set_search(conn: &Conn, session: &Session, id: i32, mut sreq: SearchRequest, c: SearchControls) -> Vec<u8> {
    let dir = &conn.ctx.directory;
    let fingerprint = format!("{}|{:?}|{}|{:?}", sreq.base, sreq.scope, sreq.filter, sreq.attrs);
    let mut response_controls = Vec::new();
    let finish = |res: &LdapResult, ctrls: &[ResponseControl]| conn.result_pdu(id, ber::SEARCH_RESULT_DONE, res, ctrls);
    let (page_size, cookie) = c.paged.clone().unwrap_or((0, Vec::new()));
    let page_size = usize::try_from(page_size).unwrap_or(0);

    // A continuation: the cookie names a cursor of this connection.
    let cursor = if cookie.is_empty() {
        None
    } else {
        let taken = conn.cursors.lock().ok().and_then(|mut cs| cs.take(&cookie));
        match taken {
            Some(cur) if cur.fingerprint == fingerprint => Some(cur),
            _ => {
                return finish(
                    &result(LdapResultCode::UnwillingToPerform, "paged results cookie is invalid or expired"),
                    &[],
                );
            }
        }
    };
    // RFC 2696 §3: a page size of 0 with a cookie abandons the paged search.
    if cursor.is_some() && page_size == 0 {
        let paged = ResponseControl { oid: OID_PAGED_RESULTS, value: Some(ber::paged_value(0, b"")) };
        return finish(&success(), &[paged]);
    }
    let mut cursor = match cursor {
        Some(c) => c,
        None => {
            // Gather the DNs (with the sort keys' values when sorting).
            let wanted_attrs = std::mem::take(&mut sreq.attrs);
            let mut gather = sreq.clone();
            gather.attrs = vec!["1.1".into()];
            if let Some(keys) = &c.sort {
                gather.attrs.extend(keys.iter().map(|k| k.attr.clone()));
            }
            sreq.attrs = wanted_attrs;
            let mut found: Vec<Entry> = Vec::new();
            let r = dir.search(&session.principal, &gather, |e| {
                found.push(e);
                Ok(())
            });
            let mut partial_error = None;
            match r {
                Ok(_) => {}
                Err(DirectoryError::SizeLimitExceeded) => partial_error = Some(DirectoryError::SizeLimitExceeded),
                Err(e) => return finish(&from_error(&e), &[]),
            }
            if let Some(keys) = &c.sort {
                let unknown = keys.iter().find(|k| dir.schema().attr_id(&k.attr).is_none());
                let code = match unknown {
                    // RFC 2891 §2.2: unsorted results with noSuchAttribute when the control is not critical.
                    Some(_) => 16,
                    None => {
                        super::paging::sort(dir.schema(), &mut found, keys);
                        0
                    }
                };
                response_controls.push(ResponseControl { oid: OID_SORT_RESPONSE, value: Some(ber::sort_value(code)) });
            }
            if let Some(e) = partial_error {
                // The size limit applies to the whole set: send what fits, then say so.
                let mut out = Vec::new();
                for e in found {
                    if let Some(entry) = reread(dir, session, &sreq, &e.dn) {
                        ber::search_entry(&mut out, id, &entry);
                    }
                }
                out.extend(finish(&from_error(&e), &response_controls));
                return out;
            }
            Cursor { fingerprint, dns: found.into_iter().map(|e| e.dn).collect(), next: 0 }
        }
    };
    let end = if page_size == 0 { cursor.dns.len() } else { (cursor.next + page_size).min(cursor.dns.len()) };
    let mut out = Vec::new();
    for dn in &cursor.dns[cursor.next..end] {
        if let Some(entry) = reread(dir, session, &sreq, dn) {
            ber::search_entry(&mut out, id, &entry);
        }
    }
    cursor.next = end;
    if c.paged.is_some() {
        let total = cursor.dns.len() as i64;
        let next_cookie = if cursor.next < cursor.dns.len() {
            conn.cursors.lock().map(|mut cs| cs.insert(cursor)).unwrap_or_default()
        } else {
            Vec::new()
        };
        response_controls
            .push(ResponseControl { oid: OID_PAGED_RESULTS, value: Some(ber::paged_value(total, &next_cookie)) });
    }
    out.extend(finish(&success(), &response_controls));
    out
}

/// Read one entry of a result set again, as the original search would return it.
fn reread(dir: &Directory, session: &Session, sreq: &SearchRequest, dn: &Dn) -> Option<Entry> {
    let mut one = SearchRequest::new(dn.clone(), Scope::Base, sreq.filter.clone());
    one.attrs = sreq.attrs.clone();
    one.types_only = sreq.types_only;
    let mut found = None;
    dir.search(&session.principal, &one, |e| {
        found = Some(e);
        Ok(())
    })
    .ok()?;
    found
}

/// One update request as `spawn_write` needs it.
struct WriteOp {
    id: i32,
    /// The response's application tag.
    tag: u8,
    controls: WriteControls,
    target: Target,
}

/// The entry a write aims at, and where it is afterwards (for Post-read).
struct Target {
    dn: String,
    after: Option<String>,
}

/// The DN a ModifyDN request gives its entry.
fn renamed_dn(req: &LdapModifyDNRequest) -> Option<String> {
    let dn = Dn::parse(&req.dn).ok()?;
    let rdn = Rdn::parse(&req.newrdn).ok()?;
    let parent = match &req.new_superior {
        Some(s) => Dn::parse(s).ok()?,
        None => dn.parent(),
    };
    Some(parent.child(rdn).to_string())
}

/// Whether the entry `dn` matches an assertion filter (RFC 4528), as the
/// identity sees it: an attribute it may not read cannot be asserted.
fn assertion_holds(
    dir: &Directory,
    session: &Session,
    dn: &Dn,
    filter: &crate::directory::Filter,
) -> Result<bool, DirectoryError> {
    let mut req = SearchRequest::new(dn.clone(), Scope::Base, filter.clone());
    req.attrs = vec!["1.1".into()];
    Ok(dir.search(&session.principal, &req, |_| Ok(()))? == 1)
}

/// Read an entry for a Pre-/Post-read control (RFC 4527), as a search would return it.
fn read_control(
    dir: &Directory,
    session: &Session,
    dn: &str,
    attrs: &[String],
    oid: &'static str,
) -> Option<ResponseControl> {
    let dn = Dn::parse(dn).ok()?;
    let mut req = SearchRequest::new(dn.clone(), Scope::Base, crate::directory::Filter::everything());
    req.attrs = attrs.to_vec();
    let e = reread(dir, session, &req, &dn)?;
    Some(ResponseControl { oid, value: Some(ber::entry_op(&e)) })
}

/// Writes run on the blocking pool: they commit with an fsync and may hash a
/// password. The core's access policy decides whether they are allowed.
fn spawn_write(
    conn: &Arc<Conn>,
    session: &Session,
    op: WriteOp,
    f: impl FnOnce() -> Result<Change, DirectoryError> + Send + 'static,
) {
    let WriteOp { id, tag, controls: wc, target } = op;
    let conn = conn.clone();
    let session = session.clone();
    // Registered so that StartTLS sees it in flight; a write cannot be abandoned half-way.
    register(&conn, id);
    tokio::task::spawn_blocking(move || {
        let dir = &conn.ctx.directory;
        let mut ctrls = Vec::new();
        let outcome = (|| {
            let mut write = Write::one(f()?);
            // RFC 4528: tested in the write's own transaction, so that no
            // other write comes between the test and the change.
            if let Some(filter) = &wc.assertion {
                write = write.guarded(Dn::parse(&target.dn)?, Condition::Matches(filter.clone()));
            }
            // The pre-read is taken just before the write, on a snapshot of its own.
            if let Some(attrs) = &wc.pre_read {
                ctrls.extend(read_control(dir, &session, &target.dn, attrs, controls::OID_PRE_READ));
            }
            dir.write_one(&session.actor(), write)?;
            if let (Some(attrs), Some(after)) = (&wc.post_read, &target.after) {
                ctrls.extend(read_control(dir, &session, after, attrs, controls::OID_POST_READ));
            }
            Ok::<_, DirectoryError>(success())
        })();
        let res = outcome.unwrap_or_else(|e| from_error(&e));
        if res.code != LdapResultCode::Success {
            ctrls.clear();
        }
        unregister(&conn, id);
        conn.send(conn.result_pdu(id, tag, &res, &ctrls));
    });
}

fn add(req: LdapAddRequest) -> Result<Change, DirectoryError> {
    let dn = Dn::parse(&req.dn)?;
    let entry =
        Entry { dn, attrs: req.attributes.into_iter().map(|a| Attribute { name: a.atype, values: a.vals }).collect() };
    Ok(Change::Add(entry))
}

fn modify(req: LdapModifyRequest) -> Result<Change, DirectoryError> {
    let dn = Dn::parse(&req.dn)?;
    let mods: Vec<Modification> = req
        .changes
        .into_iter()
        .map(|c| Modification {
            op: match c.operation {
                LdapModifyType::Add => ModOp::Add,
                LdapModifyType::Delete => ModOp::Delete,
                LdapModifyType::Replace => ModOp::Replace,
                LdapModifyType::Increment => ModOp::Increment,
            },
            attr: c.modification.atype,
            values: c.modification.vals,
        })
        .collect();
    Ok(Change::Modify(dn, mods))
}

fn delete(dn: String) -> Result<Change, DirectoryError> {
    Ok(Change::Delete(Dn::parse(&dn)?))
}

fn moddn(req: LdapModifyDNRequest) -> Result<Change, DirectoryError> {
    let dn = Dn::parse(&req.dn)?;
    let new_rdn = Rdn::parse(&req.newrdn)?;
    let new_superior = req.new_superior.as_deref().map(Dn::parse).transpose()?;
    Ok(Change::Rename { dn, new_rdn, delete_old_rdn: req.deleteoldrdn, new_superior })
}

fn compare(ctx: &Arc<Context>, session: &Session, req: LdapCompareRequest, wc: &WriteControls) -> LdapResult {
    if let Some(filter) = &wc.assertion {
        let holds = parse_dn(&req.dn).map(|dn| assertion_holds(&ctx.directory, session, &dn, filter));
        match holds {
            Err(r) => return r,
            Ok(Err(e)) => return from_error(&e),
            Ok(Ok(false)) => {
                return result(LdapResultCode::AssertionFailed, "the assertion control's filter does not match");
            }
            Ok(Ok(true)) => {}
        }
    }
    let dn = match parse_dn(&req.dn) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match ctx.directory.compare(&session.principal, &dn, &req.atype, &req.val) {
        Ok(true) => result(LdapResultCode::CompareTrue, ""),
        Ok(false) => result(LdapResultCode::CompareFalse, ""),
        Err(e) => from_error(&e),
    }
}

fn extended(conn: &Arc<Conn>, session: &Session, id: i32, req: LdapExtendedRequest) {
    let send = move |conn: &Conn, resp: LdapExtendedResponse| conn.send(conn.extended_pdu(id, resp));
    match req.name.as_str() {
        // RFC 4532: the authzId goes in responseValue, empty for anonymous.
        OID_WHOAMI => {
            let authz = if session.anonymous() { String::new() } else { format!("dn:{}", session.bound_dn) };
            send(conn, LdapExtendedResponse { res: success(), name: None, value: Some(authz.into_bytes()) });
        }
        OID_PASSWORD_MODIFY => {
            // ldap3_proto refuses an absent request value, which RFC 3062 allows
            // ("change my password to a generated one"): treat it as empty.
            let parsed = match &req.value {
                None => Ok(LdapPasswordModifyRequest { user_identity: None, old_password: None, new_password: None }),
                Some(_) => LdapPasswordModifyRequest::try_from(&req),
            };
            let Ok(pm) = parsed else {
                return send(conn, ext(result(LdapResultCode::ProtocolError, "malformed password modify request")));
            };
            let conn2 = conn.clone();
            let session = session.clone();
            register(conn, id);
            tokio::task::spawn_blocking(move || {
                let (res, generated) = match password_modify(&conn2.ctx, &session, pm) {
                    Ok(g) => (success(), g),
                    Err(r) => (r, None),
                };
                unregister(&conn2, id);
                let resp = LdapExtendedResponse::from(LdapPasswordModifyResponse { res, gen_password: generated });
                send(&conn2, resp);
            });
        }
        // RFC 4511 §4.12: an unrecognised extended operation gets protocolError.
        other => send(
            conn,
            ext(result(LdapResultCode::ProtocolError, format!("extended operation {other} is not supported"))),
        ),
    }
}

/// RFC 3062 Password Modify under the baseline policy: anyone bound changes
/// their own password by giving the old one; administrators set anyone's.
/// Returns the generated password when none was given.
fn password_modify(
    ctx: &Context,
    session: &Session,
    req: LdapPasswordModifyRequest,
) -> Result<Option<String>, LdapResult> {
    if session.anonymous() {
        return Err(result(LdapResultCode::UnwillingToPerform, "only authenticated users may change passwords"));
    }
    let dir = &ctx.directory;
    let target = match req.user_identity.as_deref() {
        None | Some("") => parse_dn(&session.bound_dn)?,
        // RFC 4513 §5.2.1.8 authzId forms: "dn:<DN>" (and a bare DN, as slapd accepts).
        Some(id) => parse_dn(id.strip_prefix("dn:").unwrap_or(id))?,
    };
    let target_ndn = dir.normalize_dn(&target).map_err(|e| from_error(&e))?;
    let own = target_ndn == session.bound_ndn;
    // Changing one's own password takes the current one (RFC 3062 §2 leaves it
    // to the server); whether anyone else's may be set is the access policy's call.
    if own && !session.principal.is_admin(&ctx.directory) {
        let Some(old) = req.old_password.as_deref() else {
            return Err(result(LdapResultCode::UnwillingToPerform, "the current password is required to change it"));
        };
        let account = dir.account(&target).map_err(|e| from_error(&e))?;
        if dir.authenticate(account, old.as_bytes(), &session.peer).is_err() {
            return Err(result(LdapResultCode::InvalidCredentials, "the current password is wrong"));
        }
    }
    let (new, generated) = match req.new_password {
        Some(p) if !p.is_empty() => (p, None),
        _ => {
            let g = generate_password().map_err(|e| result(LdapResultCode::Other, e))?;
            (g.clone(), Some(g))
        }
    };
    let m = Modification { op: ModOp::Replace, attr: "userPassword".into(), values: vec![new.into_bytes()] };
    dir.modify(&session.actor(), &target, &[m]).map_err(|e| from_error(&e))?;
    Ok(generated)
}

fn generate_password() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_";
    Ok(b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect())
}
