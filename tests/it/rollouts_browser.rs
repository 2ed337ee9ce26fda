//! The rollout panel of the status page in a real browser (headless Chromium through
//! ChromeDriver, as `browser`): its waves and phase, and the buttons pause, resume,
//! open next wave now and abort; a form without the CSRF token is refused; the start gate
//! and its button, the "not moving" sentence, the failing devices with type, build, reason
//! and link, the abort note, a removed rollout's warning and the rollout column of the device
//! rows. The tests tick the rollouts themselves (and move their clock) instead of waiting for
//! the server's ticker.

use crate::common::webdriver::{Browser, browser_or_skip};
use crate::common::*;
use serde_json::json;

fn panel_phase(b: &Browser) -> String {
    b.exec(
        "var d = document.querySelector('#rollout-r1'); return d ? d.dataset.phase : '';",
        json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// The "Opened" cell of a wave (1-based).
fn opened(b: &Browser, wave: usize) -> String {
    b.exec(
        "var tr = document.querySelector('#rollout-r1 tr[data-wave=\"' + arguments[0] + '\"]');\
         return tr ? tr.children[2].textContent : '';",
        json!([wave]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Opens the rollout panel, folded to one line until opened (the page remembers it open).
fn unfold(b: &Browser) {
    b.exec(
        "var d = document.getElementById('rollout-r1'); if (d) { d.open = true; }",
        json!([]),
    );
}

fn press(b: &Browser, op: &str) {
    unfold(b);
    b.click_css(&format!("#rollout-r1 button[value=\"{op}\"]"));
    if op == "abort" {
        // final: the page asks first
        b.wait_for("the confirmation", |b| b.alert_text().is_some());
        b.accept_alert();
    }
}

#[test]
fn the_rollout_panel_and_its_buttons() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG.replace(
        "</config>",
        r#"<rollouts><rollout id="r1" firmware="140010" applies="phone" waves="10,100"
            soak="3600" timeout="600"/></rollouts></config>"#,
    );
    let root = make_root(dir.path(), &config, &[("update-all-default.txt", "# x\n")]);
    seed_fleet(&root, unix_now());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let Some(b) = browser_or_skip("the_rollout_panel_and_its_buttons", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    let base = format!("http://127.0.0.1:{}", server.http_port);
    let page = format!("{base}/admin/admin.php");

    b.goto(&page);
    b.log_in();

    // the first tick (once the device index is read) opens the first wave
    tick(&server);
    b.goto(&page);
    assert!(!opened(&b, 1).is_empty() && opened(&b, 1) != "not open");
    assert_eq!(opened(&b, 2), "not open");
    assert!(b.text(&b.find("#rollout-r1 h3")).starts_with("Rollout r1"));

    // a form without the CSRF token is refused
    let refused = b
        .cmd(
            "POST",
            "/execute/async",
            json!({ "script": "var done = arguments[arguments.length - 1];\
         fetch('admin.php', {method: 'POST', headers: {'content-type': 'application/x-www-form-urlencoded'},\
           body: 'mode=rollout&id=r1&op=abort'}).then(function (r) { done(r.status); });",
                "args": [] }),
        )
        .expect("fetch");
    assert_eq!(refused, json!(403));

    press(&b, "pause");
    b.wait_for("paused", |b| panel_phase(b) == "paused");
    assert!(b.try_find("#rollout-r1 button[value=\"pause\"]").is_none());
    press(&b, "resume");
    b.wait_for("resumed", |b| {
        panel_phase(b) != "paused" && !panel_phase(b).is_empty()
    });
    press(&b, "open-next");
    b.wait_for("wave 2 open", |b| {
        opened(b, 2) != "not open" && !opened(b, 2).is_empty()
    });
    assert!(
        b.try_find("#rollout-r1 button[value=\"open-next\"]")
            .is_none()
    );
    press(&b, "abort");
    b.wait_for("aborted", |b| panel_phase(b) == "aborted");
    assert!(
        b.try_find("#rollout-r1 button").is_none(),
        "no actions after abort"
    );
    let log = server.log_text();
    for op in ["pause", "resume", "open-next", "abort"] {
        assert!(
            log.contains(&format!("admin 'admin' at 127.0.0.1: rollout r1 {op}")),
            "{op}: {log}"
        );
    }
    server.flush();
    let file = std::fs::read_to_string(root.join("rollouts/r1.xml")).expect("state file");
    assert!(file.contains("aborted="), "{file}");
}

/// Ticks the rollouts once the device index is read (no waiting for the server's ticker).
fn tick(server: &Server) {
    let cfg = server.app.config.get().expect("config");
    if let Some(states) = server.app.states(&cfg) {
        assert!(
            states
                .index()
                .wait_complete(std::time::Duration::from_secs(10))
        );
    }
    update_server::rollout_ticker::tick(&server.app);
}

fn text_of(b: &Browser, css: &str) -> String {
    unfold(b);
    b.try_find(css).map(|e| b.text(&e)).unwrap_or_default()
}

#[test]
fn the_start_gate_blocked_sentence_failing_devices_and_removed_rollouts_on_the_panel() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG.replace(
        "</config>",
        r#"<rollouts><rollout id="r1" firmware="140010" applies="phone" waves="100"
            start="manual" soak="3600" timeout="600"/></rollouts></config>"#,
    );
    let root = make_root(dir.path(), &config, &[("update-all-default.txt", "# x\n")]);
    seed_fleet(&root, unix_now());
    // the state file of a rollout removed from the configuration, one device on its build
    std::fs::create_dir_all(root.join("rollouts")).expect("rollouts");
    std::fs::write(
        root.join("rollouts/old.xml"),
        r#"<rollout id="old" target="139000/-"><wave n="1" opened="5"/><device sn="00-90-33-30-00-a1" wave="1" member="1" told="6" succeeded="7"/></rollout>"#,
    )
    .expect("old state");
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let Some(b) = browser_or_skip("the_start_gate_on_the_panel", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    tick(&server);
    let page = format!("http://127.0.0.1:{}/admin/admin.php", server.http_port);
    b.goto(&page);
    b.log_in();

    // ready: a Start button, no "open next", the reason it is not moving, what abort does
    b.goto(&page);
    assert_eq!(panel_phase(&b), "ready");
    assert!(text_of(&b, "#rollout-r1 .blocked").starts_with("Not moving: waiting for its start"));
    assert!(
        b.try_find("#rollout-r1 button[value=\"open-next\"]")
            .is_none()
    );
    assert!(text_of(&b, "#rollout-r1 .abort-note").contains("keeps the build it runs"));
    let removed = text_of(&b, ".removed-rollout[data-rollout=\"old\"]");
    assert!(
        removed.contains("1 devices installed its builds (139000/-)"),
        "{removed}"
    );

    // Start (session + CSRF): wave 1 opens with the two present phones as its population
    press(&b, "start");
    b.wait_for("running", |b| panel_phase(b) == "running");
    assert_eq!(
        text_of(&b, "#rollout-r1 tr[data-wave=\"1\"] .population"),
        "2"
    );
    let blocked = text_of(&b, "#rollout-r1 .blocked");
    assert!(blocked.is_empty(), "the last wave is open: {blocked}");

    // nobody polls within the timeout: both fail, the rollout halts, the failing devices are
    // listed with type, reported build, reason and a link
    server.app.rollouts.skip(600);
    tick(&server);
    b.goto(&page);
    assert_eq!(panel_phase(&b), "halted");
    assert!(text_of(&b, "#rollout-r1 .halted").contains("2 of 2 devices of wave 1 failed: 100.0%"));
    let row = text_of(&b, &format!("#rollout-r1 tr[data-sn=\"{SN_RECEPTION}\"]"));
    for part in [
        "IP232",
        "firmware 130100",
        "did not poll after its wave opened",
    ] {
        assert!(row.contains(part), "{part}: {row}");
    }
    // the rollout column of the device rows
    let outcome = b.exec(
        "var c = document.querySelector('#d-' + arguments[0] + ' .c-rollout');\
         return c ? c.dataset.outcome + ' ' + c.textContent : '';",
        json!([SN_RECEPTION]),
    );
    assert_eq!(outcome, json!("failed r1 wave 1: failed"));
    unfold(&b);
    b.click_css(&format!("#rollout-r1 tr[data-sn=\"{SN_RECEPTION}\"] a"));
    b.wait_for("the device filtered", |b| b.url().contains("filter=sn%3A"));
    let shown = b.exec(
        "return Array.from(document.querySelectorAll('#devices tbody tr')).map(function (r) { return r.textContent; }).join('|');",
        json!([]),
    );
    let shown = shown.as_str().unwrap_or_default();
    assert!(
        shown.contains(SN_RECEPTION) && !shown.contains(SN_GATEWAY),
        "{shown}"
    );
}
