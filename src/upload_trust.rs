//! `times/@forcetrust` for the device uploads (`mode=vardump`, `mode=query`, `mode=backup`):
//! with forcetrust on, an upload is accepted only from a connection whose verified client
//! certificate names the device, by the same rule as the poll
//! ([`crate::script::verify_identity`]). The device's `hwid` is the request's `hwid` argument
//! (backups send it) or else the one its last poll recorded in its state file; the serial
//! number is the request's `sn`. The PHP server did not check uploads at all: any client could
//! store data under any serial number.

use crate::config::Config;
use crate::php::Args;
use crate::request::ConnInfo;
use crate::script::{IdentityError, verify_identity};
use crate::state::Loaded;

/// Why an upload was refused: the mode and the identity check's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forcetrust: mode={mode} refused: {reason}")]
pub struct UploadRefused {
    pub mode: String,
    pub reason: IdentityError,
}

/// Checks an upload's client identity when `times/@forcetrust` is on (always `Ok` when off).
pub fn check(
    cfg: &Config,
    conn: &ConnInfo,
    args: &Args,
    state: &Loaded,
    mode: &str,
) -> Result<(), UploadRefused> {
    if !cfg.times.forcetrust {
        return Ok(());
    }
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    let hwid = arg("hwid")
        .or_else(|| recorded_hwid(state))
        .unwrap_or_default();
    let sn = arg("sn").unwrap_or_default();
    verify_identity(cfg, conn.client_cert.as_ref(), &hwid, &sn)
        .map(|_| ())
        .map_err(|reason| UploadRefused {
            mode: mode.to_string(),
            reason,
        })
}

/// The `hwid` a device's last poll recorded (`state/device/@hwid`).
fn recorded_hwid(state: &Loaded) -> Option<String> {
    match state {
        Loaded::Ok(s) => s
            .child("device")
            .and_then(|d| d.attr("hwid"))
            .filter(|h| !h.is_empty())
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ClientCert;
    use std::sync::Arc;

    const CONFIG: &str = r#"<config><master info=""/><customcerts dir="certs" CAname="Dev CA"/><times forcetrust="true"/></config>"#;

    fn conn(cn: Option<&str>, issuer: &str) -> ConnInfo {
        let mut c = ConnInfo::plain("h", 443);
        c.client_cert = cn.map(|cn| ClientCert {
            cn: cn.to_string(),
            issuer_cn: issuer.to_string(),
        });
        c
    }

    fn state_with_hwid(hwid: &str) -> Loaded {
        let mut s = crate::state::new_state("00-90-33-30-00-af");
        s.child_or_insert("device").set_attr("hwid", hwid);
        Loaded::Ok(Arc::new(s))
    }

    #[test]
    fn the_certificate_must_name_the_device() {
        let cfg = Config::from_user_xml(CONFIG).expect("config");
        let args = Args::parse("mode=query&sn=00-90-33-30-00-af&id=admin");
        let good = conn(Some("IP232-30-00-af"), "Dev CA");
        let state = state_with_hwid("IP232-30-00-af");
        assert_eq!(check(&cfg, &good, &args, &state, "query"), Ok(()));
        // no state: only the serial number without dashes would do
        let e = check(&cfg, &good, &args, &Loaded::Missing, "query").unwrap_err();
        assert!(matches!(e.reason, IdentityError::OtherDevice { .. }), "{e}");
        let by_sn = conn(Some("009033300af"), "Dev CA");
        let args_sn = Args::parse("sn=0-0-9-0-3-3-3-0-0-a-f");
        assert!(check(&cfg, &by_sn, &args_sn, &Loaded::Missing, "query").is_ok());
        let other = conn(Some("IP232-30-00-b0"), "Dev CA");
        let e = check(&cfg, &other, &args, &state, "query").unwrap_err();
        assert_eq!(
            e.to_string(),
            "forcetrust: mode=query refused: Device claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0' by TLS"
        );
        let e = check(&cfg, &conn(None, ""), &args, &state, "vardump").unwrap_err();
        assert_eq!(e.reason, IdentityError::NoCertificate);
        let e = check(
            &cfg,
            &conn(Some("IP232-30-00-af"), "Other"),
            &args,
            &state,
            "query",
        );
        assert!(matches!(
            e.unwrap_err().reason,
            IdentityError::UntrustedIssuer { .. }
        ));
        // the request's hwid comes first (backups send it)
        let backup = Args::parse("mode=backup&hwid=IP232-30-00-af");
        assert!(check(&cfg, &good, &backup, &Loaded::Missing, "backup").is_ok());
    }

    #[test]
    fn without_forcetrust_everything_passes() {
        let cfg = Config::from_user_xml(r#"<config><master info=""/></config>"#).expect("config");
        let args = Args::parse("sn=x");
        assert!(check(&cfg, &conn(None, ""), &args, &Loaded::Missing, "query").is_ok());
    }
}
