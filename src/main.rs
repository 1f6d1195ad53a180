//! The `convergences` command: serve, import, export. The only place that uses `anyhow`.

/// mimalloc instead of glibc's malloc: a search allocates per entry and
/// attribute, and glibc's allocator took a quarter of the server's CPU
/// under load (perf, issue 6).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use convergences::commands::Command as Cmd;
use convergences::{Config, app};

/// Convergences: the directory of a centre de gestion, served over LDAP v3
/// (and SCIM 2.0) from one embedded store.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Settings every subcommand shares. Each flag also has an environment
/// variable and a config-file key; flags win over the environment, which wins
/// over the file.
#[derive(Args)]
struct Common {
    /// TOML configuration file.
    #[arg(long, env = "CONVERGENCES_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (holds convergences.redb). Default ./data.
    #[arg(long, env = "CONVERGENCES_DATA")]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server. On an empty store, seeds the demo directory unless --no-demo.
    Serve {
        #[command(flatten)]
        common: Common,
        /// LDAP listen address (default 127.0.0.1:3389).
        #[arg(long, env = "CONVERGENCES_LDAP")]
        ldap: Option<std::net::SocketAddr>,
        /// LDAPS listen address (default 127.0.0.1:3636; needs tls_cert and tls_key).
        #[arg(long, env = "CONVERGENCES_LDAPS")]
        ldaps: Option<std::net::SocketAddr>,
        /// SCIM over HTTPS, with the LDAPS certificate (default 127.0.0.1:8443).
        #[arg(long, env = "CONVERGENCES_SCIM")]
        scim: Option<std::net::SocketAddr>,
        /// SCIM over plain HTTP (default 127.0.0.1:8080), for local use or behind a TLS proxy.
        #[arg(long, env = "CONVERGENCES_SCIM_HTTP")]
        scim_http: Option<std::net::SocketAddr>,
        /// The web console over HTTPS (default 127.0.0.1:9443).
        #[arg(long, env = "CONVERGENCES_CONSOLE")]
        console: Option<std::net::SocketAddr>,
        /// The web console over plain HTTP (default 127.0.0.1:9080), for local use or behind a TLS proxy.
        #[arg(long, env = "CONVERGENCES_CONSOLE_HTTP")]
        console_http: Option<std::net::SocketAddr>,
        /// Do not seed demo data into an empty store.
        #[arg(long)]
        no_demo: bool,
    },
    /// Load an LDIF file (RFC 2849; slapcat output loads unchanged) in one
    /// transaction: all of it, or nothing and the line of the first bad record.
    Import {
        #[command(flatten)]
        common: Common,
        /// The LDIF file.
        file: PathBuf,
    },
    /// Write the whole directory as LDIF (parents first, operational attributes included);
    /// or, for the RGPD, one organisation (--org) or everything held about one person (--person).
    Export {
        #[command(flatten)]
        common: Common,
        /// Output file; standard output when absent (required with --url, --org and --person).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Only this organisation (its DN, or its SIREN): its entries as LDIF, and
        /// its agents as SCIM shows them in OUTPUT.scim.json.
        #[arg(long, conflicts_with = "person")]
        org: Option<String>,
        /// Everything held about this person (a DN), as JSON: the entry, its groups,
        /// its last bind and the audit records about or by them.
        #[arg(long)]
        person: Option<String>,
        #[command(flatten)]
        online: Online,
    },
    /// A consistent backup of the whole store (entries, indexes, tokens, audit
    /// trail). While the server runs, it writes the file (asked through its
    /// ldapi socket, or over HTTP with --url); otherwise this command does.
    Backup {
        #[command(flatten)]
        common: Common,
        /// The backup file to write.
        file: PathBuf,
        #[command(flatten)]
        online: Online,
    },
    /// Create the store of an empty data directory from a backup (server stopped).
    Restore {
        #[command(flatten)]
        common: Common,
        /// A file written by `convergences backup`.
        file: PathBuf,
    },
    /// Verify the store's consistency: the DN, UUID and attribute indexes, the
    /// tree links and uid uniqueness are recomputed from the entries and
    /// compared. Exits 1 when anything disagrees. While the server runs, it
    /// checks (through its ldapi socket), on a snapshot.
    Check {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        online: Online,
    },
    /// Make a replica the provider: it stops following and takes clients'
    /// writes, now (through its ldapi socket) and after every restart.
    Promote {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        online: Online,
    },
    /// Replication (RFC 4533): where this server stands as a provider (the
    /// replicas following it) or as a replica (its provider, cookie, state).
    Replication {
        #[command(subcommand)]
        command: ReplicationCommand,
    },
    /// SCIM bearer tokens: each bound to one organisation or to the CIG. These
    /// and the other administration commands work with the server running
    /// (through its ldapi socket, as root or the server's user) or stopped.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// List the audit trail: every write, accepted or refused, with who, when,
    /// from where, what and the result (never a password value). CIG
    /// administrators also read the same records over LDAP under cn=changelog.
    Audit {
        #[command(flatten)]
        common: Common,
        /// Only changes to entries of this organisation (its DN, or its SIREN).
        #[arg(long)]
        org: Option<String>,
        /// Only changes at or after this time (2026-11-23, 2026-11-23T10:00:00Z or 20261123100000Z).
        #[arg(long)]
        since: Option<String>,
        #[command(flatten)]
        online: Online,
    },
    /// Apply the transitions that are due (today: record the end of validity
    /// of accounts whose pwdEndTime has passed). The server does this by
    /// itself every `lifecycle_interval_secs`; each transition is applied
    /// once, whoever runs it.
    Lifecycle {
        #[command(flatten)]
        common: Common,
        /// Apply what is due at this time instead of now (2026-11-23,
        /// 2026-11-23T10:00:00Z or 20261123100000Z): a rehearsal of a date to come.
        #[arg(long)]
        as_of: Option<String>,
        #[command(flatten)]
        online: Online,
    },
    /// The recycle bin: deleted agents, restorable by their entryUUID until
    /// their organisation's retention (recycle_bin_days) is over.
    Bin {
        #[command(subcommand)]
        command: BinCommand,
    },
    /// Password utilities.
    Passwd {
        #[command(subcommand)]
        command: PasswdCommand,
    },
}

/// Asking a running server (its plain-HTTP SCIM listener) instead of the data directory.
#[derive(clap::Args)]
struct Online {
    /// The server's scim_http base URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: Option<String>,
    /// A CIG bearer token (`convergences token create --cig`).
    #[arg(long, env = "CONVERGENCES_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

impl Online {
    /// Fetch `path` into `out` when a URL was given; false otherwise.
    fn fetch(&self, path: &str, out: &std::path::Path) -> anyhow::Result<bool> {
        let Some(url) = &self.url else { return Ok(false) };
        let token = self.token.as_deref().context("--url needs --token (or CONVERGENCES_TOKEN), a CIG token")?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let bytes = rt.block_on(convergences::online::fetch(url, token, path, out))?;
        eprintln!("{bytes} bytes from {url}{path} written to {}", out.display());
        Ok(true)
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token; it is printed once, alone on the last line, and stored only as a hash.
    Create {
        #[command(flatten)]
        common: Common,
        /// The organisation (its DN, or its SIREN) the token acts for.
        #[arg(long, conflicts_with = "cig", required_unless_present = "cig")]
        org: Option<String>,
        /// A token for the CIG as a whole (every organisation).
        #[arg(long)]
        cig: bool,
        /// A label to recognise it by (e.g. the HR software's name).
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        online: Online,
    },
    /// List tokens (id, scope, label, creation time); never the secrets.
    List {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        online: Online,
    },
    /// Revoke a token by its id.
    Revoke {
        #[command(flatten)]
        common: Common,
        id: String,
        #[command(flatten)]
        online: Online,
    },
}

#[derive(Subcommand)]
enum ReplicationCommand {
    /// The contextCSN; the replicas following now and how far behind they
    /// are; as a replica, its provider, state, cookie and last change applied.
    Status {
        #[command(flatten)]
        common: Common,
        #[command(flatten)]
        online: Online,
    },
}

#[derive(Subcommand)]
enum BinCommand {
    /// List the deleted agents (entryUUID, deletion, purge, DN), oldest first.
    List {
        #[command(flatten)]
        common: Common,
        /// Only this organisation's (its DN, or its SIREN).
        #[arg(long)]
        org: Option<String>,
        #[command(flatten)]
        online: Online,
    },
    /// Put a deleted agent back: same entryUUID (SCIM id), attributes,
    /// password and group memberships.
    Restore {
        #[command(flatten)]
        common: Common,
        /// Its entryUUID, as `bin list` shows it.
        uuid: String,
        #[command(flatten)]
        online: Online,
    },
}

#[derive(Subcommand)]
enum PasswdCommand {
    /// Print the argon2id `{ARGON2}` hash of a password read from standard
    /// input, with the configured argon2 parameters.
    Hash {
        #[command(flatten)]
        common: Common,
    },
}

fn load(common: &Common) -> anyhow::Result<Config> {
    let mut cfg = Config::load(common.config.as_deref())?;
    if let Some(d) = &common.data {
        cfg.data = d.clone();
    }
    Ok(cfg)
}

/// An administration command, on the running server (its ldapi socket) or
/// on the data directory of a stopped one; exits 1 when it failed.
fn command(common: &Common, online: &Online, cmd: Cmd) -> anyhow::Result<()> {
    let remote = match (&online.url, &online.token) {
        (None, _) => None,
        (Some(url), Some(token)) => Some(convergences::online::Remote { url, token }),
        (Some(_), None) => anyhow::bail!("--url needs --token (or CONVERGENCES_TOKEN), a CIG token"),
    };
    let outcome = convergences::online::run_command(&load(common)?, remote, &cmd)?;
    print!("{}", outcome.stdout);
    eprint!("{}", outcome.stderr);
    if outcome.failed {
        std::process::exit(1);
    }
    Ok(())
}

/// An operator's mistake is one line (the error and its causes), never a backtrace.
fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("convergences: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, ldap, ldaps, scim, scim_http, console, console_http, no_demo } => {
            let mut cfg = load(&common)?;
            if let Some(a) = ldap {
                cfg.ldap = a;
            }
            if let Some(a) = ldaps {
                cfg.ldaps = a;
            }
            if let Some(a) = scim {
                cfg.scim = a;
            }
            if let Some(a) = scim_http {
                cfg.scim_http = Some(a);
            }
            if let Some(a) = console {
                cfg.console = a;
            }
            if let Some(a) = console_http {
                cfg.console_http = Some(a);
            }
            if no_demo {
                cfg.demo = false;
            }
            app::init_logging(&cfg);
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            let grace = std::time::Duration::from_secs(cfg.limits.shutdown_grace_secs);
            let served = rt.block_on(async move {
                // Stop on Ctrl-C or SIGTERM (what systemd and docker send): listeners
                // close, connections get a Notice of Disconnection, the store closes.
                // Installed before anything says it listens: a SIGTERM sent as soon
                // as it does must still be a clean stop.
                let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .context("installing the SIGTERM handler")?;
                let handle = app::start(cfg).await?;
                println!("LDAP listening on ldap://{}", handle.ldap_addr);
                println!("LDAPS listening on ldaps://{}", handle.ldaps_addr);
                println!("SCIM listening on https://{}/scim/v2", handle.scim_addr);
                if let Some(a) = handle.scim_http_addr {
                    println!("SCIM listening on http://{a}/scim/v2");
                }
                println!("Console listening on https://{}/", handle.console_addr);
                if let Some(a) = handle.console_http_addr {
                    println!("Console listening on http://{a}/");
                }
                tokio::select! {
                    r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
                    _ = term.recv() => {}
                }
                eprintln!("shutting down");
                handle.shutdown().await;
                anyhow::Ok(())
            });
            // The store is closed: work still on the blocking pool (a search past
            // the grace period) is not waited for.
            rt.shutdown_timeout(grace);
            convergences::oplog::flush();
            served
        }
        Command::Import { common, file } => {
            let cfg = load(&common)?;
            let report = app::import(&cfg, &file)?;
            eprintln!(
                "imported {} entries in {:.2}s ({:.0} entries/s)",
                report.entries,
                report.seconds,
                report.entries as f64 / report.seconds.max(1e-9)
            );
            Ok(())
        }
        Command::Check { common, online } => command(&common, &online, Cmd::Check),
        Command::Export { common, output, org, person, online } => {
            if org.is_some() || person.is_some() {
                anyhow::ensure!(online.url.is_none(), "--org and --person run on the server's machine, not with --url");
                let out = output.context("--org and --person write files: give -o FILE")?;
                return command(&common, &online, Cmd::Export { file: std::path::absolute(&out)?, org, person });
            }
            if online.url.is_some() {
                let out = output.context("an online export needs -o FILE")?;
                online.fetch("/admin/export", &out)?;
                return Ok(());
            }
            match output {
                // The file is written by whoever holds the store: the running server, or this process.
                Some(file) => command(
                    &common,
                    &online,
                    Cmd::Export { file: std::path::absolute(&file)?, org: None, person: None },
                ),
                None => {
                    let cfg = load(&common)?;
                    app::export(&cfg, None).context("while the server runs, export writes a file: give -o FILE")?;
                    Ok(())
                }
            }
        }
        Command::Backup { common, file, online } => {
            if online.fetch("/admin/backup", &file)? {
                return Ok(());
            }
            command(&common, &online, Cmd::Backup { file: std::path::absolute(&file)? })
        }
        Command::Restore { common, file } => {
            let cfg = load(&common)?;
            let records = app::restore(&cfg, &file)?;
            eprintln!(
                "restored {records} records into {}; `convergences check` verifies it",
                cfg.store_path().display()
            );
            Ok(())
        }
        Command::Token { command: TokenCommand::Create { common, org, cig, name, online } } => {
            command(&common, &online, Cmd::TokenCreate { org, cig, name })
        }
        Command::Token { command: TokenCommand::List { common, online } } => command(&common, &online, Cmd::TokenList),
        Command::Token { command: TokenCommand::Revoke { common, id, online } } => {
            command(&common, &online, Cmd::TokenRevoke { id })
        }
        Command::Promote { common, online } => command(&common, &online, Cmd::Promote),
        Command::Replication { command: ReplicationCommand::Status { common, online } } => {
            command(&common, &online, Cmd::ReplicationStatus)
        }
        Command::Audit { common, org, since, online } => command(&common, &online, Cmd::Audit { org, since }),
        Command::Lifecycle { common, as_of, online } => command(&common, &online, Cmd::Lifecycle { as_of }),
        Command::Bin { command: BinCommand::List { common, org, online } } => {
            command(&common, &online, Cmd::BinList { org })
        }
        Command::Bin { command: BinCommand::Restore { common, uuid, online } } => {
            command(&common, &online, Cmd::BinRestore { uuid })
        }
        Command::Passwd { command: PasswdCommand::Hash { common } } => {
            let cfg = load(&common)?;
            let mut pw = String::new();
            std::io::stdin().read_line(&mut pw)?;
            let pw = pw.trim_end_matches(['\n', '\r']);
            let params = cfg.password.policy().argon2;
            println!(
                "{}",
                convergences::directory::password::hash_with(pw.as_bytes(), &params).map_err(anyhow::Error::msg)?
            );
            Ok(())
        }
    }
}
