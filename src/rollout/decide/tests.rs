use super::testing::{Dev, ListFleet};
use super::*;
use crate::config::Applies;
use crate::rollout::state::DeviceRecord;
use crate::rollout::summary::{Phase, summarize};
use proptest::prelude::*;

fn rollout() -> Rollout {
    Rollout {
        id: "r".into(),
        firmware: Some("140010".into()),
        bootcode: None,
        snippets: Vec::new(),
        applies: vec![Applies {
            value: "phone".into(),
            env: false,
        }],
        applies_any: Vec::new(),
        manual_start: false,
        waves: vec![50, 100],
        success: 100,
        halt: 10,
        soak: 100,
        timeout: 1000,
    }
}

fn sn_in(r: &Rollout, wave: usize, skip: usize) -> String {
    (0..)
        .map(|i| format!("009033{i:06x}"))
        .filter(|sn| wave_of(r, sn) == Some(wave))
        .nth(skip)
        .unwrap()
}

fn facts<'a>(sn: &'a str, classes: &'a [String], prot: &'a str) -> DeviceFacts<'a> {
    DeviceFacts {
        sn,
        classes,
        envs: &[],
        prot: Some(prot),
        boot: None,
        no_firmware: false,
        no_bootcode: false,
        counts: true,
    }
}

fn fleet(sns: &[&str]) -> ListFleet {
    ListFleet {
        devices: sns.iter().map(|s| Dev::phone(s)).collect(),
        ..ListFleet::default()
    }
}

/// Applies the changes `$e` computes from `$s` to `$s`; the changes.
macro_rules! step {
    ($s:ident, $e:expr) => {{
        let ch = $e;
        run(&mut $s, ch)
    }};
}

fn run(s: &mut RolloutState, changes: Vec<Change>) -> Vec<Change> {
    for c in &changes {
        s.apply(c);
    }
    changes
}

#[test]
fn scope_population_and_success() {
    let r = rollout();
    let phone = vec!["phone".to_string()];
    let mut s = RolloutState::default();
    let (a, b) = (sn_in(&r, 0, 0), sn_in(&r, 1, 0));
    let f = fleet(&[&a, &b]);
    let (d, _) = decide(&r, &s, &facts(&a, &["gateway".into()], "1"), 0);
    assert_eq!(d, Decision::NotInScope);
    assert!(
        advance(
            &r,
            &s,
            &ListFleet {
                not_ready: true,
                ..f.clone()
            },
            5
        )
        .is_empty(),
        "no wave before the index is read"
    );
    step!(s, advance(&r, &s, &f, 10));
    assert_eq!(s.opened, vec![10]);
    assert!(s.devices[&a].member && s.devices[&a].told.is_none());
    assert!(
        !s.devices.contains_key(&b),
        "wave 2 not open: not a member yet"
    );
    let (d, ch) = decide(&r, &s, &facts(&b, &phone, "1"), 20);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("wave 2 (100%) is not open")));
    assert!(ch.is_empty());
    let (d, ch) = decide(&r, &s, &facts(&a, &phone, "1"), 20);
    assert!(matches!(d, Decision::Update { firmware: Some(ref f), .. } if f == "140010"));
    assert_eq!(
        ch,
        vec![Change::Told {
            sn: a.clone(),
            wave: 0,
            at: 20
        }]
    );
    step!(s, ch);
    assert!(advance(&r, &s, &f, 50).is_empty(), "soak not over");
    let (_, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 60);
    assert_eq!(
        ch,
        vec![Change::Succeeded {
            sn: a.clone(),
            wave: 0,
            at: 60
        }]
    );
    step!(s, ch);
    let sum = summarize(&r, &s, true, 109);
    assert_eq!(sum.phase, Phase::WaitingForSoak);
    assert_eq!(sum.blocked.as_deref(), Some("soak: 1 s left"));
    assert!(advance(&r, &s, &f, 109).is_empty());
    let ch = advance(&r, &s, &f, 110);
    assert_eq!(
        ch,
        vec![Change::Opened {
            wave: 1,
            at: 110,
            members: vec![b.clone()]
        }]
    );
    step!(s, ch);
    let sum = summarize(&r, &s, true, 111);
    assert_eq!((sum.phase, sum.blocked.clone()), (Phase::Running, None));
    // b reports the build without ever being told: succeeded, the last wave met: done
    step!(s, decide(&r, &s, &facts(&b, &phone, "140010"), 120).1);
    assert_eq!(summarize(&r, &s, true, 121).phase, Phase::Done);
}

#[test]
fn members_that_never_poll_fail_and_halt_with_the_rate() {
    let r = rollout();
    let (a, a2) = (sn_in(&r, 0, 0), sn_in(&r, 0, 1));
    let f = fleet(&[&a, &a2]);
    let mut s = RolloutState::default();
    step!(s, advance(&r, &s, &f, 0));
    let sum = summarize(&r, &s, true, 1);
    assert_eq!(
        sum.blocked.as_deref(),
        Some("wave 1: 0 of 2 succeeded (0.0%), needs 100%; soak: 2 min left"),
        "nobody polled: the wave does not pass"
    );
    assert!(advance(&r, &s, &f, 999).is_empty());
    let ch = step!(s, advance(&r, &s, &f, 1000));
    assert!(
        ch.iter()
            .filter(|c| matches!(
                c,
                Change::Failed {
                    why: FailReason::Silent,
                    ..
                }
            ))
            .count()
            == 2
    );
    let Some(Change::Halted(h)) = ch.last() else {
        panic!("{ch:?}")
    };
    assert_eq!(
        h.reason,
        "2 of 2 devices of wave 1 failed: 100.0%, more than the 10% allowed"
    );
    // a failed device that reports the build later succeeds, also while halted
    let phone = vec!["phone".to_string()];
    let (d, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 1001);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("halted")));
    step!(s, ch);
    assert!(s.devices[&a].succeeded.is_some() && s.devices[&a].failed.is_none());
    // resuming acknowledges the failure: no new halt
    step!(s, control(&r, &s, Action::Resume, &f, 1002).unwrap());
    assert!(advance(&r, &s, &f, 1003).is_empty());
    assert_eq!(
        control(&r, &s, Action::Resume, &f, 1004),
        Err(ActionError::NotStopped)
    );
}

#[test]
fn missing_members_fail() {
    let r = rollout();
    let a = sn_in(&r, 0, 0);
    let mut f = fleet(&[&a]);
    let mut s = RolloutState::default();
    step!(s, advance(&r, &s, &f, 0));
    f.missing.insert(a.clone());
    let ch = advance(&r, &s, &f, 5);
    assert!(matches!(
        ch[0],
        Change::Failed {
            why: FailReason::Missing,
            ..
        }
    ));
    assert!(matches!(&ch[1], Change::Halted(h) if h.reason.starts_with("1 of 1")));
    // a device already missing when its wave opens is not in the population
    let mut s = RolloutState::default();
    step!(s, advance(&r, &s, &f, 0));
    assert!(s.devices.is_empty());
}

#[test]
fn untold_types_are_not_counted() {
    let mut r = rollout();
    let (soft, ip232) = (sn_in(&r, 0, 0), sn_in(&r, 0, 1));
    let mut f = fleet(&[&soft, &ip232]);
    f.devices[0].no_firmware = true; // SWPHONE: nofirmdev
    let mut s = RolloutState::default();
    step!(s, advance(&r, &s, &f, 0));
    assert_eq!(s.devices.keys().collect::<Vec<_>>(), vec![&ip232]);
    let phone = vec!["phone".to_string()];
    let mut fs = facts(&soft, &phone, "1");
    fs.no_firmware = true;
    let (d, ch) = decide(&r, &s, &fs, 1);
    assert!(
        matches!(d, Decision::Hold(ref w) if w.contains("nothing to tell")),
        "{d:?}"
    );
    assert!(ch.is_empty());
    // a rollout of firmware and boot code: a nobootdev type is told the firmware only and
    // succeeds on it
    r.bootcode = Some("140011".into());
    let mut fs = facts(&ip232, &phone, "140010");
    fs.no_bootcode = true;
    fs.boot = Some("90000");
    let (d, ch) = decide(
        &r,
        &RolloutState {
            devices: Default::default(),
            ..s.clone()
        },
        &fs,
        2,
    );
    assert_eq!(
        d,
        Decision::Update {
            firmware: Some("140010".into()),
            bootcode: None
        }
    );
    assert!(matches!(ch[..], [Change::Succeeded { .. }]), "{ch:?}");
}

#[test]
fn devices_first_seen_later_are_served_not_counted() {
    let r = rollout();
    let a = sn_in(&r, 0, 0);
    let late: Vec<String> = (1..20).map(|i| sn_in(&r, 0, i)).collect();
    let f = fleet(&[&a]);
    let mut s = RolloutState::default();
    step!(s, advance(&r, &s, &f, 0));
    let phone = vec!["phone".to_string()];
    for sn in &late {
        let (d, ch) = decide(&r, &s, &facts(sn, &phone, "140010"), 1);
        assert!(matches!(d, Decision::Update { .. }));
        step!(s, ch);
    }
    let w = &summarize(&r, &s, true, 2).waves[0];
    assert_eq!((w.population, w.succeeded, w.later), (1, 0, 19));
    assert!(!wave_counts(&r, &s, &[])[0].success_met(&r));
}

#[test]
fn the_start_gate() {
    let mut r = rollout();
    r.manual_start = true;
    let a = sn_in(&r, 0, 0);
    let f = fleet(&[&a]);
    let mut s = RolloutState::default();
    assert!(advance(&r, &s, &f, 0).is_empty());
    let sum = summarize(&r, &s, true, 0);
    assert_eq!(sum.phase, Phase::Ready);
    assert!(sum.blocked.unwrap().starts_with("waiting for its start"));
    let phone = vec!["phone".to_string()];
    let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 1);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("waiting for an administrator")));
    assert_eq!(
        control(&r, &s, Action::OpenNext, &f, 1),
        Err(ActionError::NotStarted)
    );
    step!(s, control(&r, &s, Action::Start, &f, 2).unwrap());
    assert_eq!(
        control(&r, &s, Action::Start, &f, 3),
        Err(ActionError::NotWaiting)
    );
    step!(s, advance(&r, &s, &f, 3));
    assert_eq!(s.opened, vec![3]);
}

#[test]
fn pause_abort_and_open_next() {
    let r = rollout();
    let phone = vec!["phone".to_string()];
    let a = sn_in(&r, 0, 0);
    let f = fleet(&[&a]);
    let mut s = RolloutState::default();
    step!(s, control(&r, &s, Action::Pause, &f, 0).unwrap());
    assert!(advance(&r, &s, &f, 1).is_empty(), "paused: no first wave");
    step!(s, control(&r, &s, Action::OpenNext, &f, 2).unwrap());
    let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 3);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("paused")));
    assert!(
        summarize(&r, &s, true, 3)
            .blocked
            .unwrap()
            .starts_with("paused by admin at ")
    );
    // while paused, a member that cannot be told does not fail for not polling
    assert!(
        advance(&r, &s, &f, 5000)
            .iter()
            .all(|c| !matches!(c, Change::Failed { .. }))
    );
    step!(s, control(&r, &s, Action::Abort, &f, 4).unwrap());
    assert_eq!(
        control(&r, &s, Action::Resume, &f, 5),
        Err(ActionError::Aborted)
    );
    let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 6);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("aborted")));
}

#[test]
fn fewer_waves_than_open_after_an_edit() {
    let mut r = rollout();
    r.waves = vec![10, 50, 100];
    let sns: Vec<String> = (0..40).map(|i| format!("009033{i:06x}")).collect();
    let f = fleet(&sns.iter().map(String::as_str).collect::<Vec<_>>());
    let mut s = RolloutState::default();
    for t in [0, 1, 2] {
        step!(s, control(&r, &s, Action::OpenNext, &f, t).unwrap());
    }
    r.waves = vec![100];
    let phone = vec!["phone".to_string()];
    for sn in &sns {
        step!(s, decide(&r, &s, &facts(sn, &phone, "1"), 10).1);
    }
    step!(s, advance(&r, &s, &f, 5000));
    let sum = summarize(&r, &s, true, 5001);
    assert_eq!(sum.waves.len(), 1);
    assert!(sum.blocked.is_none());
}

#[test]
fn state_file_round_trip() {
    let r = rollout();
    let mut s = RolloutState::default();
    for c in [
        Change::Started { at: 4 },
        Change::Opened {
            wave: 0,
            at: 5,
            members: vec!["m".into(), "c".into()],
        },
        Change::Told {
            sn: "a".into(),
            wave: 0,
            at: 6,
        },
        Change::Succeeded {
            sn: "b".into(),
            wave: 1,
            at: 7,
        },
        Change::Told {
            sn: "c".into(),
            wave: 0,
            at: 8,
        },
        Change::Failed {
            sn: "c".into(),
            at: 9,
            why: FailReason::Missing,
        },
        Change::Failed {
            sn: "m".into(),
            at: 9,
            why: FailReason::Silent,
        },
        Change::Paused { at: 10 },
        Change::Resumed { at: 11 },
        Change::Paused { at: 12 },
    ] {
        s.apply(&c);
    }
    assert!(s.devices["m"].member && s.devices["m"].told.is_none());
    assert!(!s.devices["a"].member);
    let text = s.to_element(&r).to_document();
    let back = crate::xml::Element::parse_str(&text).unwrap();
    assert_eq!(RolloutState::from_element(&r, &back), Some(s));
    let mut other = r.clone();
    other.firmware = Some("150000".into());
    assert_eq!(
        RolloutState::from_element(&other, &back),
        None,
        "other target"
    );
}

#[test]
fn builds_and_snippets_on_one_schedule() {
    let r = Rollout {
        snippets: vec!["update-all-all.txt".into()],
        ..rollout()
    };
    let phone = vec!["phone".to_string()];
    let mut s = RolloutState::default();
    let (a, b) = (sn_in(&r, 0, 0), sn_in(&r, 1, 0));
    let f = fleet(&[&a, &b]);
    // never idle: the builds are staged without a new snippet version
    assert!(control(&r, &s, Action::Pause, &f, 1).is_ok());
    step!(s, advance(&r, &s, &f, 10));
    assert_eq!(s.opened, vec![10], "wave 1 opens without a round");
    // without a new version only the builds count: a reports the build, succeeded
    let (_, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 11);
    assert!(matches!(ch[..], [Change::Succeeded { .. }]));
    // a file changes: a new round from wave 1 for both
    step!(
        s,
        vec![Change::Round {
            at: 20,
            versions: vec![("update-all-all.txt".into(), 20)],
        }]
    );
    step!(s, advance(&r, &s, &f, 21));
    assert_eq!(
        (s.opened.clone(), s.devices[&a].succeeded),
        (vec![21], None)
    );
    assert!(needs_return(&r, &s, &facts(&a, &phone, "1")));
    // b (wave 2, closed) gets neither
    let (d, ch) = decide(&r, &s, &facts(&b, &phone, "1"), 22);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("not open")));
    assert!(ch.is_empty());
    // a on the old build gets the build and is not told yet (the update resets the device
    // before the files run); on the new build it is told, and succeeds when it comes back
    let (d, ch) = decide(&r, &s, &facts(&a, &phone, "1"), 23);
    assert!(matches!(d, Decision::Update { firmware: Some(ref f), .. } if f == "140010"));
    assert!(ch.is_empty(), "{ch:?}");
    let (_, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 24);
    assert!(matches!(ch[..], [Change::Told { .. }]), "{ch:?}");
    step!(s, ch);
    // told, but back on another build: not succeeded
    assert!(decide(&r, &s, &facts(&a, &phone, "1"), 25).1.is_empty());
    let (_, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 26);
    assert!(matches!(ch[..], [Change::Succeeded { .. }]), "{ch:?}");
    step!(s, ch);
    step!(s, advance(&r, &s, &f, 121));
    assert_eq!(s.opened.len(), 2, "wave 2 opens for both");
    // a halt holds both for b (never told); the round's end keeps the waves
    s.apply(&Change::Halted(crate::rollout::state::Halt {
        at: 122,
        wave: 1,
        reason: "x".into(),
    }));
    let (d, _) = decide(&r, &s, &facts(&b, &phone, "1"), 123);
    assert!(matches!(d, Decision::Hold(ref w) if w.contains("halted")));
    let end = crate::rollout::staged::next_round(&r, &s, Vec::new(), 124).expect("ends");
    assert_eq!(end, Change::RoundEnded { at: 124 });
    step!(s, vec![end]);
    assert_eq!((s.opened.len(), s.round.len()), (2, 0));
    assert!(s.halted.is_some() && s.devices[&a].succeeded.is_some());
    let sum = summarize(&r, &s, true, 125);
    assert_eq!(sum.phase, Phase::Halted);
    assert!(
        crate::rollout::staged::target_words(&sum)
            .starts_with("firmware 140010, boot code unchanged; snippets update-all-all.txt")
    );
}

fn arb_rollout() -> impl Strategy<Value = Rollout> {
    (
        proptest::collection::btree_set(1u8..=100, 1..6),
        0u8..=100,
        0u8..=100,
        0i64..500,
        1i64..500,
        any::<bool>(),
        any::<(bool, bool, bool, bool)>(),
    )
        .prop_map(
            // builds, snippets, or both (`also`: a snippet rollout stages builds as well)
            |(waves, success, halt, soak, timeout, manual, (fw, boot, snip, also))| Rollout {
                firmware: ((!snip || also) && (fw || !boot)).then(|| "140010".to_string()),
                bootcode: ((!snip || also) && boot).then(|| "140011".to_string()),
                snippets: if snip {
                    vec!["update-all-all.txt".to_string()]
                } else {
                    Vec::new()
                },
                waves: waves.into_iter().collect(),
                success,
                halt,
                soak,
                timeout,
                manual_start: manual,
                ..rollout()
            },
        )
}

fn arb_record() -> impl Strategy<Value = DeviceRecord> {
    (
        0usize..8,
        any::<bool>(),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..2000),
    )
        .prop_map(|(wave, member, told, succeeded, failed)| DeviceRecord {
            wave,
            member,
            told,
            succeeded,
            failed: failed.map(|f| (f, FailReason::Timeout)),
        })
}

fn arb_state() -> impl Strategy<Value = RolloutState> {
    (
        proptest::collection::vec(0i64..2000, 0..8),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..2000),
        proptest::option::of(0i64..2000),
        proptest::option::of((0i64..2000, 0usize..8)),
        0i64..2000,
        proptest::collection::btree_map("009033[0-9a-f]{2}", arb_record(), 0..12),
        proptest::option::of(1i64..2000),
    )
        .prop_map(
            |(opened, started, paused, aborted, halted, resumed, devices, round)| RolloutState {
                started,
                opened,
                paused,
                aborted,
                halted: halted.map(|(at, wave)| crate::rollout::state::Halt {
                    at,
                    wave,
                    reason: "x".into(),
                }),
                acknowledged: 0,
                resumed,
                formed: String::new(),
                regrouped: 0,
                devices,
                round: round
                    .map(|v| vec![("update-all-all.txt".to_string(), v)])
                    .unwrap_or_default(),
                round_at: round.unwrap_or(0),
            },
        )
}

proptest! {
    /// Any configuration against any state (an edit of a running rollout leaves exactly
    /// such pairs: fewer waves than opened, records of waves that no longer exist, other
    /// thresholds): no panic, and every change applies.
    #[test]
    fn decide_advance_and_control_never_panic(
        r in arb_rollout(),
        mut s in arb_state(),
        sn in "009033[0-9a-f]{2}",
        prot in prop_oneof![Just("140010"), Just("1")],
        (no_fw, no_boot, counts) in any::<(bool, bool, bool)>(),
        now in 0i64..5000,
        known in proptest::collection::vec("009033[0-9a-f]{2}", 0..10),
        end_round in any::<bool>(),
    ) {
        let phone = vec!["phone".to_string()];
        let f = fleet(&known.iter().map(String::as_str).collect::<Vec<_>>());
        let d = DeviceFacts { sn: &sn, classes: &phone, envs: &[], prot: Some(prot), boot: Some(prot),
            no_firmware: no_fw, no_bootcode: no_boot, counts };
        let (_, ch) = decide(&r, &s, &d, now);
        step!(s, ch);
        if end_round {
            // the round is done or the files are back: idle, or (with builds) the waves stay
            let before = s.opened.clone();
            if let Some(c) = crate::rollout::staged::next_round(&r, &s, Vec::new(), now) {
                step!(s, vec![c]);
                prop_assert!(s.round.is_empty());
                prop_assert!(!r.stages_builds() || s.opened == before);
            }
        }
        step!(s, advance(&r, &s, &f, now));
        for a in [Action::Start, Action::Pause, Action::Resume, Action::OpenNext, Action::Abort] {
            if let Ok(ch) = control(&r, &s, a, &f, now) {
                step!(s, ch);
            }
            let sum = summarize(&r, &s, true, now);
            prop_assert_eq!(sum.waves.len(), r.waves.len());
        }
        let text = s.to_element(&r).to_document();
        let back = crate::xml::Element::parse_str(&text).unwrap();
        prop_assert!(RolloutState::from_element(&r, &back).is_some());
    }
}
