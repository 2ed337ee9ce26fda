//! `/metrics` (the Prometheus text of [`crate::metrics::Metrics`]): who may scrape it (open
//! from loopback, else the API token or an admin session, or anyone with `<server
//! metrics-public>`) and the gauges read at each scrape (the status page's fleet summary,
//! the configuration, the master, the rollouts).

use crate::app::{CurrentConfig, SharedApp};
use crate::config::Config;
use crate::conn::ConnMeta;
use crate::metrics::{FleetCounts, Gauges};
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Whether the request comes straight from this machine (loopback, and not relayed by a
/// proxy on it: a proxy adds `X-Forwarded-For`, `Forwarded` or `X-Real-IP`).
pub fn from_loopback(meta: Option<&ConnMeta>, headers: &HeaderMap) -> bool {
    meta.is_some_and(|m| m.peer.ip().to_canonical().is_loopback())
        && !["x-forwarded-for", "forwarded", "x-real-ip"]
            .iter()
            .any(|h| headers.contains_key(*h))
}

/// Sets the gauges read at each scrape (`cfg`: the configuration served, if good).
fn refresh(app: &SharedApp, cfg: Option<Arc<Config>>) {
    let fleet = cfg.as_ref().map(|cfg| {
        let f = super::fleet_summary(app, cfg);
        FleetCounts {
            devices: f.devices,
            missing: f.missing,
            csrs_waiting: f.csr_waiting,
        }
    });
    let rollouts = cfg.as_ref().map_or_else(Vec::new, |cfg| {
        app.rollouts.summaries(&cfg.rollouts, app.rollouts.now())
    });
    let (indexed, cache, pending) = app.state_figures();
    app.metrics.ops.state.set(indexed, cache, pending);
    app.metrics.refresh(&Gauges {
        config_good: app.config.problem().is_none(),
        master_reachable: app.master.reachable(),
        fleet,
        rollouts: &rollouts,
    });
}

/// `/metrics`: open from loopback, else with the API token or an admin session (or to anyone
/// with `<server metrics-public>`).
pub async fn endpoint(
    State(app): State<SharedApp>,
    State(CurrentConfig(cfg)): State<CurrentConfig>,
    meta: Option<Extension<ConnMeta>>,
    headers: HeaderMap,
) -> Response {
    let meta = meta.map(|Extension(m)| m);
    let cfg = cfg.ok();
    let public = cfg.as_ref().is_some_and(|c| c.server.metrics_public);
    if !public && !from_loopback(meta.as_ref(), &headers) {
        let allowed = match (&cfg, &meta) {
            (Some(cfg), Some(meta)) => super::token_or_session(&app, cfg, meta, &headers).await,
            _ => Ok(false),
        };
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "metrics need the API token (Authorization: Bearer)\n",
                )
                    .into_response();
            }
            Err(e) => return e.into_response(),
        }
    }
    let scraped = app.clone();
    if crate::app::blocking(move || refresh(&scraped, cfg))
        .await
        .is_none()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let Ok(out) = app.metrics.encode() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
