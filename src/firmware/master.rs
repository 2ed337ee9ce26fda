//! The shell of the firmware lookup ([`MasterSource`]): the master device's `box_info.xml`
//! read from the cache file (parsed once per file version), asked for over HTTP with a
//! bounded wait when the cache is stale, the cache written atomically, one request at a time
//! asking the master, and whether the master answered the last time.

use super::{BoxInfo, MasterResolution, parse_box_info};
use crate::config::Config;
use crate::watch::Freshness;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone)]
struct CacheEntry {
    mtime: SystemTime,
    len: u64,
    parsed: Result<BoxInfo, String>,
}

/// Looks up the master device's builds (cache, then online, then stale cache).
pub struct MasterSource {
    client: reqwest::Client,
    /// The cache file last looked at and what it held (`None`: no such file).
    cache: Mutex<Option<(PathBuf, Option<CacheEntry>)>>,
    fetching: tokio::sync::Mutex<()>,
    /// With a file watcher: the cache file is looked at again only after a change.
    fresh: Option<Freshness>,
    /// 0 not asked yet, 1 reachable, 2 not reachable.
    reachable: std::sync::atomic::AtomicU8,
}

impl Default for MasterSource {
    fn default() -> Self {
        Self::new()
    }
}

fn now_secs() -> i64 {
    crate::clock::now()
}

impl MasterSource {
    pub fn new() -> MasterSource {
        let client = reqwest::Client::builder()
            .user_agent(concat!("update-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        MasterSource {
            client,
            cache: Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
            fresh: None,
            reachable: std::sync::atomic::AtomicU8::new(0),
        }
    }

    /// Records whether the master device answered (health and metrics report it).
    fn set_reachable(&self, ok: bool) {
        self.reachable
            .store(if ok { 1 } else { 2 }, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the master answered the last time it was asked (`None`: not asked yet).
    pub fn reachable(&self) -> Option<bool> {
        match self.reachable.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            v => Some(v == 1),
        }
    }

    /// A source that looks at the cache file only when `fresh` reports a possible change.
    pub fn watched(fresh: Freshness) -> MasterSource {
        MasterSource {
            fresh: Some(fresh),
            ..MasterSource::new()
        }
    }

    /// What the cache file held when last looked at, while nothing changed since.
    fn remembered(&self, path: &Path) -> Option<Option<(i64, Result<BoxInfo, String>)>> {
        self.fresh.as_ref()?.stale().is_none().then_some(())?;
        let guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (p, e) = guard.as_ref()?;
        (p == path).then(|| {
            e.as_ref()
                .map(|e| (crate::clock::unix_secs(e.mtime), e.parsed.clone()))
        })
    }

    /// The cache file content, parsed once per file version. `None` when there is no file.
    /// With a watcher, nothing is looked at while nothing changed.
    fn read_cache(&self, path: &Path, name: &str) -> Option<(i64, Result<BoxInfo, String>)> {
        if let Some(known) = self.remembered(path) {
            return known;
        }
        let generation = self.fresh.as_ref().and_then(|f| {
            if let Some(dir) = path.parent() {
                f.ensure(dir, false);
            }
            f.stale()
        });
        let read = self.read_cache_file(path, name);
        if let (Some(f), Some(g)) = (&self.fresh, generation) {
            f.checked(g);
        }
        read
    }

    fn read_cache_file(&self, path: &Path, name: &str) -> Option<(i64, Result<BoxInfo, String>)> {
        let Ok(meta) = std::fs::metadata(path) else {
            *self.cache.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((path.to_path_buf(), None));
            return None;
        };
        let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
        let secs = crate::clock::unix_secs(mtime);
        {
            let guard = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((p, Some(e))) = guard.as_ref()
                && p == path
                && e.mtime == mtime
                && e.len == meta.len()
            {
                return Some((secs, e.parsed.clone()));
            }
        }
        let parsed = match std::fs::read(path) {
            Ok(bytes) => parse_box_info(&bytes, name),
            Err(_) => Err(format!("cannot access {name}")),
        };
        *self.cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((
            path.to_path_buf(),
            Some(CacheEntry {
                mtime,
                len: meta.len(),
                parsed: parsed.clone(),
            }),
        ));
        Some((secs, parsed))
    }

    fn cache_current(
        &self,
        path: &Path,
        name: &str,
        expire: i64,
        now: i64,
    ) -> Option<Result<BoxInfo, String>> {
        let (mtime, parsed) = self.read_cache(path, name)?;
        (now - mtime < expire).then_some(parsed)
    }

    async fn fetch(&self, url: &str, timeout: Duration) -> Result<Vec<u8>, String> {
        let err = || format!("cannot access {url}");
        let mut req = self.client.get(url).timeout(timeout);
        if let Ok(parsed) = reqwest::Url::parse(url)
            && !parsed.username().is_empty()
        {
            let mut clean = parsed.clone();
            let _ = clean.set_username("");
            let _ = clean.set_password(None);
            req = self
                .client
                .get(clean)
                .timeout(timeout)
                .basic_auth(parsed.username(), parsed.password());
        }
        let resp = req.send().await.map_err(|e| {
            tracing::warn!("master device {url}: {e}");
            self.set_reachable(false);
            err()
        })?;
        if !resp.status().is_success() {
            tracing::warn!("master device {url}: HTTP {}", resp.status());
            self.set_reachable(false);
            return Err(err());
        }
        self.set_reachable(true);
        let bytes = resp.bytes().await.map_err(|_| err())?;
        if bytes.len() > 1024 * 1024 {
            return Err(err());
        }
        Ok(bytes.to_vec())
    }

    /// PHP's sequence: a current cache; else the master online (writing the cache); else the
    /// cache whatever its age.
    pub async fn resolve(&self, config: &Config, root: &Path) -> MasterResolution {
        let name = config.master.cache.clone();
        let path = root.join(&name);
        let expire = config.master.expire;
        let timeout = Duration::from_secs(config.server.master_timeout_secs);
        let mut notes = Vec::new();
        if let Some(Ok(info)) = self.cache_current(&path, &name, expire, now_secs()) {
            notes.push("firmware build info cache is current".to_string());
            return MasterResolution {
                notes,
                info: Ok(info),
            };
        }
        // one request at a time asks the master; the others then find a current cache
        let _guard = self.fetching.lock().await;
        let current = self.cache_current(&path, &name, expire, now_secs());
        let cache_err = match current {
            Some(Ok(info)) => {
                notes.push("firmware build info cache is current".to_string());
                return MasterResolution {
                    notes,
                    info: Ok(info),
                };
            }
            Some(Err(e)) => {
                notes.push("firmware build info cache is current".to_string());
                e
            }
            None => "cache not current".to_string(),
        };
        notes.push(format!(
            "failed to use cached data ({cache_err}), retrieving info online"
        ));
        let url = config.master.info.clone();
        let online = match self.fetch(&url, timeout).await {
            Ok(bytes) => match parse_box_info(&bytes, &url).inspect_err(|e| {
                tracing::warn!(
                    "master device {url}: {e}: {:?}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                )
            }) {
                Ok(info) => {
                    if let Err(e) = crate::fsio::write_atomic(&path, &bytes) {
                        tracing::error!("cannot write master cache {}: {e}", path.display());
                        return MasterResolution {
                            notes,
                            info: Err(format!("cannot write to cache file {name}")),
                        };
                    }
                    // look at the new file at the next poll, notified yet or not
                    if let Some(f) = &self.fresh {
                        f.reset();
                    }
                    Ok(info)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match online {
            Ok(info) => MasterResolution {
                notes,
                info: Ok(info),
            },
            Err(e) => {
                notes.push(format!("cannot get PBX info: {e}, reading cache"));
                let cached = match self.read_cache(&path, &name) {
                    Some((_, r)) => r,
                    None => Err(format!("cannot access {name}")),
                };
                MasterResolution {
                    notes,
                    info: cached,
                }
            }
        }
    }
}
