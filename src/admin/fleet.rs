//! The device rows the status page, the `ui` commands and the API show: the views of the
//! device index (one device's full view from its state), its certificate files and
//! backups, filtered and sorted ([`Query`], [`Sort`] over the row's [`Fields`]); and the
//! cached master info the builds of the fleet are compared with.

use super::files::{CertIndex, CertState};
use super::order::Sort;
use super::query::{Clock, DeviceFields, Fields, Query};
use super::view;
use super::{show, status};
use crate::admin::SharedAdmin;
use crate::backup::Stored;
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
/// its certificate files, filtered by `query` and in the order of `sort`; the backup lists
/// only `with_backups` (the page loads them when opened, the API for its page with
/// [`add_backups`]). Returns the rows and the number of state files.
pub fn collect_rows(
    app: &SharedAdmin,
    cfg: &Arc<Config>,
    query: &Query,
    sort: Sort,
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
    let (views, total) = store.index().views(|_| true);
    let certs = CertIndex::read(&app.root, cfg.customcerts.as_ref());
    let clock = Clock {
        now: crate::clock::now(),
        missing_after: cfg.status.missing,
    };
    let mut rows: Vec<status::Row> = views
        .into_iter()
        .map(|v| row_files(app, cfg, v, &certs, false))
        .filter(|r| query.is_empty() || query.matches(&r.fields(), clock))
        .collect();
    sort.apply(&mut rows);
    if with_backups {
        add_backups(app, cfg, &mut rows);
    }
    (rows, total)
}

/// The `filter` and `sort` arguments of a request, as given and parsed (the error says
/// what is wrong with them, for the user).
pub struct ViewArgs {
    pub filter: String,
    pub parsed: Result<(Query, Sort), String>,
}

impl ViewArgs {
    pub fn from_args(args: &crate::php::Args) -> ViewArgs {
        let get = |k: &str| args.get(k).map(|v| v.into_owned()).unwrap_or_default();
        let filter = get("filter");
        let parsed = match (Query::parse(&filter), Sort::parse(&get("sort"))) {
            (Ok(q), Ok(s)) => Ok((q, s)),
            (Err(e), _) => Err(e.to_string()),
            (_, Err(e)) => Err(e.to_string()),
        };
        ViewArgs { filter, parsed }
    }
}

/// Reads the backup lists of `rows`.
pub fn add_backups(app: &SharedAdmin, cfg: &Config, rows: &mut [status::Row]) {
    for r in rows {
        r.backups = backups_of(app, cfg, &r.view);
    }
}

fn backups_of(app: &SharedAdmin, cfg: &Config, view: &view::DeviceView) -> Arc<Vec<Stored>> {
    match (&cfg.backup.dir, view.backup) {
        (Some(dir), Some(_)) if !dir.is_empty() => {
            app.admin.backups.list(&app.root, dir, &view.hwid)
        }
        _ => Arc::new(Vec::new()),
    }
}

impl DeviceFields for status::Row {
    fn fields(&self) -> Fields<'_> {
        let v = &*self.view;
        Fields {
            key: &v.key,
            unreadable: v.problem.is_some(),
            sn: &v.sn,
            device_type: &v.device_type,
            name: &v.name,
            realip: &v.realip,
            ip: &v.ip,
            phase: &v.phase,
            classes: &v.classes,
            environments: &v.environments,
            firmware: &v.firmware,
            firmware_requested: &v.firmware_requested,
            bootcode: &v.bootcode,
            bootcode_requested: &v.bootcode_requested,
            seen: v.seen,
            backup: v.backup,
            certstat: v.certstat.as_deref(),
            csr_waiting: self.certs.csr_waiting(),
            signed_waiting: self.certs.signed.is_some(),
            cert_error: v.request_error || self.certs.error.is_some(),
        }
    }
}

fn row_files(
    app: &SharedAdmin,
    cfg: &Config,
    view: Arc<view::DeviceView>,
    certs: &CertIndex,
    with_backups: bool,
) -> status::Row {
    let certs = match &cfg.customcerts {
        Some(cc) if view.problem.is_none() => certs.state(cc, &view.key).read_csr(&app.root),
        _ => CertState::default(),
    };
    let backups = if with_backups {
        backups_of(app, cfg, &view)
    } else {
        Arc::new(Vec::new())
    };
    status::Row {
        view,
        certs,
        backups,
    }
}

/// One device's row data (for `updatestatus`), `None` when it has no state file.
pub fn one_row(app: &SharedAdmin, cfg: &Arc<Config>, sn: &str) -> Option<status::Row> {
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

/// The fleet as the metrics count it: the status page's summary of all devices (`devices`,
/// `missing`, `csr_waiting`; the master's builds are not needed for these).
pub fn fleet_summary(app: &SharedAdmin, cfg: &Arc<Config>) -> status::Summary {
    let (rows, _) = collect_rows(app, cfg, &Query::default(), Sort::default(), false);
    let master = status::MasterBuilds::default();
    status::summary(cfg, &master, crate::clock::now(), &rows)
}
