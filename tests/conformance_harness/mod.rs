//! Helpers of the conformance runner (`tests/conformance.rs`).
//!
//! Everything here is independent of the code under test: the runner only
//! talks to the `update-server` binary over sockets and looks at the files it
//! leaves behind.

pub mod case;
pub mod compare;
pub mod diff;
pub mod http;
pub mod master;
pub mod normalise;
pub mod pki;
pub mod placeholders;
pub mod server;
pub mod xmlcmp;
