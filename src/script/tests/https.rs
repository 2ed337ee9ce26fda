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
