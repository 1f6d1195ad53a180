//! Process-wide counters, exposed in the Prometheus text format (0.0.4) on
//! `/metrics`. Plain atomics in fixed arrays: counting an operation is a few
//! relaxed increments, nothing a benchmark would see.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::directory::Directory;
use crate::store::StoreStats;

/// LDAP operations, as counted and logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapOp {
    Bind,
    Search,
    Modify,
    Add,
    Delete,
    ModDn,
    Compare,
    Extended,
}

impl LdapOp {
    const ALL: [LdapOp; 8] = [
        LdapOp::Bind,
        LdapOp::Search,
        LdapOp::Modify,
        LdapOp::Add,
        LdapOp::Delete,
        LdapOp::ModDn,
        LdapOp::Compare,
        LdapOp::Extended,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LdapOp::Bind => "bind",
            LdapOp::Search => "search",
            LdapOp::Modify => "modify",
            LdapOp::Add => "add",
            LdapOp::Delete => "delete",
            LdapOp::ModDn => "modrdn",
            LdapOp::Compare => "compare",
            LdapOp::Extended => "extended",
        }
    }
}

const OPS: usize = LdapOp::ALL.len();
/// LDAP result codes 0–122 are counted one by one; anything above in the last slot.
const CODES: usize = 124;
/// Latency histogram bounds, in seconds.
const BOUNDS: [f64; 12] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5];
const SCIM_METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "other"];

/// A latency histogram: one counter per bound, the overflow, and the sum.
struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    const fn new() -> Histogram {
        Histogram { buckets: [const { AtomicU64::new(0) }; BOUNDS.len() + 1], sum_us: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BOUNDS.iter().position(|&b| secs <= b).unwrap_or(BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let le = BOUNDS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// See [`Metrics::summary`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Summary {
    pub open_connections: u64,
    pub connections: u64,
    pub ldap_operations: u64,
    /// Operations answered with another code than success.
    pub ldap_failures: u64,
    pub bind_failures: u64,
    pub scim_requests: u64,
    pub scim_failures: u64,
}

pub struct Metrics {
    ldap_ops: [[AtomicU64; CODES]; OPS],
    ldap_latency: [Histogram; OPS],
    ldap_connections: AtomicU64,
    ldap_refused_connections: AtomicU64,
    ldap_open_connections: AtomicU64,
    bind_failures: AtomicU64,
    /// By method and status (100–599).
    scim_requests: [[AtomicU64; 500]; SCIM_METHODS.len()],
    scim_latency: [Histogram; SCIM_METHODS.len()],
}

/// The process's counters.
pub static METRICS: Metrics = Metrics {
    ldap_ops: [const { [const { AtomicU64::new(0) }; CODES] }; OPS],
    ldap_latency: [const { Histogram::new() }; OPS],
    ldap_connections: AtomicU64::new(0),
    ldap_refused_connections: AtomicU64::new(0),
    ldap_open_connections: AtomicU64::new(0),
    bind_failures: AtomicU64::new(0),
    scim_requests: [const { [const { AtomicU64::new(0) }; 500] }; SCIM_METHODS.len()],
    scim_latency: [const { Histogram::new() }; SCIM_METHODS.len()],
};

impl Metrics {
    pub fn ldap_operation(&self, op: LdapOp, code: u32, took: Duration) {
        let i = LdapOp::ALL.iter().position(|&o| o == op).unwrap_or(0);
        self.ldap_ops[i][(code as usize).min(CODES - 1)].fetch_add(1, Ordering::Relaxed);
        self.ldap_latency[i].observe(took);
        // RFC 4511 §4.1.9: 49 is invalidCredentials.
        if op == LdapOp::Bind && code == 49 {
            self.bind_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn ldap_connection(&self, admitted: bool) {
        if admitted {
            self.ldap_connections.fetch_add(1, Ordering::Relaxed);
            self.ldap_open_connections.fetch_add(1, Ordering::Relaxed);
        } else {
            self.ldap_refused_connections.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn ldap_connection_closed(&self) {
        self.ldap_open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn scim_request(&self, method: &str, status: u16, took: Duration) {
        let m = SCIM_METHODS.iter().position(|&x| x == method).unwrap_or(SCIM_METHODS.len() - 1);
        let s = usize::from(status).clamp(100, 599) - 100;
        self.scim_requests[m][s].fetch_add(1, Ordering::Relaxed);
        self.scim_latency[m].observe(took);
    }

    /// The figures an administrator reads first (the console's server page).
    pub fn summary(&self) -> Summary {
        let total = |rows: &[[AtomicU64; CODES]], failed: bool| -> u64 {
            rows.iter()
                .flat_map(|r| r.iter().enumerate())
                .filter(|(code, _)| !failed || *code != 0)
                .map(|(_, n)| n.load(Ordering::Relaxed))
                .sum()
        };
        let scim = |from: usize| -> u64 {
            self.scim_requests.iter().flat_map(|r| r.iter().skip(from)).map(|n| n.load(Ordering::Relaxed)).sum()
        };
        Summary {
            open_connections: self.ldap_open_connections.load(Ordering::Relaxed),
            connections: self.ldap_connections.load(Ordering::Relaxed),
            ldap_operations: total(&self.ldap_ops, false),
            ldap_failures: total(&self.ldap_ops, true),
            bind_failures: self.bind_failures.load(Ordering::Relaxed),
            scim_requests: scim(0),
            // Statuses from 500 on: the server's failures, not the clients'.
            scim_failures: scim(400),
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, g: &StoreStats) -> String {
        let mut out = String::with_capacity(16 * 1024);
        out.push_str("# HELP convergences_ldap_operations_total LDAP operations by type and result code.\n");
        out.push_str("# TYPE convergences_ldap_operations_total counter\n");
        for (i, op) in LdapOp::ALL.iter().enumerate() {
            for (code, n) in self.ldap_ops[i].iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "convergences_ldap_operations_total{{op=\"{}\",result=\"{code}\"}} {n}",
                        op.name()
                    );
                }
            }
        }
        out.push_str("# HELP convergences_ldap_operation_seconds LDAP operation latency, request to result.\n");
        out.push_str("# TYPE convergences_ldap_operation_seconds histogram\n");
        for (i, op) in LdapOp::ALL.iter().enumerate() {
            self.ldap_latency[i].render(
                &mut out,
                "convergences_ldap_operation_seconds",
                &format!("op=\"{}\"", op.name()),
            );
        }
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let gauge = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        counter(
            &mut out,
            "convergences_ldap_connections_total",
            "LDAP connections accepted.",
            self.ldap_connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "convergences_ldap_refused_connections_total",
            "LDAP connections refused by a connection limit.",
            self.ldap_refused_connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "convergences_bind_failures_total",
            "Simple binds refused with invalidCredentials.",
            self.bind_failures.load(Ordering::Relaxed),
        );
        let open = self.ldap_open_connections.load(Ordering::Relaxed);
        gauge(&mut out, "convergences_ldap_open_connections", "LDAP connections open now.", open);
        gauge(&mut out, "convergences_store_bytes", "Size of the redb store file.", g.store_bytes);
        gauge(
            &mut out,
            "convergences_redo_log_bytes",
            "Bytes in the redo log since the last checkpoint.",
            g.redo_bytes,
        );
        gauge(&mut out, "convergences_entries", "Entries in the directory.", g.entries);
        out.push_str("# HELP convergences_scim_requests_total SCIM requests by method and HTTP status.\n");
        out.push_str("# TYPE convergences_scim_requests_total counter\n");
        for (m, method) in SCIM_METHODS.iter().enumerate() {
            for (s, n) in self.scim_requests[m].iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let status = s + 100;
                    let _ = writeln!(
                        out,
                        "convergences_scim_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        out.push_str("# HELP convergences_scim_request_seconds SCIM request latency.\n");
        out.push_str("# TYPE convergences_scim_request_seconds histogram\n");
        for (m, method) in SCIM_METHODS.iter().enumerate() {
            self.scim_latency[m].render(&mut out, "convergences_scim_request_seconds", &format!("method=\"{method}\""));
        }
        out
    }
}

/// `/metrics` (Prometheus), `/healthz` (the process answers) and `/readyz`
/// (the store reads and takes writes: 503 otherwise), served beside SCIM.
pub fn routes(directory: Arc<Directory>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(directory)
}

async fn scrape(State(dir): State<Arc<Directory>>) -> Response {
    let stats = tokio::task::spawn_blocking(move || (dir.stats(), dir.replication_status())).await;
    let (stats, replication) = match stats {
        Ok((Ok(s), r)) => (s, r.ok()),
        _ => (StoreStats::default(), None),
    };
    let mut out = METRICS.render(&stats);
    if let Some(r) = replication {
        render_replication(&mut out, &r);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Replication (RFC 4533): the replicas following and their lag behind the
/// contextCSN; as a replica, whether it follows and the age of its last change.
fn render_replication(out: &mut String, r: &crate::directory::replica::ReplicationStatus) {
    let context = r.context_csn.map_or(0, |c| c.micros());
    out.push_str("# HELP convergences_replication_followers Replicas following this server now (persist stage).\n");
    out.push_str("# TYPE convergences_replication_followers gauge\n");
    let _ = writeln!(out, "convergences_replication_followers {}", r.followers.len());
    out.push_str(
        "# HELP convergences_replication_follower_lag_seconds How far a replica's last change sent is behind the contextCSN.\n",
    );
    out.push_str("# TYPE convergences_replication_follower_lag_seconds gauge\n");
    for f in &r.followers {
        let lag = context.saturating_sub(f.at.map_or(0, |c| c.micros())) as f64 / 1e6;
        let peer = f.peer.replace(['"', '\\'], "");
        let _ = writeln!(out, "convergences_replication_follower_lag_seconds{{peer=\"{peer}\"}} {lag}");
    }
    if r.provider.is_some() {
        out.push_str(
            "# HELP convergences_replication_following 1 while this replica follows its provider's changes.\n",
        );
        out.push_str("# TYPE convergences_replication_following gauge\n");
        let _ = writeln!(out, "convergences_replication_following {}", u8::from(r.state == "following"));
        out.push_str("# HELP convergences_replication_last_applied_seconds When this replica last applied a change (Unix time).\n");
        out.push_str("# TYPE convergences_replication_last_applied_seconds gauge\n");
        let _ = writeln!(out, "convergences_replication_last_applied_seconds {}", r.applied_at);
    }
}

async fn ready(State(dir): State<Arc<Directory>>) -> Response {
    match tokio::task::spawn_blocking(move || dir.ready()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response(),
    }
}

/// Count every SCIM request and, with `log_operations`, log it: method, path,
/// status, duration and the token's name (never the token, nor the body).
pub async fn count_scim(log: bool, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let caller = RequestCaller::default();
    let mut req = req;
    req.extensions_mut().insert(caller.clone());
    let resp = next.run(req).await;
    let took = started.elapsed();
    METRICS.scim_request(&method, resp.status().as_u16(), took);
    if log {
        let who = caller.0.lock().map(|c| c.clone()).unwrap_or_default();
        crate::oplog::Line::new("scim")
            .text("method", &method)
            .text("path", &path)
            .text("who", &who)
            .unsigned("status", u64::from(resp.status().as_u16()))
            .unsigned("us", took.as_micros() as u64)
            .write();
    }
    resp
}

/// Filled in by the SCIM authentication with the token's name, for the log line.
#[derive(Clone, Default)]
pub struct RequestCaller(pub Arc<std::sync::Mutex<String>>);
