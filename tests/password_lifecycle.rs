//! The password policy to the end (issue 21 §4), in the draft's vocabulary
//! so that ldap-utils and python ldap3 read it: maximum age and its warning,
//! history, "must change after reset", and the Password Policy response
//! control (1.3.6.1.4.1.42.2.27.8.5.1) on binds and Password Modify.

use crate::common::{ADMIN_PASSWORD, TestServer, have, have_python, run, ssha};

const JDUPONT: &str = "uid=jdupont,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";

fn demo() -> &'static str {
    convergences::seed::DEMO_PASSWORD
}

/// ldapwhoami with the Password Policy request control; (exit code, stderr).
async fn whoami_ppolicy(url: &str, who: &str, password: &str) -> (i32, String) {
    let (code, _, err) = run("ldapwhoami", &["-x", "-e", "ppolicy", "-H", url, "-D", who, "-w", password], None).await;
    (code, err)
}

/// A directory whose agents changed their passwords `days` ago.
fn agents_changed(days: &[(&str, i64)]) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut ldif = String::from(
        "dn: dc=cig,dc=fr\nobjectClass: dcObject\nobjectClass: organization\ndc: cig\no: CIG\n\n\
         dn: ou=organisations,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: organisations\n\n\
         dn: o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: organization\nobjectClass: cigOrganisation\n\
         o: 219400280\ncigSiren: 219400280\n\n\
         dn: ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: organizationalUnit\nou: agents\n\n",
    );
    for (uid, ago) in days {
        let changed = convergences::directory::lifecycle::epoch_instant(now - ago * 86_400);
        ldif.push_str(&format!(
            "dn: uid={uid},ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr\nobjectClass: inetOrgPerson\n\
             uid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {}\npwdChangedTime: {changed}Z\n\n",
            ssha("Mot-De-Passe-2026")
        ));
    }
    ldif
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_near_its_maximum_age_is_warned_and_an_expired_one_binds_no_more() {
    if !have("ldapwhoami") {
        return;
    }
    let ldif = agents_changed(&[("recent", 1), ("bientot", 80), ("perime", 100)]);
    let srv = TestServer::start_from_ldif_with(&ldif, |c| {
        c.password.max_age_days = 90;
        c.password.expire_warning_days = 14;
    })
    .await;
    let dn = |uid: &str| format!("uid={uid},ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr");
    let (code, err) = whoami_ppolicy(&srv.url, &dn("recent"), "Mot-De-Passe-2026").await;
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("expires"), "no warning yet: {err}");
    let (code, err) = whoami_ppolicy(&srv.url, &dn("bientot"), "Mot-De-Passe-2026").await;
    assert_eq!(code, 0, "{err}");
    // Ten days left: between 9 and 10 days in seconds.
    let secs: u64 = err
        .split("Password expires in ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("ldapwhoami shows the warning: {err}"));
    assert!((9 * 86_400..=10 * 86_400).contains(&secs), "{secs}");
    let (code, err) = whoami_ppolicy(&srv.url, &dn("perime"), "Mot-De-Passe-2026").await;
    assert_eq!(code, 49, "{err}");
    assert!(err.contains("Password expired"), "{err}");
    // With a wrong password nothing is told beyond invalidCredentials.
    let (code, err) = whoami_ppolicy(&srv.url, &dn("perime"), "pas-le-bon").await;
    assert_eq!(code, 49);
    assert!(!err.contains("expired"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_by_the_referent_must_be_changed_before_anything_else() {
    if !have("ldappasswd") || !have("ldapwhoami") || !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let (code, out, err) =
        run("ldappasswd", &["-x", "-H", &url, "-D", HDUPRE, "-w", demo(), "-s", "Provisoire-2026", JDUPONT], None)
            .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, err) = whoami_ppolicy(&url, JDUPONT, "Provisoire-2026").await;
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Password must be changed"), "{err}");
    // Until then the session may do nothing else.
    let search = |pw: &'static str| {
        let url = url.clone();
        async move {
            let args = ["-x", "-LLL", "-H", &url, "-D", JDUPONT, "-w", pw, "-b", JDUPONT, "-s", "base", "cn"];
            run("ldapsearch", &args, None).await
        }
    };
    let (code, _, err) = search("Provisoire-2026").await;
    assert_eq!(code, 50, "insufficientAccess: {err}");
    assert!(err.contains("change it first"), "{err}");
    // Nor may it change anybody else's password meanwhile.
    let other = ["-x", "-H", &url, "-D", JDUPONT, "-w", "Provisoire-2026", "-s", "Pris-Au-Passage-1", HDUPRE];
    let (code, out, _) = run("ldappasswd", &other, None).await;
    assert!(code != 0 && out.contains("(50)"), "{out}");
    // The agent changes it; the flag goes and everything works again.
    let args =
        ["-x", "-H", &url, "-D", JDUPONT, "-w", "Provisoire-2026", "-a", "Provisoire-2026", "-s", "Le-Mien-2026"];
    let (code, _, err) = run("ldappasswd", &args, None).await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = search("Le-Mien-2026").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cn: "), "{out}");
    let (code, err) = whoami_ppolicy(&url, JDUPONT, "Le-Mien-2026").await;
    assert_eq!(code, 0);
    assert!(!err.contains("must be changed"), "{err}");
    let admin = ["-x", "-LLL", "-H", &url, "-D", ADMIN, "-w", ADMIN_PASSWORD, "-b", JDUPONT, "-s", "base", "pwdReset"];
    let (_, out, _) = run("ldapsearch", &admin, None).await;
    assert!(!out.contains("pwdReset"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recent_password_is_refused_and_python_ldap3_reads_why() {
    if !have_python(&["ldap3"]) || !have("ldappasswd") {
        return;
    }
    let srv = TestServer::start().await;
    let url = srv.url.clone();
    let change = |old: &'static str, new: &'static str| {
        let url = url.clone();
        async move {
            let args = ["-x", "-H", &url, "-D", JDUPONT, "-w", old, "-a", old, "-s", new];
            run("ldappasswd", &args, None).await
        }
    };
    let (code, _, err) = change(demo(), "Premier-Nouveau-1").await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = change("Premier-Nouveau-1", "Second-Nouveau-2").await;
    assert_eq!(code, 0, "{err}");
    // Back to a password of the history, or the current one: refused, and
    // the response control says passwordInHistory (8).
    let script = r#"
import sys, ldap3
url, dn, old, new = sys.argv[1:5]
conn = ldap3.Connection(ldap3.Server(url), dn, old, auto_bind=True)
ppolicy = ("1.3.6.1.4.1.42.2.27.8.5.1", False, None)
ok = conn.extend.standard.modify_password(dn, old, new, controls=[ppolicy])
print(conn.result["result"], conn.result.get("controls", {}).get(ppolicy[0], {}).get("value", b"").hex())
"#;
    for reused in [demo(), "Premier-Nouveau-1", "Second-Nouveau-2"] {
        let (code, out, err) = run("python3", &["-c", script, &url, JDUPONT, "Second-Nouveau-2", reused], None).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), "19 3003810108", "{reused}: {out}{err}");
    }
    // Too short: passwordTooShort (6).
    let (_, out, err) = run("python3", &["-c", script, &url, JDUPONT, "Second-Nouveau-2", "court"], None).await;
    assert_eq!(out.trim(), "19 3003810106", "{out}{err}");
    let (code, _, err) = change("Second-Nouveau-2", "Troisieme-Nouveau-3").await;
    assert_eq!(code, 0, "{err}");
}
