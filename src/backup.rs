//! Configuration backups: `update.php?mode=backup&hwid=…` with the device's configuration as
//! the PUT body, stored as `backup/HWID/HWID.N.txt`.
//!
//! As in the PHP server, lines that change on every upload without meaning a configuration
//! change are dropped (call-list `FLASHDIR0 add-item` entries, `UPDATE/` and TLS ticket vars,
//! the `config change UP1` line), blank lines are removed and the rest is joined with CRLF.
//! The body is treated as bytes, as PHP's regular expressions without `/u` do: binary or
//! Latin-1 configurations are filtered and stored unchanged. A backup is stored only when it
//! differs (PHP's loose `==`) from the newest one; at most `backup/@nbackups` are kept, and
//! none younger than `backup/@minage` days is removed. An existing PHP backup directory is
//! continued: the next file gets the next number.
//!
//! Deliberate differences: PHP orders the files by their change time (ctime) in whole seconds,
//! so backups within one second, or a directory copied from another server (all files with
//! the copy's ctime), confuse it (it may even overwrite a newer file). Here the file number
//! decides, and the age that `minage` looks at is the modification time, which a copy keeps.
//!
//! Core and shell: this file is the core — [`filter`], [`rotation`] and [`plan`] are pure;
//! [`plan`] returns the file changes as [`FileOp`]s (like the certificate workflow's
//! `mode=vardump`), which the shell (`device::apply_file_ops`) makes. `backup/store.rs` is
//! the shell side ([`list`], [`store`], [`DirLocks`]): it lists and reads the device's
//! backups and holds its backup directory until the changes are made; `backup/cache.rs`
//! keeps the lists the admin pages show.

use crate::answer::{Answer, Exit};
use crate::fileop::FileOp;
use regex::bytes::Regex;
use std::sync::LazyLock;

/// The lines PHP drops. `(?-u)`: `.` matches any byte but `\n`, like PCRE without `/u`.
static DROP: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    let re = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("static regex: {e}"));
    [
        re(r"(?-u)^mod cmd FLASHDIR0 add-item .*\)\(type=.*\(info=.*$"),
        re(r"(?-u)^vars create UPDATE/.*$"),
        re(r"(?-u)^config change UP1 /.*$"),
        re(r"(?-u)^vars create TLS0/TICKET/.*$"),
    ]
});

/// PHP's `$a == $b` on two strings: numerically when both are numeric strings, else byte
/// for byte.
fn php_equal(a: &[u8], b: &[u8]) -> bool {
    match (std::str::from_utf8(a), std::str::from_utf8(b)) {
        (Ok(x), Ok(y)) if crate::php::is_numeric(x) && crate::php::is_numeric(y) => {
            crate::php::loose_eq(&x.into(), &y.into())
        }
        _ => a == b,
    }
}

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

/// What storing a backup means: the file changes, the comments to print once they are made,
/// and the time to record as the device's last backup (`None`: there is none).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub ops: Vec<FileOp>,
    pub notes: Vec<String>,
    pub stamp: Option<i64>,
}

impl Plan {
    /// Prints the comments (after the shell made the file changes).
    pub fn report(&self, ans: &mut Answer) {
        for n in &self.notes {
            ans.comment(n);
        }
    }
}

/// What a new backup changes (PHP's `saveBackup`, without I/O): `files` are the device's
/// backups below `loc` (oldest first), `newest` the content of the last of them.
#[allow(clippy::too_many_arguments)]
pub fn plan(
    loc: &str,
    hwid: &str,
    nbackups: i64,
    minage: i64,
    files: &[Stored],
    newest: Option<Result<Vec<u8>, ()>>,
    body: &[u8],
    ans: &mut Answer,
) -> Result<Plan, Exit> {
    let (last_content, next_index) = match (files.last(), newest) {
        (Some(newest), Some(Ok(c))) => (c, newest.index + 1),
        (Some(newest), _) => {
            return Err(ans.bailout(&format!("backup: cannot read file '{}'", newest.path)));
        }
        (None, _) => {
            ans.comment(&format!("no saved files for {hwid} ({loc}/{hwid}.*.txt)"));
            (Vec::new(), 0)
        }
    };
    let content = filter(body);
    if php_equal(&content, &last_content) {
        let stamp = match files.last() {
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
        };
        return Ok(Plan {
            stamp,
            ..Plan::default()
        });
    }
    let new_path = format!("{loc}/{hwid}.{next_index}.txt");
    let mut plan = Plan {
        notes: vec![format!("saving {new_path}")],
        ops: vec![FileOp::Write {
            path: new_path,
            bytes: content,
        }],
        stamp: Some(ans.now),
    };
    let now = ans.now;
    let t0 = now - minage * 86400;
    for (f, remove) in rotation(files, nbackups, minage, now) {
        let verb = if remove { "removing" } else { "not removing" };
        plan.notes.push(format!(
            "{verb} {} tnow={now} t0={t0} minage={minage} mtime={}",
            f.path, f.mtime
        ));
        if remove {
            plan.ops.push(FileOp::Delete { path: f.path });
        }
    }
    Ok(plan)
}

mod cache;
mod store;

pub use cache::BackupCache;
pub use store::{DirLock, DirLocks, Saved, list, store};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::php::Args;
    use crate::state::Loaded;
    use std::path::Path;

    const CASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/conformance/");

    fn case_file(path: &str) -> Vec<u8> {
        std::fs::read(format!("{CASE}{path}")).expect("case file")
    }

    #[test]
    fn filters_like_the_php_recording() {
        let dir = "backup-store-dedupe/";
        let stored = case_file(&format!(
            "{dir}expected/files/backup/IP232-30-00-af/IP232-30-00-af.0.txt"
        ));
        assert_eq!(
            filter(&case_file(&format!("{dir}bodies/backup1.txt"))),
            stored
        );
        // only volatile lines differ: the same backup
        assert_eq!(
            filter(&case_file(&format!("{dir}bodies/backup2.txt"))),
            stored
        );
        assert_eq!(
            filter(&case_file(&format!("{dir}bodies/backup3.txt"))),
            case_file(&format!(
                "{dir}expected/files/backup/IP232-30-00-af/IP232-30-00-af.1.txt"
            ))
        );
    }

    #[test]
    fn drops_volatile_lines_and_joins_with_crlf() {
        let body = concat!(
            "config change CMD0 /name Reception /lang de\r\n",
            "config change UP1 /url http://x/update.php?type=#t\r\n",
            "vars create UPDATE/CHECK p 9f2c\r\n",
            "vars create TLS0/TICKET/0001 pb 01020304\r\n",
            "mod cmd FLASHDIR0 add-item 101 (cn=Alice)(type=call)(info=missed)\r\n",
            "mod cmd FLASHDIR0 add-item 102 (cn=Bob)\r\n",
            "\r\n",
            " vars create UPDATE/X p 1\r\n",
            "config change PHONE /ring 3\r\n",
        );
        assert_eq!(
            filter(body.as_bytes()),
            concat!(
                "config change CMD0 /name Reception /lang de\r\n",
                "mod cmd FLASHDIR0 add-item 102 (cn=Bob)\r\n",
                " vars create UPDATE/X p 1\r\n",
                "config change PHONE /ring 3"
            )
            .as_bytes()
        );
    }

    #[test]
    fn filter_handles_any_line_ending_and_binary() {
        assert_eq!(
            filter(b"a\rb\nc\r\nd\n\re"),
            b"a\r\nb\r\nc\r\nd\r\ne".to_vec()
        );
        assert_eq!(filter(b"\xff\xfe\n\x00"), b"\xff\xfe\r\n\x00".to_vec());
        assert_eq!(filter(b""), Vec::<u8>::new());
        assert_eq!(filter(b"\r\n\r\n\n"), Vec::<u8>::new());
        // PHP's patterns work on bytes: volatile lines with Latin-1 or binary are dropped too
        assert_eq!(
            filter(b"vars create UPDATE/X p M\xfcller\nconfig change CMD0 /name M\xfcller\nvars create TLS0/TICKET/1 pb \xff\x00\nconfig change UP1 /x \xe9"),
            b"config change CMD0 /name M\xfcller".to_vec()
        );
    }

    #[test]
    fn no_change_is_php_loose_equality() {
        assert!(php_equal(b"config a", b"config a"));
        assert!(!php_equal(b"config a", b"config b"));
        assert!(php_equal(b"1", b"01"));
        assert!(php_equal(b"1e1", b"10"));
        assert!(!php_equal(b"", b"0"));
        assert!(!php_equal(b"\xff", b"\xfe"));
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
        // PHP's loop with nbackups=1 looks at both (keeping only the new one)
        assert_eq!(
            rotation(&files, 1, 0, 100),
            vec![(stored(0, 10), true), (stored(1, 20), true)]
        );
        // minage spares young files
        let r = rotation(&files, 1, 1, 100);
        assert_eq!(r, vec![(stored(0, 10), false), (stored(1, 20), false)]);
        let r = rotation(&files, 1, 1, 86400 + 15);
        assert_eq!(r, vec![(stored(0, 10), true), (stored(1, 20), false)]);
        // nbackups=0 stops at the end of the list
        assert_eq!(rotation(&files, 0, 0, 100).len(), 2);
    }

    #[test]
    fn continues_existing_numbering() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path().join("backup/H");
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("H.7.txt"), "a").expect("w");
        std::fs::write(d.join("H.12.txt"), "b").expect("w");
        std::fs::write(d.join("H.x.txt"), "c").expect("w");
        std::fs::write(d.join("H.9.txt.bak"), "c").expect("w");
        std::fs::write(d.join("Hx.3.txt"), "c").expect("w");
        let l = list(dir.path(), "backup", "H");
        assert_eq!(l.iter().map(|s| s.index).collect::<Vec<_>>(), vec![7, 12]);
        assert_eq!(l[1].path, "backup/H/H.12.txt");
    }

    fn config(backup: &str) -> Config {
        Config::from_user_xml(&format!(r#"<config><master info=""/>{backup}</config>"#))
            .expect("configuration")
    }

    fn run(root: &Path, cfg: &Config, body: &[u8], now: i64) -> (Result<Option<i64>, ()>, String) {
        let mut ans = Answer::new(
            None,
            &Args::default(),
            &Loaded::Missing,
            now,
            Default::default(),
        );
        let r = store(
            (root, &DirLocks::default()),
            cfg,
            "IP232-30-00-af",
            body,
            &mut ans,
        )
        .map(|saved| {
            apply(root, &saved.plan.ops);
            saved.plan.report(&mut ans);
            saved.plan.stamp
        })
        .map_err(|_| ());
        (r, String::from_utf8_lossy(&ans.out).into_owned())
    }

    /// What the shell (`http::apply_file_ops`) does with the plan.
    fn apply(root: &Path, ops: &[FileOp]) {
        for op in ops {
            match op {
                FileOp::Write { path, bytes } => {
                    crate::fsio::write_atomic(&root.join(path), bytes).expect("write")
                }
                FileOp::Delete { path } => std::fs::remove_file(root.join(path)).expect("remove"),
            }
        }
    }

    fn names(root: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(root.join("backup/IP232-30-00-af"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        n.sort();
        n
    }

    fn set_mtime(path: &Path, t: i64) {
        let f = std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open");
        f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64))
            .expect("mtime");
    }

    #[test]
    fn stores_changed_backups_and_rotates() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let cfg = config(r#"<backup dir="backup" nbackups="2"/>"#);
        let (r, out) = run(root, &cfg, b"config a\r\n", 1000);
        assert_eq!(r, Ok(Some(1000)));
        assert_eq!(
            out,
            "# no saved files for IP232-30-00-af (backup/IP232-30-00-af/IP232-30-00-af.*.txt)\r\n\
# saving backup/IP232-30-00-af/IP232-30-00-af.0.txt\r\n"
        );
        let first = root.join("backup/IP232-30-00-af/IP232-30-00-af.0.txt");
        assert_eq!(std::fs::read(&first).expect("stored"), b"config a");
        set_mtime(&first, 500);

        // unchanged (only a volatile line differs): nothing stored, the newest file's time
        let (r, out) = run(root, &cfg, b"config a\nvars create UPDATE/X p 1\n", 1001);
        assert_eq!(r, Ok(Some(500)));
        assert_eq!(
            out,
            "# no change (newest backup/IP232-30-00-af/IP232-30-00-af.0.txt) 500\r\n"
        );
        assert_eq!(names(root), vec!["IP232-30-00-af.0.txt"]);

        assert_eq!(run(root, &cfg, b"config b", 1002).0, Ok(Some(1002)));
        let (r, out) = run(root, &cfg, b"config c", 1003);
        assert_eq!(r, Ok(Some(1003)));
        assert!(out.ends_with(
            "# removing backup/IP232-30-00-af/IP232-30-00-af.0.txt tnow=1003 t0=1003 minage=0 mtime=500\r\n"
        ), "{out}");
        assert_eq!(
            names(root),
            vec!["IP232-30-00-af.1.txt", "IP232-30-00-af.2.txt"]
        );
    }

    #[test]
    fn minage_keeps_young_backups() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let cfg = config(r#"<backup dir="backup" nbackups="1" minage="2"/>"#);
        let now = crate::clock::now();
        assert_eq!(run(root, &cfg, b"a", now).0, Ok(Some(now)));
        let (r, out) = run(root, &cfg, b"b", now);
        assert_eq!(r, Ok(Some(now)));
        assert!(
            out.contains("# not removing backup/IP232-30-00-af/IP232-30-00-af.0.txt"),
            "{out}"
        );
        assert_eq!(names(root).len(), 2);
        // three days old: removed
        set_mtime(
            &root.join("backup/IP232-30-00-af/IP232-30-00-af.0.txt"),
            now - 3 * 86400,
        );
        assert_eq!(run(root, &cfg, b"c", now).0, Ok(Some(now)));
        assert_eq!(
            names(root),
            vec!["IP232-30-00-af.1.txt", "IP232-30-00-af.2.txt"]
        );
    }

    #[test]
    fn an_existing_php_directory_is_continued() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        let d = root.join("backup/IP232-30-00-af");
        std::fs::create_dir_all(&d).expect("mkdir");
        for i in [8, 9, 10] {
            std::fs::write(d.join(format!("IP232-30-00-af.{i}.txt")), format!("v{i}")).expect("w");
        }
        set_mtime(&d.join("IP232-30-00-af.10.txt"), 400);
        let cfg = config(r#"<backup dir="backup"/>"#); // nbackups="10" from the defaults
        // the newest is the highest number, not the newest-looking file
        assert_eq!(run(root, &cfg, b"v10", 5).0, Ok(Some(400)));
        assert_eq!(run(root, &cfg, b"v11", 5).0, Ok(Some(5)));
        assert_eq!(
            std::fs::read(d.join("IP232-30-00-af.11.txt")).expect("new"),
            b"v11"
        );
        assert_eq!(
            std::fs::read(d.join("IP232-30-00-af.10.txt")).expect("kept"),
            b"v10"
        );
    }

    #[test]
    fn an_empty_first_backup_records_nothing() {
        let dir = tempfile::tempdir().expect("tmp");
        let (r, _) = run(dir.path(), &config(r#"<backup dir="backup"/>"#), b"\r\n", 5);
        assert_eq!(r, Ok(None));
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn configuration_errors_are_php_s() {
        let dir = tempfile::tempdir().expect("tmp");
        let (r, out) = run(dir.path(), &config(""), b"a", 5);
        assert_eq!(r, Err(()));
        assert_eq!(
            out,
            "# backup: no backup tag or no 'dir'  attribute in config - exit\r\n"
        );
    }
}
