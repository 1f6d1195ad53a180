//! Configuration: one typed struct. Sources, weakest first: built-in defaults
//! (which run on a laptop), an optional TOML file, `CONVERGENCES_*` environment
//! variables, command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every setting of the server, with its default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data directory; the store is `<data>/convergences.redb`.
    pub data: PathBuf,
    /// LDAP (plain / StartTLS) listen address.
    pub ldap: SocketAddr,
    /// LDAPS listen address; used only when `tls_cert` and `tls_key` are set.
    pub ldaps: SocketAddr,
    /// SCIM over HTTPS, with the LDAPS certificate.
    pub scim: SocketAddr,
    /// SCIM over plain HTTP, for local use or behind a TLS-terminating proxy; none: off.
    pub scim_http: Option<SocketAddr>,
    /// SCIM limits.
    pub scim_limits: ScimLimits,
    /// The web console over HTTPS, with the LDAPS certificate.
    pub console: SocketAddr,
    /// The web console over plain HTTP, for local use or behind a
    /// TLS-terminating proxy (its cookies are then not `Secure`); none: off.
    pub console_http: Option<SocketAddr>,
    /// The web console's sessions and pages.
    pub console_limits: ConsoleLimits,
    /// LDAP over a Unix domain socket (`ldapi://`): its path; unset:
    /// `<data>/ldapi`; empty: off. SASL EXTERNAL binds there as the peer's
    /// uid maps (root and the server's own uid: `cn=admin,<suffix>`).
    pub ldapi: Option<PathBuf>,
    /// Permissions of the socket file (octal in TOML: `0o600`).
    pub ldapi_mode: u32,
    /// Other local uids and the entry each binds as with SASL EXTERNAL; any
    /// other uid is refused.
    pub ldapi_identities: Vec<LdapiIdentity>,
    /// The naming context.
    pub suffix: String,
    /// Directory of `*.schema` files; the schema compiled into the binary when unset.
    pub schema_dir: Option<PathBuf>,
    /// PEM certificate chain and key for LDAPS / StartTLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates whose client certificates are accepted for SASL
    /// EXTERNAL (the certificate's subject is the bind DN); none: no client certificates.
    pub tls_client_ca: Option<PathBuf>,
    /// Refuse simple binds outside TLS with confidentialityRequired (13).
    pub require_tls_for_bind: bool,
    /// Initial password of `cn=admin,<suffix>` when demo data is seeded;
    /// generated and printed once when unset.
    pub admin_password: Option<String>,
    /// Extra DNs treated as CIG administrators.
    pub admins: Vec<String>,
    /// The access policy: `cig` (DESIGN.md roles, the default), `baseline`
    /// (a typical OpenLDAP deployment), or the path of a policy TOML file.
    pub access_policy: String,
    /// Password policy and hashing.
    pub password: PasswordSettings,
    /// Seed demo data into an empty store on `serve`.
    pub demo: bool,
    /// redb page cache, in MiB. The store's hot pages live there: size it to
    /// the store file for full speed (100k agents ≈ 200 MiB).
    pub cache_mb: usize,
    /// At start, ask the kernel to read the store file into its page cache
    /// while serving (store/warm.rs): after a reboot, full speed in a second
    /// or two instead of ten on a 1M-agent store.
    pub prefetch_on_start: bool,
    /// At start, then read the hot tables into `cache_mb` up to this share
    /// of it (store/warm.rs; 0: let requests fill it). Their data takes more
    /// room in pages than in bytes: 60 leaves room for the rest.
    pub warm_cache_percent: u64,
    /// Redo log size, in MiB, that triggers a checkpoint (a durable redb
    /// commit, after which the log starts over). Larger: fewer checkpoint
    /// pauses, a longer replay after a crash.
    pub redo_log_mb: u64,
    /// Attributes with equality and presence indexes.
    pub index: Vec<String>,
    /// Attributes that also get a substring index.
    pub substring_index: Vec<String>,
    /// Attributes whose `~=` searches are answered from an index (folded values).
    pub approx_index: Vec<String>,
    /// Log format: `text` or `json`.
    pub log_format: String,
    /// One log line per LDAP operation, SCIM request and console page
    /// (connection, identity, operation, target, result, duration; never a password).
    pub log_operations: bool,
    /// Milliseconds at most between an operation and its log line reaching
    /// stderr: the lines are written in batches, off the request path.
    pub log_flush_ms: u64,
    /// Operation lines, in KiB, held for the writer at most; past it an
    /// operation waits for stderr rather than a line being dropped.
    pub log_buffer_kb: usize,
    pub limits: Limits,
    /// Seconds between two lifecycle steps, which apply the transitions
    /// that are due (end of validity); 0: only `convergences lifecycle` applies them.
    pub lifecycle_interval_secs: u64,
    /// Days a deleted agent stays restorable in the recycle bin before it is
    /// purged (an organisation's `cigRecycleBinDays` overrides it).
    pub recycle_bin_days: u64,
    /// Seconds within which an account's successful binds are recorded
    /// once (`pwdLastSuccess`): binds stay fast, the time is that precise.
    pub last_bind_interval_secs: u64,
    /// Days the audit trail's records are kept before the lifecycle step
    /// purges them, leaving counts (an organisation's
    /// `cigAuditRetentionDays` overrides it).
    pub audit_retention_days: u64,
    /// Content synchronisation (RFC 4533) with replicas and providers.
    pub replication: Replication,
}

/// Replication (RFC 4533): this server as a provider to replicas.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Replication {
    /// The server id in the CSNs this server issues (0–4095; distinct for
    /// each server that takes writes, as slapd's `serverID`).
    pub server_id: u16,
    /// Days a deletion stays in the deletion log. A replica whose cookie is
    /// older is sent the identifiers of every entry still present instead
    /// (the present phase), which costs more but ends the same.
    pub deletion_log_days: u64,
    /// Most deletions the log keeps, whatever their age.
    pub deletion_log_max: usize,
    /// Most entries a replica's refresh sends between two checks for
    /// abandonment, and identifiers per syncIdSet message.
    pub batch: usize,
    /// The provider this server follows as a replica (at most one); clients'
    /// writes are then referred to it.
    pub consumer: Vec<Consumer>,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            server_id: 0,
            deletion_log_days: 7,
            deletion_log_max: 1_000_000,
            batch: 1000,
            consumer: Vec::new(),
        }
    }
}

/// `[[replication.consumer]]`: a provider to follow (RFC 4533 consumer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consumer {
    /// `ldap://host:port` or `ldaps://host:port`.
    pub provider: String,
    /// The identity the consumer binds as; it replicates what it may read.
    pub bind_dn: String,
    #[serde(default)]
    pub password: Option<String>,
    /// A file holding the password (its first line), rather than the config.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    pub search_base: String,
    /// `refreshAndPersist` (follow each change as it commits) or `refreshOnly`.
    #[serde(default = "Consumer::default_mode")]
    pub mode: String,
    /// Seconds between two refreshes in refreshOnly mode.
    #[serde(default = "Consumer::default_interval")]
    pub interval_secs: u64,
    /// The CA that signed an ldaps:// provider's certificate.
    #[serde(default)]
    pub tls_ca: Option<PathBuf>,
    /// Changes applied in one transaction during a refresh.
    #[serde(default = "Consumer::default_batch")]
    pub batch: usize,
}

impl Consumer {
    fn default_mode() -> String {
        "refreshAndPersist".into()
    }

    fn default_interval() -> u64 {
        60
    }

    fn default_batch() -> usize {
        500
    }

    /// The bind password, from the config or its file.
    pub fn password(&self) -> Result<String, String> {
        match (&self.password, &self.password_file) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map(|s| s.lines().next().unwrap_or_default().to_string())
                .map_err(|e| format!("password_file {}: {e}", f.display())),
            (None, None) => Err("replication.consumer: neither password nor password_file is set".into()),
        }
    }
}

/// The password policy (issue 5): quality of new passwords, lockout, hashing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    /// Shortest new password, in characters.
    pub min_length: usize,
    /// Kinds of characters (lower case, upper case, digits, others) a new password mixes at least.
    pub min_classes: usize,
    /// Failed binds in a row that lock an account (0: no lockout).
    pub max_failures: u32,
    /// Seconds a lock lasts (0: until an administrator deletes pwdAccountLockedTime).
    pub lockout_secs: u64,
    /// Re-hash older schemes ({SSHA}, {CRYPT} …) to argon2id after a successful bind.
    pub rehash: bool,
    /// argon2id memory cost in KiB, iterations and parallelism for new hashes.
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    /// Days after which a password no longer binds (draft pwdMaxAge; 0: never).
    pub max_age_days: u64,
    /// Days before that during which binds are warned (pwdExpireWarning).
    pub expire_warning_days: u64,
    /// Previous passwords that may not be used again (pwdInHistory; 0: none kept).
    pub history: usize,
    /// A password set by someone else (référent, administrator, HR software)
    /// must be changed by its person before anything else (pwdMustChange).
    pub must_change_after_reset: bool,
}

impl Default for PasswordSettings {
    fn default() -> Self {
        let p = crate::directory::PasswordPolicy::default();
        PasswordSettings {
            min_length: p.min_length,
            min_classes: p.min_classes,
            max_failures: p.max_failures,
            lockout_secs: p.lockout_secs,
            rehash: p.rehash,
            argon2_memory_kib: p.argon2.memory_kib,
            argon2_iterations: p.argon2.iterations,
            argon2_parallelism: p.argon2.parallelism,
            max_age_days: p.max_age_secs / 86_400,
            expire_warning_days: p.expire_warning_secs / 86_400,
            history: p.history,
            must_change_after_reset: p.must_change_after_reset,
        }
    }
}

impl PasswordSettings {
    pub fn policy(&self) -> crate::directory::PasswordPolicy {
        crate::directory::PasswordPolicy {
            min_length: self.min_length,
            min_classes: self.min_classes,
            max_failures: self.max_failures,
            lockout_secs: self.lockout_secs,
            rehash: self.rehash,
            argon2: crate::directory::password::Argon2Params {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
            },
            max_age_secs: self.max_age_days.saturating_mul(86_400),
            expire_warning_secs: self.expire_warning_days.saturating_mul(86_400),
            history: self.history,
            must_change_after_reset: self.must_change_after_reset,
        }
    }
}

/// The web console's sessions and pages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleLimits {
    /// Minutes without a request after which a session must sign in again.
    pub idle_minutes: u64,
    /// Minutes after sign-in after which a session ends whatever its use.
    pub lifetime_minutes: u64,
    /// Sessions open at once; signing in past it ends the oldest one.
    pub max_sessions: usize,
    /// Agents on one page of a list.
    pub page_size: usize,
    /// Largest form body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Most recent audit records one journal page shows.
    pub audit_rows: usize,
    /// Most audit records read, from the newest, for one journal page.
    pub audit_scan: usize,
    /// Most agents one CSV import creates.
    pub import_max_rows: usize,
    /// Changes an organisation's card on the home page lists.
    pub recent_changes: usize,
    /// Most audit records read, from the newest, to find them.
    pub recent_scan: usize,
}

impl Default for ConsoleLimits {
    fn default() -> Self {
        ConsoleLimits {
            idle_minutes: 30,
            lifetime_minutes: 600,
            max_sessions: 10_000,
            page_size: 50,
            max_body_bytes: 1024 * 1024,
            audit_rows: 200,
            audit_scan: 200_000,
            import_max_rows: 5000,
            recent_changes: 5,
            recent_scan: 5000,
        }
    }
}

/// SCIM limits, advertised in ServiceProviderConfig.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScimLimits {
    /// Most resources in one list response.
    pub max_results: usize,
    /// Most operations in one Bulk request.
    pub bulk_max_operations: usize,
    /// Largest Bulk request body, in bytes.
    pub bulk_max_payload: usize,
    /// Largest body of any other SCIM request, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// Longest `filter`, in bytes (400 invalidFilter beyond).
    pub max_filter_length: usize,
    /// Deepest nesting of parentheses and `not` in a `filter`.
    pub max_filter_depth: usize,
    /// SCIM requests served at once; one more gets 429 with Retry-After.
    pub max_concurrent_requests: usize,
    /// Seconds an online backup or export may go unread before it is abandoned.
    pub stall_secs: u64,
    /// Seconds a pagination cursor (RFC 9865) stays valid between two pages.
    pub cursor_timeout_secs: u64,
    /// Times a PATCH is computed again when another write changed the
    /// resource between its read and its write (409 beyond).
    pub patch_retries: usize,
}

impl Default for ScimLimits {
    fn default() -> Self {
        ScimLimits {
            max_results: 200,
            bulk_max_operations: 1000,
            bulk_max_payload: 1024 * 1024,
            max_body_bytes: 256 * 1024,
            max_filter_length: 4096,
            max_filter_depth: 16,
            max_concurrent_requests: 256,
            stall_secs: 60,
            cursor_timeout_secs: 3600,
            patch_retries: 8,
        }
    }
}

/// Protocol limits, each a named setting.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest LDAP PDU accepted, in bytes (ldap3_proto's 32 KiB default is too
    /// small for jpegPhoto or certificates).
    pub max_pdu_bytes: usize,
    /// Entries a search returns to a non-administrator at most (0: no limit).
    pub search_size: usize,
    /// Seconds a search may run at most (0: no limit).
    pub search_time_secs: u64,
    /// Search limits for some identities, as slapd's `limits` directive: the
    /// first rule whose `who` matches the bound identity applies instead of
    /// `search_size` and `search_time_secs`.
    pub search_rules: Vec<SearchLimitRule>,
    /// Seconds of silence before an idle LDAP connection is closed.
    pub idle_timeout_secs: u64,
    /// Simple Paged Results cursors one connection may keep open (RFC 2696);
    /// the oldest is dropped beyond this.
    pub max_paged_cursors: usize,
    /// LDAP connections open at once, all clients together; one more is
    /// told `unavailable` and closed.
    pub max_connections: usize,
    /// LDAP connections open at once from one IP address.
    pub max_connections_per_peer: usize,
    /// Operations one LDAP connection may have running at once; one more is
    /// answered `busy` (RFC 4511 §4.1.9 code 51).
    pub max_outstanding_ops: usize,
    /// Refuse everything but Bind, StartTLS and reading the root DSE to an
    /// anonymous LDAP session (`unwillingToPerform`, as slapd's `require bind`).
    pub require_bind: bool,
    /// Seconds operations in flight get to finish at shutdown (SIGTERM).
    pub shutdown_grace_secs: u64,
}

/// One local account allowed on the ldapi socket (`[[ldapi_identities]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapiIdentity {
    /// The peer's numeric uid (SO_PEERCRED).
    pub uid: u32,
    /// The entry it binds as.
    pub dn: String,
}

/// One per-identity search limit (`[[limits.search_rules]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchLimitRule {
    /// `anonymous`, `users` (any bound entry), `administrators` (CIG
    /// administrators), `dn:<DN>` (one entry) or `group:<DN>` (its direct members).
    pub who: String,
    /// Entries a search returns at most (0: no limit).
    #[serde(default)]
    pub size: usize,
    /// Seconds a search may run at most (0: no limit).
    #[serde(default)]
    pub time_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pdu_bytes: 4 * 1024 * 1024,
            search_size: 0,
            search_time_secs: 60,
            search_rules: Vec::new(),
            idle_timeout_secs: 900,
            max_paged_cursors: 16,
            max_connections: 4096,
            max_connections_per_peer: 512,
            max_outstanding_ops: 128,
            require_bind: false,
            shutdown_grace_secs: 10,
        }
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./data"),
            ldap: addr("127.0.0.1:3389"),
            ldaps: addr("127.0.0.1:3636"),
            scim: addr("127.0.0.1:8443"),
            scim_http: Some(addr("127.0.0.1:8080")),
            scim_limits: ScimLimits::default(),
            console: addr("127.0.0.1:9443"),
            console_http: Some(addr("127.0.0.1:9080")),
            console_limits: ConsoleLimits::default(),
            replication: Replication::default(),
            ldapi: None,
            ldapi_mode: 0o600,
            ldapi_identities: Vec::new(),
            suffix: "dc=cig,dc=fr".into(),
            schema_dir: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            require_tls_for_bind: false,
            admin_password: None,
            admins: Vec::new(),
            access_policy: "cig".into(),
            password: PasswordSettings::default(),
            demo: true,
            cache_mb: 256,
            prefetch_on_start: true,
            warm_cache_percent: 60,
            redo_log_mb: 64,
            index: [
                "objectClass",
                "uid",
                "cn",
                "sn",
                "givenName",
                "mail",
                "employeeNumber",
                "member",
                "uniqueMember",
                "cigSiren",
                // Organisations are named by it (o=<SIREN>): the console and
                // `token create --org` find them by SIREN.
                "o",
            ]
            .map(String::from)
            .to_vec(),
            substring_index: ["cn", "sn", "givenName"].map(String::from).to_vec(),
            approx_index: ["cn", "sn", "givenName"].map(String::from).to_vec(),
            log_format: "text".into(),
            log_operations: true,
            log_flush_ms: 100,
            log_buffer_kb: 4096,
            limits: Limits::default(),
            lifecycle_interval_secs: 60,
            recycle_bin_days: 30,
            last_bind_interval_secs: 3600,
            audit_retention_days: 365,
        }
    }
}

/// A configuration problem, said with the setting's name.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Toml { path: String, source: toml::de::Error },
    #[error("{var}: {why}")]
    Env { var: String, why: String },
}

impl Config {
    /// Defaults, then the file if any, then the environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = match file {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|source| ConfigError::Read { path: p.display().to_string(), source })?;
                toml::from_str(&text).map_err(|source| ConfigError::Toml { path: p.display().to_string(), source })?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        Ok(cfg)
    }

    /// Overlay `CONVERGENCES_*` variables.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parse<T: std::str::FromStr>(var: &str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e: T::Err| ConfigError::Env { var: var.into(), why: e.to_string() })
        }
        let list = |v: &str| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if let Some(v) = get("CONVERGENCES_DATA") {
            self.data = PathBuf::from(v);
        }
        if let Some(v) = get("CONVERGENCES_LDAP") {
            self.ldap = parse("CONVERGENCES_LDAP", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_LDAPI") {
            self.ldapi = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVERGENCES_LDAPI_MODE") {
            self.ldapi_mode = u32::from_str_radix(v.trim_start_matches("0o"), 8).map_err(|e| ConfigError::Env {
                var: "CONVERGENCES_LDAPI_MODE".into(),
                why: format!("an octal mode such as 0600: {e}"),
            })?;
        }
        if let Some(v) = get("CONVERGENCES_LDAPS") {
            self.ldaps = parse("CONVERGENCES_LDAPS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM") {
            self.scim = parse("CONVERGENCES_SCIM", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_HTTP") {
            self.scim_http = if v.is_empty() { None } else { Some(parse("CONVERGENCES_SCIM_HTTP", &v)?) };
        }
        if let Some(v) = get("CONVERGENCES_CONSOLE") {
            self.console = parse("CONVERGENCES_CONSOLE", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_CONSOLE_HTTP") {
            self.console_http = if v.is_empty() { None } else { Some(parse("CONVERGENCES_CONSOLE_HTTP", &v)?) };
        }
        if let Some(v) = get("CONVERGENCES_SCIM_MAX_RESULTS") {
            self.scim_limits.max_results = parse("CONVERGENCES_SCIM_MAX_RESULTS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_BULK_MAX_OPERATIONS") {
            self.scim_limits.bulk_max_operations = parse("CONVERGENCES_SCIM_BULK_MAX_OPERATIONS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_BULK_MAX_PAYLOAD") {
            self.scim_limits.bulk_max_payload = parse("CONVERGENCES_SCIM_BULK_MAX_PAYLOAD", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_MAX_BODY_BYTES") {
            self.scim_limits.max_body_bytes = parse("CONVERGENCES_SCIM_MAX_BODY_BYTES", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_MAX_FILTER_LENGTH") {
            self.scim_limits.max_filter_length = parse("CONVERGENCES_SCIM_MAX_FILTER_LENGTH", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_STALL_SECS") {
            self.scim_limits.stall_secs = parse("CONVERGENCES_SCIM_STALL_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_CURSOR_TIMEOUT_SECS") {
            self.scim_limits.cursor_timeout_secs = parse("CONVERGENCES_SCIM_CURSOR_TIMEOUT_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_PATCH_RETRIES") {
            self.scim_limits.patch_retries = parse("CONVERGENCES_SCIM_PATCH_RETRIES", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_MAX_CONCURRENT_REQUESTS") {
            self.scim_limits.max_concurrent_requests = parse("CONVERGENCES_SCIM_MAX_CONCURRENT_REQUESTS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SCIM_MAX_FILTER_DEPTH") {
            self.scim_limits.max_filter_depth = parse("CONVERGENCES_SCIM_MAX_FILTER_DEPTH", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SUFFIX") {
            self.suffix = v;
        }
        if let Some(v) = get("CONVERGENCES_SCHEMA_DIR") {
            self.schema_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVERGENCES_TLS_CERT") {
            self.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVERGENCES_TLS_KEY") {
            self.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVERGENCES_TLS_CLIENT_CA") {
            self.tls_client_ca = Some(PathBuf::from(v));
        }
        if let Some(v) = get("CONVERGENCES_REQUIRE_TLS_FOR_BIND") {
            self.require_tls_for_bind = parse("CONVERGENCES_REQUIRE_TLS_FOR_BIND", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_ADMIN_PASSWORD") {
            self.admin_password = Some(v);
        }
        let p = &mut self.password;
        if let Some(v) = get("CONVERGENCES_PASSWORD_MIN_LENGTH") {
            p.min_length = parse("CONVERGENCES_PASSWORD_MIN_LENGTH", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_MIN_CLASSES") {
            p.min_classes = parse("CONVERGENCES_PASSWORD_MIN_CLASSES", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_MAX_FAILURES") {
            p.max_failures = parse("CONVERGENCES_PASSWORD_MAX_FAILURES", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_LOCKOUT_SECS") {
            p.lockout_secs = parse("CONVERGENCES_PASSWORD_LOCKOUT_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_REHASH") {
            p.rehash = parse("CONVERGENCES_PASSWORD_REHASH", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_MAX_AGE_DAYS") {
            p.max_age_days = parse("CONVERGENCES_PASSWORD_MAX_AGE_DAYS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_EXPIRE_WARNING_DAYS") {
            p.expire_warning_days = parse("CONVERGENCES_PASSWORD_EXPIRE_WARNING_DAYS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_HISTORY") {
            p.history = parse("CONVERGENCES_PASSWORD_HISTORY", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PASSWORD_MUST_CHANGE_AFTER_RESET") {
            p.must_change_after_reset = parse("CONVERGENCES_PASSWORD_MUST_CHANGE_AFTER_RESET", &v)?;
        }
        for (var, field) in [
            ("CONVERGENCES_PASSWORD_ARGON2_MEMORY_KIB", &mut p.argon2_memory_kib),
            ("CONVERGENCES_PASSWORD_ARGON2_ITERATIONS", &mut p.argon2_iterations),
            ("CONVERGENCES_PASSWORD_ARGON2_PARALLELISM", &mut p.argon2_parallelism),
        ] {
            if let Some(v) = get(var) {
                *field = parse(var, &v)?;
            }
        }
        if let Some(v) = get("CONVERGENCES_ACCESS_POLICY") {
            self.access_policy = v;
        }
        if let Some(v) = get("CONVERGENCES_ADMINS") {
            self.admins = list(&v);
        }
        if let Some(v) = get("CONVERGENCES_DEMO") {
            self.demo = parse("CONVERGENCES_DEMO", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_CACHE_MB") {
            self.cache_mb = parse("CONVERGENCES_CACHE_MB", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_WARM_CACHE_PERCENT") {
            self.warm_cache_percent = parse("CONVERGENCES_WARM_CACHE_PERCENT", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_PREFETCH_ON_START") {
            self.prefetch_on_start = parse("CONVERGENCES_PREFETCH_ON_START", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_REDO_LOG_MB") {
            self.redo_log_mb = parse("CONVERGENCES_REDO_LOG_MB", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_INDEX") {
            self.index = list(&v);
        }
        if let Some(v) = get("CONVERGENCES_SUBSTRING_INDEX") {
            self.substring_index = list(&v);
        }
        if let Some(v) = get("CONVERGENCES_APPROX_INDEX") {
            self.approx_index = list(&v);
        }
        if let Some(v) = get("CONVERGENCES_LOG_FORMAT") {
            self.log_format = v;
        }
        if let Some(v) = get("CONVERGENCES_LAST_BIND_INTERVAL_SECS") {
            self.last_bind_interval_secs = parse("CONVERGENCES_LAST_BIND_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_AUDIT_RETENTION_DAYS") {
            self.audit_retention_days = parse("CONVERGENCES_AUDIT_RETENTION_DAYS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_RECYCLE_BIN_DAYS") {
            self.recycle_bin_days = parse("CONVERGENCES_RECYCLE_BIN_DAYS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_LIFECYCLE_INTERVAL_SECS") {
            self.lifecycle_interval_secs = parse("CONVERGENCES_LIFECYCLE_INTERVAL_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_LOG_OPERATIONS") {
            self.log_operations = parse("CONVERGENCES_LOG_OPERATIONS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_LOG_FLUSH_MS") {
            self.log_flush_ms = parse("CONVERGENCES_LOG_FLUSH_MS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_LOG_BUFFER_KB") {
            self.log_buffer_kb = parse("CONVERGENCES_LOG_BUFFER_KB", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_MAX_PDU_BYTES") {
            self.limits.max_pdu_bytes = parse("CONVERGENCES_MAX_PDU_BYTES", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SEARCH_SIZE_LIMIT") {
            self.limits.search_size = parse("CONVERGENCES_SEARCH_SIZE_LIMIT", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SEARCH_TIME_LIMIT") {
            self.limits.search_time_secs = parse("CONVERGENCES_SEARCH_TIME_LIMIT", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_MAX_PAGED_CURSORS") {
            self.limits.max_paged_cursors = parse("CONVERGENCES_MAX_PAGED_CURSORS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_IDLE_TIMEOUT") {
            self.limits.idle_timeout_secs = parse("CONVERGENCES_IDLE_TIMEOUT", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_MAX_CONNECTIONS") {
            self.limits.max_connections = parse("CONVERGENCES_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_MAX_CONNECTIONS_PER_PEER") {
            self.limits.max_connections_per_peer = parse("CONVERGENCES_MAX_CONNECTIONS_PER_PEER", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_MAX_OUTSTANDING_OPS") {
            self.limits.max_outstanding_ops = parse("CONVERGENCES_MAX_OUTSTANDING_OPS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_SHUTDOWN_GRACE_SECS") {
            self.limits.shutdown_grace_secs = parse("CONVERGENCES_SHUTDOWN_GRACE_SECS", &v)?;
        }
        if let Some(v) = get("CONVERGENCES_REQUIRE_BIND") {
            self.limits.require_bind = parse("CONVERGENCES_REQUIRE_BIND", &v)?;
        }
        Ok(())
    }

    /// A configuration for tests: data in `dir`, every listener on port 0, no demo data.
    pub fn for_test(dir: &Path) -> Config {
        Config {
            data: dir.to_path_buf(),
            ldap: addr("127.0.0.1:0"),
            ldaps: addr("127.0.0.1:0"),
            scim: addr("127.0.0.1:0"),
            scim_http: Some(addr("127.0.0.1:0")),
            console: addr("127.0.0.1:0"),
            console_http: Some(addr("127.0.0.1:0")),
            demo: false,
            cache_mb: 16,
            ..Config::default()
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data.join("convergences.redb")
    }

    /// The ldapi socket's path; `None` when it is off.
    pub fn ldapi_path(&self) -> Option<PathBuf> {
        match &self.ldapi {
            None => Some(self.data.join("ldapi")),
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => Some(p.clone()),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        let mut cfg: Config = toml::from_str("ldap = \"127.0.0.1:1389\"\nsuffix = \"dc=example,dc=org\"\n").unwrap();
        cfg.apply_env(|k| (k == "CONVERGENCES_LDAP").then(|| "127.0.0.1:2389".to_string())).unwrap();
        assert_eq!(cfg.ldap.port(), 2389);
        assert_eq!(cfg.suffix, "dc=example,dc=org");
        assert!(cfg.apply_env(|k| (k == "CONVERGENCES_CACHE_MB").then(|| "lots".to_string())).is_err());
    }

    #[test]
    fn per_identity_search_limits_are_read_from_toml() {
        let cfg: Config = toml::from_str(
            "[[limits.search_rules]]\nwho = \"anonymous\"\nsize = 50\n\n[[limits.search_rules]]\nwho = \"users\"\ntime_secs = 5\n",
        )
        .unwrap();
        let rules: Vec<(&str, usize, u64)> =
            cfg.limits.search_rules.iter().map(|r| (r.who.as_str(), r.size, r.time_secs)).collect();
        assert_eq!(rules, [("anonymous", 50, 0), ("users", 0, 5)]);
        assert!(toml::from_str::<Config>("[[limits.search_rules]]\nwho = \"users\"\nsizes = 1\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("ldpa = \"x\"").is_err());
    }
}
