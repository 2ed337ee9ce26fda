//! The update script: what a polling device gets from `update.php` (a GET without `mode`).
//!
//! [`build`] is a pure function of the request, the merged configuration, the device's state,
//! the snippet files, the master's builds and the clock. It returns the answer and the state
//! to write; it never does I/O. Where the PHP server would do I/O halfway through (asking the
//! master device, a reverse DNS lookup, running the administrator's snippet hook) `build`
//! returns [`Outcome::Need`]; the caller gets the answer and calls `build` again with it in
//! [`Resolved`]. Being deterministic, the second run takes the same path up to that point.
//!
//! The steps, in the PHP server's order: rewrite the device's URL when `type/sn/hwid/ip` are
//! missing; classes from the type; phase (with fast polling while staging) and environments
//! (`?env=a,b`, one level of `implies`); the `skipnext` cycle; candidate snippets
//! `PHASE-CLASS-ENV.txt` with the `all` wildcards and the serial number as environment; the
//! backup line; the grace period; certificates; queries; time windows; firmware and boot code;
//! HTTPS and trust enforcement; the snippets with CHECK signature; the closing commands.

use crate::answer::{Answer, Exit, comment_safe};
use crate::certs::{self, CertFiles, FileOp};
use crate::config::Config;
use crate::firmware::{self, MasterResolution};
use crate::php::{self, Args, Value, loose_eq};
use crate::request::ConnInfo;
use crate::snippets::SnippetSource;
use crate::state::{self, Loaded, Target};
use crate::xml::Element;
use md5::{Digest, Md5};
use regex::Regex;

/// The administrator's snippet hook answer (PHP's `CustomUpdateSnippet`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookAnswer {
    /// Lines sent before the standard snippets.
    pub pre: Vec<Vec<u8>>,
    /// Lines sent after them.
    pub post: Vec<Vec<u8>>,
    /// Whether the standard snippets are sent.
    pub standard: bool,
    /// Why the hook failed (its answer is then empty and the standard snippets are sent).
    pub error: Option<String>,
}

/// Answers to earlier [`Need`]s.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub master: Option<MasterResolution>,
    pub rdns: Option<Option<String>>,
    pub hook: Option<HookAnswer>,
}

/// Something `build` needs from the outside world before it can go on.
#[derive(Debug, Clone, PartialEq)]
pub enum Need {
    /// The master device's builds ([`firmware::MasterSource::resolve`]).
    Master,
    /// The reverse DNS name of this address.
    Rdns(String),
    /// The snippet hook's answer for a device in this state.
    Hook(Box<Element>),
}

/// The inputs of one poll.
pub struct PollInput<'a> {
    pub config: &'a Config,
    pub args: &'a Args,
    pub conn: &'a ConnInfo,
    /// URL of `update.php` as the device reached it (`http://host/prefix/update.php`).
    pub script_url: &'a str,
    /// The device's stored state (ignored when state tracking is off or there is no `sn`).
    pub state: &'a Loaded,
    pub snippets: &'a (dyn SnippetSource + Sync),
    pub certs: &'a CertFiles,
    /// Whether a snippet hook is configured.
    pub hook_configured: bool,
    pub resolved: &'a Resolved,
    pub now: i64,
}

/// The result of a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollOutput {
    pub body: Vec<u8>,
    /// The device state to write, if any.
    pub state: Option<Element>,
    pub file_ops: Vec<FileOp>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done(PollOutput),
    Need(Need),
}

enum Stop {
    /// The script ended (PHP's `exit`/`die`).
    Exit,
    Need(Need),
}

type Step<T = ()> = Result<T, Stop>;

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
        .map(|(_, name)| name)
        .collect()
}

/// The device's environments: `?env=a,b` (default: the first defined), each with its
/// `implies`, combined like PHP's array union (later lists only add beyond earlier lengths).
fn environments(config: &Config, args: &Args) -> Result<Vec<String>, String> {
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

/// `(path as printed, file name)` of every candidate snippet, in delivery order.
fn candidate_names(
    config: &Config,
    sn: Option<&str>,
    classes: &[String],
    phase: &str,
    envs: &[String],
) -> Vec<(String, String)> {
    let mut all_classes: Vec<String> = classes.to_vec();
    if config.classes.len() > 1 {
        all_classes.insert(0, "all".to_string());
    }
    let phase = match (&config.fake_last_phase, &config.last_phase) {
        (Some(fake), Some(last)) if fake == phase => last.as_str(),
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
    let mut out: Vec<(String, String)> = Vec::new();
    for p in &all_phases {
        for c in &all_classes {
            for e in &all_envs {
                let name = format!(
                    "{}-{}-{}.txt",
                    p.to_lowercase(),
                    c.to_lowercase(),
                    e.to_lowercase()
                );
                if !out.iter().any(|(_, n)| *n == name) {
                    out.push((format!("{}/{}", config.times.dir, name), name));
                }
            }
        }
    }
    out
}

/// The state of one run: the answer so far (with the device state), the URL state arguments.
struct Ctx<'a> {
    inp: &'a PollInput<'a>,
    cfg: &'a Config,
    ans: Answer,
    stateargs: Vec<(String, Value)>,
    statechanged: bool,
    file_ops: Vec<FileOp>,
    base_url: String,
}

/// What `rewriteUrl` needs to know about the script's progress.
struct Rewrite {
    missing: Vec<String>,
    polling: Value,
    phase: Option<String>,
    nextphase: Option<String>,
}

/// `dirname()` of a URL: everything before its last `/` (not inside `scheme://`).
pub fn url_dirname(url: &str) -> String {
    match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |p| p + 2) => url[..i].to_string(),
        _ => url.to_string(),
    }
}

impl<'a> Ctx<'a> {
    fn new(inp: &'a PollInput<'a>) -> Ctx<'a> {
        let cfg = inp.config;
        let arg_value = |k: &str| -> Value { inp.args.get(k).map(|v| v.into_owned()).into() };
        Ctx {
            inp,
            cfg,
            ans: Answer::new(
                cfg.status_dir(),
                inp.args,
                inp.state,
                inp.now,
                cfg.status.logkeep,
            ),
            stateargs: vec![
                ("polling".to_string(), arg_value("polling")),
                ("phase".to_string(), arg_value("phase")),
            ],
            statechanged: false,
            file_ops: Vec::new(),
            base_url: url_dirname(inp.script_url),
        }
    }

    fn print(&mut self, s: &str) {
        self.ans.print(s);
    }

    fn line(&mut self, s: &str) {
        self.ans.line(s);
    }

    fn line_bytes(&mut self, s: &[u8]) {
        self.ans.line_bytes(s);
    }

    fn comment(&mut self, text: &str) {
        self.ans.comment(text);
    }

    fn notify(&mut self, msg: &str) {
        self.ans.notify(msg);
    }

    fn notify_die(&mut self, msg: &str) -> Step {
        let Exit = self.ans.notify_die(msg);
        Err(Stop::Exit)
    }

    fn bailout<T>(&mut self, msg: &str) -> Step<T> {
        let Exit = self.ans.bailout(msg);
        Err(Stop::Exit)
    }

    fn log(&mut self, attr: &str, value: Option<&str>, target: Target<'_>) {
        self.ans.log(attr, value, target);
    }

    fn log_device(&mut self, attr: &str, value: &str) {
        self.ans.log_device(attr, value);
    }

    fn finish(&mut self) {
        self.ans.finish();
    }

    fn set_state_arg(&mut self, key: &str, value: Value) {
        let idx = match self.stateargs.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.stateargs.push((key.to_string(), Value::Null));
                self.stateargs.len() - 1
            }
        };
        if !loose_eq(&self.stateargs[idx].1, &value) {
            self.stateargs[idx].1 = value;
            self.statechanged = true;
        }
    }

    fn state_arg(&self, key: &str) -> Value {
        self.stateargs
            .iter()
            .find(|(k, _)| k == key)
            .map_or(Value::Null, |(_, v)| v.clone())
    }

    fn full_url(&self, url: &str) -> String {
        firmware::full_url(&self.base_url, url)
    }

    fn polling(&self) -> Value {
        self.cfg.times.polling.clone()
    }

    /// PHP's `rewriteUrl`: reconfigures the device's Command File URL (and fast polling) when
    /// state arguments changed, arguments are missing, or HTTPS must be used.
    fn rewrite_url(&mut self, rw: &Rewrite, usehttps: bool, usehttpsport: &Value) -> bool {
        self.print("\r\n");
        if !(self.statechanged || !rw.missing.is_empty() || usehttps) {
            return false;
        }
        if self.statechanged {
            let np = self.state_arg("polling");
            if !np.is_null() && !loose_eq(&rw.polling, &np) {
                if loose_eq(&np, &Value::Int(0)) {
                    self.notify("turn off fast polling");
                    self.line("mod cmd UP1 provision 0");
                    self.line("config rem UP1 /provision");
                    let interval = self.cfg.times.interval;
                    self.line(&format!("config add UP1 /poll {interval}"));
                } else {
                    self.notify(&format!("turn on fast polling ({})", np.to_php_string()));
                    let p = self.polling().to_php_string();
                    self.line(&format!("mod cmd UP1 provision {p}"));
                    self.line("config add UP1 /poll 1");
                }
            }
        }
        let mut args: Vec<(String, Vec<u8>)> = Vec::new();
        let has = |args: &Vec<(String, Vec<u8>)>, k: &str| args.iter().any(|(x, _)| x == k);
        if self.statechanged {
            for (k, v) in &self.stateargs {
                args.push((k.clone(), v.to_php_string().into_bytes()));
            }
        }
        for k in &rw.missing {
            if !has(&args, k) {
                args.push((k.clone(), Vec::new()));
            }
        }
        for (k, v) in self.inp.args.iter() {
            if !has(&args, k) {
                args.push((k.to_string(), v.to_vec()));
            }
        }
        let mut finalargs: Vec<String> = Vec::new();
        for (k, v) in &args {
            match self.cfg.stdarg(k) {
                Some(None) => {}
                Some(Some(val)) => finalargs.push(format!("{k}={val}")),
                None => finalargs.push(format!("{k}={}", php::rawurlencode(v))),
            }
        }
        let mut newurl = format!("{}?{}", self.inp.script_url, finalargs.join("&"));
        let httpsport = self.cfg.times.httpsport.clone().unwrap_or_default();
        if usehttps
            && (!self.inp.conn.https || !loose_eq(usehttpsport, &Value::Str(httpsport.clone())))
        {
            self.notify(&format!(
                "using HTTP and 'forcehttps' is set or wrong port ({}) -> need to switch to HTTPS on port {httpsport}",
                usehttpsport.to_php_string()
            ));
            newurl = switch_to_https(&newurl, &httpsport);
            if let Some(m) = self.cfg.times.httpsurlmod.clone() {
                newurl = apply_urlmod(&m, &newurl);
            }
        }
        self.print("\r\n");
        if !rw.missing.is_empty() {
            let list = rw.missing.join(", ");
            self.notify(&format!("missing query args: {list}"));
        }
        self.line(&format!(
            "config add UP1 /url {}",
            php::rawurlencode(newurl.as_bytes())
        ));
        self.line("config add UP1 /no-dhcp");
        self.line("config write");
        self.line("config activate");
        self.log("nextphase", rw.nextphase.as_deref(), Target::Root);
        self.log("phase", rw.phase.as_deref(), Target::Root);
        true
    }

    fn do_queries(&mut self, classes: &[String], envs: &[String]) -> Step<bool> {
        let mut queries: Vec<(String, String)> = Vec::new();
        let url = format!("mod cmd UP0 scfg {}", self.full_url(&self.cfg.queries.scfg));
        for q in &self.cfg.queries.list {
            if q.applies.is_empty() {
                continue;
            }
            let Some(cmd) = q.cmd.as_deref() else {
                return self.bailout(&format!(
                    "queries: no <cmd> defined for <query id='{}>",
                    q.id
                ));
            };
            if q.applies.iter().any(|a| a.matches(classes, envs)) {
                let line = format!(
                    "{url}&id={} ser nop /always {}",
                    php::rawurlencode(q.id.as_bytes()),
                    php::rawurlencode(cmd.as_bytes())
                );
                match queries.iter_mut().find(|(id, _)| *id == q.id) {
                    Some(slot) => slot.1 = line,
                    None => queries.push((q.id.clone(), line)),
                }
            }
        }
        if queries.is_empty() {
            self.line(&format!(
                "# no queries defined for any of callers classes: {}",
                comment_safe(&classes.join("+"))
            ));
            return Ok(false);
        }
        for (id, q) in queries {
            self.comment(&format!("query '{id}'"));
            self.line(&q);
        }
        Ok(true)
    }

    fn restricted_times(&mut self, staging: bool) -> Option<String> {
        let t = &self.cfg.times;
        if t.allow.is_none() && t.initial.is_none() {
            return None;
        }
        let mut times = String::new();
        if !(staging && t.forcestaging) {
            if let Some(a) = &t.allow {
                times.push_str(&format!(" /allow {a}"));
            }
        } else {
            self.print("\r\n# Skip restricted times, initial staging / forcestaging\r\n");
        }
        if let Some(i) = &self.cfg.times.initial {
            times.push_str(&format!(" /initial {i}"));
        }
        (!times.is_empty()).then(|| format!("mod cmd UP1 times {times}"))
    }
}

/// Replaces scheme and port of a URL: `https://host[:port]rest`.
fn switch_to_https(url: &str, port: &str) -> String {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"(?i)https?(://[^:/]+)(:\d+)?(.*)")
            .unwrap_or_else(|e| panic!("static regex: {e}"))
    });
    match RE.captures(url) {
        Some(c) => format!(
            "https{}{}{}",
            c.get(1).map_or("", |m| m.as_str()),
            if port.is_empty() {
                String::new()
            } else {
                format!(":{port}")
            },
            c.get(3).map_or("", |m| m.as_str())
        ),
        None => url.to_string(),
    }
}

/// Applies `times/@httpsurlmod` (`!pattern!replacement!flags`, the first character is the
/// delimiter, PCRE-like) to a URL. An unusable modifier leaves the URL as it is.
pub fn apply_urlmod(spec: &str, url: &str) -> String {
    let Some(sep) = spec.chars().next() else {
        return url.to_string();
    };
    let parts: Vec<&str> = spec.split(sep).collect();
    let pattern = parts.get(1).copied().unwrap_or("");
    let replacement = parts.get(2).copied().unwrap_or("");
    let flags = parts.get(3).copied().unwrap_or("");
    let mut inline = String::new();
    let mut anchored = false;
    for f in flags.chars() {
        match f {
            'i' | 'm' | 's' | 'x' | 'U' => inline.push(f),
            'A' => anchored = true,
            'u' | 'D' => {}
            other => {
                tracing::warn!("times/@httpsurlmod: flag '{other}' not supported, ignored");
            }
        }
    }
    let pattern = if anchored {
        format!(r"\A(?:{pattern})")
    } else {
        pattern.to_string()
    };
    let full = if inline.is_empty() {
        pattern
    } else {
        format!("(?{inline}){pattern}")
    };
    match Regex::new(&full) {
        Ok(re) => re
            .replace_all(url, php_replacement(replacement).as_str())
            .into_owned(),
        Err(e) => {
            tracing::warn!("times/@httpsurlmod '{spec}' is not a usable pattern: {e}");
            url.to_string()
        }
    }
}

/// A `preg_replace` replacement in the regex crate's syntax, read as PHP reads it:
/// `$N`, `\N`, `${N}` (N one or two digits) are group references, `\\` and `\$` stand for
/// `\` and `$`, everything else is literal.
fn php_replacement(r: &str) -> String {
    let b: Vec<char> = r.chars().collect();
    let literal = |out: &mut String, c: char| {
        if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    };
    let mut out = String::new();
    let mut last_was_backslash = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '\\' || c == '$' {
            if last_was_backslash {
                // the backslash copied just before escapes this character
                out.pop();
                literal(&mut out, c);
                last_was_backslash = false;
                i += 1;
                continue;
            }
            if let Some((group, next)) = php_backref(&b, i) {
                out.push_str(&format!("${{{group}}}"));
                i = next;
                continue;
            }
        }
        literal(&mut out, c);
        last_was_backslash = c == '\\';
        i += 1;
    }
    out
}

/// PHP's `preg_get_backref`: the group number of a reference starting at `b[i]` (`$` or
/// `\`) and the index after it.
fn php_backref(b: &[char], i: usize) -> Option<(u32, usize)> {
    let mut j = i + 1;
    let braced = b[i] == '$' && b.get(j) == Some(&'{');
    if braced {
        j += 1;
    }
    let mut group = b.get(j)?.to_digit(10)?;
    j += 1;
    if let Some(d) = b.get(j).and_then(|c| c.to_digit(10)) {
        group = group * 10 + d;
        j += 1;
    }
    if braced {
        if b.get(j) != Some(&'}') {
            return None;
        }
        j += 1;
    }
    Some((group, j))
}

/// The CHECK signature: md5 over the hook's lines before, the snippets' trimmed lines, and
/// the hook's lines after.
fn files_signature(
    snippets: &[&crate::snippets::Snippet],
    pre: &[Vec<u8>],
    post: &[Vec<u8>],
) -> String {
    let mut h = Md5::new();
    for l in pre {
        h.update(l);
    }
    for s in snippets {
        h.update(s.signature_part.as_slice());
    }
    for l in post {
        h.update(l);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Builds the answer to a poll. See the module documentation.
pub fn build(inp: &PollInput<'_>) -> Outcome {
    let mut ctx = Ctx::new(inp);
    let r = run(&mut ctx);
    match r {
        Err(Stop::Need(n)) => Outcome::Need(n),
        Ok(()) | Err(Stop::Exit) => Outcome::Done(PollOutput {
            state: ctx.ans.state_to_write().cloned(),
            body: ctx.ans.out,
            file_ops: ctx.file_ops,
        }),
    }
}

fn run(ctx: &mut Ctx<'_>) -> Step {
    let inp = ctx.inp;
    let cfg = ctx.cfg;
    let args = inp.args;
    let arg = |k: &str| args.get(k).map(|v| v.into_owned());

    ctx.notify("");

    let missing: Vec<String> = ["type", "sn", "hwid", "ip"]
        .iter()
        .filter(|k| !args.has(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        if !args.has("phase") {
            let first = cfg.first_phase().to_string();
            ctx.set_state_arg("phase", Value::Str(first));
        }
        if !args.has("polling") {
            let p = ctx.polling();
            ctx.set_state_arg("polling", p);
        }
        let rw = Rewrite {
            missing,
            polling: Value::Null,
            phase: None,
            nextphase: None,
        };
        ctx.rewrite_url(&rw, false, &Value::Null);
        return Err(Stop::Exit);
    }

    let device_type = arg("type").unwrap_or_default();
    let classes = cfg.classes_of(&device_type);
    ctx.log_device("type", &device_type);
    ctx.log_device("classes", &classes.join(", "));

    let (ip, rp, via) = inp.conn.device_ip();
    ctx.log_device("ip", &ip);
    ctx.log_device("rp", if rp { "true" } else { "false" });
    if let Some(via) = via {
        ctx.log_device("proxy", &via);
    }

    let phase = match arg("phase") {
        Some(p) if !php::empty(&p) => {
            if !cfg.phase_exists(&p) {
                return ctx.notify_die(&format!("invalid phase: '{p}'"));
            }
            p
        }
        _ => cfg.first_phase().to_string(),
    };
    let nextphase = cfg.next_phase(&phase).map(str::to_string);
    ctx.log_device("phase", &phase);
    let polling: Value = arg("polling").into();

    let envs = match environments(cfg, args) {
        Ok(e) => e,
        Err(bad) => {
            let raw = arg("env").unwrap_or_default();
            return ctx.notify_die(&format!("invalid environment: '{bad}' ({raw})"));
        }
    };
    ctx.log_device("environments", &envs.join(", "));

    ctx.notify(&format!(
        "phase: {phase}, nextphase: {}, environment: {}, type: {device_type}, classes: {}",
        nextphase.as_deref().unwrap_or(""),
        envs.join("+"),
        classes.join("+")
    ));

    let rw = || Rewrite {
        missing: Vec::new(),
        polling: polling.clone(),
        phase: Some(phase.clone()),
        nextphase: nextphase.clone(),
    };

    // skipnext: a poll after certificate changes only runs the queries
    let skip = ctx
        .ans
        .state()
        .and_then(|s| s.attr("skipnext"))
        .map(str::to_string);
    if let Some(t) = skip {
        let age = php::since(inp.now, php::intval(&t));
        let now = inp.now;
        ctx.log(
            "msg",
            Some(&format!("skipnext: {age}")),
            Target::New("msgs", now),
        );
        if let Some(s) = ctx.ans.state_mut() {
            s.remove_attr("skipnext");
        }
        ctx.line("# need up-to-date query state, skipping update script, doing queries only");
        ctx.do_queries(&classes, &envs)?;
        let p = ctx.polling();
        ctx.set_state_arg("polling", p);
        ctx.finish();
        return Err(Stop::Exit);
    }

    // candidate snippet files
    let sn = arg("sn").unwrap_or_default();
    let cands = candidate_names(cfg, Some(&sn), &classes, &phase, &envs);
    let dir = cfg.times.dir.clone();
    ctx.print("\r\n");
    ctx.line(&format!("# existing files (from {}):", comment_safe(&dir)));
    if php::empty(&sn) {
        ctx.line("# no SN -- cannot log");
    }
    let mut files: Vec<(String, &crate::snippets::Snippet)> = Vec::new();
    let mut newest_time = 0i64;
    let mut newest_file = String::from("unknown");
    for (path, name) in &cands {
        if let Some(s) = inp.snippets.get(name)
            && s.content.is_ok()
        {
            ctx.line(&format!(
                "# > {}: {}",
                comment_safe(path),
                php::since(inp.now, s.mtime)
            ));
            files.push((path.clone(), s));
            if s.mtime > newest_time {
                newest_time = s.mtime;
                newest_file = path.clone();
            }
        }
    }
    ctx.print("\r\n");
    ctx.line(&format!(
        "# possible further files (from {}):",
        comment_safe(&dir)
    ));
    for (path, name) in &cands {
        match inp.snippets.get(name) {
            Some(s) => {
                if let Err(e) = &s.content {
                    ctx.line(&format!(
                        "# {}   (cannot read: {})",
                        comment_safe(path),
                        comment_safe(e)
                    ));
                }
            }
            None => ctx.line(&format!("# {}   ", comment_safe(path))),
        }
    }
    ctx.print("\r\n");
    let age = inp.now - newest_time;
    let grace = cfg.times.grace;

    // backups
    if cfg.backups_enabled() {
        if cfg.times.forcehttps && !inp.conn.https {
            ctx.notify("backups enabled but forcehttps is true and not using HTTPS");
        } else {
            let scfg = ctx.full_url(cfg.backup.scfg.as_deref().unwrap_or(""));
            ctx.print("\r\n");
            ctx.line(&format!("mod cmd UP0 scfg {scfg}"));
        }
    } else {
        ctx.print("\r\n");
        ctx.notify("Backups not enabled in config");
    }

    // grace period
    if newest_time != 0 {
        ctx.print(&format!(
            "\r\n# {}\r\n",
            comment_safe(&format!("newest script ({newest_file}) {age}s old"))
        ));
        if age < grace {
            return ctx.notify_die(&format!(
                "files being updated ({newest_file} {age}s old, waiting for at least {grace}s to expire)"
            ));
        }
    }

    // certificates
    ctx.print("\r\n");
    let decision = certs::decide(&certs::CertInput {
        config: cfg,
        state: ctx.ans.state(),
        device_type: &device_type,
        sn: Some(&sn),
        files: inp.certs,
        base_url: &ctx.base_url,
        now: inp.now,
        rdns: inp.resolved.rdns.clone(),
    });
    let (decision, cert_cmds) = match decision {
        certs::CertDecision::NeedRdns(ip) => return Err(Stop::Need(Need::Rdns(ip))),
        certs::CertDecision::Bailout(msg) => return ctx.bailout(&msg),
        certs::CertDecision::Continue(report) => (report, None),
        certs::CertDecision::SendAndStop {
            report,
            cmds,
            skipnext,
        } => {
            if skipnext {
                let now = inp.now;
                ctx.log("skipnext", Some(&now.to_string()), Target::Root);
                ctx.log("msg", Some("skipnext set"), Target::New("msgs", now));
            }
            (report, Some(cmds))
        }
    };
    if decision.cleaned_up {
        ctx.log_device("requestDownloaded", "false");
    }
    ctx.file_ops.extend(decision.file_ops.iter().cloned());
    if let Some(status) = decision.certstat() {
        let status = status.to_string();
        ctx.log_device("certstat", &status);
    }

    // queries
    ctx.do_queries(&classes, &envs)?;

    // restricted times
    if let Some(times) = ctx.restricted_times(nextphase.is_some()) {
        ctx.print(&format!("\r\n# Restricted times\r\n{times}\r\n"));
    }
    ctx.print("\r\n");

    // firmware and boot code
    let mut reset = false;
    if !cfg.master.info.is_empty() {
        firmware_section(ctx, &device_type, &classes, &envs, &mut reset)?;
    }
    if let Some(p) = arg("PROT") {
        ctx.log("build", Some(&p), Target::Sub("firmware"));
    }
    if let Some(b) = arg("BOOT") {
        ctx.log("build", Some(&b), Target::Sub("bootcode"));
    }
    if let Some(h) = arg("hwid") {
        ctx.log_device("hwid", &h);
    }
    if let Some(i) = arg("ip") {
        ctx.log_device("realip", &i);
    }
    if reset {
        ctx.line("# make sure remaining update scripts are executed with up-to-date firmware and update URL");
        ctx.line("iresetn");
    }

    for m in &decision.msgs {
        ctx.notify(&format!("certificates: {m} "));
    }
    if let Some(cmds) = &cert_cmds {
        for (cmt, c) in cmds {
            ctx.notify(&format!("certificates: {cmt}"));
            ctx.line_bytes(c);
        }
        let p = ctx.polling();
        ctx.set_state_arg("polling", p);
        let rwv = rw();
        if !ctx.rewrite_url(&rwv, false, &Value::Null) {
            ctx.line("config write");
            ctx.line("config activate");
        }
        ctx.line("iresetn");
        return ctx.notify_die("certificate cmds need to process - no further cmds");
    }

    ctx.line("# no certificate cmds required - processing normal updates");

    // HTTPS and trust
    if cfg.times.forcehttps {
        let https_port: Value = if inp.conn.https {
            Value::Str(inp.conn.local_port.to_string())
        } else {
            Value::Null
        };
        let need_port = Value::Str(
            cfg.times
                .httpsport
                .clone()
                .unwrap_or_else(|| "443".to_string()),
        );
        if !inp.conn.https || !loose_eq(&need_port, &https_port) {
            let p = ctx.polling();
            ctx.set_state_arg("polling", p.clone());
            let rwv = rw();
            ctx.rewrite_url(&rwv, true, &https_port);
            return ctx.notify_die(&format!(
                "forcehttps - currently {}using HTTPS on port {}, new polling: {}",
                if inp.conn.https { "" } else { "NOT " },
                https_port.to_php_string(),
                p.to_php_string()
            ));
        }
        if cfg.times.forcetrust {
            enforce_trust(ctx)?;
        }
    }

    ctx.print("\r\n");
    match &nextphase {
        Some(np) => {
            ctx.set_state_arg("phase", Value::Str(np.clone()));
            let p = ctx.polling();
            ctx.set_state_arg("polling", p);
        }
        None => ctx.set_state_arg("polling", Value::Int(0)),
    }

    // the administrator's snippet hook
    let hook = if inp.hook_configured {
        match &inp.resolved.hook {
            Some(h) => h.clone(),
            None => {
                let snapshot = ctx
                    .ans
                    .state()
                    .cloned()
                    .unwrap_or_else(|| state::new_state(&sn));
                return Err(Stop::Need(Need::Hook(Box::new(snapshot))));
            }
        }
    } else {
        HookAnswer {
            standard: true,
            ..Default::default()
        }
    };
    if let Some(e) = &hook.error {
        ctx.comment(&format!(
            "snippet hook failed: {e} - standard snippets only"
        ));
    }

    let standard = hook.standard;
    let mut deliver = true;
    let mut sig = None;
    if nextphase.is_none() && cfg.times.check {
        let used: Vec<&crate::snippets::Snippet> = if standard {
            files.iter().map(|(_, s)| *s).collect()
        } else {
            Vec::new()
        };
        let s = files_signature(&used, &hook.pre, &hook.post);
        if arg("CHECK").as_deref() == Some(s.as_str()) {
            deliver = false;
        }
        sig = Some(s);
    }

    let rwv = rw();
    if deliver {
        for l in &hook.pre {
            ctx.line_bytes(l);
        }
        if standard {
            for (path, s) in &files {
                ctx.notify(&format!("    {path}"));
                ctx.print(&format!(
                    "# {{ \r\n# begin script '{}' \r\n",
                    comment_safe(path)
                ));
                if let Ok(content) = &s.content {
                    ctx.line_bytes(content);
                    let now = inp.now.to_string();
                    let mtime = s.mtime.to_string();
                    ctx.log(
                        "delivered",
                        Some(&now),
                        Target::Keyed("config", "filename", path),
                    );
                    ctx.log(
                        "version",
                        Some(&mtime),
                        Target::Keyed("config", "filename", path),
                    );
                }
                ctx.print(&format!(
                    "# end script '{}'\r\n# }}\r\n",
                    comment_safe(path)
                ));
            }
        } else {
            ctx.line("# standard snippets suppressed by custom snippet");
        }
        for l in &hook.post {
            ctx.line_bytes(l);
        }
        ctx.print("\r\n# end of all scripts \r\n");
        if !ctx.rewrite_url(&rwv, false, &Value::Null) {
            ctx.line("config write");
            ctx.line("config activate");
        }
        if let Some(sig) = &sig {
            ctx.line("# set CHECK var");
            ctx.line(&format!("mod cmd UP1 check ser {sig}"));
        }
        ctx.line("# trigger reset if required");
        ctx.line("iresetn");
    } else {
        ctx.line(&format!(
            "# not delivering any snippets - CHECK serial {} is good",
            sig.as_deref().unwrap_or("")
        ));
        ctx.rewrite_url(&rwv, false, &Value::Null);
    }
    ctx.finish();
    Ok(())
}

fn firmware_section(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    classes: &[String],
    envs: &[String],
    reset: &mut bool,
) -> Step {
    let inp = ctx.inp;
    let cfg = ctx.cfg;
    let mut info = None;
    if cfg.master.info != "none" {
        let Some(res) = inp.resolved.master.as_ref() else {
            return Err(Stop::Need(Need::Master));
        };
        for n in &res.notes {
            ctx.comment(n);
        }
        match &res.info {
            Ok(i) => info = Some(i.clone()),
            Err(e) => return ctx.bailout(&format!("cannot get cached PBX info: {e}")),
        }
    }
    let firmware = match cfg.master.firmware.as_str() {
        "master" => {
            let Some(i) = &info else {
                return ctx.bailout("Cannot use firmware='master' with no info available");
            };
            ctx.line("# firmware derived from master device");
            Some(i.prot.clone())
        }
        "none" => {
            ctx.line("# firmware update disabled");
            None
        }
        v if php::is_numeric(v) => {
            ctx.comment(&format!("firmware fixed to {v}"));
            Some(v.to_string())
        }
        v => {
            return ctx.bailout(&format!(
                "Invalid value '{v}' for firmware attribute in <master> tag"
            ));
        }
    };
    let bootcode = match cfg.master.bootcode.as_str() {
        "master" => {
            let Some(i) = &info else {
                return ctx.bailout("Cannot use bootcode='master' with no info available");
            };
            ctx.line("# bootcode derived from master device");
            Some(i.boot.clone())
        }
        "firmware" => {
            ctx.line("# bootcode derived from firmware");
            firmware.clone()
        }
        "none" => {
            ctx.line("# bootcode update disabled");
            None
        }
        v if php::is_numeric(v) => {
            ctx.comment(&format!("bootcode fixed to {v}"));
            Some(v.to_string())
        }
        v => {
            return ctx.bailout(&format!(
                "Invalid value '{v}' for 'bootcode' attribute in <master> tag"
            ));
        }
    };
    ctx.comment(&format!(
        "nofirm: {}. This device type={device_type}",
        cfg.nofirmdev.join(", ")
    ));
    ctx.comment(&format!("noboot: {}", cfg.nobootdev.join(", ")));
    let exclude: Vec<String> = cfg
        .master
        .applies
        .iter()
        .filter(|a| !a.matches(classes, envs))
        .map(|a| format!("{}{}", a.value, if a.env { " (env)" } else { " (class)" }))
        .collect();
    if !exclude.is_empty() {
        ctx.comment(&format!(
            "no firmware/bootcode update as device does not fit <applies>: {}",
            exclude.join(", ")
        ));
        return Ok(());
    }
    let ltype = device_type.to_lowercase();
    let firmware = firmware.filter(|_| !cfg.nofirmdev.contains(&ltype));
    let bootcode = bootcode.filter(|_| !cfg.nobootdev.contains(&ltype));
    for (kind, build) in [(Kind::Firmware, firmware), (Kind::Bootcode, bootcode)] {
        update_if_needed(ctx, device_type, kind, build.as_deref(), reset);
    }
    Ok(())
}

/// Firmware or boot code, with the PHP server's words and state places for each.
#[derive(Clone, Copy)]
enum Kind {
    Firmware,
    Bootcode,
}

impl Kind {
    /// Query argument with the device's current build, `fwstorage` file type, and name.
    fn parts(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Kind::Firmware => ("PROT", "prot", "firmware", "firmware"),
            Kind::Bootcode => ("BOOT", "boot", "boot code", "bootcode"),
        }
    }
}

/// Sends the `prot`/`boot` command when the device's build differs from the required one
/// (`None`: no update for this device).
fn update_if_needed(
    ctx: &mut Ctx<'_>,
    device_type: &str,
    kind: Kind,
    build: Option<&str>,
    reset: &mut bool,
) {
    let (arg, filetype, words, element) = kind.parts();
    let Some(build) = build else {
        ctx.comment(&format!(
            "no {element} update for device of type '{device_type}'"
        ));
        return;
    };
    let current = ctx.inp.args.get(arg).map(|v| v.into_owned());
    if current
        .as_ref()
        .is_some_and(|c| loose_eq(&Value::Str(c.clone()), &Value::Str(build.to_string())))
    {
        ctx.comment(&format!("{words} {build} good"));
        return;
    }
    ctx.notify(&format!(
        "current {words} ({}) does not match required {words} ({build})",
        current.as_deref().unwrap_or("unknown")
    ));
    let mut line = format!("mod cmd UP0 {filetype} ").into_bytes();
    line.extend(firmware::storage_url(
        ctx.cfg,
        &ctx.base_url,
        build,
        device_type,
        filetype,
    ));
    line.extend(format!(" ser {build}").as_bytes());
    ctx.line_bytes(&line);
    let now = ctx.inp.now.to_string();
    match kind {
        Kind::Firmware => ctx.log("requested", Some(build), Target::Sub(element)),
        // PHP writes this one onto the state's root element
        Kind::Bootcode => ctx.log("requested", Some(&format!("{build}bootcode")), Target::Root),
    }
    ctx.log("requested-at", Some(&now), Target::Sub(element));
    *reset = true;
}

/// Early device certificates carry a model suffix in their CN (`IP232s-…`); PHP maps them.
const BROKEN_CN: [(&str, &str); 4] = [
    ("IP222s", "IP222"),
    ("IP232s", "IP232"),
    ("IP240a", "IP240"),
    ("IP200a", "IP200"),
];

/// `times/@forcetrust`: snippets only for a device that proved its identity with its
/// client certificate.
fn enforce_trust(ctx: &mut Ctx<'_>) -> Step {
    let inp = ctx.inp;
    let cfg = ctx.cfg;
    let Some(cc) = cfg.customcerts.as_ref().filter(|c| c.ca_name_raw.is_some()) else {
        return ctx.bailout(
            "certificates: customcerts/@CAname must be defined for certificate trust enforcement",
        );
    };
    let Some(cert) = inp.conn.client_cert.as_ref() else {
        return ctx.notify_die(
            "cannot verify CN with HTTPS: SSL_CLIENT_S_DN_CN not present - fix web server configuration or use MTLS-enabled port!",
        );
    };
    let mut shown = cert.cn.clone();
    let mut parts: Vec<&str> = cert.cn.split('-').collect();
    if let Some((_, fix)) = BROKEN_CN.iter().find(|(b, _)| parts.first() == Some(b)) {
        parts[0] = fix;
        shown = parts.join("-");
    }
    let required = inp
        .args
        .get("hwid")
        .map(|v| v.into_owned())
        .unwrap_or_default();
    let alternative = inp
        .args
        .get("sn")
        .map(|v| v.replace('-', ""))
        .unwrap_or_default();
    if shown != required
        && shown != alternative
        && cc.ca_wildcard.as_deref() != Some(shown.as_str())
    {
        return ctx.notify_die(&format!(
            "Device claims to be '{required} / {alternative}' but identifies as '{shown}' by TLS"
        ));
    }
    if !cc.ca_names.contains(&cert.issuer_cn) {
        return ctx.notify_die(&format!(
            "TLS certificate issuer ({}) not trusted for TLS certificate ({shown}) -- SUCCESS",
            cert.issuer_cn
        ));
    }
    ctx.notify(&format!(
        "good certificate(CN='{shown}', ISSUER='{}')",
        cert.issuer_cn
    ));
    Ok(())
}

#[cfg(test)]
mod tests;
