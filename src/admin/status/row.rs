//! One device's row of the status page (also the answer of `cmd=updatestatus`) and the
//! parts of a row that are loaded when opened (`cmd=rowpart`), as `maud` templates.

use super::{RenderCtx, Row};
use crate::admin::files::CertState;
use crate::admin::html::{Text, admin_url, age, date, deliver_url, q};
use crate::admin::view::{Cell, DeviceView, Msg};
use maud::{Markup, html};

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

/// An action button of a row (`file`: the file `delfile` deletes).
pub(in crate::admin) fn button(act: &str, label: &str, title: &str, file: Option<&str>) -> Markup {
    html! {
        button type="button" class="act" data-act=(act) title=(Text(title)) aria-label=(Text(title)) data-file=[file.map(Text)] { span aria-hidden="true" { (label) } }
    }
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

/// A time as its age, with the date as tooltip.
fn when(ctx: &RenderCtx<'_>, t: i64) -> (String, String) {
    (date(t), age(ctx.now, t))
}

/// One poll of the message log: its time and its lines (newest first).
pub(in crate::admin) fn polls_newest_first(msgs: &[Msg]) -> Vec<(i64, Vec<&str>)> {
    let mut polls: Vec<(i64, Vec<&str>)> = Vec::new();
    for m in msgs {
        match polls.last_mut() {
            Some(p) if !m.text.is_empty() => p.1.push(&m.text),
            _ => polls.push((
                m.time,
                if m.text.is_empty() {
                    Vec::new()
                } else {
                    vec![m.text.as_str()]
                },
            )),
        }
    }
    for p in &mut polls {
        p.1.reverse();
    }
    polls.reverse();
    polls
}

/// One device's `<tr>` (also the answer of `cmd=updatestatus`).
pub fn row(ctx: &RenderCtx<'_>, r: &Row) -> String {
    let v = &*r.view;
    let missing = v.is_missing(ctx.cfg.status.missing, ctx.now);
    let class = match (&v.problem, missing) {
        (Some(_), _) => "dev problem",
        (None, true) => "dev missing",
        (None, false) => "dev",
    };
    html! {
        tr id=(format!("d-{}", v.key)) class=(class) data-sn=(Text(&v.key)) {
            @if let Some(problem) = &v.problem {
                td colspan=(ctx.columns()) {
                    div class="acts" { (button("delete", "\u{2715}", &format!("Delete {}.xml", v.key), None)) }
                    strong { (Text(&v.key)) } ": " (Text(problem))
                }
            } @else {
                (device_cell(ctx, v, missing))
                @let (d, a) = when(ctx, v.seen);
                td class="c-seen" title=(d) {
                    div { (a) }
                    @if missing { div { span.badge.missing { "missing" } } }
                }
                @if ctx.backups_on() { (backup_cell(ctx, v)) }
                td class="c-fw" {
                    div { (build_cell(&v.firmware, &v.firmware_requested, "firmware")) }
                    div.boot { span class="sep" { "boot " } (build_cell(&v.bootcode, &v.bootcode_requested, "boot code")) }
                }
                @if ctx.cfg.customcerts.is_some() {
                    td class="c-cert" { (cert_cell(ctx, v, &r.certs)) }
                }
                (scripts_cell(v))
                @if !ctx.cfg.rollouts.is_empty() { (crate::admin::rollout_cells::row_cell(ctx.cfg, ctx.prefix, ctx.rollouts, v)) }
                (query_cells(ctx, v))
            }
        }
    }
    .into_string()
}

/// The link to a device's own page.
pub fn device_href(prefix: &str, sn: &str) -> String {
    admin_url(prefix, &format!("mode=device&sn={}", q(sn)))
}

/// The device cell, two lines: serial (a link to the device's page), type and actions;
/// name, address and the message log summary.
fn device_cell(ctx: &RenderCtx<'_>, v: &DeviceView, missing: bool) -> Markup {
    let (polls, entries) = (v.log_polls, v.log_entries);
    html! {
        td class="c-dev" {
            div.l1 {
                a.sn href=(device_href(ctx.prefix, &v.key)) title=(Text(&format!("Device page of {}", v.sn))) { (Text(&v.sn)) }
                @if !v.device_type.is_empty() { span class="type" { (Text(&v.device_type)) } }
                span class="acts" {
                    (button("refresh", "\u{21bb}", &format!("Refresh {}", v.key), None))
                    @if missing { (button("touch", "\u{2713}", &format!("Mark {} as seen", v.key), None)) }
                    (button("delete", "\u{2715}", &format!("Delete the status of {}", v.key), None))
                }
            }
            div.l2 {
                @if !v.name.is_empty() { span class="name" title=(Text(&v.name)) { (Text(&v.name)) } }
                @if !v.realip.is_empty() { (address(ctx, v)) }
                @if polls > 0 {
                    details class="log" data-part="log" {
                        summary title=(format!("{entries} entr{}, {polls} poll{}", plural(entries, "y", "ies"), plural(polls, "", "s"))) {
                            "Log (" (entries) ")"
                        }
                    }
                }
            }
        }
    }
}

/// The device's address (a link to its web UI when it looks like one), and the proxy.
fn address(ctx: &RenderCtx<'_>, v: &DeviceView) -> Markup {
    let via = if v.proxy.is_empty() {
        v.ip.clone()
    } else {
        format!("{} and {}", v.proxy, v.ip)
    };
    let title = v.via_proxy.then(|| format!("via {via}"));
    html! {
        span class="ip" title=[title.as_deref().map(Text)] {
            @match device_link(&v.realip, ctx.cfg.status.usehttpsdevlinks) {
                Some(url) => a href=(url) target="_blank" rel="noreferrer" { (Text(&v.realip)) },
                None => { (Text(&v.realip)) },
            }
            @if v.via_proxy { " " span class="via" aria-label=(Text(&format!("via {via}"))) { "(via)" } }
        }
    }
}

/// The last backup (its files are loaded when opened).
fn backup_cell(ctx: &RenderCtx<'_>, v: &DeviceView) -> Markup {
    html! {
        td class="c-backup" {
            @if let Some(t) = v.backup {
                @let (d, a) = when(ctx, t);
                div title=(d) { (a) }
                details data-part="backups" { summary { "files" } }
            }
        }
    }
}

/// Phase, environments, classes (shortened, in full as tooltip) and the delivered snippets
/// (loaded when opened).
fn scripts_cell(v: &DeviceView) -> Markup {
    let n = v.snippet_count;
    html! {
        td class="c-scripts" {
            div.meta {
                @for (k, val) in [("phase", &v.phase), ("env", &v.environments)] {
                    @if !val.is_empty() { span class="k" { (k) } " " (Text(val)) " " }
                }
            }
            div.l2 {
                @if !v.classes.is_empty() {
                    span.classes title=(Text(&format!("classes: {}", v.classes))) { span class="k" { "class" } " " (Text(&v.classes)) }
                }
                @if n > 0 {
                    " " details data-part="scripts" { summary { (n) " snippet" (plural(n, "", "s")) } }
                }
            }
        }
    }
}

/// One cell per `show` expression of each query group.
fn query_cells(ctx: &RenderCtx<'_>, v: &DeviceView) -> Markup {
    let first = |i: usize| if i == 0 { "q qfirst" } else { "q" };
    html! {
        @for (gi, g) in ctx.groups.iter().enumerate() {
            @if let Some(res) = v.queries.get(gi).and_then(Option::as_ref) {
                @for (i, cell) in res.cells.iter().enumerate() {
                    @let full = match cell { Cell::Value(s) | Cell::Error(s) => s };
                    td class=(first(i)) title=(Text(full)) {
                        @match cell {
                            Cell::Value(s) => (Text(s)),
                            Cell::Error(s) => span class="err" { (Text(s)) },
                        }
                        @if i == 0 { " " small class="age" { "(" (age(ctx.now, res.seen)) ")" } }
                    }
                }
            } @else {
                @for i in 0..g.columns.len() {
                    td class=(if i == 0 { "q na qfirst" } else { "q na" }) { span.sr-only { "no result" } }
                }
            }
        }
    }
}

/// The parts of a row that are loaded when opened (`cmd=rowpart`): `log`, `backups`,
/// `scripts`. `None` for an unknown part.
pub fn part(ctx: &RenderCtx<'_>, r: &Row, name: &str) -> Option<String> {
    let v = &*r.view;
    let markup = match name {
        // newest first, like the device's page (which has it with dates)
        "log" => html! {
            ul {
                @for (t, lines) in polls_newest_first(&v.msgs) {
                    @let (d, a) = when(ctx, t);
                    li class="ruler" title=(d) { (a) }
                    @for l in lines { li { (Text(l)) } }
                }
            }
            a.more href=(device_href(ctx.prefix, &v.key)) { "with dates on the device's page" }
        },
        "backups" => backups_part(ctx, r),
        "scripts" => html! {
            table class="snips" {
                tr { th { "File" } th { "Delivered" } th { "Version" } }
                @for s in &v.snippets {
                    @let (dd, da) = when(ctx, s.delivered);
                    @let (vd, va) = when(ctx, s.version);
                    tr {
                        td { a href=(deliver_url(ctx.prefix, &s.file)) { (Text(&s.file)) } }
                        td title=(dd) { (da) }
                        td title=(vd) { (va) }
                    }
                }
            }
        },
        _ => return None,
    };
    Some(markup.into_string())
}

/// The backup files of a row, each with download, view and the changes to the one before.
fn backups_part(ctx: &RenderCtx<'_>, r: &Row) -> Markup {
    let backup = |extra: &str| {
        admin_url(
            ctx.prefix,
            &format!("mode=backup&sn={}&{extra}", q(&r.view.key)),
        )
    };
    html! {
        @if r.backups.is_empty() {
            p class="undef" { "no backup files" }
        } @else {
            ul class="backups" {
                @for (i, b) in r.backups.iter().enumerate() {
                    @let file = b.path.rsplit('/').next().unwrap_or_default();
                    li {
                        a href=(deliver_url(ctx.prefix, &b.path))
                            title=(Text(&format!("Download {} ({})", b.path, date(b.mtime)))) {
                            (age(ctx.now, b.mtime))
                        }
                        " " span class="fn" { (Text(file)) } " "
                        a class="view" href=(backup(&format!("n={}", b.index))) { "view" }
                        @if let Some(older) = r.backups.get(i + 1) {
                            " "
                            a class="cmp" href=(backup(&format!("a={}&b={}", older.index, b.index))) { "changes" }
                        }
                    }
                }
            }
        }
    }
}

pub(in crate::admin) fn build_cell(build: &str, requested: &str, what: &str) -> Markup {
    let shown = if build.is_empty() { "\u{2013}" } else { build };
    html! {
        @if !requested.is_empty() && requested != build {
            span class="pending" title=(Text(&format!("{what} {requested} requested"))) {
                (Text(shown)) " \u{2192} " (Text(requested))
            }
        } @else {
            (Text(shown))
        }
    }
}

const REQUEST_ERROR_HELP: &str = "Certificate upload error \u{2013} certificate handling stopped. Remove the CSR on the device and its variable ";

pub(in crate::admin) fn cert_cell(ctx: &RenderCtx<'_>, v: &DeviceView, c: &CertState) -> Markup {
    let stat = v.certstat.as_deref().unwrap_or("unknown");
    html! {
        div.certstat title=(Text(stat)) { (Text(stat)) }
        @if let Some(p) = &c.proved {
            div class="proof" title="how the device last proved itself (since the server started)" {
                "identity: " (Text(p))
            }
        }
        div.l2 {
            @if v.request_error {
                details class="warn" {
                    summary { "upload error" }
                    div class="part" {
                        (REQUEST_ERROR_HELP) code { "X509/REQUESTERROR" } " (" code { "vars del X509/REQUESTERROR" }
                        "), delete the certificate files, and the process starts again."
                    }
                }
            }
            (cert_files(ctx, c))
            @if c.csr_waiting() {
                details.csr {
                    summary.note { "CSR waiting for signature" }
                    div.part {
                        @if let Some(csr) = &c.csr {
                            dl.csr title="check before signing" {
                                dt { "Subject" } dd { (Text(&csr.subject)) }
                                dt { "Key SHA-256" } dd.fp { (Text(&csr.key_sha256)) }
                            }
                        }
                        @if let Some(by) = &c.csr_by {
                            div class="csr-by" title="the client identity that uploaded the CSR" {
                                "uploaded by " (Text(by))
                            }
                        }
                        @if let Some(cc) = &ctx.cfg.customcerts { (upload_form(ctx, v, cc)) }
                    }
                }
            } @else if c.signed.is_some() && (c.der.is_some() || c.pem.is_some()) {
                span class="note" { "signed certificate waiting for the device" }
            }
        }
    }
}

/// The certificate files of the device, each with a download link and a delete button.
fn cert_files(ctx: &RenderCtx<'_>, c: &CertState) -> Markup {
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
    html! {
        @if n > 0 {
            details class="certfiles" {
                summary { (n) " file" (plural(n, "", "s")) }
                ul class="files part" {
                    @for (path, label, kind, title) in files {
                        @if let Some(p) = path {
                            li {
                                a href=(deliver_url(ctx.prefix, p)) title=(title) download { (label) }
                                " " small { "(" (kind) ")" } " "
                                (button("delfile", "\u{2715}", &format!("Delete {p}"), Some(p)))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The upload form for the signed certificate of a device whose CSR waits.
fn upload_form(ctx: &RenderCtx<'_>, v: &DeviceView, cc: &crate::config::CustomCerts) -> Markup {
    let target = crate::certs::CertPaths::new(cc, &v.key).signed;
    let back = if ctx.device_page {
        format!("admin/admin.php?mode=device&sn={}", q(&v.key))
    } else {
        "admin/admin.php?mode=status".to_string()
    };
    let action = format!(
        "{}/update.php?mode=upload&sn={}&file={}&proceed={}",
        ctx.prefix,
        q(&v.key),
        q(&target),
        q(&back)
    );
    html! {
        form class="upload" method="post" enctype="multipart/form-data" action=(action) {
            input type="hidden" name="csrf" value=(ctx.csrf);
            label {
                "Signed certificate (PEM or DER) "
                input type="file" name=(Text(&format!("cert-{}", v.key))) accept=".pem,.der,.cer,.crt" required;
            }
            " "
            button type="submit" { "Upload" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::status::render_body;
    use crate::admin::view::{QueryResult, Snippet, show_groups};
    use crate::backup::Stored;
    use crate::certs::CsrSummary;
    use crate::config::Config;
    use std::sync::Arc;

    /// What a device (or whoever writes its files) could send in any value.
    const EVIL: &str = "<script>alert(\"x'y\")</script>";
    const ESCAPED: &str = "&lt;script&gt;alert(&quot;x&#39;y&quot;)&lt;/script&gt;";

    fn evil_row() -> Row {
        let mut v = DeviceView::empty("00-90-33-30-00-af");
        v.sn = "00-90-33-30-00-af".into();
        v.hwid = "IP232-30-00-af".into();
        for s in [
            &mut v.device_type,
            &mut v.name,
            &mut v.realip,
            &mut v.ip,
            &mut v.proxy,
            &mut v.phase,
            &mut v.classes,
            &mut v.environments,
            &mut v.firmware,
            &mut v.bootcode,
        ] {
            *s = EVIL.into();
        }
        v.firmware_requested = format!("1{EVIL}");
        v.via_proxy = true;
        v.seen = 900;
        v.backup = Some(900);
        v.certstat = Some(EVIL.into());
        v.request_error = true;
        v.msgs = vec![
            Msg {
                time: 900,
                text: String::new(),
            },
            Msg {
                time: 900,
                text: EVIL.into(),
            },
        ];
        (v.log_entries, v.log_polls) = (1, 1);
        v.snippets = vec![Snippet {
            file: format!("scripts/{EVIL}.txt"),
            delivered: 900,
            version: 800,
        }];
        v.snippet_count = 1;
        v.queries = vec![Some(QueryResult {
            seen: 900,
            cells: vec![Cell::Value(EVIL.into()), Cell::Error(EVIL.into())],
        })];
        Row {
            view: Arc::new(v),
            certs: CertState {
                der: Some("certs/00-90-33-30-00-af-request.p10.der".into()),
                csr: Some(CsrSummary {
                    subject: format!("CN={EVIL}"),
                    key_sha256: EVIL.into(),
                }),
                csr_by: Some(format!("CN='{EVIL}' via MTLS")),
                proved: Some(format!("MTLS, CN '{EVIL}'")),
                ..CertState::default()
            },
            backups: Arc::new(vec![Stored {
                path: "backup/IP232-30-00-af/<b onclick=\"x('y')\">.1.txt".into(),
                index: 1,
                mtime: 900,
            }]),
        }
    }

    #[test]
    fn a_device_value_is_escaped_in_every_column_and_part() {
        let cfg = Config::from_user_xml(
            r#"<config><master info=""/><status dir="status" missing="600"/><backup dir="backup"/><customcerts dir="certs"/><queries><query id="q" title="Q"><show title="A">1</show><show title="B">2</show></query></queries></config>"#,
        )
        .expect("config");
        let groups = show_groups(&cfg);
        let ctx = crate::admin::status::test_ctx(&cfg, &groups, "", 1000);
        let r = evil_row();
        let html = row(&ctx, &r);
        for (column, expected) in [
            ("type", format!("<span class=\"type\">{ESCAPED}</span>")),
            (
                "name",
                format!("<span class=\"name\" title=\"{ESCAPED}\">{ESCAPED}</span>"),
            ),
            (
                "address",
                format!("<span class=\"ip\" title=\"via {ESCAPED} and {ESCAPED}\">{ESCAPED}"),
            ),
            (
                "proxy",
                format!("aria-label=\"via {ESCAPED} and {ESCAPED}\""),
            ),
            (
                "phase",
                format!("<span class=\"k\">phase</span> {ESCAPED} "),
            ),
            ("firmware", format!("{ESCAPED} \u{2192} 1{ESCAPED}")),
            (
                "certificate status",
                format!("<div class=\"certstat\" title=\"{ESCAPED}\">{ESCAPED}</div>"),
            ),
            (
                "CSR subject",
                format!("<dd>CN={ESCAPED}</dd><dt>Key SHA-256</dt><dd class=\"fp\">{ESCAPED}</dd>"),
            ),
            (
                "CSR uploader",
                format!("uploaded by CN=&#39;{ESCAPED}&#39; via MTLS"),
            ),
            (
                "identity",
                format!("identity: MTLS, CN &#39;{ESCAPED}&#39;"),
            ),
            (
                "query result",
                format!("<td class=\"q qfirst\" title=\"{ESCAPED}\">{ESCAPED} <small"),
            ),
            (
                "query error",
                format!(
                    "<td class=\"q\" title=\"{ESCAPED}\"><span class=\"err\">{ESCAPED}</span></td>"
                ),
            ),
        ] {
            assert!(
                html.contains(&expected),
                "{column}: {expected} not in {html}"
            );
        }
        let log = part(&ctx, &r, "log").expect("log");
        assert!(log.contains(&format!("<li>{ESCAPED}</li>")), "{log}");
        let scripts = part(&ctx, &r, "scripts").expect("scripts");
        assert!(
            scripts.contains(&format!(">scripts/{ESCAPED}.txt</a>")),
            "{scripts}"
        );
        let backups = part(&ctx, &r, "backups").expect("backups");
        assert!(
            backups.contains(
                "<span class=\"fn\">&lt;b onclick=&quot;x(&#39;y&#39;)&quot;&gt;.1.txt</span>"
            ),
            "{backups}"
        );
        assert!(!backups.contains("<b "), "{backups}");
        let page = render_body(&ctx, std::slice::from_ref(&r), EVIL, 1, 10);
        assert!(page.contains(&format!("value=\"{ESCAPED}\"")), "the filter");
        for out in [&html, &log, &scripts, &backups, &page] {
            assert!(!out.contains("<script"), "{out}");
            assert!(!out.contains("\"x'y"), "{out}");
        }
    }
}
