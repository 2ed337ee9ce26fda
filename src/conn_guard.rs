//! Connection limits: how long a client may stay silent or trickle, how many connections are
//! open at once, and how the accept loop behaves when the process runs out of file descriptors.
//!
//! - **Deadline.** Every connection (plain, TLS — handshake included —, HTTP/1 and HTTP/2) is
//!   wrapped in [`Watched`]: it is closed when the client has not sent data fast enough. The
//!   deadline starts at `<server header-timeout>` (30 s) from the accept; every byte received
//!   moves it on by `1 / MIN_RATE` seconds (at most to `header-timeout` from now) and every
//!   answer written sets it to `header-timeout` from now. So a connection that sends nothing,
//!   trickles its headers or its body (slower than [`MIN_RATE`] bytes per second), or sits on
//!   an idle keep-alive is closed after about `header-timeout`; an upload faster than
//!   [`MIN_RATE`] is never cut.
//! - **Cap.** At most `<server max-connections>` connections are open at once (all listeners
//!   together); at the cap the server stops accepting until one closes (the kernel queues new
//!   ones) and says so in the log at most once a minute.
//! - **Per address.** One address holds at most `<server max-per-address>` (256) of them,
//!   a trusted proxy (`<server trusted-proxies>`) `<server max-per-proxy>` (4096); a
//!   connection beyond is closed at once (counted in `/metrics`, logged at most once a minute
//!   per address), so one address cannot take the slots of all the others.
//! - **Out of descriptors.** An accept error (`EMFILE`, `ENFILE`, …) pauses the listener for
//!   [`ACCEPT_BACKOFF`] and is logged at most once a second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per second a client must at least send while the server waits for it.
pub const MIN_RATE: u64 = 1024;

/// Pause of a listener after an accept error.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Default for `<server max-connections>` (the configuration's).
pub use crate::config::DEFAULT_MAX_CONNECTIONS;

/// Defaults for `<server max-per-address>` and `<server max-per-proxy>` (the configuration's).
pub use crate::config::{DEFAULT_MAX_PER_ADDRESS, DEFAULT_MAX_PER_PROXY};

/// Whether an address is a trusted proxy.
pub type IsProxy = Arc<dyn Fn(IpAddr) -> bool + Send + Sync>;

/// How many connections one address may hold.
#[derive(Clone)]
pub struct PerAddress {
    /// Any address.
    pub max: usize,
    /// A trusted proxy.
    pub max_proxy: usize,
    /// Which addresses are trusted proxies.
    pub is_proxy: IsProxy,
}

impl std::fmt::Debug for PerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerAddress")
            .field("max", &self.max)
            .field("max_proxy", &self.max_proxy)
            .finish_non_exhaustive()
    }
}

/// The limits shared by all listeners of one server.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    slots: Arc<Semaphore>,
    max_connections: usize,
    cap_log: Arc<RateLimited>,
    accept_log: Arc<RateLimited>,
    per_address: Arc<AddressCounts>,
    /// This server's series of connections open and refused.
    counted: crate::ops_metrics::ConnectionMetrics,
}

impl Limits {
    pub fn new(header_timeout: Duration, max_connections: usize) -> Limits {
        let max_connections = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Limits {
            header_timeout,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            cap_log: Arc::new(RateLimited::new(Duration::from_secs(60))),
            accept_log: Arc::new(RateLimited::new(Duration::from_secs(1))),
            per_address: Arc::new(AddressCounts::new(PerAddress {
                max: DEFAULT_MAX_PER_ADDRESS,
                max_proxy: DEFAULT_MAX_PER_PROXY,
                is_proxy: Arc::new(|_| false),
            })),
            counted: Default::default(),
        }
    }

    /// These limits counting connections into `metrics` (the server's `/metrics`).
    pub fn counted(mut self, metrics: crate::ops_metrics::ConnectionMetrics) -> Limits {
        self.counted = metrics;
        self
    }

    /// A connection accepted on `listener`: counted as open until the guard is dropped.
    pub fn opened(&self, listener: &str) -> crate::ops_metrics::OpenConnection {
        self.counted.opened(listener)
    }

    /// These limits with `per` connections per address.
    pub fn per_address(mut self, per: PerAddress) -> Limits {
        self.per_address = Arc::new(AddressCounts::new(per));
        self
    }

    /// The slot of a new connection from `ip` under the per-address limit; `None` (logged at
    /// most once a minute per address, counted) when the address holds all it may.
    pub fn admit(&self, ip: IpAddr) -> Option<AddressSlot> {
        let slot = self.per_address.admit(ip.to_canonical());
        if slot.is_none() {
            self.counted.refused("per_address");
        }
        slot
    }

    /// A slot for one more connection; waits (without accepting) while the cap is reached.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return p;
        }
        if self.cap_log.allow(Instant::now()) {
            tracing::warn!(
                "{} connections open (<server max-connections>): not accepting until one closes",
                self.max_connections
            );
        }
        match self.slots.clone().acquire_owned().await {
            Ok(p) => p,
            // the semaphore is never closed
            Err(_) => std::future::pending().await,
        }
    }

    /// Logs an accept error (at most once a second) and pauses the listener.
    pub async fn accept_failed(&self, e: &std::io::Error) {
        if self.accept_log.allow(Instant::now()) {
            tracing::warn!("accept: {e} (pausing {} ms)", ACCEPT_BACKOFF.as_millis());
        }
        tokio::time::sleep(ACCEPT_BACKOFF).await;
    }

    /// `io` closed by the deadline of these limits.
    pub fn watch<I>(&self, io: I) -> Watched<I> {
        Watched::new(io, self.header_timeout)
    }
}

/// Open connections per address.
#[derive(Debug)]
struct AddressCounts {
    per: PerAddress,
    open: Mutex<HashMap<IpAddr, u32>>,
    /// When each address at its limit was last logged (bounded: cleared when large).
    logged: Mutex<HashMap<IpAddr, Instant>>,
}

/// Addresses whose last refusal log time is kept at most.
const MAX_LOGGED: usize = 4096;

impl AddressCounts {
    fn new(per: PerAddress) -> AddressCounts {
        AddressCounts {
            per,
            open: Mutex::new(HashMap::new()),
            logged: Mutex::new(HashMap::new()),
        }
    }

    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let proxy = (self.per.is_proxy)(ip);
        let max = if proxy {
            self.per.max_proxy
        } else {
            self.per.max
        };
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(ip).or_insert(0);
            if (*n as usize) < max.max(1) {
                *n += 1;
                return Some(AddressSlot {
                    counts: self.clone(),
                    ip,
                });
            }
        }
        self.log_refusal(ip, max, proxy, Instant::now());
        None
    }

    fn log_refusal(&self, ip: IpAddr, max: usize, proxy: bool, now: Instant) {
        let mut logged = self.logged.lock().unwrap_or_else(|e| e.into_inner());
        if logged.len() >= MAX_LOGGED {
            logged.retain(|_, t| now.saturating_duration_since(*t) < Duration::from_secs(60));
        }
        let due = logged
            .get(&ip)
            .is_none_or(|t| now.saturating_duration_since(*t) >= Duration::from_secs(60));
        if due && logged.len() < MAX_LOGGED {
            logged.insert(ip, now);
            let attr = if proxy {
                "max-per-proxy"
            } else {
                "max-per-address"
            };
            tracing::warn!(
                "{ip} holds {max} connections (<server {attr}>): closing its new ones (logged once a minute)"
            );
        }
    }

    fn release(&self, ip: IpAddr) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

/// One connection of an address, counted until dropped.
#[derive(Debug)]
pub struct AddressSlot {
    counts: Arc<AddressCounts>,
    ip: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.counts.release(self.ip);
    }
}

/// Says yes at most once per `every`.
#[derive(Debug)]
pub struct RateLimited {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl RateLimited {
    pub fn new(every: Duration) -> RateLimited {
        RateLimited {
            every,
            last: Mutex::new(None),
        }
    }

    pub fn allow(&self, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(t) if now.saturating_duration_since(t) < self.every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }
}

/// The deadline arithmetic of [`Watched`], apart from I/O.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    timeout: Duration,
    at: tokio::time::Instant,
}

impl Deadline {
    pub fn new(now: tokio::time::Instant, timeout: Duration) -> Deadline {
        Deadline {
            timeout,
            at: now + timeout,
        }
    }

    /// `n` bytes arrived at `now`.
    pub fn received(&mut self, now: tokio::time::Instant, n: usize) {
        let credit = Duration::from_micros((n as u64).saturating_mul(1_000_000) / MIN_RATE);
        self.at = (self.at + credit).min(now + self.timeout);
    }

    /// The server wrote (part of) an answer at `now`.
    pub fn answered(&mut self, now: tokio::time::Instant) {
        self.at = now + self.timeout;
    }

    pub fn at(&self) -> tokio::time::Instant {
        self.at
    }
}

/// An I/O stream whose reads fail with `TimedOut` once the client is too slow (see the module
/// documentation).
pub struct Watched<I> {
    io: I,
    deadline: Deadline,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<I> Watched<I> {
    pub fn new(io: I, timeout: Duration) -> Watched<I> {
        let deadline = Deadline::new(tokio::time::Instant::now(), timeout);
        Watched {
            io,
            sleep: Box::pin(tokio::time::sleep_until(deadline.at())),
            deadline,
        }
    }

    pub fn get_ref(&self) -> &I {
        &self.io
    }

    /// Tells the deadline that an answer was written past this wrapper (as by `sendfile`).
    pub fn answered(&mut self) {
        self.deadline.answered(tokio::time::Instant::now());
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                this.deadline.received(tokio::time::Instant::now(), n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let at = this.deadline.at();
                if this.sleep.deadline() != at {
                    this.sleep.as_mut().reset(at);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "client too slow (<server header-timeout>)",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r
            && *n > 0
        {
            this.deadline.answered(tokio::time::Instant::now());
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r
            && *n > 0
        {
            this.deadline.answered(tokio::time::Instant::now());
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_ends_at_the_timeout() {
        let t0 = tokio::time::Instant::now();
        let d = Deadline::new(t0, Duration::from_secs(30));
        assert_eq!(d.at(), t0 + Duration::from_secs(30));
    }

    #[test]
    fn a_trickle_earns_little_time() {
        let t0 = tokio::time::Instant::now();
        let mut d = Deadline::new(t0, Duration::from_secs(30));
        for i in 1..=20u64 {
            d.received(t0 + Duration::from_secs(i), 1);
        }
        // 20 bytes earn 20 ms at 1 KiB/s
        assert!(d.at() < t0 + Duration::from_secs(31));
    }

    #[test]
    fn a_fast_upload_is_never_cut_and_credit_is_capped() {
        let t0 = tokio::time::Instant::now();
        let mut d = Deadline::new(t0, Duration::from_secs(30));
        d.received(t0 + Duration::from_secs(29), 100 * 1024 * 1024);
        assert_eq!(d.at(), t0 + Duration::from_secs(59));
    }

    #[test]
    fn an_answer_restarts_the_wait() {
        let t0 = tokio::time::Instant::now();
        let mut d = Deadline::new(t0, Duration::from_secs(30));
        d.answered(t0 + Duration::from_secs(100));
        assert_eq!(d.at(), t0 + Duration::from_secs(130));
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let proxy: IpAddr = "10.0.0.1".parse().expect("proxy");
        let limits = Limits::new(Duration::from_secs(30), 100).per_address(PerAddress {
            max: 2,
            max_proxy: 3,
            is_proxy: Arc::new(move |ip| ip == proxy),
        });
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "::ffff:192.0.2.2".parse().expect("ip");
        let p: IpAddr = "10.0.0.1".parse().expect("ip");
        let first = limits.admit(a).expect("1st");
        let _second = limits.admit(a).expect("2nd");
        assert!(limits.admit(a).is_none(), "3rd from one address");
        assert!(limits.admit(b).is_some(), "another address");
        drop(first);
        assert!(limits.admit(a).is_some(), "a slot freed");
        let held: Vec<_> = (0..3).map(|_| limits.admit(p)).collect();
        assert!(held.iter().all(Option::is_some), "a proxy gets more");
        assert!(limits.admit(p).is_none());
    }

    #[test]
    fn rate_limited_says_yes_once_per_period() {
        let r = RateLimited::new(Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(r.allow(t0));
        assert!(!r.allow(t0 + Duration::from_millis(500)));
        assert!(r.allow(t0 + Duration::from_millis(1000)));
    }
}
