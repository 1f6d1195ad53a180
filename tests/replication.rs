//! RFC 4533 content synchronisation with software others wrote: a stock
//! Debian slapd follows the server as a replica (refreshAndPersist and
//! refreshOnly), through changes made over LDAP and SCIM, a stop and a
//! restart inside and past the deletion log; ldapsearch's own sync client
//! sees the rights and the cookies it sends treated as the RFC says.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::slapd::{self, Slapd};
use crate::common::*;
use convergences::directory::TokenScope;

const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const REFERENT: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const DEMO_PASSWORD: &str = "demo-convergences";

/// The attributes both sides store and compare: user attributes and the
/// operational ones a replica keeps from its provider.
const COMPARED: &[&str] = &["*", "entryUUID", "entryCSN", "createTimestamp", "modifyTimestamp", "creatorsName"];

/// Every entry of `url` (DN lower-cased → its attribute lines), read by ldapsearch.
async fn contents(url: &str, bind: &str, password: &str) -> BTreeMap<String, BTreeSet<String>> {
    contents_under(url, bind, password, "dc=cig,dc=fr").await
}

async fn contents_under(url: &str, bind: &str, password: &str, base: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut args = vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-D", bind, "-w", password, "-b", base];
    args.push("(objectClass=*)");
    args.extend(COMPARED);
    let (code, out, err) = run("ldapsearch", &args, None).await;
    assert_eq!(code, 0, "ldapsearch {url}: {err}");
    let mut entries = BTreeMap::new();
    for block in out.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines();
        let dn = lines.next().unwrap_or_default().to_lowercase();
        entries.insert(dn, lines.map(str::to_string).collect());
    }
    entries
}

/// Wait until the replica holds exactly what the provider holds; the time it took.
async fn converged(provider: &str, replica: &Slapd, why: &str) -> Duration {
    converged_as(provider, (ADMIN, ADMIN_PASSWORD), "dc=cig,dc=fr", replica, why).await
}

/// Wait until the replica holds exactly what `who` reads under `base` on the provider.
async fn converged_as(provider: &str, who: (&str, &str), base: &str, replica: &Slapd, why: &str) -> Duration {
    let started = Instant::now();
    loop {
        let want = contents_under(provider, who.0, who.1, base).await;
        let got = contents(&replica.url, slapd::ROOT_DN, slapd::ROOT_PASSWORD).await;
        if want == got {
            return started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(30) {
            let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).take(5).collect();
            let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).take(5).collect();
            let differ: Vec<_> = want.iter().filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v)).take(2).collect();
            panic!(
                "{why}: the replica did not converge ({} entries against {}); missing {missing:?}, extra {extra:?}, \
                 differing {differ:?}",
                got.len(),
                want.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ldapmodify(url: &str, ldif: &str) {
    let (code, _, err) = run("ldapmodify", &["-x", "-H", url, "-D", ADMIN, "-w", ADMIN_PASSWORD], Some(ldif)).await;
    assert_eq!(code, 0, "ldapmodify: {err}");
}

/// `n` agents of Créteil, added by ldapadd from a file.
async fn add_agents(srv: &TestServer, n: usize) {
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=agent{i:05},{AGENTS}\nobjectClass: inetOrgPerson\nuid: agent{i:05}\ncn: Agent {i}\nsn: Numéro {i}\n\
             mail: agent{i:05}@creteil.fr\ntitle: Gestionnaire\n\n"
        ));
    }
    let file = srv.tmp.path().join("agents.ldif");
    std::fs::write(&file, ldif).unwrap();
    let file = file.to_string_lossy().into_owned();
    let (code, _, err) =
        run("ldapadd", &["-x", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-f", &file], None).await;
    assert_eq!(code, 0, "ldapadd: {err}");
}

async fn scim_changes(srv: &TestServer) {
    let scim = Scim::new(srv);
    let token = token(srv, TokenScope::Organisation(dn(CRETEIL)));
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "scim.replique",
        "name": {"givenName": "Sophie", "familyName": "Réplique"},
        "emails": [{"value": "sophie.replique@creteil.fr", "type": "work", "primary": true}]
    });
    let (status, _, created) = scim.call(&token, "POST", "/Users", Some(&user)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let patch = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Instructrice"}]
    });
    let (status, _, body) = scim.call(&token, "PATCH", &format!("/Users/{id}"), Some(&patch)).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, listed) = scim.call(&token, "GET", "/Users?filter=userName%20eq%20%22agent00007%22", None).await;
    assert_eq!(status, 200, "{listed}");
    let gone = listed["Resources"][0]["id"].as_str().unwrap().to_string();
    let (status, _, body) = scim.call(&token, "DELETE", &format!("/Users/{gone}"), None).await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stock_slapd_replica_follows_every_change_as_it_commits_and_after_a_restart() {
    if !have("ldapsearch") || !slapd::installed() {
        return;
    }
    let srv = TestServer::start_with(|c| {
        c.lifecycle_interval_secs = 1;
        c.replication.deletion_log_max = 1;
    })
    .await;
    add_agents(&srv, 2000).await;
    let mut replica = Slapd::replica(&srv.url, ADMIN, ADMIN_PASSWORD, "dc=cig,dc=fr", "refreshAndPersist");
    converged(&srv.url, &replica, "after the full load").await;

    // Persist: adds, modifies, renames and deletes over LDAP, then SCIM.
    ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00001,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Cheffe de service\n\n\
             dn: uid=agent00002,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=agent00003,{AGENTS}\nchangetype: modrdn\nnewrdn: uid=agent03003\ndeleteoldrdn: 1\n\n\
             dn: uid=nouvelle,{AGENTS}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: nouvelle\ncn: Nouvelle\nsn: Agente\n"
        ),
    )
    .await;
    let took = converged(&srv.url, &replica, "after LDAP changes in the persist stage").await;
    eprintln!("persist: the replica had the LDAP changes after {took:?}");
    scim_changes(&srv).await;
    converged(&srv.url, &replica, "after SCIM changes in the persist stage").await;

    // Stopped, then restarted with its cookie: the deletes it missed are in the log.
    replica.stop();
    ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00010,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=agent00011,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Pendant l'arrêt\n"
        ),
    )
    .await;
    replica.resume();
    converged(&srv.url, &replica, "after a restart inside the deletion log").await;

    // Past the log: it keeps one deletion, and the replica missed two.
    replica.stop();
    ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00020,{AGENTS}\nchangetype: delete\n\ndn: uid=agent00021,{AGENTS}\nchangetype: delete\n"
        ),
    )
    .await;
    // The lifecycle step (every second here) prunes the log to one deletion.
    let dir = srv.directory();
    let started = Instant::now();
    while dir.deletion_log_len().unwrap() > 1 && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.deletion_log_len().unwrap() <= 1, "the deletion log was not pruned");
    replica.resume();
    converged(&srv.url, &replica, "after a restart past the deletion log (present phase)").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_only_slapd_replica_converges_at_each_poll() {
    if !have("ldapsearch") || !slapd::installed() {
        return;
    }
    let srv = TestServer::start().await;
    add_agents(&srv, 300).await;
    let replica = Slapd::replica(&srv.url, ADMIN, ADMIN_PASSWORD, "dc=cig,dc=fr", "refreshOnly interval=00:00:00:01");
    converged(&srv.url, &replica, "after the first refresh").await;
    ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00100,{AGENTS}\nchangetype: delete\n\n\
             dn: uid=agent00101,{AGENTS}\nchangetype: modify\nreplace: title\ntitle: Entre deux passages\n"
        ),
    )
    .await;
    scim_changes(&srv).await;
    converged(&srv.url, &replica, "after a later poll").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_referents_replica_holds_its_organisation_only_and_loses_an_agent_moved_away() {
    if !have("ldapsearch") || !slapd::installed() {
        return;
    }
    let srv = TestServer::start().await;
    add_agents(&srv, 50).await;
    // slapd needs the suffix entry above what it replicates: a glue it keeps.
    let mut replica = Slapd::replica(&srv.url, REFERENT, DEMO_PASSWORD, CRETEIL, "refreshAndPersist");
    let referent = (REFERENT, DEMO_PASSWORD);
    converged_as(&srv.url, referent, CRETEIL, &replica, "after the référent's full load").await;
    let other = "ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr";
    ldapmodify(
        &srv.url,
        &format!(
            "dn: uid=agent00005,{AGENTS}\nchangetype: modrdn\nnewrdn: uid=agent00005\ndeleteoldrdn: 1\n\
             newsuperior: {other}\n\n\
             dn: uid=floeuvre,{other}\nchangetype: modify\nreplace: title\ntitle: Hors du périmètre\n"
        ),
    )
    .await;
    converged_as(&srv.url, referent, CRETEIL, &replica, "after an agent moved to another organisation").await;
    replica.stop();
    ldapmodify(
        &srv.url,
        &format!("dn: uid=agent00006,{AGENTS}\nchangetype: modrdn\nnewrdn: uid=agent00006\ndeleteoldrdn: 1\nnewsuperior: {other}\n"),
    )
    .await;
    replica.resume();
    converged_as(&srv.url, referent, CRETEIL, &replica, "after a move while it was stopped").await;
}

/// ldapsearch's sync client (`-E sync=…`): the entries and the cookie it ends with.
async fn sync_search(url: &str, bind: &str, password: &str, base: &str, cookie: &str) -> (usize, String) {
    let mode = if cookie.is_empty() { "sync=ro".to_string() } else { format!("sync=ro/{cookie}") };
    let args =
        ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-D", bind, "-w", password, "-b", base, "-E", &mode, "dn"];
    let (code, out, err) = run("ldapsearch", &args, None).await;
    assert_eq!(code, 0, "ldapsearch -E {mode}: {err}");
    let entries = out.lines().filter(|l| l.starts_with("dn:")).count();
    // ldapsearch prints the Sync Done control's cookie as "# cookie: …" or in its result comments.
    let cookie = out
        .lines()
        .chain(err.lines())
        .find_map(|l| l.split("cookie=").nth(1).or_else(|| l.strip_prefix("# cookie: ")))
        .map(|c| c.trim().to_string())
        .unwrap_or_default();
    (entries, cookie)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sync_search_returns_what_the_identity_may_read_and_a_foreign_cookie_gets_a_full_refresh() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let plain = |bind: &'static str, password: &'static str| {
        let url = srv.url.clone();
        async move {
            let args = ["-x", "-LLL", "-H", &url, "-D", bind, "-w", password, "-b", "dc=cig,dc=fr", "-z", "0", "dn"];
            let (code, out, err) = run("ldapsearch", &args, None).await;
            assert_eq!(code, 0, "{err}");
            out.lines().filter(|l| l.starts_with("dn:")).count()
        }
    };
    // A référent replicates what it may read: its own organisation.
    let (as_referent, _) = sync_search(&srv.url, REFERENT, DEMO_PASSWORD, "dc=cig,dc=fr", "").await;
    assert_eq!(as_referent, plain(REFERENT, DEMO_PASSWORD).await);
    let (everything, _) = sync_search(&srv.url, ADMIN, ADMIN_PASSWORD, "dc=cig,dc=fr", "").await;
    assert!(everything > as_referent, "the administrator sees more ({everything}) than a référent ({as_referent})");
    assert_eq!(everything, plain(ADMIN, ADMIN_PASSWORD).await);
    // Cookies it cannot read are no cookie: a full refresh, not an error.
    for foreign in ["rid=001,csn=yesterday", "n'importe quoi", "rid=001,sid=000"] {
        let (n, _) = sync_search(&srv.url, ADMIN, ADMIN_PASSWORD, "dc=cig,dc=fr", foreign).await;
        assert_eq!(n, everything, "cookie {foreign:?}");
    }
}
