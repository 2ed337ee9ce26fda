//! Serving connections: accepting TCP connections and running the
//! router on a connection (plain or TLS) with [`ConnMeta`] (peer, local address, TLS,
//! verified client certificate) attached to each request. TLS handshakes live in `tls`.

use crate::conn_guard::Limits;
use crate::request::ClientCert;
use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use tower::Service;

/// What the connection tells about a request.
#[derive(Debug, Clone)]
pub struct ConnMeta {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: bool,
    /// The client certificate verified in the TLS handshake.
    pub client_cert: Option<ClientCert>,
}

/// What every connection is served with: the router, the connection limits and the tracker
/// that a graceful stop waits for. (The firmware fast lane of plain HTTP wraps this, see
/// `fw_lane::serve_plain`.)
#[derive(Clone)]
pub struct Serving {
    pub router: Router,
    pub limits: Limits,
    pub tracker: Tracker,
}

impl Serving {
    /// `router` under `limits`, with a tracker of its own.
    pub fn new(router: Router, limits: Limits) -> Serving {
        Serving {
            router,
            limits,
            tracker: Tracker::new(),
        }
    }
}

/// The open connections a graceful stop waits for (hyper-util's `GracefulShutdown`, which
/// the stop takes out) and the signal that the stop began (for the fast lane's connections).
#[derive(Clone)]
pub struct Tracker {
    graceful: Arc<Mutex<Option<GracefulShutdown>>>,
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            graceful: Arc::new(Mutex::new(Some(GracefulShutdown::new()))),
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// A watcher for a new connection; `None` once the stop began. The stop waits until it
    /// is dropped or the connection it watches ends.
    pub fn watcher(&self) -> Option<Watcher> {
        let guard = self.graceful.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(GracefulShutdown::watcher)
    }

    /// Becomes `true` when the stop begins.
    pub fn stopping(&self) -> tokio::sync::watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Takes the tracker out for the stop: new connections are refused from now on.
    pub fn take(&self) -> Option<GracefulShutdown> {
        self.stopping.send_replace(true);
        self.graceful
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// Serves one accepted connection (plain or TLS) with `router`, attaching `meta` to every
/// request. On a graceful stop the connection finishes the request in flight and closes.
pub async fn serve_connection<I>(io: I, meta: ConnMeta, serving: Serving)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Some(watcher) = serving.tracker.watcher() else {
        return;
    };
    serve_watched(io, meta, serving, watcher).await;
}

/// [`serve_connection`] with the stop's `watcher` already taken.
pub async fn serve_watched<I>(io: I, meta: ConnMeta, serving: Serving, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = meta.peer;
    let Serving { router, limits, .. } = serving;
    let header_timeout = limits.header_timeout;
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(meta.clone());
            let mut r = router.clone();
            async move { r.call(req.map(Body::new)).await }
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // a client that connects and then sends nothing (or only part of its headers, also on an
    // idle keep-alive connection) is disconnected instead of holding the connection forever
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!("connection from {peer}: {e}");
    }
}

/// The next connection of `listener` as `(stream, peer, local address)` with its slot under
/// `<server max-connections>` and the per-address limit (a connection beyond its address's
/// share is closed at once and the next one taken); accept errors (such as running out of file descriptors) are
/// logged at most once a second and retried after a pause (see [`crate::conn_guard`]).
pub async fn accept(
    listener: &tokio::net::TcpListener,
    limits: &Limits,
) -> (tokio::net::TcpStream, SocketAddr, SocketAddr, Slot) {
    let slot = limits.slot().await;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // beyond its share an address's connection is closed at once
                let Some(address) = limits.admit(peer.ip()) else {
                    drop(stream);
                    continue;
                };
                let listener_name = local_addr_label(listener);
                let slot = Slot {
                    _cap: slot,
                    _address: address,
                    _open: limits.opened(&listener_name),
                };
                // answers are written in several segments (headers, body chunks): without
                // this, Nagle's algorithm and the client's delayed ACK stall each of them
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(peer);
                return (stream, peer, local, slot);
            }
            Err(e) => limits.accept_failed(&e).await,
        }
    }
}

/// What a connection holds of the limits until it ends: its place under
/// `<server max-connections>` and its address's.
pub struct Slot {
    _cap: OwnedSemaphorePermit,
    _address: crate::conn_guard::AddressSlot,
    _open: crate::ops_metrics::OpenConnection,
}

/// The listener's local address, as the `listener` label of `/metrics`.
fn local_addr_label(listener: &tokio::net::TcpListener) -> String {
    listener
        .local_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string())
}

/// The [`ConnMeta`] of a plain HTTP connection.
pub fn plain_meta(peer: SocketAddr, local: SocketAddr) -> ConnMeta {
    ConnMeta {
        peer,
        local,
        tls: false,
        client_cert: None,
    }
}

/// Accepts plain HTTP connections on `listener` forever, each bounded by `serving.limits`
/// (all through hyper and the router; `fw_lane::serve_plain` adds the firmware fast lane).
pub async fn serve_plain(listener: tokio::net::TcpListener, serving: Serving) {
    loop {
        let (stream, peer, local, slot) = accept(&listener, &serving.limits).await;
        let io = serving.limits.watch(stream);
        let serving = serving.clone();
        tokio::spawn(async move {
            serve_connection(io, plain_meta(peer, local), serving).await;
            drop(slot);
        });
    }
}
