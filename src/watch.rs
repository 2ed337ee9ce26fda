//! Noticing changes to the installation's files without looking at them on every request.
//!
//! [`FsWatch`] keeps a generation number that goes up whenever something may have changed:
//! on a file-system notification (the `notify` crate: inotify on Linux) for the installation
//! root, `config/`, `scripts/`, `cache/`, `certs/`, the trees below `fw/` and `web/`, and the
//! directories the configuration names (snippets, certificates, master cache; added with
//! [`Freshness::ensure`] when a cache first looks at them); and when a periodic rescan (every
//! 2 s by default, `UPDATE_SERVER_RESCAN_SECS`) finds that a file in those directories has a
//! new size or modification time, or appeared or disappeared. The rescan is the fallback for
//! file systems without notifications (NFS, some container mounts) and for lost events; it
//! runs on its own thread, and when a scan is slow (many files) it waits 20 times as long as
//! the scan took before the next one. The status, backup and query directories are not
//! watched: the server's own writes there change nothing that is cached here.
//!
//! A file modified less than [`RACY`] ago cannot be told from its next version by its time
//! stamp (the kernel stamps files with a clock that ticks every few milliseconds, and a rewrite
//! of the same size keeps the size): the rescan counts such a scan as a change once more on
//! its next pass, and caches that compare times ask [`racy`] before taking a file as unchanged.
//!
//! Caches ([`Freshness`]) remember the generation they last checked their files at: while
//! it is unchanged a request uses the cached content without a system call; after a change it
//! checks modification times and sizes again (the cached times keep the grace period exact).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Default interval of the periodic rescan.
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(2);
/// The rescan looks at no more than this many files (the rest is left to notifications).
const RESCAN_MAX_FILES: usize = 200_000;
/// How long after its modification a file's time stamp is not trusted to tell versions apart.
pub const RACY: Duration = Duration::from_secs(1);

/// Whether a file modified at `mtime` may still change without its time stamp changing
/// (modified less than [`RACY`] ago, or in the future).
pub fn racy(mtime: SystemTime) -> bool {
    SystemTime::now()
        .duration_since(mtime)
        .map_or(true, |age| age < RACY)
}

/// How [`FsWatch`] notices changes.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Use file-system notifications (off: the periodic rescan only).
    pub notify: bool,
    /// Interval of the periodic rescan.
    pub rescan: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            notify: true,
            rescan: DEFAULT_RESCAN,
        }
    }
}

impl WatchOptions {
    /// The defaults, with the rescan interval from `UPDATE_SERVER_RESCAN_SECS` when set
    /// (bounded to 1 ms … 1 hour).
    pub fn from_env() -> WatchOptions {
        let mut o = WatchOptions::default();
        if let Some(secs) = std::env::var("UPDATE_SERVER_RESCAN_SECS")
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite())
        {
            o.rescan = Duration::from_secs_f64(secs.clamp(0.001, 3600.0));
        }
        o
    }
}

/// A watched directory: the tree below it (`deep`) or only its files.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Dir {
    path: PathBuf,
    deep: bool,
}

struct Shared {
    generation: Arc<AtomicU64>,
    stop: AtomicBool,
    dirs: Mutex<Vec<Dir>>,
    /// The notification watcher and the directories it watches.
    notifier: Mutex<Option<(notify::RecommendedWatcher, HashSet<PathBuf>)>>,
}

/// The change counter of an installation root (see the module documentation).
pub struct FsWatch {
    shared: Arc<Shared>,
    notifying: bool,
    /// Every look is a new generation (no caching).
    always: bool,
}

/// The directories watched below a root.
fn watched(root: &Path) -> Vec<Dir> {
    let flat = ["", "config", "scripts", "cache", "certs"].map(|d| Dir {
        path: root.join(d),
        deep: false,
    });
    let deep = ["fw", "web"].map(|d| Dir {
        path: root.join(d),
        deep: true,
    });
    flat.into_iter().chain(deep).collect()
}

fn notifier(generation: &Arc<AtomicU64>) -> Option<notify::RecommendedWatcher> {
    use notify::EventKind;
    let g = generation.clone();
    let handler = move |ev: notify::Result<notify::Event>| {
        // reads (our own included) change nothing
        if let Ok(e) = &ev
            && matches!(e.kind, EventKind::Access(_))
        {
            return;
        }
        tracing::trace!("file change: {ev:?}");
        g.fetch_add(1, Ordering::AcqRel);
    };
    match notify::recommended_watcher(handler) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!("no file-system notifications ({e}); rescanning periodically");
            None
        }
    }
}

impl Shared {
    /// Adds notification watches for the directories that exist and have none yet.
    fn watch_new_dirs(&self) {
        use notify::{RecursiveMode, Watcher};
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut n = self.notifier.lock().unwrap_or_else(|e| e.into_inner());
        let Some((w, watching)) = n.as_mut() else {
            return;
        };
        for d in dirs {
            if watching.contains(&d.path) || !d.path.is_dir() {
                continue;
            }
            let mode = if d.deep {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            match w.watch(&d.path, mode) {
                Ok(()) => {
                    watching.insert(d.path);
                }
                Err(e) => tracing::warn!("cannot watch {}: {e}", d.path.display()),
            }
        }
    }

    /// Sizes, modification times and names of the files in the watched directories, hashed;
    /// and whether one of them was modified too recently to be trusted (see [`racy`]).
    fn fingerprint(&self) -> Scan {
        let dirs = self.dirs.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut scan = Scan {
            hasher: std::hash::DefaultHasher::new(),
            budget: RESCAN_MAX_FILES,
            racy: false,
        };
        for d in &dirs {
            d.path.hash(&mut scan.hasher);
            hash_dir(&d.path, d.deep, &mut scan);
        }
        scan
    }
}

/// One pass of the rescan over the watched files.
struct Scan {
    hasher: std::hash::DefaultHasher,
    budget: usize,
    racy: bool,
}

/// Hashes the files of `dir` (and, when `deep`, of its sub-directories): name, size and
/// modification time, symbolic links followed.
fn hash_dir(dir: &Path, deep: bool, scan: &mut Scan) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        0u8.hash(&mut scan.hasher);
        return;
    };
    let mut names: Vec<_> = entries.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        if scan.budget == 0 {
            return;
        }
        scan.budget -= 1;
        let path = dir.join(&name);
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if deep {
                name.hash(&mut scan.hasher);
                hash_dir(&path, true, scan);
            }
            continue;
        }
        let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        scan.racy |= racy(mtime);
        name.hash(&mut scan.hasher);
        meta.len().hash(&mut scan.hasher);
        mtime.hash(&mut scan.hasher);
    }
}

/// The rescan thread: compares fingerprints with the one before (`first`: taken when the
/// watch started), adds watches for new directories.
fn rescan(shared: &Shared, every: Duration, first: Scan) {
    let mut last = first.hasher.finish();
    let mut was_racy = first.racy;
    let mut spent = Duration::ZERO;
    while !shared.stop.load(Ordering::Acquire) {
        std::thread::sleep(every.max(spent * 20));
        if shared.stop.load(Ordering::Acquire) {
            break;
        }
        let started = Instant::now();
        shared.watch_new_dirs();
        let scan = shared.fingerprint();
        let fp = scan.hasher.finish();
        if fp != last || was_racy {
            tracing::debug!("rescan: files changed (or changed too recently to tell)");
            shared.generation.fetch_add(1, Ordering::AcqRel);
            last = fp;
        }
        was_racy = scan.racy;
        spent = started.elapsed();
    }
}

impl FsWatch {
    /// Starts watching `root` (and the rescan thread).
    pub fn start(root: &Path, opts: &WatchOptions) -> FsWatch {
        let generation = Arc::new(AtomicU64::new(1));
        let notifier = if opts.notify {
            notifier(&generation).map(|w| (w, HashSet::new()))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            generation,
            stop: AtomicBool::new(false),
            dirs: Mutex::new(watched(root)),
            notifier: Mutex::new(notifier),
        });
        shared.watch_new_dirs();
        let notifying = shared
            .notifier
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(_, watching)| !watching.is_empty());
        let s = shared.clone();
        let every = opts.rescan;
        // taken now: a change made once `start` returned must differ from it
        let first = shared.fingerprint();
        let spawned = std::thread::Builder::new()
            .name("rescan".into())
            .spawn(move || rescan(&s, every, first));
        if let Err(e) = spawned {
            tracing::error!("cannot start the rescan thread: {e}");
        }
        FsWatch {
            notifying,
            shared,
            always: false,
        }
    }

    /// A watch that never notices anything by itself (tests, one-shot tools): every
    /// [`Freshness`] check looks at the files.
    pub fn always_check() -> FsWatch {
        FsWatch {
            shared: Arc::new(Shared {
                generation: Arc::new(AtomicU64::new(1)),
                stop: AtomicBool::new(true),
                dirs: Mutex::new(Vec::new()),
                notifier: Mutex::new(None),
            }),
            notifying: false,
            always: true,
        }
    }

    /// Whether file-system notifications are active.
    pub fn notifying(&self) -> bool {
        self.notifying
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        if self.always {
            return self.shared.generation.fetch_add(1, Ordering::AcqRel) + 1;
        }
        self.shared.generation.load(Ordering::Acquire)
    }

    /// Marks everything as possibly changed (after the server wrote a watched file).
    pub fn bump(&self) {
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Watches `dir` too (the whole tree below it when `deep`); nothing when it is already.
    pub fn ensure(&self, dir: &Path, deep: bool) {
        if self.always {
            return;
        }
        let d = Dir {
            path: dir.to_path_buf(),
            deep,
        };
        {
            let mut dirs = self.shared.dirs.lock().unwrap_or_else(|e| e.into_inner());
            if dirs.iter().any(|x| x.path == d.path && (x.deep || !deep)) {
                return;
            }
            dirs.push(d);
        }
        self.shared.watch_new_dirs();
    }

    /// A handle for a cache.
    pub fn freshness(self: &Arc<Self>) -> Freshness {
        Freshness {
            watch: self.clone(),
            checked: AtomicU64::new(0),
        }
    }
}

impl Drop for FsWatch {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

/// A cache's view of the watch: whether its files must be checked again.
pub struct Freshness {
    watch: Arc<FsWatch>,
    checked: AtomicU64,
}

impl Freshness {
    /// `None` while nothing changed since the last [`Freshness::checked`]; else the generation
    /// to pass to it once the files were checked.
    pub fn stale(&self) -> Option<u64> {
        let g = self.watch.generation();
        (g != self.checked.load(Ordering::Acquire)).then_some(g)
    }

    /// Records that the files were checked at generation `g` (from [`Freshness::stale`]).
    pub fn checked(&self, g: u64) {
        self.checked.store(g, Ordering::Release);
    }

    /// Forgets the last check (the next [`Freshness::stale`] reports a change).
    pub fn reset(&self) {
        self.checked.store(0, Ordering::Release);
    }

    /// Watches `dir` too (see [`FsWatch::ensure`]); call it where the files are checked.
    pub fn ensure(&self, dir: &Path, deep: bool) {
        self.watch.ensure(dir, deep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `f` reports a change within five seconds.
    fn becomes_stale(f: &Freshness) -> bool {
        (0..500).any(|_| {
            std::thread::sleep(Duration::from_millis(10));
            f.stale().is_some()
        })
    }

    #[test]
    fn a_write_is_noticed_and_nothing_else_is() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = WatchOptions {
            notify: true,
            rescan: Duration::from_secs(3600),
        };
        let w = Arc::new(FsWatch::start(dir.path(), &opts));
        assert!(w.notifying());
        let f = w.freshness();
        let g = f.stale().expect("stale at first");
        f.checked(g);
        assert_eq!(f.stale(), None);
        std::fs::write(dir.path().join("a.txt"), "x").expect("write");
        assert!(becomes_stale(&f), "no notification");
    }

    #[test]
    fn without_notifications_the_rescan_sees_changes_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tmp");
        let opts = WatchOptions {
            notify: false,
            rescan: Duration::from_millis(20),
        };
        let w = Arc::new(FsWatch::start(dir.path(), &opts));
        assert!(!w.notifying());
        let f = w.freshness();
        let g = f.stale().expect("stale at first");
        f.checked(g);
        // ten rescans over unchanged files change nothing
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(f.stale(), None, "a rescan without a change");
        std::fs::write(dir.path().join("a.txt"), "x").expect("write");
        assert!(becomes_stale(&f), "the rescan did not see the new file");
    }

    #[test]
    fn an_ensured_directory_is_rescanned() {
        let dir = tempfile::tempdir().expect("tmp");
        let other = tempfile::tempdir().expect("tmp");
        let opts = WatchOptions {
            notify: false,
            rescan: Duration::from_millis(20),
        };
        let w = Arc::new(FsWatch::start(dir.path(), &opts));
        let f = w.freshness();
        f.ensure(other.path(), false);
        std::thread::sleep(Duration::from_millis(100));
        let g = f.stale().expect("stale at first");
        f.checked(g);
        std::fs::write(other.path().join("cert.cer"), "x").expect("write");
        assert!(becomes_stale(&f), "the rescan did not see the new file");
    }

    #[test]
    fn recent_and_future_time_stamps_are_racy() {
        let now = SystemTime::now();
        assert!(racy(now));
        assert!(racy(now + Duration::from_secs(60)));
        assert!(!racy(now - Duration::from_secs(2)));
    }

    #[test]
    fn a_same_size_rewrite_right_after_the_start_is_seen() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("config.xml");
        std::fs::write(&file, "one").expect("write");
        let opts = WatchOptions {
            notify: false,
            rescan: Duration::from_millis(20),
        };
        let w = Arc::new(FsWatch::start(dir.path(), &opts));
        let f = w.freshness();
        let g = f.stale().expect("stale at first");
        f.checked(g);
        // same size, and most likely the same time stamp
        std::fs::write(&file, "two").expect("rewrite");
        assert!(becomes_stale(&f));
    }

    #[test]
    fn always_check_is_always_stale() {
        let w = Arc::new(FsWatch::always_check());
        let f = w.freshness();
        let g = f.stale().expect("stale");
        f.checked(g);
        assert!(f.stale().is_some());
    }
}
