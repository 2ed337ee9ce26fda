//! The admin side of the server. It owns: the login, sessions and CSRF tokens
//! ([`session`]); the admin pages below `{prefix}/admin/admin.php` (aliases `admin/` and
//! `admin`) — the device status page with its fleet summary (`mode=status`, the default,
//! [`status`]), the configuration (`mode=show`, [`show`]) and "add a new device"
//! (`mode=info`, [`info`]); the `mode=ui&cmd=…` endpoints (`delstatus`, `touchstatus`,
//! `updatestatus`, `updaterows`, `rowpart`, `delfile`, `deliverfile`); the signed-certificate upload
//! `update.php?mode=upload` ([`upload`]); the read-only JSON API `{prefix}/api/devices[/SN]`
//! ([`api`]); and the page's own style sheet and script, compiled in and served from memory
//! as `{prefix}/web/update-server.css|js`.
//!
//! Rendering is pure ([`status`], [`show`], [`info`], [`api`] turn configuration, device
//! views, file lists and the clock into HTML or JSON); this module is the shell around it:
//! HTTP, sessions, the HTTPS redirect, files, locks. What is shown of a device is computed
//! once per state file version ([`view::ViewCache`]), so a page of 10 000 devices costs a
//! directory listing, a `stat` per file and string formatting.
//!
//! Rules (contract §6): every page, endpoint and download needs a session; state-changing
//! requests need the session's CSRF token; with a login configured, plain-HTTP requests are
//! redirected to the HTTPS listener (PHP's `?nohttps` turns that off for the browser).

pub mod api;
pub mod files;
pub mod html;
pub mod info;
pub mod session;
pub mod show;
pub mod status;
pub mod view;

use crate::app::SharedApp;
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::php::Args;
use crate::respond::text;
use crate::state::Loaded;
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Extension, Json};
use files::{BackupCache, CertIndex, CertState};
use html::{Frame, Nav, admin_url};
use session::{Session, Sessions, Throttle};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use view::{Filter, ViewCache};

/// Bumped with the style sheet and script, so browsers fetch the new ones.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");
const CSS: &str = include_str!("../../web/update-server.css");
const JS: &str = include_str!("../../web/update-server.js");

/// Largest form body (login, actions) read.
const MAX_FORM: usize = 64 * 1024;
/// Largest signed-certificate upload read.
const MAX_UPLOAD: usize = 1024 * 1024;

/// What the admin side keeps between requests.
#[derive(Default)]
pub struct AdminState {
    pub sessions: Sessions,
    pub throttle: Throttle,
    views: ViewCache,
    backups: BackupCache,
    https_port: OnceLock<u16>,
}

impl AdminState {
    /// Tells where the HTTPS listener is (for the redirect of plain-HTTP admin requests).
    pub fn set_https_port(&self, port: u16) {
        let _ = self.https_port.set(port);
    }

    pub fn https_port(&self) -> Option<u16> {
        self.https_port.get().copied()
    }
}

/// Reads every state file once in the background (at start-up), so that the first status
/// page is as quick as the next ones and the first polls find their state in memory.
pub fn warm_up(app: SharedApp) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let Ok(cfg) = app.config.get() else {
            return;
        };
        let started = std::time::Instant::now();
        let (_, total) = collect_rows(&app, &cfg, &Filter::parse(""), false);
        tracing::info!(
            "read {total} device states in {} ms",
            started.elapsed().as_millis()
        );
    })
}

/// The admin routes below `prefix`.
pub fn routes(prefix: &str) -> Router<SharedApp> {
    Router::new()
        .route(&format!("{prefix}/admin/admin.php"), any(admin_php))
        .route(&format!("{prefix}/admin/"), any(admin_php))
        .route(&format!("{prefix}/admin"), any(admin_php))
        .route(&format!("{prefix}/web/update-server.css"), get(css))
        .route(&format!("{prefix}/web/update-server.js"), get(js))
        .route(&format!("{prefix}/api/devices"), get(api_devices))
        .route(&format!("{prefix}/api/devices/{{sn}}"), get(api_device))
        // a status page of 10 000 devices is ~15 MB of HTML, ~1 MB gzipped
        .layer(
            tower_http::compression::CompressionLayer::new()
                .quality(tower_http::CompressionLevel::Fastest),
        )
}

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(ctype: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, ctype),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Adds the headers every admin answer carries.
fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r
}

fn html_response(status: StatusCode, body: String) -> Response {
    harden(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn json_response(status: StatusCode, v: serde_json::Value) -> Response {
    harden((status, Json(v)).into_response())
}

fn plain(status: StatusCode, msg: &str) -> Response {
    harden(text(status, format!("# {msg} - exit\r\n")))
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut r = harden(text(status, format!("see {location}\n")));
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn add_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

fn internal_error() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

fn cookie_path(prefix: &str) -> &str {
    if prefix.is_empty() { "/" } else { prefix }
}

/// One admin request, parsed.
struct Ctx {
    app: SharedApp,
    cfg: Arc<Config>,
    https: bool,
    host: String,
    peer: IpAddr,
    args: Args,
    headers: HeaderMap,
    method: Method,
    query: String,
}

impl Ctx {
    fn arg(&self, k: &str) -> Option<String> {
        self.args.get(k).map(|v| v.into_owned())
    }

    fn prefix(&self) -> &str {
        &self.app.prefix
    }

    fn session(&self) -> Option<Session> {
        let token = session::cookie(&self.headers, session::COOKIE)?;
        self.app.admin.sessions.get(token)
    }

    /// The CSRF token the request carries (header, else `csrf` argument).
    fn csrf_given(&self) -> Option<String> {
        self.headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .or_else(|| self.arg("csrf"))
    }

    fn frame<'a>(&'a self, s: Option<&'a Session>, title: &'a str, nav: Nav) -> Frame<'a> {
        Frame {
            prefix: self.prefix(),
            title,
            nav,
            csrf: s.map(|s| s.csrf.as_str()),
            user: s.map(|s| s.user.as_str()),
            refresh: self.cfg.status.refresh,
            notice: None,
        }
    }
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// `admin/admin.php` and its aliases.
async fn admin_php(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request: Request,
) -> Response {
    let cfg = match app.config.get() {
        Ok(c) => c,
        Err(err) => {
            tracing::error!("admin page: configuration error: {err}");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("configuration error: {err}"),
            );
        }
    };
    let info = crate::trust::conn_info(&cfg, &meta, &headers);
    let query = uri.query().unwrap_or("").to_string();
    let mut args = Args::parse(&query);
    if method == Method::POST && is_form(&headers) {
        let body = match axum::body::to_bytes(request.into_body(), MAX_FORM).await {
            Ok(b) => b,
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large"),
        };
        for (k, v) in Args::parse(&String::from_utf8_lossy(&body)).iter() {
            args.set(k, v.to_vec());
        }
    }
    if args.has("show") {
        args.set("mode", "show");
    }
    let nohttps_now = args.has("nohttps");
    let ctx = Ctx {
        https: info.https,
        host: info.host.clone(),
        peer: meta.peer.ip().to_canonical(),
        app,
        cfg,
        args,
        headers,
        method,
        query,
    };
    let r = dispatch(&ctx, nohttps_now).await;
    if nohttps_now {
        add_cookie(
            r,
            &session::set_cookie(
                session::NOHTTPS_COOKIE,
                Some("1"),
                cookie_path(ctx.prefix()),
                ctx.https,
            ),
        )
    } else {
        r
    }
}

/// `https://host:port/path?query` for a plain-HTTP request, when a login is configured and
/// an HTTPS listener is known.
fn https_redirect(ctx: &Ctx, nohttps_now: bool) -> Option<String> {
    if ctx.https
        || !session::login_configured(&ctx.cfg.master)
        || nohttps_now
        || session::cookie(&ctx.headers, session::NOHTTPS_COOKIE) == Some("1")
    {
        return None;
    }
    let port = ctx.app.admin.https_port()?;
    let host = match ctx.host.rfind(':') {
        Some(i) if !ctx.host[i..].contains(']') => &ctx.host[..i],
        _ => ctx.host.as_str(),
    };
    let port = if port == 443 {
        String::new()
    } else {
        format!(":{port}")
    };
    let q = if ctx.query.is_empty() {
        String::new()
    } else {
        format!("?{}", ctx.query)
    };
    Some(format!(
        "https://{host}{port}{}{q}",
        admin_url(ctx.prefix(), "")
    ))
}

async fn dispatch(ctx: &Ctx, nohttps_now: bool) -> Response {
    if let Some(url) = https_redirect(ctx, nohttps_now) {
        let status = if matches!(ctx.method, Method::GET | Method::HEAD) {
            StatusCode::FOUND
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        return redirect(status, &url);
    }
    let session = ctx.session();
    if ctx.method == Method::POST {
        match ctx.arg("action").as_deref() {
            Some("login") => return login(ctx).await,
            Some("logout") => return logout(ctx, session.as_ref()),
            _ => {}
        }
    }
    let mode = ctx.arg("mode").unwrap_or_else(|| "status".to_string());
    let Some(session) = session else {
        return match mode.as_str() {
            "ui" => json_response(
                StatusCode::FORBIDDEN,
                serde_json::json!({ "error": "not logged in" }),
            ),
            _ => login_page(ctx, StatusCode::OK, None),
        };
    };
    match mode.as_str() {
        "status" => status_page(ctx, &session).await,
        "show" => show_page(ctx, &session).await,
        "info" => info_page(ctx, &session),
        "ui" => ui(ctx, &session).await,
        other => plain(
            StatusCode::BAD_REQUEST,
            &format!("unknown mode={}", crate::answer::comment_safe(other)),
        ),
    }
}

fn login_page(ctx: &Ctx, status: StatusCode, message: Option<&str>) -> Response {
    let mut frame = ctx.frame(None, "Log in", Nav::Login);
    if !ctx.https && session::login_configured(&ctx.cfg.master) {
        frame.notice = Some(
            "This connection is not encrypted: the password travels in clear text. Use the server's HTTPS address."
                .to_string(),
        );
    }
    let action = if ctx.query.is_empty() {
        admin_url(ctx.prefix(), "")
    } else {
        admin_url(ctx.prefix(), &ctx.query)
    };
    let body = html::login_form(
        &action,
        message,
        !session::login_configured(&ctx.cfg.master),
    );
    html_response(status, html::page(&frame, &body))
}

async fn login(ctx: &Ctx) -> Response {
    let wait = ctx.app.admin.throttle.reserve(ctx.peer);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    let user = ctx.arg("user").unwrap_or_default();
    let password = ctx
        .arg("password")
        .or_else(|| ctx.arg("pw"))
        .unwrap_or_default();
    let master = ctx.cfg.master.clone();
    let u = user.clone();
    let checked = blocking(move || session::check_login(&master, &u, &password)).await;
    match checked {
        Some(Ok(true)) => {
            ctx.app.admin.throttle.succeeded(ctx.peer);
            let s = ctx.app.admin.sessions.create(&user);
            tracing::info!("admin login of {user:?} from {}", ctx.peer);
            let target = admin_url(ctx.prefix(), &ctx.query);
            add_cookie(
                redirect(StatusCode::SEE_OTHER, &target),
                &session::set_cookie(
                    session::COOKIE,
                    Some(&s.token),
                    cookie_path(ctx.prefix()),
                    ctx.https,
                ),
            )
        }
        other => {
            if let Some(Err(e)) = &other {
                tracing::error!("{e}");
            }
            ctx.app.admin.throttle.failed(ctx.peer);
            tracing::warn!("failed admin login of {user:?} from {}", ctx.peer);
            login_page(ctx, StatusCode::FORBIDDEN, Some("Wrong user or password."))
        }
    }
}

fn logout(ctx: &Ctx, s: Option<&Session>) -> Response {
    if let Some(s) = s {
        if !session::csrf_ok(&s.csrf, ctx.csrf_given().as_deref()) {
            return plain(StatusCode::FORBIDDEN, "bad or missing CSRF token");
        }
        ctx.app.admin.sessions.remove(&s.token);
    }
    add_cookie(
        redirect(StatusCode::SEE_OTHER, &admin_url(ctx.prefix(), "")),
        &session::set_cookie(session::COOKIE, None, cookie_path(ctx.prefix()), ctx.https),
    )
}

/// Reads the cached master info (`master/@cache`).
fn cached_master(root: &std::path::Path, cfg: &Config) -> show::CachedInfo {
    let path = root.join(&cfg.master.cache);
    let Ok(meta) = std::fs::metadata(&path) else {
        return show::CachedInfo::None;
    };
    let mtime = meta.modified().map_or(0, crate::clock::unix_secs);
    match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| crate::firmware::parse_box_info(&b, &cfg.master.cache))
    {
        Ok(info) => show::CachedInfo::Ok { info, mtime },
        Err(e) => show::CachedInfo::Unreadable(e),
    }
}

/// The device rows of the status page and the API: every state file, its view (cached) and
/// its files (the backup lists only `with_backups`: the page loads them when opened),
/// filtered. Returns the rows and the number of state files.
fn collect_rows(
    app: &SharedApp,
    cfg: &Arc<Config>,
    filter: &Filter,
    with_backups: bool,
) -> (Vec<status::Row>, usize) {
    let Some(store) = app.states(cfg) else {
        return (Vec::new(), 0);
    };
    let entries: Vec<(String, Loaded)> = store.all().into_iter().map(|(k, l, _)| (k, l)).collect();
    let total = entries.len();
    let views = app.admin.views.views(cfg, &entries);
    let certs = CertIndex::read(&app.root, cfg.customcerts.as_ref());
    let now = crate::clock::now();
    let rows = views
        .into_iter()
        .filter(|v| {
            filter.is_empty()
                || filter.matches(&v.filter_text(v.is_missing(cfg.status.missing, now)))
        })
        .map(|v| row_files(app, cfg, v, &certs, with_backups))
        .collect();
    (rows, total)
}

fn row_files(
    app: &SharedApp,
    cfg: &Config,
    view: Arc<view::DeviceView>,
    certs: &CertIndex,
    with_backups: bool,
) -> status::Row {
    let certs = match &cfg.customcerts {
        Some(cc) if view.problem.is_none() => certs.state(cc, &view.key),
        _ => CertState::default(),
    };
    let backups = match (&cfg.backup.dir, view.backup) {
        (Some(dir), Some(_)) if with_backups && !dir.is_empty() => {
            app.admin.backups.list(&app.root, dir, &view.hwid)
        }
        _ => Arc::new(Vec::new()),
    };
    status::Row {
        view,
        certs,
        backups,
    }
}

/// One device's row data (for `updatestatus`), `None` when it has no state file.
fn one_row(app: &SharedApp, cfg: &Arc<Config>, sn: &str) -> Option<status::Row> {
    let store = app.states(cfg)?;
    let loaded = store.load(sn);
    if matches!(loaded, Loaded::Missing) {
        return None;
    }
    let v = app.admin.views.one(cfg, sn, &loaded);
    let idx = match &cfg.customcerts {
        Some(cc) => CertIndex::for_device(&app.root, cc, sn),
        None => CertIndex::default(),
    };
    Some(row_files(app, cfg, v, &idx, true))
}

fn master_of(root: &std::path::Path, cfg: &Config) -> status::MasterBuilds {
    let cached = match cached_master(root, cfg) {
        show::CachedInfo::Ok { info, .. } => Some(info),
        _ => None,
    };
    status::master_builds(cfg, cached.as_ref())
}

/// The `rows` argument: how many rows to show (default one page, `all` for all).
fn rows_arg(ctx: &Ctx) -> usize {
    match ctx.arg("rows").as_deref() {
        Some("all") => usize::MAX,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(status::PAGE_ROWS),
        None => status::PAGE_ROWS,
    }
}

async fn status_page(ctx: &Ctx, s: &Session) -> Response {
    let filter_text = ctx.arg("filter").unwrap_or_default();
    let (app, cfg, f) = (ctx.app.clone(), ctx.cfg.clone(), filter_text.clone());
    let csrf = s.csrf.clone();
    let limit = rows_arg(ctx);
    let body = blocking(move || {
        let started = std::time::Instant::now();
        let (rows, total) = collect_rows(&app, &cfg, &Filter::parse(&f), false);
        let groups = view::show_groups(&cfg);
        let sctx = status::Ctx::new(
            &cfg,
            &app.prefix,
            &csrf,
            &groups,
            master_of(&app.root, &cfg),
        );
        let html = status::render_body(&sctx, &rows, &f, total, limit);
        tracing::debug!(
            devices = total,
            matching = rows.len(),
            micros = started.elapsed().as_micros() as u64,
            "status page"
        );
        html
    })
    .await;
    match body {
        Some(b) => html_response(
            StatusCode::OK,
            html::page(&ctx.frame(Some(s), "Devices", Nav::Status), &b),
        ),
        None => internal_error(),
    }
}

async fn show_page(ctx: &Ctx, s: &Session) -> Response {
    let (app, cfg) = (ctx.app.clone(), ctx.cfg.clone());
    let body = blocking(move || {
        let cache = cached_master(&app.root, &cfg);
        let snippets = read_snippets(&app.root, &cfg.times.dir);
        show::render_body(&cfg, &cache, &snippets)
    })
    .await;
    match body {
        Some(b) => html_response(
            StatusCode::OK,
            html::page(&ctx.frame(Some(s), "Configuration", Nav::Show), &b),
        ),
        None => internal_error(),
    }
}

/// The snippet files (`*-*-*.txt`) of the scripts directory, by name.
fn read_snippets(root: &std::path::Path, dir: &str) -> Vec<show::SnippetFile> {
    const MAX_SHOWN: u64 = 256 * 1024;
    let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
        return Vec::new();
    };
    let mut out: Vec<show::SnippetFile> = rd
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".txt")?;
            if stem.split('-').count() < 3 || name.starts_with('.') {
                return None;
            }
            let meta = entry.metadata().ok()?;
            if !meta.is_file() {
                return None;
            }
            let mtime = meta.modified().map_or(0, crate::clock::unix_secs);
            let content = if meta.len() > MAX_SHOWN {
                Err(format!("{} bytes: too large to show here", meta.len()))
            } else {
                std::fs::read(entry.path())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| e.to_string())
            };
            Some(show::SnippetFile {
                name: format!("{dir}/{name}"),
                mtime,
                content,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn info_page(ctx: &Ctx, s: &Session) -> Response {
    let base = format!(
        "{}://{}{}",
        if ctx.https { "https" } else { "http" },
        ctx.host,
        ctx.prefix()
    );
    let devname: String = ctx
        .arg("devname")
        .unwrap_or_default()
        .chars()
        .take(128)
        .collect();
    let env = ctx.arg("env");
    let body = info::render_body(
        &ctx.cfg,
        ctx.prefix(),
        &base,
        env.as_deref(),
        devname.trim(),
    );
    html_response(
        StatusCode::OK,
        html::page(&ctx.frame(Some(s), "Add device", Nav::Info), &body),
    )
}

/// Checks the `sn` argument of a ui command.
fn sn_arg(ctx: &Ctx, cmd: &str) -> Result<String, String> {
    let Some(sn) = ctx.arg("sn") else {
        return Err(format!("need 'sn' arg for mode=ui and cmd={cmd}"));
    };
    match ctx
        .args
        .get_bytes("sn")
        .map(|b| crate::request::check_name("sn", b))
    {
        Some(Ok(())) if !sn.is_empty() => Ok(sn),
        Some(Err(e)) => Err(e.to_string()),
        _ => Err("argument 'sn' is empty".to_string()),
    }
}

async fn ui(ctx: &Ctx, s: &Session) -> Response {
    let Some(cmd) = ctx.arg("cmd") else {
        return plain(StatusCode::BAD_REQUEST, "need 'cmd' arg for mode=ui");
    };
    let changes = matches!(cmd.as_str(), "delstatus" | "touchstatus" | "delfile");
    if (changes || ctx.method == Method::POST)
        && !session::csrf_ok(&s.csrf, ctx.csrf_given().as_deref())
    {
        tracing::warn!(
            "refused mode=ui&cmd={cmd} from {}: bad CSRF token",
            ctx.peer
        );
        return json_response(
            StatusCode::FORBIDDEN,
            serde_json::json!({ "error": "bad or missing CSRF token" }),
        );
    }
    match cmd.as_str() {
        "delstatus" | "touchstatus" => {
            let sn = match sn_arg(ctx, &cmd) {
                Ok(sn) => sn,
                Err(m) => return plain(StatusCode::BAD_REQUEST, &m),
            };
            let Some(store) = ctx.app.states(&ctx.cfg) else {
                return json_response(StatusCode::OK, serde_json::json!(false));
            };
            let lock = store.lock_for(&sn);
            let _guard = lock.lock().await;
            let touch = cmd == "touchstatus";
            let who = ctx.peer;
            let done = blocking(move || {
                if touch {
                    match store.load(&sn) {
                        Loaded::Ok(el) => {
                            let mut el = (*el).clone();
                            el.set_attr("seen", crate::clock::now().to_string());
                            store.save(&sn, el).is_ok()
                        }
                        _ => false,
                    }
                } else {
                    match store.delete(&sn) {
                        Ok(deleted) => {
                            if deleted {
                                tracing::info!("admin at {who} deleted the status of {sn}");
                            }
                            deleted
                        }
                        Err(e) => {
                            tracing::error!("cannot delete the status of {sn}: {e}");
                            false
                        }
                    }
                }
            })
            .await
            .unwrap_or(false);
            json_response(StatusCode::OK, serde_json::json!(done))
        }
        "delfile" => {
            let sn = match sn_arg(ctx, &cmd) {
                Ok(sn) => sn,
                Err(m) => return plain(StatusCode::BAD_REQUEST, &m),
            };
            let Some(file) = ctx.arg("file") else {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "need 'file' arg for mode=ui and cmd=delfile",
                );
            };
            let rel = match files::deletable(&ctx.cfg, &sn, &file) {
                Ok(r) => r,
                Err(e) => return plain(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            let path = ctx.app.root.join(&rel);
            let who = ctx.peer;
            let done = blocking(move || match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!("admin at {who} deleted {rel}");
                    true
                }
                Err(_) => false,
            })
            .await
            .unwrap_or(false);
            json_response(StatusCode::OK, serde_json::json!(done))
        }
        "updatestatus" => {
            let sn = match sn_arg(ctx, &cmd) {
                Ok(sn) => sn,
                Err(m) => return plain(StatusCode::BAD_REQUEST, &m),
            };
            let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
            let html = blocking(move || {
                let r = one_row(&app, &cfg, &sn)?;
                let groups = view::show_groups(&cfg);
                let sctx = status::Ctx::new(
                    &cfg,
                    &app.prefix,
                    &csrf,
                    &groups,
                    status::MasterBuilds::default(),
                );
                Some(status::row(&sctx, &r))
            })
            .await;
            match html {
                Some(Some(h)) => json_response(StatusCode::OK, serde_json::json!(h)),
                Some(None) => json_response(StatusCode::NOT_FOUND, serde_json::json!(false)),
                None => internal_error(),
            }
        }
        "rowpart" => {
            let sn = match sn_arg(ctx, &cmd) {
                Ok(sn) => sn,
                Err(m) => return plain(StatusCode::BAD_REQUEST, &m),
            };
            let name = ctx.arg("part").unwrap_or_default();
            let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
            let html = blocking(move || {
                let r = one_row(&app, &cfg, &sn)?;
                let sctx = status::Ctx::new(
                    &cfg,
                    &app.prefix,
                    &csrf,
                    &[],
                    status::MasterBuilds::default(),
                );
                Some(status::part(&sctx, &r, &name))
            })
            .await;
            match html {
                Some(Some(Some(h))) => json_response(StatusCode::OK, serde_json::json!(h)),
                Some(Some(None)) => plain(StatusCode::BAD_REQUEST, "unknown part"),
                Some(None) => json_response(StatusCode::NOT_FOUND, serde_json::json!(false)),
                None => internal_error(),
            }
        }
        "rows" => {
            // the next rows of the status page (after a key), or the first ones for a filter,
            // with the summary and the count of the matching devices
            let filter = ctx.arg("filter").unwrap_or_default();
            let after = ctx.arg("after").filter(|a| !a.is_empty());
            let limit = rows_arg(ctx);
            let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
            let out = blocking(move || {
                let (rows, total) = collect_rows(&app, &cfg, &Filter::parse(&filter), false);
                let groups = view::show_groups(&cfg);
                let sctx = status::Ctx::new(&cfg, &app.prefix, &csrf, &groups, master_of(&app.root, &cfg));
                let shown = status::window(&rows, after.as_deref(), limit);
                let before = after.as_deref().map_or(0, |a| {
                    rows.partition_point(|r| r.view.key.as_str() <= a)
                });
                let remaining = rows.len() - before - shown.len();
                let summary = status::summary(&cfg, &sctx.master, sctx.now, &rows);
                serde_json::json!({
                    "rows": status::rows_fragment(&sctx, shown, remaining, &filter, before + shown.len()),
                    "summary": status::render_summary(&cfg, &summary),
                    "count": status::count_text(rows.len(), total, &filter),
                    "matched": rows.len(),
                    "total": total,
                })
            })
            .await;
            match out {
                Some(v) => json_response(StatusCode::OK, v),
                None => internal_error(),
            }
        }
        "updaterows" => {
            let list = ctx.arg("sn").unwrap_or_default();
            let sns: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty() && crate::request::check_name("sn", s.as_bytes()).is_ok())
                .take(500)
                .map(str::to_string)
                .collect();
            let (app, cfg, csrf) = (ctx.app.clone(), ctx.cfg.clone(), s.csrf.clone());
            let out = blocking(move || {
                let groups = view::show_groups(&cfg);
                let sctx = status::Ctx::new(
                    &cfg,
                    &app.prefix,
                    &csrf,
                    &groups,
                    status::MasterBuilds::default(),
                );
                let mut map = serde_json::Map::new();
                for sn in sns {
                    let v = match one_row(&app, &cfg, &sn) {
                        Some(r) => serde_json::Value::String(status::row(&sctx, &r)),
                        None => serde_json::Value::Null,
                    };
                    map.insert(sn, v);
                }
                serde_json::Value::Object(map)
            })
            .await;
            match out {
                Some(v) => json_response(StatusCode::OK, v),
                None => internal_error(),
            }
        }
        "deliverfile" => {
            let Some(name) = ctx.arg("fn") else {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "need 'fn' arg for mode=ui and cmd=deliverfile",
                );
            };
            deliver(ctx, name).await
        }
        other => plain(
            StatusCode::BAD_REQUEST,
            &format!(
                "unknown cmd={} for mode=ui",
                crate::answer::comment_safe(other)
            ),
        ),
    }
}

/// `deliverfile`: a download of a file below the status, backup, certificate or snippet
/// directory.
async fn deliver(ctx: &Ctx, name: String) -> Response {
    let (root, cfg) = (ctx.app.root.clone(), ctx.cfg.clone());
    let n = name.clone();
    let read = blocking(move || {
        let path = files::resolve(&root, &cfg, &n).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| e.to_string())
    })
    .await;
    match read {
        Some(Ok(bytes)) => {
            let base = name.rsplit('/').next().unwrap_or("download");
            let safe: String = base
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            harden(
                (
                    [
                        (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                        (
                            header::CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{safe}\""),
                        ),
                    ],
                    Body::from(bytes),
                )
                    .into_response(),
            )
        }
        Some(Err(e)) => {
            tracing::warn!("deliverfile refused from {}: {e}", ctx.peer);
            plain(StatusCode::NOT_FOUND, &e)
        }
        None => internal_error(),
    }
}

/// Where `proceed` may send the browser after an upload: an admin page of this server
/// (`admin/admin.php?…`, also with the prefix or as `admin/`), never another site.
pub fn proceed_target(prefix: &str, proceed: &str) -> Option<String> {
    let rest = proceed
        .strip_prefix(prefix)
        .filter(|_| !prefix.is_empty())
        .unwrap_or(proceed);
    let rest = rest.strip_prefix('/').unwrap_or(rest);
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    if !matches!(path, "admin/admin.php" | "admin/" | "admin") {
        return None;
    }
    match query {
        None | Some("") => Some(admin_url(prefix, "")),
        Some(q)
            if q.len() <= 512
                && q.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(
                            b,
                            b'=' | b'&' | b'%' | b'+' | b'-' | b'_' | b'.' | b'~' | b','
                        )
                }) =>
        {
            Some(admin_url(prefix, q))
        }
        _ => None,
    }
}

/// `update.php?mode=upload` (POST multipart, field `cert-SN`): an administrator uploads the
/// signed certificate of a device. PHP's argument checks answer first; then a session and
/// its CSRF token are required, and only `customcerts/@dir/SN-signedrequest.cer` of that
/// device can be written, and only with a certificate (PEM or DER).
pub async fn upload(
    app: SharedApp,
    cfg: Arc<Config>,
    args: Args,
    method: Method,
    headers: HeaderMap,
    request: Request,
) -> Response {
    if !args.has("sn") {
        return text(
            StatusCode::OK,
            "# need 'sn' arg for mode=upload, use ?sn=#m - exit\r\n",
        );
    }
    if !args.has("file") {
        return text(
            StatusCode::OK,
            "# need 'file' arg for mode=upload, use ?file=filename - exit\r\n",
        );
    }
    let peer = request
        .extensions()
        .get::<ConnMeta>()
        .map(|m| m.peer.ip().to_canonical());
    let Some(s) =
        session::cookie(&headers, session::COOKIE).and_then(|t| app.admin.sessions.get(t))
    else {
        return plain(
            StatusCode::FORBIDDEN,
            "mode=upload needs an administrator session",
        );
    };
    let sn = args.get("sn").map(|v| v.into_owned()).unwrap_or_default();
    let file = args.get("file").map(|v| v.into_owned()).unwrap_or_default();
    if sn.is_empty() || crate::request::check_name("sn", sn.as_bytes()).is_err() {
        return plain(StatusCode::BAD_REQUEST, "argument 'sn' refused");
    }
    let Some(cc) = &cfg.customcerts else {
        return plain(
            StatusCode::BAD_REQUEST,
            "custom certificates are not configured (customcerts/@dir)",
        );
    };
    let target = crate::certs::CertPaths::new(cc, &sn).signed;
    if file != target {
        return plain(
            StatusCode::BAD_REQUEST,
            &format!(
                "?file: only {} can be uploaded for this device",
                crate::answer::comment_safe(&target)
            ),
        );
    }
    let proceed = match args.get("proceed") {
        None => None,
        Some(p) => match proceed_target(&app.prefix, &p) {
            Some(t) => Some(t),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "?proceed: only an admin page of this server",
                );
            }
        },
    };
    if method != Method::POST {
        return plain(
            StatusCode::BAD_REQUEST,
            "No File uploaded - use back button to continue",
        );
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_UPLOAD).await {
        Ok(b) => b,
        Err(_) => {
            return plain(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("upload larger than {MAX_UPLOAD} bytes - nothing stored"),
            );
        }
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    let mut multipart = match axum::extract::Multipart::from_request(req, &()).await {
        Ok(m) => m,
        Err(_) => {
            return plain(
                StatusCode::BAD_REQUEST,
                "No File uploaded - use back button to continue",
            );
        }
    };
    let field_name = format!("cert-{sn}");
    let mut csrf = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut cert: Option<bytes::Bytes> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                if name == "csrf" {
                    csrf = field.text().await.ok();
                } else if name.eq_ignore_ascii_case(&field_name) {
                    match field.bytes().await {
                        Ok(b) => cert = Some(b),
                        Err(_) => {
                            return plain(
                                StatusCode::BAD_REQUEST,
                                "upload error - use back button to continue",
                            );
                        }
                    }
                }
            }
            Ok(None) => break,
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    "upload error - use back button to continue",
                );
            }
        }
    }
    if !session::csrf_ok(&s.csrf, csrf.as_deref()) {
        return plain(StatusCode::FORBIDDEN, "bad or missing CSRF token");
    }
    let Some(cert) = cert.filter(|c| !c.is_empty()) else {
        return plain(
            StatusCode::BAD_REQUEST,
            "No File uploaded (2) - use back button to continue",
        );
    };
    // a certificate, and (when the device's CSR is readable) for the CSR's key: anything else
    // would stop the device's certificate handling for good ("Certificate Errors")
    let request_path = app.root.join(crate::certs::CertPaths::new(cc, &sn).der);
    let der = crate::certs::cert_from_file(&cert);
    let checked = blocking(move || match std::fs::read(&request_path) {
        Ok(request) => crate::certs::check_signed(&der, &request),
        Err(_) => crate::certs::check_certificate(&der),
    })
    .await;
    match checked {
        Some(Ok(())) => {}
        Some(Err(e @ crate::certs::CertError::OtherKey)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!("the uploaded certificate does not fit this device: {e} - nothing stored"),
            );
        }
        Some(Err(e)) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the uploaded file is no certificate in PEM or DER format: {} - nothing stored",
                    crate::answer::comment_safe(&e.to_string())
                ),
            );
        }
        None => return internal_error(),
    }
    let path = app.root.join(&target);
    let written = blocking(move || crate::state::write_atomic(&path, &cert)).await;
    match written {
        Some(Ok(())) => {
            tracing::info!(
                "admin '{}' at {} uploaded {target}",
                s.user,
                peer.map(|p| p.to_string()).unwrap_or_default()
            );
        }
        Some(Err(e)) => {
            tracing::error!("cannot write {target}: {e}");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not store {target}"),
            );
        }
        None => return internal_error(),
    }
    match proceed {
        Some(t) => redirect(StatusCode::SEE_OTHER, &format!("{t}#d-{}", html::q(&sn))),
        None => plain(StatusCode::OK, "file upload - ?proceed= missing"),
    }
}

/// Whether an API request may read: an admin session, or the configured API token as
/// `Authorization: Bearer …`.
async fn api_allowed(app: &SharedApp, cfg: &Config, meta: &ConnMeta, headers: &HeaderMap) -> bool {
    if session::cookie(headers, session::COOKIE)
        .and_then(|t| app.admin.sessions.get(t))
        .is_some()
    {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
    else {
        return false;
    };
    let Some(token) = &cfg.server.api_token else {
        return false;
    };
    let peer = meta.peer.ip().to_canonical();
    let wait = app.admin.throttle.reserve(peer);
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    if session::csrf_ok(token, Some(given)) {
        app.admin.throttle.succeeded(peer);
        true
    } else {
        app.admin.throttle.failed(peer);
        tracing::warn!("API request from {peer} with a wrong token");
        false
    }
}

fn api_refused() -> Response {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({ "error": "log in or send Authorization: Bearer <api token>" }),
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"update-server\""),
    );
    r
}

/// The configuration for an API request, or the answer refusing it (configuration error, no
/// session or token).
async fn api_config(
    app: &SharedApp,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<Arc<Config>, Response> {
    let cfg = app.config.get().map_err(|e| {
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({ "error": e.to_string() }),
        )
    })?;
    if !api_allowed(app, &cfg, meta, headers).await {
        return Err(api_refused());
    }
    Ok(cfg)
}

async fn api_devices(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let cfg = match api_config(&app, &meta, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    let args = Args::parse(uri.query().unwrap_or(""));
    let filter = args
        .get("filter")
        .map(|f| f.into_owned())
        .unwrap_or_default();
    let out = blocking(move || {
        let (rows, total) = collect_rows(&app, &cfg, &Filter::parse(&filter), true);
        let groups = view::show_groups(&cfg);
        let now = crate::clock::now();
        let summary = status::summary(&cfg, &master_of(&app.root, &cfg), now, &rows);
        api::devices(&rows, total, &summary, &groups, cfg.status.missing, now)
    })
    .await;
    match out {
        Some(v) => json_response(StatusCode::OK, v),
        None => internal_error(),
    }
}

async fn api_device(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    UrlPath(sn): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let cfg = match api_config(&app, &meta, &headers).await {
        Ok(c) => c,
        Err(refused) => return refused,
    };
    if let Err(e) = crate::request::check_name("sn", sn.as_bytes()) {
        return json_response(
            StatusCode::BAD_REQUEST,
            serde_json::json!({ "error": e.to_string() }),
        );
    }
    let out = blocking(move || {
        let r = one_row(&app, &cfg, &sn)?;
        let groups = view::show_groups(&cfg);
        Some(api::device(
            &r,
            &groups,
            cfg.status.missing,
            crate::clock::now(),
            true,
        ))
    })
    .await;
    match out {
        Some(Some(v)) => json_response(StatusCode::OK, v),
        Some(None) => json_response(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "no such device" }),
        ),
        None => internal_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proceed_stays_on_the_admin_pages() {
        assert_eq!(
            proceed_target("", "admin/admin.php?mode=status").as_deref(),
            Some("/admin/admin.php?mode=status")
        );
        assert_eq!(
            proceed_target(
                "/update",
                "/update/admin/admin.php?mode=status&filter=ip232"
            )
            .as_deref(),
            Some("/update/admin/admin.php?mode=status&filter=ip232")
        );
        assert_eq!(
            proceed_target("/update", "admin/").as_deref(),
            Some("/update/admin/admin.php")
        );
        for bad in [
            "https://evil.example/",
            "//evil.example/admin/admin.php",
            "/\\evil.example",
            "admin/admin.php?x=1#frag",
            "admin/admin.php?a=b/c",
            "admin/admin.php?a=%0d%0aSet-Cookie:x",
            "../admin/admin.php",
            "update.php?mode=upload",
            "javascript:alert(1)",
            "admin/admin.php?a=b\r\nX: y",
        ] {
            assert_eq!(proceed_target("/update", bad), None, "{bad}");
        }
    }
}
