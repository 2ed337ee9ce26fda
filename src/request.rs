//! Turning request text into values the rest of the server may trust.
//!
//! This is the only place where text from a request becomes something a file name is built
//! from: serial numbers, hardware ids, device types, query ids, variable names. A value that
//! could leave its directory (`/`, `\`, `..`, NUL, control characters) or is absurdly long is
//! refused (contract §6); the refusal says which argument and why, and nothing is read or
//! written for it.

use crate::php::Args;
use std::net::IpAddr;

/// Longest serial number, hardware id, type or id accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Longest name or value of any argument accepted (a device's own are far shorter; a longer
/// one would be echoed into the new Command File URL or the state).
pub const MAX_ARG_LEN: usize = 4096;

/// Characters of an argument's name a refusal shows at most.
const SHOWN_NAME: usize = 64;

/// The verified client certificate of a TLS connection (or what a trusted proxy vouches for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// Subject common name.
    pub cn: String,
    /// Issuer common name.
    pub issuer_cn: String,
}

/// Who vouched for a request's client certificate (see `identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertVia {
    /// No certificate was presented (or none that a trusted party verified).
    #[default]
    None,
    /// Our own MTLS handshake verified it.
    Tls,
    /// A trusted proxy at this address forwarded it in this header.
    Proxy { proxy: IpAddr, header: &'static str },
}

/// What the connection says about a request, independent of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// The request came over TLS (directly, or via a trusted proxy's `X-Forwarded-Proto`).
    pub https: bool,
    /// Local port the request arrived on (PHP's `SERVER_PORT`).
    pub local_port: u16,
    /// The peer address (PHP's `REMOTE_ADDR`).
    pub remote_ip: IpAddr,
    /// The `X-Forwarded-For` header, if any.
    pub forwarded_for: Option<String>,
    /// The verified client certificate, if the client presented one.
    pub client_cert: Option<ClientCert>,
    /// The `Host` header as sent (validated), or the local address.
    pub host: String,
    /// Who vouched for `client_cert`.
    pub cert_via: CertVia,
}

/// Where a request came from, as PHP's `getRemoteIp` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceIp {
    /// The device's address (the first `X-Forwarded-For` entry as sent, or the peer).
    pub ip: String,
    /// Whether the request came through a proxy.
    pub via_proxy: bool,
    /// The proxy's address, when it did.
    pub proxy: Option<String>,
}

impl DeviceIp {
    /// The device's address of a request from `peer` with this `X-Forwarded-For`, as PHP's
    /// `getRemoteIp` determines it: the first entry of `X-Forwarded-For` if present (then the
    /// peer is the proxy), else the peer address (IPv4-mapped IPv6 shown as IPv4).
    pub fn of(peer: IpAddr, forwarded_for: Option<&str>) -> DeviceIp {
        let peer = match peer {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => v6.to_string(),
            },
            v4 => v4.to_string(),
        };
        // an empty header is no header (lighttpd drops it); the first entry is kept as sent
        match forwarded_for.filter(|x| !x.trim().is_empty()) {
            Some(xff) => {
                let first = xff.split(',').next().unwrap_or("").to_string();
                DeviceIp {
                    ip: first,
                    via_proxy: true,
                    proxy: Some(peer),
                }
            }
            None => DeviceIp {
                ip: peer,
                via_proxy: false,
                proxy: None,
            },
        }
    }
}

impl ConnInfo {
    /// A plain HTTP connection from `127.0.0.1` to `host` (tests, `simulate`).
    pub fn plain(host: &str, port: u16) -> ConnInfo {
        ConnInfo {
            https: false,
            local_port: port,
            remote_ip: IpAddr::from([127, 0, 0, 1]),
            forwarded_for: None,
            client_cert: None,
            host: host.to_string(),
            cert_via: CertVia::None,
        }
    }

    /// The device's address as PHP's `getRemoteIp` determines it: the first entry of
    /// `X-Forwarded-For` if present (then the peer is the proxy), else the peer address
    /// (IPv4-mapped IPv6 shown as IPv4).
    pub fn device_ip(&self) -> DeviceIp {
        DeviceIp::of(self.remote_ip, self.forwarded_for.as_deref())
    }

    /// `scheme://host`, PHP's start of `$url`.
    pub fn origin(&self) -> String {
        format!(
            "{}://{}",
            if self.https { "https" } else { "http" },
            self.host
        )
    }
}

/// Whether a `Host` header may be used in URLs the server writes (host, IPv4, `[IPv6]`, port).
pub fn valid_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 255
        && h.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_')
        })
}

/// Why an argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument '{arg}' refused: {reason}")]
pub struct Refused {
    pub arg: String,
    pub reason: &'static str,
}

/// Checks a value that becomes (part of) a file name.
pub fn check_name(arg: &str, value: &[u8]) -> Result<(), Refused> {
    let refuse = |reason| {
        Err(Refused {
            arg: arg.to_string(),
            reason,
        })
    };
    if value.len() > MAX_NAME_LEN {
        return refuse("too long");
    }
    if value.contains(&0) {
        return refuse("contains NUL");
    }
    if value.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return refuse("contains control characters");
    }
    if value.contains(&b'/') || value.contains(&b'\\') {
        return refuse("contains a path separator");
    }
    if value.windows(2).any(|w| w == b"..") {
        return refuse("contains '..'");
    }
    if std::str::from_utf8(value).is_err() {
        return refuse("is not valid UTF-8");
    }
    Ok(())
}

/// Arguments PHP's `update.php` cannot take as an array (`sn[]=…`): it stops with an error
/// (HTTP 500) where it hands them to a string function; they are refused instead. Other
/// arrays read as the string `Array`, as in PHP.
const ARRAY_CRASHES_PHP: [&str; 5] = ["sn", "type", "env", "id", "var"];

/// Checks every argument of `args` that the update script turns into file or element names:
/// `sn`, `hwid`, `type` and `id`; `type` may not contain white space either. `var` names a
/// device variable (`X509/REQUEST`), never a file: it may contain `/`, but nothing else the
/// other checks refuse.
pub fn check_args(args: &Args) -> Result<(), Refused> {
    if let Some((k, _)) = args
        .iter()
        .find(|(k, v)| k.len() > MAX_ARG_LEN || v.len() > MAX_ARG_LEN)
    {
        let mut arg: String = k.chars().take(SHOWN_NAME).collect();
        if arg.len() < k.len() {
            arg.push_str("...");
        }
        return Err(Refused {
            arg,
            reason: "too long",
        });
    }
    for key in ARRAY_CRASHES_PHP {
        if args.is_array(key) {
            return Err(Refused {
                arg: key.to_string(),
                reason: "is an array (name[]=…), not a value",
            });
        }
    }
    if let Some(v) = args.get_bytes("var") {
        let without_slashes: Vec<u8> = v
            .iter()
            .map(|&b| if b == b'/' { b'_' } else { b })
            .collect();
        check_name("var", &without_slashes)?;
    }
    for key in ["sn", "hwid", "type", "id"] {
        if let Some(v) = args.get_bytes(key) {
            check_name(key, v)?;
            if key == "type" && v.iter().any(|b| b.is_ascii_whitespace()) {
                return Err(Refused {
                    arg: key.to_string(),
                    reason: "contains white space",
                });
            }
        }
    }
    Ok(())
}

/// A query id must also be usable as an XML element name (ASCII names; like libxml, names
/// starting with `xml` are accepted).
pub fn valid_query_id(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_path_characters() {
        for bad in [
            &b"../pwned"[..],
            b"a/b",
            b"a\\b",
            b"..",
            b"x\0",
            b"a\r\nb",
            b"\x7f",
        ] {
            assert!(check_name("sn", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("sn", &[b'a'; 200]).is_err());
        for good in [
            &b"00-90-33-30-00-af"[..],
            b"IP232-30-00-af",
            b"0090333000af",
            b"",
        ] {
            assert!(check_name("sn", good).is_ok());
        }
    }

    #[test]
    fn checks_the_arguments_used_in_file_names() {
        assert!(check_args(&Args::parse("sn=..%2Fx")).is_err());
        assert!(check_args(&Args::parse("type=IP232%20x")).is_err());
        assert!(check_args(&Args::parse("var=X509/REQUEST")).is_ok());
        assert!(check_args(&Args::parse("var=X509/../x")).is_err());
        assert!(check_args(&Args::parse("var=a%0Db")).is_err());
        for array in [
            "sn[]=1",
            "type[]=IP232",
            "env[x]=a",
            "id[]=i",
            "var[]=v",
            "sn=1&sn[]=2",
        ] {
            let refused = check_args(&Args::parse(array)).expect_err(array);
            assert!(refused.to_string().contains("is an array"), "{refused}");
        }
        assert!(check_args(&Args::parse("phase[]=1&hwid[]=2&x[]=3&sn[]=1&sn=2")).is_ok());
        assert!(
            check_args(&Args::parse(
                "type=IP232&sn=00-90&hwid=IP232-1&id=admin&foo=../x"
            ))
            .is_ok()
        );
    }

    #[test]
    fn refuses_overlong_arguments_naming_a_prefix() {
        let long = "k".repeat(MAX_ARG_LEN + 1);
        let refused = check_args(&Args::parse(&format!("{long}=1"))).expect_err("long key");
        assert!(refused.to_string().len() < 200, "{refused}");
        let value = format!("phase={}", "v".repeat(MAX_ARG_LEN + 1));
        assert!(check_args(&Args::parse(&value)).is_err());
        let fine = format!("phase={}", "v".repeat(MAX_ARG_LEN));
        assert!(check_args(&Args::parse(&fine)).is_ok());
    }

    #[test]
    fn device_ip_from_forwarded_for() {
        let mut c = ConnInfo::plain("h", 80);
        let direct = DeviceIp {
            ip: "127.0.0.1".into(),
            via_proxy: false,
            proxy: None,
        };
        assert_eq!(c.device_ip(), direct);
        c.forwarded_for = Some("10.1.2.3, 192.168.100.1".into());
        assert_eq!(
            c.device_ip(),
            DeviceIp {
                ip: "10.1.2.3".into(),
                via_proxy: true,
                proxy: Some("127.0.0.1".into())
            }
        );
        c.forwarded_for = Some("1.2.3.4 ,5.6.7.8".into());
        assert_eq!(c.device_ip().ip, "1.2.3.4 ", "kept as sent, like PHP");
        c.forwarded_for = Some(" ".into());
        assert_eq!(c.device_ip(), direct);
        c.forwarded_for = None;
        c.remote_ip = "::ffff:10.0.0.9".parse().expect("ip");
        assert_eq!(c.device_ip().ip, "10.0.0.9");
    }

    #[test]
    fn hosts_and_query_ids() {
        assert!(valid_host("127.0.0.1:8080"));
        assert!(valid_host("[::1]:443"));
        assert!(!valid_host("a b"));
        assert!(!valid_host("a/b"));
        assert!(valid_query_id("certificates"));
        assert!(!valid_query_id("1x"));
        assert!(!valid_query_id("a b"));
        assert!(valid_query_id("xmlfoo"));
    }
}
