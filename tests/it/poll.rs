//! The update script over real HTTP: a simulated device polls the running server.

use crate::common::{Server, eventually, make_root};

const USER_CONFIG: &str = r#"<config><master info=""/><status dir="status"/></config>"#;

#[test]
fn a_new_device_gets_its_snippets_and_a_state_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        USER_CONFIG,
        &[("update-phone-default.txt", "config change PHONE /lang de\n")],
    );
    let server = Server::start(&root, &[]);
    let r =
        server.get("/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4");
    assert_eq!(r.status, 200);
    let cmds = r.command_lines();
    assert_eq!(
        cmds.first().map(String::as_str),
        Some("config change PHONE /lang de")
    );
    assert!(
        cmds.iter().any(|l| l.starts_with("mod cmd UP1 check ser ")),
        "{cmds:?}"
    );
    assert_eq!(cmds.last().map(String::as_str), Some("iresetn"));
    let state =
        std::fs::read_to_string(root.join("status/00-90-33-30-00-af.xml")).expect("state file");
    assert!(
        state.contains(r#"filename="scripts/update-phone-default.txt""#),
        "{state}"
    );
    assert!(state.contains(r#"realip="1.2.3.4""#), "{state}");
}

#[test]
fn path_characters_in_the_serial_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), USER_CONFIG, &[]);
    let server = Server::start(&root, &[]);
    let r = server.get("/update.php?type=IP232&sn=../pwned&hwid=IP232-30-00-af&ip=1.2.3.4");
    assert_eq!(r.status, 400);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    assert!(!root.join("pwned.xml").exists());
    assert!(
        !root.join("status").exists()
            || std::fs::read_dir(root.join("status"))
                .map(|d| d.count())
                .unwrap_or(0)
                == 0
    );
}

#[test]
fn snippet_edits_take_effect_on_the_next_poll() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><times grace="0"/></config>"#,
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let server = Server::start(&root, &[]);
    let poll = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";
    assert_eq!(server.get(poll).command_lines()[0], "config change A /x 1");
    std::fs::write(
        root.join("scripts/update-all-default.txt"),
        "config change A /x 2\n",
    )
    .expect("edit");
    let cmds = eventually(
        || server.get(poll).command_lines(),
        |c| c.first().is_some_and(|l| l == "config change A /x 2"),
    );
    assert_eq!(cmds[0], "config change A /x 2");
    std::fs::write(
        root.join("config/user-config.xml"),
        r#"<config><master info=""/><times grace="0" check="false"/></config>"#,
    )
    .expect("edit config");
    let cmds = eventually(
        || server.get(poll).command_lines(),
        |c| !c.iter().any(|l| l.contains("check ser")),
    );
    assert!(!cmds.iter().any(|l| l.contains("check ser")), "{cmds:?}");
}

#[test]
fn a_configuration_broken_while_running_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/></config>"#,
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let server = Server::start(&root, &[]);
    std::fs::write(
        root.join("config/user-config.xml"),
        r#"<config><phases><phase id="all" seq="1"/></phases></config>"#,
    )
    .expect("edit");
    // the broken configuration is seen a moment after the write (before, the poll below would
    // pass with the good one without testing anything)
    let health = eventually(|| server.get("/health"), |h| h.status != 200);
    assert_eq!(health.status, 503, "{}", health.text());
    let v: serde_json::Value = serde_json::from_slice(&health.body).expect("JSON");
    assert_eq!(v["checks"]["config"]["ok"], false, "{v}");
    // PHP would answer every poll with `# config: phase name 'all' not allowed - exit`
    let poll = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";
    let r = server.get(poll);
    assert_eq!(r.status, 200);
    assert!(!r.text().contains("- exit"), "{}", r.text());
    assert!(
        r.command_lines()
            .contains(&"config change A /x 1".to_string()),
        "{}",
        r.text()
    );
}
