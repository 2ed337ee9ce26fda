//! The history of a device's build changes: each time the firmware or boot build a device
//! reports (`PROT`, `BOOT`, kept in its state file as `firmware/@build`, `bootcode/@build`)
//! differs from the one its state had, the change (what, old → new, when) is recorded.
//!
//! The state file keeps only the build now (it stays exactly PHP's format), so the history
//! is kept beside it, below the installation root: one small file of JSON lines per device
//! that ever changed its build (`build-history/SN.jsonl`, at most [`MAX_ENTRIES`] changes,
//! the oldest dropped first), written only when a build changes (a poll without a change
//! costs two attribute comparisons), removed with the device's state. Recording is switched
//! on with `<status buildhistory="true"/>`: without it a poll writes only the files PHP
//! writes (the conformance suite checks every file a request leaves). Which changes a poll
//! made ([`changes`]) and the bounded file content ([`merge`], [`parse`]) are pure; [`History`]
//! reads and writes the files.

use crate::xml::Element;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The directory of the history files, below the installation root.
pub const DIR: &str = "build-history";
/// Changes kept per device (older ones are dropped).
pub const MAX_ENTRIES: usize = 32;
/// Longest build text kept (a device sends what it likes).
const MAX_BUILD: usize = 100;
/// A history file larger than this is not read (it was not written by this server).
const MAX_FILE: u64 = 64 * 1024;

/// One change of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// When it was seen (unix seconds, the poll's time).
    pub time: i64,
    /// `firmware` or `bootcode`.
    pub what: String,
    /// The build before (`None`: the state had none).
    pub from: Option<String>,
    /// The build now.
    pub to: String,
}

fn cut(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).collect();
    match s.char_indices().nth(MAX_BUILD) {
        Some((i, _)) => format!("{}\u{2026}", &s[..i]),
        None => s,
    }
}

fn build_of<'a>(state: &'a Element, what: &str) -> Option<&'a str> {
    state
        .child(what)
        .and_then(|c| c.attr("build"))
        .filter(|b| !b.is_empty())
}

/// The build changes from the state `old` (`None`: the device had no state) to `new`, at
/// `time`. A first state records nothing (no change is known, and a fleet's first polls
/// must not create a file per device); a build the state had none of before is recorded
/// with `from: None`. A build the device stops reporting is no change.
pub fn changes(old: Option<&Element>, new: &Element, time: i64) -> Vec<Change> {
    let Some(old) = old else {
        return Vec::new();
    };
    ["firmware", "bootcode"]
        .iter()
        .filter_map(|what| {
            let to = build_of(new, what)?;
            let from = build_of(old, what);
            (from != Some(to)).then(|| Change {
                time,
                what: (*what).to_string(),
                from: from.map(cut),
                to: cut(to),
            })
        })
        .collect()
}

/// The changes of a history file, oldest first (lines that are no change are skipped).
pub fn parse(text: &str) -> Vec<Change> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Change>(l).ok())
        .collect()
}

/// The content of a history file: the changes in `old` (oldest first) and `new`, the last
/// [`MAX_ENTRIES`] of them, one JSON line each.
pub fn merge(mut old: Vec<Change>, new: &[Change]) -> String {
    old.extend_from_slice(new);
    let skip = old.len().saturating_sub(MAX_ENTRIES);
    let mut out = String::new();
    for c in &old[skip..] {
        if let Ok(l) = serde_json::to_string(c) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

/// The history files of an installation (`ROOT/build-history`).
#[derive(Debug, Clone)]
pub struct History {
    dir: PathBuf,
}

impl History {
    /// The history below `root`.
    pub fn new(root: &std::path::Path) -> History {
        History {
            dir: root.join(DIR),
        }
    }

    fn path(&self, sn: &str) -> PathBuf {
        self.dir.join(format!("{sn}.jsonl"))
    }

    /// The changes of `sn`, oldest first (none when there is no file or it cannot be read).
    pub fn read(&self, sn: &str) -> Vec<Change> {
        let path = self.path(sn);
        match std::fs::metadata(&path) {
            Ok(m) if m.len() <= MAX_FILE => {}
            _ => return Vec::new(),
        }
        std::fs::read_to_string(&path)
            .map(|t| parse(&t))
            .unwrap_or_default()
    }

    /// Adds `new` to the history of `sn` (the caller holds the device's lock). Nothing is
    /// written for no change. The file is replaced in one step (a temporary file renamed)
    /// but not synced: a fleet's upgrade changes every device's build within minutes, and a
    /// sync per device would cost more than the history is worth (a crash may lose the last
    /// changes, never mix two files).
    pub fn record(&self, sn: &str, new: &[Change]) -> std::io::Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let text = merge(self.read(sn), new);
        std::fs::create_dir_all(&self.dir)?;
        let tmp = self
            .dir
            .join(format!(".{sn}.jsonl.{}.tmp", rand::random::<u64>()));
        let written = std::fs::write(&tmp, text.as_bytes())
            .and_then(|()| std::fs::rename(&tmp, self.path(sn)));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }

    /// Removes the history of `sn` (with its state).
    pub fn remove(&self, sn: &str) {
        match std::fs::remove_file(self.path(sn)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!("cannot remove the build history of {sn}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(fw: Option<&str>, boot: Option<&str>) -> Element {
        let mut s = crate::state::new_state("sn1").root;
        if let Some(b) = fw {
            s.child_or_insert("firmware").set_attr("build", b);
        }
        if let Some(b) = boot {
            s.child_or_insert("bootcode").set_attr("build", b);
        }
        s
    }

    fn change(time: i64, what: &str, from: Option<&str>, to: &str) -> Change {
        Change {
            time,
            what: what.into(),
            from: from.map(str::to_string),
            to: to.into(),
        }
    }

    #[test]
    fn a_poll_records_what_changed_and_nothing_else() {
        let before = state(Some("131000"), Some("131000"));
        assert!(changes(Some(&before), &before.clone(), 5).is_empty());
        let after = state(Some("131065"), Some("131000"));
        assert_eq!(
            changes(Some(&before), &after, 7),
            vec![change(7, "firmware", Some("131000"), "131065")]
        );
        let both = state(Some("140000"), Some("140001"));
        assert_eq!(changes(Some(&after), &both, 9).len(), 2);
        // the first state, a first build, a build no longer reported
        assert!(changes(None, &both, 9).is_empty());
        assert_eq!(
            changes(Some(&state(None, None)), &state(Some("1"), None), 3),
            vec![change(3, "firmware", None, "1")]
        );
        assert!(changes(Some(&both), &state(None, None), 3).is_empty());
        // a device sends what it likes: the text is bounded
        let long = state(Some(&"9".repeat(5000)), Some("140001"));
        let c = changes(Some(&both), &long, 4);
        assert_eq!(c[0].to.chars().count(), MAX_BUILD + 1);
    }

    #[test]
    fn the_file_keeps_the_last_changes_only() {
        let mut text = String::new();
        for i in 0..(MAX_ENTRIES as i64 + 10) {
            let c = change(i, "firmware", Some(&i.to_string()), &(i + 1).to_string());
            text = merge(parse(&text), &[c]);
        }
        let kept = parse(&text);
        assert_eq!(kept.len(), MAX_ENTRIES);
        assert_eq!(kept[0].time, 10, "the oldest went first");
        assert_eq!(kept.last().map(|c| c.time), Some(MAX_ENTRIES as i64 + 9));
        assert_eq!(parse("garbage\n{}\n").len(), 0);
    }

    #[test]
    fn histories_are_written_read_and_removed() {
        let dir = tempfile::tempdir().expect("tmp");
        let h = History::new(dir.path());
        assert!(h.read("sn1").is_empty());
        h.record("sn1", &[]).expect("nothing");
        assert!(!dir.path().join(DIR).exists(), "no change, no file");
        let a = change(1, "firmware", Some("1"), "2");
        let b = change(2, "bootcode", None, "3");
        h.record("sn1", std::slice::from_ref(&a)).expect("record");
        h.record("sn1", std::slice::from_ref(&b)).expect("record");
        assert_eq!(h.read("sn1"), vec![a, b]);
        let files: Vec<_> = std::fs::read_dir(dir.path().join(DIR))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["sn1.jsonl"], "no temporary file left");
        assert!(h.read("sn2").is_empty());
        h.remove("sn1");
        assert!(h.read("sn1").is_empty());
        h.remove("sn1");
    }
}
