//! Counts per rollout and wave, the rollout's phase and why it is not moving ([`blocked`]):
//! what the status page panel, the API (`GET PREFIX/api/rollouts`) and metrics show.
//! [`summarize`] is the function a metrics exporter calls for each configured rollout.

use super::decide::{Counts, open_waves, waiting_for_start, wave_counts};
use super::{Rollout, RolloutState};
use serde::Serialize;

/// Most failing devices listed in a summary.
pub const MAX_FAILING: usize = 50;

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// A snippet rollout with no new version staged: every device gets the live files.
    Idle,
    /// `start="manual"` and not started yet: every device in scope is held.
    Ready,
    /// Waiting for the members of the current wave.
    Running,
    /// The current wave succeeded; the next opens when its soak time is over.
    WaitingForSoak,
    Paused,
    Halted,
    Aborted,
    /// Every wave is open, no member is pending and the last wave met its threshold.
    Done,
    /// Every wave is open and no member is pending, but the last wave missed its threshold.
    EndedWithFailures,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Ready => "ready",
            Phase::Running => "running",
            Phase::WaitingForSoak => "waiting for soak",
            Phase::Paused => "paused",
            Phase::Halted => "halted",
            Phase::Aborted => "aborted",
            Phase::Done => "done",
            Phase::EndedWithFailures => "ended with failures",
        }
    }

    /// Every phase, for metrics.
    pub const ALL: [Phase; 9] = [
        Phase::Idle,
        Phase::Ready,
        Phase::Running,
        Phase::WaitingForSoak,
        Phase::Paused,
        Phase::Halted,
        Phase::Aborted,
        Phase::Done,
        Phase::EndedWithFailures,
    ];

    /// The name in the API and metrics (`waiting-for-soak`).
    pub fn key(self) -> String {
        self.as_str().replace(' ', "-")
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
    /// Its population: in-scope devices known when it opened (the counts are of these).
    pub population: usize,
    /// Members told so far.
    pub told: usize,
    /// Members neither succeeded nor failed.
    pub pending: usize,
    pub succeeded: usize,
    pub failed: usize,
    /// Devices first seen after the wave opened, served by it but not counted.
    pub later: usize,
}

/// One failed member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    pub sn: String,
    pub wave: usize,
    pub at: i64,
    pub why: super::state::FailReason,
}

/// A staged snippet file of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StagedFile {
    pub name: String,
    /// The version this round stages (PHP's: the file's modification time), `None` when the
    /// file is not in the round (its live version is the previous one).
    pub version: Option<i64>,
    /// The kept previous version, which held devices get (filled in by the store).
    pub previous: Option<i64>,
}

/// A rollout's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RolloutSummary {
    pub id: String,
    pub firmware: Option<String>,
    pub bootcode: Option<String>,
    /// The snippet files a snippet rollout names (empty for a firmware rollout).
    pub snippets: Vec<StagedFile>,
    /// When the current round of a snippet rollout began (`None`: idle, or builds).
    pub round_started: Option<i64>,
    pub phase: Phase,
    /// Why the next wave is not open (a sentence), `null` when nothing is waited for.
    pub blocked: Option<String>,
    pub halted: Option<String>,
    pub start: &'static str,
    pub success: u8,
    pub halt: u8,
    pub soak: i64,
    pub timeout: i64,
    /// When the next wave may open by soak time (unix seconds), if one is left.
    pub soak_until: Option<i64>,
    pub waves: Vec<WaveSummary>,
    /// Failed members, newest first, at most [`MAX_FAILING`].
    pub failing: Vec<Failing>,
}

/// Seconds in words: `45 s`, `12 min`, `3 h 5 min`.
pub fn duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", (secs + 59) / 60)
    } else {
        format!("{} h {} min", secs / 3600, (secs % 3600) / 60)
    }
}

/// Why the next wave does not open now, while one is left and the rollout is not aborted
/// (`fleet_ready`: the device index is read).
pub fn blocked(
    r: &Rollout,
    s: &RolloutState,
    counts: &[Counts],
    fleet_ready: bool,
    now: i64,
) -> Option<String> {
    if s.aborted.is_some() || s.opened.len() >= r.waves.len() || idle(r, s) {
        return None;
    }
    let date = |t: i64| format!("{} UTC", crate::php::format_datetime(t));
    if let Some(h) = &s.halted {
        return Some(format!(
            "halted at {}: {}; resume to go on",
            date(h.at),
            h.reason
        ));
    }
    if let Some(p) = s.paused {
        return Some(format!("paused by admin at {}", date(p)));
    }
    if waiting_for_start(r, s) {
        return Some(format!(
            "waiting for its start (start=\"manual\"): the Start button or POST api/rollouts/{}/start",
            r.id
        ));
    }
    if !fleet_ready {
        return Some("waiting for the device index (state tracking must be on)".to_string());
    }
    let Some(cur) = open_waves(r, s).checked_sub(1) else {
        return Some("wave 1 opens within a second".to_string());
    };
    let c = counts.get(cur).copied().unwrap_or_default();
    let mut why = Vec::new();
    if !c.success_met(r) {
        why.push(format!(
            "wave {}: {} of {} succeeded ({:.1}%), needs {}%",
            cur + 1,
            c.succeeded,
            c.population,
            c.share(c.succeeded),
            r.success
        ));
    }
    let left = s.opened[cur] + r.soak - now;
    if left > 0 {
        why.push(format!("soak: {} left", duration(left)));
    }
    if why.is_empty() {
        why.push(format!("wave {} opens within a second", cur + 2));
    }
    Some(why.join("; "))
}

/// A snippet rollout with nothing staged.
fn idle(r: &Rollout, s: &RolloutState) -> bool {
    r.idle_with(&s.round)
}

fn phase(
    r: &Rollout,
    s: &RolloutState,
    counts: &[Counts],
    waves: &[WaveSummary],
    now: i64,
) -> Phase {
    let open = open_waves(r, s);
    if idle(r, s) {
        Phase::Idle
    } else if s.aborted.is_some() {
        Phase::Aborted
    } else if s.halted.is_some() {
        Phase::Halted
    } else if s.paused.is_some() {
        Phase::Paused
    } else if waiting_for_start(r, s) {
        Phase::Ready
    } else if open == r.waves.len() && waves.iter().all(|w| w.pending == 0) {
        let last = counts.last().copied().unwrap_or_default();
        if last.success_met(r) && last.succeeded + last.failed == last.population {
            Phase::Done
        } else {
            Phase::EndedWithFailures
        }
    } else if let Some(cur) = open.checked_sub(1).filter(|c| c + 1 < r.waves.len()) {
        if counts[cur].success_met(r) && now < s.opened[cur] + r.soak {
            Phase::WaitingForSoak
        } else {
            Phase::Running
        }
    } else {
        Phase::Running
    }
}

/// The summary of a rollout at `now` (`fleet_ready`: the device index is read).
pub fn summarize(r: &Rollout, s: &RolloutState, fleet_ready: bool, now: i64) -> RolloutSummary {
    let counts = wave_counts(r, s, &[]);
    let mut waves: Vec<WaveSummary> = r
        .waves
        .iter()
        .enumerate()
        .map(|(i, p)| WaveSummary {
            wave: i + 1,
            percent: *p,
            opened: s.opened.get(i).copied(),
            population: 0,
            told: 0,
            pending: 0,
            succeeded: 0,
            failed: 0,
            later: 0,
        })
        .collect();
    let mut failing = Vec::new();
    for (sn, d) in &s.devices {
        let Some(w) = waves.get_mut(d.wave) else {
            continue;
        };
        if !d.member {
            w.later += 1;
            continue;
        }
        w.population += 1;
        w.told += usize::from(d.told.is_some());
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
    let open = open_waves(r, s);
    let soak_until = open
        .checked_sub(1)
        .filter(|c| c + 1 < r.waves.len())
        .map(|c| s.opened[c] + r.soak);
    RolloutSummary {
        id: r.id.clone(),
        firmware: r.firmware.clone(),
        bootcode: r.bootcode.clone(),
        snippets: r
            .snippets
            .iter()
            .map(|f| StagedFile {
                name: f.clone(),
                version: s.round.iter().find(|(n, _)| n == f).map(|(_, v)| *v),
                previous: None,
            })
            .collect(),
        round_started: Some(s.round_at).filter(|t| *t != 0),
        phase: phase(r, s, &counts, &waves, now),
        blocked: blocked(r, s, &counts, fleet_ready, now),
        halted: s.halted.as_ref().map(|h| h.reason.clone()),
        start: if r.manual_start { "manual" } else { "auto" },
        success: r.success,
        halt: r.halt,
        soak: r.soak,
        timeout: r.timeout,
        soak_until,
        waves,
        failing,
    }
}
