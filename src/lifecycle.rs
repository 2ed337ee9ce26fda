//! Running as a service: the process signals (SIGTERM and SIGINT stop gracefully, SIGHUP
//! reloads the configuration and the TLS files) and the TLS configurations that a reload
//! replaces while the listeners keep running ([`TlsSlot`], [`LiveTls`]). The graceful stop
//! itself (no new connections, requests in flight finish within `<server shutdown-grace>`,
//! pending state written) is in `server::serve_with`.

use crate::app::App;
use crate::tls::{TlsSetup, TlsSlot, TlsSource};
use std::future::Future;
use std::sync::Mutex;
use tokio::sync::{mpsc, oneshot};

/// The TLS configurations of the running listeners and where they were read from.
pub struct LiveTls {
    pub https: TlsSlot,
    pub mtls: Option<TlsSlot>,
    fingerprint: Mutex<String>,
    source: TlsSource,
}

impl LiveTls {
    pub fn new(setup: TlsSetup) -> LiveTls {
        LiveTls {
            https: TlsSlot::new(setup.https),
            mtls: setup.mtls.map(TlsSlot::new),
            fingerprint: Mutex::new(setup.fingerprint),
            source: setup.source,
        }
    }

    /// Reads the certificate, the key and the client CA bundle again; on any error the
    /// configurations in use stay.
    pub fn reload(&self) {
        let src = &self.source;
        let new = match TlsSetup::load(&src.root, &src.opts, self.mtls.is_some()) {
            Ok(n) => n,
            Err(e) => {
                tracing::error!("reload: TLS files not taken, the ones in use stay: {e}");
                return;
            }
        };
        self.https.set(new.https);
        if let (Some(slot), Some(cfg)) = (&self.mtls, new.mtls) {
            slot.set(cfg);
            if let Some(ca) = &src.opts.client_ca {
                tracing::info!("reload: client CA bundle {} read again", ca.display());
            }
        }
        let mut fp = self.fingerprint.lock().unwrap_or_else(|e| e.into_inner());
        if *fp == new.fingerprint {
            tracing::info!(
                "reload: server certificate {} unchanged (SHA-256 {})",
                new.cert_path.display(),
                new.fingerprint
            );
        } else {
            tracing::info!(
                "reload: server certificate {} replaced: SHA-256 {} -> {}",
                new.cert_path.display(),
                fp,
                new.fingerprint
            );
            *fp = new.fingerprint;
        }
    }
}

/// SIGHUP: the configuration files and the TLS files are read again.
pub fn reload(app: &App, tls: Option<&LiveTls>) {
    tracing::info!("reload requested (SIGHUP)");
    match app.config.reload() {
        Ok(changed) if changed.is_empty() => {
            tracing::info!("reload: configuration read, no file changed")
        }
        Ok(changed) => tracing::info!(
            "reload: configuration read, changed: {}",
            changed.join(", ")
        ),
        Err(e) => {
            tracing::error!("reload: configuration error, the last good one stays in use: {e}")
        }
    }
    if let Some(t) = tls {
        t.reload();
    }
}

/// The process signals: the future resolves on SIGTERM or SIGINT; the receiver yields one
/// item per SIGHUP. Must be called inside the runtime.
pub fn signals() -> std::io::Result<(impl Future<Output = ()> + Send, mpsc::Receiver<()>)> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (reload_tx, reload_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM received"); break; }
                _ = int.recv() => { tracing::info!("SIGINT received"); break; }
                _ = hup.recv() => { let _ = reload_tx.try_send(()); }
            }
        }
        let _ = stop_tx.send(());
    });
    let stop = async {
        let _ = stop_rx.await;
    };
    Ok((stop, reload_rx))
}
