//! TLS for registries: the system CAs, plus per-registry `certs.d/HOST:PORT/` directories
//! (`*.crt` CAs, `client.cert` + `client.key`) as Docker reads them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// The system CA bundles Debian, Fedora and Alpine install.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Where per-registry certificates live, first match wins per file.
pub fn default_certs_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("/etc/berth/certs.d"), PathBuf::from("/etc/docker/certs.d")]
}

fn tls_err(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Registry(format!("{what} {}: {e}", path.display()))
}

/// The client config for `host` (HOST:PORT as the user wrote it).
pub fn client_config(host: &str, certs_dirs: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists()) {
        let certs = CertificateDer::pem_file_iter(bundle).map_err(|e| tls_err("read", bundle, e))?;
        // A bundle may hold certificates rustls refuses; the others still count.
        let _ = roots.add_parsable_certificates(certs.flatten());
    }
    let mut client_auth = None;
    for dir in certs_dirs.iter().map(|d| d.join(host)).filter(|d| d.is_dir()) {
        let entries = std::fs::read_dir(&dir).map_err(|e| tls_err("read", &dir, e))?;
        let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names.iter().filter(|p| p.extension().is_some_and(|x| x == "crt")) {
            for c in CertificateDer::pem_file_iter(p).map_err(|e| tls_err("read", p, e))? {
                let c = c.map_err(|e| tls_err("parse", p, e))?;
                roots.add(c).map_err(|e| tls_err("add CA", p, e))?;
            }
        }
        let (cert, key) = (dir.join("client.cert"), dir.join("client.key"));
        if client_auth.is_none() && cert.exists() {
            if !key.exists() {
                return Err(Error::Registry(format!("missing key {} for client certificate {}", key.display(), cert.display())));
            }
            let chain = CertificateDer::pem_file_iter(&cert)
                .map_err(|e| tls_err("read", &cert, e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err("parse", &cert, e))?;
            let k = PrivateKeyDer::from_pem_file(&key).map_err(|e| tls_err("read", &key, e))?;
            client_auth = Some((chain, k));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Registry(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    let cfg = match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| Error::Registry(format!("client certificate for {host}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}
