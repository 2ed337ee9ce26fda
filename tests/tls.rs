//! HTTPS, mutual TLS and trust enforcement over real handshakes on loopback, with a PKI made
//! in the test: the running server, a device with a certificate, and what it gets.

mod common;

use common::tls::{
    self as tlskit, Ca, ClientAuth, LeafOptions, TestKey, local, tls_get, tls_request, write_bundle,
};
use common::tls::{POLL, SNIPPETS, has_snippet, make_trust_root};
use common::{Server, Setup, http_request, make_root};
use rustls::SignatureScheme;
use rustls::pki_types::pem::PemObject;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// A server with `--http`, `--https` and `--mtls` listeners, prefix `/update`.
struct TlsServer {
    server: Server,
    https: u16,
    mtls: u16,
}

impl TlsServer {
    fn https_addr(&self) -> std::net::SocketAddr {
        local(self.https)
    }

    fn mtls_addr(&self) -> std::net::SocketAddr {
        local(self.mtls)
    }

    fn log(&self) -> String {
        self.server.log_text()
    }

    fn ports(&self) -> Ports {
        Ports {
            https: self.https,
            mtls: self.mtls,
        }
    }

    /// The log, once it contains `what` (log lines are written asynchronously).
    fn log_with(&self, what: &str) -> String {
        for _ in 0..500 {
            let log = self.log();
            if log.contains(what) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("log never contained {what:?}:\n{}", self.log());
    }
}

/// The TLS listener ports, picked when the server starts (the configuration names them).
#[derive(Debug, Clone, Copy)]
struct Ports {
    https: u16,
    mtls: u16,
}

/// Starts the server on `root` with `--https`, `--mtls` (client CAs: `bundle`) and `extra`
/// (`--legacy-client-certs false`); `config(ports)` becomes `config/user-config.xml`, written
/// once the ports are known.
fn start(
    dir: &Path,
    root: &Path,
    config: impl FnOnce(&Ports) -> String,
    bundle: &Path,
    extra: &[&str],
) -> TlsServer {
    let (crt, key) = tlskit::write_server_cert(dir);
    let legacy_client_certs = match extra {
        [] => true,
        ["--legacy-client-certs", "false"] => false,
        other => panic!("unsupported arguments {other:?}"),
    };
    let setup = Setup {
        prefix: "/update".into(),
        https: true,
        mtls: true,
        tls: update_server::tls::TlsOptions {
            cert: Some(crt),
            key: Some(key),
            client_ca: Some(bundle.to_path_buf()),
            legacy_client_certs,
        },
    };
    let (server, picked) = Server::start_with(root, setup, |picked| {
        let ports = Ports {
            https: picked.https,
            mtls: picked.mtls,
        };
        std::fs::write(root.join("config/user-config.xml"), config(&ports)).expect("config");
    });
    TlsServer {
        server,
        https: picked.https,
        mtls: picked.mtls,
    }
}

/// forcehttps + forcetrust on the MTLS port, trusting "Test Device CA" by name.
fn forcetrust_config(ports: &Ports, ca_names: &str) -> String {
    format!(
        r#"<config><master info=""/><status dir="status"/><customcerts dir="certs" CAname="{ca_names}"/><times forcehttps="true" httpsport="{}" forcetrust="true"/></config>"#,
        ports.mtls
    )
}

/// The usual set-up: the test device CA in the bundle, forcetrust on the MTLS port.
fn forcetrust_server(dir: &Path, ca: &Ca, extra: &[&str]) -> TlsServer {
    let root = make_trust_root(dir);
    let bundle = write_bundle(&dir.join("device-ca.pem"), &[ca]);
    start(dir, &root, |p| forcetrust_config(p, &ca.cn), &bundle, extra)
}

#[test]
fn trusted_device_with_its_hwid_as_cn_gets_its_snippets() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let device = ca.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert_eq!(r.status, 200);
    assert!(has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("good certificate(CN='IP232-30-00-af'"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.command_lines().last().map(String::as_str),
        Some("iresetn")
    );
}

#[test]
fn serial_without_dashes_and_early_broken_cns_are_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    for cn in ["0090333000af", "IP232s-30-00-af"] {
        let device = ca.issue(cn);
        let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
        assert!(has_snippet(&r), "{cn}: {}", r.text());
    }
}

#[test]
fn wildcard_cn_is_accepted_only_literally() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let root = make_trust_root(dir.path());
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca]);
    let config = |p: &Ports| {
        forcetrust_config(p, &ca.cn).replace(
            r#"CAname="Test Device CA""#,
            r#"CAname="Test Device CA" CAwildcard="*.devices.example""#,
        )
    };
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let wildcard = ca.issue("*.devices.example");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&wildcard), POLL).expect("poll");
    assert!(has_snippet(&r), "{}", r.text());
    let host = ca.issue("pbx.devices.example");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&host), POLL).expect("poll");
    assert!(!has_snippet(&r), "{}", r.text());
}

#[test]
fn certificate_of_another_device_gets_no_snippets_and_a_reason() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let other = ca.issue("IP232-30-00-b0");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&other), POLL).expect("MTLS poll");
    assert_eq!(r.status, 200);
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains(
            "claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0'"
        ),
        "{}",
        r.text()
    );
    assert!(
        !r.command_lines().iter().any(|l| l.contains("check ser")),
        "{}",
        r.text()
    );
}

#[test]
fn untrusted_issuer_is_refused_in_the_handshake_and_logged() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let rogue = Ca::new("Untrusted Test CA");
    let device = rogue.issue("IP232-30-00-af");
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).is_err());
    let log = s.log_with("refused client certificate");
    assert!(
        log.contains("CN='IP232-30-00-af' issued by 'Untrusted Test CA'"),
        "{log}"
    );
    assert!(log.contains("issuer unknown"), "{log}");
    // the listener keeps serving trusted devices
    let good = ca.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&good), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let expired = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            valid_from: time::Duration::days(-400),
            valid_until: time::Duration::days(-35),
            ..LeafOptions::default()
        },
    );
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&expired), POLL).is_err());
    let log = s.log_with("expired on");
    assert!(log.contains("CN='IP232-30-00-af'"), "{log}");
    let future = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            valid_from: time::Duration::days(30),
            valid_until: time::Duration::days(400),
            ..LeafOptions::default()
        },
    );
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&future), POLL).is_err());
    s.log_with("not valid before");
}

#[test]
fn no_certificate_on_the_mtls_port_is_accepted_but_gets_no_snippets() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let r = tls_get(s.mtls_addr(), ClientAuth::None, POLL).expect("MTLS poll without cert");
    assert_eq!(r.status, 200);
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("SSL_CLIENT_S_DN_CN not present"),
        "{}",
        r.text()
    );
}

#[test]
fn the_https_listener_does_not_ask_for_a_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let root = make_trust_root(dir.path());
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca]);
    // forcetrust pointed at the HTTPS port: a device certificate cannot reach the server there
    let config = |p: &Ports| {
        forcetrust_config(p, &ca.cn).replace(
            &format!(r#"httpsport="{}""#, p.mtls),
            &format!(r#"httpsport="{}""#, p.https),
        )
    };
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let device = ca.issue("IP232-30-00-af");
    let r = tls_get(s.https_addr(), ClientAuth::Device(&device), POLL).expect("HTTPS poll");
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("SSL_CLIENT_S_DN_CN not present"),
        "{}",
        r.text()
    );
}

#[test]
fn issuer_in_the_bundle_but_not_in_caname_gets_no_snippets() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let other = Ca::new("Other Device CA");
    let root = make_trust_root(dir.path());
    // a bundle of several CAs, like innovaphone-ca.pem
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca, &other]);
    let s = start(
        dir.path(),
        &root,
        |p| forcetrust_config(p, &ca.cn),
        &bundle,
        &[],
    );
    let device = other.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text()
            .contains("TLS certificate issuer (Other Device CA) not trusted"),
        "{}",
        r.text()
    );
    // and the first CA of the bundle still works
    let device = ca.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
}

/// `https%3A%2F%2F` … as the `/url` line carries it.
fn url_line(r: &common::Response) -> String {
    r.command_lines()
        .into_iter()
        .find(|l| l.starts_with("config add UP1 /url "))
        .unwrap_or_else(|| panic!("no /url line in {}", r.text()))
}

#[test]
fn plain_http_with_forcehttps_is_switched_to_https_on_httpsport() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let root = make_root(dir.path(), "", SNIPPETS);
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca]);
    let config = |p: &Ports| {
        format!(
            r#"<config><master info=""/><status dir="status"/><backup dir="backup"/><times forcehttps="true" httpsport="{}"/></config>"#,
            p.mtls
        )
    };
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let p = s.ports();
    let r = s.server.get(POLL);
    assert_eq!(r.status, 200);
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        !r.command_lines().iter().any(|l| l.contains("scfg")),
        "backup line withheld over HTTP: {}",
        r.text()
    );
    let expected = format!(
        "config add UP1 /url https%3A%2F%2F127.0.0.1%3A{}%2Fupdate%2Fupdate.php%3Fpolling%3D5%26phase%3D%26type%3D%23t%26sn%3D%23m%26hwid%3D%23h%26ip%3D%23i",
        p.mtls
    );
    assert_eq!(url_line(&r), expected);
    // the same device over HTTPS on another port is moved to the MTLS port too
    let r = tls_get(s.https_addr(), ClientAuth::None, POLL).expect("HTTPS poll");
    assert_eq!(url_line(&r), expected);
    // and on the right port it gets its snippets and an https backup URL
    let r = tls_get(s.mtls_addr(), ClientAuth::None, POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
    let scfg = format!(
        "mod cmd UP0 scfg https://127.0.0.1:{}/update/update.php?mode=backup&hwid=#h&sn=#m",
        p.mtls
    );
    assert!(r.command_lines().contains(&scfg), "{}", r.text());
}

#[test]
fn httpsurlmod_rewrites_the_https_url_with_backreferences() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let root = make_root(dir.path(), "", SNIPPETS);
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca]);
    let config = |p: &Ports| {
        format!(
            r##"<config><master info=""/><status dir="status"/><times forcehttps="true" httpsport="{}" httpsurlmod="#^HTTPS://127\.0\.0\.1:(\d+)/UPDATE/#https://update.example.com:$1/mtls/update/#i"/></config>"##,
            p.mtls
        )
    };
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let p = s.ports();
    let r = s.server.get(POLL);
    let expected = format!(
        "config add UP1 /url https%3A%2F%2Fupdate.example.com%3A{}%2Fmtls%2Fupdate%2Fupdate.php%3Fpolling%3D5%26phase%3D%26type%3D%23t%26sn%3D%23m%26hwid%3D%23h%26ip%3D%23i",
        p.mtls
    );
    assert_eq!(url_line(&r), expected);
}

#[test]
fn sha1_signed_device_certificate_is_accepted_as_legacy_and_logged() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(2048), true);
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let device = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            ..LeafOptions::default()
        },
    );
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
    let log = s.log_with("only because legacy-client-certs is on");
    assert!(
        log.contains("'IP232-30-00-af' is signed with sha1WithRSAEncryption"),
        "{log}"
    );
}

#[test]
fn sha1_signed_device_certificate_is_refused_with_legacy_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(2048), true);
    let s = forcetrust_server(dir.path(), &ca, &["--legacy-client-certs", "false"]);
    let device = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            ..LeafOptions::default()
        },
    );
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).is_err());
    let log = s.log_with("refused client certificate");
    assert!(log.contains("sha1WithRSAEncryption"), "{log}");
    assert!(
        log.contains("sha1WithRSAEncryption not accepted (legacy-client-certs is off"),
        "{log}"
    );
}

#[test]
fn legacy_still_verifies_the_signature_and_the_issuer() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(2048), true);
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let sha1 = LeafOptions {
        sha1: true,
        ..LeafOptions::default()
    };
    // a forged signature
    let mut forged = ca.issue_with("IP232-30-00-af", sha1);
    let mut der = forged.chain[0].to_vec();
    let last = der.len() - 1;
    der[last] ^= 0x01;
    forged.chain[0] = der.into();
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&forged), POLL).is_err());
    s.log_with("signature does not verify");
    // a SHA-1 certificate of a CA that is not in the bundle, with the same name
    let impostor = Ca::with_key("Test Device CA", TestKey::rsa(2048), true);
    let device = impostor.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            ..LeafOptions::default()
        },
    );
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).is_err());
    // an expired SHA-1 certificate of the right CA
    let expired = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            valid_from: time::Duration::days(-400),
            valid_until: time::Duration::days(-1),
            key: None,
        },
    );
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&expired), POLL).is_err());
    s.log_with("expired on");
    assert!(
        !s.log().contains("only because legacy-client-certs is on"),
        "{}",
        s.log()
    );
}

#[test]
fn old_rsa_1024_device_signing_the_handshake_with_sha1_is_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(1024), true);
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let device = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            key: Some(TestKey::rsa(1024)),
            ..LeafOptions::default()
        },
    );
    let r = tls_get(
        s.mtls_addr(),
        ClientAuth::OldRsaDevice(&device, SignatureScheme::RSA_PKCS1_SHA1),
        POLL,
    )
    .expect("old device poll");
    assert!(has_snippet(&r), "{}", r.text());
    let log = s.log_with("only because legacy-client-certs is on");
    assert!(
        log.contains("'IP232-30-00-af' has a 1024-bit RSA key"),
        "{log}"
    );
    assert!(
        log.contains("'Test Device CA' has a 1024-bit RSA key"),
        "{log}"
    );
}

#[test]
fn rsa_1024_ca_is_refused_with_legacy_off() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(1024), true);
    let s = forcetrust_server(dir.path(), &ca, &["--legacy-client-certs", "false"]);
    let device = ca.issue("IP232-30-00-af");
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).is_err());
    let log = s.log_with("refused client certificate");
    assert!(log.contains("signature does not verify"), "{log}");
}

#[test]
fn ca_without_basic_constraints_in_the_bundle_is_trusted() {
    let dir = tempfile::tempdir().expect("tmp");
    let early = Ca::with_key("Test Device CA", TestKey::ec(), false);
    let s = forcetrust_server(dir.path(), &early, &[]);
    let device = early.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
}

#[test]
fn intermediate_without_basic_constraints_is_refused_with_advice() {
    let dir = tempfile::tempdir().expect("tmp");
    let root_ca = Ca::new("Test Root CA");
    let intermediate = root_ca.intermediate("Test Device CA", false);
    let s = forcetrust_server(dir.path(), &root_ca, &[]);
    let device = intermediate
        .issue("IP232-30-00-af")
        .with_intermediates(std::slice::from_ref(&intermediate.der));
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).is_err());
    let log = s.log_with("refused client certificate");
    assert!(log.contains("add that CA to the client CA bundle"), "{log}");
}

#[test]
fn device_sending_its_intermediate_ca_is_accepted() {
    let dir = tempfile::tempdir().expect("tmp");
    let root_ca = Ca::new("Test Root CA");
    let intermediate = root_ca.intermediate("Test Device CA", true);
    let root = make_trust_root(dir.path());
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&root_ca]);
    let config = |p: &Ports| forcetrust_config(p, "Test Device CA");
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let device = intermediate
        .issue("IP232-30-00-af")
        .with_intermediates(std::slice::from_ref(&intermediate.der));
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
}

#[test]
fn absurd_certificate_chains_are_refused_without_harm() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let filler = ca.issue("filler").chain[0].clone();
    // 100 entries fit into one TLS message and reach the verifier
    let long = ca
        .issue("IP232-30-00-af")
        .with_intermediates(&vec![filler.clone(); 100]);
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&long), POLL).is_err());
    s.log_with("the client sent 100 intermediate certificates");
    // 400 do not even make a valid TLS message
    let longer = ca
        .issue("IP232-30-00-af")
        .with_intermediates(&vec![filler; 400]);
    assert!(tls_get(s.mtls_addr(), ClientAuth::Device(&longer), POLL).is_err());
    let good = ca.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&good), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
}

#[test]
fn garbage_plain_http_and_stalled_handshakes_do_not_disturb_others() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    // connections that never complete a handshake, held open during the rest of the test
    let mut stalled = Vec::new();
    for port in [s.https, s.mtls] {
        stalled.push(TcpStream::connect(local(port)).expect("silent connection"));
        let mut partial = TcpStream::connect(local(port)).expect("partial hello");
        partial
            .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .expect("write");
        stalled.push(partial);
    }
    // garbage
    let mut junk = TcpStream::connect(s.mtls_addr()).expect("junk");
    junk.write_all(&[0x00, 0xff, 0x13, 0x37, 0x42].repeat(200))
        .expect("write");
    junk.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = Vec::new();
    let _ = junk.read_to_end(&mut buf);
    // plain HTTP on the TLS port gets a plain answer saying so
    let r = http_request(s.https_addr(), "GET", POLL, &[], b"");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("use https://"), "{}", r.text());
    // and meanwhile a device is served on both TLS ports and over HTTP
    let device = ca.issue("IP232-30-00-af");
    let r = tls_get(s.mtls_addr(), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
    let r = tls_get(s.https_addr(), ClientAuth::None, POLL).expect("HTTPS poll");
    assert_eq!(r.status, 200);
    assert_eq!(s.server.get(POLL).status, 200);
    drop(stalled);
}

#[test]
fn a_stalled_handshake_is_dropped_by_the_server() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = forcetrust_server(dir.path(), &ca, &[]);
    let mut silent = TcpStream::connect(s.mtls_addr()).expect("connect");
    // far longer than the handshake timeout: the server must close first
    silent
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let n = silent
        .read(&mut buf)
        .expect("the server closes the connection");
    assert_eq!(n, 0);
    s.log_with("TLS handshake timed out");
}

/// forcehttps on port 443 (what a device behind the proxy uses), forcetrust, backups.
fn proxy_config(trusted: &str) -> String {
    format!(
        r#"<config><master info=""/><status dir="status"/><backup dir="backup"/><server trusted-proxies="{trusted}"/><customcerts dir="certs" CAname="Test Device CA"/><times forcehttps="true" httpsport="443" forcetrust="true"/></config>"#
    )
}

const PROXY_HEADERS: &[(&str, &str)] = &[
    ("X-Forwarded-For", "10.1.2.3"),
    ("X-Forwarded-Proto", "https"),
    ("X-Remote-Cert", "IP232-30-00-af"),
];

#[test]
fn a_trusted_proxy_vouches_for_https_and_the_client_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_trust_root(dir.path());
    std::fs::write(
        root.join("config/user-config.xml"),
        proxy_config("10.0.0.0/8, 127.0.0.1"),
    )
    .expect("config");
    let server = Server::start(&root, &["--prefix", "/update"]);
    let mut headers = PROXY_HEADERS.to_vec();
    headers.push(("Host", "update.example.com"));
    let r = http_request(server.addr(), "GET", POLL, &headers, b"");
    assert!(has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("good certificate(CN='IP232-30-00-af'"),
        "{}",
        r.text()
    );
    assert!(
        r.command_lines().contains(
            &"mod cmd UP0 scfg https://update.example.com/update/update.php?mode=backup&hwid=#h&sn=#m"
                .to_string()
        ),
        "{}",
        r.text()
    );
    // the proxy forwards another device's certificate: refused like a direct one
    let mut headers = headers.clone();
    headers.retain(|(k, _)| *k != "X-Remote-Cert");
    headers.push(("X-Remote-Cert", "CN=IP232-30-00-b0,O=innovaphone AG"));
    let r = http_request(server.addr(), "GET", POLL, &headers, b"");
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("identifies as 'IP232-30-00-b0'"),
        "{}",
        r.text()
    );
    // the proxy names an issuer that is not in CAname
    let mut headers = PROXY_HEADERS.to_vec();
    headers.push(("Host", "update.example.com"));
    headers.push(("X-Remote-Cert-Issuer", "CN=Someone Else CA"));
    let r = http_request(server.addr(), "GET", POLL, &headers, b"");
    assert!(!has_snippet(&r), "{}", r.text());
    assert!(
        r.text().contains("issuer (Someone Else CA) not trusted"),
        "{}",
        r.text()
    );
}

#[test]
fn proxy_headers_from_any_other_address_are_ignored_and_logged() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_trust_root(dir.path());
    std::fs::write(
        root.join("config/user-config.xml"),
        proxy_config("10.9.9.9"),
    )
    .expect("config");
    let server = Server::start(&root, &["--prefix", "/update"]);
    let mut headers = PROXY_HEADERS.to_vec();
    headers.push(("Host", "update.example.com"));
    let r = http_request(server.addr(), "GET", POLL, &headers, b"");
    assert!(!has_snippet(&r), "{}", r.text());
    // still plain HTTP as far as the server is concerned: switched to HTTPS
    assert_eq!(
        url_line(&r),
        "config add UP1 /url https%3A%2F%2Fupdate.example.com%3A443%2Fupdate%2Fupdate.php%3Fpolling%3D5%26phase%3D%26type%3D%23t%26sn%3D%23m%26hwid%3D%23h%26ip%3D%23i"
    );
    // X-Forwarded-For still names the device, as in PHP
    server.flush();
    let state = std::fs::read_to_string(root.join("status/00-90-33-30-00-af.xml")).expect("state");
    assert!(state.contains("10.1.2.3"), "{state}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !server
        .log_text()
        .contains("ignoring X-Forwarded-Proto/X-Remote-Cert headers from 127.0.0.1")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        server
            .log_text()
            .contains("ignoring X-Forwarded-Proto/X-Remote-Cert headers from 127.0.0.1"),
        "{}",
        server.log_text()
    );
}

#[test]
fn without_a_certificate_one_is_generated_kept_and_its_fingerprint_logged() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/></config>"#,
        SNIPPETS,
    );
    let https_only = Setup {
        https: true,
        ..Setup::default()
    };
    let fingerprint = {
        let (server, ports) = Server::start_with(&root, https_only.clone(), |_| {});
        let https = ports.https;
        let r = tls_get(
            local(https),
            ClientAuth::None,
            "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4",
        )
        .expect("HTTPS");
        assert_eq!(r.status, 200);
        let pem = std::fs::read(root.join("tls/server.crt")).expect("generated certificate");
        assert!(root.join("tls/server.key").is_file());
        let der = rustls::pki_types::CertificateDer::from_pem_slice(&pem).expect("PEM");
        let fp = sha256_hex_colons(der.as_ref());
        let log = server.log_text();
        assert!(
            log.contains("generated a self-signed server certificate"),
            "{log}"
        );
        assert!(log.contains(&fp), "fingerprint {fp} not in {log}");
        fp
    };
    // the next start keeps it (a request first: the server has logged its start-up by then)
    let (server, ports) = Server::start_with(&root, https_only, |_| {});
    let r = tls_get(local(ports.https), ClientAuth::None, "/update.php").expect("HTTPS");
    assert_eq!(r.status, 200);
    let log = server.log_text();
    assert!(!log.contains("generated a self-signed"), "{log}");
    assert!(log.contains(&fingerprint), "{log}");
}

fn sha256_hex_colons(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn https_request_sees_https_urls_and_its_port() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let root = make_root(dir.path(), "", SNIPPETS);
    let bundle = write_bundle(&dir.path().join("ca.pem"), &[&ca]);
    let config = |p: &Ports| {
        format!(
            r#"<config><master info=""/><status dir="status"/><backup dir="backup"/><times forcehttps="true" httpsport="{}"/></config>"#,
            p.https
        )
    };
    let s = start(dir.path(), &root, config, &bundle, &[]);
    let p = s.ports();
    let r = tls_request(s.https_addr(), ClientAuth::None, "GET", POLL, &[]).expect("HTTPS");
    assert!(has_snippet(&r), "{}", r.text());
    let scfg = format!(
        "mod cmd UP0 scfg https://127.0.0.1:{}/update/update.php?mode=backup&hwid=#h&sn=#m",
        p.https
    );
    assert!(r.command_lines().contains(&scfg), "{}", r.text());
}
