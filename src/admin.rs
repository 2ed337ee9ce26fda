//! The admin pages (`admin/admin.php`): login, device status, configuration, new devices,
//! and the signed-certificate upload (`update.php?mode=upload`).
//!
//! Placeholder until the admin pages land: the routes exist and refuse without a session.

use crate::config::Config;
use crate::http::{SharedApp, text};
use crate::php::Args;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use std::sync::Arc;

/// The admin routes below `prefix`.
pub fn routes(prefix: &str) -> Router<SharedApp> {
    Router::new().route(
        &format!("{prefix}/admin/admin.php"),
        any(|| async { text(StatusCode::FORBIDDEN, "admin pages: not available yet\n") }),
    )
}

/// `update.php?mode=upload`: the signed certificate of a device (admin session required).
pub async fn upload(
    _app: SharedApp,
    _cfg: Arc<Config>,
    args: Args,
    _method: Method,
    _headers: HeaderMap,
    _request: Request,
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
    text(
        StatusCode::FORBIDDEN,
        "# mode=upload needs an administrator session - exit\r\n",
    )
}
