//! The device endpoints' shell: `update.php` (polls and the `mode=` uploads),
//! `update-migrate.php` (redirect to a new server, `<migrate url=…>`) and `fw/…` (firmware
//! files with range requests), all below `--prefix`.
//!
//! The `update.php` handler turns the request into [`ConnInfo`] and [`Args`], takes the
//! device's lock, loads what the pure `script::build` needs, resolves its [`Need`]s, and
//! writes the results. Connections are served by `conn`, the whole router is built by
//! `server`.

use crate::answer::{Answer, Exit, comment_safe};
use crate::app::{App, SharedApp, blocking};
use crate::certs::{CertFiles, FileOp};
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::php::Args;
use crate::request::{self, ConnInfo};
use crate::respond::text;
use crate::script::{self, PollInput};
use crate::state::{Loaded, StateStore};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The routes of the device endpoints: `update.php`, `update-migrate.php` and the
/// firmware files below `fw/`.
pub fn routes(app: &App) -> Router<SharedApp> {
    let p = &app.prefix;
    Router::new()
        .route(&format!("{p}/update.php"), any(update_php))
        .route(&format!("{p}/update-migrate.php"), any(update_migrate))
        .nest_service(&format!("{p}/fw"), app.firmware.clone().service())
}

/// The URL of `update.php` as this request reached it.
fn script_url(app: &App, info: &ConnInfo) -> String {
    format!("{}{}/update.php", info.origin(), app.prefix)
}

fn answer_response(status: StatusCode, body: Vec<u8>) -> Response {
    text(status, body)
}

/// Reads a request body up to the configured limit, into one buffer (sized from
/// `Content-Length` when the client sent one; a declared length above the limit is refused
/// before anything is read). `what` names the body in the refusal (e.g. `request body`).
async fn read_body(
    mut body: Body,
    limit: usize,
    what: &str,
    headers: &HeaderMap,
) -> Result<bytes::Bytes, Response> {
    use http_body_util::BodyExt;
    let too_large = || {
        tracing::warn!("refused a {what} larger than {limit} bytes");
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("# {what} larger than {limit} bytes - nothing stored\r\n"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut buf = bytes::BytesMut::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            tracing::warn!("incomplete request body: {e}");
            text(
                StatusCode::BAD_REQUEST,
                "# incomplete request body - nothing stored\r\n",
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(too_large());
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// Largest body of a `mode=vardump` that will be refused for the file it names (read only
/// for PHP's answer about it).
const REFUSED_VARDUMP_BODY: usize = 64 * 1024;

/// The body limit of `mode=vardump` from its arguments alone
/// ([`crate::certs::vardump_checks`]), or PHP's answer (status 200) when its argument checks
/// fail: decided before the body is read.
fn vardump_limit(cfg: &Config, args: &Args) -> Result<Option<(usize, &'static str)>, Vec<u8>> {
    let mut ans = Answer::new(None, args, &Loaded::Missing, crate::clock::now(), 0);
    match crate::certs::vardump_checks(cfg, args, &mut ans) {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some((
            REFUSED_VARDUMP_BODY,
            "vardump body for a file other than the device's CSR or request error",
        ))),
        Err(_) => Err(ans.out),
    }
}

/// The largest body of a `mode=` upload, and what it is called in a refusal.
fn upload_limit(cfg: &Config, mode: Option<&str>) -> (usize, &'static str) {
    if mode == Some("query") && cfg.server.max_query <= cfg.server.max_body {
        (cfg.server.max_query, "query result (server/@max-query)")
    } else {
        (cfg.server.max_body, "request body")
    }
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
    Extension(admin): Extension<crate::admin::SharedAdmin>,
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
        let body = read_body(
            request.into_body(),
            cfg.server.max_body,
            "request body",
            &headers,
        );
        match body.await {
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
    let info = crate::trust::conn_info(&cfg, &meta, &headers);
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
            let (mut limit, mut what) = upload_limit(&cfg, mode.as_deref());
            if mode.as_deref() == Some("vardump") {
                match vardump_limit(&cfg, &args) {
                    Ok(Some(small)) => (limit, what) = (small.0.min(limit), small.1),
                    Ok(None) => {}
                    Err(answer) => return answer_response(StatusCode::OK, answer),
                }
            }
            let body = match read_body(request.into_body(), limit, what, &headers).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mode = mode.as_deref().unwrap_or("");
            device_upload(&app, cfg, args, &info, mode, body).await
        }
        Some("upload") => crate::admin::upload(admin, cfg, args, method, headers, request).await,
        Some(other) => text(
            StatusCode::OK,
            format!("# unknown cmd={} - exit\r\n", comment_safe(other)),
        ),
    }
}

/// Applies file changes a pure step asked for (paths are root-relative), in order. A failed
/// write stops there (its path is returned; what follows may depend on it); a failed removal
/// is logged and the rest goes on.
fn apply_file_ops(root: &Path, ops: &[FileOp]) -> Result<(), String> {
    for op in ops {
        match op {
            FileOp::Write { path, bytes } => {
                if let Err(e) = crate::state::write_atomic(&root.join(path), bytes) {
                    tracing::error!("cannot write {path}: {e}");
                    return Err(path.clone());
                }
            }
            FileOp::Delete { path } => match std::fs::remove_file(root.join(path)) {
                Ok(()) => tracing::info!("removed {path}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!("cannot remove {path}: {e}"),
            },
        }
    }
    Ok(())
}

/// Hands a device's state to the writer and purges expired ones (at most hourly, on the
/// blocking pool).
fn save_state(store: &Arc<StateStore>, sn: &str, state: crate::xml::Element, cfg: &Config) {
    if let Err(e) = store.save(sn, state) {
        tracing::error!("cannot store state: {e}");
    }
    expire_states(store, cfg);
}

/// Purges expired states when due (at most hourly), off the async threads.
fn expire_states(store: &Arc<StateStore>, cfg: &Config) {
    let (now, expire) = (crate::clock::now(), cfg.status.expire);
    if !store.expiry_due(now, expire) {
        return;
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let removed = store.expire_now(now, expire);
        if !removed.is_empty() {
            tracing::info!("purged {} expired device states", removed.len());
        }
    });
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
    certs: Arc<CertFiles>,
}

/// Reads the device's state, brings the snippet snapshot up to date for this request's
/// candidate files, and reads the device's certificate files (blocking I/O).
fn prepare(app: &App, cfg: &Config, args: &Args, sn: &str, store: Option<&StateStore>) -> Prepared {
    let loaded = match store {
        Some(s) if !crate::php::empty(sn) => s.load(sn),
        _ => Loaded::Missing,
    };
    let cands = script::candidates(cfg, args);
    app.snippets.set_max(cfg.server.max_snippet);
    let snippets = app.snippets.refresh(&app.root.join(&cfg.times.dir), &cands);
    let certs = match (&cfg.customcerts, sn.is_empty()) {
        (Some(cc), false) => app.certs.load(&app.root, cc, sn),
        _ => Arc::default(),
    };
    Prepared {
        loaded,
        snippets,
        certs,
    }
}

/// [`prepare`] from memory, without a system call: `None` when something must be read.
fn prepare_cached(
    app: &App,
    cfg: &Config,
    sn: &str,
    store: Option<&StateStore>,
) -> Option<Prepared> {
    let loaded = match store {
        Some(s) if !crate::php::empty(sn) => s.load_cached(sn)?,
        _ => Loaded::Missing,
    };
    app.snippets.set_max(cfg.server.max_snippet);
    let snippets = app.snippets.cached(&app.root.join(&cfg.times.dir))?;
    let certs = match (&cfg.customcerts, sn.is_empty()) {
        (Some(cc), false) => app.certs.cached(&app.root, cc, sn)?,
        _ => Arc::default(),
    };
    Some(Prepared {
        loaded,
        snippets,
        certs,
    })
}

/// Answers the update script's needs: the master device, reverse DNS, the snippet hook.
struct PollResolver<'a> {
    app: &'a App,
    cfg: &'a Config,
}

impl script::Resolver for PollResolver<'_> {
    async fn master(&self) -> crate::firmware::MasterResolution {
        self.app.master.resolve(self.cfg, &self.app.root).await
    }

    async fn rdns(&self, ip: &str) -> Option<String> {
        reverse_dns(ip).await
    }

    async fn hook(&self, state: &crate::xml::Element) -> script::HookAnswer {
        let exec = self.cfg.server.hook_exec.clone().unwrap_or_default();
        let timeout = Duration::from_secs(self.cfg.server.hook_timeout_secs);
        crate::hooks::run(&self.app.root, &exec, timeout, state).await
    }
}

/// Runs `script::build`, answering its needs (master device, reverse DNS, snippet hook).
/// The clock is read once: every round of the script sees the same time.
async fn build_poll(
    app: &App,
    cfg: &Config,
    args: &Args,
    info: &ConnInfo,
    prep: &Prepared,
) -> script::PollOutput {
    let script_url = script_url(app, info);
    let sn = args.get("sn").unwrap_or_default();
    let rollouts = app.rollouts.for_device(&cfg.rollouts, &sn);
    let input = PollInput {
        config: cfg,
        args,
        conn: info,
        script_url: &script_url,
        state: &prep.loaded,
        snippets: &*prep.snippets,
        certs: &prep.certs,
        hook_configured: cfg.server.hook_exec.is_some(),
        now: crate::clock::now(),
        rollouts: &rollouts,
    };
    let resolver = PollResolver { app, cfg };
    let output = script::build_resolving(&input, &resolver)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "poll");
            script::PollOutput::internal_error()
        });
    app.rollouts.apply(&cfg.rollouts, &output.rollout_changes);
    output
}

async fn poll(app: &SharedApp, cfg: Arc<Config>, args: Args, info: ConnInfo) -> Response {
    let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let started = std::time::Instant::now();
    let prep = if let Some(p) = prepare_cached(app, &cfg, &sn, store.as_deref()) {
        Some(p)
    } else {
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
        ip = %info.device_ip().ip,
        bytes = output.body.len(),
        micros = started.elapsed().as_micros() as u64,
        "poll"
    );
    let root = app.root.clone();
    let script::PollOutput {
        body,
        state,
        file_ops,
        ..
    } = output;
    if !file_ops.is_empty() {
        blocking(move || apply_file_ops(&root, &file_ops)).await;
        // what is cached from those files is looked at again, notified yet or not
        app.watch.bump();
    }
    if let (Some(store), Some(state)) = (store, state) {
        save_state(&store, &sn, state, &cfg);
        store.backpressure().await;
    }
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
    info: &ConnInfo,
    mode: &str,
    body: bytes::Bytes,
) -> Response {
    let sn = args.get("sn").map(|s| s.into_owned()).unwrap_or_default();
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let app2 = app.clone();
    let mode = mode.to_string();
    let info = info.clone();
    let store2 = store.clone();
    let result = blocking(move || {
        let loaded = match &store2 {
            Some(s) => s.load(&sn),
            None => Loaded::Missing,
        };
        if let Err(refused) = crate::upload_trust::check(&cfg, &info, &args, &loaded, &mode) {
            tracing::warn!(
                "refused upload for sn '{sn}' from {}: {refused}",
                info.remote_ip
            );
            let out = format!("# {} - exit\r\n", comment_safe(&refused.to_string()));
            return (StatusCode::FORBIDDEN, out.into_bytes(), None, sn, cfg);
        }
        let mut ans = Answer::new(
            cfg.status_dir(),
            &args,
            &loaded,
            crate::clock::now(),
            cfg.status.logkeep,
        );
        let (status, ops) = run_upload(&app2.root, &cfg, &args, &mode, &body, &mut ans);
        let hwid = args.get("hwid").map(|s| s.into_owned()).unwrap_or_default();
        let what = match mode.as_str() {
            "vardump" => "vardump (CSR)",
            "query" => "query result",
            m => m,
        };
        tracing::info!(sn = %sn, hwid = %hwid, bytes = body.len(), status = status.as_u16(), files = ops.len(), "upload {what}");
        let _logged = apply_file_ops(&app2.root, &ops);
        // certificate files are cached (backups are not)
        if mode == "vardump" && !ops.is_empty() {
            app2.watch.bump();
        }
        let state = ans.take_state_to_write();
        (status, ans.out, state, sn, cfg)
    })
    .await;
    let Some((status, out, state, sn, cfg)) = result else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "# internal error - exit\r\n",
        );
    };
    if let (Some(store), Some(state)) = (&store, state) {
        // what the device uploaded is durable before it is confirmed
        if let Err(e) = store.save_durable(&sn, state).await {
            tracing::warn!("refused upload: {e}");
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("# {} - nothing stored\r\n", comment_safe(&e.to_string())),
            );
        }
        expire_states(store, &cfg);
    }
    answer_response(status, out)
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
            if let Ok(saved) = crate::backup::store(root, cfg, &hwid, body, ans) {
                if let Err(path) = apply_file_ops(root, &saved.plan.ops) {
                    let Exit = ans.bailout(&format!("backup: cannot save backup to file '{path}'"));
                    return (StatusCode::OK, Vec::new());
                }
                saved.plan.report(ans);
                if let Some(t) = saved.plan.stamp {
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
