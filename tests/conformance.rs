//! Conformance test of `update-server` against recorded PHP behaviour
//! (`tests/conformance/README.md`). This first part holds the normaliser and
//! the comparators with their unit tests; the runner follows.

mod support;

// ---------------------------------------------------------------------------
// Unit tests of the harness itself.
// ---------------------------------------------------------------------------

mod unit {
    use std::path::Path;

    use crate::support::diff::{Similarity, unified};
    use crate::support::normalise::Normaliser;
    use crate::support::placeholders::{
        Vars, format_datetime, parse_datetime, replace, replace_bytes,
    };
    use crate::support::xmlcmp::{compare_documents, parse};

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
}
