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
//! [`decide`] is pure: the files it looks at come in as [`CertFiles`], the file changes it
//! wants come back as [`FileOp`]s.

use crate::config::{Config, CustomCerts};
use crate::firmware::full_url;
use crate::php;
use crate::xml::Element;
use base64::Engine;
use std::path::Path;

/// A change to a file below the root that a pure decision asks the shell to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Write { path: String, bytes: Vec<u8> },
    Delete { path: String },
}

/// What `certs/` holds for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFiles {
    /// `SN-request.p10.der`, when readable.
    pub request_der: Option<Vec<u8>>,
    pub request_pem: bool,
    /// `SN-signedrequest.cer`: its content, or why it cannot be read.
    pub signed: Option<Result<Vec<u8>, String>>,
    pub request_key: bool,
    /// The `CAkeys` files (root-relative path, content), in name order; read only when a
    /// signed certificate is present.
    pub ca_keys: Vec<(String, Vec<u8>)>,
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

/// The `CAkeys` files of `dir` (a glob pattern such as `CAkey*`), sorted by name.
pub fn read_ca_keys(root: &Path, dir: &str, pattern: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(pat) = glob::Pattern::new(pattern) else {
        tracing::warn!("customcerts/@CAkeys '{pattern}' is not a valid pattern");
        return Vec::new();
    };
    let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && pat.matches(n))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|n| {
            let rel = format!("{dir}/{n}");
            std::fs::read(root.join(&rel)).ok().map(|b| (rel, b))
        })
        .collect()
}

/// Hex text of a `vars read` value → bytes (PHP's `var2bin`). Refuses odd lengths and
/// non-hex characters instead of writing garbage.
pub fn var2bin(hex: &str) -> Result<Vec<u8>, String> {
    let b = hex.trim().as_bytes();
    if b.len() % 2 != 0 {
        return Err("odd number of hex digits".to_string());
    }
    b.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("'{s}' is not hex"))
        })
        .collect()
}

/// Bytes → lower-case hex (PHP's `bin2var`).
pub fn bin2var(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// A DER certificate request as PEM, exactly as the PHP server writes it (CRLF, 64 columns).
pub fn der2pem(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE REQUEST-----\r\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push_str("\r\n");
    }
    out.push_str("-----END CERTIFICATE REQUEST-----\r\n");
    out.into_bytes()
}

/// The DER bytes of a certificate file that is either DER or PEM (PHP's `getCertFromFile`).
pub fn cert_from_file(content: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(content);
    let upper = text.to_ascii_uppercase();
    if !upper.contains("-----BEGIN CERTIFICATE-----") {
        return content.to_vec();
    }
    let mut b64 = String::new();
    let mut copy = false;
    for line in text.split(['\n', '\r']) {
        let u = line.to_ascii_uppercase();
        if u.contains("-----BEGIN CERTIFICATE-----") {
            copy = true;
        } else if u.contains("-----END CERTIFICATE-----") {
            break;
        } else if copy {
            b64.extend(
                line.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '+' || *c == '/'),
            );
        }
    }
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(b64.trim_end_matches('='))
        .unwrap_or_default()
}

/// Checks that `der` is an X.509 certificate; the error says what is wrong.
pub fn check_certificate(der: &[u8]) -> Result<(), String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((&[], _)) => Ok(()),
        Ok(_) => Err("trailing data after the certificate".to_string()),
        Err(e) => Err(format!("not an X.509 certificate ({e})")),
    }
}

/// The value of `var` in `vars read` output (PHP's `getVarDump`): the third space-separated
/// token of the line whose first token is `var`.
pub fn var_from_dump(var: &str, dump: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(dump)
        .replace("\r\n", "\n")
        .replace("\n\r", "\n")
        .replace('\r', "\n");
    for line in text.split('\n') {
        let tokens: Vec<&str> = line.split(' ').collect();
        if tokens.len() < 3 {
            continue;
        }
        if tokens[0] == var {
            return Some(tokens[2].to_string());
        }
    }
    None
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
    /// Stop the script with this message (`# … - exit`).
    pub bailout: Option<String>,
    /// Look up this address's reverse DNS name and decide again.
    pub need_rdns: Option<String>,
}

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
        cmds.push((
            "certificate processing STOPPED due to previous upload error, clean X509/REQUESTERROR to continue"
                .to_string(),
            b"ser".to_vec(),
        ));
        d.cmds = Some(cmds);
        return d;
    }
    let Some(ca_name_raw) = cc.ca_name_raw.as_deref() else {
        d.bailout =
            Some("certificates: must set customcerts/@CAname to enable certificates".to_string());
        return d;
    };
    if cc.ca_type != "manual" {
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
    let renew_time = inp.now + cc.renew_days * 86400;
    for c in &certs {
        let (Some(nb), Some(na)) = (
            php::parse_datetime(c.not_before),
            php::parse_datetime(c.not_after),
        ) else {
            d.msgs.push(format!(
                "{}: unreadable validity '{}' - '{}'",
                c.subject, c.not_before, c.not_after
            ));
            need_new = true;
            continue;
        };
        if inp.now < nb {
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
        match &inp.files.signed {
            Some(Ok(content)) => {
                let cert = cert_from_file(content);
                match check_certificate(&cert) {
                    Ok(()) => {
                        d.msgs.push(format!("there is an uploaded signed CSR ({})", paths.signed));
                        let mut index = 0;
                        cmds.push((
                            "upload new signed certificate".to_string(),
                            format!("vars create X509/REQUESTRESPONSE/{index:05} pb {}", bin2var(&cert)).into_bytes(),
                        ));
                        index += 1;
                        for (name, content) in &inp.files.ca_keys {
                            cmds.push((
                                format!("upload CA certificate #{index} ({name})"),
                                format!(
                                    "vars create X509/REQUESTRESPONSE/{index:05} pb {}",
                                    bin2var(&cert_from_file(content))
                                )
                                .into_bytes(),
                            ));
                            index += 1;
                        }
                        d.skipnext = true;
                        d.cmds = Some(cmds);
                        return d;
                    }
                    Err(e) => d.msgs.push(format!(
                        "uploaded file {} is not a usable signed certificate: {e} - upload the certificate again",
                        paths.signed
                    )),
                }
            }
            Some(Err(e)) => d.msgs.push(format!("cannot read {}: {e}", paths.signed)),
            None => {}
        }
        d.msgs
            .push("signing request must be processed by CA (ongoing)".to_string());
        if inp.config.times.forcetrust {
            d.cmds = Some(cmds);
        }
        return d;
    }

    // the device must create a signing request
    let wants_rdns = cc.csr.iter().any(|(_, v)| contains(v, b"{rdns}"));
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
    let mut csr: Vec<u8> = match inp.device_type.to_lowercase().as_str() {
        "mypbxi" | "mypbxa" => b"mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing+request ".to_vec(),
        _ => b"mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing%20request ".to_vec(),
    };
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

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn replace_all(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
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
        if !contains(&out, word) {
            continue;
        }
        match value {
            Some(v) => out = replace_all(&out, word, &v),
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
        if inp.files.request_der.is_some() {
            d.msgs.push(format!("removing CSR/DER {}", p.der));
            d.file_ops.push(FileOp::Delete {
                path: p.der.clone(),
            });
        }
        if inp.files.request_pem {
            d.msgs.push(format!("removing CSR/PEM {}", p.pem));
            d.file_ops.push(FileOp::Delete {
                path: p.pem.clone(),
            });
        }
        if inp.files.signed.is_some() {
            d.msgs.push(format!("removing signed CSR {}", p.signed));
            d.file_ops.push(FileOp::Delete {
                path: p.signed.clone(),
            });
        }
        if inp.files.request_key {
            d.msgs.push(format!("removing CSR Key {}", p.key));
            d.file_ops.push(FileOp::Delete {
                path: p.key.clone(),
            });
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

/// PHP's `isNameInSubfolder`: the checks the PHP server made on `file` arguments. Kept for
/// its messages; the real protection is that only the device's own files are written.
pub fn php_name_in_subfolder(name: &str) -> bool {
    !(name.ends_with("/..")
        || name == ".."
        || name.contains("\\.\\.")
        || name.starts_with("../")
        || name.contains("/../")
        || name.contains("\\../")
        || name.starts_with('/')
        || name.starts_with("\\/"))
}

/// Why `mode=vardump` stored nothing: one of PHP's own checks, or this server's rule.
pub enum VardumpError {
    Php(crate::answer::Exit),
    Refused(crate::answer::Exit),
}

/// `update.php?mode=vardump`: the device uploads a `vars read` dump; the certificate workflow
/// stores its CSR (`X509/REQUEST`, hex → DER, plus a PEM copy) and its request error
/// (`X509/REQUESTERROR`). Unlike PHP, nothing else can be written: other files, procedures or
/// variables are refused (contract §6). Returns the file changes to make.
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
    let Some(file) = arg("file") else {
        return Err(Php(
            ans.bailout("need 'file' arg for mode=vardump, use ?file=filename")
        ));
    };
    if !php_name_in_subfolder(&file) {
        return Err(Php(
            ans.bailout("?file: filename must not point to external directory")
        ));
    }
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if file.contains('.') && matches!(ext.as_str(), "php" | "sh" | "pl") {
        return Err(Php(ans.bailout("bad file name")));
    }
    ans.dump(&format!("vardump (before proc) {var}"), body);
    let Some(value) = var_from_dump(&var, body) else {
        return Err(Php(ans.bailout(&format!(
            "failed to extract '{var}' from PUT data for mode=vardump"
        ))));
    };
    let proc_ = arg("proc");
    let postproc = arg("postproc");
    let allowed = config.customcerts.as_ref().and_then(|cc| {
        let p = CertPaths::new(cc, &sn);
        let csr = var == "X509/REQUEST"
            && file == p.der
            && proc_.as_deref() == Some("var2bin")
            && matches!(postproc.as_deref(), None | Some("createPemFromDer"));
        let error =
            var == "X509/REQUESTERROR" && file == p.error && proc_.is_none() && postproc.is_none();
        (csr || error).then_some(p)
    });
    let Some(paths) = allowed else {
        return Err(Refused(ans.bailout(
            "refused: mode=vardump only stores a device's CSR (X509/REQUEST with proc=var2bin into customcerts/@dir/SN-request.p10.der) and its request error (X509/REQUESTERROR into customcerts/@dir/SN-requesterror)",
        )));
    };
    let bytes = match proc_.as_deref() {
        Some("var2bin") => match var2bin(&value) {
            Ok(b) => b,
            Err(e) => return Err(Refused(ans.bailout(&format!("cannot decode '{var}': {e}")))),
        },
        _ => value.into_bytes(),
    };
    let member = proc_.as_deref().unwrap_or("none");
    ans.comment(&format!(
        "processed (with '{member}') length: {}",
        bytes.len()
    ));
    let mut ops = Vec::new();
    if postproc.as_deref() == Some("createPemFromDer") {
        ops.push(FileOp::Write {
            path: paths.pem.clone(),
            bytes: der2pem(&bytes),
        });
        ans.comment("sucessfully post-processed (with 'createPemFromDer')");
    }
    ops.insert(
        0,
        FileOp::Write {
            path: file.clone(),
            bytes,
        },
    );
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
mod tests {
    use super::*;

    #[test]
    fn hex_conversions() {
        assert_eq!(var2bin("00ff10"), Ok(vec![0, 255, 16]));
        assert!(var2bin("abc").is_err());
        assert!(var2bin("zz").is_err());
        assert_eq!(bin2var(&[0, 255, 16]), "00ff10");
    }

    #[test]
    fn pem_layout_matches_php() {
        let der: Vec<u8> = (0u8..96).collect();
        let pem = String::from_utf8(der2pem(&der)).expect("utf8");
        let lines: Vec<&str> = pem.split("\r\n").collect();
        assert_eq!(lines[0], "-----BEGIN CERTIFICATE REQUEST-----");
        assert_eq!(lines[1].len(), 64);
        assert_eq!(lines[3], "-----END CERTIFICATE REQUEST-----");
        assert!(pem.ends_with("-----\r\n"));
    }

    #[test]
    fn certificates_from_pem_or_der() {
        let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
        assert_eq!(cert_from_file(&der), der);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!(
            "junk\r\n-----BEGIN CERTIFICATE-----\r\n{b64}\r\n-----END CERTIFICATE-----\r\n"
        );
        assert_eq!(cert_from_file(pem.as_bytes()), der);
        assert!(check_certificate(&der).is_err());
    }

    #[test]
    fn var_dump_lines() {
        assert_eq!(
            var_from_dump(
                "X509/REQUEST",
                b"X509/OTHER pb 00\r\nX509/REQUEST pb 3081\r\n"
            ),
            Some("3081".to_string())
        );
        assert_eq!(var_from_dump("X509/REQUEST", b"X509/REQUEST pb"), None);
        assert_eq!(var_from_dump("X", b""), None);
    }

    #[test]
    fn dns_names() {
        assert_eq!(str2dnsname("Reception Desk"), "reception-desk");
        assert_eq!(str2dnsname("a__b..C"), "a-b-c");
        assert_eq!(str2dnsname("X509/REQUEST"), "x509-request");
    }

    #[test]
    fn magics_empty_an_option_with_unknown_facts() {
        let mut st = crate::state::new_state("00-90-33-30-00-af");
        let dev = st.child_or_insert("device");
        dev.set_attr("hwid", "IP232-30-00-af");
        dev.set_attr("realip", "10.0.0.1");
        assert_eq!(
            replace_magics(b"{hwid}.x", &st, None),
            b"IP232-30-00-af.x".to_vec()
        );
        assert_eq!(replace_magics(b"{sn}", &st, None), b"0090333000af".to_vec());
        assert_eq!(replace_magics(b"{name}.x", &st, None), Vec::<u8>::new());
        assert_eq!(
            replace_magics(b"{rdns}", &st, Some("h.example")),
            b"h.example".to_vec()
        );
        assert_eq!(
            replace_magics(b"{proxy}", &st, None),
            Vec::<u8>::new().to_vec()
        );
    }
}
