//! Device facts and state: missing arguments, stdargs, fast polling, phases, skipnext, stored state, proxies.

use super::*;

#[test]
fn missing_arguments_rewrite_the_url_with_macros() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll("env=default&foo=a%2Fb");
    // state args first (polling, phase), then the missing std args as #-macros, then the rest
    let url = "http://upd.example/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i&env=default&foo=a%2Fb";
    assert_eq!(
        commands(&out),
        vec![
            "mod cmd UP1 provision 5".to_string(),
            "config add UP1 /poll 1".to_string(),
            format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes())),
            "config add UP1 /no-dhcp".to_string(),
            "config write".to_string(),
            "config activate".to_string(),
        ]
    );
    assert!(
        out.state.is_none(),
        "PHP exits without writing the state here"
    );
}

#[test]
fn value_less_stdargs_are_dropped_from_the_url() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll("type=IP232&sn=1&PROT=130178&CHECK=abc&phase=update&polling=0");
    let url = "http://upd.example/u/update.php?hwid=#h&ip=#i&type=#t&sn=#m&phase=update&polling=0";
    assert_eq!(
        commands(&out)[0],
        format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes()))
    );
}

#[test]
fn staging_turns_fast_polling_on_then_off() {
    let case = Case::new(&format!(
        r#"{STATUS}<phases><phase id="staging" seq="100"/></phases></config>"#
    ))
    .snippet("staging-all-default.txt", 1000, "config change S /s 1\n");
    let first = case.poll(SN_POLL);
    let c = commands(&first);
    assert_eq!(c[0], "config change S /s 1");
    assert_eq!(c[1], "mod cmd UP1 provision 5");
    assert_eq!(c[2], "config add UP1 /poll 1");
    let url = "http://upd.example/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i";
    assert_eq!(
        c[3],
        format!("config add UP1 /url {}", php::rawurlencode(url.as_bytes()))
    );
    assert!(
        !c.iter().any(|l| l.contains("check ser")),
        "no CHECK before the last phase"
    );
    let second = case.poll(&format!("polling=5&phase=update&{SN_POLL}"));
    let c = commands(&second);
    assert_eq!(
        &c[0..3],
        [
            "mod cmd UP1 provision 0",
            "config rem UP1 /provision",
            "config add UP1 /poll 15"
        ]
    );
}

#[test]
fn invalid_phase_and_environment_end_the_script() {
    let case = Case::new(&format!("{STATUS}</config>"));
    let out = case.poll(&format!("{SN_POLL}&phase=bogus"));
    assert_eq!(text(&out), "# \r\n# invalid phase: 'bogus'\r\n");
    let out = case.poll(&format!("{SN_POLL}&env=mars"));
    assert_eq!(text(&out), "# \r\n# invalid environment: 'mars' (mars)\r\n");
}

#[test]
fn skipnext_only_runs_queries() {
    let mut st = state::new_state("00-90-33-30-00-af");
    st.root.set_attr("skipnext", (NOW - 60).to_string());
    let mut case = Case::new(&format!(
        r#"{STATUS}<queries><query id="admin"><applies>*</applies></query></queries></config>"#
    ))
    .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.state = Loaded::Ok(Arc::new(st));
    let out = case.poll(SN_POLL);
    assert_eq!(
        commands(&out),
        vec![
            "mod cmd UP0 scfg http://upd.example/u/update.php?mode=query&sn=#m&id=admin ser nop /always mod%20cmd%20CMD0%20xml-info"
        ]
    );
    assert_eq!(out.state.expect("state").root.attr("skipnext"), None);
}

#[test]
fn corrupt_state_is_replaced_with_the_error_noted() {
    let mut case = Case::new(&format!("{STATUS}</config>"));
    case.state = Loaded::Corrupt {
        error: "not well-formed".into(),
        raw: "<state".into(),
    };
    let out = case.poll(SN_POLL);
    let st = out.state.expect("state");
    assert_eq!(st.root.attr("error"), Some("not well-formed(<state)"));
    assert_eq!(
        st.root.child("device").and_then(|d| d.attr("type")),
        Some("IP232")
    );
}

#[test]
fn forwarded_for_sets_ip_and_proxy() {
    let mut case = Case::new(&format!("{STATUS}</config>"));
    case.conn.forwarded_for = Some("10.1.2.3, 192.168.1.1".into());
    let st = case.poll(SN_POLL).state.expect("state");
    let dev = st.root.child("device").expect("device");
    assert_eq!(dev.attr("ip"), Some("10.1.2.3"));
    assert_eq!(dev.attr("rp"), Some("true"));
    assert_eq!(dev.attr("proxy"), Some("127.0.0.1"));
    assert_eq!(dev.attr("realip"), Some("10.0.0.5"));
}
