//! The server under test, in this process: listeners bound on `127.0.0.1:0` are handed to
//! the library's `server::serve` on a runtime of its own, whose log lines are kept for the
//! test ([`Server::log_text`]). Stopped when dropped.

use super::{Response, eventually, http_request};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use update_server::app::App;
use update_server::config::Config;
use update_server::server::{self, Listeners};
use update_server::tls::{TlsOptions, TlsSetup};

/// How the server is set up beyond its root: URL prefix and TLS listeners.
#[derive(Default, Clone)]
pub struct Setup {
    /// `--prefix`.
    pub prefix: String,
    /// Whether to open an `--https` listener.
    pub https: bool,
    /// Whether to open an `--mtls` listener (needs `tls.client_ca`).
    pub mtls: bool,
    /// Server certificate (generated in ROOT/tls/ when not given) and client CAs.
    pub tls: TlsOptions,
}

impl Setup {
    /// Only a URL prefix.
    pub fn prefix(prefix: &str) -> Setup {
        Setup {
            prefix: prefix.to_string(),
            ..Setup::default()
        }
    }
}

/// The TLS ports of a started server (0 for a listener not asked for).
#[derive(Debug, Clone, Copy)]
pub struct TlsPorts {
    pub https: u16,
    pub mtls: u16,
}

/// What the server logged, shared with its runtime's threads.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        b.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A running server; stopped when dropped.
pub struct Server {
    pub app: Arc<App>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    pub http_port: u16,
    pub root: PathBuf,
    log: LogBuffer,
}

/// A log subscriber like the binary's (`info`, `tower_http` quiet) writing into `log`.
fn dispatch(log: &LogBuffer) -> tracing::Dispatch {
    let log = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info,tower_http=warn"))
        .with_writer(move || log.clone())
        .with_ansi(false)
        .finish();
    tracing::Dispatch::new(subscriber)
}

/// A runtime whose threads (workers and blocking pool) log into `dispatch`.
fn runtime(dispatch: tracing::Dispatch) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .on_thread_start(move || {
            // the guard would reset the thread's default at its end: keep it for the thread
            std::mem::forget(tracing::dispatcher::set_default(&dispatch));
        })
        .build()
        .expect("server runtime")
}

fn bind(rt: &tokio::runtime::Runtime, wanted: bool) -> Vec<tokio::net::TcpListener> {
    if !wanted {
        return Vec::new();
    }
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1:0");
    vec![l]
}

fn port(list: &[tokio::net::TcpListener]) -> u16 {
    list.first()
        .and_then(|l| l.local_addr().ok())
        .map_or(0, |a| a.port())
}

impl Server {
    /// Serves `root` on a plain HTTP listener; `extra` may hold `--prefix P`.
    pub fn start(root: &Path, extra: &[&str]) -> Server {
        let setup = match extra {
            [] => Setup::default(),
            ["--prefix", p] => Setup::prefix(p),
            other => panic!("Server::start: unsupported arguments {other:?}: use start_with"),
        };
        Server::start_with(root, setup, |_| {}).0
    }

    /// Serves `root` with `setup`; `configure` runs once the ports are known and before
    /// anything is served (e.g. to write a configuration naming them).
    pub fn start_with(
        root: &Path,
        setup: Setup,
        configure: impl FnOnce(&TlsPorts),
    ) -> (Server, TlsPorts) {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let root = std::fs::canonicalize(root).expect("root");
        let log = LogBuffer::default();
        let dispatch = dispatch(&log);
        let rt = runtime(dispatch.clone());
        let (http, https, mtls) = (
            bind(&rt, true),
            bind(&rt, setup.https),
            bind(&rt, setup.mtls),
        );
        let ports = TlsPorts {
            https: port(&https),
            mtls: port(&mtls),
        };
        configure(&ports);
        let tls = (setup.https || setup.mtls).then(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                TlsSetup::load(&root, &setup.tls, setup.mtls).expect("TLS setup")
            })
        });
        let http_port = port(&http);
        let listeners = Listeners {
            http,
            https,
            mtls,
            tls,
        };
        let app = Arc::new(App::new(root.clone(), &setup.prefix));
        let served = app.clone();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        rt.spawn(async move {
            let app = served;
            let stopped = async {
                let _ = rx.await;
            };
            if let Err(e) = server::serve(app, listeners, stopped).await {
                tracing::error!("serve: {e}");
            }
        });
        let server = Server {
            app,
            runtime: Some(rt),
            shutdown: Some(tx),
            http_port,
            root,
            log,
        };
        server.wait_until_serving();
        (server, ports)
    }

    /// Waits (at most 10 s) until `serve` has logged its start-up, so a test that reads the
    /// log right after starting sees the start-up lines.
    fn wait_until_serving(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !self.log_text().contains("listening on") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        let b = self.log.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b).into_owned()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.http_port))
    }

    /// Makes the device states the server holds back (write-behind) durable now, so their
    /// files can be read.
    pub fn flush(&self) {
        self.app.flush_pending_blocking();
    }

    /// `GET target` over plain HTTP, then [`Self::flush`].
    pub fn get(&self, target: &str) -> Response {
        let r = self.get_unflushed(target);
        self.flush();
        r
    }

    /// `GET target` over plain HTTP, leaving the state writes pending.
    pub fn get_unflushed(&self, target: &str) -> Response {
        http_request(self.addr(), "GET", target, &[], b"")
    }

    /// `PUT target` with `body` over plain HTTP, then [`Self::flush`].
    pub fn put(&self, target: &str, body: &[u8]) -> Response {
        let r = http_request(self.addr(), "PUT", target, &[], body);
        self.flush();
        r
    }

    /// The configuration the server answers with, once `seen` holds for it (waited for with
    /// [`eventually`]; panics when it never does): after the test changed the configuration
    /// files, before a request that must not be repeated until its answer shows the change (an
    /// upload that, accepted under the old configuration, would be stored). Asks the server's
    /// configuration store as a request does, so the next request sees at least this.
    pub fn config_when(&self, seen: impl Fn(&Config) -> bool) -> Arc<Config> {
        let cfg = eventually(
            || self.app.config.get(),
            |c| c.as_ref().is_ok_and(|c| seen(c)),
        );
        match cfg {
            Ok(c) if seen(&c) => c,
            Ok(_) => panic!("the server never answered with the changed configuration"),
            Err(e) => panic!("the server's configuration stayed broken: {e}"),
        }
    }

    /// Stops the server abruptly: the runtime is dropped without flushing anything.
    pub fn kill(mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}
