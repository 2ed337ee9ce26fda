//! Staged rollouts over HTTP: the start gate, polls in and out of scope, a type told
//! nothing, a device first seen after its wave opened, the `blocked` sentence, a member
//! that never polls halting the rollout, the API (list and actions with the token), the
//! metrics, the state file surviving a restart, the filter terms and the rollout plan. The
//! rollouts' clock is moved forward (`RolloutStore::skip`) and ticked by the test: nothing
//! waits for the server's one-second ticker.

use crate::common::{Response, Server, http_request, make_root};
use std::time::Duration;
use update_server::config::Config;
use update_server::rollout::wave_of;

/// The API token of the rollout tests' configurations (also `snippet_rollouts`).
pub(crate) const TOKEN: &str = "api-token-0123456789";

fn config(timeout: u32) -> String {
    format!(
        r#"<config>
    <master info="none" firmware="none" bootcode="none" user="admin" password="secret"/>
    <status dir="status" missing="86400"/>
    <api token="{TOKEN}"/>
    <rollouts>
        <rollout id="r1" firmware="140010" applies="phone" waves="50,100" start="manual"
                 success="100" halt="40" soak="3600" timeout="{timeout}"/>
    </rollouts>
</config>"#
    )
}

/// A serial in wave `w` (0-based) of the configured rollout, the `skip`-th one.
fn sn_in(root: &std::path::Path, w: usize, skip: usize) -> String {
    let cfg = Config::load(root).expect("config");
    let r = &cfg.rollouts[0];
    (0..)
        .map(|i| format!("00-90-33-40-{:02x}-{:02x}", i / 256, i % 256))
        .filter(|sn| wave_of(r, sn) == Some(w))
        .nth(skip)
        .expect("a serial")
}

fn poll(s: &Server, ty: &str, sn: &str, prot: &str) -> String {
    let hw = sn.replace("00-90-33-", "");
    s.get(&format!(
        "/update.php?type={ty}&sn={sn}&hwid={ty}-{hw}&ip=10.0.0.1&PROT={prot}&BOOT={prot}"
    ))
    .text()
}

/// A rollout API request with [`TOKEN`].
pub(crate) fn api(s: &Server, method: &str, target: &str) -> Response {
    let auth = format!("Bearer {TOKEN}");
    http_request(s.addr(), method, target, &[("Authorization", &auth)], b"")
}

/// The first rollout of `GET api/rollouts`.
pub(crate) fn rollout_json(s: &Server) -> serde_json::Value {
    let r = api(s, "GET", "/api/rollouts");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    v["rollouts"][0].clone()
}

/// One tick of the rollouts now (the device index read first), instead of waiting for the
/// server's ticker.
pub(crate) fn tick(s: &Server) {
    let cfg = s.app.config.get().expect("config");
    if let Some(states) = s.app.states(&cfg) {
        assert!(
            states.index().wait_complete(Duration::from_secs(10)),
            "index"
        );
    }
    update_server::rollout_ticker::tick(&s.app);
}

/// Moves the rollouts' clock forward by `secs` and ticks.
pub(crate) fn skip(s: &Server, secs: i64) {
    s.app.rollouts.skip(secs);
    tick(s);
}

fn prot_cmd(text: &str) -> bool {
    text.contains("mod cmd UP0 prot ") && text.contains(" ser 140010")
}

fn metric(s: &Server, line: &str) {
    let m = http_request(s.addr(), "GET", "/metrics", &[], b"").text();
    assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
}

#[test]
fn a_started_rollout_counts_its_population_blocks_halts_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &config(600),
        &[("update-all-default.txt", "# x\n")],
    );
    let (a, a2, b) = (sn_in(&root, 0, 0), sn_in(&root, 0, 1), sn_in(&root, 1, 0));
    let (gw, soft, late) = (sn_in(&root, 0, 2), sn_in(&root, 0, 3), sn_in(&root, 0, 4));
    let s = Server::start(&root, &[]);

    // known before the start: every device in scope is held, the phase is "ready"
    for (ty, sn) in [
        ("IP232", &a),
        ("IP232", &a2),
        ("IP232", &b),
        ("SWPHONE", &soft),
    ] {
        let t = poll(&s, ty, sn, "130000");
        assert!(!t.contains("mod cmd UP0 prot"), "{t}");
        assert!(t.contains("# rollout r1: "), "{t}");
    }
    let t = poll(&s, "IP232", &a, "130000");
    assert!(t.contains("waiting for an administrator to start"), "{t}");
    let t = poll(&s, "IP811", &gw, "130000");
    assert!(
        t.contains("# firmware update disabled") && !t.contains("rollout"),
        "{t}"
    );
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "ready", "{v}");
    assert!(
        v["blocked"]
            .as_str()
            .unwrap_or("")
            .starts_with("waiting for its start"),
        "{v}"
    );
    assert!(v["waves"][0]["opened"].is_null());
    metric(
        &s,
        r#"update_server_rollout_phase{rollout="r1",phase="ready"} 1"#,
    );

    // start (API token): wave 1 opens at once; its population is a and a2 (the softphone
    // gets no firmware: not counted)
    assert_eq!(api(&s, "POST", "/api/rollouts/r1/open-next").status, 409);
    let r = api(&s, "POST", "/api/rollouts/r1/start");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        api(&s, "POST", "/api/rollouts/r1/start").status,
        409,
        "started already"
    );
    let v = rollout_json(&s);
    assert!(v["waves"][0]["opened"].is_i64(), "{v}");
    assert_eq!(v["waves"][0]["population"], 2, "{v}");
    let t = poll(&s, "IP232", &a, "130000");
    assert!(prot_cmd(&t), "{t}");
    let t = poll(&s, "SWPHONE", &soft, "130000");
    assert!(t.contains("nothing to tell this device type"), "{t}");
    poll(&s, "IP232", &a, "140010");
    // a serial first seen after the wave opened is served, never counted
    let t = poll(&s, "IP232", &late, "130000");
    assert!(prot_cmd(&t), "{t}");
    poll(&s, "IP232", &late, "140010");
    tick(&s);
    let v = rollout_json(&s);
    let w = &v["waves"][0];
    assert_eq!(
        (w["succeeded"].as_i64(), w["later"].as_i64()),
        (Some(1), Some(1)),
        "{v}"
    );
    assert_eq!(v["phase"], "running", "{v}");
    assert!(
        v["blocked"]
            .as_str()
            .unwrap_or("")
            .starts_with("wave 1: 1 of 2 succeeded (50.0%), needs 100%; soak: "),
        "{v}"
    );

    // a2 never polls: after `timeout` it fails; 1 of 2 is more than 40%: halted
    skip(&s, 600);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "halted", "{v}");
    assert_eq!(
        v["halted"], "1 of 2 devices of wave 1 failed: 50.0%, more than the 40% allowed",
        "{v}"
    );
    assert!(
        v["blocked"]
            .as_str()
            .unwrap_or("")
            .starts_with("halted at "),
        "{v}"
    );
    let f = &v["failing"][0];
    assert_eq!(
        (
            f["sn"].as_str(),
            f["type"].as_str(),
            f["firmware"].as_str(),
            f["why"].as_str()
        ),
        (
            Some(a2.as_str()),
            Some("IP232"),
            Some("130000"),
            Some("silent")
        ),
        "{v}"
    );
    s.flush();
    let file = std::fs::read_to_string(root.join("rollouts/r1.xml")).expect("state file");
    assert!(file.contains("why=\"silent\""), "{file}");
    metric(&s, r#"update_server_rollout_halted{rollout="r1"} 1"#);
    // while halted, a2 reporting the build counts as succeeded at once
    let t = poll(&s, "IP232", &a2, "140010");
    assert!(t.contains("# rollout r1: halted"), "{t}");
    assert_eq!(rollout_json(&s)["waves"][0]["succeeded"], 2);

    // resume; once the soak time is over wave 2 opens with b in it
    assert_eq!(api(&s, "POST", "/api/rollouts/r1/resume").status, 200);
    tick(&s);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "waiting-for-soak", "{v}");
    assert!(
        v["blocked"].as_str().unwrap_or("").starts_with("soak: "),
        "{v}"
    );
    skip(&s, 3600);
    let v = rollout_json(&s);
    assert_eq!(v["waves"][1]["population"], 1, "{v}");
    assert!(v["blocked"].is_null(), "last wave open: {v}");
    metric(&s, r#"update_server_rollout_open_waves{rollout="r1"} 2"#);
    let t = poll(&s, "IP232", &b, "130000");
    assert!(prot_cmd(&t), "{t}");
    poll(&s, "IP232", &b, "140010");
    assert_eq!(rollout_json(&s)["phase"], "done");
    metric(
        &s,
        r#"update_server_rollout_phase{rollout="r1",phase="done"} 1"#,
    );

    // the filter terms see the waves and the outcomes
    let sns = |filter: &str| {
        let r = api(&s, "GET", &format!("/api/devices?filter={filter}"));
        let mut v: Vec<String> = serde_json::from_slice::<serde_json::Value>(&r.body)
            .expect("JSON")["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["sn"].as_str().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let mut want = vec![a.clone(), a2.clone(), late.clone(), soft.clone()];
    want.sort();
    assert_eq!(sns("rollout:r1%20wave:1"), want);
    let mut want = vec![a.clone(), a2.clone(), b.clone(), late.clone()];
    want.sort();
    assert_eq!(sns("rollout:r1%20is:succeeded"), want);
    assert_eq!(sns("rollout:r1%20is:held"), vec![soft.clone()]);

    // the state file, and a restart
    s.flush();
    let file = std::fs::read_to_string(root.join("rollouts/r1.xml")).expect("state file");
    assert!(
        file.contains(&format!("sn=\"{a}\"")) && file.contains("started="),
        "{file}"
    );
    drop(s);
    let s = Server::start(&root, &[]);
    tick(&s);
    assert_eq!(rollout_json(&s)["phase"], "done");

    // the plan lists the devices of status/ by wave, with dates
    let plan = update_server::rollout::plan::run(&root, "r1").expect("plan");
    let wave2 = plan.split("wave 2 (100%)").nth(1).expect("wave 2");
    assert!(wave2.contains(&format!("{b} IP232 succeeded")), "{plan}");
    assert!(plan.contains(" UTC"), "{plan}");
    assert!(plan.contains("not in scope: 1 devices"), "{plan}");
}

#[test]
fn without_a_token_or_session_the_rollout_api_refuses() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), &config(60), &[]);
    let s = Server::start(&root, &[]);
    let r = http_request(s.addr(), "GET", "/api/rollouts", &[], b"");
    assert_eq!(r.status, 401);
    let r = http_request(s.addr(), "POST", "/api/rollouts/r1/pause", &[], b"");
    assert_eq!(r.status, 401);
    assert_ne!(rollout_json(&s)["phase"], "paused");
}
