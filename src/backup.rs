//! Configuration backups: `update.php?mode=backup&hwid=…` with the device's configuration as
//! the PUT body, stored as `backup/HWID/HWID.N.txt`.
//!
//! As in the PHP server, lines that change on every upload without meaning a configuration
//! change are dropped (call-list `FLASHDIR0 add-item` entries, `UPDATE/` and TLS ticket vars,
//! the `config change UP1` line), blank lines are removed and the rest is joined with CRLF. A
//! backup is stored only when it differs from the newest one; at most `backup/@nbackups` are
//! kept, and none younger than `backup/@minage` days is removed. An existing PHP backup
//! directory is continued: the next file gets the next number.
//!
//! One deliberate difference: PHP orders the files by their change time, in whole seconds, so
//! two backups within a second confuse it. Here the file number decides (ties by time).

use crate::answer::{Answer, Exit};
use crate::config::Config;
use regex::bytes::Regex;
use std::path::Path;
use std::sync::LazyLock;
use std::time::UNIX_EPOCH;

static DROP: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("static regex: {e}"));
    [
        re(r"^mod cmd FLASHDIR0 add-item .*\)\(type=.*\(info=.*$"),
        re(r"^vars create UPDATE/.*$"),
        re(r"^config change UP1 /.*$"),
        re(r"^vars create TLS0/TICKET/.*$"),
    ]
});

/// The backup text of an uploaded configuration (see the module documentation).
pub fn filter(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<&[u8]> = Vec::new();
    let mut rest = body;
    loop {
        let pos = rest.iter().position(|&b| b == b'\n' || b == b'\r');
        let (line, next) = match pos {
            None => (rest, None),
            Some(i) => {
                let skip = if rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                (&rest[..i], Some(&rest[i + skip..]))
            }
        };
        if !line.is_empty() && !DROP.iter().any(|re| re.is_match(line)) {
            lines.push(line);
        }
        match next {
            Some(n) => rest = n,
            None => break,
        }
    }
    lines.join(&b"\r\n"[..])
}

/// One stored backup file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Root-relative path as printed (`backup/HWID/HWID.N.txt`).
    pub path: String,
    pub index: i64,
    pub mtime: i64,
}

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
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs() as i64);
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

/// Which of `existing` (oldest first, before the new one is added) to remove when a new
/// backup is stored: PHP's loop keeps `nbackups` in all, sparing files younger than `minage`
/// days. Returns `(file, removed?)` for every file it looked at.
pub fn rotation(
    existing: &[Stored],
    nbackups: i64,
    minage_days: i64,
    now: i64,
) -> Vec<(Stored, bool)> {
    let t0 = now - minage_days * 86400;
    let mut out = Vec::new();
    let mut nfiles = existing.len() as i64;
    let mut iter = existing.iter();
    while nfiles >= nbackups {
        nfiles -= 1;
        let Some(f) = iter.next() else { break };
        out.push((f.clone(), f.mtime < t0));
    }
    out
}

/// Stores an uploaded backup (PHP's `saveBackup`). Returns the time to record as the
/// device's last backup, or `None` when there is none.
pub fn store(
    root: &Path,
    cfg: &Config,
    hwid: &str,
    body: &[u8],
    ans: &mut Answer,
) -> Result<Option<i64>, Exit> {
    let Some(dir) = cfg.backup.dir.as_deref() else {
        return Err(ans.bailout("backup: no backup tag or no 'dir'  attribute in config"));
    };
    let Some(nbackups) = cfg.backup.nbackups else {
        return Err(ans.bailout("backup: no 'nbackups' attribute in backup tag in config"));
    };
    let loc = format!("{dir}/{hwid}");
    let files = list(root, dir, hwid);
    let (last_content, next_index) = match files.last() {
        None => {
            ans.comment(&format!("no saved files for {hwid} ({loc}/{hwid}.*.txt)"));
            (Vec::new(), 0)
        }
        Some(newest) => match std::fs::read(root.join(&newest.path)) {
            Ok(c) => (c, newest.index + 1),
            Err(_) => {
                return Err(ans.bailout(&format!("backup: cannot read file '{}'", newest.path)));
            }
        },
    };
    let content = filter(body);
    if content == last_content {
        return Ok(match files.last() {
            Some(newest) => {
                ans.comment(&format!(
                    "no change (newest {}) {}",
                    newest.path, newest.mtime
                ));
                Some(newest.mtime).filter(|t| *t != 0)
            }
            None => {
                ans.comment("no change (newest ) - nothing to store");
                None
            }
        });
    }
    let new_path = format!("{loc}/{hwid}.{next_index}.txt");
    if let Err(e) = crate::state::write_atomic(&root.join(&new_path), &content) {
        tracing::error!("cannot store backup {new_path}: {e}");
        return Err(ans.bailout(&format!("backup: cannot save backup to file '{new_path}'")));
    }
    ans.comment(&format!("saving {new_path}"));
    let now = ans.now;
    let minage = cfg.backup.minage;
    let t0 = now - minage * 86400;
    for (f, remove) in rotation(&files, nbackups, minage, now) {
        let verb = if remove { "removing" } else { "not removing" };
        ans.comment(&format!(
            "{verb} {} tnow={now} t0={t0} minage={minage} mtime={}",
            f.path, f.mtime
        ));
        if remove && let Err(e) = std::fs::remove_file(root.join(&f.path)) {
            tracing::warn!("cannot remove old backup {}: {e}", f.path);
        }
    }
    Ok(Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_volatile_lines_and_joins_with_crlf() {
        let body = b"config change CMD0 /name Reception /lang de\r\n\
config change UP1 /url http://x/update.php?type=#t\r\n\
vars create UPDATE/CHECK p 9f2c\r\n\
vars create TLS0/TICKET/0001 pb 01020304\r\n\
mod cmd FLASHDIR0 add-item 101 (cn=Alice)(type=call)(info=missed)\r\n\
\r\n\
config change PHONE /ring 3\r\n";
        assert_eq!(
            filter(body),
            b"config change CMD0 /name Reception /lang de\r\nconfig change PHONE /ring 3".to_vec()
        );
    }

    #[test]
    fn filter_handles_any_line_ending_and_binary() {
        assert_eq!(filter(b"a\rb\nc\r\nd"), b"a\r\nb\r\nc\r\nd".to_vec());
        assert_eq!(filter(b"\xff\xfe\n\x00"), b"\xff\xfe\r\n\x00".to_vec());
        assert_eq!(filter(b""), Vec::<u8>::new());
    }

    fn stored(i: i64, mtime: i64) -> Stored {
        Stored {
            path: format!("b/h/h.{i}.txt"),
            index: i,
            mtime,
        }
    }

    #[test]
    fn rotation_keeps_nbackups() {
        let files = vec![stored(0, 10), stored(1, 20)];
        let r = rotation(&files, 2, 0, 100);
        assert_eq!(r, vec![(stored(0, 10), true)]);
        assert!(rotation(&files, 3, 0, 100).is_empty());
        // minage spares young files
        let r = rotation(&files, 1, 1, 100);
        assert_eq!(r, vec![(stored(0, 10), false), (stored(1, 20), false)]);
    }

    #[test]
    fn continues_existing_numbering() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("backup/H");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("H.7.txt"), "a").expect("w");
        std::fs::write(d.join("H.12.txt"), "b").expect("w");
        std::fs::write(d.join("H.x.txt"), "c").expect("w");
        let l = list(dir.path(), "backup", "H");
        assert_eq!(l.iter().map(|s| s.index).collect::<Vec<_>>(), vec![7, 12]);
    }
}
