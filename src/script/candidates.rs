//! Which snippet files a poll looks at: the device's environments and the candidate names
//! `PHASE-CLASS-ENV.txt` (with the `all` wildcards and the serial number as environment).

use crate::config::Config;
use crate::php::{self, Args};

/// The snippet file names (inside the snippet directory) a poll with these arguments may
/// look at, so the snippet store can be brought up to date for exactly these.
pub fn candidates(config: &Config, args: &Args) -> Vec<String> {
    let Some(dt) = args.get("type") else {
        return Vec::new();
    };
    let classes = config.classes_of(&dt);
    let phase = match args.get("phase") {
        Some(p) if !php::empty(&p) => p.into_owned(),
        _ => config.first_phase().to_string(),
    };
    let Ok(envs) = environments(config, args) else {
        return Vec::new();
    };
    let sn = args.get("sn").map(|s| s.into_owned());
    candidate_names(config, sn.as_deref(), &classes, &phase, &envs)
        .into_iter()
        .map(|c| c.name)
        .collect()
}

/// The device's environments: `?env=a,b` (default: the first defined), each with its
/// `implies`, combined like PHP's array union (later lists only add beyond earlier lengths).
pub(super) fn environments(config: &Config, args: &Args) -> Result<Vec<String>, String> {
    let raw: Vec<String> = match args.get("env") {
        None => vec![config.first_environment().to_string()],
        Some(e) => e.split(',').map(str::to_string).collect(),
    };
    let mut envs: Vec<String> = Vec::new();
    for env in &raw {
        let Some(def) = config.environment(env) else {
            return Err(env.clone());
        };
        let mut expanded = vec![env.clone()];
        expanded.extend(def.implies.iter().cloned());
        for item in expanded.into_iter().skip(envs.len()) {
            envs.push(item);
        }
    }
    Ok(envs)
}

/// One candidate snippet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Candidate {
    /// The path as printed in the script (snippet directory and file name).
    pub path: String,
    /// The file name inside the snippet directory.
    pub name: String,
}

/// Every candidate snippet, in delivery order.
pub(super) fn candidate_names(
    config: &Config,
    sn: Option<&str>,
    classes: &[String],
    phase: &str,
    envs: &[String],
) -> Vec<Candidate> {
    let mut all_classes: Vec<String> = classes.to_vec();
    if config.classes.len() > 1 {
        all_classes.insert(0, "all".to_string());
    }
    let phase = match &config.last_phase {
        Some(last) if config.is_fake_last_phase(phase) => last.as_str(),
        _ => phase,
    };
    let mut all_phases = vec![phase.to_string()];
    if config.phases.len() > 1 {
        all_phases.insert(0, "all".to_string());
    }
    let mut all_envs: Vec<String> = envs.to_vec();
    if let Some(sn) = sn.filter(|s| !php::empty(s)) {
        all_envs.insert(0, sn.to_lowercase().replace('-', "_"));
    }
    if config.environments.len() > 1 {
        all_envs.insert(0, "all".to_string());
    }
    let lower = |v: &[String]| -> Vec<String> { v.iter().map(|s| s.to_lowercase()).collect() };
    let (all_phases, all_classes, all_envs) =
        (lower(&all_phases), lower(&all_classes), lower(&all_envs));
    let mut names = Vec::with_capacity(all_phases.len() * all_classes.len() * all_envs.len());
    for p in &all_phases {
        for c in &all_classes {
            for e in &all_envs {
                names.push(format!("{p}-{c}-{e}.txt"));
            }
        }
    }
    // the first of equal names counts (ids with dashes can spell the same name twice)
    let firsts: Vec<bool> = {
        let mut seen = std::collections::HashSet::with_capacity(names.len());
        names.iter().map(|n| seen.insert(n.as_str())).collect()
    };
    names
        .into_iter()
        .zip(firsts)
        .filter(|(_, first)| *first)
        .map(|(name, _)| Candidate {
            path: format!("{}/{}", config.times.dir, name),
            name,
        })
        .collect()
}
