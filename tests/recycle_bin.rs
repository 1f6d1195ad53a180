//! Deleting an agent puts it in the recycle bin (issue 21): it is gone from
//! every read and cannot bind, and comes back whole — entryUUID, attributes,
//! password, groups — when its organisation's référent or an administrator
//! restores it, over LDAP (extended operations, ldapexop) or from the
//! command line; after the retention it is purged for good, once.

use base64::Engine;
use convergences::directory::{TokenScope, lifecycle};

use crate::common::{ADMIN_PASSWORD, Scim, TestServer, dn, have, run};

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const FLOEUVRE: &str = "uid=floeuvre,ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr";
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const RESTORE: &str = "2.25.8454349690524137459045039418936221212.3.2";
const LIST: &str = "2.25.8454349690524137459045039418936221212.3.3";

fn demo() -> &'static str {
    convergences::seed::DEMO_PASSWORD
}

fn uuid(srv: &TestServer, entry: &str) -> String {
    srv.directory().get(&dn(entry)).unwrap().unwrap().first_str("entryUUID").unwrap().to_string()
}

/// ldapexop as `who`; (the LDAP result code, the response data decoded,
/// what it printed).
async fn exop(srv: &TestServer, who: &str, password: &str, op: &str) -> (i32, String, String) {
    let (code, out, err) = run("ldapexop", &["-x", "-H", &srv.url, "-D", who, "-w", password, op], None).await;
    let printed = format!("{out}{err}");
    // ldapexop exits 1 on a refusal and prints the code as "(32)".
    let code = match code {
        0 => 0,
        _ => printed
            .split(['(', ')'])
            .filter_map(|p| p.parse::<i32>().ok())
            .next()
            .unwrap_or_else(|| panic!("no result code in {printed}")),
    };
    // The data is printed as LDIF: folded lines, base64 when it holds tabs or newlines.
    let unfolded = out.replace("\n ", "");
    let data = unfolded
        .lines()
        .find_map(|l| {
            l.strip_prefix("data:: ")
                .map(|b| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap())
                .or_else(|| l.strip_prefix("data: ").map(str::to_string))
        })
        .unwrap_or_default();
    (code, data, printed)
}

async fn bind(srv: &TestServer, who: &str, password: &str) -> i32 {
    run("ldapwhoami", &["-x", "-H", &srv.url, "-D", who, "-w", password], None).await.0
}

/// The values of one attribute of an entry, read by the administrator.
async fn read(srv: &TestServer, base: &str, filter: &str, attr: &str) -> Vec<String> {
    let args = ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", base];
    let (_, out, _) = run("ldapsearch", &[&args[..], &[filter, attr]].concat(), None).await;
    let prefix = format!("{attr}: ");
    out.lines().filter_map(|l| l.strip_prefix(&prefix)).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_agent_is_gone_from_every_read_and_comes_back_whole() {
    if !have("ldapdelete") || !have("ldapexop") || !have("ldapsearch") || !have("ldapwhoami") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    let groups = read(&srv, JDUPONT, "(objectClass=*)", "memberOf").await;
    assert!(!groups.is_empty(), "the demo agent is in groups");
    let before = read(&srv, JDUPONT, "(objectClass=*)", "cn").await;

    // The référent deletes the agent.
    let (code, _, err) = run("ldapdelete", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo(), JDUPONT], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(read(&srv, "dc=cig,dc=fr", "(uid=jdupont)", "dn").await.is_empty());
    assert_eq!(bind(&srv, JDUPONT, demo()).await, 49);
    for g in &groups {
        assert!(!read(&srv, g, "(objectClass=*)", "member").await.contains(&JDUPONT.to_string()), "{g}");
    }
    let (status, _, _) = scim.call(&org, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 404);

    // The référent lists the organisation's bin and restores the agent.
    let (code, listing, out) = exop(&srv, HDUPRE, demo(), LIST).await;
    assert_eq!(code, 0, "{out}");
    let line = listing.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{listing}"));
    assert!(line.ends_with(&format!("\t{JDUPONT}")), "{line}");
    let (code, restored, out) = exop(&srv, HDUPRE, demo(), &format!("{RESTORE}:{id}")).await;
    assert_eq!(code, 0, "{out}");
    assert_eq!(restored, JDUPONT);

    // Same entryUUID (so the same SCIM id), attributes, password and groups.
    assert_eq!(read(&srv, JDUPONT, "(objectClass=*)", "entryUUID").await, std::slice::from_ref(&id));
    assert_eq!(read(&srv, JDUPONT, "(objectClass=*)", "cn").await, before);
    assert_eq!(bind(&srv, JDUPONT, demo()).await, 0);
    let mut back = read(&srv, JDUPONT, "(objectClass=*)", "memberOf").await;
    let mut groups = groups;
    back.sort();
    groups.sort();
    assert_eq!(back, groups);
    let (status, _, user) = scim.call(&org, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!((status, user["userName"].as_str()), (200, Some("jdupont")), "{user}");
    // Nothing is left in the bin; a second restore finds nothing.
    let (code, _, out) = exop(&srv, HDUPRE, demo(), &format!("{RESTORE}:{id}")).await;
    assert_eq!(code, 32, "noSuchObject: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_organisations_referent_neither_sees_nor_restores_the_agent() {
    if !have("ldapdelete") || !have("ldapexop") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let id = uuid(&srv, JDUPONT);
    let (code, _, err) = run("ldapdelete", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo(), JDUPONT], None).await;
    assert_eq!(code, 0, "{err}");
    let (code, listing, out) = exop(&srv, FLOEUVRE, demo(), LIST).await;
    assert_eq!(code, 0, "{out}");
    assert!(!listing.contains(&id), "{listing}");
    let (code, _, out) = exop(&srv, FLOEUVRE, demo(), &format!("{RESTORE}:{id}")).await;
    assert_eq!(code, 32, "noSuchObject, as if nothing were there: {out}");
    // An agent cannot restore anybody, nor anonymous.
    let (code, _, out) = exop(
        &srv,
        "uid=cmartin,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr",
        demo(),
        &format!("{RESTORE}:{id}"),
    )
    .await;
    assert_eq!(code, 32, "{out}");
    // Something that is not a UUID is a syntax error.
    let (code, _, out) = exop(&srv, HDUPRE, demo(), &format!("{RESTORE}:demain")).await;
    assert_eq!(code, 21, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_whose_uid_was_given_to_someone_else_fails_with_a_clear_error() {
    if !have("ldapdelete") || !have("ldapexop") || !have("ldapadd") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let id = uuid(&srv, JDUPONT);
    let (code, _, err) = run("ldapdelete", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo(), JDUPONT], None).await;
    assert_eq!(code, 0, "{err}");
    // A new Jean Dupont is hired and gets the uid.
    let add = format!("dn: {JDUPONT}\nobjectClass: inetOrgPerson\ncn: Jean Dupont\nsn: Dupont\nuid: jdupont\n");
    let (code, _, err) = run("ldapadd", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo()], Some(&add)).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, out) = exop(&srv, HDUPRE, demo(), &format!("{RESTORE}:{id}")).await;
    assert_eq!(code, 68, "entryAlreadyExists: {out}");
    assert!(out.contains("since the agent was deleted"), "{out}");
    // The deleted agent is still in the bin, the new one untouched.
    let (_, listing, _) = exop(&srv, HDUPRE, demo(), LIST).await;
    assert!(listing.contains(&id), "{listing}");
    assert_ne!(uuid(&srv, JDUPONT), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scim_delete_goes_to_the_bin_and_the_command_line_restores_it() {
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let data = srv.tmp.path().display().to_string();
    let scim = Scim::new(&srv);
    let org = crate::common::token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = uuid(&srv, JDUPONT);
    let (status, _, _) = scim.call(&org, "DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 204);
    let (code, out, err) = run(BIN, &["bin", "list", "--data", &data, "--org", "219400280"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|l| l.starts_with(&id) && l.ends_with(JDUPONT)), "{out}");
    let (code, out, err) = run(BIN, &["bin", "restore", "--data", &data, &id], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("restored {JDUPONT}"));
    let (status, _, user) = scim.call(&org, "GET", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 200, "{user}");
    let (code, out, _) = run(BIN, &["bin", "list", "--data", &data], None).await;
    assert_eq!((code, out.as_str()), (0, ""));
    // An entryUUID of an agent in the bin is never given to another entry.
    let (status, _, _) = scim.call(&org, "DELETE", &format!("/Users/{id}"), None).await;
    assert_eq!(status, 204);
    let reused = convergences::directory::Entry::new(dn(&format!("uid=autre,ou=agents,{CRETEIL}")))
        .with("objectClass", ["inetOrgPerson"])
        .with("cn", ["Autre"])
        .with("sn", ["Autre"])
        .with("uid", ["autre"])
        .with("entryUUID", [id.as_str()]);
    let importer = convergences::directory::Actor::new(ADMIN);
    let change = convergences::directory::Change::Add(reused);
    let (_, err) = srv
        .directory()
        .apply_batch(&importer, [Ok(change)], convergences::directory::AddMode::Import, |_| {})
        .unwrap_err();
    assert!(err.to_string().contains("recycle bin"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_its_retention_a_deleted_agent_is_purged_once() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start_with(|c| c.lifecycle_interval_secs = 0).await;
    let data = srv.tmp.path().display().to_string();
    let dir = srv.directory();
    let id = uuid(&srv, JDUPONT);
    let admin = convergences::directory::Actor::client(dir.principal_of(&dn(ADMIN)).unwrap(), "test");
    dir.delete(&admin, &dn(JDUPONT)).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let in_days = |d: i64| format!("{}Z", lifecycle::epoch_instant(now + d * 86_400));

    // Créteil keeps its deleted agents 90 days instead of the default 30.
    let longer = format!("dn: {CRETEIL}\nchangetype: modify\nreplace: cigRecycleBinDays\ncigRecycleBinDays: 90\n");
    let (code, _, err) =
        run("ldapmodify", &["-x", "-H", &srv.url, "-D", ADMIN, "-w", ADMIN_PASSWORD], Some(&longer)).await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &in_days(31)], None).await;
    assert!(out.contains("0 transitions"), "{out}");
    let (_, out, _) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &in_days(91)], None).await;
    assert!(out.contains(&format!("purged from the recycle bin\t{JDUPONT}")), "{out}");
    let (_, out, _) = run(BIN, &["lifecycle", "--data", &data, "--as-of", &in_days(91)], None).await;
    assert!(out.contains("0 transitions"), "{out}");
    let mut purges = 0;
    dir.audit(&Default::default(), |_, c| {
        if c.op == "purge" {
            purges += 1;
            assert_eq!((c.actor.as_str(), c.dn.as_str()), ("convergences", JDUPONT));
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(purges, 1);
    let err = dir.restore(&admin, &id).unwrap_err();
    assert!(matches!(err, convergences::directory::DirectoryError::NoSuchObject { .. }), "{err}");
    let (code, out, _) = run(BIN, &["check", "--data", &data], None).await;
    assert_eq!(code, 0);
    assert!(out.contains(": consistent"), "{out}");
}
