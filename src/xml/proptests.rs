//! Property tests: what the writer produces is well-formed XML 1.0 that reads back; the
//! reader never panics.

use super::*;
use proptest::prelude::*;

/// What a written string reads back as.
fn sanitized(s: &str) -> String {
    s.chars()
        .map(|c| if forbidden(c) { REPLACEMENT } else { c })
        .collect()
}

/// Reads `doc` with quick-xml checking end names and comments, resolving every reference.
fn strict_read(doc: &str) -> Result<(), String> {
    let mut reader = Reader::from_str(doc);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(s) | Event::Empty(s) => {
                for a in s.attributes().with_checks(true) {
                    let a = a.map_err(|e| e.to_string())?;
                    a.normalized_value_with(
                        quick_xml::XmlVersion::Implicit1_0,
                        1,
                        predefined_entity,
                    )
                    .map_err(|e| e.to_string())?;
                }
            }
            Event::GeneralRef(r) => {
                let known = r.resolve_char_ref().map_err(|e| e.to_string())?.is_some()
                    || predefined_entity(&r).is_some();
                if !known {
                    return Err("unknown entity".into());
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

#[test]
fn control_characters_from_requests_are_replaced() {
    let mut el = Element::new("state");
    el.set_attr("phase", "\u{1b}[31m\0x\u{FFFF}");
    el.text = "\u{1}a\u{FFFE}".into();
    let doc = el.to_document();
    assert_eq!(
        doc,
        "<?xml version=\"1.0\"?>\n<state phase=\"\u{FFFD}[31m\u{FFFD}x\u{FFFD}\">\u{FFFD}a\u{FFFD}</state>\n"
    );
    assert!(strict_read(&doc).is_ok());
    assert!(Element::parse_str(&doc).is_ok());
}

#[test]
fn reader_refuses_characters_xml_cannot_hold() {
    for doc in [
        "<info>\u{1}</info>",
        "<info>&#1;</info>",
        "<info>&#x1b;</info>",
        "<info a=\"&#27;\"/>",
        "<info a=\"\u{1b}\"/>",
        "<info>&#xFFFE;</info>",
        "<info><![CDATA[\u{8}]]></info>",
    ] {
        assert!(Element::parse_str(doc).is_err(), "{doc:?}");
    }
    let ok = Element::parse_str("<info a=\"&#9;&#10;&#13;\">&#9;&#xFFFD;</info>").expect("ok");
    assert_eq!(ok.attr("a"), Some("\t\n\r"));
    assert_eq!(ok.text, "\t\u{FFFD}");
}

proptest! {
    #[test]
    fn written_documents_are_well_formed(attr in any::<String>(), text in any::<String>(), child in any::<String>()) {
        let mut el = Element::new("state");
        el.set_attr("a", attr.clone());
        el.text = text.clone();
        el.child_or_insert("device").set_attr("msg", child.clone());
        let doc = el.to_document();
        prop_assert!(!doc.contains(forbidden));
        prop_assert_eq!(strict_read(&doc), Ok(()));
        let back = Element::parse_str(&doc);
        prop_assert!(back.is_ok(), "{:?}", back);
        let back = back.unwrap_or_default();
        let (sa, sc) = (sanitized(&attr), sanitized(&child));
        prop_assert_eq!(back.attr("a"), Some(sa.as_str()));
        prop_assert_eq!(&back.text, &sanitized(&text));
        prop_assert_eq!(
            back.child("device").and_then(|d| d.attr("msg")),
            Some(sc.as_str())
        );
        let (about, at_most) = el.document_len();
        prop_assert!(doc.len() <= at_most, "{} > {}", doc.len(), at_most);
        if !doc.contains('&') && !doc.contains(REPLACEMENT) {
            prop_assert_eq!(doc.len(), about);
        }
        let pretty = el.to_pretty_document();
        prop_assert!(!pretty.contains(forbidden));
        prop_assert_eq!(strict_read(&pretty), Ok(()));
    }

    #[test]
    fn reader_never_panics(doc in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Element::parse(&doc);
    }

    #[test]
    fn reader_never_panics_on_xml_like_text(doc in "[<>/a-c=\"'&#;x0-9 \\[\\]!?-]{0,120}") {
        let _ = Element::parse(doc.as_bytes());
        let _ = Element::parse_str(&doc);
    }
}
