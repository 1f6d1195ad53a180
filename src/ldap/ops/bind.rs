//! Bind (RFC 4511 §4.2, RFC 4513 §5): simple binds and SASL EXTERNAL.

use std::sync::Arc;

use ldap3_proto::proto::{LdapBindCred, LdapBindRequest, LdapResult, LdapResultCode};

use super::Session;
use crate::directory::Directory;
use crate::directory::ppolicy::{PasswordProblem, PolicyNotice};
use crate::directory::{DirectoryError, Dn, Entry, Principal, Scope, SearchRequest};
use crate::ldap::Context;
use crate::ldap::result::{from_error, result, success};

/// A bind; what the password policy tells the client lands in `notice`.
pub async fn bind(
    ctx: &Arc<Context>,
    session: &mut Session,
    req: LdapBindRequest,
    notice: &mut PolicyNotice,
) -> LdapResult {
    // A new bind starts from anonymous whatever its outcome (RFC 4511 §4.2.1).
    let tls_client_dn = session.tls_client_dn.take();
    *session = Session {
        is_tls: session.is_tls,
        tls_client_dn: tls_client_dn.clone(),
        peer: std::mem::take(&mut session.peer),
        local_uid: session.local_uid,
        ..Session::default()
    };
    if req.version != 3 {
        return result(LdapResultCode::ProtocolError, "only LDAP version 3 is supported");
    }
    let password = match req.cred {
        LdapBindCred::Simple(pw) => pw,
        LdapBindCred::SASL(sasl) if sasl.mechanism.eq_ignore_ascii_case("EXTERNAL") => {
            if let Some(uid) = session.local_uid {
                return local_bind(ctx, session, uid, &sasl.credentials);
            }
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
    // The local socket never leaves the machine: as private as TLS.
    if ctx.require_tls_for_bind && !session.is_tls && session.local_uid.is_none() {
        return result(LdapResultCode::ConfidentialityRequired, "simple binds need TLS here: use LDAPS or StartTLS");
    }
    if password.is_empty() {
        // RFC 4513 §5.1.2: an unauthenticated bind (DN, no password) is refused.
        return result(
            LdapResultCode::UnwillingToPerform,
            "unauthenticated bind (DN with an empty password) is not allowed",
        );
    }
    // RFC 4513 §5.1.3: a name that is not a DN is invalidDNSyntax. Whether
    // a well-formed one exists is never told (see `authenticate`).
    let dn = match Dn::parse(&req.dn) {
        Ok(dn) => dn,
        Err(e) => return from_error(&e),
    };
    let dir = ctx.directory.clone();
    let account = dir.account(&dn).ok().flatten();
    let cheap = dir.bind_is_cheap(account.as_ref());
    let peer = session.peer.clone();
    let check = move || dir.authenticate_with_policy(account, password.as_bytes(), &peer);
    // Salted digests ({SSHA} …) take a microsecond: check inline. argon2, crypt,
    // the decoy of an unknown DN and a re-hash take milliseconds: keep them off
    // the reactor threads.
    let outcome = if cheap { Ok(check()) } else { tokio::task::spawn_blocking(check).await };
    match outcome {
        Ok((Ok(principal), told)) => {
            *notice = told;
            session.must_change = told.problem == Some(PasswordProblem::ChangeAfterReset);
            // The entry's DN as stored: one person is one name in the audit
            // trail and in Who am I?, however they typed it.
            (session.bound_dn, session.bound_ndn) = match &principal {
                Principal::Entry(e) => (e.dn.clone(), e.ndn.clone()),
                _ => (String::new(), String::new()),
            };
            session.principal = principal;
            session.generation = ctx.directory.generation();
            success()
        }
        Ok((Err(e), told)) => {
            *notice = told;
            from_error(&e)
        }
        Err(_) => result(LdapResultCode::Other, "bind failed"),
    }
}

/// SASL EXTERNAL on the ldapi socket: bind as the entry the peer's uid maps
/// to (see `ldap::local`).
fn local_bind(ctx: &Context, session: &mut Session, uid: u32, authz: &[u8]) -> LdapResult {
    let dir = &ctx.directory;
    let Some(dn) = ctx.local.dn_of(uid) else {
        return result(
            LdapResultCode::InvalidCredentials,
            format!("local uid {uid} is not mapped to an entry (ldapi_identities)"),
        );
    };
    let outcome = (|| {
        let ndn = dir.normalize_dn(dn)?;
        authorizes(dir, &ndn, &String::from_utf8_lossy(authz))?;
        // The entry as stored names the session. Only the administrator may be
        // a name without an entry (a directory imported without cn=admin).
        let stored = match dir.get(dn)? {
            Some(e) if disabled(&e) => return Err(DirectoryError::InvalidCredentials),
            Some(e) => e.dn,
            None if ctx.local.is_admin_name(dn) => dn.clone(),
            None => return Err(DirectoryError::InvalidCredentials),
        };
        Ok(Bound { dn: stored.to_string(), ndn, principal: dir.principal_of(&stored)?, generation: dir.generation() })
    })();
    establish(dir, session, outcome)
}

/// SASL EXTERNAL: bind as the entry the TLS client certificate names. Its
/// subject is read as a DN: the entry with that DN if there is one, else the
/// entry whose `uid` (unique in the directory) is the subject's `uid`, else
/// the one entry whose `mail` is the subject's `emailAddress` — what CIG
/// certificates carry. A disabled account is refused.
async fn external_bind(ctx: &Arc<Context>, session: &mut Session, client_dn: Option<Dn>, authz: &[u8]) -> LdapResult {
    let Some(subject) = client_dn else {
        return result(LdapResultCode::InappropriateAuthentication, "EXTERNAL needs a TLS client certificate");
    };
    let dir = ctx.directory.clone();
    let authz = String::from_utf8_lossy(authz).into_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let entry = certificate_entry(&dir, &subject)?.ok_or(DirectoryError::InvalidCredentials)?;
        let ndn = dir.normalize_dn(&entry.dn)?;
        authorizes(&dir, &ndn, &authz)?;
        if disabled(&entry) {
            return Err(DirectoryError::InvalidCredentials);
        }
        Ok(Bound {
            dn: entry.dn.to_string(),
            ndn,
            principal: dir.principal_of(&entry.dn)?,
            generation: dir.generation(),
        })
    })
    .await;
    match outcome {
        Ok(outcome) => establish(&ctx.directory, session, outcome),
        Err(_) => result(LdapResultCode::Other, "bind failed"),
    }
}

/// Who a SASL EXTERNAL bind authenticated.
struct Bound {
    dn: String,
    ndn: String,
    principal: Principal,
    generation: u64,
}

/// The session becomes the entry a bind authenticated, or stays anonymous.
fn establish(dir: &Directory, session: &mut Session, outcome: Result<Bound, DirectoryError>) -> LdapResult {
    match outcome {
        Ok(Bound { dn, ndn, principal, generation }) => {
            if let Err(e) = dir.note_bind_of(&ndn) {
                tracing::warn!(%dn, "could not note a bind's time: {e}");
            }
            session.principal = principal;
            session.generation = generation;
            session.bound_dn = dn;
            session.bound_ndn = ndn;
            success()
        }
        Err(e) => from_error(&e),
    }
}

/// RFC 4422 Appendix A: an authorization identity, when given, must name
/// the entry the credentials authenticated.
fn authorizes(dir: &Directory, ndn: &str, authz: &str) -> Result<(), DirectoryError> {
    if authz.is_empty() {
        return Ok(());
    }
    let asked = Dn::parse(authz.strip_prefix("dn:").unwrap_or(authz))?;
    if dir.normalize_dn(&asked)? != ndn {
        return Err(DirectoryError::InvalidCredentials);
    }
    Ok(())
}

/// Suspended, or outside its window of validity: no bind of any kind.
fn disabled(entry: &Entry) -> bool {
    !crate::directory::lifecycle::usable(entry)
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
