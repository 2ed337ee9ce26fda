//! The shell of staged rollouts: a ticker that advances the configured rollouts every
//! `rollout::store::TICK` (opens waves, marks timeouts, halts) and writes their changed
//! states behind (`rollouts/ID.xml`). The decisions themselves are the pure `rollout` core.

use crate::app::{App, SharedApp};
use crate::config::Config;

/// Whether device `sn` counts as missing: `status/@missing` seconds unseen (never without
/// state tracking or `missing`).
fn missing_check(app: &App, cfg: &Config, now: i64) -> impl Fn(&str) -> bool {
    let store = app.states(cfg);
    let after = cfg.status.missing;
    move |sn: &str| {
        let Some(store) = store.as_ref().filter(|_| after > 0) else {
            return false;
        };
        store
            .index()
            .get(sn)
            .is_some_and(|e| e.to_view().seen < now - after)
    }
}

/// One tick: advances the rollouts of the current configuration and writes the changed
/// states (blocking).
pub fn tick(app: &App) {
    let Some(cfg) = app.config.get().ok() else {
        return;
    };
    if !cfg.rollouts.is_empty() {
        let now = crate::clock::now();
        let missing = missing_check(app, &cfg, now);
        app.rollouts.advance_all(&cfg.rollouts, &missing, now);
    }
    app.rollouts.write_dirty();
}

/// Starts the ticker (every [`TICK`]); it stops when the returned handle is dropped.
pub fn start_ticker(app: SharedApp) -> Ticker {
    let weak = std::sync::Arc::downgrade(&app);
    drop(app);
    Ticker(tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::rollout::store::TICK);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(app) = weak.upgrade() else { break };
            if crate::app::blocking(move || tick(&app)).await.is_none() {
                tracing::error!("rollout ticker failed");
            }
        }
    }))
}

/// The running ticker; dropping it stops it.
pub struct Ticker(tokio::task::JoinHandle<()>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.abort();
    }
}
