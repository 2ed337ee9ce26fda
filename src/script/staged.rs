//! Snippet files staged by a rollout (`<rollout snippets="…"/>`, see `rollout::staged`):
//! for each snippet found for the device that a snippet rollout names, the rollout decides
//! whether the device gets the live file or the kept previous version (whose content and
//! version then stand in for the file: the CHECK signature and the state's `version` are of
//! what the device is given). Runs after every step that can end the script before the
//! delivery, so a device counts as told only when a poll reaches the delivery. Without
//! snippet rollouts, and for files no rollout names, nothing changes.

use super::ctx::Ctx;
use super::facts::{Device, Listing};
use crate::rollout::staged::{Serve, serve};
use crate::rollout::{DeviceFacts, RolloutState};

/// Swaps held files for their previous versions and records what the rollouts saw (only
/// when the standard snippets are sent: `standard`, the snippet hook may suppress them).
pub(super) fn stage<'a>(
    ctx: &mut Ctx<'a>,
    dev: &Device,
    listing: &mut Listing<'a>,
    standard: bool,
) {
    let cfg = ctx.cfg;
    if !cfg.rollouts.iter().any(|r| r.stages_snippets()) {
        return;
    }
    let inp = ctx.inp;
    let arg = |k: &str| inp.args.get(k).map(|v| v.into_owned());
    let ltype = dev.device_type.to_lowercase();
    let (prot, boot) = (arg("PROT"), arg("BOOT"));
    let facts = DeviceFacts {
        sn: &dev.sn,
        classes: &dev.classes,
        envs: &dev.envs,
        prot: prot.as_deref(),
        boot: boot.as_deref(),
        no_firmware: cfg.nofirmdev.contains(&ltype),
        no_bootcode: cfg.nobootdev.contains(&ltype),
        counts: ctx.refused.is_none(),
    };
    let fresh = RolloutState::default();
    // one poll is told (or succeeds) once per rollout, whatever number of its files it gets
    let mut recorded: Vec<&str> = Vec::new();
    for i in 0..listing.files.len() {
        let name = listing.name(&listing.files[i]).to_string();
        let Some(r) = cfg.rollouts.iter().find(|r| r.snippets.contains(&name)) else {
            continue;
        };
        let state = inp
            .rollouts
            .iter()
            .find(|(id, _)| *id == r.id)
            .map_or(&fresh, |(_, s)| s);
        let previous = inp.previous.get(&name);
        let live = listing.files[i].snippet.mtime;
        let file = (name.as_str(), live, previous.map(|p| p.mtime));
        let (got, changes) = serve(r, state, &facts, file, inp.now);
        if standard && !recorded.contains(&r.id.as_str()) && !changes.is_empty() {
            recorded.push(&r.id);
            ctx.rollout_changes
                .extend(changes.into_iter().map(|c| (r.id.clone(), c)));
        }
        match (got, previous) {
            (Serve::Previous(why), Some(p)) => {
                ctx.comment(&why);
                listing.files[i].snippet = p;
            }
            (Serve::Previous(_), None) | (Serve::Live, _) => {}
        }
    }
}
