use super::*;

fn entry(t: i64, m: &str) -> Element {
    let mut e = Element::new("msgs");
    e.set_attr("time", t.to_string());
    e.set_attr("msg", m);
    e
}

fn texts(l: &Log) -> Vec<String> {
    l.iter()
        .map(|e| format!("{}:{}:{}", e.time, e.at, e.msg()))
        .collect()
}

#[test]
fn entries_keep_their_text_time_and_place() {
    let mut l = Log::default();
    assert!(l.is_empty());
    l.push(&entry(5, "a<b"), 1, 5);
    l.push_msg(3, 6, "");
    l.push_msg(3, 7, "c\"&d");
    assert_eq!(texts(&l), ["5:1:a<b", "6:3:", "7:3:c\"&d"]);
    let rulers: Vec<bool> = l.iter().map(|e| e.ruler).collect();
    assert_eq!(rulers, [false, true, false]);
    let xml: Vec<String> = l.iter().map(|e| e.xml().into_owned()).collect();
    assert_eq!(
        xml,
        [
            r#"<msgs time="5" msg="a&lt;b"/>"#,
            r#"<msgs time="6" msg=""/>"#,
            r#"<msgs time="7" msg="c&quot;&amp;d"/>"#
        ]
    );
    assert_eq!(
        xml[2],
        entry(7, "c\"&d").to_xml(),
        "as an element writes it"
    );
    assert_eq!(l.xml_len(), xml.concat().len());
}

#[test]
fn a_message_repeated_by_the_next_poll_is_kept_once() {
    let mut l = Log::default();
    for poll in 0..50 {
        l.push_msg(0, poll, "");
        l.push_msg(0, poll, "the same words each time");
        l.push_msg(0, poll, &format!("only once: {poll}"));
        l.drop_front(l.len().saturating_sub(60));
        l = l.clone();
    }
    assert_eq!(l.len(), 60);
    let b = l.0.as_deref().expect("buffer");
    assert!(b.text.len() < 2 * 4096, "{} bytes of text", b.text.len());
    let texts: Vec<String> = l.iter().map(|e| e.msg()).collect();
    assert_eq!(texts[1..3], ["the same words each time", "only once: 30"]);
    assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    // a compacted copy keeps one text for all entries that share it
    let c = b.compacted();
    let once = "the same words each time".len();
    assert!(c.text.len() < once + 20 * "only once: 30".len() + 100);
    let copy = Log(Some(Arc::new(c)));
    assert_eq!(copy, l);
}

#[test]
fn unique_messages_do_not_pile_up_in_the_text() {
    let mut l = Log::default();
    for poll in 0..2000 {
        l.push_msg(0, poll, &format!("{poll:0>40}"));
        l.drop_front(l.len().saturating_sub(10));
        l = l.clone();
    }
    let b = l.0.as_deref().expect("buffer");
    assert!(b.text.len() <= 4096 + 41, "{} bytes of text", b.text.len());
}

#[test]
fn entries_of_another_form_keep_their_xml() {
    let mut odd = Element::new("msgs");
    odd.set_attr("msg", "x");
    odd.set_attr("time", "5");
    let mut padded = entry(7, "y");
    padded.set_attr("time", "007");
    let mut l = Log::default();
    l.push(&odd, 0, 5);
    l.push(&padded, 0, 7);
    l.push(&entry(-3, "z"), 0, -3);
    let xml: Vec<String> = l.iter().map(|e| e.xml().into_owned()).collect();
    assert_eq!(
        xml,
        [
            r#"<msgs msg="x" time="5"/>"#,
            r#"<msgs time="007" msg="y"/>"#,
            r#"<msgs time="-3" msg="z"/>"#
        ]
    );
    let raw: Vec<bool> = l.iter().map(|e| e.raw).collect();
    assert_eq!(raw, [true, true, false]);
    assert_eq!(l.xml_len(), xml.concat().len());
    assert_eq!(texts(&l), ["5:0:x", "7:0:y", "-3:0:z"]);
}

#[test]
fn dropping_and_copying_keep_the_live_entries_only() {
    let mut l = Log::default();
    for i in 0..300 {
        l.push_msg(0, i, &format!("m{i}"));
    }
    let shared = l.clone();
    l.drop_front(250);
    assert_eq!(l.len(), 50);
    assert_eq!(shared.len(), 300, "the copy is not changed");
    assert_eq!(l.iter().next().map(|e| e.msg()).as_deref(), Some("m250"));
    let b = l.0.as_deref().expect("buffer");
    assert_eq!(b.head, 0, "compacted once most entries are gone");
    assert!(b.text.starts_with("m250m251"));
    assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    let copy = l.clone();
    assert_eq!(copy, l);
    assert_ne!(copy, shared);
    l.drop_front(50);
    assert!(l.is_empty() && l.0.is_none());
}

#[test]
fn writes_runs_before_their_children() {
    let mut l = Log::default();
    l.push(&entry(1, "a"), 0, 1);
    l.push(&entry(2, "b"), 1, 2);
    l.push(&entry(3, "c"), 1, 3);
    l.push(&entry(4, "d"), 5, 4);
    let (mut out, mut next) = (String::new(), 0);
    l.write_until(Some(0), &mut next, &mut out);
    out.push('|');
    l.write_until(Some(1), &mut next, &mut out);
    out.push('|');
    l.write_until(None, &mut next, &mut out);
    assert_eq!(
        out,
        concat!(
            r#"<msgs time="1" msg="a"/>|<msgs time="2" msg="b"/>"#,
            r#"<msgs time="3" msg="c"/>|<msgs time="4" msg="d"/>"#
        )
    );
}
