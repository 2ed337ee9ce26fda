//! The device uploads of `update.php`: `mode=backup` (a configuration backup, numbered and
//! rotated), `mode=query` (a query result), `mode=vardump` (a CSR, answered with the
//! certificate commands). Each is checked against the trust rules first (`upload_trust`),
//! runs on an [`Answer`] (PHP's comment lines and the device's log), applies its file
//! changes, and stores the device's state durably before the answer confirms it.

use super::{DeviceError, apply_file_ops, expire_states, lock_device, serial};
use crate::answer::{Answer, Exit};
use crate::app::{App, SharedApp, blocking};
use crate::config::Config;
use crate::fileop::FileOp;
use crate::php::Args;
use crate::request::{self, ConnInfo};
use crate::state::StateStore;
use axum::http::StatusCode;
use std::sync::Arc;

/// The kinds of upload (`mode=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Backup,
    Query,
    Vardump,
}

impl Kind {
    /// The kind of `mode=…`, if it is an upload of a device.
    pub fn of(mode: &str) -> Option<Kind> {
        match mode {
            "backup" => Some(Kind::Backup),
            "query" => Some(Kind::Query),
            "vardump" => Some(Kind::Vardump),
            _ => None,
        }
    }

    /// `mode=…`.
    pub fn mode(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Query => "query",
            Kind::Vardump => "vardump",
        }
    }

    /// The largest body, and what it is called in a refusal.
    pub fn limit(self, cfg: &Config) -> (usize, &'static str) {
        if self == Kind::Query && cfg.server.max_query <= cfg.server.max_body {
            (cfg.server.max_query, "query result (server/@max-query)")
        } else {
            (cfg.server.max_body, "request body")
        }
    }

    fn log_name(self) -> &'static str {
        match self {
            Kind::Backup => "backup",
            Kind::Query => "query result",
            Kind::Vardump => "vardump (CSR)",
        }
    }
}

/// An upload: the answer's status and text, the file changes made and the state stored.
pub async fn upload(
    app: &SharedApp,
    cfg: Arc<Config>,
    args: Args,
    info: &ConnInfo,
    kind: Kind,
    body: bytes::Bytes,
) -> Result<(StatusCode, Vec<u8>), DeviceError> {
    let sn = serial(&args);
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let (app2, info, store2) = (app.clone(), info.clone(), store.clone());
    let result = blocking(move || {
        let loaded = match &store2 {
            Some(s) => s.load(&sn),
            None => crate::state::Loaded::Missing,
        };
        let mode = kind.mode();
        let elsewhere = |hwid: &str| hwid_recorded_elsewhere(store2.as_deref(), hwid, &sn);
        let checked = crate::upload_trust::check(&cfg, &info, (&args, &loaded), mode, &elsewhere);
        if let Err(refused) = checked {
            tracing::warn!(
                "refused upload for sn '{sn}' from {}: {refused}; identity presented: {}",
                info.remote_ip,
                crate::identity::presented(&info)
            );
            return Err(DeviceError::UploadRefused(refused.to_string()));
        }
        let now = crate::clock::now();
        let mut ans = Answer::new(
            cfg.status_dir(),
            &args,
            &loaded,
            now,
            crate::state::MsgRules::of(&cfg),
        );
        let (status, files) = run(&app2, &cfg, &args, kind, &body, &mut ans);
        if matches!(kind, Kind::Vardump) && files > 0 {
            // the admin pages list a CSR with the identity that uploaded it
            app2.identities
                .record_csr(&sn, crate::identity::presented(&info));
        }
        let hwid = args.get("hwid").map(|s| s.into_owned()).unwrap_or_default();
        let what = kind.log_name();
        tracing::info!(sn = %sn, hwid = %hwid, bytes = body.len(), status = status.as_u16(), files, "upload {what}");
        let state = ans.take_state_to_write();
        Ok((status, ans.out, state, sn, cfg))
    })
    .await;
    let (status, out, state, sn, cfg) = result.ok_or(DeviceError::Internal)??;
    if let (Some(store), Some(state)) = (&store, state) {
        // what the device uploaded is durable before it is confirmed
        if let Err(e) = store.save_durable(&sn, state).await {
            tracing::warn!("refused upload: {e}");
            return Err(DeviceError::NotStored(e.to_string()));
        }
        expire_states(store, &cfg);
    }
    Ok((status, out))
}

/// Whether a device other than `sn` records `hwid` in its state. Until the start-up scan
/// has indexed every state file (waited for a few seconds) the answer is yes: unknown is
/// not proof.
fn hwid_recorded_elsewhere(store: Option<&StateStore>, hwid: &str, sn: &str) -> bool {
    let Some(store) = store else {
        return false;
    };
    let index = store.index();
    let known = index.wait_complete(std::time::Duration::from_secs(5));
    !known || index.hwid_recorded_elsewhere(hwid, sn)
}

/// Runs an upload on `ans` and applies its file changes; returns the HTTP status and how
/// many file changes there were.
fn run(
    app: &App,
    cfg: &Config,
    args: &Args,
    kind: Kind,
    body: &[u8],
    ans: &mut Answer,
) -> (StatusCode, usize) {
    match kind {
        Kind::Backup => backup(app, cfg, args, body, ans),
        Kind::Query => (query(args, body, ans), 0),
        Kind::Vardump => {
            let (status, ops) = match crate::certs::vardump(cfg, args, body, ans) {
                Ok(ops) => (StatusCode::OK, ops),
                Err(crate::certs::VardumpError::Php(Exit)) => (StatusCode::OK, Vec::new()),
                Err(crate::certs::VardumpError::Refused(Exit)) => {
                    (StatusCode::BAD_REQUEST, Vec::new())
                }
            };
            // PHP goes on after a failed write here; the failure is logged
            let _logged = apply_file_ops(&app.root, &ops);
            // certificate files are cached (backups are not)
            if !ops.is_empty() {
                app.watch.bump();
            }
            (status, ops.len())
        }
    }
}

/// `mode=backup`: the backup stored and the old ones rotated, while the device's backup
/// directory is held.
fn backup(
    app: &App,
    cfg: &Config,
    args: &Args,
    body: &[u8],
    ans: &mut Answer,
) -> (StatusCode, usize) {
    let Some(hwid) = args.get("hwid").map(|v| v.into_owned()) else {
        let Exit = ans.bailout("need 'hwid' arg for mode=backup, use ?hwid=#h");
        return (StatusCode::OK, 0);
    };
    if hwid.is_empty() {
        let Exit = ans.bailout("refused: empty 'hwid' for mode=backup");
        return (StatusCode::BAD_REQUEST, 0);
    }
    let root = &app.root;
    let Ok(saved) = crate::backup::store((root, &app.backup_dirs), cfg, &hwid, body, ans) else {
        return (StatusCode::OK, 0);
    };
    if let Err(path) = apply_file_ops(root, &saved.plan.ops) {
        let Exit = ans.bailout(&format!("backup: cannot save backup to file '{path}'"));
        return (StatusCode::OK, 0);
    }
    saved.plan.report(ans);
    // PHP records `time()` after writing a new backup; the request's start can be a second
    // before the file's mtime, which the next unchanged upload records (then the device's
    // backup time would go forward without a new backup)
    let wrote = saved
        .plan
        .ops
        .iter()
        .any(|op| matches!(op, FileOp::Write { .. }));
    let stamp = saved
        .plan
        .stamp
        .map(|t| if wrote { t.max(crate::clock::now()) } else { t });
    if let Some(t) = stamp {
        ans.log_device("backup", &t.to_string());
    }
    ans.finish();
    (StatusCode::OK, saved.plan.ops.len())
}

/// `mode=query`: the result stored in the device's state.
fn query(args: &Args, body: &[u8], ans: &mut Answer) -> StatusCode {
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    let Some(sn) = arg("sn") else {
        let Exit = ans.bailout("need 'sn' arg for mode=query, use ?sn=#m");
        return StatusCode::OK;
    };
    let Some(id) = arg("id") else {
        let Exit = ans.bailout("need 'id' arg for mode=query, go fix update.php");
        return StatusCode::OK;
    };
    if !request::valid_query_id(&id) {
        let Exit = ans.bailout(&format!("query id '{id}' is not a valid name"));
        return StatusCode::BAD_REQUEST;
    }
    match crate::queries::save(ans, &sn, &id, body) {
        Ok(()) => {
            ans.dump(&format!("query {id}"), body);
            ans.finish();
            StatusCode::OK
        }
        Err(Exit) => StatusCode::BAD_REQUEST,
    }
}
