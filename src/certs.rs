//! Custom device certificates: deciding, on every poll, what a device's certificate needs
//! (nothing, a new signing request, downloading its CSR, installing a signed certificate), and
//! the conversions the workflow uses (`vars read` hex ↔ bytes, DER ↔ PEM).
//!
//! The PHP server's workflow, which this reproduces: with `customcerts/@dir` set and the
//! `certificates` query reporting the device's certificates, a certificate whose issuer is not
//! in `CAname`, that expired or is due for renewal makes the device create a CSR
//! (`servercert-create` with the `CSR…` attributes and their magic words); the CSR is fetched
//! with `mode=vardump` into `certs/SN-request.p10.der` (+ `.pem`); once an administrator put
//! the signed certificate into `certs/SN-signedrequest.cer`, it is installed with the CA chain
//! from `CAkeys`, and a poll is skipped so the device can report the result. When the
//! certificate is good, the files and the CSR on the device are cleaned up.
//!
//! Where it deliberately differs from PHP, it sends a device less, never more: a signed
//! "certificate" that is not one (or was made for another key than the device's CSR) and CA
//! files that are no certificates are not sent (PHP sent them, the device failed and stopped
//! its certificate handling for good); the status line (`device/@certstat`) says why. A CSR
//! upload that is not a complete CSR is refused instead of stored. Only the workflow's own two
//! files can be written through `mode=vardump` (contract §6).
//!
//! [`decide`] is pure: the files it looks at come in as [`CertFiles`], the file changes it
//! wants come back as [`FileOp`]s.

use crate::config::{Config, CustomCerts};
use crate::firmware::full_url;
use crate::php;
use crate::xml::Element;
use base64::Engine;
use std::path::Path;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::prelude::FromDer;

/// Why device data or a certificate file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("odd number of hex digits ({0})")]
    OddHex(usize),
    #[error("byte {0} is not a hex digit")]
    NotHex(usize),
    #[error("not an X.509 certificate ({0})")]
    NotCertificate(String),
    #[error("not a complete certificate signing request ({0})")]
    NotRequest(String),
    #[error("its public key is not the one of the device's signing request")]
    OtherKey,
}

/// A change to a file below the root that a pure decision asks the shell to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Write { path: String, bytes: Vec<u8> },
    Delete { path: String },
}

/// A file that was looked at: its content, or why it cannot be read.
pub type FileContent = Result<Vec<u8>, String>;

/// What `certs/` holds for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFiles {
    /// `SN-request.p10.der`, when readable.
    pub request_der: Option<Vec<u8>>,
    pub request_pem: bool,
    /// `SN-signedrequest.cer`, when present.
    pub signed: Option<FileContent>,
    pub request_key: bool,
    /// The `CAkeys` files (root-relative path as PHP's `glob` names it, content), in name
    /// order; read only when a signed certificate is present.
    pub ca_keys: Vec<(String, FileContent)>,
}

/// Root-relative names of a device's certificate files.
pub struct CertPaths {
    pub der: String,
    pub pem: String,
    pub error: String,
    pub signed: String,
    pub key: String,
}

impl CertPaths {
    pub fn new(cc: &CustomCerts, sn: &str) -> CertPaths {
        let base = format!("{}/{}", cc.dir, sn);
        CertPaths {
            der: format!("{base}-request.p10.der"),
            pem: format!("{base}-request.p10.pem"),
            error: format!("{base}-requesterror"),
            signed: format!("{base}-signedrequest.cer"),
            key: format!("{base}-request.der.key"),
        }
    }
}

impl CertFiles {
    /// Reads what the workflow needs from disk (a few `stat`s; contents only when present).
    pub fn load(root: &Path, cc: &CustomCerts, sn: &str) -> CertFiles {
        let p = CertPaths::new(cc, sn);
        let signed = match std::fs::read(root.join(&p.signed)) {
            Ok(b) => Some(Ok(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
        };
        let ca_keys = match (&signed, &cc.ca_keys) {
            (Some(_), Some(pattern)) => read_ca_keys(root, &cc.dir, pattern),
            _ => Vec::new(),
        };
        CertFiles {
            request_der: std::fs::read(root.join(&p.der)).ok(),
            request_pem: root.join(&p.pem).is_file(),
            signed,
            request_key: root.join(&p.key).is_file(),
            ca_keys,
        }
    }
}

/// The files PHP's `glob("DIR/PATTERN")` finds for `customcerts/@CAkeys` (e.g. `CAkey*`, or
/// `chain/*.cer` in a sub-directory), sorted by name, with their contents. Like the C
/// library's `glob`, wildcards do not match a leading dot or cross a `/`.
pub fn read_ca_keys(root: &Path, dir: &str, pattern: &str) -> Vec<(String, FileContent)> {
    let base = root.join(dir);
    let full = format!(
        "{}/{pattern}",
        glob::Pattern::escape(&base.to_string_lossy())
    );
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = match glob::glob_with(&full, opts) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("customcerts/@CAkeys '{pattern}' is not a usable pattern: {e}");
            return Vec::new();
        }
    };
    let mut found: Vec<(String, std::path::PathBuf)> = paths
        .flatten()
        .filter_map(|p| {
            let rest = p.strip_prefix(&base).ok()?;
            let rest: Vec<String> = rest
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            Some((format!("{dir}/{}", rest.join("/")), p))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
        .into_iter()
        .map(|(rel, p)| (rel, std::fs::read(&p).map_err(|e| e.to_string())))
        .collect()
}

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
pub fn var_from_dump(var: &str, dump: &[u8]) -> Option<Vec<u8>> {
    let mut text = php::str_replace(dump, b"\r\n", b"\n");
    text = php::str_replace(&text, b"\n\r", b"\n");
    text = php::str_replace(&text, b"\r", b"\n");
    text.split(|&b| b == b'\n').find_map(|line| {
        let tokens: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        (tokens.len() >= 3 && tokens[0] == var.as_bytes()).then(|| tokens[2].to_vec())
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

/// The `mod cmd UP0 scfg …?mode=vardump…` line that makes the device upload a variable.
pub fn vardump_command(
    base: &str,
    var: &str,
    file: &str,
    proc_: Option<&str>,
    postproc: Option<&str>,
) -> String {
    let mut s = format!(
        "mod cmd UP0 scfg {}?mode=vardump&sn=#m&var={var}&file={}",
        full_url(base, "update.php"),
        php::rawurlencode(file.as_bytes())
    );
    if let Some(p) = proc_ {
        s.push_str(&format!("&proc={p}"));
    }
    if let Some(p) = postproc {
        s.push_str(&format!("&postproc={p}"));
    }
    s.push_str(" ser nop /always ");
    s.push_str(&php::rawurlencode(format!("vars read {var}").as_bytes()));
    s
}

/// One device certificate as the `certificates` query reports it.
struct DevCert<'a> {
    subject: &'a str,
    issuer: &'a str,
    not_before: &'a str,
    not_after: &'a str,
}

/// The device's certificates, issuers before the certificates they signed.
fn device_certificates(state: &Element) -> Vec<DevCert<'_>> {
    let Some(sc) = state.path(&["queries", "certificates", "info", "servercert"]) else {
        return Vec::new();
    };
    let mut certs: Vec<DevCert<'_>> = sc
        .children_named("certificate")
        .map(|c| DevCert {
            subject: c.attr("subject_cn").unwrap_or(""),
            issuer: c.attr("issuer_cn").unwrap_or(""),
            not_before: c.attr("not_before").unwrap_or(""),
            not_after: c.attr("not_after").unwrap_or(""),
        })
        .collect();
    // insertion sort: the PHP comparator is not a total order, so no std sort
    for i in 1..certs.len() {
        let mut j = i;
        while j > 0 && cert_cmp(&certs[j - 1], &certs[j]) == std::cmp::Ordering::Greater {
            certs.swap(j - 1, j);
            j -= 1;
        }
    }
    certs
}

fn cert_cmp(a: &DevCert<'_>, b: &DevCert<'_>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    if a.issuer == b.subject {
        return Greater;
    }
    if b.issuer == a.subject {
        return Less;
    }
    a.subject.cmp(b.subject)
}

/// Everything the certificate step of a poll needs.
pub struct CertInput<'a> {
    pub config: &'a Config,
    pub state: Option<&'a Element>,
    pub device_type: &'a str,
    pub sn: Option<&'a str>,
    pub files: &'a CertFiles,
    pub base_url: &'a str,
    pub now: i64,
    /// The reverse DNS name of the device's address, once looked up: `Some(None)` when the
    /// address is unusable.
    pub rdns: Option<Option<String>>,
}

/// What the certificate step decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertDecision {
    pub msgs: Vec<String>,
    /// Commands to send (comment, command); `Some` stops normal delivery, as in PHP.
    pub cmds: Option<Vec<(String, Vec<u8>)>>,
    pub ok: bool,
    pub file_ops: Vec<FileOp>,
    pub skipnext: bool,
    /// The clean-up ran (state `device/@requestDownloaded` becomes `false`).
    pub cleaned_up: bool,
    /// Certificate processing stopped because the device reported a request error.
    pub stopped: bool,
    /// Stop the script with this message (`# … - exit`).
    pub bailout: Option<String>,
    /// Look up this address's reverse DNS name and decide again.
    pub need_rdns: Option<String>,
}

impl CertDecision {
    /// The certificate status line for the state (`device/@certstat`, the admin page's
    /// "Certificates" column): PHP's last message. When processing stopped on a request error
    /// PHP records nothing and leaves an outdated line; this server records why it stopped.
    pub fn certstat(&self) -> Option<&str> {
        match self.msgs.last() {
            Some(m) => Some(m),
            None if self.stopped => Some(STOPPED),
            None => None,
        }
    }
}

const STOPPED: &str = "certificate processing STOPPED due to previous upload error, clean X509/REQUESTERROR to continue";

/// The `vars create X509/REQUESTRESPONSE/0000n pb …` commands that install a signed
/// certificate (index 0) and the CA chain (1 …), or why nothing can be sent.
fn install_commands(
    paths: &CertPaths,
    signed: &[u8],
    request: &[u8],
    ca_keys: &[(String, FileContent)],
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let nothing_sent = "nothing sent to the device";
    let cert = cert_from_file(signed);
    check_signed(&cert, request).map_err(|e| {
        format!(
            "uploaded signed certificate {} not usable: {e} - {nothing_sent}, upload the signed certificate for this device's request again",
            paths.signed
        )
    })?;
    let mut cmds = vec![(
        "upload new signed certificate".to_string(),
        format!(
            "vars create X509/REQUESTRESPONSE/00000 pb {}",
            bin2var(&cert)
        )
        .into_bytes(),
    )];
    for (index, (name, content)) in ca_keys.iter().enumerate() {
        let index = index + 1;
        let der = match content {
            Ok(c) => cert_from_file(c),
            Err(e) => {
                return Err(format!(
                    "cannot read CA certificate {name}: {e} - {nothing_sent}"
                ));
            }
        };
        check_certificate(&der).map_err(|e| {
            format!("CA certificate {name} (customcerts/@CAkeys) not usable: {e} - {nothing_sent}")
        })?;
        cmds.push((
            format!("upload CA certificate #{index} ({name})"),
            format!(
                "vars create X509/REQUESTRESPONSE/{index:05} pb {}",
                bin2var(&der)
            )
            .into_bytes(),
        ));
    }
    Ok(cmds)
}

/// The `servercert-create` option names and the `customcerts/@CSR…` attribute of each.
const CSR_OPTS: [(&str, &str); 13] = [
    ("key", "key"),
    ("signature", "signature"),
    ("dn-cn", "dn-cn"),
    ("dn-ou", "dn-ou"),
    ("dn-o", "dn-o"),
    ("dn-l", "dn-l"),
    ("dn-st", "dn-st"),
    ("dn-c", "dn-c"),
    ("san-dns-1", "san-dns"),
    ("san-dns-2", "san-dns"),
    ("san-dns-3", "san-dns"),
    ("san-ip-1", "san-ip"),
    ("san-ip-2", "san-ip"),
];

/// PHP's `doCertificates`.
pub fn decide(inp: &CertInput<'_>) -> CertDecision {
    let mut d = CertDecision::default();
    let mut cmds: Vec<(String, Vec<u8>)> = Vec::new();
    let cc = inp.config.customcerts.as_ref();
    let paths = match (cc, inp.sn) {
        (Some(cc), Some(sn)) if !sn.is_empty() => Some(CertPaths::new(cc, sn)),
        _ => None,
    };
    let (Some(cc), Some(state)) = (cc, inp.state) else {
        d.msgs.push(
            "either certificate handling or state tracking not enabled - not doing any certificate checking"
                .to_string(),
        );
        d.ok = true;
        if cleanup(inp, paths.as_ref(), &mut d, &mut cmds) {
            d.cmds = Some(cmds);
        }
        return d;
    };
    let Some(certq) = state.path(&["queries", "certificates"]) else {
        d.msgs.push(
            "we dont know anything about the current certificate state - not doing any certificate checking"
                .to_string(),
        );
        d.cmds = Some(cmds);
        return d;
    };
    let info = certq.child("info");
    if info.and_then(|i| i.child("request-error")).is_some() {
        cmds.push((STOPPED.to_string(), b"ser".to_vec()));
        d.stopped = true;
        d.cmds = Some(cmds);
        return d;
    }
    let Some(ca_name_raw) = cc.ca_name_raw.as_deref() else {
        d.bailout =
            Some("certificates: must set customcerts/@CAname to enable certificates".to_string());
        return d;
    };
    // PHP looks for a method `requestCertificate_<CAtype>`; method names are case-insensitive
    if !cc.ca_type.eq_ignore_ascii_case("manual") {
        d.bailout = Some(format!(
            "certificates: no support for certificates of type '{}'",
            cc.ca_type
        ));
        return d;
    }
    if info.and_then(|i| i.child("busy")).is_some() {
        d.msgs
            .push("wait for signing request to be generated (ongoing)".to_string());
        d.cmds = Some(cmds);
        return d;
    }
    let certs = device_certificates(state);
    let mut need_new = false;
    for c in &certs {
        if !cc.ca_names.iter().any(|n| n == c.issuer) {
            d.msgs.push(format!(
                "CN {}: invalid issuer: {}: not in {} ({})",
                c.subject, c.issuer, ca_name_raw, cc.ca_name_sep
            ));
            need_new = true;
        }
    }
    let renew_time = inp.now.saturating_add(cc.renew_days.saturating_mul(86400));
    for c in &certs {
        let (Some(nb), Some(na)) = (
            php::parse_datetime(c.not_before),
            php::parse_datetime(c.not_after),
        ) else {
            // PHP reads a missing date as "now" and then waits as for a certificate that is
            // not yet valid (other text makes it fail): nothing is done
            d.msgs.push(format!(
                "{}: unreadable validity '{}' - '{}', not checking",
                c.subject, c.not_before, c.not_after
            ));
            return d;
        };
        if inp.now < nb {
            // wait for it to become valid
            d.msgs.push(format!("{}: not yet valid", c.subject));
            return d;
        }
        if inp.now > na {
            d.msgs.push(format!("{}: expired", c.subject));
            need_new = true;
        }
        if renew_time > na {
            d.msgs
                .push(format!("{}: valid but must be renewed", c.subject));
            d.ok = true;
            need_new = true;
        }
    }

    if !need_new {
        d.msgs.push("OK".to_string());
        d.ok = true;
        if cleanup(inp, paths.as_ref(), &mut d, &mut cmds) {
            d.cmds = Some(cmds);
        }
        return d;
    }

    let Some(paths) = paths else {
        d.bailout = Some(
            "certificates: no certbasefn: probably no &sn query present in update URL".to_string(),
        );
        return d;
    };
    cmds.push((
        "download request error from device (if any)".to_string(),
        vardump_command(inp.base_url, "X509/REQUESTERROR", &paths.error, None, None).into_bytes(),
    ));
    if info
        .and_then(|i| i.child("requests"))
        .and_then(|r| r.child("request"))
        .is_some()
    {
        // a CSR is on the device: assume it is ours
        let Some(der) = inp.files.request_der.as_ref() else {
            cmds.push((
                "need to download CSR from device".to_string(),
                vardump_command(
                    inp.base_url,
                    "X509/REQUEST",
                    &paths.der,
                    Some("var2bin"),
                    Some("createPemFromDer"),
                )
                .into_bytes(),
            ));
            d.cmds = Some(cmds);
            return d;
        };
        if !inp.files.request_pem {
            d.file_ops.push(FileOp::Write {
                path: paths.pem.clone(),
                bytes: der2pem(der),
            });
        }
        let unusable = match &inp.files.signed {
            Some(Ok(content)) => match install_commands(&paths, content, der, &inp.files.ca_keys) {
                Ok(install) => {
                    d.msgs.push(format!(
                        "there is an uploaded signed CSR ({})",
                        paths.signed
                    ));
                    cmds.extend(install);
                    d.skipnext = true;
                    d.cmds = Some(cmds);
                    return d;
                }
                Err(note) => Some(note),
            },
            Some(Err(e)) => Some(format!(
                "cannot read {}: {e} - nothing sent to the device",
                paths.signed
            )),
            None => None,
        };
        d.msgs
            .push("signing request must be processed by CA (ongoing)".to_string());
        // the last message becomes the status line: the problem, when there is one
        d.msgs.extend(unusable);
        if inp.config.times.forcetrust {
            d.cmds = Some(cmds);
        }
        return d;
    }

    // the device must create a signing request
    let wants_rdns = cc.csr.iter().any(|(_, v)| php::contains(v, b"{rdns}"));
    let realip = state
        .child("device")
        .and_then(|dev| dev.attr("realip"))
        .unwrap_or("");
    let rdns = if wants_rdns && !realip.is_empty() {
        match &inp.rdns {
            Some(r) => r.clone(),
            None => {
                d.need_rdns = Some(realip.to_string());
                return d;
            }
        }
    } else {
        None
    };
    // myPBX for iOS/Android needs the space written differently
    let mut csr: Vec<u8> = match inp.device_type.to_ascii_lowercase().as_str() {
        "mypbxi" | "mypbxa" => b"mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing+request ".to_vec(),
        _ => b"mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing%20request ".to_vec(),
    };
    for (key, opt) in CSR_OPTS {
        let value = replace_magics(cc.csr_attr(key), state, rdns.as_deref());
        csr.extend_from_slice(format!(" /{opt} ").as_bytes());
        csr.extend_from_slice(php::rawurlencode(&value).as_bytes());
    }
    cmds.push(("wrong certificate - need to create CSR".to_string(), csr));
    cleanup(inp, Some(&paths), &mut d, &mut cmds);
    d.skipnext = true;
    d.cmds = Some(cmds);
    d
}

/// PHP's `replaceMagics`: the CSR attribute's magic words replaced by the device's facts; an
/// attribute that uses an unknown fact becomes empty.
fn replace_magics(src: &[u8], state: &Element, rdns: Option<&str>) -> Vec<u8> {
    let dev = state.child("device");
    let dattr = |n: &str| dev.and_then(|d| d.attr(n)).map(php::to_latin1);
    let proxy = if dev.and_then(|d| d.attr("rp")) == Some("true") {
        dattr("proxy")
    } else {
        Some(
            dev.and_then(|d| d.attr("proxy"))
                .unwrap_or("")
                .as_bytes()
                .to_vec(),
        )
    };
    let sn = dattr("sn")
        .map(|s| s.into_iter().filter(|&b| b != b'-').collect::<Vec<u8>>())
        .unwrap_or_default();
    let name = state
        .path(&["queries", "admin", "info"])
        .and_then(|i| i.attr("name"))
        .filter(|n| !n.is_empty())
        .map(|n| str2dnsname(&String::from_utf8_lossy(&php::to_latin1(n))).into_bytes());
    let words: [(&[u8], Option<Vec<u8>>); 7] = [
        (b"{realip}", dattr("realip")),
        (b"{ip}", dattr("ip")),
        (b"{proxy}", proxy),
        (b"{sn}", Some(sn)),
        (b"{hwid}", dattr("hwid")),
        (b"{name}", name),
        (b"{rdns}", rdns.map(|r| r.as_bytes().to_vec())),
    ];
    let mut out = src.to_vec();
    for (word, value) in words {
        if !php::contains(&out, word) {
            continue;
        }
        match value {
            Some(v) => out = php::str_replace(&out, word, &v),
            None => return Vec::new(),
        }
    }
    out
}

/// PHP's `cleanupCertificateStatus`: removes the device's CSR files here and its CSR there.
fn cleanup(
    inp: &CertInput<'_>,
    paths: Option<&CertPaths>,
    d: &mut CertDecision,
    cmds: &mut Vec<(String, Vec<u8>)>,
) -> bool {
    if let Some(p) = paths {
        let present = [
            (inp.files.request_der.is_some(), "CSR/DER", &p.der),
            (inp.files.request_pem, "CSR/PEM", &p.pem),
            (inp.files.signed.is_some(), "signed CSR", &p.signed),
            (inp.files.request_key, "CSR Key", &p.key),
        ];
        for (_, what, path) in present.into_iter().filter(|(here, _, _)| *here) {
            d.msgs.push(format!("removing {what} {path}"));
            d.file_ops.push(FileOp::Delete { path: path.clone() });
        }
    }
    d.cleaned_up = true;
    let has_request = inp
        .state
        .and_then(|s| s.path(&["queries", "certificates", "info", "requests", "request"]))
        .is_some();
    if has_request {
        cmds.push((
            "removing CSR from device".to_string(),
            b"vars del X509/REQUEST ".to_vec(),
        ));
        cmds.push((
            "removing CSR key from device".to_string(),
            b"vars del X509/REQUESTKEY ".to_vec(),
        ));
    }
    has_request
}

/// PHP's `isNameInSubfolder` check on `file` arguments, with its regular expression's exact
/// meaning (its `\\.\\.` is "backslash, any character, backslash, any character"; `$` also
/// matches before a final newline). Kept for PHP's answers; the real protection is that only
/// the device's own files can be written.
pub fn php_name_in_subfolder(name: &[u8]) -> bool {
    let any = |c: u8| c != b'\n';
    let before_final_nl = name.strip_suffix(b"\n");
    let at_end = |suffix: &[u8]| {
        name.ends_with(suffix) || before_final_nl.is_some_and(|n| n.ends_with(suffix))
    };
    let whole = |x: &[u8]| name == x || before_final_nl == Some(x);
    let bad = at_end(b"/..")
        || whole(b"..")
        || name
            .windows(4)
            .any(|w| w[0] == b'\\' && any(w[1]) && w[2] == b'\\' && any(w[3]))
        || name.starts_with(b"../")
        || name.windows(4).any(|w| w == b"/../")
        || name
            .windows(4)
            .any(|w| w[0] == b'\\' && any(w[1]) && w[2] == b'.' && w[3] == b'/')
        || name.starts_with(b"/")
        || name.starts_with(b"\\/");
    !bad
}

/// PHP's `pathinfo($name, PATHINFO_EXTENSION)`, lower-cased: what follows the last `.` of the
/// last path component (trailing `/` ignored).
fn php_extension(name: &[u8]) -> Vec<u8> {
    let mut n = name;
    while let Some(rest) = n.strip_suffix(b"/") {
        n = rest;
    }
    let base = n.rsplit(|&b| b == b'/').next().unwrap_or(n);
    match base.iter().rposition(|&b| b == b'.') {
        Some(i) => base[i + 1..].to_ascii_lowercase(),
        None => Vec::new(),
    }
}

/// Why `mode=vardump` stored nothing: one of PHP's own checks (PHP's answer, status 200), or
/// this server's rule (status 400).
pub enum VardumpError {
    Php(crate::answer::Exit),
    Refused(crate::answer::Exit),
}

/// `update.php?mode=vardump`: the device uploads a `vars read` dump; the certificate workflow
/// stores its CSR (`X509/REQUEST`, hex → DER, plus a PEM copy) and its request error
/// (`X509/REQUESTERROR`, as sent). PHP's argument checks and messages come first; then, unlike
/// PHP, nothing but these two files of the device itself can be written (contract §6), and a
/// CSR that is not one (odd or non-hex digits, truncated) is refused instead of stored, so the
/// next poll fetches it again. Returns the file changes to make.
pub fn vardump(
    config: &Config,
    args: &crate::php::Args,
    body: &[u8],
    ans: &mut crate::answer::Answer,
) -> Result<Vec<FileOp>, VardumpError> {
    use VardumpError::{Php, Refused};
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    let Some(sn) = arg("sn") else {
        return Err(Php(
            ans.bailout("need 'sn' arg for mode=vardump, use ?sn=#m")
        ));
    };
    let Some(var) = arg("var") else {
        return Err(Php(
            ans.bailout("need 'var' arg for mode=vardump, use ?var=varname")
        ));
    };
    let Some(file_raw) = args.get_bytes("file") else {
        return Err(Php(
            ans.bailout("need 'file' arg for mode=vardump, use ?file=filename")
        ));
    };
    if !php_name_in_subfolder(file_raw) {
        return Err(Php(
            ans.bailout("?file: filename must not point to external directory")
        ));
    }
    if matches!(php_extension(file_raw).as_slice(), b"php" | b"sh" | b"pl") {
        return Err(Php(ans.bailout("bad file name")));
    }
    let file = String::from_utf8_lossy(file_raw).into_owned();
    ans.dump(&format!("vardump (before proc) {var}"), body);
    let Some(value) = var_from_dump(&var, body) else {
        return Err(Php(ans.bailout(&format!(
            "failed to extract '{var}' from PUT data for mode=vardump"
        ))));
    };
    let proc_ = arg("proc");
    let postproc = arg("postproc");
    let allowed = config
        .customcerts
        .as_ref()
        .filter(|_| !sn.is_empty())
        .and_then(|cc| {
            let p = CertPaths::new(cc, &sn);
            let csr = var == "X509/REQUEST"
                && file == p.der
                && proc_.as_deref() == Some("var2bin")
                && matches!(postproc.as_deref(), None | Some("createPemFromDer"));
            let error = var == "X509/REQUESTERROR"
                && file == p.error
                && proc_.is_none()
                && postproc.is_none();
            (csr || error).then_some(p)
        });
    let Some(paths) = allowed else {
        return Err(Refused(ans.bailout(
            "refused: mode=vardump only stores a device's CSR (X509/REQUEST with proc=var2bin into customcerts/@dir/SN-request.p10.der) and its request error (X509/REQUESTERROR into customcerts/@dir/SN-requesterror)",
        )));
    };
    let bytes = if proc_.is_some() {
        match var2bin(&value).and_then(|der| check_request(&der).map(|()| der)) {
            Ok(der) => der,
            Err(e) => {
                return Err(Refused(ans.bailout(&format!(
                    "refused: '{var}' from the device is unusable: {e} - nothing stored"
                ))));
            }
        }
    } else {
        value
    };
    let member = proc_.as_deref().unwrap_or("none");
    ans.comment(&format!(
        "processed (with '{member}') length: {}",
        bytes.len()
    ));
    let mut ops = vec![FileOp::Write {
        path: file.clone(),
        bytes: bytes.clone(),
    }];
    if postproc.as_deref() == Some("createPemFromDer") {
        ops.push(FileOp::Write {
            path: paths.pem.clone(),
            bytes: der2pem(&bytes),
        });
        ans.comment("sucessfully post-processed (with 'createPemFromDer')");
    }
    let now = ans.now.to_string();
    ans.log_device(&format!("var-{}", str2dnsname(&var)), &now);
    ans.notify(&format!(
        "uploaded {file} with proc={member}/postproc={} ",
        postproc.as_deref().unwrap_or("none")
    ));
    ans.finish();
    Ok(ops)
}

#[cfg(test)]
mod tests;
