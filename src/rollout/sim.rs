//! The rollout simulation: 1,000 devices on a simulated clock, a seeded random generator (no
//! outside randomness). Every device polls every 5 to 6 minutes, is told, and reports the
//! new build on a poll after a random delay; some devices never come back once told. The
//! cases of issue 22 on top: types the rollout tells nothing (`SWPHONE`), known devices that
//! never poll, invented serials before and after a wave opens (with and without proved
//! identities), edits of a running rollout, and the start gate.

use super::decide::testing::{Dev as Known, ListFleet};
use super::decide::{Decision, DeviceFacts, advance, control, decide};
use super::state::{Action, Change, RolloutState};
use super::summary::{Phase, summarize};
use super::{Rollout, wave_of};
use crate::config::Applies;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const DEVICES: usize = 1000;
const OLD: &str = "130500";
const NEW: &str = "140010";
const STEP: i64 = 60;
const END: i64 = 5 * 86400;
/// `status/@missing`: a device unseen this long is missing.
const MISSING: i64 = 3600;

#[derive(Debug, Clone, Default)]
struct Dev {
    sn: String,
    /// Never polls again once told.
    lost: bool,
    /// Known (has a state) but never polls.
    silent: bool,
    /// A type that gets no firmware (`SWPHONE`: nofirmdev).
    no_firmware: bool,
    /// Its identity is proved (forcetrust).
    proved: bool,
    /// An invented serial: polls once only.
    once: bool,
    /// An invented serial that always reports the new build.
    claims_new: bool,
    /// When it first polls (and from when the server knows it).
    first_poll: i64,
    /// When it last polled (the real devices polled just before the simulation).
    last_seen: i64,
    next_poll: i64,
    /// When it runs the new build (after being told and its delay).
    updated_at: Option<i64>,
    gone: bool,
    told_at: Option<i64>,
}

/// What a run adds to the 1,000 real phones.
#[derive(Default)]
struct Scenario {
    lost_percent: usize,
    silent_percent: usize,
    /// Of the real devices, this percentage is `SWPHONE` (no firmware).
    untold_percent: usize,
    /// Invented serials of wave 1 polling once at time 0 (before the first wave opens).
    invented_before: usize,
    /// Invented serials reporting the new build, first polling after this many seconds.
    invented_after: Option<(usize, i64)>,
    /// Invented serials polling once (on the old build), after this many seconds.
    invented_once_after: Option<(usize, i64)>,
    /// With forcetrust: invented serials never prove an identity.
    forcetrust: bool,
    /// The administrator starts the rollout (`start="manual"`) at this time.
    start_at: Option<i64>,
    /// The configuration is changed to this rollout at this time.
    edit: Option<(i64, Rollout)>,
}

/// What the simulation saw.
struct Run {
    rollout: Rollout,
    state: RolloutState,
    /// Per opened wave: (time, succeeded members of the previous wave at that time).
    openings: Vec<(i64, usize)>,
    devs: Vec<Dev>,
    end: i64,
}

fn rollout() -> Rollout {
    Rollout {
        id: "sim".into(),
        firmware: Some(NEW.into()),
        bootcode: None,
        snippets: Vec::new(),
        applies: vec![Applies {
            value: "phone".into(),
            env: false,
        }],
        applies_any: Vec::new(),
        manual_start: false,
        waves: vec![5, 20, 50, 100],
        success: 90,
        halt: 3,
        soak: 7200,
        timeout: 3600,
    }
}

fn devices(sc: &Scenario, rng: &mut StdRng) -> Vec<Dev> {
    let mut order: Vec<usize> = (0..DEVICES).collect();
    order.shuffle(rng);
    let (lost, rest) = order.split_at(DEVICES * sc.lost_percent / 100);
    let (silent, rest) = rest.split_at(DEVICES * sc.silent_percent / 100);
    let (untold, _) = rest.split_at(DEVICES * sc.untold_percent / 100);
    let mut devs: Vec<Dev> = (0..DEVICES)
        .map(|i| Dev {
            sn: format!("009033{:06x}", i * 7919 + 17),
            lost: lost.contains(&i),
            silent: silent.contains(&i),
            no_firmware: untold.contains(&i),
            proved: true,
            next_poll: rng.random_range(0..360),
            ..Dev::default()
        })
        .collect();
    // in wave 1, to see what they can do there
    let in_wave_1 = (0..).map(|i| format!("0090ee{i:06x}"));
    let in_wave_1 = in_wave_1.filter(|sn| wave_of(&rollout(), sn) == Some(0));
    for sn in in_wave_1.take(sc.invented_before) {
        devs.push(Dev {
            sn,
            proved: !sc.forcetrust,
            once: true,
            ..Dev::default()
        });
    }
    if let Some((n, from)) = sc.invented_after {
        for i in 0..n {
            devs.push(Dev {
                sn: format!("0090ff{i:06x}"),
                proved: !sc.forcetrust,
                claims_new: true,
                first_poll: from,
                last_seen: from,
                next_poll: from + rng.random_range(0..360),
                ..Dev::default()
            });
        }
    }
    if let Some((n, from)) = sc.invented_once_after {
        for i in 0..n {
            devs.push(Dev {
                sn: format!("0090dd{i:06x}"),
                proved: !sc.forcetrust,
                once: true,
                first_poll: from,
                last_seen: from,
                next_poll: from,
                ..Dev::default()
            });
        }
    }
    devs
}

/// The server's device index: every device that polled (the real ones polled before), the
/// ones unseen for [`MISSING`] seconds missing.
fn fleet_at(devs: &[Dev], t: i64) -> ListFleet {
    let known = devs.iter().filter(|d| d.first_poll <= t);
    let missing = known
        .clone()
        .filter(|d| d.last_seen < t - MISSING)
        .map(|d| d.sn.clone())
        .collect();
    let devices = known
        .map(|d| Known {
            no_firmware: d.no_firmware,
            proved: d.proved,
            ..Known::phone(&d.sn)
        })
        .collect();
    ListFleet {
        devices,
        missing,
        ..ListFleet::default()
    }
}

fn poll(r: &Rollout, state: &mut RolloutState, d: &mut Dev, t: i64, rng: &mut StdRng) {
    let classes = vec!["phone".to_string()];
    let running_new = d.claims_new || d.updated_at.is_some_and(|u| u <= t);
    let facts = DeviceFacts {
        sn: &d.sn,
        classes: &classes,
        envs: &[],
        prot: Some(if running_new { NEW } else { OLD }),
        boot: None,
        no_firmware: d.no_firmware,
        no_bootcode: false,
        counts: d.proved,
    };
    let (decision, changes) = decide(r, state, &facts, t);
    for c in &changes {
        state.apply(c);
    }
    if let Decision::Update {
        firmware: Some(_), ..
    } = decision
    {
        if !running_new && d.updated_at.is_none() {
            d.told_at.get_or_insert(t);
            if d.lost {
                d.gone = true;
            } else {
                d.updated_at = Some(t + rng.random_range(60..1800));
            }
        }
    }
    d.gone |= d.once;
    d.last_seen = t;
    d.next_poll = t + 300 + rng.random_range(0..60);
}

fn simulate(r: &Rollout, sc: &Scenario, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut devs = devices(sc, &mut rng);
    let mut r = r.clone();
    r.manual_start = sc.start_at.is_some();
    let mut state = RolloutState::default();
    let mut openings = Vec::new();
    let mut t = 0;
    while t <= END {
        if let Some((at, edited)) = sc.edit.as_ref().filter(|(at, _)| *at == t) {
            let _ = at;
            r = edited.clone();
        }
        let fleet = fleet_at(&devs, t);
        if sc.start_at == Some(t) {
            for c in control(&r, &state, Action::Start, &fleet, t).expect("start") {
                state.apply(&c);
            }
        }
        for c in advance(&r, &state, &fleet, t) {
            if let Change::Opened { wave, .. } = c {
                let prev = wave.checked_sub(1);
                let ok = prev.map_or(0, |w| {
                    state
                        .devices
                        .values()
                        .filter(|d| d.member && d.wave == w && d.succeeded.is_some())
                        .count()
                });
                openings.push((t, ok));
            }
            state.apply(&c);
        }
        for d in devs
            .iter_mut()
            .filter(|d| !d.gone && !d.silent && d.next_poll <= t)
        {
            poll(&r, &mut state, d, t, &mut rng);
        }
        t += STEP;
        if finished(&r, &state, t) {
            break;
        }
    }
    Run {
        rollout: r,
        state,
        openings,
        devs,
        end: t,
    }
}

/// Prints what a run did (seen with `--nocapture`): phase, when each wave opened, each
/// wave's counts, the halt.
fn report(name: &str, run: &Run) {
    let sum = summarize(&run.rollout, &run.state, true, run.end);
    let opened: Vec<String> = run
        .state
        .opened
        .iter()
        .map(|t| format!("{:.1} h", *t as f64 / 3600.0))
        .collect();
    let waves: Vec<String> = sum
        .waves
        .iter()
        .map(|w| {
            format!(
                "w{}: pop {} ok {} failed {} later {}",
                w.wave, w.population, w.succeeded, w.failed, w.later
            )
        })
        .collect();
    println!(
        "{name}: phase {} after {:.1} h; opened [{}]; {}; halted: {:?}",
        sum.phase.as_str(),
        run.end as f64 / 3600.0,
        opened.join(", "),
        waves.join("; "),
        sum.halted
    );
}

/// Done, or halted a while ago (long enough to see that nobody is told any more).
fn finished(r: &Rollout, s: &RolloutState, t: i64) -> bool {
    let ended = matches!(
        summarize(r, s, true, t).phase,
        Phase::Done | Phase::EndedWithFailures
    );
    let halted_long = s.halted.as_ref().is_some_and(|h| t > h.at + 2 * r.timeout);
    ended || halted_long
}

/// The real devices of wave `w` that the rollout can tell something.
fn wave_devs(run: &Run, w: usize) -> impl Iterator<Item = &Dev> {
    run.devs.iter().filter(move |d| {
        !d.no_firmware && !d.once && !d.claims_new && wave_of(&run.rollout, &d.sn) == Some(w)
    })
}

fn wave_size(run: &Run, w: usize) -> usize {
    wave_devs(run, w).count()
}

fn lost_in(run: &Run, w: usize) -> usize {
    wave_devs(run, w).filter(|d| d.lost || d.silent).count()
}

/// Checks what must hold in every run: waves opened in order, each after the soak time and
/// with the success share of the previous wave's population reached; each wave's
/// population is its real devices the rollout tells something; no device told before its
/// wave opened.
fn check_common(run: &Run) {
    let r = &run.rollout;
    let opened = &run.state.opened;
    assert_eq!(opened.len(), run.openings.len());
    let sum = summarize(r, &run.state, true, run.end);
    for (i, (t, ok)) in run.openings.iter().enumerate() {
        assert_eq!(opened[i], *t);
        if i > 0 && i < r.waves.len() {
            assert!(t - opened[i - 1] >= r.soak, "wave {} opened early", i + 1);
            let size = sum.waves[i - 1].population;
            assert!(
                ok * 100 >= usize::from(r.success) * size,
                "wave {} opened with {ok} of {size} succeeded",
                i + 1
            );
        }
    }
    for (sn, rec) in &run.state.devices {
        assert!(rec.wave < opened.len(), "{sn} recorded in a closed wave");
        assert!(
            rec.told.is_none_or(|t| t >= opened[rec.wave]),
            "{sn} told early"
        );
    }
}

fn counted(run: &Run, pred: impl Fn(&super::state::DeviceRecord) -> bool) -> usize {
    run.state
        .devices
        .values()
        .filter(|d| d.member && pred(d))
        .count()
}

mod cases;
mod snippets;
