//! The HTTP side: the router, serving connections, and the `update.php` endpoint's shell.
//!
//! URLs (below `--prefix`): `update.php` (polls and the `mode=` uploads), `update-migrate.php`
//! (redirect to a new server, `<migrate url=…>`), `fw/…` (firmware files with range
//! requests), `web/…` (static files of the admin pages), and the admin pages (`admin`).
//!
//! A connection is served by [`serve_connection`], which attaches [`ConnMeta`] (peer, local
//! address, TLS, verified client certificate) to each request; listeners for plain HTTP live
//! here, TLS listeners in `trust`. The `update.php` handler turns the request into
//! [`ConnInfo`] and [`Args`], takes the device's lock, loads what the pure `script::build`
//! needs, resolves its [`Need`]s, and writes the results.

use crate::answer::{Answer, Exit, comment_safe};
use crate::certs::{CertFiles, FileOp};
use crate::config::{Config, ConfigStore};
use crate::firmware::MasterSource;
use crate::php::Args;
use crate::request::{self, ClientCert, ConnInfo};
use crate::script::{self, Need, Outcome, PollInput, Resolved};
use crate::snippets::SnippetStore;
use crate::state::{Loaded, StateStore};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::Service;

/// What the connection tells about a request.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    /// The client certificate verified in the TLS handshake.
    pub client_cert: Option<ClientCert>,
}

/// Everything the handlers share.
pub struct App {
    pub root: PathBuf,
    /// URL path prefix, empty or starting with `/` (no trailing `/`).
    pub prefix: String,
    pub config: ConfigStore,
    pub snippets: SnippetStore,
    pub master: MasterSource,
    /// Sessions, caches and settings of the admin pages.
    pub admin: crate::admin::AdminState,
    states: Mutex<HashMap<PathBuf, Arc<StateStore>>>,
}

pub type SharedApp = Arc<App>;

/// Current unix time.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Normalises a `--prefix` value: leading `/`, no trailing `/`, empty for the root.
pub fn normalize_prefix(p: &str) -> String {
    let t = p.trim().trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

impl App {
    pub fn new(root: PathBuf, prefix: &str) -> App {
        let config = ConfigStore::new(&root);
        App {
            snippets: SnippetStore::new(root.join("scripts")),
            master: MasterSource::new(),
            admin: crate::admin::AdminState::default(),
            config,
            states: Mutex::new(HashMap::new()),
            prefix: normalize_prefix(prefix),
            root,
        }
    }

    /// The state store of the configured status directory, if state tracking is on.
    pub fn states(&self, cfg: &Config) -> Option<Arc<StateStore>> {
        let dir = self.root.join(cfg.status_dir()?);
        let mut map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            map.entry(dir.clone())
                .or_insert_with(|| Arc::new(StateStore::new(dir)))
                .clone(),
        )
    }
}

/// The router of all URLs.
pub fn router(app: SharedApp) -> Router {
    let p = app.prefix.clone();
    let fw = tower_http::services::ServeDir::new(app.root.join("fw"));
    let web = tower_http::services::ServeDir::new(app.root.join("web"));
    let mut r = Router::new()
        .route(&format!("{p}/update.php"), any(update_php))
        .route(&format!("{p}/update-migrate.php"), any(update_migrate))
        .nest_service(&format!("{p}/fw"), fw)
        .nest_service(&format!("{p}/web"), web)
        .merge(crate::admin::routes(&p));
    if !p.is_empty() {
        let target = format!("{p}/admin/admin.php");
        r = r.route(
            &format!("{p}/"),
            any(move || async move { axum::response::Redirect::to(&target) }),
        );
    }
    r.layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// How long a client may take to send a request's headers (seconds; `<server header-timeout>`).
static HEADER_READ_TIMEOUT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(30);

/// Sets the header read timeout of all connections served from now on.
pub fn set_header_timeout(secs: u64) {
    HEADER_READ_TIMEOUT.store(secs.max(1), std::sync::atomic::Ordering::Relaxed);
}

/// Serves one accepted connection (plain or TLS) with `router`, attaching `meta` to every
/// request.
pub async fn serve_connection<I>(io: I, meta: ConnMeta, router: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = meta.peer;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(meta.clone());
            let mut r = router.clone();
            async move { r.call(req.map(Body::new)).await }
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // a client that connects and then sends nothing (or only part of its headers, also on an
    // idle keep-alive connection) is disconnected instead of holding the connection forever
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            HEADER_READ_TIMEOUT.load(std::sync::atomic::Ordering::Relaxed),
        ));
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!("connection from {peer}: {e}");
    }
}

/// The next connection of `listener` as `(stream, peer, local address)`; accept errors (such
/// as running out of file descriptors) are logged and retried after a short pause.
pub async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, SocketAddr, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // answers are written in several segments (headers, body chunks): without
                // this, Nagle's algorithm and the client's delayed ACK stall each of them
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(peer);
                return (stream, peer, local);
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts plain HTTP connections on `listener` forever.
pub async fn serve_plain(listener: tokio::net::TcpListener, router: Router) {
    loop {
        let (stream, peer, local) = accept(&listener).await;
        let meta = ConnMeta {
            peer,
            local,
            tls: false,
            client_cert: None,
        };
        tokio::spawn(serve_connection(stream, meta, router.clone()));
    }
}

/// A `text/plain` answer.
pub fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The connection facts of a request as PHP saw them (see `trust` for proxies).
pub fn conn_info(app: &App, cfg: &Config, meta: &ConnMeta, headers: &HeaderMap) -> ConnInfo {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| request::valid_host(h))
        .map(str::to_string)
        .unwrap_or_else(|| meta.local.to_string());
    let forwarded_for = headers
        .get("x-forwarded-for")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let mut info = ConnInfo {
        https: meta.tls,
        local_port: meta.local.port(),
        remote_ip: meta.peer.ip(),
        forwarded_for,
        client_cert: meta.client_cert.clone(),
        host,
    };
    crate::trust::apply_proxy_headers(&mut info, cfg, meta, headers);
    let _ = app;
    info
}

/// The URL of `update.php` as this request reached it.
fn script_url(app: &App, info: &ConnInfo) -> String {
    format!("{}{}/update.php", info.origin(), app.prefix)
}

fn answer_response(status: StatusCode, body: Vec<u8>) -> Response {
    text(status, body)
}

/// Reads a request body up to the configured limit.
async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, Response> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("# request body larger than {limit} bytes - nothing stored\r\n"),
                );
            }
            source = s.source();
        }
        tracing::warn!("incomplete request body: {e}");
        text(
            StatusCode::BAD_REQUEST,
            "# incomplete request body - nothing stored\r\n",
        )
    })
}

async fn update_migrate(State(app): State<SharedApp>, uri: Uri) -> Response {
    let cfg = match app.config.get() {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::OK,
                format!("# {} - exit\r\n", comment_safe(&e.php_message)),
            );
        }
    };
    match &cfg.server.migrate_url {
        Some(url) => migrate_response(url, uri.query().unwrap_or("")),
        None => text(
            StatusCode::NOT_FOUND,
            "# update-migrate.php: no <migrate url=\"…\"/> configured\r\n",
        ),
    }
}

fn migrate_response(url: &str, query: &str) -> Response {
    let target = format!("{url}?{query}");
    let mut r = text(
        StatusCode::FOUND,
        format!("# warping to '{}'\r\n", comment_safe(&target)),
    );
    if let Ok(v) = header::HeaderValue::from_str(&target) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `update.php`: polls and the device uploads.
async fn update_php(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let mut args = Args::parse(uri.query().unwrap_or(""));
    // PHP switches on `$_GET['mode']`; only a poll's form body adds to `$_REQUEST`
    let mut mode = args.get("mode").map(|m| m.into_owned());
    let cfg = match app.config.get() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("refusing {uri}: configuration error: {e}");
            return text(
                StatusCode::OK,
                format!("# {} - exit\r\n", comment_safe(&e.php_message)),
            );
        }
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::php::is_form_content_type);
    let request = if mode.is_none() && method == Method::POST && form {
        match read_body(request.into_body(), cfg.server.max_body).await {
            Ok(body) => args = Args::parse_request(uri.query().unwrap_or(""), Some(&body)),
            Err(r) => return r,
        }
        Request::default()
    } else {
        request
    };
    if let Err(refused) = request::check_args(&args) {
        tracing::warn!("refused {} from {}: {refused}", uri.path(), meta.peer);
        return text(
            StatusCode::BAD_REQUEST,
            format!("# {} - exit\r\n", comment_safe(&refused.to_string())),
        );
    }
    if args.has("show") {
        args.set("mode", "show");
        mode = Some("show".to_string());
    }
    let info = conn_info(&app, &cfg, &meta, &headers);
    if mode.is_none()
        && cfg.server.migrate_all
        && let Some(url) = &cfg.server.migrate_url
    {
        return migrate_response(url, uri.query().unwrap_or(""));
    }
    match mode.as_deref() {
        None => poll(&app, cfg, args, info).await,
        Some("show" | "status" | "ui") => text(
            StatusCode::OK,
            "for user interface functions, call admin/admin.php instead",
        ),
        Some("backup" | "query" | "vardump") => {
            let limit = cfg.server.max_body;
            let body = match read_body(request.into_body(), limit).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            device_upload(&app, cfg, args, mode.as_deref().unwrap_or(""), body).await
        }
        Some("upload") => {
            crate::admin::upload(app.clone(), cfg, args, method, headers, request).await
        }
        Some(other) => text(
            StatusCode::OK,
            format!("# unknown cmd={} - exit\r\n", comment_safe(other)),
        ),
    }
}

/// Applies file changes a pure step asked for (paths are root-relative).
fn apply_file_ops(root: &Path, ops: &[FileOp]) {
    for op in ops {
        match op {
            FileOp::Write { path, bytes } => {
                if let Err(e) = crate::state::write_atomic(&root.join(path), bytes) {
                    tracing::error!("cannot write {path}: {e}");
                }
            }
            FileOp::Delete { path } => match std::fs::remove_file(root.join(path)) {
                Ok(()) => tracing::info!("removed {path}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!("cannot remove {path}: {e}"),
            },
        }
    }
}

/// Writes a device's state and purges expired ones (at most hourly).
fn save_state(store: &StateStore, sn: &str, state: crate::xml::Element, cfg: &Config) {
    if let Err(e) = store.save(sn, state) {
        tracing::error!("cannot write state of {sn}: {e}");
    }
    let removed = store.expire(now(), cfg.status.expire);
    if !removed.is_empty() {
        tracing::info!("purged {} expired device states", removed.len());
    }
}

/// Runs `f` on the blocking pool (file I/O), or inline if the pool is gone.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

/// The state store of a device and its lock, held until the request is done: all requests of
/// one device are served one after the other. No store (and no lock) without state tracking
/// or serial number.
async fn lock_device(
    app: &App,
    cfg: &Config,
    sn: &str,
) -> (
    Option<Arc<StateStore>>,
    Option<tokio::sync::OwnedMutexGuard<()>>,
) {
    if crate::php::empty(sn) {
        return (None, None);
    }
    let Some(store) = app.states(cfg) else {
        return (None, None);
    };
    let guard = store.lock_for(sn).lock_owned().await;
    (Some(store), Some(guard))
}

/// What a poll reads from disk before `script::build` runs.
struct Prepared {
    loaded: Loaded,
    snippets: Arc<crate::snippets::Snapshot>,
    certs: CertFiles,
}

/// Reads the device's state, brings the snippet snapshot up to date for this request's
/// candidate files, and reads the device's certificate files (blocking I/O).
fn prepare(app: &App, cfg: &Config, args: &Args, sn: &str, store: Option<&StateStore>) -> Prepared {
    let loaded = match store {
        Some(s) if !crate::php::empty(sn) => s.load(sn),
        _ => Loaded::Missing,
    };
    let cands = script::candidates(cfg, args);
    let snippets = app.snippets.refresh(&app.root.join(&cfg.times.dir), &cands);
    let certs = match (&cfg.customcerts, sn.is_empty()) {
        (Some(cc), false) => CertFiles::load(&app.root, cc, sn),
        _ => CertFiles::default(),
    };
    Prepared {
        loaded,
        snippets,
        certs,
    }
}

/// Runs `script::build`, answering its needs (master device, reverse DNS, snippet hook).
async fn build_poll(
    app: &App,
    cfg: &Config,
    args: &Args,
    info: &ConnInfo,
    prep: &Prepared,
) -> script::PollOutput {
    let script_url = script_url(app, info);
    let mut resolved = Resolved::default();
    loop {
        let input = PollInput {
            config: cfg,
            args,
            conn: info,
            script_url: &script_url,
            state: &prep.loaded,
            snippets: &*prep.snippets,
            certs: &prep.certs,
            hook_configured: cfg.server.hook_exec.is_some(),
            resolved: &resolved,
            now: now(),
        };
        match script::build(&input) {
            Outcome::Done(out) => return out,
            Outcome::Need(Need::Master) => {
                resolved.master = Some(app.master.resolve(cfg, &app.root).await);
            }
            Outcome::Need(Need::Rdns(ip)) => {
                resolved.rdns = Some(reverse_dns(&ip).await);
            }
            Outcome::Need(Need::Hook(state)) => {
                let exec = cfg.server.hook_exec.clone().unwrap_or_default();
                let timeout = Duration::from_secs(cfg.server.hook_timeout_secs);
                resolved.hook = Some(crate::hooks::run(&app.root, &exec, timeout, &state).await);
            }
        }
    }
}

async fn poll(app: &SharedApp, cfg: Arc<Config>, args: Args, info: ConnInfo) -> Response {
    let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let started = std::time::Instant::now();
    let prep = {
        let (app, cfg, args, store, sn) = (
            app.clone(),
            cfg.clone(),
            args.clone(),
            store.clone(),
            sn.clone(),
        );
        blocking(move || prepare(&app, &cfg, &args, &sn, store.as_deref())).await
    };
    let Some(prep) = prep else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "# internal error - exit\r\n",
        );
    };
    let output = build_poll(app, &cfg, &args, &info, &prep).await;
    tracing::info!(
        sn = %sn,
        device_type = %args.get("type").unwrap_or_default(),
        ip = %info.device_ip().0,
        bytes = output.body.len(),
        micros = started.elapsed().as_micros() as u64,
        "poll"
    );
    let root = app.root.clone();
    let script::PollOutput {
        body,
        state,
        file_ops,
    } = output;
    blocking(move || {
        apply_file_ops(&root, &file_ops);
        if let (Some(store), Some(state)) = (store, state) {
            save_state(&store, &sn, state, &cfg);
        }
    })
    .await;
    answer_response(StatusCode::OK, body)
}

/// `gethostbyaddr`: the name of an address, the address itself when it has none, `None` for
/// something that is no address. Bounded by a short timeout.
async fn reverse_dns(ip: &str) -> Option<String> {
    let addr: std::net::IpAddr = ip.parse().ok()?;
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&addr).ok());
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(Some(name))) => Some(name),
        _ => Some(ip.to_string()),
    }
}

/// `mode=backup|query|vardump`: a device uploads data.
async fn device_upload(
    app: &SharedApp,
    cfg: Arc<Config>,
    args: Args,
    mode: &str,
    body: bytes::Bytes,
) -> Response {
    let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let app2 = app.clone();
    let mode = mode.to_string();
    let result = blocking(move || {
        let loaded = match &store {
            Some(s) => s.load(&sn),
            None => Loaded::Missing,
        };
        let mut ans = Answer::new(cfg.status_dir(), &args, &loaded, now(), cfg.status.logkeep);
        let (status, ops) = run_upload(&app2.root, &cfg, &args, &mode, &body, &mut ans);
        apply_file_ops(&app2.root, &ops);
        if let (Some(store), Some(state)) = (&store, ans.state_to_write()) {
            save_state(store, &sn, state.clone(), &cfg);
        }
        (status, ans.out)
    })
    .await;
    match result {
        Some((status, out)) => answer_response(status, out),
        None => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "# internal error - exit\r\n",
        ),
    }
}

/// The `mode=` uploads on an [`Answer`]; returns the HTTP status and file changes.
fn run_upload(
    root: &Path,
    cfg: &Config,
    args: &Args,
    mode: &str,
    body: &[u8],
    ans: &mut Answer,
) -> (StatusCode, Vec<FileOp>) {
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    match mode {
        "backup" => {
            let Some(hwid) = arg("hwid") else {
                let Exit = ans.bailout("need 'hwid' arg for mode=backup, use ?hwid=#h");
                return (StatusCode::OK, Vec::new());
            };
            if hwid.is_empty() {
                let Exit = ans.bailout("refused: empty 'hwid' for mode=backup");
                return (StatusCode::BAD_REQUEST, Vec::new());
            }
            if let Ok(stamp) = crate::backup::store(root, cfg, &hwid, body, ans) {
                if let Some(t) = stamp {
                    ans.log_device("backup", &t.to_string());
                }
                ans.finish();
            }
            (StatusCode::OK, Vec::new())
        }
        "query" => {
            let Some(sn) = arg("sn") else {
                let Exit = ans.bailout("need 'sn' arg for mode=query, use ?sn=#m");
                return (StatusCode::OK, Vec::new());
            };
            let Some(id) = arg("id") else {
                let Exit = ans.bailout("need 'id' arg for mode=query, go fix update.php");
                return (StatusCode::OK, Vec::new());
            };
            if !request::valid_query_id(&id) {
                let Exit = ans.bailout(&format!("query id '{id}' is not a valid name"));
                return (StatusCode::BAD_REQUEST, Vec::new());
            }
            match crate::queries::save(ans, &sn, &id, body) {
                Ok(()) => {
                    ans.dump(&format!("query {id}"), body);
                    ans.finish();
                    (StatusCode::OK, Vec::new())
                }
                Err(Exit) => (StatusCode::BAD_REQUEST, Vec::new()),
            }
        }
        _ => match crate::certs::vardump(cfg, args, body, ans) {
            Ok(ops) => (StatusCode::OK, ops),
            Err(crate::certs::VardumpError::Php(Exit)) => (StatusCode::OK, Vec::new()),
            Err(crate::certs::VardumpError::Refused(Exit)) => (StatusCode::BAD_REQUEST, Vec::new()),
        },
    }
}

/// `update-server simulate`: the answer a device would get, without writing anything.
pub async fn simulate(app: &SharedApp, query: &str, host: &str) -> Result<Vec<u8>, String> {
    let cfg = app.config.get().map_err(|e| e.to_string())?;
    let args = Args::parse(query.trim_start_matches('?'));
    request::check_args(&args).map_err(|e| e.to_string())?;
    let info = ConnInfo::plain(host, 80);
    let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
    let store = app.states(&cfg);
    let prep = prepare(app, &cfg, &args, &sn, store.as_deref());
    Ok(build_poll(app, &cfg, &args, &info, &prep).await.body)
}
