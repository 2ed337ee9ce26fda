//! The status page (`mode=status`): the fleet summary and one row per device, rendered from
//! [`DeviceView`]s, the device files and the clock (pure).
//!
//! Columns, as on the PHP page: device (actions, serial, link to the device's web UI,
//! "via" proxy, type, name, message log), last seen, last backup (with the backup files),
//! firmware and boot code, certificates (status, request error, CSR/certificate files,
//! upload of the signed certificate), delivered snippets, and one column group per query that
//! has `show` expressions.
//!
//! To keep a page of 10 000 devices small, the message log, the backup list and the list of
//! delivered snippets are only summarised in the row (`Log (8 entries, 1 poll)`,
//! `3 files`, `3 snippets`); their content is rendered by [`part`] when an administrator
//! opens them (`mode=ui&cmd=rowpart`).

use super::files::CertState;
use super::html::{age, date, deliver_url, e, q};
use super::view::{Cell, DeviceView, ShowGroup};
use crate::backup::Stored;
use crate::config::Config;
use crate::firmware::BoxInfo;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

/// The builds the master device (or the configuration) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MasterBuilds {
    pub firmware: Option<String>,
    pub bootcode: Option<String>,
}

fn is_build(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// The target builds from `master/@firmware`, `master/@bootcode` and the cached box info.
pub fn master_builds(cfg: &Config, cached: Option<&BoxInfo>) -> MasterBuilds {
    let fw = match cfg.master.firmware.as_str() {
        "none" => None,
        f if is_build(f) => Some(f.to_string()),
        _ => cached.map(|b| b.prot.clone()).filter(|s| !s.is_empty()),
    };
    let boot = match cfg.master.bootcode.as_str() {
        "none" => None,
        "firmware" => fw.clone(),
        b if is_build(b) => Some(b.to_string()),
        _ => cached.map(|b| b.boot.clone()).filter(|s| !s.is_empty()),
    };
    MasterBuilds {
        firmware: fw,
        bootcode: boot,
    }
}

/// What a page render needs besides the rows.
pub struct Ctx<'a> {
    pub cfg: &'a Config,
    pub prefix: &'a str,
    pub csrf: &'a str,
    pub now: i64,
    pub groups: &'a [ShowGroup],
    pub master: MasterBuilds,
}

impl<'a> Ctx<'a> {
    /// The rendering context of a page or row rendered now.
    pub fn new(
        cfg: &'a Config,
        prefix: &'a str,
        csrf: &'a str,
        groups: &'a [ShowGroup],
        master: MasterBuilds,
    ) -> Ctx<'a> {
        Ctx {
            cfg,
            prefix,
            csrf,
            now: crate::clock::now(),
            groups,
            master,
        }
    }

    fn backups_on(&self) -> bool {
        self.cfg
            .backup
            .dir
            .as_deref()
            .is_some_and(|d| !d.is_empty())
    }

    fn columns(&self) -> usize {
        4 + usize::from(self.backups_on())
            + usize::from(self.cfg.customcerts.is_some())
            + self.groups.iter().map(|g| g.columns.len()).sum::<usize>()
    }
}

/// One device with its files.
pub struct Row {
    pub view: Arc<DeviceView>,
    pub certs: CertState,
    /// Newest first.
    pub backups: Arc<Vec<Stored>>,
}

/// The table header.
pub fn header(ctx: &Ctx<'_>) -> String {
    let two = !ctx.groups.is_empty();
    let rs = if two { " rowspan=\"2\"" } else { "" };
    let mut h = String::from("<thead><tr>");
    let _ = write!(h, "<th{rs}>Device</th><th{rs}>Last seen</th>");
    if ctx.backups_on() {
        let _ = write!(h, "<th{rs}>Last backup</th>");
    }
    let _ = write!(h, "<th{rs}>Firmware<br>Boot code</th>");
    if ctx.cfg.customcerts.is_some() {
        let _ = write!(h, "<th{rs}>Certificates</th>");
    }
    let _ = write!(h, "<th{rs}>Scripts</th>");
    for g in ctx.groups {
        let _ = write!(
            h,
            "<th class=\"qg\" colspan=\"{}\">{}</th>",
            g.columns.len(),
            e(&g.title)
        );
    }
    h.push_str("</tr>");
    if two {
        h.push_str("<tr>");
        for g in ctx.groups {
            for (i, c) in g.columns.iter().enumerate() {
                let _ = write!(
                    h,
                    "<th class=\"q{}\">{}</th>",
                    if i == 0 { " qfirst" } else { "" },
                    e(&c.title)
                );
            }
        }
        h.push_str("</tr>");
    }
    h.push_str("</thead>");
    h
}

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
    // device
    h.push_str("<td class=\"c-dev\"><div class=\"acts\">");
    h.push_str(&button("refresh", "\u{21bb}", "Refresh", ""));
    if missing {
        h.push_str(&button("touch", "\u{2713}", "Mark as seen", ""));
    }
    h.push_str(&button("delete", "\u{2715}", "Delete status", ""));
    h.push_str("</div>");
    let _ = write!(h, "<div class=\"sn\">{}</div>", e(&v.sn));
    if !v.realip.is_empty() {
        h.push_str("<div class=\"ip\">");
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
        h.push_str("</div>");
    }
    if !v.device_type.is_empty() {
        let _ = write!(h, "<div class=\"type\">{}</div>", e(&v.device_type));
    }
    if !v.name.is_empty() {
        let _ = write!(h, "<div class=\"name\">{}</div>", e(&v.name));
    }
    if !v.msgs.is_empty() {
        let polls = v.msgs.iter().filter(|m| m.text.is_empty()).count().max(1);
        let entries = v.msgs.iter().filter(|m| !m.text.is_empty()).count();
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
    // last seen
    let _ = write!(
        h,
        "<td class=\"c-seen\" title=\"{}\">{}</td>",
        e(&date(v.seen)),
        e(&age(ctx.now, v.seen))
    );
    // backups
    if ctx.backups_on() {
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
    // firmware, boot code
    h.push_str("<td class=\"c-fw\">");
    build_cell(&mut h, &v.firmware, &v.firmware_requested, "firmware");
    h.push_str("<br>");
    build_cell(&mut h, &v.bootcode, &v.bootcode_requested, "boot code");
    h.push_str("</td>");
    // certificates
    if ctx.cfg.customcerts.is_some() {
        h.push_str("<td class=\"c-cert\">");
        cert_cell(ctx, &mut h, v, &r.certs);
        h.push_str("</td>");
    }
    // scripts
    h.push_str("<td class=\"c-scripts\"><div class=\"meta\">");
    for (k, val) in [
        ("phase", &v.phase),
        ("class", &v.classes),
        ("env", &v.environments),
    ] {
        if !val.is_empty() {
            let _ = write!(h, "<span class=\"k\">{k}</span> {} ", e(val));
        }
    }
    h.push_str("</div>");
    if !v.snippets.is_empty() {
        let _ = write!(
            h,
            "<details data-part=\"scripts\"><summary>{} snippet{}</summary></details>",
            v.snippets.len(),
            if v.snippets.len() == 1 { "" } else { "s" }
        );
    }
    h.push_str("</td>");
    // queries
    for (gi, g) in ctx.groups.iter().enumerate() {
        match v.queries.get(gi).and_then(Option::as_ref) {
            None => {
                for i in 0..g.columns.len() {
                    let _ = write!(
                        h,
                        "<td class=\"q na{}\"></td>",
                        if i == 0 { " qfirst" } else { "" }
                    );
                }
            }
            Some(res) => {
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
    }
    h.push_str("</tr>");
    h
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
            for b in r.backups.iter() {
                let file = b.path.rsplit('/').next().unwrap_or_default();
                let _ = write!(
                    h,
                    "<li><a href=\"{}\" title=\"{}\">{}</a> <span class=\"fn\">{}</span></li>",
                    e(&deliver_url(ctx.prefix, &b.path)),
                    e(&format!("Download {} ({})", b.path, date(b.mtime))),
                    e(&age(ctx.now, b.mtime)),
                    e(file)
                );
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
    let _ = write!(
        h,
        "<div class=\"certstat\">{}</div>",
        e(v.certstat.as_deref().unwrap_or("unknown"))
    );
    if v.request_error {
        h.push_str("<div class=\"warn\">Certificate upload error \u{2013} certificate handling stopped. Remove the CSR on the device and its variable <code>X509/REQUESTERROR</code> (<code>vars del X509/REQUESTERROR</code>), delete the files below, and the process starts again.</div>");
    }
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
    if files.iter().any(|(p, ..)| p.is_some()) {
        h.push_str("<ul class=\"files\">");
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
        h.push_str("</ul>");
    }
    if c.csr_waiting() {
        h.push_str("<div class=\"note\">CSR waiting for signature</div>");
    } else if c.signed.is_some() && (c.der.is_some() || c.pem.is_some()) {
        h.push_str("<div class=\"note\">signed certificate waiting for the device</div>");
    }
    if c.csr_waiting()
        && let Some(cc) = &ctx.cfg.customcerts
    {
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
}

/// Counts for one bar chart, most frequent first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    pub value: String,
    pub count: usize,
    /// The master's build (firmware and boot code charts).
    pub master: bool,
}

/// The fleet at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub devices: usize,
    pub missing: usize,
    /// State files that are no usable device state.
    pub unreadable: usize,
    /// Devices whose CSR waits for a signed certificate.
    pub csr_waiting: usize,
    /// Devices with a signed certificate not yet installed.
    pub signed_waiting: usize,
    /// Devices running the master's firmware.
    pub on_master_firmware: usize,
    pub master: MasterBuilds,
    pub firmware: Vec<Bar>,
    pub bootcode: Vec<Bar>,
    pub phase: Vec<Bar>,
    pub environment: Vec<Bar>,
}

fn bars(counts: HashMap<String, usize>, master: Option<&str>) -> Vec<Bar> {
    let mut v: Vec<Bar> = counts
        .into_iter()
        .map(|(value, count)| Bar {
            master: master.is_some_and(|m| m == value),
            value,
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v
}

/// Counts the fleet of `rows`.
pub fn summary(cfg: &Config, master: &MasterBuilds, now: i64, rows: &[Row]) -> Summary {
    let mut s = Summary {
        master: master.clone(),
        ..Default::default()
    };
    let (mut fw, mut boot, mut phase, mut env) = (
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
        HashMap::new(),
    );
    for r in rows {
        let v = &r.view;
        if v.problem.is_some() {
            s.unreadable += 1;
            continue;
        }
        s.devices += 1;
        if v.is_missing(cfg.status.missing, now) {
            s.missing += 1;
        }
        if r.certs.csr_waiting() {
            s.csr_waiting += 1;
        } else if r.certs.signed.is_some() {
            s.signed_waiting += 1;
        }
        if master.firmware.as_deref().is_some_and(|m| m == v.firmware) {
            s.on_master_firmware += 1;
        }
        *fw.entry(v.firmware.clone()).or_insert(0) += 1;
        *boot.entry(v.bootcode.clone()).or_insert(0) += 1;
        *phase.entry(v.phase.clone()).or_insert(0) += 1;
        for e in v.environments.split(',').map(str::trim) {
            *env.entry(e.to_string()).or_insert(0) += 1;
        }
    }
    s.firmware = bars(fw, master.firmware.as_deref());
    s.bootcode = bars(boot, master.bootcode.as_deref());
    s.phase = bars(phase, None);
    s.environment = bars(env, None);
    s
}

/// Largest number of bars drawn per chart; the rest are summed up.
const MAX_BARS: usize = 10;

fn chart(h: &mut String, title: &str, bars: &[Bar], total: usize) {
    let _ = write!(
        h,
        "<figure class=\"chart\"><figcaption>{}</figcaption><table class=\"bars\">",
        e(title)
    );
    let max = bars.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    for b in bars.iter().take(MAX_BARS) {
        let width = (b.count * 100).div_ceil(max);
        let label = if b.value.is_empty() {
            "<span class=\"none\">(none)</span>".to_string()
        } else {
            format!(
                "<button type=\"button\" class=\"fl\" data-filter=\"{}\" title=\"Show only these devices\">{}</button>",
                e(&b.value),
                e(&b.value)
            )
        };
        let _ = write!(
            h,
            "<tr{}><th>{label}{}</th><td class=\"bar\"><svg viewBox=\"0 0 100 10\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><rect width=\"{width}\" height=\"10\"/></svg></td><td class=\"n\" title=\"{}\">{}</td></tr>",
            if b.master { " class=\"master\"" } else { "" },
            if b.master {
                " <small class=\"mark\" title=\"the master's build\">\u{2605} master</small>"
            } else {
                ""
            },
            e(&format!(
                "{} % of {total}",
                (b.count * 100).checked_div(total).unwrap_or(0)
            )),
            b.count
        );
    }
    if bars.len() > MAX_BARS {
        let rest: usize = bars[MAX_BARS..].iter().map(|b| b.count).sum();
        let _ = write!(
            h,
            "<tr class=\"rest\"><th>{} more</th><td></td><td class=\"n\">{rest}</td></tr>",
            bars.len() - MAX_BARS
        );
    }
    h.push_str("</table></figure>");
}

/// The summary section.
pub fn render_summary(cfg: &Config, s: &Summary) -> String {
    let mut h =
        String::from("<section class=\"summary\" aria-label=\"Fleet summary\"><p class=\"facts\">");
    let _ = write!(
        h,
        "<b>{}</b> device{}",
        s.devices,
        if s.devices == 1 { "" } else { "s" }
    );
    if cfg.status.missing > 0 {
        let _ = write!(
            h,
            " \u{b7} <button type=\"button\" class=\"fl\" data-filter=\"missing\"><b>{}</b> missing</button>",
            s.missing
        );
    }
    if let Some(fw) = &s.master.firmware {
        let _ = write!(
            h,
            " \u{b7} <b>{}</b> on the master's firmware {}",
            s.on_master_firmware,
            e(fw)
        );
    }
    if cfg.customcerts.is_some() {
        let _ = write!(
            h,
            " \u{b7} <b>{}</b> CSR{} to sign \u{b7} <b>{}</b> signed certificate{} waiting for the device",
            s.csr_waiting,
            if s.csr_waiting == 1 { "" } else { "s" },
            s.signed_waiting,
            if s.signed_waiting == 1 { "" } else { "s" }
        );
    }
    if s.unreadable > 0 {
        let _ = write!(
            h,
            " \u{b7} <b class=\"err\">{}</b> unreadable state file{}",
            s.unreadable,
            if s.unreadable == 1 { "" } else { "s" }
        );
    }
    h.push_str("</p>");
    if s.devices > 0 {
        h.push_str("<div class=\"charts\">");
        chart(&mut h, "Firmware", &s.firmware, s.devices);
        chart(&mut h, "Boot code", &s.bootcode, s.devices);
        chart(&mut h, "Phase", &s.phase, s.devices);
        chart(&mut h, "Environment", &s.environment, s.devices);
        h.push_str("</div>");
    }
    h.push_str("</section>");
    h
}

/// How many rows the page shows at first, and how many more each "show more" brings.
pub const PAGE_ROWS: usize = 250;

/// The rows after the one with key `after` (all when `None`), at most `limit` of them.
/// `rows` are sorted by key, as the state store lists them.
pub fn window<'r>(rows: &'r [Row], after: Option<&str>, limit: usize) -> &'r [Row] {
    let start = after.map_or(0, |a| rows.partition_point(|r| r.view.key.as_str() <= a));
    let end = start.saturating_add(limit).min(rows.len());
    &rows[start..end]
}

/// "1234 devices" or "12 of 1234 devices match".
pub fn count_text(matched: usize, total: usize, filter: &str) -> String {
    if filter.trim().is_empty() {
        format!("{total} device{}", if total == 1 { "" } else { "s" })
    } else {
        format!("{matched} of {total} devices match")
    }
}

/// The `<tr>`s of `shown`, followed by a "show more" row when `remaining` more match.
/// Without script the link shows the first `shown_so_far + PAGE_ROWS` rows; the page's
/// script fetches the next rows after the last key instead.
pub fn rows_fragment(
    ctx: &Ctx<'_>,
    shown: &[Row],
    remaining: usize,
    filter: &str,
    shown_so_far: usize,
) -> String {
    let mut h = rows_html(ctx, shown);
    if remaining > 0
        && let Some(last) = shown.last()
    {
        let query = format!(
            "mode=status&filter={}&rows={}",
            q(filter),
            shown_so_far + PAGE_ROWS
        );
        let _ = write!(
            h,
            "<tr class=\"more\"><td colspan=\"{}\"><a href=\"{}\" data-after=\"{}\">Show {} more</a> <span class=\"remaining\">({remaining} not shown yet)</span></td></tr>",
            ctx.columns(),
            e(&super::html::admin_url(ctx.prefix, &query)),
            e(&last.view.key),
            remaining.min(PAGE_ROWS)
        );
    }
    h
}

/// The body of the status page: summary (of all matching devices), filter, and the first
/// `limit` matching rows. `matching` are the devices the filter lets through, `total` the
/// number of state files.
pub fn render_body(
    ctx: &Ctx<'_>,
    matching: &[Row],
    filter: &str,
    total: usize,
    limit: usize,
) -> String {
    let shown = window(matching, None, limit);
    let mut h = String::with_capacity(shown.len() * 1600 + 16384);
    if ctx.cfg.status_dir().is_none() {
        h.push_str("<p class=\"notice\">Device status tracking is off: set <code>status/@dir</code> (e.g. <code>&lt;status dir=\"status\"/&gt;</code>) in <code>config/user-config.xml</code>.</p>");
        return h;
    }
    let s = summary(ctx.cfg, &ctx.master, ctx.now, matching);
    let _ = write!(
        h,
        "<div id=\"summary\">{}</div>",
        render_summary(ctx.cfg, &s)
    );
    let _ = write!(
        h,
        "<form class=\"filter\" method=\"get\" action=\"{}\" role=\"search\"><input type=\"hidden\" name=\"mode\" value=\"status\">\
<input type=\"search\" id=\"filter\" name=\"filter\" value=\"{}\" placeholder=\"Filter devices\" title=\"Words that must all match a whole word of: ip address, serial number, type, name, phase, class, environment, firmware, boot code, present, missing (* and ? are wildcards)\" autocomplete=\"off\"> \
<button type=\"submit\">Filter</button> <span id=\"count\">{}</span></form>",
        e(&super::html::admin_url(ctx.prefix, "")),
        e(filter),
        e(&count_text(matching.len(), total, filter))
    );
    h.push_str("<div class=\"tablewrap\"><table id=\"devices\">");
    h.push_str(&header(ctx));
    h.push_str("<tbody id=\"devicestable\">");
    h.push_str(&rows_fragment(
        ctx,
        shown,
        matching.len() - shown.len(),
        filter,
        shown.len(),
    ));
    h.push_str("</tbody></table></div>");
    h
}

/// The rows, rendered on all cores when there are many.
fn rows_html(ctx: &Ctx<'_>, rows: &[Row]) -> String {
    let one = |rows: &[Row]| {
        let mut h = String::with_capacity(rows.len() * 1600);
        for r in rows {
            h.push_str(&row(ctx, r));
            h.push('\n');
        }
        h
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if rows.len() < 1000 || threads < 2 {
        return one(rows);
    }
    let chunk = rows.len().div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = rows
            .chunks(chunk)
            .map(|c| s.spawn(move || one(c)))
            .collect();
        parts
            .into_iter()
            .map(|p| p.join().unwrap_or_default())
            .collect::<Vec<String>>()
            .concat()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::files::CertIndex;
    use crate::state::Loaded;
    use crate::xml::Element;

    fn config(extra: &str) -> Config {
        Config::from_user_xml(&format!(
                r#"<config><master info="" firmware="130160"/><status dir="status" missing="600"/><backup dir="backup"/><customcerts dir="certs" CAname="CA"/>{extra}</config>"#
            )).expect("config")
    }

    fn view(xml: &str, groups: &[ShowGroup]) -> Arc<DeviceView> {
        let loaded = match Element::parse(xml.as_bytes()) {
            Ok(e) => Loaded::Ok(Arc::new(e)),
            Err(e) => Loaded::Corrupt {
                error: e.to_string(),
                raw: String::new(),
            },
        };
        Arc::new(DeviceView::from_state("00-90-33-30-00-af", &loaded, groups))
    }

    const EVIL: &str = r#"<state seen="1000"><device sn="00-90-33-30-00-af" type="IP232&quot;&gt;&lt;script&gt;x()&lt;/script&gt;" hwid="IP232-30-00-af" realip="javascript:alert(1)" ip="javascript:alert(1)" phase="update" classes="phone" environments="default" certstat="&lt;b&gt;bold&lt;/b&gt;" backup="990"/><firmware build="130100" requested="130160"/><bootcode build="130150"/><queries><admin seen="999"><info name="&lt;img src=x onerror=alert(1)&gt;'&quot;"/></admin><media seen="999"><info v="&lt;script&gt;"/></media></queries><msgs time="1000" msg=""/><msgs time="1000" msg="&lt;script&gt;alert(2)&lt;/script&gt;"/><config filename="scripts/&lt;x&gt;.txt" delivered="1" version="1"/></state>"#;

    #[test]
    fn every_value_is_escaped() {
        let cfg = config(
            r#"<queries><query id="media" title="M&lt;b&gt;"><show title="T&lt;i&gt;">/state/queries/media/info/@v</show><show title="bad">concat(&lt;script&gt;</show></query></queries>"#,
        );
        let groups = super::super::view::show_groups(&cfg);
        let ctx = Ctx {
            cfg: &cfg,
            prefix: "",
            csrf: "tok",
            now: 1000,
            groups: &groups,
            master: master_builds(&cfg, None),
        };
        let r = Row {
            view: view(EVIL, &groups),
            certs: CertIndex::of(&["00-90-33-30-00-af-request.p10.der"])
                .state(cfg.customcerts.as_ref().expect("cc"), "00-90-33-30-00-af"),
            backups: Arc::new(Vec::new()),
        };
        let html = render_body(&ctx, std::slice::from_ref(&r), "<f>", 1, PAGE_ROWS);
        for bad in [
            "<script",
            "<img",
            "onerror=alert(1)>",
            "<b>bold",
            "<i>",
            "'\"",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
        assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;&#39;&quot;"));
        assert!(
            !html.contains("href=\"javascript"),
            "no link for an address that is none"
        );
        assert!(html.contains("invalid XPath expression: concat(&lt;script&gt;"));
        assert!(html.contains("value=\"&lt;f&gt;\""));
        assert!(html.contains("CSR waiting for signature"));
        assert!(html.contains(
            "action=\"/update.php?mode=upload&amp;sn=00-90-33-30-00-af&amp;file=certs%2F00-90-33-30-00-af-signedrequest.cer&amp;proceed=admin%2Fadmin.php%3Fmode%3Dstatus\""
        ));
        assert!(html.contains("name=\"cert-00-90-33-30-00-af\""));
        assert!(html.contains("130100 \u{2192} 130160"));
        assert!(html.contains("<summary>Log (1 entry, 1 poll)</summary>"));
        let log = part(&ctx, &r, "log").expect("log part");
        assert!(
            log.contains("<li>&lt;script&gt;alert(2)&lt;/script&gt;</li>"),
            "{log}"
        );
        let scripts = part(&ctx, &r, "scripts").expect("scripts part");
        assert!(scripts.contains("scripts/&lt;x&gt;.txt"), "{scripts}");
        assert!(!scripts.contains("<x>"));
        assert_eq!(part(&ctx, &r, "other"), None);
    }

    #[test]
    fn missing_devices_and_broken_files_look_different() {
        let cfg = config("");
        let ctx = Ctx {
            cfg: &cfg,
            prefix: "/u",
            csrf: "tok",
            now: 5000,
            groups: &[],
            master: master_builds(&cfg, None),
        };
        let rows = [
            Row {
                view: view(EVIL, &[]),
                certs: CertState::default(),
                backups: Arc::new(Vec::new()),
            },
            Row {
                view: view("<state><device", &[]),
                certs: CertState::default(),
                backups: Arc::new(Vec::new()),
            },
        ];
        let first = row(&ctx, &rows[0]);
        assert!(first.starts_with("<tr id=\"d-00-90-33-30-00-af\" class=\"dev missing\""));
        assert!(first.contains("data-act=\"touch\""));
        let second = row(&ctx, &rows[1]);
        assert!(second.contains("class=\"dev problem\""));
        assert!(second.contains("cannot read state file 00-90-33-30-00-af.xml"));
        assert!(second.contains("colspan=\"6\""));
        let s = summary(&cfg, &ctx.master, ctx.now, &rows);
        assert_eq!((s.devices, s.missing, s.unreadable), (1, 1, 1));
    }

    #[test]
    fn summary_counts_builds_and_marks_the_master() {
        let cfg = config("");
        let mk = |fw: &str, env: &str, seen: i64| Row {
            view: view(
                &format!(
                    r#"<state seen="{seen}"><device sn="x" phase="update" environments="{env}"/><firmware build="{fw}"/><bootcode build="130150"/></state>"#
                ),
                &[],
            ),
            certs: CertState::default(),
            backups: Arc::new(Vec::new()),
        };
        let rows = [
            mk("130160", "default", 1000),
            mk("130160", "default, lab", 1000),
            mk("130100", "lab", 10),
        ];
        let m = master_builds(&cfg, None);
        assert_eq!(m.firmware.as_deref(), Some("130160"));
        let s = summary(&cfg, &m, 1000, &rows);
        assert_eq!(s.devices, 3);
        assert_eq!(s.missing, 1);
        assert_eq!(s.on_master_firmware, 2);
        assert_eq!(
            s.firmware,
            vec![
                Bar {
                    value: "130160".into(),
                    count: 2,
                    master: true
                },
                Bar {
                    value: "130100".into(),
                    count: 1,
                    master: false
                }
            ]
        );
        assert_eq!(s.environment[0].value, "default");
        assert_eq!(s.environment[0].count, 2);
        assert_eq!(s.environment[1].value, "lab");
        assert_eq!(s.environment[1].count, 2);
        let html = render_summary(&cfg, &s);
        assert!(html.contains(
            "<tr class=\"master\"><th><button type=\"button\" class=\"fl\" data-filter=\"130160\""
        ));
        assert!(html.contains("<rect width=\"100\""));
        assert!(html.contains("<rect width=\"50\""));
    }

    #[test]
    fn master_builds_follow_the_configuration() {
        let info = BoxInfo {
            label: "x".into(),
            prot: "130178".into(),
            boot: "130112".into(),
            hw: "104-00".into(),
        };
        let mut cfg = config("");
        cfg.master.firmware = "master".into();
        cfg.master.bootcode = "firmware".into();
        let m = master_builds(&cfg, Some(&info));
        assert_eq!(m.firmware.as_deref(), Some("130178"));
        assert_eq!(m.bootcode.as_deref(), Some("130178"));
        cfg.master.firmware = "none".into();
        cfg.master.bootcode = "master".into();
        let m = master_builds(&cfg, Some(&info));
        assert_eq!(m.firmware, None);
        assert_eq!(m.bootcode.as_deref(), Some("130112"));
        assert_eq!(master_builds(&cfg, None).bootcode, None);
    }
}
