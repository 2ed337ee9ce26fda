//! The `<rollouts><rollout …/></rollouts>` section: one [`Rollout`] per element, checked
//! (the configuration of `crate::rollout`, read with the rest of the configuration).
//!
//! `<rollout id="v14r2" firmware="140010" bootcode="140010" applies="phone, env:lab"
//! waves="1,10,50,100" success="95" halt="2" soak="3600" timeout="7200" start="manual"/>`.
//! `applies` means what it means in `<master>`: the device must fit **every** term (the
//! attribute's terms and `<applies>` children alike); `applies-any="phone, gateway"` is
//! the scope "any of these".

use super::Applies;
use crate::php;
use crate::xml::Element;
use thiserror::Error;

/// Longest rollout id (it names the state file `rollouts/ID.xml`).
pub const MAX_ID: usize = 64;
/// Most waves in a rollout.
pub const MAX_WAVES: usize = 20;
/// Most snippet files one rollout names.
pub const MAX_SNIPPETS: usize = 32;
/// Longest snippet file name a rollout names.
pub const MAX_SNIPPET_NAME: usize = 128;

/// One staged rollout as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollout {
    pub id: String,
    /// The firmware build devices are moved to (`None`: firmware is left alone).
    pub firmware: Option<String>,
    /// The boot code build (`None`: boot code is left alone).
    pub bootcode: Option<String>,
    /// Snippet files in `scripts/` whose new versions go out wave by wave (alone, or with
    /// the builds on the same waves; see `rollout::staged`).
    pub snippets: Vec<String>,
    /// The scope, as `master/applies`: a device is in it when it fits every one of these.
    pub applies: Vec<Applies>,
    /// `applies-any`: and, when not empty, at least one of these.
    pub applies_any: Vec<Applies>,
    /// `start="manual"`: no wave opens until an administrator starts the rollout.
    pub manual_start: bool,
    /// Cumulative percentages of the devices in scope, strictly increasing, 1..=100.
    pub waves: Vec<u8>,
    /// Percentage of a wave that must have succeeded before the next one opens.
    pub success: u8,
    /// The rollout halts when more than this percentage of a wave failed.
    pub halt: u8,
    /// Seconds a wave stays open at least before the next one opens.
    pub soak: i64,
    /// Seconds a told device has to report the target builds.
    pub timeout: i64,
}

/// Why a `<rollout>` element is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("<rollout id='{id}'>: {msg}")]
pub struct RolloutError {
    pub id: String,
    pub msg: String,
}

impl Rollout {
    /// Whether a device with these classes and environments is in the rollout's scope.
    pub fn in_scope(&self, classes: &[String], envs: &[String]) -> bool {
        self.applies.iter().all(|a| a.matches(classes, envs))
            && (self.applies_any.is_empty()
                || self.applies_any.iter().any(|a| a.matches(classes, envs)))
    }

    /// Whether the rollout stages snippet files (alone or with builds).
    pub fn stages_snippets(&self) -> bool {
        !self.snippets.is_empty()
    }

    /// Whether the rollout stages builds (firmware or boot code; maybe snippets as well).
    pub fn stages_builds(&self) -> bool {
        self.firmware.is_some() || self.bootcode.is_some()
    }

    /// Whether the rollout stages only snippet files and `round` (its new versions) is
    /// empty: nothing to do (phase `idle`).
    pub fn idle_with(&self, round: &[(String, i64)]) -> bool {
        self.stages_snippets() && !self.stages_builds() && round.is_empty()
    }

    /// The 1-based number and the percentage bound of a wave, for messages.
    pub fn wave_label(&self, wave: usize) -> String {
        match self.waves.get(wave) {
            Some(p) => format!("wave {} ({p}%)", wave + 1),
            None => format!("wave {}", wave + 1),
        }
    }
}

/// The rollouts of a merged configuration tree (none without `<rollouts>`).
pub fn rollouts_of(tree: &Element) -> Result<Vec<Rollout>, RolloutError> {
    let Some(section) = tree.child("rollouts") else {
        return Ok(Vec::new());
    };
    let mut out: Vec<Rollout> = Vec::new();
    for el in section.children_named("rollout") {
        let r = rollout_of(el)?;
        if out.iter().any(|o| o.id == r.id) {
            return Err(err(&r.id, "duplicate rollout id"));
        }
        if let Some(f) = r
            .snippets
            .iter()
            .find(|f| out.iter().any(|o| o.snippets.contains(f)))
        {
            return Err(err(&r.id, format!("{f} is staged by another rollout")));
        }
        out.push(r);
    }
    Ok(out)
}

fn err(id: &str, msg: impl Into<String>) -> RolloutError {
    RolloutError {
        id: id.to_string(),
        msg: msg.into(),
    }
}

/// Whether `id` can name a rollout (and its state file).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        && !id.starts_with('.')
}

fn rollout_of(el: &Element) -> Result<Rollout, RolloutError> {
    let id = el.attr("id").unwrap_or("").trim().to_string();
    if !valid_id(&id) {
        return Err(err(
            &id,
            format!("the id must be 1 to {MAX_ID} letters, digits, '_' or '.'"),
        ));
    }
    let build = |name: &str| -> Result<Option<String>, RolloutError> {
        match el.attr(name).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) if php::is_numeric(v) => Ok(Some(v.to_string())),
            Some(v) => Err(err(&id, format!("{name}='{v}' is not a build number"))),
        }
    };
    let firmware = build("firmware")?;
    let bootcode = build("bootcode")?;
    let snippets = snippets_of(&id, el.attr("snippets").unwrap_or(""))?;
    if firmware.is_none() && bootcode.is_none() && snippets.is_empty() {
        return Err(err(
            &id,
            "needs a firmware or a bootcode build, or snippets",
        ));
    }
    let waves = waves_of(&id, el.attr("waves").unwrap_or("100"))?;
    let number = |name: &str, default: i64, max: i64| -> Result<i64, RolloutError> {
        match el.attr(name).map(str::trim) {
            None | Some("") => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (0..=max).contains(&n) => Ok(n),
                _ => Err(err(
                    &id,
                    format!("{name}='{v}' is not a number from 0 to {max}"),
                )),
            },
        }
    };
    let manual_start = match el.attr("start").map(str::trim) {
        None | Some("" | "auto") => false,
        Some("manual") => true,
        Some(v) => return Err(err(&id, format!("start='{v}' must be manual or auto"))),
    };
    let mut applies = terms(el.attr("applies").unwrap_or(""));
    applies.extend(el.children_named("applies").map(|a| Applies {
        value: php::trim(&a.text).to_string(),
        env: a.attr("env").is_some(),
    }));
    Ok(Rollout {
        firmware,
        bootcode,
        snippets,
        applies,
        applies_any: terms(el.attr("applies-any").unwrap_or("")),
        manual_start,
        waves,
        success: number("success", 95, 100)? as u8,
        halt: number("halt", 2, 100)? as u8,
        soak: number("soak", 3600, 365 * 86400)?,
        timeout: number("timeout", 7200, 365 * 86400)?.max(1),
        id,
    })
}

fn waves_of(id: &str, v: &str) -> Result<Vec<u8>, RolloutError> {
    let bad = || {
        err(
            id,
            format!("waves='{v}' must be 1 to {MAX_WAVES} increasing percentages from 1 to 100"),
        )
    };
    let mut waves: Vec<u8> = Vec::new();
    for part in v.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        let p: u8 = part.trim_end_matches('%').parse().map_err(|_| bad())?;
        if p == 0 || p > 100 || waves.last().is_some_and(|l| *l >= p) {
            return Err(bad());
        }
        waves.push(p);
    }
    if waves.is_empty() || waves.len() > MAX_WAVES {
        return Err(bad());
    }
    Ok(waves)
}

/// Whether `name` can name a snippet file directly inside the snippet directory.
pub fn valid_snippet_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SNIPPET_NAME
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

/// The file names of `snippets="a.txt, b.txt"` (commas or spaces; each once).
fn snippets_of(id: &str, v: &str) -> Result<Vec<String>, RolloutError> {
    let mut out: Vec<String> = Vec::new();
    for name in v.split([',', ' ']).map(str::trim).filter(|p| !p.is_empty()) {
        if !valid_snippet_name(name) {
            return Err(err(
                id,
                format!("snippets: '{name}' is not a file name in the snippet directory"),
            ));
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    if out.len() > MAX_SNIPPETS {
        return Err(err(id, format!("snippets: more than {MAX_SNIPPETS} files")));
    }
    Ok(out)
}

/// Whether a device could be given snippet file `file` by its name `PHASE-CLASS-ENV.txt`:
/// the class part is `all` or one of its classes, the environment part `all`, one of its
/// environments or its serial number (lower case, `-` as `_`, as the candidates spell it).
/// The phase part is not looked at (a device's phase changes while it is staged).
pub fn reaches(file: &str, sn: &str, classes: &[String], envs: &[String]) -> bool {
    let Some(stem) = file.strip_suffix(".txt") else {
        return false;
    };
    let mut parts = stem.splitn(3, '-');
    let (Some(_phase), Some(class), Some(env)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    let sn = sn.trim().to_lowercase().replace('-', "_");
    (class == "all" || classes.iter().any(|c| same(c, class)))
        && (env == "all" || same(env, &sn) || envs.iter().any(|e| same(e, env)))
}

/// The terms of `applies`/`applies-any` (`class`, `env:NAME`, `*`, separated by commas or
/// spaces).
fn terms(v: &str) -> Vec<Applies> {
    v.split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix("env:") {
            Some(e) => Applies {
                value: e.to_string(),
                env: true,
            },
            None => Applies {
                value: s.to_string(),
                env: false,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(xml: &str) -> Result<Vec<Rollout>, RolloutError> {
        rollouts_of(&Element::parse_str(xml).unwrap())
    }

    #[test]
    fn parses_a_rollout_with_defaults() {
        let r = parse(r#"<config><rollouts><rollout id="v14" firmware="140010" applies="phone, env:lab"/></rollouts></config>"#)
            .unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert_eq!(r.firmware.as_deref(), Some("140010"));
        assert_eq!(r.bootcode, None);
        assert_eq!(r.waves, vec![100]);
        assert_eq!((r.success, r.halt, r.soak, r.timeout), (95, 2, 3600, 7200));
        assert_eq!(r.applies.len(), 2);
        assert!(r.applies[1].env);
        assert!(!r.manual_start);
        // every term, as in <master>
        assert!(r.in_scope(&["phone".into()], &["lab".into()]));
        assert!(!r.in_scope(&["phone".into()], &[]));
        assert!(!r.in_scope(&[], &["lab".into()]));
        assert!(!r.in_scope(&["gateway".into()], &["prod".into()]));
    }

    #[test]
    fn one_term_scopes_any_of_and_the_start_gate() {
        let r = parse(
            r#"<config><rollouts><rollout id="a" firmware="1" applies="phone"/>
            <rollout id="b" firmware="1" applies="env:lab"/>
            <rollout id="c" firmware="1" applies-any="phone, gateway" start="manual"/>
            <rollout id="d" firmware="1"/></rollouts></config>"#,
        )
        .unwrap();
        let (phone, gw, lab) = (
            vec!["phone".to_string()],
            vec!["gateway".to_string()],
            vec!["lab".to_string()],
        );
        assert!(r[0].in_scope(&phone, &[]) && !r[0].in_scope(&gw, &[]));
        assert!(r[1].in_scope(&gw, &lab) && !r[1].in_scope(&phone, &[]));
        assert!(r[2].in_scope(&phone, &[]) && r[2].in_scope(&gw, &[]));
        assert!(!r[2].in_scope(&[], &lab));
        assert!(r[2].manual_start);
        assert!(r[3].in_scope(&[], &[]), "no scope: every device");
        let bad =
            r#"<config><rollouts><rollout id="a" firmware="1" start="later"/></rollouts></config>"#;
        assert!(parse(bad).is_err());
    }

    #[test]
    fn parses_a_snippet_rollout() {
        let r = parse(
            r#"<config><rollouts><rollout id="ntp" snippets="update-all-default.txt, update-phone-berlin.txt update-all-default.txt" waves="5,25,100" halt="2" timeout="1800"/></rollouts></config>"#,
        )
        .unwrap();
        assert_eq!(
            r[0].snippets,
            vec!["update-all-default.txt", "update-phone-berlin.txt"]
        );
        assert!(r[0].stages_snippets());
        assert_eq!((r[0].firmware.clone(), r[0].timeout), (None, 1800));
        assert!(!r[0].stages_builds() && r[0].idle_with(&[]));
        // builds and snippets on the same waves: never idle
        let r = parse(
            r#"<config><rollouts><rollout id="both" firmware="140010" snippets="a.txt"/></rollouts></config>"#,
        )
        .unwrap();
        assert!(r[0].stages_builds() && r[0].stages_snippets() && !r[0].idle_with(&[]));
    }

    #[test]
    fn no_section_no_rollouts() {
        assert_eq!(parse("<config/>").unwrap(), Vec::new());
    }

    #[test]
    fn refuses_bad_rollouts() {
        for bad in [
            r#"<rollout id="" firmware="1"/>"#,
            r#"<rollout id="../x" firmware="1"/>"#,
            r#"<rollout id="a"/>"#,
            r#"<rollout id="a" firmware="abc"/>"#,
            r#"<rollout id="a" firmware="1" waves="10,5"/>"#,
            r#"<rollout id="a" firmware="1" waves="0,5"/>"#,
            r#"<rollout id="a" firmware="1" waves="101"/>"#,
            r#"<rollout id="a" firmware="1" success="120"/>"#,
            r#"<rollout id="a" firmware="1" soak="-1"/>"#,
            r#"<rollout id="a" firmware="1"/><rollout id="a" firmware="2"/>"#,
            r#"<rollout id="a" snippets="../a.txt"/>"#,
            r#"<rollout id="a" snippets=".hidden"/>"#,
            r#"<rollout id="a" snippets="x.txt"/><rollout id="b" snippets="y.txt x.txt"/>"#,
        ] {
            let xml = format!("<config><rollouts>{bad}</rollouts></config>");
            assert!(parse(&xml).is_err(), "{bad}");
        }
    }
}
