//! The integration tests: one test binary (one build, one link) with a module per area, all
//! on the one harness in `common` (see `tests/README.md`). Run one area with
//! `cargo test --test it admin::`, one test with its path.
//!
//! The modules share one process: a test must not rely on process-wide state another test
//! changes (environment variables, the working directory, a port picked and not yet bound).
//! Each server a test starts has its own state (`App`: metrics, address→serial table, the
//! master's reachability); child processes on picked ports take their turn
//! (`common::start_turn`).
//!
//! One test target stays apart, because it must: `tests/conformance.rs`, whose harness is
//! independent of the code under test and also runs against another implementation.

mod common;

mod abuse;
mod admin;
mod admin_api_schema;
mod admin_audit;
mod admin_build_history;
mod admin_error_pages;
mod admin_pages_browser;
mod bounded_bodies;
mod browser;
mod cli;
mod compat;
mod device_data;
mod freshness;
mod fw_lane;
mod identity;
mod lifecycle;
mod operations;
mod package;
mod poll;
mod proxies;
mod robustness;
mod rollouts;
mod rollouts_browser;
mod slow_clients;
mod snippet_rollouts;
mod snippet_rollouts_browser;
mod state_engine;
mod tls;
mod triage;
mod triage_ui;
mod upload_trust;
