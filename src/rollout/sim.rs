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

#[test]
fn three_percent_lost_rollout_completes_in_order() {
    let mut r = rollout();
    r.halt = 10;
    let run = simulate(
        &r,
        &Scenario {
            lost_percent: 3,
            ..Scenario::default()
        },
        7,
    );
    report("three_percent_lost_rollout_completes_in_order", &run);
    for w in 0..r.waves.len() {
        // the scenario: no wave loses more than `halt`%
        assert!(lost_in(&run, w) * 100 <= usize::from(r.halt) * wave_size(&run, w));
        assert_eq!(
            summarize(&r, &run.state, true, run.end).waves[w].population,
            wave_size(&run, w)
        );
    }
    check_common(&run);
    assert_eq!(run.state.opened.len(), 4, "every wave opened");
    assert!(run.state.halted.is_none());
    assert_eq!(counted(&run, |d| d.succeeded.is_some()), DEVICES - 30);
    assert_eq!(
        counted(&run, |d| d.failed.is_some()),
        30,
        "the lost devices failed by timeout"
    );
    let s = summarize(&r, &run.state, true, run.end);
    assert_eq!(s.phase, Phase::Done, "{:?}", s.waves);
}

#[test]
fn five_percent_lost_rollout_halts_in_the_first_wave_over_the_threshold() {
    let r = rollout();
    for seed in [1, 2, 3] {
        let run = simulate(
            &r,
            &Scenario {
                lost_percent: 5,
                ..Scenario::default()
            },
            seed,
        );
        report(
            "five_percent_lost_rollout_halts_in_the_first_wave_over_the_threshold",
            &run,
        );
        check_common(&run);
        let expected = (0..r.waves.len())
            .find(|w| lost_in(&run, *w) * 100 > usize::from(r.halt) * wave_size(&run, *w))
            .expect("5% lost crosses a 3% threshold somewhere");
        let halt = run.state.halted.as_ref().expect("the rollout halted");
        assert_eq!(halt.wave, expected, "seed {seed}");
        assert_eq!(
            run.state.opened.len(),
            expected + 1,
            "no wave opened after the halt"
        );
        assert!(
            halt.reason.contains("more than the 3% allowed"),
            "{}",
            halt.reason
        );
        let after = run
            .state
            .devices
            .values()
            .filter(|d| d.told.is_some_and(|t| t > halt.at));
        assert_eq!(after.count(), 0, "nobody told after the halt");
    }
}

#[test]
fn types_told_nothing_are_not_counted() {
    let mut r = rollout();
    r.halt = 10;
    let sc = Scenario {
        lost_percent: 3,
        untold_percent: 10,
        ..Scenario::default()
    };
    let run = simulate(&r, &sc, 7);
    report("types_told_nothing_are_not_counted", &run);
    check_common(&run);
    let soft: Vec<&Dev> = run.devs.iter().filter(|d| d.no_firmware).collect();
    assert_eq!(soft.len(), 100);
    assert!(
        soft.iter().all(|d| !run.state.devices.contains_key(&d.sn)),
        "never recorded"
    );
    assert_eq!(summarize(&r, &run.state, true, run.end).phase, Phase::Done);
    assert_eq!(counted(&run, |_| true), DEVICES - 100);
}

#[test]
fn known_devices_that_never_poll_fail_and_hold_the_waves() {
    // the case: 300 known devices, none polling, waves 1,10,100, soak 2 s
    let mut r = rollout();
    r.waves = vec![1, 10, 100];
    r.soak = 2;
    let run = simulate(
        &r,
        &Scenario {
            silent_percent: 100,
            ..Scenario::default()
        },
        3,
    );
    report(
        "known_devices_that_never_poll_fail_and_hold_the_waves",
        &run,
    );
    check_common(&run);
    assert_eq!(run.state.opened.len(), 1, "wave 2 never opens");
    let halt = run.state.halted.as_ref().expect("halted");
    assert_eq!(
        halt.at,
        run.state.opened[0] + r.timeout,
        "when the silent members time out"
    );
    assert!(
        halt.reason
            .ends_with("failed: 100.0%, more than the 3% allowed"),
        "{}",
        halt.reason
    );
    // 5% of the fleet never polls: halts like 5% lost
    let r = rollout();
    let run = simulate(
        &r,
        &Scenario {
            silent_percent: 5,
            ..Scenario::default()
        },
        1,
    );
    report(
        "known_devices_that_never_poll_fail_and_hold_the_waves",
        &run,
    );
    check_common(&run);
    assert!(run.state.halted.is_some());
}

#[test]
fn invented_serials_before_a_wave_opens_count_unless_identities_are_proved() {
    // five invented serials of wave 1 poll once, then the rollout is started: without
    // forcetrust they are members like real devices, never poll again and halt wave 1
    let r = rollout();
    let sc = Scenario {
        invented_before: 5,
        start_at: Some(600),
        ..Scenario::default()
    };
    let run = simulate(&r, &sc, 7);
    report("invented_before_without_forcetrust", &run);
    check_common(&run);
    let invented: Vec<&Dev> = run.devs.iter().filter(|d| d.once).collect();
    assert!(invented.iter().all(|d| run.state.devices[&d.sn].member));
    let halt = run.state.halted.as_ref().expect("they halt wave 1");
    assert_eq!(halt.wave, 0);
    // with forcetrust, serials that never proved an identity are no members: done
    let run = simulate(
        &r,
        &Scenario {
            forcetrust: true,
            ..sc
        },
        7,
    );
    report("invented_before_with_forcetrust", &run);
    check_common(&run);
    assert!(
        invented
            .iter()
            .all(|d| !run.state.devices.contains_key(&d.sn))
    );
    assert_eq!(summarize(&r, &run.state, true, run.end).phase, Phase::Done);
}

#[test]
fn invented_serials_after_a_wave_opens_neither_halt_nor_dilute() {
    let r = rollout();
    // 100 serials claiming the new build during wave 1, beside 5% lost (halts on its own)
    let sc = Scenario {
        lost_percent: 5,
        invented_after: Some((100, 600)),
        ..Scenario::default()
    };
    for seed in [1, 2, 3] {
        let run = simulate(&r, &sc, seed);
        report(
            "invented_serials_after_a_wave_opens_neither_halt_nor_dilute",
            &run,
        );
        check_common(&run);
        let halt = run.state.halted.as_ref().expect("still halts");
        let expected = (0..r.waves.len())
            .find(|w| lost_in(&run, *w) * 100 > usize::from(r.halt) * wave_size(&run, *w));
        assert_eq!(Some(halt.wave), expected, "seed {seed}");
        // served, but never counted for a wave that was open when they first polled
        let invented = run.devs.iter().filter(|d| d.claims_new);
        let served = invented.filter_map(|d| run.state.devices.get(&d.sn).map(|x| (d, x)));
        let mut n = 0;
        for (d, x) in served {
            n += 1;
            let opened = run.state.opened[x.wave];
            assert!(!x.member || opened > d.first_poll, "{} counted", d.sn);
        }
        assert!(n > 0, "served");
    }
}

#[test]
fn invented_serials_polling_once_in_wave_1_do_not_halt_it() {
    // the case: five never-seen serials polling once while wave 1 is open; 40 of
    // them here, so that some fall in wave 1. By the time wave 2 opens they are missing
    // (`status/@missing` shorter than `soak`): in no population
    let r = rollout();
    let sc = Scenario {
        invented_once_after: Some((40, 600)),
        ..Scenario::default()
    };
    let run = simulate(&r, &sc, 7);
    report(
        "invented_serials_polling_once_in_wave_1_do_not_halt_it",
        &run,
    );
    check_common(&run);
    let sum = summarize(&r, &run.state, true, run.end);
    assert!(
        sum.waves[0].later > 0,
        "some fell in wave 1: {:?}",
        sum.waves[0]
    );
    assert!(run.state.halted.is_none());
}

#[test]
fn edits_while_running_never_panic_and_finish() {
    let mut edited = rollout();
    edited.waves = vec![50, 100];
    edited.success = 80;
    edited.halt = 10;
    let mut r = rollout();
    r.halt = 10;
    let sc = Scenario {
        lost_percent: 3,
        edit: Some((7200 * 2 + 600, edited)),
        ..Scenario::default()
    };
    let run = simulate(&r, &sc, 7);
    report("edits_while_running_never_panic_and_finish", &run);
    assert!(run.state.opened.len() >= 2);
    assert_eq!(run.rollout.waves, vec![50, 100]);
    let sum = summarize(&run.rollout, &run.state, true, run.end);
    assert_eq!(sum.phase, Phase::Done, "{:?} {:?}", sum.waves, sum.blocked);
    // every device in a recorded wave was served: the lost ones failed, the others succeeded
    assert_eq!(
        run.state
            .devices
            .values()
            .filter(|d| d.succeeded.is_some())
            .count(),
        DEVICES - 30
    );
}

#[test]
fn the_start_gate_holds_everyone_until_started() {
    let r = rollout();
    let run = simulate(
        &r,
        &Scenario {
            start_at: Some(86400),
            ..Scenario::default()
        },
        7,
    );
    report("the_start_gate_holds_everyone_until_started", &run);
    check_common(&run);
    assert_eq!(run.state.started, Some(86400));
    assert_eq!(run.state.opened[0], 86400);
    let first = run.state.devices.values().filter_map(|d| d.told).min();
    assert!(first.is_some_and(|t| t >= 86400), "{first:?}");
    assert_eq!(
        summarize(&run.rollout, &run.state, true, run.end).phase,
        Phase::Done
    );
}
