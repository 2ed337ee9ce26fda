//! Describing device certificates for the log: names, key and signature algorithm of a
//! chain, what makes it "legacy", and why a verification failed, in words an administrator
//! can act on.

use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error};

/// What an administrator needs to know about one certificate.
#[derive(Debug, Clone, Default)]
pub struct CertSummary {
    pub cn: String,
    pub issuer_cn: String,
    pub signature: String,
    /// `RSA-1024`, `EC-256`, …
    pub key: String,
    pub rsa_bits: Option<usize>,
    pub not_before: String,
    pub not_after: String,
}

impl CertSummary {
    pub(super) fn of(cert: &x509_parser::certificate::X509Certificate<'_>) -> CertSummary {
        use x509_parser::public_key::PublicKey;
        let (key, rsa_bits) = match cert.public_key().parsed() {
            Ok(PublicKey::RSA(rsa)) => {
                let bits = significant_bits(rsa.modulus);
                (format!("RSA-{bits}"), Some(bits))
            }
            Ok(PublicKey::EC(ec)) => (format!("EC-{}", ec.key_size()), None),
            Ok(PublicKey::DSA(_)) => ("DSA".to_string(), None),
            Ok(_) | Err(_) => ("unknown key type".to_string(), None),
        };
        let date = |t: &x509_parser::time::ASN1Time| format_unix(t.timestamp());
        CertSummary {
            cn: log_safe(&super::common_name(cert.subject())),
            issuer_cn: log_safe(&super::common_name(cert.issuer())),
            signature: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
            key,
            rsa_bits,
            not_before: date(&cert.validity().not_before),
            not_after: date(&cert.validity().not_after),
        }
    }

    /// The legacy properties of this certificate, for the log.
    pub(super) fn weak_points(&self, who: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.signature.starts_with("sha1") {
            out.push(format!("'{who}' is signed with {}", self.signature));
        }
        if let Some(bits) = self.rsa_bits.filter(|b| *b < 2048) {
            out.push(format!("'{who}' has a {bits}-bit RSA key"));
        }
        out
    }
}

/// A name from a certificate as it may appear in the log: control characters replaced (no
/// forged log lines), at most 128 characters.
pub(super) fn log_safe(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(128)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.chars().count() > 128 {
        out.push('…');
    }
    out
}

/// Bits of a big-endian unsigned integer without its leading zeros.
pub(super) fn significant_bits(bytes: &[u8]) -> usize {
    let trimmed: &[u8] = match bytes.iter().position(|b| *b != 0) {
        Some(i) => &bytes[i..],
        None => &[],
    };
    match trimmed.first() {
        Some(first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a unix time.
pub(super) fn format_unix(secs: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// The usual name of a signature algorithm OID.
pub(super) fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.2.840.113549.1.1.10" => "RSASSA-PSS",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "1.3.101.112" => "Ed25519",
        other => return format!("signature algorithm {other}"),
    }
    .to_string()
}

/// The dotted OID at the start of an `AlgorithmIdentifier`'s content (`06 len oid…`).
pub(super) fn oid_of_algorithm_id(id: &[u8]) -> Option<String> {
    let (&tag, rest) = id.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if tag != 0x06 || len >= 0x80 {
        return None;
    }
    let body = rest.get(..usize::from(len))?;
    let (&first, tail) = body.split_first()?;
    let mut arcs = vec![u64::from(first / 40).min(2), 0];
    arcs[1] = u64::from(first) - arcs[0] * 40;
    let mut value: u64 = 0;
    for &b in tail {
        value = value.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            arcs.push(value);
            value = 0;
        }
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// `'CN' issued by 'ISSUER' (ALG, KEY, valid FROM .. TO)` of a DER certificate.
pub fn describe_chain(end_entity: &CertificateDer<'_>) -> String {
    match x509_parser::parse_x509_certificate(end_entity.as_ref()) {
        Ok((_, cert)) => {
            let s = CertSummary::of(&cert);
            format!(
                "CN='{}' issued by '{}' ({}, {}, valid {} to {})",
                s.cn, s.issuer_cn, s.signature, s.key, s.not_before, s.not_after
            )
        }
        Err(e) => format!("(unparsable certificate: {e})"),
    }
}

/// The legacy properties of a presented chain, for the log.
pub(super) fn weak_points(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
) -> Vec<String> {
    std::iter::once(end_entity)
        .chain(intermediates)
        .filter_map(|c| x509_parser::parse_x509_certificate(c.as_ref()).ok())
        .flat_map(|(_, cert)| {
            let s = CertSummary::of(&cert);
            s.weak_points(&s.cn)
        })
        .collect()
}

/// A sentence an administrator can act on, for a refused client certificate.
pub fn reason(e: &Error, legacy_on: bool) -> String {
    let legacy_hint = if legacy_on {
        ""
    } else {
        " (legacy-client-certs is off: SHA-1 and RSA keys below 2048 bits are refused)"
    };
    #[allow(deprecated)]
    match e {
        Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "issuer unknown: not signed by any CA of the client CA bundle (--client-ca)".into()
            }
            CertificateError::ExpiredContext { not_after, .. } => {
                format!("expired on {}", format_unix(not_after.as_secs() as i64))
            }
            CertificateError::Expired => "expired (or its validity period is inverted)".into(),
            CertificateError::NotValidYetContext { not_before, .. } => format!(
                "not valid before {} (is the device's clock right?)",
                format_unix(not_before.as_secs() as i64)
            ),
            CertificateError::NotValidYet => "not valid yet".into(),
            CertificateError::UnsupportedSignatureAlgorithmContext {
                signature_algorithm_id,
                ..
            } => {
                let name = oid_of_algorithm_id(signature_algorithm_id)
                    .map(|oid| signature_name(&oid))
                    .unwrap_or_else(|| "signature algorithm".into());
                format!("{name} not accepted{legacy_hint}")
            }
            CertificateError::UnsupportedSignatureAlgorithm => {
                format!("signature algorithm not accepted{legacy_hint}")
            }
            CertificateError::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
                "signature algorithm does not fit the issuer's key type".into()
            }
            CertificateError::BadSignature => format!(
                "signature does not verify with the issuer's key (forged, damaged, or a key size not accepted){legacy_hint}"
            ),
            CertificateError::BadEncoding => "malformed certificate (not valid DER)".into(),
            CertificateError::UnhandledCriticalExtension => {
                "carries a critical extension this server does not know".into()
            }
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "not meant for client authentication (extended key usage lacks clientAuth)".into()
            }
            CertificateError::Revoked => "revoked".into(),
            CertificateError::Other(other) => {
                let text = other.to_string();
                match text.as_str() {
                    "UnsupportedCertVersion" => {
                        "not an X.509 v3 certificate (v1/v2 device certificates are not accepted)"
                            .into()
                    }
                    "EndEntityUsedAsCa" => "an intermediate certificate sent by the device is not marked as a CA (basicConstraints); add that CA to the client CA bundle to trust it directly".into(),
                    "CaUsedAsEndEntity" => "the device certificate is marked as a CA certificate".into(),
                    "PathLenConstraintViolated" => "a CA's path length constraint is violated".into(),
                    "MaximumPathDepthExceeded"
                    | "MaximumSignatureChecksExceeded"
                    | "MaximumPathBuildCallsExceeded"
                    | "MaximumNameConstraintComparisonsExceeded" => {
                        format!("chain too long or too complex ({text})")
                    }
                    "UnsupportedCriticalExtension" => {
                        "carries a critical extension this server does not know".into()
                    }
                    _ => text,
                }
            }
            other => format!("{other:?}"),
        },
        other => other.to_string(),
    }
}
