//! What a reverse proxy in front of the server may tell about a request.
//!
//! `X-Forwarded-For` is read as PHP reads it, from anyone (it only names the device's address
//! in comments, the state file and `{ip}`; see `request::ConnInfo::device_ip`).
//!
//! The headers that change the server's decisions are believed only from the addresses in
//! `<server trusted-proxies="…">` (addresses or CIDR ranges, separated by `,` or blanks); from
//! anyone else they are ignored and the fact is logged:
//!
//! - `X-Forwarded-Proto: https|http` – the scheme the device used. With it, the port the device
//!   used is `X-Forwarded-Port` if sent, else the port of the `Host` header, else 443/80. This
//!   is what `forcehttps`/`httpsport` compare, so a proxy that terminates TLS and forwards
//!   plain HTTP does not make devices rewrite their URL on every poll.
//! - `X-Remote-Cert: NAME` – the innovaphone reverse proxy verified the device's client
//!   certificate and forwards its name (a bare CN, or a DN such as `CN=…,O=…` or `/O=…/CN=…`,
//!   of which the CN is used). An empty value means "no certificate". The request then counts
//!   as coming with a verified client certificate of that CN, for `forcetrust` as for a direct
//!   MTLS connection.
//!
//! **The issuer of a certificate forwarded by a proxy.** `forcetrust` also requires the
//! certificate's issuer CN to be one of `customcerts/@CAname`. The innovaphone reverse proxy
//! sends only the name of the certificate, and it forwards it only after verifying the
//! certificate against its own trusted CAs. The server therefore leaves the issuer check to
//! the proxy: a name forwarded by a trusted proxy counts as issued by the last CA of
//! `customcerts/@CAname` – exactly what PHP does behind lighttpd, which does not report the
//! issuer either. Trust the proxy's CA list as you would the server's own `--client-ca`
//! bundle. A proxy that does send the issuer (`X-Remote-Cert-Issuer: NAME`, e.g. nginx's
//! `$ssl_client_i_dn`) gets it checked against `CAname` like a direct connection.

use crate::config::Config;
pub use crate::config::{BadProxy, ProxyNet};
use crate::conn::ConnMeta;
use crate::request::{ClientCert, ConnInfo};
use axum::http::{HeaderMap, header};
use std::net::IpAddr;

/// The headers only a trusted proxy may send.
const PROXY_HEADERS: [&str; 4] = [
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-remote-cert",
    "x-remote-cert-issuer",
];

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

/// The CN of a certificate name as proxies forward it: a bare CN, or a DN in either order
/// (`CN=x,O=y`, `/C=DE/O=y/CN=x`).
pub fn cn_of(name: &str) -> String {
    let name = name.trim();
    name.split([',', '/'])
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("CN").then(|| v.trim())
        })
        .next_back()
        .unwrap_or(name)
        .to_string()
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Applies what a trusted proxy says to `info` (module doc); ignores and logs it from others.
pub fn apply_proxy_headers(
    info: &mut ConnInfo,
    cfg: &Config,
    meta: &ConnMeta,
    headers: &HeaderMap,
) {
    if !PROXY_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return;
    }
    let peer = meta.peer.ip().to_canonical();
    if !is_trusted(&cfg.server.proxy_nets, peer) {
        tracing::warn!(
            "ignoring X-Forwarded-Proto/X-Remote-Cert headers from {peer}: not in <server trusted-proxies>"
        );
        return;
    }
    if let Some(proto) = header_str(headers, "x-forwarded-proto") {
        // a chain of proxies appends: the first one met the device
        let proto = proto.split(',').next().unwrap_or("").trim();
        let https = proto.eq_ignore_ascii_case("https");
        info.https = https;
        let host_port = header_str(headers, header::HOST.as_str())
            .and_then(|h| h.rsplit_once(':'))
            .filter(|(host, _)| {
                !host.ends_with(':') && (!host.contains(':') || host.ends_with(']'))
            })
            .and_then(|(_, p)| p.parse::<u16>().ok());
        let forwarded_port = header_str(headers, "x-forwarded-port")
            .and_then(|p| p.split(',').next())
            .and_then(|p| p.trim().parse::<u16>().ok());
        info.local_port = forwarded_port
            .or(host_port)
            .unwrap_or(if https { 443 } else { 80 });
    }
    if let Some(name) = header_str(headers, "x-remote-cert") {
        let cn = cn_of(name);
        info.client_cert = if cn.is_empty() {
            None
        } else {
            let issuer_cn = match header_str(headers, "x-remote-cert-issuer") {
                Some(issuer) => cn_of(issuer),
                None => vouched_issuer(cfg),
            };
            tracing::debug!(
                "client certificate CN='{cn}' issuer '{issuer_cn}' vouched for by proxy {peer}"
            );
            Some(ClientCert { cn, issuer_cn })
        };
    }
}

/// The issuer a proxy-verified certificate counts as: the last CA of `customcerts/@CAname`
/// (module doc), or nothing when none is configured.
fn vouched_issuer(cfg: &Config) -> String {
    cfg.customcerts
        .as_ref()
        .and_then(|c| c.ca_names.last().cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut info = ConnInfo::plain("h", 8080);
        info.remote_ip = meta.peer.ip();
        apply_proxy_headers(&mut info, cfg, &meta, &map);
        info
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
            &[("x-forwarded-proto", "http, https"), ("host", "[::1]")],
        );
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
