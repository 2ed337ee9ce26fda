//! The message log of a device state: reading it, and the one place it is shortened
//! ([`trim_log`]: PHP's trimming by time, `cleanupDeviceStates`, then the `max-msgs` cap), over
//! the state's compact [`MsgLog`].

use super::DeviceState;
use super::msglog::MsgLog;
use crate::xml::Element;

/// Name of the message log entries (kept compact in [`DeviceState::log`]).
pub const MSGS: &str = "msgs";

/// The time of a log entry as PHP compares it.
pub(super) fn entry_time(m: &Element) -> i64 {
    let t = m.attr("time").unwrap_or("0");
    t.parse::<i64>().unwrap_or_else(|_| crate::php::intval(t))
}

/// The message log of a state, oldest first: `(time, msg)`.
pub fn msgs(state: &DeviceState) -> impl Iterator<Item = (i64, String)> + '_ {
    state.log.iter().map(|e| (e.time, e.msg()))
}

/// For each message log entry, oldest first, whether it is a ruler (an empty message, the
/// start of a poll's block).
pub fn msg_rulers(state: &DeviceState) -> impl Iterator<Item = bool> + '_ {
    state.log.marks().map(|(_, ruler)| ruler)
}

/// What a message log keeps: entries younger than `keep_secs` (`status/@logkeep`), and at
/// most `max` entries (`<server max-msgs>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgRules {
    pub keep_secs: i64,
    pub max: usize,
}

impl Default for MsgRules {
    /// The configuration's defaults (`logkeep` 90 minutes, `max-msgs` 200).
    fn default() -> Self {
        MsgRules {
            keep_secs: 90 * 60,
            max: 200,
        }
    }
}

impl MsgRules {
    /// The rules of the configuration.
    pub fn of(cfg: &crate::config::Config) -> MsgRules {
        MsgRules {
            keep_secs: cfg.status.logkeep,
            max: cfg.server.max_msgs,
        }
    }
}

/// Shortens the message log at the end of a request: entries older than `keep_secs` are
/// dropped, but never the last poll's block (everything from the last empty "ruler" message
/// on); then the oldest beyond `max`, the last poll's block too.
pub fn trim_log(log: &mut MsgLog, now: i64, rules: MsgRules) {
    trim_by_time(log, now - rules.keep_secs);
    log.drop_front(log.len().saturating_sub(rules.max));
}

/// PHP's `cleanupDeviceStates`: drops the entries older than `very_old` before the last poll's
/// block.
fn trim_by_time(log: &mut MsgLog, very_old: i64) {
    if log.time_floor() >= very_old {
        // no entry is old: only the last ruler matters (below)
        let from_end = log.marks().rev().position(|(_, ruler)| ruler);
        if from_end.is_some_and(|k| k + 1 < log.len()) {
            log.drop_front(1);
        }
        return;
    }
    // entry positions: the last ruler, the last old entry (not a ruler)
    let (mut last_ruler, mut last_old) = (None, None);
    let newest = log.len().wrapping_sub(1);
    for (k, (time, ruler)) in log.marks().rev().enumerate() {
        let i = newest - k;
        if ruler {
            last_ruler = last_ruler.or(Some(i));
        } else if last_old.is_none() && time < very_old {
            last_old = Some(i);
        }
        if last_ruler.is_some() && last_old.is_some() {
            break;
        }
    }
    match (last_ruler, last_old) {
        // everything up to the last old entry, but not the last poll's block
        (Some(r), Some(o)) => log.drop_front((o + 1).min(r)),
        // PHP drops the oldest entry once a newer poll started; keep the log bounded likewise
        (Some(r), None) if r != 0 => log.drop_front(1),
        _ => {}
    }
    log.refresh_floor();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Target, log, new_state};

    fn msg(s: &mut DeviceState, t: i64, m: &str) {
        log(s, "msg", Some(m), Target::New("msgs", t));
    }

    fn keep(keep_secs: i64) -> MsgRules {
        MsgRules {
            keep_secs,
            max: usize::MAX,
        }
    }

    fn listed(s: &DeviceState) -> Vec<String> {
        msgs(s).map(|(t, m)| format!("{t}:{m}")).collect()
    }

    #[test]
    fn trims_old_messages_but_keeps_the_last_poll() {
        let mut s = new_state("x");
        msg(&mut s, 100, "");
        msg(&mut s, 100, "old a");
        msg(&mut s, 100, "old b");
        msg(&mut s, 5000, "");
        msg(&mut s, 5000, "new");
        trim_log(&mut s.log, 5000, keep(1800));
        assert_eq!(listed(&s), ["5000:", "5000:new"]);
        // without old entries, the oldest goes once a newer poll started
        msg(&mut s, 5001, "");
        trim_log(&mut s.log, 5001, keep(1800));
        assert_eq!(listed(&s), ["5000:new", "5001:"]);
    }

    #[test]
    fn the_cap_drops_the_oldest_after_the_time_rule() {
        let mut s = new_state("x");
        for t in [100, 5000, 5000, 5000] {
            msg(&mut s, t, if t == 100 { "old" } else { "" });
        }
        msg(&mut s, 5000, "new");
        // the old entry goes by time, then the oldest beyond three, the last block too
        let rules = MsgRules {
            keep_secs: 1800,
            max: 3,
        };
        trim_log(&mut s.log, 5000, rules);
        assert_eq!(listed(&s), ["5000:", "5000:", "5000:new"]);
        trim_log(&mut s.log, 5000, MsgRules { max: 1, ..rules });
        assert_eq!(listed(&s), ["5000:new"]);
        trim_log(&mut s.log, 5000, MsgRules { max: 0, ..rules });
        assert!(s.log.is_empty());
    }

    #[test]
    fn trimming_with_a_known_floor_drops_what_a_full_look_drops() {
        let mut seed = 7u64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for case in 0..300 {
            let mut s = new_state("x");
            let mut t = 1000;
            for _ in 0..next(40) {
                t += next(3) as i64;
                let m = if next(4) == 0 { "" } else { "m" };
                msg(&mut s, t, m);
            }
            let now = t + next(20) as i64;
            let rules = MsgRules {
                keep_secs: next(30) as i64,
                max: 1 + next(40) as usize,
            };
            let mut known = s.clone();
            known.log.refresh_floor();
            for _ in 0..3 {
                trim_log(&mut s.log, now, rules);
                trim_log(&mut known.log, now, rules);
                assert_eq!(listed(&s), listed(&known), "case {case}");
            }
        }
    }

    /// A state file as PHP writes it: log entries between other children.
    const INTERLEAVED: &str = concat!(
        r#"<state seen="9"><device sn="x"/><msgs time="1" msg=""/><msgs time="1" msg="a &amp; b"/>"#,
        r#"<firmware build="1"/><msgs time="2" msg="c"/><bootcode build="2"/>"#,
        r#"<msgs time="3" msg=""/></state>"#
    );

    #[test]
    fn a_state_read_keeps_its_log_compact_and_writes_the_same_bytes() {
        let mut s = DeviceState::parse_str(INTERLEAVED).expect("parse");
        assert_eq!(s.root.children.len(), 3);
        assert_eq!(s.log.len(), 4);
        assert_eq!(s.to_xml(), INTERLEAVED);
        assert_eq!(s.document_len().0, s.to_document().len());
        assert_eq!(listed(&s), ["1:", "1:a & b", "2:c", "3:"]);
        // the element tree alone has no log
        assert!(!s.root.to_xml().contains("msgs"));
        // new entries and children go after everything there
        log(&mut s, "build", Some("5"), Target::Sub("extra"));
        msg(&mut s, 4, "d");
        assert!(s.to_xml().ends_with(
            r#"<msgs time="3" msg=""/><extra build="5"/><msgs time="4" msg="d"/></state>"#
        ));
        // the log turned back into children writes the same document
        let expanded = s.expanded().into_owned();
        assert_eq!(expanded.to_xml(), s.to_xml());
        assert_eq!(DeviceState::from_root(expanded), s);
        // trimming drops the oldest entries wherever they stood
        trim_log(&mut s.log, 1000, keep(10));
        assert_eq!(
            s.to_xml(),
            concat!(
                r#"<state seen="9"><device sn="x"/><firmware build="1"/><bootcode build="2"/>"#,
                r#"<msgs time="3" msg=""/><extra build="5"/><msgs time="4" msg="d"/></state>"#
            )
        );
    }

    #[test]
    fn a_state_without_children_but_a_log_is_written_open() {
        let s = DeviceState::parse_str(r#"<state><msgs time="1" msg="a"/></state>"#).expect("xml");
        assert!(s.root.children.is_empty());
        assert_eq!(s.to_xml(), r#"<state><msgs time="1" msg="a"/></state>"#);
        assert_eq!(s.document_len().0, s.to_document().len());
        assert_eq!(DeviceState::default().to_xml(), "<state/>");
    }
}
