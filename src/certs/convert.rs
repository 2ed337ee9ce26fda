//! Conversions of the certificate workflow: `vars read` hex ↔ bytes, DER ↔ PEM, certificate
//! files in either form, the structure checks of certificates and signing requests, and the
//! value of a variable in a `vars read` dump.

use super::CertError;
use base64::Engine;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// Hex text of a `vars read` value → bytes (PHP's `var2bin`). Refuses odd lengths and
/// anything but hex digits instead of writing garbage as PHP did.
pub fn var2bin(hex: &[u8]) -> Result<Vec<u8>, CertError> {
    let digit = |i: usize, c: u8| -> Result<u8, CertError> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(CertError::NotHex(i)),
        }
    };
    if hex.len() % 2 != 0 {
        return Err(CertError::OddHex(hex.len()));
    }
    hex.chunks(2)
        .enumerate()
        .map(|(n, p)| Ok(digit(2 * n, p[0])? << 4 | digit(2 * n + 1, p[1])?))
        .collect()
}

/// Bytes → lower-case hex (PHP's `bin2var`).
pub fn bin2var(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

/// A DER certificate request as PEM, exactly as the PHP server writes it: base64 in lines of
/// 64 characters, CRLF line ends (PHP's `chunk_split`, which also ends an empty body with one
/// CRLF).
pub fn der2pem(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = b"-----BEGIN CERTIFICATE REQUEST-----\r\n".to_vec();
    if b64.is_empty() {
        out.extend_from_slice(b"\r\n");
    }
    for chunk in b64.as_bytes().chunks(64) {
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"-----END CERTIFICATE REQUEST-----\r\n");
    out
}

/// The DER bytes of a certificate file that is either DER or PEM (PHP's `getCertFromFile`):
/// with a `-----BEGIN CERTIFICATE-----` line, the base64 up to the next END line (characters
/// outside the base64 alphabet skipped), otherwise the file as it is.
pub fn cert_from_file(content: &[u8]) -> Vec<u8> {
    const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
    const END: &[u8] = b"-----END CERTIFICATE-----";
    let has = |hay: &[u8], needle: &[u8]| {
        hay.windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
    };
    if !has(content, BEGIN) {
        return content.to_vec();
    }
    let mut b64 = Vec::new();
    let mut copy = false;
    for line in content.split(|&b| b == b'\n' || b == b'\r') {
        if has(line, BEGIN) {
            copy = true;
        } else if has(line, END) {
            break;
        } else if copy {
            b64.extend(
                line.iter()
                    .filter(|c| c.is_ascii_alphanumeric() || **c == b'+' || **c == b'/'),
            );
        }
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(&b64).unwrap_or_default()
}

/// Whether `der` has the DER structure of an X.509 certificate: a sequence of the to-be-signed
/// part (at least six fields: serial, algorithm, issuer, validity, subject, key), algorithm
/// and signature bits.
fn certificate_structure(der: &[u8]) -> Result<(), CertError> {
    use x509_parser::der_parser::ber::BerObjectContent as C;
    let (_, obj) = x509_parser::der_parser::parse_der(der)
        .map_err(|e| CertError::NotCertificate(e.to_string()))?;
    match &obj.content {
        C::Sequence(parts)
            if parts.len() == 3
                && matches!(&parts[0].content, C::Sequence(tbs) if tbs.len() >= 6)
                && matches!(parts[1].content, C::Sequence(_))
                && matches!(parts[2].content, C::BitString(..)) =>
        {
            Ok(())
        }
        _ => Err(CertError::NotCertificate(
            "not a to-be-signed certificate, algorithm and signature".to_string(),
        )),
    }
}

/// Checks that `der` starts with an X.509 certificate (trailing bytes are sent as PHP sends
/// them). A certificate the parser cannot read in every detail still passes when its
/// structure is right: the device is the judge of the details.
pub fn check_certificate(der: &[u8]) -> Result<(), CertError> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(_) => Ok(()),
        Err(_) => certificate_structure(der),
    }
}

/// Checks that `der` is a complete PKCS#10 certificate signing request: a DER sequence of
/// request info (version, subject, public key, attributes), algorithm and signature bits,
/// nothing cut off. Only the structure is checked, not the contents of the attributes, so
/// that no request a device makes is refused for a detail.
pub fn check_request(der: &[u8]) -> Result<(), CertError> {
    use x509_parser::der_parser::ber::BerObjectContent as C;
    let (_, obj) = x509_parser::der_parser::parse_der(der)
        .map_err(|e| CertError::NotRequest(e.to_string()))?;
    let info_ok = |info: &C<'_>| match info {
        C::Sequence(f) => {
            (f.len() == 3 || (f.len() == 4 && f[3].header.is_contextspecific()))
                && matches!(f[0].content, C::Integer(_))
                && matches!(f[1].content, C::Sequence(_))
                && matches!(f[2].content, C::Sequence(_))
        }
        _ => false,
    };
    match &obj.content {
        C::Sequence(parts)
            if parts.len() == 3
                && info_ok(&parts[0].content)
                && matches!(parts[1].content, C::Sequence(_))
                && matches!(parts[2].content, C::BitString(..)) =>
        {
            Ok(())
        }
        _ => Err(CertError::NotRequest(
            "not a request info, algorithm and signature".to_string(),
        )),
    }
}

/// What an administrator checks before signing a CSR: its subject and the SHA-256 of its
/// public key (the `SubjectPublicKeyInfo`), so a request planted by someone else stands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsrSummary {
    /// The subject as a distinguished name (`CN=…, O=…`).
    pub subject: String,
    /// SHA-256 of the public key, hex bytes separated by `:`.
    pub key_sha256: String,
}

/// The [`CsrSummary`] of a DER certificate signing request; `None` when it cannot be read.
pub fn csr_summary(der: &[u8]) -> Option<CsrSummary> {
    use sha2::Digest;
    let (_, r) = X509CertificationRequest::from_der(der).ok()?;
    let info = &r.certification_request_info;
    let digest = sha2::Sha256::digest(info.subject_pki.raw);
    let key_sha256 = digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some(CsrSummary {
        subject: info.subject.to_string(),
        key_sha256,
    })
}

/// Checks a signed certificate before it is sent to a device: it must be an X.509
/// certificate and, when both can be read in detail, carry the public key of the device's CSR
/// (the device refuses anything else and stops its certificate handling, see the PHP manual's
/// "Certificate Errors").
pub fn check_signed(cert: &[u8], request: &[u8]) -> Result<(), CertError> {
    let Ok((_, c)) = x509_parser::parse_x509_certificate(cert) else {
        return certificate_structure(cert);
    };
    if let Ok((_, r)) = X509CertificationRequest::from_der(request)
        && r.certification_request_info.subject_pki.raw != c.public_key().raw
    {
        return Err(CertError::OtherKey);
    }
    Ok(())
}

/// The value of `var` in `vars read` output (PHP's `getVarDump`): line ends normalised, the
/// third space-separated token of the first line of at least three tokens whose first token
/// is `var`. Works on bytes: the value is stored as it came.
///
/// One pass over the dump, no copy of it: PHP's normalisation (`\r\n`, `\n\r`, then `\r` to
/// `\n`) turns every run of CR and LF into one or more line ends and changes nothing else,
/// and an empty line never matches; so splitting at every CR or LF finds the same line.
pub fn var_from_dump(var: &str, dump: &[u8]) -> Option<Vec<u8>> {
    dump.split(|&b| b == b'\n' || b == b'\r').find_map(|line| {
        let mut tokens = line.split(|&b| b == b' ');
        let first = tokens.next()?;
        let _second = tokens.next()?;
        let third = tokens.next()?;
        (first == var.as_bytes()).then(|| third.to_vec())
    })
}

/// PHP's `str2dnsname`: runs of characters other than `- a-z 0-9` become `-`, lower case.
pub fn str2dnsname(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}
