//! `/metrics` in the Prometheus text format (the `prometheus-client` crate: the official
//! Rust client of the Prometheus project, no global recorder or exporter thread, counters
//! are plain atomics): polls by result, uploads by kind and result, HTTP requests by route
//! and status with a duration histogram (counted by `request_log::track`), devices present
//! and missing and CSRs waiting (the status page's summary, computed at each scrape), whether
//! the configuration is good and the master reachable, and the build.
//!
//! The counters of polls and uploads are made once and kept in fields: counting a poll is an
//! atomic increment. Requests by route and status go through a label family (a read lock on
//! its map, no write after the first request of a route and status).

use crate::admin::SharedAdmin;
use crate::conn::ConnMeta;
use axum::Extension;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::LazyLock;
use std::time::Duration;

type Labels = Vec<(&'static str, String)>;

/// Poll results, in the order of [`Metrics::polls`].
const POLL_RESULTS: [&str; 4] = ["answered", "redirected", "refused", "error"];
/// Upload kinds (`mode=` of update.php), in the order of [`Metrics::uploads`].
const UPLOAD_KINDS: [&str; 4] = ["backup", "query", "vardump", "certificate"];
/// Upload results.
const UPLOAD_RESULTS: [&str; 3] = ["ok", "refused", "error"];

struct Metrics {
    registry: Registry,
    polls: [Counter; 4],
    uploads: [[Counter; 3]; 4],
    requests: Family<Labels, Counter>,
    duration: Family<Labels, Histogram, fn() -> Histogram>,
    config_good: Gauge,
    master_reachable: Gauge,
    devices: Family<Labels, Gauge>,
    rollout_devices: Family<Labels, Gauge>,
    rollout_halted: Family<Labels, Gauge>,
    csrs_waiting: Gauge,
}

fn histogram() -> Histogram {
    // 1 ms .. ~16 s
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("update_server");
    let polls = Family::<Labels, Counter>::default();
    let uploads = Family::<Labels, Counter>::default();
    let lbl = |pairs: &[(&'static str, &str)]| -> Labels {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let poll_counters = POLL_RESULTS.map(|r| polls.get_or_create(&lbl(&[("result", r)])).clone());
    let upload_counters = UPLOAD_KINDS.map(|k| {
        UPLOAD_RESULTS.map(|r| {
            uploads
                .get_or_create(&lbl(&[("kind", k), ("result", r)]))
                .clone()
        })
    });
    registry.register("polls", "Device polls of update.php by result", polls);
    registry.register(
        "uploads",
        "Device uploads (backup, query, vardump = CSR, certificate) by result",
        uploads,
    );
    let requests = Family::<Labels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by route and status",
        requests.clone(),
    );
    let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
    registry.register(
        "http_request_duration_seconds",
        "Time to the response headers, by route",
        duration.clone(),
    );
    let config_good = Gauge::default();
    registry.register(
        "config_good",
        "1 when the configuration files on disk are good",
        config_good.clone(),
    );
    let master_reachable = Gauge::default();
    registry.register(
        "master_reachable",
        "1 when the master device answered the last time it was asked, 0 when not, -1 not asked yet",
        master_reachable.clone(),
    );
    let devices = Family::<Labels, Gauge>::default();
    registry.register(
        "devices",
        "Devices with a state file: present, or missing (not seen within <status missing>)",
        devices.clone(),
    );
    let csrs_waiting = Gauge::default();
    registry.register(
        "csrs_waiting",
        "Devices whose certificate request waits for an administrator",
        csrs_waiting.clone(),
    );
    let rollout_devices = Family::<Labels, Gauge>::default();
    registry.register(
        "rollout_devices",
        "Devices of a staged rollout's wave by outcome (told, pending, succeeded, failed)",
        rollout_devices.clone(),
    );
    let rollout_halted = Family::<Labels, Gauge>::default();
    registry.register(
        "rollout_halted",
        "1 while a staged rollout is halted by its failures",
        rollout_halted.clone(),
    );
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&lbl(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);
    registry.register("build_info", "The running version", build);
    crate::ops_metrics::register(&mut registry);
    Metrics {
        registry,
        polls: poll_counters,
        uploads: upload_counters,
        requests,
        duration,
        config_good,
        master_reachable,
        devices,
        csrs_waiting,
        rollout_devices,
        rollout_halted,
    }
});

/// Counts one HTTP request by route and status, and its time to the response headers.
pub fn count_request(route: &str, status: StatusCode, took: Duration) {
    let m = &*METRICS;
    m.requests
        .get_or_create(&vec![
            ("route", route.to_string()),
            ("status", status.as_u16().to_string()),
        ])
        .inc();
    m.duration
        .get_or_create(&vec![("route", route.to_string())])
        .observe(took.as_secs_f64());
}

/// Counts a request of update.php: a poll (no `mode`) or an upload (`mode`, raw).
pub fn count_device(mode: Option<&str>, status: StatusCode) {
    let m = &*METRICS;
    let kind = match mode {
        None => {
            let i = match status.as_u16() {
                200..=299 => 0,
                300..=399 => 1,
                400..=499 => 2,
                _ => 3,
            };
            m.polls[i].inc();
            return;
        }
        Some("backup") => 0,
        Some("query") => 1,
        Some("vardump") => 2,
        Some("upload") => 3,
        Some(_) => return,
    };
    // a signed certificate uploaded from the admin page answers 303 to the page
    let r = match status.as_u16() {
        200..=399 => 0,
        400..=499 => 1,
        _ => 2,
    };
    m.uploads[kind][r].inc();
}

/// Whether the request comes straight from this machine (loopback, and not relayed by a
/// proxy on it: a proxy adds `X-Forwarded-For`, `Forwarded` or `X-Real-IP`).
pub fn from_loopback(meta: Option<&ConnMeta>, headers: &HeaderMap) -> bool {
    meta.is_some_and(|m| m.peer.ip().to_canonical().is_loopback())
        && !["x-forwarded-for", "forwarded", "x-real-ip"]
            .iter()
            .any(|h| headers.contains_key(*h))
}

/// Sets the gauges read at each scrape: configuration good, master reachable, the fleet.
fn refresh(admin: &SharedAdmin) {
    let m = &*METRICS;
    m.config_good
        .set(i64::from(admin.config.problem().is_none()));
    m.master_reachable
        .set(crate::firmware::master_reachable().map_or(-1, i64::from));
    let Ok(cfg) = admin.config.get() else {
        return;
    };
    let fleet = crate::admin::fleet_summary(admin, &cfg);
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    let state = |s: &str| vec![("state", s.to_string())];
    m.devices
        .get_or_create(&state("present"))
        .set(count(fleet.devices - fleet.missing));
    m.devices
        .get_or_create(&state("missing"))
        .set(count(fleet.missing));
    m.csrs_waiting.set(count(fleet.csr_waiting));
    let (indexed, cache, pending) = admin.state_figures();
    crate::ops_metrics::set_state_gauges(indexed, cache, pending);
    rollouts(m, admin, &cfg);
}

/// The waves of the configured rollouts (series of removed rollouts go).
fn rollouts(m: &Metrics, admin: &SharedAdmin, cfg: &crate::config::Config) {
    m.rollout_devices.clear();
    m.rollout_halted.clear();
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    for r in admin.rollouts.summaries(&cfg.rollouts, crate::clock::now()) {
        m.rollout_halted
            .get_or_create(&vec![("rollout", r.id.clone())])
            .set(i64::from(r.halted.is_some()));
        for w in &r.waves {
            for (outcome, n) in [
                ("told", w.told),
                ("pending", w.pending),
                ("succeeded", w.succeeded),
                ("failed", w.failed),
            ] {
                let labels = vec![
                    ("rollout", r.id.clone()),
                    ("wave", w.wave.to_string()),
                    ("outcome", outcome.to_string()),
                ];
                m.rollout_devices.get_or_create(&labels).set(count(n));
            }
        }
    }
}

/// `/metrics`: open from loopback, else with the API token or an admin session (or to anyone
/// with `<server metrics-public>`).
pub async fn endpoint(
    Extension(admin): Extension<SharedAdmin>,
    meta: Option<Extension<ConnMeta>>,
    headers: HeaderMap,
) -> Response {
    let meta = meta.map(|Extension(m)| m);
    let cfg = admin.config.get().ok();
    let public = cfg.as_ref().is_some_and(|c| c.server.metrics_public);
    if !public && !from_loopback(meta.as_ref(), &headers) {
        let allowed = match (&cfg, &meta) {
            (Some(cfg), Some(meta)) => {
                crate::admin::token_or_session(&admin, cfg, meta, &headers).await
            }
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
    if crate::app::blocking(move || refresh(&admin))
        .await
        .is_none()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut out = String::new();
    let process = crate::ops_metrics::process_registry();
    let encoded = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry)
        .and_then(|()| prometheus_client::encoding::text::encode_registry(&mut out, &process))
        .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut out));
    if encoded.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
