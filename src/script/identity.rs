//! `times/@forcetrust` in the update script: the device's client certificate must prove the
//! serial it polls for (`crate::identity`, the rule shared with the uploads). A poll that does
//! not prove it is marked at the start ([`refuse_unproved`]); `build` then keeps only its
//! comments (and PHP's forcehttps URL switch) and leaves the state as it was.

use super::ctx::{Ctx, Step, Stop};
pub use crate::identity::{IdentityError, Verified};

/// PHP's forcetrust check for a request: whether the certificate proves `sn` (the name is
/// kept for the callers of the earlier rule; `hwid` appears only in the refusal message).
pub fn verify_identity(
    cfg: &crate::config::Config,
    cert: Option<&crate::request::ClientCert>,
    hwid: &str,
    sn: &str,
) -> Result<Verified, IdentityError> {
    crate::identity::prove_serial(cfg, cert, sn, hwid)
}

/// Under forcetrust, marks a poll whose certificate does not prove its serial: nothing but
/// comments will be sent and the state stays as it was. With a signed certificate waiting for
/// that serial, the poll ends here with 403.
pub(super) fn refuse_unproved(ctx: &mut Ctx<'_>) -> Step {
    let inp = ctx.inp;
    let Some(reason) = crate::identity::poll_refusal(ctx.cfg, inp.conn, inp.args) else {
        return Ok(());
    };
    let sn = inp.args.get("sn").unwrap_or_default().into_owned();
    if inp.certs.signed.is_some() {
        ctx.comment(&format!(
            "forcetrust: a signed certificate for '{sn}' is delivered only to that device: {reason} - exit"
        ));
        ctx.refused = Some((reason, true));
        return Err(Stop::Exit);
    }
    ctx.comment(&format!(
        "forcetrust: {reason} - nothing is delivered for '{sn}' and its state is not changed"
    ));
    ctx.refused = Some((reason, false));
    Ok(())
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
