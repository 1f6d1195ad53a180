//! SCIM load generator (issue 6): `--users` creates (no password) by
//! `--clients` concurrent clients, while `--lookup-clients` more look users up
//! by `userName eq` and time it; then the same lookups alone. Every answer is
//! checked (201 with the userName back; exactly one match per lookup).
//!
//!   cargo run --release --example scim_load -- --url http://127.0.0.1:8080/scim/v2 --token SECRET
//!
//! Run by `bench/scim_load.sh`, which prepares a server and a token.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    url: String,
    token: String,
    users: usize,
    clients: usize,
    lookup_clients: usize,
    lookup_secs: u64,
    prefix: String,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        url: "http://127.0.0.1:8080/scim/v2".into(),
        token: String::new(),
        users: 10_000,
        clients: 16,
        lookup_clients: 2,
        lookup_secs: 5,
        prefix: format!("charge{}", std::process::id()),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|e| format!("{flag}: {e}"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--token" => a.token = value()?,
            "--users" => a.users = number(value()?)?,
            "--clients" => a.clients = number(value()?)?.max(1),
            "--lookup-clients" => a.lookup_clients = number(value()?)?,
            "--lookup-secs" => a.lookup_secs = number(value()?)? as u64,
            "--prefix" => a.prefix = value()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if a.token.is_empty() {
        return Err("--token is required".into());
    }
    Ok(a)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// One lookup of an existing user; its latency, or what was wrong.
async fn lookup(http: &reqwest::Client, a: &Args, uid: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let url = format!("{}/Users?filter=userName%20eq%20%22{uid}%22", a.url);
    let resp = http.get(url).bearer_auth(&a.token).send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    let took = started.elapsed();
    if status != 200 || body["totalResults"] != 1 {
        return Err(format!("lookup of {uid}: {status} {body}"));
    }
    Ok(took)
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("scim_load: {e}");
            std::process::exit(2);
        }
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(64).build().unwrap_or_default();
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    // Indexes of the users whose creation was acknowledged: lookups pick among them.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    // Lookups during the creations, of users already created.
    let mut lookers = Vec::new();
    for c in 0..a.lookup_clients {
        let (http, a, acknowledged, done, errors) =
            (http.clone(), a.clone(), acknowledged.clone(), done.clone(), errors.clone());
        lookers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut x = 0x9E37_79B9_u64.wrapping_mul(c as u64 + 1);
            while !done.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pick = acknowledged.lock().ok().and_then(|v| (!v.is_empty()).then(|| v[x as usize % v.len()]));
                let Some(i) = pick else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                match lookup(&http, &a, &format!("{}-{i}", a.prefix)).await {
                    Ok(d) => lat.push(d),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            lat
        }));
    }

    let started = Instant::now();
    let mut creators = Vec::new();
    for _ in 0..a.clients {
        let (http, a, next, created, errors, acknowledged) =
            (http.clone(), a.clone(), next.clone(), created.clone(), errors.clone(), acknowledged.clone());
        creators.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= a.users {
                    break;
                }
                let uid = format!("{}-{i}", a.prefix);
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": uid,
                    "name": {"givenName": "Agent", "familyName": format!("Charge {i}")},
                    "emails": [{"value": format!("{uid}@example.fr"), "primary": true}],
                    "active": true
                });
                let resp = http
                    .post(format!("{}/Users", a.url))
                    .bearer_auth(&a.token)
                    .header("Content-Type", "application/scim+json")
                    .body(body.to_string())
                    .send()
                    .await;
                let ok = match resp {
                    Ok(r) if r.status().as_u16() == 201 => {
                        r.json::<Value>().await.ok().is_some_and(|v| v["userName"].as_str() == Some(uid.as_str()))
                    }
                    Ok(r) => {
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        if errors.load(Ordering::Relaxed) < 5 {
                            eprintln!("create {uid}: {status} {text}");
                        }
                        false
                    }
                    Err(e) => {
                        eprintln!("create {uid}: {e}");
                        false
                    }
                };
                if ok {
                    created.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut v) = acknowledged.lock() {
                        v.push(i);
                    }
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for c in creators {
        let _ = c.await;
    }
    let create_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut during = Vec::new();
    for l in lookers {
        during.extend(l.await.unwrap_or_default());
    }
    during.sort();

    // Lookups alone.
    let n = created.load(Ordering::Relaxed).max(1);
    let until = Instant::now() + Duration::from_secs(a.lookup_secs);
    let mut alone_tasks = Vec::new();
    for c in 0..a.clients {
        let (http, a, errors) = (http.clone(), a.clone(), errors.clone());
        alone_tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = c;
            while Instant::now() < until {
                match lookup(&http, &a, &format!("{}-{}", a.prefix, (i * 7919) % n)).await {
                    Ok(d) => lat.push(d),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += a.clients;
            }
            lat
        }));
    }
    let mut alone = Vec::new();
    for t in alone_tasks {
        alone.extend(t.await.unwrap_or_default());
    }
    alone.sort();

    let creates = created.load(Ordering::Relaxed);
    println!(
        "creates={creates} clients={} seconds={create_secs:.2} creates_per_sec={:.0} \
         lookups_during={} lookup_during_p50_us={:.0} lookup_during_p99_us={:.0} \
         lookups_alone={} lookups_alone_per_sec={:.0} lookup_alone_p50_us={:.0} lookup_alone_p99_us={:.0} errors={}",
        a.clients,
        creates as f64 / create_secs,
        during.len(),
        percentile(&during, 0.50),
        percentile(&during, 0.99),
        alone.len(),
        alone.len() as f64 / a.lookup_secs.max(1) as f64,
        percentile(&alone, 0.50),
        percentile(&alone, 0.99),
        errors.load(Ordering::Relaxed)
    );
    if errors.load(Ordering::Relaxed) > 0 {
        std::process::exit(1);
    }
}
