//! The message log of a device state (its `<msgs time="…" msg="…"/>` children), kept
//! compact.
//!
//! A state holds up to some hundred log entries and every poll copies the state, appends a
//! few entries, drops the oldest, and the writer writes the whole file again. Kept as
//! separate child elements, each of these passes touches one or two allocations per entry,
//! scattered over the heap. Here the entries of one element are one buffer of text and one
//! array of small fixed-size records (time, position, offsets, whether the message is empty).
//! An entry of the form a poll writes, `<msgs time="T" msg="M"/>`, keeps only its message,
//! escaped once when it is added (the rest is written from the record); any other entry keeps
//! its XML as written. A text equal to one of the last [`RECENT`] entries' is kept once (each
//! poll logs mostly the messages of the poll before). Copying a log is one reference count;
//! trimming it reads the records only; writing it copies the texts. A message is read back
//! from its XML when shown.
//!
//! An entry keeps its position among the other children of its element: `at` is the number
//! of (other) children that precede it. The element's serialiser ([`super::Element`])
//! writes the entries with `at <= i` before child `i`, so a document written from the
//! compact form is byte for byte the one written from child elements. Children are only
//! ever appended to a state's root; a removed child makes the entries after it follow one
//! child later, nothing is lost.

use super::Element;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// The compact message log of one element (empty by default: no allocation).
#[derive(Debug, Clone, Default)]
pub struct Log(Option<Arc<Buf>>);

/// One entry: its time, position, where its text lies in the buffer, whether its message is
/// empty, whether its text is the whole XML (`raw`) or the escaped message only.
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

/// Bytes an entry of the poll's form has besides its message and time digits:
/// `<msgs time="` `" msg="` `"/>`.
const FRAME: usize = 22;

/// The entries from `head` on are the log; those before it were dropped (their bytes are
/// given back when a copy is made or when they outweigh the live ones). `xml_len` is the
/// length of the live entries as written.
#[derive(Debug, Default)]
struct Buf {
    entries: Vec<Entry>,
    head: usize,
    text: String,
    xml_len: usize,
}

static EMPTY: Buf = Buf {
    entries: Vec::new(),
    head: 0,
    text: String::new(),
    xml_len: 0,
};

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

impl Log {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.entries.len() - b.head)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = EntryRef<'_>> + ExactSizeIterator {
        let b = self.0.as_deref().unwrap_or(&EMPTY);
        b.entries[b.head..].iter().map(move |e| b.entry(e))
    }

    /// Appends `el` at position `at`, with its `time` (its XML kept as written unless it has
    /// the form a poll writes).
    pub fn push(&mut self, el: &Element, at: usize, time: i64) {
        let msg = el.attr("msg");
        let plain = el.name == "msgs"
            && el.text.is_empty()
            && el.children.is_empty()
            && el.log.is_empty()
            && el.attrs.len() == 2
            && el.attrs[0].0 == "time"
            && el.attrs[0].1 == time.to_string()
            && el.attrs[1].0 == "msg";
        match (plain, msg) {
            (true, Some(m)) => self.push_msg(at, time, m),
            _ => self.push_with(at, time, msg.is_none_or(str::is_empty), true, |out| {
                el.write_to(out)
            }),
        }
    }

    /// Appends `<msgs time="time" msg="msg"/>` at position `at` (what a poll logs).
    pub fn push_msg(&mut self, at: usize, time: i64, msg: &str) {
        self.push_with(at, time, msg.is_empty(), false, |out| {
            super::escape_attr(msg, out)
        });
    }

    fn push_with(
        &mut self,
        at: usize,
        time: i64,
        ruler: bool,
        raw: bool,
        write: impl FnOnce(&mut String),
    ) {
        let b = Arc::make_mut(self.0.get_or_insert_with(Default::default));
        let t0 = b.text.len();
        write(&mut b.text);
        let text = match b.recent_same(t0, raw) {
            Some(earlier) => {
                b.text.truncate(t0);
                earlier
            }
            None => (offset(t0), offset(b.text.len())),
        };
        let e = Entry {
            time,
            at: u32::try_from(at).unwrap_or(u32::MAX),
            text,
            ruler,
            raw,
        };
        b.xml_len += b.xml_len_of(&e);
        b.entries.push(e);
    }

    /// Drops the `n` oldest entries.
    pub fn drop_front(&mut self, n: usize) {
        let n = n.min(self.len());
        if n == 0 {
            return;
        }
        if n == self.len() {
            self.0 = None;
            return;
        }
        if let Some(arc) = self.0.as_mut() {
            let b = Arc::make_mut(arc);
            let gone: usize = b.entries[b.head..b.head + n]
                .iter()
                .map(|e| b.xml_len_of(e))
                .sum();
            b.xml_len -= gone;
            b.head += n;
            if (b.head > 64 && b.head * 2 > b.entries.len()) || b.wasteful() {
                *b = b.compacted();
            }
        }
    }

    /// Bytes of memory the log holds (its buffers as allocated).
    pub fn heap_bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |b| {
            b.text.capacity() + b.entries.capacity() * ENTRY_BYTES + std::mem::size_of::<Buf>()
        })
    }

    /// Bytes of the entries as written.
    pub fn xml_len(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.xml_len)
    }

    /// Writes the entries placed before child `child` (all that are left with `None`),
    /// starting at entry `*next`, which is moved on.
    pub(super) fn write_until(&self, child: Option<usize>, next: &mut usize, out: &mut String) {
        let Some(b) = self.0.as_deref() else {
            return;
        };
        let live = &b.entries[b.head..];
        while let Some(e) = live
            .get(*next)
            .filter(|e| child.is_none_or(|c| e.at as usize <= c))
        {
            b.entry(e).write_to(out);
            *next += 1;
        }
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Digits of `t` written in decimal (with the sign).
fn digits(t: i64) -> usize {
    let sign = usize::from(t < 0);
    let mut n = t.unsigned_abs();
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    sign + d
}

impl Buf {
    fn entry<'a>(&'a self, e: &Entry) -> EntryRef<'a> {
        EntryRef {
            time: e.time,
            ruler: e.ruler,
            at: e.at as usize,
            text: &self.text[e.text.0 as usize..e.text.1 as usize],
            raw: e.raw,
        }
    }

    fn xml_len_of(&self, e: &Entry) -> usize {
        let text = (e.text.1 - e.text.0) as usize;
        if e.raw {
            text
        } else {
            text + FRAME + digits(e.time)
        }
    }

    /// Whether texts of dropped entries outweigh the live ones (which count once per entry
    /// here, kept once or not).
    fn wasteful(&self) -> bool {
        let live = || {
            self.entries[self.head..]
                .iter()
                .map(|e| (e.text.1 - e.text.0) as usize)
                .sum::<usize>()
        };
        self.text.len() > 4096 && self.text.len() > 2 * live()
    }

    /// The text of a recent entry equal to the one just written from `t0` on (a poll logs
    /// the same messages as the one before it: each is kept once).
    fn recent_same(&self, t0: usize, raw: bool) -> Option<(u32, u32)> {
        let new = &self.text[t0..];
        self.entries[self.head..]
            .iter()
            .rev()
            .take(RECENT)
            .find(|e| e.raw == raw && &self.text[e.text.0 as usize..e.text.1 as usize] == new)
            .map(|e| e.text)
    }

    /// A copy with the live entries and their texts only.
    fn compacted(&self) -> Buf {
        let live = &self.entries[self.head..];
        let mut text = String::with_capacity(self.text.len().min(live.len() * 64) + 256);
        let mut moved: HashMap<(u32, u32), u32> = HashMap::new();
        let mut entries = Vec::with_capacity(live.len() + 16);
        for e in live {
            let start = *moved.entry(e.text).or_insert_with(|| {
                let start = offset(text.len());
                text.push_str(&self.text[e.text.0 as usize..e.text.1 as usize]);
                start
            });
            entries.push(Entry {
                text: (start, start + (e.text.1 - e.text.0)),
                ..*e
            });
        }
        Buf {
            entries,
            head: 0,
            text,
            xml_len: self.xml_len,
        }
    }
}

/// A copy (made to be added to: with room for the entries of a poll or two). Texts of
/// dropped entries are given back by [`Buf::compacted`] once they outweigh the live ones.
impl Clone for Buf {
    fn clone(&self) -> Buf {
        if self.wasteful() {
            return self.compacted();
        }
        let live = &self.entries[self.head..];
        let mut entries = Vec::with_capacity(live.len() + 16);
        entries.extend_from_slice(live);
        let mut text = String::with_capacity(self.text.len() + 256);
        text.push_str(&self.text);
        Buf {
            entries,
            head: 0,
            text,
            xml_len: self.xml_len,
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

impl PartialEq for Log {
    fn eq(&self, other: &Log) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Log {}

#[cfg(test)]
mod tests;
