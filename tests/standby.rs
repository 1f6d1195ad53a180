//! A standby Convergences (RFC 4533 consumer) following another: it loads
//! the provider's directory, follows its changes over LDAP and SCIM, refers
//! clients' writes to it, resumes from its cookie after a restart and after
//! a kill -9 in the middle of a refresh (nothing lost or doubled, the
//! store consistent), and takes writes once promoted.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::crash_safety::spawn_args;

const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const BIN: &str = env!("CARGO_BIN_EXE_convergences");

/// Every entry with what a replica keeps of its provider, by ldapsearch.
async fn contents(url: &str) -> BTreeMap<String, BTreeSet<String>> {
    contents_as(url, ADMIN, ADMIN_PASSWORD, "cigRevision").await
}

/// [`contents`] bound as this identity, with this attribute besides the common ones.
async fn contents_as(url: &str, bind: &str, password: &str, extra: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut args = vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-D", bind, "-w", password];
    args.extend(["-b", "dc=cig,dc=fr", "-z", "0", "(objectClass=*)", "*", "entryUUID", "entryCSN"]);
    args.extend(["createTimestamp", "modifyTimestamp", "structuralObjectClass", extra]);
    let (code, out, err) = run("ldapsearch", &args, None).await;
    let mut entries = BTreeMap::new();
    if code == 49 {
        // The identity is not replicated yet: nothing to compare so far.
        return entries;
    }
    assert_eq!(code, 0, "ldapsearch {url}: {err}");
    for block in out.split("\n\n").filter(|b| !b.trim().is_empty()) {
        // A password is hashed where it is stored: compared by binding, not
        // by value. The server stores an entry's superclasses among its
        // objectClass values, which slapd leaves implicit: the classes are
        // compared by structuralObjectClass.
        let attrs = (block.lines().skip(1))
            .filter(|l| !l.starts_with("userPassword") && !l.starts_with("objectClass:"))
            .map(str::to_string)
            .collect();
        entries.insert(block.lines().next().unwrap_or_default().to_lowercase(), attrs);
    }
    entries
}

/// How many entries a server holds (0 while it does not answer yet).
async fn count(url: &str) -> usize {
    let args = ["-x", "-LLL", "-H", url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", "dc=cig,dc=fr", "-z", "0", "1.1"];
    let (_, out, _) = run("ldapsearch", &args, None).await;
    out.lines().filter(|l| l.starts_with("dn:")).count()
}

async fn converged(provider: &str, standby: &str, why: &str) {
    let started = Instant::now();
    loop {
        let (want, got) = (contents(provider).await, contents(standby).await);
        if want == got {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
            let differ: Vec<_> = want.iter().filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v)).take(1).collect();
            panic!(
                "{why}: the standby holds {} entries, the provider {}; missing {missing:?}, extra {extra:?}, differing \
                 {differ:?}",
                got.len(),
                want.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ldapmodify(url: &str, ldif: &str) -> (i32, String) {
    let (code, out, err) = run("ldapmodify", &["-x", "-H", url, "-D", ADMIN, "-w", ADMIN_PASSWORD], Some(ldif)).await;
    (code, format!("{out}{err}"))
}

/// The standby as its own process, following `provider` when given.
fn standby(data: &std::path::Path, provider: Option<&str>) -> (Child, String) {
    standby_of(data, provider.map(|p| (p, ADMIN, ADMIN_PASSWORD)))
}

/// [`standby`] following a provider as this identity.
fn standby_of(data: &std::path::Path, provider: Option<(&str, &str, &str)>) -> (Child, String) {
    let follow = provider.map_or(String::new(), |(p, bind, password)| consumer(p, bind, password, "batch = 200\n"));
    let (child, ldap, _) = spawn_standby(data, &follow);
    (child, ldap)
}

/// A `[[replication.consumer]]` section of the whole tree, with `extra` keys.
fn consumer(provider: &str, bind: &str, password: &str, extra: &str) -> String {
    format!(
        "[[replication.consumer]]\nprovider = \"{provider}\"\nbind_dn = \"{bind}\"\npassword = \"{password}\"\n\
         search_base = \"dc=cig,dc=fr\"\n{extra}"
    )
}

/// The standby process with this configuration beside `demo = false`: its
/// LDAP and SCIM (plain HTTP) URLs.
fn spawn_standby(data: &std::path::Path, config: &str) -> (Child, String, String) {
    std::fs::create_dir_all(data).unwrap();
    let conf = data.join("standby.toml");
    std::fs::write(&conf, format!("demo = false\n{config}")).unwrap();
    let conf = conf.to_string_lossy().into_owned();
    let (child, ldap, scim, _) = spawn_args(data, &[], &["--config", &conf]);
    (child, ldap, scim)
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_follows_its_provider_refers_writes_resumes_after_a_kill_and_takes_writes_once_promoted() {
    if !have("ldapsearch") || !have("ldapmodify") || !have("ldapadd") {
        return;
    }
    let srv = TestServer::start().await;
    let mut ldif = String::new();
    for i in 0..3000 {
        ldif.push_str(&format!(
            "dn: uid=agent{i:05},{AGENTS}\nobjectClass: inetOrgPerson\nuid: agent{i:05}\ncn: Agent {i}\nsn: Numéro {i}\n\n"
        ));
    }
    let file = srv.tmp.path().join("agents.ldif");
    std::fs::write(&file, ldif).unwrap();
    let file = file.to_string_lossy().into_owned();
    let (code, _, err) =
        run("ldapadd", &["-x", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-f", &file], None).await;
    assert_eq!(code, 0, "{err}");

    // Killed (SIGKILL) in the middle of its first refresh, then started again.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let total = contents(&srv.url).await.len();
    let (child, url) = standby(&data, Some(&srv.url));
    let mut held = 0;
    let started = Instant::now();
    while held == 0 && started.elapsed() < Duration::from_secs(30) {
        held = count(&url).await;
    }
    stop(child);
    assert!(0 < held && held < total, "killed with {held} of {total} entries: not during the refresh");
    let (child, url) = standby(&data, Some(&srv.url));
    converged(&srv.url, &url, "after a kill -9 during the refresh").await;

    // It follows LDAP and SCIM changes as they commit.
    let (code, out) = ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00001,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Cheffe de service\n\n\
             dn: uid=agent00002,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=agent00003,{AGENTS}\nchangetype: modrdn\nnewrdn: uid=agent03003\ndeleteoldrdn: 1\n"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let scim = Scim::new(&srv);
    let token =
        token(&srv, convergences::directory::TokenScope::Organisation(dn("o=219400280,ou=organisations,dc=cig,dc=fr")));
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "scim.veille", "name": {"givenName": "Vera", "familyName": "Veille"}
    });
    let (status, _, body) = scim.call(&token, "POST", "/Users", Some(&user)).await;
    assert_eq!(status, 201, "{body}");
    converged(&srv.url, &url, "after changes in the persist stage").await;

    // Both sides say where replication stands (through their ldapi sockets).
    let provider_data = srv.tmp.path().to_string_lossy().into_owned();
    let (code, out, err) = run(BIN, &["replication", "status", "--data", &provider_data], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("replicas following: 1") && out.contains("up to date"), "{out}");
    let (code, out, err) = run(BIN, &["replication", "status", "--data", &data.to_string_lossy()], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("replica of {}: following", srv.url)) && out.contains("cookie: "), "{out}");

    // A client's write is referred to the provider (RFC 4511 §4.1.10).
    let (code, out) =
        ldapmodify(&url, &format!("dn: uid=agent00004,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Ici\n"))
            .await;
    assert_eq!(code, 10, "{out}");
    assert!(out.contains(&srv.url), "the referral names the provider: {out}");

    // Stopped while the provider deletes and changes: it resumes from its cookie.
    stop(child);
    let (code, out) = ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00010,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=agent00011,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Pendant l'arrêt\n"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    let (child, url) = standby(&data, Some(&srv.url));
    converged(&srv.url, &url, "after a restart from its cookie").await;
    // From its cookie: the two changes, not the directory again.
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    let last = log.lines().rfind(|l| l.contains("the refresh brought")).unwrap_or_default().to_string();
    assert!(last.contains("brought 1 entries and 1 deletions"), "{last}");
    stop(child);
    let (code, out, err) = run(BIN, &["check", "--data", &data.to_string_lossy()], None).await;
    assert_eq!(code, 0, "convergences check: {out}{err}");

    // Promoted (started without following): it takes writes.
    let (child, url) = standby(&data, None);
    let (code, out) =
        ldapmodify(&url, &format!("dn: uid=agent00004,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Ici\n"))
            .await;
    assert_eq!(code, 0, "the promoted standby takes writes: {out}");
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_follows_a_stock_slapd_it_migrates_from() {
    use crate::common::slapd::{self, ROOT_DN, ROOT_PASSWORD, Slapd};
    if !have("ldapsearch") || !have("ldapmodify") || !slapd::installed() {
        return;
    }
    let ldif = slapd::numbered_agents(500);
    let old = tokio::task::spawn_blocking(move || Slapd::provider(&ldif)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let (child, url) = standby_of(&data, Some((&old.url, ROOT_DN, ROOT_PASSWORD)));
    let same = |why: &'static str| {
        let (old, url) = (old.url.clone(), url.clone());
        async move {
            let started = Instant::now();
            loop {
                let want = contents_as(&old, ROOT_DN, ROOT_PASSWORD, "creatorsName").await;
                let got = contents_as(&url, ROOT_DN, ROOT_PASSWORD, "creatorsName").await;
                if want == got {
                    return;
                }
                let differ: Vec<_> = want.iter().filter(|(k, v)| got.get(*k) != Some(*v)).take(1).collect();
                let theirs: Vec<_> = differ.iter().map(|(k, _)| got.get(*k)).collect();
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "{why}: {} entries against {}; slapd {differ:?}, the standby {theirs:?}",
                    got.len(),
                    want.len()
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    same("after the first refresh from slapd").await;
    let edit = String::from(
        "dn: uid=agent0001,ou=Agents,dc=cig,dc=fr\nchangetype: modify\nreplace: title\ntitle: Migrée\n\n\
         dn: uid=agent0002,ou=Agents,dc=cig,dc=fr\nchangetype: delete\n\n\
         dn: uid=agent0003,ou=Agents,dc=cig,dc=fr\nchangetype: modrdn\nnewrdn: uid=agent3003\ndeleteoldrdn: 1\n",
    );
    let (code, out, err) =
        run("ldapmodify", &["-x", "-H", &old.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD], Some(&edit)).await;
    assert_eq!(code, 0, "{out}{err}");
    same("after slapd's changes in the persist stage").await;
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_follows_over_ldaps_and_refers_scim_writes_to_its_provider() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let ldaps = format!("ldaps://localhost:{}", srv.handle.as_ref().unwrap().ldaps_addr.port());
    let ca = srv.tmp.path().join("tls").join("ca.pem");
    assert!(ca.exists(), "the provider's development CA is at {}", ca.display());
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let tls = format!("tls_ca = \"{}\"\n", ca.display());
    let (child, url, scim) = spawn_standby(&data, &consumer(&ldaps, ADMIN, ADMIN_PASSWORD, &tls));
    converged(&srv.url, &url, "over ldaps").await;

    // A SCIM client pointed at the standby: its token is the standby's own,
    // its write goes to the provider.
    let data_arg = data.to_string_lossy().into_owned();
    let (code, out, err) =
        run(BIN, &["token", "create", "--data", &data_arg, "--org", "219400280", "--name", "sirh"], None).await;
    assert_eq!(code, 0, "{err}");
    let token = out.lines().last().unwrap().trim().to_string();
    let standby = Scim { base: scim };
    let user = serde_json::json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ecrit.ici", "name": {"givenName": "Eva", "familyName": "Ici"}
    });
    let (status, _, body) = standby.call(&token, "POST", "/Users", Some(&user)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains(&ldaps), "{body}");
    let (status, _, body) = standby.call(&token, "GET", "/Users?filter=userName%20eq%20%22hdupre%22", None).await;
    assert_eq!(status, 200, "reads are served: {body}");
    assert_eq!(body["totalResults"], 1, "{body}");
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_gone_in_the_middle_of_a_refresh_leaves_the_standby_consistent_until_it_comes_back() {
    use crate::common::slapd::{self, ROOT_DN, ROOT_PASSWORD, Slapd};
    if !have("ldapsearch") || !slapd::installed() {
        return;
    }
    let ldif = slapd::numbered_agents(4000);
    let mut old = tokio::task::spawn_blocking(move || Slapd::provider(&ldif)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let (child, url) = standby_of(&data, Some((&old.url, ROOT_DN, ROOT_PASSWORD)));
    let count_as = |url: String| async move {
        let args =
            ["-x", "-LLL", "-H", &url, "-D", ROOT_DN, "-w", ROOT_PASSWORD, "-b", "dc=cig,dc=fr", "-z", "0", "1.1"];
        let (_, out, _) = run("ldapsearch", &args, None).await;
        out.lines().filter(|l| l.starts_with("dn:")).count()
    };
    let started = Instant::now();
    let mut held = 0;
    while held == 0 && started.elapsed() < Duration::from_secs(30) {
        held = count_as(url.clone()).await;
    }
    old.stop();
    assert!(0 < held && held < 4003, "the provider went away with {held} entries sent: not during the refresh");
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Still serving what it committed, consistently, while it retries.
    let (code, out, err) = run(BIN, &["check", "--data", &data.to_string_lossy()], None).await;
    assert_eq!(code, 0, "convergences check while the provider is away: {out}{err}");
    old.resume();
    let started = Instant::now();
    loop {
        let want = contents_as(&old.url, ROOT_DN, ROOT_PASSWORD, "creatorsName").await;
        let got = contents_as(&url, ROOT_DN, ROOT_PASSWORD, "creatorsName").await;
        if want == got {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{} entries against {}", got.len(), want.len());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_only_standby_catches_up_at_each_interval() {
    if !have("ldapsearch") || !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let polling = "mode = \"refreshOnly\"\ninterval_secs = 1\n";
    let (child, url, _) = spawn_standby(&data, &consumer(&srv.url, ADMIN, ADMIN_PASSWORD, polling));
    converged(&srv.url, &url, "after its first refresh").await;
    let (code, out) = ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=jdupont,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=hdupre,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Entre deux passages\n"
        ),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    converged(&srv.url, &url, "after the next refresh").await;
    stop(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_whose_cookie_is_older_than_the_deletion_log_is_refreshed_whole_and_loses_what_was_deleted() {
    if !have("ldapsearch") || !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| {
        c.lifecycle_interval_secs = 1;
        c.replication.deletion_log_max = 1;
    })
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("standby");
    let (child, url) = standby(&data, Some(&srv.url));
    converged(&srv.url, &url, "after its first refresh").await;
    stop(child);
    let (code, out) = ldapmodify(
        &srv.url,
        &format!("dn: uid=jdupont,{AGENTS}\nchangetype: delete\n\ndn: uid=cmartin,{AGENTS}\nchangetype: delete\n"),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    // The provider's lifecycle step (every second here) keeps one deletion.
    let dir = srv.directory();
    let started = Instant::now();
    while dir.deletion_log_len().unwrap() > 1 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.deletion_log_len().unwrap() <= 1, "the deletion log was not pruned");
    let (child, url) = standby(&data, Some(&srv.url));
    converged(&srv.url, &url, "after a restart past the deletion log").await;
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    let last = log.lines().rfind(|l| l.contains("the refresh brought")).unwrap_or_default().to_string();
    assert!(last.contains("and 2 deletions") && last.contains("\"present\""), "{last}");
    stop(child);
}
