//! The use-cases on an installation in a temporary directory, without HTTP.

use super::poll::{poll, simulate};
use super::upload::{Kind, upload};
use crate::app::{App, SharedApp};
use crate::php::Args;
use crate::request::ConnInfo;
use std::path::Path;
use std::sync::Arc;

const CONFIG: &str = r#"<config><master info=""/><status dir="status"/><backup dir="backup" nbackups="3"/></config>"#;
const SN: &str = "00-90-33-30-00-af";
const HWID: &str = "IP232-30-00-af";

fn app(dir: &Path) -> SharedApp {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("config")).expect("mkdir");
    std::fs::create_dir_all(root.join("scripts")).expect("mkdir");
    std::fs::write(root.join("config/user-config.xml"), CONFIG).expect("config");
    std::fs::write(root.join("scripts/update-all-default.txt"), "# x\n").expect("snippet");
    Arc::new(App::new(root, ""))
}

fn info() -> ConnInfo {
    ConnInfo::plain("update.example", 80)
}

async fn send(app: &SharedApp, kind: Kind, query: &str, body: &[u8]) -> (u16, String) {
    let cfg = app.config.get().expect("config");
    let args = Args::parse(query);
    let r = upload(
        app,
        cfg,
        args,
        &info(),
        kind,
        bytes::Bytes::copy_from_slice(body),
    )
    .await;
    let (status, out) = r.expect("answered");
    (status.as_u16(), String::from_utf8_lossy(&out).into_owned())
}

#[tokio::test]
async fn a_poll_answers_the_script_and_writes_the_state_a_simulation_does_not() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let state = app.root.join(format!("status/{SN}.xml"));
    let query = format!("sn={SN}&hwid={HWID}&ip=192.0.2.1&type=IP232");
    let simulated = simulate(&app, &format!("?{query}"), "h").await;
    assert!(simulated.expect("simulated").starts_with(b"#"));
    app.flush_pending().await;
    assert!(!state.exists(), "a simulation writes nothing");
    let cfg = app.config.get().expect("config");
    let args = Args::parse(&query);
    let body = poll(&app, cfg, args, info()).await.expect("poll");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("update-all-default.txt"), "{text}");
    app.flush_pending().await;
    assert!(state.exists(), "the poll's state is written");
}

#[tokio::test]
async fn a_query_result_is_stored_in_the_device_state_and_a_bad_id_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let (status, text) = send(
        &app,
        Kind::Query,
        &format!("mode=query&sn={SN}&id=q1"),
        b"<r/>",
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let state = std::fs::read_to_string(app.root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(state.contains("q1"), "{state}");
    let (status, text) = send(
        &app,
        Kind::Query,
        &format!("mode=query&sn={SN}&id=a/b"),
        b"x",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("query id 'a/b' is not a valid name"),
        "{text}"
    );
}

#[tokio::test]
async fn backups_need_a_hardware_id_and_are_stored_below_it() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = app(dir.path());
    let (status, text) = send(&app, Kind::Backup, &format!("mode=backup&sn={SN}"), b"x").await;
    assert_eq!(status, 200);
    assert!(text.contains("need 'hwid' arg for mode=backup"), "{text}");
    let (status, text) = send(
        &app,
        Kind::Backup,
        &format!("mode=backup&hwid=&sn={SN}"),
        b"x",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.contains("refused: empty 'hwid' for mode=backup"),
        "{text}"
    );
    let q = format!("mode=backup&hwid={HWID}&sn={SN}");
    let (status, text) = send(&app, Kind::Backup, &q, b"config change CMD0 /x\r\n").await;
    assert_eq!(status, 200, "{text}");
    let stored = app.root.join(format!("backup/{HWID}/{HWID}.0.txt"));
    assert_eq!(
        std::fs::read(&stored).expect("backup"),
        b"config change CMD0 /x"
    );
    // the recorded backup time is not before the file's (which an unchanged upload records)
    app.flush_pending().await;
    let mtime = std::fs::metadata(&stored)
        .and_then(|m| m.modified())
        .expect("mtime");
    let mtime = crate::clock::unix_secs(mtime);
    let state = std::fs::read(app.root.join(format!("status/{SN}.xml"))).expect("state");
    let state = crate::xml::Element::parse(&state).expect("state XML");
    let recorded = state.child("device").and_then(|d| d.attr("backup"));
    let recorded = recorded.and_then(|t| t.parse::<i64>().ok());
    assert!(
        recorded.is_some_and(|t| t >= mtime),
        "{recorded:?} < {mtime}"
    );
}

#[test]
fn upload_kinds_and_their_limits() {
    let cfg = crate::config::Config::from_user_xml(CONFIG).expect("config");
    assert_eq!(Kind::of("backup"), Some(Kind::Backup));
    assert_eq!(Kind::of("upload"), None);
    for k in [Kind::Backup, Kind::Query, Kind::Vardump] {
        assert_eq!(Kind::of(k.mode()), Some(k));
    }
    assert_eq!(Kind::Backup.limit(&cfg).1, "request body");
    let (max, what) = Kind::Query.limit(&cfg);
    assert!(max <= cfg.server.max_body);
    assert_eq!(what, "query result (server/@max-query)");
}
