//! The fleet summary of the status page: counts of the devices, their builds, phases and
//! environments, and its bar charts.

use super::MasterBuilds;
use crate::admin::html::q;
use crate::admin::query::{Clock, DeviceFields};
use crate::config::Config;
use maud::{Markup, html};
use serde::Serialize;
use std::collections::HashMap;

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

fn bars(counts: HashMap<&str, usize>, master: Option<&str>) -> Vec<Bar> {
    let mut v: Vec<Bar> = counts
        .into_iter()
        .map(|(value, count)| Bar {
            master: master.is_some_and(|m| m == value),
            value: value.to_string(),
            count,
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v
}

/// Counts the fleet of `rows` (rows, or devices before their rows are built).
pub fn summary<T: DeviceFields>(
    cfg: &Config,
    master: &MasterBuilds,
    now: i64,
    rows: &[T],
) -> Summary {
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
    let clock = Clock {
        now,
        missing_after: cfg.status.missing,
    };
    for r in rows {
        let v = r.fields();
        if v.unreadable {
            s.unreadable += 1;
            continue;
        }
        s.devices += 1;
        if v.is_missing(clock) {
            s.missing += 1;
        }
        if v.csr_waiting {
            s.csr_waiting += 1;
        } else if v.signed_waiting {
            s.signed_waiting += 1;
        }
        if master.firmware.as_deref().is_some_and(|m| m == v.firmware) {
            s.on_master_firmware += 1;
        }
        *fw.entry(v.firmware).or_insert(0) += 1;
        *boot.entry(v.bootcode).or_insert(0) += 1;
        *phase.entry(v.phase).or_insert(0) += 1;
        for e in v.environments.split(',').map(str::trim) {
            *env.entry(e).or_insert(0) += 1;
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

/// The status page's URL (relative to the admin page) that shows the devices of `filter`.
pub fn filter_href(filter: &str, sort: &str) -> String {
    let mut u = String::from("?mode=status");
    if !filter.is_empty() {
        u.push_str("&filter=");
        u.push_str(&q(filter));
    }
    if !sort.is_empty() {
        u.push_str("&sort=");
        u.push_str(&q(sort));
    }
    u
}

/// A count that links to the devices it counts.
fn count_link(n: usize, what: &str, filter: &str, sort: &str) -> Markup {
    html! {
        a.fl href=(filter_href(filter, sort)) data-filter=(filter) { b { (n) } " " (what) }
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        many.to_string()
    }
}

fn chart(title: &str, key: &str, bars: &[Bar], total: usize, sort: &str) -> Markup {
    let max = bars.iter().map(|b| b.count).max().unwrap_or(1).max(1);
    let rest: usize = bars.iter().skip(MAX_BARS).map(|b| b.count).sum();
    html! {
        figure.chart {
            figcaption { (title) }
            table.bars {
                @for b in bars.iter().take(MAX_BARS) {
                    @let f = format!("{key}:{}", b.value);
                    @let pct = (b.count * 100).checked_div(total).unwrap_or(0);
                    tr.master[b.master] {
                        th {
                            @if b.value.is_empty() {
                                span.none { "(none)" }
                            } @else {
                                a.fl href=(filter_href(&f, sort)) data-filter=(f) title="Show only these devices" { (b.value) }
                            }
                            @if b.master { " " small.mark title="the master's build" { "\u{2605} master" } }
                        }
                        td.bar {
                            @if b.value.is_empty() {
                                (bar_svg(b.count, max))
                            } @else {
                                a href=(filter_href(&f, sort)) tabindex="-1" aria-hidden="true" { (bar_svg(b.count, max)) }
                            }
                        }
                        td.n title=(format!("{pct} % of {total}")) { (b.count) }
                    }
                }
                @if bars.len() > MAX_BARS {
                    tr.rest { th { (bars.len() - MAX_BARS) " more" } td {} td.n { (rest) } }
                }
            }
        }
    }
}

fn bar_svg(count: usize, max: usize) -> Markup {
    let width = (count * 100).div_ceil(max);
    html! {
        svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
            rect width=(width) height="10" {}
        }
    }
}

/// The summary section: the facts line and the charts.
pub fn render_summary(cfg: &Config, s: &Summary) -> String {
    render_summary_for(cfg, s, "")
}

/// The summary section (facts and charts); its links keep the sort order `sort`.
pub fn render_summary_for(cfg: &Config, s: &Summary, sort: &str) -> String {
    let mut out = summary_markup(cfg, s, sort).into_string();
    out.push_str(&charts_markup(s, sort).into_string());
    out
}

/// The facts line of the summary as markup.
pub(in crate::admin) fn summary_markup(cfg: &Config, s: &Summary, sort: &str) -> Markup {
    let dot = " \u{b7} ";
    html! {
        section.summary aria-label="Fleet summary" {
            p.facts {
                (count_link(s.devices, &plural(s.devices, "device", "devices"), "", sort))
                @if cfg.status.missing > 0 {
                    (dot) (count_link(s.missing, "missing", "is:missing", sort))
                }
                @if let Some(fw) = &s.master.firmware {
                    (dot) (count_link(s.on_master_firmware, &format!("on the master's firmware {fw}"), &format!("fw:{fw}"), sort))
                }
                @if cfg.customcerts.is_some() {
                    (dot) (count_link(s.csr_waiting, &plural(s.csr_waiting, "CSR to sign", "CSRs to sign"), "is:csr", sort))
                    (dot) (count_link(s.signed_waiting, &plural(s.signed_waiting, "signed certificate waiting for the device", "signed certificates waiting for the device"), "is:signed", sort))
                }
                @if s.unreadable > 0 {
                    (dot)
                    a.fl href=(filter_href("is:unreadable", sort)) data-filter="is:unreadable" {
                        b.err { (s.unreadable) } " " (plural(s.unreadable, "unreadable state file", "unreadable state files"))
                    }
                }
            }
        }
    }
}

/// The most frequent value of a chart, for its one-line summary.
fn top(bars: &[Bar]) -> String {
    match bars.first() {
        Some(b) if bars.len() > 1 => format!("{} values, most {}", bars.len(), show(&b.value)),
        Some(b) => format!("all {}", show(&b.value)),
        None => "none".to_string(),
    }
}

fn show(v: &str) -> &str {
    if v.is_empty() { "(none)" } else { v }
}

/// The charts, folded to one line that says what they hold (opened on demand; the page's
/// script remembers the choice).
pub(in crate::admin) fn charts_markup(s: &Summary, sort: &str) -> Markup {
    html! {
        @if s.devices > 0 {
            details.fold.charts-fold data-fold="charts" {
                summary {
                    span.foldtitle { "Charts" } " "
                    span.foldstate {
                        "firmware: " (top(&s.firmware)) "; boot code: " (top(&s.bootcode))
                        "; phase: " (top(&s.phase)) "; environment: " (top(&s.environment))
                    }
                }
                div.charts {
                    (chart("Firmware", "fw", &s.firmware, s.devices, sort))
                    (chart("Boot code", "boot", &s.bootcode, s.devices, sort))
                    (chart("Phase", "phase", &s.phase, s.devices, sort))
                    (chart("Environment", "env", &s.environment, s.devices, sort))
                }
            }
        }
    }
}

/// The facts line alone (the `summary` of `cmd=rows`).
pub fn render_facts(cfg: &Config, s: &Summary) -> String {
    summary_markup(cfg, s, "").into_string()
}

/// The charts alone (the `charts` of `cmd=rows`).
pub fn render_charts(s: &Summary) -> String {
    charts_markup(s, "").into_string()
}
