//! One device's row of the status page (also the answer of `cmd=updatestatus`) and the
//! parts of a row that are loaded when opened (`cmd=rowpart`).

use super::{Ctx, Row};
use crate::admin::files::CertState;
use crate::admin::html::{admin_url, age, date, deliver_url, e, q};
use crate::admin::view::{Cell, DeviceView};
use std::fmt::Write;

fn device_link(realip: &str, https: bool) -> Option<String> {
    let ok = !realip.is_empty()
        && realip.len() <= 255
        && realip
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b':' | b'-' | b'[' | b']'));
    ok.then(|| {
        let host = if realip.contains(':') && !realip.starts_with('[') {
            format!("[{realip}]")
        } else {
            realip.to_string()
        };
        format!("{}://{host}/", if https { "https" } else { "http" })
    })
}

fn button(act: &str, label: &str, title: &str, extra: &str) -> String {
    format!(
        "<button type=\"button\" class=\"act\" data-act=\"{act}\" title=\"{}\"{extra}>{label}</button>",
        e(title)
    )
}

/// One device's `<tr>` (also the answer of `cmd=updatestatus`).
pub fn row(ctx: &Ctx<'_>, r: &Row) -> String {
    let v = &*r.view;
    let missing = v.is_missing(ctx.cfg.status.missing, ctx.now);
    let mut h = String::with_capacity(2048);
    let class = match (&v.problem, missing) {
        (Some(_), _) => "dev problem",
        (None, true) => "dev missing",
        (None, false) => "dev",
    };
    let _ = write!(
        h,
        "<tr id=\"d-{}\" class=\"{class}\" data-sn=\"{}\">",
        e(&v.key),
        e(&v.key)
    );
    if let Some(problem) = &v.problem {
        let _ = write!(
            h,
            "<td colspan=\"{}\"><div class=\"acts\">{}</div><strong>{}</strong>: {}</td></tr>",
            ctx.columns(),
            button("delete", "\u{2715}", &format!("Delete {}.xml", v.key), ""),
            e(&v.key),
            e(problem)
        );
        return h;
    }
    device_cell(ctx, &mut h, v, missing);
    // last seen
    let _ = write!(
        h,
        "<td class=\"c-seen\" title=\"{}\">{}</td>",
        e(&date(v.seen)),
        e(&age(ctx.now, v.seen))
    );
    if ctx.backups_on() {
        backup_cell(ctx, &mut h, v);
    }
    // firmware, boot code
    h.push_str("<td class=\"c-fw\">");
    build_cell(&mut h, &v.firmware, &v.firmware_requested, "firmware");
    h.push_str("<span class=\"sep\"> / </span>");
    build_cell(&mut h, &v.bootcode, &v.bootcode_requested, "boot code");
    h.push_str("</td>");
    if ctx.cfg.customcerts.is_some() {
        h.push_str("<td class=\"c-cert\">");
        cert_cell(ctx, &mut h, v, &r.certs);
        h.push_str("</td>");
    }
    scripts_cell(&mut h, v);
    query_cells(ctx, &mut h, v);
    h.push_str("</tr>");
    h
}

/// The device cell: actions, serial, address, type, name, message log summary.
fn device_cell(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView, missing: bool) {
    h.push_str("<td class=\"c-dev\"><span class=\"acts\">");
    h.push_str(&button("refresh", "\u{21bb}", "Refresh", ""));
    if missing {
        h.push_str(&button("touch", "\u{2713}", "Mark as seen", ""));
    }
    h.push_str(&button("delete", "\u{2715}", "Delete status", ""));
    h.push_str("</span>");
    let _ = write!(h, "<span class=\"sn\">{}</span>", e(&v.sn));
    if !v.device_type.is_empty() {
        let _ = write!(h, "<span class=\"type\">{}</span>", e(&v.device_type));
    }
    if !v.name.is_empty() {
        let _ = write!(
            h,
            "<span class=\"name\" title=\"{}\">{}</span>",
            e(&v.name),
            e(&v.name)
        );
    }
    if !v.realip.is_empty() {
        address(ctx, h, v);
    }
    if v.log_polls > 0 {
        let (polls, entries) = (v.log_polls, v.log_entries);
        let _ = write!(
            h,
            "<details class=\"log\" data-part=\"log\"><summary>Log ({} entr{}, {} poll{})</summary></details>",
            entries,
            if entries == 1 { "y" } else { "ies" },
            polls,
            if polls == 1 { "" } else { "s" }
        );
    }
    h.push_str("</td>");
}

/// The device's address (a link to its web UI when it looks like one), and the proxy.
fn address(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView) {
    h.push_str("<span class=\"ip\">");
    match device_link(&v.realip, ctx.cfg.status.usehttpsdevlinks) {
        Some(url) => {
            let _ = write!(
                h,
                "<a href=\"{}\" target=\"_blank\" rel=\"noreferrer\">{}</a>",
                e(&url),
                e(&v.realip)
            );
        }
        None => h.push_str(&e(&v.realip)),
    }
    if v.via_proxy {
        let via = if v.proxy.is_empty() {
            v.ip.clone()
        } else {
            format!("{} and {}", v.proxy, v.ip)
        };
        let _ = write!(h, " <span class=\"via\">(via {})</span>", e(&via));
    }
    h.push_str("</span>");
}

/// The last backup (its files are loaded when opened).
fn backup_cell(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView) {
    h.push_str("<td class=\"c-backup\">");
    if let Some(t) = v.backup {
        let _ = write!(
            h,
            "<span title=\"{}\">{}</span>",
            e(&date(t)),
            e(&age(ctx.now, t))
        );
        h.push_str("<details data-part=\"backups\"><summary>files</summary></details>");
    }
    h.push_str("</td>");
}

/// Phase, classes, environments and the delivered snippets (loaded when opened).
fn scripts_cell(h: &mut String, v: &DeviceView) {
    h.push_str("<td class=\"c-scripts\"><span class=\"meta\">");
    for (k, val) in [
        ("phase", &v.phase),
        ("class", &v.classes),
        ("env", &v.environments),
    ] {
        if !val.is_empty() {
            let _ = write!(h, "<span class=\"k\">{k}</span> {} ", e(val));
        }
    }
    h.push_str("</span>");
    if v.snippet_count > 0 {
        let _ = write!(
            h,
            "<details data-part=\"scripts\"><summary>{} snippet{}</summary></details>",
            v.snippet_count,
            if v.snippet_count == 1 { "" } else { "s" }
        );
    }
    h.push_str("</td>");
}

/// One cell per `show` expression of each query group.
fn query_cells(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView) {
    for (gi, g) in ctx.groups.iter().enumerate() {
        let Some(res) = v.queries.get(gi).and_then(Option::as_ref) else {
            for i in 0..g.columns.len() {
                let _ = write!(
                    h,
                    "<td class=\"q na{}\"></td>",
                    if i == 0 { " qfirst" } else { "" }
                );
            }
            continue;
        };
        for (i, cell) in res.cells.iter().enumerate() {
            let first = if i == 0 { " qfirst" } else { "" };
            let _ = write!(h, "<td class=\"q{first}\">");
            match cell {
                Cell::Value(s) => h.push_str(&e(s)),
                Cell::Error(s) => {
                    let _ = write!(h, "<span class=\"err\">{}</span>", e(s));
                }
            }
            if i == 0 {
                let _ = write!(
                    h,
                    " <small class=\"age\">({})</small>",
                    e(&age(ctx.now, res.seen))
                );
            }
            h.push_str("</td>");
        }
    }
}

/// The parts of a row that are loaded when opened (`cmd=rowpart`): `log`, `backups`,
/// `scripts`. `None` for an unknown part.
pub fn part(ctx: &Ctx<'_>, r: &Row, name: &str) -> Option<String> {
    let v = &*r.view;
    let mut h = String::new();
    match name {
        "log" => {
            h.push_str("<ul>");
            for (i, m) in v.msgs.iter().enumerate() {
                if i == 0 || m.text.is_empty() {
                    let _ = write!(
                        h,
                        "<li class=\"ruler\" title=\"{}\">{}</li>",
                        e(&date(m.time)),
                        e(&age(ctx.now, m.time))
                    );
                }
                if !m.text.is_empty() {
                    let _ = write!(h, "<li>{}</li>", e(&m.text));
                }
            }
            h.push_str("</ul>");
        }
        "backups" => {
            if r.backups.is_empty() {
                return Some("<p class=\"undef\">no backup files</p>".to_string());
            }
            h.push_str("<ul class=\"backups\">");
            let backup = |extra: &str| {
                admin_url(ctx.prefix, &format!("mode=backup&sn={}&{extra}", q(&v.key)))
            };
            for (i, b) in r.backups.iter().enumerate() {
                let file = b.path.rsplit('/').next().unwrap_or_default();
                let _ = write!(
                    h,
                    "<li><a href=\"{}\" title=\"{}\">{}</a> <span class=\"fn\">{}</span> <a class=\"view\" href=\"{}\">view</a>",
                    e(&deliver_url(ctx.prefix, &b.path)),
                    e(&format!("Download {} ({})", b.path, date(b.mtime))),
                    e(&age(ctx.now, b.mtime)),
                    e(file),
                    e(&backup(&format!("n={}", b.index)))
                );
                if let Some(older) = r.backups.get(i + 1) {
                    let _ = write!(
                        h,
                        " <a class=\"cmp\" href=\"{}\">changes</a>",
                        e(&backup(&format!("a={}&b={}", older.index, b.index)))
                    );
                }
                h.push_str("</li>");
            }
            h.push_str("</ul>");
        }
        "scripts" => {
            h.push_str(
                "<table class=\"snips\"><tr><th>File</th><th>Delivered</th><th>Version</th></tr>",
            );
            for s in &v.snippets {
                let _ = write!(
                    h,
                    "<tr><td><a href=\"{}\">{}</a></td><td title=\"{}\">{}</td><td title=\"{}\">{}</td></tr>",
                    e(&deliver_url(ctx.prefix, &s.file)),
                    e(&s.file),
                    e(&date(s.delivered)),
                    e(&age(ctx.now, s.delivered)),
                    e(&date(s.version)),
                    e(&age(ctx.now, s.version))
                );
            }
            h.push_str("</table>");
        }
        _ => return None,
    }
    Some(h)
}

fn build_cell(h: &mut String, build: &str, requested: &str, what: &str) {
    let shown = if build.is_empty() { "\u{2013}" } else { build };
    if !requested.is_empty() && requested != build {
        let _ = write!(
            h,
            "<span class=\"pending\" title=\"{}\">{} \u{2192} {}</span>",
            e(&format!("{what} {requested} requested")),
            e(shown),
            e(requested)
        );
    } else {
        h.push_str(&e(shown));
    }
}

fn cert_cell(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView, c: &CertState) {
    let stat = v.certstat.as_deref().unwrap_or("unknown");
    let _ = write!(
        h,
        "<span class=\"certstat\" title=\"{}\">{}</span>",
        e(stat),
        e(stat)
    );
    if v.request_error {
        h.push_str("<details class=\"warn\"><summary>upload error</summary><div class=\"part\">Certificate upload error \u{2013} certificate handling stopped. Remove the CSR on the device and its variable <code>X509/REQUESTERROR</code> (<code>vars del X509/REQUESTERROR</code>), delete the certificate files, and the process starts again.</div></details>");
    }
    cert_files(ctx, h, c);
    if c.csr_waiting() {
        h.push_str("<span class=\"note\">CSR waiting for signature</span>");
        if let Some(csr) = &c.csr {
            let _ = write!(
                h,
                "<span class=\"csr\" title=\"check before signing\">subject {}, key SHA-256 {}</span>",
                e(&csr.subject),
                e(&csr.key_sha256)
            );
        }
    } else if c.signed.is_some() && (c.der.is_some() || c.pem.is_some()) {
        h.push_str("<span class=\"note\">signed certificate waiting for the device</span>");
    }
    if c.csr_waiting()
        && let Some(cc) = &ctx.cfg.customcerts
    {
        upload_form(ctx, h, v, cc);
    }
}

/// The certificate files of the device, each with a download link and a delete button.
fn cert_files(ctx: &Ctx<'_>, h: &mut String, c: &CertState) {
    let files = [
        (
            &c.der,
            "CSR",
            "DER",
            "Download the certificate signing request (DER)",
        ),
        (
            &c.pem,
            "CSR",
            "PEM",
            "Download the certificate signing request (PEM)",
        ),
        (
            &c.signed,
            "Certificate",
            "signed",
            "Download the signed certificate",
        ),
        (
            &c.error,
            "Request error",
            "device",
            "Download the request error reported by the device",
        ),
    ];
    let n = files.iter().filter(|(p, ..)| p.is_some()).count();
    if n > 0 {
        let _ = write!(
            h,
            "<details class=\"certfiles\"><summary>{n} file{}</summary><ul class=\"files part\">",
            if n == 1 { "" } else { "s" }
        );
        for (path, label, kind, title) in files {
            if let Some(p) = path {
                let _ = write!(
                    h,
                    "<li><a href=\"{}\" title=\"{}\" download>{label}</a> <small>({kind})</small> {}</li>",
                    e(&deliver_url(ctx.prefix, p)),
                    e(title),
                    button(
                        "delfile",
                        "\u{2715}",
                        &format!("Delete {p}"),
                        &format!(" data-file=\"{}\"", e(p))
                    )
                );
            }
        }
        h.push_str("</ul></details>");
    }
}

/// The upload form for the signed certificate of a device whose CSR waits.
fn upload_form(ctx: &Ctx<'_>, h: &mut String, v: &DeviceView, cc: &crate::config::CustomCerts) {
    let target = crate::certs::CertPaths::new(cc, &v.key).signed;
    let action = format!(
        "{}/update.php?mode=upload&sn={}&file={}&proceed={}",
        ctx.prefix,
        q(&v.key),
        q(&target),
        q("admin/admin.php?mode=status")
    );
    let _ = write!(
        h,
        "<form class=\"upload\" method=\"post\" enctype=\"multipart/form-data\" action=\"{}\">\
<input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label>Signed certificate (PEM or DER) <input type=\"file\" name=\"{}\" accept=\".pem,.der,.cer,.crt\" required></label> \
<button type=\"submit\">Upload</button></form>",
        e(&action),
        e(ctx.csrf),
        e(&format!("cert-{}", v.key))
    );
}
