//! A device's certificate files kept in memory between changes (the shell part, like
//! [`super::files`]): what [`CertFiles::load`] read, per device, until the file watcher's
//! generation ([`Freshness`]) moves. Most devices have no file in `customcerts/@dir`: the
//! directory's file names are listed once per generation, and a device none of whose file
//! names is listed gets the empty [`CertFiles`] without a system call or a cache entry. The
//! devices that do have files are kept up to [`MAX_BYTES`] (the map is emptied when full).

use super::{CertFiles, CertPaths};
use crate::config::CustomCerts;
use crate::watch::Freshness;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Bytes of device certificate files kept in memory.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// What an entry costs besides the file contents.
const ENTRY_OVERHEAD: usize = 256;

#[derive(Default)]
struct Inner {
    /// The listed directory.
    dir: Option<PathBuf>,
    /// The names of the files in it.
    names: HashSet<Box<str>>,
    devices: HashMap<String, Arc<CertFiles>>,
    bytes: usize,
}

/// The certificate files of the devices (see the module documentation).
pub struct CertCache {
    fresh: Freshness,
    inner: RwLock<Inner>,
    empty: Arc<CertFiles>,
}

fn cost(sn: &str, f: &CertFiles) -> usize {
    let content = |c: &super::FileContent| c.as_ref().map_or(0, Vec::len);
    ENTRY_OVERHEAD
        + sn.len()
        + f.request_der.as_ref().map_or(0, Vec::len)
        + f.signed.as_ref().map_or(0, content)
        + f.ca_keys
            .iter()
            .map(|(n, c)| n.len() + content(c))
            .sum::<usize>()
}

/// The file names (inside the directory) that [`CertFiles::load`] looks at, or `None` when
/// one of them is not directly in it.
fn names_of(cc: &CustomCerts, sn: &str) -> Option<[String; 4]> {
    let p = CertPaths::new(cc, sn);
    let prefix = format!("{}/", cc.dir);
    let name = |full: String| {
        let n = full.strip_prefix(&prefix)?.to_string();
        (!n.contains('/')).then_some(n)
    };
    Some([name(p.der)?, name(p.pem)?, name(p.signed)?, name(p.key)?])
}

fn list(dir: &Path) -> HashSet<Box<str>> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into())
            .collect(),
        Err(_) => HashSet::new(),
    }
}

impl CertCache {
    pub fn new(fresh: Freshness) -> CertCache {
        CertCache {
            fresh,
            inner: RwLock::new(Inner::default()),
            empty: Arc::new(CertFiles::default()),
        }
    }

    /// The files of `sn` from memory, `None` when they must be read ([`CertCache::load`]).
    pub fn cached(&self, root: &Path, cc: &CustomCerts, sn: &str) -> Option<Arc<CertFiles>> {
        if self.fresh.stale().is_some() {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        if inner.dir.as_deref() != Some(root.join(&cc.dir).as_path()) {
            return None;
        }
        if let Some(f) = inner.devices.get(sn) {
            return Some(f.clone());
        }
        let names = names_of(cc, sn)?;
        (!names.iter().any(|n| inner.names.contains(n.as_str()))).then(|| self.empty.clone())
    }

    /// The files of `sn`, read from disk when not in memory (blocking I/O).
    pub fn load(&self, root: &Path, cc: &CustomCerts, sn: &str) -> Arc<CertFiles> {
        let dir = root.join(&cc.dir);
        let stale = self.fresh.stale();
        let relist = stale.is_some()
            || self
                .inner
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .dir
                .as_ref()
                != Some(&dir);
        if relist {
            self.fresh.ensure(&dir, true);
            let names = list(&dir);
            *self.inner.write().unwrap_or_else(|e| e.into_inner()) = Inner {
                dir: Some(dir),
                names,
                ..Inner::default()
            };
            if let Some(g) = stale {
                self.fresh.checked(g);
            }
        }
        if let Some(f) = self.cached(root, cc, sn) {
            return f;
        }
        let files = Arc::new(CertFiles::load(root, cc, sn));
        let c = cost(sn, &files);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.bytes + c > MAX_BYTES {
            inner.devices.clear();
            inner.bytes = 0;
        }
        if c <= MAX_BYTES
            && inner
                .devices
                .insert(sn.to_string(), files.clone())
                .is_none()
        {
            inner.bytes += c;
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::FsWatch;

    fn cc() -> CustomCerts {
        use crate::config::{BUILTIN_DEFAULTS, Config, Source};
        let source = |name: &str, text: &str| Source {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        };
        let user = source(
            "config/user-config.xml",
            r#"<config><customcerts dir="certs" CAkeys="CAkey*"/></config>"#,
        );
        Config::from_sources(&source("config.xml", BUILTIN_DEFAULTS), Some(&user))
            .expect("config")
            .customcerts
            .expect("customcerts")
    }

    #[test]
    fn a_device_without_files_is_known_from_the_listing() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("certs")).expect("dir");
        std::fs::write(d.path().join("certs/SN1-signedrequest.cer"), b"cert").expect("file");
        std::fs::write(d.path().join("certs/CAkey1.cer"), b"ca").expect("file");
        let watch = Arc::new(FsWatch::start(
            d.path(),
            &crate::watch::WatchOptions {
                notify: false,
                rescan: std::time::Duration::from_secs(3600),
            },
        ));
        let cache = CertCache::new(watch.freshness());
        let cc = cc();
        assert_eq!(
            cache.cached(d.path(), &cc, "SN2"),
            None,
            "nothing listed yet"
        );
        assert_eq!(*cache.load(d.path(), &cc, "SN2"), CertFiles::default());
        assert_eq!(
            cache.cached(d.path(), &cc, "SN3").as_deref(),
            Some(&CertFiles::default())
        );
        assert_eq!(cache.cached(d.path(), &cc, "SN1"), None, "SN1 has a file");
        let sn1 = cache.load(d.path(), &cc, "SN1");
        assert_eq!(sn1.signed, Some(Ok(b"cert".to_vec())));
        assert_eq!(sn1.ca_keys.len(), 1);
        assert_eq!(cache.cached(d.path(), &cc, "SN1"), Some(sn1));
        watch.bump();
        assert_eq!(cache.cached(d.path(), &cc, "SN3"), None, "after a change");
    }
}
