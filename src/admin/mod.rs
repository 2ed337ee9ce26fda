//! The admin side of the server. It owns: the login, sessions and CSRF tokens
//! ([`session`]); the admin pages below `{prefix}/admin/admin.php` (aliases `admin/` and
//! `admin`) — the device status page with its fleet summary (`mode=status`, the default,
//! [`status`]), the configuration (`mode=show`, [`show`]) and "add a new device"
//! (`mode=info`, [`info`]); the `mode=ui&cmd=…` endpoints (`delstatus`, `touchstatus`,
//! `updatestatus`, `updaterows`, `rowpart`, `delfile`, `deliverfile`); the signed-certificate upload
//! `update.php?mode=upload` ([`upload`]); the read-only JSON API `{prefix}/api/devices[/SN]`
//! ([`api`]); and the page's own style sheet and script, compiled in and served from memory
//! as `{prefix}/web/update-server.css|js`.
//!
//! Rendering is pure ([`status`], [`show`], [`info`], [`api`] turn configuration, device
//! views, file lists and the clock into HTML or JSON); the shell around it is split by
//! concern: `router` (routes, request parsing, HTTPS redirect, dispatch by `mode`),
//! `respond` (answers, the common headers and [`AdminError`]), `login`, `pages`, `ui` (one
//! function per `cmd`), `upload`, `api_http` (the API's HTTP side) and `fleet` (the device
//! rows from state files, certificate files and backups). What is shown of a device is computed
//! once per state file version ([`view::ViewCache`]), so a page of 10 000 devices costs a
//! directory listing, a `stat` per file and string formatting.
//!
//! Rules (contract §6): every page, endpoint and download needs a session; state-changing
//! requests need the session's CSRF token; with a login configured, plain-HTTP requests are
//! redirected to the HTTPS listener (PHP's `?nohttps` turns that off for the browser).

pub mod api;
mod api_http;
mod backups;
mod export;
pub mod files;
pub mod flash;
mod fleet;
pub mod html;
pub mod info;
mod login;
pub mod openapi;
pub mod order;
mod pages;
pub mod query;
mod respond;
mod router;
pub mod session;
pub mod show;
pub mod status;
pub mod throttle;
mod ui;
mod upload;
pub mod view;

use crate::app::SharedApp;
use files::BackupCache;
use session::Sessions;
use std::sync::OnceLock;
use throttle::Throttle;
use view::ViewCache;

pub use respond::AdminError;
pub use router::routes;
pub use upload::{proceed_target, upload};

/// Bumped with the style sheet and script, so browsers fetch the new ones.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the admin side keeps between requests.
#[derive(Default)]
pub struct AdminState {
    pub sessions: Sessions,
    /// Failed admin logins.
    pub throttle: Throttle,
    /// Failed API tokens, apart from the logins.
    pub api_throttle: Throttle,
    views: ViewCache,
    backups: BackupCache,
    https_port: OnceLock<u16>,
}

impl AdminState {
    /// Tells where the HTTPS listener is (for the redirect of plain-HTTP admin requests).
    pub fn set_https_port(&self, port: u16) {
        let _ = self.https_port.set(port);
    }

    pub fn https_port(&self) -> Option<u16> {
        self.https_port.get().copied()
    }
}

/// Reads every state file once in the background (at start-up), so that the first status
/// page is as quick as the next ones and the first polls find their state in memory.
pub fn warm_up(app: SharedApp) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        let Ok(cfg) = app.config.get() else {
            return;
        };
        let started = std::time::Instant::now();
        let (_, total) = fleet::collect_rows(
            &app,
            &cfg,
            &query::Query::default(),
            order::Sort::default(),
            false,
        );
        tracing::info!(
            "read {total} device states in {} ms",
            started.elapsed().as_millis()
        );
    })
}
