//! Console load generator: `--clients` référents, each signed in with its
//! own session, browse their organisation's pages for `--secs` seconds:
//! the home page (with its figures), the agents list (first page, a later
//! page, a search), an agent's page and its edit form. Every answer is
//! checked (200 and the page's heading). Prints, per page, requests and
//! p50/p99 latency, and the server's CPU per request.
//!
//!   cargo run --release --example console_load -- --url http://127.0.0.1:9080 --referents FILE
//!
//! FILE has one référent per line: `uid<TAB>password<TAB>siren`. Run by
//! `bench/console_load.sh`, which prepares the directory and the référents.
//! Each client keeps one HTTP/1.1 connection and speaks just enough of the
//! protocol, so that the client's CPU stays small beside the server's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Args {
    url: String,
    referents: String,
    clients: usize,
    secs: u64,
    server_pid: Option<u32>,
}

fn args() -> Result<Args, String> {
    let mut a =
        Args { url: "http://127.0.0.1:9080".into(), referents: String::new(), clients: 16, secs: 20, server_pid: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => a.url = value()?,
            "--referents" => a.referents = value()?,
            "--clients" => a.clients = value()?.parse().map_err(|e| format!("--clients: {e}"))?,
            "--secs" => a.secs = value()?.parse().map_err(|e| format!("--secs: {e}"))?,
            "--server-pid" => a.server_pid = Some(value()?.parse().map_err(|e| format!("--server-pid: {e}"))?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.referents.is_empty() {
        return Err("--referents FILE is required".into());
    }
    Ok(a)
}

struct Conn {
    io: Option<BufReader<TcpStream>>,
    host: String,
    cookies: HashMap<String, String>,
}

struct Answer {
    status: u16,
    location: String,
    body: String,
}

impl Conn {
    fn new(url: &str) -> Result<Conn, String> {
        let host =
            url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?.trim_end_matches('/');
        Ok(Conn { io: None, host: host.to_string(), cookies: HashMap::new() })
    }

    async fn call(&mut self, method: &str, path: &str, form: Option<&str>) -> Result<Answer, String> {
        let cookies: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n", self.host, cookies.join("; "));
        match form {
            Some(b) => req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{b}",
                b.len()
            )),
            None => req.push_str("\r\n"),
        }
        if self.io.is_none() {
            let s = TcpStream::connect(&self.host).await.map_err(|e| format!("{}: {e}", self.host))?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            self.io = Some(BufReader::new(s));
        }
        let Some(io) = self.io.as_mut() else { return Err("not connected".into()) };
        io.get_mut().write_all(req.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut line = String::new();
        io.read_line(&mut line).await.map_err(|e| e.to_string())?;
        let status =
            line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| format!("status {line:?}"))?;
        let (mut length, mut location) = (0usize, String::new());
        loop {
            line.clear();
            if io.read_line(&mut line).await.map_err(|e| e.to_string())? == 0 {
                return Err("closed in the headers".into());
            }
            if line == "\r\n" {
                break;
            }
            let Some((name, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case("location") {
                location = value.to_string();
            } else if name.eq_ignore_ascii_case("set-cookie") {
                let pair = value.split(';').next().unwrap_or("");
                if let Some((k, v)) = pair.split_once('=') {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        let mut body = vec![0u8; length];
        io.read_exact(&mut body).await.map_err(|e| e.to_string())?;
        Ok(Answer { status, location, body: String::from_utf8_lossy(&body).into_owned() })
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    s[from..].split(end).next()
}

fn encode(s: &str) -> String {
    s.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

async fn sign_in(c: &mut Conn, uid: &str, password: &str) -> Result<(), String> {
    let form = c.call("GET", "/connexion", None).await?;
    let token = between(&form.body, "name=\"jeton\" value=\"", "\"").ok_or("no sign-in token")?.to_string();
    let body = format!("jeton={token}&identifiant={}&mot_de_passe={}&suite=%2Faccueil", encode(uid), encode(password));
    let signed = c.call("POST", "/connexion", Some(&body)).await?;
    if signed.status != 303 || signed.location != "/accueil" {
        return Err(format!("sign-in of {uid}: {} {}", signed.status, signed.location));
    }
    Ok(())
}

/// One référent's browsing until `until`; each page's latencies by name.
async fn browse(
    url: String,
    uid: String,
    password: String,
    siren: String,
    until: Instant,
) -> Result<Vec<(&'static str, Duration)>, String> {
    let mut c = Conn::new(&url)?;
    sign_in(&mut c, &uid, &password).await?;
    let list = format!("/organisations/{siren}/agents");
    let first = c.call("GET", &list, None).await?;
    let link = format!("href=\"/organisations/{siren}/agents/");
    let agent = first
        .body
        .split(link.as_str())
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|s| s.len() == 36)
        .ok_or_else(|| format!("no agent in {siren}'s list"))?
        .to_string();
    let name = between(&first.body, &format!("{agent}\">"), "<").unwrap_or("a").to_string();
    let prefix: String = name.chars().take(3).collect();
    let pages: Vec<(&'static str, String, &str)> = vec![
        ("accueil", "/accueil".into(), "<h1>Bonjour"),
        ("liste", list.clone(), "<caption>Agents de"),
        ("liste-page-2", format!("{list}?tri=nom&page=2"), "<h1>Agents de"),
        ("recherche", format!("{list}?q={}", encode(&prefix)), "<h1>Agents de"),
        ("agent", format!("{list}/{agent}"), "Modifier la fiche"),
        ("modifier", format!("{list}/{agent}?modifier=1"), "Enregistrer les modifications"),
    ];
    let mut seen = Vec::new();
    'outer: loop {
        for (kind, path, marker) in &pages {
            if Instant::now() >= until {
                break 'outer;
            }
            let started = Instant::now();
            let a = c.call("GET", path, None).await?;
            let took = started.elapsed();
            if a.status != 200 || !a.body.contains(marker) {
                return Err(format!("{uid} {path}: {} {}", a.status, a.body.chars().take(300).collect::<String>()));
            }
            seen.push((*kind, took));
        }
    }
    Ok(seen)
}

fn server_cpu_us(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) * 1e6 / 100.0)
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let a = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("console_load: {e}");
            std::process::exit(2);
        }
    };
    let referents: Vec<(String, String, String)> = std::fs::read_to_string(&a.referents)
        .unwrap_or_else(|e| panic!("{}: {e}", a.referents))
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect();
    assert!(!referents.is_empty(), "no référent in {}", a.referents);
    let cpu_before = server_cpu_us(a.server_pid);
    let started = Instant::now();
    let until = started + Duration::from_secs(a.secs);
    let tasks: Vec<_> = (0..a.clients)
        .map(|i| {
            let (uid, pw, siren) = referents[i % referents.len()].clone();
            tokio::spawn(browse(a.url.clone(), uid, pw, siren, until))
        })
        .collect();
    let mut by_page: HashMap<&'static str, Vec<Duration>> = HashMap::new();
    for t in tasks {
        match t.await {
            Ok(Ok(seen)) => seen.into_iter().for_each(|(k, d)| by_page.entry(k).or_default().push(d)),
            Ok(Err(e)) => {
                eprintln!("console_load: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("console_load: {e}");
                std::process::exit(1);
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: usize = by_page.values().map(Vec::len).sum();
    let mut kinds: Vec<_> = by_page.into_iter().collect();
    kinds.sort_by_key(|(k, _)| *k);
    for (kind, mut d) in kinds {
        d.sort();
        println!("page={kind} requests={} p50_ms={:.1} p99_ms={:.1}", d.len(), ms(&d, 0.5), ms(&d, 0.99));
    }
    let cpu = match (cpu_before, server_cpu_us(a.server_pid)) {
        (Some(b), Some(e)) if total > 0 => format!(" server_cpu_us_per_request={:.0}", (e - b) / total as f64),
        _ => String::new(),
    };
    println!("requests={total} requests_per_s={:.0}{cpu}", total as f64 / elapsed);
}
