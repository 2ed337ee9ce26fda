//! The configuration: loading the defaults and the administrator's `user-config.xml`, merging
//! them by the PHP server's rules, validating them, and the typed view the rest of the server
//! reads.
//!
//! Sources, as in a PHP installation (all relative to the root): the defaults come from
//! `config.xml`, else `config/config.xml`, else the copy compiled into the binary; the user's
//! settings from `config/user-config-dvl.xml` if it exists, else `config/user-config.xml`
//! (a missing user config counts as empty). [`ConfigStore`] re-reads them when one of these
//! files changes (checked with a `stat` per request, never re-parsed otherwise).
//!
//! Merge rules (PHP's `mergeConfigs`): attributes of the user element overwrite; a sub-tag
//! missing on the left is added; when the existing tag has an `id`, the user tag must have one
//! too and merges into the tag with the same `id` (compared with PHP's `==`, so `1.0` is `1`) or
//! is added; a single tag merges into the single existing one; where either side has several, it
//! is appended. Text is copied into an added tag and into a leaf matched by `id`; a single
//! existing tag merged by name keeps its own text (a user `<cmd>` in the shipped
//! `<query id="admin">` does not replace its command).
//! After merging, children carrying a `seq` attribute are re-sorted numerically.
//!
//! Files: this one holds [`Config`], its errors and accessors; `types` the typed sections,
//! `merge` the PHP merge, `sections` building the typed view from the merged tree, `store`
//! reading the files and re-reading them on change (the shell part).

mod merge;
pub mod rollouts;
mod sections;
mod store;
mod types;

pub use store::{ConfigStore, read_sources, watched_files};
pub use types::*;

use crate::php;
use crate::xml::Element;
use std::path::Path;
use thiserror::Error;

/// The built-in defaults: this project's own `config/config.xml`.
pub const BUILTIN_DEFAULTS: &str = include_str!("../config/config.xml");

/// A configuration that cannot be used. `php_message` is the text the PHP server printed for
/// the same problem (devices and admins see it as `# … - exit`); `file` and `element` say
/// where to look.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{file}: {element}: {php_message}")]
pub struct ConfigError {
    pub file: String,
    pub element: String,
    pub php_message: String,
}

impl ConfigError {
    fn new(file: &str, element: impl Into<String>, msg: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_string(),
            element: element.into(),
            php_message: msg.into(),
        }
    }
}

/// Default for `<server max-connections>`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// The merged and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Which reading of the files this is: numbered by the [`ConfigStore`] from 1 on, 0 for
    /// a configuration made otherwise (tests, tools). Identifies the configuration for
    /// whoever takes it up once (`StateStore::configure`), where an address could be reused.
    pub generation: u64,
    /// The merged element tree (what `check-config` and the show page print).
    pub tree: Element,
    pub master: Master,
    pub fwstorage_url: String,
    pub backup: Backup,
    pub status: Status,
    pub times: Times,
    /// Phase ids in order (including the hidden `_first_<last>` phase when it applies).
    pub phases: Vec<String>,
    pub last_phase: Option<String>,
    pub fake_last_phase: Option<String>,
    pub environments: Vec<Environment>,
    pub classes: Vec<Class>,
    pub nobootdev: Vec<String>,
    pub nofirmdev: Vec<String>,
    pub filenames: Vec<FileNames>,
    pub stdargs: Vec<StdArg>,
    pub customcerts: Option<CustomCerts>,
    pub queries: Queries,
    pub server: ServerSettings,
    /// Staged firmware rollouts (`<rollouts>`, our extension; none without it).
    pub rollouts: Vec<rollouts::Rollout>,
    /// Where the pieces came from, for messages.
    pub sources: Vec<String>,
}

/// The text of one configuration source.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Config {
    /// Loads the configuration of an installation root.
    pub fn load(root: &Path) -> Result<Config, ConfigError> {
        let (defaults, user) = store::read_sources(root)?;
        Config::from_sources(&defaults, user.as_ref())
    }

    /// Merges and validates a defaults document and an optional user document.
    pub fn from_sources(defaults: &Source, user: Option<&Source>) -> Result<Config, ConfigError> {
        let mut tree = merge::parse_source(defaults)?;
        let user_tree = match user {
            Some(u) => merge::parse_source(u)?,
            None => Element::new("config"),
        };
        let user_name = user.map_or("config/user-config.xml", |u| u.name.as_str());
        merge::merge(&mut tree, &user_tree, 0, user_name)?;
        let mut sources = vec![defaults.name.clone()];
        if let Some(u) = user {
            sources.push(u.name.clone());
        }
        sections::build(tree, &user_tree, user_name, sources)
    }

    /// The built-in defaults merged with a user configuration given as text.
    pub fn from_user_xml(user: &str) -> Result<Config, ConfigError> {
        let defaults = Source {
            name: "built-in config.xml".to_string(),
            bytes: BUILTIN_DEFAULTS.as_bytes().to_vec(),
        };
        let user = Source {
            name: "config/user-config.xml".to_string(),
            bytes: user.as_bytes().to_vec(),
        };
        Config::from_sources(&defaults, Some(&user))
    }

    /// Whether a phase id from a request names a configured phase (PHP's loose `==`: numeric
    /// strings compare as numbers, so `1e1` is phase `10`).
    pub fn phase_exists(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| php::loose_str_eq(p, phase))
    }

    /// The phase after `phase`, if any: as PHP walks the list, the first configured phase
    /// after a (loosely) matching one that does not itself match, in the configuration's
    /// spelling.
    pub fn next_phase(&self, phase: &str) -> Option<&str> {
        let mut found = false;
        for p in &self.phases {
            if php::loose_str_eq(p, phase) {
                found = true;
            } else if found {
                return Some(p);
            }
        }
        None
    }

    /// Whether `phase` (as the request spells it) is the hidden staging phase `_first_<last>`.
    pub fn is_fake_last_phase(&self, phase: &str) -> bool {
        self.fake_last_phase
            .as_deref()
            .is_some_and(|f| php::loose_str_eq(f, phase))
    }

    pub fn first_phase(&self) -> &str {
        self.phases.first().map_or("", String::as_str)
    }

    pub fn first_environment(&self) -> &str {
        self.environments.first().map_or("", |e| e.id.as_str())
    }

    /// The first environment whose id loosely equals `id` (PHP's `==`: `1.0` and ` 1` name
    /// environment `1`).
    pub fn environment(&self, id: &str) -> Option<&Environment> {
        self.environments
            .iter()
            .find(|e| php::loose_str_eq(&e.id, id))
    }

    /// A device type's classes: every class listing the model (case-insensitive), in
    /// configuration order, then the lower-cased type itself.
    pub fn classes_of(&self, device_type: &str) -> Vec<String> {
        let t = device_type.to_lowercase();
        let mut out: Vec<String> = Vec::new();
        for c in &self.classes {
            if c.models.contains(&t) && !out.contains(&c.id) {
                out.push(c.id.clone());
            }
        }
        if !out.contains(&t) {
            out.push(t);
        }
        out
    }

    /// The `stdargs` rule for a query argument when rewriting the device's URL: `Some(None)`
    /// drops it, `Some(Some(v))` replaces its value, `None` keeps it.
    pub fn stdarg(&self, key: &str) -> Option<Option<&str>> {
        self.stdargs
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_deref())
    }

    /// The directory of the device state files, if state tracking is on.
    pub fn status_dir(&self) -> Option<&str> {
        self.status.dir.as_deref()
    }

    /// Whether backups are fully configured (`dir`, `nbackups` and `scfg` present).
    pub fn backups_enabled(&self) -> bool {
        self.backup.dir.is_some() && self.backup.nbackups.is_some() && self.backup.scfg.is_some()
    }
}

impl Config {
    /// The login is `admin` / `password` in clear text: the sample's credentials.
    pub fn default_password(&self) -> bool {
        let m = &self.master;
        m.password_hash.is_none()
            && m.user.as_deref() == Some("admin")
            && m.password.as_deref() == Some("password")
    }
}

#[cfg(test)]
mod merge_proptests;
#[cfg(test)]
mod tests;
