//! `times/@forcetrust` for the device uploads (`mode=vardump`, `mode=query`, `mode=backup`):
//! with forcetrust on, an upload is accepted only from a connection whose client certificate
//! proves the request's serial number by the rule of `crate::identity` (the same as the
//! poll's), and for a backup also its `hwid` (the backup folder's owner): CN = that hwid, or
//! a serial CN the hwid's MAC suffix belongs to, or – for a soft device, whose hwid has no MAC
//! suffix – a serial CN whose state records that hwid (recorded only by polls that proved the
//! serial, and by no other device's state: an hwid two serials claim belongs to neither).
//! Neither the request's `hwid` argument nor the recorded one makes a certificate prove
//! another serial. The PHP server did not check
//! uploads at all: any client could store data under any serial number.

use crate::config::Config;
use crate::identity::{IdentityError, ProofKind, mac_suffix, prove_hwid, prove_serial};
use crate::php::Args;
use crate::request::ConnInfo;
use crate::state::Loaded;

/// Why an upload was refused: the mode and the identity check's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("forcetrust: mode={mode} refused: {reason}")]
pub struct UploadRefused {
    pub mode: String,
    pub reason: IdentityError,
}

/// Checks an upload's client identity when `times/@forcetrust` is on (always `Ok` when off).
/// `recorded_elsewhere` says whether another device's state records an hwid (asked only for
/// a soft device's backup).
pub fn check(
    cfg: &Config,
    conn: &ConnInfo,
    (args, state): (&Args, &Loaded),
    mode: &str,
    recorded_elsewhere: &dyn Fn(&str) -> bool,
) -> Result<(), UploadRefused> {
    if !cfg.times.forcetrust {
        return Ok(());
    }
    let refused = |reason| UploadRefused {
        mode: mode.to_string(),
        reason,
    };
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());
    let cert = conn.client_cert.as_ref();
    let sn = arg("sn").unwrap_or_default();
    let recorded = recorded_hwid(state);
    let shown_hwid = recorded.clone().or_else(|| arg("hwid")).unwrap_or_default();
    if mode != "backup" {
        return prove_serial(cfg, cert, &sn, &shown_hwid)
            .map(|_| ())
            .map_err(refused);
    }
    let hwid = arg("hwid").unwrap_or_default();
    let by_hwid = prove_hwid(cfg, cert, &hwid);
    if by_hwid.is_ok() && sn.is_empty() {
        return Ok(());
    }
    let by_sn = prove_serial(cfg, cert, &sn, &shown_hwid).map_err(refused)?;
    // a soft device (hwid without the serial's MAC suffix, CN = serial) backs up into the
    // folder of the hwid its own verified polls recorded
    let soft = by_sn.kind == ProofKind::SerialCn
        && mac_suffix(&hwid).is_none()
        && recorded.as_deref() == Some(hwid.as_str());
    match by_hwid {
        Ok(_) => Ok(()),
        Err(_) if soft && recorded_elsewhere(&hwid) => {
            Err(refused(IdentityError::HwidShared { hwid }))
        }
        Err(_) if soft => Ok(()),
        Err(e) => Err(refused(e)),
    }
}

/// The `hwid` a device's last poll recorded (`state/device/@hwid`).
fn recorded_hwid(state: &Loaded) -> Option<String> {
    match state {
        Loaded::Ok(s) => s
            .root
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
        s.root.child_or_insert("device").set_attr("hwid", hwid);
        Loaded::Ok(Arc::new(s))
    }

    #[test]
    fn the_certificate_must_name_the_device() {
        let cfg = Config::from_user_xml(CONFIG).expect("config");
        let args = Args::parse("mode=query&sn=00-90-33-30-00-af&id=admin");
        let good = conn(Some("IP232-30-00-af"), "Dev CA");
        let state = state_with_hwid("IP232-30-00-af");
        assert_eq!(
            check(&cfg, &good, (&args, &state), "query", &|_| false),
            Ok(())
        );
        // no state: the hwid's MAC suffix is the serial's end
        assert_eq!(
            check(&cfg, &good, (&args, &Loaded::Missing), "query", &|_| false),
            Ok(())
        );
        // a recorded or sent hwid does not make the certificate prove another serial
        let b_args = Args::parse("mode=query&sn=00-90-33-30-00-b0&id=admin&hwid=IP232-30-00-af");
        let e = check(&cfg, &good, (&b_args, &state), "query", &|_| false).unwrap_err();
        assert!(matches!(e.reason, IdentityError::OtherDevice { .. }), "{e}");
        let by_sn = conn(Some("009033300af"), "Dev CA");
        let args_sn = Args::parse("sn=0-0-9-0-3-3-3-0-0-a-f");
        assert!(
            check(&cfg, &by_sn, (&args_sn, &Loaded::Missing), "query", &|_| {
                false
            })
            .is_ok()
        );
        let other = conn(Some("IP232-30-00-b0"), "Dev CA");
        let e = check(&cfg, &other, (&args, &state), "query", &|_| false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "forcetrust: mode=query refused: Device claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0' by TLS"
        );
        let e = check(&cfg, &conn(None, ""), (&args, &state), "vardump", &|_| {
            false
        })
        .unwrap_err();
        assert_eq!(e.reason, IdentityError::NoCertificate);
        let e = check(
            &cfg,
            &conn(Some("IP232-30-00-af"), "Other"),
            (&args, &state),
            "query",
            &|_| false,
        );
        assert!(matches!(
            e.unwrap_err().reason,
            IdentityError::UntrustedIssuer { .. }
        ));
        // a backup: the certificate must prove the hwid (and the serial, when sent)
        let backup = Args::parse("mode=backup&hwid=IP232-30-00-af");
        assert!(
            check(&cfg, &good, (&backup, &Loaded::Missing), "backup", &|_| {
                false
            })
            .is_ok()
        );
        let other_folder = Args::parse("mode=backup&hwid=IP232-30-00-b0");
        assert!(
            check(
                &cfg,
                &good,
                (&other_folder, &Loaded::Missing),
                "backup",
                &|_| false
            )
            .is_err()
        );
        let other_sn = Args::parse("mode=backup&hwid=IP232-30-00-af&sn=00-90-33-30-00-b0");
        assert!(
            check(
                &cfg,
                &good,
                (&other_sn, &Loaded::Missing),
                "backup",
                &|_| false
            )
            .is_err()
        );
        // a soft device: CN = serial, the hwid its verified polls recorded
        let soft = conn(Some("0090333000af"), "Dev CA");
        let soft_state = state_with_hwid("myPBX-android-1");
        let own = Args::parse("mode=backup&hwid=myPBX-android-1&sn=00-90-33-30-00-af");
        assert!(check(&cfg, &soft, (&own, &soft_state), "backup", &|_| false).is_ok());
        let other = Args::parse("mode=backup&hwid=myPBX-android-2&sn=00-90-33-30-00-af");
        assert!(check(&cfg, &soft, (&other, &soft_state), "backup", &|_| false).is_err());
        let hardware = Args::parse("mode=backup&hwid=IP232-30-00-b0&sn=00-90-33-30-00-af");
        let hw_state = state_with_hwid("IP232-30-00-b0");
        assert!(check(&cfg, &soft, (&hardware, &hw_state), "backup", &|_| false).is_err());
        let no_sn = Args::parse("mode=backup&hwid=myPBX-android-1");
        assert!(check(&cfg, &soft, (&no_sn, &soft_state), "backup", &|_| false).is_err());
        // another serial's polls recorded the same soft hwid (one of them sent another
        // device's hwid): the folder belongs to neither of them
        let shared = |h: &str| h == "myPBX-android-1";
        let e = check(&cfg, &soft, (&own, &soft_state), "backup", &shared).unwrap_err();
        assert_eq!(
            e.reason,
            IdentityError::HwidShared {
                hwid: "myPBX-android-1".into()
            }
        );
    }

    #[test]
    fn without_forcetrust_everything_passes() {
        let cfg = Config::from_user_xml(r#"<config><master info=""/></config>"#).expect("config");
        let args = Args::parse("sn=x");
        assert!(
            check(
                &cfg,
                &conn(None, ""),
                (&args, &Loaded::Missing),
                "query",
                &|_| false
            )
            .is_ok()
        );
    }
}
