//! XML comparison by README §5 "What must match":
//! same elements; attributes compared without regard to their order; child
//! elements with different names in any order, with the same name in the same
//! order; text trimmed. `<msgs>` elements and `certstat` attributes are not
//! compared. Declarations, doctype, comments and processing instructions are
//! ignored.

use std::collections::BTreeMap;

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

/// Elements that are not compared (they repeat comment text).
const IGNORED_ELEMENTS: &[&str] = &["msgs"];
/// Attributes that are not compared (they repeat comment text).
const IGNORED_ATTRIBUTES: &[&str] = &["certstat"];

/// A parsed element: name, attributes, trimmed text and child elements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    pub attrs: BTreeMap<String, String>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    fn from_start(start: &BytesStart<'_>) -> Result<Element, String> {
        let name = start.name().as_ref().to_string();
        let mut attrs = BTreeMap::new();
        for attr in start.attributes() {
            let attr = attr.map_err(|e| format!("bad attribute in <{name}>: {e}"))?;
            let key = attr.key.as_ref().to_string();
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| format!("bad value of {name}/@{key}: {e}"))?
                .into_owned();
            if attrs.insert(key.clone(), value).is_some() {
                return Err(format!("duplicate attribute {name}/@{key}"));
            }
        }
        Ok(Element {
            name,
            attrs,
            text: String::new(),
            children: Vec::new(),
        })
    }
}

/// Parses a document with exactly one root element.
pub fn parse(text: &str) -> Result<Element, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;

    fn close(
        mut element: Element,
        stack: &mut [Element],
        root: &mut Option<Element>,
    ) -> Result<(), String> {
        element.text = element.text.trim().to_string();
        match stack.last_mut() {
            Some(parent) => parent.children.push(element),
            None if root.is_none() => *root = Some(element),
            None => {
                return Err(format!(
                    "second root element <{}> after <{}>",
                    element.name,
                    root.as_ref().map(|r| r.name.as_str()).unwrap_or("?")
                ));
            }
        }
        Ok(())
    }

    fn push_text(stack: &mut [Element], text: &str, what: &str) -> Result<(), String> {
        match stack.last_mut() {
            Some(top) => {
                top.text.push_str(text);
                Ok(())
            }
            None if text.trim().is_empty() => Ok(()),
            None => Err(format!(
                "{what} outside the root element: {:?}",
                text.trim()
            )),
        }
    }

    loop {
        let position = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("XML error at byte {position}: {e}"))?;
        match event {
            Event::Start(start) => stack.push(Element::from_start(&start)?),
            Event::Empty(start) => close(Element::from_start(&start)?, &mut stack, &mut root)?,
            Event::End(_) => {
                let element = stack
                    .pop()
                    .ok_or_else(|| format!("unmatched end tag at byte {position}"))?;
                close(element, &mut stack, &mut root)?;
            }
            Event::Text(t) => push_text(&mut stack, &t.xml10_content(), "text")?,
            Event::CData(c) => push_text(&mut stack, &c.xml10_content(), "CDATA")?,
            Event::GeneralRef(r) => {
                let resolved = match r
                    .resolve_char_ref()
                    .map_err(|e| format!("bad character reference &{};: {e}", &*r))?
                {
                    Some(ch) => ch.to_string(),
                    None => resolve_predefined_entity(&r)
                        .ok_or_else(|| format!("unknown entity &{};", &*r))?
                        .to_string(),
                };
                push_text(&mut stack, &resolved, "entity")?;
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("unclosed element <{}>", open.name));
    }
    root.ok_or_else(|| "no root element".to_string())
}

/// Compares two XML documents; returns the differences (empty: equal).
/// A document that does not parse is reported as a difference, except when
/// neither parses and the texts are identical.
pub fn compare_documents(expected: &str, actual: &str) -> Vec<String> {
    match (parse(expected), parse(actual)) {
        (Ok(e), Ok(a)) => compare(&e, &a),
        (Ok(_), Err(err)) => vec![format!("actual file is no valid XML: {err}")],
        (Err(err), Ok(_)) => vec![format!("expected file is no valid XML: {err}")],
        (Err(err), Err(_)) if expected != actual => {
            vec![format!(
                "neither file is valid XML ({err}) and the texts differ"
            )]
        }
        (Err(_), Err(_)) => Vec::new(),
    }
}

/// Compares two parsed elements.
pub fn compare(expected: &Element, actual: &Element) -> Vec<String> {
    let mut out = Vec::new();
    if expected.name != actual.name {
        out.push(format!(
            "root element: expected <{}>, got <{}>",
            expected.name, actual.name
        ));
        return out;
    }
    compare_at(&format!("/{}", expected.name), expected, actual, &mut out);
    out
}

fn compare_at(path: &str, expected: &Element, actual: &Element, out: &mut Vec<String>) {
    let keys: std::collections::BTreeSet<&String> =
        expected.attrs.keys().chain(actual.attrs.keys()).collect();
    for key in keys {
        if IGNORED_ATTRIBUTES.contains(&key.as_str()) {
            continue;
        }
        match (expected.attrs.get(key), actual.attrs.get(key)) {
            (Some(e), Some(a)) if e != a => {
                out.push(format!("{path}/@{key}: expected {e:?}, got {a:?}"))
            }
            (Some(e), None) => out.push(format!("{path}/@{key}: missing (expected {e:?})")),
            (None, Some(a)) => out.push(format!("{path}/@{key}: unexpected (got {a:?})")),
            _ => {}
        }
    }
    if expected.text != actual.text {
        out.push(format!(
            "{path}/text(): expected {:?}, got {:?}",
            expected.text, actual.text
        ));
    }
    let (exp_children, act_children) = (group_children(expected), group_children(actual));
    let names: std::collections::BTreeSet<&str> = exp_children
        .keys()
        .chain(act_children.keys())
        .copied()
        .collect();
    for name in names {
        let none = Vec::new();
        let exp = exp_children.get(name).unwrap_or(&none);
        let act = act_children.get(name).unwrap_or(&none);
        if exp.len() != act.len() {
            out.push(format!(
                "{path}/{name}: expected {} element(s), got {}",
                exp.len(),
                act.len()
            ));
        }
        for (i, (e, a)) in exp.iter().zip(act.iter()).enumerate() {
            let child_path = if exp.len().max(act.len()) > 1 {
                format!("{path}/{name}[{}]", i + 1)
            } else {
                format!("{path}/{name}")
            };
            compare_at(&child_path, e, a, out);
        }
    }
}

/// Child elements by name, in document order, without the ignored ones.
fn group_children(element: &Element) -> BTreeMap<&str, Vec<&Element>> {
    let mut map: BTreeMap<&str, Vec<&Element>> = BTreeMap::new();
    for child in &element.children {
        if !IGNORED_ELEMENTS.contains(&child.name.as_str()) {
            map.entry(child.name.as_str()).or_default().push(child);
        }
    }
    map
}
