//! The hourly purge marker `<status dir>/lastcleanup`, shared with the PHP server: the purge
//! of expired state files runs when the marker is missing or its modification time is more
//! than an hour old, and then touches it. Because the marker is a file (as in PHP), the hourly
//! rhythm survives restarts and a switch between PHP and this server in either direction.

use std::path::{Path, PathBuf};

/// The marker's file name inside the status directory (PHP's name).
pub const MARKER: &str = "lastcleanup";

/// Seconds between two purges.
pub const PERIOD: i64 = 60 * 60;

/// Whether a purge is due at `now`, given the marker's modification time (`None`: no marker).
pub fn due(now: i64, marker_mtime: Option<i64>) -> bool {
    marker_mtime.is_none_or(|t| now - t > PERIOD)
}

pub fn marker_path(dir: &Path) -> PathBuf {
    dir.join(MARKER)
}

/// The marker's modification time in unix seconds, if it exists.
pub fn read_marker(dir: &Path) -> Option<i64> {
    let meta = std::fs::metadata(marker_path(dir)).ok()?;
    meta.modified().ok().map(crate::clock::unix_secs)
}

/// Touches the marker (creates it if needed) with the modification time `now`.
pub fn touch_marker(dir: &Path, now: i64) -> std::io::Result<()> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(marker_path(dir))?;
    let secs = u64::try_from(now).unwrap_or(0);
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_without_marker_or_after_an_hour() {
        assert!(due(1000, None));
        assert!(!due(10_000, Some(10_000 - 3600)));
        assert!(due(10_000, Some(10_000 - 3601)));
        assert!(!due(10_000, Some(10_500)), "a marker from the future waits");
    }

    #[test]
    fn marker_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(read_marker(dir.path()), None);
        touch_marker(dir.path(), 1_700_000_000).expect("touch");
        assert_eq!(read_marker(dir.path()), Some(1_700_000_000));
        assert!(dir.path().join("lastcleanup").is_file());
    }
}
