//! Issue 21, item 4: the README's recipes against the real proxies, on loopback with the test
//! PKI and `forcetrust` on. lighttpd as on the LAP (`ssl.verifyclient` + mod_proxy with
//! `proxy.forwarded` incl. `remote_user`, server `proxy-identity="forwarded"`), nginx
//! (`ssl_verify_client optional`, `X-Remote-Cert: $ssl_client_s_dn`) and the innovaphone
//! reverse proxy's headers. Each checks: a device gets its own script through the proxy with
//! its certificate; A's certificate gets nothing of B's; no certificate is refused, also when
//! the client sends its own `X-Remote-Cert` or `Forwarded` through the proxy; the same headers
//! sent straight to the server from an address that is not a trusted proxy are ignored.
//!
//! lighttpd and nginx are started from the test with their own configuration files in a
//! temporary directory, on free loopback ports, as the current user. Without the binaries the
//! tests are skipped with a message, unless `UPDATE_SERVER_PROXY_TESTS=required` (CI).

use crate::common::tls::{
    self as tlskit, Ca, ClientAuth, Device, local, make_trust_root, tls_request, write_bundle,
};
use crate::common::{Response, Server, Setup, exchange, free_port};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const A_SN: &str = "00-90-33-30-00-af";
const B_SN: &str = "00-90-33-30-00-b0";
const B_SECRET: &str = "config change PWD0 /secret b-only";

/// The installation behind the proxy, with A's and B's states and a snippet only for B.
struct Backend {
    server: Server,
    a: Device,
    b: Device,
    dir: PathBuf,
}

fn backend(dir: &Path, proxy_identity: &str) -> Backend {
    let ca = Ca::new("Test Device CA");
    let root = make_trust_root(dir);
    let a_state = std::fs::read_to_string(root.join(format!("status/{A_SN}.xml"))).expect("A");
    let b_state = a_state
        .replace(A_SN, B_SN)
        .replace("IP232-30-00-af", "IP232-30-00-b0");
    std::fs::write(root.join(format!("status/{B_SN}.xml")), b_state).expect("B's state");
    let snippet = root.join("scripts/update-all-00_90_33_30_00_b0.txt");
    std::fs::write(&snippet, format!("{B_SECRET}\n")).expect("B's snippet");
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(86400);
    std::fs::File::options()
        .write(true)
        .open(&snippet)
        .and_then(|f| f.set_modified(day_ago))
        .expect("mtime");
    write_bundle(&dir.join("device-ca.pem"), &[&ca]);
    tlskit::write_server_cert(dir);
    let config = format!(
        r#"<config><master info=""/><status dir="status"/><customcerts dir="certs" CAname="Test Device CA"/><times forcetrust="true"/><server trusted-proxies="127.0.0.1" proxy-identity="{proxy_identity}"/></config>"#
    );
    let (server, _) = Server::start_with(&root, Setup::prefix("/update"), |_| {
        std::fs::write(root.join("config/user-config.xml"), &config).expect("config");
    });
    Backend {
        server,
        a: ca.issue("IP232-30-00-af"),
        b: ca.issue("IP232-30-00-b0"),
        dir: dir.to_path_buf(),
    }
}

fn poll(sn: &str, hwid: &str) -> String {
    format!("/update/update.php?type=IP232&sn={sn}&hwid={hwid}&ip=172.16.1.2")
}

/// A reverse proxy process started by the test; killed (by its id) when dropped.
struct Proxy {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// Starts `cmd`, then waits until it accepts connections on `port`.
    fn start(mut cmd: Command, port: u16, log: PathBuf) -> Proxy {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the proxy");
        let mut proxy = Proxy { child, port, log };
        for _ in 0..500 {
            if TcpStream::connect(local(port)).is_ok() {
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the proxy exited ({status}): {}", proxy.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the proxy never listened on {port}: {}", proxy.log_text());
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, auth: ClientAuth<'_>, target: &str, headers: &[(&str, &str)]) -> Response {
        tls_request(local(self.port), auth, "GET", target, headers)
            .unwrap_or_else(|e| panic!("request through the proxy: {e}; {}", self.log_text()))
    }
}

/// The binary, or `None` (then the test is skipped, unless proxy tests are required).
fn binary(name: &str) -> Option<PathBuf> {
    let found = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("UPDATE_SERVER_PROXY_TESTS").as_deref() == Ok("required") {
            panic!("{name} is not installed but UPDATE_SERVER_PROXY_TESTS=required");
        }
        eprintln!(
            "skipping: {name} not installed (apt-get install lighttpd lighttpd-mod-openssl nginx-light)"
        );
    }
    found
}

/// lighttpd as the LAP runs it (README recipe), in front of the backend's HTTP port.
fn lighttpd(bin: &Path, dir: &Path, backend: u16) -> Proxy {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"server.modules = ("mod_openssl", "mod_setenv", "mod_proxy")
server.document-root = "{d}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{d}/lighttpd-error.log"
ssl.engine = "enable"
ssl.pemfile = "{d}/server.crt"
ssl.privkey = "{d}/server.key"
ssl.ca-file = "{d}/device-ca.pem"
ssl.verifyclient.activate = "enable"
ssl.verifyclient.enforce = "disable"
ssl.verifyclient.username = "SSL_CLIENT_S_DN_CN"
proxy.server = ("/update/" => (("host" => "127.0.0.1", "port" => {backend})))
proxy.forwarded = ("for" => 1, "proto" => 1, "host" => 1, "remote_user" => 1)
setenv.set-request-header = ("X-Remote-Cert" => "", "Forwarded" => "")
"#
    );
    let path = dir.join("lighttpd.conf");
    std::fs::write(&path, conf).expect("lighttpd.conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-D").arg("-f").arg(&path);
    Proxy::start(cmd, port, dir.join("lighttpd-error.log"))
}

/// nginx (README recipe), in front of the backend's HTTP port, as one process.
fn nginx(bin: &Path, dir: &Path, backend: u16) -> Proxy {
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/nginx-body;
    proxy_temp_path {d}/nginx-proxy;
    fastcgi_temp_path {d}/nginx-fastcgi;
    uwsgi_temp_path {d}/nginx-uwsgi;
    scgi_temp_path {d}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {d}/server.crt;
        ssl_certificate_key {d}/server.key;
        ssl_client_certificate {d}/device-ca.pem;
        ssl_verify_client optional;
        location /update/ {{
            proxy_pass http://127.0.0.1:{backend};
            proxy_set_header Host $http_host;
            proxy_set_header X-Remote-Cert $ssl_client_s_dn;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Forwarded "";
        }}
    }}
}}
"#
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("nginx-error.log"))
        .arg("-c")
        .arg(&path);
    Proxy::start(cmd, port, dir.join("nginx-error.log"))
}

/// A request straight to the server from 127.0.0.2, which is not a trusted proxy.
fn direct(port: u16, target: &str, headers: &[(&str, &str)]) -> Response {
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let from: SocketAddr = "127.0.0.2:0".parse().expect("addr");
    sock.bind(&from.into()).expect("bind 127.0.0.2");
    sock.connect(&local(port).into()).expect("connect");
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    exchange(&mut s, local(port), "GET", target, headers, b"").expect("exchange")
}

/// The four cases of item 4, through `proxy`; `smuggled` are the headers a client without a
/// certificate sends to pose as A.
fn four_cases(b: &Backend, proxy: &Proxy, smuggled: &[(&str, &str)]) {
    // 1. a device gets its own script with its certificate
    let r = proxy.get(ClientAuth::Device(&b.a), &poll(A_SN, "IP232-30-00-af"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(tlskit::has_snippet(&r), "A's own script: {}", r.text());
    let r = proxy.get(ClientAuth::Device(&b.b), &poll(B_SN, "IP232-30-00-b0"), &[]);
    assert!(
        r.command_lines().iter().any(|l| l == B_SECRET),
        "{}",
        r.text()
    );
    // 2. A's certificate gets nothing of B's
    let r = proxy.get(ClientAuth::Device(&b.a), &poll(B_SN, "IP232-30-00-af"), &[]);
    assert!(r.command_lines().is_empty(), "A for B: {}", r.text());
    // 3. no certificate: refused, also with the client's own identity headers
    for headers in [&[][..], smuggled] {
        let r = proxy.get(ClientAuth::None, &poll(A_SN, "IP232-30-00-af"), headers);
        assert!(r.command_lines().is_empty(), "{headers:?}: {}", r.text());
        assert!(
            r.text().contains("SSL_CLIENT_S_DN_CN not present"),
            "{}",
            r.text()
        );
    }
    // 4. the same headers straight to the server from a client that is no trusted proxy
    let r = direct(b.server.http_port, &poll(A_SN, "IP232-30-00-af"), smuggled);
    assert!(r.command_lines().is_empty(), "direct: {}", r.text());
    assert!(
        b.server
            .log_text()
            .contains("ignoring Forwarded/X-Forwarded-*/X-Remote-Cert headers from 127.0.0.2"),
        "{}",
        b.server.log_text()
    );
}

const SMUGGLED: &[(&str, &str)] = &[
    ("X-Remote-Cert", "IP232-30-00-af"),
    (
        "Forwarded",
        "for=127.0.0.1;proto=https;remote_user=\"IP232-30-00-af\"",
    ),
];

#[test]
fn lighttpd_as_on_the_lap() {
    let Some(bin) = binary("lighttpd") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path(), "forwarded");
    let proxy = lighttpd(&bin, &b.dir, b.server.http_port);
    four_cases(&b, &proxy, SMUGGLED);
    assert_eq!(
        b.server.app.identities.proved(A_SN).as_deref(),
        Some("proxy 127.0.0.1 (Forwarded), CN 'IP232-30-00-af'")
    );
    // the recipe's setenv drops a client's own X-Remote-Cert: even a server left at
    // proxy-identity="x-remote-cert" does not see it
    let dir2 = tempfile::tempdir().expect("tmp");
    let b2 = backend(dir2.path(), "x-remote-cert");
    let proxy2 = lighttpd(&bin, &b2.dir, b2.server.http_port);
    let r = proxy2.get(ClientAuth::None, &poll(A_SN, "IP232-30-00-af"), SMUGGLED);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    assert!(
        r.text().contains("SSL_CLIENT_S_DN_CN not present"),
        "{}",
        r.text()
    );
}

#[test]
fn nginx_with_x_remote_cert() {
    let Some(bin) = binary("nginx") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path(), "x-remote-cert");
    let proxy = nginx(&bin, &b.dir, b.server.http_port);
    four_cases(&b, &proxy, SMUGGLED);
    assert_eq!(
        b.server.app.identities.proved(A_SN).as_deref(),
        Some("proxy 127.0.0.1 (X-Remote-Cert), CN 'IP232-30-00-af'")
    );
}

#[test]
fn the_innovaphone_reverse_proxy_headers() {
    // the reverse proxy verifies the certificate and sends its name; here the test is the
    // proxy, on 127.0.0.1 (trusted)
    let dir = tempfile::tempdir().expect("tmp");
    let b = backend(dir.path(), "x-remote-cert");
    let addr = b.server.addr();
    let via = |sn: &str, hwid: &str, cert: Option<&str>| {
        let mut h = vec![
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-For", "172.16.1.2"),
        ];
        if let Some(c) = cert {
            h.push(("X-Remote-Cert", c));
        }
        crate::common::http_request(addr, "GET", &poll(sn, hwid), &h, b"")
    };
    let r = via(A_SN, "IP232-30-00-af", Some("IP232-30-00-af"));
    assert!(tlskit::has_snippet(&r), "{}", r.text());
    let r = via(B_SN, "IP232-30-00-b0", Some("IP232-30-00-b0"));
    assert!(
        r.command_lines().iter().any(|l| l == B_SECRET),
        "{}",
        r.text()
    );
    let r = via(B_SN, "IP232-30-00-af", Some("IP232-30-00-af"));
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let r = via(A_SN, "IP232-30-00-af", Some(""));
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let r = via(A_SN, "IP232-30-00-af", None);
    assert!(r.command_lines().is_empty(), "{}", r.text());
    let r = direct(b.server.http_port, &poll(A_SN, "IP232-30-00-af"), SMUGGLED);
    assert!(r.command_lines().is_empty(), "direct: {}", r.text());
}
