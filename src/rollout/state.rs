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

/// Why a member of a wave counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailReason {
    /// Told, and `timeout` seconds passed without the target builds.
    Timeout,
    /// The device went missing (`status/@missing`) before reporting them.
    Missing,
    /// It did not poll within `timeout` seconds of its wave opening.
    Silent,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Timeout => "timeout",
            FailReason::Missing => "missing",
            FailReason::Silent => "silent",
        }
    }

    /// In words, for the panel.
    pub fn words(self) -> &'static str {
        match self {
            FailReason::Timeout => "told, did not report the target builds in time",
            FailReason::Missing => "went missing",
            FailReason::Silent => "did not poll after its wave opened",
        }
    }

    fn parse(s: &str) -> FailReason {
        match s {
            "missing" => FailReason::Missing,
            "silent" => FailReason::Silent,
            _ => FailReason::Timeout,
        }
    }
}

/// One device the rollout knows of: a member of a wave's population, or a device it served
/// (told, or found on the target builds) that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub wave: usize,
    /// In the wave's population (known to the server when the wave opened): counted.
    pub member: bool,
    /// When it was first told (`None`: a member that has not polled since).
    pub told: Option<i64>,
    pub succeeded: Option<i64>,
    pub failed: Option<(i64, FailReason)>,
}

impl DeviceRecord {
    /// A member that neither succeeded nor failed yet.
    pub fn pending(&self) -> bool {
        self.member && self.succeeded.is_none() && self.failed.is_none()
    }

    fn served(wave: usize, at: i64) -> DeviceRecord {
        DeviceRecord {
            wave,
            member: false,
            told: Some(at),
            succeeded: None,
            failed: None,
        }
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
    /// When the administrator started a rollout with `start="manual"`.
    pub started: Option<i64>,
    /// When each opened wave opened (index = wave).
    pub opened: Vec<i64>,
    pub paused: Option<i64>,
    pub aborted: Option<i64>,
    pub halted: Option<Halt>,
    /// Failures up to this time were looked at by an administrator who resumed the rollout
    /// after a halt; they no longer halt it.
    pub acknowledged: i64,
    /// When it was last resumed (0: never); a member that could not be told while the rollout
    /// was paused or halted has `timeout` seconds from then.
    pub resumed: i64,
    /// The waves and scope the populations were formed for ([`super::decide::formation`]);
    /// empty before the first wave opens. An edit of either re-forms them.
    pub formed: String,
    /// When the populations were last re-formed (0: never); a member added then has
    /// `timeout` seconds from then.
    pub regrouped: i64,
    /// By serial number as the device sends it.
    pub devices: BTreeMap<String, DeviceRecord>,
    /// A snippet rollout's round: the files with a new version and that version (PHP's,
    /// the file's modification time), by file name; empty: nothing staged (idle).
    pub round: Vec<(String, i64)>,
    /// When the round began (0: no round).
    pub round_at: i64,
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
    /// A wave opened with its population (the serials of its members).
    Opened {
        wave: usize,
        at: i64,
        members: Vec<String>,
    },
    /// The populations of the open waves were formed anew for other waves or another scope
    /// (`formed`): exactly these devices are members now, in these waves.
    Regrouped {
        at: i64,
        formed: String,
        members: Vec<(String, usize)>,
    },
    /// A rollout with `start="manual"` was started.
    Started {
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
    /// A snippet rollout's files changed: a new round for these versions begins from wave 1
    /// (everything of the round before is forgotten); no versions: nothing staged.
    Round {
        at: i64,
        versions: Vec<(String, i64)>,
    },
    /// A rollout that stages builds and snippets has no new snippet version any more (its
    /// round is done, or the files are back to the previous versions): the round ends, what
    /// the waves did stays (the builds' progress).
    RoundEnded {
        at: i64,
    },
}

/// What an administrator can do to a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start a rollout with `start="manual"`.
    Start,
    Pause,
    Resume,
    Abort,
    /// Open the next wave now, whatever its success and soak conditions.
    OpenNext,
}

impl Action {
    pub fn parse(s: &str) -> Option<Action> {
        Some(match s {
            "start" => Action::Start,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "abort" => Action::Abort,
            "open-next" => Action::OpenNext,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Start => "start",
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
            Change::Opened { wave, members, .. } => write!(
                f,
                "wave {} opened ({} devices in its population)",
                wave + 1,
                members.len()
            ),
            Change::Started { .. } => f.write_str("started"),
            Change::Regrouped { members, .. } => write!(
                f,
                "waves or scope changed: populations formed anew ({} devices)",
                members.len()
            ),
            Change::Halted(h) => write!(f, "halted in wave {}: {}", h.wave + 1, h.reason),
            Change::Paused { .. } => f.write_str("paused"),
            Change::Resumed { .. } => f.write_str("resumed"),
            Change::Aborted { .. } => f.write_str("aborted"),
            Change::RoundEnded { .. } => f.write_str("round ended: no new snippet version staged"),
            Change::Round { versions, .. } if versions.is_empty() => {
                f.write_str("no new snippet version staged")
            }
            Change::Round { versions, .. } => {
                let v: Vec<String> = versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
                write!(f, "new round from wave 1 for {}", v.join(", "))
            }
        }
    }
}

impl RolloutState {
    /// Applies one change.
    pub fn apply(&mut self, c: &Change) {
        match c {
            Change::Told { sn, wave, at } => {
                if let Some(d) = self.devices.get_mut(sn) {
                    d.told.get_or_insert(*at);
                } else if self.devices.len() < MAX_DEVICES {
                    self.devices
                        .insert(sn.clone(), DeviceRecord::served(*wave, *at));
                }
            }
            Change::Succeeded { sn, wave, at } => {
                if !self.devices.contains_key(sn) && self.devices.len() < MAX_DEVICES {
                    self.devices
                        .insert(sn.clone(), DeviceRecord::served(*wave, *at));
                }
                if let Some(d) = self.devices.get_mut(sn) {
                    d.told.get_or_insert(*at);
                    d.succeeded = Some(*at);
                    d.failed = None;
                }
            }
            Change::Failed { sn, at, why } => {
                if let Some(d) = self.devices.get_mut(sn) {
                    d.failed = Some((*at, *why));
                }
            }
            Change::Opened { wave, at, members } => {
                if *wave == self.opened.len() {
                    self.opened.push(*at);
                    for sn in members {
                        // members come from the server's own device index: not capped
                        let d = self
                            .devices
                            .entry(sn.clone())
                            .or_insert_with(|| DeviceRecord::served(*wave, *at));
                        if d.succeeded.is_none() {
                            d.told = None;
                        }
                        d.wave = *wave;
                        d.member = true;
                    }
                }
            }
            Change::Started { at } => self.started = Some(*at),
            Change::Regrouped {
                at,
                formed,
                members,
            } => self.regroup(*at, formed, members),
            Change::Halted(h) => self.halted = Some(h.clone()),
            Change::Paused { at } => self.paused = Some(*at),
            Change::Resumed { at } => {
                self.paused = None;
                self.resumed = *at;
                if self.halted.take().is_some() {
                    self.acknowledged = *at;
                }
            }
            Change::Aborted { at } => self.aborted = Some(*at),
            Change::RoundEnded { .. } => {
                self.round.clear();
                self.round_at = 0;
            }
            Change::Round { at, versions } => {
                *self = RolloutState {
                    round: versions.clone(),
                    round_at: if versions.is_empty() { 0 } else { *at },
                    ..RolloutState::default()
                };
            }
        }
    }

    /// Populations formed anew after an edit: `members` (serial, wave) are the open waves'
    /// members from now on.
    fn regroup(&mut self, at: i64, formed: &str, members: &[(String, usize)]) {
        self.formed = formed.to_string();
        if self.opened.is_empty() {
            return;
        }
        self.regrouped = at;
        for d in self.devices.values_mut() {
            d.member = false;
        }
        for (sn, w) in members {
            let d = self.devices.entry(sn.clone()).or_insert(DeviceRecord {
                wave: *w,
                member: true,
                told: None,
                succeeded: None,
                failed: None,
            });
            d.wave = *w;
            d.member = true;
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
        set("started", self.started);
        set("paused", self.paused);
        set("resumed", Some(self.resumed).filter(|a| *a != 0));
        set("regrouped", Some(self.regrouped).filter(|a| *a != 0));
        set("aborted", self.aborted);
        set("acknowledged", Some(self.acknowledged).filter(|a| *a != 0));
        set("round", Some(self.round_at).filter(|a| *a != 0));
        if !self.formed.is_empty() {
            root.set_attr("formed", self.formed.clone());
        }
        for (name, version) in &self.round {
            let mut f = Element::new("file");
            f.set_attr("name", name.clone());
            f.set_attr("version", version.to_string());
            root.children.push(f);
        }
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
            if d.member {
                e.set_attr("member", "1");
            }
            if let Some(t) = d.told {
                e.set_attr("told", t.to_string());
            }
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
            started: num(e, "started"),
            resumed: num(e, "resumed").unwrap_or(0),
            regrouped: num(e, "regrouped").unwrap_or(0),
            formed: e.attr("formed").unwrap_or("").to_string(),
            paused: num(e, "paused"),
            aborted: num(e, "aborted"),
            acknowledged: num(e, "acknowledged").unwrap_or(0),
            round_at: num(e, "round").unwrap_or(0),
            ..Default::default()
        };
        for f in e.children_named("file").take(super::config::MAX_SNIPPETS) {
            match (f.attr("name"), num(f, "version")) {
                (Some(n), Some(v)) if r.snippets.iter().any(|s| s == n) => {
                    s.round.push((n.to_string(), v));
                }
                _ => {}
            }
        }
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
            let (Some(sn), Some(w)) = (d.attr("sn"), wave(d)) else {
                continue;
            };
            let why = FailReason::parse(d.attr("why").unwrap_or(""));
            s.devices.insert(
                sn.chars().take(MAX_SN).collect(),
                DeviceRecord {
                    wave: w,
                    member: d.attr("member") == Some("1"),
                    told: num(d, "told"),
                    succeeded: num(d, "succeeded"),
                    failed: num(d, "failed").map(|at| (at, why)),
                },
            );
        }
        Some(s)
    }
}

/// The rollout's target as one text: its builds (`firmware/bootcode`, `-` for none), or
/// `snippets:` and its file names, or both (`140010/- snippets:a.txt`).
pub fn target_of(r: &Rollout) -> String {
    let files = format!("snippets:{}", r.snippets.join(","));
    if !r.stages_builds() {
        return files;
    }
    let builds = format!(
        "{}/{}",
        r.firmware.as_deref().unwrap_or("-"),
        r.bootcode.as_deref().unwrap_or("-")
    );
    if r.stages_snippets() {
        format!("{builds} {files}")
    } else {
        builds
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snippet_round_survives_its_file_form() {
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="ntp" snippets="a.txt b.txt"/></rollouts></config>"#,
        )
        .expect("config");
        let r = &cfg.rollouts[0];
        let mut s = RolloutState::default();
        s.apply(&Change::Round {
            at: 7,
            versions: vec![("a.txt".into(), 1_000)],
        });
        s.apply(&Change::Told {
            sn: "x".into(),
            wave: 0,
            at: 8,
        });
        let doc = s.to_element(r).to_document();
        assert!(doc.contains(r#"target="snippets:a.txt,b.txt""#), "{doc}");
        let back = crate::xml::Element::parse(doc.as_bytes()).expect("xml");
        assert_eq!(RolloutState::from_element(r, &back), Some(s.clone()));
        // a new round forgets the one before
        s.apply(&Change::Round {
            at: 9,
            versions: vec![("a.txt".into(), 2_000)],
        });
        assert!(s.devices.is_empty() && s.round_at == 9);
        s.apply(&Change::Round {
            at: 10,
            versions: Vec::new(),
        });
        assert_eq!(s, RolloutState::default(), "idle");
    }
}
