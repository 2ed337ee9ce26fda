//! What a reverse proxy in front of the server may tell about a request: `trusted-proxies`
//! (parsing, membership) here; which headers are read from a trusted proxy, and how, is
//! `identity::headers` (`Forwarded`, `X-Forwarded-*`, `X-Remote-Cert`, `proxy-identity`).

use crate::config::Config;
pub use crate::config::{BadProxy, ProxyNet};
use crate::conn::ConnMeta;
pub use crate::identity::headers::cn_of;
use crate::request::ConnInfo;
use axum::http::HeaderMap;
use std::net::IpAddr;

/// Parses the whole `trusted-proxies` list (for the start-up check).
pub fn parse_trusted(list: &[String]) -> Result<Vec<ProxyNet>, BadProxy> {
    list.iter().map(|s| ProxyNet::parse(s)).collect()
}

/// Whether `peer` is a trusted proxy (one of the usable entries, parsed with the
/// configuration; unusable ones were reported when the server started, or are logged when the
/// configuration is loaded).
pub fn is_trusted(nets: &[ProxyNet], peer: IpAddr) -> bool {
    nets.iter().any(|net| net.contains(peer))
}

/// Applies what a trusted proxy says to `info` (`identity::headers`); ignores and logs it
/// from others.
pub fn apply_proxy_headers(
    info: &mut ConnInfo,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) {
    crate::identity::headers::apply(info, cfg, meta.peer.ip(), headers);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ClientCert;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn proxy_networks() {
        let n = ProxyNet::parse("10.1.0.0/16").expect("net");
        assert!(n.contains(ip("10.1.200.3")));
        assert!(!n.contains(ip("10.2.0.1")));
        assert!(n.contains(ip("::ffff:10.1.0.9")));
        let one = ProxyNet::parse("192.168.1.5").expect("addr");
        assert!(one.contains(ip("192.168.1.5")));
        assert!(!one.contains(ip("192.168.1.6")));
        let v6 = ProxyNet::parse("fd00::/8").expect("v6");
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(
            ProxyNet::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "host.example", "10.0.0.1/x", "", "::1/129"] {
            assert!(ProxyNet::parse(bad).is_err(), "{bad}");
        }
        assert!(is_trusted(
            &ProxyNet::usable(&["bogus".into(), "127.0.0.1".into()]),
            ip("127.0.0.1")
        ));
        assert!(!is_trusted(&[], ip("127.0.0.1")));
    }

    fn config(server: &str) -> Config {
        Config::from_user_xml(&format!(
            r#"<config>{server}<customcerts dir="certs" CAname="Old CA,Device CA 2"/></config>"#
        ))
        .expect("config")
    }

    /// The connection facts of a plain HTTP request from `peer` to port 8080 with `headers`.
    fn info_of(cfg: &Config, peer: &str, headers: &[(&str, &str)]) -> ConnInfo {
        let meta = ConnMeta {
            peer: format!("{peer}:50000").parse().expect("peer"),
            local: "127.0.0.1:8080".parse().expect("local"),
            tls: false,
            client_cert: None,
        };
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        crate::tls::conn_info(cfg, &meta, &map)
    }

    #[test]
    fn forwarded_scheme_and_port_from_a_trusted_proxy() {
        let cfg = config(r#"<server trusted-proxies="10.0.0.0/8"/>"#);
        let https = [("x-forwarded-proto", "https")];
        let i = info_of(&cfg, "10.1.1.1", &https);
        assert!(i.https);
        assert_eq!(i.local_port, 443);
        let i = info_of(
            &cfg,
            "10.1.1.1",
            &[("x-forwarded-proto", "https"), ("host", "u.example:444")],
        );
        assert_eq!(i.local_port, 444);
        let i = info_of(
            &cfg,
            "10.1.1.1",
            &[
                ("x-forwarded-proto", "https"),
                ("host", "u.example:444"),
                ("x-forwarded-port", "8443"),
            ],
        );
        assert_eq!(i.local_port, 8443);
        let i = info_of(
            &cfg,
            "10.1.1.1",
            &[("x-forwarded-proto", "https, http"), ("host", "[::1]")],
        );
        // the last entry is the one the proxy next to us added
        assert!(!i.https);
        assert_eq!(i.local_port, 80);
        // from an address that is not a trusted proxy nothing changes
        let i = info_of(&cfg, "192.168.1.1", &https);
        assert!(!i.https);
        assert_eq!(i.local_port, 8080);
    }

    #[test]
    fn forwarded_client_certificate_and_its_issuer() {
        let cfg = config(r#"<server trusted-proxies="10.0.0.1"/>"#);
        let cert = |cn: &str, issuer: &str| {
            Some(ClientCert {
                cn: cn.into(),
                issuer_cn: issuer.into(),
            })
        };
        // only the name: issued by the last CAname, as PHP assumes behind lighttpd
        let i = info_of(
            &cfg,
            "10.0.0.1",
            &[("x-remote-cert", "CN=IP232-30-00-af,O=x")],
        );
        assert_eq!(i.client_cert, cert("IP232-30-00-af", "Device CA 2"));
        let i = info_of(
            &cfg,
            "10.0.0.1",
            &[
                ("x-remote-cert", "IP232-30-00-af"),
                ("x-remote-cert-issuer", "/O=y/CN=Old CA"),
            ],
        );
        assert_eq!(i.client_cert, cert("IP232-30-00-af", "Old CA"));
        let i = info_of(&cfg, "10.0.0.1", &[("x-remote-cert", "")]);
        assert_eq!(i.client_cert, None);
        let i = info_of(&cfg, "10.0.0.2", &[("x-remote-cert", "IP232-30-00-af")]);
        assert_eq!(i.client_cert, None);
        // without customcerts there is no issuer to assume
        let plain =
            Config::from_user_xml(r#"<config><server trusted-proxies="10.0.0.1"/></config>"#)
                .expect("config");
        let i = info_of(&plain, "10.0.0.1", &[("x-remote-cert", "IP232-30-00-af")]);
        assert_eq!(i.client_cert, cert("IP232-30-00-af", ""));
    }

    #[test]
    fn common_names_of_forwarded_names() {
        assert_eq!(cn_of("IP232-30-00-af"), "IP232-30-00-af");
        assert_eq!(
            cn_of(" CN=IP232-30-00-af, O=innovaphone AG"),
            "IP232-30-00-af"
        );
        assert_eq!(
            cn_of("/C=DE/O=innovaphone AG/CN=IP232-30-00-af"),
            "IP232-30-00-af"
        );
        assert_eq!(cn_of("cn=0090333000af"), "0090333000af");
        assert_eq!(cn_of(""), "");
    }
}
