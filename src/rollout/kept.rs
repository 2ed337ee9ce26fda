//! The previous versions of staged snippet files (the shell of `rollout::staged`): one copy
//! per file named by a snippet rollout, `rollouts/.snippets/ID/NAME` under the installation
//! root, its modification time set to the version it had in the snippet directory (so a
//! device given it records that `version`, as PHP would have). At most one copy per file:
//! the live file in `scripts/` is the new version, the copy the previous one. Kept in memory
//! for the polls ([`Kept::previous`]); read from disk once after a start.
//!
//! The ticker calls [`Kept::sync`]: a file without a copy gets one of its live version (a
//! rollout configured for the first time stages nothing until the file changes); and
//! [`Kept::promote`] when a round is done: the live version becomes the previous one; and
//! [`Kept::prune`] after each configuration load: the copies of rollouts (or files) no longer
//! configured are removed.

use crate::snippets::Snippet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The previous versions by file name (what a poll reads).
pub type Previous = HashMap<String, Snippet>;

/// The kept previous versions of one installation.
pub struct Kept {
    dir: PathBuf,
    /// By rollout id and file name; the polls' map is rebuilt on a change.
    copies: Mutex<HashMap<(String, String), Snippet>>,
    view: Mutex<Arc<Previous>>,
    /// What [`Kept::prune`] last pruned for (`None`: not yet since the start).
    pruned_for: Mutex<Option<Staged>>,
}

/// The snippet rollouts of a configuration: each id with the files it names.
pub type Staged = Vec<(String, Vec<String>)>;

/// Most entries looked at per directory by [`Kept::prune`].
const MAX_PRUNE_ENTRIES: usize = 256;

/// Removes `path` (a directory with what it holds, else the file or link itself).
fn remove(path: &Path) -> std::io::Result<()> {
    if std::fs::symlink_metadata(path)?.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
}

/// A file's live version and its kept previous version (unix seconds; `None`: none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Versions {
    pub live: Option<i64>,
    pub kept: Option<i64>,
}

fn secs(t: SystemTime) -> i64 {
    crate::clock::unix_secs(t)
}

/// The live version (modification time) of `dir/name`, if it is a regular file of at most
/// `max` bytes (a larger one is not delivered, so not staged).
fn live_version(dir: &Path, name: &str, max: u64) -> Option<i64> {
    let m = std::fs::metadata(dir.join(name)).ok()?;
    (m.is_file() && m.len() <= max)
        .then(|| m.modified().ok().map(secs))
        .flatten()
}

/// Reads at most `max` bytes of a file (`None`: larger, or unreadable).
fn read_bounded(path: &Path, max: u64) -> Option<(Vec<u8>, SystemTime)> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mtime = f.metadata().ok()?.modified().ok()?;
    let mut bytes = Vec::new();
    f.take(max + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= max).then_some((bytes, mtime))
}

impl Kept {
    /// The copies under `dir` (`ROOT/rollouts/.snippets`).
    pub fn new(dir: PathBuf) -> Kept {
        Kept {
            dir,
            copies: Mutex::new(HashMap::new()),
            view: Mutex::new(Arc::default()),
            pruned_for: Mutex::new(None),
        }
    }

    /// Removes the copies no rollout of the configuration `staged` needs (blocking I/O): the
    /// directories of rollouts that are not configured (or stage no snippets any more), and
    /// the copies of files a configured rollout no longer names; each removal is logged.
    /// Does the work once per configuration (the first call, then when `staged` changes);
    /// returns what it removed (`ID` or `ID/NAME`).
    pub fn prune(&self, staged: &[(String, Vec<String>)]) -> Vec<String> {
        // held while pruning: a second caller returns once the work is done
        let mut last = self.pruned_for.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_deref() == Some(staged) {
            return Vec::new();
        }
        *last = Some(staged.to_vec());
        let mut removed = Vec::new();
        let entries = |dir: &Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .map(|l| {
                    l.flatten()
                        .take(MAX_PRUNE_ENTRIES)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        for id in entries(&self.dir) {
            let path = self.dir.join(&id);
            let wanted = staged.iter().find(|(i, _)| *i == id).map(|(_, f)| f);
            let gone: Vec<(String, PathBuf)> = match wanted {
                None => vec![(id.clone(), path)],
                Some(files) => entries(&path)
                    .into_iter()
                    .filter(|n| !files.contains(n))
                    .map(|n| (format!("{id}/{n}"), path.join(n)))
                    .collect(),
            };
            for (what, p) in gone {
                match remove(&p) {
                    Ok(()) => {
                        tracing::info!(
                            "snippet rollouts: removed the kept copies {} (no longer configured)",
                            p.display()
                        );
                        removed.push(what);
                    }
                    Err(e) => tracing::error!("cannot remove {}: {e}", p.display()),
                }
            }
        }
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        let before = copies.len();
        copies.retain(|(id, name), _| staged.iter().any(|(i, f)| i == id && f.contains(name)));
        if copies.len() != before {
            self.rebuild(&copies);
        }
        removed
    }

    fn path(&self, id: &str, name: &str) -> PathBuf {
        self.dir.join(id).join(name)
    }

    /// The previous versions of the staged files, for a poll (cheap to take).
    pub fn previous(&self) -> Arc<Previous> {
        self.view.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn rebuild(&self, copies: &HashMap<(String, String), Snippet>) {
        let view: Previous = copies
            .iter()
            .map(|((_, name), s)| (name.clone(), s.clone()))
            .collect();
        *self.view.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(view);
    }

    /// Copies the live `snippets/name` as rollout `id`'s previous version (at most `max`
    /// bytes; blocking I/O). Returns the copy's version.
    fn copy_live(&self, id: &str, name: &str, snippets: &Path, max: u64) -> Option<Snippet> {
        let (bytes, mtime) = read_bounded(&snippets.join(name), max)?;
        let path = self.path(id, name);
        if let Err(e) = crate::fsio::write_atomic(&path, &bytes) {
            tracing::error!("rollout {id}: cannot keep {}: {e}", path.display());
            return None;
        }
        let stamped = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime));
        if let Err(e) = stamped {
            tracing::error!("rollout {id}: cannot date {}: {e}", path.display());
        }
        tracing::info!(
            "rollout {id}: kept {name} version {} as the previous version",
            secs(mtime)
        );
        Some(Snippet::new(secs(mtime), bytes))
    }

    /// The live and kept versions of every file the snippet rollouts `staged` (id, files)
    /// name; a file without a copy (on disk or in memory) gets one of its live version first
    /// (blocking I/O; at most `max` bytes per file).
    pub fn sync(
        &self,
        staged: &[(String, Vec<String>)],
        snippets: &Path,
        max: u64,
    ) -> HashMap<String, Versions> {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        let before = copies.len();
        copies.retain(|(id, name), _| {
            staged
                .iter()
                .any(|(i, files)| i == id && files.contains(name))
        });
        let mut changed = before != copies.len();
        let mut out = HashMap::new();
        for (id, files) in staged {
            for name in files {
                let key = (id.clone(), name.clone());
                let live = live_version(snippets, name, max);
                if !copies.contains_key(&key) {
                    let found = read_bounded(&self.path(id, name), max)
                        .map(|(b, t)| Snippet::new(secs(t), b))
                        .or_else(|| live.and_then(|_| self.copy_live(id, name, snippets, max)));
                    if let Some(s) = found {
                        copies.insert(key.clone(), s);
                        changed = true;
                    }
                }
                let kept = copies.get(&key).map(|s| s.mtime);
                out.insert(name.clone(), Versions { live, kept });
            }
        }
        if changed {
            self.rebuild(&copies);
        }
        out
    }

    /// A round of rollout `id` is done: its files' live versions (when still the versions
    /// staged) become the previous ones.
    pub fn promote(&self, id: &str, round: &[(String, i64)], snippets: &Path, max: u64) {
        let mut copies = self.copies.lock().unwrap_or_else(|e| e.into_inner());
        for (name, version) in round {
            if live_version(snippets, name, max) != Some(*version) {
                continue;
            }
            if let Some(s) = self.copy_live(id, name, snippets, max) {
                copies.insert((id.to_string(), name.clone()), s);
            }
        }
        self.rebuild(&copies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_mtime(p: &Path, secs: u64) {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(p)
            .expect("open");
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
            .expect("mtime");
    }

    #[test]
    fn keeps_the_first_version_and_promotes_a_done_round() {
        let root = tempfile::tempdir().expect("tmp");
        let scripts = root.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("mkdir");
        let file = scripts.join("a.txt");
        std::fs::write(&file, "v1").expect("write");
        set_mtime(&file, 1_000);
        let kept = Kept::new(root.path().join("rollouts/.snippets"));
        let staged = vec![("r".to_string(), vec!["a.txt".to_string()])];
        let v = kept.sync(&staged, &scripts, 100);
        assert_eq!(
            v["a.txt"],
            Versions {
                live: Some(1_000),
                kept: Some(1_000)
            }
        );
        std::fs::write(&file, "v2").expect("write");
        set_mtime(&file, 2_000);
        let v = kept.sync(&staged, &scripts, 100);
        assert_eq!(
            (v["a.txt"].live, v["a.txt"].kept),
            (Some(2_000), Some(1_000))
        );
        let prev = kept.previous();
        assert_eq!(prev["a.txt"].mtime, 1_000);
        assert_eq!(prev["a.txt"].content, Ok(Arc::new(b"v1".to_vec())));
        // a restart reads the copy with its version
        let again = Kept::new(root.path().join("rollouts/.snippets"));
        assert_eq!(
            again.sync(&staged, &scripts, 100)["a.txt"].kept,
            Some(1_000)
        );
        // a live file over the limit is not staged
        std::fs::write(&file, "v2 but far too long").expect("write");
        set_mtime(&file, 2_000);
        assert_eq!(kept.sync(&staged, &scripts, 10)["a.txt"].live, None);
        std::fs::write(&file, "v2").expect("write");
        set_mtime(&file, 2_000);
        kept.promote("r", &[("a.txt".into(), 2_000)], &scripts, 100);
        assert_eq!(kept.previous()["a.txt"].mtime, 2_000);
        assert_eq!(kept.sync(&staged, &scripts, 100)["a.txt"].kept, Some(2_000));
    }

    #[test]
    fn copies_of_rollouts_no_longer_configured_are_removed() {
        let root = tempfile::tempdir().expect("tmp");
        let scripts = root.path().join("scripts");
        std::fs::create_dir_all(&scripts).expect("mkdir");
        for f in ["a.txt", "b.txt"] {
            std::fs::write(scripts.join(f), f).expect("write");
        }
        let dir = root.path().join("rollouts/.snippets");
        let kept = Kept::new(dir.clone());
        let both = vec![
            (
                "r".to_string(),
                vec!["a.txt".to_string(), "b.txt".to_string()],
            ),
            ("old".to_string(), vec!["c.txt".to_string()]),
        ];
        kept.sync(&both, &scripts, 100);
        std::fs::create_dir_all(dir.join("old")).expect("mkdir");
        std::fs::write(dir.join("old/c.txt"), "c").expect("write");
        assert!(kept.prune(&both).is_empty(), "everything configured");
        // "old" removed, "r" names only a.txt: the rest goes, once per configuration
        let now = vec![("r".to_string(), vec!["a.txt".to_string()])];
        let mut removed = kept.prune(&now);
        removed.sort();
        assert_eq!(removed, vec!["old".to_string(), "r/b.txt".to_string()]);
        assert!(!dir.join("old").exists() && !dir.join("r/b.txt").exists());
        assert!(dir.join("r/a.txt").is_file());
        assert!(!kept.previous().contains_key("b.txt"));
        std::fs::create_dir_all(dir.join("later")).expect("mkdir");
        assert!(kept.prune(&now).is_empty(), "the same configuration again");
        // no snippet rollout at all: every copy goes
        let mut all = kept.prune(&[]);
        all.sort();
        assert_eq!(all, vec!["later".to_string(), "r".to_string()]);
        assert!(kept.previous().is_empty());
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 0);
    }
}
