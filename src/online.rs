//! How the command line reaches a running server, which holds the store:
//! its ldapi socket (SASL EXTERNAL as this process's uid; the default on
//! the server's machine), or its plain-HTTP listener with a CIG token
//! (`--url`, from anywhere).

use std::io::Write;
use std::path::Path;

use crate::app::{AppError, open_directory};
use crate::commands::{Command, Outcome};
use crate::config::Config;

/// The largest command output read back from the ldapi socket.
const MAX_ANSWER_BYTES: usize = 1 << 30;

/// What `--url` and `--token` give: the server's scim_http base URL and a CIG token.
pub struct Remote<'a> {
    pub url: &'a str,
    pub token: &'a str,
}

/// Download `path` (`/admin/backup`, `/admin/export`) from a running
/// server's plain-HTTP SCIM listener into `out`, with a CIG token. Over
/// HTTPS, use curl with the same URL and header.
pub async fn fetch(url: &str, token: &str, path: &str, out: &Path) -> Result<u64, AppError> {
    use http_body_util::BodyExt;
    let http = |e: String| AppError::Http(format!("{url}: {e}"));
    let (mut sender, host) = connect(url).await?;
    let req = hyper::Request::get(path)
        .header(hyper::header::HOST, host)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| http(e.to_string()))?;
    let mut resp = sender.send_request(req).await.map_err(|e| http(e.to_string()))?;
    if !resp.status().is_success() {
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        return Err(http(String::from_utf8_lossy(&body).into_owned()));
    }
    let partial = crate::commands::partial_path(out);
    let mut file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
    let mut written = 0u64;
    let copied: Result<(), AppError> = async {
        while let Some(frame) = resp.body_mut().frame().await {
            let frame = frame.map_err(|e| http(format!("the transfer broke off: {e}")))?;
            if let Some(data) = frame.data_ref() {
                file.write_all(data)?;
                written += data.len() as u64;
            }
        }
        file.flush()?;
        file.get_ref().sync_all()?;
        Ok(())
    }
    .await;
    match copied {
        Ok(()) => {
            std::fs::rename(&partial, out)?;
            Ok(written)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Run an administration command: on the server at `remote` when given;
/// else through the running server when one answers on the ldapi socket (it
/// holds the store), else on the data directory. A store locked by a server
/// that does not answer there is [`AppError::Running`].
pub fn run_command(cfg: &Config, remote: Option<Remote<'_>>, cmd: &Command) -> Result<Outcome, AppError> {
    if let Some(remote) = remote {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        return rt.block_on(post_command(&remote, cmd));
    }
    if let Some(path) = cfg.ldapi_path()
        && let Ok(stream) = std::os::unix::net::UnixStream::connect(&path)
    {
        stream.set_nonblocking(true)?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        return rt.block_on(async { ask_server(&path, tokio::net::UnixStream::from_std(stream)?, cmd).await });
    }
    let directory = open_directory(cfg)?;
    Ok(crate::commands::run(&directory, &crate::directory::Actor::new(""), cmd)?)
}

/// Send `cmd` over `stream`, connected to the ldapi socket at `path`, bound
/// with SASL EXTERNAL as this process's uid maps.
async fn ask_server(path: &Path, stream: tokio::net::UnixStream, cmd: &Command) -> Result<Outcome, AppError> {
    use futures_util::{SinkExt, StreamExt};
    use ldap3_proto::proto::{
        LdapBindCred, LdapBindRequest, LdapExtendedRequest, LdapMsg, LdapOp, LdapResultCode, SaslCredentials,
    };
    let server = |why: String| AppError::Setting(format!("the server on {}: {why}", path.display()));
    // The whole output comes back in one response (an audit trail runs to
    // megabytes): the codec's default limit of 32 KiB would refuse it.
    let codec = ldap3_proto::LdapCodec::new(Some(MAX_ANSWER_BYTES), None);
    let mut framed = tokio_util::codec::Framed::new(stream, codec);
    let bind = LdapBindRequest {
        version: 3,
        dn: String::new(),
        cred: LdapBindCred::SASL(SaslCredentials { mechanism: "EXTERNAL".into(), credentials: Vec::new() }),
    };
    let value = serde_json::to_vec(cmd).map_err(|e| server(e.to_string()))?;
    let ext = LdapExtendedRequest { name: crate::commands::OID.into(), value: Some(value) };
    for (id, op) in [(1, LdapOp::BindRequest(bind)), (2, LdapOp::ExtendedRequest(ext))] {
        framed.send(LdapMsg::new(id, op)).await.map_err(|e| server(e.to_string()))?;
        let reply = framed.next().await.ok_or_else(|| server("closed the connection".into()))?;
        let reply = reply.map_err(|e| server(e.to_string()))?;
        match reply.op {
            LdapOp::BindResponse(r) if r.res.code == LdapResultCode::Success => {}
            LdapOp::BindResponse(r) => return Err(server(format!("refused the local bind: {}", r.res.message))),
            LdapOp::ExtendedResponse(r) if r.res.code == LdapResultCode::Success => {
                let value = r.value.unwrap_or_default();
                return serde_json::from_slice(&value)
                    .map_err(|e| server(format!("an answer that does not decode: {e}")));
            }
            LdapOp::ExtendedResponse(r) => return Err(server(r.res.message)),
            other => return Err(server(format!("an unexpected answer: {other:?}"))),
        }
    }
    Err(server("no answer".into()))
}

/// POST `cmd` to `/admin/command` of the server at `remote`.
async fn post_command(remote: &Remote<'_>, cmd: &Command) -> Result<Outcome, AppError> {
    use http_body_util::BodyExt;
    let url = remote.url;
    let http = |e: String| AppError::Http(format!("{url}: {e}"));
    let (mut sender, host) = connect(url).await?;
    let body = serde_json::to_vec(cmd).map_err(|e| http(e.to_string()))?;
    let req = hyper::Request::post("/admin/command")
        .header(hyper::header::HOST, host)
        .header(hyper::header::AUTHORIZATION, format!("Bearer {}", remote.token))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .map_err(|e| http(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| http(e.to_string()))?;
    let ok = resp.status().is_success();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes()).map_err(|e| http(e.to_string()))?;
    if !ok {
        return Err(http(String::from_utf8_lossy(&body).into_owned()));
    }
    serde_json::from_slice(&body).map_err(|e| http(format!("an answer that does not decode: {e}")))
}

/// An HTTP/1 connection to the plain-HTTP listener at `url`, and its Host header.
async fn connect<B>(url: &str) -> Result<(hyper::client::conn::http1::SendRequest<B>, String), AppError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = |e: String| AppError::Http(format!("{url}: {e}"));
    let uri: hyper::Uri = url.parse().map_err(|e| http(format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(http("only http:// URLs (the scim_http listener); for https, use curl".into()));
    }
    let host = uri.host().ok_or_else(|| http("no host".into()))?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| http(e.to_string()))?;
    tokio::spawn(conn);
    Ok((sender, format!("{host}:{port}")))
}
