#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use convergences::app;
use convergences::config::Config;
use convergences::directory::{Actor, Directory, Dn, Entry, TokenScope};
use serde_json::Value;

pub const SUFFIX: &str = "dc=cig,dc=fr";
pub const ORG: &str = "o=219400280,ou=organisations,dc=cig,dc=fr";
pub const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
pub const GROUPS: &str = "ou=groupes,o=219400280,ou=organisations,dc=cig,dc=fr";
pub const ADMIN_PASSWORD: &str = "test-admin-secret";

pub fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

pub fn actor() -> Actor {
    Actor::new("cn=admin,dc=cig,dc=fr")
}

/// A directory on a fresh temporary store.
pub fn directory() -> (tempfile::TempDir, Directory) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = app::open_directory(&Config::for_test(tmp.path())).unwrap();
    (tmp, dir)
}

pub fn agent(uid: &str, given: &str, sn: &str) -> Entry {
    Entry::new(dn(&format!("uid={uid},{AGENTS}")))
        .with("objectClass", ["inetOrgPerson", "cigAgent"])
        .with("uid", [uid])
        .with("cn", [format!("{given} {sn}")])
        .with("givenName", [given])
        .with("sn", [sn])
        .with("mail", [format!("{uid}@creteil.example.fr")])
}

/// The tree of DESIGN.md with one organisation and French names:
/// Hélène Dupré, François Lœuvre, Œuvre Martin, Jean Dupont (employeeNumber 1..4).
pub fn populate(dir: &Directory) {
    let a = actor();
    let add = |e: Entry| dir.add(&a, e).unwrap();
    add(Entry::new(dn(SUFFIX))
        .with("objectClass", ["dcObject", "organization"])
        .with("dc", ["cig"])
        .with("o", ["CIG"]));
    for ou in ["organisations", "applications", "services", "particuliers"] {
        add(Entry::new(dn(&format!("ou={ou},{SUFFIX}"))).with("objectClass", ["organizationalUnit"]).with("ou", [ou]));
    }
    add(Entry::new(dn(ORG))
        .with("objectClass", ["organization", "cigOrganisation"])
        .with("o", ["219400280"])
        .with("cigSiren", ["219400280"])
        .with("cigApplication", ["bip"]));
    add(Entry::new(dn(AGENTS)).with("objectClass", ["organizationalUnit"]).with("ou", ["agents"]));
    add(Entry::new(dn(GROUPS)).with("objectClass", ["organizationalUnit"]).with("ou", ["groupes"]));
    for (i, (uid, given, sn)) in [
        ("hdupre", "Hélène", "Dupré"),
        ("floeuvre", "François", "Lœuvre"),
        ("omartin", "Œuvre", "Martin"),
        ("jdupont", "Jean", "Dupont"),
    ]
    .into_iter()
    .enumerate()
    {
        add(agent(uid, given, sn).with("employeeNumber", [(i + 1).to_string()]));
    }
    add(Entry::new(dn(&format!("cn=bip,ou=applications,{SUFFIX}")))
        .with("objectClass", ["groupOfNames"])
        .with("cn", ["bip"])
        .with("member", [format!("uid=hdupre,{AGENTS}"), format!("uid=jdupont,{AGENTS}")]));
    add(Entry::new(dn(&format!("cn=rh,{GROUPS}")))
        .with("objectClass", ["groupOfNames"])
        .with("cn", ["rh"])
        .with("member", [format!("uid=hdupre,{AGENTS}"), format!("uid=floeuvre,{AGENTS}")]));
}

/// A running server on port 0 with the demo tree and a known admin password.
pub struct TestServer {
    pub tmp: tempfile::TempDir,
    pub handle: Option<app::ServerHandle>,
    pub url: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// The demo server with some settings changed.
    pub async fn start_with(change: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = Config::for_test(tmp.path());
        change(&mut cfg);
        cfg.demo = true;
        cfg.admin_password = Some(ADMIN_PASSWORD.into());
        let handle = app::start(cfg).await.unwrap();
        let url = format!("ldap://{}", handle.ldap_addr);
        TestServer { tmp, handle: Some(handle), url }
    }

    pub fn directory(&self) -> Arc<Directory> {
        self.handle.as_ref().unwrap().directory.clone()
    }
}

/// Whether an external tool is installed; under CI a missing tool is a failure, not a skip.
pub fn have(tool: &str) -> bool {
    let found =
        Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{tool} is required under CI (.ci/run installs it)");
    }
    if !found {
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Run a command off the async runtime's threads; returns (exit code, stdout, stderr).
pub async fn run(cmd: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    run_env(cmd, args, stdin, &[]).await
}

/// [`run`] with extra environment variables.
pub async fn run_env(cmd: &str, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> (i32, String, String) {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cmd = cmd.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = Command::new(&cmd)
            .args(&args)
            .envs(env)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// A SCIM client over plain HTTP (reqwest).
pub struct Scim {
    pub base: String,
}

impl Scim {
    pub fn new(srv: &TestServer) -> Scim {
        Scim { base: format!("http://{}/scim/v2", srv.handle.as_ref().unwrap().scim_http_addr.unwrap()) }
    }

    /// (status, headers as `name: value` lines, body as JSON or Null), with reqwest.
    pub async fn call(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, String, Value) {
        self.call_with(token, method, path, body, &[]).await
    }

    /// [`Scim::call`] with extra request headers.
    pub async fn call_with(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, String, Value) {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("Content-Type", "application/scim+json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let head: String =
            resp.headers().iter().map(|(k, v)| format!("{}: {}\r\n", k.as_str(), v.to_str().unwrap_or(""))).collect();
        let text = resp.text().await.unwrap_or_default();
        (status, head, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

pub fn token(srv: &TestServer, scope: TokenScope) -> String {
    srv.directory().create_token(&scope, "test").unwrap().1
}

/// Whether python3 can import these modules; under CI a missing one is a failure, not a skip.
pub fn have_python(modules: &[&str]) -> bool {
    let script = modules.iter().map(|m| format!("import {m}")).collect::<Vec<_>>().join("; ");
    let found = have("python3") && Command::new("python3").args(["-c", &script]).status().is_ok_and(|s| s.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("python modules {modules:?} are required under CI (.ci/run installs them)");
    }
    if !found {
        eprintln!("skipping: python modules {modules:?} are not installed");
    }
    found
}

/// An `{SSHA}` hash of `password` (salt `sel!`), as slapd and older tools store them.
pub fn ssha(password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let mut h = sha1::Sha1::new();
    h.update(password.as_bytes());
    h.update(b"sel!");
    let mut raw = h.finalize().to_vec();
    raw.extend_from_slice(b"sel!");
    format!("{{SSHA}}{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A script of tests/clients.
pub fn client_script(name: &str) -> String {
    format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub mod browser;
pub mod slapd;

impl TestServer {
    /// The server on `ldif` alone (no demo tree), imported as `convergences
    /// import` does: the twin of a slapd loaded with the same file.
    pub async fn start_from_ldif(ldif: &str) -> TestServer {
        TestServer::start_from_ldif_with(ldif, |_| {}).await
    }

    /// [`TestServer::start_from_ldif`] with some settings changed.
    pub async fn start_from_ldif_with(ldif: &str, change: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let mut cfg = Config::for_test(tmp.path());
        change(&mut cfg);
        let file = tmp.path().join("load.ldif");
        std::fs::write(&file, ldif).unwrap();
        app::import(&cfg, &file).unwrap();
        let handle = app::start(cfg).await.unwrap();
        let url = format!("ldap://{}", handle.ldap_addr);
        TestServer { tmp, handle: Some(handle), url }
    }
}
