//! Serving connections: accepting TCP connections and running the
//! router on a connection (plain or TLS) with [`ConnMeta`] (peer, local address, TLS,
//! verified client certificate) attached to each request. TLS handshakes live in `trust`.

use crate::conn_guard::Limits;
use crate::request::ClientCert;
use axum::Router;
use axum::body::Body;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::time::Duration;
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

/// Serves one accepted connection (plain or TLS) with `router`, attaching `meta` to every
/// request.
pub async fn serve_connection<I>(io: I, meta: ConnMeta, router: Router, header_timeout: Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = meta.peer;
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
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!("connection from {peer}: {e}");
    }
}

/// The next connection of `listener` as `(stream, peer, local address)` with its slot under
/// `<server max-connections>`; accept errors (such as running out of file descriptors) are
/// logged at most once a second and retried after a pause (see [`crate::conn_guard`]).
pub async fn accept(
    listener: &tokio::net::TcpListener,
    limits: &Limits,
) -> (
    tokio::net::TcpStream,
    SocketAddr,
    SocketAddr,
    OwnedSemaphorePermit,
) {
    let slot = limits.slot().await;
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
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

/// Accepts plain HTTP connections on `listener` forever, each bounded by `limits`.
pub async fn serve_plain(listener: tokio::net::TcpListener, router: Router, limits: Limits) {
    loop {
        let (stream, peer, local, slot) = accept(&listener, &limits).await;
        let meta = ConnMeta {
            peer,
            local,
            tls: false,
            client_cert: None,
        };
        let io = limits.watch(stream);
        let (router, timeout) = (router.clone(), limits.header_timeout);
        tokio::spawn(async move {
            serve_connection(io, meta, router, timeout).await;
            drop(slot);
        });
    }
}
