//! PHP compatibility a device can see over HTTP: phase and environment ids compared with PHP's
//! loose `==`, and state files that stay well-formed XML 1.0 whatever a device sends.

use crate::common::{Server, make_root};

const NUMERIC_IDS: &str = r#"<config><master info=""/><status dir="status"/>
    <phases><phase id="10" seq="1"/><phase id="20" seq="2"/></phases>
    <environments><environment id="1"/><environment id="x"/></environments></config>"#;

const SN: &str = "00-90-33-30-00-af";

#[test]
fn numeric_phase_and_environment_ids_match_as_numbers_with_the_requests_spelling() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        NUMERIC_IDS,
        &[
            ("1e1-ip232-1.0.txt", "config change SPELLED /as request\n"),
            ("10-ip232-1.txt", "config change CONFIGURED /spelling\n"),
        ],
    );
    let server = Server::start(&root, &[]);
    let r = server.get(&format!(
        "/update.php?type=IP232&sn={SN}&hwid=IP232-30-00-af&ip=1.2.3.4&phase=1e1&env=1.0"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    assert!(!text.contains("invalid phase"), "{text}");
    assert!(!text.contains("invalid environment"), "{text}");
    let cmds = r.command_lines();
    assert!(
        cmds.iter()
            .any(|l| l == "config change SPELLED /as request"),
        "{text}"
    );
    assert!(!text.contains("CONFIGURED"), "{text}");
    // the next phase is the configured one after phase 10
    let state = std::fs::read_to_string(root.join(format!("status/{SN}.xml"))).expect("state");
    assert!(state.contains(r#"nextphase="20""#), "{state}");
    // " 1" is environment 1 as well; "1x" is not
    let r = server.get(&format!(
        "/update.php?type=IP232&sn={SN}&hwid=IP232-30-00-af&ip=1.2.3.4&phase=10&env=%201"
    ));
    assert!(!r.text().contains("invalid environment"), "{}", r.text());
    let r = server.get(&format!(
        "/update.php?type=IP232&sn={SN}&hwid=IP232-30-00-af&ip=1.2.3.4&phase=10&env=1x"
    ));
    assert!(
        r.text().contains("invalid environment: '1x' (1x)"),
        "{}",
        r.text()
    );
}

/// Parses a file with quick-xml's strict reader (XML 1.0 characters checked by hand: quick-xml
/// accepts raw control characters, so they are looked for in the bytes and in references).
fn assert_strict_xml(bytes: &[u8]) {
    use quick_xml::events::Event;
    for &b in bytes {
        assert!(
            b >= 0x20 || matches!(b, b'\t' | b'\n' | b'\r'),
            "raw control character {b:#04x} in {}",
            String::from_utf8_lossy(bytes)
        );
    }
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    for bad in ["&#1;", "&#x1;", "&#27;", "&#x1b;", "&#x1B;", "&#0;"] {
        assert!(!text.contains(bad), "{bad} in {text}");
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut depth = 0i32;
    loop {
        match reader.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(e)) => {
                depth += 1;
                for a in e.attributes() {
                    a.expect("attribute")
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("attribute value");
                }
            }
            Ok(Event::Empty(e)) => {
                for a in e.attributes() {
                    a.expect("attribute")
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .expect("attribute value");
                }
            }
            Ok(Event::End(_)) => depth -= 1,
            Ok(_) => {}
            Err(e) => panic!("not well-formed: {e}: {text}"),
        }
    }
    assert_eq!(depth, 0, "{text}");
}

#[test]
fn state_files_stay_well_formed_with_control_characters_from_the_device() {
    let dir = tempfile::tempdir().expect("tmp");
    let root = make_root(
        dir.path(),
        r#"<config><master info=""/><status dir="status"/></config>"#,
        &[],
    );
    let server = Server::start(&root, &[]);
    let r = server.get(&format!(
        "/update.php?type=IP232&sn={SN}&hwid=IP232-30-00-af&ip=1.2.3.4&phase=%1b"
    ));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("invalid phase"), "{}", r.text());
    let path = root.join(format!("status/{SN}.xml"));
    assert_strict_xml(&std::fs::read(&path).expect("state after the poll"));
    for body in [
        "<info name=\"a\x01b\">x\x01y</info>",
        "<info name=\"a&#1;b\">x&#1;y</info>",
    ] {
        let r = server.put(
            &format!("/update.php?mode=query&sn={SN}&id=admin"),
            body.as_bytes(),
        );
        assert!(r.status == 200 || r.status >= 400, "{}", r.text());
        assert_strict_xml(&std::fs::read(&path).expect("state after the query"));
    }
}
