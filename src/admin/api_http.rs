//! The HTTP shell of the read-only JSON API `{prefix}/api/devices[/SN]`: who may read (an
//! admin session or the API token, throttled like the login), and the rows it renders with
//! [`super::api`].

use super::fleet::{collect_rows, master_of, one_row};
use super::respond::{AdminError, Answer, blocking, json_response};
use super::session;
use super::throttle::retry_after_secs;
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

/// The credentials of an `Authorization: Bearer …` value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Whether an API request may read: an admin session, or the configured API token as
/// `Authorization: Bearer …` (failures throttled apart from the logins: `Err` is the 429).
async fn api_allowed(
    app: &SharedApp,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<bool, AdminError> {
    if session::cookie(headers, session::COOKIE)
        .and_then(|t| app.admin.sessions.get(t))
        .is_some()
    {
        return Ok(true);
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    else {
        return Ok(false);
    };
    let Some(token) = &cfg.server.api_token else {
        return Ok(false);
    };
    let peer = meta.peer.ip().to_canonical();
    let throttle = &app.admin.api_throttle;
    if let Err(wait) = throttle.check(peer) {
        return Err(AdminError::TooMany(retry_after_secs(wait)));
    }
    if session::csrf_ok(token, Some(given)) {
        throttle.succeeded(peer);
        Ok(true)
    } else {
        throttle.failed(peer);
        tracing::warn!("API request from {peer} with a wrong token");
        Ok(false)
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
    if !api_allowed(app, &cfg, meta, headers).await? {
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

#[cfg(test)]
mod tests {
    use super::bearer;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer abc"), Some("abc"));
        assert_eq!(bearer("BEARER  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
    }
}
