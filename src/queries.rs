//! Query results: `update.php?mode=query&sn=…&id=…` with the XML a device's
//! `mod cmd … xml-info` produced, stored in the device state under `<queries><ID seen="…">`.
//!
//! Which queries a device runs is decided on the poll (`script`); this module stores what it
//! sends back. A new result replaces the previous one of the same id; invalid XML (or XML
//! with entity declarations, which are never expanded) is refused with a clear error and the
//! stored state stays as it was.

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

/// Parses a query result as the element `<ID>content</ID>`.
pub fn parse(id: &str, content: &[u8]) -> Result<Element, String> {
    let mut doc = Vec::with_capacity(content.len() + 2 * id.len() + 5);
    doc.extend_from_slice(format!("<{id}>").as_bytes());
    doc.extend_from_slice(strip_declaration(content));
    doc.extend_from_slice(format!("</{id}>").as_bytes());
    let text = String::from_utf8(doc).map_err(|_| "not valid UTF-8".to_string())?;
    Element::parse_str(&text).map_err(|e| e.to_string())
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
        let queries = state.child_or_insert("queries");
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
            1800,
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
        let q = a.state().and_then(|s| s.child("queries")).expect("queries");
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
            b"<a/><",
            b"\xff",
        ] {
            let mut a = answer();
            assert!(save(&mut a, "00-90", "admin", bad).is_err());
            assert!(a.state_to_write().is_none());
            assert!(String::from_utf8_lossy(&a.out).starts_with("# invalid xml: "));
        }
    }

    #[test]
    fn accepts_a_declaration() {
        let el = parse("admin", b"<?xml version=\"1.0\"?>\n<info name=\"x\"/>").expect("parse");
        assert_eq!(el.to_xml(), "<admin>\n<info name=\"x\"/></admin>");
    }
}
