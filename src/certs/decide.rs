//! The certificate step of a poll (PHP's `doCertificates`): what the device's certificate
//! needs, decided from the configuration, the device's state and the already-read files.

use super::*;
use crate::firmware::full_url;

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

/// A command for the device: (comment, command line).
pub type Command = (String, Vec<u8>);

/// What the certificate step found, whatever it decided.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CertReport {
    pub msgs: Vec<String>,
    pub ok: bool,
    pub file_ops: Vec<FileOp>,
    /// The clean-up ran (state `device/@requestDownloaded` becomes `false`).
    pub cleaned_up: bool,
    /// Certificate processing stopped because the device reported a request error.
    pub stopped: bool,
}

impl CertReport {
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

/// What the certificate step decided.
#[derive(Debug, PartialEq, Eq)]
pub enum CertDecision {
    /// Nothing to send: normal delivery continues.
    Continue(CertReport),
    /// Send these commands and stop normal delivery, as in PHP; with `skipnext`, the next
    /// poll only runs the queries.
    SendAndStop {
        report: CertReport,
        cmds: Vec<Command>,
        skipnext: bool,
    },
    /// Look up this address's reverse DNS name and decide again.
    NeedRdns(String),
    /// Stop the script with this message (`# … - exit`).
    Bailout(String),
}

impl CertDecision {
    fn send(report: CertReport, cmds: Vec<Command>) -> CertDecision {
        CertDecision::SendAndStop {
            report,
            cmds,
            skipnext: false,
        }
    }

    fn send_and_skip(report: CertReport, cmds: Vec<Command>) -> CertDecision {
        CertDecision::SendAndStop {
            report,
            cmds,
            skipnext: true,
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
) -> Result<Vec<Command>, String> {
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
    let mut d = CertReport::default();
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
        return cleaned_up(inp, paths.as_ref(), d);
    };
    let Some(certq) = state.path(&["queries", "certificates"]) else {
        d.msgs.push(
            "we dont know anything about the current certificate state - not doing any certificate checking"
                .to_string(),
        );
        return CertDecision::send(d, Vec::new());
    };
    let info = certq.child("info");
    if info.and_then(|i| i.child("request-error")).is_some() {
        d.stopped = true;
        return CertDecision::send(d, vec![(STOPPED.to_string(), b"ser".to_vec())]);
    }
    let Some(ca_name_raw) = cc.ca_name_raw.as_deref() else {
        return CertDecision::Bailout(
            "certificates: must set customcerts/@CAname to enable certificates".to_string(),
        );
    };
    // PHP looks for a method `requestCertificate_<CAtype>`; method names are case-insensitive
    if !cc.ca_type.eq_ignore_ascii_case("manual") {
        return CertDecision::Bailout(format!(
            "certificates: no support for certificates of type '{}'",
            cc.ca_type
        ));
    }
    if info.and_then(|i| i.child("busy")).is_some() {
        d.msgs
            .push("wait for signing request to be generated (ongoing)".to_string());
        return CertDecision::send(d, Vec::new());
    }
    let Some(need_new) = check_validity(inp, cc, ca_name_raw, state, &mut d) else {
        return CertDecision::Continue(d);
    };
    if !need_new {
        d.msgs.push("OK".to_string());
        d.ok = true;
        return cleaned_up(inp, paths.as_ref(), d);
    }
    let Some(paths) = paths else {
        return CertDecision::Bailout(
            "certificates: no certbasefn: probably no &sn query present in update URL".to_string(),
        );
    };
    let cmds = vec![(
        "download request error from device (if any)".to_string(),
        vardump_command(inp.base_url, "X509/REQUESTERROR", &paths.error, None, None).into_bytes(),
    )];
    if info
        .and_then(|i| i.child("requests"))
        .and_then(|r| r.child("request"))
        .is_some()
    {
        // a CSR is on the device: assume it is ours
        return request_on_device(inp, &paths, d, cmds);
    }
    create_request(inp, cc, state, &paths, d, cmds)
}

/// Checks the issuers and validity of the device's certificates (messages into `d`): whether
/// a new certificate is needed, or `None` when nothing is to be done now.
fn check_validity(
    inp: &CertInput<'_>,
    cc: &CustomCerts,
    ca_name_raw: &str,
    state: &Element,
    d: &mut CertReport,
) -> Option<bool> {
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
            return None;
        };
        if inp.now < nb {
            // wait for it to become valid
            d.msgs.push(format!("{}: not yet valid", c.subject));
            return None;
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
    Some(need_new)
}

/// A CSR is on the device: fetch it, or install the signed certificate once it is here, or
/// wait for the CA.
fn request_on_device(
    inp: &CertInput<'_>,
    paths: &CertPaths,
    mut d: CertReport,
    mut cmds: Vec<Command>,
) -> CertDecision {
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
        return CertDecision::send(d, cmds);
    };
    if !inp.files.request_pem {
        d.file_ops.push(FileOp::Write {
            path: paths.pem.clone(),
            bytes: der2pem(der),
        });
    }
    let unusable = match &inp.files.signed {
        Some(Ok(content)) => match install_commands(paths, content, der, &inp.files.ca_keys) {
            Ok(install) => {
                d.msgs.push(format!(
                    "there is an uploaded signed CSR ({})",
                    paths.signed
                ));
                cmds.extend(install);
                return CertDecision::send_and_skip(d, cmds);
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
        CertDecision::send(d, cmds)
    } else {
        CertDecision::Continue(d)
    }
}

/// The device must create a signing request (after a reverse DNS lookup when a `CSR…`
/// attribute uses `{rdns}`).
fn create_request(
    inp: &CertInput<'_>,
    cc: &CustomCerts,
    state: &Element,
    paths: &CertPaths,
    mut d: CertReport,
    mut cmds: Vec<Command>,
) -> CertDecision {
    let wants_rdns = cc.csr.iter().any(|(_, v)| php::contains(v, b"{rdns}"));
    let realip = state
        .child("device")
        .and_then(|dev| dev.attr("realip"))
        .unwrap_or("");
    let rdns = if wants_rdns && !realip.is_empty() {
        match &inp.rdns {
            Some(r) => r.clone(),
            None => return CertDecision::NeedRdns(realip.to_string()),
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
    cleanup(inp, Some(paths), &mut d, &mut cmds);
    CertDecision::send_and_skip(d, cmds)
}

/// Cleans up; the clean-up commands, if any, are sent and stop normal delivery.
fn cleaned_up(inp: &CertInput<'_>, paths: Option<&CertPaths>, mut d: CertReport) -> CertDecision {
    let mut cmds = Vec::new();
    if cleanup(inp, paths, &mut d, &mut cmds) {
        CertDecision::send(d, cmds)
    } else {
        CertDecision::Continue(d)
    }
}

/// PHP's `replaceMagics`: the CSR attribute's magic words replaced by the device's facts; an
/// attribute that uses an unknown fact becomes empty.
pub(super) fn replace_magics(src: &[u8], state: &Element, rdns: Option<&str>) -> Vec<u8> {
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
    d: &mut CertReport,
    cmds: &mut Vec<Command>,
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
