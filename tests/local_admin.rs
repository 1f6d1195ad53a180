//! The administrator on the server's machine: LDAP over the ldapi socket with
//! SASL EXTERNAL (the peer's uid from the kernel), and every administration
//! command while the server runs.

use std::os::unix::fs::PermissionsExt;

use convergences::config::LdapiIdentity;

use crate::common::{Scim, TestServer, have, run};

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const HDUPRE: &str = "uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

/// The `ldapi://` URL of a server's socket (the path %-encoded, RFC 4516 style).
fn ldapi_url(srv: &TestServer) -> String {
    let path = srv.handle.as_ref().unwrap().ldapi.clone().unwrap();
    format!("ldapi://{}", path.display().to_string().replace('/', "%2F"))
}

fn root() -> bool {
    std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_on_the_local_socket_is_the_administrator() {
    if !have("ldapwhoami") || !have("ldapmodify") || !have("ldapsearch") {
        return;
    }
    let srv = TestServer::start().await;
    let path = srv.handle.as_ref().unwrap().ldapi.clone().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let url = ldapi_url(&srv);
    // Root is the administrator; CI runs as root, so this part never goes unchecked there.
    assert!(root() || std::env::var("CI").is_err(), "CI runs the tests as root");
    if root() {
        let (code, out, err) = run("ldapwhoami", &["-Q", "-Y", "EXTERNAL", "-H", &url], None).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.trim(), "dn:cn=admin,dc=cig,dc=fr");
    }
    // EXTERNAL is offered where it works: on the socket, not over TCP
    // (this server has no client certificates set up).
    let (_, local, _) =
        run("ldapsearch", &["-x", "-LLL", "-H", &url, "-b", "", "-s", "base", "supportedSASLMechanisms"], None).await;
    assert!(local.contains("supportedSASLMechanisms: EXTERNAL"), "{local}");
    let (_, tcp, _) =
        run("ldapsearch", &["-x", "-LLL", "-H", &srv.url, "-b", "", "-s", "base", "supportedSASLMechanisms"], None)
            .await;
    assert!(!tcp.contains("EXTERNAL"), "{tcp}");
    // What Debian's slapd admins type: ldapmodify as root over ldapi.
    let change = format!("dn: {HDUPRE}\nchangetype: modify\nreplace: title\ntitle: Responsable RH\n");
    let (code, _, err) = run("ldapmodify", &["-Q", "-Y", "EXTERNAL", "-H", &url], Some(&change)).await;
    assert_eq!(code, 0, "{err}");
    let stored = srv.directory().get(&crate::common::dn(HDUPRE)).unwrap().unwrap();
    assert_eq!(stored.first_str("title"), Some("Responsable RH"));
    // Run as root or as the server's own user, both are the administrator.
    assert!(stored.first_str("modifiersName").is_some_and(|m| m.eq_ignore_ascii_case("cn=admin,dc=cig,dc=fr")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_local_uids_bind_as_their_mapped_entry_or_are_refused() {
    if !have("ldapwhoami") || !have("setpriv") {
        return;
    }
    if !root() {
        assert!(std::env::var("CI").is_err(), "this test switches uid: CI runs it as root");
        eprintln!("skipping: switching uid needs root");
        return;
    }
    let srv = TestServer::start_with(|c| {
        c.ldapi_mode = 0o666;
        c.ldapi_identities = vec![LdapiIdentity { uid: 65534, dn: HDUPRE.into() }];
    })
    .await;
    // The socket is in the test's private temporary directory: let others reach it.
    std::fs::set_permissions(srv.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = ldapi_url(&srv);
    let as_uid = |uid: &'static str| {
        let url = url.clone();
        async move {
            run(
                "setpriv",
                &[
                    &format!("--reuid={uid}"),
                    &format!("--regid={uid}"),
                    "--clear-groups",
                    "ldapwhoami",
                    "-Q",
                    "-Y",
                    "EXTERNAL",
                    "-H",
                    &url,
                ],
                None,
            )
            .await
        }
    };
    let (code, out, err) = as_uid("65534").await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("dn:{HDUPRE}"));
    let (code, _, err) = as_uid("65533").await;
    assert_eq!(code, 49, "{err}");
    assert!(err.contains("not mapped"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_created_while_the_server_runs_works_at_once() {
    let srv = TestServer::start().await;
    let data = srv.tmp.path().display().to_string();
    let (code, out, err) =
        run(BIN, &["token", "create", "--data", &data, "--org", "219400280", "--name", "SIRH"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("for o=219400280,ou=organisations,dc=cig,dc=fr"), "{out}");
    let secret = out.lines().last().unwrap().to_string();
    let scim = Scim::new(&srv);
    let (status, _, body) = scim.call(&secret, "GET", "/Users?count=1", None).await;
    assert_eq!(status, 200, "{body}");
    let (code, out, err) = run(BIN, &["token", "list", "--data", &data], None).await;
    assert_eq!(code, 0, "{err}");
    let id = out.lines().find(|l| l.ends_with("\tSIRH")).unwrap().split('\t').next().unwrap().to_string();
    let (code, _, err) = run(BIN, &["token", "revoke", "--data", &data, &id], None).await;
    assert_eq!(code, 0, "{err}");
    let (status, _, _) = scim.call(&secret, "GET", "/Users?count=1", None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_audit_backup_and_export_run_while_the_server_runs() {
    let srv = TestServer::start().await;
    let data = srv.tmp.path().display().to_string();
    let (code, out, err) = run(BIN, &["check", "--data", &data], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": consistent"), "{out}");
    let (code, out, err) = run(BIN, &["audit", "--data", &data, "--org", "219400280"], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\tadd\t"), "{out}");
    // Elsewhere than the data directory, where a backup could replace the store.
    let elsewhere = tempfile::tempdir().unwrap();
    let inside = srv.tmp.path().join("online.backup");
    let (code, _, err) = run(BIN, &["backup", "--data", &data, inside.to_str().unwrap()], None).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not in the data directory"), "{err}");
    let backup = elsewhere.path().join("online.backup");
    let (code, _, err) = run(BIN, &["backup", "--data", &data, backup.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    let meta = std::fs::metadata(&backup).unwrap();
    assert!(meta.len() > 0);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "a backup holds password hashes");
    let ldif = elsewhere.path().join("online.ldif");
    let (code, _, err) = run(BIN, &["export", "--data", &data, "-o", ldif.to_str().unwrap()], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read_to_string(&ldif).unwrap().contains(&format!("dn: {HDUPRE}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_mistake_is_one_clear_line() {
    // The socket off: the store is locked and nobody answers for it.
    let srv = TestServer::start_with(|c| c.ldapi = Some("".into())).await;
    let data = srv.tmp.path().display().to_string();
    let env = [("RUST_BACKTRACE", "1")];
    let (code, _, err) = crate::common::run_env(BIN, &["token", "list", "--data", &data], None, &env).await;
    assert_eq!(code, 1);
    assert!(err.contains("the server is running on this data directory"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A port in use is named.
    let port = srv.handle.as_ref().unwrap().ldap_addr;
    let other = tempfile::tempdir().unwrap();
    let args = [
        "serve",
        "--data",
        other.path().to_str().unwrap(),
        "--ldap",
        &port.to_string(),
        "--ldaps",
        "127.0.0.1:0",
        "--scim",
        "127.0.0.1:0",
        "--scim-http",
        "127.0.0.1:0",
        "--console",
        "127.0.0.1:0",
        "--console-http",
        "127.0.0.1:0",
        "--no-demo",
    ];
    let (code, _, err) = crate::common::run_env(BIN, &args, None, &env).await;
    assert_eq!(code, 1);
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("LDAP {port}: ")) && last.to_lowercase().contains("address already in use"),
        "{err}"
    );
    assert!(!err.contains("backtrace") && !err.contains("panicked"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_a_server_elsewhere_with_a_cig_token() {
    use convergences::directory::TokenScope;
    let srv = TestServer::start().await;
    let url = format!("http://{}", srv.handle.as_ref().unwrap().scim_http_addr.unwrap());
    let cig = crate::common::token(&srv, TokenScope::Cig);
    // No data directory here: everything goes to the server at --url.
    let nowhere = tempfile::tempdir().unwrap();
    let data = nowhere.path().join("absent").display().to_string();
    let (code, out, err) = run(
        BIN,
        &["token", "create", "--data", &data, "--cig", "--name", "distant", "--url", &url, "--token", &cig],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("for the CIG as a whole"), "{out}");
    let (code, out, err) = run(BIN, &["check", "--data", &data, "--url", &url, "--token", &cig], None).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": consistent"), "{out}");
    let org = crate::common::token(&srv, TokenScope::Organisation(crate::common::dn(crate::common::ORG)));
    let (code, _, err) = run(BIN, &["token", "list", "--data", &data, "--url", &url, "--token", &org], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("CIG token"), "{err}");
}
