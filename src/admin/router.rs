//! The routing of the admin side: the routes below the prefix, the parsing of an
//! `admin/admin.php` request into an [`AdminRequest`], the HTTPS redirect and the dispatch by `mode`
//! (and by `action` for the login and logout forms).

use super::request::AdminRequest;
use super::respond::{AdminError, AdminResult, add_cookie, asset, json_response, redirect};
use super::session;
use super::{api_http, backups, html, login, pages, rollouts, ui};
use crate::app::SharedApp;
use crate::conn::ConnMeta;
use crate::php::Args;
use axum::Extension;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{any, get};
use html::admin_url;

const CSS: &str = include_str!("../../web/update-server.css");
const JS: &str = include_str!("../../web/update-server.js");

/// Largest form body (actions) read for a logged-in administrator …
const MAX_FORM: usize = 64 * 1024;
/// … and without a session (a login form is a few hundred bytes): an unauthenticated
/// request cannot make the server read and parse much (fields are capped by `Args` too).
const MAX_ANON_FORM: usize = 4 * 1024;

/// The admin routes below `prefix`.
pub fn routes(prefix: &str) -> Router<SharedApp> {
    Router::new()
        .route(&format!("{prefix}/admin/admin.php"), any(admin_php))
        .route(&format!("{prefix}/admin/"), any(admin_php))
        .route(&format!("{prefix}/admin"), any(admin_php))
        .route(&format!("{prefix}/web/update-server.css"), get(css))
        .route(&format!("{prefix}/web/update-server.js"), get(js))
        .merge(api_http::routes(prefix))
        .merge(rollouts::routes(prefix))
        .route(&format!("{prefix}/api/audit"), get(super::audit_http::api))
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

pub fn cookie_path(prefix: &str) -> &str {
    if prefix.is_empty() { "/" } else { prefix }
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
) -> AdminResult {
    let cfg = match app.config.get_checked() {
        Ok(cfg) => cfg,
        Err(err) => {
            tracing::error!("admin page: configuration error: {err}");
            let e = AdminError::Plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("configuration error: {err}"),
            );
            return Ok(super::errors::page_or_answer(&app, &headers, e));
        }
    };
    let info = crate::tls::conn_info(&cfg, &meta, &headers);
    let query = uri.query().unwrap_or("").to_string();
    let mut args = Args::parse(&query);
    if method == Method::POST && is_form(&headers) {
        let session = session::cookie(&headers, session::COOKIE)
            .and_then(|t| app.admin.sessions.get(t))
            .is_some();
        let limit = if session || !session::login_configured(&cfg.master) {
            MAX_FORM
        } else {
            MAX_ANON_FORM
        };
        let Ok(body) = axum::body::to_bytes(request.into_body(), limit).await else {
            let e = AdminError::Plain(StatusCode::PAYLOAD_TOO_LARGE, "form too large".into());
            return Ok(super::errors::page_or_answer(&app, &headers, e));
        };
        for (k, v) in Args::parse(&String::from_utf8_lossy(&body)).iter() {
            args.set(k, v.to_vec());
        }
    }
    if args.has("show") {
        args.set("mode", "show");
    }
    let nohttps_now = args.has("nohttps");
    let ctx = AdminRequest {
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
    let r = match dispatch(&ctx, nohttps_now).await {
        Ok(r) => r,
        Err(e) => super::errors::page_or_answer(&ctx.app, &ctx.headers, e),
    };
    Ok(if nohttps_now {
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
    })
}

/// `https://host:port/path?query` for a plain-HTTP request, when a login is configured and
/// an HTTPS listener is known.
fn https_redirect(ctx: &AdminRequest, nohttps_now: bool) -> Option<String> {
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

async fn dispatch(ctx: &AdminRequest, nohttps_now: bool) -> AdminResult {
    if let Some(url) = https_redirect(ctx, nohttps_now) {
        let status = if matches!(ctx.method, Method::GET | Method::HEAD) {
            StatusCode::FOUND
        } else {
            StatusCode::TEMPORARY_REDIRECT
        };
        return Ok(redirect(status, &url));
    }
    let session = ctx.session();
    if ctx.method == Method::POST {
        match ctx.arg("action").as_deref() {
            Some("login") => return Ok(login::login(ctx).await),
            Some("logout") => return login::logout(ctx, session.as_ref()).await,
            _ => {}
        }
    }
    let mode = ctx.arg("mode").unwrap_or_else(|| "status".to_string());
    let Some(session) = session else {
        return Ok(match mode.as_str() {
            "ui" => json_response(
                StatusCode::FORBIDDEN,
                serde_json::json!({ "error": "not logged in" }),
            ),
            _ => login::login_page(ctx, StatusCode::OK, None),
        });
    };
    match mode.as_str() {
        "status" => pages::status_page(ctx, &session).await,
        "show" => pages::show_page(ctx, &session).await,
        "info" => Ok(pages::info_page(ctx, &session)),
        "backup" => backups::backup_page(ctx, &session).await,
        "ui" => ui::ui(ctx, &session).await,
        "rollout" => rollouts::form_action(ctx, &session).await,
        "audit" => super::audit_http::page(ctx, &session).await,
        "device" => super::device_page::page(ctx, &session).await,
        other => Err(AdminError::bad(format!(
            "unknown mode={}",
            crate::answer::comment_safe(other)
        ))),
    }
}
