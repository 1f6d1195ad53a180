//! LDAP front end: bytes ⇄ `LdapMsg` (ldap3_proto's codec) ⇄ directory calls.
//! Never touches redb; every rule lives in the directory core.

mod convert;
mod ops;
mod result;
mod rootdse;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ldap3_proto::LdapCodec;
use ldap3_proto::proto::{LdapMsg, LdapOp, LdapResultCode};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::codec::Framed;

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
    let mut framed = Framed::new(stream, LdapCodec::new(Some(ctx.max_pdu_bytes), None));
    let mut session = Session::default();
    loop {
        let next = tokio::select! {
            _ = shutdown.changed() => {
                let _ = framed.send(notice(LdapResultCode::Unavailable, "server shutting down")).await;
                return;
            }
            n = tokio::time::timeout(ctx.idle_timeout, framed.next()) => n,
        };
        let msg = match next {
            Err(_) => {
                let _ = framed.send(notice(LdapResultCode::Other, "idle timeout")).await;
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                // RFC 4511 §4.1.1: a PDU we cannot parse ends the connection with a Notice of Disconnection.
                tracing::info!("protocol error, closing connection: {e}");
                let _ = framed
                    .send(notice(LdapResultCode::ProtocolError, "malformed or oversized PDU"))
                    .await;
                return;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        if matches!(msg.op, LdapOp::UnbindRequest) {
            return;
        }
        let replies = ops::handle(&ctx, &mut session, msg).await;
        let n = replies.len();
        for (i, reply) in replies.into_iter().enumerate() {
            // One flush per operation: feed every message, send (and flush) the last.
            let r = if i + 1 == n {
                framed.send(reply).await
            } else {
                framed.feed(reply).await
            };
            if r.is_err() {
                return;
            }
        }
    }
}

/// RFC 4511 §4.4.1 Notice of Disconnection.
fn notice(code: LdapResultCode, msg: &str) -> LdapMsg {
    ldap3_proto::DisconnectionNotice::gen_response(code, msg)
}
