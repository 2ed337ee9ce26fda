//! The admin side of the server. It owns: the login and logout (`login`; sessions, CSRF
//! tokens and throttles are [`crate::auth`]'s, their state is in [`crate::app::AdminState`]);
//! the admin pages below `{prefix}/admin/admin.php` (aliases `admin/` and
//! `admin`) — the device status page with its fleet summary (`mode=status`, the default,
//! [`status`]), the configuration (`mode=show`, [`show`]) and "add a new device"
//! (`mode=info`, [`info`]); the `mode=ui&cmd=…` endpoints (`delstatus`, `touchstatus`,
//! `updatestatus`, `updaterows`, `rowpart`, `delfile`, `deliverfile`); the signed-certificate upload
//! `update.php?mode=upload` ([`upload`]); the JSON API (`{prefix}/api/devices[/SN]`, CSV
//! export, forgetting a device, `{prefix}/api/rollouts` and their actions, the OpenAPI
//! description; [`api`], `api_http`, `rollouts`); `/metrics` behind the API token
//! (`metrics_http`); and the page's own style sheet and script, compiled in and served from
//! memory as `{prefix}/web/update-server.css|js`.
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
pub use crate::certs::csrs;
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
mod metrics_http;
mod notice;
pub mod openapi;
pub mod order;
mod pages;
pub mod query;
mod request;
mod respond;
mod rollout_cells;
mod rollouts;
mod router;
pub use crate::auth::session;
pub mod show;
pub mod status;
pub use crate::auth::throttle;
mod ui;
mod upload;
pub use crate::state::view;

use crate::app::SharedApp;

pub use api_http::token_or_session;
pub use fleet::fleet_summary;
pub use metrics_http::{endpoint as metrics_endpoint, from_loopback};
pub use respond::AdminError;
pub use router::routes;
pub use upload::{proceed_target, upload};

/// Bumped with the style sheet and script, so browsers fetch the new ones.
pub const ASSET_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Opens the state store at start-up: it removes leftover temporary files and indexes every
/// state file in the background, so that the first status page lists the whole fleet.
pub fn warm_up(app: SharedApp) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_blocking(move || {
        if let Ok(cfg) = app.config.get() {
            let _store = app.states(&cfg);
        }
    })
}
