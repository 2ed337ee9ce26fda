//! Static files below `fw/` and `web/` at web-server speed.
//!
//! Small files (up to [`SMALL`] bytes) are kept in memory with their headers (`ETag`,
//! `Last-Modified`, `Content-Type`) while unchanged: the file watcher's generation
//! ([`crate::watch::Freshness`]) empties the cache after a change, so a request for a cached
//! file makes no system call. Larger files and range requests go to tower-http's `ServeDir`
//! (ranges, `HEAD`, `If-Modified-Since`) with big read buffers; this module adds the `ETag`
//! and answers `If-None-Match` with 304. Paths with a segment starting with `.` (dot files,
//! `..`) and files reached through a symbolic link leading out of the directory are 404.

use crate::watch::Freshness;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// Files up to this size are kept in memory.
pub const SMALL: u64 = 64 * 1024;
/// Read buffer of `ServeDir` for large files.
const CHUNK: usize = 1024 * 1024;
/// At most this many files are cached (the cache is emptied when full).
const MAX_FILES: usize = 1024;

/// A file as served: validators and, for small files, the content.
struct Entry {
    etag: HeaderValue,
    last_modified: HeaderValue,
    mtime_secs: u64,
    content_type: HeaderValue,
    /// The content of a small file.
    body: Option<bytes::Bytes>,
}

/// One served directory.
pub struct StaticDir {
    root: PathBuf,
    serve_dir: ServeDir,
    cache: RwLock<HashMap<String, Arc<Entry>>>,
    fresh: Freshness,
}

fn not_found() -> Response {
    let mut r = Response::new(Body::from("Not Found"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}

/// The request path, percent-decoded, as a relative path; `None` for anything with a
/// segment starting with `.`, a backslash or a NUL.
fn relative_path(uri_path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(uri_path)
        .decode_utf8()
        .ok()?;
    let mut out = Vec::new();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg.starts_with('.') || seg.contains(['\\', '\0']) {
            return None;
        }
        out.push(seg);
    }
    Some(out.join("/"))
}

fn etag_of(len: u64, mtime: SystemTime) -> String {
    let nanos = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// Reads a file's validators (and its content when small); `None` when it does not exist,
/// is no regular file, or resolves to a place outside `root`.
fn load(root: &Path, rel: &str) -> Option<Entry> {
    let real_root = root.canonicalize().ok()?;
    let real = root.join(rel).canonicalize().ok()?;
    if !real.starts_with(&real_root) {
        tracing::warn!("refused {}: leads out of {}", rel, root.display());
        return None;
    }
    let meta = std::fs::metadata(&real).ok()?;
    if !meta.is_file() {
        return None;
    }
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let body = if meta.len() <= SMALL {
        Some(bytes::Bytes::from(std::fs::read(&real).ok()?))
    } else {
        None
    };
    let mime = mime_guess::from_path(&real).first_or_octet_stream();
    Some(Entry {
        etag: HeaderValue::from_str(&etag_of(meta.len(), mtime)).ok()?,
        last_modified: HeaderValue::from_str(&httpdate::fmt_http_date(mtime)).ok()?,
        mtime_secs: mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        content_type: HeaderValue::from_str(mime.as_ref()).ok()?,
        body,
    })
}

/// Whether the request's validators match: `If-None-Match` (weak comparison, `*`), else
/// `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, e: &Entry) -> bool {
    if let Some(inm) = headers.get(header::IF_NONE_MATCH) {
        let Ok(v) = inm.to_str() else { return false };
        let want = e.etag.to_str().unwrap_or("");
        return v
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == want);
    }
    headers
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .is_some_and(|ims| e.mtime_secs <= ims.as_secs())
}

fn validators(r: &mut Response, e: &Entry) {
    let h = r.headers_mut();
    h.insert(header::ETAG, e.etag.clone());
    h.insert(header::LAST_MODIFIED, e.last_modified.clone());
}

/// The answer from a cached small file (no range).
fn from_memory(method: &Method, headers: &HeaderMap, e: &Entry, body: &bytes::Bytes) -> Response {
    if not_modified(headers, e) {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        validators(&mut r, e);
        return r;
    }
    let len = body.len();
    let mut r = if method == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(body.clone()))
    };
    validators(&mut r, e);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, e.content_type.clone());
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    r
}

impl StaticDir {
    pub fn new(root: PathBuf, fresh: Freshness) -> StaticDir {
        StaticDir {
            serve_dir: ServeDir::new(&root).with_buf_chunk_size(CHUNK),
            root,
            cache: RwLock::new(HashMap::new()),
            fresh,
        }
    }

    /// The cached entry of `rel`, loading it on a miss.
    async fn entry(self: &Arc<Self>, rel: &str) -> Option<Arc<Entry>> {
        if let Some(g) = self.fresh.stale() {
            self.cache
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.fresh.checked(g);
        }
        if let Some(e) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(rel)
        {
            return Some(e.clone());
        }
        let (me, key) = (self.clone(), rel.to_string());
        let e = Arc::new(crate::app::blocking(move || load(&me.root, &key)).await??);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_FILES {
            cache.clear();
        }
        if e.body.is_some() {
            cache.insert(rel.to_string(), e.clone());
        }
        Some(e)
    }

    /// Answers one request (the path relative to the served directory).
    pub async fn serve(self: Arc<Self>, req: Request) -> Response {
        let Some(rel) = relative_path(req.uri().path()) else {
            return not_found();
        };
        let method = req.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return self.delegate(req, None).await;
        }
        let Some(e) = self.entry(&rel).await else {
            return not_found();
        };
        match &e.body {
            Some(body) if !req.headers().contains_key(header::RANGE) => {
                from_memory(&method, req.headers(), &e, body)
            }
            _ if not_modified(req.headers(), &e)
                && req.headers().contains_key(header::IF_NONE_MATCH) =>
            {
                let mut r = Response::new(Body::empty());
                *r.status_mut() = StatusCode::NOT_MODIFIED;
                validators(&mut r, &e);
                r
            }
            _ => self.delegate(req, Some(&e)).await,
        }
    }

    async fn delegate(&self, req: Request, e: Option<&Entry>) -> Response {
        let Ok(r) = self.serve_dir.clone().oneshot(req).await;
        let mut r = r.map(Body::new);
        if let Some(e) = e
            && matches!(r.status(), StatusCode::OK | StatusCode::PARTIAL_CONTENT)
        {
            r.headers_mut().insert(header::ETAG, e.etag.clone());
        }
        r
    }

    /// A router service for `nest_service`.
    pub fn service(
        self: Arc<Self>,
    ) -> impl tower::Service<
        Request,
        Response = Response,
        Error = Infallible,
        Future = impl Future<Output = Result<Response, Infallible>> + Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        tower::service_fn(move |req: Request| {
            let me = self.clone();
            async move { Ok::<_, Infallible>(me.serve(req).await) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_backslashes_are_refused() {
        assert_eq!(relative_path("/a/b.bin").as_deref(), Some("a/b.bin"));
        assert_eq!(relative_path("/a%20b").as_deref(), Some("a b"));
        assert_eq!(relative_path("/../x"), None);
        assert_eq!(relative_path("/%2e%2e/x"), None);
        assert_eq!(relative_path("/.hidden"), None);
        assert_eq!(relative_path("/a\\b"), None);
        assert_eq!(relative_path("/a%00"), None);
    }

    #[test]
    fn validators_compare_etag_first() {
        let e = Entry {
            etag: HeaderValue::from_static("\"1-2\""),
            last_modified: HeaderValue::from_static("x"),
            mtime_secs: 100,
            content_type: HeaderValue::from_static("text/plain"),
            body: None,
        };
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &e));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"0-0\", W/\"1-2\""),
        );
        assert!(not_modified(&h, &e));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"0-0\""));
        h.insert(
            header::IF_MODIFIED_SINCE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert!(!not_modified(&h, &e), "If-None-Match wins");
        h.remove(header::IF_NONE_MATCH);
        assert!(not_modified(&h, &e), "100 s after 1970 is before 1994");
    }
}
