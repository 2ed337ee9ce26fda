//! The query lines (`mod cmd UP0 scfg … ser nop /always CMD`) for the device's classes and
//! environments, and the restricted update times (`mod cmd UP1 times /allow … /initial …`).

use super::ctx::{Ctx, Step};
use crate::answer::comment_safe;
use crate::php;

/// One query to send: its id and its command line.
struct QueryLine {
    id: String,
    line: String,
}

impl Ctx<'_> {
    /// Sends the queries that apply to the device; `false` when none does.
    pub(super) fn do_queries(&mut self, classes: &[String], envs: &[String]) -> Step<bool> {
        let mut queries: Vec<QueryLine> = Vec::new();
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
                match queries.iter_mut().find(|s| s.id == q.id) {
                    Some(slot) => slot.line = line,
                    None => queries.push(QueryLine {
                        id: q.id.clone(),
                        line,
                    }),
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
        for q in queries {
            self.comment(&format!("query '{}'", q.id));
            self.line(&q.line);
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
