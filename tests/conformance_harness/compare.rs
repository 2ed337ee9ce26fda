//! Comparing a run with `expected/` (README §5 "What must match").

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use super::case::{Case, FileEntry, Run};
use super::diff::{Similarity, unified};
use super::http::Response;
use super::normalise::{Normaliser, is_comment};
use super::xmlcmp;

/// Lines of a line diff shown per difference.
const MAX_DIFF_LINES: usize = 16;
/// XML differences shown per file.
const MAX_XML_DIFFS: usize = 6;

pub struct Comparison {
    /// Human-readable differences (an entry may span several lines).
    pub differences: Vec<String>,
    /// Of the comment lines (informational only).
    pub similarity: Similarity,
}

/// The command lines (not blank, first non-blank character not `#`,
/// trailing whitespace removed) and the comment lines (trimmed) of an answer.
pub fn split_lines(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut commands, mut comments) = (Vec::new(), Vec::new());
    for line in text.split('\n') {
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if is_comment(line) {
            comments.push(line.trim().to_string());
        } else {
            commands.push(line.to_string());
        }
    }
    (commands, comments)
}

/// `NN-status.txt` as the server's answer would produce it.
pub fn status_text(response: &Response, normaliser: &Normaliser) -> String {
    let mut out = match response.status {
        Some(code) => format!("{code}\n"),
        None => "ERR\n".to_string(),
    };
    if let Some(location) = &response.location {
        out.push_str(&format!(
            "Location: {}\n",
            normaliser.line(location.trim(), false)
        ));
    }
    out
}

fn one_line(text: &str) -> String {
    format!("{:?}", text.trim_end_matches('\n').replace('\n', " | "))
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn limited(mut lines: Vec<String>, max: usize) -> Vec<String> {
    if lines.len() > max {
        let more = lines.len() - max;
        lines.truncate(max);
        lines.push(format!("... ({more} more lines)"));
    }
    lines
}

fn indent(lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| format!("\n    {l}"))
        .collect::<String>()
}

/// The expected files of `files.txt` (text files read from `files/PATH`).
fn expected_files(
    expected: &Path,
    normaliser: &Normaliser,
) -> Result<BTreeMap<String, FileEntry>, String> {
    let list = read_text(&expected.join("files.txt"))?;
    let mut out = BTreeMap::new();
    for line in list.lines().filter(|l| !l.trim().is_empty()) {
        let (kind, path) = line
            .split_once(' ')
            .ok_or_else(|| format!("files.txt: bad line {line:?}"))?;
        let entry = if kind == "text" {
            let text = read_text(&expected.join("files").join(path))?;
            FileEntry::Text(normaliser.file(path, &text))
        } else if kind == "deleted" {
            FileEntry::Deleted
        } else if let Some(hex) = kind.strip_prefix("sha256:") {
            FileEntry::Sha256(hex.to_ascii_lowercase())
        } else {
            return Err(format!("files.txt: unknown kind in {line:?}"));
        };
        out.insert(path.to_string(), entry);
    }
    Ok(out)
}

fn compare_file(path: &str, expected: &FileEntry, actual: &FileEntry) -> Option<String> {
    match (expected, actual) {
        (FileEntry::Text(e), FileEntry::Text(a)) => {
            if path.ends_with(".xml") {
                let diffs = xmlcmp::compare_documents(e, a);
                if diffs.is_empty() {
                    return None;
                }
                let diffs = limited(diffs, MAX_XML_DIFFS);
                Some(format!("files: {path}: XML differs:{}", indent(&diffs)))
            } else if e != a {
                let split = |t: &str| -> Vec<String> {
                    t.split_inclusive('\n').map(|l| format!("{l:?}")).collect()
                };
                let diff = limited(unified(&split(e), &split(a), 1), MAX_DIFF_LINES);
                Some(format!("files: {path}: content differs:{}", indent(&diff)))
            } else {
                None
            }
        }
        (e, a) if e == a => None,
        (e, a) => Some(format!(
            "files: {path}: expected {}, got {}",
            e.kind(),
            a.kind()
        )),
    }
}

/// Compares a run with the case's `expected/`. `Err` means the transcript
/// itself is unusable (a broken case), not a server difference.
pub fn compare(case: &Case, run: &Run) -> Result<Comparison, String> {
    let expected = case.dir.join("expected");
    let normaliser = &run.normaliser;
    let mut differences = Vec::new();
    let mut similarity = Similarity::default();

    let beyond = expected.join(format!("{:02}-status.txt", case.requests.len() + 1));
    if beyond.exists() {
        return Err(format!(
            "{} exists but the case has only {} requests",
            beyond.display(),
            case.requests.len()
        ));
    }
    for (i, (spec, response)) in case.requests.iter().zip(&run.responses).enumerate() {
        let n = i + 1;
        if case.skip_requests.contains(&n) {
            continue;
        }
        let label = match &spec.note {
            Some(note) => format!("{n:02} ({note})"),
            None => format!("{n:02}"),
        };
        let expected_status = read_text(&expected.join(format!("{n:02}-status.txt")))?;
        let actual_status = status_text(response, normaliser);
        if expected_status != actual_status {
            let why = match &response.problem {
                Some(p) => format!(" [{p}]"),
                None => String::new(),
            };
            differences.push(format!(
                "{label}: status: expected {}, got {}{why}",
                one_line(&expected_status),
                one_line(&actual_status)
            ));
        }
        let expected_body = read_text(&expected.join(format!("{n:02}-response.txt")))?;
        let (exp_commands, exp_comments) = split_lines(&normaliser.answer(&expected_body));
        let actual_body = String::from_utf8_lossy(&response.body);
        let (act_commands, act_comments) = split_lines(&normaliser.answer(&actual_body));
        if exp_commands != act_commands {
            let diff = limited(unified(&exp_commands, &act_commands, 1), MAX_DIFF_LINES);
            differences.push(format!(
                "{label}: command lines differ (- expected, + actual):{}",
                indent(&diff)
            ));
        }
        similarity.add(&exp_comments, &act_comments);
    }

    let exp_files = expected_files(&expected, normaliser)?;
    let paths: BTreeSet<&String> = exp_files.keys().chain(run.files.keys()).collect();
    for path in paths {
        if case.skips_file(path) {
            continue;
        }
        match (exp_files.get(path), run.files.get(path)) {
            (Some(e), None) => {
                differences.push(format!("files: {path}: missing (expected {})", e.kind()))
            }
            (None, Some(a)) => differences.push(format!("files: {path}: unexpected {}", a.kind())),
            (Some(e), Some(a)) => differences.extend(compare_file(path, e, a)),
            (None, None) => {}
        }
    }

    let expected_log = expected.join("master-log.txt");
    match &run.master_log {
        Some(log) => {
            let exp: Vec<String> = if expected_log.exists() {
                read_text(&expected_log)?
                    .lines()
                    .map(|l| normaliser.line(l, false))
                    .collect()
            } else {
                Vec::new()
            };
            let act: Vec<String> = log.iter().map(|l| normaliser.line(l, false)).collect();
            if exp != act {
                let diff = limited(unified(&exp, &act, 1), MAX_DIFF_LINES);
                differences.push(format!("master-log differs:{}", indent(&diff)));
            }
        }
        None if expected_log.exists() => {
            return Err("expected/master-log.txt exists but the case has no master".into());
        }
        None => {}
    }
    if let Some(problem) = &run.server_problem {
        differences.push(problem.clone());
    }
    Ok(Comparison {
        differences,
        similarity,
    })
}

/// Writes what the server did in the layout of `expected/` (normalised), so
/// that a kept case can be inspected with `diff -r expected actual`.
pub fn write_transcript(dir: &Path, run: &Run) -> Result<(), String> {
    let put = |rel: &str, bytes: &[u8]| -> Result<(), String> {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    for (i, response) in run.responses.iter().enumerate() {
        let n = i + 1;
        put(
            &format!("{n:02}-status.txt"),
            status_text(response, &run.normaliser).as_bytes(),
        )?;
        let body = run
            .normaliser
            .answer(&String::from_utf8_lossy(&response.body));
        put(&format!("{n:02}-response.txt"), body.as_bytes())?;
    }
    let mut list = String::new();
    for (path, entry) in &run.files {
        list.push_str(&format!("{} {path}\n", entry.kind()));
        if let FileEntry::Text(text) = entry {
            put(&format!("files/{path}"), text.as_bytes())?;
        }
    }
    put("files.txt", list.as_bytes())?;
    if let Some(log) = &run.master_log {
        let text: String = log
            .iter()
            .map(|l| format!("{}\n", run.normaliser.line(l, false)))
            .collect();
        put("master-log.txt", text.as_bytes())?;
    }
    Ok(())
}
