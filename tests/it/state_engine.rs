//! The device state engine against the real server: bounds on what a device can make the
//! server keep, the compact index of many devices, write-behind with group commit, and what
//! survives an abrupt stop.

use crate::common::{Server, http_request, make_root};
use update_server::xml::Element;

const SN: &str = "00-90-33-30-00-af";

fn config(extra: &str) -> String {
    format!(
        r#"<config><master info=""/><status dir="status"/><backup dir="backup"/>{extra}</config>"#
    )
}

fn poll(sn: &str) -> String {
    format!("/update.php?type=IP232&sn={sn}&hwid=IP232-{sn}&ip=1.2.3.4")
}

/// Every state file of the root, parsed (panics on one that does not parse).
fn parsed_states(root: &std::path::Path) -> Vec<(String, Element)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root.join("status")).expect("status dir") {
        let entry = entry.expect("entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(sn) = name.strip_suffix(".xml") {
            let bytes = std::fs::read(entry.path()).expect("read");
            let el = Element::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            out.push((sn.to_string(), el));
        }
    }
    out
}

fn store(server: &Server) -> std::sync::Arc<update_server::state::StateStore> {
    let cfg = server.app.config.get().expect("config");
    server.app.states(&cfg).expect("state tracking on")
}

/// `PUT` whose answer is read while the body is still being sent (the server answers a body
/// over the limit early and closes).
fn put_while_reading(server: &Server, target: &str, body: Vec<u8>) -> crate::common::Response {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        server.addr(),
        body.len()
    );
    let mut w = s.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = w.write_all(head.as_bytes());
        let _ = w.write_all(&body);
    });
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let _ = sender.join();
    crate::common::parse_response(&raw).expect("an HTTP answer")
}

#[test]
fn a_16_mib_query_result_is_refused_and_nothing_kept() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(""), &[]);
    let server = Server::start(&root, &[]);
    assert_eq!(server.get(&poll(SN)).status, 200);
    let mut body = b"<info name=\"".to_vec();
    body.resize(16 * 1024 * 1024, b'x');
    body.extend_from_slice(b"\"/>");
    let r = put_while_reading(
        &server,
        &format!("/update.php?mode=query&sn={SN}&id=admin"),
        body,
    );
    server.flush();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text()
            .starts_with("# query result (server/@max-query) larger than 65536 bytes"),
        "{}",
        r.text()
    );
    let state = std::fs::read_to_string(root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(!state.contains("<queries"), "{state}");
    assert!(store(&server).index().get(SN).is_some());
    // a small one is stored
    let r = server.put(
        &format!("/update.php?mode=query&sn={SN}&id=admin"),
        br#"<info name="Desk"/>"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let state = std::fs::read_to_string(root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(state.contains(r#"<info name="Desk"/>"#), "{state}");
}

#[test]
fn many_devices_are_indexed_and_their_states_written() {
    const DEVICES: usize = 2000;
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(""), &[]);
    let server = Server::start(&root, &[]);
    for i in 0..DEVICES {
        let sn = format!(
            "00-90-33-{:02x}-{:02x}-{:02x}",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        );
        assert_eq!(server.get_unflushed(&poll(&sn)).status, 200);
    }
    server.flush();
    let s = store(&server);
    assert_eq!(s.index().len(), DEVICES);
    assert_eq!(parsed_states(&root).len(), DEVICES);
    assert!(s.index().cost() < DEVICES * 600, "{}", s.index().cost());
}

#[test]
fn a_device_polling_3000_times_keeps_a_bounded_log() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(""), &[]);
    let server = Server::start(&root, &[]);
    for _ in 0..3000 {
        assert_eq!(server.get_unflushed(&poll(SN)).status, 200);
    }
    server.flush();
    let states = parsed_states(&root);
    let (_, state) = states.iter().find(|(sn, _)| sn == SN).expect("state");
    let msgs = state.children_named("msgs").count();
    assert!(msgs > 0 && msgs <= 200, "{msgs} log entries");
}

#[test]
fn the_log_cap_is_configurable() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(r#"<server max-msgs="5"/>"#), &[]);
    let server = Server::start(&root, &[]);
    for _ in 0..20 {
        assert_eq!(server.get(&poll(SN)).status, 200);
    }
    let states = parsed_states(&root);
    let (_, state) = states.iter().find(|(sn, _)| sn == SN).expect("state");
    assert_eq!(state.children_named("msgs").count(), 5);
}

#[test]
fn a_pending_state_is_read_back_and_on_disk_after_flush_pending() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &config(r#"<server commit-delay="60000"/>"#),
        &[],
    );
    let server = Server::start(&root, &[]);
    assert_eq!(server.get_unflushed(&poll(SN)).status, 200);
    let s = store(&server);
    // read-your-writes before the file exists
    assert!(matches!(s.load(SN), update_server::state::Loaded::Ok(_)));
    server.app.flush_pending_blocking();
    let states = parsed_states(&root);
    assert!(states.iter().any(|(sn, _)| sn == SN), "written");
}

#[test]
fn states_are_whole_after_an_abrupt_stop_and_leftovers_are_removed() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(r#"<server commit-delay="1"/>"#), &[]);
    std::fs::create_dir_all(root.join("status")).expect("mkdir");
    std::fs::write(root.join(format!("status/.{SN}.xml.77.tmp")), "<sta").expect("tmp");
    let server = Server::start(&root, &[]);
    for i in 0..300 {
        let sn = format!("00-90-33-30-01-{:02x}", i & 255);
        assert_eq!(server.get_unflushed(&poll(&sn)).status, 200);
    }
    assert!(!root.join(format!("status/.{SN}.xml.77.tmp")).exists());
    server.kill();
    // every file there parses (some of the last polls may be lost)
    let states = parsed_states(&root);
    assert!(!states.is_empty());
}

#[test]
fn every_confirmed_upload_is_there_after_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &config(r#"<server commit-delay="60000"/>"#),
        &[],
    );
    let server = Server::start(&root, &[]);
    let r = http_request(
        server.addr(),
        "PUT",
        &format!("/update.php?mode=query&sn={SN}&id=admin"),
        &[],
        br#"<info name="Kept"/>"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http_request(
        server.addr(),
        "PUT",
        &format!("/update.php?mode=backup&sn={SN}&hwid=IP232-30-00-af"),
        &[],
        b"config change CMD0 /name kept\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    server.kill();
    let server = Server::start(&root, &[]);
    let state = std::fs::read_to_string(root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(state.contains(r#"<info name="Kept"/>"#), "{state}");
    let backups = std::fs::read_dir(root.join("backup/IP232-30-00-af"))
        .expect("backups")
        .count();
    assert!(backups >= 1);
    assert_eq!(server.get(&poll(SN)).status, 200);
    let state = std::fs::read_to_string(root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(state.contains(r#"<info name="Kept"/>"#), "{state}");
}
