//! Public SCIM conformance tools against the real server, each with a token
//! bound to one organisation: scim2-tester (python-scim) and scim-sanity.
//! A check that fails must be listed, with its reason, as a deliberate
//! deviation in scim/README.md; any other failure fails the test.

use serde_json::Value;

use crate::common::*;
use convergences::directory::TokenScope;

const CRETEIL: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";

/// One deliberate deviation, as scim/README.md lists it.
#[derive(Debug)]
struct Deviation {
    tool: String,
    resource: String,
    check: String,
    target: String,
}

/// The deviations table of scim/README.md (between its `deviations` markers).
fn deviations() -> Vec<Deviation> {
    let readme = std::fs::read_to_string(format!("{}/scim/README.md", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let start = readme.find("<!-- deviations -->").expect("scim/README.md has a deviations table");
    let end = readme.find("<!-- /deviations -->").expect("the deviations table ends");
    readme[start..end]
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| tool"))
        .map(|l| {
            let cells: Vec<String> =
                l.trim_matches('|').split('|').map(|c| c.trim().trim_matches('`').to_string()).collect();
            assert!(cells.len() >= 5 && !cells[4].is_empty(), "a deviation needs its reason: {l}");
            Deviation {
                tool: cells[0].clone(),
                resource: cells[1].clone(),
                check: cells[2].clone(),
                target: cells[3].clone(),
            }
        })
        .collect()
}

fn listed(failure: &Value, deviations: &[Deviation]) -> bool {
    let field = |k: &str| failure[k].as_str().unwrap_or("").to_string();
    deviations.iter().any(|d| {
        d.tool == field("tool")
            && (d.resource == field("resource") || d.resource == "*")
            && d.check == field("check")
            && (d.target == field("target") || d.target == "*")
    })
}

fn unlisted(failures: &[Value]) -> Vec<String> {
    let known = deviations();
    failures.iter().filter(|f| !listed(f, &known)).map(Value::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim2_tester_finds_nothing_but_the_listed_deviations() {
    if !have_python(&["scim2_tester", "scim2_client.engines.httpx2"]) {
        return;
    }
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let token = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let (code, out, err) = run("python3", &[&client_script("scim2_tester_check.py"), &scim.base, &token], None).await;
    assert_eq!(code, 0, "scim2-tester did not run: {err}");
    let lines: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let summary = lines.iter().find(|l| l.get("passed").is_some()).expect("a summary line");
    // Far more checks pass than are listed: the run did test the server.
    assert!(summary["passed"].as_u64().unwrap() >= 60, "{summary}");
    let failures: Vec<Value> = lines.into_iter().filter(|l| l.get("check").is_some()).collect();
    let unlisted = unlisted(&failures);
    assert!(unlisted.is_empty(), "scim2-tester failures not listed in scim/README.md:\n{}", unlisted.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_sanity_finds_nothing_but_the_listed_deviations() {
    if !have_python(&["scim_sanity"]) {
        return;
    }
    let srv = TestServer::start().await;
    let scim = Scim::new(&srv);
    let token = token(&srv, TokenScope::Organisation(dn(CRETEIL)));
    let args =
        ["-m", "scim_sanity", "probe", &scim.base, "--token", &token, "--i-accept-side-effects", "--json-output"];
    let (_, out, err) = run("python3", &args, None).await;
    let report: Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("scim-sanity's report: {e}\n{out}\n{err}"));
    let results = report["results"].as_array().expect("results");
    assert!(results.iter().filter(|r| r["status"] == "pass" || r["status"] == "PASS").count() >= 20, "{report}");
    let failures: Vec<Value> = results
        .iter()
        .filter(|r| {
            let s = r["status"].as_str().unwrap_or("").to_ascii_lowercase();
            s == "fail" || s == "error"
        })
        .map(|r| {
            serde_json::json!({"tool": "scim-sanity", "resource": "", "check": r["name"].as_str().unwrap_or(""), "target": "",
                               "reason": r["message"].clone()})
        })
        .collect();
    let unlisted = unlisted(&failures);
    assert!(unlisted.is_empty(), "scim-sanity failures not listed in scim/README.md:\n{}", unlisted.join("\n"));
}
