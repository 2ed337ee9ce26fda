//! The poll's decision: magic words, validity, issuers, requests to create.

use super::*;

#[test]
fn magic_words() {
    let st = state(None, Some("Reception Desk"));
    assert_eq!(
        replace_magics(b"{hwid}.x", &st, None),
        b"IP232-30-00-af.x".to_vec()
    );
    assert_eq!(replace_magics(b"{sn}", &st, None), b"0090333000af".to_vec());
    assert_eq!(
        replace_magics(b"{name}.example", &st, None),
        b"reception-desk.example".to_vec()
    );
    assert_eq!(
        replace_magics(b"{realip}/{ip}", &st, None),
        b"172.16.1.2/127.0.0.1".to_vec()
    );
    assert_eq!(
        replace_magics(b"{rdns}", &st, Some("h.example")),
        b"h.example".to_vec()
    );
    // an undefined word empties the whole option
    assert_eq!(replace_magics(b"x-{rdns}", &st, None), Vec::<u8>::new());
    let nameless = state(None, None);
    assert_eq!(
        replace_magics(b"{name}.x", &nameless, None),
        Vec::<u8>::new()
    );
    let empty_name = state(None, Some(""));
    assert_eq!(
        replace_magics(b"{name}", &empty_name, None),
        Vec::<u8>::new()
    );
    // without a proxy, {proxy} is the (missing, thus empty) attribute; via one it is required
    assert_eq!(replace_magics(b"p{proxy}", &st, None), b"p".to_vec());
    let mut via = st.clone();
    if let Some(d) = via.child_mut("device") {
        d.set_attr("rp", "true");
    }
    assert_eq!(replace_magics(b"p{proxy}", &via, None), Vec::<u8>::new());
    if let Some(d) = via.child_mut("device") {
        d.set_attr("proxy", "10.9.9.9");
    }
    assert_eq!(
        replace_magics(b"p{proxy}", &via, None),
        b"p10.9.9.9".to_vec()
    );
    // names are Latin-1 to PHP: every non-ASCII letter is a run of its own
    let umlaut = state(None, Some("Müller Büro"));
    assert_eq!(
        replace_magics(b"{name}", &umlaut, None),
        b"m-ller-b-ro".to_vec()
    );
    // words without a magic stay as they are
    assert_eq!(replace_magics(b"{other}", &st, None), b"{other}".to_vec());
}

// ---------------------------------------------------------------------------------------------
// Decisions on certificates made with rcgen

#[test]
fn decisions_on_certificates_made_with_rcgen() {
    let cfg = case_config(); // renew="90" from the defaults
    let t = now();
    let day = 86400;
    let ours = ca("Test Custom CA");
    let foreign = ca("Some Other CA");
    let key = KeyPair::generate().expect("key");
    let none = CertFiles::default();
    let decide_on = |der: &[u8]| {
        simple(
            &cfg,
            &state(
                Some(&format!("<servercert>{}</servercert>", report_of(der))),
                Some("Desk"),
            ),
            &none,
            t,
        )
    };
    let sn = "0090333000af";

    let good = leaf(&ours, &key, sn, t - day, t + 365 * day);
    let d = decide_on(&good);
    assert_eq!(d.msgs, vec!["OK"]);
    assert!(d.ok && d.cmds.is_none() && !d.skipnext);
    assert_eq!(d.certstat(), Some("OK"));

    let wrong_issuer = leaf(&foreign, &key, sn, t - day, t + 365 * day);
    let d = decide_on(&wrong_issuer);
    assert_eq!(
        d.msgs,
        vec![format!(
            "CN {sn}: invalid issuer: Some Other CA: not in Test Custom CA (,)"
        )]
    );
    assert!(!d.ok && d.skipnext);
    let l = lines(&d);
    assert_eq!(l.len(), 2, "{l:?}");
    assert!(l[0].contains("var=X509/REQUESTERROR"));
    assert!(l[1].starts_with("mod cmd X509 servercert-create "));

    let expired = leaf(&ours, &key, sn, t - 400 * day, t - day);
    let d = decide_on(&expired);
    // PHP reports both: it expired, and (being within the renewal days) must be renewed
    assert_eq!(
        d.msgs,
        vec![
            format!("{sn}: expired"),
            format!("{sn}: valid but must be renewed")
        ]
    );
    assert!(d.skipnext && lines(&d)[1].starts_with("mod cmd X509 servercert-create "));

    let due = leaf(&ours, &key, sn, t - 300 * day, t + 30 * day);
    let d = decide_on(&due);
    assert_eq!(d.msgs, vec![format!("{sn}: valid but must be renewed")]);
    assert!(d.ok && d.skipnext);
    assert!(lines(&d)[1].starts_with("mod cmd X509 servercert-create "));

    let future = leaf(&ours, &key, sn, t + day, t + 400 * day);
    let d = decide_on(&future);
    assert_eq!(d.msgs, vec![format!("{sn}: not yet valid")]);
    assert!(d.cmds.is_none() && !d.skipnext && !d.ok);

    // renew="0": a certificate expiring in 30 days is fine
    let no_renew = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA" renew="0"/>"#,
        "",
    );
    let d = simple(
        &no_renew,
        &state(
            Some(&format!("<servercert>{}</servercert>", report_of(&due))),
            None,
        ),
        &none,
        t,
    );
    assert_eq!(d.msgs, vec!["OK"]);
}

#[test]
fn a_chain_is_checked_issuer_first() {
    let cfg = config(
        r#"<customcerts dir="certs" CAname="Root CA,Test Custom CA" renew="0"/>"#,
        "",
    );
    let info = format!(
        "<servercert>{}{}</servercert>",
        reported("0090333000af", "Test Custom CA", 0, 4_000_000_000),
        reported("Test Custom CA", "Other Root", 0, 4_000_000_000)
    );
    let d = simple(
        &cfg,
        &state(Some(&info), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(
        d.msgs,
        vec!["CN Test Custom CA: invalid issuer: Other Root: not in Root CA,Test Custom CA (,)"]
    );
    // the names in CAname are trimmed, the separator is configurable
    let cfg = config(
        r#"<customcerts dir="certs" CAname=" Other Root ; Test Custom CA" CAnamesep=";" renew="0"/>"#,
        "",
    );
    let d = simple(
        &cfg,
        &state(Some(&info), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(d.msgs, vec!["OK"]);
}

#[test]
fn unreadable_dates_do_nothing() {
    let info = r#"<servercert><certificate subject_cn="x" issuer_cn="elsewhere" not_before="" not_after="2039-05-01 00:00:00"/></servercert>"#;
    let d = simple(
        &case_config(),
        &state(Some(info), None),
        &CertFiles::default(),
        now(),
    );
    assert!(d.cmds.is_none() && !d.skipnext);
    assert!(
        d.certstat()
            .is_some_and(|s| s.contains("unreadable validity"))
    );
}

#[test]
fn no_certificates_reported_is_ok() {
    // PHP iterates over the children of its "-- no CN --" placeholder: there are none
    let d = simple(
        &case_config(),
        &state(Some(""), None),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(d.msgs, vec!["OK"]);
    assert!(d.cmds.is_none());
}

// ---------------------------------------------------------------------------------------------
// The workflow, state by state

#[test]
fn without_query_state_fast_polling_and_no_snippets() {
    let d = simple(
        &case_config(),
        &state(None, Some("x")),
        &CertFiles::default(),
        now(),
    );
    assert_eq!(
        d.msgs,
        vec![
            "we dont know anything about the current certificate state - not doing any certificate checking"
        ]
    );
    assert_eq!(d.cmds, Some(Vec::new()));
}

#[test]
fn certificates_off_still_cleans_a_request_reported_by_the_device() {
    let cfg = config("", "");
    let st = state(Some(&format!("{WRONG}{REQUEST}")), None);
    let d = simple(&cfg, &st, &CertFiles::default(), now());
    assert_eq!(
        lines(&d),
        vec!["vars del X509/REQUEST ", "vars del X509/REQUESTKEY "]
    );
    assert!(d.ok && d.cleaned_up);
    // without state tracking: nothing known, nothing to do
    let d = decide_with(&cfg, None, &CertFiles::default(), now(), None, "IP232");
    assert!(d.cmds.is_none());
    assert_eq!(
        d.certstat(),
        Some(
            "either certificate handling or state tracking not enabled - not doing any certificate checking"
        )
    );
}

#[test]
fn a_request_error_stops_everything() {
    let st = state(
        Some(&format!("{WRONG}<request-error>Failed</request-error>")),
        None,
    );
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert_eq!(lines(&d), vec!["ser"]);
    assert!(d.msgs.is_empty() && d.stopped && !d.skipnext);
    assert!(d.certstat().is_some_and(|s| s.contains("STOPPED")));
}

#[test]
fn a_request_being_made_is_waited_for() {
    let st = state(Some(&format!("{WRONG}<busy/>")), None);
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    assert_eq!(d.cmds, Some(Vec::new()));
    assert_eq!(
        d.certstat(),
        Some("wait for signing request to be generated (ongoing)")
    );
}

#[test]
fn wrong_issuer_creates_the_request_php_recorded() {
    let st = state(Some(WRONG), Some("Reception Desk"));
    let d = simple(&case_config(), &st, &CertFiles::default(), now());
    let recorded = recorded_lines("customcerts-wrong-issuer-creates-csr/expected/01-response.txt");
    assert_eq!(trimmed(&d), recorded[2..4].to_vec());
    assert!(d.skipnext && d.cleaned_up);
    assert_eq!(
        d.certstat(),
        Some(
            "CN IP232-30-00-af: invalid issuer: innovaphone Device Certification Authority 2: not in Test Custom CA (,)"
        )
    );
}

#[test]
fn mypbx_gets_its_own_spelling_and_rdns_is_looked_up() {
    let cfg = config(
        r#"<customcerts dir="certs" CAname="Test Custom CA" CSRsan-dns-1="{rdns}" CSRsan-dns-2="{name}.x"/>"#,
        "",
    );
    let st = state(Some(WRONG), None);
    let files = CertFiles::default();
    let first = decide_with(&cfg, Some(&st), &files, now(), None, "myPBXa");
    assert_eq!(first.need_rdns.as_deref(), Some("172.16.1.2"));
    assert!(first.cmds.is_none());
    let d = decide_with(
        &cfg,
        Some(&st),
        &files,
        now(),
        Some(Some("phone7.example".to_string())),
        "myPBXa",
    );
    assert_eq!(
        lines(&d)[1],
        "mod cmd X509 servercert-create /cmd servercert-create /redirect /target device /type Signing+request  /key 2048-bit /signature SH256 /dn-cn 0090333000af /dn-ou  /dn-o  /dn-l  /dn-st  /dn-c  /san-dns phone7.example /san-dns  /san-dns  /san-ip  /san-ip "
    );
    // an address without a name: the option is empty
    let d = decide_with(&cfg, Some(&st), &files, now(), Some(None), "mypbxi");
    assert!(lines(&d)[1].contains("Signing+request  /key 2048-bit"));
    assert!(lines(&d)[1].contains("/san-dns  /san-dns  /san-dns  /san-ip"));
    let d = decide_with(&cfg, Some(&st), &files, now(), Some(None), "IP232");
    assert!(lines(&d)[1].contains("/type Signing%20request  /key"));
}
