//! The `prot`/`boot` command that updates a device's firmware or boot code when its build
//! differs from the required one ([`update_if_needed`]), used by the firmware section and by
//! the staged rollouts.

use super::ctx::Ctx;
use crate::firmware;
use crate::php::{Value, loose_eq};
use crate::state::Target;

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
