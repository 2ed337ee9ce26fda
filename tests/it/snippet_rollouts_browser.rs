//! The panel of a snippet rollout in a real browser (headless Chromium through ChromeDriver,
//! as `rollouts_browser`): idle with the kept previous version and no buttons; a new version
//! starts a round (the file with its staged and previous version, what abort does); nobody
//! coming back halts it with the failing devices and their last address; abort from the panel.
//! The test ticks the rollouts and moves their clock instead of waiting for the ticker.

use crate::common::webdriver::{Browser, browser_or_skip};
use crate::common::*;
use serde_json::json;
use std::time::{Duration, SystemTime};

fn phase(b: &Browser) -> String {
    b.exec(
        "var d = document.querySelector('#rollout-ntp'); return d ? d.dataset.phase : '';",
        json!([]),
    )
    .as_str()
    .unwrap_or_default()
    .to_string()
}

fn text_of(b: &Browser, css: &str) -> String {
    b.exec(
        "var d = document.getElementById('rollout-ntp'); if (d) { d.open = true; }",
        json!([]),
    );
    b.try_find(css).map(|e| b.text(&e)).unwrap_or_default()
}

fn tick(server: &Server) {
    let cfg = server.app.config.get().expect("config");
    if let Some(states) = server.app.states(&cfg) {
        assert!(states.index().wait_complete(Duration::from_secs(10)));
    }
    update_server::rollout_ticker::tick(&server.app);
}

#[test]
fn the_snippet_rollout_panel() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG.replace(
        "</config>",
        r#"<rollouts><rollout id="ntp" snippets="update-all-default.txt" applies="phone"
            waves="100" soak="0" timeout="600"/></rollouts></config>"#,
    );
    let root = make_root(dir.path(), &config, &[("update-all-default.txt", "# v1\n")]);
    seed_fleet(&root, unix_now());
    let downloads = dir.path().join("downloads");
    std::fs::create_dir_all(&downloads).expect("downloads");
    let Some(b) = browser_or_skip("the_snippet_rollout_panel", &downloads) else {
        return;
    };
    let server = Server::start(&root, &[]);
    tick(&server);
    let page = format!("http://127.0.0.1:{}/admin/admin.php", server.http_port);
    b.goto(&page);
    b.log_in();

    // idle: the file with its kept version, nothing staged, no buttons
    b.goto(&page);
    assert_eq!(phase(&b), "idle");
    let row = text_of(&b, "#rollout-ntp .staged-file");
    assert!(
        row.contains("update-all-default.txt") && row.contains("none staged"),
        "{row}"
    );
    assert!(b.try_find("#rollout-ntp button").is_none());

    // a new version: a round, the staged version shown, abort goes back
    let p = root.join("scripts/update-all-default.txt");
    std::fs::write(&p, "# v2\n").expect("write");
    let t = SystemTime::now() - Duration::from_secs(3600);
    let f = std::fs::File::options().write(true).open(&p).expect("open");
    f.set_modified(t).expect("mtime");
    let v2 = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    tick(&server);
    b.goto(&page);
    assert_eq!(phase(&b), "running");
    let version = text_of(&b, "#rollout-ntp .staged-file .version");
    assert!(version.starts_with(&v2.to_string()), "{version}");
    assert!(text_of(&b, "#rollout-ntp .abort-note").contains("previous version"));

    // nobody comes back: halted, the failing devices with their last address
    server.app.rollouts.skip(600);
    tick(&server);
    b.goto(&page);
    assert_eq!(phase(&b), "halted");
    let row = text_of(&b, &format!("#rollout-ntp tr[data-sn=\"{SN_RECEPTION}\"]"));
    assert!(
        row.contains("172.16.1.21") && row.contains("IP232"),
        "{row}"
    );

    // abort from the panel (asks first)
    b.click_css("#rollout-ntp button[value=\"abort\"]");
    b.wait_for("the confirmation", |b| b.alert_text().is_some());
    b.accept_alert();
    b.wait_for("aborted", |b| phase(b) == "aborted");
    let log = server.log_text();
    assert!(
        log.contains("admin 'admin' at 127.0.0.1: rollout ntp abort"),
        "{log}"
    );
}
