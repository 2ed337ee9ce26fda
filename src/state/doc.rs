//! A device state in memory ([`DeviceState`]): the element tree of `status/SN.xml` without
//! its message log, and the log kept compact beside it ([`super::msglog`]). Reading and
//! writing keep PHP's file byte for byte: the `<msgs>` children are taken out of the root
//! when a state is read and written back at their places.

use super::MSGS;
use super::msglog::MsgLog;
use crate::xml::{Element, Inserts, XmlError};
use std::borrow::Cow;

/// One device's state: its `<state>` element and its message log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceState {
    /// The `<state>` root and its children, but the message log entries.
    pub root: Element,
    /// The root's `<msgs>` children, kept compact, each with its place among the others.
    pub log: MsgLog,
}

impl Default for DeviceState {
    /// An empty `<state/>`.
    fn default() -> Self {
        DeviceState::from_root(Element::new("state"))
    }
}

impl DeviceState {
    /// The state of the tree `root`, its `<msgs>` children moved into the log, each at its
    /// place among the other children.
    pub fn from_root(mut root: Element) -> DeviceState {
        let mut log = MsgLog::default();
        if root.children.iter().any(|c| c.name == MSGS) {
            let children = std::mem::take(&mut root.children);
            for c in children.iter() {
                if c.name == MSGS {
                    log.push(c, root.children.len(), super::msgs::entry_time(c));
                } else {
                    root.children.push(c.clone());
                }
            }
        }
        DeviceState { root, log }
    }

    /// Reads a state file (UTF-8, or ISO-8859-1 when its declaration says so).
    pub fn parse(bytes: &[u8]) -> Result<DeviceState, XmlError> {
        Element::parse(bytes).map(DeviceState::from_root)
    }

    /// [`DeviceState::parse`] of a string.
    pub fn parse_str(text: &str) -> Result<DeviceState, XmlError> {
        Element::parse_str(text).map(DeviceState::from_root)
    }

    /// The state file's content, as PHP writes it.
    pub fn to_document(&self) -> String {
        let mut out = String::new();
        self.write_document(&mut out);
        out
    }

    /// [`DeviceState::to_document`] appended to `out`.
    pub fn write_document(&self, out: &mut String) {
        self.root.write_document_with(out, &mut self.inserts());
    }

    /// The root element as written (without the declaration).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.root.write_with(&mut out, &mut self.inserts());
        out
    }

    /// [`Element::document_len`] of the file: `(about, at_most)`.
    pub fn document_len(&self) -> (usize, usize) {
        self.root.document_len_with(self.log.xml_len())
    }

    /// The root with the log entries as children again, at their places (for the readers
    /// that walk every child: XPath, the pretty rendering).
    pub fn expanded(&self) -> Cow<'_, Element> {
        if self.log.is_empty() {
            return Cow::Borrowed(&self.root);
        }
        let mut el = Element {
            children: Default::default(),
            ..self.root.clone()
        };
        let mut entries = self.log.iter().peekable();
        for (i, c) in self.root.children.iter().enumerate() {
            while let Some(e) = entries.next_if(|e| e.at <= i) {
                el.children.push(log_entry(e));
            }
            el.children.push(c.clone());
        }
        el.children.extend(entries.map(log_entry));
        Cow::Owned(el)
    }

    fn inserts(&self) -> LogInserts<'_> {
        LogInserts {
            log: &self.log,
            next: 0,
        }
    }
}

/// A log entry as an element again (it was written from one, so it reads back).
fn log_entry(e: super::msglog::EntryRef<'_>) -> Element {
    Element::parse_str(&e.xml()).unwrap_or_else(|_| {
        let mut el = Element::new(MSGS);
        el.set_attr("time", e.time.to_string());
        el.set_attr("msg", e.msg());
        el
    })
}

/// The log entries written among the root's children.
struct LogInserts<'a> {
    log: &'a MsgLog,
    /// The next entry to write.
    next: usize,
}

impl Inserts for LogInserts<'_> {
    fn is_empty(&self) -> bool {
        self.log.is_empty()
    }

    fn write_before(&mut self, child: Option<usize>, out: &mut String) {
        self.log.write_until(child, &mut self.next, out);
    }
}
