//! Noticing changes to the installation's files without looking at them on every request.
//!
//! [`FsWatch`] keeps a generation number that goes up whenever something may have changed:
//! on a file-system notification (the `notify` crate: inotify on Linux) for the installation
//! root, `config/`, `scripts/`, `cache/`, `certs/`, and the trees below `fw/` and `web/`; on a
//! periodic rescan tick (every 2 s by default, `UPDATE_SERVER_RESCAN_SECS`), the fallback for
//! file systems without notifications and for directories that appear later; and when the
//! server itself writes such a file ([`FsWatch::bump`]).
//!
//! Caches ([`Freshness`]) remember the generation they last checked their files at: while
//! it is unchanged a request uses the cached content without a system call; after a change it
//! checks modification times and sizes again (the cached times keep the grace period exact).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Default interval of the periodic rescan.
pub const DEFAULT_RESCAN: Duration = Duration::from_secs(2);

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

struct Shared {
    generation: AtomicU64,
    stop: AtomicBool,
}

/// The change counter of an installation root (see the module documentation).
pub struct FsWatch {
    shared: Arc<Shared>,
    _watcher: Option<notify::RecommendedWatcher>,
    notifying: bool,
    /// Every look is a new generation (no caching).
    always: bool,
}

/// The directories watched (non-recursive, recursive) below a root.
fn watched(root: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let flat = ["", "config", "scripts", "cache", "certs"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    let deep = ["fw", "web"].iter().map(|d| root.join(d)).collect();
    (flat, deep)
}

fn start_notify(root: &Path, shared: &Arc<Shared>) -> Option<notify::RecommendedWatcher> {
    use notify::{EventKind, RecursiveMode, Watcher};
    let s = shared.clone();
    let handler = move |ev: notify::Result<notify::Event>| {
        // reads (our own included) change nothing
        if let Ok(e) = &ev
            && matches!(e.kind, EventKind::Access(_))
        {
            return;
        }
        s.generation.fetch_add(1, Ordering::AcqRel);
    };
    let mut w = match notify::recommended_watcher(handler) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("no file-system notifications ({e}); rescanning periodically");
            return None;
        }
    };
    let (flat, deep) = watched(root);
    let mut any = false;
    for (dirs, mode) in [
        (flat, RecursiveMode::NonRecursive),
        (deep, RecursiveMode::Recursive),
    ] {
        for d in dirs.iter().filter(|d| d.is_dir()) {
            match w.watch(d, mode) {
                Ok(()) => any = true,
                Err(e) => tracing::warn!("cannot watch {}: {e}", d.display()),
            }
        }
    }
    any.then_some(w)
}

impl FsWatch {
    /// Starts watching `root` (and the rescan ticker).
    pub fn start(root: &Path, opts: &WatchOptions) -> FsWatch {
        let shared = Arc::new(Shared {
            generation: AtomicU64::new(1),
            stop: AtomicBool::new(false),
        });
        let watcher = if opts.notify {
            start_notify(root, &shared)
        } else {
            None
        };
        let s = shared.clone();
        let every = opts.rescan;
        let spawned = std::thread::Builder::new()
            .name("rescan".into())
            .spawn(move || {
                while !s.stop.load(Ordering::Acquire) {
                    std::thread::sleep(every);
                    s.generation.fetch_add(1, Ordering::AcqRel);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the rescan thread: {e}");
        }
        FsWatch {
            notifying: watcher.is_some(),
            _watcher: watcher,
            shared,
            always: false,
        }
    }

    /// A watch that never notices anything by itself (tests, one-shot tools): every
    /// [`Freshness`] check looks at the files.
    pub fn always_check() -> FsWatch {
        FsWatch {
            shared: Arc::new(Shared {
                generation: AtomicU64::new(1),
                stop: AtomicBool::new(true),
            }),
            _watcher: None,
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut seen = false;
        for _ in 0..500 {
            if f.stale().is_some() {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen, "no notification");
    }

    #[test]
    fn the_rescan_ticks_without_notifications() {
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
        let mut seen = false;
        for _ in 0..500 {
            if f.stale().is_some() {
                seen = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(seen, "no rescan tick");
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
