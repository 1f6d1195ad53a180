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
    let (mut child, url, _, console) = crate::crash_safety::spawn_all(&data, &[("CONVERGENCES_LOG_FORMAT", "json")]);
    let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    ldap.search(AGENTS, Scope::OneLevel, "(sn=Dup*)", vec!["1.1"]).await.unwrap().success().unwrap();
    let missing = ldap.delete(&format!("uid=nobody,{AGENTS}")).await.unwrap();
    assert_eq!(missing.rc, 32);
    ldap.unbind().await.unwrap();
    let page = reqwest::get(format!("{console}/connexion?suite=/accueil")).await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    stop(&mut child);

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
    // A console page is one line too, without its query.
    let page = ops.iter().find(|v| v["message"] == "console").unwrap_or_else(|| panic!("no console line in {ops:?}"));
    assert_eq!((page["path"].as_str(), page["status"].as_u64()), (Some("/connexion"), Some(200)), "{page}");
    assert!(!log.contains("suite=/accueil"), "a page's query reached the log");
}

/// A clean stop (SIGTERM), waited for.
fn stop(child: &mut std::process::Child) {
    let status = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_before_a_stop_has_its_line_and_text_lines_carry_no_colours() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A long interval: the lines still in the buffer at the stop are written by the shutdown.
    let env = [("CONVERGENCES_LOG_FORMAT", "text"), ("CONVERGENCES_LOG_FLUSH_MS", "60000")];
    let (mut child, url, _, _) = crate::crash_safety::spawn_all(&data, &env);
    let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    const SEARCHES: usize = 3000;
    for i in 0..SEARCHES {
        let filter = format!("(uid=oplog-{i})");
        ldap.search(AGENTS, Scope::OneLevel, &filter, vec!["1.1"]).await.unwrap().success().unwrap();
    }
    ldap.unbind().await.unwrap();
    stop(&mut child);

    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    let searches: Vec<&str> =
        log.lines().filter(|l| l.contains("convergences::ops: ldap") && l.contains("op=\"search\"")).collect();
    for i in 0..SEARCHES {
        let filter = format!("(uid=oplog-{i}) ");
        assert!(searches.iter().any(|l| l.contains(&filter)), "no line for search {i}");
    }
    assert_eq!(searches.len(), SEARCHES, "one line per search");
    assert!(!log.contains('\u{1b}'), "a colour escape in a log file");
    assert!(log.contains("store file read ahead"), "no read-ahead at start in {log}");
    let bind = log.lines().find(|l| l.contains("op=\"bind\"")).unwrap_or_else(|| panic!("no bind line in {log}"));
    let (time, rest) = bind.split_once(' ').unwrap();
    assert!(time.len() == 27 && time.ends_with('Z') && time.as_bytes()[10] == b'T', "{bind}");
    assert!(rest.starts_with(" INFO convergences::ops: ldap conn="), "{bind}");
    assert!(rest.contains(" who= object=cn=admin,dc=cig,dc=fr result=0 diagnostic= us="), "{bind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_connected_clients_and_ends_within_its_bound() {
    use tokio::io::AsyncReadExt;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.limits.shutdown_grace_secs = 2;
    let h = convergences::app::start(cfg).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(h.ldap_addr).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    h.shutdown().await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "shutdown took {:?}", started.elapsed());
    let mut said = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), idle.read_to_end(&mut said)).await.unwrap();
    assert!(said.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"), "{said:?}");
    assert!(said.windows(20).any(|w| w == b"server shutting down"), "{said:?}");
}

/// Run the binary; (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_convergences")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_restores_into_a_consistent_store() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data_s = data.to_str().unwrap().to_string();
    let (mut child, _, _) = crate::crash_safety::spawn(&data);
    child.kill().unwrap();
    child.wait().unwrap();
    let (ok, out, err) = cli(&["token", "create", "--cig", "--name", "backups", "--data", &data_s]);
    assert!(ok, "{err}");
    let token = out.lines().last().unwrap().trim().to_string();
    let (ok, out, err) = cli(&["token", "create", "--org", "219400280", "--name", "rh", "--data", &data_s]);
    assert!(ok, "{err}");
    let org_token = out.lines().last().unwrap().trim().to_string();

    let (mut child, url, scim) = crate::crash_safety::spawn(&data);
    let base = scim.trim_end_matches("/scim/v2").to_string();
    // Writes keep coming while the backup is taken.
    let writer = {
        let url = url.clone();
        tokio::spawn(async move {
            let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
            ldap3::drive!(conn);
            ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
            for i in 0..200 {
                let uid = format!("during-backup-{i}");
                let dn = format!("uid={uid},{AGENTS}");
                let attrs = vec![
                    ("objectClass", ["inetOrgPerson"].into()),
                    ("uid", [uid.as_str()].into()),
                    ("cn", [uid.as_str()].into()),
                    ("sn", ["Pendant"].into()),
                ];
                ldap.add(&dn, attrs).await.unwrap().success().unwrap();
            }
        })
    };
    let backup = tmp.path().join("online.backup");
    let ldif = tmp.path().join("online.ldif");
    let backup_s = backup.to_str().unwrap().to_string();
    let (ok, _, err) = tokio::task::spawn_blocking({
        let (base, token, backup_s) = (base.clone(), token.clone(), backup_s.clone());
        move || cli(&["backup", &backup_s, "--url", &base, "--token", &token])
    })
    .await
    .unwrap();
    assert!(ok, "{err}");
    writer.await.unwrap();
    let (ok, _, err) = cli(&["export", "--url", &base, "--token", &token, "-o", ldif.to_str().unwrap()]);
    assert!(ok, "{err}");
    let exported = std::fs::read_to_string(&ldif).unwrap();
    assert!(exported.contains("dn: uid=during-backup-199,"), "the export was taken after every write");
    // An organisation's token may not take a backup, nor may no token.
    let (ok, _, err) = cli(&["backup", "/dev/null", "--url", &base, "--token", &org_token]);
    assert!(!ok && err.contains("take a CIG token"), "{err}");
    let (ok, _, err) = cli(&["backup", "/dev/null", "--url", &base, "--token", "not-a-token"]);
    assert!(!ok && err.contains("bearer token"), "{err}");
    child.kill().unwrap();
    child.wait().unwrap();

    // Restored elsewhere: consistent, and the same directory with the same tokens.
    let restored = tmp.path().join("restored");
    let restored_s = restored.to_str().unwrap().to_string();
    let (ok, _, err) = cli(&["restore", &backup_s, "--data", &restored_s]);
    assert!(ok, "{err}");
    let (ok, out, _) = cli(&["check", "--data", &restored_s]);
    assert!(ok && out.contains(": consistent"), "{out}");
    let (ok, _, err) = cli(&["restore", &backup_s, "--data", &restored_s]);
    assert!(!ok && err.contains("empty data directory"), "a restore never overwrites a store: {err}");
    let (mut child, url, scim) = crate::crash_safety::spawn(&restored);
    let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let (found, _) =
        ldap.search(AGENTS, Scope::OneLevel, "(uid=hdupre)", vec!["1.1"]).await.unwrap().success().unwrap();
    assert_eq!(found.len(), 1);
    let resp = reqwest::Client::new().get(format!("{scim}/Users?count=1")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "the token came back with the backup");
    child.kill().unwrap();
    child.wait().unwrap();

    // A damaged backup is refused and leaves nothing behind.
    let bytes = std::fs::read(&backup).unwrap();
    let damaged = tmp.path().join("damaged.backup");
    std::fs::write(&damaged, &bytes[..bytes.len() - 7]).unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    let (ok, _, err) = cli(&["restore", damaged.to_str().unwrap(), "--data", elsewhere.to_str().unwrap()]);
    assert!(!ok, "a truncated backup restored");
    assert!(err.contains("truncated") || err.contains("damaged"), "{err}");
    assert!(!elsewhere.join("convergences.redb").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_certificates_are_served_and_trusted_by_ldapsearch() {
    if !have("openssl") || !have("ldapsearch") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let script = certs.join("make-dev-certs.sh");
    std::fs::copy(concat!(env!("CARGO_MANIFEST_DIR"), "/certs/make-dev-certs.sh"), &script).unwrap();
    let (code, out, err) = run("bash", &[script.to_str().unwrap(), "localhost"], None).await;
    assert_eq!(code, 0, "{out}{err}");
    let srv = TestServer::start_with(|c| {
        c.tls_cert = Some(certs.join("server.pem"));
        c.tls_key = Some(certs.join("server.key"));
    })
    .await;
    // The certificate names 127.0.0.1 too (localhost may resolve to ::1, where nothing listens).
    let ldaps = format!("ldaps://127.0.0.1:{}", srv.handle.as_ref().unwrap().ldaps_addr.port());
    let ca = certs.join("ca.pem");
    let (code, out, err) = run_env(
        "ldapsearch",
        &["-x", "-LLL", "-H", &ldaps, "-b", "", "-s", "base", "namingContexts"],
        None,
        &[("LDAPTLS_CACERT", ca.to_str().unwrap()), ("LDAPTLS_REQCERT", "demand")],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("namingContexts: dc=cig,dc=fr"), "{out}");
}
