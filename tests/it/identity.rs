//! Issue 21 over real mutual TLS, `forcetrust` on: device A's certificate (CN
//! `IP232-30-00-af`) may not act for device B (`00-90-33-30-00-b0`) by sending A's hwid with
//! B's serial – not in a poll, a query, a CSR upload, a backup nor by fetching B's signed
//! certificate – and B's state stays byte for byte as it was.

use crate::common::Server;
use crate::common::tls::{
    self as tlskit, Ca, ClientAuth, Device, local, make_trust_root, tls_get, tls_put,
};
use std::path::{Path, PathBuf};

const A_SN: &str = "00-90-33-30-00-af";
const B_SN: &str = "00-90-33-30-00-b0";
const B_SECRET: &str = "config change PWD0 /secret b-only";

struct Fleet {
    server: Server,
    root: PathBuf,
    mtls: u16,
    https: u16,
    a: Device,
    b: Device,
    ca: Ca,
}

fn start(dir: &Path) -> Fleet {
    start_configured(dir, "")
}

/// [`start`] with `extra` elements in the user configuration.
fn start_configured(dir: &Path, extra: &str) -> Fleet {
    let ca = Ca::new("Test Device CA");
    let root = make_trust_root(dir);
    std::fs::write(
        root.join("scripts/update-all-00_90_33_30_00_b0.txt"),
        format!("{B_SECRET}\n"),
    )
    .expect("B's snippet");
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86400);
    std::fs::File::options()
        .write(true)
        .open(root.join("scripts/update-all-00_90_33_30_00_b0.txt"))
        .and_then(|f| f.set_modified(day_ago))
        .expect("mtime");
    // B's state as after its first polls (its certificate reported), like A's
    let a_state = std::fs::read_to_string(root.join(format!("status/{A_SN}.xml"))).expect("A");
    let b_state = a_state
        .replace(A_SN, B_SN)
        .replace("IP232-30-00-af", "IP232-30-00-b0")
        .replace("172.16.1.2", "172.16.1.3");
    std::fs::write(root.join(format!("status/{B_SN}.xml")), b_state).expect("B's state");
    let setup = tlskit::mtls_setup(dir, &[&ca]);
    let (server, picked) = Server::start_with(&root, setup, |_| {
        let config = format!(
            r#"<config><master info=""/><status dir="status"/><backup dir="backup" nbackups="3" scfg="x"/><customcerts dir="certs" CAname="Test Device CA"/><times forcetrust="true"/>{extra}</config>"#
        );
        std::fs::write(root.join("config/user-config.xml"), config).expect("config");
    });
    Fleet {
        server,
        root,
        mtls: picked.mtls,
        https: picked.https,
        a: ca.issue("IP232-30-00-af"),
        b: ca.issue("IP232-30-00-b0"),
        ca,
    }
}

fn poll_target(sn: &str, hwid: &str) -> String {
    format!("/update/update.php?type=IP232&sn={sn}&hwid={hwid}&ip=172.16.1.2")
}

impl Fleet {
    fn state(&self, sn: &str) -> Vec<u8> {
        self.server.flush();
        std::fs::read(self.root.join(format!("status/{sn}.xml"))).expect("state")
    }

    fn files_below(&self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![self.root.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path().display().to_string());
                }
            }
        }
        out.sort();
        out
    }
}

#[test]
fn a_certificate_of_a_acts_for_b_nowhere_and_b_stays_unchanged() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = start(dir.path());
    // B polls itself first: its snippets, its state
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.b),
        &poll_target(B_SN, "IP232-30-00-b0"),
    )
    .expect("B polls");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.command_lines().iter().any(|l| l == B_SECRET),
        "{}",
        r.text()
    );
    let b_before = f.state(B_SN);
    let certs_before = f.files_below("certs");
    let a = ClientAuth::Device(&f.a);
    // A's poll for B, with A's hwid: comments only, nothing of B's
    let r = tls_get(local(f.mtls), a, &poll_target(B_SN, "IP232-30-00-af")).expect("poll");
    assert_eq!(r.status, 200);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    assert!(!r.text().contains("secret"), "{}", r.text());
    assert!(r.text().contains("# forcetrust: Device claims to be 'IP232-30-00-af / 0090333000b0' but identifies as 'IP232-30-00-af' by TLS"), "{}", r.text());
    // A's query for B
    let q = format!("/update/update.php?mode=query&id=admin&sn={B_SN}&hwid=IP232-30-00-af");
    let r = tls_put(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &q,
        br#"<info name="Impostor"/>"#,
    )
    .expect("query");
    assert_eq!(r.status, 403, "{}", r.text());
    // A's CSR for B
    let csr = format!(
        "/update/update.php?mode=vardump&sn={B_SN}&hwid=IP232-30-00-af&var=X509/REQUEST&file=certs%2F{B_SN}-request.p10.der&proc=var2bin&postproc=createPemFromDer"
    );
    let r = tls_put(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &csr,
        b"vars create X509/REQUEST pb 3082",
    )
    .expect("csr");
    assert_eq!(r.status, 403, "{}", r.text());
    // A's backup for B (into A's folder or B's)
    for hwid in ["IP232-30-00-af", "IP232-30-00-b0"] {
        let backup = format!("/update/update.php?mode=backup&sn={B_SN}&hwid={hwid}");
        let r = tls_put(
            local(f.mtls),
            ClientAuth::Device(&f.a),
            &backup,
            b"config add X\r\n",
        )
        .expect("backup");
        assert_eq!(r.status, 403, "{hwid}: {}", r.text());
    }
    assert_eq!(f.files_below("backup"), Vec::<String>::new());
    assert_eq!(f.files_below("certs"), certs_before);
    assert_eq!(f.state(B_SN), b_before, "B's state changed");
    // a signed certificate waits for B: A's poll gets 403, B's own poll gets it
    std::fs::create_dir_all(f.root.join("certs")).expect("certs");
    std::fs::write(
        f.root.join(format!("certs/{B_SN}-signedrequest.cer")),
        b"signed",
    )
    .expect("cer");
    f.server.app.watch.bump();
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &poll_target(B_SN, "IP232-30-00-af"),
    )
    .expect("poll");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.command_lines().is_empty(), "{}", r.text());
    assert_eq!(f.state(B_SN), b_before, "B's state changed");
    // every refusal is a warning naming the identity presented
    let log = f.server.log_text();
    assert!(
        log.contains("refused poll for sn '00-90-33-30-00-b0'"),
        "{log}"
    );
    assert!(
        log.contains("identity presented: CN='IP232-30-00-af' issuer 'Test Device CA' via MTLS"),
        "{log}"
    );
    assert!(
        log.contains("refused upload for sn '00-90-33-30-00-b0'"),
        "{log}"
    );
    // the admin pages know how B last proved itself
    assert_eq!(
        f.server.app.identities.proved(B_SN).as_deref(),
        Some("MTLS, CN 'IP232-30-00-b0'")
    );
}

#[test]
fn a_refused_poll_does_not_rewrite_the_recorded_hwid_or_address() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = start(dir.path());
    let before = f.state(A_SN);
    // no certificate (HTTPS) and plain HTTP, with another hwid and address
    let evil = format!("/update/update.php?type=IP232&sn={A_SN}&hwid=IP232-30-00-b0&ip=6.6.6.6");
    let r = tls_get(local(f.https), ClientAuth::None, &evil).expect("https");
    assert_eq!(r.status, 200);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let r = f.server.get(&evil);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let after = String::from_utf8(f.state(A_SN)).expect("utf8");
    assert!(after.contains(r#"hwid="IP232-30-00-af""#), "{after}");
    assert!(after.contains(r#"realip="172.16.1.2""#), "{after}");
    assert!(!after.contains("6.6.6.6"), "{after}");
    // only facts the old state lacked were filled in (as PHP's refused poll does)
    let kept = String::from_utf8(before).expect("utf8");
    assert!(kept.contains(r#"seen=""#));
    // A itself: its own certificate proves its serial through the hwid's MAC suffix
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &poll_target(A_SN, "IP232-30-00-af"),
    )
    .expect("A polls");
    assert!(tlskit::has_snippet(&r), "{}", r.text());
    assert!(!r.text().contains("secret"));
}

#[test]
fn a_device_uploads_for_its_own_serial_without_sending_an_hwid() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = start(dir.path());
    std::fs::remove_file(f.root.join(format!("status/{A_SN}.xml"))).expect("no state");
    let q = format!("/update/update.php?mode=query&id=admin&sn={A_SN}");
    let r = tls_put(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &q,
        br#"<info name="Front Desk"/>"#,
    )
    .expect("query");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(String::from_utf8_lossy(&f.state(A_SN)).contains("Front Desk"));
    let r = tls_put(
        local(f.mtls),
        ClientAuth::Device(&f.b),
        &q,
        br#"<info name="Impostor"/>"#,
    )
    .expect("query");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(!String::from_utf8_lossy(&f.state(A_SN)).contains("Impostor"));
}

#[test]
fn a_csr_is_listed_with_the_identity_that_uploaded_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = start(dir.path());
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "0090333000b0");
    let key = rcgen::KeyPair::generate().expect("key");
    let der = p.serialize_request(&key).expect("csr").der().to_vec();
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    let csr = format!(
        "/update/update.php?mode=vardump&sn={B_SN}&var=X509/REQUEST&file=certs%2F{B_SN}-request.p10.der&proc=var2bin&postproc=createPemFromDer"
    );
    let body = format!("X509/REQUEST pb {hex}\r\n");
    let r = tls_put(
        local(f.mtls),
        ClientAuth::Device(&f.b),
        &csr,
        body.as_bytes(),
    )
    .expect("csr");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        f.root
            .join(format!("certs/{B_SN}-request.p10.der"))
            .is_file()
    );
    assert_eq!(
        f.server.app.identities.csr_by(B_SN).as_deref(),
        Some("CN='IP232-30-00-b0' issuer 'Test Device CA' via MTLS")
    );
}

#[tokio::test]
async fn the_status_page_shows_how_a_device_proved_itself_and_who_uploaded_its_csr() {
    let h = crate::common::oneshot::Admin::new();
    let sn = crate::common::SN_RECEPTION;
    h.app.identities.record_poll(
        sn,
        "proxy 127.0.0.1 (Forwarded), CN 'IP232-30-00-a1'".into(),
    );
    h.app
        .identities
        .record_csr(sn, "CN='IP232-30-00-a1' issuer 'Test CA' via MTLS".into());
    let login = h.login().await;
    let t = h.get("/admin/admin.php", Some(&login)).await.text();
    assert!(
        t.contains("identity: proxy 127.0.0.1 (Forwarded), CN &#39;IP232-30-00-a1&#39;"),
        "{t}"
    );
    assert!(
        t.contains("uploaded by CN=&#39;IP232-30-00-a1&#39; issuer &#39;Test CA&#39; via MTLS"),
        "{t}"
    );
}

/// The rollout record of `sn` in rollout `r1`; `start`: the administrator starts it first
/// (its first wave opens with the devices known then, the device index read first).
fn rollout_record(
    f: &Fleet,
    sn: &str,
    start: bool,
) -> Option<update_server::rollout::state::DeviceRecord> {
    let app = &f.server.app;
    let cfg = app.config.get().expect("config");
    if start {
        let states = app.states(&cfg).expect("state tracking");
        let ready = states
            .index()
            .wait_complete(std::time::Duration::from_secs(10));
        assert!(ready, "index");
        let now = app.rollouts.now();
        let fleet = update_server::rollout_ticker::IndexFleet::new(app, &cfg, now);
        let start = update_server::rollout::Action::Start;
        app.rollouts
            .act(&cfg.rollouts, "r1", start, &fleet, now)
            .expect("started");
    }
    let state = app.rollouts.state(&cfg.rollouts, "r1").expect("r1");
    state.devices.get(sn).cloned()
}

#[test]
fn a_certificate_of_a_is_neither_counted_nor_recorded_for_b_in_a_rollout() {
    let dir = tempfile::tempdir().expect("tmp");
    let f = start_configured(
        dir.path(),
        r#"<rollouts><rollout id="r1" firmware="140010" applies="phone" waves="100" start="manual"/></rollouts>"#,
    );
    let target =
        |sn: &str, hwid: &str| format!("{}&PROT=130000&BOOT=130000", poll_target(sn, hwid));
    // B proves itself before the wave opens; A (known by its state) never polls itself
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.b),
        &target(B_SN, "IP232-30-00-b0"),
    )
    .expect("B polls");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("# rollout r1: "), "{}", r.text());
    // A polls without a certificate: refused, but its state gains its classes (in scope)
    let r = tls_get(
        local(f.https),
        ClientAuth::None,
        &target(A_SN, "IP232-30-00-af"),
    )
    .expect("A polls");
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let a_state = String::from_utf8_lossy(&f.state(A_SN)).into_owned();
    assert!(a_state.contains("phone"), "{a_state}");
    let b = rollout_record(&f, B_SN, true).expect("B is in the population");
    assert!(b.member && b.told.is_none(), "{b:?}");
    // A's state records no build and A proved nothing since the start: not a member
    assert!(
        rollout_record(&f, A_SN, false).is_none_or(|a| !a.member),
        "A counted without a proof"
    );
    // A's certificate, A's hwid, B's serial: refused, B not told, nothing recorded for B
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.a),
        &target(B_SN, "IP232-30-00-af"),
    )
    .expect("A polls for B");
    assert_eq!(r.status, 200);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    assert!(
        r.text().contains("# forcetrust: Device claims to be"),
        "{}",
        r.text()
    );
    assert_eq!(rollout_record(&f, B_SN, false), Some(b.clone()));
    // B with its own certificate: told, counted
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&f.b),
        &target(B_SN, "IP232-30-00-b0"),
    )
    .expect("B polls");
    assert!(
        r.text().contains("# rollout r1: firmware 140010"),
        "{}",
        r.text()
    );
    let b = rollout_record(&f, B_SN, false).expect("B");
    assert!(b.member && b.told.is_some(), "{b:?}");
}

/// A device with a serial-CN certificate that records a soft device's hwid in its own state
/// (by polling with it) cannot back up into that soft device's folder: an hwid two states
/// record belongs to neither.
#[test]
fn a_serial_cn_certificate_cannot_claim_a_soft_devices_backup_folder() {
    const SOFT_SN: &str = "00-90-33-ff-00-01";
    const SOFT_HWID: &str = "myPBX-android-1";
    let dir = tempfile::tempdir().expect("tmp");
    let f = start(dir.path());
    let soft = f.ca.issue("009033ff0001");
    let a_by_serial = f.ca.issue("0090333000af");
    let backup = |dev: &Device, sn: &str| {
        let q = format!("/update/update.php?mode=backup&sn={sn}&hwid={SOFT_HWID}");
        let r = tls_put(
            local(f.mtls),
            ClientAuth::Device(dev),
            &q,
            b"config change X",
        )
        .expect("backup");
        r.status
    };
    // the soft device's verified poll records its hwid
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&soft),
        &poll_target(SOFT_SN, SOFT_HWID),
    )
    .expect("poll");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(backup(&soft, SOFT_SN), 200, "the soft device backs up");
    let stored = f.files_below("backup");
    assert_eq!(stored.len(), 1, "{stored:?}");
    // A, proved by its serial, records the soft device's hwid in its own state
    let r = tls_get(
        local(f.mtls),
        ClientAuth::Device(&a_by_serial),
        &poll_target(A_SN, SOFT_HWID),
    )
    .expect("poll");
    assert_eq!(r.status, 200, "{}", r.text());
    f.server.flush();
    assert!(String::from_utf8_lossy(&f.state(A_SN)).contains(SOFT_HWID));
    assert_eq!(
        backup(&a_by_serial, A_SN),
        403,
        "A into the soft device's folder"
    );
    assert_eq!(f.files_below("backup"), stored, "nothing stored");
}
