//! One handler per LDAP operation, each in its own file. Handlers own no
//! socket: [`dispatch`] returns the operation's [`Reply`], and what runs on
//! the blocking pool answers through the connection's writer. The response
//! type always matches the request (RFC 4511 §4.2–4.14); Abandon and Unbind
//! get none.

mod bind;
mod compare;
mod extended;
mod paged;
mod search;
mod sync;
mod write;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::directory::ppolicy::PolicyNotice;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResult, LdapResultCode, LdapSearchScope};

use super::result::{from_error, result};
use super::{Conn, ber, convert, oids};
use crate::directory::{Actor, Directory, Dn, Principal};

/// Per-connection identity.
#[derive(Debug, Clone)]
pub struct Session {
    /// The bound entry's DN as stored (not as the client spelled it); empty when anonymous.
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
    /// On the ldapi socket: the peer's uid, for SASL EXTERNAL.
    pub local_uid: Option<u32>,
    /// The bound entry's password was set by someone else: until it changes
    /// it, the session may only change it (draft-behera §8.1.2.2).
    pub must_change: bool,
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
            local_uid: None,
            must_change: false,
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

/// What one request gets back.
#[derive(Debug)]
pub enum Reply {
    /// No response (Abandon; RFC 4511 §4.11).
    Silent,
    /// The whole response, to write now.
    Now(Vec<u8>),
    /// A task on the blocking pool answers through the connection. The
    /// connection lets it run detached; the dispatch table test awaits it.
    Pending(#[cfg_attr(not(test), allow(dead_code))] tokio::task::JoinHandle<()>),
    /// The StartTLS success response: written, then the stream is upgraded.
    StartTls(Vec<u8>),
    /// Written (a Notice of Disconnection, or nothing after an Unbind),
    /// then the connection closes (RFC 4511 §4.4.1, §4.3).
    Close(Vec<u8>),
}

/// How an operation's response is shaped, for an answer the handler could not give.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Result(u8),
    Extended,
}

/// An operation in flight: registered so that Abandon can stop it and
/// StartTLS sees it, and given back on every path, a panic included. One
/// that ends without answering was abandoned (no response, no metric, no
/// log line, RFC 4511 §4.11) or failed: then the client is told so.
pub(crate) struct InFlight {
    conn: Arc<Conn>,
    id: i32,
    shape: Shape,
    pub cancel: Arc<AtomicBool>,
    answered: bool,
}

impl InFlight {
    fn new(conn: &Arc<Conn>, id: i32, shape: Shape) -> InFlight {
        let cancel = Arc::new(AtomicBool::new(false));
        if let Ok(mut o) = conn.outstanding.lock() {
            o.insert(id, cancel.clone());
        }
        InFlight { conn: conn.clone(), id, shape, cancel, answered: false }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The response is the caller's to write (inline): only the slot is given back.
    fn settle(mut self) {
        self.answered = true;
    }

    /// Send the response; the slot is free before the client reads it.
    fn answer(mut self, buf: Vec<u8>) {
        self.answered = true;
        let conn = self.conn.clone();
        drop(self);
        conn.send(buf);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut o) = self.conn.outstanding.lock()
            && o.get(&self.id).is_some_and(|flag| Arc::ptr_eq(flag, &self.cancel))
        {
            o.remove(&self.id);
        }
        if self.answered {
            return;
        }
        if self.cancelled() {
            if let Ok(mut s) = self.conn.started.lock() {
                s.remove(&self.id);
            }
            return;
        }
        // The handler stopped without an answer (it panicked): say so rather
        // than leave the client waiting.
        let res = result(LdapResultCode::Other, "the operation failed on the server");
        let buf = match self.shape {
            Shape::Result(tag) => self.conn.result_pdu(self.id, tag, &res, &[]),
            Shape::Extended => self.conn.extended_pdu(self.id, &res, None, None),
        };
        self.conn.send(buf);
    }
}

/// Handle one request.
pub async fn dispatch(conn: &Arc<Conn>, session: &mut Session, msg: LdapMsg) -> Reply {
    let id = msg.msgid;
    // RFC 4511 §4.1.1.1: message ID 0 is reserved for unsolicited notifications.
    if id <= 0 {
        return Reply::Close(notice(LdapResultCode::ProtocolError, "message ID must be between 1 and 2147483647"));
    }
    if matches!(msg.op, LdapOp::UnbindRequest) {
        return Reply::Close(Vec::new());
    }
    if let Some(op) = metrics_op(&msg.op) {
        conn.begin(id, op, || (session.bound_dn.clone(), describe(&msg.op)));
    }
    if let Some(refusal) = unsupported_critical(&msg.op, &msg.ctrl) {
        return refuse(conn, id, &msg.op, refusal);
    }
    if let Some(refusal) = over_limits(conn, session, id, &msg.op) {
        return refuse(conn, id, &msg.op, refusal);
    }
    if !matches!(msg.op, LdapOp::BindRequest(_)) {
        session.refresh(&conn.ctx.directory);
    }
    if session.must_change && !changes_own_password(&conn.ctx.directory, session, &msg.op) {
        if conn.ctx.directory.must_change_password(&session.bound_ndn).unwrap_or(true) {
            let why = "the password of this account was reset: change it first (Password Modify, or a modify of \
                       userPassword), then go on";
            return refuse(conn, id, &msg.op, result(LdapResultCode::InsufficentAccessRights, why));
        }
        session.must_change = false;
    }
    match msg.op {
        LdapOp::BindRequest(req) => {
            let mut notice = PolicyNotice::default();
            let res = bind::bind(&conn.ctx, session, req, &mut notice).await;
            let ctrls = policy_control(&msg.ctrl, &notice);
            Reply::Now(conn.result_pdu(id, ber::BIND_RESPONSE, &res, &ctrls))
        }
        LdapOp::SearchRequest(req) => search::search(conn, session.clone(), id, req, msg.ctrl),
        LdapOp::CompareRequest(req) => compare::compare(conn, session, id, req, &msg.ctrl),
        op
        @ (LdapOp::AddRequest(_) | LdapOp::ModifyRequest(_) | LdapOp::DelRequest(_) | LdapOp::ModifyDNRequest(_)) => {
            write::write(conn, session, id, op, &msg.ctrl)
        }
        LdapOp::ExtendedRequest(req) => extended::extended(conn, session, id, req, &msg.ctrl),
        // RFC 4511 §4.11: no response to Abandon; the operation stops if it still runs.
        // The operation stays outstanding until its task ends (its guard drops):
        // abandoning does not free a slot of max_outstanding_ops.
        LdapOp::AbandonRequest(target) => {
            if let Ok(o) = conn.outstanding.lock()
                && let Some(flag) = o.get(&target)
            {
                flag.store(true, Ordering::Relaxed);
            }
            Reply::Silent
        }
        // A response PDU sent to a server is a protocol error (RFC 4511 §4.1.1).
        _ => Reply::Close(notice(LdapResultCode::ProtocolError, "unexpected PDU from a client")),
    }
}

/// The Password Policy response control (draft-behera §6.2), for a client
/// that sent the request control and when the policy has something to say.
pub fn policy_control(ctrls: &[LdapControl], notice: &PolicyNotice) -> Vec<ber::ResponseControl> {
    let asked = ctrls.iter().any(|c| matches!(c, LdapControl::PasswordPolicyRequest { .. }));
    if !asked || notice.is_empty() {
        return Vec::new();
    }
    let value = ber::password_policy_value(notice.expires_in, notice.problem.map(|p| p as u8));
    vec![ber::ResponseControl { oid: oids::PASSWORD_POLICY, value: Some(value) }]
}

/// What a session whose password was reset may still do: bind, Who am I?,
/// StartTLS, and change its own password (draft-behera §8.1.2.2).
fn changes_own_password(dir: &crate::directory::Directory, session: &Session, op: &LdapOp) -> bool {
    match op {
        LdapOp::BindRequest(_) | LdapOp::AbandonRequest(_) | LdapOp::UnbindRequest => true,
        // Its own password only: no identity, or its own.
        LdapOp::ExtendedRequest(r) if r.name == oids::PASSWORD_MODIFY => {
            let target = match &r.value {
                None => None,
                Some(_) => match ldap3_proto::proto::LdapPasswordModifyRequest::try_from(r) {
                    Ok(pm) => pm.user_identity.filter(|u| !u.is_empty()),
                    Err(_) => return true,
                },
            };
            target.is_none_or(|u| {
                crate::directory::Dn::parse(u.strip_prefix("dn:").unwrap_or(&u))
                    .ok()
                    .and_then(|d| dir.normalize_dn(&d).ok())
                    .is_some_and(|n| n == session.bound_ndn)
            })
        }
        LdapOp::ExtendedRequest(r) => [oids::WHOAMI, oids::STARTTLS].contains(&r.name.as_str()),
        LdapOp::ModifyRequest(r) => {
            let own = crate::directory::Dn::parse(&r.dn)
                .ok()
                .and_then(|d| dir.normalize_dn(&d).ok())
                .is_some_and(|n| n == session.bound_ndn);
            own && r.changes.iter().all(|c| c.modification.atype.eq_ignore_ascii_case("userPassword"))
        }
        _ => false,
    }
}

/// RFC 4511 §4.4.1 Notice of Disconnection, encoded.
pub fn notice(code: LdapResultCode, msg: &str) -> Vec<u8> {
    let mut out = Vec::new();
    ber::extended(&mut out, 0, &result(code, msg), Some(oids::NOTICE_OF_DISCONNECTION), None, &[]);
    out
}

/// Answer a request that will not run with `res`, in the response type its
/// operation calls for (none for Abandon).
fn refuse(conn: &Conn, id: i32, op: &LdapOp, res: LdapResult) -> Reply {
    match response_tag(op) {
        Some(tag) => Reply::Now(conn.result_pdu(id, tag, &res, &[])),
        None if matches!(op, LdapOp::ExtendedRequest(_)) => Reply::Now(conn.extended_pdu(id, &res, None, None)),
        None => Reply::Silent,
    }
}

/// A critical control this operation cannot honour (RFC 4511 §4.1.11): the
/// operation is not performed and the client is told unavailableCriticalExtension,
/// whether or not the codec knows how to decode the control.
fn unsupported_critical(op: &LdapOp, ctrls: &[LdapControl]) -> Option<LdapResult> {
    let search = matches!(op, LdapOp::SearchRequest(_));
    let update = matches!(op, LdapOp::ModifyRequest(_) | LdapOp::DelRequest(_) | LdapOp::ModifyDNRequest(_));
    let creates = matches!(op, LdapOp::AddRequest(_) | LdapOp::ModifyRequest(_) | LdapOp::ModifyDNRequest(_));
    let asserts = search || update || matches!(op, LdapOp::AddRequest(_) | LdapOp::CompareRequest(_));
    let refused = |oid: &str| {
        let why = format!("critical control {oid} is not supported on this operation");
        Some(result(LdapResultCode::UnavailableCriticalExtension, why))
    };
    for c in ctrls {
        match c {
            LdapControl::ManageDsaIT { .. } => {}
            // ldap3_proto keeps no criticality for these: honoured on a search, ignored elsewhere.
            LdapControl::SimplePagedResults { .. } | LdapControl::ServerSort { .. } => {}
            LdapControl::SyncRequest { criticality: true, .. } if !search => return refused(oids::SYNC_REQUEST),
            // Honoured on binds and Password Modify (draft-behera §6).
            LdapControl::PasswordPolicyRequest { criticality: true }
                if !matches!(op, LdapOp::BindRequest(_) | LdapOp::ExtendedRequest(_)) =>
            {
                return refused(oids::PASSWORD_POLICY);
            }
            LdapControl::SearchOptions { criticality: true, .. } => return refused("1.2.840.113556.1.4.1340"),
            LdapControl::ShowDeleted { criticality: true } => return refused("1.2.840.113556.1.4.417"),
            LdapControl::SdFlags { criticality: true, .. } => return refused("1.2.840.113556.1.4.801"),
            LdapControl::ExtendedDn { criticality: true, .. } => return refused("1.2.840.113556.1.4.529"),
            LdapControl::Unknown { oid, criticality: true, .. } => {
                let honoured = match oid.as_str() {
                    oids::ASSERTION => asserts,
                    oids::PRE_READ => update,
                    oids::POST_READ => creates,
                    _ => false,
                };
                if !honoured {
                    return refused(oid);
                }
            }
            _ => {}
        }
    }
    None
}

/// Why this request is refused before it runs: an anonymous session where
/// binding first is required, or too many operations already running on the
/// connection (busy, RFC 4511 §4.1.9: the client may retry).
fn over_limits(conn: &Conn, session: &Session, id: i32, op: &LdapOp) -> Option<LdapResult> {
    if matches!(op, LdapOp::BindRequest(_) | LdapOp::AbandonRequest(_) | LdapOp::UnbindRequest) {
        return None;
    }
    if conn.ctx.require_bind && matches!(session.principal, Principal::Anonymous) {
        let root_dse = matches!(op, LdapOp::SearchRequest(r) if r.base.is_empty() && r.scope == LdapSearchScope::Base);
        let allowed = matches!(op, LdapOp::ExtendedRequest(r) if r.name == oids::WHOAMI || r.name == oids::STARTTLS);
        if !root_dse && !allowed {
            return Some(result(LdapResultCode::UnwillingToPerform, "this server requires a bind first"));
        }
    }
    // RFC 4511 §4.1.1.1: a message ID is not reused while its operation is
    // outstanding; one that is would escape Abandon and the limit below.
    let (reused, running) = conn.outstanding.lock().map(|o| (o.contains_key(&id), o.len())).unwrap_or((false, 0));
    if reused {
        return Some(result(
            LdapResultCode::ProtocolError,
            "this message ID belongs to an operation still outstanding",
        ));
    }
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

fn parse_dn(s: &str) -> Result<Dn, LdapResult> {
    Dn::parse(s).map_err(|e| from_error(&e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
mod tests;
