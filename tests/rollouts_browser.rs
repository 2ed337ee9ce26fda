//! The rollout panel of the status page in a real browser (headless Chromium through
//! ChromeDriver, as `tests/browser.rs`): its waves and phase, and the buttons pause, resume,
//! open next wave now and abort; a form without the CSRF token is refused.

mod common;

use common::webdriver::{Browser, browser_or_skip};
use common::*;
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

fn press(b: &Browser, op: &str) {
    // the panel is folded to one line until opened (the page remembers it open)
    b.exec(
        "document.getElementById('rollout-r1').open = true;",
        json!([]),
    );
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
    b.send_keys(&b.find("#user"), "admin");
    b.send_keys(&b.find("#password"), "secret");
    b.click_css("#login");
    b.wait_for("the device table", |b| b.try_find("#devices").is_some());

    // the ticker opens the first wave
    b.wait_for("wave 1 to open", |b| {
        b.goto(&page);
        !opened(b, 1).is_empty() && opened(b, 1) != "not open"
    });
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
