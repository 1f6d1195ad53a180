//! The server over the network with OpenLDAP's command-line clients.

use crate::common::*;

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

async fn ldapsearch(srv: &TestServer, bind: Option<(&str, &str)>, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["-x", "-LLL", "-o", "ldif-wrap=no", "-H", srv.url.as_str()];
    if let Some((dn, pw)) = bind {
        all.extend(["-D", dn, "-w", pw]);
    }
    all.extend(args);
    run("ldapsearch", &all, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_clients_read_the_root_dse_and_the_subschema_only() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let (code, out, _) = ldapsearch(&srv, None, &["-b", "", "-s", "base", "+"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("namingContexts: dc=cig,dc=fr"), "{out}");
    assert!(out.contains("supportedLDAPVersion: 3"));
    assert!(out.contains("subschemaSubentry: cn=Subschema"));
    let (code, out, _) = ldapsearch(&srv, None, &["-b", "cn=subschema", "-s", "base", "+"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("attributeTypes: ( 2.5.4.3 NAME ( 'cn' 'commonName' )"), "{}", &out[..out.len().min(500)]);
    assert!(out.contains("NAME 'cigOrganisation'"));
    // Anything else looks like nothing is there.
    let (code, out, _) = ldapsearch(&srv, None, &["-b", "dc=cig,dc=fr", "(uid=hdupre)"]).await;
    assert_eq!(code, 32, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_bind_checks_the_password_and_hides_which_part_was_wrong() {
    if !have("ldapwhoami") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let (code, out, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", ADMIN, "-w", ADMIN_PASSWORD], None).await;
    assert_eq!(code, 0);
    assert_eq!(out.trim(), format!("dn:{ADMIN}"));
    let (code, _, err) = run("ldapwhoami", &["-x", "-H", &url, "-D", ADMIN, "-w", "wrong"], None).await;
    assert_eq!(code, 49, "{err}");
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", "uid=nobody,dc=cig,dc=fr", "-w", "x"], None).await;
    assert_eq!(code, 49);
    let (code, out, _) = run("ldapwhoami", &["-x", "-H", &url], None).await;
    assert_eq!((code, out.trim()), (0, "anonymous"));
    // A demo agent binds with the demo password.
    let (code, _, _) =
        run("ldapwhoami", &["-x", "-H", &url, "-D", HDUPRE, "-w", convergences::seed::DEMO_PASSWORD], None).await;
    assert_eq!(code, 0);
    // A disabled agent (cigActive: FALSE) cannot bind any more.
    let dir = srv.directory();
    let m = convergences::directory::Modification::new(convergences::directory::ModOp::Replace, "cigActive", ["FALSE"]);
    dir.modify(&actor(), &dn(HDUPRE), &[m]).unwrap();
    let (code, _, _) =
        run("ldapwhoami", &["-x", "-H", &url, "-D", HDUPRE, "-w", convergences::seed::DEMO_PASSWORD], None).await;
    assert_eq!(code, 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_finds_an_agent_by_uid_and_application_membership() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let svc = ("cn=bip,ou=services,dc=cig,dc=fr", convergences::seed::DEMO_PASSWORD);
    let (code, out, err) = ldapsearch(
        &srv,
        Some(svc),
        &[
            "-b",
            "dc=cig,dc=fr",
            "(&(uid=hdupre)(memberOf=cn=bip,ou=applications,dc=cig,dc=fr))",
            "cn",
            "mail",
            "userPassword",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("dn: {HDUPRE}")), "{out}");
    assert!(out.contains("cn:: SMOpbMOobmUgRHVwcsOp"), "{out}");
    assert!(!out.contains("userPassword"), "only administrators read password hashes");
    let (_, out, _) = ldapsearch(
        &srv,
        Some(svc),
        &["-b", "dc=cig,dc=fr", "(&(uid=floeuvre)(memberOf=cn=snapi-cap,ou=applications,dc=cig,dc=fr))"],
    )
    .await;
    assert!(!out.contains("dn:"), "floeuvre's organisation does not subscribe to SNAPI-CAP");
    // Size limit: partial results, then sizeLimitExceeded (4).
    let (code, out, _) = ldapsearch(&srv, Some(svc), &["-z", "2", "-b", "dc=cig,dc=fr", "(uid=*)", "1.1"]).await;
    assert_eq!(code, 4);
    assert_eq!(out.matches("dn:").count(), 2);
    // noSuchObject with the matched DN.
    let (code, _, err) = ldapsearch(&srv, Some(svc), &["-b", "ou=nowhere,ou=organisations,dc=cig,dc=fr"]).await;
    assert_eq!(code, 32);
    assert!(err.contains("Matched DN: ou=organisations,dc=cig,dc=fr"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_adds_modifies_renames_compares_and_deletes() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let admin = ["-x", "-H", url.as_str(), "-D", ADMIN, "-w", ADMIN_PASSWORD];
    let with = |extra: &[&'static str]| -> Vec<String> { admin.iter().chain(extra).map(|s| s.to_string()).collect() };

    let add = "dn: uid=mlefevre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nobjectClass: cigAgent\nuid: mlefevre\ncn: Marie Lefèvre\nsn: Lefèvre\nuserPassword: premier-mot-de-passe\n";
    let v = with(&[]);
    let (code, _, err) = run("ldapadd", &args(&v), Some(add)).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run("ldapadd", &args(&v), Some(add)).await;
    assert_eq!(code, 68, "entryAlreadyExists");
    let (code, _, err) = run("ldapadd", &args(&v), Some("dn: uid=x,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nuid: x\ncn: x\n")).await;
    assert_eq!(code, 65, "objectClassViolation: {err}");
    assert!(err.contains("sn"), "the diagnostic names the missing attribute: {err}");

    // The plain-text password was hashed, and binds.
    let dn = "uid=mlefevre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", dn, "-w", "premier-mot-de-passe"], None).await;
    assert_eq!(code, 0);
    let (_, out, _) = ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-b", dn, "-s", "base", "userPassword"]).await;
    assert!(out.contains("userPassword:: "), "{out}");
    assert!(!out.contains("premier"), "{out}");

    let modify = format!(
        "dn: {dn}\nchangetype: modify\nreplace: title\ntitle: Gestionnaire RH\n-\nadd: mail\nmail: mlefevre@creteil.example.fr\n-\n"
    );
    let (code, _, err) = run("ldapmodify", &args(&v), Some(&modify)).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run(
        "ldapmodify",
        &args(&v),
        Some(&format!("dn: {dn}\nchangetype: modify\nadd: cigActive\ncigActive: TRUE\ncigActive: FALSE\n-\n")),
    )
    .await;
    assert_eq!(code, 19, "constraintViolation on a second value of a single-valued attribute");
    let (code, _, _) =
        run("ldapmodify", &args(&v), Some(&format!("dn: {dn}\nchangetype: modify\nadd: shoeSize\nshoeSize: 42\n-\n")))
            .await;
    assert_eq!(code, 17, "undefinedAttributeType");

    let cmp = with(&[]);
    let mut c = args(&cmp);
    c.extend([dn, "title:gestionnaire rh"]);
    let (code, _, _) = run("ldapcompare", &c, None).await;
    assert_eq!(code, 6, "compareTrue");
    let mut c = args(&cmp);
    c.extend([dn, "title:autre"]);
    let (code, _, _) = run("ldapcompare", &c, None).await;
    assert_eq!(code, 5, "compareFalse");

    // Grant BIP, then rename: the application group follows.
    let grant = format!("dn: cn=bip,ou=applications,dc=cig,dc=fr\nchangetype: modify\nadd: member\nmember: {dn}\n-\n");
    assert_eq!(run("ldapmodify", &args(&v), Some(&grant)).await.0, 0);
    let mut r = args(&v);
    r.extend(["-r", dn, "uid=mlefevre2"]);
    let (code, _, err) = run("ldapmodrdn", &r, None).await;
    assert_eq!(code, 0, "{err}");
    let new_dn = "uid=mlefevre2,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
    let (_, out, _) = ldapsearch(
        &srv,
        Some((ADMIN, ADMIN_PASSWORD)),
        &["-b", "cn=bip,ou=applications,dc=cig,dc=fr", "-s", "base", "member"],
    )
    .await;
    assert!(out.contains(&format!("member: {new_dn}")), "{out}");

    let mut d = args(&v);
    d.push("ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr");
    assert_eq!(run("ldapdelete", &d, None).await.0, 66, "notAllowedOnNonLeaf");
    let mut d = args(&v);
    d.push(new_dn);
    assert_eq!(run("ldapdelete", &d, None).await.0, 0);
    let (_, out, _) = ldapsearch(
        &srv,
        Some((ADMIN, ADMIN_PASSWORD)),
        &["-b", "cn=bip,ou=applications,dc=cig,dc=fr", "-s", "base", "member"],
    )
    .await;
    assert!(!out.contains("mlefevre"), "the deleted agent left the group: {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_cannot_change_its_own_entry_and_anonymous_cannot_write() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let pw = convergences::seed::DEMO_PASSWORD;
    let change = format!("dn: {JDUPONT}\nchangetype: modify\nreplace: title\ntitle: x\n-\n");
    let (code, _, err) = run("ldapmodify", &["-x", "-H", &url, "-D", JDUPONT, "-w", pw], Some(&change)).await;
    assert_eq!(code, 50, "insufficientAccessRights: {err}");
    // Anonymous sees nothing, so the entry is not there for it.
    let (code, _, _) = run("ldapmodify", &["-x", "-H", &url], Some(&change)).await;
    assert_eq!(code, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_pdu_ends_only_that_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = TestServer::start().await;
    let addr = srv.handle.as_ref().unwrap().ldap_addr;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x30, 0x05, 0x02, 0x01, 0x01, 0x77, 0x00]).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await.unwrap();
    // A Notice of Disconnection (OID 1.3.6.1.4.1.1466.20036) came back before the close.
    assert!(buf.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"), "{buf:?}");
    // The server still answers others.
    if have("ldapsearch") {
        let (code, _, _) = ldapsearch(&srv, None, &["-b", "", "-s", "base"]).await;
        assert_eq!(code, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldapsearch_pages_and_sorts() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let admin = Some((ADMIN, ADMIN_PASSWORD));
    // Pages of 2 over the five demo agents, without prompting between pages.
    let (code, out, err) = ldapsearch(
        &srv,
        admin,
        &["-E", "pr=2/noprompt", "-b", "ou=organisations,dc=cig,dc=fr", "(objectClass=inetOrgPerson)", "uid"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("dn: uid=").count(), 5, "{out}");
    // Sorted by sn, then reversed.
    let sns = |out: &str| -> Vec<String> {
        out.lines()
            .filter_map(|l| l.strip_prefix("sn: ").or_else(|| l.strip_prefix("sn:: ")))
            .map(str::to_string)
            .collect()
    };
    let (code, out, err) = ldapsearch(
        &srv,
        admin,
        &["-E", "sss=sn", "-b", "ou=organisations,dc=cig,dc=fr", "(objectClass=inetOrgPerson)", "sn"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let asc = sns(&out);
    assert_eq!(asc.len(), 5);
    assert_eq!(asc[0], "Ben Ali");
    let (_, out, _) = ldapsearch(
        &srv,
        admin,
        &["-E", "sss=-sn", "-b", "ou=organisations,dc=cig,dc=fr", "(objectClass=inetOrgPerson)", "sn"],
    )
    .await;
    let mut desc = sns(&out);
    desc.reverse();
    assert_eq!(desc, asc);
    // Both at once.
    let (code, out, _) = ldapsearch(
        &srv,
        admin,
        &[
            "-E",
            "sss=uid",
            "-E",
            "pr=3/noprompt",
            "-b",
            "ou=organisations,dc=cig,dc=fr",
            "(objectClass=inetOrgPerson)",
            "uid",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let uids: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("uid: ")).collect();
    assert_eq!(uids, ["cmartin", "floeuvre", "hdupre", "jdupont", "nbenali"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ldappasswd_changes_a_password() {
    if !have("ldappasswd") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let demo = convergences::seed::DEMO_PASSWORD;
    let (code, _, err) =
        run("ldappasswd", &["-x", "-H", &url, "-D", HDUPRE, "-w", demo, "-a", demo, "-s", "encore-nouveau"], None)
            .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", HDUPRE, "-w", "encore-nouveau"], None).await;
    assert_eq!(code, 0);
    // An administrator lets the server generate one, printed by ldappasswd.
    let (code, out, err) =
        run("ldappasswd", &["-x", "-H", &url, "-D", ADMIN, "-w", ADMIN_PASSWORD, HDUPRE], None).await;
    assert_eq!(code, 0, "{err}");
    let generated = out.trim().strip_prefix("New password: ").unwrap().to_string();
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", HDUPRE, "-w", &generated], None).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_and_ldaps_work_with_the_generated_ca() {
    if !have("ldapwhoami") {
        return;
    }
    let srv = TestServer::start().await;
    let h = srv.handle.as_ref().unwrap();
    let ca = h.tls.ca.as_ref().unwrap().display().to_string();
    assert!(h.tls.generated);
    let env = [("LDAPTLS_CACERT", ca.as_str()), ("LDAPTLS_REQCERT", "demand")];
    let plain = format!("ldap://127.0.0.1:{}", h.ldap_addr.port());
    let tls = format!("ldaps://127.0.0.1:{}", h.ldaps_addr.port());
    // -ZZ: StartTLS must succeed, then bind.
    let (code, out, err) =
        run_env("ldapwhoami", &["-x", "-ZZ", "-H", &plain, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("dn:{ADMIN}"));
    let (code, out, err) = run_env(
        "ldapsearch",
        &["-x", "-ZZ", "-LLL", "-H", &plain, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", HDUPRE, "-s", "base", "uid"],
        None,
        &env,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("uid: hdupre"));
    // LDAPS on its own port.
    let (code, out, err) =
        run_env("ldapwhoami", &["-x", "-H", &tls, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("dn:{ADMIN}"));
    // StartTLS over LDAPS is refused (TLS already there): -ZZ fails.
    let (code, _, _) =
        run_env("ldapwhoami", &["-x", "-ZZ", "-H", &tls, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_ne!(code, 0);
    // A client that does not trust the CA refuses the server.
    let (code, _, _) = run_env(
        "ldapwhoami",
        &["-x", "-H", &tls],
        None,
        &[("LDAPTLS_CACERT", "/dev/null"), ("LDAPTLS_REQCERT", "demand")],
    )
    .await;
    assert_ne!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_binds_can_be_required_to_use_tls() {
    if !have("ldapwhoami") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.demo = true;
    cfg.admin_password = Some(ADMIN_PASSWORD.into());
    cfg.require_tls_for_bind = true;
    let h = convergences::app::start(cfg).await.unwrap();
    let ca = h.tls.ca.as_ref().unwrap().display().to_string();
    let env = [("LDAPTLS_CACERT", ca.as_str())];
    let plain = format!("ldap://127.0.0.1:{}", h.ldap_addr.port());
    let (code, _, err) =
        run_env("ldapwhoami", &["-x", "-H", &plain, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_eq!(code, 13, "confidentialityRequired: {err}");
    let (code, _, err) =
        run_env("ldapwhoami", &["-x", "-ZZ", "-H", &plain, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_eq!(code, 0, "{err}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assertion_and_read_entry_controls_work_with_ldapmodify() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let admin = ["-x", "-H", url.as_str(), "-D", ADMIN, "-w", ADMIN_PASSWORD];
    let change = |title: &str| format!("dn: {HDUPRE}\nchangetype: modify\nreplace: title\ntitle: {title}\n-\n");
    let mut a: Vec<&str> = admin.to_vec();
    a.extend(["-e", "assert=(sn=Dupré)", "-e", "preread=sn,title", "-e", "postread=title"]);
    let (code, out, err) = run("ldapmodify", &a, Some(&change("Cheffe"))).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("# ==> preread") && out.contains("# ==> postread"), "{out}");
    assert!(out.contains("title: Cheffe"), "{out}");
    // RFC 4528: a false assertion leaves the entry alone.
    let mut a: Vec<&str> = admin.to_vec();
    a.extend(["-e", "assert=(sn=Martin)"]);
    let (code, _, _) = run("ldapmodify", &a, Some(&change("Autre"))).await;
    assert_eq!(code, 122, "assertionFailed");
    let (_, out, _) = ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-b", HDUPRE, "-s", "base", "title"]).await;
    assert!(out.contains("title: Cheffe"), "{out}");
    // On a search, the assertion applies to the base entry.
    let (code, _, _) =
        ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-e", "assert=(sn=Martin)", "-b", HDUPRE, "-s", "base"])
            .await;
    assert_eq!(code, 122);
    // An unknown critical control is refused, a non-critical one ignored.
    let (code, _, _) =
        ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-e", "!1.2.3.4", "-b", HDUPRE, "-s", "base"]).await;
    assert_eq!(code, 12);
    let (code, _, _) =
        ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-e", "1.2.3.4", "-b", HDUPRE, "-s", "base"]).await;
    assert_eq!(code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_external_binds_as_the_client_certificate_subject() {
    if !have("ldapwhoami") {
        return;
    }
    // A client CA of the organisation's PKI, and a certificate for Hélène.
    let tmp = tempfile::tempdir().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Clients CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    // What a PKI issues: not the LDAP DN, but a subject carrying the uid.
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CountryName, "FR");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Commune de Créteil");
    params.distinguished_name.push(rcgen::DnType::CommonName, "Hélène Dupré");
    params.distinguished_name.push(rcgen::DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]), "hdupre");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let (ca_file, cert_file, key_file) =
        (tmp.path().join("ca.pem"), tmp.path().join("c.pem"), tmp.path().join("k.pem"));
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();

    let data = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(data.path());
    cfg.demo = true;
    cfg.admin_password = Some(ADMIN_PASSWORD.into());
    cfg.tls_client_ca = Some(ca_file.clone());
    let h = convergences::app::start(cfg).await.unwrap();
    let server_ca = h.tls.ca.as_ref().unwrap().display().to_string();
    let url = format!("ldaps://127.0.0.1:{}", h.ldaps_addr.port());
    let (cert_s, key_s) = (cert_file.display().to_string(), key_file.display().to_string());
    let env =
        [("LDAPTLS_CACERT", server_ca.as_str()), ("LDAPTLS_CERT", cert_s.as_str()), ("LDAPTLS_KEY", key_s.as_str())];
    let (code, out, err) = run_env("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None, &env).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("dn:{HDUPRE}"));
    // Without a certificate, EXTERNAL has nothing to go on; passwords still work.
    let env = [("LDAPTLS_CACERT", server_ca.as_str())];
    let (code, _, _) = run_env("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None, &env).await;
    assert_ne!(code, 0);
    let (code, _, err) =
        run_env("ldapwhoami", &["-x", "-H", &url, "-D", ADMIN, "-w", ADMIN_PASSWORD], None, &env).await;
    assert_eq!(code, 0, "{err}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_pdu_is_refused_before_it_is_buffered_whole() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = convergences::config::Config::for_test(tmp.path());
    cfg.limits.max_pdu_bytes = 4096;
    let h = convergences::app::start(cfg).await.unwrap();
    let mut s = tokio::net::TcpStream::connect(h.ldap_addr).await.unwrap();
    // A message announcing 16 MiB; only 20 KiB follow and the server must not wait for the rest.
    s.write_all(&[0x30, 0x84, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01, 0x01]).await.unwrap();
    let _ = s.write_all(&vec![0u8; 20 * 1024]).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await.unwrap();
    assert!(buf.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"), "{buf:?}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_hash_cannot_be_probed_by_others() {
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let svc = Some(("cn=bip,ou=services,dc=cig,dc=fr", convergences::seed::DEMO_PASSWORD));
    for f in ["(userPassword=*)", "(userPassword={ARGON2}*)", "(!(userPassword=x))", "(&(uid=hdupre)(userPassword=*))"]
    {
        let (code, out, _) = ldapsearch(&srv, svc, &["-b", "dc=cig,dc=fr", f, "1.1"]).await;
        assert_eq!(code, 0);
        assert!(!out.contains("dn:"), "{f} matched: {out}");
    }
    let (_, out, _) =
        ldapsearch(&srv, Some((ADMIN, ADMIN_PASSWORD)), &["-b", "dc=cig,dc=fr", "(userPassword=*)", "1.1"]).await;
    assert!(out.contains("dn:"), "an administrator still can");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_changes_its_own_password_with_ldapmodify() {
    if !have("ldapmodify") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let demo = convergences::seed::DEMO_PASSWORD;
    let own =
        format!("dn: {JDUPONT}\nchangetype: modify\nreplace: userPassword\nuserPassword: mon-nouveau-secret\n-\n");
    let (code, _, err) = run("ldapmodify", &["-x", "-H", &url, "-D", JDUPONT, "-w", demo], Some(&own)).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, _) = run("ldapwhoami", &["-x", "-H", &url, "-D", JDUPONT, "-w", "mon-nouveau-secret"], None).await;
    assert_eq!(code, 0);
    // Not someone else's (an entry it cannot see), and not another attribute of its own.
    let other = format!("dn: {HDUPRE}\nchangetype: modify\nreplace: userPassword\nuserPassword: un-autre-secret\n-\n");
    let (code, _, _) =
        run("ldapmodify", &["-x", "-H", &url, "-D", JDUPONT, "-w", "mon-nouveau-secret"], Some(&other)).await;
    assert_eq!(code, 32);
    let mixed = format!(
        "dn: {JDUPONT}\nchangetype: modify\nreplace: userPassword\nuserPassword: y\n-\nreplace: title\ntitle: x\n-\n"
    );
    let (code, _, _) =
        run("ldapmodify", &["-x", "-H", &url, "-D", JDUPONT, "-w", "mon-nouveau-secret"], Some(&mixed)).await;
    assert_eq!(code, 50);
}

/// StartTLS goes through the dispatcher like any operation: it is counted in
/// the metrics, and a critical control it cannot honour refuses it (RFC 4511
/// §4.1.11) instead of upgrading the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_an_operation_like_the_others() {
    use futures_util::{SinkExt, StreamExt};
    use ldap3_proto::control::LdapControl;
    use ldap3_proto::proto::{LdapExtendedRequest, LdapMsg, LdapOp, LdapResultCode};
    if !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let h = srv.handle.as_ref().unwrap();
    let ca = h.tls.ca.as_ref().unwrap().display().to_string();
    let env = [("LDAPTLS_CACERT", ca.as_str()), ("LDAPTLS_REQCERT", "demand")];
    let plain = format!("ldap://127.0.0.1:{}", h.ldap_addr.port());
    let metrics = format!("http://{}/metrics", h.scim_http_addr.unwrap());
    let extended_ok = || async {
        let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
        let series = "convergences_ldap_operations_total{op=\"extended\",result=\"0\"}";
        text.lines().find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse::<f64>().ok())).unwrap_or(0.0)
    };
    // A search over StartTLS: the only extended operation is StartTLS itself.
    let before = extended_ok().await;
    let (code, _, err) =
        run_env("ldapsearch", &["-x", "-ZZ", "-H", &plain, "-b", "", "-s", "base", "1.1"], None, &env).await;
    assert_eq!(code, 0, "{err}");
    assert!(extended_ok().await > before, "StartTLS is counted");
    // A critical control it cannot honour: refused, and the connection stays as it was.
    let tcp = tokio::net::TcpStream::connect(h.ldap_addr).await.unwrap();
    let mut framed = tokio_util::codec::Framed::new(tcp, ldap3_proto::LdapCodec::default());
    let starttls = LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.1466.20037".into(), value: None });
    let ctrl = vec![LdapControl::Unknown { oid: "1.2.3.4.5".into(), criticality: true, value: None }];
    framed.send(LdapMsg { msgid: 1, op: starttls, ctrl }).await.unwrap();
    let LdapOp::ExtendedResponse(r) = framed.next().await.unwrap().unwrap().op else {
        panic!("not an ExtendedResponse")
    };
    assert_eq!(r.res.code, LdapResultCode::UnavailableCriticalExtension, "{}", r.res.message);
    let whoami = LdapOp::ExtendedRequest(LdapExtendedRequest { name: "1.3.6.1.4.1.4203.1.11.3".into(), value: None });
    framed.send(LdapMsg::new(2, whoami)).await.unwrap();
    let LdapOp::ExtendedResponse(r) = framed.next().await.unwrap().unwrap().op else {
        panic!("not an ExtendedResponse")
    };
    assert_eq!(r.res.code, LdapResultCode::Success, "still plain LDAP");
}
