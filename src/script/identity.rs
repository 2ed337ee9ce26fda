//! `times/@forcetrust`: the device's TLS client certificate must name the device (its
//! `hwid` or serial number, or the configured wildcard) and come from a trusted issuer. The
//! rule ([`verify_identity`]) serves the poll and, in the shell, the device uploads.

use super::ctx::{Ctx, Step};
use crate::config::Config;
use crate::request::ClientCert;
use thiserror::Error;

/// A model name as early device certificates carry it in their CN, and the name PHP uses.
struct BrokenCn {
    broken: &'static str,
    fixed: &'static str,
}

/// Early device certificates carry a model suffix in their CN (`IP232s-…`); PHP maps them.
const BROKEN_CN: [BrokenCn; 4] = [
    BrokenCn {
        broken: "IP222s",
        fixed: "IP222",
    },
    BrokenCn {
        broken: "IP232s",
        fixed: "IP232",
    },
    BrokenCn {
        broken: "IP240a",
        fixed: "IP240",
    },
    BrokenCn {
        broken: "IP200a",
        fixed: "IP200",
    },
];

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
}

/// A certificate that proved the device's identity: its CN (early models' CNs mapped as PHP
/// does) and its issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub cn: String,
    pub issuer: String,
}

/// PHP's forcetrust rule: the certificate's CN (with early models' suffix mapped) must be the
/// device's `hwid`, its serial number without dashes, or `customcerts/@CAwildcard`, and its
/// issuer one of `customcerts/@CAname`.
pub fn verify_identity(
    cfg: &Config,
    cert: Option<&ClientCert>,
    hwid: &str,
    sn: &str,
) -> Result<Verified, IdentityError> {
    let Some(cc) = cfg.customcerts.as_ref().filter(|c| c.ca_name_raw.is_some()) else {
        return Err(IdentityError::NoCaName);
    };
    let Some(cert) = cert else {
        return Err(IdentityError::NoCertificate);
    };
    let mut shown = cert.cn.clone();
    let mut parts: Vec<&str> = cert.cn.split('-').collect();
    if let Some(b) = BROKEN_CN.iter().find(|b| parts.first() == Some(&b.broken)) {
        parts[0] = b.fixed;
        shown = parts.join("-");
    }
    let alternative = sn.replace('-', "");
    if shown != hwid && shown != alternative && cc.ca_wildcard.as_deref() != Some(shown.as_str()) {
        return Err(IdentityError::OtherDevice {
            required: hwid.to_string(),
            alternative,
            shown,
        });
    }
    if !cc.ca_names.contains(&cert.issuer_cn) {
        return Err(IdentityError::UntrustedIssuer {
            issuer: cert.issuer_cn.clone(),
            shown,
        });
    }
    Ok(Verified {
        cn: shown,
        issuer: cert.issuer_cn.clone(),
    })
}

/// `times/@forcetrust`: snippets only for a device that proved its identity with its
/// client certificate.
pub(super) fn enforce_trust(ctx: &mut Ctx<'_>) -> Step {
    let inp = ctx.inp;
    let arg = |k: &str| inp.args.get(k).map(|v| v.into_owned()).unwrap_or_default();
    match verify_identity(
        ctx.cfg,
        inp.conn.client_cert.as_ref(),
        &arg("hwid"),
        &arg("sn"),
    ) {
        Ok(v) => {
            ctx.notify(&format!(
                "good certificate(CN='{}', ISSUER='{}')",
                v.cn, v.issuer
            ));
            Ok(())
        }
        Err(e @ IdentityError::NoCaName) => ctx.bailout(&e.to_string()),
        Err(e) => ctx.notify_die(&e.to_string()),
    }
}
