//! Device state: the `status/SN.xml` file of every device.
//!
//! The file format is the PHP server's: a `<state seen="…">` root with a `<device …/>`
//! element (serial, type, classes, addresses, phase, environments, certificate status …),
//! `<firmware>`/`<bootcode>` elements, one `<config filename=…>` per delivered snippet, the
//! `<queries>` the device reported, and the `<msgs>` message log. In memory a state is a
//! [`DeviceState`] (`doc`): the element tree without the log, and the log kept compact beside
//! it ([`msglog`], filled when a file is read): a poll copies, trims and writes it without
//! touching each entry. [`log`] applies PHP's `logDeviceState` rules to a state;
//! [`trim_log`] is the one place the log is shortened (by time as PHP, then by count).
//!
//! The core is this file (PHP's logging rules, [`Loaded`]), `doc`, `msglog`, `msgs`, `view`
//! and `fields`: no I/O. The shell is [`StateStore`] (`store`, with `index`, `cache`, `writer`, `cleanup`),
//! which owns the files: it keeps a compact [`index`] of all devices (not their
//! states), the parsed states of recently used devices in a cache bounded in bytes
//! ([`cache`]), hands new states to a write-behind [`writer`] (atomic files, group commit,
//! read-your-writes), caps the message log (`max-msgs`) and the file size (`max-state`),
//! serialises all requests of one device with a per-device lock, and purges the files of
//! devices not seen for `status/@expire` seconds, at most hourly. The status directory
//! belongs to the server: a file changed behind its back is seen after a restart. The
//! history of a device's build changes, which the state file has no room for, is kept beside
//! it ([`builds`]: `build-history/SN.jsonl`, bounded, removed with the state).

mod cleanup;
mod doc;
pub mod msglog;
mod msgs;
pub mod view;

pub use doc::DeviceState;
pub use msgs::{MSGS, MsgRules, msg_rulers, msgs, trim_log};

use crate::xml::Element;

pub mod builds;
pub mod cache;
pub mod fields;
pub mod index;
mod store;
pub mod writer;

pub use store::{Limits, SaveError, StateStore, read_all};

use std::sync::Arc;

/// Where [`log`] writes an attribute.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The `<state>` root element.
    Root,
    /// The first child of that name (created when missing).
    Sub(&'a str),
    /// A new child of that name with a `time` attribute (message log entries).
    New(&'a str, i64),
    /// The child of that name whose attribute `key` has value `value` (created when missing).
    Keyed(&'a str, &'a str, &'a str),
}

/// PHP's two `logDeviceState` calls for a delivered snippet: `delivered`, then `version`
/// of the `<config filename="path">` child (created when missing), with one search.
pub fn log_delivered(state: &mut Element, path: &str, delivered: &str, version: &str) {
    let i = keyed_child(state, "config", "filename", path);
    let c = &state.children[i];
    if c.attr("delivered") == Some(delivered) && c.attr("version") == Some(version) {
        // shared with the previous state, it stays shared (no copy)
        return;
    }
    let c = &mut state.children[i];
    c.set_attr("delivered", delivered);
    c.set_attr("version", version);
}

/// Where the first child `name` whose attribute `key` is `keyval` is; appended with only
/// that attribute when there is none.
fn keyed_child(state: &mut Element, name: &str, key: &str, keyval: &str) -> usize {
    let found = state
        .children
        .iter()
        .position(|c| c.name == name && c.attr(key) == Some(keyval));
    found.unwrap_or_else(|| {
        let mut e = Element::new(name);
        e.set_attr(key, keyval);
        state.children.push(e);
        state.children.len() - 1
    })
}

/// PHP's `logDeviceState`: sets (or, with `None`, removes) an attribute.
pub fn log(ds: &mut DeviceState, attr: &str, value: Option<&str>, target: Target<'_>) {
    let DeviceState { root: state, log } = ds;
    let el: &mut Element = match target {
        Target::Root if state.attr(attr) == value => return,
        Target::Root => state,
        Target::Sub(name) => match state.children.iter().position(|c| c.name == name) {
            // a child shared with the previous state stays shared (no copy)
            Some(i) if state.children[i].attr(attr) == value => return,
            Some(i) => &mut state.children[i],
            None if value.is_none() => return,
            None => state.child_or_insert(name),
        },
        Target::New(MSGS, time) if attr == "msg" && value.is_some() => {
            log.push_msg(state.children.len(), time, value.unwrap_or_default());
            return;
        }
        Target::New(name, time) => {
            let mut e = Element::new(name);
            e.set_attr("time", time.to_string());
            if let Some(v) = value {
                e.set_attr(attr, v);
            }
            if name == MSGS {
                log.push(&e, state.children.len(), time);
            } else {
                state.children.push(e);
            }
            return;
        }
        Target::Keyed(name, key, keyval) => {
            // a missing child is created even for a removal (as before)
            let i = keyed_child(state, name, key, keyval);
            if state.children[i].attr(attr) == value {
                return;
            }
            &mut state.children[i]
        }
    };
    match value {
        Some(v) => el.set_attr(attr, v),
        None => el.remove_attr(attr),
    }
}

/// A fresh state for serial number `sn`.
pub fn new_state(sn: &str) -> DeviceState {
    let mut s = DeviceState::default();
    s.root.child_or_insert("device").set_attr("sn", sn);
    s
}

/// What is on disk for one device.
#[derive(Debug, Clone)]
pub enum Loaded {
    Missing,
    Ok(Arc<DeviceState>),
    /// The file exists but cannot be read as a state: the error and the raw content.
    Corrupt {
        error: String,
        raw: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logging_a_value_already_there_leaves_the_shared_child_alone() {
        let type_and_delivery = |s: &mut DeviceState| {
            log(s, "type", Some("IP232"), Target::Sub("device"));
            let config = Target::Keyed("config", "filename", "x");
            log(s, "delivered", Some("5"), config);
        };
        let mut a = new_state("00-90");
        type_and_delivery(&mut a);
        let mut b = a.clone();
        // the same values again
        type_and_delivery(&mut b);
        log(&mut b, "gone", None, Target::Sub("device"));
        assert!(
            std::ptr::eq(&a.root.children[0], &b.root.children[0]),
            "device not copied"
        );
        assert!(
            std::ptr::eq(&a.root.children[1], &b.root.children[1]),
            "config not copied"
        );
        log(
            &mut b,
            "delivered",
            Some("6"),
            Target::Keyed("config", "filename", "x"),
        );
        assert!(!std::ptr::eq(&a.root.children[1], &b.root.children[1]));
        assert_eq!(a.root.children[1].attr("delivered"), Some("5"));
        assert_eq!(b.root.children[1].attr("delivered"), Some("6"));
        // an empty keyed child is still created for a removal, as before
        log(
            &mut b,
            "delivered",
            None,
            Target::Keyed("config", "filename", "y"),
        );
        assert_eq!(b.root.children.len(), 3);
    }

    #[test]
    fn a_delivery_is_logged_as_the_two_php_calls_are() {
        let two_calls = |s: &mut DeviceState, path: &str, d: &str, v: &str| {
            log(
                s,
                "delivered",
                Some(d),
                Target::Keyed("config", "filename", path),
            );
            log(
                s,
                "version",
                Some(v),
                Target::Keyed("config", "filename", path),
            );
        };
        let xml = r#"<state><device sn="1"/><config filename="a" version="1" delivered="2"/><config filename="b" delivered="3"/><config filename="a" delivered="9"/></state>"#;
        let start = DeviceState::parse(xml.as_bytes()).expect("xml");
        for (path, d, v) in [
            ("a", "2", "1"),
            ("a", "5", "1"),
            ("b", "3", "4"),
            ("c", "6", "7"),
        ] {
            let (mut one, mut two) = (start.clone(), start.clone());
            log_delivered(&mut one.root, path, d, v);
            two_calls(&mut two, path, d, v);
            assert_eq!(one.to_xml(), two.to_xml(), "{path} {d} {v}");
        }
        let mut same = start.clone();
        log_delivered(&mut same.root, "a", "2", "1");
        assert!(
            std::ptr::eq(&same.root.children[1], &start.root.children[1]),
            "not copied"
        );
    }

    #[test]
    fn log_follows_php_rules() {
        let mut s = new_state("00-90");
        log(&mut s, "seen", Some("5"), Target::Root);
        log(&mut s, "type", Some("IP232"), Target::Sub("device"));
        log(&mut s, "build", Some("1"), Target::Sub("firmware"));
        log(&mut s, "msg", Some("hello"), Target::New("msgs", 7));
        log(
            &mut s,
            "delivered",
            Some("9"),
            Target::Keyed("config", "filename", "a.txt"),
        );
        log(
            &mut s,
            "version",
            Some("8"),
            Target::Keyed("config", "filename", "a.txt"),
        );
        log(&mut s, "nextphase", None, Target::Root);
        log(&mut s, "x", None, Target::Sub("bootcode"));
        assert_eq!(
            s.to_xml(),
            r#"<state seen="5"><device sn="00-90" type="IP232"/><firmware build="1"/><msgs time="7" msg="hello"/><config filename="a.txt" delivered="9" version="8"/></state>"#
        );
    }

    #[test]
    fn store_round_trip_and_corrupt_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        assert!(matches!(store.load("a"), Loaded::Missing));
        let s = new_state("a");
        store.save("a", s.clone()).expect("save");
        store.flush_blocking();
        match store.load("a") {
            Loaded::Ok(e) => assert_eq!(*e, s),
            other => panic!("{other:?}"),
        }
        std::fs::write(store.path("b"), "<state").expect("write");
        assert!(matches!(store.load("b"), Loaded::Corrupt { .. }));
        assert_eq!(store.all().len(), 2);
        assert!(store.delete("a").expect("delete"));
        assert!(!store.delete("a").expect("delete"));
    }

    #[test]
    fn expiry_runs_at_most_hourly() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = StateStore::new(dir.path().to_path_buf());
        store.save("old", new_state("old")).expect("save");
        store.flush_blocking();
        let now = crate::clock::now();
        assert!(store.expire(now, 1000).is_empty());
        assert!(store.expire(now + 2000, 1000).is_empty(), "within the hour");
        assert_eq!(store.expire(now + 5000, 1000), vec!["old".to_string()]);
    }

    #[test]
    fn expiry_follows_the_lastcleanup_marker_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let now = crate::clock::now();
        // a marker written half an hour ago (by PHP or an earlier run): no purge yet
        cleanup::touch_marker(dir.path(), now - 1800).expect("touch");
        let store = StateStore::new(dir.path().to_path_buf());
        store.save("old", new_state("old")).expect("save");
        store.flush_blocking();
        assert!(store.expire(now + 1000, 500).is_empty(), "marker is recent");
        assert!(store.path("old").exists());
        // a fresh process sees an old marker: purges and moves the marker to now
        let store = StateStore::new(dir.path().to_path_buf());
        assert_eq!(store.expire(now + 1801, 500), vec!["old".to_string()]);
        assert_eq!(cleanup::read_marker(dir.path()), Some(now + 1801));
        let again = StateStore::new(dir.path().to_path_buf());
        assert!(
            again.expire(now + 1900, 1).is_empty(),
            "next process waits for the hour"
        );
        assert!(store.all().is_empty(), "the marker is not a device state");
    }
}
