//! The login flow of legacy applications with clients written by others:
//! python's ldap3 library and the JDK's JNDI provider.

use crate::common::*;

const SVC: &str = "cn=bip,ou=services,dc=cig,dc=fr";

fn client(name: &str) -> String {
    format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn check_login_flow(out: &str) {
    assert!(out.contains("service bind ok"), "{out}");
    assert!(
        out.contains("found uid=hdupre,ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr cn=Hélène Dupré"),
        "{out}"
    );
    assert!(out.contains("agent bind ok"), "{out}");
    assert!(out.contains("wrong password refused"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ldap3_logs_an_agent_in() {
    let python_ok = have("python3")
        && std::process::Command::new("python3").args(["-c", "import ldap3"]).status().is_ok_and(|s| s.success());
    if !python_ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python ldap3 is required under CI (.ci/run installs it)"
        );
        eprintln!("skipping: python3 ldap3 is not installed");
        return;
    }
    let srv = TestServer::start().await;
    let demo = convergences::seed::DEMO_PASSWORD;
    let (code, out, err) =
        run("python3", &[&client("login_flow.py"), &srv.url, SVC, demo, SUFFIX, "hdupre", demo], None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    check_login_flow(&out);
    assert!(out.contains("paged entries: 6"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_jndi_logs_an_agent_in_and_pages() {
    if !have("javac") || !have("java") {
        return;
    }
    let classes = tempfile::tempdir().unwrap();
    let dir = classes.path().display().to_string();
    let (code, _, err) = run("javac", &["-d", &dir, &client("LoginFlow.java")], None).await;
    assert_eq!(code, 0, "{err}");
    let srv = TestServer::start().await;
    let demo = convergences::seed::DEMO_PASSWORD;
    let (code, out, err) =
        run("java", &["-cp", &dir, "LoginFlow", &srv.url, SVC, demo, SUFFIX, "hdupre", demo], None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    check_login_flow(&out);
    assert!(out.contains("paged entries: 6 in 3 pages"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_scim2_client_discovers_creates_queries_patches_and_deletes() {
    let ok = have("python3")
        && std::process::Command::new("python3")
            .args(["-c", "import scim2_client.engines.httpx2"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "scim2-client is required under CI (.ci/run installs it)"
        );
        eprintln!("skipping: python scim2-client is not installed");
        return;
    }
    let srv = TestServer::start().await;
    let org = dn("o=219400280,ou=organisations,dc=cig,dc=fr");
    let (_, token) =
        srv.directory().create_token(&convergences::directory::TokenScope::Organisation(org), "scim2-client").unwrap();
    let url = format!("http://{}/scim/v2", srv.handle.as_ref().unwrap().scim_http_addr.unwrap());
    let (code, out, err) = run("python3", &[&client("scim_flow.py"), &url, &token], None).await;
    assert_eq!(code, 0, "{out}\n{err}");
    for step in ["discovered User", "created bjensen", "found 1", "displayName Barbara J.", "deleted"] {
        assert!(out.contains(step), "{step} missing: {out}");
    }
}
