//! The `check-config` and `simulate` subcommands.

mod common;

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_update-server"))
}

#[test]
fn check_config_prints_the_merged_configuration() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = common::make_root(
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
    let root = common::make_root(
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
    let root = common::make_root(
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
    let cmds = common::command_lines(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(cmds[0], "config change A /x 1");
    assert!(!root.join("status/00-90-33-30-00-af.xml").exists());
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
    let root = common::make_root(
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

    let clean = common::make_root(
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
    let root = common::make_root(dir.path(), "<config/>", &[]);
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
