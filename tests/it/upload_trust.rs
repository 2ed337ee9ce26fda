//! `times/@forcetrust` binds the device uploads (`mode=query`, `mode=vardump`, `mode=backup`)
//! to the device, over real mutual TLS: only a client certificate naming the device (by the
//! poll's rule) may store data under its serial number.

use crate::common::Server;
use crate::common::tls::{self as tlskit, Ca, ClientAuth, local, make_trust_root, tls_put};
use std::path::{Path, PathBuf};

const SN: &str = "00-90-33-30-00-af";

struct Trusting {
    server: Server,
    root: PathBuf,
    mtls: u16,
    https: u16,
}

/// forcetrust on, "Test Device CA" trusted by name and in the client CA bundle; the device's
/// state (with its hwid) as after its first polls.
fn start(dir: &Path, ca: &Ca) -> Trusting {
    let root = make_trust_root(dir);
    let setup = tlskit::mtls_setup(dir, &[ca]);
    let cn = ca.cn.clone();
    let (server, picked) = Server::start_with(&root, setup, |_| {
        let config = format!(
            r#"<config><master info=""/><status dir="status"/><backup dir="backup" nbackups="3" scfg="x"/><customcerts dir="certs" CAname="{cn}"/><times forcetrust="true"/></config>"#
        );
        std::fs::write(root.join("config/user-config.xml"), config).expect("config");
    });
    Trusting {
        server,
        root,
        mtls: picked.mtls,
        https: picked.https,
    }
}

impl Trusting {
    fn state(&self) -> String {
        std::fs::read_to_string(self.root.join(format!("status/{SN}.xml"))).expect("state")
    }
}

fn query_target() -> String {
    format!("/update/update.php?mode=query&sn={SN}&id=admin")
}

#[test]
fn the_device_itself_may_upload_its_query_results() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = start(dir.path(), &ca);
    let device = ca.issue("IP232-30-00-af");
    let r = tls_put(
        local(s.mtls),
        ClientAuth::Device(&device),
        &query_target(),
        br#"<info name="Front Desk" type="IP232"/>"#,
    )
    .expect("MTLS upload");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(s.state().contains("Front Desk"), "{}", s.state());
}

#[test]
fn another_device_or_no_certificate_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::new("Test Device CA");
    let s = start(dir.path(), &ca);
    let before = s.state();
    let other = ca.issue("IP232-30-00-b0");
    let r = tls_put(
        local(s.mtls),
        ClientAuth::Device(&other),
        &query_target(),
        br#"<info name="Impostor"/>"#,
    )
    .expect("MTLS upload");
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(
        r.text(),
        "# forcetrust: mode=query refused: Device claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0' by TLS - exit\r\n"
    );
    assert_eq!(s.state(), before);
    s.server
        .log_with("refused upload for sn '00-90-33-30-00-af'");
    // HTTPS without a client certificate
    let r = tls_put(
        local(s.https),
        ClientAuth::None,
        &query_target(),
        br#"<info name="Impostor"/>"#,
    )
    .expect("HTTPS upload");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .starts_with("# forcetrust: mode=query refused: cannot verify CN")
    );
    assert_eq!(s.state(), before);
    // a vardump (the CSR) and a backup from the other device
    let vardump = format!(
        "/update/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=certs%2F{SN}-request.p10.der&proc=var2bin&postproc=createPemFromDer"
    );
    let r = tls_put(
        local(s.mtls),
        ClientAuth::Device(&other),
        &vardump,
        b"<vars/>",
    )
    .expect("vardump");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!s.root.join(format!("certs/{SN}-request.p10.der")).exists());
    let backup = format!("/update/update.php?mode=backup&sn={SN}&hwid=IP232-30-00-af");
    let r = tls_put(
        local(s.mtls),
        ClientAuth::Device(&other),
        &backup,
        b"config add X\r\n",
    )
    .expect("backup");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        !s.root.join("backup").exists()
            || std::fs::read_dir(s.root.join("backup"))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
    );
    assert_eq!(s.state(), before);
}

#[test]
fn an_issuer_not_named_in_caname_is_refused() {
    // the client certificate verifies (its CA is in the bundle) but CAname names another CA
    let other_ca = Ca::new("Other CA");
    let dir2 = tempfile::tempdir().expect("tmp");
    let s2 = start(dir2.path(), &other_ca);
    std::fs::write(
        s2.root.join("config/user-config.xml"),
        r#"<config><master info=""/><status dir="status"/><customcerts dir="certs" CAname="Test Device CA"/><times forcetrust="true"/></config>"#,
    )
    .expect("config");
    // the change is noticed a moment after the write; the upload is sent once (accepted under
    // the old configuration, it would be stored)
    s2.server.config_when(|c| {
        c.customcerts
            .as_ref()
            .is_some_and(|cc| cc.ca_names == ["Test Device CA"])
    });
    let device = other_ca.issue("IP232-30-00-af");
    let r = tls_put(
        local(s2.mtls),
        ClientAuth::Device(&device),
        &query_target(),
        br#"<info name="Impostor"/>"#,
    )
    .expect("upload");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        r.text()
            .contains("TLS certificate issuer (Other CA) not trusted"),
        "{}",
        r.text()
    );
    assert!(!s2.state().contains("Impostor"));
}
