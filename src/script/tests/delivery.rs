//! Snippet delivery: order, CHECK signature, grace period, the hook, unreadable files, injection.

use super::*;

#[test]
fn delivers_snippets_in_order_with_check_signature() {
    let case = Case::new(&format!("{STATUS}</config>"))
        .snippet(
            "update-phone-default.txt",
            1000,
            "  config change B /y 2  \n\n",
        )
        .snippet("update-all-default.txt", 1000, "config change A /x 1\r\n")
        .snippet("update-phone-other.txt", 1000, "config change C /z 3\n");
    let out = case.poll(SN_POLL);
    assert_eq!(
        commands(&out),
        vec![
            "config change A /x 1",
            "  config change B /y 2",
            "config write",
            "config activate",
            // md5("config change A /x 1" . "config change B /y 2")
            "mod cmd UP1 check ser 93f7ad74c7074e5cce311cfb62650f93",
            "iresetn",
        ]
    );
    let state = out.state.expect("state written");
    let configs: Vec<_> = state
        .root
        .children_named("config")
        .map(|c| c.attr("filename").unwrap_or("").to_string())
        .collect();
    assert_eq!(
        configs,
        vec![
            "scripts/update-all-default.txt",
            "scripts/update-phone-default.txt"
        ]
    );
    let version = state
        .root
        .children_named("config")
        .next()
        .and_then(|c| c.attr("version"));
    assert_eq!(version, Some((NOW - 1000).to_string().as_str()));
}

#[test]
fn a_good_check_value_delivers_nothing() {
    let case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    let first = case.poll(SN_POLL);
    let check = commands(&first)
        .into_iter()
        .find_map(|l| l.strip_prefix("mod cmd UP1 check ser ").map(str::to_string))
        .expect("check line");
    let again = case.poll(&format!("{SN_POLL}&CHECK={check}"));
    assert!(commands(&again).is_empty(), "{}", text(&again));
    assert!(text(&again).contains(&format!("CHECK serial {check} is good")));
}

#[test]
fn grace_period_holds_back_everything() {
    let case = Case::new(&format!("{STATUS}</config>"))
        .snippet("update-all-default.txt", 3600, "config change A /x 1\n")
        .snippet("update-phone-default.txt", 30, "config change B /y 2\n");
    let out = case.poll(SN_POLL);
    assert!(commands(&out).is_empty(), "{}", text(&out));
    assert!(text(&out).contains("files being updated (scripts/update-phone-default.txt 30s old, waiting for at least 90s to expire)"));
    assert!(out.state.is_some(), "notify(.., true) writes the state");
}

#[test]
fn request_text_cannot_inject_command_lines() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll(&format!("{SN_POLL}&phase=x%0D%0Airesetn%0D%0A%23"));
    assert!(commands(&out).is_empty(), "{}", text(&out));
    let out = case.poll(&format!("{SN_POLL}&env=y%0Airesetn"));
    assert!(commands(&out).is_empty(), "{}", text(&out));
    let out = case.poll(&format!("{SN_POLL}&PROT=1%0Airesetn"));
    assert!(
        !commands(&out)
            .iter()
            .any(|l| l == "1" || l.starts_with("iresetn\n"))
    );
}

#[test]
fn a_serial_number_with_line_breaks_stays_in_its_comments() {
    // the serial number is a candidate environment: its name is listed, escaped
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll("type=IP232&sn=1%0D%0Airesetn%7F%09x&hwid=h&ip=10.0.0.5");
    let text = text(&out);
    let line = "# scripts/update-phone-1\\r\\niresetn? x.txt   \r\n";
    assert!(text.contains(line), "{text}");
    assert_eq!(text.matches("\niresetn").count(), 1, "{text}");
}

#[test]
fn the_hook_adds_lines_and_counts_into_check() {
    let mut case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    case.hook = true;
    match case.run(SN_POLL) {
        Outcome::Need(Need::Hook(state)) => {
            assert_eq!(
                state.root.child("device").and_then(|d| d.attr("type")),
                Some("IP232")
            );
        }
        other => panic!("{other:?}"),
    }
    case.resolved.hook = Some(HookAnswer {
        pre: vec![b"pre1".to_vec()],
        post: vec![b"post1".to_vec()],
        standard: true,
        error: None,
    });
    let c = commands(&case.poll(SN_POLL));
    assert_eq!(&c[0..3], ["pre1", "config change A /x 1", "post1"]);
    // md5("pre1" . "config change A /x 1" . "post1")
    assert!(c.contains(&"mod cmd UP1 check ser bc061bcc3aedb699c032809b712e7870".to_string()));
    case.resolved.hook = Some(HookAnswer {
        pre: vec![b"pre1".to_vec()],
        post: vec![b"post1".to_vec()],
        standard: false,
        error: None,
    });
    let c = commands(&case.poll(SN_POLL));
    assert_eq!(&c[0..2], ["pre1", "post1"]);
    // md5("pre1" . "post1"): suppressed snippets do not count
    assert!(c.contains(&"mod cmd UP1 check ser b0d0b338e0a556bdffa1f26808c55ba7".to_string()));
    case.resolved.hook = Some(HookAnswer {
        standard: true,
        error: Some("boom".into()),
        ..Default::default()
    });
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("# snippet hook failed: boom"));
    assert_eq!(commands(&out)[0], "config change A /x 1");
}

#[test]
fn unreadable_snippets_are_listed_not_delivered() {
    let mut case = Case::new(&format!("{STATUS}</config>")).snippet(
        "update-all-default.txt",
        1000,
        "config change A /x 1\n",
    );
    case.snippets.insert(
        "update-phone-default.txt".into(),
        Snippet {
            mtime: NOW - 1000,
            content: Err("permission denied".into()),
            signature_part: Arc::new(Vec::new()),
        },
    );
    let out = case.poll(SN_POLL);
    assert!(
        text(&out)
            .contains("# scripts/update-phone-default.txt   (cannot read: permission denied)")
    );
    assert_eq!(commands(&out)[0], "config change A /x 1");
}
