//! Running the server: the router of all URLs ([`router`]) and [`serve`], which serves
//! already bound listeners (plain HTTP, HTTPS, HTTPS with client certificates) until a
//! shutdown future resolves. The command line (`main.rs`) and the integration tests both
//! start the server through [`serve`].

use crate::app::SharedApp;
use crate::tls::TlsSetup;
use axum::Router;
use axum::routing::any;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;

/// Header read timeout when the configuration cannot be read (it is then reported per request).
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;
/// Grace time of a stop when the configuration cannot be read.
const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("--{kind} {addr}: {source}")]
    Bind {
        kind: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTPS listeners need a TLS setup (server certificate)")]
    NoTls,
    #[error("--mtls listeners need a TLS setup with client CAs")]
    NoMtls,
}

/// The listeners to serve, bound by the caller (tests bind `127.0.0.1:0`).
#[derive(Default)]
pub struct Listeners {
    /// Plain HTTP.
    pub http: Vec<TcpListener>,
    /// HTTPS without client certificates.
    pub https: Vec<TcpListener>,
    /// HTTPS asking for a client certificate.
    pub mtls: Vec<TcpListener>,
    /// The rustls configurations; needed when `https` or `mtls` is not empty.
    pub tls: Option<TlsSetup>,
}

impl Listeners {
    /// Binds one listener per address.
    pub async fn bind(
        kind: &'static str,
        addrs: &[SocketAddr],
    ) -> Result<Vec<TcpListener>, ServeError> {
        let mut out = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { kind, addr, source })?;
            out.push(l);
        }
        Ok(out)
    }
}

/// The router of all URLs, serving `app`.
pub fn router(app: SharedApp) -> Router {
    let p = app.prefix.clone();
    let web = crate::static_files::StaticDir::new(app.root.join("web"), app.watch.freshness());
    let web = std::sync::Arc::new(web).service();
    let mut r = crate::http::routes(&app)
        .nest_service(&format!("{p}/web"), web)
        .merge(crate::admin::routes(&p));
    let target = format!("{p}/admin/admin.php");
    let mut tops = vec!["/".to_string()];
    if !p.is_empty() {
        tops.push(format!("{p}/"));
    }
    for top in tops {
        let target = target.clone();
        r = r.route(
            &top,
            any(move || async move { axum::response::Redirect::to(&target) }),
        );
    }
    r = r.merge(crate::health::routes(&p));
    r.layer(axum::middleware::from_fn_with_state(
        app.clone(),
        crate::request_log::track,
    ))
    .layer(tower_http::trace::TraceLayer::new_for_http())
    .with_state(app)
}

fn local_addr(l: &TcpListener) -> String {
    l.local_addr()
        .map_or_else(|e| e.to_string(), |a| a.to_string())
}

/// Serves `listeners` until `shutdown` resolves (or a listener task ends).
pub async fn serve(
    app: SharedApp,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    serve_with(app, listeners, shutdown, None).await
}

/// Serves `listeners` until `shutdown` resolves; each item of `reloads` reads the
/// configuration and the TLS files again. The stop is graceful: the listeners close, requests
/// in flight get `<server shutdown-grace>` to finish, then pending state is written.
pub async fn serve_with(
    app: SharedApp,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    mut reloads: Option<tokio::sync::mpsc::Receiver<()>>,
) -> Result<(), ServeError> {
    let Listeners {
        http,
        https,
        mtls,
        tls,
    } = listeners;
    if tls.is_none() && !https.is_empty() {
        return Err(ServeError::NoTls);
    }
    if let Some(t) = &tls {
        tracing::info!(
            "server certificate {} (SHA-256 {})",
            t.cert_path.display(),
            t.fingerprint
        );
    }
    let live = tls.map(crate::lifecycle::LiveTls::new);
    let tls_mtls = live.as_ref().and_then(|t| t.mtls.clone());
    if tls_mtls.is_none() && !mtls.is_empty() {
        return Err(ServeError::NoMtls);
    }
    if let Some(a) = https
        .first()
        .or(mtls.first())
        .and_then(|l| l.local_addr().ok())
    {
        app.admin.set_https_port(a.port());
    }
    crate::health::warn_at_start(&app);
    let _warming = crate::admin::warm_up(app.clone());
    let rollouts = crate::rollout_ticker::start_ticker(app.clone());
    let serving = crate::conn::Serving::new(router(app.clone()), limits(&app));
    let lane = std::sync::Arc::new(crate::fw_lane::Lane::new(&app));
    let tracker = serving.tracker.clone();
    let prefix = &app.prefix;
    let mut tasks = tokio::task::JoinSet::new();
    for l in http {
        tracing::info!("listening on http://{}{prefix}/update.php", local_addr(&l));
        tasks.spawn(crate::fw_lane::serve_plain(
            l,
            serving.clone(),
            lane.clone(),
        ));
    }
    let tls_lists = [
        (https, live.as_ref().map(|t| t.https.clone()), ""),
        (mtls, tls_mtls, " (client certificates)"),
    ];
    for (list, config, what) in tls_lists {
        for l in list {
            let Some(config) = config.clone() else { break };
            tracing::info!(
                "listening on https://{}{prefix}/update.php{what}",
                local_addr(&l)
            );
            tasks.spawn(crate::tls::serve_tls(l, config, serving.clone()));
        }
    }
    drop(serving);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(()) = next_reload(&mut reloads) => crate::lifecycle::reload(&app, live.as_ref()),
            _ = tasks.join_next() => break,
        }
    }
    stop(&app, tasks, tracker).await;
    drop(rollouts);
    let core = app.clone();
    crate::app::blocking(move || core.rollouts.write_dirty()).await;
    Ok(())
}

/// The connection limits of the configuration (defaults when it cannot be read).
fn limits(app: &SharedApp) -> crate::conn_guard::Limits {
    use crate::conn_guard::{DEFAULT_MAX_PER_ADDRESS, DEFAULT_MAX_PER_PROXY, PerAddress};
    let cfg = app.config.get().ok();
    let (timeout, max) = cfg.as_ref().map_or(
        (
            DEFAULT_HEADER_TIMEOUT_SECS,
            crate::conn_guard::DEFAULT_MAX_CONNECTIONS,
        ),
        |c| (c.server.header_timeout_secs, c.server.max_connections),
    );
    let per = cfg.as_ref().map_or(
        PerAddress {
            max: DEFAULT_MAX_PER_ADDRESS,
            max_proxy: DEFAULT_MAX_PER_PROXY,
            is_proxy: std::sync::Arc::new(|_| false),
        },
        |c| {
            let proxies = c.server.proxy_nets.clone();
            PerAddress {
                max: c.server.max_per_address,
                max_proxy: c.server.max_per_proxy,
                is_proxy: std::sync::Arc::new(move |ip| proxies.iter().any(|p| p.contains(ip))),
            }
        },
    );
    crate::conn_guard::Limits::new(Duration::from_secs(timeout), max)
        .per_address(per)
        .counted(app.metrics.ops.connections.clone())
}

async fn next_reload(r: &mut Option<tokio::sync::mpsc::Receiver<()>>) -> Option<()> {
    match r {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

/// The graceful stop: listeners closed, connections given the grace time, state written.
async fn stop(app: &SharedApp, mut tasks: tokio::task::JoinSet<()>, tracker: crate::conn::Tracker) {
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let Some(graceful) = tracker.take() else {
        return;
    };
    let grace = app.config.get().map_or(DEFAULT_SHUTDOWN_GRACE_SECS, |c| {
        c.server.shutdown_grace_secs
    });
    tracing::info!(
        "shutting down: listeners closed, {} connections open, waiting up to {grace} s",
        graceful.count()
    );
    match tokio::time::timeout(Duration::from_secs(grace), graceful.shutdown()).await {
        Ok(()) => tracing::info!("all connections finished"),
        Err(_) => tracing::warn!("grace time of {grace} s over: open connections are cut"),
    }
    app.flush_pending().await;
    tracing::info!("stopped");
}
