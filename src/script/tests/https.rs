//! HTTPS and trust enforcement (`forcehttps`, `forcetrust`).

use super::*;

#[test]
fn forcehttps_rewrites_to_https_and_withholds_snippets() {
    let case = Case::new(r#"<config><master info=""/><backup dir="backup"/><times forcehttps="true" httpsport="444"/></config>"#)
        .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    let out = case.poll(&format!("{SN_POLL}&polling=0&phase=update"));
    let c = commands(&out);
    assert!(!c.iter().any(|l| l.contains("config change A")), "{c:?}");
    assert!(
        !c.iter().any(|l| l.contains("mode=backup")),
        "backup line withheld over HTTP"
    );
    // the default httpsurlmod "!mtls/!!i" removes "mtls/" (there is none here)
    let url =
        "https://upd.example:444/u/update.php?polling=5&phase=update&type=#t&sn=#m&hwid=#h&ip=#i";
    assert!(
        c.contains(&format!(
            "config add UP1 /url {}",
            php::rawurlencode(url.as_bytes())
        )),
        "{c:?}"
    );
}

#[test]
fn forcehttps_on_the_right_port_delivers() {
    let mut case = Case::new(
        r#"<config><master info=""/><times forcehttps="true" httpsport="444"/></config>"#,
    )
    .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.conn.https = true;
    case.conn.local_port = 444;
    let out = case.poll(SN_POLL);
    assert_eq!(commands(&out)[0], "config change A /x 1");
}

#[test]
fn forcetrust_checks_cn_and_issuer() {
    let user = r#"<config><master info=""/><customcerts dir="certs" CAname="Dev CA"/><times forcehttps="true" httpsport="444" forcetrust="true"/></config>"#;
    let mut case =
        Case::new(user).snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.conn.https = true;
    case.conn.local_port = 444;
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("SSL_CLIENT_S_DN_CN not present"));
    assert!(commands(&out).is_empty());
    let cert = |cn: &str, issuer: &str| {
        Some(crate::request::ClientCert {
            cn: cn.into(),
            issuer_cn: issuer.into(),
        })
    };
    case.conn.client_cert = cert("IP232-30-00-b0", "Dev CA");
    let out = case.poll(SN_POLL);
    assert!(text(&out).contains("Device claims to be 'IP232-30-00-af / 0090333000af' but identifies as 'IP232-30-00-b0' by TLS"));
    assert!(commands(&out).is_empty());
    case.conn.client_cert = cert("IP232-30-00-af", "Other CA");
    assert!(commands(&case.poll(SN_POLL)).is_empty());
    for good in ["IP232-30-00-af", "0090333000af", "IP232s-30-00-af"] {
        case.conn.client_cert = cert(good, "Dev CA");
        assert_eq!(
            commands(&case.poll(SN_POLL))[0],
            "config change A /x 1",
            "{good}"
        );
    }
}

#[test]
fn an_unproved_poll_keeps_only_the_url_switch_and_leaves_the_state() {
    // plain HTTP, no certificate: the device is moved to HTTPS (nothing of it is sent), its
    // recorded hwid and address stay
    let user = r#"<config><master info=""/><status dir="status"/><customcerts dir="certs" CAname="Dev CA"/><times forcehttps="true" httpsport="444" forcetrust="true"/></config>"#;
    let mut case =
        Case::new(user).snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    let before = crate::state::DeviceState::parse_str(
        r#"<state seen="1"><device sn="00-90-33-30-00-af" type="IP232" hwid="IP232-30-00-af" realip="10.0.0.1" ip="10.0.0.1" rp="false"/></state>"#,
    )
    .expect("state");
    case.state = Loaded::Ok(std::sync::Arc::new(before.clone()));
    let out = case.poll(&format!("{SN_POLL}&polling=0&phase=update"));
    let c = commands(&out);
    assert!(
        c.iter().all(|l| l.starts_with("config add UP1")
            || l.starts_with("mod cmd UP1")
            || l.starts_with("config ")
            || l == "iresetn"),
        "{c:?}"
    );
    assert!(
        c.iter().any(|l| l.starts_with("config add UP1 /url https")),
        "{c:?}"
    );
    assert!(!c.iter().any(|l| l.contains("config change A")), "{c:?}");
    assert!(
        text(&out).contains("# forcetrust: cannot verify CN"),
        "{}",
        text(&out)
    );
    let refused = out.refused.expect("refused");
    assert!(!refused.forbidden);
    let state = out.state.expect("facts filled in");
    let dev = state.root.child("device").expect("device");
    assert_eq!(dev.attr("realip"), Some("10.0.0.1"));
    assert_eq!(dev.attr("hwid"), Some("IP232-30-00-af"));
    assert_eq!(state.root.attr("seen"), Some("1"));
    assert!(out.file_ops.is_empty() && out.rollout_changes.is_empty());
    // the same poll proved: PHP's state update
    case.conn.https = true;
    case.conn.local_port = 444;
    case.conn.client_cert = Some(crate::request::ClientCert {
        cn: "0090333000af".into(),
        issuer_cn: "Dev CA".into(),
    });
    let out = case.poll(SN_POLL);
    assert_eq!(out.refused, None);
    // (the certificate workflow asks for the certificate query first)
    assert!(!commands(&out).is_empty());
    let dev = out.state.expect("state");
    let dev = dev.root.child("device").expect("device");
    assert_eq!(dev.attr("realip"), Some("10.0.0.5"));
}

#[test]
fn an_unproved_poll_without_all_arguments_gets_the_stdargs_url_only() {
    let user = r#"<config><master info=""/><status dir="status"/><customcerts dir="certs" CAname="Dev CA"/><times forcetrust="true"/></config>"#;
    let mut case =
        Case::new(user).snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    let before = crate::state::DeviceState::parse_str(
        r#"<state seen="1"><device sn="00-90-33-30-00-af" hwid="IP232-30-00-af"/></state>"#,
    )
    .expect("state");
    case.state = Loaded::Ok(std::sync::Arc::new(before));
    let out = case.poll("sn=00-90-33-30-00-af&hwid=IP232-30-00-b0");
    let c = commands(&out);
    assert!(
        c.iter().any(|l| l.starts_with("config add UP1 /url ")),
        "{c:?}"
    );
    assert!(!c.iter().any(|l| l.contains("config change A")), "{c:?}");
    assert!(out.refused.is_some());
    assert_eq!(out.state, None);
}
