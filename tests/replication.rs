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
    if !have("ldapsearch") || !have("ldapmodify") || !have("ldapadd") || !slapd::installed() {
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
    if !have("ldapsearch") || !have("ldapmodify") || !have("ldapadd") || !slapd::installed() {
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
    if !have("ldapsearch") || !have("ldapmodify") || !have("ldapadd") || !slapd::installed() {
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

/// The raw messages of one sync search against `url`, until its
/// SearchResultDone or, persisting, until `stop` says so: each as (the
/// protocolOp's application tag, its controls as (OID, value), an
/// IntermediateResponse's value).
type Raw = (u64, Vec<(String, Vec<u8>)>, Option<Vec<u8>>);

async fn raw_sync(
    url: &str,
    mode: ldap3_proto::proto::SyncRequestMode,
    cookie: Option<Vec<u8>>,
    until: usize,
) -> Vec<Raw> {
    use ldap3_lber::structure::PL;
    use ldap3_proto::proto::*;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::Encoder;
    let addr = url.trim_start_matches("ldap://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let send = |msg: LdapMsg| {
        let mut buf = bytes::BytesMut::new();
        ldap3_proto::LdapCodec::default().encode(msg, &mut buf).unwrap();
        buf
    };
    let bind = LdapBindRequest {
        version: 3,
        dn: slapd::ROOT_DN.into(),
        cred: LdapBindCred::Simple(slapd::ROOT_PASSWORD.into()),
    };
    tcp.write_all(&send(LdapMsg { msgid: 1, op: LdapOp::BindRequest(bind), ctrl: vec![] })).await.unwrap();
    let search = LdapSearchRequest {
        base: "dc=cig,dc=fr".into(),
        scope: LdapSearchScope::Subtree,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: LdapFilter::Present("objectClass".into()),
        attrs: vec!["1.1".into()],
    };
    let ctrl = ldap3_proto::control::LdapControl::SyncRequest { criticality: true, mode, cookie, reload_hint: false };
    tcp.write_all(&send(LdapMsg { msgid: 2, op: LdapOp::SearchRequest(search), ctrl: vec![ctrl] })).await.unwrap();
    let mut out = Vec::new();
    loop {
        let msg = tokio::time::timeout(
            Duration::from_secs(10),
            convergences::replication::wire::read_message(&mut tcp, 1 << 20),
        )
        .await
        .expect("the provider went quiet")
        .unwrap();
        let (_, tag) = ldap3_lber::parse::parse_tag(&msg, 64).unwrap();
        let mut items = tag.expect_constructed().unwrap().into_iter();
        let _id = items.next();
        let op = items.next().unwrap();
        let app = op.id;
        if app == 1 {
            continue;
        }
        let value = match (app, &op.payload) {
            (25, PL::C(parts)) => parts.iter().find(|p| p.id == 1).and_then(|p| p.clone().expect_primitive()),
            _ => None,
        };
        let controls = items
            .next()
            .and_then(|c| c.expect_constructed())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let parts = c.expect_constructed().unwrap();
                let oid = String::from_utf8(parts[0].clone().expect_primitive().unwrap()).unwrap();
                let value = parts.iter().rev().find(|p| p.id == 4).and_then(|p| p.clone().expect_primitive());
                (oid, value.unwrap_or_default())
            })
            .collect();
        out.push((app, controls, value));
        if app == 5 || out.len() >= until {
            return out;
        }
    }
}

/// Re-encode what slapd sent with this server's encoders: the same bytes.
fn same_bytes(raw: &[Raw]) -> usize {
    use convergences::ldap::syncrepl::{self, State};
    let mut checked = 0;
    for (app, controls, value) in raw {
        for (oid, v) in controls {
            let (_, tag) = ldap3_lber::parse::parse_tag(v, 64).unwrap();
            let parts = tag.expect_constructed().unwrap();
            let prim = |i: usize| parts.get(i).and_then(|p| p.clone().expect_primitive());
            let ours = match oid.as_str() {
                "1.3.6.1.4.1.4203.1.9.1.2" => {
                    let state = match prim(0).unwrap()[0] {
                        0 => State::Present,
                        1 => State::Add,
                        2 => State::Modify,
                        _ => State::Delete,
                    };
                    let uuid: [u8; 16] = prim(1).unwrap().try_into().unwrap();
                    syncrepl::state_value(state, &uuid, prim(2).as_deref())
                }
                "1.3.6.1.4.1.4203.1.9.1.3" => {
                    let cookie = parts.iter().find(|p| p.id == 4).and_then(|p| p.clone().expect_primitive());
                    let deletes = parts.iter().any(|p| p.id == 1);
                    syncrepl::done_value(cookie.as_deref(), deletes)
                }
                _ => continue,
            };
            assert_eq!(&ours, v, "control {oid} in message {app}");
            checked += 1;
        }
        if let Some(v) = value {
            let (_, tag) = ldap3_lber::parse::parse_tag(v, 64).unwrap();
            let choice = tag.id;
            let parts = tag.expect_constructed().unwrap_or_default();
            let cookie = parts.iter().find(|p| p.id == 4).and_then(|p| p.clone().expect_primitive());
            let ours = match choice {
                1 | 2 => syncrepl::refresh_done_value(choice == 1, cookie.as_deref()),
                3 => {
                    let deletes = parts.iter().any(|p| p.id == 1);
                    let set = parts.iter().find(|p| p.id == 17).unwrap().clone().expect_constructed().unwrap();
                    let uuids: Vec<[u8; 16]> =
                        set.into_iter().map(|u| u.expect_primitive().unwrap().try_into().unwrap()).collect();
                    syncrepl::id_set_value(&uuids, deletes, cookie.as_deref())
                }
                _ => continue,
            };
            assert_eq!(&ours, v, "sync info {choice}");
            checked += 1;
        }
    }
    checked
}

#[tokio::test(flavor = "multi_thread")]
async fn sync_messages_are_encoded_byte_for_byte_as_slapds_syncprov_encodes_them() {
    use ldap3_proto::proto::SyncRequestMode;
    if !have("ldapmodify") || !slapd::installed() {
        return;
    }
    let mut ldif = String::from(
        "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: ou=Agents,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: Agents\n\n",
    );
    for i in 0..5 {
        ldif.push_str(&format!(
            "dn: uid=a{i},ou=Agents,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nuid: a{i}\ncn: A {i}\nsn: A\n\n"
        ));
    }
    let provider = tokio::task::spawn_blocking(move || Slapd::provider(&ldif)).await.unwrap();
    // refreshOnly from nothing: entries with their state, then the Sync Done control.
    let first = raw_sync(&provider.url, SyncRequestMode::RefreshOnly, None, usize::MAX).await;
    let cookie = first.last().unwrap().1.iter().find(|c| c.0 == "1.3.6.1.4.1.4203.1.9.1.3").map(|c| c.1.clone());
    let (_, tag) = ldap3_lber::parse::parse_tag(cookie.as_deref().unwrap(), 64).unwrap();
    let cookie = tag.expect_constructed().unwrap().into_iter().find(|p| p.id == 4).and_then(|p| p.expect_primitive());
    let mut checked = same_bytes(&first);
    // A delete since the cookie: syncIdSet (deletes) from the session log.
    let (code, _, err) = run(
        "ldapmodify",
        &["-x", "-H", &provider.url, "-D", slapd::ROOT_DN, "-w", slapd::ROOT_PASSWORD],
        Some("dn: uid=a1,ou=Agents,dc=cig,dc=fr\nchangetype: delete\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let again = raw_sync(&provider.url, SyncRequestMode::RefreshOnly, cookie.clone(), usize::MAX).await;
    checked += same_bytes(&again);
    // refreshAndPersist: the refresh's end as an intermediate message.
    let persist = raw_sync(&provider.url, SyncRequestMode::RefreshAndPersist, cookie, 2).await;
    checked += same_bytes(&persist);
    assert!(checked >= 9, "only {checked} values compared");
    let kinds: Vec<u64> = again.iter().chain(&persist).map(|m| m.0).collect();
    assert!(kinds.contains(&25), "slapd sent no Sync Info message to compare: {kinds:?}");
}

/// The CSN an ldapsearch reads on `dn` (entryCSN, or the suffix's contextCSN).
async fn csn_of(url: &str, dn: &str, attr: &str) -> String {
    let args = ["-x", "-LLL", "-H", url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", dn, "-s", "base", attr];
    let (code, out, err) = run("ldapsearch", &args, None).await;
    assert_eq!(code, 0, "{err}");
    let prefix = format!("{attr}: ");
    out.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn change_sequence_numbers_only_grow_across_a_kill_and_a_restart() {
    if !have("ldapmodify") || !have("ldapsearch") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let agent = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let change = |v: &str| format!("dn: {agent}\nchangetype: modify\nreplace: title\ntitle: {v}\n");
    let (mut child, url, _) = crate::crash_safety::spawn(&data);
    ldapmodify(&url, &change("avant")).await;
    let before = csn_of(&url, agent, "entryCSN").await;
    assert_eq!(before, csn_of(&url, "dc=cig,dc=fr", "contextCSN").await, "the suffix carries the last CSN");
    assert_eq!(before.len(), 40, "OpenLDAP's fixed-width form: {before}");
    child.kill().unwrap();
    child.wait().unwrap();
    let (mut child, url, _) = crate::crash_safety::spawn(&data);
    assert_eq!(csn_of(&url, agent, "entryCSN").await, before, "the CSN survived the kill");
    ldapmodify(&url, &change("après")).await;
    let after = csn_of(&url, agent, "entryCSN").await;
    assert!(after > before, "{after} is not after {before}");
    assert_eq!(after, csn_of(&url, "dc=cig,dc=fr", "contextCSN").await);
    child.kill().unwrap();
    child.wait().unwrap();
}
