//! The device endpoints' HTTP side: `update.php` (polls and the `mode=` uploads),
//! `update-migrate.php` (redirect to a new server, `<migrate url=…>`) and `fw/…` (firmware
//! files with range requests), all below `--prefix`.
//!
//! The handlers turn the request into [`ConnInfo`] and [`Args`] (bounded: the body by the
//! configured limits, the arguments by `request::check_args`) and hand it to the use-cases
//! in [`crate::device`]; refusals are [`DeviceError`]s. Connections are served by `conn`,
//! the whole router is built by `server`.

use crate::answer::comment_safe;
use crate::app::{App, SharedApp};
use crate::conn::ConnMeta;
use crate::device::DeviceError;
use crate::device::upload::Kind;
use crate::php::Args;
use crate::request;
#[cfg(doc)]
use crate::request::ConnInfo;
use crate::respond::text;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};

/// The routes of the device endpoints: `update.php`, `update-migrate.php` and the
/// firmware files below `fw/`.
pub fn routes(app: &App) -> Router<SharedApp> {
    let p = &app.prefix;
    Router::new()
        .route(&format!("{p}/update.php"), any(update_php))
        .route(&format!("{p}/update-migrate.php"), any(update_migrate))
        .nest_service(&format!("{p}/fw"), app.firmware.clone().service())
}

/// Reads a request body up to `limit`; `what` names the body in the refusal.
async fn read_body(
    body: Body,
    limit: usize,
    what: &'static str,
) -> Result<bytes::Bytes, DeviceError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                tracing::warn!("refused a {what} larger than {limit} bytes");
                return DeviceError::TooLarge { what, limit };
            }
            source = s.source();
        }
        tracing::warn!("incomplete request body: {e}");
        DeviceError::IncompleteBody
    })
}

/// `update-migrate.php`: the redirect to `<migrate url=…>` with the same query.
async fn update_migrate(State(app): State<SharedApp>, uri: Uri) -> Result<Response, DeviceError> {
    let cfg = app
        .config
        .get()
        .map_err(|e| DeviceError::Config(e.php_message.clone()))?;
    let url = cfg
        .server
        .migrate_url
        .as_ref()
        .ok_or(DeviceError::NoMigrate)?;
    Ok(migrate_response(url, uri.query().unwrap_or("")))
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
) -> Result<Response, DeviceError> {
    let query = uri.query().unwrap_or("");
    let mut args = Args::parse(query);
    // PHP switches on `$_GET['mode']`; only a poll's form body adds to `$_REQUEST`
    let mut mode = args.get("mode").map(|m| m.into_owned());
    let cfg = app.config.get().map_err(|e| {
        tracing::error!("refusing {uri}: configuration error: {e}");
        DeviceError::Config(e.php_message.clone())
    })?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::php::is_form_content_type);
    let request = if mode.is_none() && method == Method::POST && form {
        let body = read_body(request.into_body(), cfg.server.max_body, "request body").await?;
        args = Args::parse_request(query, Some(&body));
        Request::default()
    } else {
        request
    };
    request::check_args(&args).map_err(|refused| {
        tracing::warn!("refused {} from {}: {refused}", uri.path(), meta.peer);
        DeviceError::BadArgs(refused.to_string())
    })?;
    if args.has("show") {
        args.set("mode", "show");
        mode = Some("show".to_string());
    }
    let info = crate::tls::conn_info(&cfg, &meta, &headers);
    if mode.is_none()
        && cfg.server.migrate_all
        && let Some(url) = &cfg.server.migrate_url
    {
        return Ok(migrate_response(url, query));
    }
    let Some(mode) = mode else {
        let body = crate::device::poll::poll(&app, cfg, args, info).await?;
        return Ok(text(StatusCode::OK, body));
    };
    if let Some(kind) = Kind::of(&mode) {
        let (limit, what) = kind.limit(&cfg);
        let body = read_body(request.into_body(), limit, what).await?;
        let (status, out) =
            crate::device::upload::upload(&app, cfg, args, &info, kind, body).await?;
        return Ok(text(status, out));
    }
    match mode.as_str() {
        "show" | "status" | "ui" => Err(DeviceError::AdminMode),
        "upload" => {
            Ok(crate::admin::upload(app.clone(), cfg, args, method, headers, request).await)
        }
        other => Err(DeviceError::UnknownMode(other.to_string())),
    }
}
