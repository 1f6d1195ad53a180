//! Add, Modify, Delete and ModifyDN (RFC 4511 §4.6–4.9): each becomes one
//! [`Change`] through the directory's one write entry point, on the blocking
//! pool (a commit waits for its fsync, and may hash a password). The
//! Assertion control (RFC 4528) is a guard checked in the write's own
//! transaction; Pre-/Post-read (RFC 4527) read the entry around it.

use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapAddRequest, LdapModifyDNRequest, LdapModifyRequest, LdapModifyType, LdapOp, LdapResultCode,
};

use super::paged::reread;
use super::{InFlight, Reply, Session, Shape, response_tag};
use crate::directory::{
    Attribute, Change, Condition, Directory, DirectoryError, Dn, Entry, ModOp, Modification, Rdn, Scope, SearchRequest,
    Write,
};
use crate::ldap::ber::{self, ResponseControl};
use crate::ldap::controls;
use crate::ldap::result::{from_error, result, success};
use crate::ldap::{Conn, oids};

/// The entry a write aims at, and where it is afterwards (for Post-read).
struct Target {
    dn: String,
    after: Option<String>,
}

/// Start one update request; its response comes from the blocking pool.
pub fn write(conn: &Arc<Conn>, session: &Session, id: i32, op: LdapOp, ctrls: &[LdapControl]) -> Reply {
    let tag = response_tag(&op).unwrap_or(ber::MODIFY_RESPONSE);
    let wc = match controls::write_controls(ctrls) {
        Ok(wc) => wc,
        Err(why) => return Reply::Now(conn.result_pdu(id, tag, &result(LdapResultCode::ProtocolError, why), &[])),
    };
    let (target, change): (Target, Box<dyn FnOnce() -> Result<Change, DirectoryError> + Send>) = match op {
        LdapOp::AddRequest(req) => {
            (Target { dn: req.dn.clone(), after: Some(req.dn.clone()) }, Box::new(move || add(req)))
        }
        LdapOp::ModifyRequest(req) => {
            (Target { dn: req.dn.clone(), after: Some(req.dn.clone()) }, Box::new(move || modify(req)))
        }
        LdapOp::DelRequest(dn) => (Target { dn: dn.clone(), after: None }, Box::new(move || delete(dn))),
        LdapOp::ModifyDNRequest(req) => {
            (Target { dn: req.dn.clone(), after: renamed_dn(&req) }, Box::new(move || moddn(req)))
        }
        _ => return Reply::Now(conn.result_pdu(id, tag, &result(LdapResultCode::ProtocolError, "not an update"), &[])),
    };
    // Registered so that StartTLS sees it in flight; a write cannot be abandoned half-way.
    let op = InFlight::new(conn, id, Shape::Result(tag));
    let conn = conn.clone();
    let session = session.clone();
    Reply::Pending(tokio::task::spawn_blocking(move || {
        let dir = &conn.ctx.directory;
        let mut ctrls = Vec::new();
        let outcome = (|| {
            let mut write = Write::one(change()?);
            // RFC 4528: tested in the write's own transaction, so that no
            // other write comes between the test and the change.
            if let Some(filter) = &wc.assertion {
                write = write.guarded(Dn::parse(&target.dn)?, Condition::Matches(filter.clone()));
            }
            // The pre-read is taken just before the write, on a snapshot of its own.
            if let Some(attrs) = &wc.pre_read {
                ctrls.extend(read_control(dir, &session, &target.dn, attrs, oids::PRE_READ));
            }
            dir.write_one(&session.actor(), write)?;
            if let (Some(attrs), Some(after)) = (&wc.post_read, &target.after) {
                ctrls.extend(read_control(dir, &session, after, attrs, oids::POST_READ));
            }
            Ok::<_, DirectoryError>(success())
        })();
        let res = outcome.unwrap_or_else(|e| from_error(&e));
        if res.code != LdapResultCode::Success {
            ctrls.clear();
        }
        let pdu = conn.result_pdu(id, tag, &res, &ctrls);
        op.answer(pdu);
    }))
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
pub(super) fn assertion_holds(
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
