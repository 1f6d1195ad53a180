//! Limits and bad input: each is answered with a proper LDAP result code or
//! SCIM error, and a well-behaved client is served normally afterwards.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use convergences::directory::TokenScope;
use ldap3::{LdapConnAsync, Scope, SearchEntry};
use serde_json::{Value, json};

use crate::common::*;

/// RFC 4511 §4.4.1: the OID of a Notice of Disconnection.
const NOTICE_OF_DISCONNECTION: &[u8] = b"1.3.6.1.4.1.1466.20036";

fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = body.len();
    if n < 128 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(body);
    out
}

/// A SearchRequest PDU (message 1) with this base and filter, both as BER.
fn search_pdu(base: &[u8], filter: Vec<u8>) -> Vec<u8> {
    search_pdu_numbered(1, base, filter)
}

/// A subtree SearchRequest PDU with this message ID, base and filter.
fn search_pdu_numbered(id: u8, base: &[u8], filter: Vec<u8>) -> Vec<u8> {
    let mut req = tlv(0x04, base);
    for part in [tlv(0x0a, &[2]), tlv(0x0a, &[0]), tlv(0x02, &[0]), tlv(0x02, &[0]), tlv(0x01, &[0])] {
        req.extend(part);
    }
    req.extend(filter);
    req.extend(tlv(0x30, b""));
    let mut msg = tlv(0x02, &[id]);
    msg.extend(tlv(0x63, &req));
    tlv(0x30, &msg)
}

/// Send raw bytes on a fresh connection; everything the server answers until it closes (or 5 s).
fn exchange(url: &str, bytes: &[u8]) -> Vec<u8> {
    let addr = url.trim_start_matches("ldap://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A connection bound as `who`.
async fn bound(url: &str, who: &str, password: &str) -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::new(url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(who, password).await.unwrap().success().unwrap();
    ldap
}

/// A well-behaved client still gets the right answer.
async fn still_serves(url: &str) {
    let mut ldap = bound(url, "cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await;
    let (found, _) = ldap.search(AGENTS, Scope::OneLevel, "(uid=hdupre)", vec!["sn"]).await.unwrap().success().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(SearchEntry::construct(found[0].clone()).attrs["sn"], vec!["Dupré"]);
    ldap.unbind().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_pdus_end_only_their_own_connection() {
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let nested = |depth: usize| {
        let mut f = tlv(0x87, b"objectClass");
        for _ in 0..depth {
            f = tlv(0xa2, &f);
        }
        f
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("a length of 4 GiB", vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02, 0x01, 0x01]),
        ("an indefinite length", vec![0x30, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]),
        ("a truncated PDU", search_pdu(SUFFIX.as_bytes(), tlv(0x87, b"cn"))[..20].to_vec()),
        ("a wrong outer tag", {
            let mut p = search_pdu(SUFFIX.as_bytes(), tlv(0x87, b"cn"));
            p[0] = 0x31;
            p
        }),
        ("an unknown operation tag", tlv(0x30, &[tlv(0x02, &[1]), tlv(0x7f, b"")].concat())),
        ("a filter nested 100000 deep", search_pdu(SUFFIX.as_bytes(), nested(100_000))),
        ("an unknown filter tag", search_pdu(SUFFIX.as_bytes(), tlv(0x8f, b"x"))),
    ];
    for (what, bytes) in &cases {
        let answer = exchange(&url, bytes);
        // Closed, and when anything is said it is a Notice of Disconnection.
        assert!(answer.is_empty() || contains(&answer, NOTICE_OF_DISCONNECTION), "{what}: {answer:02x?}");
    }
    // Invalid UTF-8 in a base DN is a well-formed PDU with a bad DN: an
    // error result, and the connection stays usable.
    let answer = exchange(&url, &search_pdu(b"cn=\xff\xfe,dc=cig,dc=fr", tlv(0x87, b"cn")));
    assert!(contains(&answer, &[0x65]) || contains(&answer, NOTICE_OF_DISCONNECTION), "{answer:02x?}");
    still_serves(&url).await;
    // A search nested a few levels deep is fine.
    assert!(contains(&exchange(&url, &search_pdu(SUFFIX.as_bytes(), nested(8))), &[0x65]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_over_its_connection_limit_is_told_unavailable() {
    let srv = TestServer::start_with(|c| c.limits.max_connections_per_peer = 2).await;
    let first = TcpStream::connect(srv.url.trim_start_matches("ldap://")).unwrap();
    let second = TcpStream::connect(srv.url.trim_start_matches("ldap://")).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let refused = exchange(&srv.url, b"");
    assert!(contains(&refused, NOTICE_OF_DISCONNECTION), "{refused:02x?}");
    assert!(contains(&refused, b"too many connections from this address"), "{refused:02x?}");
    drop((first, second));
    // The slots come back once those connections close.
    for attempt in 0.. {
        std::thread::sleep(Duration::from_millis(100));
        let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
        ldap3::drive!(conn);
        if ldap.simple_bind("", "").await.is_ok_and(|r| r.rc == 0) {
            break;
        }
        assert!(attempt < 50, "no slot came back");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_bind_refuses_anonymous_operations_but_the_root_dse() {
    let srv = TestServer::start_with(|c| c.limits.require_bind = true).await;
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    let refused = ldap.search(SUFFIX, Scope::Subtree, "(uid=hdupre)", vec!["1.1"]).await.unwrap();
    assert_eq!(refused.1.rc, 53, "{:?}", refused.1);
    assert!(refused.1.text.contains("bind first"), "{:?}", refused.1);
    let (dse, _) =
        ldap.search("", Scope::Base, "(objectClass=*)", vec!["namingContexts"]).await.unwrap().success().unwrap();
    assert_eq!(dse.len(), 1);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let (found, _) = ldap.search(SUFFIX, Scope::Subtree, "(uid=hdupre)", vec!["1.1"]).await.unwrap().success().unwrap();
    assert_eq!(found.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scim_requests_get_scim_errors_and_good_ones_still_work() {
    let srv = TestServer::start_with(|c| c.scim_limits.max_body_bytes = 4096).await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(ORG)));
    let error_schema = "urn:ietf:params:scim:api:messages:2.0:Error";
    let client = reqwest::Client::new();
    let raw = |method: reqwest::Method, path: &str, body: Vec<u8>| {
        client
            .request(method, format!("{}{path}", scim.base))
            .bearer_auth(&t)
            .header("Content-Type", "application/scim+json")
            .body(body)
            .send()
    };
    let as_json = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);

    // Over the body limit: 413, as a SCIM error.
    let big = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x".repeat(10_000)});
    let resp = raw(reqwest::Method::POST, "/Users", big.to_string().into_bytes()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let body = as_json(&resp.text().await.unwrap());
    assert_eq!(body["schemas"][0], error_schema, "{body}");
    assert_eq!(body["status"], "413", "{body}");

    // Not JSON, and JSON of the wrong shape.
    for (what, text) in [
        ("not JSON", b"{\"schemas\": [".to_vec()),
        ("not an object", b"[1, 2]".to_vec()),
        (
            "userName of the wrong type",
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 5}).to_string().into_bytes(),
        ),
        ("an unknown schema", json!({"schemas": ["urn:example:unknown"], "userName": "u"}).to_string().into_bytes()),
        (
            "invalid UTF-8",
            b"{\"schemas\": [\"urn:ietf:params:scim:schemas:core:2.0:User\"], \"userName\": \"\xff\"}".to_vec(),
        ),
    ] {
        let resp = raw(reqwest::Method::POST, "/Users", text).await.unwrap();
        let status = resp.status().as_u16();
        let body = as_json(&resp.text().await.unwrap());
        assert_eq!(status, 400, "{what}: {body}");
        assert_eq!(body["schemas"][0], error_schema, "{what}: {body}");
    }

    // Filters too long or too deep are refused before they are parsed.
    let long = format!("userName eq \"{}\"", "a".repeat(5000));
    let deep = format!("{}userName eq \"a\"{}", "(".repeat(40), ")".repeat(40));
    for filter in [long, deep] {
        let encoded: String = filter.bytes().map(|b| format!("%{b:02X}")).collect();
        let resp = client.get(format!("{}/Users?filter={encoded}", scim.base)).bearer_auth(&t).send().await.unwrap();
        let status = resp.status().as_u16();
        let body = as_json(&resp.text().await.unwrap());
        assert_eq!((status, body["scimType"].as_str()), (400, Some("invalidFilter")), "{body}");
    }

    // So are PATCH paths, whose value filters go through the same parser.
    let deep_path = format!("emails[{}type eq \"work\"{}]", "(".repeat(40), ")".repeat(40));
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": deep_path}]});
    let (status, _, body) = scim.call(&t, "PATCH", "/Users/00000000-0000-0000-0000-000000000000", Some(&patch)).await;
    assert_eq!((status, body["scimType"].as_str()), (400, Some("invalidFilter")), "{body}");

    // A method a route does not have is a SCIM error too.
    let resp = raw(reqwest::Method::PUT, "/Users", b"{}".to_vec()).await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert!(resp.headers().contains_key("allow"), "the Allow header survives");
    assert_eq!(as_json(&resp.text().await.unwrap())["schemas"][0], error_schema);

    // And a sane request still succeeds.
    let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "sane", "name": {"familyName": "Sain"}});
    let (status, _, created) = scim.call(&t, "POST", "/Users", Some(&user)).await;
    assert_eq!(status, 201, "{created}");
    let (status, _, found) = scim.call(&t, "GET", "/Users?filter=userName%20eq%20%22sane%22", None).await;
    assert_eq!((status, found["totalResults"].as_u64()), (200, Some(1)), "{found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_requests_beyond_the_concurrency_limit_get_429_and_a_retry_after() {
    let srv = TestServer::start_with(|c| c.scim_limits.max_concurrent_requests = 1).await;
    let scim = Scim::new(&srv);
    let t = token(&srv, TokenScope::Organisation(dn(ORG)));
    let client = reqwest::Client::new();
    let requests = (0..40).map(|i| {
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("busy{i}"), "name": {"familyName": "Occupé"}});
        client
            .post(format!("{}/Users", scim.base))
            .bearer_auth(&t)
            .header("Content-Type", "application/scim+json")
            .body(user.to_string())
            .send()
    });
    let mut refused = 0;
    for resp in futures_util::future::join_all(requests).await {
        let resp = resp.unwrap();
        match resp.status().as_u16() {
            201 => {}
            429 => {
                refused += 1;
                assert_eq!(resp.headers()["retry-after"], "1");
                let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
                assert_eq!(body["status"], "429", "{body}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(refused > 0, "forty concurrent creations never exceeded a limit of one");
    // Once the burst is over, requests are served again.
    let (status, _, _) = scim.call(&t, "GET", "/Users?count=1", None).await;
    assert_eq!(status, 200);
}

/// Entries found and the result code of a one-level search of `agents`, bound as `who`.
async fn count_agents(url: &str, agents: &str, who: &str, password: &str) -> (usize, u32) {
    let mut ldap = bound(url, who, password).await;
    let ldap3::SearchResult(found, res) =
        ldap.search(agents, Scope::OneLevel, "(objectClass=inetOrgPerson)", vec!["1.1"]).await.unwrap();
    ldap.unbind().await.unwrap();
    (found.len(), res.rc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_limits_follow_the_first_rule_that_matches_the_identity() {
    use convergences::config::SearchLimitRule;
    let rule = |who: &str, size| SearchLimitRule { who: who.into(), size, time_secs: 0 };
    let srv = TestServer::start_with(|c| {
        c.limits.search_size = 1;
        c.limits.search_rules = vec![rule(&format!("dn:uid=hdupre,{AGENTS}"), 2), rule("administrators", 1)];
    })
    .await;
    let demo = convergences::seed::DEMO_PASSWORD;
    // hdupre (référent of the three agents of her organisation) has her own
    // rule: two entries, then sizeLimitExceeded (4).
    assert_eq!(count_agents(&srv.url, AGENTS, &format!("uid=hdupre,{AGENTS}"), demo).await, (2, 4));
    // Administrators, otherwise unlimited, get their rule's one entry.
    assert_eq!(count_agents(&srv.url, AGENTS, "cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await, (1, 4));
    // No rule for floeuvre (référent of two agents): the default of one.
    let other = "ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr";
    assert_eq!(count_agents(&srv.url, other, &format!("uid=floeuvre,{other}"), demo).await, (1, 4));
    // A client asking for less than its limit gets what it asked for.
    let mut ldap = bound(&srv.url, &format!("uid=hdupre,{AGENTS}"), demo).await;
    let opts = ldap3::SearchOptions::new().sizelimit(1);
    let ldap3::SearchResult(found, res) =
        ldap.with_search_options(opts).search(AGENTS, Scope::OneLevel, "(uid=*)", vec!["1.1"]).await.unwrap();
    assert_eq!((found.len(), res.rc), (1, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_limit_rule_naming_nobody_known_stops_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.limits.search_rules =
        vec![convergences::config::SearchLimitRule { who: "everybody".into(), size: 1, time_secs: 0 }];
    let err = convergences::app::start(cfg).await.err().expect("the server must not start");
    assert!(err.to_string().contains("limits.search_rules"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_told_and_closed() {
    let srv = TestServer::start_with(|c| c.limits.idle_timeout_secs = 1).await;
    let mut s = TcpStream::connect(srv.url.trim_start_matches("ldap://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = std::time::Instant::now();
    let mut said = Vec::new();
    let _ = s.read_to_end(&mut said);
    assert!(started.elapsed() < Duration::from_secs(8), "still open after {:?}", started.elapsed());
    assert!(contains(&said, NOTICE_OF_DISCONNECTION), "{said:02x?}");
    assert!(contains(&said, b"idle timeout"), "{said:02x?}");
    still_serves(&srv.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_its_paged_cursor_limit_a_connection_loses_its_oldest_cursor() {
    use ldap3::controls::{Control, ControlType, PagedResults, RawControl};
    let srv = TestServer::start_with(|c| c.limits.max_paged_cursors = 1).await;
    let mut ldap = bound(&srv.url, "cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await;
    let page = |cookie: Vec<u8>| vec![RawControl::from(PagedResults { size: 1, cookie })];
    let cookie_of = |ctrls: &[Control]| {
        ctrls
            .iter()
            .find_map(|Control(kind, raw)| match kind {
                Some(ControlType::PagedResults) => Some(raw.parse::<PagedResults>().cookie),
                _ => None,
            })
            .expect("a paged results control")
    };
    let first = ldap.with_controls(page(vec![])).search(AGENTS, Scope::OneLevel, "(uid=*)", vec!["1.1"]).await.unwrap();
    let first_cookie = cookie_of(&first.1.ctrls);
    assert!(!first_cookie.is_empty());
    let second = ldap.with_controls(page(vec![])).search(ORG, Scope::Subtree, "(uid=*)", vec!["1.1"]).await.unwrap();
    assert!(!cookie_of(&second.1.ctrls).is_empty());
    // The first cursor was dropped to make room for the second.
    let stale =
        ldap.with_controls(page(first_cookie)).search(AGENTS, Scope::OneLevel, "(uid=*)", vec!["1.1"]).await.unwrap();
    assert_eq!(stale.1.rc, 53, "{:?}", stale.1);
    assert!(stale.1.text.contains("cookie"), "{:?}", stale.1);
    still_serves(&srv.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_beyond_the_outstanding_limit_is_answered_busy() {
    use ldap3_proto::proto::{
        LdapBindCred, LdapBindRequest, LdapExtendedRequest, LdapMsg, LdapOp, LdapPasswordModifyRequest, LdapResultCode,
    };
    use tokio_util::codec::{Decoder, Encoder};
    let srv = TestServer::start_with(|c| c.limits.max_outstanding_ops = 1).await;
    // A bind, a password change (argon2: milliseconds, on its own task) and a
    // search, written at once: the bind is answered before the next request
    // is read, the search arrives while the change runs, and is one operation
    // too many. One write, so no pause on a loaded machine lets the change end first.
    let cmartin = format!("uid=cmartin,{AGENTS}");
    let bind = LdapBindRequest {
        version: 3,
        dn: "cn=admin,dc=cig,dc=fr".into(),
        cred: LdapBindCred::Simple(ADMIN_PASSWORD.into()),
    };
    let change = LdapPasswordModifyRequest {
        user_identity: Some(cmartin),
        old_password: None,
        new_password: Some("Un-Secret-Tout-Neuf".into()),
    };
    let mut wire = bytes::BytesMut::new();
    let mut codec = ldap3_proto::LdapCodec::default();
    for msg in [
        LdapMsg::new(1, LdapOp::BindRequest(bind)),
        LdapMsg::new(2, LdapOp::ExtendedRequest(LdapExtendedRequest::from(change))),
    ] {
        codec.encode(msg, &mut wire).unwrap();
    }
    wire.extend_from_slice(&search_pdu_numbered(
        3,
        AGENTS.as_bytes(),
        tlv(0xa3, &[tlv(0x04, b"uid"), tlv(0x04, b"hdupre")].concat()),
    ));
    let mut s = TcpStream::connect(srv.url.trim_start_matches("ldap://")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&wire).unwrap();
    // Read until the bind, the change and the search are all answered.
    let mut got = bytes::BytesMut::new();
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 3 {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "the connection closed after {answers:?}");
        got.extend_from_slice(&chunk[..n]);
        while let Some(msg) = codec.decode(&mut got).unwrap() {
            let code = match msg.op {
                LdapOp::BindResponse(r) => r.res.code,
                LdapOp::ExtendedResponse(r) => r.res.code,
                LdapOp::SearchResultDone(r) => r.code,
                _ => continue,
            };
            answers.insert(msg.msgid, code);
        }
    }
    assert_eq!(answers[&1], LdapResultCode::Success, "the bind");
    assert_eq!(answers[&2], LdapResultCode::Success, "the password change itself succeeds");
    assert_eq!(answers[&3], LdapResultCode::Busy, "the search sent while the change ran");
    // Once nothing else runs, the same search is served.
    let mut ldap = bound(&srv.url, "cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await;
    let (found, _) =
        ldap.search(AGENTS, Scope::OneLevel, "(uid=hdupre)", vec!["1.1"]).await.unwrap().success().unwrap();
    assert_eq!(found.len(), 1);
}
