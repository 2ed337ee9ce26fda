//! Device bodies of 16 MiB (issue 23, item 1): `mode=vardump` and a form POST to update.php
//! are answered with at most a few KiB, whatever they hold; a refused vardump is refused on
//! its arguments, before more than a small body is read.

use crate::common::{ADMIN_CONFIG, Server, http_request, make_root};

const SN: &str = "00-90-33-30-00-af";
/// The most an answer to these bodies may hold.
const ANSWER_BOUND: usize = 16 * 1024;
/// Just below the default `<server max-body>` of 16 MiB.
const BIG: usize = 16 * 1024 * 1024 - 4096;

fn server() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let server = Server::start(&root, &[]);
    (dir, server)
}

fn error_query(sn: &str) -> String {
    format!("/update.php?mode=vardump&sn={sn}&var=X509/REQUESTERROR&file=certs%2F{sn}-requesterror")
}

#[test]
fn a_16_mib_vardump_is_answered_with_a_bounded_prefix() {
    let (_dir, server) = server();
    for fill in [b'a', b'\r', b'\n'] {
        let mut body = b"X509/REQUESTERROR p ".to_vec();
        body.resize(BIG, fill);
        let r = server.put(&error_query(SN), &body);
        assert!(matches!(r.status, 200 | 400), "{}", r.status);
        assert!(
            r.body.len() < ANSWER_BOUND,
            "answer of {} bytes to a body of {fill:#x}",
            r.body.len()
        );
        assert!(
            r.text().contains("more bytes not shown"),
            "{:.300}",
            r.text()
        );
    }
}

#[test]
fn a_refused_16_mib_vardump_is_refused_on_its_arguments() {
    let (_dir, server) = server();
    let mut body = b"X509/REQUEST pb ".to_vec();
    body.resize(BIG, b'0');
    for (target, status) in [
        // another device's file
        (
            format!(
                "/update.php?mode=vardump&sn={SN}&var=X509/REQUEST&file=certs%2Fother.der&proc=var2bin"
            ),
            413,
        ),
        // PHP's own checks
        ("/update.php?mode=vardump&sn=x".to_string(), 200),
        (
            "/update.php?mode=vardump&sn=x&var=v&file=..%2Fetc%2Fpasswd".to_string(),
            200,
        ),
    ] {
        let r = early_answer(&server, &target, &body);
        assert_eq!(r.status, status, "{target}: {}", r.text());
        assert!(r.body.len() < 1024, "{target}: {} bytes", r.body.len());
        assert!(!r.text().contains("0000000000"), "{target}: body echoed");
    }
}

#[test]
fn a_16_mib_form_post_with_one_long_key_is_answered_briefly() {
    let (_dir, server) = server();
    let mut body = b"type=IP232&sn=00-90-33-30-00-af&".to_vec();
    body.resize(BIG, b'k');
    body.extend_from_slice(b"=1");
    let r = http_request(
        server.addr(),
        "POST",
        "/update.php",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    );
    assert_eq!(r.status, 400, "{:.300}", r.text());
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
    assert!(r.text().contains("too long"), "{}", r.text());
    // a long value too, and in the query string
    let target = format!(
        "/update.php?type=IP232&sn={SN}&phase={}",
        "p".repeat(100_000)
    );
    let r = http_request(server.addr(), "GET", &target, &[], b"");
    assert!(matches!(r.status, 400 | 414 | 431), "{}", r.status);
    assert!(r.body.len() < 1024, "answer of {} bytes", r.body.len());
}

#[test]
fn a_declared_body_beyond_the_limit_is_refused_unread() {
    let (_dir, server) = server();
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr()).expect("connect");
    let head = format!(
        "PUT {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        error_query(SN),
        64u64 * 1024 * 1024 * 1024
    );
    s.write_all(head.as_bytes()).expect("head");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let r = crate::common::parse_response(&raw).expect("answer without the body being sent");
    assert_eq!(r.status, 413, "{}", r.text());
}

/// PUTs `body` to `target` while reading the answer, which may come (and the connection
/// close) before the body is sent.
fn early_answer(server: &Server, target: &str, body: &[u8]) -> crate::common::Response {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    let mut w = s.try_clone().expect("clone");
    let body = body.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&body);
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if crate::common::parse_response(&raw).is_some_and(|r| {
            r.header("content-length")
                .and_then(|l| l.parse::<usize>().ok())
                .is_some_and(|l| r.body.len() >= l)
        }) {
            break;
        }
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    let _ = writer.join();
    crate::common::parse_response(&raw).expect("an answer")
}
