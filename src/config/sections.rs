//! Building the typed [`Config`] from the merged tree: the hidden final phase, the PHP
//! validations (with PHP's messages) and one builder per section.

use super::merge::merge;
use super::*;
use crate::php;

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

/// The typed configuration of a merged tree (`user` is the user's own tree, for the rules
/// that look only at what the user wrote).
pub(super) fn build(
    mut tree: Element,
    user: &Element,
    user_file: &str,
    sources: Vec<String>,
) -> Result<Config, ConfigError> {
    let (last_phase, fake_last_phase) = phases(&mut tree, user, user_file)?;
    let (fwstorage_url, phases, environments, classes) = validated(&tree)?;
    let customcerts = customcerts_of(tree.child("customcerts"));
    if customcerts.is_none() {
        tree.remove_children("customcerts");
    }
    let rollouts = super::rollouts::rollouts_of(&tree)
        .map_err(|e| ConfigError::new(FILE, format!("<rollout id='{}'>", e.id), e.to_string()))?;
    Ok(Config {
        generation: 0,
        rollouts,
        master: master_of(tree.child("master")),
        fwstorage_url,
        backup: backup_of(tree.child("backup")),
        status: status_of(tree.child("status")),
        times: times_of(tree.child("times")),
        phases,
        last_phase,
        fake_last_phase,
        environments,
        classes,
        nobootdev: lower_models(&tree, "nobootdev"),
        nofirmdev: lower_models(&tree, "nofirmdev"),
        filenames: filenames_of(&tree),
        stdargs: stdargs_of(&tree),
        customcerts,
        queries: queries_of(tree.child("queries")),
        server: server_settings(&tree),
        sources,
        tree,
    })
}

const FILE: &str = "configuration";

/// Checks the phase ids and moves the last phase one `seq` up; with restricted times and
/// `forcestaging` from the user's own configuration, adds the hidden `_first_<last>` phase
/// before it. Returns the last phase and the name of the hidden one.
fn phases(
    tree: &mut Element,
    user: &Element,
    user_file: &str,
) -> Result<(Option<String>, Option<String>), ConfigError> {
    let mut last_phase = None;
    let mut fake_last_phase = None;
    {
        let phase_els: Vec<&Element> = tree
            .child("phases")
            .map(|p| p.children_named("phase").collect())
            .unwrap_or_default();
        check_ids(&phase_els, "phase", &["all", "_"], FILE)?;
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
        merge(tree, &extra, 0, user_file)?;
    }
    Ok((last_phase, fake_last_phase))
}

type Validated = (String, Vec<String>, Vec<Environment>, Vec<Class>);

/// PHP's checks of the merged tree, in PHP's order: the fwstorage URL, phase ids,
/// environments and classes.
fn validated(tree: &Element) -> Result<Validated, ConfigError> {
    let env_els: Vec<&Element> = tree
        .child("environments")
        .map(|p| p.children_named("environment").collect())
        .unwrap_or_default();
    check_ids(&env_els, "environment", &["all"], FILE)?;
    let class_els: Vec<&Element> = tree
        .child("classes")
        .map(|p| p.children_named("class").collect())
        .unwrap_or_default();
    check_ids(&class_els, "class", &["all"], FILE)?;
    if tree.child("master").and_then(|m| m.attr("info")).is_none() {
        return Err(ConfigError::new(
            FILE,
            "<master info>",
            "config: master tag or info attribute missing",
        ));
    }
    let fws = tree.child("fwstorage").and_then(|f| f.attr("url"));
    let Some(fwstorage_url) = fws.map(str::to_string) else {
        return Err(ConfigError::new(
            FILE,
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
            FILE,
            "<phases>",
            "config: need at least one phase",
        ));
    }
    let environments = environments_of(&env_els)?;
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
    Ok((fwstorage_url, phases, environments, classes))
}

/// The environments, each implication checked to name one of them.
fn environments_of(env_els: &[&Element]) -> Result<Vec<Environment>, ConfigError> {
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
            FILE,
            "<environments>",
            "config: need at least one environment",
        ));
    }
    for e in &environments {
        for imp in &e.implies {
            if !environments.iter().any(|x| x.id == *imp) {
                return Err(ConfigError::new(
                    FILE,
                    format!("<environment id='{}'>/<implies>", e.id),
                    format!(
                        "implication '{imp}' in '{}' must be a defined environment",
                        e.id
                    ),
                ));
            }
        }
    }
    Ok(environments)
}

fn master_of(m: Option<&Element>) -> Master {
    Master {
        info: attr_str(m, "info").unwrap_or_default(),
        expire: attr_str(m, "expire").map_or(3600, |v| php::intval(&v)),
        cache: attr_str(m, "cache").unwrap_or_else(|| "cache/master-info.xml".to_string()),
        user: attr_str(m, "user"),
        password: attr_str(m, "password"),
        password_hash: non_empty(attr_str(m, "passwordhash")),
        // PHP tests these with empty(): "" and "0" both mean the master's builds
        firmware: attr_str(m, "firmware")
            .filter(|v| !php::empty(v))
            .unwrap_or_else(|| "master".to_string()),
        bootcode: attr_str(m, "bootcode")
            .filter(|v| !php::empty(v))
            .unwrap_or_else(|| "master".to_string()),
        applies: m.map(applies_of).unwrap_or_default(),
    }
}

fn backup_of(b: Option<&Element>) -> Backup {
    Backup {
        dir: attr_str(b, "dir"),
        nbackups: attr_str(b, "nbackups").map(|v| php::intval(&v)),
        scfg: attr_str(b, "scfg"),
        minage: attr_str(b, "minage").map_or(0, |v| php::intval(&v)),
    }
}

fn status_of(s: Option<&Element>) -> Status {
    let dir = attr_str(s, "dir");
    Status {
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
        buildhistory: attr_str(s, "buildhistory").is_some_and(|v| v == "true"),
        dir,
    }
}

fn times_of(t: Option<&Element>) -> Times {
    Times {
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
    }
}

fn lower_models(tree: &Element, name: &str) -> Vec<String> {
    tree.child(name)
        .map(|e| {
            e.children_named("model")
                .map(|m| m.text.trim().to_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

fn filenames_of(tree: &Element) -> Vec<FileNames> {
    tree.child("filenames")
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
        .unwrap_or_default()
}

fn stdargs_of(tree: &Element) -> Vec<StdArg> {
    tree.child("stdargs")
        .map(|s| {
            s.children_named("stdarg")
                .map(|a| StdArg {
                    key: a.attr("key").unwrap_or("").to_string(),
                    value: a.attr("value").map(str::to_string),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `<customcerts>`, when it has a `dir`.
fn customcerts_of(c: Option<&Element>) -> Option<CustomCerts> {
    let dir = c.and_then(|c| c.attr("dir")).filter(|d| !d.is_empty())?;
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

fn queries_of(q: Option<&Element>) -> Queries {
    Queries {
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
    }
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

/// A positive whole number attribute, `default` when missing or not positive.
fn positive(el: Option<&Element>, name: &str, default: i64) -> i64 {
    attr_str(el, name)
        .map(|v| php::intval(&v))
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

fn server_settings(tree: &Element) -> ServerSettings {
    let s = tree.child("server");
    let hook = tree.child("snippethook");
    let migrate = tree.child("migrate");
    let trusted = list_attr(s, "trusted-proxies");
    ServerSettings {
        http: list_attr(s, "http"),
        https: list_attr(s, "https"),
        mtls: list_attr(s, "mtls"),
        prefix: non_empty(attr_str(s, "prefix")),
        tls_cert: non_empty(attr_str(s, "tls-cert")),
        tls_key: non_empty(attr_str(s, "tls-key")),
        client_ca: non_empty(attr_str(s, "client-ca")),
        legacy_client_certs: attr_str(s, "legacy-client-certs").is_none_or(|v| v != "false"),
        trusted_proxies: trusted.clone(),
        proxy_nets: ProxyNet::usable(&trusted),
        proxy_identity: attr_str(s, "proxy-identity")
            .and_then(|v| ProxyIdentity::parse(&v))
            .unwrap_or_default(),
        max_body: attr_str(s, "max-body")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(16 * 1024 * 1024, |v| v as usize),
        max_query: positive(s, "max-query", 64 * 1024) as usize,
        max_msgs: positive(s, "max-msgs", 200) as usize,
        max_state: positive(s, "max-state", 1024 * 1024) as usize,
        commit_delay_ms: positive(s, "commit-delay", 200) as u64,
        // the default of `state::cache::DEFAULT_CAP`
        state_cache: positive(s, "state-cache", 8 * 1024 * 1024) as usize,
        max_snippet: positive(s, "max-snippet", super::DEFAULT_MAX_SNIPPET as i64) as u64,
        master_timeout_secs: attr_str(s, "master-timeout")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(5, |v| v as u64),
        header_timeout_secs: attr_str(s, "header-timeout")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(30, |v| v as u64),
        shutdown_grace_secs: attr_str(s, "shutdown-grace")
            .map(|v| php::intval(&v))
            .filter(|v| *v >= 0)
            .map_or(30, |v| v as u64),
        metrics_public: attr_str(s, "metrics-public").as_deref() == Some("true"),
        max_connections: attr_str(s, "max-connections")
            .map(|v| php::intval(&v))
            .filter(|v| *v > 0)
            .map_or(super::DEFAULT_MAX_CONNECTIONS, |v| v as usize),
        max_per_address: positive(s, "max-per-address", super::DEFAULT_MAX_PER_ADDRESS as i64)
            as usize,
        max_per_proxy: positive(s, "max-per-proxy", super::DEFAULT_MAX_PER_PROXY as i64) as usize,
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
