//! Handler tests of the admin pages, the `mode=ui` endpoints, the JSON API and the
//! certificate upload: the real router, called in-process with the connection facts a
//! listener would attach (plain or TLS).

use crate::common::oneshot::{Admin as Harness, Answer, Session};
use crate::common::*;
use axum::http::StatusCode;
use std::path::Path;

fn exists(p: &Path) -> bool {
    p.exists()
}

#[tokio::test]
async fn nothing_is_shown_or_done_without_a_session() {
    let h = Harness::new();
    for uri in [
        "/admin/admin.php",
        "/admin/admin.php?mode=status",
        "/admin/admin.php?mode=show",
        "/admin/admin.php?show=1",
        "/admin/admin.php?mode=info&devname=x",
        "/admin/",
        "/admin",
    ] {
        let r = h.get(uri, None).await;
        assert_eq!(r.status, StatusCode::OK, "{uri}");
        let t = r.text();
        assert!(t.contains("id=\"login\""), "{uri}: login form expected");
        assert!(!t.contains(SN_RECEPTION), "{uri} shows device data");
        assert!(!t.contains("Test CA"), "{uri} shows configuration");
        assert!(!t.contains("update.php?env="), "{uri} shows the info page");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    for cmd in [
        format!("delstatus&sn={SN_RECEPTION}"),
        format!("touchstatus&sn={SN_EVIL}"),
        format!("updatestatus&sn={SN_RECEPTION}"),
        format!("updaterows&sn={SN_RECEPTION}"),
        format!("delfile&sn={SN_RECEPTION}&file=certs/{SN_RECEPTION}-request.p10.der"),
        format!("deliverfile&fn=certs/{SN_RECEPTION}-request.p10.der"),
    ] {
        let uri = format!("/admin/admin.php?mode=ui&cmd={cmd}");
        let r = h.get(&uri, None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{uri}");
        assert!(!r.text().contains("<tr"), "{uri}");
        let r = h.post_form(&uri, None, "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {uri}");
    }
    assert!(exists(&h.state_path(SN_RECEPTION)));
    assert!(exists(
        &h.root.join(format!("certs/{SN_RECEPTION}-request.p10.der"))
    ));
    for uri in ["/api/devices", &format!("/api/devices/{SN_RECEPTION}")] {
        let r = h.get(uri, None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(r.header("www-authenticate").is_some());
        assert!(!r.text().contains(SN_RECEPTION));
    }
}

#[tokio::test]
async fn login_sets_a_hardened_session_cookie_and_logout_ends_it() {
    let h = Harness::new();
    let bad = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=admin&password=wrong",
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    assert!(bad.header("set-cookie").is_none());
    assert!(bad.text().contains("Wrong user or password"));
    let peer: std::net::IpAddr = "192.0.2.10".parse().expect("ip");
    assert_eq!(h.app.admin.throttle.failures(peer), 1);
    let bad = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=Admin&password=secret",
        )
        .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN, "user name counts too");
    assert_eq!(h.app.admin.throttle.failures(peer), 2);

    let r = h
        .post_form(
            "/admin/admin.php?mode=show",
            None,
            "action=login&user=admin&password=secret",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.header("location"), Some("/admin/admin.php?mode=show"));
    let cookie = r.header("set-cookie").expect("cookie");
    assert!(cookie.starts_with("update_server_session="), "{cookie}");
    assert!(cookie.contains("; HttpOnly"), "{cookie}");
    assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
    assert!(cookie.contains("; Path=/"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert_eq!(h.app.admin.throttle.failures(peer), 0, "success resets");

    // over TLS the cookie is Secure
    let r = h
        .call_on(
            "POST",
            "/admin/admin.php",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"action=login&user=admin&password=secret".to_vec(),
            true,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("; Secure")),
        "{:?}",
        r.header("set-cookie")
    );

    let login = h.login().await;
    assert!(
        h.get("/admin/admin.php", Some(&login))
            .await
            .text()
            .contains(SN_RECEPTION)
    );
    // logout needs the CSRF token
    let r = h
        .post_form("/admin/admin.php", Some(&login), "action=logout&csrf=nope")
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        h.get("/admin/admin.php", Some(&login))
            .await
            .text()
            .contains(SN_RECEPTION)
    );
    let r = h
        .post_form(
            "/admin/admin.php",
            Some(&login),
            &format!("action=logout&csrf={}", login.csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = h.get("/admin/admin.php", Some(&login)).await.text();
    assert!(!after.contains(SN_RECEPTION), "session must be gone");
    assert!(after.contains("id=\"login\""));
}

#[tokio::test]
async fn a_password_hash_replaces_the_password() {
    let hash = update_server::admin::session::hash_password("h4sh-pw").expect("hash");
    let cfg = ADMIN_CONFIG.replace(
        r#"password="secret""#,
        &format!(r#"password="secret" passwordhash="{hash}""#),
    );
    let h = Harness::with_config(&cfg, "");
    let r = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=admin&password=secret",
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the plain password is ignored"
    );
    let r = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=admin&password=h4sh-pw",
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn plain_http_is_redirected_to_https_unless_nohttps() {
    let h = Harness::new();
    h.app.admin.set_https_port(8443);
    let r = h.get("/admin/admin.php?mode=show", None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location"),
        Some("https://admin.test:8443/admin/admin.php?mode=show")
    );
    let r = h
        .post_form(
            "/admin/admin.php",
            None,
            "action=login&user=admin&password=secret",
        )
        .await;
    assert_eq!(r.status, StatusCode::TEMPORARY_REDIRECT);
    assert!(r.header("set-cookie").is_none());
    // over TLS: no redirect
    let r = h
        .call_on("GET", "/admin/admin.php", &[], Vec::new(), true)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // PHP's escape
    let r = h.get("/admin/admin.php?nohttps", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let c = r.header("set-cookie").expect("nohttps cookie");
    assert!(c.starts_with("update_server_nohttps=1"), "{c}");
    let r = h
        .call_on(
            "GET",
            "/admin/admin.php?mode=show",
            &[("cookie", "update_server_nohttps=1")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // no login configured: no redirect (as PHP)
    let open = Harness::with_config(
        &ADMIN_CONFIG.replace(
            r#"user="admin" password="secret""#,
            r#"user="" password="""#,
        ),
        "",
    );
    open.app.admin.set_https_port(8443);
    let r = open.get("/admin/admin.php", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("any login is accepted"));
}

#[tokio::test]
async fn the_status_page_shows_every_device_safely() {
    let h = Harness::new();
    let login = h.login().await;
    let r = h.get("/admin/admin.php", Some(&login)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        r.header("content-security-policy")
            .is_some_and(|c| c.contains("script-src 'self'"))
    );
    let t = r.text();
    for sn in [SN_RECEPTION, SN_EVIL, SN_GATEWAY] {
        assert!(t.contains(&format!("id=\"d-{sn}\"")), "{sn} row");
    }
    assert!(!t.contains("<script>alert"), "name must be escaped");
    assert!(t.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&#39;"));
    assert!(t.contains(&format!("id=\"d-{SN_EVIL}\" class=\"dev missing\"")));
    assert!(t.contains(&format!("id=\"d-{SN_RECEPTION}\" class=\"dev\"")));
    assert!(t.contains("cannot read state file broken.xml"));
    assert!(t.contains("foreign.xml is not a device state (root element &lt;html&gt;)"));
    assert!(t.contains("invalid XPath expression"), "broken show column");
    assert!(t.contains("<th class=\"qg\" colspan=\"2\">Admin</th>"));
    assert!(t.contains("CSR waiting for signature"));
    assert!(t.contains(&format!("name=\"cert-{SN_RECEPTION}\"")));
    assert!(
        t.contains("<summary title=\"2 entries, 1 poll\">Log (2)</summary>"),
        "message log"
    );
    assert!(!t.contains("log line of"), "log content comes when opened");
    assert!(t.contains("<b>3</b> devices"), "summary");
    assert!(t.contains("<b class=\"err\">2</b> unreadable state files"));
    assert!(t.contains(
        "<tr class=\"master\"><th><a class=\"fl\" href=\"?mode=status&amp;filter=fw%3A130160\" data-filter=\"fw:130160\""
    ));
    assert!(t.contains("<b>2</b> on the master's firmware 130160"));
    assert!(
        t.contains("href=\"https://172.16.1.21/\""),
        "usehttpsdevlinks default"
    );
    assert!(t.contains("/web/update-server.js"));
    // the default mode and the aliases show the same
    let alias = h.get("/admin/", Some(&login)).await.text();
    assert!(alias.contains(&format!("id=\"d-{SN_GATEWAY}\"")));
}

#[tokio::test]
async fn the_filter_is_applied_on_the_server_too() {
    let h = Harness::new();
    let login = h.login().await;
    for case in FILTERS {
        let query = case.query;
        let t = h
            .get(&format!("/admin/admin.php?{query}"), Some(&login))
            .await
            .text();
        for sn in case.shown {
            assert!(t.contains(&format!("id=\"d-{sn}\"")), "{query}: {sn} shown");
        }
        for sn in case.hidden {
            assert!(
                !t.contains(&format!("id=\"d-{sn}\"")),
                "{query}: {sn} left out"
            );
        }
        if let Some(count) = case.count {
            assert!(t.contains(count), "{query}: {count}");
        }
    }
}

/// A filter of the status page and what the page shows with it.
struct FilterCase {
    query: &'static str,
    shown: &'static [&'static str],
    hidden: &'static [&'static str],
    count: Option<&'static str>,
}

const FILTERS: [FilterCase; 4] = [
    FilterCase {
        query: "mode=status&filter=IP232",
        shown: &[SN_RECEPTION],
        hidden: &[SN_EVIL],
        count: Some("1 of 5 devices match"),
    },
    FilterCase {
        query: "filter=missing+ip222",
        shown: &[SN_EVIL],
        hidden: &[SN_RECEPTION],
        count: None,
    },
    // whole words of the ip
    FilterCase {
        query: "filter=172.16",
        shown: &[],
        hidden: &[],
        count: Some("2 of 5 devices match"),
    },
    // 17 is no whole word
    FilterCase {
        query: "filter=17",
        shown: &[],
        hidden: &[],
        count: Some("0 of 5 devices match"),
    },
];

#[tokio::test]
async fn the_page_shows_a_window_of_rows_and_fetches_more() {
    let h = Harness::new();
    let login = h.login().await;
    let t = h.get("/admin/admin.php?rows=2", Some(&login)).await.text();
    assert!(t.contains(&format!("id=\"d-{SN_RECEPTION}\"")));
    assert!(t.contains(&format!("id=\"d-{SN_EVIL}\"")));
    assert!(!t.contains(&format!("id=\"d-{SN_GATEWAY}\"")));
    assert!(
        t.contains(&format!("data-after=\"{SN_EVIL}\">Show 3 more</a>")),
        "{t}"
    );
    assert!(t.contains("href=\"/admin/admin.php?mode=status&amp;filter=&amp;rows=252\""));
    assert!(
        t.contains("<b>3</b> devices"),
        "the summary counts all devices"
    );
    let j = h
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=rows&after={SN_EVIL}&rows=2"),
            Some(&login),
        )
        .await
        .json();
    let rows = j["rows"].as_str().expect("rows");
    assert!(
        rows.starts_with(&format!("<tr id=\"d-{SN_GATEWAY}\"")),
        "{rows}"
    );
    assert!(rows.contains("id=\"d-broken\""));
    assert!(!rows.contains("id=\"d-foreign\""));
    assert!(rows.contains("data-after=\"broken\">Show 1 more</a>"));
    assert_eq!(j["total"], 5);
    let j = h
        .get(
            "/admin/admin.php?mode=ui&cmd=rows&filter=ip811",
            Some(&login),
        )
        .await
        .json();
    let rows = j["rows"].as_str().expect("rows");
    assert!(rows.contains(&format!("id=\"d-{SN_GATEWAY}\"")));
    assert!(!rows.contains(&format!("id=\"d-{SN_RECEPTION}\"")));
    assert!(!rows.contains("class=\"more\""));
    assert_eq!(j["count"], "1 of 5 devices match");
    assert!(
        j["summary"]
            .as_str()
            .is_some_and(|s| s.contains("<b>1</b> device"))
    );
    let r = h.get("/admin/admin.php?mode=ui&cmd=rows", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn state_changes_need_the_csrf_token() {
    let h = Harness::new();
    let login = h.login().await;
    let path = h.state_path(SN_RECEPTION);
    for (how, uri, form) in [
        (
            "no token",
            format!("/admin/admin.php?mode=ui&cmd=delstatus&sn={SN_RECEPTION}"),
            String::new(),
        ),
        (
            "wrong token",
            "/admin/admin.php?mode=ui&cmd=delstatus".to_string(),
            format!("sn={SN_RECEPTION}&csrf=0000"),
        ),
    ] {
        let r = h.post_form(&uri, Some(&login), &form).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{how}");
        let r = h.get(&format!("{uri}&{form}"), Some(&login)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "GET {how}");
        assert!(exists(&path), "{how}: deleted anyway");
    }
    // a token from another session does not count
    let other = h.login().await;
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=delstatus",
            Some(&login),
            &format!("sn={SN_RECEPTION}&csrf={}", other.csrf),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(exists(&path));
    // the header form is what the page's script sends
    let r = h
        .call_on(
            "POST",
            "/admin/admin.php?mode=ui&cmd=delstatus",
            &[
                ("cookie", &login.cookie),
                ("x-csrf-token", &login.csrf),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            format!("sn={SN_RECEPTION}").into_bytes(),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), serde_json::json!(true));
    assert!(!exists(&path));
    // deleting again: false
    let r = h
        .get(
            &format!(
                "/admin/admin.php?mode=ui&cmd=delstatus&sn={SN_RECEPTION}&csrf={}",
                login.csrf
            ),
            Some(&login),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(false));
}

#[tokio::test]
async fn touch_marks_a_missing_device_as_seen() {
    let h = Harness::new();
    let login = h.login().await;
    let before = std::fs::read_to_string(h.state_path(SN_EVIL)).expect("state");
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=touchstatus",
            Some(&login),
            &format!("sn={SN_EVIL}&csrf={}", login.csrf),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(true));
    let after = std::fs::read_to_string(h.state_path(SN_EVIL)).expect("state");
    assert_ne!(before, after);
    let row = h
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=updatestatus&sn={SN_EVIL}"),
            Some(&login),
        )
        .await;
    let html = row.json();
    let html = html.as_str().expect("row HTML as a JSON string");
    assert!(
        html.starts_with(&format!("<tr id=\"d-{SN_EVIL}\" class=\"dev\"")),
        "{html}"
    );
    assert!(
        after.contains(&format!("log line of {SN_EVIL}")),
        "rest kept"
    );
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=touchstatus",
            Some(&login),
            &format!("sn=00-90-33-99-99-99&csrf={}", login.csrf),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(false));
    assert!(!exists(&h.state_path("00-90-33-99-99-99")));
}

#[tokio::test]
async fn ui_commands_refuse_path_escapes() {
    let h = Harness::new();
    let login = h.login().await;
    std::fs::write(h.root.join("secret.txt"), "top secret").expect("secret");
    for sn in ["../secret", "..", "a/b", "a%5Cb", "x%00y", "%0d%0a"] {
        for cmd in ["delstatus", "touchstatus", "updatestatus", "rowpart"] {
            let r = h
                .get(
                    &format!(
                        "/admin/admin.php?mode=ui&cmd={cmd}&sn={sn}&csrf={}",
                        login.csrf
                    ),
                    Some(&login),
                )
                .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{cmd} {sn}");
        }
    }
    for file in [
        "../secret.txt",
        "certs/../secret.txt",
        "status/00-90-33-30-00-a1.xml",
        "certs/00-90-33-30-00-b2-request.p10.der",
        "/etc/passwd",
        "config/user-config.xml",
    ] {
        let r = h
            .post_form(
                "/admin/admin.php?mode=ui&cmd=delfile",
                Some(&login),
                &format!("sn={SN_RECEPTION}&file={file}&csrf={}", login.csrf),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "delfile {file}");
    }
    assert!(exists(&h.root.join("secret.txt")));
    assert!(exists(&h.state_path(SN_RECEPTION)));
    assert!(exists(&h.root.join("config/user-config.xml")));
    for f in [
        "../secret.txt",
        "status/../secret.txt",
        "status/..%2Fsecret.txt",
        "%2Fetc%2Fpasswd",
        "config/user-config.xml",
        "secret.txt",
        "cache/master-info.xml",
        "status",
        "status/nope.xml",
        "status/a%00.xml",
    ] {
        let r = h
            .get(
                &format!("/admin/admin.php?mode=ui&cmd=deliverfile&fn={f}"),
                Some(&login),
            )
            .await;
        assert!(
            r.status == StatusCode::NOT_FOUND || r.status == StatusCode::BAD_REQUEST,
            "deliverfile {f}: {}",
            r.status
        );
        assert!(!r.text().contains("top secret"));
        assert!(!r.text().contains("<config>"));
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(h.root.join("secret.txt"), h.root.join("status/link.xml"))
            .expect("symlink");
        let r = h
            .get(
                "/admin/admin.php?mode=ui&cmd=deliverfile&fn=status/link.xml",
                Some(&login),
            )
            .await;
        assert!(!r.text().contains("top secret"), "symlink followed");
    }
}

#[tokio::test]
async fn files_are_delivered_and_deleted() {
    let h = Harness::new();
    let login = h.login().await;
    let der = format!("certs/{SN_RECEPTION}-request.p10.der");
    let r = h
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=deliverfile&fn={der}"),
            Some(&login),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, CSR_DER);
    assert_eq!(
        r.header("content-disposition"),
        Some(format!("attachment; filename=\"{SN_RECEPTION}-request.p10.der\"").as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    for f in [
        format!("status/{SN_GATEWAY}.xml"),
        "scripts/update-all-default.txt".to_string(),
        "backup/IP232-30-00-a1/IP232-30-00-a1.1.txt".to_string(),
    ] {
        let r = h
            .get(
                &format!("/admin/admin.php?mode=ui&cmd=deliverfile&fn={f}"),
                Some(&login),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{f}");
        assert_eq!(r.body, std::fs::read(h.root.join(&f)).expect("file"), "{f}");
    }
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=delfile",
            Some(&login),
            &format!("sn={SN_RECEPTION}&file={der}&csrf={}", login.csrf),
        )
        .await;
    assert_eq!(r.json(), serde_json::json!(true));
    assert!(!exists(&h.root.join(&der)));
}

#[tokio::test]
async fn row_parts_are_loaded_when_opened() {
    let h = Harness::new();
    let login = h.login().await;
    let part = |p: &str| format!("/admin/admin.php?mode=ui&cmd=rowpart&sn={SN_RECEPTION}&part={p}");
    let log = h.get(&part("log"), Some(&login)).await;
    assert_eq!(log.status, StatusCode::OK);
    let log = log.json();
    let log = log.as_str().expect("HTML");
    assert!(
        log.contains(&format!("<li>log line of {SN_RECEPTION}</li>")),
        "{log}"
    );
    // newest first (the last line of the poll first), the dates on the device's page
    let (last, first) = (
        log.find("log line of").expect("last line"),
        log.find("phase: update").expect("first line"),
    );
    assert!(last < first, "{log}");
    assert!(log.contains("mode=device&amp;sn="), "{log}");
    let scripts = h.get(&part("scripts"), Some(&login)).await.json();
    assert!(
        scripts
            .as_str()
            .is_some_and(|s| s.contains("fn=scripts%2Fupdate-all-default.txt"))
    );
    let backups = h.get(&part("backups"), Some(&login)).await.json();
    assert!(
        backups
            .as_str()
            .is_some_and(|s| s.contains("fn=backup%2FIP232-30-00-a1%2FIP232-30-00-a1.1.txt"))
    );
    let r = h.get(&part("secrets"), Some(&login)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h
        .get(
            "/admin/admin.php?mode=ui&cmd=rowpart&sn=00-90-33-99-99-99&part=log",
            Some(&login),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get(&part("log"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rows_refresh_one_by_one_and_in_bulk() {
    let h = Harness::new();
    let login = h.login().await;
    let r = h
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=updatestatus&sn={SN_GATEWAY}"),
            Some(&login),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    let r = h
        .get(
            "/admin/admin.php?mode=ui&cmd=updatestatus&sn=00-90-33-99-99-99",
            Some(&login),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=updaterows",
            Some(&login),
            &format!(
                "sn={SN_GATEWAY},00-90-33-99-99-99,../x,{SN_EVIL}&csrf={}",
                login.csrf
            ),
        )
        .await;
    let j = r.json();
    assert!(
        j[SN_GATEWAY]
            .as_str()
            .is_some_and(|s| s.contains("Gateway"))
    );
    assert!(j[SN_EVIL].as_str().is_some_and(|s| !s.contains("<script>")));
    assert_eq!(j["00-90-33-99-99-99"], serde_json::Value::Null);
    assert!(j.get("../x").is_none());
    let r = h
        .post_form(
            "/admin/admin.php?mode=ui&cmd=updaterows",
            Some(&login),
            &format!("sn={SN_GATEWAY}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "POST without CSRF token");
    for query in ["mode=ui&cmd=frobnicate", "mode=ui", "mode=frobnicate"] {
        let r = h
            .get(&format!("/admin/admin.php?{query}"), Some(&login))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}");
    }
}

fn multipart(fields: &[Field<'_>]) -> (String, Vec<u8>) {
    let boundary = "----update-server-test-boundary";
    let mut body = Vec::new();
    for (name, filename, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A form field of [`multipart`]: name, file name (a file) or none, content.
type Field<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// Posts the multipart form of `fields` to `uri` in `session` (its cookie) or without one.
async fn post_multipart(
    h: &Harness,
    uri: &str,
    session: Option<&Session>,
    fields: &[Field<'_>],
) -> Answer {
    let (ct, body) = multipart(fields);
    let mut headers = vec![("content-type", ct.as_str())];
    if let Some(s) = session {
        headers.push(("cookie", s.cookie.as_str()));
    }
    h.call_on("POST", uri, &headers, body, false).await
}

/// The certificate upload of the status page in `session`: its CSRF token and `pem` as the
/// file of the form field `field`.
async fn upload_certificate(
    h: &Harness,
    uri: &str,
    session: &Session,
    field: &str,
    pem: &[u8],
) -> Answer {
    let fields: [Field<'_>; 2] = [
        ("csrf", None, session.csrf.as_bytes()),
        (field, Some("c.pem"), pem),
    ];
    post_multipart(h, uri, Some(session), &fields).await
}

#[tokio::test]
async fn upload_keeps_phps_answers_then_needs_session_and_csrf() {
    let h = Harness::new();
    // PHP's argument checks come first (recorded conformance case)
    let r = h
        .get(&format!("/update.php?mode=upload&sn={SN_RECEPTION}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.text(),
        "# need 'file' arg for mode=upload, use ?file=filename - exit\r\n"
    );
    let r = h.get("/update.php?mode=upload", None).await;
    assert_eq!(
        r.text(),
        "# need 'sn' arg for mode=upload, use ?sn=#m - exit\r\n"
    );
    let signed = format!("certs/{SN_RECEPTION}-signedrequest.cer");
    let target = h.root.join(&signed);
    let uri = format!(
        "/update.php?mode=upload&sn={SN_RECEPTION}&file=certs%2F{SN_RECEPTION}-signedrequest.cer&proceed=admin%2Fadmin.php%3Fmode%3Dstatus"
    );
    let pem = test_certificate_pem(&format!("IP232-{}", &SN_RECEPTION[9..]));
    let field = format!("cert-{SN_RECEPTION}");
    let file: Field<'_> = (&field, Some("c.pem"), pem.as_bytes());
    // no session
    let r = post_multipart(&h, &uri, None, &[file]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(!exists(&target));
    let login = h.login().await;
    // session but no / a wrong CSRF token
    let bad: Field<'_> = ("csrf", None, b"bad");
    for (how, fields) in [("no token", &[file][..]), ("wrong token", &[file, bad][..])] {
        let r = post_multipart(&h, &uri, Some(&login), fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{how}");
        assert!(!exists(&target));
    }
    // any other target file is refused
    for other in [
        "..%2Fx.cer",
        "certs%2F..%2Fconfig%2Fuser-config.xml",
        "certs%2F00-90-33-30-00-b2-signedrequest.cer",
        "status%2F00-90-33-30-00-a1.xml",
        "x.php",
    ] {
        let u = format!("/update.php?mode=upload&sn={SN_RECEPTION}&file={other}");
        let r = upload_certificate(&h, &u, &login, &field, pem.as_bytes()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{other}");
    }
    assert!(!exists(&h.root.join("x.cer")));
    // an open redirect and something that is not a certificate are refused before anything
    // is written
    let evil = format!(
        "/update.php?mode=upload&sn={SN_RECEPTION}&file=certs%2F{SN_RECEPTION}-signedrequest.cer&proceed=https%3A%2F%2Fevil.example%2F"
    );
    for (how, u, content) in [
        ("open redirect", &evil, pem.as_bytes()),
        ("not a certificate", &uri, &b"hello"[..]),
    ] {
        let r = upload_certificate(&h, u, &login, &field, content).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{how}");
        assert!(!exists(&target), "{how}");
    }
    // the real thing
    let r = upload_certificate(&h, &uri, &login, &field, pem.as_bytes()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/admin.php?mode=status#d-{SN_RECEPTION}").as_str())
    );
    assert_eq!(std::fs::read_to_string(&target).expect("stored"), pem);
    // the row now says so
    let row = h
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=updatestatus&sn={SN_RECEPTION}"),
            Some(&login),
        )
        .await
        .json();
    let row = row.as_str().expect("row");
    assert!(
        row.contains("signed certificate waiting for the device"),
        "{row}"
    );
    assert!(!row.contains("type=\"file\""), "no upload form any more");
}

#[tokio::test]
async fn show_and_info_pages() {
    let h = Harness::new();
    let login = h.login().await;
    let t = h
        .get("/admin/admin.php?mode=show", Some(&login))
        .await
        .text();
    assert!(t.contains("<h2>customcerts</h2>"));
    assert!(t.contains("Test CA"));
    assert!(t.contains("scripts/update-all-default.txt"));
    assert!(!t.contains("secret"), "password shown");
    assert!(!t.contains("api-token-0123456789"), "token shown");
    let t = h.get("/admin/admin.php?show", Some(&login)).await.text();
    assert!(t.contains("<h2>customcerts</h2>"), "old switch");
    let t = h
        .get(
            "/admin/admin.php?mode=info&env=default&devname=Nico%20%3Cb%3E",
            Some(&login),
        )
        .await
        .text();
    assert!(t.contains("http://admin.test:8080/update.php?env=default"));
    assert!(t.contains("/name Nico+%3Cb%3E"));
    assert!(t.contains("as Nico &lt;b&gt;"));
    assert!(t.contains("com.innovaphone.commands://"));
}

#[tokio::test]
async fn the_api_answers_with_a_session_or_the_token() {
    let h = Harness::new();
    let r = h
        .call_on(
            "GET",
            "/api/devices",
            &[("authorization", "Bearer api-token-0123456789")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["total"], 5);
    assert_eq!(j["summary"]["devices"], 3);
    assert_eq!(j["summary"]["missing"], 1);
    assert_eq!(j["summary"]["csr_waiting"], 1);
    let evil = j["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["sn"] == SN_EVIL)
        .expect("evil device");
    assert_eq!(evil["name"], EVIL_NAME);
    assert_eq!(evil["missing"], true);
    assert_eq!(evil["queries"]["admin"]["values"]["Name"], EVIL_NAME);
    let r = h
        .call_on(
            "GET",
            "/api/devices",
            &[("authorization", "Bearer wrong")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let login = h.login().await;
    let r = h
        .get(&format!("/api/devices/{SN_RECEPTION}"), Some(&login))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let j = r.json();
    assert_eq!(j["type"], "IP232");
    assert_eq!(j["msgs"][2]["text"], format!("log line of {SN_RECEPTION}"));
    assert_eq!(
        j["certificate_files"]["csr_der"],
        format!("certs/{SN_RECEPTION}-request.p10.der")
    );
    let r = h.get("/api/devices/00-90-33-99-99-99", Some(&login)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = h.get("/api/devices/..%2Fx", Some(&login)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = h.get("/api/devices?filter=ip811", Some(&login)).await;
    assert_eq!(r.json()["count"], 1);
}

#[tokio::test]
async fn our_assets_win_over_an_old_php_web_directory_and_the_prefix_is_kept() {
    let h = Harness::with_config(ADMIN_CONFIG, "/mtls/update");
    std::fs::create_dir_all(h.root.join("web")).expect("mkdir");
    std::fs::write(h.root.join("web/update-server.css"), "PHP's").expect("write");
    std::fs::write(h.root.join("web/style.css"), "body{}").expect("write");
    let r = h.get("/mtls/update/web/update-server.css", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains("update-server admin pages"));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    let r = h.get("/mtls/update/web/update-server.js", None).await;
    assert!(r.text().contains("data-act"));
    let r = h.get("/mtls/update/web/style.css", None).await;
    assert_eq!(r.text(), "body{}", "other files still come from web/");
    let r = h
        .post_form(
            "/mtls/update/admin/admin.php",
            None,
            "action=login&user=admin&password=secret",
        )
        .await;
    assert_eq!(r.header("location"), Some("/mtls/update/admin/admin.php"));
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("Path=/mtls/update;"))
    );
}

#[tokio::test]
async fn an_upload_must_carry_the_key_of_the_devices_csr() {
    let h = Harness::new();
    let login = h.login().await;
    let device_key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["IP232-30-00-a1".to_string()]).expect("params");
    let csr = params.serialize_request(&device_key).expect("csr");
    std::fs::write(
        h.root.join(format!("certs/{SN_RECEPTION}-request.p10.der")),
        csr.der(),
    )
    .expect("csr file");
    let target = h
        .root
        .join(format!("certs/{SN_RECEPTION}-signedrequest.cer"));
    let uri = format!(
        "/update.php?mode=upload&sn={SN_RECEPTION}&file=certs%2F{SN_RECEPTION}-signedrequest.cer&proceed=admin%2Fadmin.php"
    );
    let field = format!("cert-{SN_RECEPTION}");
    let other = test_certificate_pem("IP232-30-00-a1");
    let r = upload_certificate(&h, &uri, &login, &field, other.as_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.text().contains("does not fit this device"),
        "{}",
        r.text()
    );
    assert!(!exists(&target));
    let right = params.self_signed(&device_key).expect("cert").pem();
    let r = upload_certificate(&h, &uri, &login, &field, right.as_bytes()).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/admin.php#d-{SN_RECEPTION}").as_str())
    );
    assert_eq!(std::fs::read_to_string(&target).expect("stored"), right);
}

#[tokio::test]
async fn a_login_burst_is_answered_at_once_with_429_and_bad_tokens_do_not_lock_the_login() {
    let h = Harness::new();
    for _ in 0..10 {
        let r = h
            .call_on(
                "GET",
                "/api/devices",
                &[("authorization", "bearer wrong")],
                Vec::new(),
                false,
            )
            .await;
        assert!(matches!(r.status.as_u16(), 401 | 429), "{}", r.status);
    }
    let r = h
        .call_on(
            "GET",
            "/api/devices",
            &[("authorization", "Bearer wrong")],
            Vec::new(),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "API throttled");
    // the API failures did not count against the login
    h.login().await;
    let mut throttled = None;
    for _ in 0..10 {
        let r = h
            .post_form(
                "/admin/admin.php",
                None,
                "action=login&user=admin&password=wrong",
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            throttled = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = throttled.expect("a burst of wrong passwords is throttled");
    let secs: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=15).contains(&secs), "{secs}");
    assert!(r.text().contains("try again in"), "{}", r.text());
}

#[tokio::test]
async fn a_waiting_csr_shows_its_subject_and_key_fingerprint() {
    use rcgen::PublicKeyData;
    use sha2::Digest;
    let h = Harness::new();
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "IP232-30-00-a1");
    let csr = params.serialize_request(&key).expect("csr").der().to_vec();
    let der = h.root.join(format!("certs/{SN_RECEPTION}-request.p10.der"));
    std::fs::write(&der, &csr).expect("write CSR");
    let _ = std::fs::remove_file(
        h.root
            .join(format!("certs/{SN_RECEPTION}-signedrequest.cer")),
    );
    let login = h.login().await;
    let page = h.get("/admin/admin.php?mode=status", Some(&login)).await;
    let fingerprint: Vec<String> = sha2::Sha256::digest(key.subject_public_key_info())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    let text = page.text();
    assert!(text.contains("CN=IP232-30-00-a1"), "{text}");
    assert!(text.contains(&fingerprint.join(":")), "{text}");
}
