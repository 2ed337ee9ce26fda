//! The device filter language of the status page, its `cmd=rows` requests and the API
//! (`filter=`), pure over [`Fields`] (what a device row offers, whatever keeps it):
//!
//! - a free word must match a **whole word** of one of the device's texts (addresses,
//!   serial, type, name, phase, classes, environments, firmware, boot code, `present` or
//!   `missing`; `unreadable` for a broken state file), case-insensitive: `lab` matches the
//!   environment `lab` and the name `Lab Bench` alike, but not `laboratory`;
//! - `field:value` matches that field only, as a **whole value** (`name:lab` does not match
//!   `Lab Bench`, `name:lab*` and `name:"lab bench"` do); for `class:` and `env:` the value
//!   must be one of the listed classes or environments, `ip:` looks at the reported and the
//!   request address. Fields: `sn`, `type`, `name`, `ip`, `phase`, `env`, `class`, `fw`,
//!   `boot`;
//! - `is:STATE`: `missing`, `present`, `csr` (a CSR waits for signature), `signed` (a signed
//!   certificate waits for the device), `certerror` (the device reported a certificate
//!   request error, or its error file is there), `fwpending` (a firmware or boot code update
//!   was sent and the device does not report that build yet), `unreadable`;
//! - `is:told|succeeded|failed|held`: what the rollouts named by `rollout:` terms (any
//!   without one) recorded of the device (held: in scope, never told);
//! - `rollout:ID`: the device is in the scope of the staged rollout `ID`; `wave:N`: it falls
//!   in wave `N` (1-based) of the rollouts named by `rollout:` terms, or of any configured
//!   rollout without one (both need the rollouts, [`Query::matches_in`]; an unknown rollout
//!   matches no device);
//! - `*` and `?` are wildcards everywhere, `"…"` quotes a value with spaces, a leading `-`
//!   negates a term; all terms must hold.
//!
//! An unknown `field:` or `is:` is a [`FilterError`] the pages show to the user.

use crate::rollout::Rollout;
use regex::Regex;
use thiserror::Error;

pub use crate::state::fields::Fields;

/// Anything a device row can be filtered and sorted by.
pub trait DeviceFields {
    fn fields(&self) -> Fields<'_>;
}

impl Fields<'_> {
    /// Whether the device counts as missing (`missing_after` seconds unseen at `now`).
    pub fn is_missing(&self, c: Clock) -> bool {
        !self.unreadable && c.missing_after > 0 && self.seen < c.now - c.missing_after
    }

    /// A firmware or boot code update was sent and is not reported yet.
    pub fn fw_pending(&self) -> bool {
        let pending = |req: &str, build: &str| !req.is_empty() && req != build;
        pending(self.firmware_requested, self.firmware)
            || pending(self.bootcode_requested, self.bootcode)
    }
}

/// The time facts `missing` depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    pub now: i64,
    pub missing_after: i64,
}

/// Why a filter text is refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("unknown filter field '{0}:' (known: {FIELD_NAMES})")]
    UnknownField(String),
    #[error("unknown state 'is:{0}' (known: {STATE_NAMES})")]
    UnknownState(String),
    #[error("'{0}:' needs a value")]
    EmptyValue(String),
    #[error("a quote (\") is not closed")]
    OpenQuote,
    #[error("more than {MAX_TERMS} filter terms")]
    TooManyTerms,
    #[error("'wave:' needs a wave number from 1")]
    BadWave,
}

const FIELD_NAMES: &str = "sn, type, name, ip, phase, env, class, fw, boot, is, rollout, wave";

/// Every `field:` term with what it matches (the filter help of the status page).
pub const FIELD_HELP: [(&str, &str); 11] = [
    ("sn", "serial number"),
    ("type", "device type (IP232)"),
    ("name", "device name"),
    ("ip", "reported or request address"),
    ("phase", "update phase"),
    ("env", "one of the environments"),
    ("class", "one of the classes"),
    ("fw", "firmware build"),
    ("boot", "boot code build"),
    ("rollout", "in the scope of this staged rollout"),
    ("wave", "in this wave (1-based) of a rollout"),
];

/// Every `is:` term with what it means (the filter help of the status page).
pub const STATE_HELP: [(&str, &str); 11] = [
    ("missing", "not seen for longer than status/@missing"),
    ("present", "seen recently"),
    ("csr", "a CSR waits for signature"),
    ("signed", "a signed certificate waits for the device"),
    (
        "certerror",
        "the device reported a certificate request error",
    ),
    (
        "fwpending",
        "a firmware or boot code update was sent, not reported yet",
    ),
    ("unreadable", "the state file cannot be read"),
    (
        "told",
        "told the builds (or given the new snippet version) of a rollout (with rollout:ID)",
    ),
    ("succeeded", "reported the target builds of a rollout"),
    ("failed", "failed in a rollout (did not report in time)"),
    ("held", "held back by a rollout (its wave not open)"),
];
const STATE_NAMES: &str = "missing, present, csr, signed, certerror, fwpending, unreadable, told, succeeded, failed, held";

/// Longest filter text looked at (characters; the rest is ignored).
pub const MAX_FILTER: usize = 256;
/// Most terms in a filter.
pub const MAX_TERMS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Sn,
    Type,
    Name,
    Ip,
    Phase,
    Env,
    Class,
    Fw,
    Boot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Missing,
    Present,
    Csr,
    Signed,
    CertError,
    FwPending,
    Unreadable,
}

#[derive(Debug, Clone)]
enum Test {
    /// A whole word of any text.
    Word(Regex),
    /// The whole value of one field.
    Field(Field, Regex),
    State(State),
    /// In the scope of this rollout.
    Rollout(String),
    /// In this wave (0-based) of the named rollouts (of any without `rollout:` terms).
    Wave(usize),
    /// What the named rollouts (any without `rollout:` terms) recorded of the device.
    Outcome(Outcome),
}

/// What a rollout recorded of a device (`is:told|succeeded|failed|held`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Told the rollout's builds (whatever came of it).
    Told,
    Succeeded,
    Failed,
    /// In the rollout's scope and never told (its wave not open, paused, halted, aborted, or
    /// a type the rollout tells nothing).
    Held,
}

/// What a rollout recorded of a device: (told, succeeded, failed); `None`: nothing.
pub type Recorded = Option<(bool, bool, bool)>;

#[derive(Debug, Clone)]
struct Term {
    negated: bool,
    test: Test,
}

/// A parsed filter: every term must hold.
#[derive(Debug, Clone, Default)]
pub struct Query {
    terms: Vec<Term>,
}

/// Splits at white space, keeping `"…"` together (the quotes are removed).
fn tokens(s: &str) -> Result<Vec<String>, FilterError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err(FilterError::OpenQuote);
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

/// The regular expression of a value with `*` and `?` wildcards.
fn wildcards(v: &str) -> String {
    regex::escape(v).replace("\\*", ".*").replace("\\?", ".")
}

fn whole_value(v: &str) -> Option<Regex> {
    Regex::new(&format!("(?i)^(?:{})$", wildcards(v))).ok()
}

fn whole_word(v: &str) -> Option<Regex> {
    Regex::new(&format!("(?i)(?-u:\\b){}(?-u:\\b)", wildcards(v))).ok()
}

fn field_of(name: &str) -> Option<Field> {
    Some(match name.to_ascii_lowercase().as_str() {
        "sn" => Field::Sn,
        "type" => Field::Type,
        "name" => Field::Name,
        "ip" => Field::Ip,
        "phase" => Field::Phase,
        "env" => Field::Env,
        "class" => Field::Class,
        "fw" => Field::Fw,
        "boot" => Field::Boot,
        _ => return None,
    })
}

fn state_of(name: &str) -> Option<State> {
    Some(match name.to_ascii_lowercase().as_str() {
        "missing" => State::Missing,
        "present" => State::Present,
        "csr" => State::Csr,
        "signed" => State::Signed,
        "certerror" => State::CertError,
        "fwpending" => State::FwPending,
        "unreadable" => State::Unreadable,
        _ => return None,
    })
}

fn outcome_of(v: &str) -> Option<Outcome> {
    Some(match v.to_ascii_lowercase().as_str() {
        "told" => Outcome::Told,
        "succeeded" => Outcome::Succeeded,
        "failed" => Outcome::Failed,
        "held" => Outcome::Held,
        _ => return None,
    })
}

fn term(token: &str) -> Result<Option<Term>, FilterError> {
    let (negated, t) = match token.strip_prefix('-') {
        Some(rest) if !rest.is_empty() => (true, rest),
        _ => (false, token),
    };
    let test = match t.split_once(':') {
        // `field:` only for a name of letters, so `fe80::1` or `12:30` stay free words
        Some((name, value))
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic()) =>
        {
            if value.is_empty() {
                return Err(FilterError::EmptyValue(name.to_string()));
            }
            if name.eq_ignore_ascii_case("rollout") {
                Test::Rollout(value.to_string())
            } else if name.eq_ignore_ascii_case("wave") {
                match value.parse::<usize>() {
                    Ok(n) if n >= 1 => Test::Wave(n - 1),
                    _ => return Err(FilterError::BadWave),
                }
            } else if name.eq_ignore_ascii_case("is") {
                match outcome_of(value) {
                    Some(o) => Test::Outcome(o),
                    None => Test::State(
                        state_of(value).ok_or_else(|| FilterError::UnknownState(value.into()))?,
                    ),
                }
            } else {
                let field =
                    field_of(name).ok_or_else(|| FilterError::UnknownField(name.to_string()))?;
                let value = if field == Field::Sn {
                    normalize_mac(value)
                } else {
                    value.to_string()
                };
                match whole_value(&value) {
                    Some(re) => Test::Field(field, re),
                    None => return Ok(None),
                }
            }
        }
        _ => match whole_word(&normalize_mac(t)) {
            Some(re) => Test::Word(re),
            None => return Ok(None),
        },
    };
    Ok(Some(Term { negated, test }))
}

/// `009033aabbcc` → `00-90-33-aa-bb-cc` (the way serial numbers are written).
pub fn normalize_mac(w: &str) -> String {
    if w.len() == 12
        && w.get(..6).is_some_and(|p| p == "009033")
        && w.bytes().all(|b| b.is_ascii_hexdigit())
    {
        let parts: Vec<&str> = (0..6).filter_map(|i| w.get(i * 2..i * 2 + 2)).collect();
        return parts.join("-");
    }
    w.to_string()
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty())
}

impl Query {
    /// Parses a filter text (at most [`MAX_FILTER`] characters are looked at).
    pub fn parse(s: &str) -> Result<Query, FilterError> {
        let s = match s.char_indices().nth(MAX_FILTER) {
            Some((i, _)) => &s[..i],
            None => s,
        };
        let tokens = tokens(s)?;
        if tokens.len() > MAX_TERMS {
            return Err(FilterError::TooManyTerms);
        }
        let mut terms = Vec::with_capacity(tokens.len());
        for t in &tokens {
            terms.extend(term(t)?);
        }
        Ok(Query { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether every term holds for the device (no rollouts configured).
    pub fn matches(&self, f: &Fields<'_>, c: Clock) -> bool {
        self.matches_in(f, c, &[])
    }

    /// Whether every term holds for the device, with the configured rollouts (nothing
    /// recorded by them).
    pub fn matches_in(&self, f: &Fields<'_>, c: Clock, rollouts: &[Rollout]) -> bool {
        self.matches_recorded(f, c, rollouts, &|_, _| None)
    }

    /// Whether any term looks at what the rollouts recorded (`is:told` …).
    pub fn needs_recorded(&self) -> bool {
        self.terms
            .iter()
            .any(|t| matches!(t.test, Test::Outcome(_)))
    }

    /// Whether every term holds for the device, with the configured rollouts and what they
    /// recorded (`recorded(rollout id, serial)`).
    pub fn matches_recorded(
        &self,
        f: &Fields<'_>,
        c: Clock,
        rollouts: &[Rollout],
        recorded: &dyn Fn(&str, &str) -> Recorded,
    ) -> bool {
        let named: Vec<&Rollout> = self
            .terms
            .iter()
            .filter_map(|t| match &t.test {
                Test::Rollout(id) if !t.negated => rollouts.iter().find(|r| &r.id == id),
                _ => None,
            })
            .collect();
        let named = if named.is_empty() {
            rollouts.iter().collect()
        } else {
            named
        };
        let ctx = RolloutCtx {
            all: rollouts,
            named: &named,
            recorded,
        };
        self.terms
            .iter()
            .all(|t| t.negated != t.test.holds(f, c, &ctx))
    }
}

/// The rollouts `rollout:` and `wave:` look at.
struct RolloutCtx<'a> {
    all: &'a [Rollout],
    /// Named by `rollout:` terms, else all.
    named: &'a [&'a Rollout],
    recorded: &'a dyn Fn(&str, &str) -> Recorded,
}

impl Test {
    fn holds(&self, f: &Fields<'_>, c: Clock, r: &RolloutCtx<'_>) -> bool {
        match self {
            Test::Word(re) => texts(f, c).iter().any(|t| re.is_match(t)),
            Test::Field(field, re) => field_holds(*field, re, f),
            Test::State(s) => state_holds(*s, f, c),
            Test::Rollout(id) => r
                .all
                .iter()
                .find(|x| &x.id == id)
                .is_some_and(|x| in_scope(x, f)),
            Test::Wave(w) => r
                .named
                .iter()
                .any(|x| in_scope(x, f) && crate::rollout::wave_of(x, f.sn) == Some(*w)),
            Test::Outcome(o) => r.named.iter().any(|x| {
                let rec = (r.recorded)(&x.id, f.sn);
                match (o, rec) {
                    (Outcome::Held, rec) => {
                        in_scope(x, f) && rec.is_none_or(|(told, ok, _)| !told && !ok)
                    }
                    (_, None) => false,
                    (Outcome::Told, Some((told, _, _))) => told,
                    (Outcome::Succeeded, Some((_, ok, _))) => ok,
                    (Outcome::Failed, Some((_, _, failed))) => failed,
                }
            }),
        }
    }
}

fn in_scope(r: &Rollout, f: &Fields<'_>) -> bool {
    let owned = |s: &str| list(s).map(str::to_string).collect::<Vec<_>>();
    !f.unreadable && r.in_scope(&owned(f.classes), &owned(f.environments))
}

/// The texts free words look at.
fn texts<'a>(f: &Fields<'a>, c: Clock) -> Vec<&'a str> {
    if f.unreadable {
        return vec![f.key, "unreadable"];
    }
    vec![
        f.realip,
        f.ip,
        f.sn,
        f.device_type,
        f.name,
        f.phase,
        f.classes,
        f.environments,
        f.firmware,
        f.bootcode,
        if f.is_missing(c) {
            "missing"
        } else {
            "present"
        },
    ]
}

fn field_holds(field: Field, re: &Regex, f: &Fields<'_>) -> bool {
    let one = |s: &str| re.is_match(s);
    match field {
        Field::Sn => one(f.sn) || one(f.key),
        Field::Type => one(f.device_type),
        Field::Name => one(f.name),
        Field::Ip => one(f.realip) || one(f.ip),
        Field::Phase => one(f.phase),
        Field::Env => list(f.environments).any(one),
        Field::Class => list(f.classes).any(one),
        Field::Fw => one(f.firmware),
        Field::Boot => one(f.bootcode),
    }
}

fn state_holds(s: State, f: &Fields<'_>, c: Clock) -> bool {
    match s {
        State::Missing => f.is_missing(c),
        State::Present => !f.unreadable && !f.is_missing(c),
        State::Csr => f.csr_waiting,
        State::Signed => f.signed_waiting,
        State::CertError => f.cert_error,
        State::FwPending => f.fw_pending(),
        State::Unreadable => f.unreadable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Clock = Clock {
        now: 10_000,
        missing_after: 600,
    };

    fn bench() -> Fields<'static> {
        Fields {
            key: "00-90-33-30-00-af",
            sn: "00-90-33-30-00-af",
            device_type: "IP232",
            name: "Lab Bench",
            realip: "172.16.0.20",
            ip: "10.0.0.1",
            phase: "update",
            classes: "phone, ip232",
            environments: "default, lab",
            firmware: "130160",
            bootcode: "130150",
            seen: 9_990,
            ..Fields::default()
        }
    }

    fn m(q: &str, f: &Fields<'_>) -> bool {
        Query::parse(q).expect(q).matches(f, C)
    }

    #[test]
    fn free_words_match_whole_words_as_before() {
        let f = bench();
        for yes in [
            "lab",
            "LAB",
            "bench",
            "16",
            "172.16.",
            "ip2?2",
            "00-90-33-30-00-*",
        ] {
            assert!(m(yes, &f), "{yes}");
        }
        assert!(m("0090333000af", &f), "serial without dashes");
        for no in ["la", "laboratory", "17", "a.c", "missing", "ip232 missing"] {
            assert!(!m(no, &f), "{no}");
        }
        assert!(m("present", &f));
        assert!(m("", &f));
        assert!(Query::parse("  ").expect("empty").is_empty());
    }

    #[test]
    fn free_words_against_another_device_and_literal_characters() {
        let b = Fields {
            key: "00-90-33-30-00-b0",
            sn: "00-90-33-30-00-b0",
            device_type: "IP222",
            realip: "192.168.0.1",
            ip: "192.168.0.1",
            environments: "default, lab",
            firmware: "130160",
            seen: 9_990,
            ..Fields::default()
        };
        assert!(!m("16", &b), "16 is not a whole word of 168");
        assert!(!m("172.16. ip232", &b));
        assert!(m("  IP2?2   lab ", &b));
        assert!(m("00-90-33-30-00-*", &b));
        assert!(m("0090333000b0", &b));
        assert!(!m("0090333000b0", &bench()));
        let literal = Fields {
            name: "x a(b y",
            ..Fields::default()
        };
        assert!(m("a(b", &literal), "regex characters are literal");
        assert!(!m(
            "a.c",
            &Fields {
                name: "abc",
                ..Fields::default()
            }
        ));
        assert!(!m(
            "lab\n",
            &Fields {
                name: "labx",
                ..Fields::default()
            }
        ));
    }

    #[test]
    fn field_terms_match_the_whole_value_of_that_field_only() {
        let f = bench();
        assert!(!m("name:lab", &f), "lab is the environment, not the name");
        assert!(m("name:lab*", &f));
        assert!(m("name:\"lab bench\"", &f));
        assert!(m("env:lab", &f));
        assert!(!m("env:la", &f));
        assert!(!m("type:lab", &f));
        assert!(m("type:ip232 class:phone phase:update", &f));
        assert!(m("ip:172.16.* ip:10.0.0.1", &f));
        assert!(!m("ip:172.16", &f));
        assert!(m("fw:130160 boot:1301?0", &f));
        assert!(!m("fw:13016", &f));
        assert!(m("sn:0090333000af", &f));
        assert!(m("TYPE:IP232", &f), "field names are case-insensitive");
    }

    #[test]
    fn state_terms_and_negation() {
        let mut f = bench();
        assert!(m("is:present -is:missing -is:csr -is:fwpending", &f));
        f.seen = 1;
        assert!(m("is:missing missing", &f));
        assert!(!m("-is:missing", &f));
        f.csr_waiting = true;
        f.cert_error = true;
        assert!(m("is:csr is:certerror -is:signed", &f));
        f.signed_waiting = true;
        assert!(m("is:signed", &f));
        f.firmware_requested = "130160";
        assert!(!m("is:fwpending", &f), "requested build reported");
        f.bootcode_requested = "130170";
        assert!(m("is:fwpending", &f));
        assert!(m("-name:lab -lab*x", &f));
        assert!(!m("-lab", &f));
        let broken = Fields {
            key: "broken",
            unreadable: true,
            ..Fields::default()
        };
        assert!(m(
            "is:unreadable unreadable broken -is:present -is:missing",
            &broken
        ));
    }

    #[test]
    fn unknown_fields_and_states_are_errors() {
        assert_eq!(
            Query::parse("colour:red").err(),
            Some(FilterError::UnknownField("colour".into()))
        );
        assert_eq!(
            Query::parse("is:happy").err(),
            Some(FilterError::UnknownState("happy".into()))
        );
        assert_eq!(
            Query::parse("name:").err(),
            Some(FilterError::EmptyValue("name".into()))
        );
        assert_eq!(Query::parse("name:\"x").err(), Some(FilterError::OpenQuote));
        let many = "a ".repeat(MAX_TERMS + 1);
        assert_eq!(Query::parse(&many).err(), Some(FilterError::TooManyTerms));
        let msg = FilterError::UnknownField("colour".into()).to_string();
        assert!(msg.contains("colour:") && msg.contains("type"), "{msg}");
        // not a field name: stays a free word
        let f = Fields {
            ip: "fe80::1",
            ..bench()
        };
        assert!(Query::parse("fe80::1").is_ok());
        assert!(m("ip:fe80::1", &f));
        assert!(
            m(
                "a(b",
                &Fields {
                    name: "x a(b y",
                    ..bench()
                }
            ),
            "regex characters are literal"
        );
    }
}

#[cfg(test)]
mod rollout_terms {
    use super::*;

    #[test]
    fn rollout_and_wave_terms() {
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="r1" firmware="1" applies="phone" waves="50,100"/>
               <rollout id="r2" firmware="1" applies="gateway"/></rollouts></config>"#,
        )
        .unwrap();
        let rs = &cfg.rollouts;
        let sns: Vec<String> = (0..40).map(|i| format!("00-90-33-00-00-{i:02x}")).collect();
        let c = Clock::default();
        let m = |q: &str, sn: &str, classes: &str| {
            let f = Fields {
                key: sn,
                sn,
                classes,
                ..Fields::default()
            };
            Query::parse(q).expect(q).matches_in(&f, c, rs)
        };
        for sn in &sns {
            let p = crate::rollout::percentile(sn);
            assert!(m("rollout:r1", sn, "phone, ip232"));
            assert!(!m("rollout:r2", sn, "phone, ip232"));
            assert!(!m("rollout:nope", sn, "phone"));
            assert_eq!(m("rollout:r1 wave:1", sn, "phone"), p < 50, "{sn} {p}");
            assert_eq!(m("rollout:r1 wave:2", sn, "phone"), p >= 50, "{sn} {p}");
            assert!(!m("wave:2", sn, "gateway"), "r2 has one wave");
            assert!(m("wave:1", sn, "gateway"));
        }
        assert_eq!(Query::parse("wave:0").unwrap_err(), FilterError::BadWave);
        assert_eq!(Query::parse("wave:x").unwrap_err(), FilterError::BadWave);
    }
}

#[cfg(test)]
mod help {
    use super::*;

    #[test]
    fn the_help_lists_every_field_and_state_the_parser_knows() {
        let names: Vec<&str> = FIELD_HELP.iter().map(|(n, _)| *n).collect();
        for f in FIELD_NAMES.split(", ").filter(|f| *f != "is") {
            assert!(names.contains(&f), "{f} missing in the help");
        }
        for (name, _) in FIELD_HELP {
            let value = if name == "wave" { "1" } else { "x" };
            assert!(Query::parse(&format!("{name}:{value}")).is_ok(), "{name}");
        }
        let states: Vec<&str> = STATE_HELP.iter().map(|(n, _)| *n).collect();
        assert_eq!(states.join(", "), STATE_NAMES);
        for s in states {
            assert!(Query::parse(&format!("is:{s}")).is_ok(), "is:{s}");
        }
    }
}
