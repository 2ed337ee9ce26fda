//! Unit tests of the certificate workflow. Expectations come from the PHP source (worked out
//! by hand), from the PHP server's recordings in `tests/conformance/`, or from certificates
//! made here with rcgen.

use super::decide::replace_magics;
use super::vardump::php_extension;
use super::*;
use base64::Engine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

const BASE: &str = "http://h:1/update";
const SN: &str = "00-90-33-30-00-af";
const CASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/");

fn config(customcerts: &str, times: &str) -> Config {
    let user = format!(
        r#"<config><master info=""/><status dir="status"/>{times}{customcerts}
        <queries><query id="certificates"><applies>*</applies></query></queries></config>"#
    );
    Config::from_user_xml(&user).expect("configuration")
}

/// The configuration of the conformance case `customcerts-wrong-issuer-creates-csr`.
fn case_config() -> Config {
    config(
        r#"<customcerts dir="certs" CAname="Test Custom CA" CSRdn-o="Example Org" CSRdn-ou="{name}"
            CSRsan-dns-1="{hwid}.devices.example" CSRsan-ip-1="{realip}" CSRdn-c="DE"/>"#,
        "",
    )
}

/// A device state with the given `<info>` content of the certificates query (`None`: no
/// certificates query at all) and the admin query's device name.
fn state(info: Option<&str>, name: Option<&str>) -> Element {
    let mut q = String::new();
    if let Some(i) = info {
        q.push_str(&format!(
            r#"<certificates seen="1"><info>{i}</info></certificates>"#
        ));
    }
    if let Some(n) = name {
        q.push_str(&format!(r#"<admin seen="1"><info name="{n}"/></admin>"#));
    }
    Element::parse_str(&format!(
        r#"<state><device sn="{SN}" type="IP232" hwid="IP232-30-00-af" realip="172.16.1.2" ip="127.0.0.1" rp="false"/><queries>{q}</queries></state>"#
    ))
    .expect("state")
}

/// One certificate as the device's `mod cmd X509 xml-info` reports it.
fn reported(subject: &str, issuer: &str, not_before: i64, not_after: i64) -> String {
    format!(
        r#"<certificate subject_cn="{subject}" issuer_cn="{issuer}" not_before="{}" not_after="{}"/>"#,
        php::format_datetime(not_before),
        php::format_datetime(not_after)
    )
}

const WRONG: &str = r#"<servercert><certificate subject_cn="IP232-30-00-af" issuer_cn="innovaphone Device Certification Authority 2" not_before="2019-05-01 00:00:00" not_after="2039-05-01 00:00:00"/></servercert>"#;
const REQUEST: &str = r#"<requests><request subject_cn="0090333000af" key="2048-bit" signature="SHA256"/></requests>"#;

fn decide_with(
    cfg: &Config,
    st: Option<&Element>,
    files: &CertFiles,
    now: i64,
    rdns: Option<Option<String>>,
    device_type: &str,
) -> Flat {
    Flat::of(decide(&CertInput {
        config: cfg,
        state: st,
        device_type,
        sn: Some(SN),
        files,
        base_url: BASE,
        now,
        rdns,
    }))
}

/// A [`CertDecision`] spread into the fields the assertions look at.
#[derive(Debug)]
struct Flat {
    msgs: Vec<String>,
    cmds: Option<Vec<Command>>,
    ok: bool,
    file_ops: Vec<FileOp>,
    skipnext: bool,
    cleaned_up: bool,
    stopped: bool,
    bailout: Option<String>,
    need_rdns: Option<String>,
    report: CertReport,
}

impl Flat {
    fn of(d: CertDecision) -> Flat {
        let (report, cmds, skipnext, bailout, need_rdns) = match d {
            CertDecision::Continue(r) => (r, None, false, None, None),
            CertDecision::SendAndStop {
                report,
                cmds,
                skipnext,
            } => (report, Some(cmds), skipnext, None, None),
            CertDecision::NeedRdns(ip) => (CertReport::default(), None, false, None, Some(ip)),
            CertDecision::Bailout(m) => (CertReport::default(), None, false, Some(m), None),
        };
        Flat {
            msgs: report.msgs.clone(),
            cmds,
            ok: report.ok,
            file_ops: report.file_ops.clone(),
            skipnext,
            cleaned_up: report.cleaned_up,
            stopped: report.stopped,
            bailout,
            need_rdns,
            report,
        }
    }

    fn certstat(&self) -> Option<&str> {
        self.report.certstat()
    }
}

fn simple(cfg: &Config, st: &Element, files: &CertFiles, now: i64) -> Flat {
    decide_with(cfg, Some(st), files, now, None, "IP232")
}

/// The command lines of a decision.
fn lines(d: &Flat) -> Vec<String> {
    d.cmds
        .iter()
        .flatten()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// [`lines`] as the recordings keep them: trailing white space removed.
fn trimmed(d: &Flat) -> Vec<String> {
    lines(d).iter().map(|l| l.trim_end().to_string()).collect()
}

/// The command lines of a recorded PHP answer, with the port placeholder of the recording
/// and its base URL replaced by ours.
fn recorded_lines(case_response: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("{CASE}{case_response}")).expect("recording");
    text.lines()
        .map(|l| {
            l.trim_end()
                .replace("http://127.0.0.1:HTTP_PORT/update", BASE)
        })
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn case_file(path: &str) -> Vec<u8> {
    std::fs::read(format!("{CASE}{path}")).expect("case file")
}

fn now() -> i64 {
    crate::clock::now()
}

// ---------------------------------------------------------------------------------------------
// A small PKI made with rcgen.

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: Vec<u8>,
}

fn params(cn: &str, not_before: i64, not_after: i64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    p.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    p
}

fn ca(cn: &str) -> Ca {
    let key = KeyPair::generate().expect("key");
    let mut p = params(cn, now() - 86400 * 400, now() + 86400 * 4000);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let der = p.self_signed(&key).expect("ca").der().to_vec();
    Ca {
        params: p,
        key,
        der,
    }
}

fn leaf(ca: &Ca, key: &KeyPair, cn: &str, not_before: i64, not_after: i64) -> Vec<u8> {
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    params(cn, not_before, not_after)
        .signed_by(key, &issuer)
        .expect("leaf")
        .der()
        .to_vec()
}

fn csr(key: &KeyPair, cn: &str) -> Vec<u8> {
    params(cn, now(), now() + 1)
        .serialize_request(key)
        .expect("csr")
        .der()
        .to_vec()
}

/// What a device reports in its certificates query for the certificate `der`: subject and
/// issuer CN and validity, read from the certificate itself.
fn report_of(der: &[u8]) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("certificate");
    let cn = |n: &x509_parser::x509::X509Name<'_>| {
        n.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string()
    };
    reported(
        &cn(c.subject()),
        &cn(c.issuer()),
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    )
}

fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for c in b64.as_bytes().chunks(64) {
        s.push_str(&String::from_utf8_lossy(c));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s.into_bytes()
}

// ---------------------------------------------------------------------------------------------
// Conversions

mod convert;
mod decide;
mod files;
mod install;
mod vardump;
