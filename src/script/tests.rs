//! Unit tests of the update script builder. Expectations are derived by hand from the PHP
//! server's rules (`update.php`), not from this implementation's output.

use super::*;
use crate::config::Config;
use crate::firmware::BoxInfo;
use crate::snippets::Snippet;
use std::collections::HashMap;
use std::sync::Arc;

const NOW: i64 = 2_000_000_000;
const SN_POLL: &str = "type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=10.0.0.5";

fn config(user: &str) -> Config {
    Config::from_user_xml(user).expect("config")
}

struct Case {
    config: Config,
    snippets: HashMap<String, Snippet>,
    state: Loaded,
    conn: ConnInfo,
    resolved: Resolved,
    hook: bool,
}

impl Case {
    fn new(user: &str) -> Case {
        Case {
            config: config(user),
            snippets: HashMap::new(),
            state: Loaded::Missing,
            conn: ConnInfo::plain("upd.example", 80),
            resolved: Resolved::default(),
            hook: false,
        }
    }

    fn snippet(mut self, name: &str, age: i64, content: &str) -> Case {
        self.snippets.insert(
            name.to_string(),
            Snippet::new(NOW - age, content.as_bytes().to_vec()),
        );
        self
    }

    fn run(&self, query: &str) -> Outcome {
        let args = Args::parse(query);
        let input = PollInput {
            config: &self.config,
            args: &args,
            conn: &self.conn,
            script_url: "http://upd.example/u/update.php",
            state: &self.state,
            snippets: &self.snippets,
            certs: &CertFiles::default(),
            hook_configured: self.hook,
            resolved: &self.resolved,
            now: NOW,
        };
        build(&input)
    }

    fn poll(&self, query: &str) -> PollOutput {
        match self.run(query) {
            Outcome::Done(o) => o,
            Outcome::Need(n) => panic!("unexpected need {n:?}"),
        }
    }
}

fn text(o: &PollOutput) -> String {
    String::from_utf8_lossy(&o.body).into_owned()
}

fn commands(o: &PollOutput) -> Vec<String> {
    text(o)
        .split("\r\n")
        .flat_map(|l| l.split('\n'))
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

const STATUS: &str = r#"<config><master info=""/><status dir="status"/>"#;

#[test]
fn candidate_order_phase_class_environment() {
    let c = config(
        r#"<config><phases><phase id="staging" seq="1"/></phases><environments><environment id="a"/><environment id="b"><implies>a</implies></environment></environments></config>"#,
    );
    let names = candidates(&c, &Args::parse("type=IP811&sn=00-90-33-11-22-33&env=b"));
    // PHP nests phase, class, environment; "all" first where several are defined; the serial
    // (lower case, dashes as underscores) is the first real environment.
    let classes = ["all", "gw", "brigw", "pbx", "ip811"];
    let envs = ["all", "00_90_33_11_22_33", "b", "a"];
    let mut expected = Vec::new();
    for p in ["all", "staging"] {
        for c in classes {
            for e in envs {
                expected.push(format!("{p}-{c}-{e}.txt"));
            }
        }
    }
    assert_eq!(names, expected);
}

#[test]
fn environment_lists_combine_like_php_array_union() {
    let c = config(
        r#"<config><environments><environment id="i"/><environment id="b"><implies>i</implies></environment><environment id="h"/></environments></config>"#,
    );
    let envs = |q: &str| environments(&c, &Args::parse(q));
    assert_eq!(envs("env=b"), Ok(vec!["b".to_string(), "i".to_string()]));
    // the second list only adds beyond the first list's length
    assert_eq!(envs("env=b,h"), Ok(vec!["b".to_string(), "i".to_string()]));
    assert_eq!(envs("env=h,b"), Ok(vec!["h".to_string(), "i".to_string()]));
    assert_eq!(envs(""), Ok(vec!["default".to_string()]));
    assert_eq!(envs("env=b,x"), Err("x".to_string()));
}

#[test]
fn delivers_snippets_in_order_with_check_signature() {
    let case = Case::new(&format!("{STATUS}</config>"))
        .snippet(
            "update-phone-default.txt",
            1000,
            "  config change B /y 2  \n\n",
        )
        .snippet("update-all-default.txt", 1000, "config change A /x 1\r\n")
        .snippet("update-phone-other.txt", 1000, "config change C /z 3\n");
    let out = case.poll(SN_POLL);
    assert_eq!(
        commands(&out),
        vec![
            "config change A /x 1",
            "  config change B /y 2",
            "config write",
            "config activate",
            // md5("config change A /x 1" . "config change B /y 2")
            "mod cmd UP1 check ser 93f7ad74c7074e5cce311cfb62650f93",
            "iresetn",
        ]
    );
    let state = out.state.expect("state written");
    let configs: Vec<_> = state
        .children_named("config")
        .map(|c| c.attr("filename").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        configs,
        vec![
            "scripts/update-all-default.txt",
            "scripts/update-phone-default.txt"
        ]
    );
    let version = state
        .children_named("config")
        .next()
        .and_then(|c| c.attr("version"));
    assert_eq!(version, Some((NOW - 1000).to_string().as_str()));
}

#[test]
fn a_good_check_value_delivers_nothing() {
    let case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    let first = case.poll(SN_POLL);
    let check = commands(&first)
        .into_iter()
        .find_map(|l| l.strip_prefix("mod cmd UP1 check ser ").map(str::to_string))
        .expect("check line");
    let again = case.poll(&format!("{SN_POLL}&CHECK={check}"));
    assert!(commands(&again).is_empty(), "{}", text(&again));
    assert!(text(&again).contains(&format!("CHECK serial {check} is good")));
}

#[test]
fn grace_period_holds_back_everything() {
    let case = Case::new(&format!("{STATUS}</config>"))
        .snippet("update-all-default.txt", 3600, "config change A /x 1\n")
        .snippet("update-phone-default.txt", 30, "config change B /y 2\n");
    let out = case.poll(SN_POLL);
    assert!(commands(&out).is_empty(), "{}", text(&out));
    assert!(text(&out).contains("files being updated (scripts/update-phone-default.txt 30s old, waiting for at least 90s to expire)"));
    assert!(out.state.is_some(), "notify(.., true) writes the state");
}

#[test]
fn missing_arguments_rewrite_the_url_with_macros() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll("env=default&foo=a%2Fb");
    // state args first (polling, phase), then the missing std args as #-macros, then the rest
    let url = "http://upd.example/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i&env=default&foo=a%2Fb";
    assert_eq!(
        commands(&out),
        vec![
            "mod cmd UP1 provision 5".to_string(),
            "config add UP1 /poll 1".to_string(),
            format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes())),
            "config add UP1 /no-dhcp".to_string(),
            "config write".to_string(),
            "config activate".to_string(),
        ]
    );
    assert!(
        out.state.is_none(),
        "PHP exits without writing the state here"
    );
}

#[test]
fn value_less_stdargs_are_dropped_from_the_url() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll("type=IP232&sn=1&PROT=130178&CHECK=abc&phase=update&polling=0");
    let url = "http://upd.example/u/update.php?hwid=#h&ip=#i&type=#t&sn=#m&phase=update&polling=0";
    assert_eq!(
        commands(&out)[0],
        format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes()))
    );
}

#[test]
fn staging_turns_fast_polling_on_then_off() {
    let case = Case::new(&format!(
        r#"{STATUS}<phases><phase id="staging" seq="100"/></phases></config>"#
    ))
    .snippet("staging-all-default.txt", 1000, "config change S /s 1\n");
    let first = case.poll(SN_POLL);
    let c = commands(&first);
    assert_eq!(c[0], "config change S /s 1");
    assert_eq!(c[1], "mod cmd UP1 provision 5");
    assert_eq!(c[2], "config add UP1 /poll 1");
    let url = "http://upd.example/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i";
    assert_eq!(
        c[3],
        format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes()))
    );
    assert!(
        !c.iter().any(|l| l.contains("check ser")),
        "no CHECK before the last phase"
    );
    let second = case.poll(&format!("polling=5&phase=update&{SN_POLL}"));
    let c = commands(&second);
    assert_eq!(
        &c[0..3],
        [
            "mod cmd UP1 provision 0",
            "config rem UP1 /provision",
            "config add UP1 /poll 15"
        ]
    );
}

#[test]
fn invalid_phase_and_environment_end_the_script() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll(&format!("{SN_POLL}&phase=bogus"));
    assert_eq!(text(&out), "# \r\n# invalid phase: 'bogus'\r\n");
    let out = case.poll(&format!("{SN_POLL}&env=mars"));
    assert_eq!(text(&out), "# \r\n# invalid environment: 'mars' (mars)\r\n");
}

#[test]
fn request_text_cannot_inject_command_lines() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll(&format!("{SN_POLL}&phase=x%0D%0Airesetn%0D%0A%23"));
    assert!(commands(&out).is_empty(), "{}", text(&out));
    let out = case.poll(&format!("{SN_POLL}&env=y%0Airesetn"));
    assert!(commands(&out).is_empty(), "{}", text(&out));
    let out = case.poll(&format!("{SN_POLL}&PROT=1%0Airesetn"));
    assert!(
        !commands(&out)
            .iter()
            .any(|l| l == "1" || l.starts_with("iresetn\n"))
    );
}

fn master(prot: &str, boot: &str) -> Resolved {
    Resolved {
        master: Some(firmware::MasterResolution {
            notes: vec!["firmware build info cache is current".into()],
            info: Ok(BoxInfo {
                label: "x".into(),
                prot: prot.into(),
                boot: boot.into(),
                hw: "h".into(),
            }),
        }),
        ..Default::default()
    }
}

#[test]
fn firmware_needs_the_master_and_updates_old_devices() {
    let mut case = Case::new(r#"<config><master info="http://m/CMD0/box_info.xml"/></config>"#);
    assert_eq!(case.run(SN_POLL), Outcome::Need(Need::Master));
    case.resolved = master("130178", "130112");
    let out = case.poll(&format!("{SN_POLL}&PROT=130100&BOOT=130112"));
    let c = commands(&out);
    assert_eq!(
        c[0],
        "mod cmd UP0 prot http://upd.example/u/fw/130178/ ser 130178"
    );
    assert_eq!(c[1], "iresetn");
    let out = case.poll(&format!("{SN_POLL}&PROT=130178&BOOT=130112"));
    assert_eq!(commands(&out)[0], "config write");
    // a type in nofirmdev/nobootdev gets neither
    let out = case.poll("type=SWPHONE&sn=1&hwid=SWPHONE-1&ip=1");
    assert_eq!(commands(&out)[0], "config write");
}

#[test]
fn master_failures_bail_out_without_state() {
    let mut case =
        Case::new(r#"<config><master info="http://m/x"/><status dir="status"/></config>"#);
    case.resolved.master = Some(firmware::MasterResolution {
        notes: vec![],
        info: Err("cannot access cache/master-info.xml".into()),
    });
    let out = case.poll(SN_POLL);
    assert!(
        text(&out).ends_with(
            "# cannot get cached PBX info: cannot access cache/master-info.xml - exit\r\n"
        )
    );
    assert!(out.state.is_none());
}

#[test]
fn pinned_firmware_and_bootcode_from_firmware() {
    let case = Case::new(
        r#"<config><master info="none" firmware="131000" bootcode="firmware"/></config>"#,
    );
    let out = case.poll(SN_POLL);
    let c = commands(&out);
    assert_eq!(
        c[0],
        "mod cmd UP0 prot http://upd.example/u/fw/131000/ ser 131000"
    );
    assert_eq!(
        c[1],
        "mod cmd UP0 boot http://upd.example/u/fw/131000/ ser 131000"
    );
    let case = Case::new(r#"<config><master info="none" firmware="master"/></config>"#);
    let out = case.poll(SN_POLL);
    assert!(
        text(&out).ends_with("# Cannot use firmware='master' with no info available - exit\r\n")
    );
}

#[test]
fn restricted_times_skip_allow_while_staging() {
    let case = Case::new(
        r#"<config><master info=""/><times allow="22,23" initial="1" forcestaging="true"/></config>"#,
    );
    let first = case.poll(SN_POLL);
    assert!(
        commands(&first).contains(&"mod cmd UP1 times  /initial 1".to_string()),
        "{}",
        text(&first)
    );
    let last = case.poll(&format!("phase=update&polling=5&{SN_POLL}"));
    assert!(commands(&last).contains(&"mod cmd UP1 times  /allow 22,23 /initial 1".to_string()));
}

#[test]
fn forcehttps_rewrites_to_https_and_withholds_snippets() {
    let case = Case::new(r#"<config><master info=""/><backup dir="backup"/><times forcehttps="true" httpsport="444"/></config>"#)
        .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    let out = case.poll(&format!("{SN_POLL}&polling=0&phase=update"));
    let c = commands(&out);
    assert!(!c.iter().any(|l| l.contains("config change A")), "{c:?}");
    assert!(
        !c.iter().any(|l| l.contains("mode=backup")),
        "backup line withheld over HTTP"
    );
    // the default httpsurlmod "!mtls/!!i" removes "mtls/" (there is none here)
    let url =
        "https://upd.example:444/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i";
    assert!(
        c.contains(&format!(
            "config add UP1 /url {}",
            php::rawurlencode(url.as_bytes())
        )),
        "{c:?}"
    );
}

#[test]
fn forcehttps_on_the_right_port_delivers() {
    let mut case = Case::new(
        r#"<config><master info=""/><times forcehttps="true" httpsport="444"/></config>"#,
    )
    .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.conn.https = true;
    case.conn.local_port = 444;
    let out = case.poll(SN_POLL);
    assert_eq!(commands(&out)[0], "config change A /x 1");
}

#[test]
fn urlmod_follows_pcre_conventions() {
    assert_eq!(
        apply_urlmod("!mtls/!!i", "https://h/MTLS/update"),
        "https://h/update"
    );
    assert_eq!(
        apply_urlmod("#(h)ost#$1x#", "https://host/a"),
        "https://hx/a"
    );
    assert_eq!(
        apply_urlmod("!a(b!x!", "https://ab"),
        "https://ab",
        "bad pattern leaves the URL"
    );
    assert_eq!(apply_urlmod("!u!$!", "https://u"), "https://$");
}

#[test]
fn forcetrust_checks_cn_and_issuer() {
    let user = r#"<config><master info=""/><customcerts dir="certs" CAname="Dev CA"/><times forcehttps="true" httpsport="444" forcetrust="true"/></config>"#;
    let mut case =
        Case::new(user).snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.conn.https = true;
    case.conn.local_port = 444;
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("SSL_CLIENT_S_DN_CN not present"));
    assert!(commands(&out).is_empty());
    let cert = |cn: &str, issuer: &str| {
        Some(crate::request::ClientCert {
            cn: cn.into(),
            issuer_cn: issuer.into(),
        })
    };
    case.conn.client_cert = cert("IP232-30-00-b0", "Dev CA");
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("Device claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0' by TLS"));
    assert!(commands(&out).is_empty());
    case.conn.client_cert = cert("IP232-30-00-af", "Other CA");
    assert!(commands(&case.poll(SN_POLL)).is_empty());
    for good in ["IP232-30-00-af", "0090333000af", "IP232s-30-00-af"] {
        case.conn.client_cert = cert(good, "Dev CA");
        assert_eq!(
            commands(&case.poll(SN_POLL))[0],
            "config change A /x 1",
            "{good}"
        );
    }
}

#[test]
fn skipnext_only_runs_queries() {
    let mut st = state::new_state("00-90-33-30-00-af");
    st.set_attr("skipnext", (NOW - 60).to_string());
    let mut case = Case::new(&format!(
        r#"{STATUS}<queries><query id="admin"><applies>*</applies></query></queries></config>"#
    ))
    .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.state = Loaded::Ok(Arc::new(st));
    let out = case.poll(SN_POLL);
    assert_eq!(
        commands(&out),
        vec![
            "mod cmd UP0 scfg http://upd.example/u/update.php?mode=query&sn=#m&id=admin ser nop /always mod%20cmd%20CMD0%20xml-info"
        ]
    );
    assert_eq!(out.state.expect("state").attr("skipnext"), None);
}

#[test]
fn the_hook_adds_lines_and_counts_into_check() {
    let mut case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    case.hook = true;
    match case.run(SN_POLL) {
        Outcome::Need(Need::Hook(state)) => {
            assert_eq!(
                state.child("device").and_then(|d| d.attr("type")),
                Some("IP232")
            );
        }
        other => panic!("{other:?}"),
    }
    case.resolved.hook = Some(HookAnswer {
        pre: vec![b"pre1".to_vec()],
        post: vec![b"post1".to_vec()],
        standard: true,
        error: None,
    });
    let c = commands(&case.poll(SN_POLL));
    assert_eq!(&c[0..3], ["pre1", "config change A /x 1", "post1"]);
    // md5("pre1" . "config change A /x 1" . "post1")
    assert!(c.contains(&"mod cmd UP1 check ser bc061bcc3aedb699c032809b712e7870".to_string()));
    case.resolved.hook = Some(HookAnswer {
        pre: vec![b"pre1".to_vec()],
        post: vec![b"post1".to_vec()],
        standard: false,
        error: None,
    });
    let c = commands(&case.poll(SN_POLL));
    assert_eq!(&c[0..2], ["pre1", "post1"]);
    // md5("pre1" . "post1"): suppressed snippets do not count
    assert!(c.contains(&"mod cmd UP1 check ser b0d0b338e0a556bdffa1f26808c55ba7".to_string()));
    case.resolved.hook = Some(HookAnswer {
        standard: true,
        error: Some("boom".into()),
        ..Default::default()
    });
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("# snippet hook failed: boom"));
    assert_eq!(commands(&out)[0], "config change A /x 1");
}

#[test]
fn corrupt_state_is_replaced_with_the_error_noted() {
    let mut case = Case::new(&format!("{STATUS}</config>"));
    case.state = Loaded::Corrupt {
        error: "not well-formed".into(),
        raw: "<state".into(),
    };
    let out = case.poll(SN_POLL);
    let st = out.state.expect("state");
    assert_eq!(st.attr("error"), Some("not well-formed(<state)"));
    assert_eq!(
        st.child("device").and_then(|d| d.attr("type")),
        Some("IP232")
    );
}

#[test]
fn forwarded_for_sets_ip_and_proxy() {
    let mut case = Case::new(&format!("{STATUS}</config>"));
    case.conn.forwarded_for = Some("10.1.2.3, 192.168.1.1".into());
    let st = case.poll(SN_POLL).state.expect("state");
    let dev = st.child("device").expect("device");
    assert_eq!(dev.attr("ip"), Some("10.1.2.3"));
    assert_eq!(dev.attr("rp"), Some("true"));
    assert_eq!(dev.attr("proxy"), Some("127.0.0.1"));
    assert_eq!(dev.attr("realip"), Some("10.0.0.5"));
}

#[test]
fn unreadable_snippets_are_listed_not_delivered() {
    let mut case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    case.snippets.insert(
        "update-phone-default.txt".into(),
        Snippet {
            mtime: NOW - 1000,
            content: Err("permission denied".into()),
            signature_part: Arc::new(Vec::new()),
        },
    );
    let out = case.poll(SN_POLL);
    assert!(
        text(&out)
            .contains("# scripts/update-phone-default.txt   (cannot read: permission denied)")
    );
    assert_eq!(commands(&out)[0], "config change A /x 1");
}

// httpsurlmod and the HTTPS switch in detail (expectations checked against PHP 8.2's
// preg_replace).

const URLMOD_URL: &str = "https://127.0.0.1:444/mtls/update/update.php?polling=5&sn=%23m";

#[test]
fn urlmod_default_removes_mtls_case_insensitively() {
    // the shipped default, times/@httpsurlmod="!mtls/!!i"
    assert_eq!(
        apply_urlmod("!mtls/!!i", URLMOD_URL),
        "https://127.0.0.1:444/update/update.php?polling=5&sn=%23m"
    );
    assert_eq!(
        apply_urlmod("!mtls/!!i", "https://h/MTLS/update/update.php"),
        "https://h/update/update.php"
    );
    // without the flag the case matters
    assert_eq!(
        apply_urlmod("!mtls/!!", "https://h/MTLS/update/update.php"),
        "https://h/MTLS/update/update.php"
    );
}

#[test]
fn urlmod_backreferences_in_all_php_forms() {
    let spec = r"#^https://([^:/]+):(\d+)/#https://$1.example.com:${2}0/#";
    assert_eq!(
        apply_urlmod(spec, URLMOD_URL),
        "https://127.0.0.1.example.com:4440/mtls/update/update.php?polling=5&sn=%23m"
    );
    assert_eq!(
        apply_urlmod(
            r"!^(https)://([^/]+)/!\1://update.example.com/\2/!",
            URLMOD_URL
        ),
        "https://update.example.com/127.0.0.1:444/mtls/update/update.php?polling=5&sn=%23m"
    );
    // $0 is the whole match; a group that does not exist is empty, as in PHP
    assert_eq!(
        apply_urlmod("!update.php!$0x$9!", "a/update.php"),
        "a/update.phpx"
    );
}

#[test]
fn urlmod_literal_dollars_and_backslashes() {
    assert!(apply_urlmod("!polling=5!p=$x${y}!", URLMOD_URL).contains("p=$x${y}"));
    // \$1 and \\ are escapes: a literal "$1" and one backslash
    assert_eq!(apply_urlmod(r"!polling!\$1!", "polling=5"), "$1=5");
    assert_eq!(apply_urlmod(r"!polling!a\\b!", "polling=5"), r"a\b=5");
    // \\1: an escaped backslash, then a literal 1
    assert_eq!(apply_urlmod(r"!(polling)!\\1!", "polling=5"), r"\1=5");
    // a backslash before anything else stays
    assert_eq!(apply_urlmod(r"!polling!a\xb!", "polling=5"), r"a\xb=5");
}

#[test]
fn urlmod_replaces_every_occurrence_and_knows_pcre_flags() {
    assert_eq!(apply_urlmod("!/!_!", "a/b/c"), "a_b_c");
    // U: ungreedy
    assert_eq!(apply_urlmod("!a.*b!X!U", "a1b2b"), "X2b");
    assert_eq!(apply_urlmod("!a.*b!X!", "a1b2b"), "X");
    // A: anchored at the start
    assert_eq!(apply_urlmod("!b!X!A", "bab"), "Xab");
    // x: extended, blanks in the pattern ignored
    assert_eq!(apply_urlmod("!a b!X!x", "ab"), "X");
}

#[test]
fn urlmod_that_cannot_work_leaves_the_url_alone() {
    assert_eq!(apply_urlmod("", URLMOD_URL), URLMOD_URL);
    assert_eq!(apply_urlmod("!", URLMOD_URL), URLMOD_URL);
    // unbalanced group
    assert_eq!(apply_urlmod("!(mtls!x!", URLMOD_URL), URLMOD_URL);
    // a PCRE-only construct the regex crate cannot do (a back reference in the pattern; PHP
    // would replace "mm", this leaves the URLMOD_URL alone and logs why)
    assert_eq!(apply_urlmod(r"!(m)\1!x!", URLMOD_URL), URLMOD_URL);
    // the missing third part means no flags, the missing second an empty replacement
    assert_eq!(
        apply_urlmod("!mtls/", URLMOD_URL),
        URLMOD_URL.replace("mtls/", "")
    );
}

#[test]
fn switch_to_https_keeps_host_and_path() {
    assert_eq!(
        switch_to_https("http://h:8080/update/update.php?a=1", "444"),
        "https://h:444/update/update.php?a=1"
    );
    assert_eq!(
        switch_to_https("HTTP://h/update.php", ""),
        "https://h/update.php"
    );
}
