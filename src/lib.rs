//! update-server: a drop-in replacement for the innovaphone PHP Update Server V2.
//!
//! The pure core turns (request, merged configuration, device state, snippet files, clock
//! value) into (answer, state changes, [`fileop::FileOp`]s) without I/O:
//! - [`config`]: types and accessors, the PHP merge, the typed sections (reading the files
//!   and re-reading them on change, `config::ConfigStore`, is its shell part);
//! - [`script`]: the poll's update script; [`firmware`]: naming and parsing;
//! - [`certs`]: conversions, the decision, `mode=vardump` (reading `certs/`, `CertFiles::load`,
//!   `read_ca_keys` and the `CertCache`, is its shell part);
//! - [`backup`]: filtering, rotation, the plan of file changes (listing and reading the
//!   backups, `backup::store`, is its shell part);
//! - [`queries`], [`answer`], [`request`], [`fileop`], [`identity`] (the one client identity
//!   of a request and the serial it proves), [`upload_trust`] (forcetrust for the uploads), and the helpers [`xml`] and [`php`].
//!
//! The shell does HTTP/TLS, files and the clock: [`server`] (router, listeners, `serve`),
//! [`conn`] (connections), [`app`] (the one state of a server), [`auth`] (sessions, CSRF,
//! throttles), [`metrics`] (the registry), [`origins`] (address → serial), [`respond`], [`http`] (device
//! endpoints; it also applies the [`fileop::FileOp`]s), [`tls`] (the TLS listeners, client identity, proxies), [`state`] (the state files), [`snippets`] (the snippet
//! directory), the master lookup in [`firmware`], [`hooks`], [`admin`], [`clock`], [`watch`]
//! (noticing file changes without a system call per request), [`static_files`] (`fw/`, `web/`).

pub mod admin;
pub mod answer;
pub mod app;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod certs;
pub mod cli_tools;
pub mod clock;
pub mod config;
pub mod config_check;
pub mod conn;
pub mod conn_guard;
pub mod device;
pub mod fileop;
pub mod firmware;
pub mod fsio;
pub mod fw_lane;
pub mod health;
pub mod hooks;
pub mod http;
pub mod identity;
pub mod idle_memory;
pub mod lifecycle;
pub mod log_sink;
pub mod metrics;
pub mod ops_metrics;
pub mod origins;
pub mod php;
pub mod queries;
pub mod request;
pub mod request_log;
pub mod respond;
pub mod rollout;
pub mod rollout_ticker;
pub mod safe_path;
pub mod script;
pub mod server;
pub mod snippets;
pub mod state;
pub mod static_files;
pub mod tls;
pub mod upload_trust;
pub mod watch;
pub mod xml;
