//! TLS listeners, client identity, and what proxies may vouch for.
//!
//! `--https` listeners speak TLS without asking for a client certificate; `--mtls` listeners
//! ask for one: a certificate that does not chain to the `--client-ca` bundle is refused in the
//! handshake, a connection without one is accepted (the request then has no client identity).
//! The server certificate comes from `--tls-cert/--tls-key` (PEM, chain allowed) or, when none
//! is configured, is generated once and kept in `ROOT/tls/`. The verified client certificate's
//! subject CN and issuer CN reach the handlers in [`ConnMeta`]; `script` enforces
//! `forcehttps`/`forcetrust` with them.

use crate::config::Config;
use crate::http::ConnMeta;
use crate::request::{ClientCert, ConnInfo};
use axum::Router;
use axum::http::HeaderMap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    File(String, String),
    #[error("{0}: no certificate found")]
    NoCertificate(String),
    #[error("{0}: no private key found")]
    NoKey(String),
    #[error("TLS configuration: {0}")]
    Rustls(String),
    #[error("cannot generate a server certificate: {0}")]
    Generate(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let name = path.display().to_string();
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::File(name.clone(), e.to_string()))?;
    let certs: Vec<_> = iter
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::File(name.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(name));
    }
    Ok(certs)
}

/// Reads a PEM private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let name = path.display().to_string();
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(name),
        other => TlsError::File(name, other.to_string()),
    })
}

/// The server certificate to use: the configured one, or one generated on first start and
/// kept in `ROOT/tls/server.crt` + `server.key`. Returns the PEM paths.
pub fn server_cert_paths(
    root: &Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), TlsError> {
    if let (Some(c), Some(k)) = (cert, key) {
        return Ok((c, k));
    }
    let dir = root.join("tls");
    let (c, k) = (dir.join("server.crt"), dir.join("server.key"));
    if c.is_file() && k.is_file() {
        return Ok((c, k));
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !host.is_empty() {
        names.push(host);
    }
    let ck =
        rcgen::generate_simple_self_signed(names).map_err(|e| TlsError::Generate(e.to_string()))?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| TlsError::File(dir.display().to_string(), e.to_string()))?;
    crate::state::write_atomic(&k, ck.signing_key.serialize_pem().as_bytes())
        .map_err(|e| TlsError::File(k.display().to_string(), e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o600));
    }
    crate::state::write_atomic(&c, ck.cert.pem().as_bytes())
        .map_err(|e| TlsError::File(c.display().to_string(), e.to_string()))?;
    tracing::info!(
        "generated a self-signed server certificate in {}",
        c.display()
    );
    Ok((c, k))
}

/// SHA-256 fingerprint of a certificate, `AA:BB:…`.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(cert.as_ref());
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The rustls configuration of a listener; `client_ca` makes it an MTLS listener.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = RootCertStore::empty();
            for c in cas {
                roots
                    .add(c.clone())
                    .map_err(|e| TlsError::Rustls(format!("client CA: {e}")))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .allow_unauthenticated()
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Subject CN and issuer CN of a DER certificate.
pub fn cert_names(der: &[u8]) -> Option<ClientCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string()
    };
    Some(ClientCert {
        cn: cn(cert.subject()),
        issuer_cn: cn(cert.issuer()),
    })
}

/// Accepts TLS connections on `listener` forever.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!("TLS handshake with {peer} refused: {e}");
                    return;
                }
                Err(_) => {
                    tracing::warn!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            let client_cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| cert_names(c.as_ref()));
            let meta = ConnMeta {
                peer,
                local,
                tls: true,
                client_cert,
            };
            crate::http::serve_connection(tls, meta, router).await;
        });
    }
}

/// Believes `X-Forwarded-Proto` and `X-Remote-Cert` from the configured trusted proxies.
pub fn apply_proxy_headers(
    info: &mut ConnInfo,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) {
    let has_proxy_headers =
        headers.contains_key("x-remote-cert") || headers.contains_key("x-forwarded-proto");
    if !has_proxy_headers {
        return;
    }
    let peer = meta.peer.ip().to_canonical().to_string();
    if !cfg.server.trusted_proxies.contains(&peer) {
        tracing::warn!("ignoring proxy headers from {peer}: not in <server trusted-proxies>");
        return;
    }
    if let Some(proto) = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
    {
        info.https = proto.eq_ignore_ascii_case("https");
    }
    if let Some(cn) = headers.get("x-remote-cert").and_then(|v| v.to_str().ok()) {
        let cn = cn
            .split([',', '/'])
            .find_map(|p| p.trim().strip_prefix("CN="))
            .unwrap_or(cn)
            .trim()
            .to_string();
        let issuer = headers
            .get("x-remote-cert-issuer")
            .and_then(|v| v.to_str().ok())
            .map(|i| i.trim().trim_start_matches("CN=").to_string())
            .unwrap_or_default();
        info.client_cert = Some(ClientCert {
            cn,
            issuer_cn: issuer,
        });
    }
}
