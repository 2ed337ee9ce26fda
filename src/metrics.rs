//! `/metrics` in the Prometheus text format (the `prometheus-client` crate: the official
//! Rust client of the Prometheus project, no global recorder or exporter thread, counters
//! are plain atomics) and the request layer that counts polls, uploads and HTTP requests,
//! times them, and logs firmware downloads (with their bytes, when the body is complete) and
//! 404s under the update paths.
//!
//! The counters of polls and uploads are made once and kept in fields: counting a poll is an
//! atomic increment. Requests by route and status go through a label family (a read lock on
//! its map, no write after the first request of a route and status).

use crate::app::SharedApp;
use crate::conn::ConnMeta;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::pin::Pin;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

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
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&lbl(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);
    registry.register("build_info", "The running version", build);
    Metrics {
        registry,
        polls: poll_counters,
        uploads: upload_counters,
        requests,
        duration,
        config_good,
        master_reachable,
    }
});

/// 0 not asked yet, 1 reachable, 2 not reachable.
static MASTER: AtomicU8 = AtomicU8::new(0);

/// Records whether the master device answered.
pub fn set_master_reachable(ok: bool) {
    MASTER.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
}

/// Whether the master answered the last time it was asked (`None`: not asked yet).
pub fn master_reachable() -> Option<bool> {
    match MASTER.load(Ordering::Relaxed) {
        0 => None,
        v => Some(v == 1),
    }
}

/// The value of `key` in a query string (raw, not decoded).
fn query_arg<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// The route label: the matched route with a nested tail shown as `*`.
fn route_label(matched: Option<&MatchedPath>) -> String {
    match matched {
        None => "other".to_string(),
        Some(m) => match m.as_str().split_once("/{") {
            Some((head, _)) => format!("{head}/*"),
            None => m.as_str().to_string(),
        },
    }
}

/// Counts a request of update.php: a poll (no `mode`) or an upload.
fn count_device(query: &str, status: StatusCode) {
    let m = &*METRICS;
    let mode = query_arg(query, "mode");
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
    let r = match status.as_u16() {
        200..=299 => 0,
        400..=499 => 1,
        _ => 2,
    };
    m.uploads[kind][r].inc();
}

/// The request layer: metrics of every request, firmware download and 404 log lines.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = route_label(req.extensions().get::<MatchedPath>());
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let peer = req.extensions().get::<ConnMeta>().map(|m| m.peer);
    let response = next.run(req).await;
    let status = response.status();
    let m = &*METRICS;
    m.requests
        .get_or_create(&vec![
            ("route", route.clone()),
            ("status", status.as_u16().to_string()),
        ])
        .inc();
    m.duration
        .get_or_create(&vec![("route", route.clone())])
        .observe(started.elapsed().as_secs_f64());
    let device_path = route.ends_with("/update.php") || route.ends_with("/update-migrate.php");
    if device_path {
        count_device(&query, status);
    }
    let sn = query_arg(&query, "sn").unwrap_or("-").to_string();
    let peer = peer.map_or_else(|| "-".to_string(), |p| p.ip().to_string());
    if status == StatusCode::NOT_FOUND && (device_path || route.ends_with("/fw/*")) {
        tracing::info!(sn = %sn, ip = %peer, "not found: {path}");
    } else if route.ends_with("/fw/*") && status.is_success() {
        let (parts, body) = response.into_parts();
        let body = Body::new(Counted {
            inner: body,
            bytes: 0,
            done: false,
            what: (path, sn, peer),
        });
        return Response::from_parts(parts, body);
    }
    response
}

/// A firmware body that logs one line with its bytes when it is complete (or cut off).
struct Counted {
    inner: Body,
    bytes: u64,
    done: bool,
    what: (String, String, String),
}

impl HttpBody for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.bytes += d.len() as u64;
                }
            }
            Poll::Ready(None) => self.finish(true),
            _ => {}
        }
        r
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Counted {
    fn finish(&mut self, complete: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let (path, sn, ip) = &self.what;
        if complete {
            tracing::info!(sn = %sn, ip = %ip, bytes = self.bytes, "firmware download {path}");
        } else {
            tracing::info!(sn = %sn, ip = %ip, bytes = self.bytes, "firmware download {path} cut off");
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish(false);
    }
}

/// Whether `headers` carry `Authorization: Bearer <token>`.
fn bearer_ok(headers: &HeaderMap, token: Option<&str>) -> bool {
    use subtle::ConstantTimeEq;
    let Some(token) = token else { return false };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

/// `/metrics`: open from loopback, else with the API token (or `<server metrics-public>`).
pub async fn endpoint(
    State(app): State<SharedApp>,
    meta: Option<axum::Extension<ConnMeta>>,
    headers: HeaderMap,
) -> Response {
    let cfg = app.config.get().ok();
    let local = meta.is_some_and(|m| match m.peer.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|a| a.is_loopback())
        }
    });
    let public = cfg.as_ref().is_some_and(|c| c.server.metrics_public);
    let token = cfg.as_ref().and_then(|c| c.server.api_token.as_deref());
    if !local && !public && !bearer_ok(&headers, token) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need the API token (Authorization: Bearer)\n",
        )
            .into_response();
    }
    let app2 = app.clone();
    let good = crate::app::blocking(move || app2.config.problem().is_none())
        .await
        .unwrap_or(false);
    let m = &*METRICS;
    m.config_good.set(i64::from(good));
    m.master_reachable
        .set(master_reachable().map_or(-1, i64::from));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
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
