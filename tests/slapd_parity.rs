//! The same requests to the server and to a stock OpenLDAP slapd loaded with
//! the same LDIF, through OpenLDAP's ldap-utils and python's ldap3: the
//! answers clients notice (result codes, matchedDN, returned attributes,
//! response values) must be slapd's.

use std::collections::BTreeSet;

use crate::common::slapd::{ROOT_DN, ROOT_PASSWORD, Slapd};
use crate::common::{TestServer, client_script, have, have_python, run};

const AGENT: &str = "uid=hdupre,ou=Agents,dc=cig,dc=fr";
const AGENT_PASSWORD: &str = "agent-parity-secret";

/// Mixed case in the DNs on purpose: what is stored is not what clients type.
fn ldif() -> String {
    format!(
        "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: {ROOT_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: admin\n\
         userPassword: {ROOT_PASSWORD}\n\n\
         dn: ou=Agents,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: Agents\n\n\
         dn: {AGENT}\nobjectClass: inetOrgPerson\nuid: hdupre\ncn: Hélène Dupré\nsn: Dupré\n\
         givenName: Hélène\nemployeeNumber: 7\nuserPassword: {AGENT_PASSWORD}\n\n\
         dn: uid=mlefevre,ou=Agents,dc=cig,dc=fr\nobjectClass: inetOrgPerson\nuid: mlefevre\n\
         cn: Marc Lefèvre\nsn: Lefèvre\nemployeeNumber: 8\n\n\
         dn: cn=rh,ou=Agents,dc=cig,dc=fr\nobjectClass: groupOfNames\ncn: rh\nmember: {AGENT}\n"
    )
}

/// Both servers on the same data: (ours, slapd).
async fn twins() -> (TestServer, Slapd) {
    let ldif = ldif();
    // The stock slapd runs without the ppolicy overlay: ours without its
    // history and must-change rules, which it would add.
    let ours = TestServer::start_from_ldif_with(&ldif, |c| {
        c.password.history = 0;
        c.password.must_change_after_reset = false;
    })
    .await;
    let slapd = tokio::task::spawn_blocking(move || Slapd::start(&ldif)).await.unwrap();
    (ours, slapd)
}

/// slapd and these client tools, installed.
fn tools(names: &[&str]) -> bool {
    names.iter().all(|&t| if t == "slapd" { crate::common::slapd::installed() } else { have(t) })
}

/// An ldap-utils command against `url`, bound as the administrator.
async fn as_admin(cmd: &str, url: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut all = vec!["-x", "-H", url, "-D", ROOT_DN, "-w", ROOT_PASSWORD];
    if cmd == "ldapsearch" {
        all.extend(["-LLL", "-o", "ldif-wrap=no"]);
    }
    all.extend(args);
    run(cmd, &all, stdin).await
}

/// The attribute names of the entries an ldapsearch printed.
fn attribute_names(ldif: &str) -> BTreeSet<String> {
    ldif.lines()
        .filter(|l| !l.is_empty() && !l.starts_with(' ') && !l.starts_with("dn:") && !l.starts_with('#'))
        .filter_map(|l| l.split(':').next())
        .map(|n| n.to_ascii_lowercase())
        .collect()
}

/// The DNs an ldapsearch printed.
fn dns(ldif: &str) -> Vec<String> {
    ldif.lines().filter_map(|l| l.strip_prefix("dn: ")).map(str::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_modify_answers_as_rfc_3062_says() {
    if !tools(&["slapd", "ldappasswd"]) || !have_python(&["ldap3"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        // ldappasswd as the agent, old and new given: success, no value to scan.
        let (code, out, err) = run(
            "ldappasswd",
            &["-x", "-H", url, "-D", AGENT, "-w", AGENT_PASSWORD, "-a", AGENT_PASSWORD, "-s", "Nouveau-1-secret"],
            None,
        )
        .await;
        assert_eq!(code, 0, "{url}: {out}{err}");
        assert!(!err.contains("ber_scanf"), "{url}: {err}");
        // python's ldap3: the change, then a reset the server generates.
        let (code, out, err) = run(
            "python3",
            &[
                &client_script("password_modify.py"),
                url,
                AGENT,
                "Nouveau-1-secret",
                AGENT_PASSWORD,
                ROOT_DN,
                ROOT_PASSWORD,
            ],
            None,
        )
        .await;
        assert_eq!(code, 0, "{url}: {out}{err}");
        assert!(out.contains("own change: True success"), "{url}: {out}");
        assert!(out.contains("reset: generated success"), "{url}: {out}");
        assert!(out.contains("generated password binds"), "{url}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bind_dn_that_does_not_parse_is_invalid_dn_syntax() {
    if !tools(&["slapd", "ldapwhoami"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (code, _, err) = run("ldapwhoami", &["-x", "-H", url, "-D", "pas un DN", "-w", "x"], None).await;
        assert_eq!(code, 34, "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_such_object_on_add_and_modify_names_the_deepest_existing_entry() {
    if !tools(&["slapd", "ldapadd", "ldapmodify"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let orphan = "dn: uid=x,ou=absent,dc=cig,dc=fr\nobjectClass: inetOrgPerson\ncn: x\nsn: x\n";
    let missing = "dn: uid=absent,ou=agents,dc=cig,dc=fr\nchangetype: modify\nreplace: description\ndescription: y\n";
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (code, _, err) = as_admin("ldapadd", url, &[], Some(orphan)).await;
        assert_eq!(code, 32, "{url}: {err}");
        assert!(err.contains("matched DN: dc=cig,dc=fr"), "{url}: {err}");
        let (code, _, err) = as_admin("ldapmodify", url, &[], Some(missing)).await;
        assert_eq!(code, 32, "{url}: {err}");
        // The ancestor as stored, not as the request spelled it.
        assert!(err.contains("matched DN: ou=Agents,dc=cig,dc=fr"), "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_add_without_its_rdn_values_gets_them() {
    if !tools(&["slapd", "ldapadd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let entry = "dn: uid=sansrdn,ou=Agents,dc=cig,dc=fr\nobjectClass: inetOrgPerson\ncn: Sans Rdn\nsn: Rdn\n";
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (code, _, err) = as_admin("ldapadd", url, &[], Some(entry)).await;
        assert_eq!(code, 0, "{url}: {err}");
        let (_, out, _) =
            as_admin("ldapsearch", url, &["-b", "uid=sansrdn,ou=Agents,dc=cig,dc=fr", "-s", "base", "uid"], None).await;
        assert!(out.contains("uid: sansrdn"), "{url}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordering_and_substrings_without_the_rule_match_nothing() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    // employeeNumber has no ORDERING rule, objectClass no SUBSTR rule:
    // Undefined (RFC 4511 §4.5.1.7), and so is its negation.
    for filter in ["(employeeNumber>=1)", "(employeeNumber<=9)", "(objectClass=inet*)", "(!(employeeNumber>=1))"] {
        for url in [ours.url.as_str(), slapd.url.as_str()] {
            let (code, out, err) = as_admin("ldapsearch", url, &["-b", "dc=cig,dc=fr", filter, "1.1"], None).await;
            assert_eq!(code, 0, "{url} {filter}: {err}");
            assert!(dns(&out).is_empty(), "{url} {filter}: {out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_class_in_the_attribute_list_selects_its_attributes() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let mut answers = Vec::new();
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (code, out, err) =
            as_admin("ldapsearch", url, &["-b", AGENT, "-s", "base", "@organizationalPerson"], None).await;
        assert_eq!(code, 0, "{url}: {err}");
        answers.push(attribute_names(&out));
    }
    assert_eq!(answers[0], answers[1], "ours, then slapd's");
    assert!(answers[0].contains("sn") && !answers[0].contains("uid") && !answers[0].contains("employeenumber"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_the_entry_whatever_the_spelling_of_its_dn() {
    if !tools(&["slapd", "ldapwhoami", "ldapmodify", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let spellings = [AGENT, "UID=HDupre, OU=agents,DC=CIG,dc=fr"];
    let passwords = [AGENT_PASSWORD, "Parite-Agent-2026!a", "Parite-Agent-2026!b"];
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let mut seen = BTreeSet::new();
        for (i, who) in spellings.into_iter().enumerate() {
            let (now, next) = (passwords[i], passwords[i + 1]);
            let (code, out, err) = run("ldapwhoami", &["-x", "-H", url, "-D", who, "-w", now], None).await;
            assert_eq!(code, 0, "{url} {who}: {err}");
            seen.insert(out.trim().to_string());
            // The agent changes their password under this spelling: one name in modifiersName.
            let change = format!("dn: {AGENT}\nchangetype: modify\nreplace: userPassword\nuserPassword: {next}\n");
            let (code, _, err) = run("ldapmodify", &["-x", "-H", url, "-D", who, "-w", now], Some(&change)).await;
            assert_eq!(code, 0, "{url} {who}: {err}");
            let (_, out, _) = as_admin("ldapsearch", url, &["-b", AGENT, "-s", "base", "modifiersName"], None).await;
            seen.insert(out.lines().find(|l| l.starts_with("modifiersName")).unwrap_or_default().to_string());
        }
        assert_eq!(seen.len(), 2, "{url}: one identity, whatever the spelling: {seen:?}");
    }
    // Ours names the entry as stored (slapd gives its normalised form).
    let (_, out, _) = run("ldapwhoami", &["-x", "-H", &ours.url, "-D", spellings[1], "-w", passwords[2]], None).await;
    assert_eq!(out.trim(), format!("dn:{AGENT}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_root_dse_advertises_what_both_implement() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (_, out, _) = run("ldapsearch", &["-x", "-LLL", "-H", url, "-b", "", "-s", "base", "+"], None).await;
        for control in ["1.3.6.1.1.12", "1.3.6.1.1.13.1", "1.3.6.1.1.13.2", "1.2.840.113556.1.4.319"] {
            assert!(out.contains(&format!("supportedControl: {control}\n")), "{url} {control}: {out}");
        }
        assert!(out.contains("supportedFeatures: 1.3.6.1.1.14\n"), "{url}: {out}");
        // No attribute list: the root DSE's user attributes, objectClass only (RFC 4512 §5.1).
        let (_, out, _) = run("ldapsearch", &["-x", "-LLL", "-H", url, "-b", "", "-s", "base"], None).await;
        assert_eq!(attribute_names(&out), BTreeSet::from(["objectclass".to_string()]), "{url}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subschema_carries_matching_rule_use_and_timestamps() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (_, out, _) = run(
            "ldapsearch",
            &["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-b", "cn=Subschema", "-s", "base", "+"],
            None,
        )
        .await;
        for attr in
            ["matchingRuleUse: ( 2.5.13.2 NAME 'caseIgnoreMatch' APPLIES", "createTimestamp: ", "modifyTimestamp: "]
        {
            assert!(out.contains(attr), "{url} {attr}");
        }
        let (_, out, _) = run("ldapsearch", &["-x", "-LLL", "-H", url, "-b", "cn=Subschema", "-s", "base"], None).await;
        assert!(!out.contains("attributeTypes"), "{url}: operational, not returned unasked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_groups_last_member_is_an_object_class_violation() {
    if !tools(&["slapd", "ldapmodify"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let change = format!("dn: cn=rh,ou=Agents,dc=cig,dc=fr\nchangetype: modify\ndelete: member\nmember: {AGENT}\n");
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (code, _, err) = as_admin("ldapmodify", url, &[], Some(&change)).await;
        assert_eq!(code, 65, "{url}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approximate_match_finds_french_names_typed_without_accents() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for (filter, uid) in [("(sn~=dupre)", "hdupre"), ("(sn~=lefevre)", "mlefevre"), ("(cn~=Marc Lefevre)", "mlefevre")]
    {
        for url in [ours.url.as_str(), slapd.url.as_str()] {
            let (code, out, err) = as_admin("ldapsearch", url, &["-b", "dc=cig,dc=fr", filter, "1.1"], None).await;
            assert_eq!(code, 0, "{url}: {err}");
            assert_eq!(dns(&out).len(), 1, "{url} {filter}: {out}");
            assert!(out.to_lowercase().contains(&format!("uid={uid},")), "{url} {filter}: {out}");
        }
    }
    // Folding, not guessing: another name is not found.
    let (_, out, _) = as_admin("ldapsearch", &ours.url, &["-b", "dc=cig,dc=fr", "(sn~=dupont)", "1.1"], None).await;
    assert!(dns(&out).is_empty(), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn critical_controls_are_honoured_or_refused_as_slapd_does() {
    if !tools(&["slapd", "ldapsearch", "ldapmodify"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    let change = |v: &str| format!("dn: {AGENT}\nchangetype: modify\nreplace: description\ndescription: {v}\n");
    // RFC 4533 Sync Request, critical as every slapd consumer sends it: this
    // server is a provider (tests/replication.rs); a slapd without syncprov refuses it.
    for (url, want) in [(ours.url.as_str(), 0), (slapd.url.as_str(), 12)] {
        let (code, _, err) =
            as_admin("ldapsearch", url, &["-E", "!sync=ro", "-b", "dc=cig,dc=fr", "(uid=hdupre)", "1.1"], None).await;
        assert_eq!(code, want, "{url}: {err}");
    }
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        // Assertion and Post-read, critical: honoured.
        let (code, out, err) = as_admin(
            "ldapmodify",
            url,
            &["-e", "!assert=(sn=Dupré)", "-e", "!postread=description"],
            Some(&change("x")),
        )
        .await;
        assert_eq!(code, 0, "{url}: {err}");
        assert!(out.contains("description: x"), "{url}: {out}");
        let (code, _, err) = as_admin("ldapmodify", url, &["-e", "!assert=(sn=Autre)"], Some(&change("y"))).await;
        assert_eq!(code, 122, "{url}: {err}");
        let (code, out, err) = as_admin("ldapmodify", url, &["-e", "!preread=description"], Some(&change("z"))).await;
        assert_eq!(code, 0, "{url}: {err}");
        assert!(out.contains("description: x"), "{url}: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_entries_name_the_administrator_as_creator() {
    if !tools(&["slapd", "ldapsearch"]) {
        return;
    }
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let (_, out, _) =
            as_admin("ldapsearch", url, &["-b", AGENT, "-s", "base", "creatorsName", "modifiersName"], None).await;
        assert!(out.contains(&format!("creatorsName: {ROOT_DN}")), "{url}: {out}");
        assert!(out.contains(&format!("modifiersName: {ROOT_DN}")), "{url}: {out}");
    }
}

/// A client that sends a response PDU gets a Notice of Disconnection, then
/// the connection closes (RFC 4511 §4.4.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notice_of_disconnection_is_followed_by_the_close() {
    if !tools(&["slapd"]) {
        return;
    }
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (ours, slapd) = twins().await;
    for url in [ours.url.as_str(), slapd.url.as_str()] {
        let addr = url.trim_start_matches("ldap://").to_string();
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // A DelResponse, message 5.
        s.write_all(&[0x30, 0x0c, 0x02, 0x01, 0x05, 0x6b, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00])
            .await
            .unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "{url}: the connection stays open");
        // SEQUENCE { messageID 0, ExtendedResponse … responseName 1.3.6.1.4.1.1466.20036 }
        assert_eq!(&got[2..5], &[0x02, 0x01, 0x00], "{url}: {got:02x?}");
        assert!(got.windows(22).any(|w| w == b"1.3.6.1.4.1.1466.20036"), "{url}: {got:02x?}");
    }
}
