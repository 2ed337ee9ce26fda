//! The fleet summary of the status page: counts of the devices, their builds, phases and
//! environments, and its bar charts.

use super::{MasterBuilds, Row};
use crate::admin::html::e;
use crate::config::Config;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

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
