//! Slow and silent clients (`<server header-timeout>`) and the connection cap
//! (`<server max-connections>`): a connection that sends nothing, trickles its headers or its
//! body, or idles after an answer is closed by the server, on plain and TLS listeners and for
//! HTTP/2. The server here has `header-timeout="1"`; each test gives the server at most 20 s
//! to close, so a server that never closes fails the test instead of hanging it.

use crate::common::tls::{ClientAuth, tls_stream};
use crate::common::{Server, Setup, make_root};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const CONFIG: &str =
    r#"<config><master info=""/><status dir="status"/><server header-timeout="1"/></config>"#;
const GIVE_UP: Duration = Duration::from_secs(20);

fn server(dir: &std::path::Path, https: bool) -> (Server, u16) {
    let root = make_root(dir, CONFIG, &[]);
    let setup = Setup {
        https,
        ..Setup::default()
    };
    let (s, ports) = Server::start_with(&root, setup, |_| {});
    (s, ports.https)
}

/// Sends `feed` one byte every 100 ms (then nothing) and reads; true once the server has
/// closed the connection (end of stream, reset, or a failed write).
fn closed_by_server<S: Read + Write>(s: &mut S, feed: &[u8]) -> bool {
    let start = Instant::now();
    let mut fed = 0;
    let mut buf = [0u8; 4096];
    while start.elapsed() < GIVE_UP {
        if fed < feed.len() {
            if s.write_all(&feed[fed..fed + 1])
                .and_then(|()| s.flush())
                .is_err()
            {
                return true;
            }
            fed += 1;
        }
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

fn plain(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    s
}

/// A body that never ends at 10 bytes per second.
fn trickled_body() -> Vec<u8> {
    let mut r = b"PUT /update.php?mode=query&sn=00-90-33-30-00-af&id=q HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n".to_vec();
    r.extend(std::iter::repeat_n(b'x', 100_000));
    r
}

#[test]
fn silent_and_trickling_plain_connections_are_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, _) = server(dir.path(), false);
    assert!(closed_by_server(&mut plain(&server), b""), "silent");
    let headers: Vec<u8> = b"GET /update.php HTTP/1.1\r\nHost: x\r\n"
        .iter()
        .copied()
        .cycle()
        .take(100_000)
        .collect();
    assert!(
        closed_by_server(&mut plain(&server), &headers),
        "headers trickle"
    );
    assert!(
        closed_by_server(&mut plain(&server), &trickled_body()),
        "body trickle"
    );
    // HTTP/2 with prior knowledge: the preface, then nothing
    let mut h2 = plain(&server);
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .expect("preface");
    assert!(closed_by_server(&mut h2, b""), "idle HTTP/2");
    // still serving
    assert_eq!(server.get("/update.php").status, 200);
}

#[test]
fn an_idle_keep_alive_connection_is_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, _) = server(dir.path(), false);
    let mut s = plain(&server);
    s.write_all(b"GET /update.php HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) => panic!("closed before answering"),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    assert!(
        answer.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(closed_by_server(&mut s, b""), "idle keep-alive");
}

#[test]
fn a_client_that_stops_taking_a_download_is_given_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let (server, _) = server(dir.path(), false);
    // far more than the socket buffers of both ends hold
    let size = 96 * 1024 * 1024;
    std::fs::create_dir_all(dir.path().join("root/fw")).expect("fw");
    let big = std::fs::File::create(dir.path().join("root/fw/big.bin")).expect("big");
    big.set_len(size).expect("size");
    drop(big);
    let mut s = plain(&server);
    s.write_all(b"GET /fw/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("request");
    // take nothing for longer than header-timeout, then everything there is
    std::thread::sleep(Duration::from_secs(4));
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let start = Instant::now();
    let mut got = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => got += n as u64,
            // open, but nothing more comes
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break false;
            }
            // reset
            Err(_) => break true,
        }
        if start.elapsed() > GIVE_UP {
            break false;
        }
    };
    assert!(closed, "still sending after {got} bytes");
    assert!(got < size, "the whole file came: {got} bytes");
}

#[test]
fn silent_and_trickling_tls_connections_are_closed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (_server, https) = server(dir.path(), true);
    let addr = crate::common::tls::local(https);
    let open = || {
        let s = tls_stream(addr, ClientAuth::None).expect("handshake");
        s.sock
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        s
    };
    assert!(
        closed_by_server(&mut open(), b""),
        "silent after the handshake"
    );
    assert!(
        closed_by_server(&mut open(), &trickled_body()),
        "body trickle"
    );
}
