//! Extended operations (RFC 4511 §4.12): Who am I? (RFC 4532), Password
//! Modify (RFC 3062), StartTLS (RFC 4511 §4.14, RFC 4513 §3), and the
//! project's own: administration commands and the recycle bin.

use std::sync::Arc;

use ldap3_proto::proto::{LdapExtendedRequest, LdapPasswordModifyRequest, LdapResult, LdapResultCode};

use super::{InFlight, Reply, Session, Shape, parse_dn};
use crate::directory::DirectoryError;
use crate::directory::ppolicy::{PasswordProblem, PolicyNotice};
use crate::ldap::result::{from_error, result, success};
use crate::ldap::{Conn, Context, oids};

pub fn extended(
    conn: &Arc<Conn>,
    session: &Session,
    id: i32,
    req: LdapExtendedRequest,
    ctrls: &[ldap3_proto::control::LdapControl],
) -> Reply {
    match req.name.as_str() {
        // RFC 4532 §2: the authzId in responseValue, empty for anonymous.
        oids::WHOAMI => {
            let authz = if session.anonymous() { String::new() } else { format!("dn:{}", session.bound_dn) };
            Reply::Now(conn.extended_pdu(id, &success(), None, Some(authz.as_bytes())))
        }
        oids::PASSWORD_MODIFY => password_modify(conn, session, id, &req, ctrls),
        oids::STARTTLS => starttls(conn, session, id),
        oids::COMMAND => command(conn, session, id, &req),
        oids::RESTORE | oids::RECYCLE_BIN => recycle_bin(conn, session, id, &req),
        // RFC 4511 §4.12: an unrecognised extended operation gets protocolError.
        other => {
            let res = result(LdapResultCode::ProtocolError, format!("extended operation {other} is not supported"));
            Reply::Now(conn.extended_pdu(id, &res, None, None))
        }
    }
}

/// RFC 4511 §4.14.1, RFC 4513 §3.1.1: yes only on a plain connection with
/// TLS set up and nothing outstanding; the caller upgrades the stream.
fn starttls(conn: &Conn, session: &Session, id: i32) -> Reply {
    let busy = !conn.outstanding.lock().map(|o| o.is_empty()).unwrap_or(false);
    let refusal = if session.local_uid.is_some() {
        Some((LdapResultCode::OperationsError, "the local socket needs no TLS"))
    } else if session.is_tls {
        Some((LdapResultCode::OperationsError, "TLS is already established"))
    } else if conn.ctx.tls.is_none() {
        Some((LdapResultCode::Unavailable, "TLS is not configured on this server"))
    } else if busy {
        Some((LdapResultCode::OperationsError, "operations are outstanding on this connection"))
    } else {
        None
    };
    match refusal {
        Some((code, why)) => Reply::Now(conn.extended_pdu(id, &result(code, why), Some(oids::STARTTLS), None)),
        None => Reply::StartTls(conn.extended_pdu(id, &success(), Some(oids::STARTTLS), None)),
    }
}

/// An administration command of the command line (`crate::commands`),
/// run as the session's identity: JSON in the request value, the
/// command's output as JSON in the response value.
fn command(conn: &Arc<Conn>, session: &Session, id: i32, req: &LdapExtendedRequest) -> Reply {
    // Commands write files where the server runs (backups): only for
    // someone on its machine.
    if session.local_uid.is_none() {
        let res =
            result(LdapResultCode::UnwillingToPerform, "administration commands are taken on the ldapi socket only");
        return Reply::Now(conn.extended_pdu(id, &res, None, None));
    }
    let parsed = req.value.as_deref().map(serde_json::from_slice::<crate::commands::Command>);
    let Some(Ok(cmd)) = parsed else {
        let res = result(LdapResultCode::ProtocolError, "the request value is not a command");
        return Reply::Now(conn.extended_pdu(id, &res, None, None));
    };
    let op = InFlight::new(conn, id, Shape::Extended);
    let conn = conn.clone();
    let actor = session.actor();
    Reply::Pending(tokio::task::spawn_blocking(move || {
        let pdu = match crate::commands::run(&conn.ctx.directory, &actor, &cmd) {
            Ok(outcome) => {
                let value = serde_json::to_vec(&outcome).unwrap_or_default();
                conn.extended_pdu(id, &success(), None, Some(&value))
            }
            Err(e) => conn.extended_pdu(id, &from_error(&e), None, None),
        };
        op.answer(pdu);
    }))
}

/// The recycle bin, as the session's identity: what it may restore is what
/// it could create again (the access policy's add right).
fn recycle_bin(conn: &Arc<Conn>, session: &Session, id: i32, req: &LdapExtendedRequest) -> Reply {
    let value = req.value.as_deref().map(|v| String::from_utf8_lossy(v).trim().to_string()).unwrap_or_default();
    let restore = req.name == oids::RESTORE;
    if restore && value.is_empty() {
        let res = result(LdapResultCode::ProtocolError, "the request value is the entryUUID of the agent to restore");
        return Reply::Now(conn.extended_pdu(id, &res, None, None));
    }
    let op = InFlight::new(conn, id, Shape::Extended);
    let conn = conn.clone();
    let actor = session.actor();
    Reply::Pending(tokio::task::spawn_blocking(move || {
        let dir = &conn.ctx.directory;
        let answer = if restore {
            dir.restore(&actor, &value).map(|dn| dn.to_string().into_bytes())
        } else {
            let org = match value.as_str() {
                "" => Ok(None),
                o => dir.find_organisation(o).and_then(|dn| dir.normalize_dn(&dn)).map(Some),
            };
            org.and_then(|org| dir.deleted_agents(&actor.principal, org.as_deref())).map(|agents| {
                let lines: String =
                    agents.iter().map(|d| format!("{}\t{}\t{}\t{}\n", d.uuid, d.deleted, d.purge_at, d.dn)).collect();
                lines.into_bytes()
            })
        };
        let pdu = match answer {
            Ok(v) => conn.extended_pdu(id, &success(), None, Some(&v)),
            Err(e) => conn.extended_pdu(id, &from_error(&e), None, None),
        };
        op.answer(pdu);
    }))
}

fn password_modify(
    conn: &Arc<Conn>,
    session: &Session,
    id: i32,
    req: &LdapExtendedRequest,
    ctrls: &[ldap3_proto::control::LdapControl],
) -> Reply {
    // ldap3_proto refuses an absent request value, which RFC 3062 allows
    // ("change my password to a generated one"): treat it as empty.
    let parsed = match &req.value {
        None => Ok(LdapPasswordModifyRequest { user_identity: None, old_password: None, new_password: None }),
        Some(_) => LdapPasswordModifyRequest::try_from(req),
    };
    let Ok(pm) = parsed else {
        let res = result(LdapResultCode::ProtocolError, "malformed password modify request");
        return Reply::Now(conn.extended_pdu(id, &res, None, None));
    };
    let op = InFlight::new(conn, id, Shape::Extended);
    let conn = conn.clone();
    let session = session.clone();
    let ctrls = ctrls.to_vec();
    Reply::Pending(tokio::task::spawn_blocking(move || {
        // RFC 3062 §2.2: a responseValue only when the server generated the
        // password, holding it as genPasswd; none on any failure.
        let pdu = match change_password(&conn.ctx, &session, pm) {
            Ok(Some(generated)) => {
                let mut value = Vec::new();
                crate::ldap::ber::gen_passwd_value(&mut value, generated.as_bytes());
                conn.extended_pdu(id, &success(), None, Some(&value))
            }
            Ok(None) => conn.extended_pdu(id, &success(), None, None),
            Err((res, problem)) => {
                let notice = PolicyNotice { expires_in: None, problem };
                conn.extended_pdu_with(id, &res, None, &super::policy_control(&ctrls, &notice))
            }
        };
        op.answer(pdu);
    }))
}

/// RFC 3062 Password Modify: anyone bound changes their own password by
/// giving the old one; whether anyone else's may be set is the access
/// policy's call. Returns the generated password when none was given.
fn change_password(
    ctx: &Context,
    session: &Session,
    req: LdapPasswordModifyRequest,
) -> Result<Option<String>, (LdapResult, Option<PasswordProblem>)> {
    change_password_as(ctx, session, req).map_err(|e| match e {
        Refusal::Result(res) => (res, None),
        Refusal::Directory(e) => {
            let problem = match &e {
                DirectoryError::PasswordRefused(p, _) => Some(*p),
                _ => None,
            };
            (from_error(&e), problem)
        }
    })
}

/// Why a Password Modify was refused: by the protocol, or by the directory.
enum Refusal {
    Result(LdapResult),
    Directory(DirectoryError),
}

impl From<LdapResult> for Refusal {
    fn from(r: LdapResult) -> Refusal {
        Refusal::Result(r)
    }
}

fn change_password_as(
    ctx: &Context,
    session: &Session,
    req: LdapPasswordModifyRequest,
) -> Result<Option<String>, Refusal> {
    if session.anonymous() {
        return Err(Refusal::Result(result(
            LdapResultCode::UnwillingToPerform,
            "only authenticated users may change passwords",
        )));
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
            return Err(Refusal::Result(result(
                LdapResultCode::UnwillingToPerform,
                "the current password is required to change it",
            )));
        };
        let account = dir.account(&target).map_err(|e| from_error(&e))?;
        if dir.authenticate(account, old.as_bytes(), &session.peer).is_err() {
            return Err(Refusal::Result(result(LdapResultCode::InvalidCredentials, "the current password is wrong")));
        }
    }
    let (new, generated) = match req.new_password {
        Some(p) if !p.is_empty() => (p, None),
        _ => {
            let g = generate_password().map_err(|e| result(LdapResultCode::Other, e))?;
            (g.clone(), Some(g))
        }
    };
    dir.change_password(&session.actor(), &target, new.as_bytes()).map_err(Refusal::Directory)?;
    Ok(generated)
}

fn generate_password() -> Result<String, String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_";
    Ok(b.iter().map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char).collect())
}
