//! The pure decisions: what one polling device gets ([`decide`]), how a rollout moves on with
//! time ([`advance`]), and what an administrator's action does ([`control`]). Each returns the
//! [`Change`]s to apply; none changes the state itself.

use super::state::{Action, Change, FailReason, Halt, MAX_SN, RolloutState};
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

/// Whether the device reports the rollout's target builds.
pub fn reached(r: &Rollout, d: &DeviceFacts<'_>) -> bool {
    let same = |want: &Option<String>, have: Option<&str>| match (want, have) {
        (None, _) => true,
        (Some(w), Some(h)) => loose_eq(&Value::Str(h.to_string()), &Value::Str(w.clone())),
        (Some(_), None) => false,
    };
    same(&r.firmware, d.prot) && same(&r.bootcode, d.boot)
}

/// What the device gets from rollout `r` at `now`, and the changes to record.
pub fn decide(
    r: &Rollout,
    s: &RolloutState,
    d: &DeviceFacts<'_>,
    now: i64,
) -> (Decision, Vec<Change>) {
    let hold = |why: String| {
        (
            Decision::Hold(format!("rollout {}: {why}", r.id)),
            Vec::new(),
        )
    };
    if !r.in_scope(d.classes, d.envs) {
        return (Decision::NotInScope, Vec::new());
    }
    let sn = d.sn.trim();
    if sn.is_empty() || sn.len() > MAX_SN {
        return hold("held, no usable serial number".to_string());
    }
    let Some(wave) = wave_of(r, sn) else {
        return hold("held, the device is beyond the last wave".to_string());
    };
    if s.aborted.is_some() {
        return hold("aborted, held".to_string());
    }
    if let Some(h) = &s.halted {
        return hold(format!("halted ({}), held", h.reason));
    }
    if wave >= s.opened.len() {
        return hold(format!("held, {} is not open yet", r.wave_label(wave)));
    }
    let record = s.devices.get(sn);
    if s.paused.is_some() && record.is_none() {
        return hold("paused, held".to_string());
    }
    let update = Decision::Update {
        firmware: r.firmware.clone(),
        bootcode: r.bootcode.clone(),
    };
    let sn = sn.to_string();
    let changes = match record {
        Some(rec) if rec.succeeded.is_some() => Vec::new(),
        _ if reached(r, d) => vec![Change::Succeeded { sn, wave, at: now }],
        None => vec![Change::Told { sn, wave, at: now }],
        Some(_) => Vec::new(),
    };
    (update, changes)
}

/// Counts of one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Devices told (or found on the target builds).
    pub told: usize,
    pub succeeded: usize,
    /// Failed after the last acknowledgement (what halts a rollout).
    pub failed: usize,
}

impl Counts {
    /// Whether the success condition holds (an empty wave passes: nobody in it polled).
    pub fn success_met(&self, r: &Rollout) -> bool {
        self.succeeded * 100 >= usize::from(r.success) * self.told
    }

    /// Whether more than `halt`% failed.
    pub fn halts(&self, r: &Rollout) -> bool {
        self.failed > 0 && self.failed * 100 > usize::from(r.halt) * self.told
    }
}

/// The counts of every wave of the rollout, with `newly_failed` counted as failed.
pub fn wave_counts(
    r: &Rollout,
    s: &RolloutState,
    newly_failed: &[(String, FailReason)],
) -> Vec<Counts> {
    let newly: std::collections::HashSet<&str> =
        newly_failed.iter().map(|(sn, _)| sn.as_str()).collect();
    let mut c = vec![Counts::default(); r.waves.len()];
    for (sn, d) in &s.devices {
        let Some(w) = c.get_mut(d.wave) else {
            continue;
        };
        w.told += 1;
        w.succeeded += usize::from(d.succeeded.is_some());
        let failed = d.failed.is_some_and(|(at, _)| at > s.acknowledged)
            || (d.pending() && newly.contains(sn.as_str()));
        w.failed += usize::from(failed);
    }
    c
}

/// Moves the rollout on at `now`: opens the first wave; marks told devices failed after
/// `timeout` or when `missing(sn)`; halts when more than `halt`% of a wave failed; opens the
/// next wave when `success`% of the current one succeeded and `soak` seconds passed.
pub fn advance(
    r: &Rollout,
    s: &RolloutState,
    missing: &dyn Fn(&str) -> bool,
    now: i64,
) -> Vec<Change> {
    let mut out = Vec::new();
    if s.aborted.is_some() {
        return out;
    }
    let mut opened = s.opened.len();
    if opened == 0 && s.paused.is_none() {
        out.push(Change::Opened { wave: 0, at: now });
        opened = 1;
    }
    let failed: Vec<(String, FailReason)> = s
        .devices
        .iter()
        .filter(|(_, d)| d.pending())
        .filter_map(|(sn, d)| {
            if now - d.told >= r.timeout {
                Some((sn.clone(), FailReason::Timeout))
            } else if missing(sn) {
                Some((sn.clone(), FailReason::Missing))
            } else {
                None
            }
        })
        .collect();
    let counts = wave_counts(r, s, &failed);
    out.extend(
        failed
            .into_iter()
            .map(|(sn, why)| Change::Failed { sn, at: now, why }),
    );
    if s.halted.is_some() {
        return out;
    }
    if let Some(w) = (0..opened).find(|w| counts[*w].halts(r)) {
        out.push(Change::Halted(halt_at(r, w, &counts[w], now)));
        return out;
    }
    if s.paused.is_none() && opened == s.opened.len() {
        if let Some(cur) = opened.checked_sub(1) {
            let next = cur + 1;
            if next < r.waves.len() && now - s.opened[cur] >= r.soak && counts[cur].success_met(r) {
                out.push(Change::Opened {
                    wave: next,
                    at: now,
                });
            }
        }
    }
    out
}

fn halt_at(r: &Rollout, w: usize, c: &Counts, now: i64) -> Halt {
    Halt {
        at: now,
        wave: w,
        reason: format!(
            "{} of {} devices in {} failed ({:.1}% > {}%)",
            c.failed,
            c.told,
            r.wave_label(w),
            c.failed as f64 * 100.0 / c.told as f64,
            r.halt
        ),
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
}

/// The changes an administrator's action makes at `now`.
pub fn control(
    r: &Rollout,
    s: &RolloutState,
    a: Action,
    now: i64,
) -> Result<Vec<Change>, ActionError> {
    if s.aborted.is_some() {
        return Err(ActionError::Aborted);
    }
    Ok(match a {
        Action::Pause if s.paused.is_some() => return Err(ActionError::AlreadyPaused),
        Action::Pause => vec![Change::Paused { at: now }],
        Action::Resume if s.paused.is_none() && s.halted.is_none() => {
            return Err(ActionError::NotStopped);
        }
        Action::Resume => vec![Change::Resumed { at: now }],
        Action::Abort => vec![Change::Aborted { at: now }],
        Action::OpenNext if s.opened.len() >= r.waves.len() => return Err(ActionError::AllOpen),
        Action::OpenNext => vec![Change::Opened {
            wave: s.opened.len(),
            at: now,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Applies;

    fn rollout() -> Rollout {
        Rollout {
            id: "r".into(),
            firmware: Some("140010".into()),
            bootcode: None,
            applies: vec![Applies {
                value: "phone".into(),
                env: false,
            }],
            waves: vec![50, 100],
            success: 100,
            halt: 10,
            soak: 100,
            timeout: 1000,
        }
    }

    fn sn_in(r: &Rollout, wave: usize) -> String {
        (0..)
            .map(|i| format!("009033{i:06x}"))
            .find(|sn| wave_of(r, sn) == Some(wave))
            .unwrap()
    }

    fn facts<'a>(sn: &'a str, classes: &'a [String], prot: &'a str) -> DeviceFacts<'a> {
        DeviceFacts {
            sn,
            classes,
            envs: &[],
            prot: Some(prot),
            boot: None,
        }
    }

    #[test]
    fn scope_waves_and_success() {
        let r = rollout();
        let phone = vec!["phone".to_string()];
        let mut s = RolloutState::default();
        let (a, b) = (sn_in(&r, 0), sn_in(&r, 1));
        let (d, _) = decide(&r, &s, &facts(&a, &["gateway".into()], "1"), 0);
        assert_eq!(d, Decision::NotInScope);
        for c in advance(&r, &s, &|_| false, 10) {
            s.apply(&c);
        }
        assert_eq!(s.opened, vec![10]);
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
        s.apply(&ch[0]);
        // soak not over, nobody succeeded yet
        assert!(advance(&r, &s, &|_| false, 50).is_empty());
        let (_, ch) = decide(&r, &s, &facts(&a, &phone, "140010"), 60);
        assert_eq!(
            ch,
            vec![Change::Succeeded {
                sn: a.clone(),
                wave: 0,
                at: 60
            }]
        );
        s.apply(&ch[0]);
        assert!(advance(&r, &s, &|_| false, 109).is_empty());
        assert_eq!(
            advance(&r, &s, &|_| false, 110),
            vec![Change::Opened { wave: 1, at: 110 }]
        );
    }

    #[test]
    fn timeout_and_missing_fail_and_halt() {
        let r = rollout();
        let phone = vec!["phone".to_string()];
        let mut s = RolloutState::default();
        s.apply(&Change::Opened { wave: 0, at: 0 });
        let a = sn_in(&r, 0);
        let (_, ch) = decide(&r, &s, &facts(&a, &phone, "1"), 0);
        s.apply(&ch[0]);
        let ch = advance(&r, &s, &|sn| sn == a, 5);
        assert!(matches!(
            ch[0],
            Change::Failed {
                why: FailReason::Missing,
                ..
            }
        ));
        assert!(
            matches!(&ch[1], Change::Halted(h) if h.wave == 0 && h.reason.starts_with("1 of 1"))
        );
        for c in &ch {
            s.apply(c);
        }
        let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 6);
        assert!(matches!(d, Decision::Hold(ref w) if w.contains("halted")));
        // resuming acknowledges the failure: no new halt
        for c in control(&r, &s, Action::Resume, 7).unwrap() {
            s.apply(&c);
        }
        assert!(advance(&r, &s, &|_| false, 8).is_empty());
        assert_eq!(
            control(&r, &s, Action::Resume, 9),
            Err(ActionError::NotStopped)
        );
    }

    #[test]
    fn pause_abort_and_open_next() {
        let r = rollout();
        let phone = vec!["phone".to_string()];
        let mut s = RolloutState::default();
        for c in control(&r, &s, Action::Pause, 0).unwrap() {
            s.apply(&c);
        }
        assert!(
            advance(&r, &s, &|_| false, 1).is_empty(),
            "paused: no first wave"
        );
        for c in control(&r, &s, Action::OpenNext, 2).unwrap() {
            s.apply(&c);
        }
        let a = sn_in(&r, 0);
        let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 3);
        assert!(matches!(d, Decision::Hold(ref w) if w.contains("paused")));
        for c in control(&r, &s, Action::Abort, 4).unwrap() {
            s.apply(&c);
        }
        assert_eq!(
            control(&r, &s, Action::Resume, 5),
            Err(ActionError::Aborted)
        );
        let (d, _) = decide(&r, &s, &facts(&a, &phone, "1"), 6);
        assert!(matches!(d, Decision::Hold(ref w) if w.contains("aborted")));
    }

    #[test]
    fn state_file_round_trip() {
        let r = rollout();
        let mut s = RolloutState::default();
        for c in [
            Change::Opened { wave: 0, at: 5 },
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
            Change::Paused { at: 10 },
        ] {
            s.apply(&c);
        }
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
}
