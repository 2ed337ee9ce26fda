//! The message log of a device state (its `<msgs time="…" msg="…"/>` children), kept
//! compact, and cheap to copy and to add to while copies share it.
//!
//! A state holds up to some hundred log entries and every poll copies the state, appends a
//! few entries, drops the oldest, and the writer writes the whole file again. Kept as
//! separate child elements, each of these passes touches one or two allocations per entry,
//! scattered over the heap. Here the entries of one element are buffers of text and arrays
//! of small fixed-size records (time, position, offsets, whether the message is empty).
//! An entry of the form a poll writes, `<msgs time="T" msg="M"/>`, keeps only its message,
//! escaped once when it is added (the rest is written from the record); any other entry keeps
//! its XML as written. A text equal to one of the last [`RECENT`] entries' is kept once (each
//! poll logs mostly the messages of the poll before). A message is read back from its XML
//! when shown.
//!
//! A log is two parts (module `parts`): a shared part, the older entries, never changed
//! once made (copies of the log share it), with `skip` entries dropped from its front; and
//! a tail of at most [`TAIL`] newest entries, shared too until a copy adds to it, then
//! copied (it is small). Text offsets of the tail go on after the shared part's text, so a
//! tail entry can point to a text kept there. Copying a log is two reference counts; adding
//! copies at most the tail, and a full tail is folded with the live shared entries into a
//! new shared part (dropped entries' texts given back once they outweigh the live ones);
//! dropping moves `skip` on, and folds once most of the shared part is dropped. Each costs
//! O(1) per entry, amortized, whatever the length of the log; writing it copies the texts.
//!
//! An entry keeps its position among the other children of the state's root: `at` is the
//! number of (other) children that precede it. The state's serialiser
//! ([`super::DeviceState`]) writes the entries with `at <= i` before child `i`, so a document
//! written from the compact form is byte for byte the one written from child elements. Children are only
//! ever appended to a state's root; a removed child makes the entries after it follow one
//! child later, nothing is lost.

mod parts;

use crate::xml::Element;
use parts::{Part, Parts, digits, offset};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

/// The compact message log of one element (empty by default: no allocation).
#[derive(Debug, Clone)]
pub struct MsgLog {
    /// The older entries, shared by copies and never changed.
    shared: Option<Arc<Part>>,
    /// The newest entries (at most [`TAIL`]), copied when a copy adds to them.
    tail: Option<Arc<Part>>,
    /// Entries dropped from the front of `shared`.
    skip: usize,
    /// Length of the live entries as written.
    xml_len: usize,
    /// How many entries back the last added text was found (where to look first).
    period: u32,
    /// A time no entry is older than, see [`MsgLog::time_floor`].
    floor: i64,
}

/// One entry: its time, position, where its text lies in the buffers, whether its message
/// is empty, whether its text is the whole XML (`raw`) or the escaped message only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    time: i64,
    at: u32,
    text: (u32, u32),
    ruler: bool,
    raw: bool,
}

/// Bytes of memory of one entry besides its text.
pub const ENTRY_BYTES: usize = std::mem::size_of::<Entry>();

/// How many of the last entries a new message is compared with, to be kept once.
const RECENT: usize = 64;

/// Most entries in a log's tail; one more folds it into the shared part.
const TAIL: usize = 32;

/// Bytes an entry of the poll's form has besides its message and time digits:
/// `<msgs time="` `" msg="` `"/>`.
const FRAME: usize = 22;

/// One entry as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRef<'a> {
    /// The `time` attribute as a number (as the caller computed it when adding).
    pub time: i64,
    /// Whether the `msg` attribute is empty or missing (the ruler that starts a poll's
    /// block).
    pub ruler: bool,
    /// Number of other children of the element before this entry.
    pub at: usize,
    text: &'a str,
    raw: bool,
}

impl MsgLog {
    /// Number of entries.
    pub fn len(&self) -> usize {
        let parts = self.parts();
        parts.live.len() + parts.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = EntryRef<'_>> + ExactSizeIterator {
        let parts = self.parts();
        (0..self.len()).map(move |i| parts.at(i))
    }

    /// The time and the empty-message flag of each entry, oldest first (what trimming and
    /// counting read, without the texts).
    pub fn marks(&self) -> impl DoubleEndedIterator<Item = (i64, bool)> + '_ {
        let parts = self.parts();
        parts
            .live
            .iter()
            .chain(parts.tail)
            .map(|e| (e.time, e.ruler))
    }

    /// A time no entry is older than (`i64::MIN` until known): lowered by each entry added,
    /// set by [`MsgLog::refresh_floor`]. Trimming reads it to skip looking for old entries.
    pub fn time_floor(&self) -> i64 {
        self.floor
    }

    /// Sets [`MsgLog::time_floor`] to the oldest entry's time.
    pub fn refresh_floor(&mut self) {
        self.floor = self.marks().map(|(t, _)| t).min().unwrap_or(i64::MAX);
    }

    /// Appends `el` at position `at`, with its `time` (its XML kept as written unless it has
    /// the form a poll writes).
    pub fn push(&mut self, el: &Element, at: usize, time: i64) {
        let msg = el.attr("msg");
        let plain = el.name == "msgs"
            && el.text.is_empty()
            && el.children.is_empty()
            && el.attrs.len() == 2
            && el.attrs[0].0 == "time"
            && el.attrs[0].1 == time.to_string()
            && el.attrs[1].0 == "msg";
        match (plain, msg) {
            (true, Some(m)) => self.push_msg(at, time, m),
            _ => self.push_with(at, time, msg.is_none_or(str::is_empty), true, |out| {
                el.write_xml(out)
            }),
        }
    }

    /// Appends `<msgs time="time" msg="msg"/>` at position `at` (what a poll logs).
    pub fn push_msg(&mut self, at: usize, time: i64, msg: &str) {
        self.push_with(at, time, msg.is_empty(), false, |out| {
            crate::xml::escape_attr(msg, out)
        });
    }

    /// Appends an entry to the tail (folded first when full), its text written by `write`
    /// and kept once if a recent entry has it.
    fn push_with(
        &mut self,
        at: usize,
        time: i64,
        ruler: bool,
        raw: bool,
        write: impl FnOnce(&mut String),
    ) {
        if self.tail.as_ref().is_some_and(|t| t.entries.len() >= TAIL) {
            self.fold(false);
        }
        let shared = self.shared.as_deref();
        let base = shared.map_or(0, |s| s.text.len());
        let tail = Arc::make_mut(self.tail.get_or_insert_with(Default::default));
        let t0 = tail.text.len();
        write(&mut tail.text);
        let parts = Parts::new(shared, self.skip, Some(&*tail));
        let same = parts.recent_same(&tail.text[t0..], raw, self.period as usize);
        let text = match same {
            Some((earlier, back)) => {
                tail.text.truncate(t0);
                self.period = back as u32;
                earlier
            }
            None => (offset(base + t0), offset(base + tail.text.len())),
        };
        let e = Entry {
            time,
            at: u32::try_from(at).unwrap_or(u32::MAX),
            text,
            ruler,
            raw,
        };
        self.xml_len += e.xml_len();
        tail.entries.push(e);
        self.floor = self.floor.min(time);
    }

    /// Drops the `n` oldest entries.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        if n == self.len() {
            *self = MsgLog::default();
            return;
        }
        if n > self.parts().live.len() {
            self.fold(false);
        }
        let Some(shared) = self.shared.as_deref() else {
            return;
        };
        let gone = shared
            .entries
            .get(self.skip..self.skip + n)
            .unwrap_or_default();
        self.xml_len -= gone.iter().map(Entry::xml_len).sum::<usize>();
        self.skip += n;
        let most = self.skip * 2 > shared.entries.len();
        if most && (self.skip > 64 || shared.text.len() > 4096) {
            self.fold(true);
        }
    }

    /// Folds the live shared entries and the tail into a new shared part (see
    /// [`Parts::folded`]).
    fn fold(&mut self, compact: bool) {
        let shared = self.parts().folded(compact);
        self.shared = shared;
        self.tail = None;
        self.skip = 0;
    }

    fn parts(&self) -> Parts<'_> {
        Parts::new(self.shared.as_deref(), self.skip, self.tail.as_deref())
    }

    /// Bytes of memory the log holds (its buffers as allocated, a shared part counted
    /// whole by each log that shares it).
    pub fn heap_bytes(&self) -> usize {
        let shared = self.shared.as_ref().map_or(0, |s| s.heap_bytes());
        shared + self.tail.as_ref().map_or(0, |t| t.heap_bytes())
    }

    /// Bytes of the entries as written.
    pub fn xml_len(&self) -> usize {
        self.xml_len
    }

    /// Writes the entries placed before child `child` (all that are left with `None`),
    /// starting at entry `*next`, which is moved on.
    pub(super) fn write_until(&self, child: Option<usize>, next: &mut usize, out: &mut String) {
        let parts = self.parts();
        let (live, tail) = (parts.live.len(), parts.tail.len());
        let shared = parts.live.get(*next..).unwrap_or_default();
        let tail = parts
            .tail
            .get(next.saturating_sub(live)..tail)
            .unwrap_or_default();
        for e in shared.iter().chain(tail) {
            if child.is_some_and(|c| e.at as usize > c) {
                break;
            }
            parts.entry(e).write_to(out);
            *next += 1;
        }
    }
}

impl Entry {
    fn text_len(&self) -> usize {
        self.text.1.saturating_sub(self.text.0) as usize
    }

    /// Length of the entry as written.
    fn xml_len(&self) -> usize {
        if self.raw {
            self.text_len()
        } else {
            self.text_len() + FRAME + digits(self.time)
        }
    }
}

impl EntryRef<'_> {
    /// The entry as written into the document.
    pub fn xml(&self) -> Cow<'_, str> {
        if self.raw {
            return Cow::Borrowed(self.text);
        }
        let mut out = String::with_capacity(self.text.len() + FRAME + 20);
        self.write_to(&mut out);
        Cow::Owned(out)
    }

    fn write_to(&self, out: &mut String) {
        if self.raw {
            out.push_str(self.text);
            return;
        }
        out.push_str("<msgs time=\"");
        let _ = write!(out, "{}", self.time);
        out.push_str("\" msg=\"");
        out.push_str(self.text);
        out.push_str("\"/>");
    }

    /// The `msg` attribute of the entry (read back from its XML).
    pub fn msg(&self) -> String {
        if self.ruler {
            return String::new();
        }
        Element::parse_str(&self.xml())
            .ok()
            .and_then(|e| e.attr("msg").map(str::to_string))
            .unwrap_or_default()
    }
}

impl Default for MsgLog {
    fn default() -> MsgLog {
        MsgLog {
            shared: None,
            tail: None,
            skip: 0,
            xml_len: 0,
            period: 0,
            floor: i64::MIN,
        }
    }
}

impl PartialEq for MsgLog {
    fn eq(&self, other: &MsgLog) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for MsgLog {}

#[cfg(test)]
mod tests;
