//! The binary itself: the `check-config` and `simulate` subcommands, and `serve` reading its
//! listeners and TLS settings from the configuration file or refusing bad ones. The only
//! integration tests that start the binary (all others serve in-process, see `common`).

use crate::common::make_root;
use crate::common::tls::{
    Ca, ClientAuth, LeafOptions, POLL, TestKey, has_snippet, local, make_trust_root, tls_get,
    write_bundle,
};
use crate::common::{free_port, start_turn};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_update-server"))
}

#[test]
fn check_config_prints_the_merged_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::common::make_root(
        dir.path(),
        r#"<config><phases><phase id="staging" seq="100"/></phases></config>"#,
        &[],
    );
    let out = bin()
        .args(["check-config", "--root"])
        .arg(&root)
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let staging = text.find("<phase id=\"staging\"").expect("staging phase");
    let update = text.find("<phase id=\"update\"").expect("update phase");
    assert!(staging < update, "sorted by seq:\n{text}");
}

#[test]
fn check_config_names_file_element_and_problem() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::common::make_root(
        dir.path(),
        r#"<config><environments><environment id="a-b"/></environments></config>"#,
        &[],
    );
    let out = bin()
        .args(["check-config", "--root"])
        .arg(&root)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<environment id='a-b'>"), "{err}");
    assert!(err.contains("no dash allowed in name"), "{err}");
    let out = bin()
        .args(["serve", "--root"])
        .arg(&root)
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "serve refuses to start half-configured"
    );
}

#[test]
fn simulate_prints_the_script_without_writing_state() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::common::make_root(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/></config>"#,
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let out = bin()
        .args(["simulate", "--root"])
        .arg(&root)
        .arg("type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cmds = crate::common::command_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(cmds[0], "config change A /x 1");
    assert!(!root.join("status/00-90-33-30-00-af.xml").exists());
}

#[test]
fn listeners_and_tls_settings_from_the_configuration_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let ca = Ca::with_key("Test Device CA", TestKey::rsa(2048), true);
    let root = make_trust_root(dir.path());
    std::fs::create_dir_all(root.join("tls")).expect("mkdir");
    let (c, k) = crate::common::tls::write_server_cert(&root.join("tls"));
    std::fs::rename(c, root.join("tls/mine.crt")).expect("rename");
    std::fs::rename(k, root.join("tls/mine.key")).expect("rename");
    write_bundle(&root.join("tls/ca.pem"), &[&ca]);
    // no listener flags at all: everything from <server>, ports picked in the start-up turn
    let turn = start_turn();
    let (https, mtls, http) = (free_port(), free_port(), free_port());
    let config = format!(
        r#"<config><master info=""/><status dir="status"/><server http="127.0.0.1:{http}" https="127.0.0.1:{https}" mtls="127.0.0.1:{mtls}" prefix="/update" tls-cert="tls/mine.crt" tls-key="tls/mine.key" client-ca="tls/ca.pem" legacy-client-certs="false"/><customcerts dir="certs" CAname="Test Device CA"/><times forcehttps="true" httpsport="{mtls}" forcetrust="true"/></config>"#
    );
    std::fs::write(root.join("config/user-config.xml"), config).expect("config");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--root"])
        .arg(&root)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("server.log")).expect("log"))
        .spawn()
        .expect("start");
    let guard = KillOnDrop(&mut child);
    for port in [http, https, mtls] {
        wait_for(port, &dir.path().join("server.log"));
    }
    drop(turn);
    let device = ca.issue("IP232-30-00-af");
    let r = tls_get(local(mtls), ClientAuth::Device(&device), POLL).expect("MTLS poll");
    assert!(has_snippet(&r), "{}", r.text());
    // legacy-client-certs="false" from the file: a SHA-1 certificate is refused
    let old = ca.issue_with(
        "IP232-30-00-af",
        LeafOptions {
            sha1: true,
            ..LeafOptions::default()
        },
    );
    assert!(tls_get(local(mtls), ClientAuth::Device(&old), POLL).is_err());
    assert_eq!(
        tls_get(local(https), ClientAuth::None, POLL)
            .expect("HTTPS")
            .status,
        200
    );
    assert!(
        !root.join("tls/server.crt").exists(),
        "configured certificate used"
    );
    drop(guard);
}

struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16, log: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if TcpStream::connect(local(port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "nothing listens on {port}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Starts the binary expecting it to refuse: returns its exit status and error output.
fn refused_start(root: &Path, args: &[&str]) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_update-server"))
        .args(["serve", "--root"])
        .arg(root)
        .args(args)
        .output()
        .expect("run update-server");
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_tls_settings_stop_the_server_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><server trusted-proxies="10.0.0.1, proxy.example"/></config>"#,
        &[],
    );
    let port = format!("127.0.0.1:{}", free_port());
    let (status, err) = refused_start(&root, &["--http", &port]);
    assert!(!status.success());
    assert!(
        err.contains(
            "config/user-config.xml: <server trusted-proxies>: 'proxy.example' is not an address"
        ),
        "{err}"
    );
    let root = make_root(dir.path(), r#"<config><master info=""/></config>"#, &[]);
    let (status, err) = refused_start(&root, &["--mtls", &port]);
    assert!(!status.success());
    assert!(err.contains("--mtls needs --client-ca"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "no certificates here\n").expect("write");
    let (status, err) = refused_start(
        &root,
        &["--mtls", &port, "--client-ca", &empty.display().to_string()],
    );
    assert!(!status.success());
    assert!(err.contains("empty.pem: no certificate found"), "{err}");
    assert!(
        !root.join("tls").exists(),
        "nothing generated for a start that fails"
    );
    // a generated key whose certificate was lost
    std::fs::create_dir_all(root.join("tls")).expect("mkdir");
    std::fs::write(root.join("tls/server.key"), "lost its certificate").expect("write");
    let (status, err) = refused_start(&root, &["--https", &port]);
    assert!(!status.success());
    assert!(err.contains("server.key exists but"), "{err}");
}

fn check_config(root: &std::path::Path, strict: bool) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["check-config", "--root"]).arg(root);
    if strict {
        cmd.arg("--strict");
    }
    cmd.output().expect("run")
}

#[test]
fn check_config_warns_about_typos_and_strict_fails_on_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::common::make_root(
        dir.path(),
        r#"<config><mastr info=""/><times intervall="3" polling="abc"/></config>"#,
        &[],
    );
    let out = check_config(&root, false);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warnings alone do not fail: {err}");
    assert!(
        err.contains("config/user-config.xml: unknown element <mastr> in <config>"),
        "{err}"
    );
    assert!(
        err.contains("<times intervall=\"3\">: unknown attribute"),
        "{err}"
    );
    assert!(
        err.contains("<times polling=\"abc\">: not a whole number"),
        "{err}"
    );
    let out = check_config(&root, true);
    assert_eq!(out.status.code(), Some(3), "--strict fails on warnings");

    let clean = crate::common::make_root(
        &dir.path().join("clean"),
        r#"<config><times interval="3"/><server http="127.0.0.1:8080"/></config>"#,
        &[],
    );
    let out = check_config(&clean, true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_output_is_well_formed_xml() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = crate::common::make_root(dir.path(), "<config/>", &[]);
    let out = check_config(&root, false);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let doc = sxd_document::parser::parse(&text).expect("a well-formed XML document");
    let top = doc.as_document().root().children();
    let config = top.iter().find_map(|c| c.element()).expect("root element");
    assert_eq!(config.name().local_part(), "config");
}

#[test]
fn check_config_fails_on_a_missing_root() {
    let out = check_config(std::path::Path::new("/nonexistent"), false);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--root /nonexistent: no such directory"),
        "{err}"
    );
}

#[test]
fn hash_password_refuses_an_empty_password() {
    use std::io::Write;
    for input in ["\n", ""] {
        let mut child = bin()
            .arg("hash-password")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(!out.status.success(), "{input:?} accepted");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("empty password refused"), "{err}");
    }
}

#[test]
fn rollout_plan_lists_the_devices_by_wave_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/>
           <rollouts><rollout id="r1" firmware="140010" applies="phone" waves="50,100"/></rollouts></config>"#,
        &[],
    );
    crate::common::seed_fleet(&root, crate::common::unix_now());
    // a spare file of a server running on the same root
    let spare = root.join("status/.spare.0.tmp");
    std::fs::write(&spare, "old state").expect("spare");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&spare)
        .and_then(|f| f.set_modified(hour_ago))
        .expect("mtime");
    let out = bin()
        .args(["rollout-plan", "--root"])
        .arg(&root)
        .arg("r1")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("rollout r1: firmware 140010, boot code unchanged\n"),
        "{text}"
    );
    assert!(
        text.contains("wave 1 (50%): ") && text.contains("wave 2 (100%): "),
        "{text}"
    );
    assert!(
        text.contains(crate::common::SN_RECEPTION),
        "the IP232 is in scope: {text}"
    );
    assert!(!root.join("rollouts").exists(), "nothing written");
    assert!(spare.exists(), "the server's spare file removed");
    let out = bin()
        .args(["rollout-plan", "--root"])
        .arg(&root)
        .arg("nope")
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no rollout 'nope'"));
}
