//! Conformance test: runs every case of `tests/conformance/` (see its
//! README) against the `update-server` binary and compares answers and files
//! with what the PHP Update Server V2 did.
//!
//! Environment:
//! - `CONFORMANCE_CASE=substr` – only cases whose name contains `substr`;
//! - `CONFORMANCE_KEEP=1` – keep each case's work directory (`root/`, server
//!   logs in `logs/`, the normalised transcript of this run in `actual/`, to
//!   be compared with `diff -r tests/conformance/CASE/expected DIR/actual`)
//!   and the test PKI, and print their paths;
//! - `CONFORMANCE_JOBS=n` – cases run in parallel (default 4);
//! - `CONFORMANCE_BIN=path` – test another binary taking the same flags
//!   instead of this package's `update-server`;
//! - `CONFORMANCE_DIR=path` – take the cases from another directory (e.g.
//!   `/work/shared/conformance`) instead of `tests/conformance`.
//!
//! Cases flagged `security` or `divergent` are run and reported separately;
//! they never fail the test. The test fails if any other case differs.

mod conformance_harness;

use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use conformance_harness::case::{self, Case};
use conformance_harness::compare;
use conformance_harness::pki::{self, Pki};

/// Detail lines printed per failing case.
const MAX_REPORT_LINES: usize = 40;

struct Outcome {
    name: String,
    description: String,
    flag: Option<String>,
    requests: usize,
    /// Differences; empty means the case matches.
    differences: Vec<String>,
    /// Comment-line similarity in percent (`None` if the case did not run).
    similarity: Option<f64>,
    seconds: f64,
    kept: Option<PathBuf>,
    /// Shown whatever the verdict (e.g. a retried server start).
    notes: Vec<String>,
}

impl Outcome {
    fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

fn run_one(case: &Case, pki: &Pki, keep: bool) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome {
        name: case.name.clone(),
        description: case.description.clone(),
        flag: case.flag(),
        requests: case.requests.len(),
        differences: Vec::new(),
        similarity: None,
        seconds: 0.0,
        kept: None,
        notes: Vec::new(),
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        let run = case::run(case, pki, keep)?;
        if let Some(kept) = &run.kept {
            compare::write_transcript(&kept.join("actual"), &run)?;
        }
        let comparison = compare::compare(case, &run)?;
        Ok::<_, String>((run.kept, run.notes, comparison))
    }));
    match result {
        Ok(Ok((kept, notes, comparison))) => {
            outcome.kept = kept;
            outcome.notes = notes;
            outcome.similarity = Some(comparison.similarity.percent());
            outcome.differences = comparison.differences;
        }
        Ok(Err(error)) => outcome
            .differences
            .push(format!("case did not run: {error}")),
        Err(panic) => outcome.differences.push(format!(
            "harness panicked: {}",
            panic_message(panic.as_ref())
        )),
    }
    outcome.seconds = started.elapsed().as_secs_f64();
    outcome
}

fn run_all(cases: &[Case], pki: &Pki, keep: bool, jobs: usize) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new((0..cases.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, cases.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let outcome = run_one(case, pki, keep);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

fn format_outcome(o: &Outcome) -> String {
    let verdict = match (o.flag.is_some(), o.passed()) {
        (false, true) => "PASS",
        (false, false) => "FAIL",
        (true, true) => "SAME",
        (true, false) => "DIFF",
    };
    let similarity = match o.similarity {
        Some(p) => format!("comments {p:5.1}%"),
        None => "comments   -   ".to_string(),
    };
    let mut out = format!(
        "{verdict} {:<40} {:>2} req  {similarity}  {:5.2}s",
        o.name, o.requests, o.seconds
    );
    if let Some(flag) = &o.flag {
        out.push_str(&format!("  [{flag}]"));
    }
    for note in &o.notes {
        out.push_str(&format!("\n      note: {note}"));
    }
    if let Some(kept) = &o.kept {
        out.push_str(&format!("\n      kept: {}", kept.display()));
    }
    if o.passed() && o.flag.as_deref().is_some_and(|f| f.starts_with("security")) {
        out.push_str(
            "\n      note: the server does what PHP did here, which contract section 6 forbids",
        );
    }
    if !o.passed() {
        out.push_str(&format!("\n      ({})", o.description));
        let lines: Vec<String> = o
            .differences
            .iter()
            .flat_map(|d| d.lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        for line in lines.iter().take(MAX_REPORT_LINES) {
            out.push_str(&format!("\n      {line}"));
        }
        if lines.len() > MAX_REPORT_LINES {
            out.push_str(&format!(
                "\n      ... ({} more lines)",
                lines.len() - MAX_REPORT_LINES
            ));
        }
    }
    out
}

fn report(outcomes: &[Outcome]) -> (String, Vec<String>) {
    let (flagged, normal): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.flag.is_some());
    let mut out = format!(
        "\n=== conformance cases (server: {}) ===\n",
        conformance_harness::server::server_binary().display()
    );
    for o in &normal {
        out.push_str(&format_outcome(o));
        out.push('\n');
    }
    if !flagged.is_empty() {
        out.push_str(
            "\n=== flagged cases (security/divergent; SAME/DIFF = same as / differs from PHP; never fail) ===\n",
        );
        for o in &flagged {
            out.push_str(&format_outcome(o));
            out.push('\n');
        }
    }
    let failed: Vec<String> = normal
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.name.clone())
        .collect();
    let same_as_php = flagged.iter().filter(|o| o.passed()).count();
    let total_secs: f64 = outcomes.iter().map(|o| o.seconds).sum();
    out.push_str(&format!(
        "\nconformance: {} of {} cases pass, {} fail; flagged: {} (same as PHP: {}); {:.1}s case time\n",
        normal.len() - failed.len(),
        normal.len(),
        failed.len(),
        flagged.len(),
        same_as_php,
        total_secs
    ));
    (out, failed)
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn conformance_cases() {
    let base = std::env::var_os("CONFORMANCE_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance"));
    let mut cases =
        case::load_all(&base).unwrap_or_else(|e| panic!("cannot load the conformance cases: {e}"));
    assert!(!cases.is_empty(), "no cases found in {}", base.display());
    if let Ok(filter) = std::env::var("CONFORMANCE_CASE") {
        cases.retain(|c| c.name.contains(&filter));
        assert!(
            !cases.is_empty(),
            "CONFORMANCE_CASE={filter:?} matches no case in {}",
            base.display()
        );
    }
    let keep = env_flag("CONFORMANCE_KEEP");
    let jobs = std::env::var("CONFORMANCE_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .unwrap_or(4);

    let pki = pki::build().unwrap_or_else(|e| panic!("cannot build the test PKI: {e}"));
    let outcomes = run_all(&cases, &pki, keep, jobs);
    let (text, failed) = report(&outcomes);
    let mut text = text;
    if keep {
        text.push_str(&format!("test PKI kept: {}\n", pki.keep().display()));
    }
    // Straight to stderr, past the test harness's output capture: the report
    // is wanted also when the test passes.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    assert!(
        failed.is_empty(),
        "{} conformance case(s) differ from PHP: {}",
        failed.len(),
        failed.join(", ")
    );
}

// ---------------------------------------------------------------------------
// Unit tests of the harness itself.
// ---------------------------------------------------------------------------

mod unit {
    use std::path::Path;

    use std::collections::BTreeMap;

    use crate::conformance_harness::case::{FileEntry, check_value, resulting_files, sha256_hex};
    use crate::conformance_harness::compare::{split_lines, status_text};
    use crate::conformance_harness::diff::{Similarity, unified};
    use crate::conformance_harness::http::{Response, decode_chunked, read_response};
    use crate::conformance_harness::normalise::Normaliser;
    use crate::conformance_harness::placeholders::{
        Vars, format_datetime, parse_datetime, replace, replace_bytes,
    };
    use crate::conformance_harness::xmlcmp::{compare_documents, parse};

    /// 2024-06-01 12:00:00 UTC
    const NOW: i64 = 1_717_243_200;

    fn normaliser() -> Normaliser {
        Normaliser::new(40001, 40002, 40003, 40004, Path::new("/tmp/case-root"), NOW)
    }

    #[test]
    fn normalises_ports_on_every_line() {
        let n = normaliser();
        let text = "mod cmd UP0 prot http://127.0.0.1:40001/update/fw/ ser 1\r\n\
                    config add UP1 /url https%3A%2F%2F127.0.0.1%3A40003%2Fupdate\r\n\
                    x localhost:40002 localhost%3A40004 127.0.0.1:400011 127.0.0.1:8080\r\n";
        assert_eq!(
            n.answer(text),
            "mod cmd UP0 prot http://127.0.0.1:HTTP_PORT/update/fw/ ser 1\r\n\
             config add UP1 /url https%3A%2F%2F127.0.0.1%3AMTLS_PORT%2Fupdate\r\n\
             x localhost:HTTPS_PORT localhost%3AMASTER_PORT 127.0.0.1:400011 127.0.0.1:8080\r\n"
        );
    }

    #[test]
    fn normalises_root_path() {
        let n = normaliser();
        assert_eq!(
            n.answer("# reading /tmp/case-root/status/x.xml\n"),
            "# reading [ROOT]/status/x.xml\n"
        );
        assert_eq!(n.answer("file /tmp/case-root/a"), "file [ROOT]/a");
    }

    #[test]
    fn normalises_unix_times() {
        let n = normaliser();
        assert_eq!(
            n.answer("# seen 1717243200, (1717243100) x1717243200y\n"),
            "# seen [TS], ([TS]) x[TS]y\n"
        );
        // 11 digits, 9 digits, starting with 2, next to a dot: untouched
        assert_eq!(
            n.answer("# 17172432001 171724320 2717243200 1.1717243200 1717243200.5\n"),
            "# 17172432001 171724320 2717243200 1.1717243200 1717243200.5\n"
        );
        // command lines get only the port rule
        assert_eq!(
            n.answer("mod cmd UP1 check ser 1717243200\n"),
            "mod cmd UP1 check ser 1717243200\n"
        );
    }

    #[test]
    fn normalises_ages_dates_and_ports_in_comments() {
        let n = normaliser();
        assert_eq!(
            n.answer("# > scripts/a.txt: 5 secs\r\n"),
            "# > scripts/a.txt: [AGE]\r\n"
        );
        assert_eq!(
            n.answer("#  1 day, 2.5 mins, 24 hours, 1 week, 3 hour(s), 1 sec\n"),
            "#  [AGE], [AGE], [AGE], [AGE], [AGE], [AGE]\n"
        );
        assert_eq!(
            n.answer("# newest script (s.txt) 86400s old, waiting for at least 90s\n"),
            "# newest script (s.txt) [AGE] old, waiting for at least 90s\n"
        );
        assert_eq!(n.answer("# 5 seconds\n"), "# 5 seconds\n");
        assert_eq!(
            n.answer("# switch to HTTPS on port 40003 (not port 443), port (40002)\n"),
            "# switch to HTTPS on port MTLS_PORT (not port 443), port (HTTPS_PORT)\n"
        );
        assert_eq!(
            n.answer("# valid 2024-05-01 00:00:00 .. 2039-05-01 00:00:00\n"),
            "# valid [DATE] .. 2039-05-01 00:00:00\n"
        );
        // not in command lines
        assert_eq!(n.answer("port 40003 5 secs\n"), "port 40003 5 secs\n");
    }

    #[test]
    fn normalises_every_line_of_xml_files_only() {
        let n = normaliser();
        let xml = "<state seen=\"1717243200\"><m t=\"2024-06-01 11:00:00\" port=\"port 40001\"/></state>\n";
        assert_eq!(
            n.file("status/x.xml", xml),
            "<state seen=\"[TS]\"><m t=\"[DATE]\" port=\"port HTTP_PORT\"/></state>\n"
        );
        assert_eq!(n.file("backup/x.txt", "a 1717243200\n"), "a 1717243200\n");
        assert_eq!(n.file("backup/x.txt", "# a 1717243200\n"), "# a [TS]\n");
    }

    #[test]
    fn normalisation_is_idempotent() {
        let n = normaliser();
        let text = "# 1717243200 5 secs 2024-06-01 10:00:00 port 40001 127.0.0.1:40002 /tmp/case-root\r\n\
                    cmd 127.0.0.1%3A40003\r\n";
        let once = n.answer(text);
        assert_eq!(n.answer(&once), once);
        assert_eq!(
            once,
            "# [TS] [AGE] [DATE] port HTTP_PORT 127.0.0.1:HTTPS_PORT [ROOT]\r\ncmd 127.0.0.1%3AMTLS_PORT\r\n"
        );
    }

    #[test]
    fn replaces_placeholders() {
        let vars = Vars {
            master: "127.0.0.1:4004".into(),
            http_port: 4001,
            https_port: 4002,
            mtls_port: 4003,
            now: NOW,
            check: "abc".into(),
        };
        assert_eq!(
            replace(
                "{MASTER} {HTTP_PORT} {HTTPS_PORT} {MTLS_PORT} {NOW} {NOW+10} {NOW-600} {CHECK}",
                &vars
            ),
            "127.0.0.1:4004 4001 4002 4003 1717243200 1717243210 1717242600 abc"
        );
        assert_eq!(
            replace("{DATE+86400} {DATE-3600}", &vars),
            "2024-06-02 12:00:00 2024-06-01 11:00:00"
        );
        assert_eq!(
            replace("{sn} {build} {NOW+x} {DATE} {NOW+} {{MASTER}} {", &vars),
            "{sn} {build} {NOW+x} {DATE} {NOW+} {127.0.0.1:4004} {"
        );
    }

    #[test]
    fn converts_dates() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_datetime(NOW), "2024-06-01 12:00:00");
        assert_eq!(parse_datetime("2024-06-01 12:00:00"), Some(NOW));
        assert_eq!(parse_datetime("2024-13-01 12:00:00"), None);
        for t in [0, 86_399, 1_000_000_000, 4_102_444_800] {
            assert_eq!(parse_datetime(&format_datetime(t)), Some(t));
        }
    }

    #[test]
    fn xml_equal_despite_order_whitespace_and_ignored_parts() {
        let a = r#"<?xml version="1.0"?>
<state seen="[TS]" phase="update">
  <device sn="x" type="IP232" certstat="one text"/>
  <msgs time="[TS]" msg="a"/>
  <firmware build="1"/>
  <q><r n="1"/><r n="2"/></q>
  <t>  hello &amp; bye </t>
</state>"#;
        let b = r#"<?xml version="1.0" encoding="UTF-8"?><!-- other writer -->
<state phase='update' seen='[TS]'><t>hello &#38; bye</t><q><r n="1"/><r n="2"></r></q><firmware build="1"/><device type="IP232" sn="x" certstat="other text"/><msgs time="[TS]" msg="b"/><msgs time="[TS]" msg="c"/></state>"#;
        assert_eq!(compare_documents(a, b), Vec::<String>::new());
    }

    #[test]
    fn xml_differences_are_reported() {
        let base = r#"<state seen="[TS]"><device sn="x" type="IP232"/><q><r n="1"/><r n="2"/></q></state>"#;
        // attribute value
        let d = compare_documents(base, &base.replace("IP232", "IP222"));
        assert_eq!(
            d,
            vec![r#"/state/device/@type: expected "IP232", got "IP222""#.to_string()]
        );
        // same-named children out of order
        let swapped = base.replace(r#"<r n="1"/><r n="2"/>"#, r#"<r n="2"/><r n="1"/>"#);
        assert_eq!(compare_documents(base, &swapped).len(), 2);
        // missing attribute, missing element, extra element, text
        assert!(!compare_documents(base, &base.replace(r#" sn="x""#, "")).is_empty());
        assert!(!compare_documents(base, &base.replace(r#"<r n="2"/>"#, "")).is_empty());
        assert!(
            !compare_documents(base, &base.replace("</state>", "<firmware/></state>")).is_empty()
        );
        assert!(
            !compare_documents("<a>x</a>", "<a>y</a>").is_empty(),
            "text must be compared"
        );
        assert!(!compare_documents("<a/>", "<b/>").is_empty());
        // invalid XML on one side
        assert!(!compare_documents(base, "<state>").is_empty());
        assert!(!compare_documents(base, "").is_empty());
        // msgs are ignored only as elements named msgs, not their siblings
        assert!(
            !compare_documents("<s><msgs/><m/></s>", "<s><msgs/></s>").is_empty(),
            "<m> must not be ignored"
        );
    }

    #[test]
    fn xml_parser_rejects_broken_documents() {
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("<a x=\"1\" x=\"2\"/>").is_err());
        assert!(parse("text <a/>").is_err());
        assert!(parse("<a>&bogus;</a>").is_err());
        let e = parse("<a x=\"&lt;&#65;\">  t<![CDATA[ <c> ]]> </a>").expect("valid XML");
        assert_eq!(e.attrs.get("x").map(String::as_str), Some("<A"));
        assert_eq!(e.text, "t <c>");
    }

    #[test]
    fn splits_command_and_comment_lines() {
        let (cmds, comments) =
            split_lines("# a \r\n\r\n  \r\nconfig write  \r\n  # b\r\n mod cmd x\r\n#\r\nlast");
        assert_eq!(cmds, vec!["config write", " mod cmd x", "last"]);
        assert_eq!(comments, vec!["# a", "# b", "#"]);
    }

    #[test]
    fn diffs_and_similarity() {
        let e: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let a: Vec<String> = ["a", "x", "c", "d"].map(String::from).to_vec();
        assert_eq!(unified(&e, &a, 1), vec!["  a", "- b", "+ x", "  c", "..."]);
        assert!(unified(&e, &e, 1).is_empty());
        let mut s = Similarity::default();
        s.add(&e, &a);
        assert!((s.percent() - 75.0).abs() < 1e-9);
        assert!((Similarity::default().percent() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn status_text_has_location_line() {
        let n = normaliser();
        let r = Response {
            status: Some(302),
            location: Some("http://127.0.0.1:40001/update/x".into()),
            ..Response::default()
        };
        assert_eq!(
            status_text(&r, &n),
            "302\nLocation: http://127.0.0.1:HTTP_PORT/update/x\n"
        );
        assert_eq!(status_text(&Response::default(), &n), "ERR\n");
    }

    #[test]
    fn reads_http_responses() {
        let mut raw: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\nlocation: /x\r\n\r\nhelloEXTRA";
        let r = read_response(&mut raw);
        assert_eq!((r.status, r.location.as_deref()), (Some(200), Some("/x")));
        assert_eq!(r.body, b"hello");

        let mut raw: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabc\n\r\n3\r\ndef\r\n0\r\nTrailer: 1\r\n\r\n";
        let r = read_response(&mut raw);
        assert_eq!(r.body, b"abc\ndef");
        assert!(r.problem.is_none());

        let mut raw: &[u8] = b"HTTP/1.0 404 Not Found\r\n\r\nto the end\r\n";
        let r = read_response(&mut raw);
        assert_eq!(
            (r.status, r.body.as_slice()),
            (Some(404), &b"to the end\r\n"[..])
        );

        let mut raw: &[u8] = b"";
        assert_eq!(read_response(&mut raw).status, None);
        let mut raw: &[u8] = b"SSH-2.0-x\r\n\r\n";
        assert_eq!(read_response(&mut raw).status, None);

        assert_eq!(decode_chunked(b"5\r\nab"), Ok(None));
        assert!(decode_chunked(b"zz\r\n").is_err());
    }

    #[test]
    fn replaces_placeholders_in_latin1_bytes() {
        let vars = Vars {
            master: "m".into(),
            http_port: 1,
            https_port: 2,
            mtls_port: 3,
            now: NOW,
            check: String::new(),
        };
        assert_eq!(
            replace_bytes(
                b"<a n=\"M\xfcller\" p=\"{HTTP_PORT}\" c=\"{CHECK}\"/>",
                &vars
            ),
            b"<a n=\"M\xfcller\" p=\"1\" c=\"\"/>".to_vec()
        );
    }

    #[test]
    fn finds_the_last_check_value() {
        let body = b"# mod cmd UP1 check ser 111\r\nmod cmd UP1 check ser aaa\r\n\
                     x\r\n  mod cmd UP1 check ser bbb  \r\nmod cmd UP1 check server\r\n";
        assert_eq!(check_value(body).as_deref(), Some("bbb"));
        assert_eq!(check_value(b"config write\r\n"), None);
    }

    #[test]
    fn collects_resulting_files() {
        let n = normaliser();
        let map = |entries: &[(&str, &[u8])]| -> BTreeMap<String, Vec<u8>> {
            entries
                .iter()
                .map(|(p, b)| (p.to_string(), b.to_vec()))
                .collect()
        };
        let before = map(&[
            ("config/user-config.xml", b"<config/>"),
            ("scripts/update-all-default.txt", b"x"),
            ("scripts/changed.txt", b"old"),
            ("status/unchanged.xml", b"<state seen=\"1717243200\"/>"),
            ("status/purged.xml", b"<state/>"),
            ("status/lastcleanup", b""),
        ]);
        let after = map(&[
            ("config/user-config.xml", b"<config/>"),
            ("scripts/update-all-default.txt", b"x"),
            ("scripts/changed.txt", b"new"),
            ("status/unchanged.xml", b"<state seen=\"1717243200\"/>"),
            ("certs/x.der", b"\x30\x82\xff"),
            ("pwned.xml", b"<state/>"),
        ]);
        let files = resulting_files(&before, &after, &n);
        let kinds: Vec<(String, String)> =
            files.iter().map(|(p, e)| (p.clone(), e.kind())).collect();
        assert_eq!(
            kinds,
            vec![
                (
                    "certs/x.der".into(),
                    format!("sha256:{}", sha256_hex(b"\x30\x82\xff"))
                ),
                ("pwned.xml".into(), "text".into()),
                ("scripts/changed.txt".into(), "text".into()),
                ("status/purged.xml".into(), "deleted".into()),
                ("status/unchanged.xml".into(), "text".into()),
            ]
        );
        assert_eq!(
            files.get("status/unchanged.xml"),
            Some(&FileEntry::Text("<state seen=\"[TS]\"/>".into()))
        );
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn test_pki_chains_as_the_readme_says() {
        use std::sync::Arc;

        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
        use rustls::server::WebPkiClientVerifier;
        use x509_parser::prelude::{FromDer, X509Certificate};

        use crate::conformance_harness::pki::{self, CLIENTS};

        let pki = pki::build().expect("building the test PKI");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let ca_pem = std::fs::read(&pki.client_ca).expect("reading device-ca.pem");
        for cert in CertificateDer::pem_slice_iter(&ca_pem) {
            roots
                .add(cert.expect("PEM in device-ca.pem"))
                .expect("device CA as trust anchor");
        }
        assert_eq!(
            roots.len(),
            1,
            "--client-ca holds exactly the Test Device CA"
        );
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("client verifier");

        let cn = |name: &x509_parser::x509::X509Name<'_>| -> String {
            name.iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        for &(label, subject_cn, trusted) in CLIENTS {
            let id = pki.clients.get(label).expect("client identity");
            let verdict =
                verifier.verify_client_cert(&id.chain[0], &id.chain[1..], UnixTime::now());
            assert_eq!(verdict.is_ok(), trusted, "{label}: {verdict:?}");
            let (_, cert) =
                X509Certificate::from_der(&id.chain[0]).expect("client certificate DER");
            assert_eq!(cn(cert.subject()), subject_cn, "{label}: subject CN");
            let issuer = if trusted {
                "Test Device CA"
            } else {
                "Untrusted Test CA"
            };
            assert_eq!(cn(cert.issuer()), issuer, "{label}: issuer CN");
            let org = cert
                .subject()
                .iter_organization()
                .next()
                .and_then(|a| a.as_str().ok());
            let country = cert
                .subject()
                .iter_country()
                .next()
                .and_then(|a| a.as_str().ok());
            assert_eq!(
                (org, country),
                (Some("innovaphone AG"), Some("DE")),
                "{label}"
            );
        }

        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
            .expect("server.crt")
            .collect::<Result<_, _>>()
            .expect("PEM in server.crt");
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("server.key");
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server certificate and key match");
    }

    /// The client against an in-process rustls server that verifies client
    /// certificates like the MTLS listener must: trusted → answer, no
    /// certificate → answer, untrusted → no HTTP answer (`ERR`).
    #[test]
    fn tls_client_gets_err_when_the_handshake_is_refused() {
        use std::io::{Read, Write};
        use std::net::TcpListener;
        use std::sync::Arc;

        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use rustls::server::WebPkiClientVerifier;

        use crate::conformance_harness::http::{Request, tls_config};
        use crate::conformance_harness::pki;

        let pki = pki::build().expect("building the test PKI");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(&pki.client_ca).expect("device-ca.pem") {
            roots.add(cert.expect("PEM")).expect("trust anchor");
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .expect("client verifier");
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.server_cert)
            .expect("server.crt")
            .collect::<Result<_, _>>()
            .expect("PEM");
        let key = PrivateKeyDer::from_pem_file(&pki.server_key).expect("server.key");
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .expect("server config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let server = std::thread::spawn(move || {
            for _ in 0..3 {
                let Ok((tcp, _)) = listener.accept() else {
                    continue;
                };
                let conn = rustls::ServerConnection::new(config.clone()).expect("server conn");
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                if head.ends_with(b"\r\n\r\n") {
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        let send = |cert: Option<&str>| {
            let identity = cert.map(|c| pki.clients.get(c).expect("client identity"));
            Request {
                port,
                method: "GET".into(),
                target: "/update/update.php".into(),
                headers: Vec::new(),
                body: None,
                tls: Some(tls_config(identity).expect("client config")),
            }
            .send()
        };
        let trusted = send(Some("IP232-30-00-af"));
        assert_eq!(
            (trusted.status, trusted.body.as_slice()),
            (Some(200), &b"ok"[..])
        );
        let untrusted = send(Some("untrusted-IP232-30-00-af"));
        assert_eq!(untrusted.status, None, "{untrusted:?}");
        let anonymous = send(None);
        assert_eq!(anonymous.status, Some(200), "{anonymous:?}");
        server.join().expect("server thread");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn tells_who_owns_a_listening_port() {
        use crate::conformance_harness::server::{listener_owned_by, reserve_port, spawn_lock};

        // Reserved, so the case runner never hands this port to a server of its own.
        let listener = reserve_port().expect("reserve a port");
        let port = listener.local_addr().expect("local addr").port();
        assert_eq!(listener_owned_by(std::process::id(), port), Some(true));
        let mut child = {
            // Like every spawn here: not while the runner picks ports.
            let _guard = spawn_lock();
            std::process::Command::new("sleep")
                .arg("5")
                .spawn()
                .expect("spawn sleep")
        };
        let owned_by_child = listener_owned_by(child.id(), port);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(owned_by_child, Some(false));
        // Under the lock no server of a parallel test starts listening meanwhile.
        let _guard = spawn_lock();
        drop(listener);
        // Not ours any more. The kernel may hand the freed port at once to a listener of
        // another process on this machine (CI runs more than this test), so "nobody"
        // (None) and "someone else" (Some(false)) are both right answers here.
        assert_ne!(listener_owned_by(std::process::id(), port), Some(true));
    }
}
