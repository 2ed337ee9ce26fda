//! Firmware and boot code: which builds devices must run, and where they download them.
//!
//! The builds come from the master device's `box_info.xml` (its `<sys version="… IP811[13.0178],
//! Bootcode[130112], Hardware[104-00]">`), cached in `cache/master-info.xml` for
//! `master/@expire` seconds, or are pinned in `master/@firmware` / `@bootcode`. Download URLs
//! come from `fwstorage/@url` with `{build} {model} {filetype} {filename}` replaced.
//!
//! [`parse_box_info`] and [`storage_url`] are pure. [`MasterSource`] is the shell part: it
//! reads the cache (parsed once per file version), asks the master over HTTP with a bounded
//! wait when the cache is stale, writes the cache atomically, and lets only one request at a
//! time ask the master.

use crate::config::Config;
use crate::watch::Freshness;
use crate::xml::Element;
use regex::Regex;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The builds a master device reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxInfo {
    pub label: String,
    /// Firmware build with the dots removed (`13.0178` → `130178`).
    pub prot: String,
    pub boot: String,
    pub hw: String,
}

static VERSION_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?s)(?P<label>.*)\[(?P<prot>[^\]]*)\].*\[(?P<boot>[^\]]*)\].*\[(?P<hw>[^\]]*)\].*",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Parses a `box_info.xml` document; `source` names it in error messages (PHP's wording).
pub fn parse_box_info(bytes: &[u8], source: &str) -> Result<BoxInfo, String> {
    let doc = Element::parse(bytes).map_err(|_| format!("result from {source} not parsable"))?;
    let sys = doc.child("sys").ok_or("no <sys> tag in PBX info")?;
    let version = sys
        .attr("version")
        .ok_or("no version attribute in <sys> tag in PBX info")?;
    let caps = VERSION_RE
        .captures(version)
        .ok_or_else(|| format!("cannot parse box info '{version}'"))?;
    let get = |n: &str| caps.name(n).map_or("", |m| m.as_str()).to_string();
    Ok(BoxInfo {
        label: get("label"),
        prot: get("prot").replace('.', ""),
        boot: get("boot"),
        hw: get("hw"),
    })
}

/// Makes a configured URL absolute against the installation's base URL (PHP's `makeFullUrl`):
/// anything with `://` is kept, anything else is taken relative to the base.
pub fn full_url(base: &str, url: &str) -> String {
    FullUrl(base, url).to_string()
}

/// [`full_url`] as it is written, without a string of its own (`format!`, `write!`): the
/// base URL and the configured one.
pub struct FullUrl<'a>(pub &'a str, pub &'a str);

impl std::fmt::Display for FullUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let FullUrl(base, url) = *self;
        match url.find("://") {
            Some(i) if i > 0 => f.write_str(url),
            _ if url.starts_with('/') => write!(f, "{base}{url}"),
            _ => write!(f, "{base}/{url}"),
        }
    }
}

/// The download URL of a build for a device type (`filetype` is `prot` or `boot`).
/// Bytes, because `filenames` overrides are Latin-1 as PHP reads them.
pub fn storage_url(
    config: &Config,
    base: &str,
    build: &str,
    model: &str,
    filetype: &str,
) -> Vec<u8> {
    let spec = full_url(base, &config.fwstorage_url)
        .replace("{build}", build)
        .replace("{model}", model)
        .replace("{filetype}", filetype);
    let lmodel = model.to_lowercase();
    let mut fnroot = lmodel.clone();
    if let Some(i) = fnroot.find('-') {
        fnroot.truncate(i);
    }
    let fwprefix = if let Some(rest) = fnroot.strip_prefix("ip") {
        fnroot = rest.to_string();
        "ip"
    } else {
        ""
    };
    let mut filename: Vec<u8> = match filetype {
        "prot" => format!("{fwprefix}{fnroot}.bin").into_bytes(),
        "boot" => format!("boot{fnroot}.bin").into_bytes(),
        _ => format!("{lmodel}.unknown").into_bytes(),
    };
    for fname in &config.filenames {
        if fname.id == lmodel {
            let alt = match filetype {
                "prot" => fname.prot.as_ref(),
                "boot" => fname.boot.as_ref(),
                _ => None,
            };
            if let Some(alt) = alt {
                filename = alt.clone();
                break;
            }
        }
    }
    let spec = spec.into_bytes();
    crate::php::str_replace(&spec, b"{filename}", &filename)
}

/// What looking up the master's builds gave, in the PHP server's terms: the comment lines it
/// printed on the way, and the builds or the final error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterResolution {
    pub notes: Vec<String>,
    pub info: Result<BoxInfo, String>,
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(user: &str) -> Config {
        Config::from_user_xml(user).expect("config")
    }

    #[test]
    fn parses_version_strings() {
        let info = parse_box_info(
            br#"<info><sys version="13r1 sr9 IP811[13.0178], Bootcode[130112], Hardware[104-00]"/></info>"#,
            "u",
        )
        .expect("info");
        assert_eq!(info.prot, "130178");
        assert_eq!(info.boot, "130112");
        assert_eq!(info.hw, "104-00");
        assert_eq!(info.label, "13r1 sr9 IP811");
    }

    #[test]
    fn box_info_errors_use_php_wording() {
        assert_eq!(
            parse_box_info(b"<x", "U"),
            Err("result from U not parsable".into())
        );
        assert_eq!(
            parse_box_info(b"<info/>", "U"),
            Err("no <sys> tag in PBX info".into())
        );
        assert_eq!(
            parse_box_info(b"<info><sys/></info>", "U"),
            Err("no version attribute in <sys> tag in PBX info".into())
        );
        assert_eq!(
            parse_box_info(b"<info><sys version=\"13r1\"/></info>", "U"),
            Err("cannot parse box info '13r1'".into())
        );
    }

    #[test]
    fn default_storage_urls() {
        let c = cfg("<config/>");
        let u = |b: &str, m: &str, t: &str| {
            String::from_utf8(storage_url(&c, "http://h/u", b, m, t)).expect("utf8")
        };
        assert_eq!(u("130178", "IP232", "prot"), "http://h/u/fw/130178/");
    }

    #[test]
    fn template_storage_urls_and_filenames() {
        let c = cfg(
            r#"<config><fwstorage url="http://fw/{model}/{build}/{filetype}/{filename}"/><filenames><model id="ip232" prot="ip232-sip.bin"/></filenames></config>"#,
        );
        let u = |m: &str, t: &str| {
            String::from_utf8(storage_url(&c, "http://h/u", "1", m, t)).expect("utf8")
        };
        assert_eq!(u("IP232", "prot"), "http://fw/IP232/1/prot/ip232-sip.bin");
        assert_eq!(u("IP232", "boot"), "http://fw/IP232/1/boot/boot232.bin");
        assert_eq!(u("IP0011", "prot"), "http://fw/IP0011/1/prot/ip0011.bin");
        assert_eq!(u("MYPBXA", "prot"), "http://fw/MYPBXA/1/prot/mypbx.apk");
        assert_eq!(u("IP29-4", "prot"), "http://fw/IP29-4/1/prot/ip29.bin");
        assert_eq!(
            u("SWPHONE", "boot"),
            "http://fw/SWPHONE/1/boot/bootswphone.bin"
        );
        assert_eq!(u("X", "other"), "http://fw/X/1/other/x.unknown");
    }

    #[test]
    fn full_urls() {
        assert_eq!(full_url("http://h/p", "fw/x"), "http://h/p/fw/x");
        assert_eq!(full_url("http://h/p", "/fw/x"), "http://h/p/fw/x");
        assert_eq!(full_url("http://h/p", "https://o/x"), "https://o/x");
        assert_eq!(full_url("http://h/p", ""), "http://h/p/");
    }
}
