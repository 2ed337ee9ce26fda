//! The simulated cases: each a rollout, a scenario and what must come of them.

use super::*;

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
