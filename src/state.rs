//! Device state: the `status/SN.xml` file of every device.
//!
//! The file format is the PHP server's: a `<state seen="…">` root with a `<device …/>`
//! element (serial, type, classes, addresses, phase, environments, certificate status …),
//! `<firmware>`/`<bootcode>` elements, one `<config filename=…>` per delivered snippet, the
//! `<queries>` the device reported, and the `<msgs>` message log. [`log`] applies PHP's
//! `logDeviceState` rules to an element tree; [`trim_msgs`] trims the log.
//!
//! [`StateStore`] owns the files: it reads a state once and keeps it in memory while the file
//! is unchanged (checked by modification time and size), writes atomically (temporary file and
//! rename), serialises all requests of one device with a per-device lock, and purges the
//! files of devices not seen for `status/@expire` seconds, at most hourly.

mod cleanup;

use crate::xml::Element;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
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

/// PHP's `logDeviceState`: sets (or, with `None`, removes) an attribute.
pub fn log(state: &mut Element, attr: &str, value: Option<&str>, target: Target<'_>) {
    let el: &mut Element = match target {
        Target::Root => state,
        Target::Sub(name) => {
            if value.is_none() && state.child(name).is_none() {
                return;
            }
            state.child_or_insert(name)
        }
        Target::New(name, time) => {
            let mut e = Element::new(name);
            e.set_attr("time", time.to_string());
            state.children.push(e);
            let last = state.children.len() - 1;
            &mut state.children[last]
        }
        Target::Keyed(name, key, keyval) => {
            let pos = state
                .children
                .iter()
                .position(|c| c.name == name && c.attr(key) == Some(keyval));
            match pos {
                Some(i) => &mut state.children[i],
                None => {
                    let mut e = Element::new(name);
                    e.set_attr(key, keyval);
                    state.children.push(e);
                    let last = state.children.len() - 1;
                    &mut state.children[last]
                }
            }
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

/// Trims the message log: entries older than `logkeep` seconds are dropped, but never the
/// last poll's block (everything from the last empty "ruler" message on).
pub fn trim_msgs(state: &mut Element, now: i64, logkeep: i64) {
    let very_old = now - logkeep;
    let msgs: Vec<usize> = state
        .children
        .iter()
        .enumerate()
        .filter(|(_, c)| c.name == "msgs")
        .map(|(i, _)| i)
        .collect();
    let mut last_ruler = None;
    let mut last_old = None;
    for (n, &i) in msgs.iter().enumerate() {
        let m = &state.children[i];
        if m.attr("msg").unwrap_or("").is_empty() {
            last_ruler = Some(n);
        } else if crate::php::intval(m.attr("time").unwrap_or("0")) < very_old {
            last_old = Some(n);
        }
    }
    let (Some(last_ruler), Some(last_old)) = (last_ruler, last_old) else {
        // PHP drops the oldest entry once a newer poll started; keep the log bounded likewise
        if let (Some(r), Some(&first)) = (last_ruler, msgs.first())
            && r > 0
        {
            state.children.remove(first);
        }
        return;
    };
    let drop: Vec<usize> = msgs
        .iter()
        .enumerate()
        .filter(|(n, _)| *n <= last_old && *n < last_ruler)
        .map(|(_, &i)| i)
        .collect();
    for i in drop.into_iter().rev() {
        state.children.remove(i);
    }
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

#[derive(Clone)]
struct Cached {
    mtime: SystemTime,
    len: u64,
    loaded: Loaded,
}

/// The state files of one status directory.
pub struct StateStore {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Cached>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    last_cleanup: Mutex<Option<i64>>,
}

impl StateStore {
    pub fn new(dir: PathBuf) -> StateStore {
        StateStore {
            dir,
            cache: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            last_cleanup: Mutex::new(None),
        }
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

    /// Reads the state of `sn`, from memory when the file did not change.
    pub fn load(&self, sn: &str) -> Loaded {
        self.load_path(sn, &self.path(sn))
    }

    fn load_path(&self, key: &str, path: &Path) -> Loaded {
        match std::fs::metadata(path) {
            Ok(meta) => self.load_meta(key, path, &meta),
            Err(_) => {
                self.forget(key);
                Loaded::Missing
            }
        }
    }

    /// [`Self::load_path`] with the file's metadata already at hand.
    fn load_meta(&self, key: &str, path: &Path, meta: &std::fs::Metadata) -> Loaded {
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let len = meta.len();
        if let Some(c) = self.cache_get(key)
            && c.mtime == mtime
            && c.len == len
        {
            return c.loaded;
        }
        let loaded = match std::fs::read(path) {
            Ok(bytes) => match Element::parse(&bytes) {
                Ok(el) => Loaded::Ok(Arc::new(el)),
                Err(e) => Loaded::Corrupt {
                    error: e.to_string(),
                    raw: String::from_utf8_lossy(&bytes).into_owned(),
                },
            },
            Err(e) => Loaded::Corrupt {
                error: e.to_string(),
                raw: String::new(),
            },
        };
        self.cache_put(
            key,
            Cached {
                mtime,
                len,
                loaded: loaded.clone(),
            },
        );
        loaded
    }

    fn cache_get(&self, key: &str) -> Option<Cached> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    fn cache_put(&self, key: &str, c: Cached) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), c);
    }

    fn forget(&self, key: &str) {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Writes the state of `sn` atomically and remembers it.
    pub fn save(&self, sn: &str, state: Element) -> std::io::Result<()> {
        let path = self.path(sn);
        write_atomic(&path, state.to_document().as_bytes())?;
        if let Ok(meta) = std::fs::metadata(&path) {
            self.cache_put(
                sn,
                Cached {
                    mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    len: meta.len(),
                    loaded: Loaded::Ok(Arc::new(state)),
                },
            );
        }
        Ok(())
    }

    /// Deletes the state of `sn`; `Ok(false)` when there was none.
    pub fn delete(&self, sn: &str) -> std::io::Result<bool> {
        self.forget(sn);
        match std::fs::remove_file(self.path(sn)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every state file (`*.xml`) of the directory with its parsed content, for the admin
    /// pages; unchanged files come from memory.
    pub fn all(&self) -> Vec<(String, Loaded, SystemTime)> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
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
            let path = entry.path();
            // one stat per file: a page of 10 000 devices does 10 000 of them
            let (loaded, mtime) = match std::fs::metadata(&path) {
                Ok(meta) => (
                    self.load_meta(stem, &path, &meta),
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ),
                Err(_) => {
                    self.forget(stem);
                    (Loaded::Missing, SystemTime::UNIX_EPOCH)
                }
            };
            out.push((stem.to_string(), loaded, mtime));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Removes state files older than `expire` seconds, at most once an hour: when the
    /// `lastcleanup` marker (PHP's) is missing or older than an hour; the marker is touched
    /// after the purge. Returns the serial numbers removed.
    pub fn expire(&self, now: i64, expire: i64) -> Vec<String> {
        if expire <= 0 {
            return Vec::new();
        }
        {
            let mut last = self.last_cleanup.lock().unwrap_or_else(|e| e.into_inner());
            let in_memory = last.is_some_and(|t| !cleanup::due(now, Some(t)));
            if in_memory || !cleanup::due(now, cleanup::read_marker(&self.dir)) {
                return Vec::new();
            }
            *last = Some(now);
            if let Err(e) = cleanup::touch_marker(&self.dir, now) {
                tracing::warn!(
                    "cannot touch {}: {e}",
                    cleanup::marker_path(&self.dir).display()
                );
            }
        }
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
            if now - mtime > expire && std::fs::remove_file(entry.path()).is_ok() {
                self.forget(stem);
                removed.push(stem.to_string());
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

    fn msg(s: &mut Element, t: i64, m: &str) {
        log(s, "msg", Some(m), Target::New("msgs", t));
    }

    #[test]
    fn trims_old_messages_but_keeps_the_last_poll() {
        let mut s = new_state("x");
        msg(&mut s, 100, "");
        msg(&mut s, 100, "old a");
        msg(&mut s, 100, "old b");
        msg(&mut s, 5000, "");
        msg(&mut s, 5000, "new");
        trim_msgs(&mut s, 5000, 1800);
        let left: Vec<_> = s
            .children_named("msgs")
            .map(|m| m.attr("msg").unwrap_or("").to_string())
            .collect();
        assert_eq!(left, vec!["", "new"]);
    }

    #[test]
    fn store_round_trip_and_corrupt_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        assert!(matches!(store.load("a"), Loaded::Missing));
        let s = new_state("a");
        store.save("a", s.clone()).expect("save");
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
