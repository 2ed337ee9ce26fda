//! Device state: the `status/SN.xml` file of every device.
//!
//! The file format is the PHP server's: a `<state seen="…">` root with a `<device …/>`
//! element (serial, type, classes, addresses, phase, environments, certificate status …),
//! `<firmware>`/`<bootcode>` elements, one `<config filename=…>` per delivered snippet, the
//! `<queries>` the device reported, and the `<msgs>` message log. [`log`] applies PHP's
//! `logDeviceState` rules to an element tree; [`trim_msgs`] trims the log. In memory the
//! log is not a list of child elements but the root's compact [`crate::xml::log::Log`]
//! (filled by [`compact_log`] when a file is read): a poll copies, trims and writes it
//! without touching each entry.
//!
//! [`StateStore`] owns the files: it keeps a compact [`index`] of all devices (not their
//! states), the parsed states of recently used devices in a cache bounded in bytes
//! ([`cache`]), hands new states to a write-behind [`writer`] (atomic files, group commit,
//! read-your-writes), caps the message log (`max-msgs`) and the file size (`max-state`),
//! serialises all requests of one device with a per-device lock, and purges the files of
//! devices not seen for `status/@expire` seconds, at most hourly. The status directory
//! belongs to the server: a file changed behind its back is seen after a restart.

mod cleanup;
mod msgs;
pub mod view;

pub use msgs::{MSGS, cap_msgs, compact_log, msg_rulers, msgs, trim_msgs};

use crate::xml::Element;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub mod cache;
pub mod fields;
pub mod index;
pub mod writer;

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Where [`log`] writes an attribute.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The `<state>` root element.
    Root,
    /// The first child of that name (created when missing).
    Sub(&'a str),
    /// A new child of that name with a `time` attribute (message log entries).
    New(&'a str, i64),
    /// The child of that name whose attribute `key` has value `value` (created when missing).
    Keyed(&'a str, &'a str, &'a str),
}

/// PHP's two `logDeviceState` calls for a delivered snippet: `delivered`, then `version`
/// of the `<config filename="path">` child (created when missing), with one search.
pub fn log_delivered(state: &mut Element, path: &str, delivered: &str, version: &str) {
    let i = keyed_child(state, "config", "filename", path);
    let c = &state.children[i];
    if c.attr("delivered") == Some(delivered) && c.attr("version") == Some(version) {
        // shared with the previous state, it stays shared (no copy)
        return;
    }
    let c = &mut state.children[i];
    c.set_attr("delivered", delivered);
    c.set_attr("version", version);
}

/// Where the first child `name` whose attribute `key` is `keyval` is; appended with only
/// that attribute when there is none.
fn keyed_child(state: &mut Element, name: &str, key: &str, keyval: &str) -> usize {
    let found = state
        .children
        .iter()
        .position(|c| c.name == name && c.attr(key) == Some(keyval));
    found.unwrap_or_else(|| {
        let mut e = Element::new(name);
        e.set_attr(key, keyval);
        state.children.push(e);
        state.children.len() - 1
    })
}

/// PHP's `logDeviceState`: sets (or, with `None`, removes) an attribute.
pub fn log(state: &mut Element, attr: &str, value: Option<&str>, target: Target<'_>) {
    let el: &mut Element = match target {
        Target::Root if state.attr(attr) == value => return,
        Target::Root => state,
        Target::Sub(name) => match state.children.iter().position(|c| c.name == name) {
            // a child shared with the previous state stays shared (no copy)
            Some(i) if state.children[i].attr(attr) == value => return,
            Some(i) => &mut state.children[i],
            None if value.is_none() => return,
            None => state.child_or_insert(name),
        },
        Target::New(MSGS, time) if attr == "msg" && value.is_some() => {
            let at = state.children.len();
            state.log.push_msg(at, time, value.unwrap_or_default());
            return;
        }
        Target::New(name, time) => {
            let mut e = Element::new(name);
            e.set_attr("time", time.to_string());
            if let Some(v) = value {
                e.set_attr(attr, v);
            }
            if name == MSGS {
                state.log.push(&e, state.children.len(), time);
            } else {
                state.children.push(e);
            }
            return;
        }
        Target::Keyed(name, key, keyval) => {
            // a missing child is created even for a removal (as before)
            let i = keyed_child(state, name, key, keyval);
            if state.children[i].attr(attr) == value {
                return;
            }
            &mut state.children[i]
        }
    };
    match value {
        Some(v) => el.set_attr(attr, v),
        None => el.remove_attr(attr),
    }
}

/// A fresh state for serial number `sn`.
pub fn new_state(sn: &str) -> Element {
    let mut s = Element::new("state");
    s.child_or_insert("device").set_attr("sn", sn);
    s
}

/// What is on disk for one device.
#[derive(Debug, Clone)]
pub enum Loaded {
    Missing,
    Ok(Arc<Element>),
    /// The file exists but cannot be read as a state: the error and the raw content.
    Corrupt {
        error: String,
        raw: String,
    },
}

/// What a device may make the server keep (`<server max-msgs max-state state-cache
/// commit-delay>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_msgs: usize,
    pub max_state: usize,
    pub cache_bytes: usize,
    pub commit_delay: std::time::Duration,
}

impl Limits {
    pub fn of(cfg: &crate::config::Config) -> Limits {
        Limits {
            max_msgs: cfg.server.max_msgs,
            max_state: cfg.server.max_state,
            cache_bytes: cfg.server.state_cache,
            commit_delay: std::time::Duration::from_millis(cfg.server.commit_delay_ms),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_msgs: 200,
            max_state: 1024 * 1024,
            cache_bytes: 16 * 1024 * 1024,
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
        Ok(bytes) => match Element::parse(&bytes) {
            Ok(mut el) => {
                compact_log(&mut el);
                Loaded::Ok(Arc::new(el))
            }
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
    /// Address of the configuration last taken up.
    configured: std::sync::atomic::AtomicUsize,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    last_cleanup: Mutex<Option<i64>>,
}

impl StateStore {
    /// The store of `dir`: removes temporary files a crash left there and starts its writer.
    /// The index is filled by [`Self::scan`].
    pub fn new(dir: PathBuf) -> StateStore {
        let limits = Limits::default();
        StateStore {
            cache: cache::Lru::new(limits.cache_bytes),
            writer: writer::Writer::start(dir.clone(), limits.commit_delay),
            index: Arc::new(index::Index::default()),
            limits: Mutex::new(limits),
            configured: std::sync::atomic::AtomicUsize::new(0),
            dir,
            locks: Mutex::new(HashMap::new()),
            last_cleanup: Mutex::new(None),
        }
    }

    /// Takes up the limits and the `show` columns of the configuration; `true` when the
    /// columns changed (then [`Self::scan`] with `all` rebuilds the index).
    pub fn configure(&self, cfg: &crate::config::Config) -> bool {
        // the same configuration as last time (it is re-read only when its files change)
        let ptr = cfg as *const crate::config::Config as usize;
        if self
            .configured
            .swap(ptr, std::sync::atomic::Ordering::AcqRel)
            == ptr
        {
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

    /// Stores the state of `sn`: caps its message log, updates the index and the cache and
    /// hands the file to the writer (durable within `commit-delay`). Refused when larger
    /// than `max-state`.
    pub fn save(&self, sn: &str, state: Element) -> Result<(), SaveError> {
        self.save_with(sn, state, false)
    }

    fn save_with(&self, sn: &str, mut state: Element, fresh: bool) -> Result<(), SaveError> {
        let limits = self.limits();
        cap_msgs(&mut state, limits.max_msgs);
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
        let cost = cache::cost(&state);
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
    pub async fn save_durable(&self, sn: &str, state: Element) -> Result<(), SaveError> {
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

/// Writes a file atomically: a temporary file in the same directory, then a rename.
/// Creates the directory when missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// [`write_atomic`], the new file created with permission bits `mode` (Unix) from the start,
/// e.g. `0o600` for a private key.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_a_value_already_there_leaves_the_shared_child_alone() {
        let type_and_delivery = |s: &mut Element| {
            log(s, "type", Some("IP232"), Target::Sub("device"));
            let config = Target::Keyed("config", "filename", "x");
            log(s, "delivered", Some("5"), config);
        };
        let mut a = new_state("00-90");
        type_and_delivery(&mut a);
        let mut b = a.clone();
        // the same values again
        type_and_delivery(&mut b);
        log(&mut b, "gone", None, Target::Sub("device"));
        assert!(
            std::ptr::eq(&a.children[0], &b.children[0]),
            "device not copied"
        );
        assert!(
            std::ptr::eq(&a.children[1], &b.children[1]),
            "config not copied"
        );
        log(
            &mut b,
            "delivered",
            Some("6"),
            Target::Keyed("config", "filename", "x"),
        );
        assert!(!std::ptr::eq(&a.children[1], &b.children[1]));
        assert_eq!(a.children[1].attr("delivered"), Some("5"));
        assert_eq!(b.children[1].attr("delivered"), Some("6"));
        // an empty keyed child is still created for a removal, as before
        log(
            &mut b,
            "delivered",
            None,
            Target::Keyed("config", "filename", "y"),
        );
        assert_eq!(b.children.len(), 3);
    }

    #[test]
    fn a_delivery_is_logged_as_the_two_php_calls_are() {
        let two_calls = |s: &mut Element, path: &str, d: &str, v: &str| {
            log(
                s,
                "delivered",
                Some(d),
                Target::Keyed("config", "filename", path),
            );
            log(
                s,
                "version",
                Some(v),
                Target::Keyed("config", "filename", path),
            );
        };
        let xml = r#"<state><device sn="1"/><config filename="a" version="1" delivered="2"/><config filename="b" delivered="3"/><config filename="a" delivered="9"/></state>"#;
        let start = Element::parse(xml.as_bytes()).expect("xml");
        for (path, d, v) in [
            ("a", "2", "1"),
            ("a", "5", "1"),
            ("b", "3", "4"),
            ("c", "6", "7"),
        ] {
            let (mut one, mut two) = (start.clone(), start.clone());
            log_delivered(&mut one, path, d, v);
            two_calls(&mut two, path, d, v);
            assert_eq!(one.to_xml(), two.to_xml(), "{path} {d} {v}");
        }
        let mut same = start.clone();
        log_delivered(&mut same, "a", "2", "1");
        assert!(
            std::ptr::eq(&same.children[1], &start.children[1]),
            "not copied"
        );
    }

    #[test]
    fn log_follows_php_rules() {
        let mut s = new_state("00-90");
        log(&mut s, "seen", Some("5"), Target::Root);
        log(&mut s, "type", Some("IP232"), Target::Sub("device"));
        log(&mut s, "build", Some("1"), Target::Sub("firmware"));
        log(&mut s, "msg", Some("hello"), Target::New("msgs", 7));
        log(
            &mut s,
            "delivered",
            Some("9"),
            Target::Keyed("config", "filename", "a.txt"),
        );
        log(
            &mut s,
            "version",
            Some("8"),
            Target::Keyed("config", "filename", "a.txt"),
        );
        log(&mut s, "nextphase", None, Target::Root);
        log(&mut s, "x", None, Target::Sub("bootcode"));
        assert_eq!(
            s.to_xml(),
            r#"<state seen="5"><device sn="00-90" type="IP232"/><firmware build="1"/><msgs time="7" msg="hello"/><config filename="a.txt" delivered="9" version="8"/></state>"#
        );
    }

    #[test]
    fn store_round_trip_and_corrupt_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        assert!(matches!(store.load("a"), Loaded::Missing));
        let s = new_state("a");
        store.save("a", s.clone()).expect("save");
        store.flush_blocking();
        match store.load("a") {
            Loaded::Ok(e) => assert_eq!(*e, s),
            other => panic!("{other:?}"),
        }
        std::fs::write(store.path("b"), "<state").expect("write");
        assert!(matches!(store.load("b"), Loaded::Corrupt { .. }));
        assert_eq!(store.all().len(), 2);
        assert!(store.delete("a").expect("delete"));
        assert!(!store.delete("a").expect("delete"));
    }

    #[test]
    fn expiry_runs_at_most_hourly() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        store.save("old", new_state("old")).expect("save");
        store.flush_blocking();
        let now = crate::clock::now();
        assert!(store.expire(now, 1000).is_empty());
        assert!(store.expire(now + 2000, 1000).is_empty(), "within the hour");
        assert_eq!(store.expire(now + 5000, 1000), vec!["old".to_string()]);
    }

    #[test]
    fn expiry_follows_the_lastcleanup_marker_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let now = crate::clock::now();
        // a marker written half an hour ago (by PHP or an earlier run): no purge yet
        cleanup::touch_marker(dir.path(), now - 1800).expect("touch");
        let store = StateStore::new(dir.path().to_path_buf());
        store.save("old", new_state("old")).expect("save");
        store.flush_blocking();
        assert!(store.expire(now + 1000, 500).is_empty(), "marker is recent");
        assert!(store.path("old").exists());
        // a fresh process sees an old marker: purges and moves the marker to now
        let store = StateStore::new(dir.path().to_path_buf());
        assert_eq!(store.expire(now + 1801, 500), vec!["old".to_string()]);
        assert_eq!(cleanup::read_marker(dir.path()), Some(now + 1801));
        let again = StateStore::new(dir.path().to_path_buf());
        assert!(
            again.expire(now + 1900, 1).is_empty(),
            "next process waits for the hour"
        );
        assert!(store.all().is_empty(), "the marker is not a device state");
    }
}
