//! Helpers of the conformance runner (`tests/conformance.rs`).
//!
//! Everything here is independent of the code under test: the runner only
//! talks to the `update-server` binary over sockets and looks at the files it
//! leaves behind.

pub mod diff;
pub mod normalise;
pub mod placeholders;
pub mod xmlcmp;
