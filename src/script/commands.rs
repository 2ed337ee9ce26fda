//! The query lines (`mod cmd UP0 scfg … ser nop /always CMD`) for the device's classes and
//! environments, and the restricted update times (`mod cmd UP1 times /allow … /initial …`).

use super::ctx::{Ctx, Step};
use crate::firmware::FullUrl;
use crate::php::RawUrlEncoded;

impl Ctx<'_> {
    /// Sends the queries that apply to the device; `false` when none does.
    pub(super) fn do_queries(&mut self, classes: &[String], envs: &[String]) -> Step<bool> {
        let cfg = self.cfg;
        // (id, command); a later query with the same id replaces the command in its place
        let mut queries: Vec<(&str, &str)> = Vec::new();
        for q in &cfg.queries.list {
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
                match queries.iter_mut().find(|(id, _)| *id == q.id) {
                    Some(slot) => slot.1 = cmd,
                    None => queries.push((&q.id, cmd)),
                }
            }
        }
        if queries.is_empty() {
            let classes = classes.join("+");
            self.comment_fmt(format_args!(
                "no queries defined for any of callers classes: {classes}"
            ));
            return Ok(false);
        }
        let url = FullUrl(self.base_url, &cfg.queries.scfg);
        for (id, cmd) in queries {
            self.comment_fmt(format_args!("query '{id}'"));
            let (id, cmd) = (RawUrlEncoded(id.as_bytes()), RawUrlEncoded(cmd.as_bytes()));
            self.line_fmt(format_args!(
                "mod cmd UP0 scfg {url}&id={id} ser nop /always {cmd}"
            ));
        }
        Ok(true)
    }

    /// The restricted times command, if any (`/allow` is skipped while staging with
    /// `times/@forcestaging`).
    pub(super) fn restricted_times(&mut self, staging: bool) -> Option<String> {
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
