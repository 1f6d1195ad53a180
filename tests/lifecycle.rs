//! An account follows the agent's contract (issue 21): outside its window of
//! validity (pwdStartTime / pwdEndTime) a bind fails like a wrong password
//! and SCIM shows it inactive; when the end date passes, the server records
//! the transition in the audit trail, once.

use convergences::directory::{AuditQuery, TokenScope, lifecycle};
use serde_json::json;

use crate::common::{Scim, TestServer, dn, have, run};

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const AGENT: &str = "urn:convergences:params:scim:schemas:extension:cig:2.0:Agent";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// A GeneralizedTime `days` from now.
fn in_days(days: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    format!("{}Z", lifecycle::epoch_instant(now + days * 86_400))
}

async fn bind(srv: &TestServer, who: &str, password: &str) -> (i32, String) {
    let (code, _, err) = run("ldapwhoami", &["-x", "-H", &srv.url, "-D", who, "-w", password], None).await;
    (code, err)
}

/// ldapmodify as the référent Hélène Dupré; (exit code, stderr).
async fn as_referent(srv: &TestServer, change: &str) -> (i32, String) {
    let demo = convergences::seed::DEMO_PASSWORD;
    let (code, _, err) = run("ldapmodify", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo], Some(change)).await;
    (code, err)
}

fn uuid(srv: &TestServer, entry: &str) -> String {
    srv.directory().get(&dn(entry)).unwrap().unwrap().first_str("entryUUID").unwrap().to_string()
}

/// The audit records of the server's own lifecycle transitions.
fn lifecycle_records(srv: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    srv.directory()
        .audit(&AuditQuery::default(), |_, c| {
            if c.op == "lifecycle" {
                out.push(format!("{} {} {}", c.actor, c.dn, c.result));
            }
            Ok(())
        })
        .unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_validity_an_account_binds_like_a_wrong_password_and_scim_shows_it_inactive() {
    if !have("ldapwhoami") || !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let demo = convergences::seed::DEMO_PASSWORD;
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    assert_eq!(bind(&srv, JDUPONT, demo).await.0, 0);
    let (_, wrong) = bind(&srv, JDUPONT, "pas-le-bon-mot-de-passe").await;

    // The contract ended: the référent sets the end date over LDAP.
    let ended = format!("dn: {JDUPONT}\nchangetype: modify\nreplace: pwdEndTime\npwdEndTime: 20200101000000Z\n");
    assert_eq!(as_referent(&srv, &ended).await, (0, String::new()));
    let (code, err) = bind(&srv, JDUPONT, demo).await;
    assert_eq!((code, err), (49, wrong.clone()), "refused exactly as a wrong password is");
    let (status, _, user) = scim.call(&org, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user["active"], json!(false), "{user}");
    assert_eq!(user[AGENT]["validUntil"], json!("2020-01-01T00:00:00Z"), "{user}");
    assert_eq!(user[AGENT]["status"], json!("ended"), "what an administrator reads: {user}");

    // Prolonged (the date removed): the account works again.
    let prolonged = format!("dn: {JDUPONT}\nchangetype: modify\ndelete: pwdEndTime\n");
    assert_eq!(as_referent(&srv, &prolonged).await.0, 0);
    assert_eq!(bind(&srv, JDUPONT, demo).await.0, 0);

    // The HR software sets a start date to come, by SCIM: not valid yet.
    let start = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": format!("{AGENT}:validFrom"), "value": "2099-09-01T08:00:00+02:00"}]});
    let (status, _, user) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&start)).await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(user[AGENT]["validFrom"], json!("2099-09-01T06:00:00Z"), "kept in UTC: {user}");
    assert_eq!(user["active"], json!(false), "{user}");
    assert_eq!(user[AGENT]["status"], json!("notYetValid"), "{user}");
    assert_eq!(bind(&srv, JDUPONT, demo).await, (49, wrong));
    let stored = srv.directory().get(&dn(JDUPONT)).unwrap().unwrap();
    assert_eq!(stored.first_str("pwdStartTime"), Some("20990901060000Z"), "LDAP tools read the draft's attribute");
    // Active users filtered by SCIM leave it out; inactive ones take it in.
    let (_, _, list) = scim.call(&org, "GET", "/Users?filter=active%20eq%20false", None).await;
    let names: Vec<&str> =
        list["Resources"].as_array().unwrap().iter().filter_map(|u| u["userName"].as_str()).collect();
    assert_eq!(names, ["jdupont"], "{list}");
    let (_, _, list) = scim.call(&org, "GET", "/Users?filter=active%20eq%20true", None).await;
    assert!(list["Resources"].as_array().unwrap().iter().all(|u| u["userName"] != "jdupont"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_dates_that_make_no_sense_are_refused_with_a_reason() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    let not_a_date = format!("dn: {JDUPONT}\nchangetype: modify\nreplace: pwdEndTime\npwdEndTime: demain\n");
    let (code, err) = as_referent(&srv, &not_a_date).await;
    assert_eq!(code, 21, "invalidAttributeSyntax: {err}");
    let backwards = format!(
        "dn: {JDUPONT}\nchangetype: modify\nreplace: pwdStartTime\npwdStartTime: 20270101000000Z\n-\n\
         replace: pwdEndTime\npwdEndTime: 20261231000000Z\n"
    );
    let (code, err) = as_referent(&srv, &backwards).await;
    assert_eq!(code, 19, "constraintViolation: {err}");
    assert!(err.contains("not after pwdStartTime"), "{err}");

    let patch = |path: &str, value: &str| json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": format!("{AGENT}:{path}"), "value": value}]});
    let (status, _, body) =
        scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&patch("validUntil", "demain"))).await;
    assert_eq!((status, body["scimType"].clone()), (400, json!("invalidValue")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("dateTime"), "{body}");
    let (status, _, _) =
        scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&patch("validFrom", "2027-01-01T00:00:00Z"))).await;
    assert_eq!(status, 200);
    let (status, _, body) =
        scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&patch("validUntil", "2026-06-30T00:00:00Z"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not after pwdStartTime"), "{body}");
    // Nothing of the refused changes was kept.
    let stored = srv.directory().get(&dn(JDUPONT)).unwrap().unwrap();
    assert_eq!(stored.first_str("pwdEndTime"), None);
    // A date with an offset is kept in UTC to the second, as SCIM shows it.
    let offset = format!("dn: {JDUPONT}\nchangetype: modify\nreplace: pwdEndTime\npwdEndTime: 203001011000+0100\n");
    assert_eq!(as_referent(&srv, &offset).await.0, 0);
    let stored = srv.directory().get(&dn(JDUPONT)).unwrap().unwrap();
    assert_eq!(stored.first_str("pwdEndTime"), Some("20300101090000Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_of_validity_is_recorded_once_by_the_server_as_of_its_date() {
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let data = srv.tmp.path().display().to_string();
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    let tomorrow = in_days(1);
    let iso = convergences::scim::mapping::iso_time(&tomorrow);
    let end = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": format!("{AGENT}:validUntil"), "value": iso}]});
    let (status, _, user) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&end)).await;
    assert_eq!((status, user["active"].clone()), (200, json!(true)), "{user}");

    // Today nothing is due.
    let (code, out, err) = run(BIN, &["lifecycle", "--data", &data], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("0 transitions"), "{out}");
    // As of the day after tomorrow, the end is recorded; a second run finds nothing left to do.
    let after = in_days(2);
    let (code, out, err) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &after], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("disabled: end of validity\t{JDUPONT}")), "{out}");
    let (_, out, _) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &after], None).await;
    assert!(out.contains("0 transitions"), "{out}");
    assert_eq!(lifecycle_records(&srv), [format!("convergences {JDUPONT} disabled: end of validity")]);
    let (code, audit, err) = run(BIN, &["audit", "--data", &data, "--org", "219400280"], None).await;
    assert_eq!(code, 0, "{err}");
    let line = audit.lines().find(|l| l.contains("\tlifecycle\t")).unwrap_or_default();
    assert!(line.contains("\tconvergences\t") && line.ends_with("disabled: end of validity"), "{audit}");

    // The contract is prolonged: the new end date is a transition of its own.
    let later = in_days(30);
    let prolong = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": format!("{AGENT}:validUntil"), "value": convergences::scim::mapping::iso_time(&later)}]});
    let (status, _, _) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&prolong)).await;
    assert_eq!(status, 200);
    let report = srv.directory().lifecycle(in_days(31).trim_end_matches('Z')).unwrap();
    assert_eq!(report.ended, [JDUPONT]);
    assert_eq!(lifecycle_records(&srv).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_records_an_end_of_validity_by_itself_and_only_once() {
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 1).await;
    let dir = srv.directory();
    let referent = convergences::directory::Actor::client(dir.principal_of(&dn(HDUPRE)).unwrap(), "test");
    let end = convergences::directory::Modification::new(
        convergences::directory::ModOp::Replace,
        "pwdEndTime",
        ["20200101000000Z"],
    );
    dir.modify(&referent, &dn(JDUPONT), &[end]).unwrap();
    let mut records = Vec::new();
    for _ in 0..100 {
        records = lifecycle_records(&srv);
        if !records.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(records, [format!("convergences {JDUPONT} disabled: end of validity")]);
    // Further steps (one a second) find it recorded.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(lifecycle_records(&srv).len(), 1);
    let stored = dir.get(&dn(JDUPONT)).unwrap().unwrap();
    assert_eq!(stored.first_str("cigValidityEnded"), Some("20200101000000Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_binds_are_counted_in_the_store_and_a_restart_does_not_forget_them() {
    if !have("ldapwhoami") || !have("ldapsearch") {
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let config = || {
        let mut cfg = convergences::config::Config::for_test(data.path());
        cfg.demo = true;
        cfg.admin_password = Some(crate::common::ADMIN_PASSWORD.into());
        cfg.password.max_failures = 3;
        cfg.password.lockout_secs = 600;
        cfg
    };
    let failures = |url: String| async move {
        let admin = ["-x", "-LLL", "-H", &url, "-D", "cn=admin,dc=cig,dc=fr", "-w", crate::common::ADMIN_PASSWORD];
        let args = [&admin[..], &["-b", JDUPONT, "-s", "base", "pwdFailureTime", "pwdAccountLockedTime"]].concat();
        let (_, out, _) = run("ldapsearch", &args, None).await;
        out
    };
    let whoami = |url: String, pw: &'static str| async move {
        run("ldapwhoami", &["-x", "-H", &url, "-D", JDUPONT, "-w", pw], None).await.0
    };
    let h = convergences::app::start(config()).await.unwrap();
    let url = format!("ldap://{}", h.ldap_addr);
    for _ in 0..2 {
        assert_eq!(whoami(url.clone(), "pas-le-bon").await, 49);
    }
    // Written in the background, within a second or so.
    let mut before = String::new();
    for _ in 0..30 {
        before = failures(url.clone()).await;
        if before.matches("pwdFailureTime:").count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(before.matches("pwdFailureTime:").count(), 2, "{before}");
    h.shutdown().await;

    // Restarted: the third failure locks the account.
    let h = convergences::app::start(config()).await.unwrap();
    let url = format!("ldap://{}", h.ldap_addr);
    assert_eq!(whoami(url.clone(), "pas-le-bon").await, 49);
    assert_eq!(whoami(url.clone(), convergences::seed::DEMO_PASSWORD).await, 49, "locked");
    let after = failures(url.clone()).await;
    assert!(after.contains("pwdAccountLockedTime:"), "{after}");
    // The administrator unlocks it: the count starts over, and the password works.
    let unlock = format!("dn: {JDUPONT}\nchangetype: modify\ndelete: pwdAccountLockedTime\n");
    let admin = ["-x", "-H", &url, "-D", "cn=admin,dc=cig,dc=fr", "-w", crate::common::ADMIN_PASSWORD];
    let (code, _, err) = run("ldapmodify", &admin, Some(&unlock)).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(failures(url.clone()).await.matches("pwdFailureTime:").count(), 0);
    assert_eq!(whoami(url.clone(), convergences::seed::DEMO_PASSWORD).await, 0);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_successful_bind_is_recorded_once_an_interval_and_searchable() {
    if !have("ldapwhoami") || !have("ldapsearch") || !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| c.last_bind_interval_secs = 3600).await;
    let admin = ["-x", "-H", &srv.url, "-D", "cn=admin,dc=cig,dc=fr", "-w", crate::common::ADMIN_PASSWORD];
    let search = |who: &'static [&'static str], filter: &'static str, attr: &'static str| {
        let url = srv.url.clone();
        async move {
            let base = ["-x", "-LLL", "-H", url.as_str(), "-b", "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr"];
            let (_, out, _) = run("ldapsearch", &[&base[..], who, &[filter, attr]].concat(), None).await;
            out
        }
    };
    const ADMIN: &[&str] = &["-D", "cn=admin,dc=cig,dc=fr", "-w", crate::common::ADMIN_PASSWORD];
    const REFERENT: &[&str] = &["-D", HDUPRE, "-w", "demo-convergences"];
    let demo = convergences::seed::DEMO_PASSWORD;
    assert_eq!(bind(&srv, JDUPONT, demo).await.0, 0);
    // Written within a second or so (the server writes noted binds together).
    let mut found = String::new();
    for _ in 0..50 {
        found = search(ADMIN, "(pwdLastSuccess=*)", "pwdLastSuccess").await;
        if found.contains("uid=jdupont") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let first = found.lines().find_map(|l| l.strip_prefix("pwdLastSuccess: ")).unwrap_or_else(|| panic!("{found}"));
    let now = lifecycle::now_instant();
    assert!(first.len() == 15 && first[..10] == now[..10], "{first} is now ({now})");
    // The référent reads it; accounts never used are found, as are old ones.
    assert!(search(REFERENT, "(uid=jdupont)", "pwdLastSuccess").await.contains(first));
    let never = search(REFERENT, "(!(pwdLastSuccess=*))", "uid").await;
    assert!(never.contains("uid: cmartin") && !never.contains("uid: jdupont"), "{never}");
    assert!(!search(REFERENT, "(pwdLastSuccess<=20200101000000Z)", "uid").await.contains("uid: "));
    assert!(search(REFERENT, "(pwdLastSuccess>=20200101000000Z)", "uid").await.contains("uid: jdupont"));
    // Within the interval, another bind records nothing new.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(bind(&srv, JDUPONT, demo).await.0, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(search(ADMIN, "(uid=jdupont)", "pwdLastSuccess").await.contains(first));
    // Nobody writes it.
    let forge =
        format!("dn: {JDUPONT}\nchangetype: modify\nreplace: pwdLastSuccess\npwdLastSuccess: 20300101000000Z\n");
    let (code, _, err) = run("ldapmodify", &admin[..], Some(&forge)).await;
    assert_eq!(code, 19, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_read_outside_its_dates_and_put_back_as_read_is_not_suspended() {
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    let ended = json!({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": format!("{AGENT}:validUntil"), "value": "2020-01-01T00:00:00Z"}]});
    let (status, _, read) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&ended)).await;
    assert_eq!((status, read["active"].clone()), (200, json!(false)), "{read}");
    // What the HR software read, sent back whole: nothing changes.
    let (status, _, _) = scim.call(&org, "PUT", &format!("/Users/{id}"), Some(&read)).await;
    assert_eq!(status, 200);
    let stored = srv.directory().get(&dn(JDUPONT)).unwrap().unwrap();
    assert_ne!(stored.first_str("cigActive"), Some("FALSE"), "not suspended by the dates' false");
    // The contract is prolonged: the account is active again.
    let prolonged = json!({"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": format!("{AGENT}:validUntil")}]});
    let (status, _, user) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&prolonged)).await;
    assert_eq!((status, user["active"].clone()), (200, json!(true)), "{user}");
    // A real suspension, sent as such, still suspends.
    let off = json!({"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (status, _, user) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&off)).await;
    assert_eq!((status, user["active"].clone()), (200, json!(false)), "{user}");
    assert_eq!(srv.directory().get(&dn(JDUPONT)).unwrap().unwrap().first_str("cigActive"), Some("FALSE"));
    assert_eq!(user[AGENT]["status"], json!("suspended"), "told apart from an end of validity: {user}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_by_sasl_external_on_the_local_socket_is_a_last_use_too() {
    if !have("ldapwhoami") || !have("ldapsearch") {
        return;
    }
    let root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false);
    // CI runs as root: there, the local socket binds as cn=admin and this is checked.
    assert!(root || std::env::var("CI").is_err(), "CI runs the tests as root");
    if !root {
        return;
    }
    let srv = TestServer::start().await;
    let path = srv.handle.as_ref().unwrap().ldapi.clone().unwrap();
    let url = format!("ldapi://{}", path.display().to_string().replace('/', "%2F"));
    let (code, out, err) = run("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None).await;
    assert_eq!((code, out.trim()), (0, "dn:cn=admin,dc=cig,dc=fr"), "{err}");
    let mut found = String::new();
    for _ in 0..50 {
        let args =
            ["-Q", "-Y", "EXTERNAL", "-LLL", "-H", &url, "-b", "cn=admin,dc=cig,dc=fr", "-s", "base", "pwdLastSuccess"];
        found = run("ldapsearch", &args, None).await.1;
        if found.contains("pwdLastSuccess: ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found.contains(&format!("pwdLastSuccess: {}", &lifecycle::now_instant()[..8])), "{found}");
}
