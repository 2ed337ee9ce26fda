//! Staged snippet rollouts, the pure part: a `<rollout snippets="…"/>` stages new versions
//! of snippet files the way a firmware rollout stages builds (same waves, counts, phases and
//! actions). A file's version is PHP's: its modification time (what the state files record
//! as `version`). Per named file the server keeps the **previous** version (the baseline:
//! the last version every device in scope was given; `rollout::kept`). When the live file's
//! version differs from the baseline, the rollout's **round** is the set of such files with
//! their live versions ([`round_of`]); a different round than the state's starts a new one
//! from wave 1 ([`crate::rollout::Change::Round`]). When a round is `done`, the live versions
//! become the baseline and the rollout is idle again.
//!
//! A polling device in scope that gets a staged file is given ([`serve`]): the new version
//! while its wave is open (or it was told it before and the round is halted or paused), the
//! previous version otherwise (held, aborted, or a new version the ticker has not started a
//! round for yet). A device counts as told when a poll gives it the new version, and
//! succeeds when it polls again within `timeout`.

use super::decide::{Decision, DeviceFacts, decide};
use super::{Change, Rollout, RolloutState};
pub use crate::config::rollouts::reaches;

/// The round a snippet rollout has now: each named file whose live version (`live`, `None`:
/// missing) differs from its kept previous version (`kept`, `None`: none kept yet, so
/// nothing is staged for it), with the live version; sorted by name.
pub fn round_of(
    r: &Rollout,
    live: &dyn Fn(&str) -> Option<i64>,
    kept: &dyn Fn(&str) -> Option<i64>,
) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = r
        .snippets
        .iter()
        .filter_map(|f| match (live(f), kept(f)) {
            (Some(l), Some(k)) if l != k => Some((f.clone(), l)),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The change that brings the state in line with the files (`None`: it is). A rollout that
/// stages builds as well keeps its waves when no new version is left (the round ends).
pub fn next_round(
    r: &Rollout,
    s: &RolloutState,
    round: Vec<(String, i64)>,
    now: i64,
) -> Option<Change> {
    if s.round == round {
        None
    } else if round.is_empty() && r.stages_builds() {
        Some(Change::RoundEnded { at: now })
    } else {
        Some(Change::Round {
            at: now,
            versions: round,
        })
    }
}

/// What a rollout stages, in words (the panel, `rollout-plan`).
pub fn target_words(r: &super::RolloutSummary) -> String {
    let builds = format!(
        "firmware {}, boot code {}",
        r.firmware.as_deref().unwrap_or("unchanged"),
        r.bootcode.as_deref().unwrap_or("unchanged")
    );
    if r.snippets.is_empty() {
        return builds;
    }
    let files: Vec<String> = r
        .snippets
        .iter()
        .map(|f| match f.version {
            Some(v) => format!("{} version {v}", f.name),
            None => format!("{} (nothing new)", f.name),
        })
        .collect();
    if r.firmware.is_none() && r.bootcode.is_none() {
        format!("snippets {}", files.join(", "))
    } else {
        format!("{builds}; snippets {}", files.join(", "))
    }
}

/// Which version of a staged file a poll gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// The live file (not staged, outside the scope, or the device's wave is open).
    Live,
    /// The previous version, and why (for the script's comment).
    Previous(String),
}

/// What device `d` gets of snippet file `file`, whose live version is `live` and kept
/// previous version `kept`, from rollout `r` (which names it) with state `s`, and the changes
/// to record (only when the rollout stages this very version).
pub fn serve(
    r: &Rollout,
    s: &RolloutState,
    d: &DeviceFacts<'_>,
    (file, live, kept): (&str, i64, Option<i64>),
    now: i64,
) -> (Serve, Vec<Change>) {
    let Some(kept) = kept.filter(|k| *k != live) else {
        return (Serve::Live, Vec::new());
    };
    if !r.in_scope(d.classes, d.envs) {
        return (Serve::Live, Vec::new());
    }
    let staged = s.round.iter().any(|(f, v)| f == file && *v == live);
    if !staged {
        let why = format!(
            "rollout {}: {file} version {live} waits for its round to begin, previous version {kept}",
            r.id
        );
        return (Serve::Previous(why), Vec::new());
    }
    match decide(r, s, d, now) {
        (Decision::NotInScope, _) => (Serve::Live, Vec::new()),
        (Decision::Update { .. }, changes) => (Serve::Live, changes),
        (Decision::Hold(why), changes) => (
            Serve::Previous(format!("{why}: {file} previous version {kept}")),
            changes,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::decide::{Fleet, advance, testing::ListFleet};

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_file_reaches_devices_by_its_name() {
        let (phone, berlin) = (strs(&["phone"]), strs(&["berlin"]));
        assert!(reaches("update-all-all.txt", "x", &[], &[]));
        assert!(reaches("update-phone-berlin.txt", "x", &phone, &berlin));
        assert!(!reaches("update-phone-berlin.txt", "x", &phone, &[]));
        assert!(!reaches("update-gateway-all.txt", "x", &phone, &berlin));
        assert!(reaches("all-all-00_90_33_aa.txt", "00-90-33-AA", &[], &[]));
        assert!(!reaches("notes", "x", &phone, &berlin));
    }

    fn rollout() -> Rollout {
        crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="ntp" snippets="update-all-all.txt b.txt" waves="50,100" soak="0" timeout="100"/></rollouts></config>"#,
        )
        .expect("config")
        .rollouts
        .remove(0)
    }

    #[test]
    fn a_round_is_the_files_whose_live_version_is_not_the_kept_one() {
        let r = rollout();
        let live = |f: &str| (f == "update-all-all.txt").then_some(20);
        assert_eq!(round_of(&r, &live, &|_| None), Vec::new(), "nothing kept");
        assert_eq!(round_of(&r, &live, &|_| Some(20)), Vec::new());
        let round = round_of(&r, &live, &|_| Some(10));
        assert_eq!(round, vec![("update-all-all.txt".to_string(), 20)]);
        let s = RolloutState::default();
        let c = next_round(&r, &s, round.clone(), 5).expect("a new round");
        let mut s2 = s.clone();
        s2.apply(&c);
        assert_eq!((s2.round.clone(), s2.round_at), (round.clone(), 5));
        assert!(next_round(&r, &s2, round, 6).is_none());
    }

    #[test]
    fn held_devices_get_the_previous_version_and_told_ones_come_back() {
        let r = rollout();
        let mut s = RolloutState::default();
        s.apply(&Change::Round {
            at: 0,
            versions: vec![("update-all-all.txt".into(), 20)],
        });
        let sn_in = |w: usize| {
            (0..)
                .map(|i| format!("009033{i:06x}"))
                .find(|sn| crate::rollout::wave_of(&r, sn) == Some(w))
                .expect("sn")
        };
        let (a, b) = (sn_in(0), sn_in(1));
        let fleet = ListFleet {
            devices: vec![
                crate::rollout::decide::testing::Dev::phone(&a),
                crate::rollout::decide::testing::Dev::phone(&b),
            ],
            ..ListFleet::default()
        };
        assert!(fleet.ready());
        for c in advance(&r, &s, &fleet, 1) {
            s.apply(&c);
        }
        assert_eq!(s.opened.len(), 1);
        fn facts(sn: &str) -> DeviceFacts<'_> {
            DeviceFacts {
                sn,
                classes: &[],
                envs: &[],
                prot: None,
                boot: None,
                no_firmware: false,
                no_bootcode: false,
                counts: true,
            }
        }
        let (a, b) = (a.as_str(), b.as_str());
        let file = ("update-all-all.txt", 20, Some(10));
        let (got, changes) = serve(&r, &s, &facts(a), file, 2);
        assert_eq!(got, Serve::Live);
        assert!(matches!(changes[..], [Change::Told { .. }]));
        for c in &changes {
            s.apply(c);
        }
        let (got, _) = serve(&r, &s, &facts(b), file, 2);
        assert!(matches!(got, Serve::Previous(ref w) if w.contains("not open")));
        // a not yet staged version: previous, nothing recorded
        let (got, changes) = serve(&r, &s, &facts(b), ("update-all-all.txt", 30, Some(10)), 2);
        assert!(matches!(got, Serve::Previous(ref w) if w.contains("waits")));
        assert!(changes.is_empty());
        // a came back: succeeded
        let (got, changes) = serve(&r, &s, &facts(a), file, 3);
        assert_eq!(got, Serve::Live);
        assert!(matches!(changes[..], [Change::Succeeded { .. }]));
        // halted: a (told) keeps the new version; aborted: back to the previous one
        s.apply(&Change::Halted(crate::rollout::state::Halt {
            at: 4,
            wave: 0,
            reason: "x".into(),
        }));
        assert_eq!(serve(&r, &s, &facts(a), file, 5).0, Serve::Live);
        s.apply(&Change::Aborted { at: 6 });
        assert!(matches!(
            serve(&r, &s, &facts(a), file, 7).0,
            Serve::Previous(_)
        ));
        // the same version as kept: nothing staged
        assert_eq!(
            serve(&r, &s, &facts(b), ("update-all-all.txt", 10, Some(10)), 8).0,
            Serve::Live
        );
    }
}
