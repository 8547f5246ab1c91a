//! `-H tcp://...`: only with TLS and verified client certificates (anyone who can reach a
//! plain TCP socket would own the host). Certificates and key are PEM files, as dockerd's
//! --tlscacert/--tlscert/--tlskey.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TlsFiles<'a> {
    pub ca: &'a Path,
    pub cert: &'a Path,
    pub key: &'a Path,
}

pub fn acceptor(f: &TlsFiles) -> Result<tokio_rustls::TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(f.ca).with_context(|| format!("read {}", f.ca.display()))? {
        roots.add(c.with_context(|| format!("parse {}", f.ca.display()))?).context("add the CA certificate")?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .context("client certificate verifier")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(f.cert)
        .with_context(|| format!("read {}", f.cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("parse {}", f.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(f.key).with_context(|| format!("read the key {}", f.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("server certificate and key")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Accepts TLS connections and serves the API on each; a client without a certificate signed
/// by the CA fails the handshake and is dropped.
pub async fn serve(listener: tokio::net::TcpListener, acceptor: tokio_rustls::TlsAcceptor, router: berth_server::Router) -> std::io::Result<()> {
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                berth_server::serve_connection(tls, router).await;
            }
        });
    }
}
