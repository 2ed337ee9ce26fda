//! The typed sections of the configuration (what the rest of the server reads).

use crate::php;
use std::net::IpAddr;

/// A phase, environment or class name as written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: String,
    pub implies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    pub id: String,
    /// Model names, lower case.
    pub models: Vec<String>,
}

/// An `<applies>` condition (of `master` or of a query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applies {
    /// Trimmed tag content: a class, an environment (with `env`) or `*`.
    pub value: String,
    pub env: bool,
}

impl Applies {
    /// Whether a device with these classes and environments meets the condition.
    pub fn matches(&self, classes: &[String], envs: &[String]) -> bool {
        if self.value == "*" {
            return true;
        }
        let set = if self.env { envs } else { classes };
        set.contains(&self.value)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Master {
    /// `master/@info`: URL of the master's `box_info.xml`, `none`, or empty (no firmware).
    pub info: String,
    pub expire: i64,
    pub cache: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Our extension: `master/@passwordhash` instead of `password`: an Argon2 PHC string
    /// (`update-server hash-password`), `sha256:HEX` or `sha256:SALT:HEX` (see `admin::session`).
    pub password_hash: Option<String>,
    /// `master`, `none` or a build number (empty means `master`).
    pub firmware: String,
    pub bootcode: String,
    pub applies: Vec<Applies>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    pub dir: Option<String>,
    pub nbackups: Option<i64>,
    pub scfg: Option<String>,
    pub minage: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub dir: Option<String>,
    pub expire: i64,
    pub missing: i64,
    pub refresh: i64,
    pub logkeep: i64,
    pub usehttpsdevlinks: bool,
    /// `buildhistory="true"`: keep each device's build changes in `build-history/` (this
    /// server's, not PHP's; off by default so a plain poll writes only PHP's files).
    pub buildhistory: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Times {
    pub dir: String,
    pub check: bool,
    /// `times/@polling` as PHP's `getPolling()` returns it (a string, or integer 0 when unset).
    pub polling: php::Value,
    pub interval: i64,
    pub grace: i64,
    pub forcehttps: bool,
    pub httpsport: Option<String>,
    pub httpsurlmod: Option<String>,
    pub forcetrust: bool,
    pub forcestaging: bool,
    pub allow: Option<String>,
    pub initial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNames {
    pub id: String,
    /// `prot` and `boot` alternates as Latin-1 bytes (PHP reads them with `getAttributeFromXML`).
    pub prot: Option<Vec<u8>>,
    pub boot: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StdArg {
    pub key: String,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomCerts {
    pub dir: String,
    pub ca_keys: Option<String>,
    pub ca_type: String,
    /// `CAname` as written (for messages) and split at `CAnamesep`, trimmed.
    pub ca_name_raw: Option<String>,
    pub ca_names: Vec<String>,
    pub ca_name_sep: String,
    pub ca_wildcard: Option<String>,
    pub renew_days: i64,
    /// `CSRkey`, `CSRsignature`, `CSRdn-cn` … by their suffix, as Latin-1 bytes.
    pub csr: Vec<(String, Vec<u8>)>,
}

impl CustomCerts {
    pub fn csr_attr(&self, key: &str) -> &[u8] {
        self.csr
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(b"")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Show {
    pub title: String,
    pub expr: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: String,
    pub title: Option<String>,
    pub cmd: Option<String>,
    pub applies: Vec<Applies>,
    pub show: Vec<Show>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queries {
    pub scfg: String,
    pub list: Vec<Query>,
}

/// Settings that exist only in this server (PHP ignores unknown elements, so a configuration
/// using them still works with PHP). `<server>`, `<snippethook>`, `<migrate>`, `<api>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerSettings {
    pub http: Vec<String>,
    pub https: Vec<String>,
    pub mtls: Vec<String>,
    pub prefix: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub client_ca: Option<String>,
    /// Accept old device certificates (e.g. SHA-1 signed) that chain to the client CA bundle.
    pub legacy_client_certs: bool,
    /// Addresses whose `X-Remote-Cert` / `X-Forwarded-Proto` headers are believed.
    pub trusted_proxies: Vec<String>,
    /// The usable entries of `trusted_proxies`, parsed once with the configuration.
    pub proxy_nets: Vec<ProxyNet>,
    /// The one header a trusted proxy names the client certificate in (`proxy-identity`).
    pub proxy_identity: ProxyIdentity,
    pub max_body: usize,
    /// Largest query result a device may upload (`max-query`, bytes); larger ones are refused.
    pub max_query: usize,
    /// Most message log entries kept per device (`max-msgs`).
    pub max_msgs: usize,
    /// Largest state file (`max-state`, bytes); an upload that would make it larger is refused.
    pub max_state: usize,
    /// Longest wait before pending state writes are committed (`commit-delay`, milliseconds).
    pub commit_delay_ms: u64,
    /// Bytes of recently used device states kept parsed in memory (`state-cache`).
    pub state_cache: usize,
    /// Largest snippet file read (`max-snippet`, bytes); a larger one is not read.
    pub max_snippet: u64,
    pub master_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers.
    pub header_timeout_secs: u64,
    /// Seconds a stop waits for requests in flight (`<server shutdown-grace>`).
    pub shutdown_grace_secs: u64,
    /// `/metrics` answers anyone, not only loopback and the API token.
    pub metrics_public: bool,
    /// Connections open at once, all listeners together (`<server max-connections>`).
    pub max_connections: usize,
    /// Connections one address may hold (`<server max-per-address>`).
    pub max_per_address: usize,
    /// Connections a trusted proxy may hold (`<server max-per-proxy>`).
    pub max_per_proxy: usize,
    pub hook_exec: Option<String>,
    pub hook_timeout_secs: u64,
    pub migrate_url: Option<String>,
    pub migrate_all: bool,
    pub api_token: Option<String>,
}

/// `<server proxy-identity>`: where a trusted proxy puts the name of the certificate it
/// verified; the other place is ignored (see `identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyIdentity {
    /// `X-Remote-Cert` (innovaphone reverse proxy, nginx); the default.
    #[default]
    XRemoteCert,
    /// `remote_user` of the last RFC 7239 `Forwarded` entry (lighttpd's `proxy.forwarded`).
    Forwarded,
}

impl ProxyIdentity {
    /// The attribute value, or `None` for an unknown one.
    pub fn parse(v: &str) -> Option<ProxyIdentity> {
        match v.trim().to_ascii_lowercase().as_str() {
            "" | "x-remote-cert" => Some(ProxyIdentity::XRemoteCert),
            "forwarded" => Some(ProxyIdentity::Forwarded),
            _ => None,
        }
    }
}

/// One entry of `trusted-proxies`: an address, or a network in CIDR notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

/// Why a `trusted-proxies` entry is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("<server trusted-proxies>: '{0}' is not an address or address/prefix")]
pub struct BadProxy(pub String);

impl ProxyNet {
    /// Parses `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(s: &str) -> Result<ProxyNet, BadProxy> {
        let bad = || BadProxy(s.to_string());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(ProxyNet { addr, prefix })
    }

    /// The usable entries of a `trusted-proxies` list; the others are logged and skipped.
    pub fn usable(list: &[String]) -> Vec<ProxyNet> {
        list.iter()
            .filter_map(|s| ProxyNet::parse(s).map_err(|e| tracing::warn!("{e}")).ok())
            .collect()
    }

    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(bits))
        };
        a & mask == b & mask
    }
}
