//! Counts per rollout and wave, and the rollout's phase: what the status page panel, the API
//! (`GET PREFIX/api/rollouts`) and metrics show. [`summarize`] is the function a metrics
//! exporter calls for each configured rollout.

use super::decide::wave_counts;
use super::{Rollout, RolloutState};
use serde::Serialize;

/// Most failing devices listed in a summary.
pub const MAX_FAILING: usize = 50;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Waiting for the devices of the current wave.
    Running,
    /// The current wave succeeded; the next opens when its soak time is over.
    WaitingForSoak,
    Paused,
    Halted,
    Aborted,
    /// Every wave is open and no told device is pending.
    Done,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Running => "running",
            Phase::WaitingForSoak => "waiting for soak",
            Phase::Paused => "paused",
            Phase::Halted => "halted",
            Phase::Aborted => "aborted",
            Phase::Done => "done",
        }
    }
}

/// One wave's counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WaveSummary {
    /// 1-based.
    pub wave: usize,
    /// Cumulative percentage of the devices in scope.
    pub percent: u8,
    /// When it opened (unix seconds), `None` while closed.
    pub opened: Option<i64>,
    /// Devices told (or found on the target builds) in this wave.
    pub told: usize,
    pub pending: usize,
    pub succeeded: usize,
    pub failed: usize,
}

/// One failed device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    pub sn: String,
    pub wave: usize,
    pub at: i64,
    pub why: super::state::FailReason,
}

/// A rollout's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutSummary {
    pub id: String,
    pub firmware: Option<String>,
    pub bootcode: Option<String>,
    pub phase: Phase,
    pub halted: Option<String>,
    pub success: u8,
    pub halt: u8,
    pub soak: i64,
    pub timeout: i64,
    /// When the next wave may open by soak time (unix seconds), if one is left.
    pub soak_until: Option<i64>,
    pub waves: Vec<WaveSummary>,
    /// Failed devices, newest first, at most [`MAX_FAILING`].
    pub failing: Vec<Failing>,
}

/// The summary of a rollout at `now`.
pub fn summarize(r: &Rollout, s: &RolloutState, now: i64) -> RolloutSummary {
    let mut waves: Vec<WaveSummary> = r
        .waves
        .iter()
        .enumerate()
        .map(|(i, p)| WaveSummary {
            wave: i + 1,
            percent: *p,
            opened: s.opened.get(i).copied(),
            told: 0,
            pending: 0,
            succeeded: 0,
            failed: 0,
        })
        .collect();
    let mut failing = Vec::new();
    for (sn, d) in &s.devices {
        let Some(w) = waves.get_mut(d.wave) else {
            continue;
        };
        w.told += 1;
        w.pending += usize::from(d.pending());
        w.succeeded += usize::from(d.succeeded.is_some());
        if let Some((at, why)) = d.failed {
            w.failed += 1;
            failing.push(Failing {
                sn: sn.clone(),
                wave: d.wave + 1,
                at,
                why,
            });
        }
    }
    failing.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.sn.cmp(&b.sn)));
    failing.truncate(MAX_FAILING);
    let cur = s.opened.len().checked_sub(1);
    let soak_until = cur
        .filter(|c| c + 1 < r.waves.len())
        .map(|c| s.opened[c] + r.soak);
    let all_open = s.opened.len() >= r.waves.len();
    let phase = if s.aborted.is_some() {
        Phase::Aborted
    } else if s.halted.is_some() {
        Phase::Halted
    } else if s.paused.is_some() {
        Phase::Paused
    } else if all_open && waves.iter().all(|w| w.pending == 0) {
        Phase::Done
    } else if let (Some(c), Some(until)) = (cur, soak_until) {
        if wave_counts(r, s, &[])[c].success_met(r) && now < until {
            Phase::WaitingForSoak
        } else {
            Phase::Running
        }
    } else {
        Phase::Running
    };
    RolloutSummary {
        id: r.id.clone(),
        firmware: r.firmware.clone(),
        bootcode: r.bootcode.clone(),
        phase,
        halted: s.halted.as_ref().map(|h| h.reason.clone()),
        success: r.success,
        halt: r.halt,
        soak: r.soak,
        timeout: r.timeout,
        soak_until,
        waves,
        failing,
    }
}
