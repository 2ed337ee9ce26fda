//! The `check-config` command: what is wrong or suspicious in an installation's
//! configuration, and the merged configuration as a well-formed XML document.
//!
//! The configuration loader ([`crate::config`]) refuses what makes a configuration unusable.
//! This module adds the warnings that the PHP server never gave: elements and attributes that
//! neither the PHP server nor this one knows (typically typos, silently ignored otherwise),
//! and numbers or booleans that are not. The table of known names follows the PHP server's
//! DTD plus this server's own elements. The pure core is [`lint`]; [`check`] and [`run`] are
//! the shell.
//!
//! Exit codes of `check-config`: 0 the configuration is usable (warnings, if any, went to
//! standard error); 1 it is not (or `--root` is no directory); 2 wrong command line;
//! 3 `--strict` and there were warnings.

use crate::config::{Config, ConfigError, read_sources};
use crate::xml::Element;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use thiserror::Error;

/// Exit code of `check-config --strict` when there were warnings.
pub const EXIT_WARNINGS: u8 = 3;

/// What `check-config` cannot get past.
#[derive(Debug, Error)]
pub enum CheckError {
    #[error("--root {0}: no such directory")]
    NoRoot(PathBuf),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One element the configuration may contain.
struct Rule {
    name: &'static str,
    attrs: &'static [&'static str],
    children: &'static [&'static str],
}

const fn rule(
    name: &'static str,
    attrs: &'static [&'static str],
    children: &'static [&'static str],
) -> Rule {
    Rule {
        name,
        attrs,
        children,
    }
}

/// Every element and attribute the PHP server's DTD names, plus this server's own.
const RULES: &[Rule] = &[
    rule(
        "config",
        &["debugmerge", "debugcerts", "debugscript"],
        &[
            "fwstorage",
            "master",
            "backup",
            "status",
            "customcerts",
            "queries",
            "stdargs",
            "times",
            "phases",
            "environments",
            "classes",
            "nobootdev",
            "nofirmdev",
            "filenames",
            "server",
            "snippethook",
            "migrate",
            "api",
            "rollouts",
        ],
    ),
    rule(
        "master",
        &[
            "info",
            "expire",
            "cache",
            "user",
            "password",
            "passwordhash",
            "firmware",
            "bootcode",
        ],
        &["applies"],
    ),
    rule("applies", &["env"], &[]),
    rule("fwstorage", &["url"], &[]),
    rule("backup", &["dir", "nbackups", "scfg", "minage"], &[]),
    rule(
        "status",
        &[
            "dir",
            "missing",
            "refresh",
            "expire",
            "logkeep",
            "usehttpsdevlinks",
            "buildhistory",
        ],
        &[],
    ),
    rule(
        "times",
        &[
            "polling",
            "dir",
            "allow",
            "initial",
            "check",
            "interval",
            "grace",
            "forcestaging",
            "forcehttps",
            "httpsport",
            "forcetrust",
            "httpsurlmod",
        ],
        &[],
    ),
    rule("phases", &[], &["phase"]),
    rule("phase", &["id", "seq"], &[]),
    rule("environments", &[], &["environment"]),
    rule("environment", &["id"], &["implies"]),
    rule("implies", &[], &[]),
    rule("classes", &[], &["class"]),
    rule("class", &["id"], &["model"]),
    rule("model", &["id", "prot", "boot"], &[]),
    rule("nobootdev", &[], &["model"]),
    rule("nofirmdev", &[], &["model"]),
    rule("filenames", &[], &["model"]),
    rule(
        "customcerts",
        &[
            "CAtype",
            "dir",
            "CAkeys",
            "CAuser",
            "CApassword",
            "CAurl",
            "CAname",
            "CAnamesep",
            "CAwildcard",
            "storekey",
            "auto-sign-off",
            "network",
            "netmask",
            "renew",
            "CSRkey",
            "CSRsignature",
            "CSRdn-cn",
            "CSRdn-ou",
            "CSRdn-o",
            "CSRdn-l",
            "CSRdn-st",
            "CSRdn-c",
            "CSRsan-dns-1",
            "CSRsan-dns-2",
            "CSRsan-dns-3",
            "CSRsan-ip-1",
            "CSRsan-ip-2",
        ],
        &[],
    ),
    rule("stdargs", &[], &["stdarg"]),
    rule("stdarg", &["key", "value"], &[]),
    rule("queries", &["scfg"], &["query"]),
    rule("query", &["id", "title"], &["cmd", "applies", "show"]),
    rule("cmd", &[], &[]),
    rule("show", &["title"], &[]),
    rule(
        "server",
        &[
            "http",
            "https",
            "mtls",
            "prefix",
            "tls-cert",
            "tls-key",
            "client-ca",
            "legacy-client-certs",
            "trusted-proxies",
            "proxy-identity",
            "max-body",
            "max-query",
            "max-msgs",
            "max-state",
            "commit-delay",
            "state-cache",
            "master-timeout",
            "header-timeout",
            "shutdown-grace",
            "metrics-public",
            "max-connections",
        ],
        &[],
    ),
    rule("snippethook", &["exec", "timeout"], &[]),
    rule("migrate", &["url", "all"], &[]),
    rule("api", &["token"], &[]),
    rule("rollouts", &[], &["rollout"]),
    rule(
        "rollout",
        &[
            "id",
            "firmware",
            "bootcode",
            "snippets",
            "applies",
            "applies-any",
            "waves",
            "success",
            "halt",
            "soak",
            "timeout",
            "start",
        ],
        &["applies"],
    ),
];

/// Settings that are whole numbers (an empty value means "not set" and is fine).
const NUMERIC: &[(&str, &str)] = &[
    ("master", "expire"),
    ("backup", "nbackups"),
    ("backup", "minage"),
    ("status", "missing"),
    ("status", "refresh"),
    ("status", "expire"),
    ("status", "logkeep"),
    ("times", "polling"),
    ("times", "interval"),
    ("times", "grace"),
    ("times", "httpsport"),
    ("phase", "seq"),
    ("customcerts", "renew"),
    ("server", "max-body"),
    ("server", "max-query"),
    ("server", "max-msgs"),
    ("server", "max-state"),
    ("server", "commit-delay"),
    ("server", "state-cache"),
    ("server", "master-timeout"),
    ("server", "header-timeout"),
    ("server", "shutdown-grace"),
    ("server", "max-connections"),
    ("snippethook", "timeout"),
];

/// Settings that only count when they are exactly `true` (anything else means false).
const BOOLEAN: &[(&str, &str)] = &[
    ("config", "debugmerge"),
    ("config", "debugcerts"),
    ("config", "debugscript"),
    ("status", "usehttpsdevlinks"),
    ("status", "buildhistory"),
    ("times", "check"),
    ("times", "forcestaging"),
    ("times", "forcehttps"),
    ("times", "forcetrust"),
    ("server", "legacy-client-certs"),
    ("server", "metrics-public"),
    ("migrate", "all"),
];

fn rule_for(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

fn is_number(v: &str) -> bool {
    let v = v.trim();
    let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The warnings for one configuration document, each prefixed with `source` (its file name).
pub fn lint(source: &str, root: &Element) -> Vec<String> {
    let mut out = Vec::new();
    if root.name != "config" {
        out.push(format!(
            "{source}: root element <{}> (expected <config>)",
            root.name
        ));
        return out;
    }
    lint_element(source, root, &mut out);
    out
}

fn lint_element(source: &str, el: &Element, out: &mut Vec<String>) {
    let Some(rule) = rule_for(&el.name) else {
        return;
    };
    for (k, v) in &el.attrs {
        let at = format!("{source}: <{} {k}=\"{v}\">", el.name);
        if !rule.attrs.contains(&k.as_str()) {
            out.push(format!("{at}: unknown attribute"));
        } else if NUMERIC.contains(&(el.name.as_str(), k.as_str()))
            && !v.trim().is_empty()
            && !is_number(v)
        {
            out.push(format!("{at}: not a whole number"));
        } else if BOOLEAN.contains(&(el.name.as_str(), k.as_str()))
            && !matches!(v.as_str(), "" | "true" | "false")
        {
            out.push(format!("{at}: neither \"true\" nor \"false\""));
        } else if (el.name.as_str(), k.as_str()) == ("server", "proxy-identity")
            && crate::config::ProxyIdentity::parse(v).is_none()
        {
            out.push(format!(
                "{at}: neither \"x-remote-cert\" nor \"forwarded\" (x-remote-cert is used)"
            ));
        }
    }
    for c in &el.children {
        if rule.children.contains(&c.name.as_str()) {
            lint_element(source, c, out);
        } else {
            out.push(format!(
                "{source}: unknown element <{}> in <{}>",
                c.name, el.name
            ));
        }
    }
}

/// The merged configuration as a document: declaration, a comment naming the sources, root.
pub fn merged_document(cfg: &Config) -> String {
    let pretty = cfg.tree.to_pretty_document();
    let (decl, body) = pretty.split_once('\n').unwrap_or(("", pretty.as_str()));
    // "--" may not appear inside a comment
    let sources = cfg.sources.join(", ").replace("--", "- -");
    format!("{decl}\n<!-- merged from: {sources} -->\n{body}")
}

/// What `check-config` found in a usable configuration.
#[derive(Debug)]
pub struct Report {
    pub merged: String,
    pub warnings: Vec<String>,
}

/// Loads and checks the configuration of `root`.
pub fn check(root: &Path) -> Result<Report, CheckError> {
    if !root.is_dir() {
        return Err(CheckError::NoRoot(root.to_path_buf()));
    }
    let cfg = Config::load(root)?;
    let (defaults, user) = read_sources(root)?;
    let mut warnings = Vec::new();
    for src in std::iter::once(&defaults).chain(user.as_ref()) {
        // the loader accepted these, so they parse
        if let Ok(tree) = Element::parse(&src.bytes) {
            warnings.extend(lint(&src.name, &tree));
        }
    }
    warnings.extend(rollout_warnings(root, &cfg));
    Ok(Report {
        merged: merged_document(&cfg),
        warnings,
    })
}

/// Rollouts: state files of rollouts no longer configured whose devices installed their
/// builds (`<master>` decides for them now and may move them back), and `applies` with more
/// than one term (every term must fit, as in `<master>`; `applies-any` is "any of").
fn rollout_warnings(root: &Path, cfg: &Config) -> Vec<String> {
    let mut out: Vec<String> = crate::rollout::store::orphans_in(&root.join("rollouts"), &cfg.rollouts)
        .into_iter()
        .map(|o| {
            format!(
                "rollouts/{}.xml: rollout '{}' is no longer configured, but {} devices installed its builds ({}); <master> decides for them now and may move them back (keep the rollout, aborted, to hold them)",
                o.id, o.id, o.installed, o.target
            )
        })
        .collect();
    out.extend(cfg.rollouts.iter().filter(|r| r.applies.len() > 1).map(|r| {
        format!(
            "<rollout id='{}'>: applies has {} terms and a device must fit every one of them (as in <master>); use applies-any for \"any of\"",
            r.id,
            r.applies.len()
        )
    }));
    let scripts = root.join(&cfg.times.dir);
    for r in &cfg.rollouts {
        for f in r.snippets.iter().filter(|f| !scripts.join(f).is_file()) {
            out.push(format!(
                "<rollout id='{}'>: snippet file {}/{f} does not exist; nothing is staged for it until it does",
                r.id, cfg.times.dir
            ));
        }
    }
    out
}

/// `check-config`: prints the merged configuration, warnings and errors; see the exit codes
/// in the module documentation.
pub fn run(root: &Path, strict: bool) -> ExitCode {
    match check(root) {
        Ok(report) => {
            print!("{}", report.merged);
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            if strict && !report.warnings.is_empty() {
                eprintln!("error: {} warning(s) and --strict", report.warnings.len());
                ExitCode::from(EXIT_WARNINGS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lint_str(xml: &str) -> Vec<String> {
        lint("u.xml", &Element::parse_str(xml).expect("xml"))
    }

    #[test]
    fn removed_rollouts_with_installed_devices_and_all_of_scopes_are_warned_about() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("config")).expect("config");
        std::fs::create_dir_all(root.join("rollouts")).expect("rollouts");
        std::fs::write(
            root.join("config/user-config.xml"),
            r#"<config><rollouts><rollout id="now" firmware="1" applies="phone, env:lab"/></rollouts></config>"#,
        )
        .expect("user config");
        let state = |ok: &str| {
            format!(
                r#"<rollout id="x" target="139000/-"><device sn="a" wave="1" told="1"{ok}/></rollout>"#
            )
        };
        std::fs::write(root.join("rollouts/gone.xml"), state(r#" succeeded="2""#)).expect("w");
        std::fs::write(root.join("rollouts/none.xml"), state("")).expect("w");
        std::fs::write(root.join("rollouts/now.xml"), state(r#" succeeded="2""#)).expect("w");
        let w = check(root).expect("usable").warnings;
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("rollouts/gone.xml: rollout 'gone' is no longer configured, but 1 devices installed its builds (139000/-)"), "{w:?}");
        assert!(w[1].contains("applies has 2 terms"), "{w:?}");
    }

    #[test]
    fn a_snippet_rollout_is_known_and_a_missing_file_warned_about() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("config")).expect("config");
        std::fs::create_dir_all(root.join("scripts")).expect("scripts");
        std::fs::write(root.join("scripts/a.txt"), "x").expect("a");
        let xml =
            r#"<config><rollouts><rollout id="s" snippets="a.txt b.txt"/></rollouts></config>"#;
        assert_eq!(
            lint_str(xml),
            Vec::<String>::new(),
            "snippets is an attribute"
        );
        std::fs::write(root.join("config/user-config.xml"), xml).expect("user config");
        let w = check(root).expect("usable").warnings;
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("scripts/b.txt does not exist"), "{w:?}");
        // builds and snippets in one rollout: usable, the same warning
        let both = xml.replace(r#"id="s""#, r#"id="s" firmware="140010""#);
        assert_eq!(lint_str(&both), Vec::<String>::new());
        std::fs::write(root.join("config/user-config.xml"), both).expect("user config");
        let w = check(root).expect("usable").warnings;
        assert_eq!(w.len(), 1, "{w:?}");
    }

    #[test]
    fn shipped_and_reference_configurations_are_clean() {
        let builtin = Element::parse_str(crate::config::BUILTIN_DEFAULTS).expect("defaults");
        assert_eq!(lint("config.xml", &builtin), Vec::<String>::new());
        for f in ["config/user-config.xml", "config/user-config-sample.xml"] {
            let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(f);
            let tree = Element::parse(&std::fs::read(&p).expect("read")).expect("parse");
            assert_eq!(lint(f, &tree), Vec::<String>::new(), "{f}");
        }
    }

    #[test]
    fn unknown_names_and_bad_values_are_reported() {
        let w = lint_str(
            r#"<config><mastr/><times intervall="3" polling="abc" interval=" 15 " forcehttps="yes"/>
               <phases><phase id="x" seq="1o0"/><stage/></phases><mastr><deeper/></mastr></config>"#,
        );
        assert_eq!(
            w,
            vec![
                "u.xml: unknown element <mastr> in <config>",
                "u.xml: <times intervall=\"3\">: unknown attribute",
                "u.xml: <times polling=\"abc\">: not a whole number",
                "u.xml: <times forcehttps=\"yes\">: neither \"true\" nor \"false\"",
                "u.xml: <phase seq=\"1o0\">: not a whole number",
                "u.xml: unknown element <stage> in <phases>",
                "u.xml: unknown element <mastr> in <config>",
            ]
        );
    }

    #[test]
    fn our_own_elements_and_empty_numbers_are_fine() {
        let w = lint_str(
            r#"<config><server http="0.0.0.0:80" max-body="10"/><snippethook exec="x" timeout="5"/>
               <migrate url="u" all="true"/><api token="t"/><times httpsport="" polling="-1"/>
               <master passwordhash="h"><applies env="">x</applies></master></config>"#,
        );
        assert_eq!(w, Vec::<String>::new());
        assert_eq!(
            lint_str("<settings/>"),
            vec!["u.xml: root element <settings> (expected <config>)"]
        );
    }

    #[test]
    fn proxy_identity_is_one_of_two_values() {
        for ok in ["x-remote-cert", "forwarded", "Forwarded", ""] {
            let w = lint_str(&format!(
                r#"<config><server proxy-identity="{ok}"/></config>"#
            ));
            assert_eq!(w, Vec::<String>::new(), "{ok}");
        }
        assert_eq!(
            lint_str(r#"<config><server proxy-identity="remote_user"/></config>"#),
            vec![
                "u.xml: <server proxy-identity=\"remote_user\">: neither \"x-remote-cert\" nor \"forwarded\" (x-remote-cert is used)"
            ]
        );
        let cfg = Config::from_user_xml(r#"<config><server proxy-identity="forwarded"/></config>"#)
            .expect("cfg");
        assert_eq!(
            cfg.server.proxy_identity,
            crate::config::ProxyIdentity::Forwarded
        );
    }

    #[test]
    fn merged_document_has_the_declaration_first() {
        let mut cfg = Config::from_user_xml("<config/>").expect("cfg");
        cfg.sources.push("odd--name.xml".into());
        let doc = merged_document(&cfg);
        assert!(doc.starts_with("<?xml version=\"1.0\""), "{doc}");
        assert!(doc.contains("<!-- merged from: built-in config.xml, config/user-config.xml, odd- -name.xml -->\n<config"));
    }
}
