//! The HTTP shell of the JSON API below `{prefix}/api/` ([`PATHS`]): who may read (an admin
//! session or the API token, throttled like the login), the list's filter, order and page,
//! the CSV export ([`super::export`]), the OpenAPI document ([`super::openapi`]) and the
//! one change, `DELETE api/devices/SN` (a session's CSRF token or the API token).

use super::flash::Flash;
use super::fleet::{ViewArgs, master_of, matching, one_row, row_of};
use super::order::Sort;
use super::query::Query;
use super::respond::{AdminError, AdminResult, blocking, harden, json_response};
use super::session;
use super::throttle::retry_after_secs;
use super::view;
use super::{api, openapi, status};
use crate::app::SharedApp;
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::php::Args;
use axum::Extension;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::sync::Arc;

/// The API's paths (below the prefix) and methods; the OpenAPI document describes exactly
/// these (checked by its test).
pub const PATHS: [(&str, &[&str]); 7] = [
    ("/api/devices", &["get"]),
    ("/api/devices.csv", &["get"]),
    ("/api/devices/{sn}", &["get", "delete"]),
    ("/api/openapi.json", &["get"]),
    // routed in `super::rollouts`
    ("/api/rollouts", &["get"]),
    ("/api/rollouts/{id}/{action}", &["post"]),
    // routed by the router from `super::audit_http`
    ("/api/audit", &["get"]),
];

/// The API routes below `prefix`.
pub fn routes(prefix: &str) -> axum::Router<SharedApp> {
    axum::Router::new()
        .route(&format!("{prefix}{}", PATHS[0].0), get(devices))
        .route(&format!("{prefix}{}", PATHS[1].0), get(devices_csv))
        .route(
            &format!("{prefix}{}", PATHS[2].0),
            get(device).delete(forget_device),
        )
        .route(&format!("{prefix}{}", PATHS[3].0), get(openapi_json))
}

/// Who sends an API request.
pub(in crate::admin) enum Caller {
    Session(session::Session),
    Token,
}

/// The credentials of an `Authorization: Bearer …` value (the scheme is case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Who may read: an admin session, or the configured API token as
/// `Authorization: Bearer …` (failures throttled apart from the logins: `Err` is the 429);
/// `None` for nobody.
async fn api_caller(
    app: &SharedApp,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<Option<Caller>, AdminError> {
    if let Some(s) =
        session::cookie(headers, session::COOKIE).and_then(|t| app.admin.sessions.get(t))
    {
        return Ok(Some(Caller::Session(s)));
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
    else {
        return Ok(None);
    };
    let Some(token) = &cfg.server.api_token else {
        return Ok(None);
    };
    let peer = meta.peer.ip().to_canonical();
    let throttle = &app.admin.api_throttle;
    match throttle.check(peer) {
        Err(wait) => return Err(AdminError::TooMany(retry_after_secs(wait))),
        Ok(slow) if !slow.is_zero() => tokio::time::sleep(slow).await,
        Ok(_) => {}
    }
    if session::csrf_ok(token, Some(given)) {
        throttle.succeeded(peer);
        Ok(Some(Caller::Token))
    } else {
        throttle.failed(peer);
        tracing::warn!("API request from {peer} with a wrong token");
        Ok(None)
    }
}

/// Whether a request may read what the API token opens outside the API (`/metrics`): an
/// admin session or the API token, failures throttled as for the API (`Err` is the 429).
pub async fn token_or_session(
    app: &SharedApp,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<bool, AdminError> {
    Ok(api_caller(app, cfg, meta, headers).await?.is_some())
}

/// The configuration for an API request and who sends it, or the refusal (configuration
/// error, no session or token).
pub(super) async fn api_config(
    app: &SharedApp,
    meta: &ConnMeta,
    headers: &HeaderMap,
) -> Result<(Arc<Config>, Caller), AdminError> {
    let cfg = app
        .config
        .get()
        .map_err(|e| AdminError::json(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match api_caller(app, &cfg, meta, headers).await? {
        Some(c) => Ok((cfg, c)),
        None => Err(AdminError::Unauthorized),
    }
}

fn bad_request(msg: impl Into<String>) -> AdminError {
    AdminError::json(StatusCode::BAD_REQUEST, msg)
}

/// The filter, the order and the page of a list request.
fn list_args(args: &Args) -> Result<(Query, Sort, api::Page), AdminError> {
    let (query, sort) = ViewArgs::from_args(args).parsed.map_err(bad_request)?;
    let number = |k: &str, default: usize| -> Result<usize, AdminError> {
        match args.get(k) {
            None => Ok(default),
            Some(v) if v.is_empty() => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| bad_request(format!("'{k}' must be a number of 0 or more"))),
        }
    };
    let limit = number("limit", api::DEFAULT_LIMIT)?;
    if limit > api::MAX_LIMIT {
        return Err(bad_request(format!(
            "'limit' is at most {} (page with 'offset')",
            api::MAX_LIMIT
        )));
    }
    let offset = number("offset", 0)?;
    Ok((
        query,
        sort,
        api::Page {
            offset,
            limit,
            matched: 0,
            files: 0,
        },
    ))
}

/// `api/devices[?filter=…&sort=…&limit=…&offset=…]`: a page of the matching devices with
/// the summary of all matching ones.
pub async fn devices(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    uri: Uri,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, _) = api_config(&app, &meta, &headers).await?;
    let (query, sort, mut page) = list_args(&Args::parse(uri.query().unwrap_or("")))?;
    let body = blocking(move || {
        let m = matching(&app, &cfg, &query, sort);
        let groups = view::show_groups(&cfg);
        let now = crate::clock::now();
        let summary = status::summary(&cfg, &master_of(&app.root, &cfg), now, &m.devices);
        page.matched = m.devices.len();
        page.files = m.total;
        let start = page.offset.min(m.devices.len());
        let end = start.saturating_add(page.limit).min(m.devices.len());
        // each row is made, written and dropped before the next: a page costs its text
        let rows = m.devices[start..end]
            .iter()
            .map(|c| row_of(&app, &cfg, c, true));
        let mut body = Vec::new();
        let (missing, groups) = (cfg.status.missing, &groups);
        api::write_devices(&mut body, rows, &page, &summary, groups, missing, now).map(|()| body)
    })
    .await?
    .map_err(|e| {
        tracing::error!("cannot write a page of the device list: {e}");
        AdminError::Internal
    })?;
    Ok(harden(
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
    ))
}

/// `api/devices.csv[?filter=…&sort=…]`: every matching device as a CSV table, streamed.
pub async fn devices_csv(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    uri: Uri,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, _) = api_config(&app, &meta, &headers).await?;
    let args = Args::parse(uri.query().unwrap_or(""));
    let (query, sort) = ViewArgs::from_args(&args).parsed.map_err(bad_request)?;
    // written while it is sent, a thousand rows at a time
    let bom = matches!(args.get("bom").as_deref(), Some("1" | "true" | "yes"));
    let body = super::csv_stream::body(app, cfg, (query, sort), bom);
    Ok(harden(
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"devices.csv\"",
                ),
            ],
            body,
        )
            .into_response(),
    ))
}

/// `api/openapi.json`: the description of this API.
pub async fn openapi_json(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    headers: HeaderMap,
) -> AdminResult {
    let _ = api_config(&app, &meta, &headers).await?;
    Ok(json_response(
        StatusCode::OK,
        openapi::document(&app.prefix),
    ))
}

/// `DELETE api/devices/SN`: forgets a device's state (its state file and what is kept of it
/// in memory; not its backups). A session must send its CSRF token (`X-CSRF-Token` or
/// `?csrf=`); the API token is enough by itself.
pub async fn forget_device(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    UrlPath(sn): UrlPath<String>,
    uri: Uri,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, caller) = api_config(&app, &meta, &headers).await?;
    let what = format!("DELETE api/devices/{}", crate::answer::comment_safe(&sn));
    let who = changer(&caller, &headers, &uri, meta.peer.ip(), &what)?;
    crate::request::check_name("sn", sn.as_bytes())
        .map_err(|e| AdminError::json(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Some(store) = app.states(&cfg) else {
        return Err(AdminError::json(
            StatusCode::NOT_FOUND,
            "device status tracking is off",
        ));
    };
    let lock = store.lock_for(&sn);
    let _guard = lock.lock().await;
    let key = sn.clone();
    let deleted = blocking(move || store.delete(&key)).await?.map_err(|e| {
        tracing::error!("cannot delete the status of {sn}: {e}");
        AdminError::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot delete the state file",
        )
    })?;
    let user = match &caller {
        Caller::Session(s) => s.user.clone(),
        Caller::Token => "API token".to_string(),
    };
    let e = super::audit::Entry::now(
        &user,
        meta.peer.ip().to_canonical(),
        "delete-status",
        &sn,
        deleted,
    )
    .detail("API");
    super::audit::record(&app, e).await;
    if !deleted {
        return Err(AdminError::json(StatusCode::NOT_FOUND, "no such device"));
    }
    tracing::info!("{who} deleted the status of {sn} (API)");
    Ok(json_response(
        StatusCode::OK,
        serde_json::json!({ "deleted": true, "sn": sn, "msg": Flash::StatusDeleted.key() }),
    ))
}

/// Who makes a change through the API, for the log: a session must send its CSRF token
/// (`X-CSRF-Token` or `?csrf=`); the API token is enough by itself.
pub(super) fn changer(
    caller: &Caller,
    headers: &HeaderMap,
    uri: &Uri,
    peer: std::net::IpAddr,
    what: &str,
) -> Result<String, AdminError> {
    let peer = peer.to_canonical();
    Ok(match caller {
        Caller::Session(s) => {
            let given = headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| {
                    Args::parse(uri.query().unwrap_or(""))
                        .get("csrf")
                        .map(|c| c.into_owned())
                });
            if !session::csrf_ok(&s.csrf, given.as_deref()) {
                tracing::warn!("refused {what} from {peer}: bad CSRF token");
                return Err(AdminError::json(
                    StatusCode::FORBIDDEN,
                    "bad or missing CSRF token",
                ));
            }
            format!("admin '{}' at {peer}", s.user)
        }
        Caller::Token => format!("API token user at {peer}"),
    })
}

/// `api/devices/SN`: one device.
pub async fn device(
    State(app): State<SharedApp>,
    Extension(meta): Extension<ConnMeta>,
    UrlPath(sn): UrlPath<String>,
    headers: HeaderMap,
) -> AdminResult {
    let (cfg, _) = api_config(&app, &meta, &headers).await?;
    crate::request::check_name("sn", sn.as_bytes())
        .map_err(|e| AdminError::json(StatusCode::BAD_REQUEST, e.to_string()))?;
    let out = blocking(move || {
        let r = one_row(&app, &cfg, &sn)?;
        let groups = view::show_groups(&cfg);
        let mut out = api::device(&r, &groups, cfg.status.missing, crate::clock::now(), true);
        if r.view.problem.is_none() {
            let history = app.states(&cfg)?.build_history(&sn);
            out["build_history"] = api::build_history(&history);
        }
        Some(out)
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
