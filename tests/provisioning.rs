//! Provisioning runs shaped like those of the two identity providers the
//! employers use, written from their public documentation
//! (tests/clients/entra_provisioning.py, okta_provisioning.py), against the
//! real server with an organisation's token.

use crate::common::*;
use convergences::directory::TokenScope;

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";

async fn run_script(script: &str, last_step: &str) {
    if !have_python(&["httpx2"]) {
        return;
    }
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let token = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (code, out, err) = run("python3", &[&client_script(script), &scim.base, &token], None).await;
    assert_eq!(code, 0, "{script} failed after:\n{out}\n{err}");
    assert!(out.lines().last() == Some(last_step), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entra_id_provisioning_run_goes_through() {
    run_script("entra_provisioning.py", "done").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_okta_provisioning_run_goes_through() {
    run_script("okta_provisioning.py", "done").await;
}
