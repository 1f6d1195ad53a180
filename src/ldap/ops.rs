//! One handler per LDAP operation. Handlers own no socket: they take a
//! request and return the response messages; `mod.rs` writes them. The
//! response type always matches the request (RFC 4511 §4.2–4.12).

use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapAddRequest, LdapBindRequest, LdapMsg, LdapOp, LdapResult, LdapResultCode};
use ldap3_proto::proto::{
    LdapBindCred, LdapBindResponse, LdapCompareRequest, LdapExtendedRequest, LdapExtendedResponse, LdapModifyDNRequest,
    LdapModifyRequest, LdapModifyType, LdapSearchRequest, LdapSearchScope,
};

use super::result::{from_error, result, success};
use super::rootdse::{self, OID_WHOAMI, SUBSCHEMA_DN};
use super::{Context, convert};
use crate::directory::{
    Actor, Attribute, Directory, DirectoryError, Dn, Entry, ModOp, Modification, Rdn, Scope, SearchRequest,
};

/// Per-connection state.
#[derive(Debug, Default)]
pub struct Session {
    /// The bound DN as the client gave it; empty when anonymous.
    pub bound_dn: String,
    pub bound_ndn: String,
    pub is_admin: bool,
}

impl Session {
    fn actor(&self) -> Actor {
        Actor::new(self.bound_dn.clone())
    }

    fn anonymous(&self) -> bool {
        self.bound_ndn.is_empty()
    }
}

/// Handle one request; the result is every response message, in order.
pub async fn handle(ctx: &Arc<Context>, session: &mut Session, msg: LdapMsg) -> Vec<LdapMsg> {
    let id = msg.msgid;
    // RFC 4511 §4.1.11: an unknown critical control must be refused.
    if let Some(oid) = msg.ctrl.iter().find_map(|c| match c {
        LdapControl::Unknown {
            oid, criticality: true, ..
        } => Some(oid.clone()),
        _ => None,
    }) {
        let res = result(
            LdapResultCode::UnavailableCriticalExtension,
            format!("critical control {oid} is not supported"),
        );
        return match reply_for(&msg.op, res) {
            Some(op) => vec![LdapMsg::new(id, op)],
            None => Vec::new(),
        };
    }
    let op = match msg.op {
        LdapOp::BindRequest(req) => LdapOp::BindResponse(bind(ctx, session, req).await),
        LdapOp::SearchRequest(req) => return search(ctx, session, id, req),
        LdapOp::AddRequest(req) => LdapOp::AddResponse(write(ctx, session, |d, a| add(d, a, req)).await),
        LdapOp::ModifyRequest(req) => LdapOp::ModifyResponse(write(ctx, session, |d, a| modify(d, a, req)).await),
        LdapOp::DelRequest(dn) => LdapOp::DelResponse(write(ctx, session, |d, a| delete(d, a, dn)).await),
        LdapOp::ModifyDNRequest(req) => LdapOp::ModifyDNResponse(write(ctx, session, |d, a| moddn(d, a, req)).await),
        LdapOp::CompareRequest(req) => LdapOp::CompareResult(compare(ctx, session, req)),
        LdapOp::ExtendedRequest(req) => LdapOp::ExtendedResponse(extended(session, req)),
        // RFC 4511 §4.11 / §4.3: no response to Abandon or Unbind.
        LdapOp::AbandonRequest(_) | LdapOp::UnbindRequest => return Vec::new(),
        // A response PDU sent to a server is a protocol error (RFC 4511 §4.1.1).
        _ => {
            return vec![ldap3_proto::DisconnectionNotice::gen_response(
                LdapResultCode::ProtocolError,
                "unexpected PDU from a client",
            )];
        }
    };
    vec![LdapMsg::new(id, op)]
}

/// The response op that answers a request op with a plain result.
fn reply_for(op: &LdapOp, res: LdapResult) -> Option<LdapOp> {
    Some(match op {
        LdapOp::BindRequest(_) => LdapOp::BindResponse(LdapBindResponse { res, saslcreds: None }),
        LdapOp::SearchRequest(_) => LdapOp::SearchResultDone(res),
        LdapOp::ModifyRequest(_) => LdapOp::ModifyResponse(res),
        LdapOp::AddRequest(_) => LdapOp::AddResponse(res),
        LdapOp::DelRequest(_) => LdapOp::DelResponse(res),
        LdapOp::ModifyDNRequest(_) => LdapOp::ModifyDNResponse(res),
        LdapOp::CompareRequest(_) => LdapOp::CompareResult(res),
        LdapOp::ExtendedRequest(_) => LdapOp::ExtendedResponse(LdapExtendedResponse {
            res,
            name: None,
            value: None,
        }),
        _ => return None,
    })
}

fn parse_dn(s: &str) -> Result<Dn, LdapResult> {
    Dn::parse(s).map_err(|e| from_error(&e))
}

async fn bind(ctx: &Arc<Context>, session: &mut Session, req: LdapBindRequest) -> LdapBindResponse {
    let res = |r| LdapBindResponse {
        res: r,
        saslcreds: None,
    };
    // A new bind starts from anonymous whatever its outcome (RFC 4511 §4.2.1).
    *session = Session::default();
    if req.version != 3 {
        return res(result(
            LdapResultCode::ProtocolError,
            "only LDAP version 3 is supported",
        ));
    }
    let password = match req.cred {
        LdapBindCred::Simple(pw) => pw,
        LdapBindCred::SASL(_) | LdapBindCred::Unsupported => {
            return res(result(
                LdapResultCode::AuthMethodNotSupported,
                "SASL mechanisms are not supported yet",
            ));
        }
    };
    if req.dn.is_empty() && password.is_empty() {
        return res(success());
    }
    if password.is_empty() {
        // RFC 4513 §5.1.2: an unauthenticated bind (DN, no password) is refused.
        return res(result(
            LdapResultCode::UnwillingToPerform,
            "unauthenticated bind (DN with an empty password) is not allowed",
        ));
    }
    let dn = match parse_dn(&req.dn) {
        Ok(d) => d,
        Err(_) => return res(result(LdapResultCode::InvalidCredentials, "")),
    };
    let dir = ctx.directory.clone();
    // Password hashes (argon2) cost milliseconds: keep them off the reactor threads.
    let outcome = tokio::task::spawn_blocking(move || {
        let entry = dir.bind(&dn, password.as_bytes())?;
        let ndn = dir.normalize_dn(&entry.dn)?;
        let admins_group = dir
            .suffix()
            .child(Rdn::single("ou", "admins"))
            .child(Rdn::single("cn", "administrateurs"));
        let admin = dir.suffix().child(Rdn::single("cn", "admin"));
        let is_admin = ndn == dir.normalize_dn(&admin)? || dir.is_member(&admins_group, &ndn)?;
        Ok::<_, DirectoryError>((ndn, is_admin))
    })
    .await;
    match outcome {
        Ok(Ok((ndn, is_admin))) => {
            session.is_admin = is_admin || ctx.admins.contains(&ndn);
            session.bound_dn = req.dn;
            session.bound_ndn = ndn;
            res(success())
        }
        Ok(Err(e)) => res(from_error(&e)),
        Err(_) => res(result(LdapResultCode::Other, "bind failed")),
    }
}

fn search(ctx: &Arc<Context>, session: &Session, id: i32, req: LdapSearchRequest) -> Vec<LdapMsg> {
    let done = |r: LdapResult| LdapMsg::new(id, LdapOp::SearchResultDone(r));
    let base = match parse_dn(&req.base) {
        Ok(d) => d,
        Err(r) => return vec![done(r)],
    };
    let filter = convert::filter(&req.filter);
    let scope = match req.scope {
        LdapSearchScope::Base => Scope::Base,
        LdapSearchScope::OneLevel => Scope::One,
        LdapSearchScope::Subtree => Scope::Sub,
        LdapSearchScope::Children => Scope::Children,
    };
    // Root DSE and subschema: readable by anyone (RFC 4512 §5.1, §4.4).
    if scope == Scope::Base && (base.is_root() || base.to_string().eq_ignore_ascii_case(SUBSCHEMA_DN)) {
        let entry = if base.is_root() {
            rootdse::root_dse(&ctx.directory)
        } else {
            rootdse::subschema(&ctx.directory)
        };
        let mut out = Vec::new();
        if filter.evaluate(ctx.directory.schema(), &entry) == crate::directory::filter::Tri::True {
            out.push(LdapMsg::new(id, LdapOp::SearchResultEntry(convert::entry(entry))));
        }
        out.push(done(success()));
        return out;
    }
    // Baseline policy until the access-control engine: anonymous reads nothing
    // but the root DSE and the subschema, and a refused read looks like absence.
    if session.anonymous() {
        return vec![done(result(LdapResultCode::NoSuchObject, ""))];
    }
    // ldap3_proto does not sign-extend: a negative limit reads as huge; clamp (RFC 4511 §4.5.1.4: 0 = none).
    let requested = usize::try_from(req.sizelimit).unwrap_or(0);
    let server = if session.is_admin { 0 } else { ctx.search_size_limit };
    let size_limit = match (requested, server) {
        (0, s) => s,
        (r, 0) => r,
        (r, s) => r.min(s),
    };
    let time_limit = match usize::try_from(req.timelimit).unwrap_or(0) {
        0 => ctx.search_time_limit,
        t => ctx.search_time_limit.min(std::time::Duration::from_secs(t as u64)),
    };
    let sreq = SearchRequest {
        base,
        scope,
        filter,
        size_limit,
        time_limit: Some(time_limit),
        attrs: req.attrs,
        types_only: req.typesonly,
    };
    let mut out = Vec::new();
    let hide_password = !session.is_admin;
    let r = ctx.directory.search(&sreq, |mut e| {
        if hide_password {
            e.remove("userPassword");
        }
        out.push(LdapMsg::new(id, LdapOp::SearchResultEntry(convert::entry(e))));
        Ok(())
    });
    out.push(done(match r {
        Ok(_) => success(),
        Err(e) => from_error(&e),
    }));
    out
}

/// Writes are for administrators until the access-control engine lands
/// (DESIGN.md "baseline"). The write itself runs off the reactor: it commits
/// with an fsync and may hash a password.
async fn write(
    ctx: &Arc<Context>,
    session: &Session,
    f: impl FnOnce(&Directory, &Actor) -> Result<(), DirectoryError> + Send + 'static,
) -> LdapResult {
    if !session.is_admin {
        let why = if session.anonymous() {
            "anonymous"
        } else {
            "this identity"
        };
        return result(
            LdapResultCode::InsufficentAccessRights,
            format!("{why} may not write to the directory"),
        );
    }
    let dir = ctx.directory.clone();
    let actor = session.actor();
    match tokio::task::spawn_blocking(move || f(&dir, &actor)).await {
        Ok(Ok(())) => success(),
        Ok(Err(e)) => from_error(&e),
        Err(_) => result(LdapResultCode::Other, "write failed"),
    }
}

fn add(dir: &Directory, actor: &Actor, req: LdapAddRequest) -> Result<(), DirectoryError> {
    let dn = Dn::parse(&req.dn)?;
    let entry = Entry {
        dn,
        attrs: req
            .attributes
            .into_iter()
            .map(|a| Attribute {
                name: a.atype,
                values: a.vals,
            })
            .collect(),
    };
    dir.add(actor, entry)
}

fn modify(dir: &Directory, actor: &Actor, req: LdapModifyRequest) -> Result<(), DirectoryError> {
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
    dir.modify(actor, &dn, &mods)
}

fn delete(dir: &Directory, actor: &Actor, dn: String) -> Result<(), DirectoryError> {
    let dn = Dn::parse(&dn)?;
    dir.delete(actor, &dn)
}

fn moddn(dir: &Directory, actor: &Actor, req: LdapModifyDNRequest) -> Result<(), DirectoryError> {
    let dn = Dn::parse(&req.dn)?;
    let rdn = Rdn::parse(&req.newrdn)?;
    let sup = req.new_superior.as_deref().map(Dn::parse).transpose()?;
    dir.rename(actor, &dn, &rdn, req.deleteoldrdn, sup.as_ref())
}

fn compare(ctx: &Arc<Context>, session: &Session, req: LdapCompareRequest) -> LdapResult {
    if session.anonymous() {
        return result(LdapResultCode::NoSuchObject, "");
    }
    if !session.is_admin && req.atype.eq_ignore_ascii_case("userPassword") {
        return result(
            LdapResultCode::InsufficentAccessRights,
            "userPassword cannot be compared",
        );
    }
    let dn = match parse_dn(&req.dn) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match ctx.directory.compare(&dn, &req.atype, &req.val) {
        Ok(true) => result(LdapResultCode::CompareTrue, ""),
        Ok(false) => result(LdapResultCode::CompareFalse, ""),
        Err(e) => from_error(&e),
    }
}

fn extended(session: &Session, req: LdapExtendedRequest) -> LdapExtendedResponse {
    match req.name.as_str() {
        // RFC 4532: the authzId goes in responseValue, empty for anonymous.
        OID_WHOAMI => {
            let authz = if session.anonymous() {
                String::new()
            } else {
                format!("dn:{}", session.bound_dn)
            };
            LdapExtendedResponse {
                res: success(),
                name: None,
                value: Some(authz.into_bytes()),
            }
        }
        // RFC 4511 §4.12: an unrecognised extended operation gets protocolError.
        other => LdapExtendedResponse {
            res: result(
                LdapResultCode::ProtocolError,
                format!("extended operation {other} is not supported"),
            ),
            name: None,
            value: None,
        },
    }
}
