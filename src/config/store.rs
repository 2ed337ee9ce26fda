//! Reading the configuration files and re-reading them when they change (the shell part of
//! the configuration). With a [`Freshness`] from the file watcher, the files are looked at
//! only after a notification or rescan tick; in between `get` makes no system call.

use super::{BUILTIN_DEFAULTS, Config, ConfigError, Source};
use crate::watch::{Freshness, FsWatch};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
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

/// What was read last, and the last configuration that was good.
struct Loaded {
    fingerprint: Fingerprint,
    latest: Result<Arc<Config>, ConfigError>,
    good: Option<Arc<Config>>,
    /// How many reads were logged (a read that says nothing new is not).
    logged: u64,
}

impl Loaded {
    /// The configuration to serve: the latest when good, else the last good one.
    fn served(&self) -> Result<Arc<Config>, ConfigError> {
        match (&self.latest, &self.good) {
            (Err(_), Some(good)) => Ok(good.clone()),
            (latest, _) => latest.clone(),
        }
    }
}

/// The current configuration of a root, re-read when its files change. A configuration that
/// breaks while running does not stop the fleet: the last good one stays in use and the
/// error is reported by [`ConfigStore::problem`] (health, metrics, admin banner).
pub struct ConfigStore {
    root: PathBuf,
    current: RwLock<Loaded>,
    /// The files as they were at start or at the last [`ConfigStore::reload`].
    reloaded: Mutex<Fingerprint>,
    fresh: Freshness,
    /// The generation of the last configuration read (see [`Config::generation`]).
    generation: std::sync::atomic::AtomicU64,
}

impl ConfigStore {
    /// A store that looks at the files on every `get`.
    pub fn new(root: &Path) -> ConfigStore {
        ConfigStore::watched(root, Arc::new(FsWatch::always_check()).freshness())
    }

    /// A store that looks at the files only when `fresh` reports a possible change.
    pub fn watched(root: &Path, fresh: Freshness) -> ConfigStore {
        let fingerprint = fingerprint(root);
        let latest = Config::load(root).map(|mut c| {
            c.generation = 1;
            Arc::new(c)
        });
        ConfigStore {
            generation: std::sync::atomic::AtomicU64::new(1),
            root: root.to_path_buf(),
            reloaded: Mutex::new(fingerprint.clone()),
            current: RwLock::new(Loaded {
                good: latest.as_ref().ok().cloned(),
                fingerprint,
                latest,
                logged: 0,
            }),
            fresh,
        }
    }

    /// The configuration to use (the files as they are now, or the last good one while they
    /// are broken); looks at the files only after a change was noticed, re-reads them only
    /// when they changed.
    pub fn get(&self) -> Result<Arc<Config>, ConfigError> {
        let Some(generation) = self.fresh.stale() else {
            if let Ok(guard) = self.current.read() {
                return guard.served();
            }
            return self.load(fingerprint(&self.root));
        };
        self.check(Some(generation))
    }

    /// [`ConfigStore::get`], looking at the files' times and sizes now even when no change
    /// was noticed yet (admin pages: an administrator who just edited the configuration sees
    /// it on the next page, before the notification arrives).
    pub fn get_checked(&self) -> Result<Arc<Config>, ConfigError> {
        self.check(self.fresh.stale())
    }

    /// Compares the files with what was read last, reads them again when they changed.
    /// `generation`: the change being checked, if any.
    fn check(&self, generation: Option<u64>) -> Result<Arc<Config>, ConfigError> {
        let fp = fingerprint(&self.root);
        // a file modified within the last second may have changed with the same time stamp
        let settled = fp
            .iter()
            .flatten()
            .all(|(mtime, _)| !crate::watch::racy(*mtime));
        let unchanged = self
            .current
            .read()
            .ok()
            .filter(|guard| guard.fingerprint == fp && settled)
            .map(|guard| guard.served());
        let served = match unchanged {
            Some(served) => served,
            None => self.load(fp),
        };
        if let Some(g) = generation {
            self.fresh.checked(g);
        }
        served
    }

    /// Reads the files again even when they look unchanged (SIGHUP). Returns the files
    /// (relative to the root) that changed since the start or the last reload, or the error
    /// of a broken configuration (the last good one stays in use).
    pub fn reload(&self) -> Result<Vec<String>, ConfigError> {
        let fp = fingerprint(&self.root);
        let changed = {
            let mut before = self.reloaded.lock().unwrap_or_else(|e| e.into_inner());
            let changed = watched_files(Path::new(""))
                .iter()
                .zip(before.iter().zip(&fp))
                .filter(|(_, (a, b))| a != b)
                .map(|(p, _)| p.display().to_string())
                .collect();
            *before = fp.clone();
            changed
        };
        self.load(fp)?;
        match self.problem() {
            Some(e) => Err(e),
            None => Ok(changed),
        }
    }

    /// What is wrong with the files on disk, if anything.
    pub fn problem(&self) -> Option<ConfigError> {
        let _ = self.get();
        let guard = self.current.read().ok()?;
        guard.latest.as_ref().err().cloned()
    }

    fn load(&self, fp: Fingerprint) -> Result<Arc<Config>, ConfigError> {
        let loaded = Config::load(&self.root).map(|mut c| {
            c.generation = 1 + self
                .generation
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Arc::new(c)
        });
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        // a file read again because it is still racy says nothing new when it reads the same
        let repeat = guard.fingerprint == fp
            && match (&guard.latest, &loaded) {
                (Ok(_), Ok(_)) => true,
                (Err(a), Err(b)) => a.to_string() == b.to_string(),
                _ => false,
            };
        if !repeat {
            guard.logged += 1;
            log_read(&loaded, guard.good.is_some());
        }
        if let Ok(c) = &loaded {
            guard.good = Some(c.clone());
        }
        guard.fingerprint = fp;
        guard.latest = loaded;
        guard.served()
    }
}

/// The log line of a read of the files (`had_good`: a good configuration was read before).
fn log_read(loaded: &Result<Arc<Config>, ConfigError>, had_good: bool) {
    match loaded {
        Ok(_) => tracing::info!("configuration (re)loaded"),
        Err(e) if had_good => {
            tracing::error!("configuration error, the last good configuration stays in use: {e}")
        }
        Err(e) => tracing::error!("configuration error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root whose `config/user-config.xml` holds `<config/>`; the file's path.
    fn root() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("config")).expect("config");
        let user = dir.path().join("config/user-config.xml");
        std::fs::write(&user, "<config/>").expect("write");
        (dir, user)
    }

    #[test]
    fn reload_names_the_files_changed_since_the_last_reload() {
        let (dir, user) = root();
        let store = ConfigStore::new(dir.path());
        assert_eq!(store.reload().expect("good"), Vec::<String>::new());
        std::fs::write(&user, "<config><times polling=\"5\"/></config>").expect("write");
        assert_eq!(
            store.reload().expect("good"),
            vec!["config/user-config.xml".to_string()]
        );
        assert_eq!(store.reload().expect("good"), Vec::<String>::new());
        std::fs::write(&user, "<config><broken").expect("write");
        assert!(store.reload().is_err());
        assert!(store.get().is_ok(), "the last good configuration stays");
        assert!(store.problem().is_some());
    }

    #[test]
    fn a_broken_file_read_again_while_racy_is_logged_once() {
        let (dir, user) = root();
        let store = ConfigStore::new(dir.path());
        let logged = || store.current.read().expect("lock").logged;
        std::fs::write(&user, "<config><broken").expect("write");
        // just written: every look reads it again (its time stamp is not trusted yet)
        for _ in 0..3 {
            assert!(store.get().is_ok(), "the last good configuration stays");
        }
        assert_eq!(logged(), 1, "the error once");
        std::fs::write(&user, "<config/>").expect("write");
        for _ in 0..3 {
            assert!(store.get().is_ok());
        }
        assert_eq!(logged(), 2, "the repair once");
    }
}
