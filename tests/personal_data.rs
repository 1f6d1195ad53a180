//! The RGPD side of the directory (issue 21 §6): one organisation's export
//! and one person's, compared with what LDAP and SCIM show of the same
//! entries; the audit trail's records purged at the end of their retention,
//! leaving counts, exactly once even when the server is killed meanwhile.

use std::time::Duration;

use convergences::directory::{AuditQuery, TokenScope, lifecycle};
use serde_json::Value;

use crate::common::{ADMIN_PASSWORD, Scim, TestServer, have, run};

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const VITRY: &str = "o=217500016,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const FLOEUVRE: &str = "uid=floeuvre,ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr";
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";

fn demo() -> &'static str {
    convergences::seed::DEMO_PASSWORD
}

/// What ldapsearch prints of `base` as the administrator (one value per line, unwrapped).
async fn admin_search(srv: &TestServer, base: &str, scope: &str, attrs: &[&str]) -> String {
    let args = ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", base];
    let (_, out, _) = run("ldapsearch", &[&args[..], &["-s", scope, "(objectClass=*)"], attrs].concat(), None).await;
    out
}

fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut v: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix(prefix)).collect();
    v.sort_unstable();
    v
}

/// A modify of `title` by `who`, with ldapmodify; its exit code.
async fn try_retitle(srv: &TestServer, who: &str, target: &str, title: &str) -> i32 {
    let change = format!("dn: {target}\nchangetype: modify\nreplace: title\ntitle: {title}\n");
    run("ldapmodify", &["-x", "-H", &srv.url, "-D", who, "-w", demo()], Some(&change)).await.0
}

async fn retitle(srv: &TestServer, who: &str, target: &str, title: &str) {
    assert_eq!(try_retitle(srv, who, target, title).await, 0, "{who} retitles {target}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_export_holds_its_entries_and_its_agents_as_scim_shows_them() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let data = srv.tmp.path().display().to_string();
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("creteil.ldif");
    let (code, _, err) =
        run(BIN, &["export", "--data", &data, "--org", "219400280", "-o", file.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    // LDIF folds long lines (RFC 2849): unfolded to compare.
    let ldif = std::fs::read_to_string(&file).unwrap().replace("\n ", "");
    // The same entries as LDAP shows under the organisation, and no other.
    let ldap = admin_search(&srv, CRETEIL, "sub", &["1.1"]).await;
    assert_eq!(lines_with(&ldif, "dn: "), lines_with(&ldap, "dn: "));
    assert!(!ldif.contains(VITRY), "{ldif}");
    // The agents as SCIM shows them to a CIG-wide token, document for document.
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.path().join("creteil.ldif.scim.json")).unwrap()).unwrap();
    let resources = json["Resources"].as_array().unwrap();
    let uids = admin_search(&srv, &format!("ou=agents,{CRETEIL}"), "one", &["uid"]).await;
    let mut names: Vec<&str> = resources.iter().filter_map(|u| u["userName"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, lines_with(&uids, "uid: "));
    let scim = Scim::new(&srv);
    let cig = crate::common::token(&srv, TokenScope::Cig);
    for user in resources {
        let (status, _, shown) =
            scim.call(&cig, "GET", &format!("/Users/{}", user["id"].as_str().unwrap()), None).await;
        assert_eq!(status, 200);
        assert_eq!(&shown, user);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_export_holds_the_entry_its_groups_and_the_audit_records_about_and_by_them() {
    if !have("ldapsearch") || !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let data = srv.tmp.path().display().to_string();
    retitle(&srv, HDUPRE, JDUPONT, "Gestionnaire paie").await;
    // The agent may not change its own title: refused, and recorded.
    assert_eq!(try_retitle(&srv, JDUPONT, JDUPONT, "Refusé").await, 50);
    let out_dir = tempfile::tempdir().unwrap();
    let export = |who: &'static str, name: &'static str| {
        let file = out_dir.path().join(name);
        let data = data.clone();
        async move {
            let (code, _, err) =
                run(BIN, &["export", "--data", &data, "--person", who, "-o", file.to_str().unwrap()], None).await;
            assert_eq!(code, 0, "{err}");
            serde_json::from_str::<Value>(&std::fs::read_to_string(&file).unwrap()).unwrap()
        }
    };
    let person = export(JDUPONT, "jdupont.json").await;
    assert_eq!(person["dn"], JDUPONT);
    assert_eq!(person["attributes"]["title"], serde_json::json!(["Gestionnaire paie"]));
    assert_eq!(person["passwordHeld"], true);
    assert!(person["attributes"].get("userPassword").is_none(), "no hash in an export: {person}");
    // The same groups as LDAP's memberOf.
    let member_of = admin_search(&srv, JDUPONT, "base", &["memberOf"]).await;
    let mut groups: Vec<&str> = person["groups"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    groups.sort_unstable();
    assert_eq!(groups, lines_with(&member_of, "memberOf: "));
    // The audit records about the person: the référent's change, the agent's own refused one.
    let audit = person["audit"].as_array().unwrap();
    let by_referent = audit.iter().find(|r| r["actor"] == HDUPRE && r["operation"] == "modify").unwrap();
    assert_eq!((by_referent["target"].as_str(), by_referent["result"].as_str()), (Some(JDUPONT), Some("success")));
    assert!(audit.iter().any(|r| r["actor"] == JDUPONT && r["result"] != "success"), "{person}");
    assert_eq!(person["scim"]["userName"], "jdupont");
    // The référent's export holds the same record, as its actor.
    let referent = export(HDUPRE, "hdupre.json").await;
    let numbers = |doc: &Value| -> Vec<u64> {
        doc["audit"].as_array().unwrap().iter().filter_map(|r| r["number"].as_u64()).collect()
    };
    assert!(numbers(&referent).contains(&by_referent["number"].as_u64().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_past_their_retention_are_purged_leaving_counts() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let data = srv.tmp.path().display().to_string();
    let dir = srv.directory();
    retitle(&srv, HDUPRE, JDUPONT, "Gestionnaire").await;
    retitle(&srv, FLOEUVRE, FLOEUVRE, "Référent").await;
    let records = |org: &str| {
        let q = AuditQuery { org_ndn: Some(org.to_string()), ..Default::default() };
        let mut n = 0;
        dir.audit(&q, |_, _| {
            n += 1;
            Ok(())
        })
        .unwrap();
        n
    };
    let (creteil, vitry) = (records(CRETEIL), records(VITRY));
    assert!(creteil > 0 && vitry > 0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let in_days = |d: i64| format!("{}Z", lifecycle::epoch_instant(now + d * 86_400));
    // Créteil keeps its records 30 days, the others the default 365.
    let shorter =
        format!("dn: {CRETEIL}\nchangetype: modify\nreplace: cigAuditRetentionDays\ncigAuditRetentionDays: 30\n");
    let (code, _, err) =
        run("ldapmodify", &["-x", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD], Some(&shorter)).await;
    assert_eq!(code, 0, "{err}");
    let creteil = records(CRETEIL);
    let (code, out, err) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &in_days(31)], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("{creteil} audit records purged")), "{out}");
    assert_eq!((records(CRETEIL), records(VITRY)), (0, vitry));
    let (_, again, _) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &in_days(31)], None).await;
    assert!(!again.contains("audit records purged"), "{again}");
    // What remains: counts per month and organisation, no names.
    let (_, audit, _) = run(BIN, &["audit", "--data", &data, "--org", "219400280"], None).await;
    let month = &lifecycle::now_instant()[..6];
    assert!(audit.contains(&format!("# purged\t{month}\t{CRETEIL}\t{creteil} records")), "{audit}");
    assert!(!audit.contains(HDUPRE), "{audit}");
    let total: u64 = dir.purged_audit_counts().unwrap().iter().map(|(_, _, n)| n).sum();
    assert_eq!(total, creteil as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_interrupted_by_a_kill_finishes_exactly_once_after_the_restart() {
    if !have("ldapmodify") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // Many audit records (refused writes count too), in a server that applies nothing by itself.
    let (mut child, url, _) = crate::crash_safety::spawn_with(&data, &[("CONVERGENCES_LIFECYCLE_INTERVAL_SECS", "0")]);
    let mut changes = String::new();
    for i in 0..2500 {
        changes.push_str(&format!("dn: {JDUPONT}\nchangetype: modify\nreplace: description\ndescription: {i}\n\n"));
    }
    // From a file: on stdin, ldapmodify's output would fill its pipe before its input is all written.
    let file = tmp.path().join("changes.ldif");
    std::fs::write(&file, changes).unwrap();
    let args = ["-x", "-H", &url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-f", file.to_str().unwrap()];
    let (code, _, err) = run("ldapmodify", &args, None).await;
    assert_eq!(code, 0, "{err}");
    child.kill().unwrap();
    child.wait().unwrap();
    let count = |data: &std::path::Path| {
        let out = std::process::Command::new(BIN).args(["audit", "--data"]).arg(data).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let purged: u64 = text
            .lines()
            .filter(|l| l.starts_with("# purged"))
            .filter_map(|l| l.rsplit('\t').next()?.strip_suffix(" records")?.parse::<u64>().ok())
            .sum();
        (text.lines().filter(|l| !l.starts_with('#')).count() as u64, purged)
    };
    let (before, _) = count(&data);
    assert!(before >= 2500, "{before}");
    // Restarted with no retention at all: its own step purges everything; killed
    // once in the middle, restarted again, it finishes.
    let env = [("CONVERGENCES_LIFECYCLE_INTERVAL_SECS", "1"), ("CONVERGENCES_AUDIT_RETENTION_DAYS", "0")];
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (mut child, _, _) = crate::crash_safety::spawn_with(&data, &env);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, _, _) = crate::crash_safety::spawn_with(&data, &env);
    tokio::time::sleep(Duration::from_millis(3000)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let (left, purged) = count(&data);
    // Every record purged once: none left of those (a restart writes none), each counted once.
    assert_eq!(purged + left, before, "{left} left, {purged} counted");
    assert!(purged >= before - 1, "{left} left, {purged} counted of {before}");
    let out = std::process::Command::new(BIN).args(["check", "--data"]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
