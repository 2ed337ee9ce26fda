//! Firmware and boot code: the builds the device must run (from the master device, fixed,
//! or none), the `nofirm`/`noboot` exclusions and `<applies>`, and the `prot`/`boot`
//! commands for a device whose build differs.

use super::Need;
use super::ctx::{Ctx, Step, Stop};
use crate::firmware::{self, BoxInfo};
use crate::php::{self, Value, loose_eq};
use crate::state::Target;

/// The firmware step: sends the update commands if needed; `true` when the device must
/// reset afterwards.
pub(super) fn firmware_section(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    classes: &[String],
    envs: &[String],
) -> Step<bool> {
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

/// Firmware or boot code, with the PHP server's words and state places for each.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Firmware,
    Bootcode,
}

/// The PHP server's names for firmware or boot code.
struct KindNames {
    /// Query argument with the device's current build.
    arg: &'static str,
    /// `fwstorage` file type and command name.
    filetype: &'static str,
    /// The words in messages.
    words: &'static str,
    /// The element in the device state.
    element: &'static str,
}

impl Kind {
    fn names(self) -> KindNames {
        match self {
            Kind::Firmware => KindNames {
                arg: "PROT",
                filetype: "prot",
                words: "firmware",
                element: "firmware",
            },
            Kind::Bootcode => KindNames {
                arg: "BOOT",
                filetype: "boot",
                words: "boot code",
                element: "bootcode",
            },
        }
    }
}

/// Sends the `prot`/`boot` command when the device's build differs from the required one
/// (`None`: no update for this device); `true` when it did.
pub(super) fn update_if_needed(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    kind: Kind,
    build: Option<&str>,
) -> bool {
    let KindNames {
        arg,
        filetype,
        words,
        element,
    } = kind.names();
    let Some(build) = build else {
        ctx.comment(&format!(
            "no {element} update for device of type '{device_type}'"
        ));
        return false;
    };
    let current = ctx.inp.args.get(arg).map(|v| v.into_owned());
    if current
        .as_ref()
        .is_some_and(|c| loose_eq(&Value::Str(c.clone()), &Value::Str(build.to_string())))
    {
        ctx.comment(&format!("{words} {build} good"));
        return false;
    }
    ctx.notify(&format!(
        "current {words} ({}) does not match required {words} ({build})",
        current.as_deref().unwrap_or("unknown")
    ));
    let mut line = format!("mod cmd UP0 {filetype} ").into_bytes();
    line.extend(firmware::storage_url(
        ctx.cfg,
        ctx.base_url,
        build,
        device_type,
        filetype,
    ));
    line.extend(format!(" ser {build}").as_bytes());
    ctx.line_bytes(&line);
    let now = ctx.inp.now.to_string();
    match kind {
        Kind::Firmware => ctx.log("requested", Some(build), Target::Sub(element)),
        // PHP writes this one onto the state's root element
        Kind::Bootcode => ctx.log("requested", Some(&format!("{build}bootcode")), Target::Root),
    }
    ctx.log("requested-at", Some(&now), Target::Sub(element));
    true
}
