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
//! Merge rules (PHP's `mergeConfigs`): attributes of the user element overwrite; a leaf's text
//! is replaced; a sub-tag missing on the left is added; when the existing tag has an `id`, the
//! user tag must have one too and merges into the tag with the same `id` (or is added); a single
//! tag merges into the single existing one; where either side has several, it is appended.
//! After merging, children carrying a `seq` attribute are re-sorted numerically.

use crate::php;
use crate::xml::{Element, XmlError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;
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

/// A phase, environment or class name as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub implies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub id: String,
    /// Model names, lower case.
    pub models: Vec<String>,
}

/// An `<applies>` condition (of `master` or of a query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applies {
    /// Trimmed tag content: a class, an environment (with `env`) or `*`.
    pub value: String,
    pub env: bool,
}

impl Applies {
    /// Whether a device with these classes and environments meets the condition.
    pub fn matches(&self, classes: &[String], envs: &[String]) -> bool {
        if self.value == "*" {
            return true;
        }
        let set = if self.env { envs } else { classes };
        set.contains(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    /// `master/@info`: URL of the master's `box_info.xml`, `none`, or empty (no firmware).
    pub info: String,
    pub expire: i64,
    pub cache: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Our extension: `master/@passwordhash` instead of `password`: an Argon2 PHC string
    /// (`update-server hash-password`), `sha256:HEX` or `sha256:SALT:HEX` (see `admin::session`).
    pub password_hash: Option<String>,
    /// `master`, `none` or a build number (empty means `master`).
    pub firmware: String,
    pub bootcode: String,
    pub applies: Vec<Applies>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub dir: Option<String>,
    pub nbackups: Option<i64>,
    pub scfg: Option<String>,
    pub minage: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub dir: Option<String>,
    pub expire: i64,
    pub missing: i64,
    pub refresh: i64,
    pub logkeep: i64,
    pub usehttpsdevlinks: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    pub dir: String,
    pub check: bool,
    /// `times/@polling` as PHP's `getPolling()` returns it (a string, or integer 0 when unset).
    pub polling: php::Value,
    pub interval: i64,
    pub grace: i64,
    pub forcehttps: bool,
    pub httpsport: Option<String>,
    pub httpsurlmod: Option<String>,
    pub forcetrust: bool,
    pub forcestaging: bool,
    pub allow: Option<String>,
    pub initial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNames {
    pub id: String,
    /// `prot` and `boot` alternates as Latin-1 bytes (PHP reads them with `getAttributeFromXML`).
    pub prot: Option<Vec<u8>>,
    pub boot: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdArg {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomCerts {
    pub dir: String,
    pub ca_keys: Option<String>,
    pub ca_type: String,
    /// `CAname` as written (for messages) and split at `CAnamesep`, trimmed.
    pub ca_name_raw: Option<String>,
    pub ca_names: Vec<String>,
    pub ca_name_sep: String,
    pub ca_wildcard: Option<String>,
    pub renew_days: i64,
    /// `CSRkey`, `CSRsignature`, `CSRdn-cn` … by their suffix, as Latin-1 bytes.
    pub csr: Vec<(String, Vec<u8>)>,
}

impl CustomCerts {
    pub fn csr_attr(&self, key: &str) -> &[u8] {
        self.csr
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(b"")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub title: String,
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub title: Option<String>,
    pub cmd: Option<String>,
    pub applies: Vec<Applies>,
    pub show: Vec<Show>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    pub scfg: String,
    pub list: Vec<Query>,
}

/// Settings that exist only in this server (PHP ignores unknown elements, so a configuration
/// using them still works with PHP). `<server>`, `<snippethook>`, `<migrate>`, `<api>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSettings {
    pub http: Vec<String>,
    pub https: Vec<String>,
    pub mtls: Vec<String>,
    pub prefix: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub client_ca: Option<String>,
    /// Accept old device certificates (e.g. SHA-1 signed) that chain to the client CA bundle.
    pub legacy_client_certs: bool,
    /// Addresses whose `X-Remote-Cert` / `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: Vec<String>,
    pub max_body: usize,
    pub master_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers.
    pub header_timeout_secs: u64,
    pub hook_exec: Option<String>,
    pub hook_timeout_secs: u64,
    pub migrate_url: Option<String>,
    pub migrate_all: bool,
    pub api_token: Option<String>,
}

/// The merged and validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
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
        let (defaults, user) = read_sources(root)?;
        Config::from_sources(&defaults, user.as_ref())
    }

    /// Merges and validates a defaults document and an optional user document.
    pub fn from_sources(defaults: &Source, user: Option<&Source>) -> Result<Config, ConfigError> {
        let mut tree = parse_source(defaults)?;
        let user_tree = match user {
            Some(u) => parse_source(u)?,
            None => Element::new("config"),
        };
        let user_name = user.map_or("config/user-config.xml", |u| u.name.as_str());
        merge(&mut tree, &user_tree, 0, user_name)?;
        let mut sources = vec![defaults.name.clone()];
        if let Some(u) = user {
            sources.push(u.name.clone());
        }
        build(tree, &user_tree, user_name, sources)
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

    pub fn phase_exists(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }

    /// The phase after `phase`, if any.
    pub fn next_phase(&self, phase: &str) -> Option<&str> {
        let i = self.phases.iter().position(|p| p == phase)?;
        self.phases.get(i + 1).map(String::as_str)
    }

    pub fn first_phase(&self) -> &str {
        self.phases.first().map_or("", String::as_str)
    }

    pub fn first_environment(&self) -> &str {
        self.environments.first().map_or("", |e| e.id.as_str())
    }

    pub fn environment(&self, id: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.id == id)
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

fn parse_source(src: &Source) -> Result<Element, ConfigError> {
    Element::parse(&src.bytes).map_err(|e: XmlError| {
        ConfigError::new(
            &src.name,
            "document",
            format!("cannot parse {}: {}", src.name, e),
        )
    })
}

/// Which files the configuration comes from, and their bytes.
pub fn read_sources(root: &Path) -> Result<(Source, Option<Source>), ConfigError> {
    let read = |rel: &str| -> Result<Option<Source>, ConfigError> {
        let p = root.join(rel);
        match std::fs::read(&p) {
            Ok(bytes) => Ok(Some(Source {
                name: rel.to_string(),
                bytes,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ConfigError::new(
                rel,
                "file",
                format!("cannot read {rel}: {e}"),
            )),
        }
    };
    let defaults = match read("config.xml")? {
        Some(s) => s,
        None => match read("config/config.xml")? {
            Some(s) => s,
            None => Source {
                name: "built-in config.xml".to_string(),
                bytes: BUILTIN_DEFAULTS.as_bytes().to_vec(),
            },
        },
    };
    let user = match read("config/user-config-dvl.xml")? {
        Some(s) => Some(s),
        None => read("config/user-config.xml")?,
    };
    Ok((defaults, user))
}

/// The files whose change means the configuration must be read again.
pub fn watched_files(root: &Path) -> [PathBuf; 4] {
    [
        root.join("config.xml"),
        root.join("config/config.xml"),
        root.join("config/user-config-dvl.xml"),
        root.join("config/user-config.xml"),
    ]
}

fn merge(
    left: &mut Element,
    right: &Element,
    level: usize,
    user_file: &str,
) -> Result<(), ConfigError> {
    if right.children.is_empty() && left.children.is_empty() {
        left.text = right.text.clone();
    }
    for (k, v) in &right.attrs {
        left.set_attr(k, v.clone());
    }
    for body in &right.children {
        let tag = body.name.as_str();
        let left_count = left.children_named(tag).count();
        let idx = if left_count == 0 {
            left.children.push(Element::new(tag));
            left.children.len() - 1
        } else {
            let first = left
                .children
                .iter()
                .position(|c| c.name == tag)
                .unwrap_or_default();
            if left.children[first].attr("id").is_some() {
                let Some(id) = body.attr("id") else {
                    return Err(ConfigError::new(
                        user_file,
                        format!("<{tag}>"),
                        format!("must have 'id' attribute in '{tag}' tag in user-config.xml"),
                    ));
                };
                match left
                    .children
                    .iter()
                    .position(|c| c.name == tag && c.attr("id").unwrap_or("") == id)
                {
                    Some(i) => i,
                    None => {
                        left.children.push(Element::new(tag));
                        left.children.len() - 1
                    }
                }
            } else if left_count > 1 || right.children_named(tag).count() > 1 {
                left.children.push(Element::new(tag));
                left.children.len() - 1
            } else {
                first
            }
        };
        merge(&mut left.children[idx], body, level + 1, user_file)?;
    }
    if level == 0 {
        for level1 in &mut left.children {
            sort_by_seq(level1);
        }
    }
    Ok(())
}

/// Re-sorts the children that carry `seq` (PHP keys them by `(int)seq`: equal numbers keep only
/// the last one) and appends them after the others.
fn sort_by_seq(el: &mut Element) {
    let mut names: Vec<String> = Vec::new();
    for c in &el.children {
        if c.attr("seq").is_some() && !names.contains(&c.name) {
            names.push(c.name.clone());
        }
    }
    for name in names {
        let mut keyed: Vec<(i64, Element)> = Vec::new();
        for c in el.children.iter().filter(|c| c.name == name) {
            let seq = php::intval(c.attr("seq").unwrap_or(""));
            match keyed.iter_mut().find(|(k, _)| *k == seq) {
                Some(slot) => {
                    tracing::warn!(
                        "config: two <{}> elements with seq={}; like PHP, only the later one is used",
                        name,
                        seq
                    );
                    slot.1 = c.clone();
                }
                None => keyed.push((seq, c.clone())),
            }
        }
        el.children.retain(|c| c.name != name);
        keyed.sort_by_key(|(k, _)| *k);
        el.children.extend(keyed.into_iter().map(|(_, e)| e));
    }
}

fn attr_str(el: Option<&Element>, name: &str) -> Option<String> {
    el.and_then(|e| e.attr(name)).map(str::to_string)
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

fn check_ids(
    items: &[&Element],
    what: &str,
    reserved: &[&str],
    file: &str,
) -> Result<(), ConfigError> {
    let mut seen: Vec<&str> = Vec::new();
    for it in items {
        let id = it.attr("id").unwrap_or("");
        let element = format!("<{} id='{}'>", it.name, id);
        if reserved.contains(&id) {
            return Err(ConfigError::new(
                file,
                element,
                format!("config: {what} name '{id}' not allowed"),
            ));
        }
        if id.contains('-') {
            return Err(ConfigError::new(
                file,
                element,
                format!("config: {what} named '{id}': no dash allowed in name"),
            ));
        }
        if seen.contains(&id) {
            return Err(ConfigError::new(
                file,
                element,
                format!("config: {what} named '{id}': duplicate definition"),
            ));
        }
        seen.push(id);
    }
    Ok(())
}

fn build(
    mut tree: Element,
    user: &Element,
    user_file: &str,
    sources: Vec<String>,
) -> Result<Config, ConfigError> {
    let file = "configuration";
    // Phases, and the hidden duplicate of the last phase for restricted times + forcestaging.
    let mut last_phase = None;
    let mut fake_last_phase = None;
    {
        let phase_els: Vec<&Element> = tree
            .child("phases")
            .map(|p| p.children_named("phase").collect())
            .unwrap_or_default();
        check_ids(&phase_els, "phase", &["all", "_"], file)?;
    }
    let mut insert_seq = None;
    if let Some(last) = tree
        .child_mut("phases")
        .and_then(|p| p.children.iter_mut().rev().find(|c| c.name == "phase"))
    {
        let seq = php::intval(last.attr("seq").unwrap_or(""));
        last.set_attr("seq", (seq + 1).to_string());
        let id = last.attr("id").unwrap_or("").to_string();
        fake_last_phase = Some(format!("_first_{id}"));
        last_phase = Some(id);
        insert_seq = Some(seq);
    }
    let user_times = user.child("times");
    let do_fake = user_times
        .and_then(|t| t.attr("allow"))
        .is_some_and(|a| !php::trim(a).is_empty())
        && user_times.and_then(|t| t.attr("forcestaging")) == Some("true");
    if let (true, Some(seq), Some(fake)) = (do_fake, insert_seq, fake_last_phase.as_ref()) {
        let mut extra = Element::new("config");
        let mut phases = Element::new("phases");
        let mut p = Element::new("phase");
        p.set_attr("id", fake.clone());
        p.set_attr("seq", seq.to_string());
        phases.children.push(p);
        extra.children.push(phases);
        merge(&mut tree, &extra, 0, user_file)?;
    }

    let env_els: Vec<&Element> = tree
        .child("environments")
        .map(|p| p.children_named("environment").collect())
        .unwrap_or_default();
    check_ids(&env_els, "environment", &["all"], file)?;
    let class_els: Vec<&Element> = tree
        .child("classes")
        .map(|p| p.children_named("class").collect())
        .unwrap_or_default();
    check_ids(&class_els, "class", &["all"], file)?;

    let master_el = tree.child("master");
    if master_el.and_then(|m| m.attr("info")).is_none() {
        return Err(ConfigError::new(
            file,
            "<master info>",
            "config: master tag or info attribute missing",
        ));
    }
    let fws = tree.child("fwstorage").and_then(|f| f.attr("url"));
    let Some(fwstorage_url) = fws.map(str::to_string) else {
        return Err(ConfigError::new(
            file,
            "<fwstorage url>",
            "config: fwstorage tag or url attribute missing",
        ));
    };
    let phases: Vec<String> = tree
        .child("phases")
        .map(|p| {
            p.children_named("phase")
                .map(|c| c.attr("id").unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    if phases.is_empty() {
        return Err(ConfigError::new(
            file,
            "<phases>",
            "config: need at least one phase",
        ));
    }
    let environments: Vec<Environment> = env_els
        .iter()
        .map(|e| Environment {
            id: e.attr("id").unwrap_or("").to_string(),
            implies: e
                .children_named("implies")
                .map(|i| php::trim(&i.text).to_string())
                .collect(),
        })
        .collect();
    if environments.is_empty() {
        return Err(ConfigError::new(
            file,
            "<environments>",
            "config: need at least one environment",
        ));
    }
    for e in &environments {
        for imp in &e.implies {
            if !environments.iter().any(|x| x.id == *imp) {
                return Err(ConfigError::new(
                    file,
                    format!("<environment id='{}'>/<implies>", e.id),
                    format!(
                        "implication '{imp}' in '{}' must be a defined environment",
                        e.id
                    ),
                ));
            }
        }
    }
    let classes: Vec<Class> = class_els
        .iter()
        .map(|c| Class {
            id: c.attr("id").unwrap_or("").to_string(),
            models: c
                .children_named("model")
                .map(|m| m.text.trim().to_lowercase())
                .collect(),
        })
        .collect();

    let m = master_el;
    let master = Master {
        info: attr_str(m, "info").unwrap_or_default(),
        expire: attr_str(m, "expire").map_or(3600, |v| php::intval(&v)),
        cache: attr_str(m, "cache").unwrap_or_else(|| "cache/master-info.xml".to_string()),
        user: attr_str(m, "user"),
        password: attr_str(m, "password"),
        password_hash: non_empty(attr_str(m, "passwordhash")),
        firmware: non_empty(attr_str(m, "firmware")).unwrap_or_else(|| "master".to_string()),
        bootcode: non_empty(attr_str(m, "bootcode")).unwrap_or_else(|| "master".to_string()),
        applies: m.map(applies_of).unwrap_or_default(),
    };

    let b = tree.child("backup");
    let backup = Backup {
        dir: attr_str(b, "dir"),
        nbackups: attr_str(b, "nbackups").map(|v| php::intval(&v)),
        scfg: attr_str(b, "scfg"),
        minage: attr_str(b, "minage").map_or(0, |v| php::intval(&v)),
    };

    let s = tree.child("status");
    let dir = attr_str(s, "dir");
    let status = Status {
        expire: if dir.is_some() {
            attr_str(s, "expire").map_or(0, |v| php::intval(&v))
        } else {
            0
        },
        missing: if dir.is_some() {
            attr_str(s, "missing").map_or(0, |v| php::intval(&v))
        } else {
            0
        },
        refresh: attr_str(s, "refresh").map_or(0, |v| php::intval(&v)),
        logkeep: attr_str(s, "logkeep").map_or(90 * 60, |v| php::intval(&v)),
        usehttpsdevlinks: attr_str(s, "usehttpsdevlinks").is_none_or(|v| v == "true"),
        dir,
    };

    let t = tree.child("times");
    let times = Times {
        dir: attr_str(t, "dir").unwrap_or_else(|| "scripts".to_string()),
        check: attr_str(t, "check").as_deref() == Some("true"),
        polling: non_empty(attr_str(t, "polling")).map_or(php::Value::Int(0), php::Value::Str),
        interval: non_empty(attr_str(t, "interval")).map_or(15, |v| php::intval(&v)),
        grace: attr_str(t, "grace").map_or(900, |v| php::intval(&v)),
        forcehttps: attr_str(t, "forcehttps").as_deref() == Some("true"),
        httpsport: non_empty(attr_str(t, "httpsport")),
        httpsurlmod: non_empty(attr_str(t, "httpsurlmod")),
        forcetrust: attr_str(t, "forcetrust").as_deref() == Some("true"),
        forcestaging: attr_str(t, "forcestaging").as_deref() == Some("true"),
        allow: non_empty(attr_str(t, "allow")),
        initial: non_empty(attr_str(t, "initial")),
    };

    let lower_models = |name: &str| -> Vec<String> {
        tree.child(name)
            .map(|e| {
                e.children_named("model")
                    .map(|m| m.text.trim().to_lowercase())
                    .collect()
            })
            .unwrap_or_default()
    };
    let nobootdev = lower_models("nobootdev");
    let nofirmdev = lower_models("nofirmdev");
    let filenames = tree
        .child("filenames")
        .map(|f| {
            f.children_named("model")
                .filter_map(|m| {
                    Some(FileNames {
                        id: m.attr("id")?.to_string(),
                        prot: m.attr("prot").map(php::to_latin1),
                        boot: m.attr("boot").map(php::to_latin1),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let stdargs = tree
        .child("stdargs")
        .map(|s| {
            s.children_named("stdarg")
                .map(|a| StdArg {
                    key: a.attr("key").unwrap_or("").to_string(),
                    value: a.attr("value").map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default();

    let cc = tree.child("customcerts");
    let customcerts = match cc.and_then(|c| c.attr("dir")).filter(|d| !d.is_empty()) {
        None => None,
        Some(dir) => {
            let c = cc;
            let sep = attr_str(c, "CAnamesep").unwrap_or_else(|| ",".to_string());
            let raw = attr_str(c, "CAname");
            let names = match (&raw, sep.is_empty()) {
                (Some(r), false) => r
                    .split(sep.as_str())
                    .map(|x| x.trim().to_string())
                    .collect(),
                (Some(r), true) => vec![r.trim().to_string()],
                (None, _) => Vec::new(),
            };
            let csr = c
                .map(|c| {
                    c.attrs
                        .iter()
                        .filter_map(|(k, v)| {
                            k.strip_prefix("CSR")
                                .map(|s| (s.to_string(), php::to_latin1(v)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Some(CustomCerts {
                dir: dir.to_string(),
                ca_keys: attr_str(c, "CAkeys"),
                ca_type: attr_str(c, "CAtype").unwrap_or_default(),
                ca_name_raw: raw,
                ca_names: names,
                ca_name_sep: sep,
                ca_wildcard: attr_str(c, "CAwildcard")
                    .map(|w| String::from_utf8_lossy(&php::to_latin1(&w)).into_owned()),
                renew_days: attr_str(c, "renew").map_or(0, |v| php::intval(&v)),
                csr,
            })
        }
    };
    if customcerts.is_none() {
        tree.remove_children("customcerts");
    }

    let q = tree.child("queries");
    let queries = Queries {
        scfg: attr_str(q, "scfg").unwrap_or_default(),
        list: q
            .map(|q| {
                q.children_named("query")
                    .map(|qe| Query {
                        id: qe.attr("id").unwrap_or("").to_string(),
                        title: qe.attr("title").map(str::to_string),
                        cmd: qe.child("cmd").map(|c| php::trim(&c.text).to_string()),
                        applies: applies_of(qe),
                        show: qe
                            .children_named("show")
                            .map(|s| Show {
                                title: s.attr("title").unwrap_or("").to_string(),
                                expr: s.text.trim().to_string(),
                            })
                            .collect(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };

    let server = server_settings(&tree);

    Ok(Config {
        master,
        fwstorage_url,
        backup,
        status,
        times,
        phases,
        last_phase,
        fake_last_phase,
        environments,
        classes,
        nobootdev,
        nofirmdev,
        filenames,
        stdargs,
        customcerts,
        queries,
        server,
        sources,
        tree,
    })
}

fn applies_of(el: &Element) -> Vec<Applies> {
    el.children_named("applies")
        .map(|a| Applies {
            value: php::trim(&a.text).to_string(),
            env: a.attr("env").is_some(),
        })
        .collect()
}

fn list_attr(el: Option<&Element>, name: &str) -> Vec<String> {
    el.and_then(|e| e.attr(name))
        .map(|v| {
            v.split([',', ' '])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn server_settings(tree: &Element) -> ServerSettings {
    let s = tree.child("server");
    let hook = tree.child("snippethook");
    let migrate = tree.child("migrate");
    ServerSettings {
        http: list_attr(s, "http"),
        https: list_attr(s, "https"),
        mtls: list_attr(s, "mtls"),
        prefix: non_empty(attr_str(s, "prefix")),
        tls_cert: non_empty(attr_str(s, "tls-cert")),
        tls_key: non_empty(attr_str(s, "tls-key")),
        client_ca: non_empty(attr_str(s, "client-ca")),
        legacy_client_certs: attr_str(s, "legacy-client-certs").is_none_or(|v| v != "false"),
        trusted_proxies: list_attr(s, "trusted-proxies"),
        max_body: attr_str(s, "max-body")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(16 * 1024 * 1024, |v| v as usize),
        master_timeout_secs: attr_str(s, "master-timeout")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(5, |v| v as u64),
        header_timeout_secs: attr_str(s, "header-timeout")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(30, |v| v as u64),
        hook_exec: non_empty(attr_str(hook, "exec")),
        hook_timeout_secs: attr_str(hook, "timeout")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(5, |v| v as u64),
        migrate_url: non_empty(attr_str(migrate, "url")),
        migrate_all: attr_str(migrate, "all").as_deref() == Some("true"),
        api_token: non_empty(attr_str(tree.child("api"), "token")),
    }
}

/// Identity of the configuration files on disk: path, modification time and size.
type Fingerprint = Vec<Option<(SystemTime, u64)>>;

fn fingerprint(root: &Path) -> Fingerprint {
    watched_files(root)
        .iter()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()))
        })
        .collect()
}

/// The current configuration of a root, re-read when its files change.
pub struct ConfigStore {
    root: PathBuf,
    current: RwLock<(Fingerprint, Result<Arc<Config>, ConfigError>)>,
}

impl ConfigStore {
    pub fn new(root: &Path) -> ConfigStore {
        let fp = fingerprint(root);
        let cfg = Config::load(root).map(Arc::new);
        ConfigStore {
            root: root.to_path_buf(),
            current: RwLock::new((fp, cfg)),
        }
    }

    /// The configuration as the files are now; re-reads them only when they changed.
    pub fn get(&self) -> Result<Arc<Config>, ConfigError> {
        let fp = fingerprint(&self.root);
        if let Ok(guard) = self.current.read() {
            if guard.0 == fp {
                return guard.1.clone();
            }
        }
        let loaded = Config::load(&self.root).map(Arc::new);
        match &loaded {
            Ok(_) => tracing::info!("configuration (re)loaded"),
            Err(e) => tracing::error!("configuration error: {e}"),
        }
        if let Ok(mut guard) = self.current.write() {
            *guard = (fp, loaded.clone());
        }
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(user: &str) -> Result<Config, ConfigError> {
        Config::from_user_xml(user)
    }

    #[test]
    fn builtin_defaults_load() {
        let c = load("<config/>").expect("defaults");
        assert_eq!(c.phases, vec!["update"]);
        assert_eq!(c.first_environment(), "default");
        assert_eq!(c.times.grace, 90);
        assert_eq!(c.times.polling, php::Value::Str("5".into()));
        assert_eq!(c.times.interval, 15);
        assert_eq!(c.times.httpsport, None);
        assert_eq!(c.times.httpsurlmod.as_deref(), Some("!mtls/!!i"));
        assert!(c.times.check);
        assert!(c.customcerts.is_none());
        assert_eq!(c.classes.len(), 12);
        assert_eq!(
            c.classes_of("IP232"),
            vec!["phone", "pre_opus_phone", "phone_newui", "ip232"]
        );
        assert_eq!(c.status.dir, None);
        assert_eq!(c.stdarg("sn"), Some(Some("#m")));
        assert_eq!(c.stdarg("PROT"), Some(None));
        assert_eq!(c.stdarg("env"), None);
    }

    #[test]
    fn phases_sort_by_seq_and_attributes_overwrite() {
        let c = load(r#"<config><master info="x"/><phases><phase id="staging" seq="100"/></phases></config>"#)
            .expect("load");
        assert_eq!(c.phases, vec!["staging", "update"]);
        assert_eq!(c.master.info, "x");
        assert_eq!(c.master.expire, 3600);
    }

    #[test]
    fn hidden_final_phase_for_restricted_times() {
        let c =
            load(r#"<config><times allow="22,23" forcestaging="true"/></config>"#).expect("load");
        assert_eq!(c.phases, vec!["_first_update", "update"]);
        assert_eq!(c.fake_last_phase.as_deref(), Some("_first_update"));
        // forcestaging only from the defaults does not add it
        let c = load(r#"<config><times allow="22,23"/></config>"#).expect("load");
        assert_eq!(c.phases, vec!["update"]);
    }

    #[test]
    fn merges_by_id_and_appends_models() {
        let c = load(r#"<config><classes><class id="lab"><model>IP232</model></class><class id="phone"><model>ip999</model></class></classes></config>"#)
            .expect("load");
        assert_eq!(
            c.classes_of("ip232"),
            vec!["phone", "pre_opus_phone", "phone_newui", "lab", "ip232"]
        );
        assert_eq!(c.classes_of("IP999"), vec!["phone", "ip999"]);
    }

    #[test]
    fn single_tags_merge_and_leaf_text_is_replaced() {
        let c = load(
            r#"<config><queries><query id="admin"><applies>*</applies></query></queries></config>"#,
        )
        .expect("load");
        let admin = c
            .queries
            .list
            .iter()
            .find(|q| q.id == "admin")
            .expect("admin");
        assert_eq!(admin.cmd.as_deref(), Some("mod cmd CMD0 xml-info"));
        assert_eq!(
            admin.applies,
            vec![Applies {
                value: "*".into(),
                env: false
            }]
        );
    }

    #[test]
    fn user_tag_without_id_where_ids_are_used_is_an_error() {
        let e = load(r#"<config><classes><class><model>x</model></class></classes></config>"#)
            .unwrap_err();
        assert_eq!(
            e.php_message,
            "must have 'id' attribute in 'class' tag in user-config.xml"
        );
    }

    #[test]
    fn validations_match_php_messages() {
        let cases = [
            (
                r#"<phases><phase id="all" seq="1"/></phases>"#,
                "config: phase name 'all' not allowed",
            ),
            (
                r#"<phases><phase id="_" seq="1"/></phases>"#,
                "config: phase name '_' not allowed",
            ),
            (
                r#"<phases><phase id="a-b" seq="1"/></phases>"#,
                "config: phase named 'a-b': no dash allowed in name",
            ),
            (
                r#"<environments><environment id="all"/></environments>"#,
                "config: environment name 'all' not allowed",
            ),
            (
                r#"<environments><environment id="x"><implies>y</implies></environment></environments>"#,
                "implication 'y' in 'x' must be a defined environment",
            ),
            (
                r#"<classes><class id="a-b"/></classes>"#,
                "config: class named 'a-b': no dash allowed in name",
            ),
        ];
        for (xml, msg) in cases {
            let e = load(&format!("<config>{xml}</config>")).unwrap_err();
            assert_eq!(e.php_message, msg, "{xml}");
        }
    }

    #[test]
    fn duplicate_ids_are_reported() {
        // two environments with the same id are both added when the user config has several
        let e = load(
            r#"<config><environments><environment id="default"/><environment id="x"/><environment id="x"/></environments></config>"#,
        );
        // merge by id folds the duplicates into one, so PHP accepts this
        assert!(e.is_ok());
        let defaults = Source {
            name: "config.xml".into(),
            bytes: br#"<config><master info=""/><fwstorage url="fw/"/><phases><phase id="a" seq="1"/><phase id="a" seq="2"/></phases><environments><environment id="e"/></environments></config>"#.to_vec(),
        };
        let e = Config::from_sources(&defaults, None).unwrap_err();
        assert_eq!(
            e.php_message,
            "config: phase named 'a': duplicate definition"
        );
    }

    #[test]
    fn missing_master_info_and_fwstorage() {
        let defaults = Source {
            name: "config.xml".into(),
            bytes: br#"<config><fwstorage url="fw/"/><phases><phase id="a" seq="1"/></phases><environments><environment id="e"/></environments></config>"#.to_vec(),
        };
        let e = Config::from_sources(&defaults, None).unwrap_err();
        assert_eq!(
            e.php_message,
            "config: master tag or info attribute missing"
        );
    }

    #[test]
    fn customcerts_need_a_dir() {
        let c =
            load(r#"<config><customcerts dir="certs" CAname="A, B" CSRdn-o="Müller"/></config>"#)
                .expect("load");
        let cc = c.customcerts.expect("customcerts");
        assert_eq!(cc.ca_names, vec!["A", "B"]);
        assert_eq!(cc.csr_attr("dn-o"), b"M\xfcller");
        assert_eq!(cc.csr_attr("key"), b"2048-bit");
        assert_eq!(cc.renew_days, 90);
    }

    #[test]
    fn broken_user_config_names_the_file() {
        let e = load("<config>").unwrap_err();
        assert_eq!(e.file, "config/user-config.xml");
        assert!(
            e.php_message
                .starts_with("cannot parse config/user-config.xml")
        );
    }
}
