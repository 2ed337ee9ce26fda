//! Bad input and concurrency against the real server: nothing panics, nothing is written
//! outside the root, no update of a device's state is lost.

use crate::common::{Server, http_request, make_root};
use std::io::Write;
use std::net::TcpListener;

const POLL: &str = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";

fn status_config(extra: &str) -> String {
    format!(r#"<config><master info=""/><status dir="status"/>{extra}</config>"#)
}

#[test]
fn concurrent_uploads_of_one_device_lose_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    let server = Server::start(&root, &[]);
    let addr = server.addr();
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let body = format!("<info n=\"{i}\"/>");
                let r = http_request(
                    addr,
                    "PUT",
                    &format!("/update.php?mode=query&sn=00-90-33-30-00-af&id=q{i}"),
                    &[],
                    body.as_bytes(),
                );
                assert_eq!(r.status, 200, "{}", r.text());
                let r = http_request(addr, "GET", POLL, &[], b"");
                assert_eq!(r.status, 200);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    server.flush();
    let state = std::fs::read_to_string(root.join("status/00-90-33-30-00-af.xml")).expect("state");
    for i in 0..16 {
        assert!(
            state.contains(&format!("<q{i} seen=")),
            "query q{i} lost:\n{state}"
        );
    }
    assert!(state.contains("realip=\"1.2.3.4\""));
}

#[test]
fn huge_and_odd_query_strings_do_not_hurt() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    let server = Server::start(&root, &[]);
    let long_value = "x".repeat(200_000);
    for target in [
        format!("{POLL}&foo={long_value}"),
        format!("/update.php?type=IP232&sn={}&hwid=a&ip=b", "a".repeat(5000)),
        "/update.php?%%%&=&&==&sn".to_string(),
        "/update.php?type=&sn=&hwid=&ip=".to_string(),
        "/update.php?mode=".to_string(),
        "/update.php?mode=%00".to_string(),
        "/update.php?type=IP232&sn=%FF%FE&hwid=x&ip=y".to_string(),
    ] {
        let r = http_request(server.addr(), "GET", &target, &[], b"");
        assert!(
            matches!(r.status, 200 | 400 | 414 | 431),
            "{target:.80}: {}",
            r.status
        );
    }
    // still serving
    assert_eq!(server.get(POLL).status, 200);
    let names: Vec<_> = std::fs::read_dir(&root)
        .expect("root")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| ["config", "scripts", "status"].contains(&n.to_string_lossy().as_ref())),
        "{names:?}"
    );
}

#[test]
fn a_corrupt_state_file_is_replaced_with_the_error_noted() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    std::fs::create_dir_all(root.join("status")).expect("mkdir");
    std::fs::write(
        root.join("status/00-90-33-30-00-af.xml"),
        "<state seen=\"1\"><device",
    )
    .expect("write");
    let server = Server::start(&root, &[]);
    assert_eq!(server.get(POLL).status, 200);
    let state = std::fs::read_to_string(root.join("status/00-90-33-30-00-af.xml")).expect("state");
    assert!(state.contains("error=\""), "{state}");
    assert!(
        state.contains("&lt;state seen"),
        "the old content is quoted: {state}"
    );
    assert!(state.contains("type=\"IP232\""), "{state}");
}

#[test]
fn a_hanging_master_device_is_waited_for_only_briefly() {
    // a master that accepts connections and never answers
    let master = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = master.local_addr().expect("addr").port();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in master.incoming().flatten() {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = format!(
        r#"<config><master info="http://127.0.0.1:{port}/CMD0/box_info.xml"/><status dir="status"/><server master-timeout="1"/></config>"#
    );
    let root = make_root(dir.path(), &cfg, &[]);
    let server = Server::start(&root, &[]);
    let r = server.get(POLL);
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(&format!(
            "cannot get PBX info: cannot access http://127.0.0.1:{port}/CMD0/box_info.xml"
        )),
        "{}",
        r.text()
    );
    assert!(
        r.text().ends_with(
            "# cannot get cached PBX info: cannot access cache/master-info.xml - exit\r\n"
        )
    );
}

#[test]
fn unreadable_snippets_are_named_and_the_poll_goes_on() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &status_config(""),
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    std::fs::create_dir(root.join("scripts/update-phone-default.txt"))
        .expect("a directory where a snippet is expected");
    let server = Server::start(&root, &[]);
    let r = server.get(POLL);
    assert!(
        r.text()
            .contains("scripts/update-phone-default.txt   (cannot read:"),
        "{}",
        r.text()
    );
    assert_eq!(r.command_lines()[0], "config change A /x 1");
}

#[test]
fn bodies_above_the_limit_get_413_and_store_nothing() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &status_config(r#"<backup dir="backup"/><server max-body="1000"/>"#),
        &[],
    );
    let server = Server::start(&root, &[]);
    let big = vec![b'a'; 5000];
    let r = server.put(
        "/update.php?mode=backup&hwid=IP232-30-00-af&sn=00-90-33-30-00-af",
        &big,
    );
    assert_eq!(r.status, 413);
    assert!(!root.join("backup").join("IP232-30-00-af").exists());
    let r = server.put(
        "/update.php?mode=backup&hwid=IP232-30-00-af&sn=00-90-33-30-00-af",
        b"config change A /x 1\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        root.join("backup/IP232-30-00-af/IP232-30-00-af.0.txt")
            .exists()
    );
}

#[test]
fn unknown_modes_and_ui_modes_answer_like_php() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    let server = Server::start(&root, &[]);
    assert_eq!(
        server.get("/update.php?mode=frob%0Airesetn").text(),
        "# unknown cmd=frob\\niresetn - exit\r\n"
    );
    assert_eq!(
        server.get("/update.php?mode=status").text(),
        "for user interface functions, call admin/admin.php instead"
    );
}

#[test]
fn firmware_files_support_range_requests() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    std::fs::create_dir_all(root.join("fw/130178")).expect("mkdir");
    std::fs::File::create(root.join("fw/130178/ip232.bin"))
        .and_then(|mut f| f.write_all(b"0123456789"))
        .expect("fw");
    let server = Server::start(&root, &[]);
    let r = http_request(
        server.addr(),
        "GET",
        "/fw/130178/ip232.bin",
        &[("Range", "bytes=2-4")],
        b"",
    );
    assert_eq!(r.status, 206);
    assert_eq!(r.body, b"234");
    assert_eq!(server.get("/fw/../config/user-config.xml").status, 404);
}

#[test]
fn the_migrate_redirect_carries_the_query() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &status_config(r#"<migrate url="https://new.example/update/update.php"/>"#),
        &[],
    );
    let server = Server::start(&root, &[]);
    let r = server.get("/update-migrate.php?type=IP232&env=a%20b");
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://new.example/update/update.php?type=IP232&env=a%20b")
    );
    // without all="true" update.php itself is not redirected
    assert_eq!(server.get(POLL).status, 200);
}

#[test]
fn the_snippet_hook_runs_over_http() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &status_config(r#"<snippethook exec="config/hook.sh" timeout="5"/>"#),
        &[("update-all-default.txt", "config change A /x 1\n")],
    );
    let hook = root.join("config/hook.sh");
    std::fs::write(&hook, "#!/bin/sh\ncat >/dev/null\necho \"pre config change CMD0 /name phone-$UPDATE_SERVER_SN\"\necho 'post config change B /y 2'\n").expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let server = Server::start(&root, &[]);
    let cmds = server.get(POLL).command_lines();
    assert_eq!(
        &cmds[..3],
        [
            "config change CMD0 /name phone-00-90-33-30-00-af",
            "config change A /x 1",
            "config change B /y 2"
        ]
    );
}

#[test]
fn a_silent_client_does_not_block_others_and_is_eventually_dropped() {
    use std::io::Read;
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &status_config(r#"<server header-timeout="2"/>"#),
        &[],
    );
    let server = Server::start(&root, &[]);
    // connects, sends half a request line, then nothing
    let mut silent = std::net::TcpStream::connect(server.addr()).expect("connect");
    silent.write_all(b"GET /update.php?type=IP").expect("write");
    assert_eq!(server.get(POLL).status, 200, "others are served meanwhile");
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .expect("timeout");
    let mut buf = Vec::new();
    // the server closes the connection (after its header timeout) rather than waiting forever
    let n = silent.read_to_end(&mut buf);
    assert!(
        n.is_ok(),
        "closed by the server, not by our 60 s read timeout: {n:?}"
    );
}

#[test]
fn static_directories_refuse_nul_dotfiles_and_symlinks_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &status_config(""), &[]);
    for d in ["fw", "web"] {
        std::fs::create_dir_all(root.join(d)).expect("dir");
        std::fs::write(root.join(d).join("ok.txt"), b"fine").expect("file");
        std::fs::write(root.join(d).join(".htpasswd"), b"secret").expect("file");
        #[cfg(unix)]
        std::os::unix::fs::symlink(root.join("outside.txt"), root.join(d).join("out"))
            .expect("link");
    }
    std::fs::write(root.join("outside.txt"), b"secret").expect("outside file");
    let server = Server::start(&root, &[]);
    for d in ["fw", "web"] {
        // (GET: the test client does not know that a HEAD answer has no body)
        let r = http_request(server.addr(), "GET", &format!("/{d}/%00"), &[], b"");
        assert!(matches!(r.status, 400 | 404), "GET /{d}/%00: {}", r.status);
        assert_eq!(
            server.get(&format!("/{d}/.htpasswd")).status,
            404,
            "{d} dotfile"
        );
        assert_eq!(
            server.get(&format!("/{d}/out")).status,
            404,
            "{d} symlink out"
        );
        let r = server.get(&format!("/{d}/ok.txt"));
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"fine"[..]),
            "{d}/ok.txt"
        );
    }
}
