//! SCIM load generator: `--users` creates (no password) by `--clients`
//! concurrent clients, while `--lookup-clients` more look users up by
//! `userName eq` and time it; then the same lookups alone. Every answer is
//! checked (201 with the userName back; exactly one match per lookup).
//!
//! `--mode minimal` creates users with a name and an email (issue 6's
//! figure); `--mode full` with every attribute of RFC 7643 §4.1 and the
//! enterprise extension (a manager included, and `--entitlement APP` grants
//! an application too); `--mode patch` creates minimal users, then PATCHes
//! each one (a title, a work phone, the work email) and times that.
//! `--server-pid` reads the server's CPU time around each phase.
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
    mode: Mode,
    entitlement: Option<String>,
    server_pid: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Minimal,
    Full,
    Patch,
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
        mode: Mode::Minimal,
        entitlement: None,
        server_pid: None,
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
            "--mode" => {
                a.mode = match value()?.as_str() {
                    "minimal" => Mode::Minimal,
                    "full" => Mode::Full,
                    "patch" => Mode::Patch,
                    other => return Err(format!("--mode {other}: minimal, full or patch")),
                }
            }
            "--entitlement" => a.entitlement = Some(value()?),
            "--server-pid" => a.server_pid = Some(number(value()?)? as u32),
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

/// The server's CPU time (user + system), in microseconds, from /proc.
fn server_cpu_us(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    // Fields after the command name (which may hold spaces), from the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 1e6 / 100.0)
}

/// The body of user `i`.
fn user_body(a: &Args, i: usize, manager: Option<&str>) -> Value {
    let uid = format!("{}-{i}", a.prefix);
    if a.mode != Mode::Full {
        return json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": uid,
            "name": {"givenName": "Agent", "familyName": format!("Charge {i}")},
            "emails": [{"value": format!("{uid}@example.fr"), "primary": true}],
            "active": true
        });
    }
    let mut body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "userName": uid,
        "externalId": format!("RH-{i:07}"),
        "name": {"formatted": format!("Mme Agnès Charge {i}"), "familyName": format!("Charge {i}"), "givenName": "Agnès",
                 "middleName": "Marie", "honorificPrefix": "Mme", "honorificSuffix": "PhD"},
        "displayName": format!("Agnès Charge {i}"),
        "nickName": "Nénette",
        "profileUrl": format!("https://intranet.example.fr/agents/{i}"),
        "title": "Rédactrice territoriale",
        "userType": "Titulaire",
        "preferredLanguage": "fr-FR",
        "locale": "fr-FR",
        "timezone": "Europe/Paris",
        "active": true,
        "emails": [{"value": format!("{uid}@example.fr"), "type": "work", "primary": true, "display": "Travail"},
                   {"value": format!("{uid}@maison.example"), "type": "home"}],
        "phoneNumbers": [{"value": "+33 1 43 99 00 00", "type": "work", "primary": true},
                         {"value": "+33 6 12 34 56 78", "type": "mobile"},
                         {"value": "+33 1 43 99 00 01", "type": "fax"}],
        "ims": [{"value": format!("{uid}@xmpp.example.fr"), "type": "xmpp"}],
        "photos": [{"value": format!("https://intranet.example.fr/photos/{i}.jpg"), "type": "photo"}],
        "addresses": [{"type": "work", "primary": true, "streetAddress": "1 place Salvador Allende", "locality": "Créteil",
                       "region": "Île-de-France", "postalCode": "94000", "country": "FR",
                       "formatted": "1 place Salvador Allende\n94000 Créteil"},
                      {"type": "home", "streetAddress": "12 rue des Lilas", "locality": "Vitry-sur-Seine", "postalCode": "94400", "country": "FR"}],
        "roles": [{"value": "gestionnaire-paie", "display": "Gestionnaire de paie", "primary": true}],
        "x509Certificates": [{"value": "MIIBszCCAVmgAwIBAgIUAQIDBAUGBwgJCgsMDQ4PEBESExQwCgYIKoZIzj0EAwI="}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": format!("{i:07}"), "costCenter": "CC-4410", "organization": "Commune de Créteil",
            "division": "Pôle ressources", "department": "Direction des ressources humaines"
        }
    });
    if let Some(m) = manager {
        body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"] = json!({"value": m});
    }
    if let Some(app) = &a.entitlement {
        body["entitlements"] = json!([{"value": app, "primary": true}]);
    }
    body
}

/// A phase's figures: operations, seconds, latency percentiles, server CPU per operation.
fn report(name: &str, ops: usize, secs: f64, lat: &mut [Duration], cpu_us: Option<f64>) -> String {
    lat.sort();
    let per_op = cpu_us.map(|c| format!("{:.0}", c / ops.max(1) as f64)).unwrap_or_else(|| "-".into());
    format!(
        "{name}={ops} {name}_per_sec={:.0} {name}_p50_us={:.0} {name}_p99_us={:.0} {name}_server_cpu_us={per_op}",
        ops as f64 / secs,
        percentile(lat, 0.50),
        percentile(lat, 0.99)
    )
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
    // Full users have a manager: one user created first.
    let manager: Option<Arc<String>> = if a.mode == Mode::Full {
        let Ok(mut conn) = Conn::new(&a.url) else { std::process::exit(2) };
        let body = json!({"userName": format!("{}-manager", a.prefix), "displayName": "La Cheffe"}).to_string();
        match conn.call(&a.token, "POST", "/Users", Some(&body)).await {
            Ok((201, b)) => {
                serde_json::from_slice::<Value>(&b).ok().and_then(|v| v["id"].as_str().map(|s| Arc::new(s.to_string())))
            }
            other => {
                eprintln!("scim_load: the manager was not created: {other:?}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let next = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    // Indexes of the users whose creation was acknowledged: lookups pick among them.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<(usize, String)>::new()));
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
                let pick = acknowledged.lock().ok().and_then(|v| (!v.is_empty()).then(|| v[x as usize % v.len()].0));
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

    let cpu_before = server_cpu_us(a.server_pid);
    let started = Instant::now();
    let mut creators = Vec::new();
    for _ in 0..a.clients {
        let (a, next, created, errors, acknowledged, manager) =
            (a.clone(), next.clone(), created.clone(), errors.clone(), acknowledged.clone(), manager.clone());
        creators.push(tokio::spawn(async move {
            let Ok(mut conn) = Conn::new(&a.url) else { return Vec::new() };
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= a.users {
                    break;
                }
                let uid = format!("{}-{i}", a.prefix);
                let body = user_body(&a, i, manager.as_deref().map(String::as_str)).to_string();
                let t0 = Instant::now();
                let resp = conn.call(&a.token, "POST", "/Users", Some(&body)).await;
                let took = t0.elapsed();
                let id = match resp {
                    Ok((201, body)) => serde_json::from_slice::<Value>(&body)
                        .ok()
                        .filter(|v| v["userName"].as_str() == Some(uid.as_str()))
                        .and_then(|v| v["id"].as_str().map(str::to_string)),
                    Ok((status, body)) => {
                        let text = String::from_utf8_lossy(&body);
                        if errors.load(Ordering::Relaxed) < 5 {
                            eprintln!("create {uid}: {status} {text}");
                        }
                        None
                    }
                    Err(e) => {
                        eprintln!("create {uid}: {e}");
                        None
                    }
                };
                match id {
                    Some(id) => {
                        lat.push(took);
                        created.fetch_add(1, Ordering::Relaxed);
                        if let Ok(mut v) = acknowledged.lock() {
                            v.push((i, id));
                        }
                    }
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            lat
        }));
    }
    let mut create_lat = Vec::new();
    for c in creators {
        create_lat.extend(c.await.unwrap_or_default());
    }
    let create_secs = started.elapsed().as_secs_f64();
    let create_cpu = server_cpu_us(a.server_pid).zip(cpu_before).map(|(after, before)| after - before);
    done.store(true, Ordering::Relaxed);
    let mut during = Vec::new();
    for l in lookers {
        during.extend(l.await.unwrap_or_default());
    }
    during.sort();

    // PATCH mode: every user created is patched once, by the same clients.
    let mut patch_line = String::new();
    if a.mode == Mode::Patch {
        let targets: Arc<Vec<(usize, String)>> = Arc::new(acknowledged.lock().map(|v| v.clone()).unwrap_or_default());
        let cursor = Arc::new(AtomicUsize::new(0));
        let cpu_before = server_cpu_us(a.server_pid);
        let started = Instant::now();
        let mut patchers = Vec::new();
        for _ in 0..a.clients {
            let (a, targets, cursor, errors) = (a.clone(), targets.clone(), cursor.clone(), errors.clone());
            patchers.push(tokio::spawn(async move {
                let Ok(mut conn) = Conn::new(&a.url) else { return Vec::new() };
                let mut lat = Vec::new();
                loop {
                    let k = cursor.fetch_add(1, Ordering::Relaxed);
                    let Some((i, id)) = targets.get(k) else { break };
                    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                        {"op": "replace", "path": "title", "value": "Attachée territoriale"},
                        {"op": "add", "path": "phoneNumbers[type eq \"work\"].value", "value": "+33 1 43 99 00 00"},
                        {"op": "replace", "path": "emails[type eq \"work\"].value", "value": format!("{}-{i}@creteil.example.fr", a.prefix)}
                    ]})
                    .to_string();
                    let t0 = Instant::now();
                    match conn.call(&a.token, "PATCH", &format!("/Users/{id}"), Some(&body)).await {
                        Ok((200, b)) if serde_json::from_slice::<Value>(&b).ok().is_some_and(|v| v["title"] == "Attachée territoriale") => {
                            lat.push(t0.elapsed())
                        }
                        other => {
                            if errors.fetch_add(1, Ordering::Relaxed) < 5 {
                                eprintln!("patch {id}: {other:?}");
                            }
                        }
                    }
                }
                lat
            }));
        }
        let mut patch_lat = Vec::new();
        for p in patchers {
            patch_lat.extend(p.await.unwrap_or_default());
        }
        let secs = started.elapsed().as_secs_f64();
        let cpu = server_cpu_us(a.server_pid).zip(cpu_before).map(|(after, before)| after - before);
        patch_line = format!(" {}", report("patches", patch_lat.len(), secs, &mut patch_lat, cpu));
    }

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
        "mode={:?} clients={} {}{patch_line} \
         lookups_during={} lookup_during_p50_us={:.0} lookup_during_p99_us={:.0} \
         lookups_alone={} lookups_alone_per_sec={:.0} lookup_alone_p50_us={:.0} lookup_alone_p99_us={:.0} errors={}",
        a.mode,
        a.clients,
        report("creates", creates, create_secs, &mut create_lat, create_cpu),
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
