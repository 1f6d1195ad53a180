//! Entry points for the fuzz targets (`fuzz/`): each takes what a client or
//! an operator could send and must return, never panic. Not an API.

use std::sync::Arc;

use crate::directory::schema::{Schema, parse_schema_file};
use crate::directory::{Dn, Filter};

/// A DN in its string form (RFC 4514), then normalised by the builtin schema.
pub fn dn(s: &str) {
    if let (Ok(dn), Some(schema)) = (Dn::parse(s), builtin()) {
        let _ = dn.to_string();
        let _ = schema.normalize_dn(&dn);
    }
}

/// An LDAP filter in its string form (RFC 4515).
pub fn ldap_filter(s: &str) {
    if let Ok(f) = Filter::parse(s) {
        let _ = f.to_string();
    }
}

/// A SCIM filter (RFC 7644 §3.4.2.2), lowered to a directory filter.
pub fn scim_filter(s: &str) {
    crate::scim::fuzz_filter(s);
}

/// A SCIM PATCH body applied to a User document.
pub fn scim_patch(doc: &[u8], body: &[u8]) {
    crate::scim::fuzz_patch(doc, body);
}

/// An LDIF file, read record by record.
pub fn ldif(bytes: &[u8]) {
    for record in crate::ldif::LdifReader::new(bytes) {
        if record.is_err() {
            break;
        }
    }
}

/// A schema file (RFC 4512 definitions), parsed and resolved with the builtin ones.
pub fn schema(text: &str) {
    if let Ok(file) = parse_schema_file(text) {
        let _ = Schema::build(vec![file]);
    }
}

fn builtin() -> Option<&'static Schema> {
    static SCHEMA: std::sync::OnceLock<Option<Schema>> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| Schema::builtin().ok()).as_ref()
}

/// An LDAP session over an in-memory stream: `bytes` in, the server's
/// responses out, against a small directory made once per process.
pub fn ldap_session(bytes: &[u8]) -> Vec<u8> {
    static SERVER: std::sync::OnceLock<Option<(tokio::runtime::Runtime, Arc<crate::ldap::Context>)>> =
        std::sync::OnceLock::new();
    let Some((rt, ctx)) = SERVER.get_or_init(session_server).as_ref() else { return Vec::new() };
    rt.block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(1 << 20);
        let session = tokio::spawn(crate::ldap::session(server, ctx.clone()));
        let _ = client.write_all(bytes).await;
        let _ = client.shutdown().await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), client.read_to_end(&mut out)).await;
        let _ = session.await;
        out
    })
}

fn session_server() -> Option<(tokio::runtime::Runtime, Arc<crate::ldap::Context>)> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let dir = std::env::temp_dir().join(format!("convergences-fuzz-{}", std::process::id()));
    let mut cfg = crate::config::Config::for_test(&dir);
    cfg.demo = true;
    cfg.admin_password = Some("fuzzing-only-password".into());
    let directory = Arc::new(crate::app::open_directory(&cfg).ok()?);
    if directory.is_empty().ok()? {
        crate::seed::seed_demo(&directory, cfg.admin_password.as_deref()).ok()?;
    }
    let ctx = Arc::new(crate::ldap::Context::new(directory, &cfg, None).ok()?);
    Some((rt, ctx))
}
