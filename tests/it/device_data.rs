//! Device data over real HTTP: configuration backups, query results and the custom
//! certificate round trip (CSR created on the device, fetched, signed by a CA made here with
//! rcgen, installed, cleaned up), the bad inputs and the body limits.
//!
//! The expected command lines are written out by hand from the PHP server's source and the
//! recordings in `tests/conformance/` (`customcerts-*`, `backup-*`, `query-put-stores-state`).

use crate::common::tls::Ca;
use crate::common::{Response, Server, eventually, http_request, make_root};
use base64::Engine;
use rcgen::{CertificateParams, DnType, KeyPair};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;
use update_server::xml::Element;

const SN: &str = "00-90-33-30-00-af";
const HWID: &str = "IP232-30-00-af";
const IP: &str = "172.16.1.2";
const NTP: &str = "config change NTP0 /server1 pool.ntp.org";

const CERT_CONFIG: &str = r#"<config>
    <master info=""/>
    <status dir="status"/>
    <customcerts dir="certs" CAname="Test Custom CA" CAkeys="CAkey*" CSRdn-o="Example Org"
                 CSRdn-ou="{name}" CSRsan-dns-1="{hwid}.devices.example" CSRsan-ip-1="{realip}"
                 CSRdn-c="DE"/>
    <queries><query id="certificates"><applies>*</applies></query><query id="admin"><applies>*</applies></query></queries>
</config>"#;

fn start(dir: &Path, user_config: &str) -> (Server, PathBuf) {
    let root = make_root(
        dir,
        user_config,
        &[("update-all-default.txt", &format!("{NTP}\n"))],
    );
    let server = Server::start(&root, &["--prefix", "/update"]);
    (server, root)
}

/// A device of the test: it polls the URL it was last told to use and executes the upload
/// commands of its answers, as the real ones do.
struct Device<'a> {
    server: &'a Server,
    /// The poll request target.
    target: String,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl<'a> Device<'a> {
    fn new(server: &'a Server) -> Device<'a> {
        Device {
            server,
            target: format!("/update/update.php?type=IP232&sn={SN}&hwid={HWID}&ip={IP}"),
        }
    }

    /// The device's macros replaced, the origin removed: a request target.
    fn expand(&self, url: &str) -> String {
        let origin = format!("http://{}", self.server.addr());
        url.replace("#t", "IP232")
            .replace("#m", SN)
            .replace("#h", HWID)
            .replace("#i", IP)
            .strip_prefix(&origin)
            .unwrap_or(url)
            .to_string()
    }

    /// Polls; follows a `config add UP1 /url …` in the answer for the next poll.
    fn poll(&mut self) -> Response {
        let r = self.server.get(&self.target);
        assert_eq!(r.status, 200, "{}", r.text());
        if let Some(url) = r
            .command_lines()
            .iter()
            .find_map(|l| l.strip_prefix("config add UP1 /url "))
        {
            self.target = self.expand(&percent_decode(url));
        }
        r
    }

    /// Reports a query result as `mod cmd … xml-info` output.
    fn report(&self, id: &str, xml: &str) {
        let r = self.server.put(
            &format!("/update/update.php?mode=query&sn={SN}&id={id}"),
            xml.as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.text().contains(&format!("# queries {id} for {SN} saved")),
            "{}",
            r.text()
        );
    }

    /// Executes a `mod cmd UP0 scfg URL ser nop /always vars%20read%20VAR` command: uploads
    /// `dump` (the `vars read` output) to the URL.
    fn vardump(&self, command: &str, dump: &[u8]) -> Response {
        let url = command
            .strip_prefix("mod cmd UP0 scfg ")
            .and_then(|rest| rest.split(' ').next())
            .expect("scfg command");
        self.server.put(&self.expand(url), dump)
    }
}

/// The state file of `sn`, parsed.
fn state(root: &Path, sn: &str) -> Element {
    let bytes = std::fs::read(root.join(format!("status/{sn}.xml"))).expect("state file");
    Element::parse(&bytes).expect("state parses")
}

fn device_attr(root: &Path, name: &str) -> Option<String> {
    state(root, SN)
        .child("device")
        .and_then(|d| d.attr(name))
        .map(str::to_string)
}

// ---------------------------------------------------------------------------------------------
// The administrator's CA, from the test PKI (`common::tls`): root → "Test Custom CA" (the
// configured `CAname`) → the certificate for the key of the device's signing request.

/// Parameters of a device's signing request for `cn`.
fn request_params(cn: &str, not_before: i64, not_after: i64) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.not_before = time::OffsetDateTime::from_unix_timestamp(not_before).expect("time");
    p.not_after = time::OffsetDateTime::from_unix_timestamp(not_after).expect("time");
    p
}

fn now() -> i64 {
    update_server::clock::now()
}

struct Pki {
    root_der: Vec<u8>,
    ca_der: Vec<u8>,
    ca: Ca,
}

fn pki() -> Pki {
    let root = Ca::new("Test Custom Root CA");
    let ca = root.intermediate("Test Custom CA", true);
    Pki {
        root_der: root.der.to_vec(),
        ca_der: ca.der.to_vec(),
        ca,
    }
}

impl Pki {
    /// The CA's certificate for the key of a signing request.
    fn sign(&self, device_key: &KeyPair, cn: &str) -> Vec<u8> {
        self.ca.certify(cn, device_key).to_vec()
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn pem(label: &str, der: &[u8], eol: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----{eol}");
    for c in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(c).expect("base64"));
        s.push_str(eol);
    }
    s.push_str(&format!("-----END {label}-----{eol}"));
    s
}

/// The certificates query result of a device whose certificate is `der`.
fn certificates_report(der: &[u8], with_request: bool) -> String {
    let (_, c) = x509_parser::parse_x509_certificate(der).expect("certificate");
    let cn = |n: &x509_parser::x509::X509Name<'_>| {
        n.iter_common_name()
            .next()
            .and_then(|a| a.as_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let date = |t: i64| update_server::php::format_datetime(t);
    format!(
        r#"<info><servercert><certificate subject_cn="{}" issuer_cn="{}" not_before="{}" not_after="{}"/></servercert>{}</info>"#,
        cn(c.subject()),
        cn(c.issuer()),
        date(c.validity().not_before.timestamp()),
        date(c.validity().not_after.timestamp()),
        if with_request { REQUEST } else { "" }
    )
}

const REQUEST: &str = r#"<requests><request subject_cn="0090333000af" key="2048-bit" signature="SHA256"/></requests>"#;

/// The device's factory certificate: issued by innovaphone, not by the custom CA.
const FACTORY: &str = r#"<servercert><certificate subject_cn="IP232-30-00-af" issuer_cn="innovaphone Device Certification Authority 2" not_before="2019-05-01 00:00:00" not_after="2039-05-01 00:00:00"/></servercert>"#;

// ---------------------------------------------------------------------------------------------

#[test]
fn one_device_through_the_whole_csr_round_trip() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(dir.path(), CERT_CONFIG);
    let base = format!("http://{}/update/update.php", server.addr());
    let q_certs = format!(
        "mod cmd UP0 scfg {base}?mode=query&sn=#m&id=certificates ser nop /always mod%20cmd%20X509%20xml-info"
    );
    let q_admin = format!(
        "mod cmd UP0 scfg {base}?mode=query&sn=#m&id=admin ser nop /always mod%20cmd%20CMD0%20xml-info"
    );
    let get_error = format!(
        "mod cmd UP0 scfg {base}?mode=vardump&sn=#m&var=X509/REQUESTERROR&file=certs%2F{SN}-requesterror ser nop /always vars%20read%20X509%2FREQUESTERROR"
    );
    let get_request = format!(
        "mod cmd UP0 scfg {base}?mode=vardump&sn=#m&var=X509/REQUEST&file=certs%2F{SN}-request.p10.der&proc=var2bin&postproc=createPemFromDer ser nop /always vars%20read%20X509%2FREQUEST"
    );
    let still = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![q_certs.clone(), q_admin.clone()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["config write", "config activate", "iresetn"].map(String::from));
        v
    };
    let mut device = Device::new(&server);

    // 1. a new device: nothing known about its certificate yet, it is asked for the queries
    // and put into fast polling; no snippets
    let r = device.poll();
    let cmds = r.command_lines();
    assert_eq!(cmds[..2], [q_certs.clone(), q_admin.clone()]);
    assert_eq!(
        cmds[2..4],
        ["mod cmd UP1 provision 5", "config add UP1 /poll 1"]
    );
    assert!(!cmds.iter().any(|l| l == NTP), "{cmds:?}");
    assert_eq!(
        device_attr(&root, "certstat").as_deref(),
        Some(
            "we dont know anything about the current certificate state - not doing any certificate checking"
        )
    );
    assert_eq!(
        device.target,
        format!("/update/update.php?polling=5&phase=&type=IP232&sn={SN}&hwid={HWID}&ip={IP}")
    );

    // 2. it reports its factory certificate (wrong issuer) and its name
    device.report("certificates", &format!("<info>{FACTORY}</info>"));
    device.report("admin", r#"<info name="Reception Desk" type="IP232"/>"#);

    // 3. it is told to create a CSR with the configured attributes and their magic words
    let r = device.poll();
    let csr_command = "mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing%20request  /key 2048-bit /signature SH256 /dn-cn 0090333000af /dn-ou reception-desk /dn-o Example%20Org /dn-l  /dn-st  /dn-c DE /san-dns IP232-30-00-af.devices.example /san-dns  /san-dns  /san-ip 172.16.1.2 /san-ip";
    assert_eq!(r.command_lines(), still(&[&get_error, csr_command]));
    assert_eq!(
        device_attr(&root, "certstat").as_deref(),
        Some(
            "CN IP232-30-00-af: invalid issuer: innovaphone Device Certification Authority 2: not in Test Custom CA (,)"
        )
    );
    assert!(state(&root, SN).attr("skipnext").is_some());

    // 4. the next poll only runs the queries (the device reports the result of the command)
    let r = device.poll();
    assert_eq!(r.command_lines(), [q_certs.clone(), q_admin.clone()]);
    assert!(state(&root, SN).attr("skipnext").is_none());

    // 5. while the device makes its key, it says "busy": wait
    device.report("certificates", &format!("<info>{FACTORY}<busy/></info>"));
    assert_eq!(device.poll().command_lines(), still(&[]));
    assert_eq!(
        device_attr(&root, "certstat").as_deref(),
        Some("wait for signing request to be generated (ongoing)")
    );

    // 6. the CSR is there: the server fetches it (and the request error, if any)
    let device_key = KeyPair::generate().expect("key");
    let csr_der = request_params("0090333000af", now(), now() + 1)
        .serialize_request(&device_key)
        .expect("csr")
        .der()
        .to_vec();
    device.report("certificates", &format!("<info>{FACTORY}{REQUEST}</info>"));
    let r = device.poll();
    assert_eq!(r.command_lines(), still(&[&get_error, &get_request]));
    let r = device.vardump(&get_error, b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(
            "# failed to extract 'X509/REQUESTERROR' from PUT data for mode=vardump - exit"
        )
    );
    let r = device.vardump(
        &get_request,
        format!("X509/REQUEST pb {}\r\n", hex(&csr_der)).as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let der_path = root.join(format!("certs/{SN}-request.p10.der"));
    let pem_path = root.join(format!("certs/{SN}-request.p10.pem"));
    assert_eq!(std::fs::read(&der_path).expect("DER"), csr_der);
    assert_eq!(
        std::fs::read_to_string(&pem_path).expect("PEM"),
        pem("CERTIFICATE REQUEST", &csr_der, "\r\n")
    );
    assert!(device_attr(&root, "var-x509-request").is_some());

    // 7. waiting for the CA: the snippets are delivered meanwhile, nothing certificate-wise
    let r = device.poll();
    let cmds = r.command_lines();
    assert!(cmds.iter().any(|l| l == NTP), "{cmds:?}");
    assert!(
        !cmds
            .iter()
            .any(|l| l.contains("X509") && !l.contains("xml-info")),
        "{cmds:?}"
    );
    assert_eq!(
        device_attr(&root, "certstat").as_deref(),
        Some("signing request must be processed by CA (ongoing)")
    );

    // 8. the administrator's CA signs it; the chain files are sorted by name
    let pki = pki();
    let signed = pki.sign(&device_key, "0090333000af");
    std::fs::write(
        root.join(format!("certs/{SN}-signedrequest.cer")),
        pem("CERTIFICATE", &signed, "\n"),
    )
    .expect("signed certificate");
    std::fs::write(
        root.join("certs/CAkey-02.cer"),
        pem("CERTIFICATE", &pki.root_der, "\r\n"),
    )
    .expect("root");
    std::fs::write(root.join("certs/CAkey-01.cer"), &pki.ca_der).expect("intermediate");
    // files an administrator puts into certs/ are seen after the file-system notification or,
    // at the latest, the next rescan (every 2 s; the only way here: certs/ was made while the
    // server ran): until then the device polls as in 7
    let r = eventually(
        || device.poll(),
        |r| {
            r.command_lines()
                .iter()
                .any(|l| l.starts_with("vars create X509/REQUESTRESPONSE/"))
        },
    );
    let cmds = r.command_lines();
    let install = [
        get_error.clone(),
        format!("vars create X509/REQUESTRESPONSE/00000 pb {}", hex(&signed)),
        format!(
            "vars create X509/REQUESTRESPONSE/00001 pb {}",
            hex(&pki.ca_der)
        ),
        format!(
            "vars create X509/REQUESTRESPONSE/00002 pb {}",
            hex(&pki.root_der)
        ),
    ];
    assert_eq!(cmds[..2], [q_certs.clone(), q_admin.clone()]);
    assert_eq!(cmds[2..6], install);
    // snippets were delivered before: polling was turned off, now it is turned on again
    assert_eq!(
        cmds[6..8],
        ["mod cmd UP1 provision 5", "config add UP1 /poll 1"]
    );
    assert_eq!(
        cmds[cmds.len() - 4..],
        [
            "config add UP1 /no-dhcp",
            "config write",
            "config activate",
            "iresetn"
        ]
    );
    assert!(!cmds.iter().any(|l| l == NTP));
    assert!(state(&root, SN).attr("skipnext").is_some());

    // 9. skipnext
    assert_eq!(
        device.poll().command_lines(),
        [q_certs.clone(), q_admin.clone()]
    );

    // 10. the device reports the new certificate (its CSR still there): clean up both sides
    device.report("certificates", &certificates_report(&signed, true));
    let r = device.poll();
    assert_eq!(
        r.command_lines(),
        still(&["vars del X509/REQUEST", "vars del X509/REQUESTKEY"])
    );
    for gone in [
        format!("certs/{SN}-request.p10.der"),
        format!("certs/{SN}-request.p10.pem"),
        format!("certs/{SN}-signedrequest.cer"),
    ] {
        assert!(!root.join(&gone).exists(), "{gone} still there");
    }
    assert!(root.join("certs/CAkey-01.cer").exists());
    assert!(root.join("certs/CAkey-02.cer").exists());
    assert_eq!(
        device_attr(&root, "requestDownloaded").as_deref(),
        Some("false")
    );
    assert_eq!(
        device_attr(&root, "certstat").as_deref(),
        Some("removing signed CSR certs/00-90-33-30-00-af-signedrequest.cer")
    );

    // 11. all done: certificate OK, the snippets flow again
    device.report("certificates", &certificates_report(&signed, false));
    let r = device.poll();
    assert!(r.command_lines().iter().any(|l| l == NTP));
    assert!(!r.text().contains("vars "), "{}", r.text());
    assert_eq!(device_attr(&root, "certstat").as_deref(), Some("OK"));
}

/// A device that reported its CSR, which the server already has.
fn waiting_device(dir: &Path, config: &str) -> (Server, PathBuf, KeyPair) {
    let (server, root) = start(dir, config);
    let key = KeyPair::generate().expect("key");
    let csr = request_params("0090333000af", now(), now() + 1)
        .serialize_request(&key)
        .expect("csr")
        .der()
        .to_vec();
    std::fs::create_dir_all(root.join("certs")).expect("certs");
    std::fs::write(root.join(format!("certs/{SN}-request.p10.der")), csr).expect("der");
    let device = Device::new(&server);
    device.report("certificates", &format!("<info>{FACTORY}{REQUEST}</info>"));
    (server, root, key)
}

#[test]
fn a_signed_certificate_that_is_none_sends_nothing_and_says_so() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root, key) = waiting_device(dir.path(), CERT_CONFIG);
    let signed_path = root.join(format!("certs/{SN}-signedrequest.cer"));
    let pki = pki();
    std::fs::write(root.join("certs/CAkey-01.cer"), &pki.ca_der).expect("ca");
    let other = KeyPair::generate().expect("key");
    for (bogus, why) in [
        (
            b"this is not a certificate\n".to_vec(),
            "not an X.509 certificate",
        ),
        (Vec::new(), "not an X.509 certificate"),
        (
            // the CSR instead of the signed certificate
            std::fs::read(root.join(format!("certs/{SN}-request.p10.der"))).expect("der"),
            "not an X.509 certificate",
        ),
        (pki.sign(&other, "0090333000af"), "public key"),
    ] {
        let before = device_attr(&root, "certstat").unwrap_or_default();
        std::fs::write(&signed_path, &bogus).expect("bogus");
        let refused = |status: &str| {
            status.starts_with(&format!(
                "uploaded signed certificate certs/{SN}-signedrequest.cer not usable: "
            )) && status.contains(why)
                && status.contains("nothing sent to the device")
        };
        // the new file is seen a moment after the write: the device polls until its status
        // is about it (each file here is refused with its own details)
        let (r, status) = eventually(
            || {
                let r = Device::new(&server).poll();
                (r, device_attr(&root, "certstat").unwrap_or_default())
            },
            |(_, status)| refused(status) && *status != before,
        );
        let cmds = r.command_lines();
        assert!(!cmds.iter().any(|l| l.starts_with("vars ")), "{cmds:?}");
        assert!(cmds.iter().any(|l| l == NTP), "{cmds:?}");
        assert!(refused(&status), "{status}");
        assert!(state(&root, SN).attr("skipnext").is_none());
    }
    // the right one goes through (seen a moment after the write)
    std::fs::write(&signed_path, pki.sign(&key, "0090333000af")).expect("good");
    let r = eventually(
        || Device::new(&server).poll(),
        |r| {
            r.command_lines()
                .iter()
                .any(|l| l.starts_with("vars create X509/REQUESTRESPONSE/00001 pb "))
        },
    );
    assert!(
        r.command_lines()
            .iter()
            .any(|l| l.starts_with("vars create X509/REQUESTRESPONSE/00001 pb ")),
        "{}",
        r.text()
    );
}

#[test]
fn a_request_error_stops_certificate_processing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(dir.path(), CERT_CONFIG);
    let mut device = Device::new(&server);
    device.poll();
    device.report(
        "certificates",
        &format!("<info>{FACTORY}<request-error>Failed</request-error></info>"),
    );
    let r = device.poll();
    let cmds = r.command_lines();
    assert_eq!(cmds[2], "ser");
    assert!(!cmds.iter().any(|l| l == NTP));
    assert!(
        device_attr(&root, "certstat")
            .unwrap_or_default()
            .contains("STOPPED due to previous upload error")
    );
}

// ---------------------------------------------------------------------------------------------
// mode=vardump

#[test]
fn vardump_refuses_bad_data_and_other_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root, _) = waiting_device(dir.path(), CERT_CONFIG);
    let der_path = root.join(format!("certs/{SN}-request.p10.der"));
    std::fs::remove_file(&der_path).expect("rm");
    let ok_target = format!(
        "/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=certs%2F{SN}-request.p10.der&proc=var2bin&postproc=createPemFromDer"
    );
    let key = KeyPair::generate().expect("key");
    let csr = hex(request_params("x", now(), now() + 1)
        .serialize_request(&key)
        .expect("csr")
        .der());
    for body in [
        format!("X509/REQUEST pb {}\r\n", &csr[..csr.len() - 1]), // odd number of digits
        format!("X509/REQUEST pb {}\r\n", &csr[..csr.len() / 2]), // truncated output
        format!("X509/REQUEST pb {}xx\r\n", &csr[..csr.len() - 2]), // not hex
    ] {
        let r = server.put(&ok_target, body.as_bytes());
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("nothing stored"), "{}", r.text());
        assert!(r.command_lines().is_empty());
        assert!(!der_path.exists());
        assert!(!root.join(format!("certs/{SN}-request.p10.pem")).exists());
    }
    // PHP's own checks and answers come first (status 200) …
    let r = server.put(
        &format!("/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=..%2Fx.der"),
        b"X509/REQUEST pb 00",
    );
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            "# ?file: filename must not point to external directory - exit\r\n".to_string()
        )
    );
    // … then this server's rule: only the device's own two files
    for target in [
        format!(
            "/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=certs%2Fevil.der&proc=var2bin"
        ),
        format!("/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=status%2F{SN}.xml"),
        format!(
            "/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=certs%2F{SN}-request.p10.der&proc=var2bin&postproc=cleanupDeviceStates"
        ),
    ] {
        let r = server.put(&target, format!("X509/REQUEST pb {csr}").as_bytes());
        assert_eq!(r.status, 400, "{target}: {}", r.text());
        assert!(r.text().contains("# refused: mode=vardump only stores"));
    }
    assert!(!root.join("certs/evil.der").exists());
    assert!(!der_path.exists());
    // a path in `var` is refused before anything else
    let r = server.put(
        &format!("/update/update.php?mode=vardump&sn={SN}&var=X509/../x&file=certs%2Fx"),
        b"",
    );
    assert_eq!(r.status, 400);
}

// ---------------------------------------------------------------------------------------------
// Queries

#[test]
fn invalid_query_results_are_refused_and_the_old_data_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/></config>"#,
    );
    let device = Device::new(&server);
    device.report("admin", r#"<info name="Front Desk"/>"#);
    let before = std::fs::read(root.join(format!("status/{SN}.xml"))).expect("state");
    let target = format!("/update/update.php?mode=query&sn={SN}&id=admin");
    for bad in [
        &b"<info name=\"x\""[..],
        b"<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;\">]><info name=\"&b;\"/>",
        b"<!DOCTYPE info SYSTEM \"file:///etc/passwd\"><info/>",
        b"<info>\xff\xfe</info>",
        b"<info/>\r\nconfig change CMD0 /name pwned\r\n<",
    ] {
        let r = server.put(&target, bad);
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().starts_with("# invalid xml: "), "{}", r.text());
        assert!(r.command_lines().is_empty(), "{}", r.text());
        assert_eq!(
            std::fs::read(root.join(format!("status/{SN}.xml"))).expect("state"),
            before
        );
    }
    // an id that is no element name, or one with path characters
    assert_eq!(
        server
            .put(
                &format!("/update/update.php?mode=query&sn={SN}&id=1x"),
                b"<info/>"
            )
            .status,
        400
    );
    assert_eq!(
        server
            .put(
                &format!("/update/update.php?mode=query&sn={SN}&id=..%2Fx"),
                b"<info/>"
            )
            .status,
        400
    );
    assert_eq!(
        std::fs::read(root.join(format!("status/{SN}.xml"))).expect("state"),
        before
    );
}

// ---------------------------------------------------------------------------------------------
// Backups

const BACKUP_CONFIG: &str = r#"<config><master info=""/><status dir="status"/><backup dir="backup" nbackups="3"/></config>"#;

fn backup_target(hwid: &str, sn: &str) -> String {
    format!("/update/update.php?mode=backup&hwid={hwid}&sn={sn}")
}

#[test]
fn backups_store_binary_bodies_byte_for_byte() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(dir.path(), BACKUP_CONFIG);
    let body = b"config change CMD0 /name M\xfcller\r\nvars create UPDATE/X p \xff\r\nvars create CERT pb \x00\x01\r\nconfig change UP1 /url \xe9\r\n";
    let r = server.put(&backup_target(HWID, SN), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        std::fs::read(root.join(format!("backup/{HWID}/{HWID}.0.txt"))).expect("backup"),
        b"config change CMD0 /name M\xfcller\r\nvars create CERT pb \x00\x01"
    );
    let t = device_attr(&root, "backup").expect("backup time");
    // unchanged: not stored again, the time of the newest backup recorded
    let r = server.put(&backup_target(HWID, SN), body);
    assert!(
        r.text()
            .starts_with(&format!("# no change (newest backup/{HWID}/{HWID}.0.txt) "))
    );
    assert!(!root.join(format!("backup/{HWID}/{HWID}.1.txt")).exists());
    assert!(device_attr(&root, "backup").is_some_and(|b| b <= t));
    // an empty first backup: nothing stored, no time to record, no state written (as PHP)
    let r = server.put(
        &backup_target("IP232-30-00-c0", "00-90-33-30-00-c0"),
        b"\r\n",
    );
    assert_eq!(r.status, 200);
    assert!(!root.join("status/00-90-33-30-00-c0.xml").exists());
    assert!(
        !root
            .join("backup/IP232-30-00-c0/IP232-30-00-c0.0.txt")
            .exists()
    );
    // an empty hwid would write hidden files into backup/
    let r = server.put(&backup_target("", SN), b"config x");
    assert_eq!(r.status, 400);
    assert!(
        std::fs::read_dir(root.join("backup"))
            .expect("backup dir")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with('.'))
    );
}

#[test]
fn bodies_over_the_limit_get_413_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/><backup dir="backup"/><server max-body="1000"/></config>"#,
    );
    let line = "config change CMD0 /name x\r\n";
    let big = line.repeat(2000 / line.len() + 1);
    for target in [
        backup_target(HWID, SN),
        format!("/update/update.php?mode=query&sn={SN}&id=admin"),
    ] {
        let r = send_ignoring_early_close(&server, &target, big.as_bytes());
        assert_eq!(r.status, 413, "{}", r.text());
    }
    assert!(!root.join("backup").join(HWID).exists());
    assert!(!root.join(format!("status/{SN}.xml")).exists());
    // below the limit: stored
    let small = line.repeat(900 / line.len());
    let r = server.put(&backup_target(HWID, SN), small.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(root.join(format!("backup/{HWID}/{HWID}.0.txt")).exists());
}

/// Sends a request whose body the server may refuse before reading it all.
fn send_ignoring_early_close(server: &Server, target: &str, body: &[u8]) -> Response {
    let mut s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    crate::common::parse_response(&raw).expect("an HTTP answer")
}

#[test]
fn a_slow_5mb_backup_does_not_hold_up_other_polls() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(dir.path(), BACKUP_CONFIG);
    let mut body = Vec::new();
    let mut n = 0;
    while body.len() < 5 * 1024 * 1024 {
        body.extend_from_slice(
            format!("config change USERS /add user{n} /pwd secret{n}\r\n").as_bytes(),
        );
        if n % 100 == 0 {
            body.extend_from_slice(format!("vars create TLS0/TICKET/{n} pb 0102\r\n").as_bytes());
        }
        n += 1;
    }
    let sn_b = "00-90-33-30-00-b0";
    let hwid_b = "IP232-30-00-b0";
    let mut upload = TcpStream::connect(server.addr()).expect("connect");
    upload
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        backup_target(hwid_b, sn_b),
        server.addr(),
        body.len()
    );
    upload.write_all(head.as_bytes()).expect("head");
    let (first, rest) = body.split_at(body.len() / 2);
    // trickle the first half in pieces, polling other devices (and this one) in between
    for (i, piece) in first.chunks(first.len() / 8 + 1).enumerate() {
        upload.write_all(piece).expect("piece");
        let sn = format!("00-90-33-30-01-{i:02x}");
        let r = server.get(&format!(
            "/update/update.php?type=IP232&sn={sn}&hwid=IP232-30-01-{i:02x}&ip=10.0.0.{i}"
        ));
        assert_eq!(r.status, 200);
        assert!(r.command_lines().iter().any(|l| l == NTP), "{}", r.text());
    }
    // the uploading device itself can poll while its upload is open
    let r = server.get(&format!(
        "/update/update.php?type=IP232&sn={sn_b}&hwid={hwid_b}&ip=10.0.1.1"
    ));
    assert_eq!(r.status, 200);
    assert!(
        !root.join(format!("backup/{hwid_b}")).exists(),
        "upload not complete yet"
    );
    upload.write_all(rest).expect("rest");
    let mut raw = Vec::new();
    upload.read_to_end(&mut raw).expect("answer");
    let r = crate::common::parse_response(&raw).expect("HTTP answer");
    assert_eq!(r.status, 200, "{}", r.text());
    let stored =
        std::fs::read(root.join(format!("backup/{hwid_b}/{hwid_b}.0.txt"))).expect("stored");
    assert!(stored.len() > 4 * 1024 * 1024);
    assert!(stored.starts_with(
        b"config change USERS /add user0 /pwd secret0\r\nconfig change USERS /add user1 "
    ));
    assert!(!stored.windows(12).any(|w| w == b"TLS0/TICKET/"));
    assert!(
        state(&root, sn_b)
            .child("device")
            .and_then(|d| d.attr("backup"))
            .is_some()
    );
}

#[test]
fn two_requests_of_one_device_at_once() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/><backup dir="backup"/>
        <queries><query id="admin"><applies>*</applies></query></queries></config>"#,
    );
    let addr = server.addr();
    let threads: Vec<_> = (0..12)
        .map(|i| {
            std::thread::spawn(move || {
                let poll = format!("/update/update.php?type=IP232&sn={SN}&hwid={HWID}&ip={IP}");
                let query = format!("/update/update.php?mode=query&sn={SN}&id=admin");
                match i % 3 {
                    0 => http_request(addr, "GET", &poll, &[], b""),
                    1 => http_request(
                        addr,
                        "PUT",
                        &query,
                        &[],
                        format!(r#"<info name="n{i}"/>"#).as_bytes(),
                    ),
                    _ => http_request(
                        addr,
                        "PUT",
                        &backup_target(HWID, SN),
                        &[],
                        format!("config change CMD0 /name n{i}\r\n").as_bytes(),
                    ),
                }
            })
        })
        .collect();
    for t in threads {
        let r = t.join().expect("thread");
        assert_eq!(r.status, 200, "{}", r.text());
    }
    server.flush();
    let st = state(&root, SN);
    let dev = st.child("device").expect("device");
    assert_eq!(dev.attr("hwid"), Some(HWID));
    assert!(dev.attr("backup").is_some());
    assert!(
        st.path(&["queries", "admin", "info"])
            .and_then(|i| i.attr("name"))
            .is_some_and(|n| n.starts_with('n'))
    );
    let backups = std::fs::read_dir(root.join(format!("backup/{HWID}")))
        .expect("backups")
        .count();
    assert_eq!(backups, 4, "one file per differing backup");
    let leftovers: Vec<_> = std::fs::read_dir(root.join("status"))
        .expect("status")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn simultaneous_backups_without_serial_number_are_all_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, root) = start(
        dir.path(),
        BACKUP_CONFIG
            .replace("nbackups=\"3\"", "nbackups=\"20\"")
            .as_str(),
    );
    let addr = server.addr();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                http_request(
                    addr,
                    "PUT",
                    &format!("/update/update.php?mode=backup&hwid={HWID}"),
                    &[],
                    format!("config change CMD0 /name n{i}\r\n").as_bytes(),
                )
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().expect("thread").status, 200);
    }
    let mut contents: Vec<Vec<u8>> = std::fs::read_dir(root.join(format!("backup/{HWID}")))
        .expect("backups")
        .flatten()
        .map(|e| std::fs::read(e.path()).expect("read"))
        .collect();
    contents.sort();
    let mut expected: Vec<Vec<u8>> = (0..8)
        .map(|i| format!("config change CMD0 /name n{i}").into_bytes())
        .collect();
    expected.sort();
    assert_eq!(contents, expected);
}
