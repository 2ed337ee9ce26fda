//! update-server: a drop-in replacement for the innovaphone PHP Update Server V2.
//!
//! The pure core turns (request, merged configuration, device state, snippet files, clock)
//! into (answer, state changes) without I/O: [`config`], [`script`], [`firmware`] (naming and
//! parsing), [`certs`] (decisions and conversions), [`backup`] (filtering and rotation),
//! [`queries`]. The shell does HTTP/TLS, files and clocks: [`http`], [`trust`], [`state`]
//! (the files), [`snippets`] (the snippet directory), the master lookup in [`firmware`],
//! [`hooks`], [`admin`].

pub mod admin;
pub mod answer;
pub mod backup;
pub mod certs;
pub mod cli_tools;
pub mod config;
pub mod config_check;
pub mod firmware;
pub mod hooks;
pub mod http;
pub mod php;
pub mod queries;
pub mod request;
pub mod script;
pub mod snippets;
pub mod state;
pub mod trust;
pub mod xml;
