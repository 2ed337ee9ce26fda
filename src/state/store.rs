//! The shell of the device states: [`StateStore`] owns the files of one status directory
//! (reading and parsing, the device index, the byte-bounded cache, the write-behind writer,
//! the per-device locks, the cap of `max-state`, the purge of expired devices). The rules of
//! what a state holds are the core's (`state`, `state::msgs`: the message log is shortened
//! when a request ends, `Answer::finish`).

use super::{DeviceState, Loaded, cache, cleanup, index, view, writer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a device may make the server keep (`<server max-state state-cache commit-delay>`;
/// `max-msgs` is the core's, [`super::MsgRules`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_state: usize,
    pub cache_bytes: usize,
    pub commit_delay: std::time::Duration,
}

impl Limits {
    pub fn of(cfg: &crate::config::Config) -> Limits {
        Limits {
            max_state: cfg.server.max_state,
            cache_bytes: cfg.server.state_cache,
            commit_delay: std::time::Duration::from_millis(cfg.server.commit_delay_ms),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_state: 1024 * 1024,
            cache_bytes: cache::DEFAULT_CAP,
            commit_delay: std::time::Duration::from_millis(200),
        }
    }
}

/// Why a state was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("state of {sn} would be {len} bytes, more than server/@max-state ({max})")]
    TooLarge { sn: String, len: usize, max: usize },
}

/// Reads and parses `dir/SN.xml`.
fn read_state_file(dir: &Path, sn: &str) -> Loaded {
    let path = dir.join(format!("{sn}.xml"));
    let first = read_once(&path);
    // a file opened just before the writer swapped it in may be read while the writer
    // reuses it as a spare (see `writer`): what does not look like this device's state
    // is read once more
    let suspicious = match &first {
        Loaded::Corrupt { .. } => true,
        Loaded::Ok(el) => el
            .root
            .child("device")
            .and_then(|d| d.attr("sn"))
            .is_some_and(|other| other != sn),
        Loaded::Missing => false,
    };
    if suspicious {
        return read_once(&path);
    }
    first
}

fn read_once(path: &Path) -> Loaded {
    match std::fs::read(path) {
        Ok(bytes) => match DeviceState::parse(&bytes) {
            Ok(el) => Loaded::Ok(Arc::new(el)),
            Err(e) => Loaded::Corrupt {
                error: e.to_string(),
                raw: String::from_utf8_lossy(&bytes).into_owned(),
            },
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Loaded::Missing,
        Err(e) => Loaded::Corrupt {
            error: e.to_string(),
            raw: String::new(),
        },
    }
}

/// Every state file (`*.xml`) of `dir` with its parsed content, read now, without a
/// [`StateStore`] (no writer, nothing removed: a command line tool beside a running server).
pub fn read_all(dir: &Path) -> Vec<(String, Loaded, SystemTime)> {
    read_all_with(dir, |sn| read_state_file(dir, sn))
}

fn read_all_with(dir: &Path, read: impl Fn(&str) -> Loaded) -> Vec<(String, Loaded, SystemTime)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".xml") else {
            continue;
        };
        if stem.is_empty() || name.starts_with('.') {
            continue;
        }
        let mtime = entry
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        out.push((stem.to_string(), read(stem), mtime));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The state files of one status directory: the device [`index::Index`], a byte-bounded
/// cache of recently used states ([`cache::Lru`]) and the write-behind [`writer::Writer`].
pub struct StateStore {
    dir: PathBuf,
    cache: cache::Lru,
    writer: writer::Writer,
    index: Arc<index::Index>,
    limits: Mutex<Limits>,
    /// Generation of the configuration last taken up (0: none, or not from a store).
    configured: std::sync::atomic::AtomicU64,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    last_cleanup: Mutex<Option<i64>>,
    /// The devices' build changes (none kept without it).
    history: Option<super::builds::History>,
}

impl StateStore {
    /// The store of `dir`: removes temporary files a crash left there and starts its writer.
    /// The index is filled by [`Self::scan`]. Its writer's batch times are counted for no
    /// one ([`Self::timed`] counts them).
    pub fn new(dir: PathBuf) -> StateStore {
        StateStore::timed(dir, Default::default())
    }

    /// [`Self::new`] with the writer's batch times observed by `timer` (the server's
    /// `/metrics`).
    pub fn timed(dir: PathBuf, timer: crate::ops_metrics::BatchTimer) -> StateStore {
        let limits = Limits::default();
        StateStore {
            cache: cache::Lru::new(limits.cache_bytes),
            writer: writer::Writer::start(dir.clone(), limits.commit_delay, timer),
            index: Arc::new(index::Index::default()),
            limits: Mutex::new(limits),
            configured: std::sync::atomic::AtomicU64::new(0),
            dir,
            locks: Mutex::new(HashMap::new()),
            last_cleanup: Mutex::new(None),
            history: None,
        }
    }

    /// Keeps the devices' build changes in `history` (removed with their states).
    pub fn with_history(mut self, history: super::builds::History) -> StateStore {
        self.history = Some(history);
        self
    }

    /// Records the build changes a poll of `sn` made (blocking; the caller holds the
    /// device's lock). A failure is logged: the poll is done.
    pub fn record_builds(&self, sn: &str, changes: &[super::builds::Change]) {
        if let Some(h) = &self.history
            && let Err(e) = h.record(sn, changes)
        {
            tracing::error!("cannot record the build change of {sn}: {e}");
        }
    }

    /// The build changes of `sn`, oldest first (blocking).
    pub fn build_history(&self, sn: &str) -> Vec<super::builds::Change> {
        self.history
            .as_ref()
            .map(|h| h.read(sn))
            .unwrap_or_default()
    }

    /// Takes up the limits and the `show` columns of the configuration; `true` when the
    /// columns changed (then [`Self::scan`] with `all` rebuilds the index).
    pub fn configure(&self, cfg: &crate::config::Config) -> bool {
        // the same configuration as last time (it is re-read only when its files change);
        // a configuration not read by a store (generation 0) is always taken up
        let generation = cfg.generation;
        let before = self
            .configured
            .swap(generation, std::sync::atomic::Ordering::AcqRel);
        if generation != 0 && before == generation {
            return false;
        }
        let limits = Limits::of(cfg);
        let mut l = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        if *l != limits {
            self.cache.set_cap(limits.cache_bytes);
            self.writer.set_delay(limits.commit_delay);
            *l = limits;
        }
        drop(l);
        self.index.set_groups(view::show_groups(cfg))
    }

    fn limits(&self) -> Limits {
        *self.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fills the index from the files (all of them with `all`), on a thread of its own.
    pub fn scan(self: &Arc<Self>, all: bool) {
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("state-index".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let n = store.index.scan(&store.dir, |sn| store.read_file(sn), all);
                tracing::info!(
                    "indexed {n} device states in {} ms",
                    started.elapsed().as_millis()
                );
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the state index scan: {e}");
        }
    }

    /// The device index (what the admin pages list).
    pub fn index(&self) -> &index::Index {
        &self.index
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Path of the state file of `sn` (which the caller has validated).
    pub fn path(&self, sn: &str) -> PathBuf {
        self.dir.join(format!("{sn}.xml"))
    }

    /// The lock that serialises all requests of device `sn`.
    pub fn lock_for(&self, sn: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() > 4096 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(sn.to_string()).or_default().clone()
    }

    /// The state of `sn`: a pending write, else the cache, else its file (no system call
    /// when the device is in memory or, once the index is complete, has no file).
    pub fn load(&self, sn: &str) -> Loaded {
        if let Some(el) = self.writer.pending(sn) {
            return Loaded::Ok(el);
        }
        if let Some(el) = self.cache.get(sn) {
            return Loaded::Ok(el);
        }
        if self.index.is_complete() && !self.index.contains(sn) {
            return Loaded::Missing;
        }
        let loaded = self.read_file(sn);
        if let Loaded::Ok(el) = &loaded {
            self.cache.put(sn, el.clone());
        }
        loaded
    }

    /// [`StateStore::load`] from memory only (a pending write, the cache, or a device the
    /// complete index does not know); `None` when the file must be read.
    pub fn load_cached(&self, sn: &str) -> Option<Loaded> {
        if let Some(el) = self.writer.pending(sn) {
            return Some(Loaded::Ok(el));
        }
        if let Some(el) = self.cache.get(sn) {
            return Some(Loaded::Ok(el));
        }
        (self.index.is_complete() && !self.index.contains(sn)).then_some(Loaded::Missing)
    }

    /// Reads and parses the file of `sn` (a pending write first).
    fn read_file(&self, sn: &str) -> Loaded {
        if let Some(el) = self.writer.pending(sn) {
            return Loaded::Ok(el);
        }
        read_state_file(&self.dir, sn)
    }

    /// Stores the state of `sn`: updates the index and the cache and hands the file to the
    /// writer (durable within `commit-delay`). Refused when larger than `max-state`.
    pub fn save(&self, sn: &str, state: DeviceState) -> Result<(), SaveError> {
        self.save_with(sn, state, false)
    }

    fn save_with(&self, sn: &str, state: DeviceState, fresh: bool) -> Result<(), SaveError> {
        let limits = self.limits();
        // the file is written by the writer; serialised here only when it may be too large
        let (_, at_most) = state.document_len();
        if at_most > limits.max_state {
            let len = state.to_document().len();
            if len > limits.max_state {
                return Err(SaveError::TooLarge {
                    sn: sn.to_string(),
                    len,
                    max: limits.max_state,
                });
            }
        }
        let state = Arc::new(state);
        let prev = if fresh { None } else { self.cache.get(sn) };
        if !prev.is_some_and(|p| self.index.touch(sn, &state, &p)) {
            self.index.update(sn, &state, fresh);
        }
        let cost = super::cache::cost(&state);
        self.cache.put_costed(sn, state.clone(), cost);
        self.writer.submit_costed(sn, state, cost);
        Ok(())
    }

    /// Waits for the writer when too many files wait to be written (a disk slower than the
    /// polls), so pending states cannot fill the memory.
    pub async fn backpressure(&self) {
        if self.writer.backlogged() {
            self.writer.sync().await;
        }
    }

    /// [`Self::save`], then waits until the file is durable (device uploads).
    pub async fn save_durable(&self, sn: &str, state: DeviceState) -> Result<(), SaveError> {
        self.save_with(sn, state, true)?;
        self.writer.sync().await;
        Ok(())
    }

    /// Writes every pending state now and waits until it is durable.
    pub async fn flush(&self) {
        self.writer.sync().await;
    }

    /// `(devices indexed, bytes charged to the cache, state writes pending)`, for `/metrics`.
    pub fn figures(&self) -> (usize, usize, usize) {
        (
            self.index.len(),
            self.cache.charged(),
            self.writer.backlog(),
        )
    }

    /// [`Self::flush`] at the stop: also removes the writer's spare files.
    pub async fn close(&self) {
        self.writer.close().await;
    }

    /// [`Self::flush`] outside the runtime (blocks).
    pub fn flush_blocking(&self) {
        self.writer.sync_blocking();
    }

    /// Deletes the state of `sn`; `Ok(false)` when there was none.
    pub fn delete(&self, sn: &str) -> std::io::Result<bool> {
        self.cache.remove(sn);
        self.index.remove(sn);
        let pending = self.writer.pending(sn).is_some();
        if let Some(h) = &self.history {
            h.remove(sn);
        }
        self.writer
            .forget(sn, || match std::fs::remove_file(self.path(sn)) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(pending),
                Err(e) => Err(e),
            })
    }

    /// Every state file (`*.xml`) of the directory with its parsed content, read now
    /// (pending writes first).
    pub fn all(&self) -> Vec<(String, Loaded, SystemTime)> {
        read_all_with(&self.dir, |sn| self.read_file(sn))
    }

    /// Whether an expiry run is due: at most once an hour, and not when PHP's `lastcleanup`
    /// marker says a purge ran in the last hour (also one by the PHP server, or before a
    /// restart). Marks it started and touches the marker.
    pub fn expiry_due(&self, now: i64, expire: i64) -> bool {
        if expire <= 0 {
            return false;
        }
        let mut last = self.last_cleanup.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| !cleanup::due(now, Some(t))) {
            return false;
        }
        let marker = cleanup::read_marker(&self.dir);
        if let Some(t) = marker
            && !cleanup::due(now, Some(t))
        {
            *last = Some(t);
            return false;
        }
        *last = Some(now);
        if let Err(e) = cleanup::touch_marker(&self.dir, now) {
            tracing::warn!(
                "cannot touch {}: {e}",
                cleanup::marker_path(&self.dir).display()
            );
        }
        true
    }

    /// Removes state files older than `expire` seconds, at most once an hour (see
    /// [`Self::expiry_due`]). Returns the serial numbers removed.
    pub fn expire(&self, now: i64, expire: i64) -> Vec<String> {
        if !self.expiry_due(now, expire) {
            return Vec::new();
        }
        self.expire_now(now, expire)
    }

    /// Removes state files older than `expire` seconds (blocking: reads the directory).
    pub fn expire_now(&self, now: i64, expire: i64) -> Vec<String> {
        let mut removed = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return removed;
        };
        for entry in rd.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".xml") else {
                continue;
            };
            let mtime = entry
                .metadata()
                .and_then(|m| m.modified())
                .map_or(0, crate::clock::unix_secs);
            if now - mtime > expire && self.writer.pending(stem).is_none() {
                if let Ok(true) = self.delete(stem) {
                    removed.push(stem.to_string());
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(max_state: usize, generation: u64) -> Config {
        let xml = format!(r#"<config><status dir="s"/><server max-state="{max_state}"/></config>"#);
        let mut c = Config::from_user_xml(&xml).expect("config");
        c.generation = generation;
        c
    }

    #[test]
    fn a_configuration_is_known_by_its_generation_not_its_address() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        store.configure(&cfg(10, 1));
        assert_eq!(store.limits().max_state, 10);
        // the same generation is not taken up again, whatever it holds
        store.configure(&cfg(20, 1));
        assert_eq!(store.limits().max_state, 10);
        // a new generation is, also if it were made at the old one's address
        store.configure(&cfg(30, 2));
        assert_eq!(store.limits().max_state, 30);
        // one made outside a store (generation 0) always is
        store.configure(&cfg(40, 0));
        store.configure(&cfg(50, 0));
        assert_eq!(store.limits().max_state, 50);
    }
}
