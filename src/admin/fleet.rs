//! The device rows the status page, the `ui` commands and the API show: the devices of the
//! index with their certificate files, filtered and sorted on the index entries ([`Query`],
//! [`Sort`] over their [`Fields`], [`matching`]), then rows — views, CSR summaries, backups —
//! built only for the devices a page shows ([`rows_of`]; one device's full view from its
//! state: [`one_row`]); and the cached master info the builds of the fleet are compared with.

use super::files::{CertFileSet, CertIndex, CertState};
use super::order::Sort;
use super::query::{Clock, DeviceFields, Fields, Query};
use super::view;
use super::{show, status};
use crate::app::SharedApp;
use crate::backup::Stored;
use crate::config::Config;
use crate::state::Loaded;
use crate::state::index::Entry;
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

/// A device a view lets through, before its row is built: its index entry (shared) and
/// which certificate files it has (what the filter, the sort and the summary look at). A
/// view of the whole fleet costs 16 bytes a device; the names of the certificate files and
/// everything else of a row are made only for the rows a page shows ([`rows_of`]).
pub struct Candidate {
    pub entry: Arc<Entry>,
    certs: CertFileSet,
}

impl DeviceFields for Candidate {
    fn fields(&self) -> Fields<'_> {
        let mut f = self.entry.fields();
        f.csr_waiting = self.certs.csr_waiting();
        f.signed_waiting = self.certs.signed();
        f.cert_error |= self.certs.error();
        f
    }
}

/// The devices of a view: those `query` lets through in the order of `sort`, and the number
/// of state files. Rows are built ([`rows_of`]) only for the devices a page shows.
pub struct Matching {
    pub devices: Vec<Candidate>,
    pub total: usize,
}

/// The devices of the status page and the API: every state file's index entry and its
/// certificate files, filtered by `query` and in the order of `sort`.
pub fn matching(app: &SharedApp, cfg: &Config, query: &Query, sort: Sort) -> Matching {
    let Some(store) = app.states(cfg) else {
        return Matching {
            devices: Vec::new(),
            total: 0,
        };
    };
    // the first page after a start lists the whole fleet
    if !store
        .index()
        .wait_complete(std::time::Duration::from_secs(60))
    {
        tracing::warn!("the device index is not complete yet");
    }
    let (entries, total) = store.index().entries(|_| true);
    let certs = CertIndex::read(&app.root, cfg.customcerts.as_ref());
    let clock = Clock {
        now: crate::clock::now(),
        missing_after: cfg.status.missing,
    };
    let recorded = super::rollout_cells::recorded(&app.rollouts, cfg, query);
    // one allocation of the fleet's size (a filter's result would grow by doubling)
    let mut devices: Vec<Candidate> = Vec::with_capacity(entries.len());
    devices.extend(
        entries
            .into_iter()
            .map(|entry| Candidate {
                certs: match &cfg.customcerts {
                    Some(cc) if !entry.fields().unreadable => certs.files(cc, entry.key()),
                    _ => CertFileSet::default(),
                },
                entry,
            })
            .filter(|c| {
                query.is_empty()
                    || query.matches_recorded(&c.fields(), clock, &cfg.rollouts, &recorded)
            }),
    );
    sort.apply(&mut devices);
    Matching { devices, total }
}

/// The rows of `devices`: their views, the summaries of their waiting CSRs and, with
/// `with_backups`, their backup lists.
pub fn rows_of(
    app: &SharedApp,
    cfg: &Config,
    devices: &[Candidate],
    with_backups: bool,
) -> Vec<status::Row> {
    devices
        .iter()
        .map(|c| row_of(app, cfg, c, with_backups))
        .collect()
}

/// The row of one device (as [`rows_of`]).
pub fn row_of(app: &SharedApp, cfg: &Config, c: &Candidate, with_backups: bool) -> status::Row {
    let view = Arc::new(c.entry.to_view());
    let certs = match &cfg.customcerts {
        Some(cc) => c
            .certs
            .state(cc, c.entry.key())
            .read_csr(&app.root, &app.admin.csrs)
            .with_identity(&app.identities, c.entry.key()),
        None => CertState::default(),
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

fn backups_of(app: &SharedApp, cfg: &Config, view: &view::DeviceView) -> Arc<Vec<Stored>> {
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
    let certs = match &cfg.customcerts {
        Some(cc) if v.problem.is_none() => CertIndex::for_device(&app.root, cc, sn)
            .state(cc, sn)
            .read_csr(&app.root, &app.admin.csrs)
            .with_identity(&app.identities, sn),
        _ => CertState::default(),
    };
    Some(status::Row {
        backups: backups_of(app, cfg, &v),
        view: v,
        certs,
    })
}

/// The builds the master asks for (configuration, else the cached master info).
pub fn master_of(root: &std::path::Path, cfg: &Config) -> status::MasterBuilds {
    let cached = match cached_master(root, cfg) {
        show::CachedInfo::Ok { info, .. } => Some(info),
        _ => None,
    };
    status::master_builds(cfg, cached.as_ref())
}

/// Runs `render` with the rendering context of the status page for a session's `csrf`: the
/// configured `show` columns and, `with_master`, the builds the master asks for.
pub fn with_ctx<T>(
    app: &SharedApp,
    cfg: &Config,
    csrf: &str,
    with_master: bool,
    render: impl FnOnce(&status::RenderCtx<'_>) -> T,
) -> T {
    let groups = view::show_groups(cfg);
    let master = if with_master {
        master_of(&app.root, cfg)
    } else {
        status::MasterBuilds::default()
    };
    let mut ctx = status::RenderCtx::new(cfg, &app.prefix, csrf, &groups, master);
    ctx.rollouts = Some(&app.rollouts);
    render(&ctx)
}

/// [`with_ctx`] for the device's own page (no master builds; a certificate upload returns
/// to that page).
pub fn with_device_ctx<T>(
    app: &SharedApp,
    cfg: &Config,
    csrf: &str,
    render: impl FnOnce(&status::RenderCtx<'_>) -> T,
) -> T {
    let groups = view::show_groups(cfg);
    let master = status::MasterBuilds::default();
    let mut ctx = status::RenderCtx::new(cfg, &app.prefix, csrf, &groups, master);
    ctx.rollouts = Some(&app.rollouts);
    ctx.device_page = true;
    render(&ctx)
}

/// The fleet as the metrics count it: the status page's summary of all devices (`devices`,
/// `missing`, `csr_waiting`; the master's builds are not needed for these).
pub fn fleet_summary(app: &SharedApp, cfg: &Arc<Config>) -> status::Summary {
    let m = matching(app, cfg, &Query::default(), Sort::default());
    let master = status::MasterBuilds::default();
    status::summary(cfg, &master, crate::clock::now(), &m.devices)
}
