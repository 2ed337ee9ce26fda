//! File changes a pure module asks the shell to make ([`FileOp`]): the certificate workflow
//! ([`crate::certs`]) and backups ([`crate::backup`]) return them; the shell
//! ([`crate::device::apply_file_ops`]) performs them in order.

/// A change to a file below the root that a pure decision asks the shell to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileOp {
    Write { path: String, bytes: Vec<u8> },
    Delete { path: String },
}
