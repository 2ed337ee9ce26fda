//! What an operator watches: `/health` (JSON, 200 when all is well, 503 when degraded), the
//! warnings at start and the banners of the admin pages (configuration broken, default
//! password). Degraded means: the configuration files on disk are broken (the last good
//! configuration is still served) or the state directory cannot be written. An unreachable
//! master is reported, but does not degrade by itself.

use crate::app::{App, SharedApp};
use crate::config::Config;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

/// `/health` and `/metrics`, at the top and under the prefix.
pub fn routes(prefix: &str) -> Router<SharedApp> {
    let mut r = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::admin::metrics_endpoint));
    if !prefix.is_empty() {
        r = r.route(&format!("{prefix}/health"), get(health)).route(
            &format!("{prefix}/metrics"),
            get(crate::admin::metrics_endpoint),
        );
    }
    r
}

/// The health report: degraded or not, and the checks.
pub fn report(app: &App) -> (bool, Value) {
    let problem = app.config.problem();
    let config = match &problem {
        None => json!({"ok": true}),
        Some(e) => {
            json!({"ok": false, "error": e.to_string(), "serving": "last good configuration"})
        }
    };
    let cfg = app.config.get().ok();
    let state = match cfg.as_deref().and_then(Config::status_dir) {
        None => json!({"ok": true, "note": "state tracking is off"}),
        Some(dir) => {
            let path = app.root.join(dir);
            match writable(&path) {
                Ok(()) => json!({"ok": true, "path": path.display().to_string()}),
                Err(e) => json!({"ok": false, "path": path.display().to_string(), "error": e}),
            }
        }
    };
    let master = match app.master.reachable() {
        Some(r) => json!({"reachable": r}),
        None => json!({"reachable": null, "note": "not asked yet"}),
    };
    let degraded = problem.is_some() || state["ok"] == json!(false);
    (
        degraded,
        json!({"config": config, "state_dir": state, "master": master}),
    )
}

/// Whether a file can be created in `dir` (created and removed again).
fn writable(dir: &std::path::Path) -> Result<(), String> {
    let probe = dir.join(format!(".health-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| format!("cannot write in it: {e}"))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

async fn health(State(app): State<SharedApp>) -> Response {
    let Some((degraded, checks)) = crate::app::blocking(move || report(&app)).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let status = if degraded { "degraded" } else { "ok" };
    let code = if degraded {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({"status": status, "checks": checks})),
    )
        .into_response()
}

/// Warnings logged once when the server starts.
pub fn warn_at_start(app: &App) {
    if let Ok(cfg) = app.config.get()
        && cfg.default_password()
    {
        tracing::warn!(
            "the admin login is still the default admin/password: set master/@user and master/@passwordhash (update-server hash-password)"
        );
    }
}
