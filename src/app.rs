//! Composition root: open the store, load the schema, build the directory,
//! bind listeners, run the command-line verbs.

use std::io::{BufReader, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::directory::{Actor, AddMode, Directory, DirectorySettings, Dn, Schema};
use crate::oplog;
use crate::store::Store;

/// Why the server or a command could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("schema: {0}")]
    Schema(#[from] crate::directory::schema::SchemaError),
    #[error("store {path}: {source}")]
    Store { path: String, source: crate::store::StoreError },
    #[error("{0}")]
    Directory(#[from] crate::directory::DirectoryError),
    #[error("{0}")]
    Http(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("SCIM schemas: {0}")]
    Scim(String),
    #[error("suffix '{0}': {1}")]
    Suffix(String, String),
    #[error("import stopped at line {line}: {reason} (nothing was imported)")]
    Import { line: usize, reason: String },
    #[error("{0}")]
    Setting(String),
    /// A listener that could not be opened, named the way the operator wrote it.
    #[error("{what} {addr}: {error}")]
    Listen { what: &'static str, addr: String, error: std::io::Error },
    /// The store is held by another process: a running server.
    #[error(
        "the server is running on this data directory ({path} is locked by another process): stop it, or let this command reach it through its ldapi socket or --url"
    )]
    Running { path: String },
}

/// Bind a TCP listener, or say which one failed.
async fn listen(what: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, AppError> {
    tokio::net::TcpListener::bind(addr).await.map_err(|error| AppError::Listen { what, addr: addr.to_string(), error })
}

/// Bind the ldapi socket with its mode. A socket file left by a server that
/// died is replaced; one a running server answers on is not.
fn listen_local(path: &Path, mode: u32) -> Result<tokio::net::UnixListener, AppError> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let failed = |error| AppError::Listen { what: "LDAPI", addr: path.display().to_string(), error };
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(failed(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            )));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(failed(std::io::Error::new(std::io::ErrorKind::AddrInUse, "another server answers on it")));
        }
        std::fs::remove_file(path).map_err(failed)?;
    }
    // Bound in a private directory, given its mode, then moved into place:
    // nobody can connect in between, whatever the umask.
    use std::os::unix::fs::DirBuilderExt;
    let mut private = path.as_os_str().to_owned();
    private.push(format!(".{}", std::process::id()));
    let private = std::path::PathBuf::from(private);
    let _ = std::fs::remove_dir_all(&private);
    std::fs::DirBuilder::new().mode(0o700).create(&private).map_err(failed)?;
    let bound = (|| {
        let inside = private.join("ldapi");
        let listener = tokio::net::UnixListener::bind(&inside)?;
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&inside, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    bound.map_err(failed)
}

/// Open the configured store and schema as a directory.
pub fn open_directory(cfg: &Config) -> Result<Directory, AppError> {
    let schema = match &cfg.schema_dir {
        Some(dir) => Schema::load_dir(dir)?,
        None => Schema::builtin()?,
    };
    let path = cfg.store_path();
    let store =
        Store::open(&path, cfg.cache_mb.saturating_mul(1024 * 1024), cfg.redo_log_mb.saturating_mul(1024 * 1024))
            .map_err(|source| match source {
                crate::store::StoreError::Locked => AppError::Running { path: path.display().to_string() },
                source => AppError::Store { path: path.display().to_string(), source },
            })?;
    if cfg.replication.server_id > crate::store::MAX_SERVER_ID {
        return Err(AppError::Setting(format!(
            "replication.server_id {} is beyond {} (three hexadecimal digits in a CSN)",
            cfg.replication.server_id,
            crate::store::MAX_SERVER_ID
        )));
    }
    store.set_server_id(cfg.replication.server_id);
    let suffix = Dn::parse(&cfg.suffix).map_err(|e| AppError::Suffix(cfg.suffix.clone(), e.to_string()))?;
    let admins = cfg
        .admins
        .iter()
        .map(|a| Dn::parse(a).map_err(|e| AppError::Suffix(a.clone(), format!("admins: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let settings = DirectorySettings {
        suffix,
        indexed: cfg.index.clone(),
        substring_indexed: cfg.substring_index.clone(),
        approx_indexed: cfg.approx_index.clone(),
        admins,
        policy: cfg.access_policy.clone(),
        password: cfg.password.policy(),
        recycle_bin_days: cfg.recycle_bin_days,
        last_bind_interval_secs: cfg.last_bind_interval_secs,
        audit_retention_days: cfg.audit_retention_days,
        deletion_log_days: cfg.replication.deletion_log_days,
        deletion_log_max: cfg.replication.deletion_log_max,
    };
    Ok(Directory::new(store, Arc::new(schema), settings)?)
}

/// A running server: its bound addresses and a way to stop it.
pub struct ServerHandle {
    pub ldap_addr: SocketAddr,
    pub ldaps_addr: SocketAddr,
    /// The ldapi socket, when it is on.
    pub ldapi: Option<std::path::PathBuf>,
    /// The SCIM HTTPS address.
    pub scim_addr: SocketAddr,
    /// The plain-HTTP SCIM address, when configured.
    pub scim_http_addr: Option<SocketAddr>,
    /// The web console's HTTPS address.
    pub console_addr: SocketAddr,
    /// The web console's plain-HTTP address, when configured.
    pub console_http_addr: Option<SocketAddr>,
    /// The TLS files in use (with the generated development CA, if any).
    pub tls: crate::tls::TlsFiles,
    pub directory: Arc<Directory>,
    /// Printed once when demo data was seeded without a configured password.
    pub generated_admin_password: Option<String>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// For the drain at shutdown: LDAP connections still open.
    ldap: Arc<crate::ldap::Context>,
    grace: std::time::Duration,
}

impl ServerHandle {
    /// Stop accepting, let connection tasks end, and wait for the listeners.
    ///
    /// Listeners close at once; every LDAP connection gets a Notice of
    /// Disconnection and its operations in flight `shutdown_grace_secs` to
    /// answer, as do SCIM requests. Past that bound the store is closed anyway:
    /// a write still running was never acknowledged.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let ldap = self.ldap.clone();
        let drained = async move {
            for t in self.tasks {
                let _ = t.await;
            }
            while ldap.connections.open() > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(self.grace, drained).await.is_err() {
            tracing::warn!(
                connections = self.ldap.connections.open(),
                "shutdown: operations still running after {:?}; closing the store anyway",
                self.grace
            );
        }
        if let Some(path) = &self.ldapi {
            let _ = std::fs::remove_file(path);
        }
        let directory = self.directory;
        match tokio::task::spawn_blocking(move || directory.checkpoint()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("no checkpoint at shutdown (the next start replays the redo log): {e}"),
            Err(e) => tracing::warn!("no checkpoint at shutdown: {e}"),
        }
    }
}

/// Start the server: listeners are bound before this returns (port 0 works).
pub async fn start(cfg: Config) -> Result<ServerHandle, AppError> {
    let directory = Arc::new(open_directory(&cfg)?);
    directory.start_writer()?;
    // Every listener is bound before anything is written: a port in use
    // stops the start with the store as it was.
    let listener = listen("LDAP", cfg.ldap).await?;
    let ldap_addr = listener.local_addr()?;
    let tls_listener = listen("LDAPS", cfg.ldaps).await?;
    let ldaps_addr = tls_listener.local_addr()?;
    let https = listen("SCIM", cfg.scim).await?;
    let scim_addr = https.local_addr()?;
    let http = match cfg.scim_http {
        Some(addr) => Some(listen("SCIM HTTP", addr).await?),
        None => None,
    };
    let console_https = listen("console", cfg.console).await?;
    let console_addr = console_https.local_addr()?;
    let console_http = match cfg.console_http {
        Some(addr) => Some(listen("console HTTP", addr).await?),
        None => None,
    };
    let ldapi = cfg.ldapi_path();
    let local = match &ldapi {
        Some(path) => Some(listen_local(path, cfg.ldapi_mode)?),
        None => None,
    };
    let mut generated_admin_password = None;
    if cfg.demo && directory.is_empty()? {
        let outcome = crate::seed::seed_demo(&directory, cfg.admin_password.as_deref())?;
        if let Some(pw) = &outcome.generated_password {
            println!("Demo directory created. Administrator: {} password: {pw}", outcome.admin_dn);
            println!("(shown once; set admin_password or CONVERGENCES_ADMIN_PASSWORD to choose it)");
        }
        generated_admin_password = outcome.generated_password;
    }
    let (tls_config, tls) = crate::tls::server_config(&cfg)?;
    if tls.generated {
        println!(
            "Generated a development certificate: {} (CA for clients: {})",
            tls.cert.display(),
            tls.ca.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
        );
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls_config);
    let ldap_acceptor = acceptor.clone();
    let (tx, rx) = watch::channel(false);
    let ctx =
        Arc::new(crate::ldap::Context::new(directory.clone(), &cfg, Some(ldap_acceptor)).map_err(AppError::Setting)?);
    let mut tasks = vec![
        tokio::spawn(crate::ldap::serve(listener, ctx.clone(), rx.clone(), false)),
        tokio::spawn(crate::ldap::serve(tls_listener, ctx.clone(), rx.clone(), true)),
    ];
    if let Some(local) = local {
        tasks.push(tokio::spawn(crate::ldap::serve_local(local, ctx.clone(), rx.clone())));
    }
    tasks.push(tokio::spawn(flush_last_binds(directory.clone(), rx.clone())));
    if cfg.prefetch_on_start || cfg.warm_cache_percent > 0 {
        // While the listeners already answer: a start is not delayed, it is fast sooner.
        let dir = directory.clone();
        let (prefetch, share) = (cfg.prefetch_on_start, cfg.warm_cache_percent.min(100));
        let budget = (cfg.cache_mb as u64).saturating_mul(1024 * 1024) / 100 * share;
        let warming = std::thread::Builder::new().name("warm".into()).spawn(move || {
            if prefetch {
                match dir.prefetch() {
                    Ok(p) => tracing::info!(mb = p.bytes / (1024 * 1024), ms = p.millis, "store file read ahead"),
                    Err(e) => tracing::warn!("reading the store file ahead stopped: {e}"),
                }
            }
            if budget > 0 {
                match dir.warm_cache(budget) {
                    Ok(w) => {
                        tracing::info!(mb = w.bytes / (1024 * 1024), ms = w.millis, whole = w.complete, "cache warmed")
                    }
                    Err(e) => tracing::warn!("warming the cache stopped: {e}"),
                }
            }
        });
        if let Err(e) = warming {
            tracing::warn!("the store is not warmed at start ({e}): requests bring it in");
        }
    }
    match cfg.replication.consumer.as_slice() {
        [] => {}
        [consumer] if directory.promoted()? => {
            tracing::warn!(
                provider = %consumer.provider,
                "this server was promoted: [[replication.consumer]] is ignored (remove it from the configuration)"
            );
        }
        [consumer] => {
            if !["refreshAndPersist", "refreshOnly"].contains(&consumer.mode.as_str()) {
                return Err(AppError::Setting(format!(
                    "replication.consumer.mode '{}': refreshAndPersist or refreshOnly",
                    consumer.mode
                )));
            }
            consumer.password().map_err(AppError::Setting)?;
            directory.set_replica_of(Some(consumer.provider.clone()));
            tracing::info!(provider = %consumer.provider, "following the provider as a replica; client writes are referred to it");
            let (dir, consumer, max_pdu) = (directory.clone(), consumer.clone(), cfg.limits.max_pdu_bytes);
            tasks.push(tokio::spawn(crate::replication::follow(dir, consumer, max_pdu, rx.clone())));
        }
        _ => return Err(AppError::Setting("replication.consumer: this server follows one provider at most".into())),
    }
    if cfg.lifecycle_interval_secs > 0 {
        let every = std::time::Duration::from_secs(cfg.lifecycle_interval_secs);
        tasks.push(tokio::spawn(lifecycle(directory.clone(), every, rx.clone())));
    }
    let mut scim = crate::scim::ScimContext::new(directory.clone(), &cfg.scim_limits)
        .map_err(|e| AppError::Scim(e.to_string()))?;
    scim.log_operations = cfg.log_operations;
    let scim = Arc::new(scim);
    let https = crate::https::TlsListener::new(https, acceptor.clone())?;
    tasks.push(tokio::spawn(serve_http(https, crate::scim::router(scim.clone()), rx.clone())));
    let mut scim_http_addr = None;
    if let Some(http) = http {
        scim_http_addr = Some(http.local_addr()?);
        tasks.push(tokio::spawn(serve_http(http, crate::scim::router(scim), rx.clone())));
    }
    // One set of sessions for both console listeners.
    let sessions = Arc::new(crate::console::Sessions::new(&cfg.console_limits));
    let console = |secure| {
        Arc::new(crate::console::Console {
            directory: directory.clone(),
            sessions: sessions.clone(),
            limits: cfg.console_limits.clone(),
            secure,
            log_operations: cfg.log_operations,
        })
    };
    let console_https = crate::https::TlsListener::new(console_https, acceptor)?;
    tasks.push(tokio::spawn(serve_http(console_https, crate::console::router(console(true)), rx.clone())));
    let mut console_http_addr = None;
    if let Some(http) = console_http {
        console_http_addr = Some(http.local_addr()?);
        tasks.push(tokio::spawn(serve_http(http, crate::console::router(console(false)), rx)));
    }
    Ok(ServerHandle {
        ldap_addr,
        ldaps_addr,
        ldapi,
        scim_addr,
        scim_http_addr,
        console_addr,
        console_http_addr,
        tls,
        directory,
        generated_admin_password,
        shutdown: tx,
        tasks,
        ldap: ctx,
        grace: std::time::Duration::from_secs(cfg.limits.shutdown_grace_secs),
    })
}

/// The binds noted since the last second, written together (see
/// `directory::last_bind`); the last ones at shutdown.
async fn flush_last_binds(directory: Arc<crate::directory::Directory>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.changed() => true,
        };
        let dir = directory.clone();
        match tokio::task::spawn_blocking(move || {
            dir.flush_failures().and(dir.flush_last_binds()).and(dir.flush_token_uses())
        })
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("recording last binds: {e}"),
            Err(e) => tracing::warn!("recording last binds: {e}"),
        }
        if stopping {
            return;
        }
    }
}

/// The server's own lifecycle steps, from its start to its shutdown: what
/// is due is read from the store each time (see `directory::lifecycle`).
async fn lifecycle(
    directory: Arc<crate::directory::Directory>,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let dir = directory.clone();
        let now = crate::directory::lifecycle::now_instant();
        match tokio::task::spawn_blocking(move || dir.lifecycle(&now)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("lifecycle step: {e}"),
            Err(e) => tracing::warn!("lifecycle step: {e}"),
        }
    }
}

/// Serve an HTTP router (SCIM, the console) on a listener until shutdown.
async fn serve_http<L>(listener: L, router: axum::Router, mut stop: watch::Receiver<bool>)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    crate::https::PeerAddr: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    // The peer address reaches handlers (ConnectInfo) for the audit trail.
    let service = router.into_make_service_with_connect_info::<crate::https::PeerAddr>();
    if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(shutdown).await {
        tracing::error!("HTTP server stopped: {e}");
    }
}

/// What an import did.
pub struct ImportReport {
    pub entries: usize,
    pub seconds: f64,
}

/// `convergences import`: one transaction, all or nothing.
pub fn import(cfg: &Config, file: &Path) -> Result<ImportReport, AppError> {
    let directory = open_directory(cfg)?;
    let started = Instant::now();
    let size = std::fs::metadata(file)?.len();
    let f = std::fs::File::open(file)?;
    let bar = if std::io::stderr().is_terminal() {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let reader = crate::ldif::LdifReader::new(BufReader::with_capacity(1 << 20, bar.wrap_read(f)));
    let mut lines: Vec<usize> = Vec::new();
    let mut parse_error: Option<(usize, String)> = None;
    // A parse error is yielded as an error too, so that the batch is abandoned, not committed.
    let changes = reader.map(|r| match r {
        Ok((line, change)) => {
            lines.push(line);
            Ok(change)
        }
        Err(e) => {
            let i = lines.len();
            parse_error = Some((e.line, e.reason.clone()));
            Err((i, crate::directory::DirectoryError::Protocol(e.reason)))
        }
    });
    // Imported entries are created in the name of the first administrator,
    // as slapadd names its rootdn (unless the LDIF carries creatorsName).
    let importer = Actor::new(format!("cn=admin,{}", directory.suffix()));
    let result = directory.apply_batch(&importer, changes, AddMode::Import, |n| {
        if n % 1000 == 0 {
            bar.set_message(format!("{n} entries"));
        }
    });
    bar.finish_and_clear();
    match (result, parse_error) {
        (Err(_), Some((line, reason))) => Err(AppError::Import { line, reason }),
        (Err((i, e)), None) => {
            Err(AppError::Import { line: lines.get(i).copied().unwrap_or(0), reason: e.to_string() })
        }
        (Ok(n), _) => Ok(ImportReport { entries: n, seconds: started.elapsed().as_secs_f64() }),
    }
}

/// `convergences export`: parents before children, every stored attribute.
pub fn export(cfg: &Config, output: Option<&Path>) -> Result<(), AppError> {
    let directory = open_directory(cfg)?;
    let mut out: Box<dyn Write> = match output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    crate::ldif::export(&directory, &mut out)?;
    out.flush()?;
    Ok(())
}

/// `convergences backup FILE` with the server stopped.
pub fn backup(cfg: &Config, file: &Path) -> Result<u64, AppError> {
    let directory = open_directory(cfg)?;
    Ok(crate::commands::write_file(file, |out| directory.backup(out))?)
}

/// `convergences restore FILE`: a new store in the (empty) data directory.
pub fn restore(cfg: &Config, file: &Path) -> Result<u64, AppError> {
    let input = std::fs::File::open(file)?;
    let path = cfg.store_path();
    let records =
        Store::restore(&path, input).map_err(|source| AppError::Store { path: path.display().to_string(), source })?;
    Ok(records)
}

/// Logs go to stderr, as text for a terminal or one JSON object per line
/// (`log_format = "json"`) for a collector; `RUST_LOG` filters.
pub fn init_logging(cfg: &Config) {
    // ldap3_proto warns on every control it leaves to us (assertion,
    // pre/post-read), and its parse errors dump the whole undecodable input
    // (up to max_pdu_bytes) into one line: our own line says what happened.
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,ldap3_proto=off".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // Colours for a terminal only: in a file or a journal they are noise.
    let ansi = cfg.log_format == "text" && std::io::stderr().is_terminal();
    let _ = if cfg.log_format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
    // The operation lines have their own writer (oplog.rs); RUST_LOG still decides.
    if cfg.log_operations && tracing::enabled!(target: "convergences::ops", tracing::Level::INFO) {
        let format = if cfg.log_format == "json" { oplog::Format::Json } else { oplog::Format::Text { ansi } };
        oplog::start(format, cfg.log_flush_ms, cfg.log_buffer_kb);
    }
    // A panic ends only the task it happens in (tokio catches it: for a
    // connection, that connection). It is logged like everything else.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_string();
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(thread, location, "panic: {what}");
    }));
}
