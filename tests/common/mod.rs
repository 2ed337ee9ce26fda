//! Shared helpers for integration tests: start the real `update-server` binary on loopback
//! ports and talk raw HTTP/1.1 to it (the request target is sent exactly as given).
//!
//! Use from a test file with `mod common;`. Each integration test crate compiles this module
//! on its own, so not every helper is used everywhere.
#![allow(dead_code)]

pub mod webdriver;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Picking a free port and starting the server that binds it take turns: otherwise another
/// test thread could start a server between the two, or a child process could briefly hold a
/// copy of the probing socket.
static START: Mutex<()> = Mutex::new(());

/// Takes the start-up turn, for a test that starts a server process of its own (e.g. with no
/// `--http` flag): pick its ports and start it while holding the guard.
pub fn start_turn() -> std::sync::MutexGuard<'static, ()> {
    START.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free loopback port (bound once and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub http_port: u16,
    pub root: PathBuf,
    log: PathBuf,
}

impl Server {
    /// Starts `update-server serve --root ROOT --http 127.0.0.1:PORT` plus `extra` arguments,
    /// and waits until the HTTP port accepts connections.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        Server::start_with(root, 0, |_| extra.iter().map(|s| s.to_string()).collect()).0
    }

    /// Like [`Server::start`], with `extra_ports` more free ports picked in the same turn and
    /// handed to `args`, which returns the further arguments (e.g. `--https 127.0.0.1:P`).
    /// Returns the server and those ports.
    pub fn start_with(
        root: &Path,
        extra_ports: usize,
        args: impl FnOnce(&[u16]) -> Vec<String>,
    ) -> (Server, Vec<u16>) {
        let _turn = START.lock().unwrap_or_else(|e| e.into_inner());
        let ports: Vec<u16> = (0..extra_ports).map(|_| free_port()).collect();
        let extra = args(&ports);
        let http_port = free_port();
        let log = root.with_extension("server.log");
        let log_file = std::fs::File::create(&log).expect("server log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_update-server"));
        cmd.arg("serve")
            .arg("--root")
            .arg(root)
            .arg("--http")
            .arg(format!("127.0.0.1:{http_port}"))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file));
        let child = cmd.spawn().expect("start update-server");
        let server = Server {
            child,
            http_port,
            root: root.to_path_buf(),
            log,
        };
        server.wait_for_port(http_port);
        for p in &ports {
            server.wait_for_port(*p);
        }
        (server, ports)
    }

    /// Waits until `port` accepts connections (panics with the server log after 10 s).
    pub fn wait_for_port(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not listen on {port}; log:\n{}", self.log_text());
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// `GET target` over plain HTTP.
    pub fn get(&self, target: &str) -> Response {
        http_request(self.addr(), "GET", target, &[], b"")
    }

    /// `PUT target` with `body` over plain HTTP.
    pub fn put(&self, target: &str, body: &[u8]) -> Response {
        http_request(self.addr(), "PUT", target, &[], body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
    parse_response(&raw)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no HTTP answer"))
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or to EOF).
pub fn parse_response(raw: &[u8]) -> Option<Response> {
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
    let body = if chunked {
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
