//! Firmware and boot code for a device in a staged rollout's scope: the rollout's decision
//! ([`crate::rollout::decide`]) instead of the master's or the pinned builds. The first
//! configured rollout whose scope the device fits decides; outside every scope (and without
//! `<rollouts>`) nothing here happens. Snippet files are `staged`'s (also those of a rollout
//! that stages builds and snippets).

use super::ctx::Ctx;
use super::update_cmd::{Kind, update_if_needed};
use crate::rollout::decide::needs_return;
use crate::rollout::{Decision, DeviceFacts, RolloutState, decide};

/// The identity hook for rollout counts: whether what this poll reports may count. Without
/// `times/@forcetrust` it does; with it, only when this request's client certificate proved
/// the serial it polls for: the per-request identity (`crate::identity::poll_refusal`, which
/// `identity::refuse_unproved` computed first, from the certificate alone, never from the
/// request's `hwid`). A refused poll's rollout changes are dropped as well (`script::build`).
fn identity_counts(ctx: &Ctx<'_>) -> bool {
    ctx.refused.is_none()
}

/// The firmware step for a device in a rollout: `Some(reset)` when a rollout decided
/// (`reset`: update commands were sent), `None` when no rollout has the device in scope.
pub(super) fn rollout_section(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    classes: &[String],
    envs: &[String],
) -> Option<bool> {
    let cfg = ctx.cfg;
    if cfg.rollouts.is_empty() {
        return None;
    }
    let arg = |k: &str| ctx.inp.args.get(k).map(|v| v.into_owned());
    let (sn, prot, boot) = (arg("sn").unwrap_or_default(), arg("PROT"), arg("BOOT"));
    let ltype = device_type.to_lowercase();
    let facts = DeviceFacts {
        sn: &sn,
        classes,
        envs,
        prot: prot.as_deref(),
        boot: boot.as_deref(),
        no_firmware: cfg.nofirmdev.contains(&ltype),
        no_bootcode: cfg.nobootdev.contains(&ltype),
        counts: identity_counts(ctx),
    };
    let fresh = RolloutState::default();
    for r in cfg.rollouts.iter().filter(|r| r.stages_builds()) {
        let state = ctx
            .inp
            .rollouts
            .iter()
            .find(|(id, _)| *id == r.id)
            .map_or(&fresh, |(_, s)| s);
        let (decision, mut changes) = decide(r, state, &facts, ctx.inp.now);
        if needs_return(r, state, &facts) {
            // builds and a new snippet version for this device: the delivery records it
            // (`script::staged`), so a poll that ends before the snippets tells nothing
            changes.clear();
        }
        let (firmware, bootcode) = match decision {
            Decision::NotInScope => continue,
            Decision::Hold(why) => {
                ctx.comment(&why);
                ctx.comment("no firmware/bootcode update while the rollout holds this device");
                ctx.rollout_changes
                    .extend(changes.into_iter().map(|c| (r.id.clone(), c)));
                return Some(false);
            }
            Decision::Update { firmware, bootcode } => (firmware, bootcode),
        };
        ctx.comment(&format!(
            "rollout {}: firmware {}, bootcode {}",
            r.id,
            firmware.as_deref().unwrap_or("unchanged"),
            bootcode.as_deref().unwrap_or("unchanged")
        ));
        let mut reset = false;
        for (kind, build) in [(Kind::Firmware, firmware), (Kind::Bootcode, bootcode)] {
            reset |= update_if_needed(ctx, device_type, kind, build.as_deref());
        }
        ctx.rollout_changes
            .extend(changes.into_iter().map(|c| (r.id.clone(), c)));
        return Some(reset);
    }
    None
}
