//! Bounded under abuse (issue 23): what `/health` tells strangers, oversized snippet files,
//! the spare files after a stop, one address against the connection limit, and the admin's
//! way in during a login storm.

mod common;

use common::oneshot::{Admin, TOKEN};
use common::{ADMIN_CONFIG, Server, http_request, make_root};

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).expect("JSON")
}

// ---------------------------------------------------------------------------------------------
// /health

#[tokio::test]
async fn health_tells_a_remote_client_the_status_only() {
    let admin = Admin::new();
    let r = admin.call("GET", "/health", &[], Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
    // with the API token or an admin session: the checks
    let r = admin
        .call("GET", "/health", &[("authorization", TOKEN)], Vec::new())
        .await;
    assert!(
        r.json()["checks"]["state_dir"]["path"].is_string(),
        "{}",
        r.text()
    );
    let s = admin.login().await;
    let r = admin
        .call("GET", "/health", &[("cookie", &s.cookie)], Vec::new())
        .await;
    assert!(r.json()["checks"].is_object(), "{}", r.text());
    // a wrong token is no key
    let r = admin
        .call(
            "GET",
            "/health",
            &[("authorization", "Bearer nope")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!({"status": "ok"}));
}

#[test]
fn a_broken_configuration_is_no_strangers_business() {
    let admin = Admin::new();
    std::fs::write(
        admin.root.join("config/user-config.xml"),
        "<config><master secret-detail-of-the-parser",
    )
    .expect("break config");
    let r = common::eventually(
        || futures_lite(admin.call("GET", "/health", &[], Vec::new())),
        |r| r.status == 503,
    );
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json(), serde_json::json!({"status": "degraded"}));
    assert!(!r.text().contains("secret-detail"));
}

/// Runs a future to its end on a runtime of its own (from a thread outside any runtime).
fn futures_lite<F: std::future::Future + Send>(f: F) -> F::Output
where
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(f)
        })
        .join()
        .expect("thread")
    })
}

#[test]
fn health_relayed_by_a_proxy_on_this_machine_is_remote() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = ADMIN_CONFIG.replace(
        "<master ",
        "<server trusted-proxies=\"127.0.0.1\"/><master ",
    );
    let root = make_root(dir.path(), &config, &[]);
    let server = Server::start(&root, &[]);
    let direct = server.get("/health");
    assert!(
        json(&direct.body)["checks"].is_object(),
        "{}",
        direct.text()
    );
    for header in ["X-Forwarded-For", "Forwarded", "X-Real-IP"] {
        let r = http_request(
            server.addr(),
            "GET",
            "/health",
            &[(header, "192.0.2.7")],
            b"",
        );
        assert_eq!(r.status, 200);
        assert_eq!(
            json(&r.body),
            serde_json::json!({"status": "ok"}),
            "{header}"
        );
        assert!(!r.text().contains(&root.display().to_string()));
    }
}

// ---------------------------------------------------------------------------------------------
// <server max-snippet>

#[test]
fn a_snippet_over_max_snippet_is_not_read_and_the_device_is_told() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = "config change BIG /x 1\n".repeat(100);
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><server max-snippet="1000"/></config>"#,
        &[
            ("update-all-default.txt", big.as_str()),
            ("update-phone-default.txt", "config change SMALL /x 1\n"),
        ],
    );
    let server = Server::start(&root, &[]);
    let r =
        server.get("/update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("config change BIG"), "{text}");
    assert!(text.contains("config change SMALL /x 1"), "{text}");
    let told = text
        .lines()
        .find(|l| l.contains("update-all-default.txt") && l.contains("max-snippet"));
    assert!(told.is_some_and(|l| l.starts_with('#')), "{text}");
    assert!(
        server.log_text().contains(
            "update-all-default.txt not read: larger than <server max-snippet> (1000 bytes)"
        ),
        "{}",
        server.log_text()
    );
}
