//! The device files the admin pages list, let download and delete: certificate files
//! (`certs/SN-…`), configuration backups (`backup/HWID/HWID.N.txt`), state files and snippets.
//!
//! `deliverfile` serves only regular files below the status, backup, certificate and snippet
//! directories (contract §6): [`deliverable`] checks the name without touching the disk, and
//! [`resolve`] makes sure symbolic links do not lead out of them. `delfile` deletes only a
//! device's own certificate files ([`deletable`]).
//!
//! For speed, the certificate directory is listed once per page ([`CertIndex`]), and a
//! device's backup list is read again only when its directory changed ([`crate::backup::BackupCache`]).

use crate::certs::CertPaths;
use crate::config::{Config, CustomCerts};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a file is not served or deleted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FileError {
    #[error("file name '{0}' is not a plain relative path")]
    BadName(String),
    #[error("'{0}' is not below the status, backup, certificate or snippet directory")]
    NotAllowed(String),
    #[error("'{0}' does not exist or is no regular file")]
    NotFound(String),
}

/// The path components of a configured directory (`./status/` → `["status"]`); `None` when
/// it could leave the root.
fn dir_parts(dir: &str) -> Option<Vec<&str>> {
    let parts: Vec<&str> = dir
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    (!parts.is_empty() && !parts.contains(&"..") && !dir.starts_with('/')).then_some(parts)
}

/// The root-relative directories `deliverfile` serves from.
pub fn deliverable_dirs(cfg: &Config) -> Vec<String> {
    [
        cfg.status.dir.as_deref(),
        cfg.backup.dir.as_deref(),
        cfg.customcerts.as_ref().map(|c| c.dir.as_str()),
        Some(cfg.times.dir.as_str()),
    ]
    .into_iter()
    .flatten()
    .filter_map(dir_parts)
    .map(|p| p.join("/"))
    .collect()
}

/// Checks a `fn` argument: a relative path of plain names below one of the
/// [`deliverable_dirs`]. Returns the normalised path.
pub fn deliverable(cfg: &Config, name: &str) -> Result<String, FileError> {
    let bad = || FileError::BadName(name.to_string());
    if name.is_empty() || name.len() > 1024 || name.starts_with('/') {
        return Err(bad());
    }
    let parts: Vec<&str> = name.split('/').collect();
    for p in &parts {
        if p.is_empty()
            || *p == "."
            || *p == ".."
            || p.contains('\\')
            || p.chars().any(|c| c.is_control())
        {
            return Err(bad());
        }
    }
    let allowed = deliverable_dirs(cfg).into_iter().any(|d| {
        let dp: Vec<&str> = d.split('/').collect();
        parts.len() > dp.len() && parts[..dp.len()] == dp[..]
    });
    if !allowed {
        return Err(FileError::NotAllowed(name.to_string()));
    }
    Ok(parts.join("/"))
}

/// The file on disk for a [`deliverable`] name: it must be a regular file whose real path
/// (symbolic links resolved) is still below the same directory.
pub fn resolve(root: &Path, cfg: &Config, name: &str) -> Result<PathBuf, FileError> {
    let rel = deliverable(cfg, name)?;
    let not_found = || FileError::NotFound(name.to_string());
    let real = root.join(&rel).canonicalize().map_err(|_| not_found())?;
    let inside = deliverable_dirs(cfg).into_iter().any(|d| {
        root.join(&d)
            .canonicalize()
            .is_ok_and(|base| real.starts_with(&base) && real != base)
    });
    if !inside {
        return Err(FileError::NotAllowed(name.to_string()));
    }
    if !real.is_file() {
        return Err(not_found());
    }
    Ok(real)
}

/// The root-relative certificate files of `sn` that `delfile` may remove.
pub fn deletable(cfg: &Config, sn: &str, file: &str) -> Result<String, FileError> {
    let Some(cc) = &cfg.customcerts else {
        return Err(FileError::NotAllowed(file.to_string()));
    };
    let p = CertPaths::new(cc, sn);
    [p.der, p.pem, p.signed, p.error]
        .into_iter()
        .find(|c| c == file)
        .ok_or_else(|| FileError::NotAllowed(file.to_string()))
}

/// Which certificate files a device has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertState {
    pub der: Option<String>,
    pub pem: Option<String>,
    pub signed: Option<String>,
    pub error: Option<String>,
    /// Subject and key fingerprint of a waiting CSR (see [`CertState::read_csr`]).
    pub csr: Option<crate::certs::CsrSummary>,
}

impl CertState {
    /// A CSR is waiting for an administrator.
    pub fn csr_waiting(&self) -> bool {
        (self.der.is_some() || self.pem.is_some()) && self.signed.is_none()
    }

    /// The subject and key fingerprint of a waiting CSR (its DER file below `root`, read
    /// through `cache`); nothing for a device without one.
    pub fn read_csr(mut self, root: &Path, cache: &super::csrs::CsrCache) -> CertState {
        if !self.csr_waiting() {
            return self;
        }
        if let Some(der) = &self.der {
            self.csr = cache.summary(&root.join(der));
        }
        self
    }
}

/// The names in the certificate directory, listed once.
#[derive(Debug, Default)]
pub struct CertIndex {
    names: HashSet<String>,
}

impl CertIndex {
    pub fn read(root: &Path, cc: Option<&CustomCerts>) -> CertIndex {
        let mut names = HashSet::new();
        if let Some(cc) = cc
            && let Ok(rd) = std::fs::read_dir(root.join(&cc.dir))
        {
            for entry in rd.flatten() {
                names.insert(entry.file_name().to_string_lossy().into_owned());
            }
        }
        CertIndex { names }
    }

    /// The index of one device's certificate files (a `stat` per possible file).
    pub fn for_device(root: &Path, cc: &CustomCerts, sn: &str) -> CertIndex {
        let p = CertPaths::new(cc, sn);
        let names = [p.der, p.pem, p.signed, p.error]
            .into_iter()
            .filter(|f| root.join(f).is_file())
            .filter_map(|f| f.rsplit('/').next().map(str::to_string))
            .collect();
        CertIndex { names }
    }

    /// An index of the given names (tests).
    pub fn of(names: &[&str]) -> CertIndex {
        CertIndex {
            names: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    /// The certificate files of `sn`.
    pub fn state(&self, cc: &CustomCerts, sn: &str) -> CertState {
        self.files(cc, sn).state(cc, sn)
    }

    /// Which certificate files `sn` has, without their names.
    pub fn files(&self, cc: &CustomCerts, sn: &str) -> CertFileSet {
        let p = CertPaths::new(cc, sn);
        let has = |path: &str| {
            self.names
                .contains(path.rsplit('/').next().unwrap_or_default())
        };
        CertFileSet(
            [
                (&p.der, DER),
                (&p.pem, PEM),
                (&p.signed, SIGNED),
                (&p.error, ERROR),
            ]
            .into_iter()
            .filter(|(path, _)| has(path))
            .fold(0, |bits, (_, bit)| bits | bit),
        )
    }
}

const DER: u8 = 1;
const PEM: u8 = 2;
const SIGNED: u8 = 4;
const ERROR: u8 = 8;

/// Which certificate files a device has, in one byte: what the filter, the sort and the
/// summary of a whole fleet look at. The names follow from the configuration and the serial
/// number ([`CertFileSet::state`]) and are made only for the devices a page shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CertFileSet(u8);

impl CertFileSet {
    /// A CSR is waiting for an administrator (as [`CertState::csr_waiting`]).
    pub fn csr_waiting(self) -> bool {
        self.0 & (DER | PEM) != 0 && !self.signed()
    }

    /// A signed certificate waits for the device.
    pub fn signed(self) -> bool {
        self.0 & SIGNED != 0
    }

    /// The signing failed (an error file).
    pub fn error(self) -> bool {
        self.0 & ERROR != 0
    }

    /// The files with their root-relative names.
    pub fn state(self, cc: &CustomCerts, sn: &str) -> CertState {
        let p = CertPaths::new(cc, sn);
        let has = |bit: u8, path: String| (self.0 & bit != 0).then_some(path);
        CertState {
            der: has(DER, p.der),
            pem: has(PEM, p.pem),
            signed: has(SIGNED, p.signed),
            error: has(ERROR, p.error),
            csr: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Config {
        Config::from_user_xml(&format!(
                r#"<config><master info=""/><status dir="status"/><backup dir="backup"/>{extra}</config>"#
            )).expect("config")
    }

    #[test]
    fn only_files_below_the_four_directories_are_deliverable() {
        let cfg = config(r#"<customcerts dir="certs"/>"#);
        assert_eq!(
            deliverable_dirs(&cfg),
            vec!["status", "backup", "certs", "scripts"]
        );
        for ok in [
            "status/00-90.xml",
            "backup/IP232-1/IP232-1.3.txt",
            "certs/00-90-request.p10.der",
            "scripts/update-all-all.txt",
        ] {
            assert_eq!(deliverable(&cfg, ok).as_deref(), Ok(ok));
        }
        for bad in [
            "../etc/passwd",
            "status/../config/user-config.xml",
            "/etc/passwd",
            "status//x",
            "status/./x.xml",
            "status\\..\\x",
            "status/a\0b",
            "",
            "status",
        ] {
            assert!(deliverable(&cfg, bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            deliverable(&cfg, "config/user-config.xml"),
            Err(FileError::NotAllowed("config/user-config.xml".into()))
        );
        assert!(deliverable(&cfg, "cache/master-info.xml").is_err());
        let no_certs = config("");
        assert!(deliverable(&no_certs, "certs/x.der").is_err());
    }

    #[test]
    fn symbolic_links_out_of_the_directories_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("status")).expect("mkdir");
        std::fs::create_dir_all(root.join("config")).expect("mkdir");
        std::fs::write(root.join("config/secret.xml"), "x").expect("write");
        std::fs::write(root.join("status/a.xml"), "<state/>").expect("write");
        let cfg = config("");
        assert!(resolve(root, &cfg, "status/a.xml").is_ok());
        assert_eq!(
            resolve(root, &cfg, "status/none.xml"),
            Err(FileError::NotFound("status/none.xml".into()))
        );
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("config/secret.xml"), root.join("status/l.xml"))
                .expect("symlink");
            assert_eq!(
                resolve(root, &cfg, "status/l.xml"),
                Err(FileError::NotAllowed("status/l.xml".into()))
            );
        }
        std::fs::create_dir_all(root.join("status/sub")).expect("mkdir");
        assert!(resolve(root, &cfg, "status/sub").is_err(), "directories");
    }

    #[test]
    fn only_the_devices_own_certificate_files_are_deletable() {
        let cfg = config(r#"<customcerts dir="certs"/>"#);
        assert_eq!(
            deletable(&cfg, "00-90", "certs/00-90-request.p10.der").as_deref(),
            Ok("certs/00-90-request.p10.der")
        );
        assert!(deletable(&cfg, "00-90", "certs/00-90-signedrequest.cer").is_ok());
        assert!(deletable(&cfg, "00-90", "certs/00-91-request.p10.der").is_err());
        assert!(deletable(&cfg, "00-90", "status/00-90.xml").is_err());
        assert!(deletable(&cfg, "00-90", "certs/CAkey1.pem").is_err());
        assert!(deletable(&config(""), "00-90", "certs/00-90-request.p10.der").is_err());
    }

    #[test]
    fn cert_index_finds_a_devices_files() {
        let cfg = config(r#"<customcerts dir="certs"/>"#);
        let cc = cfg.customcerts.as_ref().expect("cc");
        let idx = CertIndex::of(&["00-90-request.p10.der", "00-90-request.p10.pem", "x"]);
        let s = idx.state(cc, "00-90");
        assert_eq!(s.der.as_deref(), Some("certs/00-90-request.p10.der"));
        assert!(s.csr_waiting());
        assert_eq!(idx.state(cc, "00-91"), CertState::default());
    }

    #[test]
    fn cert_files_say_what_the_state_says() {
        let cfg = config(r#"<customcerts dir="certs"/>"#);
        let cc = cfg.customcerts.as_ref().expect("cc");
        let names = [
            "00-90-request.p10.der",
            "00-90-request.p10.pem",
            "00-90-signedrequest.cer",
            "00-90-requesterror",
        ];
        // every combination of the four files
        for mask in 0..16usize {
            let present: Vec<&str> = (0..4)
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| names[i])
                .collect();
            let idx = CertIndex::of(&present);
            let files = idx.files(cc, "00-90");
            let state = idx.state(cc, "00-90");
            assert_eq!(files.csr_waiting(), state.csr_waiting(), "{present:?}");
            assert_eq!(files.signed(), state.signed.is_some(), "{present:?}");
            assert_eq!(files.error(), state.error.is_some(), "{present:?}");
            assert_eq!(state.der.is_some(), mask & 1 != 0, "{present:?}");
            assert_eq!(state.error.is_some(), mask & 8 != 0, "{present:?}");
        }
        assert_eq!(std::mem::size_of::<CertFileSet>(), 1);
    }
}
