//! A server killed with SIGKILL in the middle of concurrent writes comes back
//! with every write it acknowledged, and its indexes agree with its entries.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::{LdapConnAsync, Mod, Scope, SearchEntry};

use crate::common::ADMIN_PASSWORD;

const BIN: &str = env!("CARGO_BIN_EXE_convergences");
const ADMIN: &str = "cn=admin,dc=cig,dc=fr";
const AGENTS: &str = "ou=agents,o=219400280,ou=organisations,dc=cig,dc=fr";

/// The server as a separate process, and its LDAP URL (read from its output).
fn spawn(data: &std::path::Path) -> (Child, String) {
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
            "--data",
        ])
        .arg(data)
        .env("CONVERGENCES_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // A small redo log: checkpoints happen during the run as well.
        .env("CONVERGENCES_REDO_LOG_MB", "1")
        .env("CONVERGENCES_CACHE_MB", "16")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let log = std::fs::read_to_string(data.join("server.log")).unwrap_or_default();
            panic!("the server stopped before listening:\n{log}");
        };
        if let Some(url) = line.strip_prefix("LDAP listening on ") {
            break url.to_string();
        }
    };
    // Keep draining its output so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_keeps_every_write_it_acknowledged() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut child, url) = spawn(&data);
    let state: Arc<Mutex<HashMap<String, Expected>>> = Arc::default();
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));

    let mut writers = Vec::new();
    for w in 0..8 {
        let (url, state, acknowledged) = (url.clone(), state.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            let mut ldap = admin(&url).await;
            let mut mine: Vec<String> = Vec::new();
            for i in 0.. {
                // Mostly creations; some changes and deletions of earlier ones.
                let (dn, after, result) = if i % 5 == 4 && !mine.is_empty() {
                    let dn = mine[i % mine.len()].clone();
                    let text = format!("changed {i}");
                    state.lock().unwrap().entry(dn.clone()).or_default().uncertain = Some(Some(text.clone()));
                    let r = ldap.modify(&dn, vec![Mod::Replace("description", [text.as_str()].into())]).await;
                    (dn, Some(text), r)
                } else if i % 7 == 6 && !mine.is_empty() {
                    let dn = mine.remove(i % mine.len());
                    state.lock().unwrap().entry(dn.clone()).or_default().uncertain = Some(None);
                    let r = ldap.delete(&dn).await;
                    (dn, None, r)
                } else {
                    let uid = format!("crash-{w}-{i}");
                    let dn = format!("uid={uid},{AGENTS}");
                    let text = format!("created {i}");
                    state
                        .lock()
                        .unwrap()
                        .insert(dn.clone(), Expected { description: None, uncertain: Some(Some(text.clone())) });
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
                let mut st = state.lock().unwrap();
                let e = st.entry(dn).or_default();
                e.description = after;
                e.uncertain = None;
                acknowledged.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }

    // Kill once a good number of writes were acknowledged, mid-stream.
    let started = Instant::now();
    while acknowledged.load(std::sync::atomic::Ordering::Relaxed) < 600 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acknowledged.load(std::sync::atomic::Ordering::Relaxed);
    assert!(acked >= 600, "only {acked} writes were acknowledged before the kill");

    let (mut child, url) = spawn(&data);
    let mut ldap = admin(&url).await;
    let state = state.lock().unwrap().clone();
    let mut present = 0;
    for (dn, want) in &state {
        let found = match ldap.search(dn, Scope::Base, "(objectClass=*)", vec!["description"]).await.unwrap().success()
        {
            Ok((entries, _)) => entries,
            Err(_) => Vec::new(),
        };
        let got: Option<String> =
            found.into_iter().next().map(|e| SearchEntry::construct(e).attrs["description"][0].clone());
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

    // A clean stop (SIGTERM) checkpoints: the next start has nothing to replay.
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
    let (mut child, url) = spawn(&data);
    let mut ldap = admin(&url).await;
    let (again, _) =
        ldap.search(AGENTS, Scope::OneLevel, "(uid=crash-*)", vec!["1.1"]).await.unwrap().success().unwrap();
    assert_eq!(again.len(), present);
    child.kill().unwrap();
    child.wait().unwrap();
    let log = std::fs::read_to_string(data.join("server.log")).unwrap();
    assert_eq!(log.matches("replayed the redo log").count(), 1, "only the start after the kill replays: {log}");
}
