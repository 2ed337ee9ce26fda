//! What all handlers share: the installation root, the URL prefix, the configuration,
//! snippet and state stores, the master source and the admin pages' state ([`App`]), and
//! running file work off the async threads ([`blocking`]).

use crate::config::{Config, ConfigStore};
use crate::firmware::MasterSource;
use crate::snippets::SnippetStore;
use crate::state::StateStore;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Everything the handlers share.
pub struct App {
    pub root: PathBuf,
    /// URL path prefix, empty or starting with `/` (no trailing `/`).
    pub prefix: String,
    pub config: ConfigStore,
    pub snippets: SnippetStore,
    pub master: MasterSource,
    /// Sessions, caches and settings of the admin pages.
    pub admin: crate::admin::AdminState,
    states: Mutex<HashMap<PathBuf, Arc<StateStore>>>,
}

pub type SharedApp = Arc<App>;

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
        let config = ConfigStore::new(&root);
        App {
            snippets: SnippetStore::new(root.join("scripts")),
            master: MasterSource::new(),
            admin: crate::admin::AdminState::default(),
            config,
            states: Mutex::new(HashMap::new()),
            prefix: normalize_prefix(prefix),
            root,
        }
    }

    /// Writes device state still held in memory (called once at a graceful stop). The
    /// device-state writer fills this in; until then nothing is pending.
    pub async fn flush_pending(&self) {}

    /// The state store of the configured status directory, if state tracking is on.
    pub fn states(&self, cfg: &Config) -> Option<Arc<StateStore>> {
        let dir = self.root.join(cfg.status_dir()?);
        let mut map = self.states.lock().unwrap_or_else(|e| e.into_inner());
        Some(
            map.entry(dir.clone())
                .or_insert_with(|| Arc::new(StateStore::new(dir)))
                .clone(),
        )
    }
}

/// Runs `f` on the blocking pool (file I/O); `None` if the pool is gone or `f` panicked.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}
