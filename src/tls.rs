//! TLS material for LDAPS and StartTLS: load the configured PEM files, or, in
//! development when none are configured, generate a CA and a server
//! certificate for localhost into `<data>/tls/` once and reuse them. Nothing
//! protocol-specific here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::Config;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {why}")]
    File { path: String, why: String },
    #[error("generating a development certificate: {0}")]
    Generate(String),
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The files in use, to tell the operator.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The generated development CA (give it to clients: `LDAPTLS_CACERT`).
    pub ca: Option<PathBuf>,
    /// Whether the files were created by this start.
    pub generated: bool,
}

/// The rustls server configuration and where its files are.
pub fn server_config(cfg: &Config) -> Result<(Arc<ServerConfig>, TlsFiles), TlsError> {
    let files = match (&cfg.tls_cert, &cfg.tls_key) {
        (Some(cert), Some(key)) => TlsFiles { cert: cert.clone(), key: key.clone(), ca: None, generated: false },
        _ => development_files(&cfg.data.join("tls"))?,
    };
    let file_err = |path: &Path, why: String| TlsError::File { path: path.display().to_string(), why };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| file_err(&files.cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(&files.cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(&files.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| file_err(&files.key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions()?;
    let config = match &cfg.tls_client_ca {
        // Client certificates are asked for and verified, but optional: a
        // client without one still binds with a password.
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| file_err(ca, e.to_string()))? {
                roots.add(c.map_err(|e| file_err(ca, e.to_string()))?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| file_err(ca, e.to_string()))?;
            builder.with_client_cert_verifier(verifier).with_single_cert(certs, key)?
        }
        None => builder.with_no_client_auth().with_single_cert(certs, key)?,
    };
    Ok((Arc::new(config), files))
}

/// Reuse or create `ca.pem`, `cert.pem` (server certificate then CA) and `key.pem`.
fn development_files(dir: &Path) -> Result<TlsFiles, TlsError> {
    let (ca, cert, key) = (dir.join("ca.pem"), dir.join("cert.pem"), dir.join("key.pem"));
    let mut files = TlsFiles { cert: cert.clone(), key: key.clone(), ca: Some(ca.clone()), generated: false };
    if cert.exists() && key.exists() {
        return Ok(files);
    }
    let gen_err = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let io_err = |p: &Path, e: std::io::Error| TlsError::File { path: p.display().to_string(), why: e.to_string() };

    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Convergences development CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
    let ca_key = rcgen::KeyPair::generate().map_err(gen_err)?;
    let ca_cert = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(gen_err)?;

    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])
            .map_err(gen_err)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let key_pair = rcgen::KeyPair::generate().map_err(gen_err)?;
    let server = params.signed_by(&key_pair, &ca_cert).map_err(gen_err)?;

    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    std::fs::write(&ca, ca_cert.pem()).map_err(|e| io_err(&ca, e))?;
    std::fs::write(&cert, format!("{}{}", server.pem(), ca_cert.pem())).map_err(|e| io_err(&cert, e))?;
    write_private(&key, &key_pair.serialize_pem()).map_err(|e| io_err(&key, e))?;
    files.generated = true;
    Ok(files)
}

/// Write a private key readable by its owner only.
fn write_private(path: &Path, pem: &str) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
        f.write_all(pem.as_bytes())
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, pem)
    }
}
