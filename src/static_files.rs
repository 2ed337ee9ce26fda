//! Static files below `fw/` and `web/` at web-server speed.
//!
//! Which path may be served is [`crate::safe_path::resolve`]'s decision (NUL bytes 400;
//! dotfiles, `..`, symbolic links leading out of the directory 404), taken when a path is
//! first asked for. Files up to [`StaticLimits::small`] bytes (256 KiB by default) are then
//! kept in memory with their headers (`ETag`, `Last-Modified`, `Content-Type`) while
//! unchanged, at most [`StaticLimits::total`] bytes (64 MiB by default; the cache is emptied
//! when full): a request for such a file makes no system call. The file watcher's
//! generation ([`crate::watch::Freshness`]) empties the cache after a change. Larger files
//! and range requests go to tower-http's `ServeDir` (ranges, `HEAD`) with 1 MiB reads; their
//! validators are cached too. `If-None-Match` (the `ETag`, size and modification time) and
//! `If-Modified-Since` are answered with 304.

use crate::safe_path::Refusal;
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

/// Read buffer of `ServeDir` for large files.
const CHUNK: usize = 1024 * 1024;
/// What an entry costs besides its content (validators, path, map slot), for the bound.
const ENTRY_OVERHEAD: usize = 512;

/// How much of a directory is kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticLimits {
    /// Files up to this size are kept in memory.
    pub small: u64,
    /// At most this many bytes of files (and validators) are kept.
    pub total: usize,
}

impl Default for StaticLimits {
    fn default() -> Self {
        StaticLimits {
            small: 256 * 1024,
            total: 64 * 1024 * 1024,
        }
    }
}

impl StaticLimits {
    /// The defaults, with `UPDATE_SERVER_FILE_CACHE` (total bytes, 0 turns the memory copy
    /// off) and `UPDATE_SERVER_FILE_CACHE_MAX` (largest file kept) when set.
    pub fn from_env() -> StaticLimits {
        let mut l = StaticLimits::default();
        let num = |k: &str| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(t) = num("UPDATE_SERVER_FILE_CACHE") {
            l.total = usize::try_from(t).unwrap_or(usize::MAX);
        }
        if let Some(s) = num("UPDATE_SERVER_FILE_CACHE_MAX") {
            l.small = s;
        }
        l
    }
}

/// A file as served: validators and, for small files, the content.
pub(crate) struct Entry {
    /// The file the path resolved to (checked by [`crate::safe_path::resolve`]).
    pub real: PathBuf,
    pub etag: HeaderValue,
    pub last_modified: HeaderValue,
    mtime_secs: u64,
    pub content_type: HeaderValue,
    /// The content of a small file.
    pub body: Option<bytes::Bytes>,
}

impl Entry {
    fn cost(&self, key: &str) -> usize {
        ENTRY_OVERHEAD
            + key.len()
            + self.real.as_os_str().len()
            + self.body.as_ref().map_or(0, |b| b.len())
    }
}

#[cfg(test)]
impl Entry {
    /// An entry of an octet-stream file without content, with these validators.
    pub(crate) fn for_test(etag: &'static str, last_modified: &'static str) -> Entry {
        Entry {
            real: PathBuf::new(),
            etag: HeaderValue::from_static(etag),
            last_modified: HeaderValue::from_static(last_modified),
            mtime_secs: 0,
            content_type: HeaderValue::from_static("application/octet-stream"),
            body: None,
        }
    }
}

#[derive(Default)]
struct Cache {
    files: HashMap<String, Arc<Entry>>,
    bytes: usize,
}

/// One served directory.
pub struct StaticDir {
    root: PathBuf,
    serve_dir: ServeDir,
    cache: RwLock<Cache>,
    fresh: Freshness,
    limits: StaticLimits,
}

/// The answer to a refused path: its status and reason phrase (why is only logged).
fn refused(r: &Refusal) -> Response {
    let status = r.status();
    let mut resp = Response::new(Body::from(status.canonical_reason().unwrap_or("")));
    *resp.status_mut() = status;
    resp
}

/// The `ETag` of a file of `len` bytes modified at `mtime`.
pub(crate) fn etag_of(len: u64, mtime: SystemTime) -> String {
    let nanos = mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("\"{len:x}-{nanos:x}\"")
}

/// Reads a file's validators (and its content when at most `small` bytes), or why it is not
/// served ([`crate::safe_path::resolve`]; not a regular file: 404).
fn load(root: &Path, url_path: &str, small: u64) -> Result<Entry, Refusal> {
    let real = crate::safe_path::resolve(root, url_path)?;
    let meta = std::fs::metadata(&real).map_err(|_| Refusal::NotFound)?;
    if !meta.is_file() {
        return Err(Refusal::NotFound);
    }
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let body = if meta.len() <= small {
        Some(bytes::Bytes::from(
            std::fs::read(&real).map_err(|_| Refusal::NotFound)?,
        ))
    } else {
        None
    };
    let mime = mime_guess::from_path(&real).first_or_octet_stream();
    let value = |s: &str| HeaderValue::from_str(s).map_err(|_| Refusal::NotFound);
    Ok(Entry {
        real: real.clone(),
        etag: value(&etag_of(meta.len(), mtime))?,
        last_modified: value(&httpdate::fmt_http_date(mtime))?,
        mtime_secs: mtime.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        content_type: value(mime.as_ref())?,
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

/// 304 with the validators.
fn not_modified_response(e: &Entry) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NOT_MODIFIED;
    validators(&mut r, e);
    r
}

/// The answer from a cached small file (no range, validators already compared).
fn from_memory(method: &Method, e: &Entry, body: &bytes::Bytes) -> Response {
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
    /// The directory `root` with the default limits (or those of the environment).
    pub fn new(root: PathBuf, fresh: Freshness) -> StaticDir {
        StaticDir::with_limits(root, fresh, StaticLimits::from_env())
    }

    pub fn with_limits(root: PathBuf, fresh: Freshness, limits: StaticLimits) -> StaticDir {
        StaticDir {
            serve_dir: ServeDir::new(&root).with_buf_chunk_size(CHUNK),
            root,
            cache: RwLock::new(Cache::default()),
            fresh,
            limits,
        }
    }

    /// The cached entry of `url_path` (as requested), loading it on a miss.
    pub(crate) async fn entry(self: &Arc<Self>, url_path: &str) -> Result<Arc<Entry>, Refusal> {
        if let Some(g) = self.fresh.stale() {
            *self.cache.write().unwrap_or_else(|e| e.into_inner()) = Cache::default();
            self.fresh.checked(g);
        }
        if let Some(e) = self
            .cache
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .files
            .get(url_path)
        {
            return Ok(e.clone());
        }
        let (me, key) = (self.clone(), url_path.to_string());
        let small = if self.limits.total == 0 {
            0
        } else {
            self.limits.small
        };
        let loaded = crate::app::blocking(move || load(&me.root, &key, small)).await;
        let e = Arc::new(loaded.ok_or(Refusal::NotFound)??);
        let cost = e.cost(url_path);
        let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
        if cost <= self.limits.total {
            if cache.bytes + cost > self.limits.total {
                *cache = Cache::default();
            }
            if let Some(old) = cache.files.insert(url_path.to_string(), e.clone()) {
                cache.bytes -= old.cost(url_path);
            }
            cache.bytes += cost;
        }
        Ok(e)
    }

    /// Answers one request (the path relative to the served directory).
    pub async fn serve(self: Arc<Self>, mut req: Request) -> Response {
        let e = match self.entry(req.uri().path()).await {
            Ok(e) => e,
            Err(r) => {
                tracing::debug!("{}: {r}", req.uri().path());
                return refused(&r);
            }
        };
        let method = req.method().clone();
        if method != Method::GET && method != Method::HEAD {
            return self.delegate(req, None).await;
        }
        if not_modified(req.headers(), &e) {
            return not_modified_response(&e);
        }
        match &e.body {
            Some(body) if !req.headers().contains_key(header::RANGE) => {
                from_memory(&method, &e, body)
            }
            _ => {
                // the validators were compared here: ServeDir must not answer 304 itself
                req.headers_mut().remove(header::IF_MODIFIED_SINCE);
                self.delegate(req, Some(&e)).await
            }
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
    fn validators_compare_etag_first() {
        let mut e = Entry::for_test("\"1-2\"", "x");
        e.mtime_secs = 100;
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

    #[test]
    fn files_are_loaded_through_the_path_checks() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(d.path().join("a.txt"), b"small").expect("file");
        std::fs::write(d.path().join("b.bin"), vec![0u8; 100]).expect("file");
        std::fs::write(d.path().join(".secret"), b"x").expect("file");
        let a = load(d.path(), "/a.txt", 10).expect("a");
        assert_eq!(a.body.as_deref(), Some(&b"small"[..]));
        assert_eq!(a.content_type, "text/plain");
        assert!(load(d.path(), "/b.bin", 10).expect("b").body.is_none());
        assert_eq!(load(d.path(), "/.secret", 10).err(), Some(Refusal::Hidden));
        assert_eq!(load(d.path(), "/%00", 10).err(), Some(Refusal::BadPath));
        assert_eq!(load(d.path(), "/", 10).err(), Some(Refusal::NotFound));
    }
}
