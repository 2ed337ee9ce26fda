//! The wall clock every module shares: current unix time in seconds.

use std::time::{SystemTime, UNIX_EPOCH};

/// Current unix time.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
