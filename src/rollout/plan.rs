//! `update-server rollout-plan --root DIR ID`: which of today's devices (the state files in
//! `status/`) fall in which wave of a rollout, with what the rollout recorded for them so far.
//! It only reads; [`plan`] is pure, [`run`] reads the files.

use super::{Rollout, RolloutState, wave_of};
use crate::config::Config;
use crate::state::view::DeviceView;
use std::fmt::Write as _;
use std::path::Path;

/// Why no plan was printed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Rollout(#[from] super::RolloutError),
    #[error("no rollout '{0}' in the configuration")]
    Unknown(String),
    #[error("state tracking is off (<status dir> is not set): there are no devices to plan")]
    NoStatus,
}

/// One device as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanDevice {
    pub sn: String,
    pub device_type: String,
    pub classes: Vec<String>,
    pub envs: Vec<String>,
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

impl PlanDevice {
    pub fn of_view(v: &DeviceView) -> PlanDevice {
        PlanDevice {
            sn: v.sn.clone(),
            device_type: v.device_type.clone(),
            classes: split(&v.classes),
            envs: split(&v.environments),
        }
    }
}

/// What the rollout recorded of a device, in words.
fn recorded(s: &RolloutState, sn: &str) -> &'static str {
    match s.devices.get(sn) {
        None => "",
        Some(d) if d.succeeded.is_some() => " succeeded",
        Some(d) if d.failed.is_some() => " failed",
        Some(d) if d.told.is_some() => " told",
        Some(_) => " not polled since its wave opened",
    }
}

/// The plan as text: one block per wave, then the devices beyond the last wave and the count
/// of devices out of scope.
pub fn plan(r: &Rollout, s: &RolloutState, devices: &[PlanDevice]) -> String {
    let mut waves: Vec<Vec<&PlanDevice>> = vec![Vec::new(); r.waves.len()];
    let (mut beyond, mut out_of_scope) = (Vec::new(), 0usize);
    for d in devices {
        if !r.in_scope(&d.classes, &d.envs) {
            out_of_scope += 1;
            continue;
        }
        match wave_of(r, &d.sn) {
            Some(w) => waves[w].push(d),
            None => beyond.push(d),
        }
    }
    let mut out = String::new();
    let target = super::staged::target_words(&super::summarize(r, s, true, 0));
    let _ = writeln!(out, "rollout {}: {target}", r.id);
    for (i, list) in waves.iter().enumerate() {
        let open = match s.opened.get(i) {
            Some(t) => format!("open since {} UTC", crate::php::format_datetime(*t)),
            None => "not open".to_string(),
        };
        let _ = writeln!(out, "{}: {} devices, {open}", r.wave_label(i), list.len());
        for d in list {
            let _ = writeln!(out, "  {} {}{}", d.sn, d.device_type, recorded(s, &d.sn));
        }
    }
    if !beyond.is_empty() {
        let _ = writeln!(out, "beyond the last wave (held): {} devices", beyond.len());
        for d in beyond {
            let _ = writeln!(out, "  {} {}", d.sn, d.device_type);
        }
    }
    let _ = writeln!(out, "not in scope: {out_of_scope} devices");
    out
}

/// Reads the configuration, the rollout's state and the device states of `root`; the plan.
pub fn run(root: &Path, id: &str) -> Result<String, PlanError> {
    let cfg = Config::load(root)?;
    let r = cfg
        .rollouts
        .iter()
        .find(|r| r.id == id)
        .ok_or_else(|| PlanError::Unknown(id.to_string()))?;
    let dir = cfg.status_dir().ok_or(PlanError::NoStatus)?;
    // read only: no writer of its own beside a running server
    let states = crate::state::read_all(&root.join(dir));
    let devices: Vec<PlanDevice> = states
        .iter()
        .map(|(key, loaded, _)| PlanDevice::of_view(&DeviceView::from_state(key, loaded, &[])))
        .filter(|d| !d.sn.is_empty())
        .collect();
    let store = super::RolloutStore::new(root.join("rollouts"));
    Ok(plan(r, &store.load(r), &devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_puts_devices_in_their_waves() {
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="r" firmware="1" applies="phone" waves="50,100"/></rollouts></config>"#,
        )
        .unwrap();
        let r = &cfg.rollouts[0];
        let dev = |sn: &str, class: &str| PlanDevice {
            sn: sn.into(),
            device_type: "IP232".into(),
            classes: vec![class.into()],
            envs: vec![],
        };
        let sns: Vec<String> = (0..20).map(|i| format!("009033{i:06x}")).collect();
        let mut devices: Vec<PlanDevice> = sns.iter().map(|s| dev(s, "phone")).collect();
        devices.push(dev("009033ffffff", "gateway"));
        let text = plan(r, &RolloutState::default(), &devices);
        let first: Vec<&String> = sns
            .iter()
            .filter(|s| super::super::percentile(s) < 50)
            .collect();
        assert!(text.contains(&format!("wave 1 (50%): {} devices, not open", first.len())));
        assert!(text.contains(&format!("wave 2 (100%): {} devices", 20 - first.len())));
        assert!(text.contains("not in scope: 1 devices"));
        let wave1 = text.split("wave 2").next().unwrap();
        assert!(first.iter().all(|s| wave1.contains(s.as_str())));
    }

    #[test]
    fn a_snippet_rollout_plan_names_the_staged_version() {
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="ntp" snippets="update-all-default.txt"/></rollouts></config>"#,
        )
        .unwrap();
        let r = &cfg.rollouts[0];
        let idle = plan(r, &RolloutState::default(), &[]);
        assert!(
            idle.starts_with("rollout ntp: snippets update-all-default.txt (nothing new)"),
            "{idle}"
        );
        let s = RolloutState {
            round: vec![("update-all-default.txt".into(), 1_700_000_000)],
            ..RolloutState::default()
        };
        let text = plan(r, &s, &[]);
        assert!(
            text.starts_with("rollout ntp: snippets update-all-default.txt version 1700000000"),
            "{text}"
        );
    }
}
