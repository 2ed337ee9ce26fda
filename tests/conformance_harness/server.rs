//! Starting and stopping the server under test.

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::pki::Pki;

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Ports handed out during this test run, so that parallel cases never get
/// the same one.
static HANDED_OUT: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// Held while a server process is spawned and while a port is picked by
/// binding port 0 and closing the listener again. A child process gets a
/// copy of every descriptor of this process and keeps it until its exec has
/// closed the CLOEXEC ones, which is slightly *after* `Command::spawn` has
/// returned. A picking listener open during another case's spawn could thus
/// outlive its close, answer the readiness probe in place of the server and
/// make the server's own bind fail. Under this lock no spawn sees one.
static SPAWN_LOCK: Mutex<()> = Mutex::new(());

/// Every process this test binary starts is spawned under this guard.
pub fn spawn_lock() -> std::sync::MutexGuard<'static, ()> {
    SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A listener on a fresh loopback port (kept open by the caller, or dropped to
/// get a port where nothing listens).
pub fn reserve_port() -> Result<TcpListener, String> {
    for _ in 0..50 {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        let mut used = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        if !used.contains(&port) {
            used.push(port);
            return Ok(listener);
        }
    }
    Err("no fresh loopback port found".into())
}

/// A free port (nothing listens on it after this returns).
pub fn free_port() -> Result<u16, String> {
    let _guard = spawn_lock();
    pick_port()
}

fn pick_port() -> Result<u16, String> {
    let listener = reserve_port()?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("local_addr: {e}"))
}

/// The binary under test: `update-server` of this package, or
/// `CONFORMANCE_BIN` (another build or implementation taking the same flags).
pub fn server_binary() -> PathBuf {
    std::env::var_os("CONFORMANCE_BIN")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_update-server")))
}

/// The running server; killed when dropped (also when the case panics).
pub struct Server {
    child: Child,
    stderr_path: PathBuf,
}

/// The three listener ports of a server.
pub struct Ports {
    pub http: u16,
    pub https: u16,
    pub mtls: u16,
}

impl Ports {
    /// Three fresh ports where nothing listens. Another process may still
    /// take one before the server binds it; `Server::start` notices.
    pub fn pick() -> Result<Ports, String> {
        let _guard = spawn_lock();
        Ok(Ports {
            http: pick_port()?,
            https: pick_port()?,
            mtls: pick_port()?,
        })
    }
}

impl Server {
    /// Starts `serve` on `root` and waits until all three ports accept
    /// connections. Output goes to `logs/server.{stdout,stderr}`.
    pub fn start(root: &Path, logs: &Path, ports: &Ports, pki: &Pki) -> Result<Server, String> {
        let stdout_path = logs.join("server.stdout");
        let stderr_path = logs.join("server.stderr");
        let stdout = File::create(&stdout_path).map_err(|e| format!("server stdout file: {e}"))?;
        let stderr = File::create(&stderr_path).map_err(|e| format!("server stderr file: {e}"))?;
        let bin = server_binary();
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .arg("--root")
            .arg(root)
            .args(["--prefix", "/update"])
            .arg("--http")
            .arg(format!("127.0.0.1:{}", ports.http))
            .arg("--https")
            .arg(format!("127.0.0.1:{}", ports.https))
            .arg("--mtls")
            .arg(format!("127.0.0.1:{}", ports.mtls))
            .arg("--tls-cert")
            .arg(&pki.server_cert)
            .arg("--tls-key")
            .arg(&pki.server_key)
            .arg("--client-ca")
            .arg(&pki.client_ca)
            // Not the root: a server that writes relative to its working
            // directory instead of --root must not get away with it.
            .current_dir(logs)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let child = {
            let _guard = spawn_lock();
            command
                .spawn()
                .map_err(|e| format!("cannot start {}: {e}", bin.display()))?
        };
        let mut server = Server { child, stderr_path };
        server.wait_listening(&[ports.http, ports.https, ports.mtls])?;
        Ok(server)
    }

    fn wait_listening(&mut self, ports: &[u16]) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut pending: Vec<u16> = ports.to_vec();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "server exited ({status}) before listening on all ports\n{}",
                    self.stderr_tail(30)
                ));
            }
            pending.retain(|&port| {
                let addr = SocketAddr::from(([127, 0, 0, 1], port));
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
            });
            // Another process may have taken a port between our release and
            // the server's bind; then the probe reached a stranger.
            let child = self.child.id();
            if let Some(&port) = ports
                .iter()
                .find(|&&p| !pending.contains(&p) && listener_owned_by(child, p) == Some(false))
            {
                return Err(format!(
                    "port {port} answered, but its listening socket belongs to another process"
                ));
            }
            if pending.is_empty() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    return Err(format!(
                        "server exited ({status}) although its ports answered\n{}",
                        self.stderr_tail(30)
                    ));
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "server did not listen on port(s) {pending:?} within {START_TIMEOUT:?}\n{}",
                    self.stderr_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last `n` lines of the server's stderr, indented, for reports.
    pub fn stderr_tail(&self, n: usize) -> String {
        let text = std::fs::read(&self.stderr_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(cannot read server stderr: {e})"));
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return "    (server stderr is empty)".into();
        }
        let skip = lines.len().saturating_sub(n);
        let mut out = format!("    server stderr (last {} lines):", lines.len() - skip);
        for line in &lines[skip..] {
            out.push_str("\n    | ");
            out.push_str(line);
        }
        out
    }

    /// Stops the server as an administrator does (SIGTERM: it writes the device states it
    /// holds, then exits), killing it when it has not exited within 10 s.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the listening socket on 127.0.0.1:`port` belongs to process `pid`
/// (Linux: `/proc/net/tcp` and `/proc/PID/fd`); `None` where that cannot be
/// told.
pub fn listener_owned_by(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_, local_port) = fields.get(1)?.split_once(':')?;
            let listening = *fields.get(3)? == "0A";
            (u16::from_str_radix(local_port, 16).ok()? == port && listening)
                .then(|| fields.get(9).map(|i| format!("socket:[{i}]")))?
        })
        .collect();
    if inodes.is_empty() {
        // Nothing listens (any more): not ours, but nobody else's either.
        return None;
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let owned = fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    });
    Some(owned)
}
