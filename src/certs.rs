//! Custom device certificates: deciding, on every poll, what a device's certificate needs
//! (nothing, a new signing request, downloading its CSR, installing a signed certificate), and
//! the conversions the workflow uses (`vars read` hex ↔ bytes, DER ↔ PEM).
//!
//! The PHP server's workflow, which this reproduces: with `customcerts/@dir` set and the
//! `certificates` query reporting the device's certificates, a certificate whose issuer is not
//! in `CAname`, that expired or is due for renewal makes the device create a CSR
//! (`servercert-create` with the `CSR…` attributes and their magic words); the CSR is fetched
//! with `mode=vardump` into `certs/SN-request.p10.der` (+ `.pem`); once an administrator put
//! the signed certificate into `certs/SN-signedrequest.cer`, it is installed with the CA chain
//! from `CAkeys`, and a poll is skipped so the device can report the result. When the
//! certificate is good, the files and the CSR on the device are cleaned up.
//!
//! Where it deliberately differs from PHP, it sends a device less, never more: a signed
//! "certificate" that is not one (or was made for another key than the device's CSR) and CA
//! files that are no certificates are not sent (PHP sent them, the device failed and stopped
//! its certificate handling for good); the status line (`device/@certstat`) says why. A CSR
//! upload that is not a complete CSR is refused instead of stored. Only the workflow's own two
//! files can be written through `mode=vardump` (contract §6).
//!
//! [`decide`] is pure: the files it looks at come in as [`CertFiles`] (read by the shell with
//! [`CertFiles::load`]), the file changes it wants come back as [`FileOp`]s.
//!
//! Files: `cache` (the files kept in memory between changes), `convert` (hex, DER/PEM, structure checks), `decide` (the poll's decision),
//! `vardump` (`mode=vardump` uploads), `files` (reading the files: the shell part).

mod cache;
mod convert;
pub mod csrs;
mod decide;
mod files;
mod vardump;

pub use crate::fileop::FileOp;
pub use cache::CertCache;
pub use convert::*;
pub use decide::{CertDecision, CertInput, CertReport, Command, decide, vardump_command};
pub use files::read_ca_keys;
pub use vardump::{VardumpError, php_name_in_subfolder, vardump};

use crate::config::{Config, CustomCerts};
use crate::php;
use crate::xml::Element;

/// Why device data or a certificate file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("odd number of hex digits ({0})")]
    OddHex(usize),
    #[error("byte {0} is not a hex digit")]
    NotHex(usize),
    #[error("not an X.509 certificate ({0})")]
    NotCertificate(String),
    #[error("not a complete certificate signing request ({0})")]
    NotRequest(String),
    #[error("its public key is not the one of the device's signing request")]
    OtherKey,
}

/// A file that was looked at: its content, or why it cannot be read.
pub type FileContent = Result<Vec<u8>, String>;

/// What `certs/` holds for one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertFiles {
    /// `SN-request.p10.der`, when readable.
    pub request_der: Option<Vec<u8>>,
    pub request_pem: bool,
    /// `SN-signedrequest.cer`, when present.
    pub signed: Option<FileContent>,
    pub request_key: bool,
    /// The `CAkeys` files (root-relative path as PHP's `glob` names it, content), in name
    /// order; read only when a signed certificate is present.
    pub ca_keys: Vec<(String, FileContent)>,
}

/// Root-relative names of a device's certificate files.
pub struct CertPaths {
    pub der: String,
    pub pem: String,
    pub error: String,
    pub signed: String,
    pub key: String,
}

impl CertPaths {
    pub fn new(cc: &CustomCerts, sn: &str) -> CertPaths {
        let base = format!("{}/{}", cc.dir, sn);
        CertPaths {
            der: format!("{base}-request.p10.der"),
            pem: format!("{base}-request.p10.pem"),
            error: format!("{base}-requesterror"),
            signed: format!("{base}-signedrequest.cer"),
            key: format!("{base}-request.der.key"),
        }
    }
}

#[cfg(test)]
mod tests;
