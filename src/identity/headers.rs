//! What a trusted reverse proxy tells about a request: the scheme, host and port the device
//! used, its address, and the client certificate the proxy verified.
//!
//! Believed only from the addresses in `<server trusted-proxies="…">`; from anyone else these
//! headers are ignored and the fact is logged (`X-Forwarded-For` alone is read from anyone,
//! as PHP does: it only names the device's address). From a trusted proxy only what that
//! proxy added is read:
//!
//! - RFC 7239 `Forwarded`: the **last** entry (the one the proxy next to us appended; lighttpd
//!   keeps a client's own entry and appends after it), its `proto`, `host`, `for` and
//!   lighttpd's `remote_user`. Read only with `proxy-identity="forwarded"`.
//! - `X-Forwarded-Proto`, `-Host`, `-Port`: the last entry of each, where `Forwarded` gave no
//!   `proto`/`host`.
//! - The client certificate from the one header `<server proxy-identity>` names:
//!   `x-remote-cert` (default: innovaphone reverse proxy, nginx) reads `X-Remote-Cert: NAME`
//!   (a bare CN or a DN, `CN=…,O=…` or `/O=…/CN=…`; empty = no certificate) and
//!   `X-Remote-Cert-Issuer`; `forwarded` (lighttpd) reads `remote_user` of the last
//!   `Forwarded` entry (none there = no certificate). The other header is ignored: lighttpd
//!   passes a client's own `X-Remote-Cert` through, nginx a client's own `Forwarded`.
//!
//! A name forwarded without an issuer counts as issued by the last CA of
//! `customcerts/@CAname` (the proxy verified it against its own CA list, as PHP assumed
//! behind lighttpd).

use crate::config::{Config, ProxyIdentity};
use crate::request::{self, CertVia, ClientCert, ConnInfo};
use axum::http::HeaderMap;
use std::net::IpAddr;

/// The headers only a trusted proxy may send.
pub const PROXY_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-host",
    "x-remote-cert",
    "x-remote-cert-issuer",
];

/// Longest parameter value of a `Forwarded` entry that is used (longer ones are ignored).
const MAX_VALUE: usize = 1024;

/// One RFC 7239 `Forwarded` entry: the parameters this server reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardedEntry {
    pub for_: Option<String>,
    pub proto: Option<String>,
    pub host: Option<String>,
    pub remote_user: Option<String>,
}

/// Splits at `sep` outside double quotes (with `\` escapes inside them).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A parameter value, unquoted.
fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut escaped = false;
            for c in inner.chars() {
                if escaped || c != '\\' {
                    out.push(c);
                    escaped = false;
                } else {
                    escaped = true;
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// Parses one `Forwarded` entry (`for=…;proto=…;host=…;remote_user=…`).
pub fn parse_entry(entry: &str) -> ForwardedEntry {
    let mut e = ForwardedEntry::default();
    for pair in split_unquoted(entry, ';') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        let v = unquote(v);
        if v.len() > MAX_VALUE {
            continue;
        }
        let slot = match k.trim().to_ascii_lowercase().as_str() {
            "for" => &mut e.for_,
            "proto" => &mut e.proto,
            "host" => &mut e.host,
            "remote_user" => &mut e.remote_user,
            _ => continue,
        };
        *slot = Some(v);
    }
    e
}

/// The last entry of all `Forwarded` header lines (`None` without any).
pub fn last_forwarded(headers: &HeaderMap) -> Option<ForwardedEntry> {
    // only the last line: an earlier one may be the client's own
    let last_line = headers
        .get_all("forwarded")
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    let entry = split_unquoted(last_line, ',')
        .into_iter()
        .rfind(|e| !e.trim().is_empty())?;
    Some(parse_entry(entry))
}

/// The last comma-separated item of the last line of a header.
fn last_item(headers: &HeaderMap, name: &str) -> Option<String> {
    let line = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let item = line.rsplit(',').next()?.trim();
    (!item.is_empty()).then(|| item.to_string())
}

/// The address of a `Forwarded` `for` node (`192.0.2.1:4711`, `[2001:db8::1]:80`), as
/// `X-Forwarded-For` would name it; obfuscated identifiers (`_hidden`, `unknown`) as sent.
fn node_addr(node: &str) -> String {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match node.split_once(':') {
        Some((addr, _port)) if addr.parse::<std::net::Ipv4Addr>().is_ok() => addr.to_string(),
        _ => node.to_string(),
    }
}

/// The port of a `Host` value (`host:port`, `[v6]:port`), if it has one.
fn host_port(host: &str) -> Option<u16> {
    let (h, p) = host.rsplit_once(':')?;
    if h.ends_with(':') || (h.contains(':') && !h.ends_with(']')) {
        return None;
    }
    p.parse().ok()
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

/// The issuer a proxy-verified certificate counts as without an issuer header: the last CA
/// of `customcerts/@CAname` (module doc), or nothing when none is configured.
fn vouched_issuer(cfg: &Config) -> String {
    cfg.customcerts
        .as_ref()
        .and_then(|c| c.ca_names.last().cloned())
        .unwrap_or_default()
}

/// A forwarded certificate name as the request's client certificate (`None`: empty name).
fn forwarded_cert(name: &str, issuer: Option<&str>, cfg: &Config) -> Option<ClientCert> {
    let cn = cn_of(name);
    if cn.is_empty() || cn.len() > request::MAX_NAME_LEN {
        return None;
    }
    let issuer_cn = issuer.map_or_else(|| vouched_issuer(cfg), cn_of);
    Some(ClientCert { cn, issuer_cn })
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Applies what a trusted proxy says to `info` (module doc); ignores and logs it from others.
pub fn apply(info: &mut ConnInfo, cfg: &Config, peer: IpAddr, headers: &HeaderMap) {
    if !PROXY_HEADERS.iter().any(|h| headers.contains_key(*h)) {
        return;
    }
    let peer = peer.to_canonical();
    if !cfg.server.proxy_nets.iter().any(|n| n.contains(peer)) {
        tracing::warn!(
            "ignoring Forwarded/X-Forwarded-*/X-Remote-Cert headers from {peer}: not in <server trusted-proxies>"
        );
        return;
    }
    let mode = cfg.server.proxy_identity;
    let fwd = match mode {
        ProxyIdentity::Forwarded => last_forwarded(headers),
        ProxyIdentity::XRemoteCert => None,
    };
    let fwd_ref = fwd.as_ref();
    let host = fwd_ref
        .and_then(|f| f.host.clone())
        .or_else(|| last_item(headers, "x-forwarded-host"))
        .filter(|h| request::valid_host(h));
    // the port the device used, when no X-Forwarded-Port says it: the one of the host it sent
    let sent_host = host
        .clone()
        .or_else(|| header_str(headers, "host").map(str::to_string));
    if let Some(h) = host {
        info.host = h;
    }
    let proto = fwd_ref
        .and_then(|f| f.proto.clone())
        .or_else(|| last_item(headers, "x-forwarded-proto"));
    if let Some(proto) = proto {
        let https = proto.eq_ignore_ascii_case("https");
        info.https = https;
        let forwarded_port = last_item(headers, "x-forwarded-port").and_then(|p| p.parse().ok());
        info.local_port = forwarded_port
            .or_else(|| sent_host.as_deref().and_then(host_port))
            .unwrap_or(if https { 443 } else { 80 });
    }
    if info.forwarded_for.is_none()
        && let Some(node) = fwd_ref.and_then(|f| f.for_.as_deref())
    {
        info.forwarded_for = Some(node_addr(node));
    }
    let (cert, header) = match mode {
        ProxyIdentity::XRemoteCert => {
            let Some(name) = header_str(headers, "x-remote-cert") else {
                return;
            };
            let issuer = header_str(headers, "x-remote-cert-issuer");
            (forwarded_cert(name, issuer, cfg), "X-Remote-Cert")
        }
        ProxyIdentity::Forwarded => {
            if headers.contains_key("x-remote-cert") {
                tracing::debug!("ignoring X-Remote-Cert from {peer}: proxy-identity=\"forwarded\"");
            }
            let Some(f) = fwd_ref else {
                return;
            };
            let name = f.remote_user.as_deref().unwrap_or("");
            (forwarded_cert(name, None, cfg), "Forwarded")
        }
    };
    info.cert_via = match cert {
        Some(_) => CertVia::Proxy {
            proxy: peer,
            header,
        },
        None => CertVia::None,
    };
    if let Some(c) = &cert {
        tracing::debug!(
            "client certificate CN='{}' issuer '{}' vouched for by proxy {peer} ({header})",
            c.cn,
            c.issuer_cn
        );
    }
    info.client_cert = cert;
}

#[cfg(test)]
#[path = "headers_tests.rs"]
mod tests;
