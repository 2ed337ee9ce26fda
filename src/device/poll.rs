//! A poll of `update.php`: the device's lock, what the pure `script::build` reads (state,
//! snippet snapshot, certificate files; from memory when nothing changed), its needs
//! answered (master device, reverse DNS, snippet hook), the file changes and the state
//! written. [`simulate`] is the same poll without writing anything.

use super::{DeviceError, apply_file_ops, expire_states, lock_device, serial};
use crate::app::{App, SharedApp, blocking};
use crate::certs::CertFiles;
use crate::config::Config;
use crate::php::Args;
use crate::request::{self, ConnInfo};
use crate::script::{self, PollInput};
use crate::state::{Loaded, StateStore};
use std::sync::Arc;
use std::time::Duration;

/// What a poll reads from disk before `script::build` runs.
struct Prepared {
    loaded: Loaded,
    snippets: Arc<crate::snippets::Snapshot>,
    certs: Arc<CertFiles>,
}

/// Reads the device's state, brings the snippet snapshot up to date for this request's
/// candidate files, and reads the device's certificate files (blocking I/O).
fn prepare(app: &App, cfg: &Config, args: &Args, sn: &str, store: Option<&StateStore>) -> Prepared {
    let loaded = match store {
        Some(s) if !crate::php::empty(sn) => s.load(sn),
        _ => Loaded::Missing,
    };
    let cands = script::candidates(cfg, args);
    app.snippets.set_max(cfg.server.max_snippet);
    let snippets = app.snippets.refresh(&app.root.join(&cfg.times.dir), &cands);
    let certs = match (&cfg.customcerts, sn.is_empty()) {
        (Some(cc), false) => app.certs.load(&app.root, cc, sn),
        _ => Arc::default(),
    };
    Prepared {
        loaded,
        snippets,
        certs,
    }
}

/// [`prepare`] from memory, without a system call: `None` when something must be read.
fn prepare_cached(
    app: &App,
    cfg: &Config,
    (args, sn): (&Args, &str),
    store: Option<&StateStore>,
) -> Option<Prepared> {
    let loaded = match store {
        Some(s) if !crate::php::empty(sn) => s.load_cached(sn)?,
        _ => Loaded::Missing,
    };
    app.snippets.set_max(cfg.server.max_snippet);
    let snippets = app.snippets.cached(&app.root.join(&cfg.times.dir), || {
        script::candidates(cfg, args)
    })?;
    let certs = match (&cfg.customcerts, sn.is_empty()) {
        (Some(cc), false) => app.certs.cached(&app.root, cc, sn)?,
        _ => Arc::default(),
    };
    Some(Prepared {
        loaded,
        snippets,
        certs,
    })
}

/// Answers the update script's needs: the master device, reverse DNS, the snippet hook.
struct PollResolver<'a> {
    app: &'a App,
    cfg: &'a Config,
}

impl script::Resolver for PollResolver<'_> {
    async fn master(&self) -> crate::firmware::MasterResolution {
        self.app.master.resolve(self.cfg, &self.app.root).await
    }

    async fn rdns(&self, ip: &str) -> Option<String> {
        reverse_dns(ip).await
    }

    async fn hook(&self, state: &crate::state::DeviceState) -> script::HookAnswer {
        let exec = self.cfg.server.hook_exec.clone().unwrap_or_default();
        let timeout = Duration::from_secs(self.cfg.server.hook_timeout_secs);
        crate::hooks::run(&self.app.root, &exec, timeout, state).await
    }
}

/// `gethostbyaddr`: the name of an address, the address itself when it has none, `None` for
/// something that is no address. Bounded by a short timeout.
async fn reverse_dns(ip: &str) -> Option<String> {
    let addr: std::net::IpAddr = ip.parse().ok()?;
    let lookup = tokio::task::spawn_blocking(move || dns_lookup::lookup_addr(&addr).ok());
    match tokio::time::timeout(Duration::from_secs(2), lookup).await {
        Ok(Ok(Some(name))) => Some(name),
        _ => Some(ip.to_string()),
    }
}

/// Runs `script::build`, answering its needs (master device, reverse DNS, snippet hook).
/// The clock is read once: every round of the script sees the same time.
async fn build(
    app: &App,
    cfg: &Config,
    (args, sn): (&Args, &str),
    info: &ConnInfo,
    prep: &Prepared,
) -> script::PollOutput {
    let script_url = format!("{}{}/update.php", info.origin(), app.prefix);
    let rollouts = app.rollouts.for_device(&cfg.rollouts, sn);
    // the kept previous versions of staged snippets (none without snippet rollouts)
    let kept =
        (cfg.rollouts.iter().any(|r| r.stages_snippets())).then(|| app.rollouts.kept.previous());
    let none = crate::rollout::kept::Previous::new();
    let input = PollInput {
        config: cfg,
        args,
        conn: info,
        script_url: &script_url,
        state: &prep.loaded,
        snippets: &*prep.snippets,
        certs: &prep.certs,
        hook_configured: cfg.server.hook_exec.is_some(),
        now: crate::clock::now(),
        rollouts: &rollouts,
        previous: kept.as_deref().unwrap_or(&none),
    };
    let resolver = PollResolver { app, cfg };
    let output = script::build_resolving(&input, &resolver)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "poll");
            script::PollOutput::internal_error()
        });
    app.rollouts.apply(&cfg.rollouts, &output.rollout_changes);
    output
}

/// A poll: the update script for the device (the body of a `200`), its file changes made
/// and its state handed to the writer.
pub async fn poll(
    app: &SharedApp,
    cfg: Arc<Config>,
    args: Args,
    info: ConnInfo,
) -> Result<Vec<u8>, DeviceError> {
    let sn = serial(&args);
    let (store, _guard) = lock_device(app, &cfg, &sn).await;
    let started = std::time::Instant::now();
    let prep = if let Some(p) = prepare_cached(app, &cfg, (&args, &sn), store.as_deref()) {
        Some(p)
    } else {
        let (app, cfg, args, store, sn) = (
            app.clone(),
            cfg.clone(),
            args.clone(),
            store.clone(),
            sn.clone(),
        );
        blocking(move || prepare(&app, &cfg, &args, &sn, store.as_deref())).await
    };
    let prep = prep.ok_or(DeviceError::Internal)?;
    let output = build(app, &cfg, (&args, &sn), &info, &prep).await;
    let status = crate::identity::ledger::poll_outcome(
        &app.identities,
        &cfg,
        &info,
        &sn,
        output.refused.as_ref(),
    );
    tracing::info!(
        sn = %sn,
        device_type = %args.get("type").unwrap_or_default(),
        ip = %info.device_ip().ip,
        cert_via = %crate::identity::via_text(&info),
        bytes = output.body.len(),
        micros = started.elapsed().as_micros() as u64,
        "poll"
    );
    let root = app.root.clone();
    let script::PollOutput {
        body,
        state,
        file_ops,
        ..
    } = output;
    if !file_ops.is_empty() {
        blocking(move || apply_file_ops(&root, &file_ops)).await;
        // what is cached from those files is looked at again, notified yet or not
        app.watch.bump();
    }
    if let (Some(store), Some(state)) = (store, state) {
        if cfg.status.buildhistory {
            record_builds(&store, &sn, &prep.loaded, &state).await;
        }
        if let Err(e) = store.save(&sn, state) {
            tracing::error!("cannot store state: {e}");
        }
        expire_states(&store, &cfg);
        store.backpressure().await;
    }
    if status == axum::http::StatusCode::FORBIDDEN {
        return Err(DeviceError::PollRefused(body));
    }
    Ok(body)
}

/// Records the builds the poll changed (`<status buildhistory="true"/>`; a file write only
/// when one changed; the device's lock is held).
async fn record_builds(
    store: &Arc<StateStore>,
    sn: &str,
    before: &Loaded,
    after: &crate::state::DeviceState,
) {
    let old = match before {
        Loaded::Ok(s) => Some(&s.root),
        _ => None,
    };
    let after = &after.root;
    let time = after
        .attr("seen")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(crate::clock::now);
    let changes = crate::state::builds::changes(old, after, time);
    if !changes.is_empty() {
        let (store, sn) = (store.clone(), sn.to_string());
        blocking(move || store.record_builds(&sn, &changes)).await;
    }
}

/// `update-server simulate`: the answer a device would get, without writing anything.
pub async fn simulate(app: &SharedApp, query: &str, host: &str) -> Result<Vec<u8>, String> {
    let cfg = app.config.get().map_err(|e| e.to_string())?;
    let args = Args::parse(query.trim_start_matches('?'));
    request::check_args(&args).map_err(|e| e.to_string())?;
    let info = ConnInfo::plain(host, 80);
    let sn = serial(&args);
    let store = app.states(&cfg);
    let prep = prepare(app, &cfg, &args, &sn, store.as_deref());
    Ok(build(app, &cfg, (&args, &sn), &info, &prep).await.body)
}
