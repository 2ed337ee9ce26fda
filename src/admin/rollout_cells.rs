//! The staged rollouts in the device list: what they recorded of a device for the filter
//! terms `is:told|succeeded|failed|held` ([`recorded`]) and the rollout cell of a device's
//! row ([`row_cell`]). Apart from the panel (`admin::rollouts`) so the list and the rows do
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

/// The rollout cell of a device's row: the first rollout whose scope it fits (the one that
/// decides for it), its wave and what the rollout recorded (told, succeeded, failed, or held).
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
    let Some(r) = cfg.rollouts.iter().find(|r| r.in_scope(&classes, &envs)) else {
        return html! { td .c-rollout {} };
    };
    let rec = store.and_then(|store| {
        let views = store.for_device(&cfg.rollouts, &v.sn);
        let (_, s) = views.into_iter().find(|(id, _)| *id == r.id)?;
        s.devices.get(v.sn.trim()).cloned()
    });
    let outcome = match &rec {
        Some(d) if d.succeeded.is_some() => "succeeded",
        Some(d) if d.failed.is_some() => "failed",
        Some(d) if d.told.is_some() => "told",
        _ => "held",
    };
    let wave = crate::rollout::wave_of(r, &v.sn).map(|w| format!(" wave {}", w + 1));
    let href = admin_url(
        prefix,
        &format!("mode=status&filter=rollout%3A{}+is%3A{outcome}", r.id),
    );
    html! {
        td .c-rollout data-rollout=(r.id) data-outcome=(outcome) {
            a href=(href) { (r.id) } (wave.unwrap_or_default()) ": " (outcome)
        }
    }
}
