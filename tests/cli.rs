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
