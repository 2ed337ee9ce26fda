//! Query results: `update.php?mode=query&sn=…&id=…` with the XML a device's
//! `mod cmd … xml-info` produced, stored in the device state under `<queries><ID seen="…">`.
//!
//! Which queries a device runs is decided on the poll (`script`); this module stores what it
//! sends back. Like PHP's `saveQuery`, the body is read as the content of an element `<ID>`
//! (so it may hold several elements and text), and a new result replaces the previous one of
//! the same id. Invalid XML, and any DOCTYPE (so no entity can be declared, let alone
//! expanded; PHP failed on a DOCTYPE there too), is refused with a clear error (HTTP 400; the
//! refused body is quoted only as an escaped excerpt) and the stored state stays as it was.
//!
//! One leniency: a byte-order mark and an XML declaration in front of the body are skipped
//! (PHP refused such bodies as invalid; devices do not send them, other clients might).

use crate::answer::{Answer, Exit};
use crate::xml::Element;

/// Longest excerpt of a refused body quoted in the error.
const EXCERPT: usize = 200;

/// Strips a byte-order mark and an XML declaration, which cannot stand inside the wrapper
/// element (PHP refused such bodies; devices do not send them, but other clients might).
fn strip_declaration(content: &[u8]) -> &[u8] {
    let c = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    let trimmed = c.trim_ascii_start();
    if trimmed.starts_with(b"<?xml")
        && let Some(end) = trimmed.windows(2).position(|w| w == b"?>")
    {
        return &trimmed[end + 2..];
    }
    c
}

/// Why a query result was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("not valid UTF-8")]
    Encoding,
    #[error("a DOCTYPE is not allowed in a query result")]
    Doctype,
    #[error("{0}")]
    Xml(#[from] crate::xml::XmlError),
}

/// Whether the document contains a DOCTYPE anywhere (the element tree reads over them).
fn has_doctype(doc: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(doc);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::DocType(_)) => return true,
            Ok(quick_xml::events::Event::Eof) | Err(_) => return false,
            Ok(_) => {}
        }
    }
}

/// Parses a query result as the element `<ID>content</ID>`.
pub fn parse(id: &str, content: &[u8]) -> Result<Element, QueryError> {
    let mut doc = Vec::with_capacity(content.len() + 2 * id.len() + 5);
    doc.extend_from_slice(format!("<{id}>").as_bytes());
    doc.extend_from_slice(strip_declaration(content));
    doc.extend_from_slice(format!("</{id}>").as_bytes());
    let text = String::from_utf8(doc).map_err(|_| QueryError::Encoding)?;
    if has_doctype(&text) {
        return Err(QueryError::Doctype);
    }
    Ok(Element::parse_str(&text)?)
}

/// Stores a query result in the answer's state (PHP's `saveQuery`). Without state tracking
/// nothing is stored, as in PHP.
pub fn save(ans: &mut Answer, sn: &str, id: &str, content: &[u8]) -> Result<(), Exit> {
    if ans.state_mut().is_none() {
        return Ok(());
    }
    let mut result = match parse(id, content) {
        Ok(el) => el,
        Err(e) => {
            let excerpt: String = String::from_utf8_lossy(content)
                .chars()
                .take(EXCERPT)
                .collect();
            return Err(ans.bailout(&format!("invalid xml: {e}: {excerpt}")));
        }
    };
    result.set_attr("seen", ans.now.to_string());
    if let Some(state) = ans.state_mut() {
        let queries = state.root.child_or_insert("queries");
        queries.remove_children(id);
        queries.children.push(result);
    }
    ans.comment(&format!("queries {id} for {sn} saved"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::php::Args;
    use crate::state::Loaded;

    fn answer() -> Answer {
        Answer::new(
            Some("status"),
            &Args::parse("sn=00-90"),
            &Loaded::Missing,
            77,
            Default::default(),
        )
    }

    #[test]
    fn stores_and_replaces_results() {
        let mut a = answer();
        save(&mut a, "00-90", "admin", br#"<info name="A"/>"#)
            .map_err(|_| "exit")
            .expect("save");
        save(&mut a, "00-90", "admin", br#"<info name="B"/>"#)
            .map_err(|_| "exit")
            .expect("save");
        let q = a
            .state()
            .and_then(|s| s.root.child("queries"))
            .expect("queries");
        assert_eq!(q.children.len(), 1);
        assert_eq!(
            q.to_xml(),
            r#"<queries><admin seen="77"><info name="B"/></admin></queries>"#
        );
    }

    #[test]
    fn refuses_invalid_xml_and_entities() {
        for bad in [
            &b"<info"[..],
            b"<!DOCTYPE x [<!ENTITY e \"b\">]><info>&e;</info>",
            b"<!DOCTYPE x [<!ENTITY e \"b\">]><info a=\"&e;\"/>",
            b"<!DOCTYPE info SYSTEM \"file:///etc/passwd\"><info/>",
            b"<info/><!DOCTYPE x>",
            b"<!doctype x><info/>",
            b"<info>&unknown;</info>",
            b"<a/><",
            b"</admin><admin>",
            b"\xff",
            b"<info name=\"M\xfcller\"/>",
        ] {
            let mut a = answer();
            assert!(save(&mut a, "00-90", "admin", bad).is_err(), "{bad:?}");
            assert!(a.state_to_write().is_none());
            assert!(a.state().is_none_or(|s| s.root.child("queries").is_none()));
            let out = String::from_utf8_lossy(&a.out).into_owned();
            assert!(out.starts_with("# invalid xml: "), "{out}");
            assert_eq!(out.lines().count(), 1, "{out}");
        }
    }

    #[test]
    fn a_refused_result_keeps_the_stored_one() {
        let mut a = answer();
        save(&mut a, "00-90", "admin", br#"<info name="A"/>"#)
            .map_err(|_| "exit")
            .expect("save");
        assert!(
            save(
                &mut a,
                "00-90",
                "admin",
                b"<info name=\"B\"\r\nconfig change X"
            )
            .is_err()
        );
        let q = a
            .state()
            .and_then(|s| s.root.path(&["queries", "admin", "info"]));
        assert_eq!(q.and_then(|i| i.attr("name")), Some("A"));
        // the refused body is quoted escaped: it cannot add command lines
        let out = String::from_utf8_lossy(&a.out).into_owned();
        assert!(!out.lines().any(|l| l.starts_with("config")), "{out}");
    }

    #[test]
    fn stores_what_php_recorded() {
        // tests/conformance/query-put-stores-state: the stored <queries> element
        let mut a = answer();
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/conformance/query-put-stores-state/"
        );
        let x509 = std::fs::read(format!("{dir}bodies/x509.xml")).expect("body");
        for (id, body) in [
            ("certificates", &x509[..]),
            ("admin", br#"<info name="Reception Desk" type="IP232"/>"#),
            ("admin", br#"<info name="Front Desk" type="IP232"/>"#),
        ] {
            save(&mut a, "00-90-33-30-00-af", id, body)
                .map_err(|_| "exit")
                .expect("save");
        }
        let recorded =
            std::fs::read_to_string(format!("{dir}expected/files/status/00-90-33-30-00-af.xml"))
                .expect("recording");
        let start = recorded.find("<queries>").expect("queries");
        let end = recorded.find("</queries>").expect("queries") + "</queries>".len();
        let expected = recorded[start..end].replace("[TS]", "77");
        let q = a
            .state()
            .and_then(|s| s.root.child("queries"))
            .expect("queries");
        assert_eq!(q.to_xml(), expected);
        assert_eq!(
            String::from_utf8_lossy(&a.out).lines().last(),
            Some("# queries admin for 00-90-33-30-00-af saved")
        );
    }

    #[test]
    fn mixed_content_keeps_text_before_the_elements() {
        // PHP's addChildFromXml adds the element's text first, then its children
        let el = parse("q", b"a<b/>c<d x=\"1\">t</d>").expect("parse");
        assert_eq!(el.to_xml(), r#"<q>ac<b/><d x="1">t</d></q>"#);
        let el = parse("q", b"<![CDATA[<x>]]>&amp;&#65;").expect("parse");
        assert_eq!(el.text, "<x>&A");
    }

    #[test]
    fn nothing_is_stored_without_state_tracking() {
        let mut a = Answer::new(
            None,
            &Args::parse("sn=00-90"),
            &Loaded::Missing,
            77,
            Default::default(),
        );
        assert!(save(&mut a, "00-90", "admin", b"not even xml").is_ok());
        assert!(a.state().is_none() && a.out.is_empty());
    }

    #[test]
    fn accepts_a_declaration() {
        let el = parse("admin", b"<?xml version=\"1.0\"?>\n<info name=\"x\"/>").expect("parse");
        assert_eq!(el.to_xml(), "<admin>\n<info name=\"x\"/></admin>");
    }
}
