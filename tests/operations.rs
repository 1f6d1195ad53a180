//! What operators watch: Prometheus metrics, health and readiness, and one
//! structured log line per operation.

use ldap3::{LdapConnAsync, Scope};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_operations_by_type_and_result() {
    let srv = TestServer::start().await;
    let (conn, mut ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    let refused = ldap.simple_bind("cn=admin,dc=cig,dc=fr", "wrong password").await.unwrap();
    assert_eq!(refused.rc, 49);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    for _ in 0..3 {
        ldap.search(AGENTS, Scope::OneLevel, "(uid=hdupre)", vec!["1.1"]).await.unwrap().success().unwrap();
    }
    let base = format!("http://{}", srv.handle.as_ref().unwrap().scim_http_addr.unwrap());
    let client = reqwest::Client::new();
    let unauthorized = client.get(format!("{base}/scim/v2/Users")).send().await.unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);

    let text = client.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(value("convergences_ldap_operations_total{op=\"search\",result=\"0\"}") >= 3.0);
    assert!(value("convergences_ldap_operations_total{op=\"bind\",result=\"49\"}") >= 1.0);
    assert!(value("convergences_bind_failures_total") >= 1.0);
    assert!(value("convergences_ldap_operation_seconds_count{op=\"search\"}") >= 3.0);
    assert!(value("convergences_ldap_open_connections") >= 1.0);
    assert!(value("convergences_scim_requests_total{method=\"GET\",status=\"401\"}") >= 1.0);
    assert!(value("convergences_entries") > 5.0);
    assert!(value("convergences_store_bytes") > 0.0);
    ldap.unbind().await.unwrap();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_is_one_json_log_line_without_its_password() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, url, _) = crate::crash_safety::spawn_with(&data, &[("CONVERGENCES_LOG_FORMAT", "json")]);
    let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    ldap.search(AGENTS, Scope::OneLevel, "(sn=Dup*)", vec!["1.1"]).await.unwrap().success().unwrap();
    let missing = ldap.delete(&format!("uid=nobody,{AGENTS}")).await.unwrap();
    assert_eq!(missing.rc, 32);
    ldap.unbind().await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(!log.contains(ADMIN_PASSWORD), "a password reached the log");
    let ops: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "convergences::ops")
        .collect();
    let find =
        |op: &str| ops.iter().find(|v| v["op"] == op).unwrap_or_else(|| panic!("no {op} line in {ops:?}")).clone();
    let bind = find("bind");
    assert_eq!((bind["result"].as_i64(), bind["object"].as_str()), (Some(0), Some("cn=admin,dc=cig,dc=fr")));
    assert!(bind["conn"].as_u64().is_some() && bind["us"].as_u64().is_some(), "{bind}");
    let search = find("search");
    assert!(search["object"].as_str().unwrap().contains("(sn=Dup*)"), "{search}");
    assert_eq!(search["who"], "cn=admin,dc=cig,dc=fr");
    let delete = find("delete");
    assert_eq!(delete["result"].as_i64(), Some(32), "{delete}");
}
