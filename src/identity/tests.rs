use super::*;
use crate::request::ClientCert;
use std::sync::Arc;

const CONFIG: &str = r#"<config><master info=""/><customcerts dir="certs" CAname="Dev CA" CAwildcard="*.devices.example"/><times forcetrust="true"/></config>"#;

fn cfg() -> Config {
    Config::from_user_xml(CONFIG).expect("config")
}

fn cert(cn: &str) -> ClientCert {
    ClientCert {
        cn: cn.into(),
        issuer_cn: "Dev CA".into(),
    }
}

const A_SN: &str = "00-90-33-30-00-af";
const B_SN: &str = "00-90-33-30-00-b0";

#[test]
fn a_serial_cn_proves_its_serial_only() {
    let cfg = cfg();
    let v = prove_serial(&cfg, Some(&cert("0090333000af")), A_SN, "").expect("proved");
    assert_eq!(v.kind, ProofKind::SerialCn);
    assert!(prove_serial(&cfg, Some(&cert("0090333000af")), B_SN, "").is_err());
    // separators do not matter, case does not either
    assert!(prove_serial(&cfg, Some(&cert("0090333000AF")), "0090:3330:00af", "").is_ok());
}

#[test]
fn an_hwid_cn_proves_the_serial_its_mac_suffix_names() {
    let cfg = cfg();
    let v = prove_serial(&cfg, Some(&cert("IP232-30-00-af")), A_SN, "").expect("proved");
    assert_eq!(v.kind, ProofKind::HwidSuffix);
    // early models' CNs are mapped first
    let v = prove_serial(&cfg, Some(&cert("IP232s-30-00-af")), A_SN, "").expect("proved");
    assert_eq!(v.cn, "IP232-30-00-af");
    // the request's own hwid does not bind A's certificate to B's serial (PHP did)
    let e = prove_serial(&cfg, Some(&cert("IP232-30-00-af")), B_SN, "IP232-30-00-af");
    assert_eq!(
        e.unwrap_err().to_string(),
        "Device claims to be 'IP232-30-00-af / 0090333000b0' but identifies as 'IP232-30-00-af' by TLS"
    );
    // soft devices: an hwid without the serial's MAC suffix proves nothing
    for cn in [
        "myPBX-android-1",
        "IP232-30-00",
        "30-00-af",
        "IP232-30-00-ag",
    ] {
        assert!(
            prove_serial(&cfg, Some(&cert(cn)), A_SN, cn).is_err(),
            "{cn}"
        );
    }
    assert!(prove_serial(&cfg, Some(&cert("IP232-30-00-af")), "", "").is_err());
}

#[test]
fn the_wildcard_keeps_php_meaning_and_issuer_and_caname_are_checked() {
    let cfg = cfg();
    let v = prove_serial(&cfg, Some(&cert("*.devices.example")), B_SN, "").expect("wildcard");
    assert_eq!(v.kind, ProofKind::Wildcard);
    let other_issuer = ClientCert {
        cn: "IP232-30-00-af".into(),
        issuer_cn: "Other".into(),
    };
    assert!(matches!(
        prove_serial(&cfg, Some(&other_issuer), A_SN, ""),
        Err(IdentityError::UntrustedIssuer { .. })
    ));
    assert_eq!(
        prove_serial(&cfg, None, A_SN, ""),
        Err(IdentityError::NoCertificate)
    );
    let no_ca = Config::from_user_xml(r#"<config><master info=""/></config>"#).expect("config");
    assert_eq!(
        prove_serial(&no_ca, Some(&cert("0090333000af")), A_SN, ""),
        Err(IdentityError::NoCaName)
    );
}

#[test]
fn an_hwid_is_proved_by_itself_or_by_the_serial_it_belongs_to() {
    let cfg = cfg();
    assert!(prove_hwid(&cfg, Some(&cert("IP232-30-00-af")), "IP232-30-00-af").is_ok());
    assert!(prove_hwid(&cfg, Some(&cert("0090333000af")), "IP232-30-00-af").is_ok());
    assert!(prove_hwid(&cfg, Some(&cert("IP232-30-00-b0")), "IP232-30-00-af").is_err());
    assert!(prove_hwid(&cfg, Some(&cert("0090333000b0")), "IP232-30-00-af").is_err());
    assert!(prove_hwid(&cfg, Some(&cert("IP232-30-00-af")), "").is_err());
}

#[test]
fn mac_suffixes_and_serial_tails() {
    assert_eq!(mac_suffix("IP232-30-00-af"), Some([0x30, 0, 0xaf]));
    assert_eq!(mac_suffix("IP1202-0A-ff-00"), Some([0x0a, 0xff, 0]));
    assert_eq!(mac_suffix("-30-00-af"), None);
    assert_eq!(mac_suffix("IP232-300-00-af"), None);
    assert_eq!(serial_tail("00-90-33-30-00-AF"), Some([0x30, 0, 0xaf]));
    assert_eq!(serial_tail("0090333000af"), Some([0x30, 0, 0xaf]));
    assert_eq!(serial_tail("0090333000a"), None);
    assert_eq!(serial_tail("0090333000ag"), None);
}

#[test]
fn polls_are_refused_only_under_forcetrust() {
    let cfg = cfg();
    let mut conn = ConnInfo::plain("h", 443);
    conn.client_cert = Some(cert("IP232-30-00-af"));
    conn.cert_via = CertVia::Tls;
    let b = Args::parse("sn=00-90-33-30-00-b0&hwid=IP232-30-00-af");
    assert!(poll_refusal(&cfg, &conn, &b).is_some());
    let a = Args::parse("sn=00-90-33-30-00-af&hwid=IP232-30-00-b0");
    assert!(poll_refusal(&cfg, &conn, &a).is_none());
    let off = Config::from_user_xml(r#"<config><master info=""/></config>"#).expect("config");
    assert!(poll_refusal(&off, &conn, &b).is_none());
    assert_eq!(
        presented(&conn),
        "CN='IP232-30-00-af' issuer 'Dev CA' via MTLS"
    );
    conn.cert_via = CertVia::Proxy {
        proxy: "10.0.0.1".parse().expect("ip"),
        header: "Forwarded",
    };
    assert_eq!(via_text(&conn), "proxy 10.0.0.1 (Forwarded)");
    conn.client_cert = None;
    assert_eq!(presented(&conn), "no client certificate");
    assert_eq!(via_text(&conn), "none");
}

#[test]
fn a_refused_request_never_changes_a_recorded_fact() {
    let before = crate::state::DeviceState::parse_str(
        r#"<state seen="1"><device sn="B" type="IP232" hwid="IP232-30-00-b0" realip="10.0.0.2" ip="10.0.0.2"/></state>"#,
    )
    .expect("xml");
    let loaded = Loaded::Ok(Arc::new(before.clone()));
    let mut after = before.clone();
    after.root.set_attr("seen", "2");
    let dev = after.root.child_mut("device").expect("device");
    dev.set_attr("hwid", "IP232-30-00-af");
    dev.set_attr("realip", "6.6.6.6");
    dev.set_attr("type", "IP111");
    assert_eq!(guard_state(&loaded, Some(after.clone())), None);
    // facts the state lacks are filled in, as PHP's refused poll does
    after
        .root
        .child_mut("device")
        .expect("device")
        .set_attr("phase", "update");
    let kept = guard_state(&loaded, Some(after)).expect("filled in");
    let dev = kept.root.child("device").expect("device");
    assert_eq!(dev.attr("phase"), Some("update"));
    assert_eq!(dev.attr("hwid"), Some("IP232-30-00-b0"));
    assert_eq!(dev.attr("realip"), Some("10.0.0.2"));
    assert_eq!(kept.root.attr("seen"), Some("1"));
    // no state, no state
    assert_eq!(guard_state(&Loaded::Missing, Some(before)), None);
}

#[test]
fn a_refused_answer_keeps_comments_and_the_url_switch() {
    let body = b"# a\r\n\r\nconfig change X\r\n  # b\r\nmod cmd UP1 prot x\r\niresetn\r\n";
    assert_eq!(strip_commands(body, None), b"# a\r\n\r\n  # b\r\n".to_vec());
    let at = body.windows(3).position(|w| w == b"mod").expect("pos");
    let end = at + "mod cmd UP1 prot x\r\n".len();
    assert_eq!(
        strip_commands(body, Some(at..end)),
        b"# a\r\n\r\n  # b\r\nmod cmd UP1 prot x\r\n".to_vec()
    );
}
