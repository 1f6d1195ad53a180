//! LDAP front end: bytes ⇄ `LdapMsg` (ldap3_proto's codec) ⇄ directory calls.
//! Never touches redb; every rule lives in the directory core.
//!
//! Each connection has a reader loop (this file) and a writer task. Requests
//! are decoded in order; short ones are answered inline, slow ones (large
//! searches, writes, password checks) run on the blocking pool so that the
//! connection's other operations are still answered. Each operation's
//! response is encoded whole and handed to the writer as one buffer: one
//! socket write per operation, and responses of concurrent operations never
//! interleave mid-message (RFC 4511 §4.1.1.1 allows any order between them).

pub mod ber;
mod controls;
mod convert;
pub mod decode;
mod external;
mod local;
mod oids;
mod ops;
mod paging;
mod result;
mod rootdse;
pub mod syncrepl;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ldap3_proto::proto::{LdapResult, LdapResultCode};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;

use crate::config::Config;
use crate::directory::Directory;
use crate::metrics;
pub use local::serve_local;
pub use ops::Session;

/// What every connection shares.
pub struct Context {
    pub directory: Arc<Directory>,
    pub max_pdu_bytes: usize,
    pub search_size_limit: usize,
    pub search_time_limit: Duration,
    /// `limits.search_rules`: the first that matches the bound identity wins.
    pub search_rules: Vec<SearchRule>,
    pub idle_timeout: Duration,
    /// Paged-results cursors one connection may keep open.
    pub max_paged_cursors: usize,
    /// For LDAPS and StartTLS; `None` when TLS is not set up.
    pub tls: Option<TlsAcceptor>,
    /// Refuse simple binds outside TLS (confidentialityRequired, RFC 4513 §5.1.3 advice).
    pub require_tls_for_bind: bool,
    /// SASL mechanisms offered (EXTERNAL when client certificates are configured).
    pub sasl_mechanisms: Vec<&'static str>,
    pub max_outstanding_ops: usize,
    pub require_bind: bool,
    pub connections: Connections,
    /// One log line per operation (`log_operations`).
    pub log_operations: bool,
    /// The server id of this server's CSNs, in the cookies it gives replicas.
    pub server_id: u16,
    /// Entries between two checks for abandonment in a replica's refresh
    /// (`replication.batch`).
    pub sync_batch: usize,
    /// Who SASL EXTERNAL binds as on the ldapi socket.
    pub local: local::LocalIdentities,
}

/// Open LDAP connections, counted against `limits.max_connections` overall
/// and `limits.max_connections_per_peer` per IP address.
pub struct Connections {
    max: usize,
    max_per_peer: usize,
    open: Mutex<(usize, HashMap<std::net::IpAddr, usize>)>,
}

/// One admitted connection; its slot is given back when it drops.
pub struct Admitted<'c> {
    pool: &'c Connections,
    ip: std::net::IpAddr,
}

impl Connections {
    pub fn new(max: usize, max_per_peer: usize) -> Connections {
        Connections { max, max_per_peer, open: Mutex::new((0, HashMap::new())) }
    }

    /// A slot for a connection from `ip`, or why there is none.
    pub fn admit(&self, ip: std::net::IpAddr) -> Result<Admitted<'_>, &'static str> {
        let mut open = self.open.lock().map_err(|_| "connection accounting is unavailable")?;
        if open.0 >= self.max {
            return Err("too many connections");
        }
        let mine = open.1.entry(ip).or_insert(0);
        if *mine >= self.max_per_peer {
            return Err("too many connections from this address");
        }
        *mine += 1;
        open.0 += 1;
        Ok(Admitted { pool: self, ip })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().map(|o| o.0).unwrap_or(0)
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        metrics::METRICS.ldap_connection_closed();
        if let Ok(mut open) = self.pool.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    open.1.remove(&self.ip);
                }
            }
        }
    }
}

/// One per-identity search limit, its DN normalised (`limits.search_rules`).
pub struct SearchRule {
    who: RuleWho,
    /// Entries at most (0: none).
    pub size: usize,
    /// Time at most (zero: none).
    pub time: Duration,
}

enum RuleWho {
    Anonymous,
    Users,
    Administrators,
    Entry(String),
    Group(String),
}

impl SearchRule {
    fn resolve(dir: &Directory, rule: &crate::config::SearchLimitRule) -> Result<SearchRule, String> {
        let dn = |s: &str| {
            crate::directory::Dn::parse(s.trim())
                .and_then(|d| dir.normalize_dn(&d))
                .map_err(|e| format!("limits.search_rules: '{}': {e}", rule.who))
        };
        let who = match rule.who.trim() {
            "anonymous" => RuleWho::Anonymous,
            "users" => RuleWho::Users,
            "administrators" => RuleWho::Administrators,
            w => match (w.strip_prefix("dn:"), w.strip_prefix("group:")) {
                (Some(d), _) => RuleWho::Entry(dn(d)?),
                (_, Some(g)) => RuleWho::Group(dn(g)?),
                _ => {
                    return Err(format!(
                        "limits.search_rules: who = '{w}' is none of anonymous, users, administrators, dn:<DN>, group:<DN>"
                    ));
                }
            },
        };
        Ok(SearchRule { who, size: rule.size, time: Duration::from_secs(rule.time_secs) })
    }

    /// Whether this rule is about `p`.
    pub fn applies_to(&self, dir: &Directory, p: &crate::directory::Principal) -> bool {
        use crate::directory::Principal;
        match (&self.who, p) {
            (RuleWho::Anonymous, Principal::Anonymous) => true,
            (RuleWho::Users, Principal::Entry(_)) => true,
            (RuleWho::Administrators, Principal::Entry(e)) => e.roles(dir).admin,
            (RuleWho::Entry(ndn), Principal::Entry(e)) => &e.ndn == ndn,
            (RuleWho::Group(g), Principal::Entry(e)) => e.roles(dir).groups.contains(g),
            _ => false,
        }
    }
}

impl Context {
    /// The shared state of the LDAP front end; an error names a setting that
    /// does not make sense.
    pub fn new(directory: Arc<Directory>, cfg: &Config, tls: Option<TlsAcceptor>) -> Result<Context, String> {
        let search_rules =
            cfg.limits.search_rules.iter().map(|r| SearchRule::resolve(&directory, r)).collect::<Result<_, _>>()?;
        let local = local::LocalIdentities::new(&directory, cfg)?;
        Ok(Context {
            directory,
            max_pdu_bytes: cfg.limits.max_pdu_bytes,
            search_size_limit: cfg.limits.search_size,
            search_time_limit: Duration::from_secs(cfg.limits.search_time_secs),
            search_rules,
            idle_timeout: Duration::from_secs(cfg.limits.idle_timeout_secs.max(1)),
            max_paged_cursors: cfg.limits.max_paged_cursors,
            tls,
            require_tls_for_bind: cfg.require_tls_for_bind,
            sasl_mechanisms: if cfg.tls_client_ca.is_some() { vec!["EXTERNAL"] } else { Vec::new() },
            max_outstanding_ops: cfg.limits.max_outstanding_ops.max(1),
            require_bind: cfg.limits.require_bind,
            connections: Connections::new(cfg.limits.max_connections, cfg.limits.max_connections_per_peer),
            log_operations: cfg.log_operations,
            server_id: cfg.replication.server_id,
            sync_batch: cfg.replication.batch.max(1),
            local,
        })
    }
}

/// One connection's shared state: what its operations need once spawned.
pub(crate) struct Conn {
    /// Named in each operation's log line.
    pub id: u64,
    pub ctx: Arc<Context>,
    /// Operations begun and not yet answered, for their metrics and log line.
    pub started: Mutex<HashMap<i32, Started>>,
    /// Responses to write, one buffer per operation (or per 64 KiB of a large search).
    pub out: mpsc::UnboundedSender<Vec<u8>>,
    /// Cancellation flags of the operations in flight, by message ID.
    pub outstanding: Mutex<HashMap<i32, Arc<AtomicBool>>>,
    pub cursors: Mutex<paging::Cursors>,
    /// The connection is ending: operations that would run forever (a
    /// replica's persist stage) stop.
    pub closing: std::sync::atomic::AtomicBool,
}

/// An operation in progress, as its log line will describe it.
pub(crate) struct Started {
    op: metrics::LdapOp,
    at: Instant,
    /// Who asked, and about what (DN, or base and filter); only filled in when
    /// operations are logged. Never a password.
    who: String,
    target: String,
}

impl Conn {
    /// A connection whose responses go to `out`.
    pub fn new(ctx: Arc<Context>, out: mpsc::UnboundedSender<Vec<u8>>) -> Conn {
        Conn {
            id: NEXT_CONN.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            started: Mutex::new(HashMap::new()),
            cursors: Mutex::new(paging::Cursors::new(ctx.max_paged_cursors)),
            ctx,
            out,
            outstanding: Mutex::new(HashMap::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn send(&self, buf: Vec<u8>) {
        if !buf.is_empty() {
            let _ = self.out.send(buf);
        }
    }

    /// Operation `id` starts; `describe` (who, target) is called only when operations are logged.
    pub fn begin(&self, id: i32, op: metrics::LdapOp, describe: impl FnOnce() -> (String, String)) {
        let (who, target) =
            if self.ctx.log_operations && crate::oplog::active() { describe() } else { Default::default() };
        if let Ok(mut s) = self.started.lock() {
            s.insert(id, Started { op, at: Instant::now(), who, target });
        }
    }

    /// The final LDAPResult PDU of operation `id`, counted and logged.
    pub fn result_pdu(&self, id: i32, tag: u8, res: &LdapResult, ctrls: &[ber::ResponseControl]) -> Vec<u8> {
        self.finish(id, res);
        let mut out = Vec::with_capacity(32 + res.message.len());
        ber::result(&mut out, id, tag, res, ctrls);
        out
    }

    /// The ExtendedResponse PDU of operation `id`, counted and logged.
    pub fn extended_pdu(&self, id: i32, res: &LdapResult, name: Option<&str>, value: Option<&[u8]>) -> Vec<u8> {
        self.finish(id, res);
        let mut out = Vec::new();
        ber::extended(&mut out, id, res, name, value, &[]);
        out
    }

    /// [`Conn::extended_pdu`] without a name, with response controls.
    pub fn extended_pdu_with(
        &self,
        id: i32,
        res: &LdapResult,
        value: Option<&[u8]>,
        ctrls: &[ber::ResponseControl],
    ) -> Vec<u8> {
        self.finish(id, res);
        let mut out = Vec::new();
        ber::extended(&mut out, id, res, None, value, ctrls);
        out
    }

    fn finish(&self, id: i32, res: &LdapResult) {
        let Some(s) = self.started.lock().ok().and_then(|mut s| s.remove(&id)) else { return };
        let took = s.at.elapsed();
        let code = res.code.clone() as i64;
        metrics::METRICS.ldap_operation(s.op, u32::try_from(code).unwrap_or(u32::MAX), took);
        if self.ctx.log_operations {
            crate::oplog::Line::new("ldap")
                .unsigned("conn", self.id)
                .signed("msgid", i64::from(id))
                .quoted("op", s.op.name())
                .text("who", &s.who)
                .text("object", &s.target)
                .signed("result", code)
                .text("diagnostic", &res.message)
                .unsigned("us", took.as_micros() as u64)
                .write();
        }
    }
}

/// Accept connections until `shutdown` turns true; one task per connection.
/// With `implicit_tls` (LDAPS) the TLS handshake comes first.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>, implicit_tls: bool) {
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((mut stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        let admitted = ctx.connections.admit(peer.ip());
                        metrics::METRICS.ldap_connection(admitted.is_ok());
                        let _slot = match admitted {
                            Ok(slot) => slot,
                            Err(why) => {
                                // Told in plain text even on LDAPS: no handshake is spent on a refusal.
                                tracing::warn!(%peer, "connection refused: {why}");
                                let _ = stream.write_all(&ops::notice(LdapResultCode::Unavailable, why)).await;
                                let _ = stream.shutdown().await;
                                return;
                            }
                        };
                        tracing::debug!(%peer, "connection opened");
                        connection(stream, peer, ctx.clone(), shutdown, implicit_tls).await;
                        tracing::debug!(%peer, "connection closed");
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}

/// One plain session over any stream, from its first PDU to its close: what
/// a TCP connection gets once admitted. For the fuzz target.
pub async fn session<S>(stream: S, ctx: Arc<Context>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (_tx, shutdown) = watch::channel(false);
    let session = Session { peer: "fuzz".into(), ..Session::default() };
    let _ = run(stream, ctx, shutdown, session).await;
}

/// Connection ids, for the log.
static NEXT_CONN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a session over one stream ended.
enum Outcome<S> {
    Closed,
    /// The client asked for StartTLS and was told yes: the same stream, to upgrade.
    StartTls(S, Session),
}

async fn connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    ctx: Arc<Context>,
    shutdown: watch::Receiver<bool>,
    implicit_tls: bool,
) {
    let session = Session { peer: peer.to_string(), ..Session::default() };
    if implicit_tls {
        over_tls(tcp, ctx, shutdown, session).await;
        return;
    }
    if let Outcome::StartTls(tcp, session) = run(tcp, ctx.clone(), shutdown.clone(), session).await {
        // STYLE B6 / Stalwart's into_tls: the same session state continues over TLS.
        over_tls(tcp, ctx, shutdown, session).await;
    }
}

/// Handshake (bounded in time), then serve the session over TLS.
async fn over_tls(tcp: TcpStream, ctx: Arc<Context>, shutdown: watch::Receiver<bool>, session: Session) {
    let Some(acceptor) = ctx.tls.clone() else { return };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => {
            // A client certificate, when one was presented and verified, names
            // the identity SASL EXTERNAL binds as.
            let client_dn = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .and_then(|c| external::subject_dn(c.as_ref()));
            let session = Session { is_tls: true, tls_client_dn: client_dn, ..session };
            // A second StartTLS on this stream is refused by `run`.
            let _ = run(tls, ctx, shutdown, session).await;
        }
        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
        Err(_) => tracing::debug!("TLS handshake timed out"),
    }
}

/// Serve one stream until it closes, or until a StartTLS hands it back.
async fn run<S>(stream: S, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>, mut session: Session) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, mut wr) = tokio::io::split(stream);
    let mut reader = FramedRead::new(rd, decode::RequestCodec::new(ctx.max_pdu_bytes));
    // Responses of operations running elsewhere come back through this
    // channel; this task writes everything, so an inline answer costs no hop.
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let conn = Arc::new(Conn::new(ctx, tx));
    let mut upgrade = false;
    let mut healthy = true;
    loop {
        let next = tokio::select! {
            biased;
            Some(buf) = rx.recv() => {
                if wr.write_all(&buf).await.is_err() {
                    healthy = false;
                    break;
                }
                continue;
            }
            _ = shutdown.changed() => {
                conn.send(ops::notice(LdapResultCode::Unavailable, "server shutting down"));
                break;
            }
            n = tokio::time::timeout(conn.ctx.idle_timeout, reader.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                if conn.outstanding.lock().map(|o| o.is_empty()).unwrap_or(true) {
                    conn.send(ops::notice(LdapResultCode::Other, "idle timeout"));
                    break;
                }
                continue;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                // RFC 4511 §4.1.1: a PDU we cannot parse (or one over the size
                // limit, refused before it is buffered whole) ends the
                // connection with a Notice of Disconnection.
                tracing::info!("protocol error, closing connection: {e}");
                conn.send(ops::notice(LdapResultCode::ProtocolError, "malformed or oversized PDU"));
                break;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        match ops::dispatch(&conn, &mut session, msg).await {
            ops::Reply::Silent | ops::Reply::Pending(_) => {}
            ops::Reply::Now(buf) => {
                if wr.write_all(&buf).await.is_err() {
                    healthy = false;
                    break;
                }
            }
            ops::Reply::StartTls(buf) => {
                conn.send(buf);
                upgrade = true;
                break;
            }
            // RFC 4511 §4.4.1: after a Notice of Disconnection the server closes.
            ops::Reply::Close(buf) => {
                conn.send(buf);
                break;
            }
        }
        // Write what the operation answered inline, in one write.
        while let Ok(buf) = rx.try_recv() {
            if wr.write_all(&buf).await.is_err() {
                healthy = false;
                break;
            }
        }
        if !healthy {
            break;
        }
    }
    // Let operations still running finish and write their answers, then close or upgrade.
    conn.closing.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(conn);
    while let Some(buf) = rx.recv().await {
        if healthy && wr.write_all(&buf).await.is_err() {
            healthy = false;
        }
    }
    if upgrade && healthy {
        // Plain text pipelined after the StartTLS request would be read as if
        // protected (RFC 4513 §3.1.1): refuse the connection instead.
        if !reader.read_buffer().is_empty() {
            return Outcome::Closed;
        }
        return Outcome::StartTls(reader.into_inner().unsplit(wr), session);
    }
    let _ = wr.shutdown().await;
    Outcome::Closed
}
