//! Changes to the configuration and snippets are noticed through file-system notifications
//! (polled for until seen, bounded), and static files below `fw/` and `web/` are served with
//! validators, ranges and HEAD, and without escaping their directory.

use crate::common::{Server, eventually, http_request, make_root};
use std::time::Duration;

const POLL: &str = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";

/// Polls until `seen` holds for the answer's command lines ([`crate::common::eventually`]).
fn poll_until(server: &Server, seen: impl Fn(&[String]) -> bool) -> Vec<String> {
    eventually(|| server.get(POLL).command_lines(), |c| seen(c))
}

#[test]
fn a_new_snippet_and_a_changed_configuration_are_seen_by_later_polls() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><times grace="0"/></config>"#,
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let server = Server::start(&root, &[]);
    assert_eq!(server.get(POLL).command_lines()[0], "config change A /x 1");
    std::fs::write(
        root.join("scripts/update-ip232-default.txt"),
        "config change B /y 1\n",
    )
    .expect("new snippet");
    let cmds = poll_until(&server, |c| c.iter().any(|l| l == "config change B /y 1"));
    assert!(cmds.iter().any(|l| l == "config change B /y 1"), "{cmds:?}");
    std::fs::write(
        root.join("config/user-config.xml"),
        r#"<config><master info=""/><times grace="0" check="false"/></config>"#,
    )
    .expect("edit config");
    let cmds = poll_until(&server, |c| !c.iter().any(|l| l.contains("check ser")));
    assert!(!cmds.iter().any(|l| l.contains("check ser")), "{cmds:?}");
}

fn static_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), r#"<config><master info=""/></config>"#, &[]);
    std::fs::create_dir_all(root.join("fw/130178")).expect("fw");
    let small: Vec<u8> = (0..8192u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(root.join("fw/130178/ip232.bin"), &small).expect("small");
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(root.join("fw/big.bin"), &big).expect("big");
    std::fs::write(root.join("fw/.secret"), "x").expect("dot file");
    std::fs::write(dir.path().join("outside.txt"), "outside").expect("outside");
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("outside.txt"), root.join("fw/out.txt"))
        .expect("symlink");
    (dir, root)
}

#[test]
fn small_and_large_files_carry_validators_and_answer_304() {
    let (_dir, root) = static_root();
    let server = Server::start(&root, &[]);
    for (path, len) in [
        ("/fw/130178/ip232.bin", 8192usize),
        ("/fw/big.bin", 200_000),
    ] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body.len(), len, "{path}");
        assert_eq!(r.body[..3], [0, 1, 2], "{path}");
        let etag = r.header("etag").expect("ETag").to_string();
        assert!(etag.starts_with('"'), "{etag}");
        let lm = r
            .header("last-modified")
            .expect("Last-Modified")
            .to_string();
        let again = http_request(server.addr(), "GET", path, &[("If-None-Match", &etag)], b"");
        assert_eq!(again.status, 304, "{path}");
        assert!(again.body.is_empty());
        let since = http_request(
            server.addr(),
            "GET",
            path,
            &[("If-Modified-Since", &lm)],
            b"",
        );
        assert_eq!(since.status, 304, "{path}");
        let other = http_request(
            server.addr(),
            "GET",
            path,
            &[("If-None-Match", "\"x\"")],
            b"",
        );
        assert_eq!(other.status, 200, "{path}");
        let head = http_request(server.addr(), "HEAD", path, &[], b"");
        assert_eq!(head.status, 200, "{path}");
        assert_eq!(
            head.header("content-length"),
            Some(len.to_string().as_str())
        );
        assert_eq!(head.header("etag"), Some(etag.as_str()), "{path}");
        assert!(head.body.is_empty());
    }
}

#[test]
fn ranges_work_on_small_and_large_files() {
    let (_dir, root) = static_root();
    let server = Server::start(&root, &[]);
    for path in ["/fw/130178/ip232.bin", "/fw/big.bin"] {
        let r = http_request(server.addr(), "GET", path, &[("Range", "bytes=10-19")], b"");
        assert_eq!(r.status, 206, "{path}");
        assert_eq!(r.body, (10u8..20).collect::<Vec<u8>>(), "{path}");
        assert!(
            r.header("content-range")
                .is_some_and(|v| v.starts_with("bytes 10-19/"))
        );
        let bad = http_request(
            server.addr(),
            "GET",
            path,
            &[("Range", "bytes=999999-")],
            b"",
        );
        assert_eq!(bad.status, 416, "{path}");
    }
}

#[test]
fn missing_dot_and_escaping_paths_are_not_found() {
    let (_dir, root) = static_root();
    let server = Server::start(&root, &[]);
    for path in [
        "/fw/none.bin",
        "/fw/.secret",
        "/fw/%2esecret",
        "/fw/../config/user-config.xml",
        "/fw/%2e%2e/config/user-config.xml",
        "/fw/out.txt",
        "/fw/130178",
    ] {
        let r = server.get(path);
        assert_ne!(r.status, 200, "{path}");
        assert!(!r.text().contains("outside"), "{path}");
        assert!(!r.text().contains("<config>"), "{path}");
    }
}

#[test]
fn a_changed_small_file_is_served_new() {
    let (_dir, root) = static_root();
    let server = Server::start(&root, &[]);
    assert_eq!(server.get("/fw/130178/ip232.bin").body.len(), 8192);
    std::fs::write(root.join("fw/130178/ip232.bin"), "new").expect("edit");
    let body = eventually(|| server.get("/fw/130178/ip232.bin").body, |b| b == b"new");
    assert_eq!(body, b"new");
}

#[test]
fn the_grace_period_ends_by_the_clock_without_another_change() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><times grace="1"/></config>"#,
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let server = Server::start(&root, &[]);
    assert_eq!(server.get(POLL).command_lines()[0], "config change A /x 1");
    // a snippet dated 4 s ahead: held back until 5 s from now, with no file change after this
    let b = root.join("scripts/update-ip232-default.txt");
    std::fs::write(&b, "config change B /y 1\n").expect("new snippet");
    std::fs::File::options()
        .write(true)
        .open(&b)
        .and_then(|f| f.set_modified(std::time::SystemTime::now() + Duration::from_secs(4)))
        .expect("mtime");
    let held = server.get(POLL).command_lines();
    assert!(
        !held.iter().any(|l| l == "config change B /y 1"),
        "{held:?}"
    );
    let cmds = poll_until(&server, |c| c.iter().any(|l| l == "config change B /y 1"));
    assert!(cmds.iter().any(|l| l == "config change B /y 1"), "{cmds:?}");
}
