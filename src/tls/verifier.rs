//! Verifying device certificates on `--mtls` listeners, and saying why one was refused.
//!
//! The chain is verified by webpki against the client CA bundle: signatures, validity dates,
//! basicConstraints of intermediates, extended key usage, unknown critical extensions, path
//! length. What webpki refuses that lighttpd/OpenSSL on the LAP accepted (rustls-webpki 0.103
//! with the *ring* provider; rows marked ✓ are exercised by `tests/tls.rs` with real
//! handshakes, the others come from reading webpki's source):
//!
//! | certificate | webpki | here |
//! | --- | --- | --- |
//! | ✓ signed with `sha1WithRSAEncryption` | refused (unsupported algorithm) | accepted with `legacy-client-certs` |
//! | ✓ CA or device RSA key of 1024–2047 bits | refused (bad signature) | accepted with `legacy-client-certs` |
//! | ✓ device signs the TLS 1.2 handshake with RSA PKCS#1 SHA-1 | not offered | offered with `legacy-client-certs` |
//! | `sha1WithRSAEncryption` identifier without the NULL parameter | refused | accepted with `legacy-client-certs` |
//! | ✓ CA in the bundle without basicConstraints | accepted (anchors are not checked) | accepted |
//! | X.509 v1 CA in the bundle | accepted (read as an anchor) | accepted |
//! | ✓ intermediate sent by the device without basicConstraints `cA` | refused | refused: add that CA to the bundle |
//! | X.509 v1 device certificate | refused | refused |
//! | MD5, DSA, ECDSA with SHA-1 | refused | refused (broken, or *ring* cannot verify them) |
//!
//! `legacy-client-certs` (on by default) therefore only widens the set of signature
//! algorithms: the chain is still verified cryptographically up to a CA of the bundle by the
//! same webpki code, with the same date, constraint and usage checks. A certificate is first
//! verified with the modern algorithms alone; only when that fails for an algorithm reason is
//! it verified again with the legacy ones, and an acceptance that needed them is logged.
//!
//! Every refusal is logged with the certificate's names and a reason an administrator can act
//! on (issuer unknown, expired, algorithm, …); the listener's span adds the peer address.

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, InvalidSignature, SignatureVerificationAlgorithm,
    UnixTime, alg_id,
};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, Error, OtherError, RootCertStore,
    SignatureScheme,
};
use std::fmt;

use super::diagnose::weak_points;
pub use super::diagnose::{CertSummary, describe_chain, reason};
use std::sync::{Arc, LazyLock};

/// Most intermediate certificates a client may send with its own. Devices send none or one;
/// webpki would stop at six anyway, this refuses absurd chains before any work is done.
pub const MAX_INTERMEDIATES: usize = 8;

/// An RSA PKCS#1 v1.5 signature algorithm that *ring* only offers "for legacy use": SHA-1, or
/// SHA-256/512 with keys from 1024 bits on.
struct LegacyRsa {
    name: &'static str,
    /// Content of the `AlgorithmIdentifier` (OID, with or without the NULL parameter).
    signature_alg_id: &'static [u8],
    ring: &'static dyn ring::signature::VerificationAlgorithm,
}

impl fmt::Debug for LegacyRsa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LegacyRsa({})", self.name)
    }
}

impl SignatureVerificationAlgorithm for LegacyRsa {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(self.ring, public_key)
            .verify(message, signature)
            .map_err(|_| InvalidSignature)
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        AlgorithmIdentifier::from_slice(self.signature_alg_id)
    }
}

/// `1.2.840.113549.1.1.N` (PKCS#1 signature OIDs) as DER, with NULL parameters appended by the
/// callers that want them.
macro_rules! pkcs1_oid {
    ($n:expr) => {
        [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, $n,
        ]
    };
    ($n:expr, null) => {
        [
            0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, $n, 0x05, 0x00,
        ]
    };
}

static SHA1_NULL: [u8; 13] = pkcs1_oid!(0x05, null);
static SHA1_ABSENT: [u8; 11] = pkcs1_oid!(0x05);
static SHA256_NULL: [u8; 13] = pkcs1_oid!(0x0b, null);
static SHA256_ABSENT: [u8; 11] = pkcs1_oid!(0x0b);
static SHA512_NULL: [u8; 13] = pkcs1_oid!(0x0d, null);
static SHA512_ABSENT: [u8; 11] = pkcs1_oid!(0x0d);

static RSA_SHA1: LegacyRsa = LegacyRsa {
    name: "sha1WithRSAEncryption",
    signature_alg_id: &SHA1_NULL,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
};
static RSA_SHA1_ABSENT_PARAMS: LegacyRsa = LegacyRsa {
    name: "sha1WithRSAEncryption (no NULL)",
    signature_alg_id: &SHA1_ABSENT,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
};
static RSA_1024_SHA256: LegacyRsa = LegacyRsa {
    name: "sha256WithRSAEncryption (1024+ bits)",
    signature_alg_id: &SHA256_NULL,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
};
static RSA_1024_SHA256_ABSENT_PARAMS: LegacyRsa = LegacyRsa {
    name: "sha256WithRSAEncryption (1024+ bits, no NULL)",
    signature_alg_id: &SHA256_ABSENT,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
};
static RSA_1024_SHA512: LegacyRsa = LegacyRsa {
    name: "sha512WithRSAEncryption (1024+ bits)",
    signature_alg_id: &SHA512_NULL,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
};
static RSA_1024_SHA512_ABSENT_PARAMS: LegacyRsa = LegacyRsa {
    name: "sha512WithRSAEncryption (1024+ bits, no NULL)",
    signature_alg_id: &SHA512_ABSENT,
    ring: &ring::signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
};

static LEGACY_SHA1: &[&dyn SignatureVerificationAlgorithm] = &[&RSA_SHA1];
static LEGACY_SHA256: &[&dyn SignatureVerificationAlgorithm] = &[&RSA_1024_SHA256];
static LEGACY_SHA512: &[&dyn SignatureVerificationAlgorithm] = &[&RSA_1024_SHA512];

fn modern() -> WebPkiSupportedAlgorithms {
    rustls::crypto::ring::default_provider().signature_verification_algorithms
}

/// Certificate signature algorithms with legacy use: the legacy RSA variants first (webpki
/// takes the first algorithm with a matching identifier, and the 1024-bit variants accept
/// every key the 2048-bit ones accept), then everything modern.
static LEGACY_ALL: LazyLock<Vec<&'static dyn SignatureVerificationAlgorithm>> =
    LazyLock::new(|| {
        let mut all: Vec<&'static dyn SignatureVerificationAlgorithm> = vec![
            &RSA_SHA1,
            &RSA_SHA1_ABSENT_PARAMS,
            &RSA_1024_SHA256,
            &RSA_1024_SHA256_ABSENT_PARAMS,
            &RSA_1024_SHA512,
            &RSA_1024_SHA512_ABSENT_PARAMS,
        ];
        all.extend_from_slice(modern().all);
        all
    });

type SchemeMapping = (
    SignatureScheme,
    &'static [&'static dyn SignatureVerificationAlgorithm],
);

/// TLS 1.2 handshake signatures with legacy use: RSA PKCS#1 with 1024-bit keys, and SHA-1
/// (offered last, so a client that can do better does).
static LEGACY_MAPPING: LazyLock<Vec<SchemeMapping>> = LazyLock::new(|| {
    let mut mapping: Vec<SchemeMapping> = modern()
        .mapping
        .iter()
        .map(|&(scheme, algs)| match scheme {
            SignatureScheme::RSA_PKCS1_SHA256 => (scheme, LEGACY_SHA256),
            SignatureScheme::RSA_PKCS1_SHA512 => (scheme, LEGACY_SHA512),
            _ => (scheme, algs),
        })
        .collect();
    mapping.push((SignatureScheme::RSA_PKCS1_SHA1, LEGACY_SHA1));
    mapping
});

fn legacy_algorithms() -> WebPkiSupportedAlgorithms {
    WebPkiSupportedAlgorithms {
        all: LEGACY_ALL.as_slice(),
        mapping: LEGACY_MAPPING.as_slice(),
    }
}

/// Why a client certificate chain was refused before webpki looked at it.
#[derive(Debug, thiserror::Error)]
pub enum ChainRefused {
    #[error(
        "the client sent {0} intermediate certificates (at most {MAX_INTERMEDIATES} are accepted)"
    )]
    TooLong(usize),
}

/// A CA of the client bundle, as far as messages need it.
#[derive(Debug, Clone)]
struct CaInfo {
    subject_raw: Vec<u8>,
    summary: CertSummary,
}

/// The client certificate verifier of `--mtls` listeners.
#[derive(Debug)]
pub struct DeviceCertVerifier {
    strict: Arc<dyn ClientCertVerifier>,
    legacy: Option<Arc<dyn ClientCertVerifier>>,
    cas: Vec<CaInfo>,
}

impl DeviceCertVerifier {
    /// A verifier trusting `roots`; `legacy` also accepts the legacy algorithms (module doc).
    /// `cas` are the DER certificates the roots were made from (for messages).
    pub fn new(
        roots: RootCertStore,
        cas: &[CertificateDer<'_>],
        legacy: bool,
    ) -> Result<DeviceCertVerifier, Error> {
        let roots = Arc::new(roots);
        let ring = rustls::crypto::ring::default_provider();
        let strict = WebPkiClientVerifier::builder_with_provider(roots.clone(), Arc::new(ring))
            .allow_unauthenticated()
            .build()
            .map_err(|e| Error::General(e.to_string()))?;
        let legacy = if legacy {
            let provider = CryptoProvider {
                signature_verification_algorithms: legacy_algorithms(),
                ..rustls::crypto::ring::default_provider()
            };
            Some(
                WebPkiClientVerifier::builder_with_provider(roots, Arc::new(provider))
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| Error::General(e.to_string()))?,
            )
        } else {
            None
        };
        let cas = cas
            .iter()
            .filter_map(|c| {
                let (_, cert) = x509_parser::parse_x509_certificate(c.as_ref()).ok()?;
                Some(CaInfo {
                    subject_raw: cert.subject().as_raw().to_vec(),
                    summary: CertSummary::of(&cert),
                })
            })
            .collect();
        Ok(DeviceCertVerifier {
            strict,
            legacy,
            cas,
        })
    }

    /// The summary of the bundle CA that issued `der`, if it is one of them.
    fn anchor_of(&self, der: &[u8]) -> Option<&CertSummary> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let issuer = cert.issuer().as_raw();
        self.cas
            .iter()
            .find(|ca| ca.subject_raw == issuer)
            .map(|ca| &ca.summary)
    }

    fn refuse(&self, end_entity: &CertificateDer<'_>, error: Error) -> Error {
        let who = describe_chain(end_entity);
        let why = reason(&error, self.legacy.is_some());
        tracing::warn!("refused client certificate {who}: {why}");
        error
    }
}

impl ClientCertVerifier for DeviceCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.strict.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        if intermediates.len() > MAX_INTERMEDIATES {
            let e = Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(
                ChainRefused::TooLong(intermediates.len()),
            ))));
            return Err(self.refuse(end_entity, e));
        }
        let strict = match self
            .strict
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let Some(legacy) = self
            .legacy
            .as_ref()
            .filter(|_| is_algorithm_refusal(&strict))
        else {
            return Err(self.refuse(end_entity, strict));
        };
        match legacy.verify_client_cert(end_entity, intermediates, now) {
            Ok(v) => {
                let mut weak = weak_points(end_entity, intermediates);
                let anchor = intermediates.last().unwrap_or(end_entity);
                if let Some(ca) = self.anchor_of(anchor.as_ref()) {
                    weak.extend(ca.weak_points(&ca.cn));
                }
                tracing::info!(
                    "accepted client certificate {} only because legacy-client-certs is on: {}",
                    describe_chain(end_entity),
                    if weak.is_empty() {
                        "legacy algorithm".to_string()
                    } else {
                        weak.join(", ")
                    }
                );
                Ok(v)
            }
            Err(e) => Err(self.refuse(end_entity, e)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        let strict = self.strict.verify_tls12_signature(message, cert, dss);
        let result = match (&self.legacy, strict) {
            (Some(legacy), Err(_)) => {
                let result = legacy.verify_tls12_signature(message, cert, dss);
                if result.is_ok() {
                    tracing::info!(
                        "client certificate {} signed the TLS 1.2 handshake with {:?} and a key accepted only because legacy-client-certs is on",
                        describe_chain(cert),
                        dss.scheme
                    );
                }
                result
            }
            (_, strict) => strict,
        };
        result.map_err(|e| {
            tracing::warn!(
                "refused client certificate {}: its TLS 1.2 handshake signature ({:?}) does not verify: {e}",
                describe_chain(cert),
                dss.scheme
            );
            e
        })
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.strict
            .verify_tls13_signature(message, cert, dss)
            .map_err(|e| {
                tracing::warn!(
                    "refused client certificate {}: its TLS 1.3 handshake signature ({:?}) does not verify: {e}",
                    describe_chain(cert),
                    dss.scheme
                );
                e
            })
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        match &self.legacy {
            Some(legacy) => legacy.supported_verify_schemes(),
            None => self.strict.supported_verify_schemes(),
        }
    }
}

/// Whether webpki refused for a reason the legacy algorithms may cure: an unsupported
/// signature algorithm, or a signature that does not verify (which is what an RSA key below
/// 2048 bits produces).
fn is_algorithm_refusal(e: &Error) -> bool {
    #[allow(deprecated)]
    let algorithm = matches!(
        e,
        Error::InvalidCertificate(
            CertificateError::BadSignature
                | CertificateError::UnsupportedSignatureAlgorithm
                | CertificateError::UnsupportedSignatureAlgorithmContext { .. }
                | CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. }
        )
    );
    algorithm
}

#[cfg(test)]
mod tests {
    use super::super::diagnose::*;
    use super::*;

    #[test]
    fn significant_bits_of_moduli() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01, 0xff]), 9);
        assert_eq!(significant_bits(&[0, 0]), 0);
        assert_eq!(significant_bits(&[]), 0);
        let mut m = vec![0u8];
        m.extend([0xc5; 128]);
        assert_eq!(significant_bits(&m), 1024);
    }

    #[test]
    fn legacy_algorithm_identifiers_are_the_pkcs1_ones() {
        // sha1WithRSAEncryption = 1.2.840.113549.1.1.5, NULL parameters
        assert_eq!(
            SHA1_NULL,
            [
                0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05, 0x05, 0x00
            ]
        );
        // the modern SHA-256 identifier is byte-identical to ours
        assert_eq!(alg_id::RSA_PKCS1_SHA256.as_ref(), &SHA256_NULL[..]);
        assert_eq!(alg_id::RSA_PKCS1_SHA512.as_ref(), &SHA512_NULL[..]);
    }

    #[test]
    fn legacy_lists_put_the_legacy_algorithms_first_and_keep_the_modern_ones() {
        let all = legacy_algorithms().all;
        assert_eq!(
            all[0].signature_alg_id(),
            AlgorithmIdentifier::from_slice(&SHA1_NULL)
        );
        for m in modern().all {
            assert!(
                all.iter().any(|a| format!("{a:?}") == format!("{m:?}")),
                "{m:?} missing"
            );
        }
        let schemes = legacy_algorithms().supported_schemes();
        assert_eq!(schemes.last(), Some(&SignatureScheme::RSA_PKCS1_SHA1));
        assert!(
            !modern()
                .supported_schemes()
                .contains(&SignatureScheme::RSA_PKCS1_SHA1)
        );
    }

    #[test]
    fn reasons_name_the_cause() {
        let e = |c| Error::InvalidCertificate(c);
        assert!(reason(&e(CertificateError::UnknownIssuer), true).contains("issuer unknown"));
        let expired = e(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(std::time::Duration::from_secs(2_000_000_000)),
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_000_000_000)),
        });
        assert_eq!(reason(&expired, true), "expired on 2001-09-09 01:46:40 UTC");
        let alg = e(CertificateError::UnsupportedSignatureAlgorithmContext {
            signature_algorithm_id: SHA1_NULL.to_vec(),
            supported_algorithms: vec![],
        });
        assert!(reason(&alg, false).contains("legacy-client-certs is off"));
        assert!(reason(&alg, true).starts_with("sha1WithRSAEncryption not accepted"));
        assert!(!reason(&alg, true).contains("legacy-client-certs is off"));
        let long = e(CertificateError::Other(OtherError(Arc::new(
            ChainRefused::TooLong(300),
        ))));
        assert!(reason(&long, true).contains("300 intermediate certificates"));
    }

    #[test]
    fn oids_of_algorithm_identifiers() {
        assert_eq!(
            oid_of_algorithm_id(&SHA256_NULL).as_deref(),
            Some("1.2.840.113549.1.1.11")
        );
        // ecdsa-with-SHA1
        assert_eq!(
            oid_of_algorithm_id(&[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]).as_deref(),
            Some("1.2.840.10045.4.1")
        );
        assert_eq!(oid_of_algorithm_id(&[0x05, 0x00]), None);
        assert_eq!(oid_of_algorithm_id(&[0x06, 0x09, 0x2a]), None);
        assert_eq!(oid_of_algorithm_id(&[]), None);
    }

    #[test]
    fn names_in_the_log_cannot_forge_lines() {
        assert_eq!(log_safe("IP232-30-00-af"), "IP232-30-00-af");
        assert_eq!(log_safe("a\n2026 WARN x\r"), "a?2026 WARN x?");
        let long = "x".repeat(500);
        assert_eq!(log_safe(&long).chars().count(), 129);
    }

    #[test]
    fn signature_names() {
        assert_eq!(
            signature_name("1.2.840.113549.1.1.5"),
            "sha1WithRSAEncryption"
        );
        assert_eq!(signature_name("1.2.3"), "signature algorithm 1.2.3");
    }
}
