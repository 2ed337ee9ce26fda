//! Serving connections: accepting TCP connections and running the
//! router on a connection (plain or TLS) with [`ConnMeta`] (peer, local address, TLS,
//! verified client certificate) attached to each request. TLS handshakes live in `trust`.

use crate::request::ClientCert;
use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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

/// What every connection is served with: the router, the header timeout and the watcher
/// that a graceful stop waits for.
#[derive(Clone)]
pub struct Serving {
    pub router: Router,
    pub header_timeout: Duration,
    pub tracker: Tracker,
}

/// The open connections a graceful stop waits for (hyper-util's `GracefulShutdown`, which
/// the stop takes out).
#[derive(Clone, Default)]
pub struct Tracker(Arc<Mutex<Option<GracefulShutdown>>>);

impl Tracker {
    pub fn new() -> Tracker {
        Tracker(Arc::new(Mutex::new(Some(GracefulShutdown::new()))))
    }

    /// A watcher for a new connection; `None` once the stop began.
    fn watcher(&self) -> Option<Watcher> {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().map(GracefulShutdown::watcher)
    }

    /// Takes the tracker out for the stop: new connections are refused from now on.
    pub fn take(&self) -> Option<GracefulShutdown> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Serves one accepted connection (plain or TLS) with `router`, attaching `meta` to every
/// request. On a graceful stop the connection finishes the request in flight and closes.
pub async fn serve_connection<I>(io: I, meta: ConnMeta, serving: Serving)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = meta.peer;
    let Serving {
        router,
        header_timeout,
        tracker,
    } = serving;
    let Some(watcher) = tracker.watcher() else {
        return;
    };
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

/// The next connection of `listener` as `(stream, peer, local address)`; accept errors (such
/// as running out of file descriptors) are logged and retried after a short pause.
pub async fn accept(
    listener: &tokio::net::TcpListener,
) -> (tokio::net::TcpStream, SocketAddr, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // answers are written in several segments (headers, body chunks): without
                // this, Nagle's algorithm and the client's delayed ACK stall each of them
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(peer);
                return (stream, peer, local);
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Accepts plain HTTP connections on `listener` forever; a client gets `header_timeout` to
/// send a request's headers (`<server header-timeout>`).
pub async fn serve_plain(listener: tokio::net::TcpListener, serving: Serving) {
    loop {
        let (stream, peer, local) = accept(&listener).await;
        let meta = ConnMeta {
            peer,
            local,
            tls: false,
            client_cert: None,
        };
        tokio::spawn(serve_connection(stream, meta, serving.clone()));
    }
}
