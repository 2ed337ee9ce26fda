//! The rollout simulation: 1,000 devices on a simulated clock, a seeded random generator (no
//! outside randomness). Every device polls every 5 to 6 minutes, is told, and reports the
//! new build on a poll after a random delay; some devices never come back once told.

use super::decide::{Decision, DeviceFacts, advance, decide};
use super::state::{Change, RolloutState};
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

struct Dev {
    sn: String,
    wave: usize,
    /// Never polls again once told.
    lost: bool,
    next_poll: i64,
    /// When it runs the new build (after being told and its delay).
    updated_at: Option<i64>,
    gone: bool,
    /// When it first reported the new build on a poll.
    reported_new: Option<i64>,
}

/// What the simulation saw.
struct Run {
    state: RolloutState,
    /// Per opened wave: (time, succeeded devices of the previous wave at that time).
    openings: Vec<(i64, usize)>,
    devs: Vec<Dev>,
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
        waves: vec![5, 20, 50, 100],
        success: 90,
        halt: 3,
        soak: 7200,
        timeout: 3600,
    }
}

fn simulate(r: &Rollout, lost_percent: usize, seed: u64) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..DEVICES).collect();
    order.shuffle(&mut rng);
    let lost_count = DEVICES * lost_percent / 100;
    let mut devs: Vec<Dev> = (0..DEVICES)
        .map(|i| {
            let sn = format!("009033{:06x}", i * 7919 + 17);
            Dev {
                wave: wave_of(r, &sn).expect("waves end at 100%"),
                sn,
                lost: order[..lost_count].contains(&i),
                next_poll: rng.random_range(0..360),
                updated_at: None,
                gone: false,
                reported_new: None,
            }
        })
        .collect();
    let classes = vec!["phone".to_string()];
    let mut state = RolloutState::default();
    let mut openings = Vec::new();
    let mut t = 0;
    while t <= END {
        for c in advance(r, &state, &|_| false, t) {
            if let Change::Opened { .. } = c {
                let prev = state.opened.len().checked_sub(1);
                let ok = prev.map_or(0, |w| {
                    devs.iter()
                        .filter(|d| d.wave == w && d.reported_new.is_some())
                        .count()
                });
                openings.push((t, ok));
            }
            state.apply(&c);
        }
        for d in devs.iter_mut().filter(|d| !d.gone && d.next_poll <= t) {
            let running_new = d.updated_at.is_some_and(|u| u <= t);
            let prot = if running_new { NEW } else { OLD };
            if running_new && d.reported_new.is_none() {
                d.reported_new = Some(t);
            }
            let facts = DeviceFacts {
                sn: &d.sn,
                classes: &classes,
                envs: &[],
                prot: Some(prot),
                boot: None,
            };
            let (decision, changes) = decide(r, &state, &facts, t);
            for c in &changes {
                state.apply(c);
            }
            if let Decision::Update { .. } = decision {
                if !running_new && d.updated_at.is_none() {
                    if d.lost {
                        d.gone = true;
                    } else {
                        d.updated_at = Some(t + rng.random_range(60..1800));
                    }
                }
            }
            d.next_poll = t + 300 + rng.random_range(0..60);
        }
        t += STEP;
        if finished(r, &state, t) {
            break;
        }
    }
    Run {
        state,
        openings,
        devs,
    }
}

/// Done, or halted a while ago (long enough to see that nobody is told any more).
fn finished(r: &Rollout, s: &RolloutState, t: i64) -> bool {
    let done = s.opened.len() == r.waves.len() && s.devices.values().all(|d| !d.pending());
    let halted_long = s.halted.as_ref().is_some_and(|h| t > h.at + 2 * r.timeout);
    done || halted_long
}

fn wave_size(run: &Run, w: usize) -> usize {
    run.devs.iter().filter(|d| d.wave == w).count()
}

fn lost_in(run: &Run, w: usize) -> usize {
    run.devs.iter().filter(|d| d.wave == w && d.lost).count()
}

/// Checks what must hold in every run: waves opened in order, each after the soak time and
/// with the success share of the previous wave reached; no device told before its wave
/// opened, none of a closed wave told.
fn check_common(r: &Rollout, run: &Run) {
    let opened = &run.state.opened;
    assert_eq!(opened.len(), run.openings.len());
    for (i, (t, ok)) in run.openings.iter().enumerate() {
        assert_eq!(opened[i], *t);
        if i > 0 {
            assert!(
                t - opened[i - 1] >= r.soak,
                "wave {} opened before the soak time",
                i + 1
            );
            let size = wave_size(run, i - 1);
            assert!(
                ok * 100 >= usize::from(r.success) * size,
                "wave {} opened with {ok} of {size} succeeded",
                i + 1
            );
        }
    }
    for (sn, rec) in &run.state.devices {
        let d = run
            .devs
            .iter()
            .find(|d| &d.sn == sn)
            .expect("a simulated device");
        assert_eq!(rec.wave, d.wave);
        assert!(rec.wave < opened.len(), "{sn} told in a closed wave");
        assert!(
            rec.told >= opened[rec.wave],
            "{sn} told before its wave opened"
        );
    }
}

#[test]
fn three_percent_lost_rollout_completes_in_order() {
    let r = rollout();
    let mut r = r;
    r.halt = 10;
    let run = simulate(&r, 3, 7);
    for w in 0..r.waves.len() {
        // the scenario: no wave loses more than `halt`%
        assert!(lost_in(&run, w) * 100 <= usize::from(r.halt) * wave_size(&run, w));
    }
    check_common(&r, &run);
    assert_eq!(run.state.opened.len(), 4, "every wave opened");
    assert!(run.state.halted.is_none());
    let succeeded = run
        .state
        .devices
        .values()
        .filter(|d| d.succeeded.is_some())
        .count();
    let failed = run
        .state
        .devices
        .values()
        .filter(|d| d.failed.is_some())
        .count();
    assert_eq!(succeeded, DEVICES - 30);
    assert_eq!(failed, 30, "the lost devices failed by timeout");
    let s = super::summarize(&r, &run.state, END);
    assert_eq!(s.phase, super::Phase::Done);
}

#[test]
fn five_percent_lost_rollout_halts_in_the_first_wave_over_the_threshold() {
    let r = rollout();
    for seed in [1, 2, 3] {
        let run = simulate(&r, 5, seed);
        check_common(&r, &run);
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
        let after: Vec<_> = run
            .state
            .devices
            .values()
            .filter(|d| d.told > halt.at)
            .collect();
        assert!(after.is_empty(), "nobody told after the halt");
    }
}
