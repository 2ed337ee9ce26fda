//! The history of a device's build changes (`<status buildhistory="true"/>`): a poll that
//! reports another firmware or boot build records the change (old → new, when); the device
//! page shows it newest first with absolute dates, the single-device API answer has it
//! (`build_history`), and it goes with the device's state. Without the setting a poll
//! writes no file of its own.

use crate::common::oneshot::Admin as Harness;
use crate::common::*;
use axum::http::StatusCode;

async fn poll(h: &Harness, prot: &str, boot: &str) {
    let uri = format!(
        "/update.php?polling=5&phase=update&hwid=IP232-30-00-a1&ip=172.16.1.21\
         &sn={SN_RECEPTION}&type=IP232&PROT={prot}&BOOT={boot}"
    );
    let r = h.call("GET", &uri, &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[tokio::test]
async fn build_changes_are_recorded_shown_and_forgotten_with_the_device() {
    let config = ADMIN_CONFIG.replace(r#"refresh="2"/>"#, r#"refresh="2" buildhistory="true"/>"#);
    let h = Harness::with_config(&config, "");
    let login = h.login().await;
    let page = format!("/admin/admin.php?mode=device&sn={SN_RECEPTION}");
    let t = h.get(&page, &login).await.text();
    assert!(t.contains("No build change recorded."), "{t}");

    // the seeded state has firmware 130100, boot code 130150
    poll(&h, "130100", "130150").await; // no change
    poll(&h, "131065", "130150").await;
    poll(&h, "131065", "130150").await; // the same again: no change
    poll(&h, "131065", "131000").await;
    let one = h.api(&format!("/api/devices/{SN_RECEPTION}")).await.json();
    let hist = one["build_history"].as_array().expect("build_history");
    let got: Vec<(&str, Option<&str>, &str)> = hist
        .iter()
        .map(|c| {
            (
                c["what"].as_str().unwrap_or(""),
                c["from"].as_str(),
                c["to"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("bootcode", Some("130150"), "131000"),
            ("firmware", Some("130100"), "131065"),
        ],
        "newest first: {one}"
    );
    assert!(hist[0]["time"].as_i64().is_some_and(|t| t > 1_700_000_000));
    // the list does not carry it
    let list = h.api("/api/devices").await.json();
    assert!(list["devices"][0].get("build_history").is_none());

    let t = h.get(&page, &login).await.text();
    let table = t
        .split("<table class=\"grid builds\">")
        .nth(1)
        .and_then(|s| s.split("</table>").next())
        .expect("the build changes table");
    let newer = table.find("131000").expect("the boot change");
    let older = table.find("130100").expect("the firmware change");
    assert!(newer < older, "newest first: {table}");
    assert!(
        table.contains("<time datetime=\""),
        "absolute dates: {table}"
    );
    assert!(
        h.root
            .join(format!("build-history/{SN_RECEPTION}.jsonl"))
            .is_file()
    );

    // deleting the device's state forgets its history too
    let r = h
        .call(
            "DELETE",
            &format!("/api/devices/{SN_RECEPTION}"),
            &[("authorization", oneshot::TOKEN)],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(
        !h.root
            .join(format!("build-history/{SN_RECEPTION}.jsonl"))
            .exists()
    );
}

#[tokio::test]
async fn without_the_setting_a_poll_writes_only_phps_files() {
    let h = Harness::new();
    poll(&h, "131065", "131000").await;
    assert!(!h.root.join("build-history").exists());
    let one = h.api(&format!("/api/devices/{SN_RECEPTION}")).await.json();
    assert_eq!(one["build_history"], serde_json::json!([]));
    assert_eq!(
        one["firmware"]["build"], "131065",
        "the poll was stored: {one}"
    );
    let login = h.login().await;
    let t = h
        .get(
            &format!("/admin/admin.php?mode=device&sn={SN_RECEPTION}"),
            &login,
        )
        .await
        .text();
    assert!(t.contains("Build changes are not recorded"), "{t}");
}
