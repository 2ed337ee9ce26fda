//! Device identity: which client certificate a request presents (computed once per request,
//! from our own MTLS handshake or from a trusted proxy, see [`headers`]) and which serial
//! number it proves. Every forcetrust decision (polls, uploads, the signed certificate), the
//! refusal log lines and the admin pages read this one value. Pure: no I/O.
//!
//! **What a certificate proves** (`times/@forcetrust`; the issuer must be one of
//! `customcerts/@CAname`, the CN is taken with early models' suffix mapped, `IP232s-…` →
//! `IP232-…`):
//! - CN = the serial number without separators (`0090333000af`) proves that serial;
//! - CN = an innovaphone hwid (`IP232-30-00-af`: model, then the last three bytes of the MAC
//!   address, which is the serial number) proves the serial whose last three bytes these are
//!   (`00-90-33-30-00-af`), and no other. The binding comes from the certificate alone, never
//!   from the request's `hwid` argument (PHP accepted CN = the request's own `hwid` for any
//!   `sn`) nor from a state a request could have written;
//! - CN = `customcerts/@CAwildcard` proves any serial, as in PHP; every such use is logged.
//!
//! Soft devices whose hwid carries no part of their serial number (no `-XX-XX-XX` suffix of
//! it) therefore need a certificate whose CN is their serial number (or the wildcard) under
//! forcetrust – what the custom certificate workflow issues with the shipped
//! `CSRdn-cn="{sn}"`; with an hwid-only certificate they are refused with the reason in a
//! comment. No binding is learnt from polls (trust on first use would let whoever polls first
//! for a new serial own it).
//!
//! **Under forcetrust**, a request for a serial the certificate does not prove:
//! - a poll gets only `#` comments (PHP's forcehttps URL switch excepted: it carries nothing
//!   of the device), no certificate file changes, no rollout counting, and leaves the state
//!   as it was ([`guard_state`]); if a signed certificate waits for that serial the answer is
//!   403 and nothing else happens;
//! - an upload (`mode=query|vardump|backup`) is answered 403 and nothing is stored
//!   (`upload_trust`);
//! - the refusal is logged as a warning with the identity presented ([`presented`]).
//!
//! Without forcetrust nothing is refused: PHP's behaviour.

pub mod headers;
pub mod ledger;

pub use ledger::Ledger;

use crate::config::{Config, CustomCerts};
use crate::php::Args;
use crate::request::{CertVia, ClientCert, ConnInfo};
use crate::state::{DeviceState, Loaded};
use thiserror::Error;

/// Early device certificates carry a model suffix in their CN (`IP232s-…`); PHP maps them.
const BROKEN_CN: [(&str, &str); 4] = [
    ("IP222s", "IP222"),
    ("IP232s", "IP232"),
    ("IP240a", "IP240"),
    ("IP200a", "IP200"),
];

/// Device attributes a request that did not prove the serial never writes: who the device
/// is and where it is.
const PROTECTED: [&str; 7] = ["sn", "type", "hwid", "realip", "ip", "rp", "proxy"];

/// Why a client certificate does not prove a device's identity (the PHP server's messages).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    /// `customcerts/@CAname` is missing: trust cannot be checked at all.
    #[error("certificates: customcerts/@CAname must be defined for certificate trust enforcement")]
    NoCaName,
    /// The connection carries no verified client certificate.
    #[error(
        "cannot verify CN with HTTPS: SSL_CLIENT_S_DN_CN not present - fix web server configuration or use MTLS-enabled port!"
    )]
    NoCertificate,
    /// The certificate names another device.
    #[error("Device claims to be '{required} / {alternative}' but identifies as '{shown}' by TLS")]
    OtherDevice {
        required: String,
        alternative: String,
        shown: String,
    },
    /// The certificate's issuer is not one of `customcerts/@CAname`.
    #[error(
        "TLS certificate issuer ({issuer}) not trusted for TLS certificate ({shown}) -- SUCCESS"
    )]
    UntrustedIssuer { issuer: String, shown: String },
    /// A soft device's hwid (no MAC suffix) that more than one device's state records: it
    /// proves none of them (a backup into its folder is refused).
    #[error(
        "hwid '{hwid}' is recorded by another device too: its backup folder belongs to neither"
    )]
    HwidShared { hwid: String },
}

/// A poll refused under forcetrust: why, and whether it is answered 403 (a signed
/// certificate waits for the serial).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: IdentityError,
    pub forbidden: bool,
}

/// How a certificate proved the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofKind {
    /// CN = the serial number without separators.
    SerialCn,
    /// CN = an hwid whose MAC suffix is the serial's last three bytes.
    HwidSuffix,
    /// CN = `customcerts/@CAwildcard`.
    Wildcard,
}

/// A certificate that proved the device's identity: its CN (early models' CNs mapped as PHP
/// does), its issuer and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub cn: String,
    pub issuer: String,
    pub kind: ProofKind,
}

/// The CN as PHP compares it: early models' suffix mapped.
pub fn mapped_cn(cn: &str) -> String {
    match cn.split_once('-') {
        Some((model, rest)) => match BROKEN_CN.iter().find(|(b, _)| *b == model) {
            Some((_, fixed)) => format!("{fixed}-{rest}"),
            None => cn.to_string(),
        },
        None => cn.to_string(),
    }
}

/// The serial number without separators (`-`, `:`), as a serial CN carries it.
pub fn serial_cn(sn: &str) -> String {
    sn.chars().filter(|c| !matches!(c, '-' | ':')).collect()
}

fn hex_byte(s: &str) -> Option<u8> {
    (s.len() == 2)
        .then(|| u8::from_str_radix(s, 16).ok())
        .flatten()
}

/// The last three MAC bytes an innovaphone hwid ends in (`IP232-30-00-af` → 30 00 af).
pub fn mac_suffix(hwid: &str) -> Option<[u8; 3]> {
    let mut parts = hwid.rsplit('-');
    let c = hex_byte(parts.next()?)?;
    let b = hex_byte(parts.next()?)?;
    let a = hex_byte(parts.next()?)?;
    // a model name comes first
    parts.next().filter(|m| !m.is_empty())?;
    Some([a, b, c])
}

/// The last three bytes of a serial number (a MAC address: six hex bytes, any separators).
pub fn serial_tail(sn: &str) -> Option<[u8; 3]> {
    let hex = serial_cn(sn);
    if hex.len() != 12 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some([
        hex_byte(&hex[6..8])?,
        hex_byte(&hex[8..10])?,
        hex_byte(&hex[10..12])?,
    ])
}

/// The configuration and certificate a proof needs, or why there is none.
fn presented_cert<'c>(
    cfg: &'c Config,
    cert: Option<&'c ClientCert>,
) -> Result<(&'c CustomCerts, &'c ClientCert, String), IdentityError> {
    let Some(cc) = cfg.customcerts.as_ref().filter(|c| c.ca_name_raw.is_some()) else {
        return Err(IdentityError::NoCaName);
    };
    let Some(cert) = cert else {
        return Err(IdentityError::NoCertificate);
    };
    Ok((cc, cert, mapped_cn(&cert.cn)))
}

/// The issuer check, after the name matched (PHP's order).
fn trusted_issuer(
    cc: &CustomCerts,
    cert: &ClientCert,
    shown: String,
    kind: ProofKind,
) -> Result<Verified, IdentityError> {
    if !cc.ca_names.contains(&cert.issuer_cn) {
        return Err(IdentityError::UntrustedIssuer {
            issuer: cert.issuer_cn.clone(),
            shown,
        });
    }
    if kind == ProofKind::Wildcard {
        tracing::info!("wildcard certificate CN='{shown}' accepted (customcerts/@CAwildcard)");
    }
    Ok(Verified {
        cn: shown,
        issuer: cert.issuer_cn.clone(),
        kind,
    })
}

/// Whether the certificate proves serial number `sn` (module doc). `claimed_hwid` only
/// appears in the refusal message (the request's or the recorded `hwid`).
pub fn prove_serial(
    cfg: &Config,
    cert: Option<&ClientCert>,
    sn: &str,
    claimed_hwid: &str,
) -> Result<Verified, IdentityError> {
    let (cc, cert, shown) = presented_cert(cfg, cert)?;
    let alternative = serial_cn(sn);
    let kind = if !alternative.is_empty() && shown.eq_ignore_ascii_case(&alternative) {
        Some(ProofKind::SerialCn)
    } else if cc.ca_wildcard.as_deref() == Some(shown.as_str()) {
        Some(ProofKind::Wildcard)
    } else if mac_suffix(&shown).is_some_and(|m| serial_tail(sn) == Some(m)) {
        Some(ProofKind::HwidSuffix)
    } else {
        None
    };
    let Some(kind) = kind else {
        return Err(IdentityError::OtherDevice {
            required: claimed_hwid.to_string(),
            alternative,
            shown,
        });
    };
    trusted_issuer(cc, cert, shown, kind)
}

/// Whether the certificate proves hardware id `hwid` (the owner of a backup folder): CN =
/// the hwid, or a serial CN whose last three bytes the hwid ends in, or the wildcard.
pub fn prove_hwid(
    cfg: &Config,
    cert: Option<&ClientCert>,
    hwid: &str,
) -> Result<Verified, IdentityError> {
    let (cc, cert, shown) = presented_cert(cfg, cert)?;
    let kind = if !hwid.is_empty() && shown == mapped_cn(hwid) {
        Some(ProofKind::HwidSuffix)
    } else if cc.ca_wildcard.as_deref() == Some(shown.as_str()) {
        Some(ProofKind::Wildcard)
    } else if serial_tail(&shown).is_some_and(|t| mac_suffix(hwid) == Some(t)) {
        Some(ProofKind::SerialCn)
    } else {
        None
    };
    let Some(kind) = kind else {
        return Err(IdentityError::OtherDevice {
            required: hwid.to_string(),
            alternative: String::new(),
            shown,
        });
    };
    trusted_issuer(cc, cert, shown, kind)
}

/// Under `times/@forcetrust`, why a poll may not act for its `sn` (`None`: it may).
pub fn poll_refusal(cfg: &Config, conn: &ConnInfo, args: &Args) -> Option<IdentityError> {
    if !cfg.times.forcetrust {
        return None;
    }
    let arg = |k: &str| args.get(k).map(|v| v.into_owned()).unwrap_or_default();
    prove_serial(cfg, conn.client_cert.as_ref(), &arg("sn"), &arg("hwid")).err()
}

/// Who vouched for the request's certificate: `MTLS`, `proxy ADDR (HEADER)`, or `none`.
pub fn via_text(conn: &ConnInfo) -> String {
    match (&conn.client_cert, conn.cert_via) {
        (None, _) | (_, CertVia::None) => "none".to_string(),
        (Some(_), CertVia::Tls) => "MTLS".to_string(),
        (Some(_), CertVia::Proxy { proxy, header }) => format!("proxy {proxy} ({header})"),
    }
}

/// The identity a request presented, for log lines and the admin pages: `CN='…' issuer '…'
/// via …`, or `no client certificate`.
pub fn presented(conn: &ConnInfo) -> String {
    match &conn.client_cert {
        None => "no client certificate".to_string(),
        Some(c) => format!(
            "CN='{}' issuer '{}' via {}",
            c.cn,
            c.issuer_cn,
            via_text(conn)
        ),
    }
}

/// How a request that was not refused identified itself for `sn`, for the admin pages:
/// `MTLS, CN '…'`, `proxy ADDR (HEADER), CN '…'`, `not proved: …` or `not at all`.
pub fn proof_text(cfg: &Config, conn: &ConnInfo, sn: &str) -> String {
    let Some(cert) = &conn.client_cert else {
        return "not at all (no client certificate)".to_string();
    };
    match prove_serial(cfg, Some(cert), sn, "") {
        Ok(v) => format!("{}, CN '{}'", via_text(conn), v.cn),
        Err(_) => format!("not proved: {}", presented(conn)),
    }
}

/// The state a request that did not prove the serial may leave, given the state before it
/// and the one it would write: nothing when there was no state; else the old state, with
/// only the device facts it lacks filled in (classes, phase, environments … as PHP's refused
/// poll writes them), never one of [`PROTECTED`], never the message log or `seen`. `None`
/// when that changes nothing.
pub fn guard_state(before: &Loaded, after: Option<DeviceState>) -> Option<DeviceState> {
    let after = after?;
    let Loaded::Ok(before) = before else {
        return None;
    };
    let new_dev = after.root.child("device")?;
    let mut kept = (**before).clone();
    let old_dev = kept.root.child_mut("device")?;
    let mut changed = false;
    for (k, v) in &new_dev.attrs {
        if !PROTECTED.contains(&k.as_str()) && old_dev.attr(k).is_none() {
            old_dev.set_attr(k, v.clone());
            changed = true;
        }
    }
    changed.then_some(kept)
}

/// The answer of a refused poll: its comment and blank lines, and the command lines in
/// `allowed` (byte range of the forcehttps URL switch), nothing else.
pub fn strip_commands(body: &[u8], allowed: Option<std::ops::Range<usize>>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for line in body.split_inclusive(|&b| b == b'\n') {
        let start = at;
        at += line.len();
        let text = line.trim_ascii();
        let keep = text.is_empty()
            || text.starts_with(b"#")
            || allowed
                .as_ref()
                .is_some_and(|r| r.start <= start && at <= r.end);
        if keep {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests;
