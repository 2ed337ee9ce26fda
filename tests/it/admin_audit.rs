//! The audit log of admin actions through the real router: logins and failed logins,
//! mark-as-seen, deletions and rollout actions are recorded with who, when, from where, what
//! and on what; `GET api/audit` answers newest first and paged, with the API token or a
//! session, and nothing without; the page `mode=audit` shows them.

use crate::common::oneshot::Admin as Harness;
use crate::common::*;
use axum::http::StatusCode;
use serde_json::Value;

fn actions(j: &Value) -> Vec<(String, String, bool)> {
    j["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or_default().to_string(),
                e["target"].as_str().unwrap_or_default().to_string(),
                e["ok"].as_bool().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn admin_actions_are_recorded_and_served_newest_first() {
    let config = ADMIN_CONFIG.replace(
        "</config>",
        r#"<rollouts><rollout id="r1" firmware="140010" applies="phone" waves="10,100"/></rollouts></config>"#,
    );
    let h = Harness::with_config(&config, "");
    let before = unix_now();
    // nobody may read it
    let r = h.get("/api/audit", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let bad = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=mallory%0Aevil&password=nope",
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let login = h.login().await;
    let form = |sn: &str| format!("sn={sn}&csrf={}", login.csrf);
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=touchstatus",
            Some(&login),
            &form(SN_EVIL),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(true));
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=delstatus",
            Some(&login),
            &form(SN_GATEWAY),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(true));
    let r = h
        .post_form(
            "/admin/admin.php",
            Some(&login),
            &format!("mode=rollout&id=r1&op=pause&csrf={}", login.csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert!(
        r.header("location")
            .is_some_and(|l| l.contains("msg=rollout-paused")),
        "a message after the action"
    );
    let r = h
        .call(
            "POST",
            "/api/rollouts/r1/abort",
            &[("authorization", crate::common::oneshot::TOKEN)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    // the API token reads it, newest first
    let r = h.api("/api/audit").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(
        actions(&j),
        vec![
            ("rollout-abort".to_string(), "r1".to_string(), true),
            ("rollout-pause".to_string(), "r1".to_string(), true),
            ("delete-status".to_string(), SN_GATEWAY.to_string(), true),
            ("mark-seen".to_string(), SN_EVIL.to_string(), true),
            ("login".to_string(), String::new(), true),
            ("login-failed".to_string(), String::new(), false),
        ]
    );
    assert_eq!(j["total"], 6);
    let first = &j["entries"][0];
    assert_eq!(first["user"], "API token");
    assert_eq!(first["from"], "192.0.2.10");
    assert!(first["time"].as_i64().is_some_and(|t| t >= before));
    assert_eq!(j["entries"][1]["user"], "admin");
    // the name tried at a failed login is kept, without its control characters
    assert_eq!(j["entries"][5]["user"], "malloryevil");

    // paged
    let r = h.api("/api/audit?offset=2&limit=2").await;
    let j = r.json();
    assert_eq!(
        actions(&j).iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        ["delete-status", "mark-seen"]
    );
    assert_eq!(
        (j["offset"].clone(), j["limit"].clone()),
        (2.into(), 2.into())
    );
    let r = h.api("/api/audit?limit=100000").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // a session reads it too, and the page shows it
    let r = h.get("/api/audit", &login).await;
    assert_eq!(r.status, StatusCode::OK);
    let page = h.get("/admin/admin.php?mode=audit", &login).await;
    assert_eq!(page.status, StatusCode::OK);
    let t = page.text();
    assert!(t.contains("<h1>Audit log</h1>"), "{t}");
    assert!(
        t.contains("rollout-abort") && t.contains("malloryevil"),
        "{t}"
    );

    // kept under the installation root
    let file = std::fs::read_to_string(h.root.join("audit/audit.log")).expect("audit file");
    assert_eq!(file.lines().count(), 6);
}
