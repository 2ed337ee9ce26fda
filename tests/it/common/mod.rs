//! The one harness of the integration tests: the server in this process on loopback ports
//! ([`Server`], see `server`), a raw HTTP/1.1 client (the request target is sent exactly as
//! given), installation roots and device states, the TLS test PKI and client (`tls`), and a
//! WebDriver client for the browser tests (`webdriver`). See `tests/README.md`.
//!
//! Compiled once, in the integration test binary `tests/it` (its `main.rs` declares it).

pub mod oneshot;
pub mod server;
pub mod tls;
pub mod webdriver;

#[allow(unused_imports)]
pub use server::{Server, Setup, TlsPorts};

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A free loopback port (bound once and released), for processes that are not the server
/// under test (ChromeDriver) and for `cli` and `lifecycle`, which start the binary. Pick it in
/// the [`start_turn`] of the process that will bind it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

static START: Mutex<()> = Mutex::new(());

/// The turn of one child process (the binary, ChromeDriver) to be started: picking its free
/// ports and starting it until it listens happen while the turn is held, so that no other
/// test of this binary picks the same port in between. Every test that starts a process on
/// ports of [`free_port`] takes it; the in-process servers bind port 0 and need none.
pub fn start_turn() -> MutexGuard<'static, ()> {
    START.lock().unwrap_or_else(|e| e.into_inner())
}

/// How long [`eventually`] tries at most.
pub const EVENTUALLY_LIMIT: Duration = Duration::from_secs(10);
/// The pause between two tries of [`eventually`].
pub const EVENTUALLY_STEP: Duration = Duration::from_millis(20);

/// Calls `attempt` until `done` holds for its result, for at most [`EVENTUALLY_LIMIT`] (a try
/// every [`EVENTUALLY_STEP`]), and returns the last result: the caller makes its assertions on
/// it, so a change that never comes still fails the test, with the last answer.
///
/// A running server notices a file the test wrote, removed or renamed in a watched directory
/// (the root, `config/`, `scripts/`, `cache/`, `certs/`, the trees below `fw/` and `web/`)
/// through a file-system notification that arrives a moment after the write, or at the latest
/// through its periodic rescan (every 2 s; the only way for a directory created while it
/// runs, until that rescan watches it). A request sent right after the write may still get the
/// answer from before: ask for the answer that shows the change with `eventually`. Only a
/// request that may be repeated (a poll, a GET) goes into `attempt`; before an upload that
/// would store something, wait for the server's configuration with
/// [`Server::config_when`] instead.
pub fn eventually<T>(mut attempt: impl FnMut() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + EVENTUALLY_LIMIT;
    loop {
        let last = attempt();
        if done(&last) || Instant::now() >= deadline {
            return last;
        }
        std::thread::sleep(EVENTUALLY_STEP);
    }
}

/// An HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The lines a device executes: not blank, not starting with `#`, trailing white space removed.
    pub fn command_lines(&self) -> Vec<String> {
        command_lines(&self.text())
    }
}

/// The command lines of an update script.
pub fn command_lines(text: &str) -> Vec<String> {
    text.split('\n')
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

/// Sends one request on a new connection and reads the whole answer.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    exchange(&mut s, addr, method, target, headers, body).expect("HTTP exchange")
}

/// Writes a request on any stream (plain or TLS) and parses the answer. A `Host` header in
/// `headers` replaces the default `Host: ADDR`.
pub fn exchange<S: Read + Write>(
    s: &mut S,
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    // `Host: ADDR` unless the caller sends its own (as a proxy relaying a device would)
    let host = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    let mut req = format!(
        "{method} {target} HTTP/1.1\r\n{host}Connection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    s.flush()?;
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        // rustls reports a peer that closes without close_notify; the data is complete
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    // the answer to HEAD has no body, whatever its Content-Length says
    parse_answer(&raw, method.eq_ignore_ascii_case("HEAD"))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP answer"))
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or to EOF).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
    parse_answer(raw, false)
}

/// [`parse_response`] of the answer to a HEAD request (no body, whatever its headers say).
pub fn parse_head_response(raw: &[u8]) -> Option<Response> {
    parse_answer(raw, true)
}

/// [`parse_response`]; `to_head`: the answer to a HEAD request (no body).
fn parse_answer(raw: &[u8], to_head: bool) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    // 1xx, 204 and 304 answers have no body (RFC 9112 §6.3), whatever their headers say
    let body = if to_head || status / 100 == 1 || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        let mut out = Vec::new();
        let mut r = rest;
        loop {
            let nl = r.windows(2).position(|w| w == b"\r\n")?;
            let size = usize::from_str_radix(
                String::from_utf8_lossy(&r[..nl]).split(';').next()?.trim(),
                16,
            )
            .ok()?;
            r = &r[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(r.get(..size)?);
            r = r.get(size + 2..)?;
        }
        out
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest.get(..len)?.to_vec()
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

/// A minimal installation root: `config/user-config.xml` with `user_config`, and the given
/// snippet files (name, content) in `scripts/`, all dated a day back (past the grace period).
pub fn make_root(dir: &Path, user_config: &str, snippets: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("config")).expect("mkdir config");
    std::fs::create_dir_all(root.join("scripts")).expect("mkdir scripts");
    std::fs::write(root.join("config/user-config.xml"), user_config).expect("user config");
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(86400);
    for (name, content) in snippets {
        let p = root.join("scripts").join(name);
        std::fs::write(&p, content).expect("snippet");
        let f = std::fs::File::options()
            .write(true)
            .open(&p)
            .expect("open snippet");
        f.set_modified(day_ago).expect("mtime");
    }
    root
}

/// The user configuration of the admin tests: login admin/secret, state tracking (missing
/// after an hour, rows refreshed every 2 s), backups, custom certificates, an API token, and
/// an `admin` query with one good and one broken `show` expression.
pub const ADMIN_CONFIG: &str = r#"<config>
    <master info="" user="admin" password="secret"/>
    <status dir="status" missing="3600" refresh="2"/>
    <backup dir="backup"/>
    <customcerts dir="certs" CAname="Test CA"/>
    <api token="api-token-0123456789"/>
    <queries>
        <query id="admin" title="Admin"><applies>*</applies>
            <show title="Name">string(/state/queries/admin/info/@name)</show>
            <show title="Broken">concat(/state/queries/admin/info/@name,</show>
        </query>
    </queries>
</config>"#;

/// Serial numbers of the fleet [`seed_fleet`] writes.
pub const SN_RECEPTION: &str = "00-90-33-30-00-a1";
pub const SN_EVIL: &str = "00-90-33-30-00-b2";
pub const SN_GATEWAY: &str = "00-90-33-30-00-c3";
/// A device name that tries to inject markup.
pub const EVIL_NAME: &str = "<script>alert(\"pwned\")</script>'";
/// The CSR of [`SN_RECEPTION`] as stored in `certs/` (DER bytes).
pub const CSR_DER: &[u8] = b"\x30\x82\x01\x0a-not-really-a-csr-\x00\xff";

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A device state file as the PHP server writes it.
pub fn device_state(sn: &str, ty: &str, name: &str, ip: &str, seen: i64, fw: &str) -> String {
    let hwid = format!("{ty}-{}", &sn[9..]);
    format!(
        "<?xml version=\"1.0\"?>\n<state seen=\"{seen}\"><device sn=\"{sn}\" type=\"{ty}\" hwid=\"{hwid}\" realip=\"{ip}\" ip=\"{ip}\" rp=\"false\" classes=\"phone, {lty}\" phase=\"update\" environments=\"default\" certstat=\"CN {hwid}: invalid issuer\" backup=\"{seen}\"/><firmware build=\"{fw}\"/><bootcode build=\"130150\"/><queries><admin seen=\"{seen}\"><info name=\"{name}\" type=\"{ty}\"/></admin></queries><msgs time=\"{seen}\" msg=\"\"/><msgs time=\"{seen}\" msg=\"phase: update, environment: default, type: {ty}\"/><msgs time=\"{seen}\" msg=\"log line of {sn}\"/><config filename=\"scripts/update-all-default.txt\" delivered=\"{seen}\" version=\"{seen}\"/></state>\n",
        lty = ty.to_lowercase(),
        name = xml_attr(name),
    )
}

/// Writes a small fleet below `root`: a device with a CSR waiting for signature and a backup,
/// a missing device whose name is a script, a gateway, a corrupt and a foreign state file,
/// and the cached info of a master device running firmware 130160.
pub fn seed_fleet(root: &Path, now: i64) {
    let status = root.join("status");
    std::fs::create_dir_all(&status).expect("mkdir status");
    std::fs::create_dir_all(root.join("certs")).expect("mkdir certs");
    let write = |sn: &str, xml: String| {
        std::fs::write(status.join(format!("{sn}.xml")), xml).expect("state")
    };
    write(
        SN_RECEPTION,
        device_state(
            SN_RECEPTION,
            "IP232",
            "Reception",
            "172.16.1.21",
            now - 30,
            "130100",
        ),
    );
    write(
        SN_EVIL,
        device_state(
            SN_EVIL,
            "IP222",
            EVIL_NAME,
            "172.16.1.22",
            now - 2 * 86400,
            "130160",
        ),
    );
    write(
        SN_GATEWAY,
        device_state(
            SN_GATEWAY,
            "IP811",
            "Gateway",
            "192.168.0.1",
            now - 60,
            "130160",
        ),
    );
    std::fs::write(status.join("broken.xml"), "<state seen=\"1\"><device").expect("broken");
    std::fs::write(status.join("foreign.xml"), "<html><body/></html>").expect("foreign");
    std::fs::write(
        root.join(format!("certs/{SN_RECEPTION}-request.p10.der")),
        CSR_DER,
    )
    .expect("csr");
    std::fs::write(
        root.join(format!("certs/{SN_RECEPTION}-request.p10.pem")),
        "-----BEGIN CERTIFICATE REQUEST-----\r\nMIIB\r\n-----END CERTIFICATE REQUEST-----\r\n",
    )
    .expect("csr pem");
    std::fs::create_dir_all(root.join("cache")).expect("mkdir cache");
    std::fs::write(
        root.join("cache/master-info.xml"),
        "<?xml version=\"1.0\"?>\n<info><sys version=\"13r1 sr9 IP811[13.0160], Bootcode[130150], Hardware[104-00]\" type=\"IP811\" name=\"master\"/></info>\n",
    )
    .expect("master cache");
    let hwid = format!("IP232-{}", &SN_RECEPTION[9..]);
    let bdir = root.join("backup").join(&hwid);
    std::fs::create_dir_all(&bdir).expect("mkdir backup");
    std::fs::write(
        bdir.join(format!("{hwid}.1.txt")),
        "config change CMD0 /name x\r\n",
    )
    .expect("backup");
}

/// Current unix time.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A self-signed certificate (PEM) standing in for a CA-signed device certificate.
pub fn test_certificate_pem(cn: &str) -> String {
    rcgen::generate_simple_self_signed(vec![cn.to_string()])
        .expect("certificate")
        .cert
        .pem()
}
