//! Reading a device's certificate files (the shell part of the workflow): what
//! [`super::decide`] gets as [`CertFiles`].

use super::{CertFiles, CertPaths, FileContent};
use crate::config::CustomCerts;
use std::path::Path;

impl CertFiles {
    /// Reads what the workflow needs from disk (a few `stat`s; contents only when present).
    pub fn load(root: &Path, cc: &CustomCerts, sn: &str) -> CertFiles {
        let p = CertPaths::new(cc, sn);
        let signed = match std::fs::read(root.join(&p.signed)) {
            Ok(b) => Some(Ok(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(Err(e.to_string())),
        };
        let ca_keys = match (&signed, &cc.ca_keys) {
            (Some(_), Some(pattern)) => read_ca_keys(root, &cc.dir, pattern),
            _ => Vec::new(),
        };
        CertFiles {
            request_der: std::fs::read(root.join(&p.der)).ok(),
            request_pem: root.join(&p.pem).is_file(),
            signed,
            request_key: root.join(&p.key).is_file(),
            ca_keys,
        }
    }
}

/// The files PHP's `glob("DIR/PATTERN")` finds for `customcerts/@CAkeys` (e.g. `CAkey*`, or
/// `chain/*.cer` in a sub-directory), sorted by name, with their contents. Like the C
/// library's `glob`, wildcards do not match a leading dot or cross a `/`.
pub fn read_ca_keys(root: &Path, dir: &str, pattern: &str) -> Vec<(String, FileContent)> {
    let base = root.join(dir);
    let full = format!(
        "{}/{pattern}",
        glob::Pattern::escape(&base.to_string_lossy())
    );
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = match glob::glob_with(&full, opts) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("customcerts/@CAkeys '{pattern}' is not a usable pattern: {e}");
            return Vec::new();
        }
    };
    let mut found: Vec<(String, std::path::PathBuf)> = paths
        .flatten()
        .filter_map(|p| {
            let rest = p.strip_prefix(&base).ok()?;
            let rest: Vec<String> = rest
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            Some((format!("{dir}/{}", rest.join("/")), p))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
        .into_iter()
        .map(|(rel, p)| (rel, std::fs::read(&p).map_err(|e| e.to_string())))
        .collect()
}
