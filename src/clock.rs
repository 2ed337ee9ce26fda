//! The clock (shell): the current time, and unix seconds of a file time. Pure modules get
//! `now` passed in; only the shell calls [`now`].

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds of a `SystemTime` (0 for times before 1970).
pub fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The current time in unix seconds.
pub fn now() -> i64 {
    unix_secs(SystemTime::now())
}
