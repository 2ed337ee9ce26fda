use super::*;

fn entry(t: i64, m: &str) -> Element {
    let mut e = Element::new("msgs");
    e.set_attr("time", t.to_string());
    e.set_attr("msg", m);
    e
}

/// Bytes of text the log keeps (dropped or not).
fn text_bytes(l: &MsgLog) -> usize {
    let parts = l.parts();
    parts.shared_text.len() + parts.tail_text.len()
}

fn texts(l: &MsgLog) -> Vec<String> {
    l.iter()
        .map(|e| format!("{}:{}:{}", e.time, e.at, e.msg()))
        .collect()
}

#[test]
fn entries_keep_their_text_time_and_place() {
    let mut l = MsgLog::default();
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
    let mut l = MsgLog::default();
    for poll in 0..50 {
        l.push_msg(0, poll, "");
        l.push_msg(0, poll, "the same words each time");
        l.push_msg(0, poll, &format!("only once: {poll}"));
        l.drop_front(l.len().saturating_sub(60));
        l = l.clone();
    }
    assert_eq!(l.len(), 60);
    assert!(
        text_bytes(&l) < 2 * 4096,
        "{} bytes of text",
        text_bytes(&l)
    );
    let texts: Vec<String> = l.iter().map(|e| e.msg()).collect();
    assert_eq!(texts[1..3], ["the same words each time", "only once: 30"]);
    assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    // a compacted copy keeps one text for all entries that share it
    let mut copy = l.clone();
    copy.fold(true);
    let once = "the same words each time".len();
    assert!(text_bytes(&copy) < once + 20 * "only once: 30".len() + 100);
    assert_eq!(copy, l);
    assert_eq!(copy.xml_len(), l.xml_len());
}

#[test]
fn unique_messages_do_not_pile_up_in_the_text() {
    let mut l = MsgLog::default();
    for poll in 0..2000 {
        l.push_msg(0, poll, &format!("{poll:0>40}"));
        l.drop_front(l.len().saturating_sub(10));
        l = l.clone();
    }
    // dropped texts go when they outweigh the live ones, at the latest at a fold
    let bound = 4096 + (TAIL + 1) * 40;
    assert!(text_bytes(&l) <= bound, "{} bytes of text", text_bytes(&l));
}

#[test]
fn entries_of_another_form_keep_their_xml() {
    let mut odd = Element::new("msgs");
    odd.set_attr("msg", "x");
    odd.set_attr("time", "5");
    let mut padded = entry(7, "y");
    padded.set_attr("time", "007");
    let mut l = MsgLog::default();
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
    let mut l = MsgLog::default();
    for i in 0..300 {
        l.push_msg(0, i, &format!("m{i}"));
    }
    let shared = l.clone();
    l.drop_front(250);
    assert_eq!(l.len(), 50);
    assert_eq!(shared.len(), 300, "the copy is not changed");
    assert_eq!(l.iter().next().map(|e| e.msg()).as_deref(), Some("m250"));
    assert_eq!(l.skip, 0, "compacted once most entries are gone");
    assert!(l.tail.is_none());
    let b = l.shared.as_deref().expect("buffer");
    assert!(b.text.starts_with("m250m251"));
    assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    let copy = l.clone();
    assert_eq!(copy, l);
    assert_ne!(copy, shared);
    l.drop_front(50);
    assert!(l.is_empty() && l.shared.is_none() && l.tail.is_none());
}

#[test]
fn writes_runs_before_their_children() {
    let mut l = MsgLog::default();
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

/// A log of `n` entries `m0`, `m1`, … (every third a ruler), all at position 2.
fn filled(n: i64) -> MsgLog {
    let mut l = MsgLog::default();
    for i in 0..n {
        let m = if i % 3 == 0 {
            String::new()
        } else {
            format!("m{i}")
        };
        l.push_msg(2, i, &m);
    }
    l
}

#[test]
fn a_copy_adds_and_drops_without_touching_the_shared_part() {
    let mut orig = filled(200);
    orig.drop_front(5);
    let before = texts(&orig);
    let shared = orig.shared.clone().expect("shared part");
    let mut copy = orig.clone();
    copy.push_msg(4, 1000, "");
    copy.push_msg(4, 1000, "new");
    copy.drop_front(3);
    assert_eq!(texts(&orig), before, "the original is not changed");
    assert_eq!(orig.len(), 195);
    assert_eq!(copy.len(), 194);
    let read = texts(&copy);
    assert_eq!(read[..2], ["8:2:m8", "9:2:"]);
    assert_eq!(read[192..], ["1000:4:", "1000:4:new"]);
    assert_eq!(read[..192], before[3..]);
    let kept = copy.shared.as_ref().expect("shared part");
    assert!(Arc::ptr_eq(kept, &shared), "the shared part is not copied");
    assert_eq!(Arc::strong_count(&shared), 3);
    for l in [&orig, &copy] {
        assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    }
}

#[test]
fn a_full_tail_is_folded_keeping_order_places_and_shared_texts() {
    let mut l = MsgLog::default();
    for i in 0..TAIL as i64 {
        l.push_msg(i as usize, i, "same");
    }
    assert!(l.shared.is_none(), "all in the tail");
    let tail = l.parts().tail.to_vec();
    assert!(tail.iter().all(|e| e.text == tail[0].text), "kept once");
    l.push_msg(99, 99, "same");
    l.push_msg(100, 100, "other");
    let shared = l.shared.as_deref().expect("folded");
    assert_eq!(shared.entries, tail, "entries and offsets as they were");
    assert_eq!(shared.text, "same");
    let parts = l.parts();
    assert_eq!(parts.tail.len(), 2);
    assert_eq!(
        parts.tail[0].text, tail[0].text,
        "the tail points into the shared text"
    );
    assert_eq!(parts.tail_text, "other");
    let mut want: Vec<String> = (0..TAIL).map(|i| format!("{i}:{i}:same")).collect();
    want.extend(["99:99:same".into(), "100:100:other".into()]);
    assert_eq!(texts(&l), want);
    assert_eq!(l.xml_len(), l.iter().map(|e| e.xml().len()).sum::<usize>());
    // dropping into the tail folds it first: its texts stay readable
    l.drop_front(TAIL + 1);
    assert_eq!(texts(&l), ["100:100:other"]);
    assert_eq!(l.xml_len(), r#"<msgs time="100" msg="other"/>"#.len());
}

#[test]
fn a_log_sharing_its_part_charges_all_it_holds() {
    let mut l = filled(100);
    let shared = l.shared.as_deref().expect("shared part");
    let own = shared.text.capacity()
        + shared.entries.capacity() * ENTRY_BYTES
        + std::mem::size_of::<parts::Part>();
    let tail = l.tail.as_deref().expect("tail");
    let tail_bytes = tail.text.capacity()
        + tail.entries.capacity() * ENTRY_BYTES
        + std::mem::size_of::<parts::Part>();
    assert_eq!(l.heap_bytes(), own + tail_bytes);
    assert!(l.heap_bytes() > 100 * ENTRY_BYTES);
    let copy = l.clone();
    assert_eq!(
        copy.heap_bytes(),
        l.heap_bytes(),
        "a copy holds the same buffers"
    );
    l.push_msg(0, 1000, "x");
    let grown = l.tail.as_deref().expect("tail");
    assert!(
        grown.entries.capacity() > grown.entries.len(),
        "room to add"
    );
    let tail_bytes = grown.text.capacity()
        + grown.entries.capacity() * ENTRY_BYTES
        + std::mem::size_of::<parts::Part>();
    assert_eq!(
        l.heap_bytes(),
        own + tail_bytes,
        "the shared part still counts"
    );
}

/// What a log should read back, kept as a plain list.
type Model = Vec<(i64, usize, String)>;

fn read(l: &MsgLog) -> Model {
    l.iter().map(|e| (e.time, e.at, e.msg())).collect()
}

proptest::proptest! {
    /// Copies, additions and drops in any order read back as a plain list would, and write
    /// the same XML.
    #[test]
    fn copies_read_back_like_a_list(ops in proptest::collection::vec((0u8..4, 0usize..40), 1..300)) {
        let (mut logs, mut models) = (vec![MsgLog::default()], vec![Model::new()]);
        for (step, (op, arg)) in ops.into_iter().enumerate() {
            let i = arg % logs.len();
            match op {
                0 => {
                    logs.push(logs[i].clone());
                    models.push(models[i].clone());
                }
                1 => {
                    let n = arg.min(models[i].len());
                    logs[i].drop_front(arg);
                    models[i].drain(..n);
                }
                _ => {
                    let msg = match arg % 4 {
                        0 => String::new(),
                        1 => format!("<{}>", arg % 7),
                        _ => format!("step {step}"),
                    };
                    logs[i].push_msg(arg, step as i64, &msg);
                    models[i].push((step as i64, arg, msg));
                }
            }
            if logs.len() > 6 {
                logs.remove(0);
                models.remove(0);
            }
        }
        for (l, m) in logs.iter().zip(&models) {
            proptest::prop_assert_eq!(&read(l), m);
            let xml: Vec<String> = m
                .iter()
                .map(|(t, _, msg)| entry(*t, msg).to_xml())
                .collect();
            let written: Vec<String> = l.iter().map(|e| e.xml().into_owned()).collect();
            proptest::prop_assert_eq!(&written, &xml);
            proptest::prop_assert_eq!(l.xml_len(), xml.concat().len());
        }
    }
}

#[test]
fn marks_are_the_times_and_rulers_of_the_entries() {
    let mut log = MsgLog::default();
    for i in 0..40i64 {
        let msg = if i % 7 == 0 {
            String::new()
        } else {
            format!("m{}", i % 5)
        };
        log.push_msg(1, 100 + i, &msg);
    }
    log.drop_front(5);
    let copy = log.clone();
    log.push_msg(1, 200, "");
    let marks: Vec<(i64, bool)> = log.marks().collect();
    let expected: Vec<(i64, bool)> = log.iter().map(|e| (e.time, e.ruler)).collect();
    assert_eq!(marks.len(), 36);
    assert_eq!(marks, expected);
    assert_eq!(marks[0], (105, false));
    assert_eq!(marks[2], (107, true));
    assert_eq!(marks.last(), Some(&(200, true)));
    assert_eq!(copy.marks().count(), 35);
}

#[test]
fn a_repeated_block_is_found_where_the_last_match_was() {
    let mut log = MsgLog::default();
    let block = ["", "a", "bb", "ccc", "a"];
    for round in 0..4i64 {
        for m in block {
            log.push_msg(1, round, m);
        }
    }
    // "a" repeats within the block (3 back) and across blocks (5 back)
    assert_eq!(log.period, 5);
    let kept = text_bytes(&log);
    assert_eq!(kept, "abbccc".len(), "each text once");
    // a block in another order: the hint misses, the search still finds the texts
    for m in ["ccc", "", "bb", "new", "a"] {
        log.push_msg(1, 9, m);
    }
    assert_eq!(text_bytes(&log), kept + "new".len());
    let last: Vec<String> = texts(&log).into_iter().rev().take(5).collect();
    assert_eq!(last, ["9:1:a", "9:1:new", "9:1:bb", "9:1:", "9:1:ccc"]);
}

#[test]
fn a_log_costs_an_element_at_most_48_bytes() {
    assert!(
        std::mem::size_of::<MsgLog>() <= 48,
        "{}",
        std::mem::size_of::<MsgLog>()
    );
    let log = MsgLog::default();
    assert_eq!(log.time_floor(), i64::MIN, "not known: no time is promised");
    assert_eq!(log.len(), 0);
}
