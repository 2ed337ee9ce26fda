//! Test support for TLS: a PKI made in the test (rcgen, plus the `rsa` crate for the old RSA
//! key sizes and SHA-1 signatures rcgen and *ring* cannot make), and a rustls client that
//! talks raw HTTP/1.1 over a real handshake.
//!
//! The one test PKI of the integration tests: every CA a test needs is a [`Ca`] of this module.

use super::{Response, exchange, make_root};
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs8::EncodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// A signing key of the test PKI: an EC P-256 key (rcgen/ring), or an RSA key of any size
/// (the `rsa` crate) that signs with SHA-256.
pub enum TestKey {
    Ec(rcgen::KeyPair),
    Rsa {
        key: rsa::RsaPrivateKey,
        public_der: Vec<u8>,
    },
}

impl TestKey {
    pub fn ec() -> TestKey {
        TestKey::Ec(rcgen::KeyPair::generate().expect("EC key"))
    }

    pub fn rsa(bits: usize) -> TestKey {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, bits).expect("RSA key");
        let public_der = key
            .to_public_key()
            .to_pkcs1_der()
            .expect("RSA public key")
            .as_bytes()
            .to_vec();
        TestKey::Rsa { key, public_der }
    }

    /// The private key as rustls wants it (PKCS#8).
    pub fn private_der(&self) -> PrivateKeyDer<'static> {
        match self {
            TestKey::Ec(k) => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(k.serialize_der())),
            TestKey::Rsa { key, .. } => PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.to_pkcs8_der().expect("pkcs8").as_bytes().to_vec(),
            )),
        }
    }

    fn rsa_key(&self) -> &rsa::RsaPrivateKey {
        match self {
            TestKey::Rsa { key, .. } => key,
            TestKey::Ec(_) => panic!("an RSA key is needed here"),
        }
    }
}

impl rcgen::PublicKeyData for TestKey {
    fn der_bytes(&self) -> &[u8] {
        match self {
            TestKey::Ec(k) => k.der_bytes(),
            TestKey::Rsa { public_der, .. } => public_der,
        }
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            TestKey::Ec(k) => k.algorithm(),
            TestKey::Rsa { .. } => &rcgen::PKCS_RSA_SHA256,
        }
    }
}

impl rcgen::SigningKey for TestKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        match self {
            TestKey::Ec(k) => k.sign(msg),
            TestKey::Rsa { key, .. } => Ok(rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(
                key.clone(),
            )
            .sign(msg)
            .to_vec()),
        }
    }
}

/// A certificate authority of the test PKI.
pub struct Ca {
    pub cn: String,
    pub der: CertificateDer<'static>,
    issuer: rcgen::Issuer<'static, TestKey>,
}

fn dn(cn: &str) -> rcgen::DistinguishedName {
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CountryName, "DE");
    dn.push(rcgen::DnType::OrganizationName, "innovaphone AG");
    dn.push(rcgen::DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, basic_constraints: bool) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = if basic_constraints {
        rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained)
    } else {
        rcgen::IsCa::NoCa
    };
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(3650);
    params.not_after = now + time::Duration::days(3650);
    params
}

impl Ca {
    /// A self-signed root CA with an EC key.
    pub fn new(cn: &str) -> Ca {
        Ca::with_key(cn, TestKey::ec(), true)
    }

    /// A self-signed root CA with `key`; `basic_constraints: false` leaves the
    /// basicConstraints extension out, as some early CAs did.
    pub fn with_key(cn: &str, key: TestKey, basic_constraints: bool) -> Ca {
        let params = ca_params(cn, basic_constraints);
        let cert = params.self_signed(&key).expect("self-signed CA");
        Ca {
            cn: cn.to_string(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, cn: &str, basic_constraints: bool) -> Ca {
        let params = ca_params(cn, basic_constraints);
        let key = TestKey::ec();
        let cert = params.signed_by(&key, &self.issuer).expect("intermediate");
        Ca {
            cn: cn.to_string(),
            der: cert.der().clone(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn pem(&self) -> String {
        pem("CERTIFICATE", self.der.as_ref())
    }

    /// A device certificate with `cn`, an EC key, valid from ten days ago for a year.
    pub fn issue(&self, cn: &str) -> Device {
        self.issue_with(cn, LeafOptions::default())
    }

    pub fn issue_with(&self, cn: &str, opts: LeafOptions) -> Device {
        let params = leaf_params(cn, &opts);
        let key = opts.key.unwrap_or_else(TestKey::ec);
        let cert = params.signed_by(&key, &self.issuer).expect("device cert");
        let mut der = cert.der().to_vec();
        if opts.sha1 {
            der = resign_sha1(&der, self.issuer_key().rsa_key());
        }
        Device {
            chain: vec![CertificateDer::from(der)],
            key,
        }
    }

    /// A device certificate with `cn` for a key the device made itself (`public_key`, from
    /// its signing request), valid as [`LeafOptions::default`].
    pub fn certify(
        &self,
        cn: &str,
        public_key: &impl rcgen::PublicKeyData,
    ) -> CertificateDer<'static> {
        let params = leaf_params(cn, &LeafOptions::default());
        let cert = params
            .signed_by(public_key, &self.issuer)
            .expect("device cert");
        cert.der().clone()
    }

    fn issuer_key(&self) -> &TestKey {
        self.issuer.key()
    }
}

/// The parameters of a device certificate with `cn`, valid as `opts` say.
fn leaf_params(cn: &str, opts: &LeafOptions) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = OffsetDateTime::now_utc();
    params.not_before = now + opts.valid_from;
    params.not_after = now + opts.valid_until;
    params
}

/// How to make a device certificate.
pub struct LeafOptions {
    /// Start of validity relative to now.
    pub valid_from: time::Duration,
    /// End of validity relative to now.
    pub valid_until: time::Duration,
    /// Re-sign with `sha1WithRSAEncryption` (the issuer must have an RSA key).
    pub sha1: bool,
    /// The device's key (default: a new EC key).
    pub key: Option<TestKey>,
}

impl Default for LeafOptions {
    fn default() -> Self {
        LeafOptions {
            valid_from: time::Duration::days(-10),
            valid_until: time::Duration::days(365),
            sha1: false,
            key: None,
        }
    }
}

/// A device: its certificate chain (own certificate first) and key.
pub struct Device {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: TestKey,
}

impl Device {
    /// The same device sending `extra` certificates after its own.
    pub fn with_intermediates(mut self, extra: &[CertificateDer<'static>]) -> Device {
        self.chain.extend(extra.iter().cloned());
        self
    }
}

/// Length of the DER header and of the content of the element at `pos`.
fn der_element(der: &[u8], pos: usize) -> (usize, usize) {
    let first = der[pos + 1];
    if first < 0x80 {
        return (2, usize::from(first));
    }
    let n = usize::from(first & 0x7f);
    let len = der[pos + 2..pos + 2 + n]
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    (2 + n, len)
}

/// Turns a certificate signed with `sha256WithRSAEncryption` into one signed with
/// `sha1WithRSAEncryption` by the same RSA key: both algorithm identifiers are rewritten
/// (same length) and the TBS part is signed again.
pub fn resign_sha1(der: &[u8], key: &rsa::RsaPrivateKey) -> Vec<u8> {
    const SHA256_RSA: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    const SHA1_RSA: [u8; 15] = [
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00,
    ];
    let mut out = der.to_vec();
    let mut replaced = 0;
    let mut i = 0;
    while i + SHA256_RSA.len() <= out.len() {
        if out[i..i + SHA256_RSA.len()] == SHA256_RSA {
            out[i..i + SHA1_RSA.len()].copy_from_slice(&SHA1_RSA);
            replaced += 1;
            i += SHA256_RSA.len();
        } else {
            i += 1;
        }
    }
    assert_eq!(replaced, 2, "TBS and outer signature algorithm");
    let (outer_header, _) = der_element(&out, 0);
    let (tbs_header, tbs_len) = der_element(&out, outer_header);
    let tbs = out[outer_header..outer_header + tbs_header + tbs_len].to_vec();
    let signature = rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key.clone())
        .sign(&tbs)
        .to_vec();
    let n = out.len();
    out[n - signature.len()..].copy_from_slice(&signature);
    out
}

/// PEM text of DER data.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Writes a CA bundle (the CAs' PEM one after the other, like `innovaphone-ca.pem`).
pub fn write_bundle(path: &Path, cas: &[&Ca]) -> PathBuf {
    let text: String = cas.iter().map(|c| c.pem()).collect();
    std::fs::write(path, text).expect("CA bundle");
    path.to_path_buf()
}

/// A server certificate for 127.0.0.1 and its key, as PEM files in `dir`.
pub fn write_server_cert(dir: &Path) -> (PathBuf, PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
        .expect("server cert");
    let (c, k) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&c, ck.cert.pem()).expect("write cert");
    std::fs::write(&k, ck.signing_key.serialize_pem()).expect("write key");
    (c, k)
}

/// A server at `/update` with HTTPS and MTLS listeners, its certificate written into `dir`,
/// clients of the `cas` trusted (legacy certificates accepted, as the server's default).
pub fn mtls_setup(dir: &Path, cas: &[&Ca]) -> super::Setup {
    let bundle = write_bundle(&dir.join("device-ca.pem"), cas);
    let (crt, key) = write_server_cert(dir);
    super::Setup {
        prefix: "/update".into(),
        https: true,
        mtls: true,
        tls: update_server::tls::TlsOptions {
            cert: Some(crt),
            key: Some(key),
            client_ca: Some(bundle),
            legacy_client_certs: true,
        },
    }
}

/// Accepts any server certificate (the tests check the client side of the server) and keeps
/// the last one presented (DER).
#[derive(Debug, Default)]
struct AnyServer(std::sync::Mutex<Vec<u8>>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = end_entity.to_vec();
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The end-entity certificate (DER) the HTTPS listener on loopback `port` presents.
pub fn served_certificate(port: u16) -> Vec<u8> {
    let seen = Arc::new(AnyServer::default());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(seen.clone())
        .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(local(port)).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let _ = exchange(&mut tls, local(port), "GET", "/health", &[], b"");
    let der = seen.0.lock().unwrap_or_else(|e| e.into_inner());
    der.clone()
}

/// A device's RSA key signing the TLS 1.2 handshake with one fixed scheme (e.g. PKCS#1
/// SHA-1), whatever its size: what *ring* refuses to do.
#[derive(Debug)]
struct OldRsaSigner {
    key: rsa::RsaPrivateKey,
    scheme: SignatureScheme,
}

impl rustls::sign::SigningKey for OldRsaSigner {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered.contains(&self.scheme).then(|| {
            Box::new(OldRsaSigner {
                key: self.key.clone(),
                scheme: self.scheme,
            }) as Box<dyn rustls::sign::Signer>
        })
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::RSA
    }
}

impl rustls::sign::Signer for OldRsaSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let key = self.key.clone();
        Ok(match self.scheme {
            SignatureScheme::RSA_PKCS1_SHA1 => rsa::pkcs1v15::SigningKey::<sha1::Sha1>::new(key)
                .sign(message)
                .to_vec(),
            _ => rsa::pkcs1v15::SigningKey::<rsa::sha2::Sha256>::new(key)
                .sign(message)
                .to_vec(),
        })
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Always presents one certificate with an [`OldRsaSigner`].
#[derive(Debug)]
struct OldDevice(Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for OldDevice {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// How the test client authenticates.
pub enum ClientAuth<'a> {
    None,
    Device(&'a Device),
    /// TLS 1.2 only, the device's RSA key signing the handshake with `scheme`.
    OldRsaDevice(&'a Device, SignatureScheme),
}

fn client_config(auth: &ClientAuth<'_>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    let builder = match auth {
        ClientAuth::OldRsaDevice(..) => builder.with_protocol_versions(&[&rustls::version::TLS12]),
        _ => builder.with_safe_default_protocol_versions(),
    }
    .expect("protocol versions")
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(AnyServer::default()));
    let config = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Device(d) => builder
            .with_client_auth_cert(d.chain.clone(), d.key.private_der())
            .expect("client cert"),
        ClientAuth::OldRsaDevice(d, scheme) => {
            let signer = OldRsaSigner {
                key: d.key.rsa_key().clone(),
                scheme: *scheme,
            };
            let ck = rustls::sign::CertifiedKey::new(d.chain.clone(), Arc::new(signer));
            builder.with_client_cert_resolver(Arc::new(OldDevice(Arc::new(ck))))
        }
    };
    Arc::new(config)
}

/// One request over TLS on a new connection; `Err` when the handshake (or the connection)
/// fails, which is what a refused client certificate looks like to the client.
pub fn tls_request(
    addr: SocketAddr,
    auth: ClientAuth<'_>,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let config = client_config(&auth);
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut tls, addr, method, target, headers, b"")
}

/// A TLS connection whose handshake is complete, for tests that then speak (or stay silent)
/// on it themselves.
pub fn tls_stream(
    addr: SocketAddr,
    auth: ClientAuth<'_>,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let config = client_config(&auth);
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let mut tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// `GET target` over TLS.
pub fn tls_get(addr: SocketAddr, auth: ClientAuth<'_>, target: &str) -> std::io::Result<Response> {
    tls_request(addr, auth, "GET", target, &[])
}

/// A loopback address with `port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

// --- an installation with a trusted device, as the TLS tests use it ---

/// A poll of the test device below prefix `/update`.
pub const POLL: &str =
    "/update/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=172.16.1.2";
pub const SNIPPET_LINE: &str = "config change NTP0 /server1 pool.ntp.org";
pub const SNIPPETS: &[(&str, &str)] = &[(
    "update-all-default.txt",
    "# every device\nconfig change NTP0 /server1 pool.ntp.org\n",
)];

/// `make_root` plus the device state a forcetrust installation has after the first polls:
/// the device's certificate query answered (certificate by "Test Device CA", valid), so the
/// custom certificate workflow does not stand in front of the snippets.
pub fn make_trust_root(dir: &Path) -> std::path::PathBuf {
    let root = make_root(dir, "", SNIPPETS);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        - 600;
    let state = format!(
        r#"<?xml version="1.0"?>
<state seen="{now}"><device sn="00-90-33-30-00-af" type="IP232" hwid="IP232-30-00-af" realip="172.16.1.2" ip="127.0.0.1" rp="false"/><queries><certificates seen="{now}"><info><servercert><certificate subject_cn="IP232-30-00-af" issuer_cn="Test Device CA" not_before="2019-05-01 00:00:00" not_after="2039-05-01 00:00:00"/></servercert></info></certificates><admin seen="{now}"><info name="Reception Desk" type="IP232"/></admin></queries></state>"#
    );
    std::fs::create_dir_all(root.join("status")).expect("mkdir status");
    std::fs::write(root.join("status/00-90-33-30-00-af.xml"), state).expect("state");
    root
}

/// Whether the answer carries the snippet of [`SNIPPETS`].
pub fn has_snippet(r: &Response) -> bool {
    r.command_lines().iter().any(|l| l == SNIPPET_LINE)
}

/// `PUT target` with `body` over TLS (a device upload).
pub fn tls_put(
    addr: SocketAddr,
    auth: ClientAuth<'_>,
    target: &str,
    body: &[u8],
) -> std::io::Result<Response> {
    let config = client_config(&auth);
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    exchange(&mut tls, addr, "PUT", target, &[], body)
}
