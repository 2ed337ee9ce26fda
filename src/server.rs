//! Running the server: the router of all URLs ([`router`]) and [`serve`], which serves
//! already bound listeners (plain HTTP, HTTPS, HTTPS with client certificates) until a
//! shutdown future resolves. The command line (`main.rs`) and the integration tests both
//! start the server through [`serve`].

use crate::app::SharedApp;
use crate::trust::TlsSetup;
use axum::Router;
use axum::routing::any;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;

/// Header read timeout when the configuration cannot be read (it is then reported per request).
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 30;

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

/// The router of all URLs, with a new admin side (no sessions yet).
pub fn router(app: SharedApp) -> Router {
    router_with(crate::admin::AdminApp::shared(app))
}

/// The router of all URLs for the admin side `admin` (and the [`App`] it wraps).
pub fn router_with(admin: crate::admin::SharedAdmin) -> Router {
    let app = admin.core.clone();
    let p = app.prefix.clone();
    let web = crate::static_files::StaticDir::new(app.root.join("web"), app.watch.freshness());
    let web = Arc::new(web).service();
    let mut r = crate::http::routes(&app)
        .nest_service(&format!("{p}/web"), web)
        .merge(crate::admin::routes(&p).with_state(admin.clone()));
    if !p.is_empty() {
        let target = format!("{p}/admin/admin.php");
        r = r.route(
            &format!("{p}/"),
            any(move || async move { axum::response::Redirect::to(&target) }),
        );
    }
    r.layer(axum::Extension(admin))
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
    let Listeners {
        http,
        https,
        mtls,
        tls,
    } = listeners;
    let admin = crate::admin::AdminApp::shared(app.clone());
    let tls_https = match (&tls, https.is_empty()) {
        (Some(t), _) => Some(t.https.clone()),
        (None, true) => None,
        (None, false) => return Err(ServeError::NoTls),
    };
    let tls_mtls = tls.as_ref().and_then(|t| t.mtls.clone());
    if let Some(t) = &tls {
        tracing::info!(
            "server certificate {} (SHA-256 {})",
            t.cert_path.display(),
            t.fingerprint
        );
    }
    if tls_mtls.is_none() && !mtls.is_empty() {
        return Err(ServeError::NoMtls);
    }
    if let Some(a) = https
        .first()
        .or(mtls.first())
        .and_then(|l| l.local_addr().ok())
    {
        admin.admin.set_https_port(a.port());
    }
    let limits = app.config.get().map_or(
        crate::conn_guard::Limits::new(
            Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
            crate::conn_guard::DEFAULT_MAX_CONNECTIONS,
        ),
        |c| {
            crate::conn_guard::Limits::new(
                Duration::from_secs(c.server.header_timeout_secs),
                c.server.max_connections,
            )
        },
    );
    let _warming = crate::admin::warm_up(admin.clone());
    let _rollouts = crate::rollout::store::start_ticker(app.clone());
    let router = router_with(admin);
    let prefix = &app.prefix;
    let mut tasks = tokio::task::JoinSet::new();
    for l in http {
        tracing::info!("listening on http://{}{prefix}/update.php", local_addr(&l));
        tasks.spawn(crate::conn::serve_plain(l, router.clone(), limits.clone()));
    }
    let tls_lists = [
        (https, tls_https, ""),
        (mtls, tls_mtls, " (client certificates)"),
    ];
    for (list, config, what) in tls_lists {
        for l in list {
            let Some(config) = config.clone() else { break };
            tracing::info!(
                "listening on https://{}{prefix}/update.php{what}",
                local_addr(&l)
            );
            tasks.spawn(serve_tls(l, config, router.clone(), limits.clone()));
        }
    }
    tokio::select! {
        _ = shutdown => tracing::info!("shutting down"),
        _ = tasks.join_next() => {}
    }
    drop(_rollouts);
    let core = app.clone();
    crate::app::blocking(move || core.rollouts.write_dirty()).await;
    Ok(())
}

async fn serve_tls(
    l: TcpListener,
    config: Arc<rustls::ServerConfig>,
    router: Router,
    limits: crate::conn_guard::Limits,
) {
    crate::trust::serve_tls(l, config, router, limits).await
}
