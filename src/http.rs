//! The device endpoints' HTTP side: `update.php` (polls and the `mode=` uploads),
//! `update-migrate.php` (redirect to a new server, `<migrate url=…>`) and `fw/…` (firmware
//! files with range requests), all below `--prefix`.
//!
//! The handlers turn the request into [`ConnInfo`] and [`Args`] (bounded: the body by the
//! configured limits, the arguments by `request::check_args`) and hand it to the use-cases
//! in [`crate::device`]; refusals are [`DeviceError`]s. Connections are served by `conn`,
//! the whole router is built by `server`.

use crate::answer::comment_safe;
use crate::app::{App, CurrentConfig, SharedApp};
use crate::conn::ConnMeta;
use crate::device::DeviceError;
use crate::device::upload::Kind;
use crate::php::Args;
use crate::request;
#[cfg(doc)]
use crate::request::ConnInfo;
use crate::request_log::QueryArgs;
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

/// Reads a request body up to `limit` into one buffer (sized from `Content-Length` when the
/// client sent one; a declared length above the limit is refused before anything is read);
/// `what` names the body in the refusal.
async fn read_body(
    mut body: Body,
    limit: usize,
    what: &'static str,
    headers: &HeaderMap,
) -> Result<bytes::Bytes, DeviceError> {
    use http_body_util::BodyExt;
    let too_large = || {
        tracing::warn!("refused a {what} larger than {limit} bytes");
        DeviceError::TooLarge { what, limit }
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
            DeviceError::IncompleteBody
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
fn vardump_limit(
    cfg: &crate::config::Config,
    args: &Args,
) -> Result<Option<(usize, &'static str)>, Vec<u8>> {
    use crate::answer::Answer;
    let loaded = crate::state::Loaded::Missing;
    let mut ans = Answer::new(
        None,
        args,
        &loaded,
        crate::clock::now(),
        crate::state::MsgRules::of(cfg),
    );
    match crate::certs::vardump_checks(cfg, args, &mut ans) {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some((
            REFUSED_VARDUMP_BODY,
            "vardump body for a file other than the device's CSR or request error",
        ))),
        Err(_) => Err(ans.out),
    }
}

/// `update-migrate.php`: the redirect to `<migrate url=…>` with the same query.
async fn update_migrate(
    State(CurrentConfig(cfg)): State<CurrentConfig>,
    uri: Uri,
) -> Result<Response, DeviceError> {
    let cfg = cfg.map_err(|e| DeviceError::Config(e.php_message))?;
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
    State(CurrentConfig(cfg)): State<CurrentConfig>,
    Extension(meta): Extension<ConnMeta>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    mut request: Request,
) -> Result<Response, DeviceError> {
    let query = uri.query().unwrap_or("");
    // parsed once by the request layer (`request_log::track`); parsed here without it
    let mut args = match request.extensions_mut().remove::<QueryArgs>() {
        Some(QueryArgs(args)) => args,
        None => Args::parse(query),
    };
    // PHP switches on `$_GET['mode']`; only a poll's form body adds to `$_REQUEST`
    let mut mode = args.get("mode").map(|m| m.into_owned());
    let cfg = cfg.map_err(|e| {
        tracing::error!("refusing {uri}: configuration error: {e}");
        DeviceError::Config(e.php_message)
    })?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(crate::php::is_form_content_type);
    let request = if mode.is_none() && method == Method::POST && form {
        let limit = cfg.server.max_body;
        let body = read_body(request.into_body(), limit, "request body", &headers).await?;
        args.merge_form(&body);
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
        let (mut limit, mut what) = kind.limit(&cfg);
        if kind == Kind::Vardump {
            match vardump_limit(&cfg, &args) {
                Ok(Some(small)) => (limit, what) = (small.0.min(limit), small.1),
                Ok(None) => {}
                Err(answer) => return Ok(text(StatusCode::OK, answer)),
            }
        }
        let body = read_body(request.into_body(), limit, what, &headers).await?;
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
