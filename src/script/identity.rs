//! `times/@forcetrust`: the device's TLS client certificate must name the device (its
//! `hwid` or serial number, or the configured wildcard) and come from a trusted issuer.

use super::ctx::{Ctx, Step};

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

/// `times/@forcetrust`: snippets only for a device that proved its identity with its
/// client certificate.
pub(super) fn enforce_trust(ctx: &mut Ctx<'_>) -> Step {
    let inp = ctx.inp;
    let cfg = ctx.cfg;
    let Some(cc) = cfg.customcerts.as_ref().filter(|c| c.ca_name_raw.is_some()) else {
        return ctx.bailout(
            "certificates: customcerts/@CAname must be defined for certificate trust enforcement",
        );
    };
    let Some(cert) = inp.conn.client_cert.as_ref() else {
        return ctx.notify_die(
            "cannot verify CN with HTTPS: SSL_CLIENT_S_DN_CN not present - fix web server configuration or use MTLS-enabled port!",
        );
    };
    let mut shown = cert.cn.clone();
    let mut parts: Vec<&str> = cert.cn.split('-').collect();
    if let Some(b) = BROKEN_CN.iter().find(|b| parts.first() == Some(&b.broken)) {
        parts[0] = b.fixed;
        shown = parts.join("-");
    }
    let required = inp
        .args
        .get("hwid")
        .map(|v| v.into_owned())
        .unwrap_or_default();
    let alternative = inp
        .args
        .get("sn")
        .map(|v| v.replace('-', ""))
        .unwrap_or_default();
    if shown != required
        && shown != alternative
        && cc.ca_wildcard.as_deref() != Some(shown.as_str())
    {
        return ctx.notify_die(&format!(
            "Device claims to be '{required} / {alternative}' but identifies as '{shown}' by TLS"
        ));
    }
    if !cc.ca_names.contains(&cert.issuer_cn) {
        return ctx.notify_die(&format!(
            "TLS certificate issuer ({}) not trusted for TLS certificate ({shown}) -- SUCCESS",
            cert.issuer_cn
        ));
    }
    ctx.notify(&format!(
        "good certificate(CN='{shown}', ISSUER='{}')",
        cert.issuer_cn
    ));
    Ok(())
}
