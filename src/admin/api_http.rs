//! The HTTP shell of the read-only JSON API `{prefix}/api/devices[/SN]`: who may read (an
//! admin session or the API token, throttled like the login), and the rows it renders with
//! [`super::api`].

use super::fleet::{collect_rows, master_of, one_row};
use super::respond::{AdminError, Answer, blocking, json_response};
use super::session;
use super::view::{self, Filter};
use super::{api, status};
use crate::app::SharedApp;
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::php::Args;
use axum::Extension;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use std::sync::Arc;

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

/// The configuration for an API request, or the refusal (configuration error, no session
/// or token).
async fn api_config(
    app: &SharedApp,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<Arc<Config>, AdminError> {
    let cfg = app
        .config
        .get()
        .map_err(|e| AdminError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    if !api_allowed(app, &cfg, meta, headers).await {
        return Err(AdminError::Unauthorized);
    }
    Ok(cfg)
}

/// `api/devices[?filter=…]`: the matching devices with the fleet summary.
pub async fn devices(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    uri: Uri,
    headers: HeaderMap,
) -> Answer {
    let cfg = api_config(&app, &meta, &headers).await?;
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
    .await?;
    Ok(json_response(StatusCode::OK, out))
}

/// `api/devices/SN`: one device.
pub async fn device(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    UrlPath(sn): UrlPath<String>,
    headers: HeaderMap,
) -> Answer {
    let cfg = api_config(&app, &meta, &headers).await?;
    crate::request::check_name("sn", sn.as_bytes())
        .map_err(|e| AdminError::json(StatusCode::BAD_REQUEST, e.to_string()))?;
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
    .await?
    .ok_or_else(|| AdminError::json(StatusCode::NOT_FOUND, "no such device"))?;
    Ok(json_response(StatusCode::OK, out))
}
