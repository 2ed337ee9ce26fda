use super::*;

fn config(server: &str) -> Config {
    Config::from_user_xml(&format!(
        r#"<config>{server}<customcerts dir="certs" CAname="Old CA,Device CA"/></config>"#
    ))
    .expect("config")
}

/// The connection facts of a plain HTTP request from `peer` to 127.0.0.1:8080 with `headers`
/// (as `tls::conn_info` makes them).
fn info_of(cfg: &Config, peer: &str, headers: &[(&str, &str)]) -> ConnInfo {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
    }
    let host = header_str(&map, "host").unwrap_or("127.0.0.1:8080");
    let mut info = ConnInfo::plain(host, 8080);
    info.remote_ip = peer.parse().expect("peer");
    info.forwarded_for = header_str(&map, "x-forwarded-for").map(str::to_string);
    let peer = info.remote_ip;
    apply(&mut info, cfg, peer, &map);
    info
}

fn cert(cn: &str) -> Option<ClientCert> {
    Some(ClientCert {
        cn: cn.into(),
        issuer_cn: "Device CA".into(),
    })
}

const LIGHTTPD: &str = r#"<server trusted-proxies="127.0.0.1" proxy-identity="forwarded"/>"#;

#[test]
fn forwarded_entries_are_parsed_with_quotes() {
    let e = parse_entry(
        r#"for=127.0.0.1;proto=https;host="u.example:443";remote_user="IP232-30-00-af""#,
    );
    assert_eq!(e.for_.as_deref(), Some("127.0.0.1"));
    assert_eq!(e.proto.as_deref(), Some("https"));
    assert_eq!(e.host.as_deref(), Some("u.example:443"));
    assert_eq!(e.remote_user.as_deref(), Some("IP232-30-00-af"));
    let e = parse_entry(r#"For="[2001:db8::1]:80";remote_user="a\"b;c""#);
    assert_eq!(e.for_.as_deref(), Some("[2001:db8::1]:80"));
    assert_eq!(e.remote_user.as_deref(), Some("a\"b;c"));
    assert_eq!(node_addr("[2001:db8::1]:80"), "2001:db8::1");
    assert_eq!(node_addr("192.0.2.1:4711"), "192.0.2.1");
    assert_eq!(node_addr("_hidden"), "_hidden");
}

#[test]
fn lighttpd_remote_user_from_the_last_entry_only() {
    let cfg = config(LIGHTTPD);
    let i = info_of(
        &cfg,
        "127.0.0.1",
        &[(
            "forwarded",
            r#"for=127.0.0.1;proto=https;host="u.example:8443";remote_user="IP232-30-00-af""#,
        )],
    );
    assert_eq!(i.client_cert, cert("IP232-30-00-af"));
    assert!(i.https);
    assert_eq!(i.local_port, 8443);
    assert_eq!(i.host, "u.example:8443");
    assert_eq!(i.forwarded_for.as_deref(), Some("127.0.0.1"));
    assert_eq!(
        i.cert_via,
        CertVia::Proxy {
            proxy: "127.0.0.1".parse().expect("ip"),
            header: "Forwarded"
        }
    );
    // a client's own entry comes first; lighttpd's (without remote_user) last
    let i = info_of(
        &cfg,
        "127.0.0.1",
        &[
            ("forwarded", r#"for=1.2.3.4;remote_user="IP232-30-00-af""#),
            ("forwarded", "for=10.0.0.9;proto=https"),
            ("x-remote-cert", "IP232-30-00-af"),
        ],
    );
    assert_eq!(i.client_cert, None);
    assert_eq!(i.cert_via, CertVia::None);
    let i = info_of(
        &cfg,
        "127.0.0.1",
        &[(
            "forwarded",
            r#"for=1.2.3.4;remote_user="IP232-30-00-af", for=10.0.0.9;proto=http"#,
        )],
    );
    assert_eq!(i.client_cert, None);
    assert!(!i.https);
}

#[test]
fn x_remote_cert_mode_ignores_forwarded() {
    let cfg = config(r#"<server trusted-proxies="127.0.0.1"/>"#);
    let i = info_of(
        &cfg,
        "127.0.0.1",
        &[
            (
                "forwarded",
                r#"for=1.2.3.4;proto=https;remote_user="IP232-30-00-af""#,
            ),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "u.example"),
        ],
    );
    assert_eq!(i.client_cert, None);
    assert!(i.https);
    assert_eq!(i.host, "u.example");
    assert_eq!(i.local_port, 443);
    let i = info_of(
        &cfg,
        "127.0.0.1",
        &[("x-remote-cert", "CN=IP232-30-00-af,O=innovaphone AG,C=DE")],
    );
    assert_eq!(i.client_cert, cert("IP232-30-00-af"));
    let i = info_of(&cfg, "127.0.0.1", &[("x-remote-cert", "")]);
    assert_eq!(i.client_cert, None);
}

#[test]
fn nothing_is_believed_from_an_untrusted_client() {
    for server in [LIGHTTPD, r#"<server trusted-proxies="10.0.0.1"/>"#] {
        let cfg = config(server);
        let i = info_of(
            &cfg,
            "192.168.1.1",
            &[
                (
                    "forwarded",
                    r#"for=1.2.3.4;proto=https;remote_user="IP232-30-00-af""#,
                ),
                ("x-remote-cert", "IP232-30-00-af"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.example"),
            ],
        );
        assert_eq!(i.client_cert, None);
        assert!(!i.https);
        assert_eq!(i.host, "127.0.0.1:8080");
        assert_eq!(i.cert_via, CertVia::None);
    }
}
