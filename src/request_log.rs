//! The request layer of every URL ([`track`]): counts each request in the metrics (route,
//! status, duration; polls and uploads of `update.php`), logs one line per firmware download
//! (with its bytes, once the body is complete or cut off) and per 404 under the update paths
//! (`update.php`, `update-migrate.php`, `fw/…`), each with the device's serial where known.
//!
//! A device request's query is parsed here, once ([`QueryArgs`]), and handed to the
//! `update.php` handler in the request's extensions.
//!
//! A firmware request carries no serial: it is taken from the last poll that came from the
//! same device address ([`crate::origins`]). The counters are the server's own
//! ([`crate::metrics::Metrics`] in [`crate::app::App`]).

use crate::app::SharedApp;
use crate::conn::ConnMeta;
use crate::metrics::Metrics;
use crate::origins::Origins;
use crate::php::Args;
#[cfg(doc)]
use crate::request::ConnInfo;
use crate::request::DeviceIp;
use axum::body::{Body, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// What kind of URL a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `update.php` or `update-migrate.php`.
    Device,
    /// A file below `fw/`.
    Firmware,
    Other,
}

/// The route label of a request (the matched route; a static directory as `PREFIX/fw/*`,
/// `PREFIX/web/*`; `other` when nothing matched) and its kind.
pub fn route_label(matched: Option<&str>, path: &str, prefix: &str) -> (String, Kind) {
    let label = match matched {
        Some(m) => match m.split_once("/{") {
            Some((head, _)) => format!("{head}/*"),
            None => m.to_string(),
        },
        // axum gives no MatchedPath to nested services (the static directories)
        None => {
            let rest = path.strip_prefix(prefix).unwrap_or("");
            match ["fw", "web"].into_iter().find(|d| {
                rest.strip_prefix('/')
                    .and_then(|r| r.strip_prefix(d))
                    .is_some_and(|t| t.is_empty() || t.starts_with('/'))
            }) {
                Some(d) => format!("{prefix}/{d}/*"),
                None => "other".to_string(),
            }
        }
    };
    let kind = match label.strip_prefix(prefix) {
        Some("/update.php" | "/update-migrate.php") => Kind::Device,
        Some("/fw/*") => Kind::Firmware,
        _ => Kind::Other,
    };
    (label, kind)
}

/// The value of `key` in a query string (raw, not decoded).
pub fn query_arg<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// The query arguments of a device request (`update.php`, `update-migrate.php`), parsed once
/// by [`track`] and handed to the handler in the request's extensions.
#[derive(Debug, Clone)]
pub struct QueryArgs(pub Args);

/// The serial a request is logged and remembered with: non-empty, at most 64 bytes.
fn loggable_sn(sn: &str) -> bool {
    !sn.is_empty() && sn.len() <= 64
}

/// The device's address as PHP records it (see [`ConnInfo::device_ip`]).
fn device_ip(meta: Option<&ConnMeta>, headers: &HeaderMap) -> String {
    let Some(meta) = meta else {
        return "-".to_string();
    };
    let forwarded_for = headers.get("x-forwarded-for").and_then(|h| h.to_str().ok());
    device_ip_of(meta, forwarded_for)
}

/// The device's address of a request on the connection `meta` with this `X-Forwarded-For`.
pub fn device_ip_of(meta: &ConnMeta, forwarded_for: Option<&str>) -> String {
    // only the address: the handler builds the request's one `ConnInfo` (`tls::conn_info`)
    DeviceIp::of(meta.peer.ip(), forwarded_for).ip
}

/// The serial a firmware request is logged with: its own `sn` argument, else the serial of the
/// last poll from the device's address, else `-`.
fn firmware_serial(origins: &Origins, given_sn: Option<&str>, ip: &str) -> String {
    given_sn
        .map(str::to_string)
        .or_else(|| origins.serial(ip))
        .unwrap_or_else(|| "-".to_string())
}

/// Counts and logs a firmware download answered outside the router (by [`crate::fw_lane`])
/// as [`track`] does: the request in the metrics, one line with the bytes sent.
pub fn firmware_answered(
    (metrics, origins): (&Metrics, &Origins),
    route: &str,
    (path, query): (&str, &str),
    ip: &str,
    elapsed: std::time::Duration,
    (bytes, complete): (u64, bool),
) {
    metrics.count_request(route, StatusCode::OK, elapsed);
    let given_sn = query_arg(query, "sn").filter(|s| loggable_sn(s));
    let sn = firmware_serial(origins, given_sn, ip);
    log_download(path, &sn, ip, bytes, complete);
}

fn log_download(path: &str, sn: &str, ip: &str, bytes: u64, complete: bool) {
    if complete {
        tracing::info!(sn = %sn, ip = %ip, bytes, "firmware download {path}");
    } else {
        tracing::info!(sn = %sn, ip = %ip, bytes, "firmware download {path} cut off");
    }
}

/// The request layer: metrics of every request, firmware download and 404 log lines.
pub async fn track(State(app): State<SharedApp>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = req.uri().path().to_string();
    let matched = req.extensions().get::<MatchedPath>().map(|m| m.as_str());
    let (route, kind) = route_label(matched, &path, &app.prefix);
    let query = req.uri().query().unwrap_or("");
    // a device request's query is parsed here once and handed on; a firmware request's
    // only `sn` is looked up (no handler of the router parses it)
    let (given_sn, mode) = match kind {
        Kind::Device => {
            let args = Args::parse(query);
            let sn = args.get("sn").map(|s| s.into_owned());
            let mode = args.get("mode").map(|m| m.into_owned());
            req.extensions_mut().insert(QueryArgs(args));
            (sn, mode)
        }
        Kind::Firmware => (query_arg(query, "sn").map(str::to_string), None),
        Kind::Other => (None, None),
    };
    let given_sn = given_sn.filter(|s| loggable_sn(s));
    let ip = device_ip(req.extensions().get::<ConnMeta>(), req.headers());
    let response = next.run(req).await;
    let status = response.status();
    app.metrics.count_request(&route, status, started.elapsed());
    if kind == Kind::Device {
        app.metrics.count_device(mode.as_deref(), status);
        if let Some(sn) = given_sn.as_deref().filter(|_| status.is_success()) {
            app.origins.seen(&ip, sn);
        }
    }
    let sn = if kind == Kind::Firmware {
        firmware_serial(&app.origins, given_sn.as_deref(), &ip)
    } else {
        given_sn.unwrap_or_else(|| "-".to_string())
    };
    if status == StatusCode::NOT_FOUND && kind != Kind::Other {
        tracing::info!(sn = %sn, ip = %ip, "not found: {path}");
    } else if kind == Kind::Firmware && status.is_success() {
        let (parts, body) = response.into_parts();
        let body = Body::new(Counted {
            inner: body,
            bytes: 0,
            done: false,
            what: (path, sn, ip),
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

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
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
        log_download(path, sn, ip, self.bytes, complete);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_directories_get_a_label_without_a_matched_path() {
        assert_eq!(
            route_label(None, "/fw/ip232.bin", ""),
            ("/fw/*".to_string(), Kind::Firmware)
        );
        assert_eq!(
            route_label(None, "/up/fw/a/b.bin", "/up"),
            ("/up/fw/*".to_string(), Kind::Firmware)
        );
        assert_eq!(route_label(None, "/fwx/a", "").1, Kind::Other);
        assert_eq!(route_label(None, "/web/x.css", "").0, "/web/*");
        assert_eq!(route_label(None, "/nothing", "").0, "other");
        assert_eq!(
            route_label(Some("/up/update.php"), "/up/update.php", "/up"),
            ("/up/update.php".to_string(), Kind::Device)
        );
        assert_eq!(
            route_label(Some("/admin/{*rest}"), "/admin/x", "").0,
            "/admin/*"
        );
    }

    #[test]
    fn query_arguments_are_found_by_exact_name() {
        assert_eq!(query_arg("a=1&sn=x&snx=y", "sn"), Some("x"));
        assert_eq!(query_arg("mode", "mode"), Some(""));
        assert_eq!(query_arg("a=1", "sn"), None);
    }
}
