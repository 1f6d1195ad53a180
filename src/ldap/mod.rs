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

mod ber;
mod convert;
mod ops;
mod paging;
mod result;
mod rootdse;

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapOp, LdapResultCode};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_util::codec::FramedRead;

use crate::config::Config;
use crate::directory::Directory;
pub use ops::Session;

/// What every connection shares.
pub struct Context {
    pub directory: Arc<Directory>,
    /// Normalised DNs treated as administrators besides `cn=admin,<suffix>`
    /// and the members of `cn=administrateurs,ou=admins,<suffix>`.
    pub admins: Vec<String>,
    pub max_pdu_bytes: usize,
    pub search_size_limit: usize,
    pub search_time_limit: Duration,
    pub idle_timeout: Duration,
    /// Paged-results cursors one connection may keep open.
    pub max_paged_cursors: usize,
}

impl Context {
    pub fn new(directory: Arc<Directory>, cfg: &Config) -> Context {
        let admins = cfg
            .admins
            .iter()
            .filter_map(|a| crate::directory::Dn::parse(a).ok())
            .filter_map(|dn| directory.normalize_dn(&dn).ok())
            .collect();
        Context {
            directory,
            admins,
            max_pdu_bytes: cfg.limits.max_pdu_bytes,
            search_size_limit: cfg.limits.search_size,
            search_time_limit: Duration::from_secs(cfg.limits.search_time_secs),
            idle_timeout: Duration::from_secs(cfg.limits.idle_timeout_secs.max(1)),
            max_paged_cursors: cfg.limits.max_paged_cursors,
        }
    }
}

/// One connection's shared state: what its operations need once spawned.
pub(crate) struct Conn {
    pub ctx: Arc<Context>,
    /// Responses to write, one buffer per operation (or per 64 KiB of a large search).
    pub out: mpsc::UnboundedSender<Vec<u8>>,
    /// Cancellation flags of the operations in flight, by message ID.
    pub outstanding: Mutex<HashMap<i32, Arc<AtomicBool>>>,
    pub cursors: Mutex<paging::Cursors>,
}

impl Conn {
    pub fn send(&self, buf: Vec<u8>) {
        if !buf.is_empty() {
            let _ = self.out.send(buf);
        }
    }
}

/// Accept connections until `shutdown` turns true; one task per connection.
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(5);
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        tracing::debug!(%peer, "connection opened");
                        connection(stream, ctx, shutdown).await;
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

async fn connection(stream: TcpStream, ctx: Arc<Context>, mut shutdown: watch::Receiver<bool>) {
    let (rd, mut wr) = stream.into_split();
    let mut reader = FramedRead::new(rd, LdapCodec::new(Some(ctx.max_pdu_bytes), None));
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer = tokio::spawn(async move {
        while let Some(buf) = rx.recv().await {
            if wr.write_all(&buf).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let conn = Arc::new(Conn {
        cursors: Mutex::new(paging::Cursors::new(ctx.max_paged_cursors)),
        ctx,
        out: tx,
        outstanding: Mutex::new(HashMap::new()),
    });
    let mut session = Session::default();
    loop {
        let next = tokio::select! {
            _ = shutdown.changed() => {
                conn.send(notice(LdapResultCode::Unavailable, "server shutting down"));
                break;
            }
            n = tokio::time::timeout(conn.ctx.idle_timeout, reader.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                if conn.outstanding.lock().map(|o| o.is_empty()).unwrap_or(true) {
                    conn.send(notice(LdapResultCode::Other, "idle timeout"));
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
                conn.send(notice(LdapResultCode::ProtocolError, "malformed or oversized PDU"));
                break;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        if matches!(msg.op, LdapOp::UnbindRequest) {
            break;
        }
        ops::dispatch(&conn, &mut session, msg).await;
    }
    // Let spawned operations finish (they hold senders), then close.
    drop(conn);
    let _ = writer.await;
}

/// RFC 4511 §4.4.1 Notice of Disconnection, encoded.
fn notice(code: LdapResultCode, msg: &str) -> Vec<u8> {
    let mut out = Vec::new();
    ber::encode_msg(&mut out, ldap3_proto::DisconnectionNotice::gen_response(code, msg));
    out
}
