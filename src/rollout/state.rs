//! What a rollout did so far ([`RolloutState`]), the [`Change`]s that move it on (every change
//! goes through [`RolloutState::apply`], so the shell can log each one), the administrator's
//! [`Action`]s, and the state's file form `rollouts/ID.xml`.

use super::Rollout;
use crate::xml::Element;
use std::collections::BTreeMap;

/// Most devices one rollout keeps track of; further devices are held.
pub const MAX_DEVICES: usize = 200_000;
/// Longest serial number a rollout keeps track of.
pub const MAX_SN: usize = 64;

/// Why a told device counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailReason {
    /// `timeout` seconds passed without the target builds.
    Timeout,
    /// The device went missing (`status/@missing`) before reporting them.
    Missing,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Timeout => "timeout",
            FailReason::Missing => "missing",
        }
    }
}

/// One device the rollout told (or found already on the target builds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub wave: usize,
    pub told: i64,
    pub succeeded: Option<i64>,
    pub failed: Option<(i64, FailReason)>,
}

impl DeviceRecord {
    /// Told, and neither succeeded nor failed yet.
    pub fn pending(&self) -> bool {
        self.succeeded.is_none() && self.failed.is_none()
    }
}

/// Why and when a rollout halted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    pub at: i64,
    pub wave: usize,
    pub reason: String,
}

/// What happened so far in one rollout.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RolloutState {
    /// When each opened wave opened (index = wave).
    pub opened: Vec<i64>,
    pub paused: Option<i64>,
    pub aborted: Option<i64>,
    pub halted: Option<Halt>,
    /// Failures up to this time were looked at by an administrator who resumed the rollout
    /// after a halt; they no longer halt it.
    pub acknowledged: i64,
    /// By serial number as the device sends it.
    pub devices: BTreeMap<String, DeviceRecord>,
}

/// One step of a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Told {
        sn: String,
        wave: usize,
        at: i64,
    },
    Succeeded {
        sn: String,
        wave: usize,
        at: i64,
    },
    Failed {
        sn: String,
        at: i64,
        why: FailReason,
    },
    Opened {
        wave: usize,
        at: i64,
    },
    Halted(Halt),
    Paused {
        at: i64,
    },
    /// Resumed after a pause or a halt (failures so far are acknowledged).
    Resumed {
        at: i64,
    },
    Aborted {
        at: i64,
    },
}

/// What an administrator can do to a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Resume,
    Abort,
    /// Open the next wave now, whatever its success and soak conditions.
    OpenNext,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "abort" => Action::Abort,
            "open-next" => Action::OpenNext,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Abort => "abort",
            Action::OpenNext => "open-next",
        }
    }
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Told { sn, wave, .. } => write!(f, "told {sn} (wave {})", wave + 1),
            Change::Succeeded { sn, wave, .. } => {
                write!(f, "{sn} succeeded (wave {})", wave + 1)
            }
            Change::Failed { sn, why, .. } => write!(f, "{sn} failed ({})", why.as_str()),
            Change::Opened { wave, .. } => write!(f, "wave {} opened", wave + 1),
            Change::Halted(h) => write!(f, "halted in wave {}: {}", h.wave + 1, h.reason),
            Change::Paused { .. } => f.write_str("paused"),
            Change::Resumed { .. } => f.write_str("resumed"),
            Change::Aborted { .. } => f.write_str("aborted"),
        }
    }
}

impl RolloutState {
    /// Applies one change.
    pub fn apply(&mut self, c: &Change) {
        match c {
            Change::Told { sn, wave, at } => {
                if self.devices.len() < MAX_DEVICES || self.devices.contains_key(sn) {
                    self.devices.entry(sn.clone()).or_insert(DeviceRecord {
                        wave: *wave,
                        told: *at,
                        succeeded: None,
                        failed: None,
                    });
                }
            }
            Change::Succeeded { sn, wave, at } => {
                if self.devices.len() < MAX_DEVICES || self.devices.contains_key(sn) {
                    let d = self.devices.entry(sn.clone()).or_insert(DeviceRecord {
                        wave: *wave,
                        told: *at,
                        succeeded: None,
                        failed: None,
                    });
                    d.succeeded = Some(*at);
                    d.failed = None;
                }
            }
            Change::Failed { sn, at, why } => {
                if let Some(d) = self.devices.get_mut(sn) {
                    d.failed = Some((*at, *why));
                }
            }
            Change::Opened { wave, at } => {
                if *wave == self.opened.len() {
                    self.opened.push(*at);
                }
            }
            Change::Halted(h) => self.halted = Some(h.clone()),
            Change::Paused { at } => self.paused = Some(*at),
            Change::Resumed { at } => {
                self.paused = None;
                if self.halted.take().is_some() {
                    self.acknowledged = *at;
                }
            }
            Change::Aborted { at } => self.aborted = Some(*at),
        }
    }

    /// The document `rollouts/ID.xml` (with the target builds, so a changed rollout starts
    /// afresh).
    pub fn to_element(&self, r: &Rollout) -> Element {
        let mut root = Element::new("rollout");
        root.set_attr("id", r.id.clone());
        root.set_attr("target", target_of(r));
        let mut set = |name: &str, v: Option<i64>| {
            if let Some(v) = v {
                root.set_attr(name, v.to_string());
            }
        };
        set("paused", self.paused);
        set("aborted", self.aborted);
        set("acknowledged", Some(self.acknowledged).filter(|a| *a != 0));
        for (i, at) in self.opened.iter().enumerate() {
            let mut w = Element::new("wave");
            w.set_attr("n", (i + 1).to_string());
            w.set_attr("opened", at.to_string());
            root.children.push(w);
        }
        if let Some(h) = &self.halted {
            let mut e = Element::new("halted");
            e.set_attr("at", h.at.to_string());
            e.set_attr("wave", (h.wave + 1).to_string());
            e.set_attr("reason", h.reason.clone());
            root.children.push(e);
        }
        for (sn, d) in &self.devices {
            let mut e = Element::new("device");
            e.set_attr("sn", sn.clone());
            e.set_attr("wave", (d.wave + 1).to_string());
            e.set_attr("told", d.told.to_string());
            if let Some(s) = d.succeeded {
                e.set_attr("succeeded", s.to_string());
            }
            if let Some((at, why)) = d.failed {
                e.set_attr("failed", at.to_string());
                e.set_attr("why", why.as_str());
            }
            root.children.push(e);
        }
        root
    }

    /// Reads `rollouts/ID.xml`; a file of another rollout or of other target builds, or a
    /// broken one, gives `None` (the rollout starts afresh). Unknown pieces are skipped.
    pub fn from_element(r: &Rollout, e: &Element) -> Option<RolloutState> {
        if e.name != "rollout" || e.attr("id") != Some(&r.id) {
            return None;
        }
        if e.attr("target") != Some(target_of(r).as_str()) {
            return None;
        }
        let num = |el: &Element, n: &str| el.attr(n).and_then(|v| v.parse::<i64>().ok());
        let wave = |el: &Element| {
            num(el, "wave")
                .filter(|w| (1..=r.waves.len() as i64).contains(w))
                .map(|w| (w - 1) as usize)
        };
        let mut s = RolloutState {
            paused: num(e, "paused"),
            aborted: num(e, "aborted"),
            acknowledged: num(e, "acknowledged").unwrap_or(0),
            ..Default::default()
        };
        for w in e.children_named("wave").take(r.waves.len()) {
            s.opened.push(num(w, "opened")?);
        }
        if let Some(h) = e.child("halted") {
            s.halted = Some(Halt {
                at: num(h, "at").unwrap_or(0),
                wave: wave(h).unwrap_or(0),
                reason: h.attr("reason").unwrap_or("").to_string(),
            });
        }
        for d in e.children_named("device").take(MAX_DEVICES) {
            let (Some(sn), Some(w), Some(told)) = (d.attr("sn"), wave(d), num(d, "told")) else {
                continue;
            };
            let why = match d.attr("why") {
                Some("missing") => FailReason::Missing,
                _ => FailReason::Timeout,
            };
            s.devices.insert(
                sn.chars().take(MAX_SN).collect(),
                DeviceRecord {
                    wave: w,
                    told,
                    succeeded: num(d, "succeeded"),
                    failed: num(d, "failed").map(|at| (at, why)),
                },
            );
        }
        Some(s)
    }
}

/// The rollout's target builds as one text (`firmware/bootcode`, `-` for none).
fn target_of(r: &Rollout) -> String {
    format!(
        "{}/{}",
        r.firmware.as_deref().unwrap_or("-"),
        r.bootcode.as_deref().unwrap_or("-")
    )
}
