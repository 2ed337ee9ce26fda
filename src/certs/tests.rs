//! Unit tests of the certificate workflow. Expectations come from the PHP source (worked out
//! by hand), from the PHP server's recordings in `tests/conformance/`, or from certificates
//! made here with rcgen.

use super::*;
use crate::answer::Answer;
use crate::php::Args;
use crate::state::Loaded;
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
) -> CertDecision {
    decide(&CertInput {
        config: cfg,
        state: st,
        device_type,
        sn: Some(SN),
        files,
        base_url: BASE,
        now,
        rdns,
    })
}

fn simple(cfg: &Config, st: &Element, files: &CertFiles, now: i64) -> CertDecision {
    decide_with(cfg, Some(st), files, now, None, "IP232")
}

/// The command lines of a decision.
fn lines(d: &CertDecision) -> Vec<String> {
    d.cmds
        .iter()
        .flatten()
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// [`lines`] as the recordings keep them: trailing white space removed.
fn trimmed(d: &CertDecision) -> Vec<String> {
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

#[test]
fn var2bin_decodes_hex_and_refuses_garbage() {
    assert_eq!(var2bin(b"00ff10"), Ok(vec![0x00, 0xff, 0x10]));
    assert_eq!(var2bin(b"0A7f"), Ok(vec![0x0a, 0x7f]));
    assert_eq!(var2bin(b""), Ok(vec![]));
    assert_eq!(var2bin(b"abc"), Err(CertError::OddHex(3)));
    assert_eq!(var2bin(b"zz"), Err(CertError::NotHex(0)));
    assert_eq!(var2bin(b"0g"), Err(CertError::NotHex(1)));
    assert_eq!(var2bin(b"+f"), Err(CertError::NotHex(0)));
    assert_eq!(var2bin(b"\xff\xfe"), Err(CertError::NotHex(0)));
}

#[test]
fn bin2var_writes_lower_case_hex() {
    assert_eq!(bin2var(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
    assert_eq!(bin2var(&[]), "");
    let all: Vec<u8> = (0..=255).collect();
    assert_eq!(var2bin(bin2var(&all).as_bytes()), Ok(all));
}

#[test]
fn der2pem_matches_php_chunk_split() {
    // base64("\x30\x03\x02\x01\x05") = "MAMCAQU=", one short line
    assert_eq!(
        der2pem(b"\x30\x03\x02\x01\x05"),
        b"-----BEGIN CERTIFICATE REQUEST-----\r\nMAMCAQU=\r\n-----END CERTIFICATE REQUEST-----\r\n"
            .to_vec()
    );
    // chunk_split("") is "\r\n"
    assert_eq!(
        der2pem(b""),
        b"-----BEGIN CERTIFICATE REQUEST-----\r\n\r\n-----END CERTIFICATE REQUEST-----\r\n"
            .to_vec()
    );
    // 48 bytes are exactly 64 base64 characters: one full line, nothing more
    let text = String::from_utf8(der2pem(&[0u8; 48])).expect("ascii");
    assert_eq!(text.split("\r\n").nth(1), Some("A".repeat(64).as_str()));
    assert_eq!(text.split("\r\n").count(), 4);
}

#[test]
fn der2pem_matches_the_php_recording() {
    let der =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    let pem = case_file(
        "customcerts-vardump-upload/expected/files/certs/00-90-33-30-00-af-request.p10.pem",
    );
    assert_eq!(der2pem(&der), pem);
}

#[test]
fn certificate_files_are_pem_or_der() {
    let der = vec![0x30, 0x03, 0x02, 0x01, 0x05];
    assert_eq!(cert_from_file(&der), der);
    let p = pem("CERTIFICATE", &der);
    assert_eq!(cert_from_file(&p), der);
    // stripos: case does not matter; CRLF, CR and text around the block are fine
    let crlf = String::from_utf8_lossy(&p)
        .replace('\n', "\r\n")
        .to_lowercase()
        .replace("mamcaqu=", "MAMCAQU=");
    assert_eq!(
        cert_from_file(format!("Bag Attributes\r\n{crlf}trailer").as_bytes()),
        der
    );
    assert_eq!(
        cert_from_file(String::from_utf8_lossy(&p).replace('\n', "\r").as_bytes()),
        der
    );
    // only the first certificate of a file counts
    let mut two = p.clone();
    two.extend(pem("CERTIFICATE", &[0x30, 0x00]));
    assert_eq!(cert_from_file(&two), der);
}

#[test]
fn certificate_files_give_the_bytes_php_sent() {
    // the recorded `vars create` lines carry PHP's bin2var(getCertFromFile(...))
    let lines = recorded_lines("customcerts-signed-cert-install/expected/01-response.txt");
    let sent = |n: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&format!("vars create X509/REQUESTRESPONSE/{n} pb ")))
            .expect("recorded line")
            .to_string()
    };
    let dir = "customcerts-signed-cert-install/state/certs/";
    let pem_file = case_file(&format!("{dir}00-90-33-30-00-af-signedrequest.cer"));
    assert_eq!(bin2var(&cert_from_file(&pem_file)), sent("00000"));
    assert_eq!(
        bin2var(&cert_from_file(&case_file(&format!("{dir}CAkey-01.cer")))),
        sent("00001")
    );
    assert_eq!(
        bin2var(&cert_from_file(&case_file(&format!("{dir}CAkey-02.cer")))),
        sent("00002")
    );
}

#[test]
fn signed_certificates_are_checked_against_the_request() {
    let ca = ca("Test Custom CA");
    let key = KeyPair::generate().expect("key");
    let other = KeyPair::generate().expect("key");
    let request = csr(&key, "0090333000af");
    let good = leaf(&ca, &key, "0090333000af", now() - 60, now() + 86400 * 365);
    let wrong = leaf(&ca, &other, "0090333000af", now() - 60, now() + 86400 * 365);
    assert_eq!(check_signed(&good, &request), Ok(()));
    assert_eq!(check_signed(&wrong, &request), Err(CertError::OtherKey));
    assert!(matches!(
        check_signed(b"this is not a certificate", &request),
        Err(CertError::NotCertificate(_))
    ));
    assert!(matches!(
        check_signed(&request, &request),
        Err(CertError::NotCertificate(_))
    ));
    // a request that cannot be read does not stop a real certificate
    assert_eq!(check_signed(&good, b"garbage"), Ok(()));
    assert_eq!(check_certificate(&ca.der), Ok(()));
    assert_eq!(check_request(&request), Ok(()));
    assert!(matches!(
        check_request(&request[..request.len() - 10]),
        Err(CertError::NotRequest(_))
    ));
    assert!(check_request(&good).is_err());
    assert!(check_request(&ca.der).is_err());
    // the request of the PHP recordings
    let recorded =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    assert_eq!(check_request(&recorded), Ok(()));
}

/// A DER element with a short length.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag, u8::try_from(content.len()).expect("short")];
    v.extend_from_slice(content);
    v
}

#[test]
fn the_structure_decides_what_the_parser_cannot_read() {
    let int = tlv(0x02, &[1]);
    let seq_of = |n: usize| tlv(0x30, &int.repeat(n));
    let whole = |tbs: Vec<u8>| {
        let mut c = tbs;
        c.extend(tlv(0x30, &[]));
        c.extend(tlv(0x03, &[0]));
        tlv(0x30, &c)
    };
    // six fields in the to-be-signed part: shaped like a certificate, sent
    assert_eq!(check_certificate(&whole(seq_of(6))), Ok(()));
    assert_eq!(check_signed(&whole(seq_of(6)), b""), Ok(()));
    // three: shaped like a request
    assert!(check_certificate(&whole(seq_of(3))).is_err());
    let mut info = int.clone();
    info.extend(tlv(0x30, &[]));
    info.extend(tlv(0x30, &[]));
    assert_eq!(check_request(&whole(tlv(0x30, &info))), Ok(()));
    info.extend(tlv(0xa0, &[]));
    assert_eq!(check_request(&whole(tlv(0x30, &info))), Ok(()));
    let cut = whole(tlv(0x30, &info));
    assert!(check_request(&cut[..cut.len() - 1]).is_err());
    assert!(check_request(&tlv(0x04, b"text")).is_err());
}

#[test]
fn var_dump_values_like_php_get_var_dump() {
    let dump = b"X509/OTHER pb 00\r\nX509/REQUEST pb 3081\r\nX509/REQUEST pb ffff\r\n";
    assert_eq!(var_from_dump("X509/REQUEST", dump), Some(b"3081".to_vec()));
    // LF CR and lone CR end lines too; lines of fewer than three tokens are skipped
    assert_eq!(
        var_from_dump("B", b"B x\n\rA p 1\rB p 2"),
        Some(b"2".to_vec())
    );
    assert_eq!(var_from_dump("X509/REQUEST", b"X509/REQUEST pb"), None);
    assert_eq!(var_from_dump("X509/REQUEST", b"x509/request pb 00"), None);
    assert_eq!(var_from_dump("X", b""), None);
    // an empty third token is a value (PHP stores an empty file)
    assert_eq!(var_from_dump("X", b"X p "), Some(Vec::new()));
    // the value is kept byte for byte
    assert_eq!(
        var_from_dump("E", b"E p \xff\xfe more"),
        Some(b"\xff\xfe".to_vec())
    );
}

#[test]
fn dns_names() {
    assert_eq!(str2dnsname("Reception Desk"), "reception-desk");
    assert_eq!(str2dnsname("a__b..C"), "a-b-c");
    assert_eq!(str2dnsname("X509/REQUEST"), "x509-request");
}

#[test]
fn file_argument_checks_follow_the_php_pattern() {
    for bad in [
        &b"../x.der"[..],
        b"certs/../x",
        b"certs/..",
        b"certs/..\n",
        b"..",
        b"..\n",
        b"/etc/passwd",
        b"\\/x",
        b"a\\x\\y",
        b"a\\b./d",
        b"x\\../y",
        b"certs/../",
    ] {
        assert!(!php_name_in_subfolder(bad), "{bad:?}");
    }
    for good in [&b"certs/x.der"[..], b"a..b", b"...", b"a\\\nb\\", b"a\\b"] {
        assert!(php_name_in_subfolder(good), "{good:?}");
    }
    assert_eq!(php_extension(b"certs/x.php"), b"php");
    assert_eq!(php_extension(b"certs/x.PhP/"), b"php");
    assert_eq!(php_extension(b"dir.sh/file"), b"");
    assert_eq!(php_extension(b".pl"), b"pl");
    assert_eq!(php_extension(b"certs/x.der"), b"der");
}

#[test]
fn magic_words() {
    let st = state(None, Some("Reception Desk"));
    assert_eq!(
        replace_magics(b"{hwid}.x", &st, None),
        b"IP232-30-00-af.x".to_vec()
    );
    assert_eq!(replace_magics(b"{sn}", &st, None), b"0090333000af".to_vec());
    assert_eq!(
        replace_magics(b"{name}.example", &st, None),
        b"reception-desk.example".to_vec()
    );
    assert_eq!(
        replace_magics(b"{realip}/{ip}", &st, None),
        b"172.16.1.2/127.0.0.1".to_vec()
    );
    assert_eq!(
        replace_magics(b"{rdns}", &st, Some("h.example")),
        b"h.example".to_vec()
    );
    // an undefined word empties the whole option
    assert_eq!(replace_magics(b"x-{rdns}", &st, None), Vec::<u8>::new());
    let nameless = state(None, None);
    assert_eq!(
        replace_magics(b"{name}.x", &nameless, None),
        Vec::<u8>::new()
    );
    let empty_name = state(None, Some(""));
    assert_eq!(
        replace_magics(b"{name}", &empty_name, None),
        Vec::<u8>::new()
    );
    // without a proxy, {proxy} is the (missing, thus empty) attribute; via one it is required
    assert_eq!(replace_magics(b"p{proxy}", &st, None), b"p".to_vec());
    let mut via = st.clone();
    if let Some(d) = via.child_mut("device") {
        d.set_attr("rp", "true");
    }
    assert_eq!(replace_magics(b"p{proxy}", &via, None), Vec::<u8>::new());
    if let Some(d) = via.child_mut("device") {
        d.set_attr("proxy", "10.9.9.9");
    }
    assert_eq!(
        replace_magics(b"p{proxy}", &via, None),
        b"p10.9.9.9".to_vec()
    );
    // names are Latin-1 to PHP: every non-ASCII letter is a run of its own
    let umlaut = state(None, Some("Müller Büro"));
    assert_eq!(
        replace_magics(b"{name}", &umlaut, None),
        b"m-ller-b-ro".to_vec()
    );
    // words without a magic stay as they are
    assert_eq!(replace_magics(b"{other}", &st, None), b"{other}".to_vec());
}

// ---------------------------------------------------------------------------------------------
// Decisions on certificates made with rcgen

#[test]
fn decisions_on_certificates_made_with_rcgen() {
    let cfg = case_config(); // renew="90" from the defaults
    let t = now();
    let day = 86400;
    let ours = ca("Test Custom CA");
    let foreign = ca("Some Other CA");
    let key = KeyPair::generate().expect("key");
    let none = CertFiles::default();
    let decide_on = |der: &[u8]| {
        simple(
            &cfg,
            &state(
                Some(&format!("<servercert>{}</servercert>", report_of(der))),
                Some("Desk"),
            ),
            &none,
            t,
        )
    };
    let sn = "0090333000af";

    let good = leaf(&ours, &key, sn, t - day, t + 365 * day);
    let d = decide_on(&good);
    assert_eq!(d.msgs, vec!["OK"]);
    assert!(d.ok && d.cmds.is_none() && !d.skipnext);
    assert_eq!(d.certstat(), Some("OK"));

    let wrong_issuer = leaf(&foreign, &key, sn, t - day, t + 365 * day);
    let d = decide_on(&wrong_issuer);
    assert_eq!(
        d.msgs,
        vec![format!(
            "CN {sn}: invalid issuer: Some Other CA: not in Test Custom CA (,)"
        )]
    );
    assert!(!d.ok && d.skipnext);
    let l = lines(&d);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0].contains("var=X509/REQUESTERROR"));
    assert!(l[1].starts_with("mod cmd X509 servercert-create "));

    let expired = leaf(&ours, &key, sn, t - 400 * day, t - day);
    let d = decide_on(&expired);
    // PHP reports both: it expired, and (being within the renewal days) must be renewed
    assert_eq!(
        d.msgs,
        vec![
            format!("{sn}: expired"),
            format!("{sn}: valid but must be renewed")
        ]
    );
    assert!(d.skipnext && lines(&d)[1].starts_with("mod cmd X509 servercert-create "));

    let due = leaf(&ours, &key, sn, t - 300 * day, t + 30 * day);
    let d = decide_on(&due);
    assert_eq!(d.msgs, vec![format!("{sn}: valid but must be renewed")]);
    assert!(d.ok && d.skipnext);
    assert!(lines(&d)[1].starts_with("mod cmd X509 servercert-create "));

    let future = leaf(&ours, &key, sn, t + day, t + 400 * day);
    let d = decide_on(&future);
    assert_eq!(d.msgs, vec![format!("{sn}: not yet valid")]);
    assert!(d.cmds.is_none() && !d.skipnext && !d.ok);

    // renew="0": a certificate expiring in 30 days is fine
    let no_renew = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA" renew="0"/>"#,
        "",
    );
    let d = simple(
        &no_renew,
        &state(
            Some(&format!("<servercert>{}</servercert>", report_of(&due))),
            None,
        ),
        &none,
        t,
    );
    assert_eq!(d.msgs, vec!["OK"]);
}

#[test]
fn a_chain_is_checked_issuer_first() {
    let cfg = config(
        r#"<customcerts dir="certs" CAname="Root CA,Test Custom CA" renew="0"/>"#,
        "",
    );
    let info = format!(
        "<servercert>{}{}</servercert>",
        reported("0090333000af", "Test Custom CA", 0, 4_000_000_000),
        reported("Test Custom CA", "Other Root", 0, 4_000_000_000)
    );
    let d = simple(
        &cfg,
        &state(Some(&info), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(
        d.msgs,
        vec!["CN Test Custom CA: invalid issuer: Other Root: not in Root CA,Test Custom CA (,)"]
    );
    // the names in CAname are trimmed, the separator is configurable
    let cfg = config(
        r#"<customcerts dir="certs" CAname=" Other Root ; Test Custom CA" CAnamesep=";" renew="0"/>"#,
        "",
    );
    let d = simple(
        &cfg,
        &state(Some(&info), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(d.msgs, vec!["OK"]);
}

#[test]
fn unreadable_dates_do_nothing() {
    let info = r#"<servercert><certificate subject_cn="x" issuer_cn="elsewhere" not_before="" not_after="2039-05-01 00:00:00"/></servercert>"#;
    let d = simple(
        &case_config(),
        &state(Some(info), None),
        &CertFiles::default(),
        now(),
    );
    assert!(d.cmds.is_none() && !d.skipnext);
    assert!(
        d.certstat()
            .is_some_and(|s| s.contains("unreadable validity"))
    );
}

#[test]
fn no_certificates_reported_is_ok() {
    // PHP iterates over the children of its "-- no CN --" placeholder: there are none
    let d = simple(
        &case_config(),
        &state(Some(""), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(d.msgs, vec!["OK"]);
    assert!(d.cmds.is_none());
}

// ---------------------------------------------------------------------------------------------
// The workflow, state by state

#[test]
fn without_query_state_fast_polling_and_no_snippets() {
    let d = simple(
        &case_config(),
        &state(None, Some("x")),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(
        d.msgs,
        vec![
            "we dont know anything about the current certificate state - not doing any certificate checking"
        ]
    );
    assert_eq!(d.cmds, Some(Vec::new()));
}

#[test]
fn certificates_off_still_cleans_a_request_reported_by_the_device() {
    let cfg = config("", "");
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&cfg, &st, &CertFiles::default(), now());
    assert_eq!(
        lines(&d),
        vec!["vars del X509/REQUEST ", "vars del X509/REQUESTKEY "]
    );
    assert!(d.ok && d.cleaned_up);
    // without state tracking: nothing known, nothing to do
    let d = decide_with(&cfg, None, &CertFiles::default(), now(), None, "IP232");
    assert!(d.cmds.is_none());
    assert_eq!(
        d.certstat(),
        Some(
            "either certificate handling or state tracking not enabled - not doing any certificate checking"
        )
    );
}

#[test]
fn a_request_error_stops_everything() {
    let st = state(
        Some(&format!("{WRONG}<request-error>Failed</request-error>")),
        None,
    );
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert_eq!(lines(&d), vec!["ser"]);
    assert!(d.msgs.is_empty() && d.stopped && !d.skipnext);
    assert!(d.certstat().is_some_and(|s| s.contains("STOPPED")));
}

#[test]
fn a_request_being_made_is_waited_for() {
    let st = state(Some(&format!("{WRONG}<busy/>")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert_eq!(d.cmds, Some(Vec::new()));
    assert_eq!(
        d.certstat(),
        Some("wait for signing request to be generated (ongoing)")
    );
}

#[test]
fn wrong_issuer_creates_the_request_php_recorded() {
    let st = state(Some(WRONG), Some("Reception Desk"));
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    let recorded = recorded_lines("customcerts-wrong-issuer-creates-csr/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..4].to_vec());
    assert!(d.skipnext && d.cleaned_up);
    assert_eq!(
        d.certstat(),
        Some(
            "CN IP232-30-00-af: invalid issuer: innovaphone Device Certification Authority 2: not in Test Custom CA (,)"
        )
    );
}

#[test]
fn mypbx_gets_its_own_spelling_and_rdns_is_looked_up() {
    let cfg = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA" CSRsan-dns-1="{rdns}" CSRsan-dns-2="{name}.x"/>"#,
        "",
    );
    let st = state(Some(WRONG), None);
    let files = CertFiles::default();
    let first = decide_with(&cfg, Some(&st), &files, now(), None, "myPBXa");
    assert_eq!(first.need_rdns.as_deref(), Some("172.16.1.2"));
    assert!(first.cmds.is_none());
    let d = decide_with(
        &cfg,
        Some(&st),
        &files,
        now(),
        Some(Some("phone7.example".to_string())),
        "myPBXa",
    );
    assert_eq!(
        lines(&d)[1],
        "mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing+request  /key 2048-bit /signature SH256 /dn-cn 0090333000af /dn-ou  /dn-o  /dn-l  /dn-st  /dn-c  /san-dns phone7.example /san-dns  /san-dns  /san-ip  /san-ip "
    );
    // an address without a name: the option is empty
    let d = decide_with(&cfg, Some(&st), &files, now(), Some(None), "mypbxi");
    assert!(lines(&d)[1].contains("Signing+request  /key 2048-bit"));
    assert!(lines(&d)[1].contains("/san-dns  /san-dns  /san-dns  /san-ip"));
    let d = decide_with(&cfg, Some(&st), &files, now(), Some(None), "IP232");
    assert!(lines(&d)[1].contains("/type Signing%20request  /key"));
}

#[test]
fn the_csr_on_the_device_is_fetched_as_php_recorded() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    let recorded = recorded_lines("customcerts-csr-download/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..4].to_vec());
    assert!(!d.skipnext);
}

#[test]
fn a_fetched_csr_waits_for_the_ca_and_gets_its_pem() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let der =
        case_file("customcerts-signed-cert-install/state/certs/00-90-33-30-00-af-request.p10.der");
    let files = CertFiles {
        request_der: Some(der.clone()),
        ..Default::default()
    };
    let d = simple(&case_config(), &st, &files, now());
    assert!(d.cmds.is_none());
    assert_eq!(
        d.file_ops,
        vec![FileOp::Write {
            path: format!("certs/{SN}-request.p10.pem"),
            bytes: der2pem(&der)
        }]
    );
    assert_eq!(
        d.certstat(),
        Some("signing request must be processed by CA (ongoing)")
    );
    // with forcetrust the device keeps being asked for its request error, snippets wait
    let ft = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA"/>"#,
        r#"<times forcehttps="true" forcetrust="true"/>"#,
    );
    let files = CertFiles {
        request_der: Some(der),
        request_pem: true,
        ..Default::default()
    };
    let d = simple(&ft, &st, &files, now());
    assert!(d.file_ops.is_empty());
    let l = lines(&d);
    assert_eq!(l.len(), 1);
    assert!(l[0].contains("var=X509/REQUESTERROR"));
}

fn installing_files() -> CertFiles {
    let dir = "customcerts-signed-cert-install/state/certs/";
    CertFiles {
        request_der: Some(case_file(&format!(
            "{dir}00-90-33-30-00-af-request.p10.der"
        ))),
        request_pem: true,
        signed: Some(Ok(case_file(&format!(
            "{dir}00-90-33-30-00-af-signedrequest.cer"
        )))),
        request_key: false,
        ca_keys: vec![
            (
                "certs/CAkey-01.cer".to_string(),
                Ok(case_file(&format!("{dir}CAkey-01.cer"))),
            ),
            (
                "certs/CAkey-02.cer".to_string(),
                Ok(case_file(&format!("{dir}CAkey-02.cer"))),
            ),
        ],
    }
}

#[test]
fn a_signed_certificate_is_installed_as_php_recorded() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&case_config(), &st, &installing_files(), now());
    let recorded = recorded_lines("customcerts-signed-cert-install/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..6].to_vec());
    assert!(d.skipnext);
    assert_eq!(
        d.certstat(),
        Some("there is an uploaded signed CSR (certs/00-90-33-30-00-af-signedrequest.cer)")
    );
}

#[test]
fn a_bogus_signed_certificate_sends_nothing_and_says_why() {
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let cfg = case_config();
    let mut files = installing_files();
    files.signed = Some(Ok(
        b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n".to_vec(),
    ));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none() && !d.skipnext, "{d:?}");
    let status = d.certstat().unwrap_or_default();
    assert!(
        status.starts_with("uploaded signed certificate certs/00-90-33-30-00-af-signedrequest.cer not usable: not an X.509 certificate"),
        "{status}"
    );
    assert!(status.contains("nothing sent to the device"));

    // a real certificate, but for another key than the device's request
    let ca = ca("Test Custom CA");
    let other = KeyPair::generate().expect("key");
    files.signed = Some(Ok(leaf(
        &ca,
        &other,
        "0090333000af",
        now() - 60,
        now() + 86400,
    )));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat().unwrap_or_default().contains("public key"),
        "{:?}",
        d.certstat()
    );

    // an empty file
    files.signed = Some(Ok(Vec::new()));
    assert!(simple(&cfg, &st, &files, now()).cmds.is_none());

    // an unreadable file
    files.signed = Some(Err("permission denied".into()));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat()
            .unwrap_or_default()
            .contains("permission denied")
    );

    // a CA file that is no certificate
    let mut files = installing_files();
    files
        .ca_keys
        .push(("certs/CAkey-03.txt".into(), Ok(b"notes".to_vec())));
    let d = simple(&cfg, &st, &files, now());
    assert!(d.cmds.is_none());
    assert!(
        d.certstat()
            .unwrap_or_default()
            .starts_with("CA certificate certs/CAkey-03.txt (customcerts/@CAkeys) not usable"),
        "{:?}",
        d.certstat()
    );
}

#[test]
fn a_good_certificate_cleans_up_here_and_on_the_device() {
    let good = reported("0090333000af", "Test Custom CA", 0, 4_000_000_000);
    let st = state(
        Some(&format!("<servercert>{good}</servercert>{REQUEST}")),
        None,
    );
    let mut files = installing_files();
    files.request_key = true;
    let d = simple(&case_config(), &st, &files, now());
    assert_eq!(
        lines(&d),
        vec!["vars del X509/REQUEST ", "vars del X509/REQUESTKEY "]
    );
    let base = format!("certs/{SN}");
    assert_eq!(
        d.file_ops,
        vec![
            FileOp::Delete {
                path: format!("{base}-request.p10.der")
            },
            FileOp::Delete {
                path: format!("{base}-request.p10.pem")
            },
            FileOp::Delete {
                path: format!("{base}-signedrequest.cer")
            },
            FileOp::Delete {
                path: format!("{base}-request.der.key")
            },
        ]
    );
    assert!(d.ok && d.cleaned_up);
    assert_eq!(d.msgs[0], "OK");
    assert_eq!(
        d.certstat(),
        Some("removing CSR Key certs/00-90-33-30-00-af-request.der.key")
    );
    // once the device's request is gone too: nothing more to do
    let st = state(Some(&format!("<servercert>{good}</servercert>")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert!(d.cmds.is_none());
    assert_eq!(d.certstat(), Some("OK"));
}

#[test]
fn ca_type_and_ca_name_are_required() {
    let st = state(Some(WRONG), None);
    let files = CertFiles::default();
    // PHP finds its method requestCertificate_manual case-insensitively
    let d = simple(
        &config(
            r#"<customcerts dir="certs" CAname="Test Custom CA" CAtype="Manual"/>"#,
            "",
        ),
        &st,
        &files,
        now(),
    );
    assert!(d.bailout.is_none() && d.skipnext);
    let d = simple(
        &config(
            r#"<customcerts dir="certs" CAname="Test Custom CA" CAtype="wstep"/>"#,
            "",
        ),
        &st,
        &files,
        now(),
    );
    assert_eq!(
        d.bailout.as_deref(),
        Some("certificates: no support for certificates of type 'wstep'")
    );
}

// ---------------------------------------------------------------------------------------------
// mode=vardump

fn upload(cfg: &Config, query: &str, body: &[u8]) -> (Result<Vec<FileOp>, &'static str>, String) {
    let args = Args::parse(query);
    let mut ans = Answer::new(Some("status"), &args, &Loaded::Missing, 1234, 5400);
    let r = match vardump(cfg, &args, body, &mut ans) {
        Ok(ops) => Ok(ops),
        Err(VardumpError::Php(_)) => Err("php"),
        Err(VardumpError::Refused(_)) => Err("refused"),
    };
    (r, String::from_utf8_lossy(&ans.out).into_owned())
}

const CSR_QUERY: &str = "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=var2bin&postproc=createPemFromDer";
const ERR_QUERY: &str = "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror";

#[test]
fn vardump_stores_the_csr_and_its_pem() {
    let key = KeyPair::generate().expect("key");
    let request = csr(&key, "0090333000af");
    let body = format!("X509/REQUEST pb {}\r\n", bin2var(&request));
    let (r, out) = upload(&case_config(), CSR_QUERY, body.as_bytes());
    assert_eq!(
        r,
        Ok(vec![
            FileOp::Write {
                path: format!("certs/{SN}-request.p10.der"),
                bytes: request.clone()
            },
            FileOp::Write {
                path: format!("certs/{SN}-request.p10.pem"),
                bytes: der2pem(&request)
            },
        ])
    );
    assert!(out.contains(&format!(
        "# processed (with 'var2bin') length: {}\r\n",
        request.len()
    )));
}

#[test]
fn vardump_stores_the_request_error_as_sent() {
    let (r, _) = upload(
        &case_config(),
        ERR_QUERY,
        b"X509/REQUESTERROR p 4661696c6564\r\n",
    );
    assert_eq!(
        r,
        Ok(vec![FileOp::Write {
            path: format!("certs/{SN}-requesterror"),
            bytes: b"4661696c6564".to_vec()
        }])
    );
    let (r, _) = upload(
        &case_config(),
        ERR_QUERY,
        b"X509/REQUESTERROR p \xc0\xff\r\n",
    );
    assert_eq!(
        r.map(|ops| ops.into_iter().next()),
        Ok(Some(FileOp::Write {
            path: format!("certs/{SN}-requesterror"),
            bytes: b"\xc0\xff".to_vec()
        }))
    );
}

#[test]
fn vardump_refuses_unusable_csr_data() {
    let key = KeyPair::generate().expect("key");
    let hex = bin2var(&csr(&key, "x"));
    for bad in [
        format!("X509/REQUEST pb {}", &hex[..hex.len() - 1]), // odd length
        format!("X509/REQUEST pb {}", &hex[..hex.len() - 40]), // truncated
        format!("X509/REQUEST pb zz{}", &hex[2..]),           // not hex
        "X509/REQUEST pb ".to_string(),                       // empty
    ] {
        let (r, out) = upload(&case_config(), CSR_QUERY, bad.as_bytes());
        assert_eq!(r, Err("refused"), "{bad}");
        assert!(out.contains("# refused: 'X509/REQUEST' from the device is unusable: "));
    }
}

#[test]
fn vardump_writes_only_the_two_workflow_files() {
    let cfg = case_config();
    let body = b"X509/REQUEST pb 00\r\nX509/REQUESTERROR p 00\r\nX509/OTHER p 00\r\n";
    for q in [
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs/other.der&proc=var2bin",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=bin2var",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUEST&file=certs%2F00-90-33-30-00-af-request.p10.der&proc=var2bin&postproc=cleanupDeviceStates",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/OTHER&file=certs%2F00-90-33-30-00-af-requesterror",
        "mode=vardump&sn=00-90-33-30-00-af&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror&proc=var2bin",
        "mode=vardump&sn=00-90-33-30-00-b0&var=X509/REQUESTERROR&file=certs%2F00-90-33-30-00-af-requesterror",
        "mode=vardump&sn=&var=X509/REQUESTERROR&file=certs%2F-requesterror",
    ] {
        let (r, out) = upload(&cfg, q, body);
        assert_eq!(r, Err("refused"), "{q}");
        assert!(out.contains("# refused: mode=vardump only stores"), "{out}");
    }
    // without customcerts nothing at all
    let (r, _) = upload(&config("", ""), ERR_QUERY, body);
    assert_eq!(r, Err("refused"));
}

#[test]
fn vardump_answers_php_argument_errors_first() {
    let cfg = case_config();
    let cases = [
        (
            "mode=vardump&var=X",
            "# need 'sn' arg for mode=vardump, use ?sn=#m - exit\r\n",
        ),
        (
            "mode=vardump&sn=1",
            "# need 'var' arg for mode=vardump, use ?var=varname - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X",
            "# need 'file' arg for mode=vardump, use ?file=filename - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=..%2Fx",
            "# ?file: filename must not point to external directory - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=a%5Cb%5Cc",
            "# ?file: filename must not point to external directory - exit\r\n",
        ),
        (
            "mode=vardump&sn=1&var=X&file=certs%2Fx.PHP",
            "# bad file name - exit\r\n",
        ),
    ];
    for (q, expected) in cases {
        let (r, out) = upload(&cfg, q, b"X p 00");
        assert_eq!(r, Err("php"), "{q}");
        assert_eq!(out, expected);
    }
    let (r, out) = upload(&cfg, ERR_QUERY, b"X509/OTHER pb 00\r\n");
    assert_eq!(r, Err("php"));
    assert!(out.ends_with(
        "# failed to extract 'X509/REQUESTERROR' from PUT data for mode=vardump - exit\r\n"
    ));
}

#[test]
fn ca_key_files_are_globbed_like_php() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = dir.path();
    std::fs::create_dir_all(root.join("certs/chain")).expect("mkdir");
    for (name, content) in [
        ("certs/CAkey-02.cer", "b"),
        ("certs/CAkey-01.cer", "a"),
        ("certs/CAkey-10.cer", "c"),
        ("certs/.CAkey-00.cer", "hidden"),
        ("certs/cakey-05.cer", "lower"),
        ("certs/chain/1.cer", "sub"),
    ] {
        std::fs::write(root.join(name), content).expect("write");
    }
    let got = read_ca_keys(root, "certs", "CAkey*");
    assert_eq!(
        got,
        vec![
            ("certs/CAkey-01.cer".to_string(), Ok(b"a".to_vec())),
            ("certs/CAkey-02.cer".to_string(), Ok(b"b".to_vec())),
            ("certs/CAkey-10.cer".to_string(), Ok(b"c".to_vec())),
        ]
    );
    assert_eq!(
        read_ca_keys(root, "certs", "chain/*.cer"),
        vec![("certs/chain/1.cer".to_string(), Ok(b"sub".to_vec()))]
    );
    assert!(read_ca_keys(root, "certs", "nothing*").is_empty());
    assert!(read_ca_keys(root, "missing", "*").is_empty());
}
