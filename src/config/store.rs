//! Reading the configuration files and re-reading them when they change (the shell part of
//! the configuration). With a [`Freshness`] from the file watcher, the files are looked at
//! only after a notification or rescan tick; in between `get` makes no system call.

use super::{BUILTIN_DEFAULTS, Config, ConfigError, Source};
use crate::watch::{Freshness, FsWatch};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

/// Which files the configuration comes from, and their bytes.
pub fn read_sources(root: &Path) -> Result<(Source, Option<Source>), ConfigError> {
    let read = |rel: &str| -> Result<Option<Source>, ConfigError> {
        let p = root.join(rel);
        match std::fs::read(&p) {
            Ok(bytes) => Ok(Some(Source {
                name: rel.to_string(),
                bytes,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError::new(
                rel,
                "file",
                format!("cannot read {rel}: {e}"),
            )),
        }
    };
    let defaults = match read("config.xml")? {
        Some(s) => s,
        None => match read("config/config.xml")? {
            Some(s) => s,
            None => Source {
                name: "built-in config.xml".to_string(),
                bytes: BUILTIN_DEFAULTS.as_bytes().to_vec(),
            },
        },
    };
    let user = match read("config/user-config-dvl.xml")? {
        Some(s) => Some(s),
        None => read("config/user-config.xml")?,
    };
    Ok((defaults, user))
}

/// The files whose change means the configuration must be read again.
pub fn watched_files(root: &Path) -> [PathBuf; 4] {
    [
        root.join("config.xml"),
        root.join("config/config.xml"),
        root.join("config/user-config-dvl.xml"),
        root.join("config/user-config.xml"),
    ]
}

/// Identity of the configuration files on disk: path, modification time and size.
type Fingerprint = Vec<Option<(SystemTime, u64)>>;

fn fingerprint(root: &Path) -> Fingerprint {
    watched_files(root)
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// The current configuration of a root, re-read when its files change.
pub struct ConfigStore {
    root: PathBuf,
    current: RwLock<(Fingerprint, Result<Arc<Config>, ConfigError>)>,
    fresh: Freshness,
}

impl ConfigStore {
    /// A store that looks at the files on every `get`.
    pub fn new(root: &Path) -> ConfigStore {
        ConfigStore::watched(root, Arc::new(FsWatch::always_check()).freshness())
    }

    /// A store that looks at the files only when `fresh` reports a possible change.
    pub fn watched(root: &Path, fresh: Freshness) -> ConfigStore {
        let fp = fingerprint(root);
        let cfg = Config::load(root).map(Arc::new);
        ConfigStore {
            root: root.to_path_buf(),
            current: RwLock::new((fp, cfg)),
            fresh,
        }
    }

    /// The configuration as the files are now; re-reads them only when they changed.
    pub fn get(&self) -> Result<Arc<Config>, ConfigError> {
        let Some(generation) = self.fresh.stale() else {
            if let Ok(guard) = self.current.read() {
                return guard.1.clone();
            }
            return self.reload(fingerprint(&self.root));
        };
        let fp = fingerprint(&self.root);
        if let Ok(guard) = self.current.read()
            && guard.0 == fp
        {
            self.fresh.checked(generation);
            return guard.1.clone();
        }
        let loaded = self.reload(fp);
        self.fresh.checked(generation);
        loaded
    }

    fn reload(&self, fp: Fingerprint) -> Result<Arc<Config>, ConfigError> {
        let loaded = Config::load(&self.root).map(Arc::new);
        match &loaded {
            Ok(_) => tracing::info!("configuration (re)loaded"),
            Err(e) => tracing::error!("configuration error: {e}"),
        }
        if let Ok(mut guard) = self.current.write() {
            *guard = (fp, loaded.clone());
        }
        loaded
    }
}
