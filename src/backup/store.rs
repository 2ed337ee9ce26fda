//! The shell of the backups: listing and reading a device's backups ([`list`]), holding its
//! backup directory while a new backup is planned and written ([`DirLocks`]), and [`store`],
//! which plans an uploaded backup with the core's [`super::plan`].

use super::{Plan, Stored, plan};
use crate::answer::{Answer, Exit};
use crate::config::Config;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// The backups of `hwid` below `dir`, oldest first.
pub fn list(root: &Path, dir: &str, hwid: &str) -> Vec<Stored> {
    let loc = format!("{dir}/{hwid}");
    let prefix = format!("{hwid}.");
    let Ok(rd) = std::fs::read_dir(root.join(&loc)) else {
        return Vec::new();
    };
    let mut out: Vec<Stored> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let num = name.strip_prefix(&prefix)?.strip_suffix(".txt")?;
            let index: i64 = num.parse().ok()?;
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .map_or(0, crate::clock::unix_secs);
            Some(Stored {
                path: format!("{loc}/{name}"),
                index,
                mtime,
            })
        })
        .collect();
    out.sort_by_key(|s| (s.index, s.mtime));
    out
}

/// The directories whose backups are being stored (one per server, in its `App`): numbering
/// and rotation of one device's backups happen one upload at a time, also when its uploads
/// carry no serial number (no per-device state lock).
#[derive(Debug, Default)]
pub struct DirLocks {
    busy: Mutex<HashSet<PathBuf>>,
    freed: Condvar,
}

/// Holds a backup directory until the new backup is stored and the old ones are removed.
pub struct DirLock<'a> {
    locks: &'a DirLocks,
    dir: PathBuf,
}

impl DirLocks {
    fn acquire(&self, dir: PathBuf) -> DirLock<'_> {
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while busy.contains(&dir) {
            busy = self.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        busy.insert(dir.clone());
        DirLock { locks: self, dir }
    }
}

impl Drop for DirLock<'_> {
    fn drop(&mut self) {
        let DirLocks { busy: set, freed } = self.locks;
        set.lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.dir);
        freed.notify_all();
    }
}

/// A planned backup, with its directory held until the shell applied the changes.
pub struct Saved<'a> {
    pub plan: Plan,
    _lock: DirLock<'a>,
}

/// Plans storing an uploaded backup (shell side: holds the directory, lists and reads the
/// device's backups). The shell applies the plan's file changes (the first, writing the new
/// backup, must succeed: else `backup: cannot save backup to file '…'`), then prints its
/// report.
pub fn store<'a>(
    (root, locks): (&Path, &'a DirLocks),
    cfg: &Config,
    hwid: &str,
    body: &[u8],
    ans: &mut Answer,
) -> Result<Saved<'a>, Exit> {
    let Some(dir) = cfg.backup.dir.as_deref() else {
        return Err(ans.bailout("backup: no backup tag or no 'dir'  attribute in config"));
    };
    let Some(nbackups) = cfg.backup.nbackups else {
        return Err(ans.bailout("backup: no 'nbackups' attribute in backup tag in config"));
    };
    let loc = format!("{dir}/{hwid}");
    let lock = locks.acquire(root.join(&loc));
    let files = list(root, dir, hwid);
    let newest = files
        .last()
        .map(|n| std::fs::read(root.join(&n.path)).map_err(|_| ()));
    let minage = cfg.backup.minage;
    let plan = plan(&loc, hwid, nbackups, minage, &files, newest, body, ans)?;
    Ok(Saved { plan, _lock: lock })
}
