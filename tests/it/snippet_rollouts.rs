//! Snippet rollouts over HTTP (`<rollout snippets="…"/>`): a file's first version is kept as
//! the previous one; a new version goes to the open wave while the other wave gets the
//! previous one (content, CHECK and the state's `version`); a device that polls again
//! succeeded, the next wave opens, the round ends `done` and the rollout is idle again; a bad
//! version whose device never comes back halts the round, abort gives the devices the
//! previous version, and a further change starts a new round from wave 1 (in the audit log); metrics, audit,
//! filter terms, a restart, and going back at once with the previous file put back with its
//! date; a rollout of builds and snippets, and the kept copies removed with the rollout. The
//! rollouts' clock is moved forward by the test; nothing waits for the ticker.

use crate::common::{Server, http_request, make_root};
use crate::rollouts::{api, rollout_json, skip, tick};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use update_server::config::Config;
use update_server::rollout::wave_of;

const FILE: &str = "update-all-default.txt";

const CONFIG: &str = r#"<config>
    <master info="none" firmware="none" bootcode="none" user="admin" password="secret"/>
    <status dir="status" missing="86400"/>
    <api token="api-token-0123456789"/><!-- crate::rollouts::TOKEN: the API calls send it -->
    <rollouts>
        <rollout id="ntp" snippets="update-all-default.txt" applies="phone" waves="50,100"
                 success="100" halt="40" soak="60" timeout="600"/>
    </rollouts>
</config>"#;

fn sn_in(root: &Path, w: usize, skip: usize) -> String {
    let cfg = Config::load(root).expect("config");
    let r = &cfg.rollouts[0];
    (0..)
        .map(|i| format!("00-90-33-50-{:02x}-{:02x}", i / 256, i % 256))
        .filter(|sn| wave_of(r, sn) == Some(w))
        .nth(skip)
        .expect("a serial")
}

fn poll(s: &Server, ty: &str, sn: &str) -> String {
    let hw = sn.replace("00-90-33-", "");
    s.get(&format!(
        "/update.php?type={ty}&sn={sn}&hwid={ty}-{hw}&ip=10.0.0.1&PROT=130000&BOOT=130000"
    ))
    .text()
}

/// Writes a new version of the snippet, dated `ago` seconds back (older than the grace
/// period); returns its version (PHP's: the modification time).
fn write_version(root: &Path, content: &str, ago: u64) -> i64 {
    let p = root.join("scripts").join(FILE);
    std::fs::write(&p, content).expect("write");
    let t = SystemTime::now() - Duration::from_secs(ago);
    let f = std::fs::File::options().write(true).open(&p).expect("open");
    f.set_modified(t).expect("mtime");
    t.duration_since(UNIX_EPOCH).expect("time").as_secs() as i64
}

/// The `version` the device's state records for the snippet (PHP's attribute).
fn recorded_version(s: &Server, root: &Path, sn: &str) -> String {
    let cfg = s.app.config.get().expect("config");
    s.app.states(&cfg).expect("states").flush_blocking();
    let text = std::fs::read_to_string(root.join(format!("status/{sn}.xml"))).expect("state");
    let at = text
        .find(&format!("filename=\"scripts/{FILE}\""))
        .expect("config element");
    let rest = &text[at..];
    let v = rest.find("version=\"").expect("version") + 9;
    rest[v..v + rest[v..].find('"').expect("quote")].to_string()
}

#[test]
fn a_snippet_version_goes_out_by_waves_halts_when_devices_do_not_come_back_and_goes_back() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), CONFIG, &[(FILE, "# v1\nconfig add NTP v1\n")]);
    let v1 = write_version(&root, "# v1\nconfig add NTP v1\n", 86_400);
    let (a, b) = (sn_in(&root, 0, 0), sn_in(&root, 1, 0));
    let gw = sn_in(&root, 0, 1);
    let s = Server::start(&root, &[]);

    // idle: the first version is kept as the previous one, everybody gets the live file
    for sn in [&a, &b] {
        assert!(poll(&s, "IP232", sn).contains("config add NTP v1"));
    }
    assert!(poll(&s, "IP811", &gw).contains("config add NTP v1"));
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "idle", "{v}");
    assert_eq!(v["snippets"][0]["previous"], v1, "{v}");
    assert!(
        root.join("rollouts/.snippets/ntp").join(FILE).exists(),
        "the previous version is kept"
    );

    // a good new version: wave 1 (a) gets it, wave 2 (b) the previous one, a gateway (out of
    // scope) the live file as today
    // (a file younger than the grace period is being edited: no round yet)
    write_version(&root, "# v2, being edited\n", 10);
    tick(&s);
    assert_eq!(rollout_json(&s)["phase"], "idle");
    let v2 = write_version(&root, "# v2\nconfig add NTP v2\n", 7_200);
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "running", "{v}");
    assert_eq!(v["snippets"][0]["version"], v2, "{v}");
    assert_eq!(v["waves"][0]["population"], 1, "{v}");
    let t = poll(&s, "IP232", &a);
    assert!(t.contains("config add NTP v2"), "{t}");
    assert_eq!(recorded_version(&s, &root, &a), v2.to_string());
    let t = poll(&s, "IP232", &b);
    assert!(
        t.contains("config add NTP v1") && !t.contains("NTP v2"),
        "{t}"
    );
    assert!(
        t.contains("# rollout ntp: held, wave 2 (100%) is not open yet"),
        "{t}"
    );
    assert_eq!(
        recorded_version(&s, &root, &b),
        v1.to_string(),
        "PHP's version attribute: the version given"
    );
    assert!(poll(&s, "IP811", &gw).contains("config add NTP v2"));
    // a came back: succeeded; after the soak wave 2 opens, b gets it and comes back
    poll(&s, "IP232", &a);
    tick(&s);
    assert_eq!(rollout_json(&s)["waves"][0]["succeeded"], 1);
    skip(&s, 61);
    assert!(poll(&s, "IP232", &b).contains("config add NTP v2"));
    poll(&s, "IP232", &b);
    tick(&s);
    // done: the new version is the previous one now, the rollout idle again
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "idle", "{v}");
    assert_eq!(v["snippets"][0]["previous"], v2, "{v}");

    // a bad version: a is given it and never comes back; the round halts, b keeps v2
    let v3 = write_version(&root, "# v3\nconfig add NTP broken\n", 3_600);
    tick(&s);
    assert!(poll(&s, "IP232", &a).contains("NTP broken"));
    skip(&s, 601);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "halted", "{v}");
    assert_eq!(v["snippets"][0]["version"], v3, "{v}");
    assert_eq!(v["failing"][0]["sn"], a, "{v}");
    let t = poll(&s, "IP232", &b);
    assert!(
        t.contains("config add NTP v2") && !t.contains("broken"),
        "{t}"
    );
    // the metrics carry both versions
    let m = http_request(s.addr(), "GET", "/metrics", &[], b"").text();
    for line in [
        format!(
            r#"update_server_rollout_snippet_version{{rollout="ntp",file="{FILE}",which="staged"}} {v3}"#
        ),
        format!(
            r#"update_server_rollout_snippet_version{{rollout="ntp",file="{FILE}",which="previous"}} {v2}"#
        ),
        r#"update_server_rollout_phase{rollout="ntp",phase="halted"} 1"#.to_string(),
    ] {
        assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
    }
    // going back: abort gives every device in scope the previous version, also a
    assert_eq!(api(&s, "POST", "/api/rollouts/ntp/abort").status, 200);
    let audit = api(&s, "GET", "/api/audit").text();
    assert!(
        audit.contains("rollout-abort") && audit.contains("\"ntp\""),
        "{audit}"
    );
    let t = poll(&s, "IP232", &a);
    assert!(
        t.contains("config add NTP v2") && !t.contains("broken"),
        "{t}"
    );
    assert_eq!(recorded_version(&s, &root, &a), v2.to_string());

    // a further change starts a new round from wave 1
    let v4 = write_version(&root, "# v4\nconfig add NTP v4\n", 1_800);
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "running", "{v}");
    assert_eq!(v["snippets"][0]["version"], v4, "{v}");
    assert_eq!(v["waves"][0]["told"], 0, "{v}");
    assert!(poll(&s, "IP232", &a).contains("config add NTP v4"));
    assert!(poll(&s, "IP232", &b).contains("config add NTP v2"));
    // the server's round start is in the audit log: the file with the previous and new version
    let audit = api(&s, "GET", "/api/audit").text();
    let round = format!("round started from wave 1: {FILE} version {v2} \u{2192} {v4}");
    assert!(
        audit.contains("rollout-round") && audit.contains("\"server\"") && audit.contains(&round),
        "{audit}"
    );

    // the filter terms see what the round recorded
    let sns = |s: &Server, filter: &str| -> Vec<String> {
        let r = api(s, "GET", &format!("/api/devices?filter={filter}"));
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON")["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["sn"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(sns(&s, "rollout:ntp%20is:told"), vec![a.clone()]);
    assert_eq!(sns(&s, "rollout:ntp%20is:held"), vec![b.clone()]);

    // a restart keeps the round and the previous version
    s.flush();
    drop(s);
    let s = Server::start(&root, &[]);
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "running", "{v}");
    assert_eq!(v["snippets"][0]["version"], v4, "{v}");
    assert_eq!(v["snippets"][0]["previous"], v2, "{v}");
    assert!(poll(&s, "IP232", &b).contains("config add NTP v2"));
    assert!(poll(&s, "IP232", &a).contains("config add NTP v4"));
    // going back at once: the previous version put back with its date (`cp -p`)
    let kept = root.join("rollouts/.snippets/ntp").join(FILE);
    std::fs::copy(&kept, root.join("scripts").join(FILE)).expect("cp");
    let back = std::fs::File::options()
        .write(true)
        .open(root.join("scripts").join(FILE))
        .expect("open");
    back.set_modified(
        std::fs::metadata(&kept)
            .expect("kept")
            .modified()
            .expect("mtime"),
    )
    .expect("mtime");
    tick(&s);
    assert_eq!(rollout_json(&s)["phase"], "idle");
    for sn in [&a, &b] {
        assert!(poll(&s, "IP232", sn).contains("config add NTP v2"));
    }
    let plan = update_server::rollout::plan::run(&root, "ntp").expect("plan");
    assert!(
        plan.starts_with(&format!("rollout ntp: snippets {FILE} (nothing new)")),
        "{plan}"
    );
}

/// Polls with the builds the device reports.
fn poll_on(s: &Server, sn: &str, prot: &str) -> String {
    let hw = sn.replace("00-90-33-", "");
    s.get(&format!(
        "/update.php?type=IP232&sn={sn}&hwid=IP232-{hw}&ip=10.0.0.1&PROT={prot}&BOOT=130000"
    ))
    .text()
}

#[test]
fn builds_and_snippets_in_one_rollout_and_the_copies_go_with_the_rollout() {
    let dir = tempfile::tempdir().expect("tmp");
    let both = CONFIG.replace(
        r#"snippets="update-all-default.txt""#,
        r#"firmware="140010" snippets="update-all-default.txt""#,
    );
    let root = make_root(dir.path(), &both, &[(FILE, "# v1\nconfig add NTP v1\n")]);
    let v1 = write_version(&root, "# v1\nconfig add NTP v1\n", 86_400);
    let (a, b) = (sn_in(&root, 0, 0), sn_in(&root, 1, 0));
    let s = Server::start(&root, &[]);
    // no new version: a firmware rollout (wave 1 opens), the files as they are
    for sn in [&a, &b] {
        poll_on(&s, sn, "130000");
    }
    tick(&s);
    let v = rollout_json(&s);
    assert_ne!(v["phase"], "idle", "{v}");
    assert_eq!(v["snippets"][0]["previous"], v1, "{v}");
    // a new version: a round from wave 1 for both
    let v2 = write_version(&root, "# v2\nconfig add NTP v2\n", 7_200);
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["snippets"][0]["version"], v2, "{v}");
    // a (wave 1) on the old build: the build and the new version, not told yet
    let t = poll_on(&s, &a, "130000");
    assert!(t.contains(" ser 140010") && t.contains("NTP v2"), "{t}");
    assert_eq!(rollout_json(&s)["waves"][0]["told"], 0);
    // on the build: told; back again: succeeded
    assert!(poll_on(&s, &a, "140010").contains("NTP v2"));
    assert_eq!(rollout_json(&s)["waves"][0]["told"], 1);
    poll_on(&s, &a, "140010");
    assert_eq!(rollout_json(&s)["waves"][0]["succeeded"], 1);
    // b (wave 2, closed): neither the build nor the new version
    let t = poll_on(&s, &b, "130000");
    assert!(
        !t.contains(" ser 140010") && t.contains("NTP v1") && !t.contains("NTP v2"),
        "{t}"
    );
    // the rollout removed from the configuration: its kept copies are removed
    let kept = root.join("rollouts/.snippets/ntp");
    assert!(kept.join(FILE).is_file());
    s.flush();
    drop(s);
    let without = CONFIG.replace(
        &CONFIG[CONFIG.find("<rollouts>").expect("rollouts")
            ..CONFIG.find("</rollouts>").expect("end") + 11],
        "",
    );
    std::fs::write(root.join("config/user-config.xml"), without).expect("config");
    let s = Server::start(&root, &[]);
    tick(&s);
    assert!(
        !kept.exists(),
        "the copies of a removed rollout are removed"
    );
    assert!(poll_on(&s, &b, "130000").contains("NTP v2"));
}
