//! Triage over the admin side: the filter language, the server-side order and the API's
//! pages, CSV export, OpenAPI document and DELETE, and the messages after actions — the
//! real router called in-process (`crate::common::oneshot`).

use crate::common::oneshot::{Admin, TOKEN};
use crate::common::*;
use axum::http::StatusCode;

const SN_PENDING: &str = "00-90-33-30-00-d4";

/// The fleet plus a device whose boot code update was sent and not reported yet.
fn fleet() -> Admin {
    let a = Admin::new();
    let xml = device_state(
        SN_PENDING,
        "IP112",
        "Lab Bench",
        "10.1.1.4",
        unix_now() - 5,
        "130160",
    )
    .replace("<state seen=", "<state requested=\"130170bootcode\" seen=")
    .replace("environments=\"default\"", "environments=\"default, lab\"");
    std::fs::write(a.state_path(SN_PENDING), xml).expect("state");
    a
}

fn sns(j: &serde_json::Value) -> Vec<String> {
    j["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            d["sn"]
                .as_str()
                .unwrap_or(d["key"].as_str().unwrap_or("?"))
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn filter_terms_select_by_field_and_state() {
    let a = fleet();
    for (filter, want) in [
        ("is:csr", vec![SN_RECEPTION]),
        ("is:missing", vec![SN_EVIL]),
        ("type:ip2*%20-is:missing", vec![SN_RECEPTION]),
        ("name:reception", vec![SN_RECEPTION]),
        ("name:rec", vec![]),
        ("lab", vec![SN_PENDING]),
        ("name:lab", vec![]),
        ("env:lab", vec![SN_PENDING]),
        ("name:%22lab%20bench%22", vec![SN_PENDING]),
        ("is:fwpending", vec![SN_PENDING]),
        ("ip:192.168.*", vec![SN_GATEWAY]),
    ] {
        let r = a.api(&format!("/api/devices?filter={filter}")).await;
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text());
        let j = r.json();
        assert_eq!(sns(&j), want, "{filter}");
        assert_eq!(j["total"], want.len(), "{filter}");
        assert_eq!(j["files"], 6, "{filter}");
    }
    let r = a.api("/api/devices?filter=is:unreadable&sort=sn").await;
    assert_eq!(sns(&r.json()), ["broken", "foreign"]);
    for (bad, word) in [
        ("colour:red", "colour:"),
        ("is:happy", "is:happy"),
        ("name:", "needs a value"),
    ] {
        let r = a.api(&format!("/api/devices?filter={bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        let e = r.json()["error"].as_str().unwrap_or_default().to_string();
        assert!(e.contains(word), "{bad}: {e}");
    }
}

#[tokio::test]
async fn the_api_sorts_and_pages() {
    let a = fleet();
    let j = a.api("/api/devices?sort=-seen").await.json();
    assert_eq!(
        sns(&j),
        [
            SN_PENDING,
            SN_RECEPTION,
            SN_GATEWAY,
            SN_EVIL,
            "broken",
            "foreign"
        ]
    );
    let j = a
        .api("/api/devices?sort=ip&filter=-is:unreadable")
        .await
        .json();
    assert_eq!(sns(&j), [SN_PENDING, SN_RECEPTION, SN_EVIL, SN_GATEWAY]);
    let j = a
        .api("/api/devices?sort=-seen&limit=2&offset=1")
        .await
        .json();
    assert_eq!(sns(&j), [SN_RECEPTION, SN_GATEWAY]);
    assert_eq!(
        (j["total"].as_u64(), j["count"].as_u64()),
        (Some(6), Some(2))
    );
    assert_eq!(
        j["summary"]["devices"], 4,
        "the summary counts every matching device"
    );
    let with_backup = &j["devices"][0]["backups"];
    assert_eq!(
        with_backup.as_array().map(Vec::len),
        Some(1),
        "{with_backup}"
    );
    let j = a.api("/api/devices?limit=0").await.json();
    assert_eq!(
        (j["total"].as_u64(), j["count"].as_u64()),
        (Some(6), Some(0))
    );
    assert_eq!(a.api("/api/devices").await.json()["limit"], 100);
    for bad in [
        "limit=1001",
        "limit=x",
        "offset=-1",
        "sort=colour",
        "sort=--seen",
    ] {
        let r = a.api(&format!("/api/devices?{bad}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
    }
    assert_eq!(
        a.api("/api/devices?limit=1000").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn csv_export_has_the_matching_devices_in_order() {
    let a = fleet();
    let r = a.api("/api/devices.csv?filter=is:present&sort=-seen").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].starts_with("sn,type,name,realip,ip,"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with(&format!("{SN_PENDING},IP112,Lab Bench,10.1.1.4,")),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(&format!("{SN_RECEPTION},IP232,Reception,")),
        "{}",
        lines[2]
    );
    assert!(lines[3].starts_with(&format!("{SN_GATEWAY},IP811,")));
    let r = a.call("GET", "/api/devices.csv", &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.api("/api/devices.csv?filter=is:x").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_large_list_is_paged_and_exported_in_pieces_without_a_length() {
    let a = Admin::new();
    // more devices than one piece of the export (a thousand rows)
    let n = 2500;
    let sn = |i: usize| format!("00-90-33-40-{:02x}-{:02x}", i / 256, i % 256);
    for i in 0..n {
        let xml = device_state(
            &sn(i),
            "IP232",
            &format!("Desk {i}"),
            "10.2.0.1",
            unix_now() - 5,
            "130160",
        );
        std::fs::write(a.state_path(&sn(i)), xml).expect("state");
    }
    let r = a.api("/api/devices.csv?filter=name:desk*").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    // written while it is sent: its length is not known before
    assert_eq!(r.header("content-length"), None);
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n + 1, "header and every device once");
    assert!(lines[0].starts_with("sn,type,name,"), "{}", lines[0]);
    for (i, l) in lines[1..].iter().enumerate() {
        assert!(
            l.starts_with(&format!("{},IP232,Desk {i},", sn(i))),
            "{i}: {l}"
        );
    }
    // the JSON pages over the same devices: each device once, in order
    let mut seen = Vec::new();
    for offset in (0..n).step_by(1000) {
        let r = a
            .api(&format!(
                "/api/devices?filter=name:desk*&limit=1000&offset={offset}"
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let j = r.json();
        assert_eq!(j["total"], n);
        assert_eq!(j["count"], (n - offset).min(1000));
        assert_eq!(j["summary"]["devices"], n);
        seen.extend(sns(&j));
    }
    assert_eq!(seen, (0..n).map(sn).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_openapi_document_describes_routes_that_answer() {
    let a = fleet();
    let r = a.api("/api/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 4);
    for (path, ops) in paths {
        for method in ops.as_object().expect("ops").keys() {
            let uri = path.replace("{sn}", "00-90-33-99-99-99");
            let r = a
                .call(
                    &method.to_uppercase(),
                    &uri,
                    &[("authorization", TOKEN)],
                    Vec::new(),
                )
                .await;
            assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            let routed = r.status != StatusCode::NOT_FOUND || r.json()["error"].is_string();
            assert!(routed, "{method} {uri} is not routed: {}", r.text());
        }
    }
}

#[tokio::test]
async fn delete_forgets_the_state_but_keeps_backups() {
    let a = fleet();
    let s = a.login().await;
    let uri = format!("/api/devices/{SN_RECEPTION}");
    let r = a
        .call("DELETE", &uri, &[("cookie", &s.cookie)], Vec::new())
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a session needs its CSRF token"
    );
    assert!(a.state_path(SN_RECEPTION).exists());
    let r = a.call("DELETE", &uri, &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = a
        .call(
            "DELETE",
            &uri,
            &[("cookie", &s.cookie), ("x-csrf-token", &s.csrf)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["deleted"], true);
    assert!(!a.state_path(SN_RECEPTION).exists());
    assert!(
        a.root
            .join("backup/IP232-30-00-a1/IP232-30-00-a1.1.txt")
            .exists(),
        "backups stay"
    );
    assert_eq!(a.api(&uri).await.status, StatusCode::NOT_FOUND);
    let j = a.api("/api/devices").await.json();
    assert!(!sns(&j).contains(&SN_RECEPTION.to_string()));
    let r = a
        .call("DELETE", &uri, &[("authorization", TOKEN)], Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = a
        .call(
            "DELETE",
            &format!("/api/devices/{SN_GATEWAY}"),
            &[("authorization", TOKEN)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(!a.state_path(SN_GATEWAY).exists());
}

#[tokio::test]
async fn the_page_shows_filter_errors_and_messages() {
    let a = fleet();
    let s = a.login().await;
    let r = a
        .get("/admin/admin.php?mode=status&filter=colour:red", &s)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let t = r.text();
    assert!(
        t.contains("unknown filter field &#39;colour:&#39;")
            || t.contains("unknown filter field 'colour:'"),
        "{t}"
    );
    assert!(
        !t.contains(&format!("id=\"d-{SN_RECEPTION}\"")),
        "no rows for a broken filter"
    );
    let r = a
        .get(
            &format!("/admin/admin.php?mode=status&msg=status-deleted&msgsn={SN_GATEWAY}"),
            &s,
        )
        .await;
    assert!(
        r.text()
            .contains(&format!("Status of {SN_GATEWAY} deleted.")),
        "{}",
        r.text()
    );
    let r = a
        .get("/admin/admin.php?mode=status&msg=%3Cb%3Eowned", &s)
        .await;
    assert!(!r.text().contains("owned"));
    // the flash cookie of the certificate upload: shown once, then cleared
    let cookie = format!(
        "{}; update_server_flash=cert-uploaded:{SN_RECEPTION}",
        s.cookie
    );
    let r = a
        .call(
            "GET",
            "/admin/admin.php?mode=status",
            &[("cookie", &cookie)],
            Vec::new(),
        )
        .await;
    assert!(
        r.text()
            .contains(&format!("Signed certificate of {SN_RECEPTION} stored."))
    );
    let cleared = r
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("update_server_flash=;") && c.contains("Max-Age=0"));
    assert!(cleared);
}

#[tokio::test]
async fn rows_follow_filter_and_sort_and_actions_return_to_the_view() {
    let a = fleet();
    let s = a.login().await;
    let r = a
        .get(
            "/admin/admin.php?mode=ui&cmd=rows&filter=-is:unreadable&sort=-seen&rows=2",
            &s,
        )
        .await;
    let j = r.json();
    assert_eq!(j["matched"], 4, "{j}");
    let rows = j["rows"].as_str().unwrap_or_default();
    let first = rows.find(SN_PENDING).expect("newest first");
    let second = rows.find(SN_RECEPTION).expect("then reception");
    assert!(
        first < second && !rows.contains(&format!("id=\"d-{SN_GATEWAY}\"")),
        "{rows}"
    );
    let r = a
        .get(
            &format!("/admin/admin.php?mode=ui&cmd=rows&filter=-is:unreadable&sort=-seen&rows=2&after={SN_RECEPTION}"),
            &s,
        )
        .await;
    let rows = r.json()["rows"].as_str().unwrap_or_default().to_string();
    assert!(
        rows.contains(&format!("id=\"d-{SN_GATEWAY}\""))
            && rows.contains(&format!("id=\"d-{SN_EVIL}\""))
    );
    assert!(!rows.contains(&format!("id=\"d-{SN_RECEPTION}\"")));
    let r = a
        .get("/admin/admin.php?mode=ui&cmd=rows&filter=is:nothing", &s)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.json()["error"]
            .as_str()
            .is_some_and(|e| e.contains("is:nothing"))
    );
    // an action from a form without script goes back to the same view with a message
    let form = format!(
        "sn={SN_GATEWAY}&csrf={}&back=1&filter=type%3Aip8*&sort=-seen",
        s.csrf
    );
    let r = a
        .call(
            "POST",
            "/admin/admin.php?mode=ui&cmd=delstatus",
            &[
                ("cookie", &s.cookie),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            form.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text());
    assert_eq!(
        r.header("location"),
        Some(format!("/admin/admin.php?mode=status&filter=type%3Aip8%2A&sort=-seen&msg=status-deleted&msgsn={SN_GATEWAY}").as_str())
    );
    assert!(!a.state_path(SN_GATEWAY).exists());
}
