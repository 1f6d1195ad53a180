//! The server with the pure-Rust `ldap3` client crate: paging, password
//! modify, abandon, many concurrent connections.

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{LdapConnAsync, Scope, SearchEntry};

use crate::common::*;

const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

async fn connect(srv: &TestServer) -> ldap3::Ldap {
    let (conn, ldap) = LdapConnAsync::new(&srv.url).await.unwrap();
    ldap3::drive!(conn);
    ldap
}

/// 1,000 subscribers under ou=particuliers, added through the core (no passwords: fast).
fn add_subscribers(srv: &TestServer, n: usize) {
    let dir = srv.directory();
    let entries = (0..n).map(|i| {
        let e = convergences::directory::Entry::new(dn(&format!("uid=abonne{i:04},ou=particuliers,dc=cig,dc=fr")))
            .with("objectClass", ["inetOrgPerson"])
            .with("uid", [format!("abonne{i:04}")])
            .with("cn", [format!("Abonné {i}")])
            .with("sn", [format!("Nom{:04}", (i * 7919) % n)]);
        Ok(convergences::directory::Change::Add(e))
    });
    // One transaction: a thousand fsyncs would make the test slow, not better.
    dir.apply_batch(&actor(), entries, convergences::directory::AddMode::Client, |_| {}).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paged_results_walk_a_thousand_entries_in_pages_of_a_hundred() {
    let srv = TestServer::start().await;
    add_subscribers(&srv, 1000);
    let mut ldap = connect(&srv).await;
    ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![Box::new(EntriesOnly::new()), Box::new(PagedResults::new(100))];
    let mut stream = ldap
        .streaming_search_with(adapters, "ou=particuliers,dc=cig,dc=fr", Scope::OneLevel, "(uid=abonne*)", vec!["uid"])
        .await
        .unwrap();
    let mut uids = std::collections::BTreeSet::new();
    while let Some(entry) = stream.next().await.unwrap() {
        let e = SearchEntry::construct(entry);
        uids.insert(e.attrs["uid"][0].clone());
    }
    stream.finish().await.success().unwrap();
    assert_eq!(uids.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_modify_changes_own_and_others_passwords() {
    use ldap3::exop::{PasswordModify, PasswordModifyResp};
    let srv = TestServer::start().await;
    let demo = convergences::seed::DEMO_PASSWORD;

    // An agent (not a référent) changes its own password, giving the old one.
    let mut ldap = connect(&srv).await;
    ldap.simple_bind(JDUPONT, demo).await.unwrap().success().unwrap();
    let wrong_old = PasswordModify { user_id: None, old_pass: Some("not-it"), new_pass: Some("nouveau-secret") };
    assert_eq!(ldap.extended(wrong_old).await.unwrap().1.rc, 49);
    let pm = PasswordModify { user_id: None, old_pass: Some(demo), new_pass: Some("nouveau-secret") };
    ldap.extended(pm).await.unwrap().success().unwrap();
    // … but not a colleague's, whose entry it cannot even see (noSuchObject).
    let other = PasswordModify { user_id: Some(HDUPRE), old_pass: None, new_pass: Some("un-autre-secret") };
    assert_eq!(ldap.extended(other).await.unwrap().1.rc, 32);
    let mut again = connect(&srv).await;
    assert_eq!(again.simple_bind(JDUPONT, demo).await.unwrap().rc, 49);
    again.simple_bind(JDUPONT, "nouveau-secret").await.unwrap().success().unwrap();
    // A new password the policy finds too short is refused (constraintViolation).
    let weak = PasswordModify { user_id: None, old_pass: Some("nouveau-secret"), new_pass: Some("court") };
    assert_eq!(again.extended(weak).await.unwrap().1.rc, 19);

    // An administrator resets another's password, and lets the server generate one.
    let mut admin = connect(&srv).await;
    admin.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let gen_pm = PasswordModify { user_id: Some(&format!("dn:{JDUPONT}")), old_pass: None, new_pass: None };
    let (exop, res) = admin.extended(gen_pm).await.unwrap().success().unwrap();
    assert_eq!(res.rc, 0);
    let generated = exop.parse::<PasswordModifyResp>().gen_pass;
    assert!(generated.len() >= 12);
    let mut agent = connect(&srv).await;
    agent.simple_bind(JDUPONT, &generated).await.unwrap().success().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_search_stops_and_the_connection_goes_on() {
    let srv = TestServer::start().await;
    add_subscribers(&srv, 1000);
    let mut ldap = connect(&srv).await;
    ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let mut stream = ldap.streaming_search(SUFFIX, Scope::Subtree, "(objectClass=*)", vec!["*"]).await.unwrap();
    let first = stream.next().await.unwrap();
    assert!(first.is_some());
    let msgid = stream.ldap_handle().last_id();
    ldap.abandon(msgid).await.unwrap();
    drop(stream);
    // The same connection still answers.
    let (entries, res) =
        ldap.search(SUFFIX, Scope::Subtree, "(uid=hdupre)", vec!["uid"]).await.unwrap().success().unwrap();
    assert_eq!(res.rc, 0);
    assert_eq!(entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_connections_bind_and_search_at_once() {
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let mut tasks = Vec::new();
    for i in 0..200 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let (conn, mut ldap) = LdapConnAsync::new(&url).await.unwrap();
            ldap3::drive!(conn);
            ldap.simple_bind("cn=bip,ou=services,dc=cig,dc=fr", convergences::seed::DEMO_PASSWORD)
                .await
                .unwrap()
                .success()
                .unwrap();
            let uid = ["hdupre", "jdupont", "cmartin", "floeuvre", "nbenali"][i % 5];
            let (entries, _) = ldap
                .search(SUFFIX, Scope::Subtree, &format!("(uid={uid})"), vec!["uid"])
                .await
                .unwrap()
                .success()
                .unwrap();
            assert_eq!(entries.len(), 1);
            assert_eq!(SearchEntry::construct(entries[0].clone()).attrs["uid"][0], uid);
            ldap.unbind().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_codes_reach_the_client_on_every_operation() {
    let srv = TestServer::start().await;
    let mut ldap = connect(&srv).await;
    ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let base = "ou=particuliers,dc=cig,dc=fr";
    let dn = format!("uid=nouvel,{base}");
    let attrs = vec![
        ("objectClass", ["inetOrgPerson"].into()),
        ("uid", ["nouvel"].into()),
        ("cn", ["Nouvel Abonné"].into()),
        ("sn", ["Abonné"].into()),
    ];
    assert_eq!(ldap.add(&dn, attrs.clone()).await.unwrap().rc, 0);
    assert_eq!(ldap.add(&dn, attrs).await.unwrap().rc, 68);
    assert_eq!(ldap.compare(&dn, "sn", "abonné").await.unwrap().0.rc, 6);
    assert_eq!(ldap.compare(&dn, "sn", "autre").await.unwrap().0.rc, 5);
    let mods = vec![ldap3::Mod::Replace("title", ["Usager"].into())];
    assert_eq!(ldap.modify(&dn, mods).await.unwrap().rc, 0);
    let bad = vec![ldap3::Mod::Add("uid", ["hdupre"].into())];
    assert_eq!(ldap.modify(&dn, bad).await.unwrap().rc, 19, "uid is unique");
    assert_eq!(ldap.modifydn(&dn, "uid=renomme", true, Some("ou=services,dc=cig,dc=fr")).await.unwrap().rc, 0);
    assert_eq!(ldap.delete(&dn).await.unwrap().rc, 32);
    assert_eq!(ldap.delete("uid=renomme,ou=services,dc=cig,dc=fr").await.unwrap().rc, 0);
    assert_eq!(ldap.delete("ou=organisations,dc=cig,dc=fr").await.unwrap().rc, 66);
    let res = ldap.search("bogus=dn", Scope::Base, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!(res.1.rc, 34, "invalidDNSyntax");
}

/// A rustls client configuration trusting the server's generated CA.
fn trusting(ca: &std::path::Path) -> std::sync::Arc<rustls::ClientConfig> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    std::sync::Arc::new(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_then_bind_and_ldaps_bind_with_the_ldap3_crate() {
    use ldap3::LdapConnSettings;
    let srv = TestServer::start().await;
    let h = srv.handle.as_ref().unwrap();
    let config = trusting(h.tls.ca.as_ref().unwrap());

    let settings = LdapConnSettings::new().set_config(config.clone()).set_starttls(true);
    let (conn, mut ldap) =
        LdapConnAsync::with_settings(settings, &format!("ldap://127.0.0.1:{}", h.ldap_addr.port())).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let who = ldap.extended(ldap3::exop::WhoAmI).await.unwrap().success().unwrap().0;
    assert_eq!(who.parse::<ldap3::exop::WhoAmIResp>().authzid, format!("dn:{ADMIN}"));

    let settings = LdapConnSettings::new().set_config(config);
    let (conn, mut ldap) =
        LdapConnAsync::with_settings(settings, &format!("ldaps://127.0.0.1:{}", h.ldaps_addr.port())).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(HDUPRE, convergences::seed::DEMO_PASSWORD).await.unwrap().success().unwrap();
    let (entries, _) =
        ldap.search(HDUPRE, Scope::Base, "(objectClass=*)", vec!["uid"]).await.unwrap().success().unwrap();
    assert_eq!(entries.len(), 1);
}

/// RFC 4528 test-and-set: two clients modify the same entry at the same
/// moment, each asserting the value both read. The assertion is tested in
/// the modify's own transaction, so exactly one of them wins each round;
/// the other gets assertionFailed (122) and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_modifies_asserting_the_same_value_exactly_one_applies() {
    use ldap3::controls::Assertion;
    let srv = TestServer::start().await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut ldap = connect(&srv).await;
        ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
        clients.push(ldap);
    }
    let mut reader = connect(&srv).await;
    reader.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let mut seen = "départ".to_string();
    let set = vec![ldap3::Mod::Replace("description", [seen.as_str()].into())];
    reader.modify(JDUPONT, set).await.unwrap().success().unwrap();
    for round in 0..20 {
        let modifies = clients.iter_mut().enumerate().map(|(i, ldap)| {
            let assertion = format!("(description={seen})");
            let value = format!("tour {round} client {i}");
            async move {
                let mods = vec![ldap3::Mod::Replace("description", [value.as_str()].into())];
                let res = ldap.with_controls(Assertion::new(assertion)).modify(JDUPONT, mods).await.unwrap();
                (res.rc, value)
            }
        });
        let outcomes = futures_util::future::join_all(modifies).await;
        let winners: Vec<&String> = outcomes.iter().filter(|(rc, _)| *rc == 0).map(|(_, v)| v).collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        assert!(outcomes.iter().all(|(rc, _)| *rc == 0 || *rc == 122), "round {round}: {outcomes:?}");
        let (entries, _) = reader
            .search(JDUPONT, Scope::Base, "(objectClass=*)", vec!["description"])
            .await
            .unwrap()
            .success()
            .unwrap();
        let now = SearchEntry::construct(entries.into_iter().next().unwrap()).attrs["description"][0].clone();
        assert_eq!(&now, winners[0], "the winner's value is the one stored");
        seen = now;
    }
}
