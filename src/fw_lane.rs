//! The fast lane of plain HTTP connections: simple firmware downloads answered straight from
//! the connection, without hyper and the router.
//!
//! A request is simple when it is `GET` or `HEAD` of a path below `PREFIX/fw/`, HTTP/1.1,
//! without a body, a range, a conditional header (`If-…`), `Expect` or an upgrade, and the
//! path is served ([`StaticDir`]'s checks and cache). The head is parsed with `httparse`; a
//! file kept in memory is written with one `writev`, a larger one with `sendfile` (the kernel
//! copies from the page cache: no read into the server; Linux only, elsewhere the router
//! sends the larger files). A file cut short while it is sent
//! ends the connection, as any body error does.
//!
//! The first request that is anything else hands the connection, with the bytes already
//! read, to hyper and the router for good ([`Rewind`]): they answer ranges, `304`, refusals
//! and every other URL exactly as before. The metrics and the firmware log line are the
//! router's ([`crate::request_log::firmware_answered`]). The graceful stop closes an idle
//! connection at once and lets an answer in progress finish (within the grace time). A
//! client that takes no data for `<server header-timeout>` while an answer is written is
//! given up, as the router's connections are.

use crate::conn::{ConnMeta, Serving};
use crate::conn_guard::Watched;
use crate::static_files::{Entry, StaticDir};
use bytes::{Buf, Bytes, BytesMut};
use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Longest request head the lane waits for before it leaves the connection to hyper.
pub const MAX_HEAD: usize = 16 * 1024;
/// Most headers of a request the lane answers.
const MAX_HEADERS: usize = 32;
/// Bytes per `sendfile` call.
#[cfg(target_os = "linux")]
const SEND_CHUNK: usize = 4 * 1024 * 1024;
/// Most bytes a file answer leaves queued in the socket and not yet sent (`TCP_NOTSENT_LOWAT`).
///
/// Without it, `sendfile` fills the whole send buffer (4 MiB) ahead of the peer's window. The
/// peer then measures a window's worth arriving in microseconds, its receive window stops
/// growing, and the queued data is pushed out from the peer's ACKs, on the peer's CPU. On
/// loopback with 8 connections this took 20 MB downloads from 0.6× to 1.6× lighttpd's
/// throughput (which queues 256 KiB per round of its event loop).
#[cfg(target_os = "linux")]
const NOT_SENT_LOW_WATER: u32 = 16 * 1024;

/// Headers that make a request one for the router.
const ROUTER_HEADERS: [&str; 9] = [
    "transfer-encoding",
    "range",
    "if-range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "expect",
    "upgrade",
];

/// The firmware directory as the lane serves it.
pub struct Lane {
    /// `PREFIX/fw`: the paths the lane answers start with it and `/`.
    base: String,
    /// The metrics route of the files (`PREFIX/fw/*`).
    route: String,
    files: Arc<StaticDir>,
    /// The server's counters and address table (the request log's).
    metrics: Arc<crate::metrics::Metrics>,
    origins: Arc<crate::origins::Origins>,
}

impl Lane {
    /// The lane of `app`'s `fw/` directory (sharing its cache with the router).
    pub fn new(app: &crate::app::App) -> Lane {
        Lane {
            base: format!("{}/fw", app.prefix),
            route: format!("{}/fw/*", app.prefix),
            files: app.firmware.clone(),
            metrics: app.metrics.clone(),
            origins: app.origins.clone(),
        }
    }
}

/// A request the lane answers itself.
#[derive(Debug, PartialEq, Eq)]
struct Simple<'a> {
    /// `HEAD` (headers only).
    head: bool,
    /// The whole path, without the query.
    path: &'a str,
    /// The path below `PREFIX/fw` (starting with `/`).
    file: &'a str,
    query: &'a str,
    /// `Connection: close`.
    close: bool,
    forwarded_for: Option<&'a str>,
}

/// What the bytes read so far are.
#[derive(Debug, PartialEq, Eq)]
enum Parsed<'a> {
    /// Not a whole head yet.
    Partial,
    /// A simple request whose head is this many bytes long.
    Simple(Simple<'a>, usize),
    /// Anything else: the router's.
    Router,
}

/// What `buf` starts with, for the lane of `base`.
fn classify<'a>(buf: &'a [u8], base: &str) -> Parsed<'a> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Router,
    };
    let head = match req.method {
        Some("GET") => false,
        Some("HEAD") => true,
        _ => return Parsed::Router,
    };
    let (Some(target), Some(1)) = (req.path, req.version) else {
        return Parsed::Router;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let Some(file) = path.strip_prefix(base).filter(|f| f.starts_with('/')) else {
        return Parsed::Router;
    };
    let mut simple = Simple {
        head,
        path,
        file,
        query,
        close: false,
        forwarded_for: None,
    };
    for h in req.headers.iter() {
        let name = h.name;
        if ROUTER_HEADERS.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            return Parsed::Router;
        }
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Parsed::Router;
        };
        if name.eq_ignore_ascii_case("content-length") && value.trim() != "0" {
            return Parsed::Router;
        }
        if name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("upgrade") {
                    return Parsed::Router;
                }
                simple.close |= token.eq_ignore_ascii_case("close");
            }
        }
        if name.eq_ignore_ascii_case("x-forwarded-for") && simple.forwarded_for.is_none() {
            simple.forwarded_for = Some(value);
        }
    }
    Parsed::Simple(simple, len)
}

/// Accepts plain HTTP connections on `listener` forever, each bounded by `serving.limits`
/// and served with the fast lane `lane` in front of the router.
pub async fn serve_plain(listener: tokio::net::TcpListener, serving: Serving, lane: Arc<Lane>) {
    loop {
        let (stream, peer, local, slot) = crate::conn::accept(&listener, &serving.limits).await;
        let io = serving.limits.watch(stream);
        let (serving, lane) = (serving.clone(), lane.clone());
        tokio::spawn(async move {
            serve(io, crate::conn::plain_meta(peer, local), serving, lane).await;
            drop(slot);
        });
    }
}

/// Serves a plain HTTP connection: simple firmware requests here, from the first other
/// request on everything through hyper and the router.
pub async fn serve(mut io: Watched<TcpStream>, meta: ConnMeta, serving: Serving, lane: Arc<Lane>) {
    let Some(watcher) = serving.tracker.watcher() else {
        return;
    };
    let mut stopping = serving.tracker.stopping();
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let (req, len) = match classify(&buf, &lane.base) {
            Parsed::Simple(req, len) => (req, len),
            Parsed::Router => break,
            Parsed::Partial => {
                let idle = buf.is_empty();
                if idle && *stopping.borrow() {
                    return;
                }
                let read = tokio::select! {
                    r = io.read_buf(&mut buf) => r,
                    () = stop_begun(&mut stopping), if idle => return,
                };
                match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        let started = Instant::now();
        let Ok(entry) = lane.files.entry(req.file).await else {
            // refused or missing: the router answers and logs it
            break;
        };
        let Some(content) = Content::of(&entry).await else {
            // gone since it was cached: the router answers (404) and logs it
            break;
        };
        let stall = serving.limits.header_timeout;
        let sent = answer(&mut io, (&req, stall), &entry, content).await;
        let ip = crate::request_log::device_ip_of(&meta, req.forwarded_for);
        let outcome = (sent.bytes, sent.result.is_ok());
        let (path, query) = (req.path, req.query);
        let elapsed = started.elapsed();
        let counts = (&*lane.metrics, &*lane.origins);
        crate::request_log::firmware_answered(
            counts,
            &lane.route,
            (path, query),
            &ip,
            elapsed,
            outcome,
        );
        if sent.result.is_err() || req.close || *stopping.borrow() {
            let _ = io.shutdown().await;
            return;
        }
        buf.advance(len);
    }
    let io = Rewind {
        pre: buf.freeze(),
        io,
    };
    crate::conn::serve_watched(io, meta, serving, watcher).await;
}

/// Resolves when the stop begins (never when the tracker is gone).
async fn stop_begun(rx: &mut tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// How an answer went: body bytes written and whether it was complete.
struct Sent {
    bytes: u64,
    result: io::Result<()>,
}

/// What an answer sends: the memory copy of a small file, or (Linux: `sendfile`) the opened
/// larger file.
enum Content<'a> {
    Memory(&'a Bytes),
    #[cfg(target_os = "linux")]
    File(std::fs::File, std::fs::Metadata),
}

impl<'a> Content<'a> {
    /// The content of `e`; `None` when its file cannot be opened (any more), and elsewhere
    /// than on Linux for a file not kept in memory: the router sends it.
    async fn of(e: &'a Entry) -> Option<Content<'a>> {
        if let Some(body) = &e.body {
            return Some(Content::Memory(body));
        }
        #[cfg(not(target_os = "linux"))]
        return None;
        #[cfg(target_os = "linux")]
        Content::open(e).await
    }

    #[cfg(target_os = "linux")]
    async fn open(e: &Entry) -> Option<Content<'a>> {
        let real = e.real.clone();
        let file = crate::app::blocking(move || std::fs::File::open(real))
            .await?
            .ok()?;
        let meta = file.metadata().ok()?;
        Some(Content::File(file, meta))
    }
}

/// Writes the `200` answer of `req` for `e`; a client that takes nothing for `stall` is
/// given up (`<server header-timeout>`).
async fn answer(
    io: &mut Watched<TcpStream>,
    (req, stall): (&Simple<'_>, std::time::Duration),
    e: &Entry,
    content: Content<'_>,
) -> Sent {
    match content {
        Content::Memory(body) => {
            let head = head_of(e, None, body.len() as u64, req.close);
            let body: &[u8] = if req.head { &[] } else { body };
            let result = write_both(io, &head, body, stall).await;
            let bytes = if result.is_ok() { body.len() as u64 } else { 0 };
            Sent { bytes, result }
        }
        #[cfg(target_os = "linux")]
        Content::File(file, meta) => answer_file(io, (req, stall), e, (file, meta)).await,
    }
}

/// The `200` answer of a file not kept in memory, its body sent with `sendfile`.
#[cfg(target_os = "linux")]
async fn answer_file(
    io: &mut Watched<TcpStream>,
    (req, stall): (&Simple<'_>, std::time::Duration),
    e: &Entry,
    (file, meta): (std::fs::File, std::fs::Metadata),
) -> Sent {
    let len = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let head = head_of(e, Some(mtime), len, req.close);
    if let Err(result) = write_both(io, &head, &[], stall).await {
        return Sent {
            bytes: 0,
            result: Err(result),
        };
    }
    let mut bytes = 0;
    let result = if req.head {
        Ok(())
    } else {
        send_file(io, (&file, len), stall, &mut bytes).await
    };
    Sent { bytes, result }
}

/// The head of a `200` answer for `e` of `len` bytes; `mtime` is the opened file's (its
/// validators then come from it, not from the cache).
fn head_of(e: &Entry, mtime: Option<SystemTime>, len: u64, close: bool) -> Vec<u8> {
    let mut h = Vec::with_capacity(320);
    h.extend_from_slice(b"HTTP/1.1 200 OK\r\ncontent-type: ");
    h.extend_from_slice(e.content_type.as_bytes());
    h.extend_from_slice(b"\r\ncontent-length: ");
    h.extend_from_slice(len.to_string().as_bytes());
    h.extend_from_slice(b"\r\naccept-ranges: bytes\r\netag: ");
    match mtime {
        Some(t) => {
            h.extend_from_slice(crate::static_files::etag_of(len, t).as_bytes());
            h.extend_from_slice(b"\r\nlast-modified: ");
            h.extend_from_slice(httpdate::fmt_http_date(t).as_bytes());
        }
        None => {
            h.extend_from_slice(e.etag.as_bytes());
            h.extend_from_slice(b"\r\nlast-modified: ");
            h.extend_from_slice(e.last_modified.as_bytes());
        }
    }
    h.extend_from_slice(b"\r\ndate: ");
    with_date(|d| h.extend_from_slice(d.as_bytes()));
    if close {
        h.extend_from_slice(b"\r\nconnection: close");
    }
    h.extend_from_slice(b"\r\n\r\n");
    h
}

thread_local! {
    /// The `Date` value of the current second on this thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Calls `f` with the `Date` header value of now (formatted once a second per thread).
fn with_date<R>(f: impl FnOnce(&str) -> R) -> R {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        f(&d.1)
    })
}

/// `what`, unless the client takes nothing for `stall`.
async fn within<T>(
    stall: std::time::Duration,
    what: impl Future<Output = io::Result<T>>,
) -> io::Result<T> {
    tokio::time::timeout(stall, what).await.unwrap_or_else(|_| {
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "client takes no data (<server header-timeout>)",
        ))
    })
}

/// Writes `head` then `body`, as few system calls as the socket allows.
async fn write_both(
    io: &mut Watched<TcpStream>,
    head: &[u8],
    body: &[u8],
    stall: std::time::Duration,
) -> io::Result<()> {
    let (mut h, mut b) = (head, body);
    while !h.is_empty() || !b.is_empty() {
        let n = within(
            stall,
            io.write_vectored(&[IoSlice::new(h), IoSlice::new(b)]),
        )
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_head = n.min(h.len());
        h = &h[from_head..];
        b = &b[n - from_head..];
    }
    Ok(())
}

/// Sends `len` bytes of `file` with `sendfile`, counting them in `sent`.
#[cfg(target_os = "linux")]
async fn send_file(
    io: &mut Watched<TcpStream>,
    (file, len): (&std::fs::File, u64),
    stall: std::time::Duration,
    sent: &mut u64,
) -> io::Result<()> {
    // best effort: without it the file is still sent, only slower
    let _ = socket2::SockRef::from(io.get_ref()).set_tcp_notsent_lowat(NOT_SENT_LOW_WATER);
    let mut offset = 0u64;
    while offset < len {
        let sock = io.get_ref();
        within(stall, sock.writable()).await?;
        let want = usize::try_from(len - offset).map_or(SEND_CHUNK, |n| n.min(SEND_CHUNK));
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, file, Some(&mut offset), want).map_err(io::Error::from)
        });
        match r {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than when it was opened",
                ));
            }
            Ok(n) => {
                *sent += n as u64;
                io.answered();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A connection with bytes already read from it in front (handed over to hyper).
pub struct Rewind<I> {
    pre: Bytes,
    io: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewind<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewind<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "/update/fw";

    fn simple(buf: &[u8]) -> Simple<'_> {
        match classify(buf, BASE) {
            Parsed::Simple(s, len) => {
                assert_eq!(len, buf.len(), "the whole head");
                s
            }
            other => panic!("not simple: {other:?}"),
        }
    }

    #[test]
    fn plain_downloads_are_simple() {
        let s = simple(b"GET /update/fw/a/b.bin?sn=x HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(
            s,
            Simple {
                head: false,
                path: "/update/fw/a/b.bin",
                file: "/a/b.bin",
                query: "sn=x",
                close: false,
                forwarded_for: None,
            }
        );
        let s = simple(
            b"HEAD /update/fw/x HTTP/1.1\r\nConnection: keep-alive, Close\r\n\
              X-Forwarded-For: 10.0.0.1, 10.0.0.2\r\nX-Forwarded-For: 1.1.1.1\r\n\
              Content-Length: 0\r\n\r\n",
        );
        assert!(s.head && s.close);
        assert_eq!(s.forwarded_for, Some("10.0.0.1, 10.0.0.2"));
    }

    #[test]
    fn a_head_in_pieces_is_waited_for_up_to_a_bound() {
        assert_eq!(classify(b"", BASE), Parsed::Partial);
        assert_eq!(
            classify(b"GET /update/fw/a HTTP/1.1\r\nHo", BASE),
            Parsed::Partial
        );
        let mut long = b"GET /update/fw/a HTTP/1.1\r\nX: ".to_vec();
        long.resize(MAX_HEAD + 1, b'a');
        assert_eq!(classify(&long, BASE), Parsed::Router);
    }

    #[test]
    fn everything_else_is_the_routers() {
        let router = [
            &b"POST /update/fw/a HTTP/1.1\r\n\r\n"[..],
            b"GET /update/fw/a HTTP/1.0\r\n\r\n",
            b"GET /update/update.php HTTP/1.1\r\n\r\n",
            b"GET /update/fw HTTP/1.1\r\n\r\n",
            b"GET /update/fwx/a HTTP/1.1\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nRange: bytes=0-1\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nif-none-match: \"x\"\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nIf-Modified-Since: x\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"GET /update/fw/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nConnection: Upgrade\r\n\r\n",
            b"GET /update/fw/a HTTP/1.1\r\nX: \xff\r\n\r\n",
            b"GET /update/fw/\xff.bin HTTP/1.1\r\n\r\n",
            b"BROKEN\r\n\r\n",
        ];
        for r in router {
            assert_eq!(
                classify(r, BASE),
                Parsed::Router,
                "{}",
                String::from_utf8_lossy(r)
            );
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let req = format!("GET /update/fw/a HTTP/1.1\r\n{many}\r\n");
        assert_eq!(classify(req.as_bytes(), BASE), Parsed::Router);
    }

    #[test]
    fn pipelined_requests_are_taken_one_at_a_time() {
        let two = b"GET /update/fw/a HTTP/1.1\r\n\r\nGET /update/fw/b HTTP/1.1\r\n\r\n";
        let Parsed::Simple(s, len) = classify(two, BASE) else {
            panic!("simple");
        };
        assert_eq!((s.file, len), ("/a", two.len() / 2));
    }

    #[test]
    fn heads_carry_the_validators_of_the_cache_or_of_the_opened_file() {
        let e = Entry::for_test("\"5-1\"", "Thu, 01 Jan 1970 00:00:01 GMT");
        let h = String::from_utf8(head_of(&e, None, 5, true)).expect("ascii");
        assert!(h.starts_with("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"));
        assert!(h.contains("\r\ncontent-length: 5\r\n"), "{h}");
        assert!(h.contains("\r\netag: \"5-1\"\r\n"), "{h}");
        assert!(h.contains("\r\nlast-modified: Thu, 01 Jan 1970 00:00:01 GMT\r\n"));
        assert!(h.contains("\r\ndate: "), "{h}");
        assert!(h.ends_with("\r\nconnection: close\r\n\r\n"), "{h}");
        let t = UNIX_EPOCH + std::time::Duration::from_secs(2);
        let h = String::from_utf8(head_of(&e, Some(t), 7, false)).expect("ascii");
        assert!(h.contains("\r\netag: \"7-77359400\"\r\n"), "{h}");
        assert!(h.contains("\r\nlast-modified: Thu, 01 Jan 1970 00:00:02 GMT\r\n"));
        assert!(
            h.ends_with("GMT\r\n\r\n") && !h.contains("connection"),
            "{h}"
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_file_gone_since_it_was_cached_has_no_content() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut e = Entry::for_test("\"1-1\"", "x");
        e.real = dir.path().join("gone.bin");
        assert!(Content::of(&e).await.is_none());
        std::fs::write(&e.real, b"here").expect("file");
        match Content::of(&e).await {
            Some(Content::File(_, meta)) => assert_eq!(meta.len(), 4),
            _ => panic!("an opened file"),
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_file_is_sent_whole_with_little_left_queued_in_the_socket() {
        use tokio::io::AsyncReadExt;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("f.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("file");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reader = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.expect("connect");
            let mut got = Vec::new();
            c.read_to_end(&mut got).await.expect("read");
            got
        });
        let (sock, _) = listener.accept().await.expect("accept");
        let before = socket2::SockRef::from(&sock)
            .tcp_notsent_lowat()
            .expect("get");
        let mut io = Watched::new(sock, std::time::Duration::from_secs(10));
        let file = std::fs::File::open(&path).expect("open");
        let mut sent = 0;
        send_file(
            &mut io,
            (&file, data.len() as u64),
            std::time::Duration::from_secs(10),
            &mut sent,
        )
        .await
        .expect("sent");
        let lowat = socket2::SockRef::from(io.get_ref())
            .tcp_notsent_lowat()
            .expect("get");
        assert_ne!(before, NOT_SENT_LOW_WATER, "the default differs");
        assert_eq!(lowat, NOT_SENT_LOW_WATER);
        assert_eq!(sent, data.len() as u64);
        drop(io);
        assert!(
            reader.await.expect("reader") == data,
            "the bytes of the file"
        );
    }
}
