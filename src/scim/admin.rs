//! Online backup, LDIF export and the administration commands for the
//! centre's administrators: a CIG token (the whole directory), never an
//! organisation's. Backups and exports read one snapshot while the server
//! keeps serving, and stream what they write.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;

use super::{Caller, ScimContext, ScimError};
use crate::directory::{Directory, TokenScope};

/// GET `/admin/backup`: the store, as `convergences restore` reads it.
pub async fn backup(caller: Caller, State(ctx): State<Arc<ScimContext>>) -> Result<Response, ScimError> {
    only_cig(&caller)?;
    Ok(stream("application/octet-stream", &ctx, |dir, out| dir.backup(out).map(|_| ()).map_err(|e| e.to_string())))
}

/// GET `/admin/export`: every entry as LDIF, parents first (as `convergences export`).
pub async fn export(caller: Caller, State(ctx): State<Arc<ScimContext>>) -> Result<Response, ScimError> {
    only_cig(&caller)?;
    Ok(stream("text/plain; charset=utf-8", &ctx, |dir, out| crate::ldif::export(dir, out).map_err(|e| e.to_string())))
}

/// POST `/admin/command`: a `convergences` command (`token`, `audit`,
/// `check`) as JSON, run as the token's identity; its output as JSON. A
/// backup or an export is the GET above: over HTTP the file is the client's.
pub async fn command(
    caller: Caller,
    State(ctx): State<Arc<ScimContext>>,
    body: Bytes,
) -> Result<axum::Json<crate::commands::Outcome>, ScimError> {
    only_cig(&caller)?;
    let cmd: crate::commands::Command =
        serde_json::from_slice(&body).map_err(|e| ScimError::invalid_syntax(format!("not a command: {e}")))?;
    if matches!(cmd, crate::commands::Command::Backup { .. } | crate::commands::Command::Export { .. }) {
        return Err(ScimError::new(
            StatusCode::BAD_REQUEST,
            None,
            "backups and exports are GET /admin/backup and /admin/export",
        ));
    }
    let dir = ctx.directory.clone();
    let outcome = tokio::task::spawn_blocking(move || crate::commands::run(&dir, &caller.1, &cmd))
        .await
        .map_err(|e| ScimError::new(StatusCode::INTERNAL_SERVER_ERROR, None, e.to_string()))?;
    Ok(axum::Json(outcome.map_err(ScimError::from)?))
}

fn only_cig(caller: &Caller) -> Result<(), ScimError> {
    match caller.0 {
        TokenScope::Cig => {
            tracing::info!(peer = %caller.1.peer, "administration request (backup, export or command)");
            Ok(())
        }
        TokenScope::Organisation(_) => {
            Err(ScimError::new(StatusCode::FORBIDDEN, None, "backups and exports take a CIG token"))
        }
    }
}

/// A response whose body `produce` writes on the blocking pool, 64 KiB at a time.
fn stream(
    content_type: &'static str,
    ctx: &ScimContext,
    produce: impl FnOnce(&Directory, &mut ChannelWriter) -> Result<(), String> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let dir = ctx.directory.clone();
    let stall_limit = ctx.stall_limit;
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter { tx, buf: Vec::with_capacity(CHUNK), stall_limit };
        match produce(&dir, &mut out).and_then(|()| out.flush().map_err(|e| e.to_string())) {
            Ok(()) => {}
            // The client sees a truncated body, which restore refuses (checksum).
            Err(e) => {
                tracing::warn!("online backup or export failed: {e}");
                let _ = out.tx.blocking_send(Err(std::io::Error::other(e)));
            }
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    ([(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response()
}

const CHUNK: usize = 64 * 1024;

/// `Write` into the response body's channel.
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
    /// How long the client may leave the stream unread (`scim_limits.stall_secs`).
    stall_limit: std::time::Duration,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut chunk = Ok(Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK))));
        // A client that stops reading without closing must not hold the
        // snapshot and this thread for ever.
        let deadline = std::time::Instant::now() + self.stall_limit;
        loop {
            match self.tx.try_send(chunk) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(std::io::Error::other("the client went away")),
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if std::time::Instant::now() > deadline {
                        return Err(std::io::Error::other("the client stopped reading"));
                    }
                    chunk = back;
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
            }
        }
    }
}
