//! Compare (RFC 4511 §4.10), answered inline: one entry read.

use std::sync::Arc;

use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{LdapCompareRequest, LdapResult, LdapResultCode};

use super::write::assertion_holds;
use super::{Reply, Session, parse_dn};
use crate::ldap::result::{from_error, result};
use crate::ldap::{Conn, ber, controls};

pub fn compare(conn: &Arc<Conn>, session: &Session, id: i32, req: LdapCompareRequest, ctrls: &[LdapControl]) -> Reply {
    let res = match controls::write_controls(ctrls) {
        Ok(wc) => answer(conn, session, req, wc.assertion.as_ref()),
        Err(why) => result(LdapResultCode::ProtocolError, why),
    };
    Reply::Now(conn.result_pdu(id, ber::COMPARE_RESPONSE, &res, &[]))
}

fn answer(
    conn: &Conn,
    session: &Session,
    req: LdapCompareRequest,
    assertion: Option<&crate::directory::Filter>,
) -> LdapResult {
    let dir = &conn.ctx.directory;
    let dn = match parse_dn(&req.dn) {
        Ok(d) => d,
        Err(r) => return r,
    };
    if let Some(filter) = assertion {
        match assertion_holds(dir, session, &dn, filter) {
            Err(e) => return from_error(&e),
            Ok(false) => {
                return result(LdapResultCode::AssertionFailed, "the assertion control's filter does not match");
            }
            Ok(true) => {}
        }
    }
    match dir.compare(&session.principal, &dn, &req.atype, &req.val) {
        Ok(true) => result(LdapResultCode::CompareTrue, ""),
        Ok(false) => result(LdapResultCode::CompareFalse, ""),
        Err(e) => from_error(&e),
    }
}
