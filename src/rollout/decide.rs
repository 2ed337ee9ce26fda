//! The pure decisions: what one polling device gets ([`decide`]), how a rollout moves on with
//! time ([`advance`]), and what an administrator's action does ([`control`]). Each returns the
//! [`Change`]s to apply; none changes the state itself. A wave's population (who counts for
//! it) comes from the server's device index through [`Fleet`] when the wave opens.

use super::state::{Action, Change, DeviceRecord, FailReason, Halt, MAX_SN, RolloutState};
use super::{Rollout, wave_of};
use crate::php::{Value, loose_eq};

/// What the poll says about a device.
#[derive(Debug, Clone, Copy)]
pub struct DeviceFacts<'a> {
    pub sn: &'a str,
    pub classes: &'a [String],
    pub envs: &'a [String],
    /// `PROT` as reported (the running firmware build).
    pub prot: Option<&'a str>,
    /// `BOOT` as reported (the running boot code build).
    pub boot: Option<&'a str>,
    /// The device's type never gets firmware (`nofirmdev`).
    pub no_firmware: bool,
    /// The device's type never gets boot code (`nobootdev`).
    pub no_bootcode: bool,
    /// Whether what this poll reports may count (with forcetrust: only a proved identity;
    /// see `script::rollouts::identity_counts`).
    pub counts: bool,
}

/// A device the server knows (has a state for), as a wave opening sees it.
#[derive(Debug, Clone, Copy)]
pub struct Known<'a> {
    pub sn: &'a str,
    pub classes: &'a [String],
    pub envs: &'a [String],
    pub no_firmware: bool,
    pub no_bootcode: bool,
    /// Its identity counts (always without forcetrust).
    pub proved: bool,
    /// Unseen for `status/@missing` seconds.
    pub missing: bool,
}

/// The server's devices as the rollouts see them (the shell's device index).
pub trait Fleet {
    /// Whether the index is complete; no wave opens before.
    fn ready(&self) -> bool;
    /// Whether device `sn` went missing (`status/@missing`).
    fn missing(&self, sn: &str) -> bool;
    /// Visits every known device.
    fn each(&self, f: &mut dyn FnMut(&Known<'_>));
}

/// A fleet of nobody, always ready (tests, and summaries that need no population).
pub struct NoFleet;

impl Fleet for NoFleet {
    fn ready(&self) -> bool {
        true
    }
    fn missing(&self, _: &str) -> bool {
        false
    }
    fn each(&self, _: &mut dyn FnMut(&Known<'_>)) {}
}

/// What a device gets from a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not in the rollout's scope: the device is treated as without rollouts.
    NotInScope,
    /// In scope, but not to be told anything now (why, for the script's comment).
    Hold(String),
    /// The builds the device must run (`None`: leave that one alone).
    Update {
        firmware: Option<String>,
        bootcode: Option<String>,
    },
}

/// The builds rollout `r` tells a device of a type with these rules (`None`: nothing at all,
/// the device is never counted).
pub fn told_builds(
    r: &Rollout,
    no_firmware: bool,
    no_bootcode: bool,
) -> Option<(Option<String>, Option<String>)> {
    let fw = r.firmware.clone().filter(|_| !no_firmware);
    let boot = r.bootcode.clone().filter(|_| !no_bootcode);
    (fw.is_some() || boot.is_some()).then_some((fw, boot))
}

/// Whether the device reports the builds it was told.
fn reached(told: &(Option<String>, Option<String>), d: &DeviceFacts<'_>) -> bool {
    let same = |want: &Option<String>, have: Option<&str>| match (want, have) {
        (None, _) => true,
        (Some(w), Some(h)) => loose_eq(&Value::Str(h.to_string()), &Value::Str(w.clone())),
        (Some(_), None) => false,
    };
    same(&told.0, d.prot) && same(&told.1, d.boot)
}

/// Whether a device's success needs it to come back after being given a new snippet
/// version: always for a rollout that stages only snippets; for one that stages builds and
/// snippets, when its round has a new version of a file that reaches the device (by name).
pub fn needs_return(r: &Rollout, s: &RolloutState, d: &DeviceFacts<'_>) -> bool {
    r.stages_snippets()
        && (!r.stages_builds()
            || s.round
                .iter()
                .any(|(f, _)| super::config::reaches(f, d.sn.trim(), d.classes, d.envs)))
}

/// What the device gets from rollout `r` at `now`, and the changes to record. For a
/// snippet rollout the caller asks only for a device that gets one of its files in this
/// poll; `Update` (with no builds) means the new version, `Hold` the previous one; a device
/// told before that polls again succeeded (it came back), and a told device keeps the new
/// version while the round is halted or paused. A rollout with builds and snippets: `Update`
/// means the builds and the new versions; with a new version for the device
/// ([`needs_return`]) it is told only once it runs the builds (a poll that updates them
/// resets before the files run) and succeeds when it polls again after that.
pub fn decide(
    r: &Rollout,
    s: &RolloutState,
    d: &DeviceFacts<'_>,
    now: i64,
) -> (Decision, Vec<Change>) {
    if !r.in_scope(d.classes, d.envs) {
        return (Decision::NotInScope, Vec::new());
    }
    let held = |why: &str, changes: Vec<Change>| {
        (Decision::Hold(format!("rollout {}: {why}", r.id)), changes)
    };
    let snippets = needs_return(r, s, d);
    let told = if let Some(told) = told_builds(r, d.no_firmware, d.no_bootcode) {
        told
    } else if snippets {
        (None, None)
    } else {
        return held(
            "nothing to tell this device type (nofirmdev/nobootdev), not counted",
            Vec::new(),
        );
    };
    let sn = d.sn.trim();
    if sn.is_empty() || sn.len() > MAX_SN {
        return held("held, no usable serial number", Vec::new());
    }
    let record = s.devices.get(sn);
    let was_told = record.is_some_and(|rec| rec.told.is_some());
    let runs_builds = reached(&told, d);
    let reached_now = runs_builds && (!snippets || was_told);
    // a device the rollout knows that reports its builds (or, for snippets, came back after
    // being told) succeeds, whatever the phase
    let success = match record {
        Some(rec) if d.counts && rec.succeeded.is_none() && reached_now => {
            vec![Change::Succeeded {
                sn: sn.to_string(),
                wave: rec.wave,
                at: now,
            }]
        }
        _ => Vec::new(),
    };
    let Some(wave) = wave_of(r, sn) else {
        return held("held, the device is beyond the last wave", success);
    };
    if s.aborted.is_some() {
        return held("aborted, held", success);
    }
    let keeps_new = snippets && was_told && wave < s.opened.len();
    if let Some(h) = s.halted.as_ref().filter(|_| !keeps_new) {
        return held(&format!("halted ({}), held", h.reason), success);
    }
    if wave >= s.opened.len() {
        let why = if r.manual_start && s.started.is_none() {
            "held, waiting for an administrator to start the rollout".to_string()
        } else {
            format!("held, {} is not open yet", r.wave_label(wave))
        };
        return held(&why, success);
    }
    if s.paused.is_some() && !was_told {
        return held("paused, held", success);
    }
    let update = Decision::Update {
        firmware: told.0.clone(),
        bootcode: told.1.clone(),
    };
    // a device still updating its builds is told the new snippet version once it runs them
    if !d.counts || !success.is_empty() || (snippets && !runs_builds) {
        return (update, success);
    }
    let changes = first_told(record, reached_now, sn, wave, now);
    (update, changes)
}

/// What a counted poll in an open wave records: told (or succeeded when it already runs the
/// builds) the first time, nothing after that.
fn first_told(
    record: Option<&DeviceRecord>,
    reached: bool,
    sn: &str,
    wave: usize,
    now: i64,
) -> Vec<Change> {
    match record {
        Some(rec) if rec.succeeded.is_some() || rec.told.is_some() => Vec::new(),
        Some(rec) => vec![Change::Told {
            sn: sn.to_string(),
            wave: rec.wave,
            at: now,
        }],
        None if reached => vec![Change::Succeeded {
            sn: sn.to_string(),
            wave,
            at: now,
        }],
        None => vec![Change::Told {
            sn: sn.to_string(),
            wave,
            at: now,
        }],
    }
}

/// Counts of one wave, over its population.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Members: in-scope devices known when the wave opened.
    pub population: usize,
    /// Members told so far.
    pub told: usize,
    pub succeeded: usize,
    /// Members failed after the last acknowledgement (what halts a rollout).
    pub failed: usize,
}

impl Counts {
    /// Whether the success condition holds (a wave without members passes).
    pub fn success_met(&self, r: &Rollout) -> bool {
        self.succeeded * 100 >= usize::from(r.success) * self.population
    }

    /// Whether more than `halt`% failed.
    pub fn halts(&self, r: &Rollout) -> bool {
        self.failed > 0 && self.failed * 100 > usize::from(r.halt) * self.population
    }

    /// `part` of the population in percent.
    pub fn share(&self, part: usize) -> f64 {
        if self.population == 0 {
            0.0
        } else {
            part as f64 * 100.0 / self.population as f64
        }
    }
}

/// The counts of every configured wave, with `newly_failed` counted as failed.
pub fn wave_counts(
    r: &Rollout,
    s: &RolloutState,
    newly_failed: &[(String, FailReason)],
) -> Vec<Counts> {
    let newly: std::collections::HashSet<&str> =
        newly_failed.iter().map(|(sn, _)| sn.as_str()).collect();
    let mut c = vec![Counts::default(); r.waves.len()];
    for (sn, d) in s.devices.iter().filter(|(_, d)| d.member) {
        let Some(w) = c.get_mut(d.wave) else {
            continue;
        };
        w.population += 1;
        w.told += usize::from(d.told.is_some());
        w.succeeded += usize::from(d.succeeded.is_some());
        let failed = d.failed.is_some_and(|(at, _)| at > s.acknowledged)
            || (d.pending() && newly.contains(sn.as_str()));
        w.failed += usize::from(failed);
    }
    c
}

/// The population of wave `wave` from the fleet: the in-scope devices in that wave that the
/// rollout can tell something, whose identity counts and that are not missing.
pub fn population(r: &Rollout, wave: usize, fleet: &dyn Fleet) -> Vec<String> {
    let mut out = Vec::new();
    fleet.each(&mut |k| {
        let sn = k.sn.trim();
        if k.proved
            && !k.missing
            && !sn.is_empty()
            && sn.len() <= MAX_SN
            && r.in_scope(k.classes, k.envs)
            && tells(r, k, sn)
            && wave_of(r, sn) == Some(wave)
        {
            out.push(sn.to_string());
        }
    });
    out.sort();
    out.dedup();
    out
}

/// Whether rollout `r` has something to tell known device `k`: builds its type gets, or
/// one of its snippet files (by the file's name, see [`super::config::reaches`]).
fn tells(r: &Rollout, k: &Known<'_>, sn: &str) -> bool {
    told_builds(r, k.no_firmware, k.no_bootcode).is_some()
        || r.snippets
            .iter()
            .any(|f| super::config::reaches(f, sn, k.classes, k.envs))
}

/// The waves that are open and configured (an edit may have left fewer waves than opened).
pub fn open_waves(r: &Rollout, s: &RolloutState) -> usize {
    s.opened.len().min(r.waves.len())
}

/// Whether a `start="manual"` rollout still waits for its start.
pub fn waiting_for_start(r: &Rollout, s: &RolloutState) -> bool {
    r.manual_start && s.started.is_none() && s.opened.is_empty()
}

/// The members that fail at `now`: told ones after `timeout`, untold ones `timeout` after
/// their wave opened (or the rollout resumed; not while paused or halted), any that went
/// missing.
fn failing_now(
    r: &Rollout,
    s: &RolloutState,
    fleet: &dyn Fleet,
    now: i64,
) -> Vec<(String, FailReason)> {
    let stopped = s.paused.is_some() || s.halted.is_some();
    s.devices
        .iter()
        .filter(|(_, d)| d.pending())
        .filter_map(|(sn, d)| {
            let why = match d.told {
                Some(t) if now - t >= r.timeout => Some(FailReason::Timeout),
                None if !stopped => {
                    let opened = s.opened.get(d.wave).copied().unwrap_or(now);
                    let from = opened.max(s.resumed).max(s.regrouped);
                    (now - from >= r.timeout).then_some(FailReason::Silent)
                }
                _ => None,
            };
            why.or_else(|| fleet.missing(sn).then_some(FailReason::Missing))
                .map(|w| (sn.clone(), w))
        })
        .collect()
}

/// Moves the rollout on at `now`: opens the first wave (once the fleet is ready and, with
/// `start="manual"`, once started); marks members failed; halts when more than `halt`% of
/// an open wave's population failed; opens the next wave when `success`% of the current
/// one's population succeeded and `soak` seconds passed.
pub fn advance(r: &Rollout, s: &RolloutState, fleet: &dyn Fleet, now: i64) -> Vec<Change> {
    let mut out = Vec::new();
    if s.aborted.is_some() || r.idle_with(&s.round) {
        return out;
    }
    if s.opened.is_empty() {
        if s.paused.is_none() && !waiting_for_start(r, s) && fleet.ready() {
            // before any wave is open this only records what the populations are for
            out.push(Change::Regrouped {
                at: now,
                formed: formation(r),
                members: Vec::new(),
            });
            out.push(open(r, 0, fleet, now));
        }
        return out;
    }
    if s.formed != formation(r) && fleet.ready() {
        // an edit of the waves or the scope: the next tick counts the new populations
        out.push(regroup(r, s, fleet, now));
        return out;
    }
    let failed = failing_now(r, s, fleet, now);
    let counts = wave_counts(r, s, &failed);
    out.extend(
        failed
            .into_iter()
            .map(|(sn, why)| Change::Failed { sn, at: now, why }),
    );
    if s.halted.is_some() {
        return out;
    }
    let opened = open_waves(r, s);
    if let Some(w) = (0..opened).find(|w| counts[*w].halts(r)) {
        out.push(Change::Halted(halt_at(r, w, &counts[w], now)));
        return out;
    }
    let cur = opened - 1;
    let next = s.opened.len();
    if s.paused.is_none()
        && next == opened
        && next < r.waves.len()
        && now - s.opened[cur] >= r.soak
        && counts[cur].success_met(r)
        && fleet.ready()
    {
        out.push(open(r, next, fleet, now));
    }
    out
}

/// What the populations are formed for: the waves and the scope.
pub fn formation(r: &Rollout) -> String {
    let terms = |list: &[crate::config::Applies]| {
        list.iter()
            .map(|a| format!("{}{}", if a.env { "env:" } else { "" }, a.value))
            .collect::<Vec<_>>()
            .join(",")
    };
    let waves: Vec<String> = r.waves.iter().map(u8::to_string).collect();
    format!(
        "{}; {}; {}",
        waves.join(","),
        terms(&r.applies),
        terms(&r.applies_any)
    )
}

/// The populations of the open waves formed anew from the devices known now (after an
/// edit of the waves or the scope); the records keep what happened to each device.
fn regroup(r: &Rollout, s: &RolloutState, fleet: &dyn Fleet, now: i64) -> Change {
    let mut members: Vec<(String, usize)> = (0..open_waves(r, s))
        .flat_map(|w| population(r, w, fleet).into_iter().map(move |sn| (sn, w)))
        .collect();
    members.sort();
    Change::Regrouped {
        at: now,
        formed: formation(r),
        members,
    }
}

fn open(r: &Rollout, wave: usize, fleet: &dyn Fleet, now: i64) -> Change {
    Change::Opened {
        wave,
        at: now,
        members: population(r, wave, fleet),
    }
}

/// The halt message: counts and the failure rate over the wave's population.
pub fn halt_reason(r: &Rollout, w: usize, c: &Counts) -> String {
    format!(
        "{} of {} devices of wave {} failed: {:.1}%, more than the {}% allowed",
        c.failed,
        c.population,
        w + 1,
        c.share(c.failed),
        r.halt
    )
}

fn halt_at(r: &Rollout, w: usize, c: &Counts, now: i64) -> Halt {
    Halt {
        at: now,
        wave: w,
        reason: halt_reason(r, w, c),
    }
}

/// Why an administrator's action cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("the rollout was aborted")]
    Aborted,
    #[error("the rollout is not paused or halted")]
    NotStopped,
    #[error("the rollout is paused already")]
    AlreadyPaused,
    #[error("every wave is open already")]
    AllOpen,
    #[error("the rollout starts by itself (no start=\"manual\") or was started already")]
    NotWaiting,
    #[error("the rollout waits for its start")]
    NotStarted,
    #[error("the device index is not read yet (is state tracking on?)")]
    NoFleet,
    #[error("no new snippet version is staged")]
    NothingStaged,
}

/// The changes an administrator's action makes at `now`.
pub fn control(
    r: &Rollout,
    s: &RolloutState,
    a: Action,
    fleet: &dyn Fleet,
    now: i64,
) -> Result<Vec<Change>, ActionError> {
    if s.aborted.is_some() {
        return Err(ActionError::Aborted);
    }
    if r.idle_with(&s.round) {
        return Err(ActionError::NothingStaged);
    }
    Ok(match a {
        Action::Start if !waiting_for_start(r, s) => return Err(ActionError::NotWaiting),
        Action::Start => vec![Change::Started { at: now }],
        Action::Pause if s.paused.is_some() => return Err(ActionError::AlreadyPaused),
        Action::Pause => vec![Change::Paused { at: now }],
        Action::Resume if s.paused.is_none() && s.halted.is_none() => {
            return Err(ActionError::NotStopped);
        }
        Action::Resume => vec![Change::Resumed { at: now }],
        Action::Abort => vec![Change::Aborted { at: now }],
        Action::OpenNext if waiting_for_start(r, s) => return Err(ActionError::NotStarted),
        Action::OpenNext if s.opened.len() >= r.waves.len() => return Err(ActionError::AllOpen),
        Action::OpenNext if !fleet.ready() => return Err(ActionError::NoFleet),
        Action::OpenNext => vec![open(r, s.opened.len(), fleet, now)],
    })
}

/// A fleet given as a list, for tests and the simulation.
#[cfg(test)]
pub mod testing {
    use super::{Fleet, Known};
    use std::collections::HashSet;

    /// One known device: serial, classes, type rules (no firmware, no boot code), proved.
    #[derive(Debug, Clone)]
    pub struct Dev {
        pub sn: String,
        pub classes: Vec<String>,
        pub no_firmware: bool,
        pub no_bootcode: bool,
        pub proved: bool,
    }

    impl Dev {
        pub fn phone(sn: &str) -> Dev {
            Dev {
                sn: sn.to_string(),
                classes: vec!["phone".to_string()],
                no_firmware: false,
                no_bootcode: false,
                proved: true,
            }
        }
    }

    #[derive(Debug, Clone, Default)]
    pub struct ListFleet {
        pub devices: Vec<Dev>,
        pub missing: HashSet<String>,
        pub not_ready: bool,
    }

    impl Fleet for ListFleet {
        fn ready(&self) -> bool {
            !self.not_ready
        }
        fn missing(&self, sn: &str) -> bool {
            self.missing.contains(sn)
        }
        fn each(&self, f: &mut dyn FnMut(&Known<'_>)) {
            for d in &self.devices {
                f(&Known {
                    sn: &d.sn,
                    classes: &d.classes,
                    envs: &[],
                    no_firmware: d.no_firmware,
                    no_bootcode: d.no_bootcode,
                    proved: d.proved,
                    missing: self.missing.contains(&d.sn),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
