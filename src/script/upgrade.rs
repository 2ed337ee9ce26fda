//! Firmware and boot code: the builds the device must run (from the master device, fixed,
//! or none), the `nofirm`/`noboot` exclusions and `<applies>`, and the `prot`/`boot`
//! commands for a device whose build differs.

use super::Need;
use super::ctx::{Ctx, Step, Stop};
use super::update_cmd::{Kind, update_if_needed};
use crate::firmware::BoxInfo;
use crate::php;

/// The firmware step: sends the update commands if needed; `true` when the device must
/// reset afterwards.
pub(super) fn firmware_section(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    classes: &[String],
    envs: &[String],
) -> Step<bool> {
    if let Some(reset) = super::rollouts::rollout_section(ctx, device_type, classes, envs) {
        return Ok(reset);
    }
    let cfg = ctx.cfg;
    if cfg.master.info.is_empty() {
        return Ok(false);
    }
    let info = master_info(ctx)?;
    let firmware = required_firmware(ctx, info.as_ref())?;
    let bootcode = required_bootcode(ctx, info.as_ref(), firmware.as_deref())?;
    ctx.comment(&format!(
        "nofirm: {}. This device type={device_type}",
        cfg.nofirmdev.join(", ")
    ));
    ctx.comment(&format!("noboot: {}", cfg.nobootdev.join(", ")));
    let exclude: Vec<String> = cfg
        .master
        .applies
        .iter()
        .filter(|a| !a.matches(classes, envs))
        .map(|a| format!("{}{}", a.value, if a.env { " (env)" } else { " (class)" }))
        .collect();
    if !exclude.is_empty() {
        ctx.comment(&format!(
            "no firmware/bootcode update as device does not fit <applies>: {}",
            exclude.join(", ")
        ));
        return Ok(false);
    }
    let ltype = device_type.to_lowercase();
    let firmware = firmware.filter(|_| !cfg.nofirmdev.contains(&ltype));
    let bootcode = bootcode.filter(|_| !cfg.nobootdev.contains(&ltype));
    let mut reset = false;
    for (kind, build) in [(Kind::Firmware, firmware), (Kind::Bootcode, bootcode)] {
        reset |= update_if_needed(ctx, device_type, kind, build.as_deref());
    }
    Ok(reset)
}

/// The master device's builds (`None` with `master/@info="none"`).
fn master_info(ctx: &mut Ctx<'_>) -> Step<Option<BoxInfo>> {
    if ctx.cfg.master.info == "none" {
        return Ok(None);
    }
    let Some(res) = ctx.resolved.master.as_ref() else {
        return Err(Stop::Need(Need::Master));
    };
    for n in &res.notes {
        ctx.comment(n);
    }
    match &res.info {
        Ok(i) => Ok(Some(i.clone())),
        Err(e) => ctx.bailout(&format!("cannot get cached PBX info: {e}")),
    }
}

/// `master/@firmware`: the firmware build every device should run.
fn required_firmware(ctx: &mut Ctx<'_>, info: Option<&BoxInfo>) -> Step<Option<String>> {
    match ctx.cfg.master.firmware.as_str() {
        "master" => {
            let Some(i) = info else {
                return ctx.bailout("Cannot use firmware='master' with no info available");
            };
            ctx.line("# firmware derived from master device");
            Ok(Some(i.prot.clone()))
        }
        "none" => {
            ctx.line("# firmware update disabled");
            Ok(None)
        }
        v if php::is_numeric(v) => {
            ctx.comment(&format!("firmware fixed to {v}"));
            Ok(Some(v.to_string()))
        }
        v => ctx.bailout(&format!(
            "Invalid value '{v}' for firmware attribute in <master> tag"
        )),
    }
}

/// `master/@bootcode`: the boot code build every device should run.
fn required_bootcode(
    ctx: &mut Ctx<'_>,
    info: Option<&BoxInfo>,
    firmware: Option<&str>,
) -> Step<Option<String>> {
    match ctx.cfg.master.bootcode.as_str() {
        "master" => {
            let Some(i) = info else {
                return ctx.bailout("Cannot use bootcode='master' with no info available");
            };
            ctx.line("# bootcode derived from master device");
            Ok(Some(i.boot.clone()))
        }
        "firmware" => {
            ctx.line("# bootcode derived from firmware");
            Ok(firmware.map(str::to_string))
        }
        "none" => {
            ctx.line("# bootcode update disabled");
            Ok(None)
        }
        v if php::is_numeric(v) => {
            ctx.comment(&format!("bootcode fixed to {v}"));
            Ok(Some(v.to_string()))
        }
        v => ctx.bailout(&format!(
            "Invalid value '{v}' for 'bootcode' attribute in <master> tag"
        )),
    }
}
