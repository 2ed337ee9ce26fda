//! The test PKI of README §4, made once per test run with rcgen:
//! "Test Device CA" (the only CA the MTLS listener trusts), "Untrusted Test
//! CA", the client certificates of the table and a server certificate for
//! 127.0.0.1 / localhost. PEM files are written into a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tempfile::TempDir;

/// Client certificates by the `cert` name used in `requests.json`:
/// (name, subject CN, issued by the trusted device CA?).
pub const CLIENTS: &[(&str, &str, bool)] = &[
    ("IP232-30-00-af", "IP232-30-00-af", true),
    ("IP232-30-00-b0", "IP232-30-00-b0", true),
    ("0090333000af", "0090333000af", true),
    ("IP232s-30-00-af", "IP232s-30-00-af", true),
    ("wildcard", "*.devices.example", true),
    ("untrusted-IP232-30-00-af", "IP232-30-00-af", false),
];

/// A client certificate (with its issuing CA) and its key.
pub struct ClientIdentity {
    pub chain: Vec<CertificateDer<'static>>,
    pkcs8: Vec<u8>,
}

impl ClientIdentity {
    pub fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

pub struct Pki {
    dir: TempDir,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// PEM with just the Test Device CA (for `--client-ca`).
    pub client_ca: PathBuf,
    pub clients: BTreeMap<String, ClientIdentity>,
}

impl Pki {
    /// Keeps the PEM files after the run (for debugging); returns their directory.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "DE");
    dn.push(DnType::OrganizationName, "innovaphone AG");
    dn.push(DnType::CommonName, cn);
    dn
}

fn validity(params: &mut CertificateParams) {
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2049, 12, 31);
}

struct Ca {
    cert: CertificateDer<'static>,
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn make_ca(cn: &str) -> Result<Ca, String> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(cn);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity(&mut params);
    let key = KeyPair::generate().map_err(|e| format!("CA key for {cn}: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("CA certificate {cn}: {e}"))?;
    Ok(Ca {
        cert: cert.der().clone(),
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

/// Builds the PKI and writes its PEM files.
pub fn build() -> Result<Pki, String> {
    let dir = tempfile::Builder::new()
        .prefix("conformance-pki-")
        .tempdir()
        .map_err(|e| format!("temp dir for the PKI: {e}"))?;
    let device_ca = make_ca("Test Device CA")?;
    let untrusted_ca = make_ca("Untrusted Test CA")?;
    write(&dir.path().join("device-ca.pem"), &device_ca.pem)?;
    write(&dir.path().join("untrusted-ca.pem"), &untrusted_ca.pem)?;

    let mut clients = BTreeMap::new();
    for &(label, cn, trusted) in CLIENTS {
        let ca = if trusted { &device_ca } else { &untrusted_ca };
        let mut params = CertificateParams::default();
        params.distinguished_name = name(cn);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let key = KeyPair::generate().map_err(|e| format!("key for {label}: {e}"))?;
        let cert = params
            .signed_by(&key, &ca.issuer)
            .map_err(|e| format!("certificate {label}: {e}"))?;
        write(&dir.path().join(format!("{label}.crt")), &cert.pem())?;
        write(
            &dir.path().join(format!("{label}.key")),
            &key.serialize_pem(),
        )?;
        clients.insert(
            label.to_string(),
            ClientIdentity {
                chain: vec![cert.der().clone(), ca.cert.clone()],
                pkcs8: key.serialize_der(),
            },
        );
    }

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| format!("server certificate names: {e}"))?;
    params.distinguished_name = name("127.0.0.1");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    validity(&mut params);
    let key = KeyPair::generate().map_err(|e| format!("server key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("server certificate: {e}"))?;
    let server_cert = dir.path().join("server.crt");
    let server_key = dir.path().join("server.key");
    write(&server_cert, &cert.pem())?;
    write(&server_key, &key.serialize_pem())?;

    Ok(Pki {
        server_cert,
        server_key,
        client_ca: dir.path().join("device-ca.pem"),
        clients,
        dir,
    })
}
