//! The staged rollouts in the device list: what they recorded of a device for the filter
//! terms `is:told|succeeded|failed|held` ([`recorded`]) and the rollout cell of a device's
//! row, every rollout it is in ([`row_cell`]). Apart from the panel (`admin::rollouts`) so the list and the rows do
//! not depend on the rollout API.

use super::html::admin_url;
use crate::config::Config;
use crate::rollout::RolloutStore;
use maud::{Markup, html};
use std::collections::HashMap;

/// What the rollouts recorded of a device, for the filter terms `is:told|succeeded|failed|
/// held` (the states are copied only when the filter has such a term).
pub fn recorded(
    store: &RolloutStore,
    cfg: &Config,
    query: &super::query::Query,
) -> impl Fn(&str, &str) -> super::query::Recorded + use<> {
    let states: HashMap<String, crate::rollout::RolloutState> = if query.needs_recorded() {
        cfg.rollouts
            .iter()
            .filter_map(|r| Some((r.id.clone(), store.state(&cfg.rollouts, &r.id)?)))
            .collect()
    } else {
        HashMap::new()
    };
    move |id: &str, sn: &str| {
        let d = states.get(id)?.devices.get(sn)?;
        Some((d.told.is_some(), d.succeeded.is_some(), d.failed.is_some()))
    }
}

/// The rollout cell of a device's row: every rollout whose scope it fits (the first decides
/// its builds; each snippet rollout its files): the first with its wave and what it
/// recorded (told, succeeded, failed, or held; `idle` for a snippet rollout with nothing
/// staged), the others as `+N` (their ids in `data-rollouts`, their waves and outcomes in
/// the tooltip). The cell's `data-rollout`/`data-outcome` are the first one's.
pub fn row_cell(
    cfg: &Config,
    prefix: &str,
    store: Option<&RolloutStore>,
    v: &crate::admin::view::DeviceView,
) -> Markup {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()
    };
    let (classes, envs) = (list(&v.classes), list(&v.environments));
    let scoped: Vec<&crate::rollout::Rollout> = cfg
        .rollouts
        .iter()
        .filter(|r| r.in_scope(&classes, &envs))
        .collect();
    let Some(first) = scoped.first() else {
        return html! { td .c-rollout {} };
    };
    let views = store.map_or_else(Vec::new, |s| s.for_device(&cfg.rollouts, &v.sn));
    let outcome = |r: &crate::rollout::Rollout| -> &'static str {
        let s = views.iter().find(|(id, _)| *id == r.id).map(|(_, s)| s);
        if s.is_some_and(|s| r.idle_with(&s.round)) {
            return "idle";
        }
        match s.and_then(|s| s.devices.get(v.sn.trim())) {
            Some(d) if d.succeeded.is_some() => "succeeded",
            Some(d) if d.failed.is_some() => "failed",
            Some(d) if d.told.is_some() => "told",
            _ => "held",
        }
    };
    // compact (the list must fit 1280 px without taller rows): the first in full, the others
    // as `+N` naming them with their waves and outcomes in its tooltip and its data
    let o = outcome(first);
    let wave = |r: &crate::rollout::Rollout| {
        crate::rollout::wave_of(r, &v.sn).map_or(String::new(), |w| format!(" wave {}", w + 1))
    };
    let others: Vec<String> = scoped[1..]
        .iter()
        .map(|r| format!("{}{}: {}", r.id, wave(r), outcome(r)))
        .collect();
    let ids: Vec<&str> = scoped[1..].iter().map(|r| r.id.as_str()).collect();
    html! {
        td .c-rollout data-rollout=(first.id) data-outcome=(o) {
            @if o == "idle" { (first.id) } @else {
                a href=(admin_url(prefix, &format!("mode=status&filter=rollout%3A{}+is%3A{o}", first.id))) { (first.id) }
            }
            @if others.is_empty() { (wave(first)) } @else {
                // shorter, so that the `+N` adds no width
                (wave(first).replace(" wave ", " w"))
            }
            ": " (o)
            @if !others.is_empty() {
                "\u{a0}" span .ro-more data-rollouts=(ids.join(" ")) title=(format!("also in: {}", others.join("; "))) {
                    "+" (others.len()) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cell_names_every_rollout_the_device_is_in() {
        let cfg = Config::from_user_xml(
            r#"<config><rollouts>
            <rollout id="r1" firmware="140010" applies="phone"/>
            <rollout id="gw" firmware="140010" applies="gateway"/>
            <rollout id="ntp" snippets="a.txt" applies="phone"/>
            <rollout id="dns" snippets="b.txt"/>
            <rollout id="tz" snippets="c.txt"/></rollouts></config>"#,
        )
        .expect("config");
        let mut v = crate::admin::view::DeviceView::empty("00-90-33-30-00-af");
        v.sn = "00-90-33-30-00-af".into();
        v.classes = "phone".into();
        let html = row_cell(&cfg, "", None, &v).into_string();
        assert!(
            html.starts_with(r#"<td class="c-rollout" data-rollout="r1""#),
            "{html}"
        );
        assert!(html.contains(r#"data-rollouts="ntp dns tz""#), "{html}");
        assert!(
            html.contains("also in: ntp wave 1: held; dns wave 1: held; tz wave 1: held")
                && html.contains(">+3</span>"),
            "{html}"
        );
        assert!(!html.contains("gw"), "{html}");
        // a single rollout: its wave in full, no `+N`
        let one = Config::from_user_xml(
            r#"<config><rollouts><rollout id="r1" firmware="140010"/></rollouts></config>"#,
        )
        .expect("config");
        let html = row_cell(&one, "", None, &v).into_string();
        assert!(html.contains("r1</a> wave 1: held</td>"), "{html}");
        // a gateway: its one rollout and the two unscoped ones
        v.classes = "gateway".into();
        let html = row_cell(&cfg, "", None, &v).into_string();
        assert!(
            html.contains(r#"data-rollout="gw""#)
                && html.contains(">+2</span>")
                && html.contains("gw</a> w1: held"),
            "{html}"
        );
    }
}
