//! Passwords stay under the policy whoever writes them: a `{SCHEME}` hash
//! escapes the quality checks, so only administrators (and import) may
//! store one; and a bind to a DN without a password costs what a bind to
//! the directory's accounts costs.

use convergences::directory::{Actor, Entry, TokenScope};
use serde_json::json;

use crate::common::{ADMIN_PASSWORD, Scim, TestServer, dn, have, run, ssha, token};

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prehashed_password_is_taken_from_an_administrator_only() {
    if !have("ldapmodify") || !have("ldapadd") || !have("ldappasswd") || !have("ldapwhoami") {
        return;
    }
    let srv = TestServer::start().await;
    let hashed = ssha("Haché-Par-Un-Autre-1");
    let change = format!("dn: {JDUPONT}\nchangetype: modify\nreplace: userPassword\nuserPassword: {hashed}\n");
    let demo = convergences::seed::DEMO_PASSWORD;
    // The référent may set their agent's password, but not a hash of it.
    let (code, _, err) = run("ldapmodify", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo], Some(&change)).await;
    assert_eq!(code, 19, "{err}");
    assert!(err.contains("administrator"), "{err}");
    // Nor through SCIM, with the organisation's token.
    let scim = Scim::new(&srv);
    let org = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let id = srv.directory().get(&dn(JDUPONT)).unwrap().unwrap().first_str("entryUUID").unwrap().to_string();
    let patch = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                       "Operations": [{"op": "replace", "path": "password", "value": hashed}]});
    let (status, _, body) = scim.call(&org, "PATCH", &format!("/Users/{id}"), Some(&patch)).await;
    assert_eq!(status, 400, "{body}");
    // Password Modify takes a password, never a hash, from anyone.
    let admin = "cn=admin,dc=cig,dc=fr";
    let (code, out, err) =
        run("ldappasswd", &["-x", "-H", &srv.url, "-D", admin, "-w", ADMIN_PASSWORD, "-s", &hashed, JDUPONT], None)
            .await;
    assert!(code != 0 && out.contains("Constraint violation (19)"), "{code}: {out}{err}");
    // Under another name of the attribute, or as the entry's name: refused too.
    let add = |name: &str, rdn: &str| {
        format!(
            "dn: {rdn},ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: inetOrgPerson\n\
             cn: Nouvel Agent\nsn: Agent\n{name}: {hashed}\n"
        )
    };
    for (name, rdn) in [("2.5.4.35", "uid=nouvel.agent"), ("userPassword;binary", "uid=nouvel.agent")] {
        let (code, _, err) =
            run("ldapadd", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo], Some(&add(name, rdn))).await;
        assert_eq!(code, 19, "{name}: {err}");
    }
    let rdn = format!("userPassword={hashed}");
    let (code, _, err) =
        run("ldapadd", &["-x", "-H", &srv.url, "-D", HDUPRE, "-w", demo], Some(&add("description", &rdn))).await;
    assert_eq!(code, 64, "{err}");
    // An administrator migrating accounts stores the hash, which then binds.
    let (code, _, err) =
        run("ldapmodify", &["-x", "-H", &srv.url, "-D", admin, "-w", ADMIN_PASSWORD], Some(&change)).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        run("ldapwhoami", &["-x", "-H", &srv.url, "-D", JDUPONT, "-w", "Haché-Par-Un-Autre-1"], None).await;
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_bind_to_an_unknown_dn_is_checked_like_the_accounts_binds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.password.rehash = false;
    let dir = convergences::app::open_directory(&cfg).unwrap();
    crate::common::populate(&dir);
    let imported = dn(&format!("uid=ssha,ou=particuliers,{}", crate::common::SUFFIX));
    let entry = Entry::new(imported.clone())
        .with("objectClass", ["inetOrgPerson"])
        .with("uid", ["ssha"])
        .with("cn", ["ssha"])
        .with("sn", ["ssha"])
        .with("userPassword", [ssha("mot-de-passe-ssha")]);
    dir.add(&Actor::new("cn=admin,dc=cig,dc=fr"), entry).unwrap();
    let unknown = dn(&format!("uid=personne,ou=particuliers,{}", crate::common::SUFFIX));
    // Before any bind the decoy is argon2, checked off the reactor like argon2 accounts.
    assert!(!dir.bind_is_cheap(dir.account(&unknown).unwrap().as_ref()));
    let account = dir.account(&imported).unwrap();
    assert!(dir.bind_is_cheap(account.as_ref()), "a salted digest is checked inline");
    assert!(dir.authenticate(account, b"mot-de-passe-ssha", "test").is_ok());
    // The accounts are salted digests: so is the decoy now, run where they run.
    assert!(dir.bind_is_cheap(dir.account(&unknown).unwrap().as_ref()));
    assert!(dir.authenticate(dir.account(&unknown).unwrap(), b"mot-de-passe-ssha", "test").is_err());
}
