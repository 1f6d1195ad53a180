//! The administration commands (`token`, `audit`, `check`, `lifecycle`,
//! `bin`, `backup`, `export`) as one set of operations on a directory. The command line runs
//! them on the data directory of a stopped server; while the server runs,
//! it holds the store, so the command line sends the same command over the
//! ldapi socket (an extended operation, [`OID`]) and the server runs it
//! here, as the identity the socket's peer binds as. The output is the same
//! text either way.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::directory::{Actor, AuditQuery, Directory, DirectoryError, TokenScope, audit, lifecycle};

/// The extended operation that carries a command (under the project's OID arc).
pub const OID: &str = "2.25.8454349690524137459045039418936221212.3.1";

/// One command, as the command line parsed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Command {
    TokenCreate {
        org: Option<String>,
        cig: bool,
        name: String,
    },
    TokenList,
    TokenRevoke {
        id: String,
    },
    Audit {
        org: Option<String>,
        since: Option<String>,
    },
    Check,
    ReplicationStatus,
    Promote,
    Lifecycle {
        as_of: Option<String>,
    },
    BinList {
        org: Option<String>,
    },
    BinRestore {
        uuid: String,
    },
    /// Written by the process that holds the store; an absolute path.
    Backup {
        file: PathBuf,
    },
    Export {
        file: PathBuf,
        /// One organisation only (its DN or SIREN), its agents also as SCIM JSON.
        #[serde(default)]
        org: Option<String>,
        /// Everything held about one person (a DN), as JSON.
        #[serde(default)]
        person: Option<String>,
    },
}

/// What a command printed, and whether it failed (exit status 1).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub failed: bool,
}

type Result<T> = std::result::Result<T, DirectoryError>;

fn io(e: std::io::Error) -> DirectoryError {
    DirectoryError::Internal(e.to_string())
}

/// Run `cmd` on `dir` as `actor`: a CIG administrator (or the server itself).
pub fn run(dir: &Directory, actor: &Actor, cmd: &Command) -> Result<Outcome> {
    if !actor.principal.is_admin(dir) {
        return Err(DirectoryError::InsufficientAccess(format!(
            "{} may not run administration commands: they are for CIG administrators",
            if actor.dn.is_empty() { "an anonymous session" } else { actor.dn.as_str() }
        )));
    }
    let mut out = Outcome::default();
    match cmd {
        Command::TokenCreate { org, cig, name } => {
            let scope = match (cig, org) {
                (true, _) => TokenScope::Cig,
                (false, Some(org)) => TokenScope::Organisation(dir.find_organisation(org)?),
                (false, None) => return Err(DirectoryError::Unwilling("give --org or --cig".into())),
            };
            let (id, secret) = dir.create_token(&scope, name)?;
            match &scope {
                TokenScope::Cig => out.stdout.push_str(&format!("token {id} for the CIG as a whole\n")),
                TokenScope::Organisation(dn) => out.stdout.push_str(&format!("token {id} for {dn}\n")),
            }
            out.stdout.push_str(&format!("{secret}\n"));
        }
        Command::TokenList => {
            for t in dir.list_tokens()? {
                let scope = match t.scope {
                    TokenScope::Cig => "CIG".to_string(),
                    TokenScope::Organisation(dn) => dn.to_string(),
                };
                out.stdout.push_str(&format!("{}\t{}\t{}\t{}\n", t.id, t.created, scope, t.name));
            }
        }
        Command::TokenRevoke { id } => {
            if !dir.revoke_token(id)? {
                out.stderr.push_str(&format!("no token has the id {id}\n"));
                out.failed = true;
            } else {
                out.stdout.push_str(&format!("token {id} revoked\n"));
            }
        }
        Command::Audit { org, since } => {
            let mut q = AuditQuery::default();
            if let Some(org) = org {
                q.org_ndn = Some(dir.normalize_dn(&dir.find_organisation(org)?)?);
            }
            if let Some(since) = since {
                q.since = Some(audit::parse_since(since)?);
            }
            dir.audit(&q, |seq, c| {
                out.stdout.push_str(&format!(
                    "{seq}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
                    c.time,
                    if c.actor.is_empty() { "-" } else { &c.actor },
                    if c.peer.is_empty() { "-" } else { &c.peer },
                    c.op,
                    c.dn,
                    c.attrs.join(","),
                    c.result
                ));
                Ok(())
            })?;
            // What remains of the records purged at the end of their retention: counts.
            for (month, org, n) in dir.purged_audit_counts()? {
                if q.org_ndn.as_deref().is_some_and(|o| o != org) {
                    continue;
                }
                let org = if org.is_empty() { "-" } else { org.as_str() };
                out.stdout.push_str(&format!("# purged\t{month}\t{org}\t{n} records\n"));
            }
        }
        Command::Promote => {
            dir.promote()?;
            out.stdout.push_str("promoted: clients' writes are taken here, no provider is followed\n");
        }
        Command::ReplicationStatus => {
            let st = dir.replication_status()?;
            let now = crate::store::now_micros();
            let behind = |csn: Option<crate::store::Csn>| match (st.context_csn, csn) {
                (Some(c), Some(a)) if a >= c => "up to date".to_string(),
                (Some(c), Some(a)) => format!("{:.1} s behind", c.micros().saturating_sub(a.micros()) as f64 / 1e6),
                (Some(_), None) => "not started".to_string(),
                (None, _) => "up to date".to_string(),
            };
            let context = st.context_csn.map_or("none (nothing written yet)".to_string(), |c| c.to_string());
            out.stdout.push_str(&format!("contextCSN: {context}\n"));
            match &st.provider {
                Some(p) => {
                    out.stdout.push_str(&format!("replica of {p}: {}\n", st.state));
                    out.stdout.push_str(&format!("cookie: {}\n", st.cookie.as_deref().unwrap_or("none yet")));
                    if st.applied_at > 0 {
                        let ago = (now / 1_000_000).saturating_sub(st.applied_at);
                        out.stdout.push_str(&format!("last change applied {ago} s ago\n"));
                    }
                }
                None => out.stdout.push_str("provider (no [[replication.consumer]]: clients' writes are taken here)\n"),
            }
            out.stdout.push_str(&format!("replicas following: {}\n", st.followers.len()));
            for f in &st.followers {
                let who = if f.who.is_empty() { "anonymous" } else { f.who.as_str() };
                out.stdout.push_str(&format!("  {} as {who} on {}: {}\n", f.peer, f.base, behind(f.at)));
            }
        }
        Command::Check => {
            let started = std::time::Instant::now();
            let report = dir.check()?;
            for p in &report.problems {
                out.stdout.push_str(&format!("problem: {p}\n"));
            }
            for w in &report.warnings {
                out.stdout.push_str(&format!("warning: {w}\n"));
            }
            let verdict = if report.is_consistent() {
                "consistent".to_string()
            } else {
                format!("{} problems", report.problem_count)
            };
            out.stdout.push_str(&format!(
                "checked {} entries and {} index lists in {:.2}s: {verdict}\n",
                report.entries,
                report.posting_lists,
                started.elapsed().as_secs_f64(),
            ));
            out.failed = !report.is_consistent();
        }
        Command::Lifecycle { as_of } => {
            let as_of = match as_of {
                Some(t) => audit::parse_since(t)?.trim_end_matches('Z').to_string(),
                None => lifecycle::now_instant(),
            };
            let report = dir.lifecycle(&as_of)?;
            for dn in &report.ended {
                out.stdout.push_str(&format!("disabled: end of validity\t{dn}\n"));
            }
            for dn in &report.purged {
                out.stdout.push_str(&format!("purged from the recycle bin\t{dn}\n"));
            }
            if report.audit_purged > 0 {
                out.stdout.push_str(&format!("{} audit records purged, their retention over\n", report.audit_purged));
            }
            let n = report.ended.len() + report.purged.len();
            out.stdout.push_str(&format!("{n} transitions applied as of {as_of}Z\n"));
        }
        Command::BinList { org } => {
            let org = match org {
                Some(o) => Some(dir.normalize_dn(&dir.find_organisation(o)?)?),
                None => None,
            };
            for d in dir.deleted_agents(&actor.principal, org.as_deref())? {
                out.stdout.push_str(&format!("{}\t{}\t{}\t{}\n", d.uuid, d.deleted, d.purge_at, d.dn));
            }
        }
        Command::BinRestore { uuid } => {
            let dn = dir.restore(actor, uuid)?;
            out.stdout.push_str(&format!("restored {dn}\n"));
        }
        Command::Backup { file } => {
            writable_target(dir, file)?;
            let records = write_file(file, |w| dir.backup(w))?;
            out.stderr.push_str(&format!("backed up {records} records to {}\n", file.display()));
        }
        Command::Export { file, org: None, person: None } => {
            writable_target(dir, file)?;
            write_file(file, |mut w| crate::ldif::export(dir, &mut w).map(|_| 0))?;
            out.stderr.push_str(&format!("exported the directory to {}\n", file.display()));
        }
        Command::Export { file, org: Some(org), person: None } => {
            writable_target(dir, file)?;
            let org = dir.find_organisation(org)?;
            let json = scim_path(file);
            let mut agents = Vec::new();
            let entries = write_file(file, |mut w| {
                let mut n = 0;
                dir.for_each_entry_under(&org, |e| {
                    n += 1;
                    if is_agent(e) {
                        agents.push(crate::scim::user_document(dir, e));
                    }
                    // Handed over to the organisation: never a password hash.
                    let attrs: Vec<(String, Vec<Vec<u8>>)> = (e.attrs.iter())
                        .filter(|a| !a.name.eq_ignore_ascii_case("userPassword"))
                        .map(|a| (a.name.clone(), a.values.clone()))
                        .collect();
                    crate::ldif::write_entry(&mut w, &e.dn.to_string(), &attrs).map_err(io)
                })?;
                Ok(n)
            })?;
            let count = agents.len();
            write_file(&json, |w| {
                serde_json::to_writer_pretty(&mut *w, &crate::scim::user_list(agents)).map_err(|e| io(e.into()))?;
                Ok(0)
            })?;
            out.stderr.push_str(&format!(
                "exported the {entries} entries of {org} to {} and its {count} agents, as SCIM shows them, to {}\n",
                file.display(),
                json.display()
            ));
        }
        Command::Export { file, org: None, person: Some(person) } => {
            writable_target(dir, file)?;
            let dn = crate::directory::Dn::parse(person)?;
            let record = dir.person_record(&dn)?;
            let doc = person_document(dir, &record);
            write_file(file, |w| {
                serde_json::to_writer_pretty(&mut *w, &doc).map_err(|e| io(e.into()))?;
                Ok(0)
            })?;
            out.stderr.push_str(&format!(
                "exported what the directory holds about {} ({} audit records) to {}\n",
                record.entry.dn,
                record.audit.len(),
                file.display()
            ));
        }
        Command::Export { .. } => {
            return Err(DirectoryError::Unwilling("export takes --org or --person, not both".into()));
        }
    }
    Ok(out)
}

/// Where `export --org FILE` writes the agents as SCIM JSON: beside FILE.
fn scim_path(file: &Path) -> PathBuf {
    let mut name = file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".scim.json");
    file.with_file_name(name)
}

/// An agent: an entry of an organisation's `ou=agents`.
fn is_agent(e: &crate::directory::Entry) -> bool {
    e.dn.parent().rdn().is_some_and(|r| {
        r.avas.iter().any(|a| a.attr.eq_ignore_ascii_case("ou") && a.value.eq_ignore_ascii_case("agents"))
    })
}

/// A value as JSON text: itself when it is UTF-8, else `base64:` and its base64.
fn text_of(v: &[u8]) -> serde_json::Value {
    use base64::Engine;
    match std::str::from_utf8(v) {
        Ok(s) => s.into(),
        Err(_) => format!("base64:{}", base64::engine::general_purpose::STANDARD.encode(v)).into(),
    }
}

/// What the directory holds about one person, as a data-subject access
/// request answers it (RGPD art. 15): the entry (a password is said to be
/// held, its hash is not given), the groups, the last bind, the audit
/// records about or by the person, and the agent as SCIM shows it.
fn person_document(dir: &Directory, r: &crate::directory::personal_data::PersonRecord) -> serde_json::Value {
    let mut attributes = serde_json::Map::new();
    for a in &r.entry.attrs {
        attributes.insert(a.name.clone(), a.values.iter().map(|v| text_of(v)).collect());
    }
    let audit: Vec<serde_json::Value> = r
        .audit
        .iter()
        .map(|(seq, c)| {
            serde_json::json!({
                "number": seq, "time": c.time, "actor": c.actor, "from": c.peer, "operation": c.op,
                "target": c.dn, "attributes": c.attrs, "result": c.result,
            })
        })
        .collect();
    let mut doc = serde_json::json!({
        "dn": r.entry.dn.to_string(),
        "attributes": attributes,
        "passwordHeld": r.password_held,
        "groups": r.groups,
        "lastSuccessfulBind": r.last_bind,
        "audit": audit,
    });
    if is_agent(&r.entry) {
        doc["scim"] = crate::scim::user_document(dir, &r.entry);
    }
    doc
}

/// A backup or export may not land in the data directory (it could replace
/// the store itself) and is named by an absolute path: the process that
/// writes it may not be the one that was asked, nor share its directory.
fn writable_target(dir: &Directory, file: &Path) -> Result<()> {
    if !file.is_absolute() {
        return Err(DirectoryError::Unwilling(format!("{}: give an absolute path", file.display())));
    }
    let parent = file.parent().and_then(|p| std::fs::canonicalize(p).ok());
    let data = dir.data_dir().and_then(|d| std::fs::canonicalize(d).ok());
    if parent.is_some() && parent == data {
        return Err(DirectoryError::Unwilling(format!(
            "{}: not in the data directory, where it could replace the store",
            file.display()
        )));
    }
    Ok(())
}

/// Where a file is written before it is renamed into place.
pub fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    path.with_file_name(name)
}

/// Write `path` through a temporary file renamed into place once synced:
/// a backup that fails half-way leaves nothing that looks like one.
pub fn write_file(path: &Path, write: impl FnOnce(&mut dyn Write) -> Result<u64>) -> Result<u64> {
    let partial = partial_path(path);
    let result = (|| {
        // A new file only (never one planted there, nor a link's target), readable
        // by its owner alone: a backup holds password and token hashes.
        use std::os::unix::fs::OpenOptionsExt;
        let file =
            std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&partial).map_err(|e| {
                DirectoryError::Unwilling(format!(
                    "{}: {e} (a file left by an interrupted run? remove it)",
                    partial.display()
                ))
            })?;
        let mut out = std::io::BufWriter::new(file);
        let n = write(&mut out)?;
        out.flush().map_err(io)?;
        out.get_ref().sync_all().map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
