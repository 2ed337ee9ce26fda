//! Staged rollouts over HTTP: polls in and out of scope, a wave that is not open yet, the
//! API (list and actions with the token), a timeout that halts the rollout, the state file
//! surviving a restart, the filter terms and the rollout plan.

use crate::common::{Response, Server, http_request, make_root};
use std::time::{Duration, Instant};
use update_server::config::Config;
use update_server::rollout::wave_of;

const TOKEN: &str = "api-token-0123456789";

fn config(timeout: u32) -> String {
    format!(
        r#"<config>
    <master info="none" firmware="none" bootcode="none" user="admin" password="secret"/>
    <status dir="status" missing="3600"/>
    <api token="{TOKEN}"/>
    <rollouts>
        <rollout id="r1" firmware="140010" applies="phone" waves="50,100"
                 success="100" halt="50" soak="3600" timeout="{timeout}"/>
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

fn api(s: &Server, method: &str, target: &str) -> Response {
    let auth = format!("Bearer {TOKEN}");
    http_request(s.addr(), method, target, &[("Authorization", &auth)], b"")
}

fn rollout_json(s: &Server) -> serde_json::Value {
    let r = api(s, "GET", "/api/rollouts");
    assert_eq!(r.status, 200, "{}", r.text());
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
    v["rollouts"][0].clone()
}

/// Waits (at most 20 s) until the rollout's summary satisfies `ok`.
fn wait_for(s: &Server, what: &str, ok: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = rollout_json(s);
        if ok(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn prot_cmd(text: &str) -> bool {
    text.contains("mod cmd UP0 prot ") && text.contains(" ser 140010")
}

#[test]
fn a_rollout_over_http_tells_holds_halts_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        &config(2),
        &[("update-all-default.txt", "# x\n")],
    );
    let (a, a2, b) = (sn_in(&root, 0, 0), sn_in(&root, 0, 1), sn_in(&root, 1, 0));
    let gw = sn_in(&root, 0, 2);
    let s = Server::start(&root, &[]);
    let v = wait_for(&s, "opened wave 1", |v| v["waves"][0]["opened"].is_i64());
    assert!(v["waves"][1]["opened"].is_null());

    // in wave 1: told; in wave 2: held with a comment; not in scope: as without rollouts
    let t = poll(&s, "IP232", &a, "130000");
    assert!(prot_cmd(&t), "{t}");
    let t = poll(&s, "IP232", &b, "130000");
    assert!(!t.contains("mod cmd UP0 prot"), "{t}");
    assert!(
        t.contains("# rollout r1: held, wave 2 (100%) is not open yet"),
        "{t}"
    );
    let t = poll(&s, "IP811", &gw, "130000");
    assert!(t.contains("# firmware update disabled"), "{t}");
    assert!(!t.contains("rollout"), "{t}");

    // a reports the build: succeeded; a2 polls on the new build at once: succeeded too
    let t = poll(&s, "IP232", &a, "140010");
    assert!(!t.contains("mod cmd UP0 prot"), "{t}");
    poll(&s, "IP232", &a2, "140010");
    let v = rollout_json(&s);
    assert_eq!(v["waves"][0]["succeeded"], 2, "{v}");
    assert_eq!(v["phase"], "waiting-for-soak", "{v}");

    // the filter terms see the waves
    let r = api(&s, "GET", "/api/devices?filter=rollout:r1%20wave:1");
    let sns: Vec<String> =
        serde_json::from_slice::<serde_json::Value>(&r.body).expect("JSON")["devices"]
            .as_array()
            .expect("devices")
            .iter()
            .map(|d| d["sn"].as_str().unwrap_or("").to_string())
            .collect();
    let (mut got, mut want) = (sns.clone(), vec![a.clone(), a2.clone()]);
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // open the next wave now (API token); b is told, never reports, times out: halted
    let r = api(&s, "POST", "/api/rollouts/r1/open-next");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api(&s, "POST", "/api/rollouts/r1/open-next");
    assert_eq!(r.status, 409, "every wave open: {}", r.text());
    assert_eq!(api(&s, "POST", "/api/rollouts/r1/dance").status, 400);
    assert_eq!(api(&s, "POST", "/api/rollouts/nope/pause").status, 404);
    let t = poll(&s, "IP232", &b, "130000");
    assert!(prot_cmd(&t), "{t}");
    let v = wait_for(&s, "halted", |v| v["phase"] == "halted");
    assert!(
        v["halted"]
            .as_str()
            .unwrap_or("")
            .contains("1 of 1 devices in wave 2"),
        "{v}"
    );
    assert_eq!(v["failing"][0]["sn"], b.as_str(), "{v}");
    let t = poll(&s, "IP232", &b, "130000");
    assert!(!t.contains("mod cmd UP0 prot"), "{t}");
    assert!(t.contains("# rollout r1: halted"), "{t}");
    assert!(
        s.log_text()
            .contains(&format!("rollout r1: {b} failed (timeout)"))
    );
    // the metrics per rollout and wave (from loopback: no token needed)
    let m = http_request(s.addr(), "GET", "/metrics", &[], b"").text();
    for line in [
        r#"update_server_rollout_halted{rollout="r1"} 1"#,
        r#"update_server_rollout_devices{rollout="r1",wave="1",outcome="succeeded"} 2"#,
        r#"update_server_rollout_devices{rollout="r1",wave="2",outcome="failed"} 1"#,
    ] {
        assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
    }

    // the state file, and a restart
    s.flush();
    let file = std::fs::read_to_string(root.join("rollouts/r1.xml")).expect("state file");
    assert!(
        file.contains(&format!("sn=\"{a}\"")) && file.contains("<halted "),
        "{file}"
    );
    drop(s);
    let s = Server::start(&root, &[]);
    let v = rollout_json(&s);
    assert_eq!(v["phase"], "halted", "{v}");
    assert_eq!(v["waves"][0]["succeeded"], 2, "{v}");
    let r = api(&s, "POST", "/api/rollouts/r1/resume");
    assert_eq!(r.status, 200, "{}", r.text());
    // every wave open and nobody pending: done
    assert_eq!(rollout_json(&s)["phase"], "done");

    // the plan lists the devices of status/ by wave
    let plan = update_server::rollout::plan::run(&root, "r1").expect("plan");
    let wave2 = plan.split("wave 2 (100%)").nth(1).expect("wave 2");
    assert!(wave2.contains(&format!("{b} IP232 failed")), "{plan}");
    assert!(plan.contains(&format!("{a} IP232 succeeded")), "{plan}");
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
