//! Delegated administration (issue 5): the permission matrix over LDAP (the
//! ldap3 crate) and SCIM (reqwest), the audit trail it leaves, password
//! schemes from other directories, lockout, and the `baseline` policy.

use std::collections::BTreeSet;

use convergences::directory::{Entry, ModOp, Modification, TokenScope};
use ldap3::exop::PasswordModify;
use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};
use serde_json::{Value, json};

use crate::common::*;

const A: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
const B: &str = "o=217500016,ou=organisations,dc=cig,dc=fr";
const CMARTIN: &str = "uid=cmartin,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const NEWCOMER: &str = "uid=nouvelle,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const BIP: &str = "cn=bip,ou=applications,dc=cig,dc=fr";
/// Créteil (A) does not subscribe to it; Vitry (B) does.
const COMITE: &str = "cn=comite-medical,ou=applications,dc=cig,dc=fr";
const DEMO_PEOPLE: &str = "(|(uid=hdupre)(uid=jdupont)(uid=cmartin)(uid=floeuvre)(uid=nbenali)(uid=lgarnier))";

/// The operations of the matrix, in the order they run (own password last:
/// it changes the password the next bind would use).
const OPS: [&str; 13] = [
    "search",
    "read",
    "password",
    "compare",
    "compare-pw",
    "add",
    "modify",
    "delete",
    "move",
    "grant",
    "grant-unsub",
    "other-pw",
    "own-pw",
];

/// Who, how they bind, and what each operation must give over LDAP.
/// Search: `0:n` = success with n of the six demo people. Read of another
/// agent's password: `hidden` (entry without it), `shown`, or the result code.
/// Codes: 0 success, 5/6 compareFalse/True, 32 noSuchObject, 50
/// insufficientAccessRights, 53 unwillingToPerform.
#[rustfmt::skip]
const LDAP_MATRIX: [(&str, &str, [&str; 13]); 6] = [
    //                                                                    search read  password  compare cmp-pw add   modify delete move  grant grant-unsub other-pw own-pw
    ("anonymous",      "",                                                ["32",  "32", "32",     "32",   "32",  "32", "32",  "32",  "32", "32", "32",       "53",    "53"]),
    ("agent of A",     "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr",
                                                                          ["0:1", "32", "32",     "32",   "32",  "50", "32",  "32",  "32", "32", "32",       "32",    "0"]),
    ("référent of A",  "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr",
                                                                          ["0:3", "0",  "hidden", "6",    "50",  "0",  "0",   "0",   "32", "0",  "50",       "0",     "0"]),
    ("référent of B",  "uid=floeuvre,ou=agents,o=217500016,ou=organisations,dc=cig,dc=fr",
                                                                          ["0:2", "32", "32",     "32",   "32",  "32", "32",  "32",  "32", "50", "50",       "32",    "0"]),
    ("BIP service",    "cn=bip,ou=services,dc=cig,dc=fr",                 ["0:6", "0",  "hidden", "6",    "50",  "50", "50",  "50",  "50", "50", "50",       "50",    "50"]),
    ("CIG admin",      "cn=admin,dc=cig,dc=fr",                           ["0:6", "0",  "shown",  "6",    "5",   "0",  "0",   "0",   "0",  "0",  "0",        "0",     "0"]),
];

/// The same operations through SCIM, where they exist (`-`: not a SCIM operation).
#[rustfmt::skip]
const SCIM_MATRIX: [(&str, [&str; 13]); 2] = [
    //                       search   read   password  compare cmp-pw add    modify delete move grant grant-unsub other-pw own-pw
    ("SCIM token of A",     ["200:3", "200", "hidden", "-",    "-",   "201", "200", "204", "-", "200", "403",     "200",   "-"]),
    ("SCIM token of B",     ["200:2", "404", "404",    "-",    "-",   "-",   "404", "404", "-", "404", "404",     "404",   "-"]),
];

async fn connect(url: &str) -> ldap3::Ldap {
    let (conn, ldap) = LdapConnAsync::new(url).await.unwrap();
    ldap3::drive!(conn);
    ldap
}

fn uuid_of(srv: &TestServer, dn_: &str) -> String {
    srv.directory().get(&dn(dn_)).unwrap().unwrap().first_str("entryUUID").unwrap().to_string()
}

fn password_for(who: &str) -> &'static str {
    if who.starts_with("cn=admin,") { ADMIN_PASSWORD } else { convergences::seed::DEMO_PASSWORD }
}

/// Victims of deletes and moves, and a newcomer to grant applications to,
/// created through the core by the server itself.
fn setup(srv: &TestServer) {
    let dir = srv.directory();
    let actor = actor();
    let person = |dn_: &str, uid: &str| {
        Entry::new(dn(dn_))
            .with("objectClass", ["inetOrgPerson", "cigAgent"])
            .with("uid", [uid])
            .with("cn", [uid])
            .with("sn", [uid])
    };
    for i in 0..LDAP_MATRIX.len() + SCIM_MATRIX.len() {
        for kind in ["victime", "migrant"] {
            let uid = format!("{kind}{i}");
            dir.add(&actor, person(&format!("uid={uid},ou=agents,{A}"), &uid)).unwrap();
        }
    }
    dir.add(&actor, person(NEWCOMER, "nouvelle")).unwrap();
}

/// Undo a successful grant, so that the next identity starts from the same state.
fn revoke(srv: &TestServer, group: &str) {
    let m = Modification { op: ModOp::Delete, attr: "member".into(), values: vec![NEWCOMER.as_bytes().to_vec()] };
    let _ = srv.directory().modify(&actor(), &dn(group), &[m]);
}

/// Run one LDAP cell; returns what happened, in the matrix's notation, and
/// the DN a write aimed at (for the audit check).
async fn ldap_cell(
    srv: &TestServer,
    ldap: &mut ldap3::Ldap,
    row: usize,
    who: &str,
    op: &str,
) -> (String, Option<String>) {
    let rc =
        |r: ldap3::result::Result<ldap3::LdapResult>| r.map(|r| r.rc.to_string()).unwrap_or_else(|e| format!("{e}"));
    match op {
        "search" => match ldap.search(SUFFIX, Scope::Subtree, DEMO_PEOPLE, vec!["1.1"]).await {
            Ok(r) if r.1.rc == 0 => (format!("0:{}", r.0.len()), None),
            Ok(r) => (r.1.rc.to_string(), None),
            Err(e) => (e.to_string(), None),
        },
        "read" | "password" => match ldap.search(CMARTIN, Scope::Base, "(objectClass=*)", vec!["*"]).await {
            Ok(r) if r.1.rc == 0 && r.0.len() == 1 => {
                let e = SearchEntry::construct(r.0[0].clone());
                let out = if op == "read" {
                    "0"
                } else if e.attrs.contains_key("userPassword") || e.bin_attrs.contains_key("userPassword") {
                    "shown"
                } else {
                    "hidden"
                };
                (out.to_string(), None)
            }
            Ok(r) => (r.1.rc.to_string(), None),
            Err(e) => (e.to_string(), None),
        },
        "compare" => {
            (ldap.compare(CMARTIN, "sn", "Martin").await.map(|r| r.0.rc.to_string()).unwrap_or_default(), None)
        }
        "compare-pw" => (
            ldap.compare(CMARTIN, "userPassword", convergences::seed::DEMO_PASSWORD)
                .await
                .map(|r| r.0.rc.to_string())
                .unwrap_or_default(),
            None,
        ),
        "add" => {
            let target = format!("uid=recrue{row},ou=agents,{A}");
            let uid = format!("recrue{row}");
            let attrs = vec![
                ("objectClass", ["inetOrgPerson"].into_iter().collect()),
                ("uid", [uid.as_str()].into_iter().collect()),
                ("cn", ["Nouvelle Recrue"].into_iter().collect()),
                ("sn", ["Recrue"].into_iter().collect()),
            ];
            (rc(ldap.add(&target, attrs).await), Some(target))
        }
        "modify" => {
            let m = vec![Mod::Replace("title", ["Gestionnaire"].into_iter().collect())];
            (rc(ldap.modify(CMARTIN, m).await), Some(CMARTIN.to_string()))
        }
        "delete" => {
            let target = format!("uid=victime{row},ou=agents,{A}");
            (rc(ldap.delete(&target).await), Some(target))
        }
        "move" => {
            let target = format!("uid=migrant{row},ou=agents,{A}");
            let rdn = format!("uid=migrant{row}");
            (rc(ldap.modifydn(&target, &rdn, true, Some(&format!("ou=agents,{B}"))).await), Some(target))
        }
        "grant" | "grant-unsub" => {
            let group = if op == "grant" { BIP } else { COMITE };
            let m = vec![Mod::Add("member", [NEWCOMER].into_iter().collect())];
            let out = rc(ldap.modify(group, m).await);
            if out == "0" {
                revoke(srv, group);
            }
            (out, Some(group.to_string()))
        }
        "other-pw" => {
            let pm = PasswordModify { user_id: Some(CMARTIN), old_pass: None, new_pass: Some("Un-Secret-Tout-Neuf-1") };
            (ldap.extended(pm).await.map(|r| r.1.rc.to_string()).unwrap_or_default(), Some(CMARTIN.to_string()))
        }
        "own-pw" => {
            let pm = PasswordModify {
                user_id: None,
                old_pass: Some(password_for(who)),
                new_pass: Some("Mon-Secret-Tout-Neuf-2"),
            };
            let target = if who.is_empty() { None } else { Some(who.to_string()) };
            (ldap.extended(pm).await.map(|r| r.1.rc.to_string()).unwrap_or_default(), target)
        }
        other => panic!("unknown operation {other}"),
    }
}

/// Run one SCIM cell.
async fn scim_cell(srv: &TestServer, scim: &Scim, token: &str, row: usize, op: &str) -> (String, Option<String>) {
    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    let cm = format!("/Users/{}", uuid_of(srv, CMARTIN));
    match op {
        "search" => {
            let (status, _, body) = scim.call(token, "GET", "/Users?count=200", None).await;
            let demo = ["hdupre", "jdupont", "cmartin", "floeuvre", "nbenali", "lgarnier"];
            let n = body["Resources"]
                .as_array()
                .map(|rs| rs.iter().filter(|r| demo.contains(&r["userName"].as_str().unwrap_or(""))).count())
                .unwrap_or(0);
            (format!("{status}:{n}"), None)
        }
        "read" => (scim.call(token, "GET", &cm, None).await.0.to_string(), None),
        "password" => {
            let (status, _, body) = scim.call(token, "GET", &cm, None).await;
            let out = match status {
                200 if body.get("password").is_some() => "shown".to_string(),
                200 => "hidden".to_string(),
                s => s.to_string(),
            };
            (out, None)
        }
        "add" => {
            let uid = format!("recrue{row}");
            let u = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": uid,
                           "name": {"familyName": "Recrue", "givenName": "Nouvelle"}});
            let target = format!("uid={uid},ou=agents,{A}");
            (scim.call(token, "POST", "/Users", Some(&u)).await.0.to_string(), Some(target))
        }
        "modify" => {
            let body = patch(json!([{"op": "replace", "path": "title", "value": "Gestionnaire"}]));
            (scim.call(token, "PATCH", &cm, Some(&body)).await.0.to_string(), Some(CMARTIN.to_string()))
        }
        "delete" => {
            let target = format!("uid=victime{row},ou=agents,{A}");
            let path = format!("/Users/{}", uuid_of(srv, &target));
            (scim.call(token, "DELETE", &path, None).await.0.to_string(), Some(target))
        }
        "grant" | "grant-unsub" => {
            let (app, group) = if op == "grant" { ("bip", BIP) } else { ("comite-medical", COMITE) };
            let body = patch(json!([{"op": "add", "path": "entitlements", "value": [{"value": app}]}]));
            let path = format!("/Users/{}", uuid_of(srv, NEWCOMER));
            let status = scim.call(token, "PATCH", &path, Some(&body)).await.0;
            if status == 200 {
                revoke(srv, group);
            }
            // A SCIM grant is the same change as over LDAP: the application group's members.
            (status.to_string(), Some(group.to_string()))
        }
        "other-pw" => {
            let body = patch(json!([{"op": "replace", "path": "password", "value": "Un-Secret-Tout-Neuf-3"}]));
            (scim.call(token, "PATCH", &cm, Some(&body)).await.0.to_string(), Some(CMARTIN.to_string()))
        }
        _ => ("-".to_string(), None),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_gets_exactly_its_rights_over_ldap_and_scim() {
    let srv = TestServer::start().await;
    setup(&srv);
    let mut wrong = Vec::new();
    // (actor as the audit trail must name it, target DN) of every write that reached the directory.
    let mut writes: Vec<(String, String)> = Vec::new();

    for (row, (name, who, expected)) in LDAP_MATRIX.iter().enumerate() {
        let mut ldap = connect(&srv.url).await;
        if !who.is_empty() {
            ldap.simple_bind(who, password_for(who)).await.unwrap().success().unwrap();
        }
        for (op, want) in OPS.iter().zip(expected) {
            let (got, target) = ldap_cell(&srv, &mut ldap, row, who, op).await;
            if got != *want {
                wrong.push(format!("LDAP {name} × {op}: expected {want}, got {got}"));
            }
            // A Password Modify refused to anonymous never reaches the directory.
            if let Some(t) = target.filter(|_| !(who.is_empty() && op.ends_with("-pw"))) {
                writes.push((who.to_string(), t));
            }
        }
        let _ = ldap.unbind().await;
    }

    let scim = Scim::new(&srv);
    for (i, (name, expected)) in SCIM_MATRIX.iter().enumerate() {
        let org = if i == 0 { A } else { B };
        let token = token(&srv, TokenScope::Organisation(dn(org)));
        let row = LDAP_MATRIX.len() + i;
        for (op, want) in OPS.iter().zip(expected) {
            if *want == "-" {
                continue;
            }
            let (got, target) = scim_cell(&srv, &scim, &token, row, op).await;
            if got != *want {
                wrong.push(format!("SCIM {name} × {op}: expected {want}, got {got}"));
            }
            // A 404 is recorded under the id the client named (the entry is not
            // there for this caller); the others under the entry's DN.
            if let Some(t) = target.filter(|_| got != "404") {
                writes.push((format!("cn=scim,{org}"), t));
            }
        }
    }
    assert!(wrong.is_empty(), "the permission matrix differs:\n{}", wrong.join("\n"));

    // The audit trail, read over LDAP by an administrator, holds every one of
    // those writes, accepted or refused, in the name of who asked.
    let mut ldap = connect(&srv.url).await;
    ldap.simple_bind("cn=admin,dc=cig,dc=fr", "Mon-Secret-Tout-Neuf-2").await.unwrap().success().unwrap();
    let ldap3::SearchResult(entries, res) =
        ldap.search("cn=changelog", Scope::OneLevel, "(objectClass=changeLogEntry)", vec!["*"]).await.unwrap();
    assert_eq!(res.rc, 0, "{res:?}");
    let trail: BTreeSet<(String, String)> = entries
        .into_iter()
        .map(SearchEntry::construct)
        .map(|e| {
            let get = |a: &str| e.attrs.get(a).and_then(|v| v.first()).cloned().unwrap_or_default().to_lowercase();
            (get("cigAuditActor"), get("targetDN"))
        })
        .collect();
    let missing: Vec<String> = writes
        .iter()
        .filter(|(actor, target)| !trail.contains(&(actor.to_lowercase(), target.to_lowercase())))
        .map(|(a, t)| format!("{t} by '{a}'"))
        .collect();
    assert!(missing.is_empty(), "writes missing from the audit trail:\n{}", missing.join("\n"));
    // Nobody else reads it: the référent of A finds no cn=changelog.
    let mut ref_a = connect(&srv.url).await;
    let hdupre = LDAP_MATRIX[2].1;
    ref_a.simple_bind(hdupre, "Mon-Secret-Tout-Neuf-2").await.unwrap().success().unwrap();
    let r = ref_a.search("cn=changelog", Scope::OneLevel, "(objectClass=*)", vec!["1.1"]).await.unwrap();
    assert_eq!(r.1.rc, 32);
}

/// `{SSHA}`, `{CRYPT}` (sha512-crypt and bcrypt) and `{PBKDF2-SHA256}` hashes
/// from a slapcat file keep working, and move to argon2id at the first bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_hashes_of_other_directories_bind_and_are_rehashed_to_argon2id() {
    use base64::Engine;
    use sha1::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let cfg = convergences::config::Config::for_test(tmp.path());
    let mut h = sha1::Sha1::new();
    h.update(b"mot-de-passe-ssha");
    h.update(b"sel!");
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(b"sel!");
    let ssha = format!("{{SSHA}}{}", base64::engine::general_purpose::STANDARD.encode(raw));
    let sha512_crypt = pwhash::sha512_crypt::hash_with("$6$rounds=5000$selselsel", "mot-de-passe-crypt").unwrap();
    let bcrypt = pwhash::bcrypt::hash_with(
        pwhash::bcrypt::BcryptSetup { cost: Some(4), variant: Some(pwhash::bcrypt::BcryptVariant::V2b), salt: None },
        "mot-de-passe-bcrypt",
    )
    .unwrap();
    let salt = b"0123456789abcdef";
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(b"mot-de-passe-pbkdf2", salt, 1000, &mut key);
    let ab64 = |b: &[u8]| base64::engine::general_purpose::STANDARD_NO_PAD.encode(b).replace('+', ".");
    let pbkdf2 = format!("{{PBKDF2-SHA256}}1000${}${}", ab64(salt), ab64(&key));
    let people = [
        ("ssha", ssha.clone(), "mot-de-passe-ssha"),
        ("crypt", format!("{{CRYPT}}{sha512_crypt}"), "mot-de-passe-crypt"),
        ("bcrypt", format!("{{CRYPT}}{bcrypt}"), "mot-de-passe-bcrypt"),
        ("pbkdf2", pbkdf2, "mot-de-passe-pbkdf2"),
    ];
    let mut ldif = String::from(
        "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: ou=particuliers,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: particuliers\n\n",
    );
    for (uid, hash, _) in &people {
        ldif.push_str(&format!(
            "dn: uid={uid},ou=particuliers,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
             userPassword: {hash}\nentryUUID: {}\ncreatorsName: cn=admin,dc=cig,dc=fr\n\
             createTimestamp: 20240101000000Z\nentryCSN: 20240101000000.000000Z#000000#000#000000\n\n",
            uuid_for(uid)
        ));
    }
    let file = tmp.path().join("slapcat.ldif");
    std::fs::write(&file, ldif).unwrap();
    convergences::app::import(&cfg, &file).unwrap();
    let handle = convergences::app::start(cfg).await.unwrap();
    let url = format!("ldap://{}", handle.ldap_addr);
    for (uid, _, password) in &people {
        let dn_ = format!("uid={uid},ou=particuliers,dc=cig,dc=fr");
        for attempt in ["imported hash", "argon2id after the first bind"] {
            let mut ldap = connect(&url).await;
            let r = ldap.simple_bind(&dn_, password).await.unwrap();
            assert_eq!(r.rc, 0, "{uid} with its {attempt}");
            let wrong = ldap.simple_bind(&dn_, "not-the-password").await.unwrap();
            assert_eq!(wrong.rc, 49, "{uid}: a wrong password");
        }
        let stored = handle.directory.get(&dn(&dn_)).unwrap().unwrap();
        let value = stored.first_str("userPassword").unwrap().to_string();
        assert!(value.starts_with("{ARGON2}$argon2id$"), "{uid} was re-hashed: {value}");
    }
    handle.shutdown().await;
}

fn uuid_for(uid: &str) -> String {
    let n: u32 = uid.bytes().map(u32::from).sum();
    format!("00000000-0000-4000-8000-{n:012x}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failed_binds_lock_an_account_for_the_configured_time() {
    let srv = TestServer::start_with(|c| {
        c.password.max_failures = 3;
        c.password.lockout_secs = 2;
    })
    .await;
    let jdupont = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let demo = convergences::seed::DEMO_PASSWORD;
    let bind = |pw: &'static str| {
        let url = srv.url.clone();
        async move {
            let mut ldap = connect(&url).await;
            ldap.simple_bind(jdupont, pw).await.unwrap().rc
        }
    };
    for _ in 0..3 {
        assert_eq!(bind("pas-le-bon").await, 49);
    }
    // Locked: the right password is refused, exactly like a wrong one …
    assert_eq!(bind(demo).await, 49);
    // … and administrators see the lock.
    let mut admin = connect(&srv.url).await;
    admin.simple_bind("cn=admin,dc=cig,dc=fr", ADMIN_PASSWORD).await.unwrap().success().unwrap();
    let (entries, _) = admin
        .search(jdupont, Scope::Base, "(objectClass=*)", vec!["pwdAccountLockedTime"])
        .await
        .unwrap()
        .success()
        .unwrap();
    let e = SearchEntry::construct(entries[0].clone());
    assert!(e.attrs.contains_key("pwdAccountLockedTime"), "{e:?}");
    // An unknown DN answers the same, so failures tell nothing about which accounts exist.
    let mut probe = connect(&srv.url).await;
    let unknown =
        probe.simple_bind("uid=personne,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr", demo).await.unwrap();
    assert_eq!(unknown.rc, 49);
    assert_eq!(unknown.text, bind_text(&srv, jdupont, demo).await);
    // After the lock's duration the right password works again.
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    assert_eq!(bind(demo).await, 0);
    let (entries, _) = admin
        .search(jdupont, Scope::Base, "(objectClass=*)", vec!["pwdAccountLockedTime"])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert!(!SearchEntry::construct(entries[0].clone()).attrs.contains_key("pwdAccountLockedTime"));
}

async fn bind_text(srv: &TestServer, dn_: &str, pw: &str) -> String {
    let mut ldap = connect(&srv.url).await;
    ldap.simple_bind(dn_, pw).await.unwrap().text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_account_cannot_bind() {
    let srv = TestServer::start().await;
    let jdupont = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let off = Modification::new(ModOp::Replace, "cigActive", ["FALSE"]);
    srv.directory().modify(&actor(), &dn(jdupont), &[off]).unwrap();
    let mut ldap = connect(&srv.url).await;
    assert_eq!(ldap.simple_bind(jdupont, convergences::seed::DEMO_PASSWORD).await.unwrap().rc, 49);
}

/// Individual subscribers (ou=particuliers) have no référent: they read and
/// change only themselves, and only CIG administrators create them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_individual_subscriber_manages_only_itself() {
    let srv = TestServer::start().await;
    let lgarnier = "uid=lgarnier,ou=particuliers,dc=cig,dc=fr";
    let demo = convergences::seed::DEMO_PASSWORD;
    let mut ldap = connect(&srv.url).await;
    ldap.simple_bind(lgarnier, demo).await.unwrap().success().unwrap();
    let (own, _) = ldap.search(lgarnier, Scope::Base, "(objectClass=*)", vec!["*"]).await.unwrap().success().unwrap();
    assert_eq!(own.len(), 1);
    let (all, _) = ldap
        .search(SUFFIX, Scope::Subtree, "(objectClass=inetOrgPerson)", vec!["1.1"])
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(all.len(), 1, "only itself");
    let attrs = vec![
        ("objectClass", ["inetOrgPerson"].into_iter().collect()),
        ("uid", ["ami"].into_iter().collect()),
        ("cn", ["Ami"].into_iter().collect()),
        ("sn", ["Ami"].into_iter().collect()),
    ];
    assert_eq!(ldap.add("uid=ami,ou=particuliers,dc=cig,dc=fr", attrs).await.unwrap().rc, 50);
    let pm = PasswordModify { user_id: None, old_pass: Some(demo), new_pass: Some("Un-Abonnement-Sur-9") };
    assert_eq!(ldap.extended(pm).await.unwrap().1.rc, 0);
    // A référent of an organisation cannot see it.
    let mut referent = connect(&srv.url).await;
    referent
        .simple_bind("uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr", demo)
        .await
        .unwrap()
        .success()
        .unwrap();
    assert_eq!(referent.delete(lgarnier).await.unwrap().rc, 32);
}

/// `access_policy = "baseline"`: any authenticated identity reads everything
/// but password hashes; only administrators write (and everyone their own password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_policy_lets_every_bound_identity_read_all_but_hashes() {
    let srv = TestServer::start_with(|c| c.access_policy = "baseline".into()).await;
    let jdupont = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let demo = convergences::seed::DEMO_PASSWORD;
    let mut ldap = connect(&srv.url).await;
    ldap.simple_bind(jdupont, demo).await.unwrap().success().unwrap();
    let (all, _) = ldap.search(SUFFIX, Scope::Subtree, DEMO_PEOPLE, vec!["*"]).await.unwrap().success().unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.into_iter().map(SearchEntry::construct).all(|e| !e.attrs.contains_key("userPassword")));
    let m = vec![Mod::Replace("title", ["x"].into_iter().collect())];
    assert_eq!(ldap.modify(CMARTIN, m).await.unwrap().rc, 50);
    let mut anon = connect(&srv.url).await;
    assert_eq!(anon.search(SUFFIX, Scope::Subtree, DEMO_PEOPLE, vec!["1.1"]).await.unwrap().1.rc, 32);
}

/// `convergences audit --org` lists an organisation's changes, with who did them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_command_lists_an_organisations_changes() {
    let srv = TestServer::start().await;
    let mut ldap = connect(&srv.url).await;
    let hdupre = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    ldap.simple_bind(hdupre, convergences::seed::DEMO_PASSWORD).await.unwrap().success().unwrap();
    let m = vec![Mod::Replace("title", ["Gestionnaire RH"].into_iter().collect())];
    ldap.modify(CMARTIN, m).await.unwrap().success().unwrap();
    let m = vec![Mod::Replace("userPassword", ["Jamais-Dans-Le-Journal-1"].into_iter().collect())];
    ldap.modify(CMARTIN, m).await.unwrap().success().unwrap();
    let data = srv.tmp.path().display().to_string();
    let mut handle = srv;
    if let Some(h) = handle.handle.take() {
        h.shutdown().await;
    }
    let bin = env!("CARGO_BIN_EXE_convergences");
    let (code, out, err) =
        run(bin, &["audit", "--data", &data, "--org", "219400280", "--since", "2020-01-01"], None).await;
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.contains("title")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains(hdupre) && line.contains(CMARTIN) && line.contains("success"), "{line}");
    assert!(out.contains("userPassword") && !out.contains("Jamais-Dans-Le-Journal-1"), "never a password value: {out}");
    let (_, vitry, _) = run(bin, &["audit", "--data", &data, "--org", "217500016"], None).await;
    assert!(!vitry.contains(CMARTIN), "{vitry}");
}
