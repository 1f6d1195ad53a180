//! This server following a provider (RFC 4533 consumer): another
//! Convergences, or an OpenLDAP slapd during a migration. It binds, asks
//! for a sync search with the cookie it keeps in its store, and applies
//! what it is sent in its own transactions, each with the cookie that
//! follows it: a restart, or a provider gone mid-refresh, resumes from the
//! last state committed, with a backoff between attempts.

pub mod wire;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ldap3_proto::LdapCodec;
use ldap3_proto::control::LdapControl;
use ldap3_proto::proto::{
    LdapBindCred, LdapBindRequest, LdapDerefAliases, LdapFilter, LdapMsg, LdapOp, LdapSearchRequest, LdapSearchScope,
    SyncRequestMode,
};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio_util::codec::Encoder;

use crate::config::Consumer;
use crate::directory::replica::Replicated;
use crate::directory::{Directory, Dn};
use wire::{Info, Response};

/// Longest wait between two attempts to reach the provider.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The result code a provider sends when the cookie is too old to refresh
/// from and the consumer must start over (RFC 4533 §2.6 e-syncRefreshRequired).
const SYNC_REFRESH_REQUIRED: u32 = 4096;

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How a session with the provider ended without an error.
enum Ended {
    Shutdown,
    /// A refreshOnly search is done: the next one after the interval.
    Refreshed,
}

/// Follow the provider until the server stops or is promoted.
pub async fn follow(dir: Arc<Directory>, cfg: Consumer, max_pdu: usize, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_secs(1);
    loop {
        if *shutdown.borrow() || dir.replica_of().is_none() {
            return;
        }
        dir.set_replica_state("connecting");
        let wait = match session(&dir, &cfg, max_pdu, &mut shutdown).await {
            Ok(Ended::Shutdown) => return,
            Ok(Ended::Refreshed) => {
                backoff = Duration::from_secs(1);
                Duration::from_secs(cfg.interval_secs.max(1))
            }
            Err(e) => {
                tracing::warn!(provider = %cfg.provider, "replication: {e}; next attempt in {}s", backoff.as_secs());
                dir.set_replica_state(format!("retrying: {e}"));
                let w = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                w
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn connect(cfg: &Consumer) -> Result<Box<dyn Stream>, String> {
    let (tls, rest) = if let Some(r) = cfg.provider.strip_prefix("ldaps://") {
        (true, r)
    } else if let Some(r) = cfg.provider.strip_prefix("ldap://") {
        (false, r)
    } else {
        return Err(format!("provider {}: not an ldap:// or ldaps:// URL", cfg.provider));
    };
    let hostport = rest.trim_end_matches('/');
    let addr = if hostport.contains(':') {
        hostport.to_string()
    } else {
        format!("{hostport}:{}", if tls { 636 } else { 389 })
    };
    let tcp = tokio::net::TcpStream::connect(&addr).await.map_err(|e| format!("cannot reach {addr}: {e}"))?;
    if !tls {
        return Ok(Box::new(tcp));
    }
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &cfg.tls_ca {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        for c in CertificateDer::pem_file_iter(ca).map_err(|e| format!("{}: {e}", ca.display()))? {
            roots.add(c.map_err(|e| format!("{}: {e}", ca.display()))?).map_err(|e| e.to_string())?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h).trim_matches(['[', ']']).to_string();
    let name = rustls_pki_types::ServerName::try_from(host).map_err(|e| format!("provider name: {e}"))?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("TLS with {addr}: {e}"))?;
    Ok(Box::new(stream))
}

async fn send(w: &mut (impl AsyncWrite + Unpin), msg: LdapMsg) -> Result<(), String> {
    let mut buf = bytes::BytesMut::new();
    LdapCodec::default().encode(msg, &mut buf).map_err(|e| format!("encoding a request: {e}"))?;
    w.write_all(&buf).await.map_err(|e| format!("writing to the provider: {e}"))
}

/// What a refresh has named so far, for the end of a present phase, and
/// how much it brought.
#[derive(Default)]
struct Refresh {
    seen: HashSet<[u8; 16]>,
    entries: usize,
    deletes: usize,
}

/// Apply `pending` (and the cookie) on the blocking pool.
async fn apply(dir: &Arc<Directory>, pending: &mut Vec<Replicated>, cookie: Option<Vec<u8>>) -> Result<(), String> {
    if pending.is_empty() && cookie.is_none() {
        return Ok(());
    }
    let changes = std::mem::take(pending);
    let dir = dir.clone();
    tokio::task::spawn_blocking(move || dir.apply_replicated(&changes, cookie.as_deref()))
        .await
        .map_err(|e| e.to_string())?
        .map(|_| ())
        .map_err(|e| format!("applying the provider's changes: {e}"))
}

async fn session(
    dir: &Arc<Directory>,
    cfg: &Consumer,
    max_pdu: usize,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Ended, String> {
    let stream = connect(cfg).await?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let password = cfg.password()?;
    let bind = LdapBindRequest { version: 3, dn: cfg.bind_dn.clone(), cred: LdapBindCred::Simple(password) };
    send(&mut wr, LdapMsg { msgid: 1, op: LdapOp::BindRequest(bind), ctrl: vec![] }).await?;
    match wire::decode(&wire::read_message(&mut rd, max_pdu).await.map_err(|e| e.to_string())?) {
        Some((_, Response::Bind { code: 0, .. })) => {}
        Some((_, Response::Bind { code, message })) => {
            return Err(format!("the provider refused the bind as {} ({code}: {message})", cfg.bind_dn));
        }
        _ => return Err("the provider answered the bind with something else".into()),
    }
    let cookie = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || dir.replication_cookie()).await.map_err(|e| e.to_string())?
    }
    .map_err(|e| e.to_string())?;
    let persist = cfg.mode != "refreshOnly";
    let mode = if persist { SyncRequestMode::RefreshAndPersist } else { SyncRequestMode::RefreshOnly };
    let search = LdapSearchRequest {
        base: cfg.search_base.clone(),
        scope: LdapSearchScope::Subtree,
        aliases: LdapDerefAliases::Never,
        sizelimit: 0,
        timelimit: 0,
        typesonly: false,
        filter: LdapFilter::Present("objectClass".into()),
        attrs: ["*", "+", "cigRevision", "cigValidityEnded"].map(String::from).to_vec(),
    };
    let sync = LdapControl::SyncRequest { criticality: true, mode, cookie, reload_hint: false };
    send(&mut wr, LdapMsg { msgid: 2, op: LdapOp::SearchRequest(search), ctrl: vec![sync] }).await?;
    let base = Dn::parse(&cfg.search_base).map_err(|e| format!("search_base: {e}"))?;
    dir.set_replica_state("refreshing");
    let mut pending: Vec<Replicated> = Vec::new();
    let mut refresh = Some(Refresh::default());
    let batch = cfg.batch.max(1);
    let mut promoted = tokio::time::interval(Duration::from_secs(1));
    loop {
        let msg = tokio::select! {
            m = wire::read_message(&mut rd, max_pdu) => m.map_err(|e| format!("the provider closed the search: {e}"))?,
            _ = shutdown.changed() => return Ok(Ended::Shutdown),
            _ = promoted.tick() => {
                if dir.replica_of().is_none() {
                    return Ok(Ended::Shutdown);
                }
                continue;
            }
        };
        let Some((_, response)) = wire::decode(&msg) else {
            return Err("the provider sent a message the consumer cannot read".into());
        };
        match response {
            Response::Entry { entry, state: Some((state, uuid, cookie)) } => {
                if let Some(r) = refresh.as_mut() {
                    r.seen.insert(uuid);
                    r.entries += usize::from(state == 1 || state == 2);
                    r.deletes += usize::from(state == 3);
                }
                match state {
                    1 | 2 => pending.push(Replicated::Upsert(entry)),
                    3 => pending.push(Replicated::Delete(uuid)),
                    _ => {}
                }
                if cookie.is_some() || pending.len() >= batch {
                    apply(dir, &mut pending, cookie).await?;
                }
            }
            Response::Entry { entry, state: None } => {
                return Err(format!("the provider sent {} without a Sync State control", entry.dn));
            }
            Response::Info(Info::NewCookie(c)) => apply(dir, &mut pending, Some(c)).await?,
            Response::Info(Info::IdSet { cookie, deletes, uuids }) => {
                if deletes {
                    if let Some(r) = refresh.as_mut() {
                        r.deletes += uuids.len();
                    }
                    pending.extend(uuids.into_iter().map(Replicated::Delete));
                } else if let Some(r) = refresh.as_mut() {
                    r.seen.extend(uuids);
                }
                if cookie.is_some() || pending.len() >= batch {
                    apply(dir, &mut pending, cookie).await?;
                }
            }
            Response::Info(Info::RefreshDone { deletes, cookie, .. }) => {
                end_refresh(dir, &base, refresh.take(), deletes, &mut pending).await?;
                apply(dir, &mut pending, cookie).await?;
                tracing::info!(provider = %cfg.provider, "replication: refreshed, following the provider's changes");
                dir.set_replica_state("following");
            }
            Response::Done { code: 0, cookie, refresh_deletes, .. } => {
                end_refresh(dir, &base, refresh.take(), refresh_deletes, &mut pending).await?;
                apply(dir, &mut pending, cookie).await?;
                dir.set_replica_state("refreshed, waiting for the next refresh");
                return Ok(Ended::Refreshed);
            }
            Response::Done { code: SYNC_REFRESH_REQUIRED, .. } => {
                // The provider cannot refresh from our cookie: start over.
                apply(dir, &mut pending, Some(Vec::new())).await?;
                return Err("the provider asks for a full refresh".into());
            }
            Response::Done { code, message, .. } => {
                return Err(format!("the provider ended the sync search ({code}: {message})"));
            }
            Response::Bind { .. } | Response::Other { .. } => {}
        }
    }
}

/// The end of a refresh stage: in the present phase, what the provider did
/// not name is gone (RFC 4533 §3.3.1); in the delete phase it said so.
async fn end_refresh(
    dir: &Arc<Directory>,
    base: &Dn,
    refresh: Option<Refresh>,
    deletes: bool,
    pending: &mut Vec<Replicated>,
) -> Result<(), String> {
    let Some(refresh) = refresh else { return Ok(()) };
    let mut gone = 0;
    if !deletes {
        // What is pending is applied first: an entry named in this refresh is kept.
        apply(dir, pending, None).await?;
        let local = {
            let (dir, base) = (dir.clone(), base.clone());
            tokio::task::spawn_blocking(move || dir.uuids_under(&base)).await.map_err(|e| e.to_string())?
        }
        .map_err(|e| e.to_string())?;
        let before = pending.len();
        pending.extend(local.into_iter().filter(|u| !refresh.seen.contains(u)).map(Replicated::Delete));
        gone = pending.len() - before;
    }
    tracing::info!(
        entries = refresh.entries,
        deletes = refresh.deletes + gone,
        phase = if deletes { "delete" } else { "present" },
        "replication: the refresh brought {} entries and {} deletions",
        refresh.entries,
        refresh.deletes + gone
    );
    Ok(())
}
