//! TLS listeners, client identity, and what proxies may vouch for.
//!
//! This module owns everything between a TCP connection and the handler's
//! [`ConnInfo`](crate::request::ConnInfo):
//! the server certificate, the `--https` and `--mtls` listeners, the verification of device
//! certificates, and the proxy headers that may stand in for TLS ([`conn_info`]). `identity`
//! then decides which serial a request proves, and `script` and `upload_trust` enforce
//! `forcehttps`/`forcetrust` with it.
//!
//! - **Listeners.** `--https` speaks TLS without asking for a client certificate; `--mtls`
//!   asks for one: a certificate that does not chain to the `--client-ca` bundle (a PEM file
//!   with any number of CAs, like the LAP's `innovaphone-ca.pem`) is refused in the handshake,
//!   a connection without one is accepted and has no client identity. Both serve the same
//!   router as `--http`. TLS 1.2 and 1.3 (rustls: ECDHE with AES-GCM or ChaCha20-Poly1305).
//! - **Server certificate.** `--tls-cert/--tls-key` (PEM; the certificate file may hold the
//!   chain), or `<server tls-cert=… tls-key=…>` relative to the root. Without them, a
//!   self-signed certificate is generated on first start and kept in `ROOT/tls/server.crt` and
//!   `ROOT/tls/server.key` (mode 0600); its SHA-256 fingerprint is logged at every start.
//! - **Client identity.** The subject CN and issuer CN of the verified client certificate
//!   reach the handler in [`ConnMeta::client_cert`] ([`cert_names`]), with the scheme and the
//!   local port. Old device certificates (SHA-1, RSA-1024) are accepted when they chain to the
//!   bundle and `<server legacy-client-certs>` is not `false`: see [`verifier`].
//! - **Refusals are explained.** Every refused handshake is logged with the peer address and
//!   a reason (issuer unknown, expired, algorithm, no common TLS version, plain HTTP on a TLS
//!   port, timeout); a plain HTTP request on a TLS port gets a short HTTP 400 saying so.
//! - **Limits.** A handshake has [`HANDSHAKE_TIMEOUT`]; each connection is its own task, so a
//!   stalled or hostile client never holds up others; a client may send at most
//!   [`verifier::MAX_INTERMEDIATES`] intermediate certificates (rustls caps the whole
//!   certificate message at 64 KiB).
//! - **Proxies.** See [`proxy`] and `identity::headers`: `Forwarded`, `X-Forwarded-*` and
//!   `X-Remote-Cert` only from `<server trusted-proxies>`, and how the issuer of a
//!   proxy-verified certificate is decided.

pub mod diagnose;
pub mod proxy;
pub mod verifier;

pub use proxy::apply_proxy_headers;

use crate::config::Config;
use crate::conn::ConnMeta;
use crate::request::{self, ClientCert, ConnInfo};
use axum::http::{HeaderMap, header};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tracing::Instrument;

/// Longest a TLS handshake may take before the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a generated server certificate is valid.
const GENERATED_VALIDITY_DAYS: i64 = 20 * 365;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    File(String, String),
    #[error("{0}: no certificate found (expected PEM 'BEGIN CERTIFICATE')")]
    NoCertificate(String),
    #[error("{0}: no private key found (expected PEM 'BEGIN PRIVATE KEY' or similar)")]
    NoKey(String),
    #[error("{0}: none of its {1} certificates can serve as a client CA")]
    NoUsableCa(String, usize),
    #[error("a server certificate needs both tls-cert and tls-key; only {0} is configured")]
    HalfConfigured(&'static str),
    #[error(
        "{present} exists but {missing} does not: restore it, or remove {present} to have a new self-signed certificate generated"
    )]
    HalfGenerated { present: String, missing: String },
    #[error("--mtls needs --client-ca (the PEM bundle of the CAs that issue device certificates)")]
    NoClientCa,
    #[error("TLS configuration: {0}")]
    Rustls(String),
    #[error("cannot generate a server certificate: {0}")]
    Generate(String),
}

/// Where the TLS listeners' settings come from (flags over configuration file, resolved).
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: Option<PathBuf>,
    /// Accept SHA-1 and RSA-1024 client certificates that chain to the bundle.
    pub legacy_client_certs: bool,
}

/// The rustls configurations of the listeners.
pub struct TlsSetup {
    /// For `--https` listeners.
    pub https: Arc<ServerConfig>,
    /// For `--mtls` listeners, when asked for.
    pub mtls: Option<Arc<ServerConfig>>,
    /// The server certificate file in use.
    pub cert_path: PathBuf,
    /// SHA-256 fingerprint of the server certificate.
    pub fingerprint: String,
    /// Where the files came from (read again on reload).
    pub source: TlsSource,
}

/// What [`TlsSetup::load`] was given, kept to load again.
#[derive(Debug, Clone)]
pub struct TlsSource {
    pub root: PathBuf,
    pub opts: TlsOptions,
}

impl TlsSetup {
    /// Loads (or generates) the server certificate and, with `mtls`, the client CA bundle.
    pub fn load(root: &Path, opts: &TlsOptions, mtls: bool) -> Result<TlsSetup, TlsError> {
        // the client CAs first: a broken bundle stops the start before anything is generated
        let cas = if mtls {
            let ca_path = opts.client_ca.as_deref().ok_or(TlsError::NoClientCa)?;
            Some(load_client_cas(ca_path)?)
        } else {
            None
        };
        let (cert_path, key_path) = server_cert_paths(root, opts.cert.clone(), opts.key.clone())?;
        let chain = load_certs(&cert_path)?;
        let key = load_key(&key_path)?;
        let fingerprint = chain.first().map(fingerprint).unwrap_or_default();
        let https = server_config(chain.clone(), key.clone_key(), None, false)?;
        let mtls = match cas {
            Some(cas) => Some(server_config(
                chain,
                key,
                Some(&cas),
                opts.legacy_client_certs,
            )?),
            None => None,
        };
        Ok(TlsSetup {
            https,
            mtls,
            cert_path,
            fingerprint,
            source: TlsSource {
                root: root.to_path_buf(),
                opts: opts.clone(),
            },
        })
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::File(path.display().to_string(), e.to_string())
}

/// Reads a PEM certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| file_error(path, e))?;
    let certs: Vec<_> = iter
        .collect::<Result<_, _>>()
        .map_err(|e| file_error(path, e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(path.display().to_string()));
    }
    Ok(certs)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(path.display().to_string()),
        other => file_error(path, other),
    })
}

/// Reads the client CA bundle: every certificate that can serve as a trust anchor is used
/// and logged; one that cannot is logged and skipped; none at all is an error.
pub fn load_client_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let all = load_certs(path)?;
    let total = all.len();
    let mut usable = Vec::new();
    for (i, der) in all.into_iter().enumerate() {
        let who = verifier::describe_chain(&der);
        let mut probe = RootCertStore::empty();
        match probe.add(der.clone()) {
            Ok(()) => {
                tracing::info!("client CA {}: {who}", i + 1);
                usable.push(der);
            }
            Err(e) => tracing::warn!(
                "{}: certificate {} ({who}) cannot be a client CA, skipped: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    if usable.is_empty() {
        return Err(TlsError::NoUsableCa(path.display().to_string(), total));
    }
    Ok(usable)
}

/// The server certificate to use: the configured one, or one generated on first start and
/// kept in `ROOT/tls/server.crt` + `server.key`. Returns the PEM paths.
pub fn server_cert_paths(
    root: &Path,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), TlsError> {
    match (cert, key) {
        (Some(c), Some(k)) => return Ok((c, k)),
        (Some(_), None) => return Err(TlsError::HalfConfigured("tls-cert")),
        (None, Some(_)) => return Err(TlsError::HalfConfigured("tls-key")),
        (None, None) => {}
    }
    let dir = root.join("tls");
    let (c, k) = (dir.join("server.crt"), dir.join("server.key"));
    match (c.is_file(), k.is_file()) {
        (true, true) => return Ok((c, k)),
        (true, false) | (false, true) => {
            let (present, missing) = if c.is_file() { (&c, &k) } else { (&k, &c) };
            return Err(TlsError::HalfGenerated {
                present: present.display().to_string(),
                missing: missing.display().to_string(),
            });
        }
        (false, false) => {}
    }
    let (cert_pem, key_pem) = generate_self_signed(&host_name())?;
    std::fs::create_dir_all(&dir).map_err(|e| file_error(&dir, e))?;
    crate::fsio::write_atomic_mode(&k, key_pem.as_bytes(), Some(0o600))
        .map_err(|e| file_error(&k, e))?;
    crate::fsio::write_atomic(&c, cert_pem.as_bytes()).map_err(|e| file_error(&c, e))?;
    tracing::info!(
        "generated a self-signed server certificate in {} (devices accept it; browsers will warn)",
        c.display()
    );
    Ok((c, k))
}

/// This machine's name, if it has one.
fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// A self-signed server certificate (PEM) for `localhost`, the loopback addresses and `host`.
pub fn generate_self_signed(host: &str) -> Result<(String, String), TlsError> {
    let generate = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = host.trim();
    if !host.is_empty() && !names.iter().any(|n| n == host) {
        names.push(host.to_string());
    }
    let mut params = rcgen::CertificateParams::new(names).map_err(generate)?;
    let cn = if host.is_empty() {
        "update-server".to_string()
    } else {
        format!("update-server {host}")
    };
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(GENERATED_VALIDITY_DAYS);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let key = rcgen::KeyPair::generate().map_err(generate)?;
    let cert = params.self_signed(&key).map_err(generate)?;
    Ok((cert.pem(), key.serialize_pem()))
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

/// The rustls configuration of a listener; `client_ca` makes it an MTLS listener, `legacy`
/// lets it accept old device certificates ([`verifier`]).
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<&[CertificateDer<'static>]>,
    legacy: bool,
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
            let verifier = verifier::DeviceCertVerifier::new(roots, cas, legacy)
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
            builder.with_client_cert_verifier(Arc::new(verifier))
        }
    };
    let mut cfg = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The text of the first CN of a distinguished name: UTF8String, PrintableString, IA5String,
/// TeletexString (as Latin-1), BMPString and UniversalString are understood; "" if none.
pub fn common_name(name: &x509_parser::x509::X509Name<'_>) -> String {
    use x509_parser::der_parser::asn1_rs::Tag;
    let Some(attr) = name.iter_common_name().next() else {
        return String::new();
    };
    if let Ok(s) = attr.as_str() {
        return s.to_string();
    }
    let value = attr.attr_value();
    let data: &[u8] = value.data;
    match value.tag() {
        Tag::BmpString => {
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        Tag::UniversalString => data
            .chunks_exact(4)
            .map(|c| {
                char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                    .unwrap_or(char::REPLACEMENT_CHARACTER)
            })
            .collect(),
        _ => data.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The connection facts of a request as PHP saw them, after the proxy headers `proxy`
/// allows.
pub fn conn_info(cfg: &Config, meta: &ConnMeta, headers: &HeaderMap) -> ConnInfo {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| request::valid_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| meta.local.to_string());
    let forwarded_for = headers
        .get("x-forwarded-for")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let mut info = ConnInfo {
        https: meta.tls,
        local_port: meta.local.port(),
        remote_ip: meta.peer.ip(),
        forwarded_for,
        client_cert: meta.client_cert.clone(),
        host,
        cert_via: if meta.client_cert.is_some() {
            request::CertVia::Tls
        } else {
            request::CertVia::None
        },
    };
    apply_proxy_headers(&mut info, cfg, meta, headers);
    info
}

/// Subject CN and issuer CN of a DER certificate.
pub fn cert_names(der: &[u8]) -> Option<ClientCert> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(ClientCert {
        cn: common_name(cert.subject()),
        issuer_cn: common_name(cert.issuer()),
    })
}

/// What the first bytes of a connection on a TLS port say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBytes {
    /// A TLS handshake record (or too little to tell): hand it to rustls.
    Tls,
    /// Looks like an HTTP request line: the client forgot `https://`.
    PlainHttp,
}

/// Tells a TLS handshake from a plain HTTP request by the first byte.
pub fn classify_first_bytes(first: &[u8]) -> FirstBytes {
    match first.first() {
        Some(b) if b.is_ascii_uppercase() => FirstBytes::PlainHttp,
        _ => FirstBytes::Tls,
    }
}

/// The answer to a plain HTTP request on a TLS port.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
Content-Length: 58\r\n\
\r\n\
# this port speaks HTTPS: use https:// in the URL - exit\r\n";

/// Accepts TLS connections on `listener` forever.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    config: TlsSlot,
    serving: crate::conn::Serving,
) {
    loop {
        let (stream, peer, local, slot) = crate::conn::accept(&listener, &serving.limits).await;
        // the certificate of this moment: a reload (SIGHUP) swaps it for new handshakes
        let acceptor = tokio_rustls::TlsAcceptor::from(config.current());
        let span = tracing::info_span!("tls", %peer, port = local.port());
        let serving = serving.clone();
        tokio::spawn(
            async move {
                serve_tls_connection(stream, peer, local, acceptor, serving).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

/// One TLS connection: handshake (bounded by [`HANDSHAKE_TIMEOUT`]), then HTTP.
async fn serve_tls_connection(
    mut stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    serving: crate::conn::Serving,
) {
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    let timed_out = || {
        tracing::info!(
            "TLS handshake timed out after {} s, connection dropped",
            HANDSHAKE_TIMEOUT.as_secs()
        )
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Ok(Ok(0)) => return,
        Ok(Ok(n)) => {
            if classify_first_bytes(&first[..n]) == FirstBytes::PlainHttp {
                tracing::info!("plain HTTP request on a TLS port: answered 400");
                let _ = tokio::time::timeout_at(deadline, answer_plain_http(&mut stream)).await;
                return;
            }
        }
        Ok(Err(e)) => {
            tracing::debug!("connection failed before the TLS handshake: {e}");
            return;
        }
        Err(_) => return timed_out(),
    }
    let tls = match tokio::time::timeout_at(deadline, acceptor.accept(serving.limits.watch(stream)))
        .await
    {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return log_handshake_error(&e),
        Err(_) => return timed_out(),
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
    crate::conn::serve_connection(tls, meta, serving).await;
}

/// Logs why a handshake failed, in words an administrator can act on. Certificate refusals
/// were already explained by the verifier.
fn log_handshake_error(e: &std::io::Error) {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        tracing::debug!("TLS handshake failed: {e}");
        return;
    };
    match tls {
        rustls::Error::InvalidCertificate(_) => {
            tracing::debug!("TLS handshake refused: {tls}");
        }
        rustls::Error::PeerIncompatible(p) => tracing::warn!(
            "TLS handshake refused: the client offers nothing this server speaks ({p:?}); it needs TLS 1.2 or 1.3 with ECDHE and AES-GCM or ChaCha20"
        ),
        rustls::Error::AlertReceived(alert) => tracing::info!(
            "TLS handshake aborted by the client ({alert:?}): does it trust the server certificate?"
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            tracing::info!("not a TLS client: {tls}")
        }
        other => tracing::info!("TLS handshake failed: {other}"),
    }
}

/// Sends the plain HTTP answer (used when a TLS port receives a plain request).
pub async fn answer_plain_http(stream: &mut tokio::net::TcpStream) {
    let _ = stream.write_all(PLAIN_HTTP_ANSWER).await;
    let _ = stream.shutdown().await;
}

/// A listener's rustls configuration; each new connection takes the current one, a reload
/// replaces it (connections already open keep theirs).
#[derive(Clone)]
pub struct TlsSlot(Arc<RwLock<Arc<ServerConfig>>>);

impl TlsSlot {
    pub fn new(config: Arc<ServerConfig>) -> TlsSlot {
        TlsSlot(Arc::new(RwLock::new(config)))
    }

    /// The configuration for the next handshake.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set(&self, config: Arc<ServerConfig>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = config;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_bytes() {
        assert_eq!(
            classify_first_bytes(b"GET / HTTP/1.1"),
            FirstBytes::PlainHttp
        );
        assert_eq!(classify_first_bytes(b"PUT"), FirstBytes::PlainHttp);
        assert_eq!(classify_first_bytes(&[0x16, 0x03, 0x01]), FirstBytes::Tls);
        assert_eq!(classify_first_bytes(b""), FirstBytes::Tls);
        assert_eq!(classify_first_bytes(b"\x00garbage"), FirstBytes::Tls);
    }

    #[test]
    fn plain_http_answer_has_the_right_length() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head");
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }

    #[test]
    fn generated_certificate_names_the_host_and_loopback() {
        let (cert, key) = generate_self_signed("update.example").expect("generate");
        assert!(key.contains("PRIVATE KEY"));
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("pem");
        let (_, c) = x509_parser::parse_x509_certificate(der.as_ref()).expect("x509");
        assert_eq!(common_name(c.subject()), "update-server update.example");
        let san = c
            .subject_alternative_name()
            .expect("san ext")
            .expect("san present");
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect();
        for want in [
            "DNSName(localhost)",
            "DNSName(update.example)",
            "IPAddress(7f:00:00:01)",
        ] {
            assert!(
                names.iter().any(|n| n.contains(want)),
                "{want} in {names:?}"
            );
        }
        assert!(c.validity().is_valid());
    }

    #[test]
    fn half_configured_certificates_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(
            server_cert_paths(dir.path(), Some("a.pem".into()), None),
            Err(TlsError::HalfConfigured("tls-cert"))
        ));
        std::fs::create_dir_all(dir.path().join("tls")).expect("mkdir");
        std::fs::write(dir.path().join("tls/server.crt"), "x").expect("write");
        assert!(matches!(
            server_cert_paths(dir.path(), None, None),
            Err(TlsError::HalfGenerated { .. })
        ));
    }

    #[test]
    fn generated_once_then_kept() {
        let dir = tempfile::tempdir().expect("tmp");
        let (c, k) = server_cert_paths(dir.path(), None, None).expect("generate");
        let first = std::fs::read(&c).expect("cert");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&k).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (c2, _) = server_cert_paths(dir.path(), None, None).expect("reuse");
        assert_eq!(std::fs::read(c2).expect("cert"), first);
        assert!(load_key(&k).is_ok());
        assert_eq!(load_certs(&c).expect("certs").len(), 1);
    }
}
