//! Every request kind answered with its own response type (RFC 4511
//! §4.2–4.14), checked on the reply value, without a socket: a real store
//! in a temporary directory, the real dispatcher.

use std::sync::Arc;

use bytes::BytesMut;
use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::*;
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

use super::{Reply, Session, dispatch};
use crate::ldap::{Conn, Context, oids};

const ADMIN_PASSWORD: &str = "table-test-password";

fn context(dir: &std::path::Path) -> Arc<Context> {
    let mut cfg = crate::config::Config::for_test(dir);
    cfg.demo = true;
    cfg.admin_password = Some(ADMIN_PASSWORD.into());
    let directory = Arc::new(crate::app::open_directory(&cfg).unwrap());
    crate::seed::seed_demo(&directory, cfg.admin_password.as_deref()).unwrap();
    Arc::new(Context::new(directory, &cfg, None).unwrap())
}

/// A connection of a server on a fresh demo store, its responses in the receiver.
fn connection(name: &str) -> (std::path::PathBuf, Arc<Conn>, mpsc::UnboundedReceiver<Vec<u8>>) {
    let tmp = std::env::temp_dir().join(format!("convergences-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let (tx, rx) = mpsc::unbounded_channel();
    let conn = Arc::new(Conn::new(context(&tmp), tx));
    (tmp, conn, rx)
}

/// A base search of the root DSE, which anyone may read.
fn root_dse_search() -> LdapOp {
    LdapOp::SearchRequest(LdapSearchRequest {
        base: String::new(),
        scope: LdapSearchScope::Base,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: LdapFilter::Present("objectClass".into()),
        attrs: vec![],
    })
}

/// The messages one request got back, in order.
async fn ask(
    conn: &Arc<Conn>,
    rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    session: &mut Session,
    msg: LdapMsg,
) -> Vec<LdapMsg> {
    let mut bytes = Vec::new();
    match dispatch(conn, session, msg).await {
        Reply::Silent => {}
        Reply::Now(b) | Reply::StartTls(b) | Reply::Close(b) => bytes.extend(b),
        Reply::Pending(task) => task.await.unwrap(),
    }
    while let Ok(b) = rx.try_recv() {
        bytes.extend(b);
    }
    let mut buf = BytesMut::from(&bytes[..]);
    let mut codec = LdapCodec::new(Some(1 << 20), None);
    let mut out = Vec::new();
    while let Some(m) = codec.decode(&mut buf).unwrap() {
        out.push(m);
    }
    assert!(buf.is_empty(), "trailing bytes");
    out
}

fn kind(op: &LdapOp) -> &'static str {
    match op {
        LdapOp::BindResponse(_) => "BindResponse",
        LdapOp::SearchResultEntry(_) => "SearchResultEntry",
        LdapOp::SearchResultDone(_) => "SearchResultDone",
        LdapOp::ModifyResponse(_) => "ModifyResponse",
        LdapOp::AddResponse(_) => "AddResponse",
        LdapOp::DelResponse(_) => "DelResponse",
        LdapOp::ModifyDNResponse(_) => "ModifyDNResponse",
        LdapOp::CompareResult(_) => "CompareResult",
        LdapOp::ExtendedResponse(_) => "ExtendedResponse",
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_kind_gets_its_own_response_type() {
    let (tmp, conn, mut rx) = connection("dispatch");
    let ctx = conn.ctx.clone();
    let mut session = Session::default();
    let suffix = ctx.directory.suffix().to_string();
    let admin = format!("cn=admin,{suffix}");
    let agent = format!("uid=table.test,ou=admins,{suffix}");
    let attr = |t: &str, v: &str| LdapPartialAttribute { atype: t.into(), vals: vec![v.as_bytes().to_vec()] };
    let cases: Vec<(LdapOp, Vec<LdapControl>, &[&str])> = vec![
        (
            LdapOp::BindRequest(LdapBindRequest {
                version: 3,
                dn: admin.clone(),
                cred: LdapBindCred::Simple(ADMIN_PASSWORD.into()),
            }),
            vec![],
            &["BindResponse"],
        ),
        (root_dse_search(), vec![], &["SearchResultEntry", "SearchResultDone"]),
        (
            LdapOp::AddRequest(LdapAddRequest {
                dn: agent.clone(),
                attributes: vec![attr("objectClass", "inetOrgPerson"), attr("cn", "Table Test"), attr("sn", "Test")],
            }),
            vec![],
            &["AddResponse"],
        ),
        (
            LdapOp::ModifyRequest(LdapModifyRequest {
                dn: agent.clone(),
                changes: vec![LdapModify {
                    operation: LdapModifyType::Replace,
                    modification: attr("description", "x"),
                }],
            }),
            vec![],
            &["ModifyResponse"],
        ),
        (
            LdapOp::CompareRequest(LdapCompareRequest { dn: agent.clone(), atype: "sn".into(), val: b"Test".to_vec() }),
            vec![],
            &["CompareResult"],
        ),
        (
            LdapOp::ModifyDNRequest(LdapModifyDNRequest {
                dn: agent.clone(),
                newrdn: "uid=table.test2".into(),
                deleteoldrdn: true,
                new_superior: None,
            }),
            vec![],
            &["ModifyDNResponse"],
        ),
        (LdapOp::DelRequest(format!("uid=table.test2,ou=admins,{suffix}")), vec![], &["DelResponse"]),
        (
            LdapOp::ExtendedRequest(LdapExtendedRequest { name: oids::WHOAMI.into(), value: None }),
            vec![],
            &["ExtendedResponse"],
        ),
        (
            LdapOp::ExtendedRequest(LdapExtendedRequest { name: oids::STARTTLS.into(), value: None }),
            vec![],
            &["ExtendedResponse"],
        ),
        (
            LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.2.3.4".into(), value: None }),
            vec![],
            &["ExtendedResponse"],
        ),
        // A critical control nobody implements here: refused in the operation's own type.
        (
            LdapOp::DelRequest(agent.clone()),
            vec![LdapControl::Unknown { oid: "1.2.3.4.5".into(), criticality: true, value: None }],
            &["DelResponse"],
        ),
        (LdapOp::AbandonRequest(99), vec![], &[]),
    ];
    for (i, (op, ctrl, expected)) in cases.into_iter().enumerate() {
        let what = format!("{op:?}");
        let msg_critical = !ctrl.is_empty();
        let msg = LdapMsg { msgid: i as i32 + 1, op, ctrl };
        let got = ask(&conn, &mut rx, &mut session, msg).await;
        let kinds: Vec<&str> = got.iter().map(|m| kind(&m.op)).collect();
        assert_eq!(kinds, expected, "{what}");
        assert!(got.iter().all(|m| m.msgid == i as i32 + 1), "{what}");
        let critical = msg_critical;
        if let Some(LdapOp::AddResponse(r) | LdapOp::ModifyResponse(r) | LdapOp::DelResponse(r)) =
            got.last().map(|m| &m.op)
        {
            let want = if critical { LdapResultCode::UnavailableCriticalExtension } else { LdapResultCode::Success };
            assert_eq!(r.code, want, "{what}: {}", r.message);
        }
    }
    // Unbind closes without a response; a response PDU sent by a client gets a
    // Notice of Disconnection, and the connection closes (RFC 4511 §4.4.1).
    let unbind = dispatch(&conn, &mut session, LdapMsg::new(50, LdapOp::UnbindRequest)).await;
    assert!(matches!(unbind, Reply::Close(ref b) if b.is_empty()), "{unbind:?}");
    let wrong = LdapOp::DelResponse(LdapResult {
        code: LdapResultCode::Success,
        matcheddn: String::new(),
        message: String::new(),
        referral: vec![],
    });
    let Reply::Close(notice) = dispatch(&conn, &mut session, LdapMsg::new(51, wrong)).await else {
        panic!("a response PDU from a client must close the connection");
    };
    let mut buf = BytesMut::from(&notice[..]);
    let msg = LdapCodec::new(Some(1 << 20), None).decode(&mut buf).unwrap().unwrap();
    assert_eq!(msg.msgid, 0);
    let LdapOp::ExtendedResponse(r) = msg.op else { panic!("a notice is an ExtendedResponse") };
    assert_eq!(r.name.as_deref(), Some(oids::NOTICE_OF_DISCONNECTION));
    assert!(conn.outstanding.lock().unwrap().is_empty(), "every operation gave its slot back");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_still_outstanding_is_refused_and_keeps_its_slot() {
    let (tmp, conn, mut rx) = connection("reuse");
    let mut session = Session::default();
    // Operation 77 runs (a long search, say).
    let running = super::InFlight::new(&conn, 77, super::Shape::Result(crate::ldap::ber::SEARCH_RESULT_DONE));
    let search = root_dse_search();
    let got = ask(&conn, &mut rx, &mut session, LdapMsg::new(77, search)).await;
    let [LdapMsg { op: LdapOp::SearchResultDone(r), .. }] = got.as_slice() else { panic!("{got:?}") };
    assert_eq!(r.code, LdapResultCode::ProtocolError);
    assert!(conn.outstanding.lock().unwrap().contains_key(&77), "the running operation keeps its slot");
    running.settle();
    assert!(conn.outstanding.lock().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&tmp);
}
