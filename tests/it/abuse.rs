//! Bounded under abuse (issue 23): what `/health` tells strangers, oversized snippet files,
//! the spare files after a stop, one address against the connection limit, and the admin's
//! way in during a login storm.

use crate::common::oneshot::{Admin, TOKEN};
use crate::common::{ADMIN_CONFIG, Server, http_request, make_root};

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// /health

#[tokio::test]
async fn health_tells_a_remote_client_the_status_only() {
    let admin = Admin::new();
    let r = admin.call("GET", "/health", &[], Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    // with the API token or an admin session: the checks
    let r = admin
        .call("GET", "/health", &[("authorization", TOKEN)], Vec::new())
        .await;
    assert!(
        r.json()["checks"]["state_dir"]["path"].is_string(),
        "{}",
        r.text()
    );
    let s = admin.login().await;
    let r = admin
        .call("GET", "/health", &[("cookie", &s.cookie)], Vec::new())
        .await;
    assert!(r.json()["checks"].is_object(), "{}", r.text());
    // a wrong token is no key
    let r = admin
        .call(
            "GET",
            "/health",
            &[("authorization", "Bearer nope")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn a_broken_configuration_is_no_strangers_business() {
    let admin = Admin::new();
    std::fs::write(
        admin.root.join("config/user-config.xml"),
        "<config><master secret-detail-of-the-parser",
    )
    .expect("break config");
    let r = crate::common::eventually(
        || futures_lite(admin.call("GET", "/health", &[], Vec::new())),
        |r| r.status == 503,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"status": "degraded"}));
    assert!(!r.text().contains("secret-detail"));
}

/// Runs a future to its end on a runtime of its own (from a thread outside any runtime).
fn futures_lite<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("thread")
    })
}

#[test]
fn health_relayed_by_a_proxy_on_this_machine_is_remote() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG.replace(
        "<master ",
        "<server trusted-proxies=\"127.0.0.1\"/><master ",
    );
    let root = make_root(dir.path(), &config, &[]);
    let server = Server::start(&root, &[]);
    let direct = server.get("/health");
    assert!(
        json(&direct.body)["checks"].is_object(),
        "{}",
        direct.text()
    );
    for header in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        let r = http_request(
            server.addr(),
            "GET",
            "/health",
            &[(header, "192.0.2.7")],
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r.body),
            serde_json::json!({"status": "ok"}),
            "{header}"
        );
        assert!(!r.text().contains(&root.display().to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// <server max-snippet>

#[test]
fn a_snippet_over_max_snippet_is_not_read_and_the_device_is_told() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = "config change BIG /x 1\n".repeat(100);
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><server max-snippet="1000"/></config>"#,
        &[
            ("update-all-default.txt", big.as_str()),
            ("update-phone-default.txt", "config change SMALL /x 1\n"),
        ],
    );
    let server = Server::start(&root, &[]);
    let r =
        server.get("/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("config change BIG"), "{text}");
    assert!(text.contains("config change SMALL /x 1"), "{text}");
    let told = text
        .lines()
        .find(|l| l.contains("update-all-default.txt") && l.contains("max-snippet"));
    assert!(told.is_some_and(|l| l.starts_with('#')), "{text}");
    assert!(
        server.log_text().contains(
            "update-all-default.txt not read: larger than <server max-snippet> (1000 bytes)"
        ),
        "{}",
        server.log_text()
    );
}

// ---------------------------------------------------------------------------------------------
// spare files after SIGTERM

/// The binary serving `root` on a free loopback port; killed when dropped.
struct Binary {
    child: std::process::Child,
    port: u16,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Binary {
    fn start(root: &std::path::Path) -> Binary {
        let port = crate::common::free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_update-server"))
            .args(["serve", "--http", &format!("127.0.0.1:{port}"), "--root"])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start");
        let b = Binary { child, port };
        let up =
            crate::common::eventually(|| std::net::TcpStream::connect(b.addr()).is_ok(), |up| *up);
        assert!(up, "the binary does not listen");
        b
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

fn temporary_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("status dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[test]
fn sigterm_leaves_status_with_state_files_only() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/><server commit-delay="500"/></config>"#,
        &[],
    );
    let mut server = Binary::start(&root);
    let addr = server.addr();
    let polls: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..125 {
                    let target = format!(
                        "/update.php?type=IP232&sn=00-90-33-{t:02x}-00-{i:02x}&hwid=x&ip=1.2.3.4"
                    );
                    assert_eq!(http_request(addr, "GET", &target, &[], b"").status, 200);
                }
            })
        })
        .collect();
    for p in polls {
        p.join().expect("polls");
    }
    // a batch of 1000 files is written into spare files, which stay for a while
    let status = root.join("status");
    let seen = crate::common::eventually(|| temporary_files(&status), |t| !t.is_empty());
    assert!(
        seen.iter().any(|n| n.starts_with(".spare.")),
        "no spare files to remove: {seen:?}"
    );
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let exit =
        crate::common::eventually(|| server.child.try_wait().expect("wait"), |s| s.is_some());
    assert!(exit.is_some_and(|s| s.success()), "{exit:?}");
    assert_eq!(temporary_files(&status), Vec::<String>::new());
    let names: Vec<String> = std::fs::read_dir(&status)
        .expect("status")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let states = names.iter().filter(|n| n.ends_with(".xml")).count();
    assert_eq!(states, 1000, "state files");
    let others: Vec<&String> = names
        .iter()
        .filter(|n| !n.ends_with(".xml") && *n != "lastcleanup")
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

// ---------------------------------------------------------------------------------------------
// connections per address

/// A connection to `to` from the loopback address `from` (127.0.0.x).
fn connect_from(from: [u8; 4], to: std::net::SocketAddr) -> std::net::TcpStream {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            let s = tokio::net::TcpSocket::new_v4().expect("socket");
            s.bind(std::net::SocketAddr::from((from, 0))).expect("bind");
            let stream = s.connect(to).await.expect("connect");
            let std = stream.into_std().expect("std");
            std.set_nonblocking(false).expect("blocking");
            std.set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .expect("timeout");
            std
        })
}

/// Whether the server closes `s` without an answer (EOF or reset within 10 s).
fn closed_by_server(s: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

#[test]
fn one_address_at_its_limit_does_not_keep_others_out() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/><server max-per-address="8"/></config>"#,
        &[],
    );
    let server = Server::start(&root, &[]);
    let addr = server.addr();
    // eight idle connections from 127.0.0.3: its share
    let idle: Vec<_> = (0..8).map(|_| connect_from([127, 0, 0, 3], addr)).collect();
    // the next ones from there are closed at once (once the eight are accepted)
    let closed = crate::common::eventually(
        || closed_by_server(&mut connect_from([127, 0, 0, 3], addr)),
        |c| *c,
    );
    assert!(closed, "a ninth connection from one address was kept");
    // another address is answered meanwhile
    let mut other = connect_from([127, 0, 0, 2], addr);
    let poll = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=x&ip=1.2.3.4";
    let r = crate::common::exchange(&mut other, addr, "GET", poll, &[], b"").expect("poll");
    assert_eq!(r.status, 200);
    let log = server.log_text();
    assert_eq!(
        log.matches("127.0.0.3 holds 8 connections (<server max-per-address>)")
            .count(),
        1,
        "logged once a minute:\n{log}"
    );
    let m = server.get("/metrics").text();
    assert!(
        m.lines().any(|l| l
            .starts_with("update_server_connections_refused_total{reason=\"per_address\"} ")
            && !l.ends_with(" 0")),
        "{m}"
    );
    let listener = format!("update_server_connections_open{{listener=\"{addr}\"}} ");
    let open = m
        .lines()
        .find_map(|l| l.strip_prefix(&listener))
        .and_then(|v| v.trim().parse::<i64>().ok());
    assert!(open.is_some_and(|n| n >= 9), "{open:?}\n{m}");
    drop(idle);
    // the operator's other series: the state engine and the process
    server.flush();
    let m = server.get("/metrics").text();
    for series in [
        "update_server_devices_indexed 1",
        "update_server_state_writes_pending 0",
        "update_server_state_cache_bytes ",
        "update_server_state_batch_seconds_count ",
    ] {
        assert!(m.lines().any(|l| l.starts_with(series)), "{series}:\n{m}");
    }
    if cfg!(target_os = "linux") {
        for series in [
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_cpu_seconds_total ",
            "process_start_time_seconds ",
        ] {
            assert!(m.lines().any(|l| l.starts_with(series)), "{series}:\n{m}");
        }
    }
}

/// The value of `series` (the whole name with labels, as printed) in the text of `/metrics`.
fn series_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn two_servers_in_one_process_count_apart() {
    let config =
        r#"<config><master info=""/><status dir="status"/><server max-per-address="2"/></config>"#;
    let (da, db) = (
        tempfile::tempdir().expect("tmp"),
        tempfile::tempdir().expect("tmp"),
    );
    let a = Server::start(&make_root(da.path(), config, &[]), &[]);
    let b = Server::start(&make_root(db.path(), config, &[]), &[]);
    // A: two idle connections from 127.0.0.3, the next one refused by A's limit
    let idle: Vec<_> = (0..2)
        .map(|_| connect_from([127, 0, 0, 3], a.addr()))
        .collect();
    let closed = crate::common::eventually(
        || closed_by_server(&mut connect_from([127, 0, 0, 3], a.addr())),
        |c| *c,
    );
    assert!(closed, "a third connection from one address was kept");
    // A: a poll, its state written by A's writer
    let poll = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=x&ip=1.2.3.4";
    assert_eq!(a.get(poll).status, 200);
    let (ma, mb) = (a.get("/metrics").text(), b.get("/metrics").text());
    let refused = "update_server_connections_refused_total{reason=\"per_address\"}";
    assert!(series_value(&ma, refused).is_some_and(|n| n >= 1.0), "{ma}");
    assert!(series_value(&mb, refused).is_none_or(|n| n == 0.0), "{mb}");
    let open_on = |s: &Server| {
        format!(
            "update_server_connections_open{{listener=\"{}\"}}",
            s.addr()
        )
    };
    assert!(
        series_value(&ma, &open_on(&a)).is_some_and(|n| n >= 2.0),
        "{ma}"
    );
    assert_eq!(
        series_value(&mb, &open_on(&a)),
        None,
        "A's listener in B:\n{mb}"
    );
    assert_eq!(
        series_value(&ma, &open_on(&b)),
        None,
        "B's listener in A:\n{ma}"
    );
    let batches = "update_server_state_batch_seconds_count";
    assert!(series_value(&ma, batches).is_some_and(|n| n >= 1.0), "{ma}");
    assert_eq!(series_value(&mb, batches), Some(0.0), "{mb}");
    drop(idle);
}

// ---------------------------------------------------------------------------------------------
// the admin's way in

fn login_from(from: [u8; 4], addr: std::net::SocketAddr, password: &str) -> u16 {
    let mut s = connect_from(from, addr);
    let form = format!("action=login&user=admin&password={password}");
    crate::common::exchange(
        &mut s,
        addr,
        "POST",
        "/admin/admin.php",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .map_or(0, |r| r.status)
}

#[test]
fn a_login_storm_from_many_addresses_does_not_keep_the_admin_out() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let server = Server::start(&root, &[]);
    let addr = server.addr();
    let stop = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicUsize::new(0));
    let storm: Vec<_> = (10..22u8)
        .map(|n| {
            let (stop, failed) = (stop.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if login_from([127, 0, 0, n], addr, "wrong") == 403 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
        })
        .collect();
    // as many wrong passwords as the account's limit (30 a minute)
    let many = crate::common::eventually(|| failed.load(Ordering::Relaxed), |n| *n >= 30);
    assert!(many >= 30, "only {many} failures");
    // the right password from an address never seen: in at the first attempt
    let status = login_from([127, 0, 0, 50], addr, "secret");
    stop.store(true, Ordering::Relaxed);
    for t in storm {
        t.join().expect("storm");
    }
    assert_eq!(status, 303, "the admin was kept out");
}
