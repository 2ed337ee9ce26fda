//! The device rows the status page, the `ui` commands and the API show: the views of the
//! device index (one device's full view from its state), its certificate files and backups,
//! filtered; and the
//! cached master info the builds of the fleet are compared with.

use super::files::{CertIndex, CertState};
use super::view::{self, Filter};
use super::{show, status};
use crate::app::SharedApp;
use crate::config::Config;
use crate::state::Loaded;
use std::sync::Arc;

/// Reads the cached master info (`master/@cache`).
pub fn cached_master(root: &std::path::Path, cfg: &Config) -> show::CachedInfo {
    let path = root.join(&cfg.master.cache);
    let Ok(meta) = std::fs::metadata(&path) else {
        return show::CachedInfo::None;
    };
    let mtime = meta.modified().map_or(0, crate::clock::unix_secs);
    match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| crate::firmware::parse_box_info(&b, &cfg.master.cache))
    {
        Ok(info) => show::CachedInfo::Ok { info, mtime },
        Err(e) => show::CachedInfo::Unreadable(e),
    }
}

/// The device rows of the status page and the API: every state file, its view (cached) and
/// its files (the backup lists only `with_backups`: the page loads them when opened),
/// filtered. Returns the rows and the number of state files.
pub fn collect_rows(
    app: &SharedApp,
    cfg: &Arc<Config>,
    filter: &Filter,
    with_backups: bool,
) -> (Vec<status::Row>, usize) {
    let Some(store) = app.states(cfg) else {
        return (Vec::new(), 0);
    };
    // the first page after a start lists the whole fleet
    if !store
        .index()
        .wait_complete(std::time::Duration::from_secs(60))
    {
        tracing::warn!("the device index is not complete yet");
    }
    let now = crate::clock::now();
    let (views, total) = store.index().views(|v| {
        filter.is_empty() || filter.matches(&v.filter_text(v.is_missing(cfg.status.missing, now)))
    });
    let certs = CertIndex::read(&app.root, cfg.customcerts.as_ref());
    let rows = views
        .into_iter()
        .map(|v| row_files(app, cfg, v, &certs, with_backups))
        .collect();
    (rows, total)
}

fn row_files(
    app: &SharedApp,
    cfg: &Config,
    view: Arc<view::DeviceView>,
    certs: &CertIndex,
    with_backups: bool,
) -> status::Row {
    let certs = match &cfg.customcerts {
        Some(cc) if view.problem.is_none() => certs.state(cc, &view.key),
        _ => CertState::default(),
    };
    let backups = match (&cfg.backup.dir, view.backup) {
        (Some(dir), Some(_)) if with_backups && !dir.is_empty() => {
            app.admin.backups.list(&app.root, dir, &view.hwid)
        }
        _ => Arc::new(Vec::new()),
    };
    status::Row {
        view,
        certs,
        backups,
    }
}

/// One device's row data (for `updatestatus`), `None` when it has no state file.
pub fn one_row(app: &SharedApp, cfg: &Arc<Config>, sn: &str) -> Option<status::Row> {
    let store = app.states(cfg)?;
    let loaded = store.load(sn);
    if matches!(loaded, Loaded::Missing) {
        return None;
    }
    let v = Arc::new(view::DeviceView::from_state(
        sn,
        &loaded,
        &view::show_groups(cfg),
    ));
    let idx = match &cfg.customcerts {
        Some(cc) => CertIndex::for_device(&app.root, cc, sn),
        None => CertIndex::default(),
    };
    Some(row_files(app, cfg, v, &idx, true))
}

/// The builds the master asks for (configuration, else the cached master info).
pub fn master_of(root: &std::path::Path, cfg: &Config) -> status::MasterBuilds {
    let cached = match cached_master(root, cfg) {
        show::CachedInfo::Ok { info, .. } => Some(info),
        _ => None,
    };
    status::master_builds(cfg, cached.as_ref())
}
