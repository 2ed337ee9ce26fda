//! Normalisation of answers and files (README §5 "Normalisation").
//!
//! - every line: `127.0.0.1:P`, `127.0.0.1%3AP`, `localhost:P`, `localhost%3AP`
//!   with a listener/master port `P` become `…:HTTP_PORT` etc.; the root
//!   directory becomes `[ROOT]`;
//! - comment lines (first non-blank character `#`) and every line of an
//!   `.xml` file additionally: `port P` / `port (P` → port name, unix times →
//!   `[TS]`, ages → `[AGE]`, `Ns old` → `[AGE] old`, date-times less than 400
//!   days from now → `[DATE]`.
//!
//! All rules are idempotent, so expected transcripts (already normalised) may
//! be passed through them again.

use std::path::Path;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::placeholders::parse_datetime;

static HOST_PORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(127\.0\.0\.1|localhost)(:|%3A)([0-9]+)").expect("host:port regex")
});
static WORD_PORT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"port (\(?)([0-9]+)").expect("port regex"));
static AGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"-?[0-9]+(?:\.[0-9]+)? (?:sec|min|hour|day|week)(?:\(s\)|s\b|\b)")
        .expect("age regex")
});
static SECONDS_OLD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"-?[0-9]+s old\b").expect("seconds-old regex"));
static DATETIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}").expect("date regex")
});

/// Date-times closer to "now" than this are replaced by `[DATE]`.
const DATE_WINDOW_SECS: i64 = 400 * 86_400;

/// The normaliser of one case run: knows its ports, its root and its `T0`.
#[derive(Debug, Clone)]
pub struct Normaliser {
    ports: Vec<(u16, &'static str)>,
    roots: Vec<String>,
    now: i64,
}

impl Normaliser {
    /// `master` is the master stand-in's port, or the unreachable port used
    /// for `{MASTER}` when the case has no master.
    pub fn new(http: u16, https: u16, mtls: u16, master: u16, root: &Path, now: i64) -> Self {
        let mut roots = vec![root.to_string_lossy().into_owned()];
        if let Ok(canonical) = root.canonicalize() {
            let canonical = canonical.to_string_lossy().into_owned();
            if !roots.contains(&canonical) {
                roots.push(canonical);
            }
        }
        // Longest first, so that a path that contains the other is replaced whole.
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        roots.retain(|r| !r.is_empty() && r != "/");
        Normaliser {
            ports: vec![
                (http, "HTTP_PORT"),
                (https, "HTTPS_PORT"),
                (mtls, "MTLS_PORT"),
                (master, "MASTER_PORT"),
            ],
            roots,
            now,
        }
    }

    fn port_name(&self, digits: &str) -> Option<&'static str> {
        let port: u16 = digits.parse().ok()?;
        self.ports
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, name)| *name)
    }

    /// A response body or a text file that is not `.xml`: the first rule on
    /// every line, the comment rules on comment lines.
    pub fn answer(&self, text: &str) -> String {
        self.lines(text, false)
    }

    /// A text file found under the root (`path` is root-relative): `.xml`
    /// files get all rules on every line.
    pub fn file(&self, path: &str, text: &str) -> String {
        self.lines(text, path.ends_with(".xml"))
    }

    fn lines(&self, text: &str, all_rules: bool) -> String {
        let mut out = String::with_capacity(text.len());
        for piece in text.split_inclusive('\n') {
            let (content, ending) = split_line_ending(piece);
            out.push_str(&self.line(content, all_rules || is_comment(content)));
            out.push_str(ending);
        }
        out
    }

    /// One line without its line ending.
    pub fn line(&self, line: &str, comment_rules: bool) -> String {
        let mut s = line.to_string();
        for root in &self.roots {
            if s.contains(root.as_str()) {
                s = s.replace(root.as_str(), "[ROOT]");
            }
        }
        s = HOST_PORT
            .replace_all(&s, |c: &Captures| match self.port_name(&c[3]) {
                Some(name) => format!("{}{}{}", &c[1], &c[2], name),
                None => c[0].to_string(),
            })
            .into_owned();
        if !comment_rules {
            return s;
        }
        s = WORD_PORT
            .replace_all(&s, |c: &Captures| match self.port_name(&c[2]) {
                Some(name) => format!("port {}{}", &c[1], name),
                None => c[0].to_string(),
            })
            .into_owned();
        s = replace_unix_times(&s);
        s = DATETIME
            .replace_all(&s, |c: &Captures| match parse_datetime(&c[0]) {
                Some(t) if (t - self.now).abs() < DATE_WINDOW_SECS => "[DATE]".to_string(),
                _ => c[0].to_string(),
            })
            .into_owned();
        s = SECONDS_OLD.replace_all(&s, "[AGE] old").into_owned();
        s = AGE.replace_all(&s, "[AGE]").into_owned();
        s
    }
}

/// A line whose first non-blank character is `#`.
pub fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// Splits `"text\r\n"` into `("text", "\r\n")` (also `\n` and no ending).
pub fn split_line_ending(piece: &str) -> (&str, &str) {
    if let Some(c) = piece.strip_suffix("\r\n") {
        (c, "\r\n")
    } else if let Some(c) = piece.strip_suffix('\n') {
        (c, "\n")
    } else {
        (piece, "")
    }
}

/// Every 10-digit number starting with `1` that has no digit or `.` next to
/// it becomes `[TS]`.
pub fn replace_unix_times(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let dot_before = start > 0 && b[start - 1] == b'.';
        let dot_after = i < b.len() && b[i] == b'.';
        if i - start == 10 && b[start] == b'1' && !dot_before && !dot_after {
            out.push_str(&s[copied..start]);
            out.push_str("[TS]");
            copied = i;
        }
    }
    out.push_str(&s[copied..]);
    out
}
