//! The one state of a server ([`App`]): the installation root, the URL prefix, the
//! configuration, snippet, state, certificate and rollout stores, the master source, the
//! admin side's sessions and caches ([`AdminState`]), the metrics registry and the
//! address→serial table. Every handler, the request layer and the fast lane reach it as
//! `State<SharedApp>`, or only the part they need ([`CurrentConfig`], axum's `FromRef`); two
//! servers in one process share nothing. Also: running file work off the async threads ([`blocking`]).

use crate::config::{Config, ConfigStore};
use crate::firmware::MasterSource;
use crate::metrics::Metrics;
use crate::origins::Origins;
use crate::snippets::SnippetStore;
use crate::state::StateStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

/// Everything the handlers share.
pub struct App {
    pub root: PathBuf,
    /// URL path prefix, empty or starting with `/` (no trailing `/`).
    pub prefix: String,
    pub config: ConfigStore,
    pub snippets: SnippetStore,
    pub master: MasterSource,
    /// Notices changes to the installation's files (configuration, snippets, static files).
    pub watch: Arc<crate::watch::FsWatch>,
    /// The devices' certificate files, kept while unchanged.
    pub certs: crate::certs::CertCache,
    /// Staged rollout states (`rollouts/ID.xml`), see [`crate::rollout::store`].
    pub rollouts: crate::rollout::RolloutStore,
    /// The files below `fw/`, served by the router and by the plain-HTTP fast lane
    /// ([`crate::fw_lane`]) from one cache.
    pub firmware: Arc<crate::static_files::StaticDir>,
    /// How each device last proved itself, who uploaded its CSR (`identity::ledger`).
    pub identities: crate::identity::Ledger,
    /// What the admin pages keep between requests.
    pub admin: AdminState,
    /// This server's counters (`/metrics`).
    pub metrics: Arc<Metrics>,
    /// The serial of the last poll from each device address (firmware log lines).
    pub origins: Arc<Origins>,
    /// The backup directories being written (one upload per device at a time).
    pub backup_dirs: crate::backup::DirLocks,
    states: Mutex<HashMap<PathBuf, Arc<StateStore>>>,
}

pub type SharedApp = Arc<App>;

/// The configuration an [`App`] serves now ([`ConfigStore::get`]: read again once its files
/// changed), or why there is none: for a handler that needs no more of the app
/// (`State<CurrentConfig>`). Taken once per request, so one handler sees one configuration.
/// A type of this crate because `FromRef` is axum's and [`SharedApp`] std's (orphan rule).
#[derive(Debug, Clone)]
pub struct CurrentConfig(pub Result<Arc<Config>, crate::config::ConfigError>);

impl axum::extract::FromRef<SharedApp> for CurrentConfig {
    fn from_ref(app: &SharedApp) -> Self {
        CurrentConfig(app.config.get())
    }
}

/// Password checks running at once (each Argon2 check holds its memory cost).
pub const PARALLEL_PASSWORD_CHECKS: usize = 2;

/// What the admin side keeps between requests.
pub struct AdminState {
    pub sessions: crate::auth::session::Sessions,
    /// Failed admin logins.
    pub throttle: crate::auth::throttle::Throttle,
    /// Failed API tokens, apart from the logins.
    pub api_throttle: crate::auth::throttle::Throttle,
    /// Backup lists per device.
    pub backups: crate::backup::BackupCache,
    /// Summaries of waiting CSRs.
    pub csrs: crate::certs::csrs::CsrCache,
    /// Password checks running at once, at most [`PARALLEL_PASSWORD_CHECKS`].
    pub password_checks: tokio::sync::Semaphore,
    /// The audit log of admin actions.
    pub audit: crate::audit::AuditLog,
    https_port: OnceLock<u16>,
}

impl Default for AdminState {
    fn default() -> Self {
        AdminState {
            sessions: Default::default(),
            throttle: Default::default(),
            api_throttle: Default::default(),
            backups: Default::default(),
            csrs: Default::default(),
            password_checks: tokio::sync::Semaphore::new(PARALLEL_PASSWORD_CHECKS),
            audit: Default::default(),
            https_port: OnceLock::new(),
        }
    }
}

impl AdminState {
    /// Tells where the HTTPS listener is (for the redirect of plain-HTTP admin requests).
    pub fn set_https_port(&self, port: u16) {
        let _ = self.https_port.set(port);
    }

    pub fn https_port(&self) -> Option<u16> {
        self.https_port.get().copied()
    }
}

/// Normalises a `--prefix` value: leading `/`, no trailing `/`, empty for the root.
pub fn normalize_prefix(p: &str) -> String {
    let t = p.trim().trim_matches('/');
    if t.is_empty() {
        String::new()
    } else {
        format!("/{t}")
    }
}

impl App {
    pub fn new(root: PathBuf, prefix: &str) -> App {
        App::with_watch(root, prefix, &crate::watch::WatchOptions::from_env())
    }

    /// [`App::new`] with the given way of noticing file changes.
    pub fn with_watch(root: PathBuf, prefix: &str, opts: &crate::watch::WatchOptions) -> App {
        let watch = Arc::new(crate::watch::FsWatch::start(&root, opts));
        let config = ConfigStore::watched(&root, watch.freshness());
        App {
            snippets: SnippetStore::watched(root.join("scripts"), watch.freshness()),
            certs: crate::certs::CertCache::new(watch.freshness()),
            master: MasterSource::watched(watch.freshness()),
            firmware: Arc::new(crate::static_files::StaticDir::new(
                root.join("fw"),
                watch.freshness(),
            )),
            watch,
            rollouts: crate::rollout::RolloutStore::new(root.join("rollouts")),
            config,
            identities: crate::identity::Ledger::default(),
            admin: AdminState::default(),
            metrics: Arc::new(Metrics::new()),
            origins: Arc::new(Origins::default()),
            backup_dirs: crate::backup::DirLocks::default(),
            states: Mutex::new(HashMap::new()),
            prefix: normalize_prefix(prefix),
            root,
        }
    }

    /// The state store of the configured status directory, if state tracking is on.
    /// The first call for a directory creates its store and starts indexing its files.
    pub fn states(&self, cfg: &Config) -> Option<Arc<StateStore>> {
        let dir = self.root.join(cfg.status_dir()?);
        let mut map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let (store, new) = match map.get(&dir) {
            Some(s) => (s.clone(), false),
            None => {
                let timer = self.metrics.ops.batch.clone();
                let history = crate::state::builds::History::new(&self.root);
                let s = Arc::new(StateStore::timed(dir.clone(), timer).with_history(history));
                map.insert(dir, s.clone());
                (s, true)
            }
        };
        drop(map);
        let columns_changed = store.configure(cfg);
        if new || columns_changed {
            store.scan(!new);
        }
        Some(store)
    }

    fn stores(&self) -> Vec<Arc<StateStore>> {
        let map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    /// The state engines' figures summed over the status directories: devices indexed,
    /// bytes charged to the state caches, state writes pending.
    pub fn state_figures(&self) -> (usize, usize, usize) {
        self.stores().iter().fold((0, 0, 0), |acc, s| {
            let f = s.figures();
            (acc.0 + f.0, acc.1 + f.1, acc.2 + f.2)
        })
    }

    /// Writes every pending device state now and waits until it is durable, then removes the
    /// writers' spare files (at shutdown).
    pub async fn flush_pending(&self) {
        for s in self.stores() {
            s.close().await;
        }
        self.rollouts.write_dirty();
    }

    /// [`Self::flush_pending`] for a thread outside the runtime (blocks it).
    pub fn flush_pending_blocking(&self) {
        for s in self.stores() {
            s.flush_blocking();
        }
        self.rollouts.write_dirty();
    }
}

/// Runs `f` on the blocking pool (file I/O); `None` if the pool is gone or `f` panicked.
/// The thread then hands its free memory back ([`crate::idle_memory`]).
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(move || {
        let out = f();
        crate::idle_memory::collect();
        out
    })
    .await
    .ok()
}
