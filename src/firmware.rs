//! Firmware and boot code: which builds devices must run, and where they download them.
//!
//! The builds come from the master device's `box_info.xml` (its `<sys version="… IP811[13.0178],
//! Bootcode[130112], Hardware[104-00]">`), cached in `cache/master-info.xml` for
//! `master/@expire` seconds, or are pinned in `master/@firmware` / `@bootcode`. Download URLs
//! come from `fwstorage/@url` with `{build} {model} {filetype} {filename}` replaced.
//!
//! This file is the core: [`parse_box_info`] and [`storage_url`] are pure. [`MasterSource`]
//! (`firmware/master.rs`) is the shell part: it reads the cache (parsed once per file version), asks the master over HTTP with a bounded
//! wait when the cache is stale, writes the cache atomically, and lets only one request at a
//! time ask the master.

use crate::config::Config;
use crate::xml::Element;
use regex::Regex;
use std::sync::LazyLock;

/// The builds a master device reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxInfo {
    pub label: String,
    /// Firmware build with the dots removed (`13.0178` → `130178`).
    pub prot: String,
    pub boot: String,
    pub hw: String,
}

static VERSION_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?s)(?P<label>.*)\[(?P<prot>[^\]]*)\].*\[(?P<boot>[^\]]*)\].*\[(?P<hw>[^\]]*)\].*",
    )
    .unwrap_or_else(|e| panic!("static regex: {e}"))
});

/// Parses a `box_info.xml` document; `source` names it in error messages (PHP's wording).
pub fn parse_box_info(bytes: &[u8], source: &str) -> Result<BoxInfo, String> {
    let doc = Element::parse(bytes).map_err(|_| format!("result from {source} not parsable"))?;
    let sys = doc.child("sys").ok_or("no <sys> tag in PBX info")?;
    let version = sys
        .attr("version")
        .ok_or("no version attribute in <sys> tag in PBX info")?;
    let caps = VERSION_RE
        .captures(version)
        .ok_or_else(|| format!("cannot parse box info '{version}'"))?;
    let get = |n: &str| caps.name(n).map_or("", |m| m.as_str()).to_string();
    Ok(BoxInfo {
        label: get("label"),
        prot: get("prot").replace('.', ""),
        boot: get("boot"),
        hw: get("hw"),
    })
}

/// Makes a configured URL absolute against the installation's base URL (PHP's `makeFullUrl`):
/// anything with `://` is kept, anything else is taken relative to the base.
pub fn full_url(base: &str, url: &str) -> String {
    FullUrl(base, url).to_string()
}

/// [`full_url`] as it is written, without a string of its own (`format!`, `write!`): the
/// base URL and the configured one.
pub struct FullUrl<'a>(pub &'a str, pub &'a str);

impl std::fmt::Display for FullUrl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let FullUrl(base, url) = *self;
        match url.find("://") {
            Some(i) if i > 0 => f.write_str(url),
            _ if url.starts_with('/') => write!(f, "{base}{url}"),
            _ => write!(f, "{base}/{url}"),
        }
    }
}

/// The download URL of a build for a device type (`filetype` is `prot` or `boot`).
/// Bytes, because `filenames` overrides are Latin-1 as PHP reads them.
pub fn storage_url(
    config: &Config,
    base: &str,
    build: &str,
    model: &str,
    filetype: &str,
) -> Vec<u8> {
    let spec = full_url(base, &config.fwstorage_url)
        .replace("{build}", build)
        .replace("{model}", model)
        .replace("{filetype}", filetype);
    let lmodel = model.to_lowercase();
    let mut fnroot = lmodel.clone();
    if let Some(i) = fnroot.find('-') {
        fnroot.truncate(i);
    }
    let fwprefix = if let Some(rest) = fnroot.strip_prefix("ip") {
        fnroot = rest.to_string();
        "ip"
    } else {
        ""
    };
    let mut filename: Vec<u8> = match filetype {
        "prot" => format!("{fwprefix}{fnroot}.bin").into_bytes(),
        "boot" => format!("boot{fnroot}.bin").into_bytes(),
        _ => format!("{lmodel}.unknown").into_bytes(),
    };
    for fname in &config.filenames {
        if fname.id == lmodel {
            let alt = match filetype {
                "prot" => fname.prot.as_ref(),
                "boot" => fname.boot.as_ref(),
                _ => None,
            };
            if let Some(alt) = alt {
                filename = alt.clone();
                break;
            }
        }
    }
    let spec = spec.into_bytes();
    crate::php::str_replace(&spec, b"{filename}", &filename)
}

/// What looking up the master's builds gave, in the PHP server's terms: the comment lines it
/// printed on the way, and the builds or the final error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterResolution {
    pub notes: Vec<String>,
    pub info: Result<BoxInfo, String>,
}

mod master;

pub use master::MasterSource;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn cfg(user: &str) -> Config {
        Config::from_user_xml(user).expect("config")
    }

    #[test]
    fn parses_version_strings() {
        let info = parse_box_info(
            br#"<info><sys version="13r1 sr9 IP811[13.0178], Bootcode[130112], Hardware[104-00]"/></info>"#,
            "u",
        )
        .expect("info");
        assert_eq!(info.prot, "130178");
        assert_eq!(info.boot, "130112");
        assert_eq!(info.hw, "104-00");
        assert_eq!(info.label, "13r1 sr9 IP811");
    }

    #[test]
    fn box_info_errors_use_php_wording() {
        assert_eq!(
            parse_box_info(b"<x", "U"),
            Err("result from U not parsable".into())
        );
        assert_eq!(
            parse_box_info(b"<info/>", "U"),
            Err("no <sys> tag in PBX info".into())
        );
        assert_eq!(
            parse_box_info(b"<info><sys/></info>", "U"),
            Err("no version attribute in <sys> tag in PBX info".into())
        );
        assert_eq!(
            parse_box_info(b"<info><sys version=\"13r1\"/></info>", "U"),
            Err("cannot parse box info '13r1'".into())
        );
    }

    #[test]
    fn default_storage_urls() {
        let c = cfg("<config/>");
        let u = |b: &str, m: &str, t: &str| {
            String::from_utf8(storage_url(&c, "http://h/u", b, m, t)).expect("utf8")
        };
        assert_eq!(u("130178", "IP232", "prot"), "http://h/u/fw/130178/");
    }

    #[test]
    fn template_storage_urls_and_filenames() {
        let c = cfg(
            r#"<config><fwstorage url="http://fw/{model}/{build}/{filetype}/{filename}"/><filenames><model id="ip232" prot="ip232-sip.bin"/></filenames></config>"#,
        );
        let u = |m: &str, t: &str| {
            String::from_utf8(storage_url(&c, "http://h/u", "1", m, t)).expect("utf8")
        };
        assert_eq!(u("IP232", "prot"), "http://fw/IP232/1/prot/ip232-sip.bin");
        assert_eq!(u("IP232", "boot"), "http://fw/IP232/1/boot/boot232.bin");
        assert_eq!(u("IP0011", "prot"), "http://fw/IP0011/1/prot/ip0011.bin");
        assert_eq!(u("MYPBXA", "prot"), "http://fw/MYPBXA/1/prot/mypbx.apk");
        assert_eq!(u("IP29-4", "prot"), "http://fw/IP29-4/1/prot/ip29.bin");
        assert_eq!(
            u("SWPHONE", "boot"),
            "http://fw/SWPHONE/1/boot/bootswphone.bin"
        );
        assert_eq!(u("X", "other"), "http://fw/X/1/other/x.unknown");
    }

    #[test]
    fn full_urls() {
        assert_eq!(full_url("http://h/p", "fw/x"), "http://h/p/fw/x");
        assert_eq!(full_url("http://h/p", "/fw/x"), "http://h/p/fw/x");
        assert_eq!(full_url("http://h/p", "https://o/x"), "https://o/x");
        assert_eq!(full_url("http://h/p", ""), "http://h/p/");
    }
}
