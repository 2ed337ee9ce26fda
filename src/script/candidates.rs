//! Which snippet files a poll looks at: the device's environments and the candidate names
//! `PHASE-CLASS-ENV.txt` (with the `all` wildcards and the serial number as environment).

use crate::config::Config;
use crate::php::{self, Args};
use std::borrow::Cow;

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
        .iter()
        .map(|c| c.name.to_string())
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate<'c> {
    /// The path as printed in the script (snippet directory and file name).
    pub path: &'c str,
    /// The file name inside the snippet directory.
    pub name: &'c str,
}

/// The candidate snippets of a poll, in delivery order; their paths in one buffer.
pub(super) struct Candidates {
    paths: String,
    /// Where each path ends in `paths` (each starts where the one before ends).
    ends: Vec<usize>,
    /// The length of `DIR/` at the start of each path.
    dir_len: usize,
}

impl Candidates {
    fn new(dir: &str, count: usize) -> Candidates {
        Candidates {
            paths: String::with_capacity(count * (dir.len() + 32)),
            ends: Vec::with_capacity(count),
            dir_len: dir.len() + 1,
        }
    }

    /// Adds a path, written in parts (`DIR`, `/`, …).
    fn push(&mut self, parts: &[&str]) {
        for p in parts {
            self.paths.push_str(p);
        }
        self.ends.push(self.paths.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, i: usize) -> Candidate<'_> {
        let start = i.checked_sub(1).map_or(0, |j| self.ends[j]);
        let path = &self.paths[start..self.ends[i]];
        Candidate {
            path,
            name: &path[self.dir_len..],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = Candidate<'_>> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Without the names spelled again later (only the first place of each counts).
    fn without_repeats(self) -> Candidates {
        let mut seen = std::collections::HashSet::with_capacity(self.len());
        let mut firsts = Candidates {
            paths: String::with_capacity(self.paths.len()),
            ends: Vec::with_capacity(self.len()),
            dir_len: self.dir_len,
        };
        for c in self.iter().filter(|c| seen.insert(c.name)) {
            firsts.push(&[c.path]);
        }
        firsts
    }
}

/// Every candidate snippet, in delivery order.
pub(super) fn candidate_names<'a>(
    config: &'a Config,
    sn: Option<&str>,
    classes: &'a [String],
    phase: &'a str,
    envs: &'a [String],
) -> Candidates {
    let all = |several: bool| several.then_some("all");
    let phase = match &config.last_phase {
        Some(last) if config.is_fake_last_phase(phase) => last.as_str(),
        _ => phase,
    };
    let sn = sn
        .filter(|s| !php::empty(s))
        .map(|s| s.to_lowercase().replace('-', "_"));
    let strs = |v: &'a [String]| v.iter().map(String::as_str);
    let phases = parts(all(config.phases.len() > 1).into_iter().chain([phase]));
    let classes = parts(
        all(config.classes.len() > 1)
            .into_iter()
            .chain(strs(classes)),
    );
    let all_envs = all(config.environments.len() > 1).into_iter();
    let envs = parts(all_envs.chain(sn.as_deref()).chain(strs(envs)));
    let count = phases.len() * classes.len() * envs.len();
    let dir = config.times.dir.as_str();
    let mut names = Candidates::new(dir, count);
    for p in &phases {
        for c in &classes {
            for e in &envs {
                names.push(&[dir, "/", p, "-", c, "-", e, ".txt"]);
            }
        }
    }
    // Without dashes in the parts a name spells one (phase, class, environment), so with
    // each part once no name is repeated. With dashes (not in configured ids, but in a device
    // type) two can spell the same name: the first counts.
    let dashes = [&phases, &classes, &envs]
        .iter()
        .any(|l| l.iter().any(|s| s.contains('-')));
    if dashes {
        names.without_repeats()
    } else {
        names
    }
}

/// The parts of the names in one place (phases, classes or environments): in lower case,
/// each once at its first place.
fn parts<'a>(list: impl Iterator<Item = &'a str>) -> Vec<Cow<'a, str>> {
    let mut out: Vec<Cow<'a, str>> = Vec::with_capacity(8);
    for s in list {
        let lower = if s.bytes().any(|b| !b.is_ascii() || b.is_ascii_uppercase()) {
            Cow::Owned(s.to_lowercase())
        } else {
            Cow::Borrowed(s)
        };
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    out
}
