//! The message log of a device state: PHP's trimming rules (`cleanupDeviceStates`) and the
//! `max-msgs` cap, over the root's compact [`crate::xml::log::Log`]; entries still written
//! as child elements (a state read from a file) are moved into it first.

use crate::xml::Element;

/// Name of the message log entries (kept compact in [`Element::log`]).
pub const MSGS: &str = "msgs";

/// The time of a log entry as PHP compares it.
fn entry_time(m: &Element) -> i64 {
    let t = m.attr("time").unwrap_or("0");
    t.parse::<i64>().unwrap_or_else(|_| crate::php::intval(t))
}

/// Moves message log entries that are still child elements (a state read from a file, or
/// built by hand) into the compact log, each at its place among the other children.
pub fn compact_log(state: &mut Element) {
    if !state.children.iter().any(|c| c.name == MSGS) {
        return;
    }
    let children = std::mem::take(&mut state.children);
    for c in children.iter() {
        if c.name == MSGS {
            state.log.push(c, state.children.len(), entry_time(c));
        } else {
            state.children.push(c.clone());
        }
    }
}

/// The message log of a state, oldest first: `(time, msg)`.
pub fn msgs(state: &Element) -> impl Iterator<Item = (i64, String)> {
    let loose = state.children_named(MSGS);
    let loose = loose.map(|m| (entry_time(m), m.attr("msg").unwrap_or("").to_string()));
    state.log.iter().map(|e| (e.time, e.msg())).chain(loose)
}

/// For each message log entry, oldest first, whether it is a ruler (an empty message, the
/// start of a poll's block).
pub fn msg_rulers(state: &Element) -> impl Iterator<Item = bool> {
    let loose = state.children_named(MSGS);
    let loose = loose.map(|m| m.attr("msg").unwrap_or("").is_empty());
    state.log.marks().map(|(_, ruler)| ruler).chain(loose)
}

/// Trims the message log: entries older than `logkeep` seconds are dropped, but never the
/// last poll's block (everything from the last empty "ruler" message on).
pub fn trim_msgs(state: &mut Element, now: i64, logkeep: i64) {
    compact_log(state);
    let very_old = now - logkeep;
    if state.log.time_floor() >= very_old {
        // no entry is old: only the last ruler matters (below)
        let from_end = state.log.marks().rev().position(|(_, ruler)| ruler);
        if from_end.is_some_and(|k| k + 1 < state.log.len()) {
            state.log.drop_front(1);
        }
        return;
    }
    // entry positions: the last ruler, the last old entry (not a ruler)
    let (mut last_ruler, mut last_old) = (None, None);
    let newest = state.log.len().wrapping_sub(1);
    for (k, (time, ruler)) in state.log.marks().rev().enumerate() {
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
        (Some(r), Some(o)) => state.log.drop_front((o + 1).min(r)),
        // PHP drops the oldest entry once a newer poll started; keep the log bounded likewise
        (Some(r), None) if r != 0 => state.log.drop_front(1),
        _ => {}
    }
    state.log.refresh_floor();
}

/// Drops the oldest message log entries beyond `max`.
pub fn cap_msgs(state: &mut Element, max: usize) {
    compact_log(state);
    state.log.drop_front(state.log.len().saturating_sub(max));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Target, log, new_state};

    fn msg(s: &mut Element, t: i64, m: &str) {
        log(s, "msg", Some(m), Target::New("msgs", t));
    }

    #[test]
    fn trims_old_messages_but_keeps_the_last_poll() {
        let mut s = new_state("x");
        msg(&mut s, 100, "");
        msg(&mut s, 100, "old a");
        msg(&mut s, 100, "old b");
        msg(&mut s, 5000, "");
        msg(&mut s, 5000, "new");
        trim_msgs(&mut s, 5000, 1800);
        let left: Vec<_> = msgs(&s).map(|(_, m)| m.to_string()).collect();
        assert_eq!(left, vec!["", "new"]);
        // without old entries, the oldest goes once a newer poll started
        msg(&mut s, 5001, "");
        trim_msgs(&mut s, 5001, 1800);
        let left: Vec<_> = msgs(&s).map(|(t, m)| format!("{t}:{m}")).collect();
        assert_eq!(left, vec!["5000:new", "5001:"]);
        cap_msgs(&mut s, 1);
        assert_eq!(msgs(&s).count(), 1);
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
            let logkeep = next(30) as i64;
            let mut known = s.clone();
            known.log.refresh_floor();
            for _ in 0..3 {
                trim_msgs(&mut s, now, logkeep);
                trim_msgs(&mut known, now, logkeep);
                let a: Vec<_> = msgs(&s).map(|(t, m)| format!("{t}:{m}")).collect();
                let b: Vec<_> = msgs(&known).map(|(t, m)| format!("{t}:{m}")).collect();
                assert_eq!(a, b, "case {case}");
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
        let mut s = Element::parse_str(INTERLEAVED).expect("parse");
        compact_log(&mut s);
        assert_eq!(s.children.len(), 3);
        assert_eq!(s.log.len(), 4);
        assert_eq!(s.to_xml(), INTERLEAVED);
        assert_eq!(s.document_len().0, s.to_document().len());
        let read: Vec<_> = msgs(&s).map(|(t, m)| format!("{t}:{m}")).collect();
        assert_eq!(read, ["1:", "1:a & b", "2:c", "3:"]);
        // new entries and children go after everything there
        log(&mut s, "build", Some("5"), Target::Sub("extra"));
        msg(&mut s, 4, "d");
        assert!(s.to_xml().ends_with(
            r#"<msgs time="3" msg=""/><extra build="5"/><msgs time="4" msg="d"/></state>"#
        ));
        // the log turned back into children writes the same document
        let expanded = s.expanded().into_owned();
        assert!(expanded.log.is_empty());
        assert_eq!(expanded.to_xml(), s.to_xml());
        // trimming drops the oldest entries wherever they stood
        trim_msgs(&mut s, 1000, 10);
        assert_eq!(
            s.to_xml(),
            concat!(
                r#"<state seen="9"><device sn="x"/><firmware build="1"/><bootcode build="2"/>"#,
                r#"<msgs time="3" msg=""/><extra build="5"/><msgs time="4" msg="d"/></state>"#
            )
        );
    }
}
