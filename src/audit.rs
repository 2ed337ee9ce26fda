//! The audit log of admin actions: who (user, or the API token), when, from where (address),
//! what (the action), on what (device, file, rollout) and whether it was done — logins and
//! failed logins, logouts, rollout actions (and the snippet rounds the server begins or ends,
//! user `server`), signed-certificate uploads, deletions of
//! certificate files and device states, mark-as-seen. Kept as JSON lines under the
//! installation root (`audit/audit.log`), rotated at [`MAX_FILE`] bytes into
//! `audit.log.1` … `audit.log.{KEEP}` (so at most `(KEEP + 1) × MAX_FILE` bytes), and shown
//! newest first: the page `mode=audit` and `GET api/audit` (paged).

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the log is kept, below the installation root.
pub const DIR: &str = "audit";
/// A log file is rotated when it reaches this size.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Rotated files kept.
pub const KEEP: usize = 4;
/// Longest text kept of a field (a failed login's user name comes from anybody).
const MAX_FIELD: usize = 200;

/// One admin action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix seconds.
    pub time: i64,
    /// The user of the session (or the name tried at a failed login), `API token` for the
    /// API token.
    pub user: String,
    /// The address the request came from.
    pub from: String,
    /// What was done: `login`, `login-failed`, `logout`, `rollout-pause`, `cert-upload`,
    /// `delete-file`, `delete-status`, `mark-seen`, …
    pub action: String,
    /// On what: a device, a file, a rollout (may be empty).
    pub target: String,
    /// Whether it was done.
    pub ok: bool,
    /// More words (why it failed), may be empty.
    #[serde(default)]
    pub detail: String,
}

fn cut(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    match s.char_indices().nth(MAX_FIELD) {
        Some((i, _)) => format!("{}\u{2026}", &s[..i]),
        None => s,
    }
}

impl Entry {
    /// An entry of now, every text bounded and without control characters.
    pub fn now(user: &str, from: impl ToString, action: &str, target: &str, ok: bool) -> Entry {
        Entry {
            time: crate::clock::now(),
            user: cut(user),
            from: cut(&from.to_string()),
            action: cut(action),
            target: cut(target),
            ok,
            detail: String::new(),
        }
    }

    pub fn detail(mut self, d: &str) -> Entry {
        self.detail = cut(d);
        self
    }
}

/// The log's writer: one append at a time.
#[derive(Default)]
pub struct AuditLog {
    lock: Mutex<()>,
}

fn file(root: &Path, n: usize) -> PathBuf {
    let d = root.join(DIR);
    if n == 0 {
        d.join("audit.log")
    } else {
        d.join(format!("audit.log.{n}"))
    }
}

impl AuditLog {
    /// Appends `e` (rotating first when the file is full); a failure is logged, not
    /// returned: the action itself is done.
    pub fn record(&self, root: &Path, e: &Entry) {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(err) = append(root, e) {
            tracing::error!("cannot write the audit log: {err}");
        }
        tracing::info!(
            target: "audit",
            "{} {} from {}: {} {} ({})",
            e.time,
            e.user,
            e.from,
            e.action,
            e.target,
            if e.ok { "done" } else { "refused" }
        );
    }
}

fn append(root: &Path, e: &Entry) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join(DIR))?;
    let current = file(root, 0);
    if std::fs::metadata(&current).is_ok_and(|m| m.len() >= MAX_FILE) {
        for n in (1..KEEP).rev() {
            let from = file(root, n);
            if from.exists() {
                std::fs::rename(&from, file(root, n + 1))?;
            }
        }
        std::fs::rename(&current, file(root, 1))?;
    }
    let mut line = serde_json::to_string(e).map_err(std::io::Error::other)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&current)?;
    f.write_all(line.as_bytes())
}

/// A page of the log, newest first: `limit` entries after skipping `offset`, and how many
/// there are in all.
pub fn read(root: &Path, offset: usize, limit: usize) -> (Vec<Entry>, usize) {
    let mut all = Vec::new();
    for n in 0..=KEEP {
        let Ok(text) = std::fs::read_to_string(file(root, n)) else {
            continue;
        };
        all.extend(
            text.lines()
                .rev()
                .filter_map(|l| serde_json::from_str::<Entry>(l).ok()),
        );
    }
    let total = all.len();
    let page = all.into_iter().skip(offset).take(limit).collect();
    (page, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_come_back_newest_first_and_paged() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = AuditLog::default();
        for i in 0..5 {
            log.record(
                dir.path(),
                &Entry::now("admin", "10.0.0.1", "mark-seen", &format!("d{i}"), true),
            );
        }
        let (page, total) = read(dir.path(), 1, 2);
        assert_eq!(total, 5);
        assert_eq!(
            page.iter().map(|e| e.target.as_str()).collect::<Vec<_>>(),
            ["d3", "d2"]
        );
    }

    #[test]
    fn the_log_is_rotated_and_bounded() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = AuditLog::default();
        let big = "x".repeat(190);
        let e = Entry::now(&big, "10.0.0.1", "login-failed", &big, false).detail(&big);
        let line = serde_json::to_string(&e).expect("json").len() as u64 + 1;
        let n = (MAX_FILE / line + 1) * (KEEP as u64 + 3);
        for _ in 0..n {
            log.record(dir.path(), &e);
        }
        let files = std::fs::read_dir(dir.path().join(DIR))
            .expect("dir")
            .count();
        assert_eq!(files, KEEP + 1);
        let size: u64 = std::fs::read_dir(dir.path().join(DIR))
            .expect("dir")
            .flatten()
            .map(|f| f.metadata().map_or(0, |m| m.len()))
            .sum();
        assert!(size <= (KEEP as u64 + 1) * (MAX_FILE + line), "{size}");
    }

    #[test]
    fn texts_are_bounded_and_without_control_characters() {
        let e = Entry::now(&"u\n".repeat(500), "::1", "login-failed", "", false);
        assert!(!e.user.contains('\n'));
        assert!(e.user.chars().count() <= MAX_FIELD + 1);
    }
}
