//! What an operator reaches over HTTP, in process: `/` and `PREFIX/` lead to the admin
//! page, `/health` and `/metrics` under the prefix, who may read `/metrics`, and the sample
//! snippet that ships in `scripts/` never reaching a device.

use crate::common::server::{Server, Setup};
use crate::common::{ADMIN_CONFIG, http_request, make_root};

const POLL: &str = "update.php?type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=1.2.3.4";

#[test]
fn the_top_and_the_prefix_lead_to_the_admin_page() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let server = Server::start(&root, &[]);
    let r = server.get("/");
    assert!((300..400).contains(&r.status), "{}", r.status);
    assert_eq!(r.header("location"), Some("/admin/admin.php"));

    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let (server, _) = Server::start_with(&root, Setup::prefix("/up"), |_| {});
    for top in ["/", "/up/"] {
        let r = server.get(top);
        assert!((300..400).contains(&r.status), "{top}: {}", r.status);
        assert_eq!(r.header("location"), Some("/up/admin/admin.php"), "{top}");
    }
}

#[test]
fn health_and_metrics_answer_under_the_prefix() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let (server, _) = Server::start_with(&root, Setup::prefix("/up"), |_| {});
    assert_eq!(server.get(&format!("/up/{POLL}")).status, 200);
    for path in ["/health", "/up/health"] {
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(v["status"], "ok", "{path}");
        assert_eq!(v["checks"]["master"]["reachable"], serde_json::Value::Null);
    }
    let m = server.get("/up/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.text()
            .contains("update_server_http_requests_total{route=\"/up/update.php\",status=\"200\"}"),
        "{}",
        m.text()
    );
}

#[test]
fn metrics_relayed_by_a_proxy_need_the_api_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(dir.path(), ADMIN_CONFIG, &[]);
    let server = Server::start(&root, &[]);
    let relayed = [("X-Forwarded-For", "192.0.2.7")];
    let r = http_request(server.addr(), "GET", "/metrics", &relayed, b"");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(!r.text().contains("update_server_"), "{}", r.text());
    let wrong = [
        ("X-Forwarded-For", "192.0.2.7"),
        ("Authorization", "Bearer wrong"),
    ];
    assert_eq!(
        http_request(server.addr(), "GET", "/metrics", &wrong, b"").status,
        401
    );
    let token = [
        ("X-Forwarded-For", "192.0.2.7"),
        ("Authorization", "bearer api-token-0123456789"),
    ];
    let r = http_request(server.addr(), "GET", "/metrics", &token, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("update_server_build_info"),
        "{}",
        r.text()
    );
}

#[test]
fn metrics_can_be_made_public() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = ADMIN_CONFIG.replace(
        "<api token=\"api-token-0123456789\"/>",
        "<server metrics-public=\"true\"/>",
    );
    let root = make_root(dir.path(), &cfg, &[]);
    let server = Server::start(&root, &[]);
    let relayed = [("X-Forwarded-For", "192.0.2.7")];
    let r = http_request(server.addr(), "GET", "/metrics", &relayed, b"");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn the_shipped_sample_snippet_is_never_sent_to_a_device() {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/README-sample.txt"
    ))
    .expect("sample");
    // every line is a comment: even sent by mistake it would change nothing
    assert!(sample.lines().all(|l| l.is_empty() || l.starts_with('#')));
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = r#"<config><master info=""/><times check="true"/></config>"#;
    let root = make_root(dir.path(), cfg, &[("README-sample.txt", &sample)]);
    let server = Server::start(&root, &[]);
    for target in [
        format!("/{POLL}"),
        "/update.php?type=IP112&sn=00-90-33-30-00-b0".to_string(),
        "/update.php?type=IP811&sn=00-90-33-30-00-c0&phase=README".to_string(),
    ] {
        let r = server.get(&target);
        assert_eq!(r.status, 200, "{target}");
        let text = r.text();
        assert!(!text.contains("README-sample"), "{target}: {text}");
        assert!(!text.contains("sample snippet"), "{target}: {text}");
    }
}

#[tokio::test]
async fn the_admin_pages_warn_of_a_broken_configuration_on_disk() {
    let admin = crate::common::oneshot::Admin::new();
    let s = admin.login().await;
    let page = admin.get("/admin/admin.php?mode=status", &s).await.text();
    assert!(!page.contains("configuration on disk is broken"), "{page}");
    std::fs::write(admin.root.join("config/user-config.xml"), "<config><oops").expect("break");
    let r = admin.get("/admin/admin.php?mode=status", &s).await;
    assert_eq!(r.status, 200, "the last good configuration serves the page");
    assert!(
        r.text()
            .contains("The configuration on disk is broken; the last good configuration"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn the_admin_pages_warn_of_the_default_password() {
    let admin = crate::common::oneshot::Admin::new();
    let s = admin.login().await;
    let page = admin.get("/admin/admin.php?mode=status", &s).await.text();
    assert!(!page.contains("still the default"), "{page}");
    let cfg = ADMIN_CONFIG.replace(
        r#"user="admin" password="secret""#,
        r#"user="admin" password="password""#,
    );
    assert_ne!(cfg, ADMIN_CONFIG);
    std::fs::write(admin.root.join("config/user-config.xml"), cfg).expect("config");
    let page = admin.get("/admin/admin.php?mode=status", &s).await.text();
    assert!(
        page.contains("The admin login is still the default <code>admin</code>"),
        "{page}"
    );
}

#[tokio::test]
async fn a_visitor_is_not_told_that_the_password_is_the_default() {
    let admin = crate::common::oneshot::Admin::new();
    let cfg = ADMIN_CONFIG.replace(
        r#"user="admin" password="secret""#,
        r#"user="admin" password="password""#,
    );
    std::fs::write(admin.root.join("config/user-config.xml"), cfg).expect("config");
    let r = admin
        .call("GET", "/admin/admin.php?mode=status", &[], Vec::new())
        .await;
    assert!(r.text().contains("id=\"user\""), "login form: {}", r.text());
    assert!(!r.text().contains("still the default"), "{}", r.text());
}
