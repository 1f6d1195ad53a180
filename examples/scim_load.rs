//! SCIM load generator (issue 6): `--users` creates (no password) by
//! `--clients` concurrent clients, while `--lookup-clients` more look users up
//! by `userName eq` and time it; then the same lookups alone. Every answer is
//! checked (201 with the userName back; exactly one match per lookup).
//!
//!   cargo run --release --example scim_load -- --url http://127.0.0.1:8080/scim/v2 --token SECRET
//!
//! Run by `bench/scim_load.sh`, which prepares a server and a token.
//!
//! Each client keeps one HTTP/1.1 connection and speaks just enough of the
//! protocol (`Content-Length` bodies): on a machine whose cores the server
//! shares, a general-purpose HTTP client would take a third of the CPU the
//! server gets, and the benchmark would measure the client.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

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

/// One client's keep-alive connection to the SCIM endpoint (`http://` only).
struct Conn {
    io: Option<BufReader<TcpStream>>,
    /// host:port
    host: String,
    /// The path of the SCIM base, e.g. `/scim/v2`.
    base: String,
}

impl Conn {
    fn new(url: &str) -> Result<Conn, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are supported"))?;
        let (host, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Ok(Conn { io: None, host: host.to_string(), base: base.trim_end_matches('/').to_string() })
    }

    /// `method` `path` (under the base) with an optional JSON body; the status and body.
    async fn call(
        &mut self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut req = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n",
            self.base, self.host
        );
        match body {
            Some(b) => {
                req.push_str(&format!("Content-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n", b.len()));
                req.push_str(b);
            }
            None => req.push_str("\r\n"),
        }
        let answer = self.exchange(req.as_bytes()).await;
        if answer.is_err() {
            // The server may close an idle connection: no second chance for the
            // request itself (a create could have been applied), so it fails.
            self.io = None;
        }
        answer
    }

    async fn exchange(&mut self, req: &[u8]) -> Result<(u16, Vec<u8>), String> {
        if self.io.is_none() {
            let stream = TcpStream::connect(&self.host).await.map_err(|e| format!("{}: {e}", self.host))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            self.io = Some(BufReader::new(stream));
        }
        let Some(io) = self.io.as_mut() else { return Err("not connected".into()) };
        io.get_mut().write_all(req).await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        io.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {line:?}"))?;
        let mut length = None;
        loop {
            line.clear();
            if io.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("the connection closed in the headers".into());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    return Err(format!("unsupported transfer-encoding: {}", value.trim()));
                }
            }
        }
        let mut body = vec![0u8; length.unwrap_or(0)];
        io.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }
}

/// One lookup of an existing user; its latency, or what was wrong.
async fn lookup(conn: &mut Conn, a: &Args, uid: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let path = format!("/Users?filter=userName%20eq%20%22{uid}%22");
    let (status, body) = conn.call(&a.token, "GET", &path, None).await?;
    let body: Value = serde_json::from_slice(&body).map_err(|e| format!("lookup of {uid}: {e}"))?;
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
    if let Err(e) = Conn::new(&a.url) {
        eprintln!("scim_load: {e}");
        std::process::exit(2);
    }
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    // Indexes of the users whose creation was acknowledged: lookups pick among them.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<usize>::new()));
    let errors = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));

    // Lookups during the creations, of users already created.
    let mut lookers = Vec::new();
    for c in 0..a.lookup_clients {
        let (a, acknowledged, done, errors) = (a.clone(), acknowledged.clone(), done.clone(), errors.clone());
        lookers.push(tokio::spawn(async move {
            let Ok(mut conn) = Conn::new(&a.url) else { return Vec::new() };
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
                match lookup(&mut conn, &a, &format!("{}-{i}", a.prefix)).await {
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
        let (a, next, created, errors, acknowledged) =
            (a.clone(), next.clone(), created.clone(), errors.clone(), acknowledged.clone());
        creators.push(tokio::spawn(async move {
            let Ok(mut conn) = Conn::new(&a.url) else { return };
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
                let resp = conn.call(&a.token, "POST", "/Users", Some(&body.to_string())).await;
                let ok = match resp {
                    Ok((201, body)) => serde_json::from_slice::<Value>(&body)
                        .ok()
                        .is_some_and(|v| v["userName"].as_str() == Some(uid.as_str())),
                    Ok((status, body)) => {
                        let text = String::from_utf8_lossy(&body);
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
        let (a, errors) = (a.clone(), errors.clone());
        alone_tasks.push(tokio::spawn(async move {
            let Ok(mut conn) = Conn::new(&a.url) else { return Vec::new() };
            let mut lat = Vec::new();
            let mut i = c;
            while Instant::now() < until {
                match lookup(&mut conn, &a, &format!("{}-{}", a.prefix, (i * 7919) % n)).await {
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
