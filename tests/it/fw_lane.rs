//! The firmware fast lane of plain HTTP connections, on one kept-alive connection: simple
//! downloads (from memory and with `sendfile`), pipelined requests, `HEAD`, and the hand-over
//! to the router at the first other request (a range, a poll, a refused path), with the bytes
//! already read; the firmware log line and the metrics of a download the lane answered.

use crate::common::{Response, Server, make_root, parse_head_response, parse_response};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const POLL: &str = "/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";

fn small() -> Vec<u8> {
    (0..8192u32).map(|i| (i % 251) as u8).collect()
}

/// Larger than the memory copy's limit (256 KiB): sent with `sendfile`.
fn big() -> Vec<u8> {
    (0..3_000_000u32).map(|i| (i % 253) as u8).collect()
}

fn lane_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), r#"<config><master info=""/></config>"#, &[]);
    std::fs::create_dir_all(root.join("fw/130178")).expect("fw");
    std::fs::write(root.join("fw/130178/ip232.bin"), small()).expect("small");
    std::fs::write(root.join("fw/big.bin"), big()).expect("big");
    (dir, root)
}

/// A kept-alive connection reading one answer at a time.
struct Conn {
    s: TcpStream,
    /// Bytes read past the last answer.
    extra: Vec<u8>,
}

impl Conn {
    fn open(server: &Server) -> Conn {
        let s = TcpStream::connect(server.addr()).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Conn {
            s,
            extra: Vec::new(),
        }
    }

    fn send(&mut self, raw: &str) {
        self.s.write_all(raw.as_bytes()).expect("send");
    }

    /// Reads one answer (`Content-Length` framed; none for `HEAD`).
    fn answer(&mut self, to_head: bool) -> Response {
        let mut raw = std::mem::take(&mut self.extra);
        let mut chunk = vec![0u8; 64 * 1024];
        let head_end = loop {
            if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "closed before an answer: {raw:?}");
            raw.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_lowercase();
        let len: usize = head
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().expect("length"));
        let want = head_end + if to_head { 0 } else { len };
        while raw.len() < want {
            let n = self.s.read(&mut chunk).expect("read");
            assert!(n > 0, "closed in a body");
            raw.extend_from_slice(&chunk[..n]);
        }
        self.extra = raw.split_off(want);
        if to_head {
            parse_head_response(&raw).expect("an answer")
        } else {
            parse_response(&raw).expect("an answer")
        }
    }

    /// True when the server closed the connection (nothing more to read).
    fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        self.extra.is_empty() && matches!(self.s.read(&mut b), Ok(0))
    }
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[test]
fn one_connection_serves_downloads_then_hands_over_to_the_router() {
    let (_dir, root) = lane_root();
    let server = Server::start(&root, &[]);
    let mut c = Conn::open(&server);
    for (path, body) in [
        ("/fw/130178/ip232.bin", small()),
        ("/fw/big.bin", big()),
        ("/fw/130178/ip232.bin?sn=x", small()),
    ] {
        c.send(&get(path));
        let r = c.answer(false);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body == body, "{path}: {} bytes", r.body.len());
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert!(r.header("etag").is_some_and(|e| e.starts_with('"')));
        assert!(r.header("last-modified").is_some() && r.header("date").is_some());
    }
    // pipelined: two requests in one write, two answers in order
    c.send(&format!(
        "HEAD /fw/big.bin HTTP/1.1\r\nHost: x\r\n\r\n{}",
        get("/fw/130178/ip232.bin")
    ));
    let head = c.answer(true);
    assert_eq!(head.header("content-length"), Some("3000000"));
    assert!(c.answer(false).body == small());
    // a range is the router's: the connection goes on through it
    c.send("GET /fw/big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=10-19\r\n\r\n");
    let r = c.answer(false);
    assert_eq!(r.status, 206);
    assert!(r.body == big()[10..20]);
    c.send(&get(POLL));
    let poll = c.answer(false);
    assert_eq!(poll.status, 200);
    assert!(poll.text().contains("# phase: update"), "{}", poll.text());
    c.send(&get("/fw/130178/ip232.bin"));
    assert!(c.answer(false).body == small(), "served by the router now");
}

#[test]
fn a_refused_path_and_a_request_in_pieces_reach_the_right_answer() {
    let (_dir, root) = lane_root();
    let server = Server::start(&root, &[]);
    let mut c = Conn::open(&server);
    // a head sent in two pieces is waited for
    c.send("GET /fw/130178/ip2");
    std::thread::sleep(Duration::from_millis(50));
    c.send("32.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(c.answer(false).body == small());
    c.send(&get("/fw/none.bin"));
    assert_eq!(c.answer(false).status, 404);
    server.log_line("not found: /fw/none.bin");
    c.send(&get("/fw/%2e%2e/config/user-config.xml"));
    assert_eq!(c.answer(false).status, 404);
    let mut c = Conn::open(&server);
    c.send("GET /fw/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.answer(false);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(r.body == big());
    assert!(c.closed(), "closed after Connection: close");
}

#[test]
fn lane_downloads_are_logged_with_the_pollers_serial_and_counted() {
    let (_dir, root) = lane_root();
    // the route label of the downloads carries the prefix
    let server = Server::start(&root, &["--prefix", "/counted"]);
    assert_eq!(server.get(&format!("/counted{POLL}")).status, 200);
    let mut c = Conn::open(&server);
    c.send(&get("/counted/fw/big.bin"));
    assert_eq!(c.answer(false).body.len(), 3_000_000);
    c.send(&get("/counted/fw/130178/ip232.bin?sn=given"));
    assert_eq!(c.answer(false).body.len(), 8192);
    let line = server.log_line("firmware download /counted/fw/big.bin");
    assert!(line.contains("sn=00-90-33-30-00-af"), "{line}");
    assert!(line.contains("ip=127.0.0.1"), "{line}");
    assert!(line.contains("bytes=3000000"), "{line}");
    let line = server.log_line("firmware download /counted/fw/130178/ip232.bin");
    assert!(
        line.contains("sn=given") && line.contains("bytes=8192"),
        "{line}"
    );
    let metrics = server.get("/metrics").text();
    let counted = metrics
        .lines()
        .find(|l| {
            l.starts_with("update_server_http_requests_total{")
                && l.contains("route=\"/counted/fw/*\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("no /counted/fw/* count: {metrics}"));
    assert!(counted.ends_with(" 2"), "{counted}");
}
