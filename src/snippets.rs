//! The snippet files of `scripts/` (`times/@dir`), kept in memory.
//!
//! A poll must not list the directory or read files when nothing changed. The store keeps
//! the directory's listing with every file's modification time and length; a file's content
//! and its contribution to the CHECK signature are read only when a poll it applies to (one
//! of the poll's candidate names) needs it, so a file that applies to no polling device is
//! never read nor held in memory. Before a poll the store is brought up to date cheaply: one
//! `stat` of the directory (a created, deleted or renamed file changes its modification
//! time) and one `stat` of each file read before (an in-place edit changes the file's); a
//! changed file is read again when a poll it applies to comes. With a [`Freshness`] from the
//! file watcher even that happens only after a notification or rescan tick: a warm poll
//! whose files are read makes no system call here.
//!
//! A file larger than `<server max-snippet>` ([`DEFAULT_MAX_SNIPPET`]) is never read: it is a
//! snippet that cannot be read (the device's answer names it in a `#` comment) and the log
//! says so once each time the file changes.

mod signatures;

use crate::watch::{Freshness, FsWatch, racy};
pub use signatures::SignatureCache;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// One snippet file as the poll sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Modification time, unix seconds (PHP's `filemtime`).
    pub mtime: i64,
    /// The content, or why it could not be read.
    pub content: Result<Arc<Vec<u8>>, String>,
    /// The file's part of the CHECK signature: its lines trimmed, blank ones dropped, joined.
    pub signature_part: Arc<Vec<u8>>,
}

impl Snippet {
    /// A snippet from its content (tests, and the store itself).
    pub fn new(mtime: i64, content: Vec<u8>) -> Snippet {
        let sig = signature_part(&content);
        Snippet {
            mtime,
            content: Ok(Arc::new(content)),
            signature_part: Arc::new(sig),
        }
    }
}

/// The lines of a file as PHP's CHECK signature reads them: split at `\n`, each trimmed of
/// PHP's white space, empty lines skipped, concatenated.
pub fn signature_part(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    for line in content.split(|&b| b == b'\n') {
        let t = trim_bytes(line);
        out.extend_from_slice(t);
    }
    out
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\0' | 0x0B);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Lookup of snippet files by file name (within the snippet directory).
pub trait SnippetSource {
    fn get(&self, name: &str) -> Option<&Snippet>;

    /// The CHECK signature of `snippets`: `compute` unless the source kept it.
    fn signature(&self, _snippets: &[&Snippet], compute: &mut dyn FnMut() -> String) -> String {
        compute()
    }
}

impl SnippetSource for HashMap<String, Snippet> {
    fn get(&self, name: &str) -> Option<&Snippet> {
        HashMap::get(self, name)
    }
}

/// Default of `<server max-snippet>` (the configuration's).
pub use crate::config::DEFAULT_MAX_SNIPPET;

#[derive(Clone)]
struct Entry {
    mtime: SystemTime,
    len: u64,
    /// `None`: listed, not read yet (no poll it applies to came since it changed).
    snippet: Option<Snippet>,
    /// Not read: larger than the limit (looked at again when it changes).
    too_large: bool,
}

/// A consistent view of the directory for one poll.
#[derive(Clone, Default)]
pub struct Snapshot {
    /// The files read.
    files: HashMap<String, Snippet>,
    /// The files listed but not read: a poll with one of them among its candidates reads it
    /// first ([`SnippetStore::refresh`]).
    unread: std::collections::HashSet<String>,
    /// Shared by the store's snapshots.
    signatures: Arc<SignatureCache>,
}

impl Snapshot {
    /// The files read (those that applied to a poll since they last changed).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.files.keys()
    }

    /// Whether every one of `candidates` that exists is read.
    pub fn covers(&self, candidates: &[String]) -> bool {
        self.unread.is_empty() || !candidates.iter().any(|c| self.unread.contains(c))
    }
}

impl SnippetSource for Snapshot {
    fn get(&self, name: &str) -> Option<&Snippet> {
        self.files.get(name)
    }

    fn signature(&self, snippets: &[&Snippet], compute: &mut dyn FnMut() -> String) -> String {
        self.signatures.of(snippets, compute)
    }
}

struct Inner {
    dir: PathBuf,
    dir_mtime: Option<SystemTime>,
    entries: HashMap<String, Entry>,
    snapshot: Arc<Snapshot>,
}

/// The snippet directory, kept current.
pub struct SnippetStore {
    inner: RwLock<Inner>,
    fresh: Freshness,
    /// `<server max-snippet>`.
    max: AtomicU64,
}

fn secs(t: SystemTime) -> i64 {
    crate::clock::unix_secs(t)
}

/// Reads a snippet file of at most `max` bytes (a larger one is not read).
fn read_entry(path: &Path, mtime: SystemTime, len: u64, max: u64) -> Entry {
    let content = read_limited(path, len, max);
    let too_large = matches!(content, Err(Unread::TooLarge));
    let snippet = match content {
        Ok(bytes) => Snippet::new(secs(mtime), bytes),
        Err(e) => {
            let error = match e {
                Unread::TooLarge => {
                    tracing::warn!(
                        "snippet {} not read: larger than <server max-snippet> ({max} bytes)",
                        path.display()
                    );
                    format!("larger than <server max-snippet> ({max} bytes), not read")
                }
                Unread::Io(e) => e,
            };
            Snippet {
                mtime: secs(mtime),
                content: Err(error),
                signature_part: Arc::new(Vec::new()),
            }
        }
    };
    Entry {
        mtime,
        len,
        snippet: Some(snippet),
        too_large,
    }
}

/// Why a snippet file's content is not there.
enum Unread {
    TooLarge,
    Io(String),
}

/// The file's content when it has at most `max` bytes (also when it grew after `len` was
/// seen: never more than `max + 1` bytes are read).
fn read_limited(path: &Path, len: u64, max: u64) -> Result<Vec<u8>, Unread> {
    use std::io::Read;
    if len > max {
        return Err(Unread::TooLarge);
    }
    let file = std::fs::File::open(path).map_err(|e| Unread::Io(e.to_string()))?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Unread::Io(e.to_string()))?;
    if bytes.len() as u64 > max {
        return Err(Unread::TooLarge);
    }
    Ok(bytes)
}

impl SnippetStore {
    /// A store that checks the files on every `refresh`.
    pub fn new(dir: PathBuf) -> SnippetStore {
        SnippetStore::watched(dir, Arc::new(FsWatch::always_check()).freshness())
    }

    /// A store that checks the files only when `fresh` reports a possible change.
    pub fn watched(dir: PathBuf, fresh: Freshness) -> SnippetStore {
        SnippetStore {
            fresh,
            max: AtomicU64::new(DEFAULT_MAX_SNIPPET),
            inner: RwLock::new(Inner {
                dir,
                dir_mtime: None,
                entries: HashMap::new(),
                snapshot: Arc::new(Snapshot::default()),
            }),
        }
    }

    /// Sets `<server max-snippet>` (0: the default); a change has every file looked at again.
    pub fn set_max(&self, max: u64) {
        let max = if max == 0 { DEFAULT_MAX_SNIPPET } else { max };
        if self.max.load(Ordering::Relaxed) != max && self.max.swap(max, Ordering::Relaxed) != max {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.entries.clear();
            inner.dir_mtime = None;
        }
    }

    /// Brings the store up to date for a poll that will look at `candidates` (file names
    /// inside the directory) and returns the snapshot to use: every candidate that exists is
    /// read in it, no other file is read for this poll. After a change every file read before
    /// is checked (the change may concern another poll's candidates); one that changed is
    /// read again when a poll it applies to comes. `dir` is the configured directory; when it
    /// differs from the last one, everything is listed again.
    pub fn refresh(&self, dir: &Path, candidates: &[String]) -> Arc<Snapshot> {
        if let Some(snap) = self.cached(dir, || candidates.to_vec()) {
            return snap;
        }
        // nothing changed, but another directory (or none read yet, or a candidate not read
        // yet): look at it now
        let generation = self.fresh.stale();
        self.fresh.ensure(dir, false);
        // a change noticed now may concern a file another poll asks for: check them all
        let snap = self.check(dir, candidates);
        if let Some(g) = generation {
            self.fresh.checked(g);
        }
        snap
    }

    /// The snapshot of `dir` while nothing changed since it was checked and every one of the
    /// poll's `candidates` that exists is read (no system call); `None` when
    /// [`SnippetStore::refresh`] must look at the files. `candidates` is called only when
    /// some listed file is not read.
    pub fn cached(
        &self,
        dir: &Path,
        candidates: impl FnOnce() -> Vec<String>,
    ) -> Option<Arc<Snapshot>> {
        if self.fresh.stale().is_some() {
            return None;
        }
        let snap = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if inner.dir != dir || inner.dir_mtime.is_none() {
                return None;
            }
            inner.snapshot.clone()
        };
        (snap.unread.is_empty() || snap.covers(&candidates())).then_some(snap)
    }

    /// Looks at the directory and the files read, lists what changed, reads the candidates
    /// not read yet.
    fn check(&self, dir: &Path, candidates: &[String]) -> Arc<Snapshot> {
        let dir_mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let mut changed_files: Vec<Changed> = Vec::new();
        let mut vanished: Vec<String> = Vec::new();
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let same_dir = inner.dir == dir
                && inner.dir_mtime == dir_mtime
                && dir_mtime.is_some_and(|t| !racy(t));
            if same_dir {
                // unreadable ones (directories, dangling links) wait for a directory change;
                // those not read are looked at when they are read
                for (name, entry) in inner.entries.iter().filter(|(_, e)| {
                    e.snippet.as_ref().is_some_and(|s| s.content.is_ok()) || e.too_large
                }) {
                    match std::fs::metadata(dir.join(name)) {
                        Ok(m) => {
                            let mt = m.modified().unwrap_or(UNIX_EPOCH);
                            if mt != entry.mtime || m.len() != entry.len || racy(mt) {
                                changed_files.push(Changed {
                                    name: name.clone(),
                                    mtime: mt,
                                    len: m.len(),
                                });
                            }
                        }
                        Err(_) => vanished.push(name.clone()),
                    }
                }
                if changed_files.is_empty()
                    && vanished.is_empty()
                    && inner.snapshot.covers(candidates)
                {
                    return inner.snapshot.clone();
                }
            }
        }
        let max = self.max.load(Ordering::Relaxed);
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.dir != dir || inner.dir_mtime != dir_mtime || dir_mtime.is_none_or(racy) {
            rescan(&mut inner, dir, dir_mtime);
        } else {
            for name in vanished {
                inner.entries.remove(&name);
            }
            for c in changed_files {
                inner.entries.insert(c.name, listed(c.mtime, c.len));
            }
        }
        for name in candidates {
            if inner.entries.get(name).is_some_and(|e| e.snippet.is_none()) {
                let e = look_at(&dir.join(name), max);
                inner.entries.insert(name.clone(), e);
            }
        }
        let (mut files, mut unread) = (HashMap::new(), std::collections::HashSet::new());
        for (name, e) in &inner.entries {
            match &e.snippet {
                Some(s) => drop(files.insert(name.clone(), s.clone())),
                None => drop(unread.insert(name.clone())),
            }
        }
        inner.snapshot = Arc::new(Snapshot {
            files,
            unread,
            signatures: inner.snapshot.signatures.clone(),
        });
        inner.snapshot.clone()
    }
}

/// A snippet file whose modification time or length changed since it was read.
struct Changed {
    name: String,
    mtime: SystemTime,
    len: u64,
}

fn unreadable(error: String) -> Entry {
    Entry {
        too_large: false,
        mtime: UNIX_EPOCH,
        len: 0,
        snippet: Some(Snippet {
            mtime: 0,
            content: Err(error),
            signature_part: Arc::new(Vec::new()),
        }),
    }
}

/// A regular file listed, not read.
fn listed(mtime: SystemTime, len: u64) -> Entry {
    Entry {
        too_large: false,
        mtime,
        len,
        snippet: None,
    }
}

/// Reads the file at `path` now (following symbolic links, as PHP's is_readable() does).
fn look_at(path: &Path, max: u64) -> Entry {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => read_entry(path, m.modified().unwrap_or(UNIX_EPOCH), m.len(), max),
        Ok(_) => unreadable("not a regular file".to_string()),
        Err(e) => unreadable(e.to_string()),
    }
}

/// Lists `dir` again: files read before and unchanged are kept, the others are listed with
/// their modification time and length only.
fn rescan(inner: &mut Inner, dir: &Path, dir_mtime: Option<SystemTime>) {
    let same_dir = inner.dir == dir;
    let mut entries = HashMap::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for de in rd.flatten() {
            let name = de.file_name().to_string_lossy().into_owned();
            // follows symbolic links, as PHP's is_readable() does
            let meta = match std::fs::metadata(de.path()) {
                Ok(m) if m.is_file() => m,
                Ok(_) => {
                    entries.insert(name, unreadable("not a regular file".to_string()));
                    continue;
                }
                Err(e) => {
                    entries.insert(name, unreadable(e.to_string()));
                    continue;
                }
            };
            let mt = meta.modified().unwrap_or(UNIX_EPOCH);
            let reuse = if same_dir {
                inner
                    .entries
                    .get(&name)
                    .filter(|e| e.mtime == mt && e.len == meta.len() && !racy(mt))
                    .cloned()
            } else {
                None
            };
            entries.insert(name, reuse.unwrap_or_else(|| listed(mt, meta.len())));
        }
    }
    inner.dir = dir.to_path_buf();
    inner.dir_mtime = dir_mtime;
    inner.entries = entries;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_part_trims_lines() {
        assert_eq!(
            signature_part(b"\n  # a\r\nb  \n\n   c   \n"),
            b"# abc".to_vec()
        );
    }

    #[test]
    fn picks_up_new_edited_and_deleted_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SnippetStore::new(dir.path().to_path_buf());
        let cands = vec!["a.txt".to_string()];
        assert!(store.refresh(dir.path(), &cands).get("a.txt").is_none());
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let s = store.refresh(dir.path(), &cands);
        assert_eq!(
            s.get("a.txt").map(|x| x.content.clone()),
            Some(Ok(Arc::new(b"one".to_vec())))
        );
        // in-place edit with a different length is seen without a directory change
        std::fs::write(dir.path().join("a.txt"), "two!").expect("write");
        let s = store.refresh(dir.path(), &cands);
        assert_eq!(
            s.get("a.txt").map(|x| x.content.clone()),
            Some(Ok(Arc::new(b"two!".to_vec())))
        );
        std::fs::remove_file(dir.path().join("a.txt")).expect("rm");
        assert!(store.refresh(dir.path(), &cands).get("a.txt").is_none());
    }

    #[test]
    fn a_file_is_read_only_for_a_poll_it_applies_to() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        std::fs::write(dir.path().join("b.txt"), "other").expect("write");
        // not just written (a file as old as the last look is read again, racy or not)
        let old = SystemTime::now() - std::time::Duration::from_secs(3600);
        for f in ["a.txt", "b.txt"] {
            let file = std::fs::File::options()
                .write(true)
                .open(dir.path().join(f));
            file.and_then(|f| f.set_modified(old)).expect("mtime");
        }
        let store = SnippetStore::new(dir.path().to_path_buf());
        let a = vec!["a.txt".to_string()];
        let s = store.refresh(dir.path(), &a);
        assert!(s.get("a.txt").is_some_and(|x| x.content.is_ok()));
        // listed, but neither read nor held
        assert!(s.get("b.txt").is_none());
        assert_eq!(s.names().collect::<Vec<_>>(), ["a.txt"]);
        assert!(s.covers(&a) && !s.covers(&["b.txt".to_string()]));
        // a poll it applies to reads it; the other one stays read
        let s = store.refresh(dir.path(), &["b.txt".to_string()]);
        assert_eq!(
            s.get("b.txt").map(|x| x.content.clone()),
            Some(Ok(Arc::new(b"other".to_vec())))
        );
        assert!(s.get("a.txt").is_some());
        // edited in place: not read again until a poll it applies to comes
        std::fs::write(dir.path().join("b.txt"), "changed!").expect("write");
        let s = store.refresh(dir.path(), &a);
        assert!(s.get("b.txt").is_none());
        let s = store.refresh(dir.path(), &["b.txt".to_string()]);
        assert_eq!(
            s.get("b.txt").map(|x| x.content.clone()),
            Some(Ok(Arc::new(b"changed!".to_vec())))
        );
    }

    #[test]
    fn a_file_over_the_limit_is_not_read_until_it_fits() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SnippetStore::new(dir.path().to_path_buf());
        store.set_max(10);
        std::fs::write(dir.path().join("big.txt"), "0123456789A").expect("write");
        std::fs::write(dir.path().join("ok.txt"), "0123456789").expect("write");
        let both = ["big.txt".to_string(), "ok.txt".to_string()];
        let s = store.refresh(dir.path(), &both);
        let big = s.get("big.txt").map(|x| x.content.clone());
        assert!(
            matches!(&big, Some(Err(e)) if e.contains("max-snippet")),
            "{big:?}"
        );
        assert!(s.get("ok.txt").is_some_and(|x| x.content.is_ok()));
        // cut down in place: read on the next look
        std::fs::write(dir.path().join("big.txt"), "short").expect("write");
        let s = store.refresh(dir.path(), &both);
        assert_eq!(
            s.get("big.txt").map(|x| x.content.clone()),
            Some(Ok(Arc::new(b"short".to_vec())))
        );
        // a lower limit applies to what was read before
        store.set_max(4);
        let s = store.refresh(dir.path(), &both);
        assert!(s.get("big.txt").is_some_and(|x| x.content.is_err()));
    }

    #[test]
    fn directories_and_dangling_links_are_unreadable_snippets() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("d.txt")).expect("mkdir");
        #[cfg(unix)]
        std::os::unix::fs::symlink(dir.path().join("nowhere"), dir.path().join("l.txt"))
            .expect("symlink");
        let store = SnippetStore::new(dir.path().to_path_buf());
        let s = store.refresh(dir.path(), &[]);
        assert!(s.get("d.txt").is_some_and(|x| x.content.is_err()));
        #[cfg(unix)]
        assert!(s.get("l.txt").is_some_and(|x| x.content.is_err()));
    }

    #[test]
    fn without_notifications_the_rescan_sees_a_new_file() {
        use crate::watch::{FsWatch, WatchOptions};
        let dir = tempfile::tempdir().expect("tmp");
        let opts = WatchOptions {
            notify: false,
            rescan: std::time::Duration::from_millis(20),
        };
        let watch = Arc::new(FsWatch::start(dir.path(), &opts));
        let store = SnippetStore::watched(dir.path().to_path_buf(), watch.freshness());
        let cands = vec!["a.txt".to_string()];
        assert!(store.refresh(dir.path(), &cands).get("a.txt").is_none());
        std::fs::write(dir.path().join("a.txt"), "one").expect("write");
        let mut seen = false;
        for _ in 0..500 {
            if store.refresh(dir.path(), &cands).get("a.txt").is_some() {
                seen = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(seen);
    }
}
