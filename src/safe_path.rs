//! Which file a URL below a static directory (`fw/`, `web/`) may name: [`resolve`] refuses
//! NUL bytes and other undecodable paths (400), dotfiles and dot-directories (`.htaccess`,
//! `.git/…`, and so `..`), and anything whose real path (symlinks followed) leaves the root
//! (404, as if it did not exist). [`crate::static_files`] and [`crate::fw_lane`] serve
//! nothing else.

use axum::http::StatusCode;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a path is not served.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("path cannot be decoded or holds a NUL byte")]
    BadPath,
    #[error("dotfiles are not served")]
    Hidden,
    #[error("path leads outside the directory")]
    Outside,
    #[error("no such file")]
    NotFound,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::BadPath => StatusCode::BAD_REQUEST,
            _ => StatusCode::NOT_FOUND,
        }
    }
}

/// The real path of the file `url_path` (percent-encoded, relative to the directory, with or
/// without a leading `/`) names below `root`, or why it is refused.
pub fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, Refusal> {
    let decoded = percent_encoding::percent_decode_str(url_path)
        .decode_utf8()
        .map_err(|_| Refusal::BadPath)?;
    if decoded.contains('\0') || decoded.contains('\\') {
        return Err(Refusal::BadPath);
    }
    let mut path = root.to_path_buf();
    for seg in decoded.split('/').filter(|s| !s.is_empty()) {
        if seg.starts_with('.') {
            return Err(Refusal::Hidden);
        }
        path.push(seg);
    }
    let real_root = root.canonicalize().map_err(|_| Refusal::NotFound)?;
    let real = path.canonicalize().map_err(|_| Refusal::NotFound)?;
    if real.starts_with(&real_root) {
        Ok(real)
    } else {
        Err(Refusal::Outside)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(d.path().join("fw/a")).expect("dir");
        std::fs::write(d.path().join("fw/a/f.bin"), b"x").expect("file");
        std::fs::write(d.path().join("fw/.htaccess"), b"x").expect("file");
        std::fs::write(d.path().join("secret"), b"x").expect("file");
        d
    }

    #[test]
    fn plain_files_resolve() {
        let d = root();
        let fw = d.path().join("fw");
        assert!(resolve(&fw, "/a/f.bin").is_ok());
        assert!(resolve(&fw, "a/%66.bin").is_ok());
        assert_eq!(resolve(&fw, "/a/g.bin"), Err(Refusal::NotFound));
    }

    #[test]
    fn nul_dotfiles_and_dotdot_are_refused() {
        let d = root();
        let fw = d.path().join("fw");
        assert_eq!(resolve(&fw, "/%00"), Err(Refusal::BadPath));
        assert_eq!(resolve(&fw, "/%FF"), Err(Refusal::BadPath));
        assert_eq!(resolve(&fw, "/.htaccess"), Err(Refusal::Hidden));
        assert_eq!(
            resolve(&fw, "/a/%2e%2e/%2e%2e/secret"),
            Err(Refusal::Hidden)
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let d = root();
        let fw = d.path().join("fw");
        std::os::unix::fs::symlink(d.path().join("secret"), fw.join("out")).expect("link");
        std::os::unix::fs::symlink(fw.join("a/f.bin"), fw.join("in")).expect("link");
        assert_eq!(resolve(&fw, "/out"), Err(Refusal::Outside));
        assert!(resolve(&fw, "/in").is_ok());
    }
}
