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
//! rows from the device index, certificate files and backups). What is shown of a device is
//! computed when its state is written (`state::index`), so a page of 10 000 devices costs no
//! file access for the states, only string formatting.
//!
//! Rules (contract §6): every page, endpoint and download needs a session; state-changing
//! requests need the session's CSRF token; with a login configured, plain-HTTP requests are
//! redirected to the HTTPS listener (PHP's `?nohttps` turns that off for the browser).

pub mod api;
mod api_http;
pub mod audit;
mod audit_http;
mod backups;
pub mod csrs;
mod csv_stream;
mod device_page;
mod errors;
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
mod rollouts;
mod router;
pub mod session;
pub mod show;
pub mod status;
pub mod throttle;
mod ui;
mod upload;
pub use crate::state::view;

use crate::app::{App, SharedApp};
use files::BackupCache;
use session::Sessions;
use std::sync::{Arc, OnceLock};
use throttle::Throttle;

pub use api_http::token_or_session;
pub use fleet::fleet_summary;
pub use respond::AdminError;
pub use router::routes;
pub use upload::{proceed_target, upload};

/// Bumped with the style sheet and script, so browsers fetch the new ones.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The admin pages' view of the server: the shared [`App`] and what the admin side keeps
/// between requests. The admin handlers' state; it reads like the [`App`] it wraps.
pub struct AdminApp {
    pub core: SharedApp,
    pub admin: AdminState,
}

/// The state of the admin routes.
pub type SharedAdmin = Arc<AdminApp>;

impl AdminApp {
    /// The admin side of `core`, with no sessions yet.
    pub fn shared(core: SharedApp) -> SharedAdmin {
        Arc::new(AdminApp {
            core,
            admin: AdminState::default(),
        })
    }
}

impl std::ops::Deref for AdminApp {
    type Target = App;

    fn deref(&self) -> &App {
        &self.core
    }
}

/// What the admin side keeps between requests.
#[derive(Default)]
pub struct AdminState {
    pub sessions: Sessions,
    /// Failed admin logins.
    pub throttle: Throttle,
    /// Failed API tokens, apart from the logins.
    pub api_throttle: Throttle,
    backups: BackupCache,
    /// Summaries of waiting CSRs.
    csrs: csrs::CsrCache,
    /// The audit log of admin actions.
    pub audit: audit::AuditLog,
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

/// Opens the state store at start-up: it removes leftover temporary files and indexes every
/// state file in the background, so that the first status page lists the whole fleet.
pub fn warm_up(app: SharedAdmin) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        if let Ok(cfg) = app.config.get() {
            let _store = app.states(&cfg);
        }
    })
}
