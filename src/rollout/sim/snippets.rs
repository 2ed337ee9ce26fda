//! The simulation of a snippet rollout (`rollout::staged`): the same 1,000 phones poll
//! every 5 to 6 minutes; the new version of `update-phone-all.txt` is given wave by wave. A
//! bad version: a device given it never polls again. A good one: every device comes back.
//! The same with builds (a rollout of firmware and snippets on one schedule).

use super::*;
use crate::rollout::staged::{Serve, serve};

const FILE: &str = "update-phone-all.txt";
const PREVIOUS: i64 = 1_000;
const NEW_VERSION: i64 = 2_000;

fn snippet_rollout() -> Rollout {
    Rollout {
        firmware: None,
        snippets: vec![FILE.to_string()],
        timeout: 1800,
        ..rollout()
    }
}

/// Runs the round; `bad`: the share (percent) of wave 1 that never comes back once given
/// the new version; `edit`: when the file changes again (a newer version, a new round).
/// Returns the run and, per device, when it was first given the newest version.
fn simulate_snippets(bad: usize, edit: Option<i64>, seed: u64) -> (Run, Vec<Option<i64>>) {
    simulate_with(snippet_rollout(), bad, edit, seed)
}

/// [`simulate_snippets`] for rollout `r`; with builds, a device in an open wave on the old
/// build is updated (a reset: the files of that poll do not run) and given the new version
/// on the first poll on the new build.
fn simulate_with(r: Rollout, bad: usize, edit: Option<i64>, seed: u64) -> (Run, Vec<Option<i64>>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut devs = devices(&Scenario::default(), &mut rng);
    let in_wave_1: Vec<usize> = (0..devs.len())
        .filter(|i| wave_of(&r, &devs[*i].sn) == Some(0))
        .collect();
    for i in in_wave_1.iter().take(in_wave_1.len() * bad / 100) {
        devs[*i].lost = true;
    }
    let mut state = RolloutState::default();
    state.apply(&Change::Round {
        at: 0,
        versions: vec![(FILE.to_string(), NEW_VERSION)],
    });
    let mut given = vec![None; devs.len()];
    let mut openings = Vec::new();
    let mut t = 0;
    let mut live = NEW_VERSION;
    while t <= END && !finished(&r, &state, t) {
        if edit == Some(t) {
            live = NEW_VERSION + 1;
            state.apply(&Change::Round {
                at: t,
                versions: vec![(FILE.to_string(), live)],
            });
            given = vec![None; devs.len()];
            openings.clear();
        }
        let fleet = fleet_at(&devs, t);
        for c in advance(&r, &state, &fleet, t) {
            if let Change::Opened { wave, .. } = c {
                let ok = wave.checked_sub(1).map_or(0, |w| {
                    let members = state.devices.values().filter(|d| d.member && d.wave == w);
                    members.filter(|d| d.succeeded.is_some()).count()
                });
                openings.push((t, ok));
            }
            state.apply(&c);
        }
        for (i, d) in devs.iter_mut().enumerate() {
            if d.gone || d.next_poll > t {
                continue;
            }
            if poll(&r, &mut state, d, (live, t), &mut rng) {
                given[i].get_or_insert(t);
            }
        }
        t += STEP;
    }
    let run = Run {
        rollout: r,
        state,
        openings,
        devs,
        end: t,
    };
    (run, given)
}

/// One poll of `d` at `t` with the file's `live` version; whether it was given that version
/// (a device of a bad version never polls again).
fn poll(
    r: &Rollout,
    state: &mut RolloutState,
    d: &mut Dev,
    (live, t): (i64, i64),
    rng: &mut StdRng,
) -> bool {
    let classes = ["phone".to_string()];
    let on_new = d.updated_at.is_some_and(|u| u <= t);
    let facts = DeviceFacts {
        sn: &d.sn,
        classes: &classes,
        envs: &[],
        prot: Some(if on_new { NEW } else { OLD }),
        boot: None,
        no_firmware: false,
        no_bootcode: false,
        counts: true,
    };
    let mut given = false;
    if r.stages_builds() && !on_new {
        // the firmware step: the build first (its changes are the delivery's)
        if let (Decision::Update { .. }, _) = decide(r, state, &facts, t) {
            d.updated_at.get_or_insert(t + rng.random_range(60..1800));
        }
    } else {
        let file = (FILE, live, Some(PREVIOUS));
        let (got, changes) = serve(r, state, &facts, file, t);
        for c in &changes {
            state.apply(c);
        }
        given = got == Serve::Live;
        // a bad configuration: the device never polls again
        d.gone = given && d.lost;
    }
    d.last_seen = t;
    d.next_poll = t + 300 + rng.random_range(0..60);
    given
}

#[test]
fn a_bad_version_halts_the_round_in_wave_1() {
    for seed in [1, 2, 3] {
        let (run, given) = simulate_snippets(30, None, seed);
        report("a_bad_version_halts_the_round_in_wave_1", &run);
        check_common(&run);
        let halt = run.state.halted.as_ref().expect("the round halted");
        assert_eq!(halt.wave, 0, "seed {seed}: {}", halt.reason);
        assert_eq!(run.state.opened.len(), 1, "no other wave opened");
        let r = &run.rollout;
        for (d, at) in run.devs.iter().zip(&given) {
            if wave_of(r, &d.sn) != Some(0) {
                assert_eq!(*at, None, "{} outside wave 1 got the bad version", d.sn);
            }
        }
        let s = summarize(r, &run.state, true, run.end);
        assert_eq!(s.phase, Phase::Halted);
        let failed = s.waves[0].failed;
        assert!(
            failed * 100 > usize::from(r.halt) * s.waves[0].population,
            "{failed} failed"
        );
        // the devices that did not come back are the ones listed as failing
        assert!(
            s.failing
                .iter()
                .all(|f| run.devs.iter().any(|d| d.sn == f.sn && d.lost))
        );
    }
}

#[test]
fn a_good_version_reaches_everyone_wave_by_wave() {
    let (run, given) = simulate_snippets(0, None, 5);
    report("a_good_version_reaches_everyone_wave_by_wave", &run);
    check_common(&run);
    let r = &run.rollout;
    assert_eq!(run.state.opened.len(), r.waves.len(), "every wave opened");
    assert!(run.state.halted.is_none());
    assert!(given.iter().all(Option::is_some), "everyone got it");
    // nobody was given the new version before their wave opened
    for (d, at) in run.devs.iter().zip(&given) {
        let w = wave_of(r, &d.sn).expect("a wave");
        assert!(at.expect("given") >= run.state.opened[w], "{} early", d.sn);
    }
    assert_eq!(counted(&run, |d| d.succeeded.is_some()), DEVICES);
    assert_eq!(summarize(r, &run.state, true, run.end).phase, Phase::Done);
}

#[test]
fn a_further_change_starts_a_new_round_from_wave_1() {
    // wave 2 opens after 2 h (soak); the file changes again at 3 h
    let (run, given) = simulate_snippets(0, Some(3 * 3600), 9);
    report("a_further_change_starts_a_new_round_from_wave_1", &run);
    check_common(&run);
    let r = &run.rollout;
    assert_eq!(run.state.round_at, 3 * 3600);
    assert_eq!(run.state.opened[0], 3 * 3600, "wave 1 again, at the change");
    assert_eq!(run.state.opened.len(), r.waves.len());
    assert_eq!(summarize(r, &run.state, true, run.end).phase, Phase::Done);
    for (d, at) in run.devs.iter().zip(&given) {
        let w = wave_of(r, &d.sn).expect("a wave");
        assert!(at.expect("given") >= run.state.opened[w], "{} early", d.sn);
    }
}

#[test]
fn builds_and_snippets_on_one_schedule() {
    // `timeout` covers the update: a member is told on its first poll on the new build
    let r = Rollout {
        firmware: Some(NEW.to_string()),
        timeout: 3600,
        ..snippet_rollout()
    };
    // a bad version: wave 1 halts, nobody else gets the build or the version
    let (run, given) = simulate_with(r.clone(), 30, None, 4);
    report("builds_and_snippets_bad_version", &run);
    let halt = run.state.halted.as_ref().expect("halted");
    assert_eq!(
        (halt.wave, run.state.opened.len()),
        (0, 1),
        "{}",
        halt.reason
    );
    for (d, at) in run.devs.iter().zip(&given) {
        if wave_of(&r, &d.sn) != Some(0) {
            assert!(
                at.is_none() && d.updated_at.is_none(),
                "{} outside wave 1",
                d.sn
            );
        }
    }
    // a good one: everyone runs the build and came back after the new version, by waves
    let (run, given) = simulate_with(r.clone(), 0, None, 6);
    report("builds_and_snippets_good_version", &run);
    check_common(&run);
    assert_eq!(summarize(&r, &run.state, true, run.end).phase, Phase::Done);
    assert_eq!(counted(&run, |d| d.succeeded.is_some()), DEVICES);
    for (d, at) in run.devs.iter().zip(&given) {
        let w = wave_of(&r, &d.sn).expect("a wave");
        let updated = d.updated_at.expect("updated");
        assert!(updated >= run.state.opened[w], "{} updated early", d.sn);
        assert!(
            at.expect("given") >= updated,
            "{} given before its build",
            d.sn
        );
    }
}
