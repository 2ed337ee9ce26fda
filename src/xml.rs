//! The small XML element tree shared by the configuration and the device state files.
//!
//! It models what PHP's SimpleXML keeps of a document when the PHP server reads, changes and
//! writes it: an element's name, its attributes in order, its direct text and its child
//! elements in order. Comments, processing instructions and the DOCTYPE are read over and not
//! kept. Reading accepts UTF-8 and ISO-8859-1 documents (the shipped PHP `config.xml` is
//! Latin-1) and never expands entities other than the five predefined ones and character
//! references, so a hostile DOCTYPE cannot make the parser do work. Writing produces the
//! layout of SimpleXML's `asXML()` (`<?xml version="1.0"?>`, one line, `<empty/>` elements),
//! so files stay readable by a PHP installation.
//!
//! Every document written is well-formed XML 1.0, whatever a request or a device sent: the
//! characters XML 1.0 cannot represent at all, not even as a character reference (the C0
//! controls other than tab, LF and CR, and U+FFFE/U+FFFF), are written as U+FFFD (the
//! replacement character). Reading refuses them, raw or as a reference (`&#1;`), as libxml2
//! (and so PHP) does.

use compact_str::CompactString;
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use thiserror::Error;

mod children;
pub use children::Children;

/// Why a document could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("not well-formed XML at byte {pos}: {msg}")]
    Syntax { pos: u64, msg: String },
    #[error("undefined entity '&{0};' (only the predefined XML entities are allowed)")]
    UndefinedEntity(String),
    #[error("document has no root element")]
    NoRoot,
    #[error("document is not valid UTF-8 (and declares no ISO-8859-1 encoding)")]
    Encoding,
    #[error("document is nested too deeply")]
    TooDeep,
}

/// The attributes of an element, in document order. Up to two are kept inside the element
/// itself: a message log entry (`time`, `msg`) is then one allocation, and a pass over a log
/// (trimming it, copying a state) reads one place in memory per entry instead of two.
pub type Attrs = smallvec::SmallVec<[(CompactString, CompactString); 2]>;

/// One element: name, attributes (in document order), direct text and child elements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    pub name: CompactString,
    pub attrs: Attrs,
    pub text: String,
    pub children: Children,
}

/// Deepest nesting accepted when reading; real documents use less than ten levels.
const MAX_DEPTH: usize = 256;

impl Element {
    pub fn new(name: impl Into<CompactString>) -> Self {
        Element {
            name: name.into(),
            ..Default::default()
        }
    }

    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets (or adds at the end) attribute `name`.
    pub fn set_attr(&mut self, name: &str, value: impl Into<CompactString>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((name.into(), value)),
        }
    }

    /// Removes attribute `name` if present.
    pub fn remove_attr(&mut self, name: &str) {
        self.attrs.retain(|(k, _)| k != name);
    }

    /// The first child element called `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child element called `name`, mutable.
    pub fn child_mut(&mut self, name: &str) -> Option<&mut Element> {
        // only the child found is copied when shared, not the ones before it
        let idx = self.children.iter().position(|c| c.name == name)?;
        Some(&mut self.children[idx])
    }

    /// The first child called `name`, appended empty if there is none (SimpleXML's
    /// auto-vivification when a missing child is written to).
    pub fn child_or_insert(&mut self, name: &str) -> &mut Element {
        let idx = match self.children.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                self.children.push(Element::new(name));
                self.children.len() - 1
            }
        };
        &mut self.children[idx]
    }

    /// All child elements called `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Follows a path of child names (first match at each level).
    pub fn path(&self, names: &[&str]) -> Option<&Element> {
        let mut cur = self;
        for n in names {
            cur = cur.child(n)?;
        }
        Some(cur)
    }

    /// Removes all children called `name`.
    pub fn remove_children(&mut self, name: &str) {
        self.children.retain(|c| c.name != name);
    }

    /// Parses a document from bytes (UTF-8, or ISO-8859-1 when the XML declaration says so).
    pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
        let text = decode_document(bytes)?;
        Element::parse_str(&text)
    }

    /// Parses a document from a string.
    pub fn parse_str(text: &str) -> Result<Element, XmlError> {
        if let Some(bad) = text.find(forbidden) {
            return Err(syntax(bad as u64, "character not allowed in XML 1.0"));
        }
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(false);
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let pos = reader.buffer_position();
            let ev = reader.read_event().map_err(|e| XmlError::Syntax {
                pos,
                msg: e.to_string(),
            })?;
            match ev {
                Event::Start(start) => {
                    if stack.len() >= MAX_DEPTH {
                        return Err(XmlError::TooDeep);
                    }
                    if root.is_some() && stack.is_empty() {
                        return Err(syntax(pos, "content after the root element"));
                    }
                    stack.push(element_from_start(&start, pos)?);
                }
                Event::Empty(start) => {
                    if root.is_some() && stack.is_empty() {
                        return Err(syntax(pos, "content after the root element"));
                    }
                    let el = element_from_start(&start, pos)?;
                    attach(&mut stack, &mut root, el);
                }
                Event::End(_) => {
                    let el = stack
                        .pop()
                        .ok_or_else(|| syntax(pos, "closing tag without opening tag"))?;
                    attach(&mut stack, &mut root, el);
                }
                Event::Text(t) => {
                    let content = t.xml10_content();
                    match stack.last_mut() {
                        Some(top) => top.text.push_str(&content),
                        None if content.trim().is_empty() => {}
                        None => return Err(syntax(pos, "text outside the root element")),
                    }
                }
                Event::CData(c) => {
                    let content = c.into_inner().into_owned();
                    match stack.last_mut() {
                        Some(top) => top.text.push_str(&content),
                        None => return Err(syntax(pos, "CDATA outside the root element")),
                    }
                }
                Event::GeneralRef(r) => {
                    let ch = resolve_ref(&r, pos)?;
                    match stack.last_mut() {
                        Some(top) => top.text.push_str(&ch),
                        None => return Err(syntax(pos, "reference outside the root element")),
                    }
                }
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err(syntax(
                text.len() as u64,
                "unclosed element at end of document",
            ));
        }
        root.ok_or(XmlError::NoRoot)
    }

    /// Serialises like SimpleXML's `asXML()`: declaration line, then the element on one line.
    pub fn to_document(&self) -> String {
        let mut out = String::new();
        self.write_document(&mut out);
        out
    }

    /// [`Element::to_document`] appended to `out` (a buffer used again and again).
    pub fn write_document(&self, out: &mut String) {
        self.write_document_with(out, &mut NoInserts);
    }

    /// [`Element::write_document`] with `inserts` written among this element's children
    /// (a device state's message log, see `state::DeviceState`).
    pub fn write_document_with(&self, out: &mut String, inserts: &mut impl Inserts) {
        out.push_str("<?xml version=\"1.0\"?>\n");
        self.write_with(out, inserts);
        out.push('\n');
    }

    /// Lengths of [`Element::to_document`] without writing it: `(about, at_most)`. `about`
    /// counts the names and values as they are (the length when nothing needs escaping),
    /// `at_most` as if every byte needed the longest escape (six bytes for `"`).
    pub fn document_len(&self) -> (usize, usize) {
        self.document_len_with(0)
    }

    /// [`Element::document_len`] with `inserted` bytes written among the children (as
    /// they are, no escaping).
    pub fn document_len_with(&self, inserted: usize) -> (usize, usize) {
        const DECLARATION: usize = "<?xml version=\"1.0\"?>\n".len() + 1;
        let (about, at_most) = self.len_bounds(inserted);
        (DECLARATION + about, DECLARATION + at_most)
    }

    fn len_bounds(&self, inserted: usize) -> (usize, usize) {
        let name = self.name.len();
        let (mut about, mut at_most) = (1 + name, 1 + name);
        for (k, v) in &self.attrs {
            about += 4 + k.len() + v.len();
            at_most += 4 + k.len() + 6 * v.len();
        }
        if self.text.is_empty() && self.children.is_empty() && inserted == 0 {
            return (about + 2, at_most + 2);
        }
        about += 1 + self.text.len() + 3 + name + inserted;
        at_most += 1 + 6 * self.text.len() + 3 + name + inserted;
        for c in &self.children {
            let (a, m) = c.len_bounds(0);
            about += a;
            at_most += m;
        }
        (about, at_most)
    }

    /// Serialises this element (without declaration).
    pub fn to_xml(&self) -> String {
        let mut out = String::new();
        self.write_xml(&mut out);
        out
    }

    /// [`Element::to_xml`] appended to `out`.
    pub fn write_xml(&self, out: &mut String) {
        self.write_with(out, &mut NoInserts);
    }

    /// An indented rendering for people (`check-config`).
    pub fn to_pretty_document(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write_pretty(&mut out, 0);
        out
    }

    /// `<name a="v" …` (without the closing `>`).
    fn write_open(&self, out: &mut String) {
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("=\"");
            escape_attr(v, out);
            out.push('"');
        }
    }

    fn write_pretty(&self, out: &mut String, depth: usize) {
        let pad = "    ".repeat(depth);
        out.push_str(&pad);
        self.write_open(out);
        let text = self.text.trim();
        if text.is_empty() && self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push('>');
        escape_text(text, out);
        if !self.children.is_empty() {
            out.push('\n');
            for c in &self.children {
                c.write_pretty(out, depth + 1);
            }
            out.push_str(&pad);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }

    /// [`Element::write_xml`] with `inserts` written among the children.
    pub fn write_with(&self, out: &mut String, inserts: &mut impl Inserts) {
        self.write_open(out);
        if self.text.is_empty() && self.children.is_empty() && inserts.is_empty() {
            out.push_str("/>");
            return;
        }
        out.push('>');
        escape_text(&self.text, out);
        for (i, c) in self.children.iter().enumerate() {
            inserts.write_before(Some(i), out);
            c.write_xml(out);
        }
        inserts.write_before(None, out);
        out.push_str("</");
        out.push_str(&self.name);
        out.push('>');
    }
}

/// Content written among an element's children that is not one of them (XML, written as
/// it is): what a device state keeps apart from its element tree.
pub trait Inserts {
    /// Whether there is nothing to write.
    fn is_empty(&self) -> bool;
    /// Writes what comes before child `child` (all that is left with `None`).
    fn write_before(&mut self, child: Option<usize>, out: &mut String);
}

/// No content besides the children.
struct NoInserts;

impl Inserts for NoInserts {
    fn is_empty(&self) -> bool {
        true
    }

    fn write_before(&mut self, _: Option<usize>, _: &mut String) {}
}

/// The text a reference in element content stands for (character references to characters
/// XML 1.0 cannot hold, and entities other than the predefined ones, are refused).
fn resolve_ref(r: &quick_xml::events::BytesRef<'_>, pos: u64) -> Result<String, XmlError> {
    match r.resolve_char_ref() {
        Ok(Some(c)) if forbidden(c) => Err(syntax(
            pos,
            "reference to a character not allowed in XML 1.0",
        )),
        Ok(Some(c)) => Ok(c.to_string()),
        Ok(None) => {
            let name = r.to_string();
            Ok(predefined_entity(&name)
                .ok_or(XmlError::UndefinedEntity(name))?
                .to_string())
        }
        Err(e) => Err(syntax(pos, &e.to_string())),
    }
}

fn syntax(pos: u64, msg: &str) -> XmlError {
    XmlError::Syntax {
        pos,
        msg: msg.to_string(),
    }
}

fn attach(stack: &mut [Element], root: &mut Option<Element>, el: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

fn predefined_entity(name: &str) -> Option<&'static str> {
    Some(match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        _ => return None,
    })
}

fn element_from_start(start: &BytesStart<'_>, pos: u64) -> Result<Element, XmlError> {
    let name = start.name().as_ref().to_string();
    let mut el = Element::new(name);
    for attr in start.attributes() {
        let attr = attr.map_err(|e| syntax(pos, &e.to_string()))?;
        let key = attr.key.as_ref().to_string();
        let value =
            attr.normalized_value_with(XmlVersion::Implicit1_0, 1, predefined_entity)
                .map_err(|e| match e {
                    quick_xml::Error::Escape(
                        quick_xml::escape::EscapeError::UnrecognizedEntity(_, name),
                    ) => XmlError::UndefinedEntity(name),
                    other => syntax(pos, &other.to_string()),
                })?;
        if value.contains(forbidden) {
            return Err(syntax(
                pos,
                "reference to a character not allowed in XML 1.0",
            ));
        }
        if el.attr(&key).is_some() {
            return Err(syntax(pos, &format!("duplicate attribute '{key}'")));
        }
        el.attrs.push((key.into(), value.into()));
    }
    Ok(el)
}

/// Decodes raw document bytes to text: ISO-8859-1 when the declaration says so (as the PHP
/// server's shipped `config.xml` does), UTF-8 otherwise.
pub fn decode_document(bytes: &[u8]) -> Result<String, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if declares_latin1(bytes) {
        return Ok(bytes.iter().map(|&b| b as char).collect());
    }
    String::from_utf8(bytes.to_vec()).map_err(|_| XmlError::Encoding)
}

fn declares_latin1(bytes: &[u8]) -> bool {
    if !bytes.starts_with(b"<?xml") {
        return false;
    }
    let end = bytes
        .iter()
        .position(|&b| b == b'>')
        .unwrap_or(bytes.len().min(200));
    let decl = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let Some(idx) = decl.find("encoding") else {
        return false;
    };
    let rest = &decl[idx + "encoding".len()..];
    let value: String = rest
        .trim_start_matches([' ', '=', '"', '\''])
        .chars()
        .take_while(|c| !matches!(c, '"' | '\'' | ' ' | '?'))
        .collect();
    matches!(
        value.as_str(),
        "iso-8859-1" | "iso8859-1" | "latin1" | "latin-1" | "iso_8859-1" | "windows-1252"
    )
}

/// Whether XML 1.0 cannot represent `c` at all (not even as a character reference).
pub fn forbidden(c: char) -> bool {
    matches!(
        c,
        '\0'..='\x08' | '\x0B' | '\x0C' | '\x0E'..='\x1F' | '\u{FFFE}' | '\u{FFFF}'
    )
}

/// What a character XML 1.0 cannot represent is written as.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Bytes after which an attribute value needs a closer look: control characters, markup,
/// and 0xEF (the first byte of U+FFFE and U+FFFF).
const ATTR_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'&' as usize] = true;
    t[b'<' as usize] = true;
    t[b'>' as usize] = true;
    t[b'"' as usize] = true;
    t[0xEF] = true;
    t
};

/// Escapes an attribute value the way libxml2 does; characters XML 1.0 cannot represent
/// become U+FFFD.
pub fn escape_attr(v: &str, out: &mut String) {
    if !v.bytes().any(|b| ATTR_SPECIAL[b as usize]) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if forbidden(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
}

/// Escapes element text the way libxml2 does; characters XML 1.0 cannot represent become
/// U+FFFD.
pub fn escape_text(v: &str, out: &mut String) {
    if !v.bytes().any(|b| {
        matches!(b, b'&' | b'<' | b'>' | b'\r' | 0xEF) || (b < 0x20 && b != b'\t' && b != b'\n')
    }) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if forbidden(c) => out.push(REPLACEMENT),
            c => out.push(c),
        }
    }
}

/// Escapes text for HTML output (element content and quoted attribute values).
pub fn html_escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attributes_text_and_children() {
        let el = Element::parse(
            b"<?xml version=\"1.0\"?>\n<a x=\"1\" y='&lt;2&gt;'>hi<b/><c k=\"v\">t</c></a>",
        )
        .expect("parse");
        assert_eq!(el.name, "a");
        assert_eq!(el.attr("y"), Some("<2>"));
        assert_eq!(el.text, "hi");
        assert_eq!(el.children.len(), 2);
        assert_eq!(el.child("c").and_then(|c| c.attr("k")), Some("v"));
    }

    #[test]
    fn ignores_doctype_and_comments() {
        let doc = b"<?xml version=\"1.0\"?>\n<!DOCTYPE config SYSTEM \"full-config.dtd\">\n<!-- c --><config a=\"b\"><!-- x --><m/></config>";
        let el = Element::parse(doc).expect("parse");
        assert_eq!(el.children.len(), 1);
    }

    #[test]
    fn refuses_custom_entities() {
        let doc = b"<!DOCTYPE x [<!ENTITY e \"boom\">]><x>&e;</x>";
        assert_eq!(
            Element::parse(doc),
            Err(XmlError::UndefinedEntity("e".to_string()))
        );
        let doc = b"<!DOCTYPE x [<!ENTITY e \"boom\">]><x a=\"&e;\"/>";
        assert!(matches!(
            Element::parse(doc),
            Err(XmlError::UndefinedEntity(_))
        ));
    }

    #[test]
    fn reads_latin1_documents() {
        let doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\" ?><c n=\"M\xfcller\"/>";
        let el = Element::parse(doc).expect("parse");
        assert_eq!(el.attr("n"), Some("Müller"));
    }

    #[test]
    fn refuses_invalid_utf8_without_declaration() {
        assert_eq!(
            Element::parse(b"<c n=\"M\xfcller\"/>"),
            Err(XmlError::Encoding)
        );
    }

    #[test]
    fn writes_like_simplexml() {
        let mut el = Element::new("state");
        el.set_attr("seen", "1");
        let d = el.child_or_insert("device");
        d.set_attr("msg", "a\r\nb \"q\" <&>");
        assert_eq!(
            el.to_document(),
            "<?xml version=\"1.0\"?>\n<state seen=\"1\"><device msg=\"a&#13;&#10;b &quot;q&quot; &lt;&amp;&gt;\"/></state>\n"
        );
    }

    #[test]
    fn attribute_values_are_escaped_byte_by_byte_where_needed() {
        let cases = [
            ("plain", "plain"),
            ("\u{FFFE}x\u{FFFF}", "\u{FFFD}x\u{FFFD}"),
            // same first byte (0xEF) as U+FFFE, but representable
            ("\u{F000}\u{FFFD}", "\u{F000}\u{FFFD}"),
            ("\x01\t", "\u{FFFD}&#9;"),
            ("a>b", "a&gt;b"),
        ];
        for (value, written) in cases {
            let mut out = String::new();
            escape_attr(value, &mut out);
            assert_eq!(out, written, "{value:?}");
        }
    }

    #[test]
    fn round_trips_control_characters() {
        let mut el = Element::new("s");
        el.set_attr("m", "x\r\ny\tz");
        el.text = "a\rb".into();
        let back = Element::parse(el.to_document().as_bytes()).expect("parse");
        assert_eq!(back, el);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for doc in [
            &b""[..],
            b"<",
            b"<a>",
            b"</a>",
            b"<a></b>",
            b"<a/><b/>",
            b"text",
            b"<a x=1/>",
            b"<a x=\"1\" x=\"2\"/>",
            b"<a>&#0;</a>",
        ] {
            assert!(
                Element::parse(doc).is_err(),
                "{:?}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn refuses_absurd_nesting() {
        let doc = "<a>".repeat(10_000);
        assert_eq!(Element::parse(doc.as_bytes()), Err(XmlError::TooDeep));
    }
}
