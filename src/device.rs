//! The device use-cases, apart from HTTP: a poll of `update.php` ([`poll`]: lock the
//! device, read what the pure `script::build` needs, resolve its needs, write the results)
//! and the `mode=backup|query|vardump` uploads ([`upload`]: check the trust rules, run the
//! upload on an [`crate::answer::Answer`], apply its file changes, store the state durably).
//! `http` calls them for requests, the command line's `simulate` calls [`poll::simulate`].
//!
//! A refusal is a [`DeviceError`], which answers with PHP's text ([`error`]).

pub mod error;
pub mod poll;
pub mod upload;

pub use error::DeviceError;

use crate::app::App;
use crate::config::Config;
use crate::fileop::FileOp;
use crate::php::Args;
use crate::state::StateStore;
use std::path::Path;
use std::sync::Arc;

/// The serial number a request names (`sn`, empty when absent).
pub fn serial(args: &Args) -> String {
    args.get("sn").map(|s| s.into_owned()).unwrap_or_default()
}

/// Applies file changes a pure step asked for (paths are root-relative), in order. A failed
/// write stops there (its path is returned; what follows may depend on it); a failed removal
/// is logged and the rest goes on.
pub fn apply_file_ops(root: &Path, ops: &[FileOp]) -> Result<(), String> {
    for op in ops {
        match op {
            FileOp::Write { path, bytes } => {
                if let Err(e) = crate::fsio::write_atomic(&root.join(path), bytes) {
                    tracing::error!("cannot write {path}: {e}");
                    return Err(path.clone());
                }
            }
            FileOp::Delete { path } => match std::fs::remove_file(root.join(path)) {
                Ok(()) => tracing::info!("removed {path}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::error!("cannot remove {path}: {e}"),
            },
        }
    }
    Ok(())
}

/// The state store of a device and its lock, held until the request is done: all requests of
/// one device are served one after the other. No store (and no lock) without state tracking
/// or serial number.
pub async fn lock_device(
    app: &App,
    cfg: &Config,
    sn: &str,
) -> (
    Option<Arc<StateStore>>,
    Option<tokio::sync::OwnedMutexGuard<()>>,
) {
    if crate::php::empty(sn) {
        return (None, None);
    }
    let Some(store) = app.states(cfg) else {
        return (None, None);
    };
    let guard = store.lock_for(sn).lock_owned().await;
    (Some(store), Some(guard))
}

/// Purges expired states when due (at most hourly), off the async threads.
fn expire_states(store: &Arc<StateStore>, cfg: &Config) {
    let (now, expire) = (crate::clock::now(), cfg.status.expire);
    if !store.expiry_due(now, expire) {
        return;
    }
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let removed = store.expire_now(now, expire);
        if !removed.is_empty() {
            tracing::info!("purged {} expired device states", removed.len());
        }
    });
}

#[cfg(test)]
mod tests;
