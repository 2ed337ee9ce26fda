//! Small file-system helpers of the shell: writing a file atomically ([`write_atomic`]: a
//! temporary file in the same directory, synced, then renamed over the old one), used for
//! the file operations of polls and uploads (certificates, backups), the admin side's
//! uploads, the generated TLS files, the master cache and rollout states.

use std::io::Write;
use std::path::Path;

/// Writes a file atomically: a temporary file in the same directory, then a rename.
/// Creates the directory when missing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_mode(path, bytes, None)
}

/// [`write_atomic`], the new file created with permission bits `mode` (Unix) from the start,
/// e.g. `0o600` for a private key.
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: Option<u32>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", rand::random::<u64>()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(m) = mode {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(m);
        }
        #[cfg(not(unix))]
        let _ = mode;
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
