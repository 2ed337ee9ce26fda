//! The snippet files of `scripts/` (`times/@dir`), kept in memory.
//!
//! A poll must not list the directory or read files when nothing changed. The store keeps
//! the directory's listing with every file's modification time, content and its contribution
//! to the CHECK signature. Before a poll it is brought up to date cheaply: one `stat` of the
//! directory (a created, deleted or renamed file changes its modification time) and one
//! `stat` of each candidate file that exists (an in-place edit changes the file's). Only what
//! changed is read again. With a [`Freshness`] from the file watcher even that happens only
//! after a notification or rescan tick: a warm poll makes no system call here.

mod signatures;

use crate::watch::{Freshness, FsWatch, racy};
pub use signatures::SignatureCache;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

#[derive(Clone)]
struct Entry {
    mtime: SystemTime,
    len: u64,
    snippet: Snippet,
}

/// A consistent view of the directory for one poll.
#[derive(Clone, Default)]
pub struct Snapshot {
    files: HashMap<String, Snippet>,
    /// Shared by the store's snapshots.
    signatures: Arc<SignatureCache>,
}

impl Snapshot {
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.files.keys()
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
}

fn secs(t: SystemTime) -> i64 {
    crate::clock::unix_secs(t)
}

fn read_entry(path: &Path, mtime: SystemTime, len: u64) -> Entry {
    let content = match std::fs::read(path) {
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(e.to_string()),
    };
    let snippet = match content {
        Ok(bytes) => Snippet::new(secs(mtime), bytes),
        Err(e) => Snippet {
            mtime: secs(mtime),
            content: Err(e),
            signature_part: Arc::new(Vec::new()),
        },
    };
    Entry {
        mtime,
        len,
        snippet,
    }
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
            inner: RwLock::new(Inner {
                dir,
                dir_mtime: None,
                entries: HashMap::new(),
                snapshot: Arc::new(Snapshot::default()),
            }),
        }
    }

    /// Brings the store up to date for a poll that will look at `candidates` (file names
    /// inside the directory; after a change every known file is checked, as the change may
    /// concern another poll's candidates) and returns the snapshot to use. `dir` is the configured
    /// directory; when it differs from the last one, everything is read again.
    pub fn refresh(&self, dir: &Path, _candidates: &[String]) -> Arc<Snapshot> {
        if let Some(snap) = self.cached(dir) {
            return snap;
        }
        // nothing changed, but another directory (or none read yet): look at it now
        let generation = self.fresh.stale().unwrap_or(0);
        self.fresh.ensure(dir, false);
        // a change noticed now may concern a file another poll asks for: check them all
        let snap = self.check(dir);
        self.fresh.checked(generation);
        snap
    }

    /// The snapshot of `dir` while nothing changed since it was checked (no system call);
    /// `None` when [`SnippetStore::refresh`] must look at the files.
    pub fn cached(&self, dir: &Path) -> Option<Arc<Snapshot>> {
        if self.fresh.stale().is_some() {
            return None;
        }
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        (inner.dir == dir && inner.dir_mtime.is_some()).then(|| inner.snapshot.clone())
    }

    /// Looks at the directory and its known files, reads what changed.
    fn check(&self, dir: &Path) -> Arc<Snapshot> {
        let dir_mtime = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
        let mut changed_files: Vec<Changed> = Vec::new();
        let mut vanished: Vec<String> = Vec::new();
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let same_dir = inner.dir == dir
                && inner.dir_mtime == dir_mtime
                && dir_mtime.is_some_and(|t| !racy(t));
            if same_dir {
                // unreadable ones (directories, dangling links) wait for a directory change
                for (name, entry) in inner
                    .entries
                    .iter()
                    .filter(|(_, e)| e.snippet.content.is_ok())
                {
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
                if changed_files.is_empty() && vanished.is_empty() {
                    return inner.snapshot.clone();
                }
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if inner.dir != dir || inner.dir_mtime != dir_mtime || dir_mtime.is_none_or(racy) {
            rescan(&mut inner, dir, dir_mtime);
        } else {
            for name in vanished {
                inner.entries.remove(&name);
            }
            for c in changed_files {
                let e = read_entry(&dir.join(&c.name), c.mtime, c.len);
                inner.entries.insert(c.name, e);
            }
        }
        inner.snapshot = Arc::new(Snapshot {
            files: inner
                .entries
                .iter()
                .map(|(k, e)| (k.clone(), e.snippet.clone()))
                .collect(),
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
        mtime: UNIX_EPOCH,
        len: 0,
        snippet: Snippet {
            mtime: 0,
            content: Err(error),
            signature_part: Arc::new(Vec::new()),
        },
    }
}

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
            let entry = reuse.unwrap_or_else(|| read_entry(&de.path(), mt, meta.len()));
            entries.insert(name, entry);
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
