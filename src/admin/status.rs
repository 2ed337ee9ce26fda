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

mod row;
mod summary;

pub(in crate::admin) use row::{build_cell, button, cert_cell, polls_newest_first};
pub use row::{device_href, part, row};
pub use summary::{
    Bar, Summary, filter_href, render_charts, render_facts, render_summary, render_summary_for,
    summary,
};

use super::files::CertState;
use super::html::{Text, admin_url, q};
use super::view::{DeviceView, ShowGroup};
use crate::backup::Stored;
use crate::config::Config;
use crate::firmware::BoxInfo;
use maud::{Markup, PreEscaped, Render, html};
use serde::Serialize;
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
pub struct RenderCtx<'a> {
    pub cfg: &'a Config,
    pub prefix: &'a str,
    pub csrf: &'a str,
    pub now: i64,
    pub groups: &'a [ShowGroup],
    pub master: MasterBuilds,
    /// The rollout states, for the rollout column (shown with `<rollouts>`).
    pub rollouts: Option<&'a crate::rollout::RolloutStore>,
    /// Rendered for the device's own page: a certificate upload returns there.
    pub device_page: bool,
}

impl<'a> RenderCtx<'a> {
    /// The rendering context of a page or row rendered now.
    pub fn new(
        cfg: &'a Config,
        prefix: &'a str,
        csrf: &'a str,
        groups: &'a [ShowGroup],
        master: MasterBuilds,
    ) -> RenderCtx<'a> {
        RenderCtx {
            cfg,
            prefix,
            csrf,
            now: crate::clock::now(),
            groups,
            master,
            rollouts: None,
            device_page: false,
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
            + usize::from(!self.cfg.rollouts.is_empty())
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

/// The sort keys the status page knows (agreed with the server-side sorting).
pub const SORT_KEYS: [&str; 11] = [
    "sn", "type", "name", "ip", "seen", "backup", "phase", "fw", "boot", "env", "cert",
];

/// The sort key and direction of a `sort=` value (`-seen`: newest first); `None` when unknown.
pub fn parse_sort(sort: &str) -> Option<(&str, bool)> {
    let (key, desc) = match sort.strip_prefix('-') {
        Some(k) => (k, true),
        None => (sort, false),
    };
    SORT_KEYS.contains(&key).then_some((key, desc))
}

/// A header link that sorts by `key` (toggling the direction when it is the current one).
fn sort_link(label: &str, key: &str, filter: &str, sort: &str) -> Markup {
    let current = parse_sort(sort);
    let next = match current {
        Some((k, false)) if k == key => format!("-{key}"),
        _ => key.to_string(),
    };
    let mark = match current {
        Some((k, false)) if k == key => " \u{25b2}",
        Some((k, true)) if k == key => " \u{25bc}",
        _ => "",
    };
    html! {
        a.sort href=(summary::filter_href(filter, &next)) data-sort=(next) { (label) (mark) }
    }
}

/// The `aria-sort` of a header cell whose sort keys are `keys`.
fn aria_sort(keys: &[&str], sort: &str) -> Option<&'static str> {
    match parse_sort(sort) {
        Some((k, desc)) if keys.contains(&k) => Some(if desc { "descending" } else { "ascending" }),
        _ => None,
    }
}

/// The table header without sort state.
pub fn header(ctx: &RenderCtx<'_>) -> String {
    header_sorted(ctx, "", "")
}

/// The table header: each sortable column's title is a link that sorts by it, keeping
/// `filter`; the current `sort` is marked (`aria-sort`).
pub fn header_sorted(ctx: &RenderCtx<'_>, filter: &str, sort: &str) -> String {
    header_markup(ctx, filter, sort).into_string()
}

fn header_markup(ctx: &RenderCtx<'_>, filter: &str, sort: &str) -> Markup {
    let two = !ctx.groups.is_empty();
    let rs = two.then_some("2");
    let cell = |keys: &[(&str, &str)], class: &str| {
        let ks: Vec<&str> = keys.iter().map(|k| k.1).collect();
        html! {
            th class=(class) rowspan=[rs] aria-sort=[aria_sort(&ks, sort)] {
                @for (i, (label, key)) in keys.iter().enumerate() {
                    @if i > 0 { " " }
                    (sort_link(label, key, filter, sort))
                }
            }
        }
    };
    html! {
        thead {
            tr {
                (cell(&[("Device", "sn"), ("type", "type"), ("name", "name"), ("address", "ip")], "h-dev"))
                (cell(&[("Seen", "seen")], "h-seen"))
                @if ctx.backups_on() { (cell(&[("Backup", "backup")], "h-backup")) }
                (cell(&[("Firmware", "fw"), ("boot", "boot")], "h-fw"))
                @if ctx.cfg.customcerts.is_some() { (cell(&[("Certificate", "cert")], "h-cert")) }
                (cell(&[("Phase", "phase"), ("env", "env")], "h-scripts"))
                @if !ctx.cfg.rollouts.is_empty() { th.h-rollout rowspan=[rs] { "Rollout" } }
                @for g in ctx.groups {
                    th.qg colspan=(g.columns.len()) { (g.title) }
                }
            }
            @if two {
                tr {
                    @for g in ctx.groups {
                        @for (i, c) in g.columns.iter().enumerate() {
                            th class=(if i == 0 { "q qfirst" } else { "q" }) { (c.title) }
                        }
                    }
                }
            }
        }
    }
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
    ctx: &RenderCtx<'_>,
    shown: &[Row],
    remaining: usize,
    filter: &str,
    shown_so_far: usize,
) -> String {
    let mut h = rows_html(ctx, shown);
    let empty = shown.is_empty() && shown_so_far == 0 && !filter.trim().is_empty();
    let more = shown.last().filter(|_| remaining > 0).map(|last| {
        let query = format!(
            "mode=status&filter={}&rows={}",
            q(filter),
            shown_so_far + PAGE_ROWS
        );
        (admin_url(ctx.prefix, &query), &last.view.key)
    });
    html! {
        @if empty {
            tr class="empty" {
                td colspan=(ctx.columns()) { "no device matches \u{201c}" (Text(filter)) "\u{201d}" }
            }
        }
        @if let Some((href, last)) = more {
            tr class="more" {
                td colspan=(ctx.columns()) {
                    a href=(href) data-after=(Text(last)) { "Show " (remaining.min(PAGE_ROWS)) " more" }
                    " "
                    span class="remaining" { "(" (remaining) " not shown yet)" }
                }
            }
        }
    }
    .render_to(&mut h);
    h
}

/// The body of the status page: summary (of all matching devices), filter, and the first
/// `limit` matching rows. `matching` are the devices the filter lets through, `total` the
/// number of state files.
pub fn render_body(
    ctx: &RenderCtx<'_>,
    matching: &[Row],
    filter: &str,
    total: usize,
    limit: usize,
) -> String {
    render_body_sorted(ctx, matching, filter, "", total, limit)
}

const FILTER_HELP: &str = "Words that must all match a whole word of: ip address, serial number, type, name, phase, class, environment, firmware, boot code, present, missing (* and ? are wildcards). Press / to come here.";

/// The CSV export of the devices `filter` and `sort` show (with a BOM, for spreadsheets).
pub fn csv_href(prefix: &str, filter: &str, sort: &str) -> String {
    let mut u = format!("{prefix}/api/devices.csv?bom=1");
    if !filter.trim().is_empty() {
        u.push_str(&format!("&filter={}", q(filter)));
    }
    if !sort.is_empty() {
        u.push_str(&format!("&sort={}", q(sort)));
    }
    u
}

/// The help of the filter: the free words, every `field:` and `is:` term.
fn filter_help() -> Markup {
    use super::query::{FIELD_HELP, STATE_HELP};
    html! {
        details.fold.filterhelp {
            summary { "Filter help" }
            div.part {
                p {
                    "Words must all match a whole word of a device (address, serial, type, name, phase, class, "
                    "environment, builds, " code { "present" } ", " code { "missing" } "). "
                    code { "*" } " and " code { "?" } " are wildcards, " code { "\"…\"" }
                    " quotes, a leading " code { "-" } " negates. Press " kbd { "/" } " to focus the filter."
                }
                dl.terms {
                    @for (name, what) in FIELD_HELP {
                        dt { code { (name) ":" } } dd { (what) }
                    }
                    @for (name, what) in STATE_HELP {
                        dt { code { "is:" (name) } } dd { (what) }
                    }
                }
            }
        }
    }
}

/// [`render_body`] with the sort order `sort` (`sort=` argument) kept in its links.
pub fn render_body_sorted(
    ctx: &RenderCtx<'_>,
    matching: &[Row],
    filter: &str,
    sort: &str,
    total: usize,
    limit: usize,
) -> String {
    let shown = window(matching, None, limit);
    let page = Page {
        summary: &summary(ctx.cfg, &ctx.master, ctx.now, matching),
        shown,
        matched: matching.len(),
        total,
        panel: "",
    };
    render_page(ctx, &page, filter, sort)
}

/// What the status page shows of a filtered and sorted fleet.
pub struct Page<'p> {
    /// Of all matching devices.
    pub summary: &'p Summary,
    /// The rows of the first matching devices.
    pub shown: &'p [Row],
    /// How many devices match.
    pub matched: usize,
    /// How many state files there are.
    pub total: usize,
    /// The staged rollouts panel (HTML, may be empty), shown below the summary.
    pub panel: &'p str,
}

/// The body of the status page: summary, filter (`filter`, `sort` kept in the links) and
/// the rows shown.
pub fn render_page(ctx: &RenderCtx<'_>, page: &Page<'_>, filter: &str, sort: &str) -> String {
    if ctx.cfg.status_dir().is_none() {
        return html! {
            h1 { "Devices" }
            p class="notice" {
                "Device status tracking is off: set " code { "status/@dir" } " (e.g. "
                code { "<status dir=\"status\"/>" } ") in " code { "config/user-config.xml" } "."
            }
        }
        .into_string();
    }
    let shown = page.shown;
    let rows = rows_fragment(ctx, shown, page.matched - shown.len(), filter, shown.len());
    html! {
        div.pagehead {
            h1 { "Devices" }
            div id="summary" { (summary::summary_markup(ctx.cfg, page.summary, sort)) }
        }
        (PreEscaped(page.panel))
        div id="charts" { (summary::charts_markup(page.summary, sort)) }
        form class="filter" method="get" action=(admin_url(ctx.prefix, "")) role="search" {
            input type="hidden" name="mode" value="status";
            @if !sort.is_empty() { input type="hidden" name="sort" id="sort" value=(Text(sort)); }
            label for="filter" { "Filter" }
            input type="search" id="filter" name="filter" value=(Text(filter)) placeholder="e.g. is:missing env:lab" title=(FILTER_HELP) autocomplete="off" aria-describedby="count" accesskey="f";
            " "
            button type="submit" { "Apply" }
            " "
            span id="count" role="status" aria-live="polite" { (count_text(page.matched, page.total, filter)) }
            @let csv = csv_href(ctx.prefix, filter, sort);
            span.csvlinks {
                a id="csv" class="csv" href=(csv) download title="The matching devices as CSV (UTF-8 with BOM, for spreadsheets)" { "CSV" }
                " " small.hint { "(with BOM for Excel; "
                    a id="csvplain" class="csv" href=(csv.replacen("bom=1&", "", 1).replacen("?bom=1", "", 1)) download title="The matching devices as CSV without BOM (for scripts)" { "without" } ")" }
            }
            (filter_help())
        }
        div class="tablewrap" {
            table id="devices" aria-describedby="count" {
                caption.sr-only { "Devices, one row each; the serial number opens the device's page" }
                (header_markup(ctx, filter, sort))
                tbody id="devicestable" { (PreEscaped(rows)) }
            }
        }
    }
    .into_string()
}

/// The rows, rendered on all cores when there are many.
fn rows_html(ctx: &RenderCtx<'_>, rows: &[Row]) -> String {
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

/// The rendering context of the unit tests: CSRF token `tok`, the configured master builds.
#[cfg(test)]
pub(crate) fn test_ctx<'a>(
    cfg: &'a Config,
    groups: &'a [ShowGroup],
    prefix: &'a str,
    now: i64,
) -> RenderCtx<'a> {
    RenderCtx {
        cfg,
        prefix,
        csrf: "tok",
        now,
        groups,
        master: master_builds(cfg, None),
        rollouts: None,
        device_page: false,
    }
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
            Ok(e) => Loaded::Ok(Arc::new(crate::state::DeviceState::from_root(e))),
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
        let ctx = test_ctx(&cfg, &groups, "", 1000);
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
        assert!(html.contains("<summary title=\"1 entry, 1 poll\">Log (1)</summary>"));
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
    fn a_waiting_csr_shows_its_subject_and_key_fingerprint() {
        let cfg = config("");
        let ctx = test_ctx(&cfg, &[], "/u", 5000);
        let r = Row {
            view: view(
                r#"<state seen="5000"><device sn="00-90-33-30-00-af" type="IP232"/></state>"#,
                &[],
            ),
            certs: CertState {
                der: Some("certs/00-90-33-30-00-af-request.p10.der".into()),
                csr: Some(crate::certs::CsrSummary {
                    subject: "CN=<evil>".into(),
                    key_sha256: "AB:CD".into(),
                }),
                ..CertState::default()
            },
            backups: Arc::new(Vec::new()),
        };
        let html = row(&ctx, &r);
        assert!(
            html.contains("<dt>Subject</dt><dd>CN=&lt;evil&gt;</dd><dt>Key SHA-256</dt><dd class=\"fp\">AB:CD</dd>"),
            "{html}"
        );
        assert!(!html.contains("<evil>"));
    }

    #[test]
    fn missing_devices_and_broken_files_look_different() {
        let cfg = config("");
        let ctx = test_ctx(&cfg, &[], "/u", 5000);
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
            "<tr class=\"master\"><th><a class=\"fl\" href=\"?mode=status&amp;filter=fw%3A130160\" data-filter=\"fw:130160\""
        ), "{html}");
        assert!(html.contains("href=\"?mode=status&amp;filter=is%3Amissing\""));
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
