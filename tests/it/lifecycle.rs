//! The binary as a service: SIGTERM lets a download in flight finish and exits 0, SIGHUP
//! reads a renewed certificate and a changed configuration, `/health` through a broken and a
//! repaired configuration (polls keep the last good one), `/metrics` after polls and uploads,
//! JSON log lines. These tests start the binary (signals go to a process).

use crate::common::tls::{local, served_certificate};
use crate::common::{free_port, http_request, make_root, start_turn};
use rustls::pki_types::CertificateDer;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const POLL: &str = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";
const CONFIG: &str = r#"<config><master info=""/><status dir="status"/></config>"#;

/// The running binary; killed when dropped.
struct Running {
    child: Child,
    log: PathBuf,
    port: u16,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    fn start(root: &Path, extra: &[&str]) -> Running {
        let _turn = start_turn();
        let port = free_port();
        let log = root.join("../server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args(extra)
            .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--root"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start");
        let r = Running { child, log, port };
        r.wait_for(port);
        r
    }

    fn wait_for(&self, port: u16) {
        for _ in 0..500 {
            if TcpStream::connect(local(port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nothing listens on {port}; log:\n{}", self.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {sig}");
    }

    fn get(&self, target: &str) -> crate::common::Response {
        http_request(local(self.port), "GET", target, &[], b"")
    }

    /// Asks for `target` until `done` holds for the answer ([`crate::common::eventually`]): the
    /// server notices a changed file through a notification or its rescan, a moment after the
    /// write.
    fn get_until(
        &self,
        target: &str,
        done: impl Fn(&crate::common::Response) -> bool,
    ) -> crate::common::Response {
        crate::common::eventually(|| self.get(target), done)
    }

    /// Waits for the process to exit (bounded), returning its status.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        for _ in 0..1500 {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("still running; log:\n{}", self.log_text());
    }

    /// Waits until the log contains `text` (bounded).
    fn wait_log(&self, text: &str) {
        for _ in 0..500 {
            if self.log_text().contains(text) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("log lacks {text:?}:\n{}", self.log_text());
    }
}

fn root_with(dir: &Path, config: &str) -> PathBuf {
    let root = make_root(dir, config, &[]);
    std::fs::create_dir_all(root.join("status")).expect("status dir");
    root
}

#[test]
fn sigterm_lets_a_download_in_flight_finish_and_exits_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = root_with(dir.path(), CONFIG);
    std::fs::create_dir_all(root.join("fw")).expect("fw");
    let firmware: Vec<u8> = (0..32 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("fw/ip232.bin"), &firmware).expect("firmware");
    let mut server = Running::start(&root, &[]);
    let mut s = TcpStream::connect(local(server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        s,
        "GET /fw/ip232.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut first = vec![0u8; 64 * 1024];
    s.read_exact(&mut first).expect("first bytes");
    server.signal("-TERM");
    server.wait_log("shutting down");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("rest of the download");
    first.extend_from_slice(&rest);
    let head_end = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    assert_eq!(first.len() - head_end, firmware.len(), "whole firmware");
    assert!(first[head_end..] == firmware[..], "same bytes");
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    let log = server.log_text();
    assert!(log.contains("stopped"), "{log}");
    assert!(log.contains("firmware download /fw/ip232.bin"), "{log}");
    assert!(log.contains(&format!("bytes={}", firmware.len())), "{log}");
}

#[test]
fn an_idle_kept_alive_download_connection_does_not_hold_up_the_stop() {
    let dir = tempfile::tempdir().expect("tmp");
    // grace and idle times far longer than the test waits
    let root = root_with(
        dir.path(),
        r#"<config><master info=""/><server shutdown-grace="120" header-timeout="120"/></config>"#,
    );
    std::fs::create_dir_all(root.join("fw")).expect("fw");
    std::fs::write(root.join("fw/ip232.bin"), vec![7u8; 4096]).expect("firmware");
    let mut server = Running::start(&root, &[]);
    let mut s = TcpStream::connect(local(server.port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(s, "GET /fw/ip232.bin HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut answer = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.ends_with(&[7u8; 4096]) {
        let n = s.read(&mut answer).expect("answer");
        assert!(n > 0, "closed before the answer");
        got.extend_from_slice(&answer[..n]);
    }
    let started = std::time::Instant::now();
    server.signal("-TERM");
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("closed by the stop");
    assert!(rest.is_empty(), "{rest:?}");
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0), "{}", server.log_text());
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "the stop waited {took:?} for an idle connection"
    );
}

#[test]
fn sigint_stops_with_exit_0() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = root_with(dir.path(), CONFIG);
    let mut server = Running::start(&root, &[]);
    assert_eq!(server.get(POLL).status, 200);
    server.signal("-INT");
    assert_eq!(server.wait_exit().code(), Some(0), "{}", server.log_text());
}

#[test]
fn health_degrades_with_a_broken_configuration_and_polls_keep_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let good = r#"<config><master info=""/><status dir="status"/><times polling="77"/></config>"#;
    let root = root_with(dir.path(), good);
    let server = Running::start(&root, &[]);
    let h = server.get("/health");
    assert_eq!(h.status, 200, "{}", h.text());
    let v: serde_json::Value = serde_json::from_slice(&h.body).expect("JSON");
    assert_eq!(v["status"], "ok");
    let before = server.get(POLL).text();
    std::fs::write(root.join("config/user-config.xml"), "<config><broken").expect("break");
    let h = server.get_until("/health", |r| r.status != 200);
    assert_eq!(h.status, 503, "{}", h.text());
    let v: serde_json::Value = serde_json::from_slice(&h.body).expect("JSON");
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["checks"]["config"]["ok"], false);
    let during = server.get(POLL);
    assert_eq!(during.status, 200);
    assert!(!during.text().contains("cannot parse"), "{}", during.text());
    assert_eq!(during.text(), before, "last good configuration");
    let m = server.get("/metrics").text();
    assert_eq!(metric(&m, "update_server_config_good"), Some(0.0), "{m}");
    std::fs::write(root.join("config/user-config.xml"), good).expect("repair");
    let h = server.get_until("/health", |r| r.status != 503);
    assert_eq!(h.status, 200, "{}", h.text());
    // log lines are written a moment after they are logged
    server.wait_log("configuration error");
    let log = server.log_text();
    assert_eq!(
        log.matches("configuration error").count(),
        1,
        "logged once per change: {log}"
    );
}

#[test]
fn health_degrades_when_the_state_directory_is_not_writable() {
    let dir = tempfile::tempdir().expect("tmp");
    // a file where the state directory should be: it can be neither created nor written
    let cfg = r#"<config><master info=""/><status dir="taken"/></config>"#;
    let root = root_with(dir.path(), cfg);
    std::fs::write(root.join("taken"), b"a file").expect("file");
    let server = Running::start(&root, &[]);
    let h = server.get("/health");
    assert_eq!(h.status, 503, "{}", h.text());
    let v: serde_json::Value = serde_json::from_slice(&h.body).expect("JSON");
    assert_eq!(v["checks"]["state_dir"]["ok"], false);
}

/// The value of the sample `name` (with its labels, exactly) in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}

#[test]
fn metrics_count_polls_uploads_and_requests() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = root_with(dir.path(), CONFIG);
    let server = Running::start(&root, &[]);
    for _ in 0..3 {
        assert_eq!(server.get(POLL).status, 200);
    }
    for _ in 0..2 {
        let r = http_request(
            local(server.port),
            "POST",
            "/update.php?mode=query&sn=00-90-33-30-00-af&id=info",
            &[("Content-Type", "text/xml")],
            b"<info name=\"x\"/>",
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(server.get("/fw/missing.bin").status, 404);
    // a firmware download names the device that last polled from its address
    std::fs::create_dir_all(root.join("fw")).expect("fw");
    std::fs::write(root.join("fw/small.bin"), [7u8; 1000]).expect("firmware");
    assert_eq!(server.get("/fw/small.bin").body, vec![7u8; 1000]);
    let r = server.get("/metrics");
    assert_eq!(r.status, 200);
    let m = r.text();
    assert_eq!(
        metric(&m, "update_server_polls_total{result=\"answered\"}"),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "update_server_uploads_total{kind=\"query\",result=\"ok\"}"
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "update_server_http_requests_total{route=\"/update.php\",status=\"200\"}"
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "update_server_http_request_duration_seconds_count{route=\"/update.php\"}"
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(metric(&m, "update_server_config_good"), Some(1.0), "{m}");
    let build = format!(
        "update_server_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric(&m, &build), Some(1.0), "{m}");
    assert_eq!(
        metric(
            &m,
            "update_server_http_requests_total{route=\"/fw/*\",status=\"404\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "update_server_devices{state=\"present\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(&m, "update_server_devices{state=\"missing\"}"),
        Some(0.0),
        "{m}"
    );
    assert_eq!(metric(&m, "update_server_csrs_waiting"), Some(0.0), "{m}");
    assert_eq!(
        metric(&m, "update_server_master_reachable"),
        Some(-1.0),
        "{m}"
    );
    // the download's line is written once the answer is out, maybe after the client has it
    server.wait_log("firmware download /fw/small.bin");
    let log = server.log_text();
    assert!(log.contains("not found: /fw/missing.bin"), "{log}");
    let download = log
        .lines()
        .find(|l| l.contains("firmware download /fw/small.bin"))
        .unwrap_or_else(|| panic!("no download line: {log}"));
    assert!(download.contains("bytes=1000"), "{download}");
    assert!(download.contains("sn=00-90-33-30-00-af"), "{download}");
}

#[test]
fn json_log_lines_parse() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = root_with(dir.path(), CONFIG);
    let mut server = Running::start(&root, &["--log-format", "json"]);
    assert_eq!(server.get(POLL).status, 200);
    server.signal("-TERM");
    assert_eq!(server.wait_exit().code(), Some(0));
    let log = server.log_text();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 3, "{log}");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    assert!(log.contains("\"sn\":\"00-90-33-30-00-af\""), "{log}");
}

#[test]
fn sighup_serves_a_renewed_certificate_and_a_changed_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = |backup: &str| {
        format!(r#"<config><master info=""/><status dir="status"/>{backup}</config>"#)
    };
    let root = root_with(dir.path(), &cfg(""));
    std::fs::create_dir_all(root.join("tls")).expect("tls");
    let (c, k) = crate::common::tls::write_server_cert(&root.join("tls"));
    let (c_s, k_s) = (c.display().to_string(), k.display().to_string());
    let (server, https) = {
        let _turn = start_turn();
        let https = free_port();
        let https_arg = format!("127.0.0.1:{https}");
        let port = free_port();
        let log = root.join("../server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args([
                "serve",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--https",
                &https_arg,
            ])
            .args(["--tls-cert", &c_s, "--tls-key", &k_s, "--root"])
            .arg(&root)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start");
        let r = Running { child, log, port };
        r.wait_for(port);
        r.wait_for(https);
        (r, https)
    };
    let first = served_certificate(https);
    assert_eq!(first, pem_der(&c));
    let before = server.get(POLL).text();
    crate::common::tls::write_server_cert(&root.join("tls"));
    std::fs::write(
        root.join("config/user-config.xml"),
        cfg(r#"<backup dir="backups"/>"#),
    )
    .expect("config");
    server.signal("-HUP");
    server.wait_log("replaced: SHA-256");
    server.wait_log("reload: configuration read, changed: config/user-config.xml");
    let second = served_certificate(https);
    assert_ne!(second, first, "renewed certificate served");
    assert_eq!(second, pem_der(&c));
    let after = server.get(POLL).text();
    assert!(before.contains("Backups not enabled in config"), "{before}");
    assert!(
        !after.contains("Backups not enabled in config"),
        "changed configuration used:\n{after}"
    );
}

fn pem_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path).expect("PEM").to_vec()
}

#[test]
fn a_broken_configuration_at_start_stops_the_server_with_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = root_with(dir.path(), "<config><broken");
    let out = Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--http", "127.0.0.1:0", "--root"])
        .arg(&root)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("user-config.xml"), "{err}");
}
