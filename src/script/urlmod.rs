//! Rewriting the device's Command File URL (PHP's `rewriteUrl`): the state arguments for the
//! next poll (`phase`, `polling`), the arguments the device did not send (as `stdargs`
//! macros), fast polling on and off, and the switch to HTTPS with `times/@httpsurlmod`
//! (a PCRE-like `!pattern!replacement!flags` read the way PHP's `preg_replace` reads it).

use super::ctx::Ctx;
use crate::php::{self, Value, loose_eq};
use crate::state::Target;
use regex::Regex;

/// What `rewriteUrl` needs to know about the script's progress.
pub(super) struct Rewrite {
    /// The arguments among `type`, `sn`, `hwid`, `ip` the device did not send.
    pub missing: Vec<String>,
    /// `?polling=` as the device sent it.
    pub polling: Value,
    pub phase: Option<String>,
    pub nextphase: Option<String>,
}

impl Ctx<'_> {
    /// PHP's `rewriteUrl`: reconfigures the device's Command File URL (and fast polling) when
    /// state arguments changed, arguments are missing, or HTTPS must be used.
    pub(super) fn rewrite_url(
        &mut self,
        rw: &Rewrite,
        usehttps: bool,
        usehttpsport: &Value,
    ) -> bool {
        self.print("\r\n");
        if !(self.statechanged || !rw.missing.is_empty() || usehttps) {
            return false;
        }
        if self.statechanged {
            self.fast_polling(&rw.polling);
        }
        let newurl = self.new_url(rw, usehttps, usehttpsport);
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

    /// Turns fast polling on or off when the next poll's `polling` differs from this one's.
    fn fast_polling(&mut self, polling: &Value) {
        let np = self.state_arg("polling");
        if np.is_null() || loose_eq(polling, &np) {
            return;
        }
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

    /// The new Command File URL: state arguments, missing ones, then the device's own, with
    /// `stdargs` macros; switched to HTTPS when that is required.
    fn new_url(&mut self, rw: &Rewrite, usehttps: bool, usehttpsport: &Value) -> String {
        let mut args: Vec<(String, Vec<u8>)> = Vec::new();
        let has = |args: &Vec<(String, Vec<u8>)>, k: &str| args.iter().any(|(x, _)| x == k);
        if self.statechanged {
            for a in &self.stateargs {
                args.push((a.key.clone(), a.value.to_php_string().into_bytes()));
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
        newurl
    }
}

/// Replaces scheme and port of a URL: `https://host[:port]rest`.
pub(super) fn switch_to_https(url: &str, port: &str) -> String {
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
pub(super) fn php_replacement(r: &str) -> String {
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
