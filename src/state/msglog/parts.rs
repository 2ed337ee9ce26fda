//! The two buffers of a [`MsgLog`](super::MsgLog) (its shared older entries and its own newest
//! ones), how an entry's text is found in them, and how they are folded into one.

use super::{Entry, EntryRef};
use std::collections::HashMap;
use std::sync::Arc;

/// Entries and the text they point into. Offsets are counted from the start of the shared
/// part's text: a tail's text follows it (`base`, the shared text's length, is subtracted
/// to read it), so a tail entry can point to a text kept in the shared part.
#[derive(Debug, Default)]
pub(super) struct Part {
    pub(super) entries: Vec<Entry>,
    pub(super) text: String,
}

/// A tail copied to be added to: with room for the entries of a poll or two.
impl Clone for Part {
    fn clone(&self) -> Part {
        let mut entries = Vec::with_capacity(self.entries.len() + 8);
        entries.extend_from_slice(&self.entries);
        let mut text = String::with_capacity(self.text.len() + 128);
        text.push_str(&self.text);
        Part { entries, text }
    }
}

impl Part {
    /// Bytes of memory the part holds (its buffers as allocated).
    pub(super) fn heap_bytes(&self) -> usize {
        self.text.capacity()
            + self.entries.capacity() * super::ENTRY_BYTES
            + std::mem::size_of::<Part>()
    }
}

/// The shared part and the tail of a log, as read.
#[derive(Clone, Copy)]
pub(super) struct Parts<'a> {
    /// The live entries of the shared part.
    pub(super) live: &'a [Entry],
    pub(super) shared_text: &'a str,
    pub(super) tail: &'a [Entry],
    pub(super) tail_text: &'a str,
}

impl<'a> Parts<'a> {
    pub(super) fn new(shared: Option<&'a Part>, skip: usize, tail: Option<&'a Part>) -> Self {
        let (live, shared_text) = shared.map_or((&[][..], ""), |s| {
            (s.entries.get(skip..).unwrap_or_default(), s.text.as_str())
        });
        let (tail, tail_text) = tail.map_or((&[][..], ""), |t| (&t.entries[..], t.text.as_str()));
        Parts {
            live,
            shared_text,
            tail,
            tail_text,
        }
    }

    /// Live entry `i`, which is there (`i` below the log's length).
    pub(super) fn at(&self, i: usize) -> EntryRef<'a> {
        self.entry(self.record(i))
    }

    /// The record of live entry `i`, which is there.
    fn record(&self, i: usize) -> &'a Entry {
        match i.checked_sub(self.live.len()) {
            None => &self.live[i],
            Some(j) => &self.tail[j],
        }
    }

    #[inline]
    pub(super) fn entry(&self, e: &Entry) -> EntryRef<'a> {
        EntryRef {
            time: e.time,
            ruler: e.ruler,
            at: e.at as usize,
            text: self.text(e),
            raw: e.raw,
        }
    }

    /// The text `e` points to.
    #[inline]
    pub(super) fn text(&self, e: &Entry) -> &'a str {
        let (a, b) = (e.text.0 as usize, e.text.1 as usize);
        let base = self.shared_text.len();
        let found = match a.checked_sub(base) {
            None => self.shared_text.get(a..b),
            Some(a) => self.tail_text.get(a..b.saturating_sub(base)),
        };
        found.unwrap_or_default()
    }

    /// The text of one of the last [`super::RECENT`] entries equal to `new` (written as
    /// `raw` or not), to be kept once, and how many entries back it is. The entry `hint`
    /// back is compared first: a poll logs what the poll before it logged, in the same order,
    /// so the distance of one match is mostly that of the next.
    pub(super) fn recent_same(
        &self,
        new: &str,
        raw: bool,
        hint: usize,
    ) -> Option<((u32, u32), usize)> {
        let same = |e: &Entry| e.raw == raw && self.text(e) == new;
        let n = self.live.len() + self.tail.len();
        if (1..=super::RECENT.min(n)).contains(&hint) {
            let e = self.record(n - hint);
            if same(e) {
                return Some((e.text, hint));
            }
        }
        let newest_first = self.tail.iter().rev().chain(self.live.iter().rev());
        newest_first
            .take(super::RECENT)
            .enumerate()
            .find(|(_, e)| same(e))
            .map(|(k, e)| (e.text, k + 1))
    }

    /// Whether texts of dropped entries outweigh the live ones (which count once per entry
    /// here, kept once or not).
    fn wasteful(&self) -> bool {
        let len = self.shared_text.len() + self.tail_text.len();
        let live: usize = self.live.iter().chain(self.tail).map(Entry::text_len).sum();
        len > 4096 && len > 2 * live
    }

    /// The live entries in one part: the texts copied as they are (offsets do not change),
    /// or, with `compact` or once dropped texts outweigh the live ones, only the texts of
    /// live entries, each once.
    pub(super) fn folded(&self, compact: bool) -> Option<Arc<Part>> {
        let count = self.live.len() + self.tail.len();
        if count == 0 {
            return None;
        }
        let mut entries = Vec::with_capacity(count);
        if !compact && !self.wasteful() {
            entries.extend_from_slice(self.live);
            entries.extend_from_slice(self.tail);
            let mut text = String::with_capacity(self.shared_text.len() + self.tail_text.len());
            text.push_str(self.shared_text);
            text.push_str(self.tail_text);
            return Some(Arc::new(Part { entries, text }));
        }
        let live: usize = self.live.iter().chain(self.tail).map(Entry::text_len).sum();
        let all = self.shared_text.len() + self.tail_text.len();
        let mut text = String::with_capacity(live.min(all));
        let mut moved: HashMap<(u32, u32), u32> = HashMap::new();
        for e in self.live.iter().chain(self.tail) {
            let start = *moved.entry(e.text).or_insert_with(|| {
                let start = offset(text.len());
                text.push_str(self.text(e));
                start
            });
            entries.push(Entry {
                text: (start, start.saturating_add(offset(e.text_len()))),
                ..*e
            });
        }
        Some(Arc::new(Part { entries, text }))
    }
}

/// `n` as an offset into a text (texts past 4 GiB are not expected).
pub(super) fn offset(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Digits of `t` written in decimal (with the sign).
pub(super) fn digits(t: i64) -> usize {
    let sign = usize::from(t < 0);
    let mut n = t.unsigned_abs();
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    sign + d
}
