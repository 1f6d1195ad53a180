//! A server killed with SIGKILL at a random moment in the middle of
//! concurrent LDAP and SCIM writes comes back with every write it
//! acknowledged, and `convergences check` finds its indexes in agreement with
//! its entries. Several kills per run, on the same store.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};
use serde_json::json;

use crate::common::ADMIN_PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";
const ROUNDS: usize = 3;

/// The server as a separate process, and its LDAP and SCIM (plain HTTP) URLs.
pub(crate) fn spawn(data: &std::path::Path) -> (Child, String, String) {
    spawn_with(data, &[])
}

/// [`spawn`] with more environment variables.
pub(crate) fn spawn_with(data: &std::path::Path, env: &[(&str, &str)]) -> (Child, String, String) {
    let (child, ldap, scim, _) = spawn_all(data, env);
    (child, ldap, scim)
}

/// [`spawn_with`], and the console's plain-HTTP URL.
pub(crate) fn spawn_all(data: &std::path::Path, env: &[(&str, &str)]) -> (Child, String, String, String) {
    spawn_args(data, env, &[])
}

/// [`spawn_all`] with more arguments to `serve` (a `--config` file, say).
pub(crate) fn spawn_args(
    data: &std::path::Path,
    env: &[(&str, &str)],
    extra: &[&str],
) -> (Child, String, String, String) {
    std::fs::create_dir_all(data).unwrap();
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data.join("server.log")).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--ldap",
            "127.0.0.1:0",
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
            "--data",
        ])
        .arg(data)
        .args(extra)
        .env("CONVERGENCES_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // A small redo log: checkpoints happen during the run as well.
        .env("CONVERGENCES_REDO_LOG_MB", "1")
        .env("CONVERGENCES_CACHE_MB", "16")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut ldap, mut scim, mut console) = (None, None, None);
    while ldap.is_none() || scim.is_none() || console.is_none() {
        let Some(Ok(line)) = lines.next() else {
            let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
            panic!("the server stopped before listening:\n{log}");
        };
        if let Some(url) = line.strip_prefix("LDAP listening on ") {
            ldap = Some(url.to_string());
        }
        if let Some(url) = line.strip_prefix("SCIM listening on http://") {
            scim = Some(format!("http://{url}"));
        }
        if let Some(url) = line.strip_prefix("Console listening on http://") {
            console = Some(format!("http://{}", url.trim_end_matches('/')));
        }
    }
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, ldap.unwrap_or_default(), scim.unwrap_or_default(), console.unwrap_or_default())
}

async fn admin(url: &str) -> ldap3::Ldap {
    let (conn, mut ldap) = LdapConnAsync::new(url).await.unwrap();
    ldap3::drive!(conn);
    ldap.simple_bind(ADMIN, ADMIN_PASSWORD).await.unwrap().success().unwrap();
    ldap
}

/// What a DN should hold after the restart: its description, or nothing
/// (deleted); `uncertain` when a write to it was in flight at the kill.
#[derive(Clone, Debug, Default)]
struct Expected {
    description: Option<String>,
    uncertain: Option<Option<String>>,
}

type State = Arc<Mutex<HashMap<String, Expected>>>;

/// Note a write about to be sent, then its outcome; false once the server is gone.
fn begin(state: &State, dn: &str, after: Option<String>) {
    state.lock().unwrap().entry(dn.to_string()).or_default().uncertain = Some(after);
}

fn acknowledge(state: &State, acked: &AtomicUsize, dn: &str, after: Option<String>) {
    let mut st = state.lock().unwrap();
    let e = st.entry(dn.to_string()).or_default();
    e.description = after;
    e.uncertain = None;
    acked.fetch_add(1, Ordering::Relaxed);
}

/// Adds, changes and deletes over LDAP until the connection fails.
async fn ldap_writer(url: String, round: usize, w: usize, state: State, acked: Arc<AtomicUsize>) {
    let mut ldap = admin(&url).await;
    let mut mine: Vec<String> = Vec::new();
    for i in 0.. {
        // Mostly creations; some changes and deletions of earlier ones.
        let (dn, after, result) = if i % 5 == 4 && !mine.is_empty() {
            let dn = mine[i % mine.len()].clone();
            let text = format!("changed {i}");
            begin(&state, &dn, Some(text.clone()));
            let r = ldap.modify(&dn, vec![Mod::Replace("description", [text.as_str()].into())]).await;
            (dn, Some(text), r)
        } else if i % 7 == 6 && !mine.is_empty() {
            let dn = mine.remove(i % mine.len());
            begin(&state, &dn, None);
            let r = ldap.delete(&dn).await;
            (dn, None, r)
        } else {
            let uid = format!("crash-{round}-{w}-{i}");
            let dn = format!("uid={uid},{AGENTS}");
            let text = format!("created {i}");
            begin(&state, &dn, Some(text.clone()));
            let r = ldap
                .add(
                    &dn,
                    vec![
                        ("objectClass", ["inetOrgPerson"].into()),
                        ("uid", [uid.as_str()].into()),
                        ("cn", [format!("Agent {uid}").as_str()].into()),
                        ("sn", [format!("Crash {w} {i}").as_str()].into()),
                        ("mail", [format!("{uid}@example.fr").as_str()].into()),
                        ("description", [text.as_str()].into()),
                    ],
                )
                .await;
            mine.push(dn.clone());
            (dn, Some(text), r)
        };
        // Stop at the first failure (the kill): the write stays uncertain.
        let Ok(Ok(_)) = result.map(|r| r.success()) else { break };
        acknowledge(&state, &acked, &dn, after);
    }
}

/// Creations and deletions of Users over SCIM until the server is gone. An
/// acknowledged creation is a 201; the entry's description is its title.
async fn scim_writer(url: String, token: String, round: usize, w: usize, state: State, acked: Arc<AtomicUsize>) {
    let client = reqwest::Client::new();
    let mut mine: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let (dn, after, ok) = if i % 6 == 5 && !mine.is_empty() {
            let (dn, id) = mine.remove(i % mine.len());
            begin(&state, &dn, None);
            let r = client.delete(format!("{url}/Users/{id}")).bearer_auth(&token).send().await;
            (dn, None, r.is_ok_and(|r| r.status().as_u16() == 204))
        } else {
            let uid = format!("crash-scim-{round}-{w}-{i}");
            let dn = format!("uid={uid},{AGENTS}");
            let text = format!("scim {i}");
            begin(&state, &dn, Some(text.clone()));
            let user = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": uid,
                "name": {"familyName": format!("Scim {w} {i}"), "givenName": "Agent"},
                "title": text,
            });
            let r = client
                .post(format!("{url}/Users"))
                .bearer_auth(&token)
                .header("Content-Type", "application/scim+json")
                .body(user.to_string())
                .send()
                .await;
            let id = match r {
                Ok(r) if r.status().as_u16() == 201 => {
                    r.json::<serde_json::Value>().await.ok().and_then(|v| v["id"].as_str().map(str::to_string))
                }
                _ => None,
            };
            let ok = id.is_some();
            if let Some(id) = id {
                mine.push((dn.clone(), id));
            }
            (dn, Some(text), ok)
        };
        if !ok {
            break;
        }
        acknowledge(&state, &acked, &dn, after);
    }
}

/// The directory's own verdict on its consistency, with the server stopped.
fn check(data: &std::path::Path) {
    let out = Command::new(BIN).arg("check").arg("--data").arg(data).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(": consistent"),
        "convergences check: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A pseudo-random number from the clock; printed so that a failure can be replayed by reading it.
fn random_below(n: usize) -> usize {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as usize;
    nanos.wrapping_mul(2_654_435_761) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_at_random_keeps_every_write_it_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A first start seeds the demo organisation; its SCIM token is made offline.
    let (mut child, _, _) = spawn(&data);
    child.kill().unwrap();
    child.wait().unwrap();
    let out = Command::new(BIN)
        .args(["token", "create", "--org", "219400280", "--name", "crash", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8_lossy(&out.stdout).lines().last().unwrap().trim().to_string();

    let state: State = Arc::default();
    let mut kills_with_writes = 0;
    for round in 0..ROUNDS {
        let (mut child, url, scim) = spawn(&data);
        let acknowledged = Arc::new(AtomicUsize::new(0));
        let mut writers = Vec::new();
        for w in 0..6 {
            writers.push(tokio::spawn(ldap_writer(url.clone(), round, w, state.clone(), acknowledged.clone())));
        }
        for w in 0..4 {
            let (scim, token) = (scim.clone(), token.clone());
            writers.push(tokio::spawn(scim_writer(scim, token, round, w, state.clone(), acknowledged.clone())));
        }
        // Kill at a random point of the stream of acknowledgements.
        let target = 150 + random_below(400);
        eprintln!("round {round}: kill after {target} acknowledged writes");
        let started = Instant::now();
        while acknowledged.load(Ordering::Relaxed) < target && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        for w in writers {
            w.await.unwrap();
        }
        let acked = acknowledged.load(Ordering::Relaxed);
        assert!(acked >= target, "only {acked} writes were acknowledged before the kill");
        kills_with_writes += 1;

        let (mut child, url, _) = spawn(&data);
        verify(&url, &state).await;
        // Stopped hard again (nothing written since the restart), then checked offline.
        child.kill().unwrap();
        child.wait().unwrap();
        check(&data);
    }

    // A clean stop (SIGTERM) checkpoints: the next start has nothing to replay.
    let (child, _, _) = spawn(&data);
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let mut child = child;
    assert!(child.wait().unwrap().success());
    let before = std::fs::read_to_string(data.join("server.log")).unwrap().len();
    let (mut child, url, _) = spawn(&data);
    verify(&url, &state).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert!(
        !log[before..].contains("replayed the redo log"),
        "the start after a clean stop replayed: {}",
        &log[before..]
    );
    assert!(log.matches("replayed the redo log").count() <= kills_with_writes);
}

/// Every acknowledged write is there (or the write in flight after it), and
/// the equality and substring indexes find exactly the entries that exist.
async fn verify(url: &str, state: &State) {
    let mut ldap = admin(url).await;
    let state = state.lock().unwrap().clone();
    let mut present = 0;
    for (dn, want) in &state {
        let found = match ldap
            .search(dn, Scope::Base, "(objectClass=*)", vec!["description", "title"])
            .await
            .unwrap()
            .success()
        {
            Ok((entries, _)) => entries,
            Err(_) => Vec::new(),
        };
        let got: Option<String> = found.into_iter().next().map(|e| {
            let attrs = SearchEntry::construct(e).attrs;
            attrs.get("description").or(attrs.get("title")).map(|v| v[0].clone()).unwrap_or_default()
        });
        let acceptable = match &want.uncertain {
            None => got == want.description,
            Some(inflight) => got == want.description || &got == inflight,
        };
        assert!(
            acceptable,
            "{dn}: found {got:?}, acknowledged {:?} (in flight: {:?})",
            want.description, want.uncertain
        );
        present += usize::from(got.is_some());

        // The equality index agrees with the entry.
        let uid = dn.trim_start_matches("uid=").split(',').next().unwrap();
        let (hits, _) = ldap
            .search(AGENTS, Scope::OneLevel, &format!("(uid={uid})"), vec!["1.1"])
            .await
            .unwrap()
            .success()
            .unwrap();
        assert_eq!(hits.len(), usize::from(got.is_some()), "uid={uid} through the index");
    }
    // And so does the substring index.
    let (by_substring, _) =
        ldap.search(AGENTS, Scope::OneLevel, "(uid=crash-*)", vec!["1.1"]).await.unwrap().success().unwrap();
    assert_eq!(by_substring.len(), present, "a substring search finds every surviving entry, once");
    ldap.unbind().await.unwrap();
}

/// `convergences check` can fail: an index posting removed and a DN index
/// entry added behind the directory's back are both reported, exit code 1.
#[test]
fn check_reports_indexes_that_disagree_with_the_entries() {
    use convergences::store::{IndexKind, Store, index_key};
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, _, _) = spawn(&data);
    child.kill().unwrap();
    child.wait().unwrap();
    check(&data);

    let store = Store::open(
        &convergences::config::Config { data: data.clone(), ..Default::default() }.store_path(),
        1 << 20,
        1 << 20,
    )
    .unwrap();
    let uid_key = index_key(IndexKind::Equality, "uid", b"");
    let mut victim = None;
    store
        .read()
        .unwrap()
        .for_each_posting_list(
            |key, ids| {
                if victim.is_none() && key.starts_with(&uid_key) {
                    victim = Some((key.to_vec(), ids[0]));
                }
            },
            |_| {},
        )
        .unwrap();
    let (key, id) = victim.expect("the demo data has uids");
    let txn = store.write_unlogged().unwrap();
    let mut w = txn.tables().unwrap();
    w.index(std::slice::from_ref(&key), id, false).unwrap();
    w.put_dn("uid=ghost,dc=cig,dc=fr", 999_999).unwrap();
    let staged = w.finish().unwrap();
    txn.commit_durable(staged).unwrap();
    drop(store);

    let out = Command::new(BIN).arg("check").arg("--data").arg(&data).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let uid = String::from_utf8_lossy(&key[uid_key.len()..]).into_owned();
    assert!(stdout.contains(&format!("equality index 'uid={uid}': entries [{id}] missing")), "{stdout}");
    assert!(stdout.contains("uid=ghost,dc=cig,dc=fr"), "{stdout}");
    assert!(stdout.contains("2 problems"), "{stdout}");
}
