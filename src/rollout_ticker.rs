//! The shell of staged rollouts: a ticker that advances the configured rollouts every
//! `rollout::store::TICK` (opens waves, marks timeouts, halts) and writes their changed
//! states behind (`rollouts/ID.xml`), and [`IndexFleet`]: the device index as the rollouts
//! see it (who is known when a wave opens, who went missing). The decisions themselves are
//! the pure `rollout` core. The clock is the rollout store's (`RolloutStore::now`), so a test
//! moves it forward and calls [`tick`] instead of waiting for the ticker.

use crate::app::{App, SharedApp};
use crate::config::Config;
use crate::rollout::{Fleet, Known};
use crate::state::StateStore;
use std::collections::HashSet;
use std::sync::Arc;

/// The device index of the configured status directory, as the rollouts see it (nobody, and
/// never ready, without state tracking).
pub struct IndexFleet<'a> {
    store: Option<Arc<StateStore>>,
    identities: &'a crate::identity::Ledger,
    cfg: &'a Config,
    now: i64,
    /// The serials of the missing devices, found once per tick on the first question.
    missing: std::sync::OnceLock<HashSet<String>>,
}

impl<'a> IndexFleet<'a> {
    pub fn new(app: &'a App, cfg: &'a Config, now: i64) -> IndexFleet<'a> {
        IndexFleet {
            store: app.states(cfg),
            identities: &app.identities,
            cfg,
            now,
            missing: std::sync::OnceLock::new(),
        }
    }

    fn missing_since(&self, seen: i64) -> bool {
        let after = self.cfg.status.missing;
        after > 0 && seen < self.now - after
    }
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}

/// The identity hook for a wave's population: whether a known device's identity counts.
/// Without `times/@forcetrust` every device's does. With it, a device that proved its serial
/// with its client certificate in a poll since the server started (`proved_since_start`, the
/// identity ledger), or, for the devices that have not polled since a restart (the ledger is
/// in memory only), one whose state records a build it reported: a refused poll never writes
/// a new state nor replaces a recorded build (`identity::guard_state`).
pub fn identity_proved(cfg: &Config, proved_since_start: bool, firmware_reported: &str) -> bool {
    !cfg.times.forcetrust || proved_since_start || !firmware_reported.is_empty()
}

impl Fleet for IndexFleet<'_> {
    fn ready(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.index().is_complete())
    }

    fn missing(&self, sn: &str) -> bool {
        let Some(store) = self.store.as_ref() else {
            return false;
        };
        let set = self.missing.get_or_init(|| {
            let (gone, _) = store
                .index()
                .entries(|e| self.missing_since(e.fields().seen));
            gone.iter().map(|e| e.fields().sn.to_string()).collect()
        });
        set.contains(sn)
    }

    fn each(&self, f: &mut dyn FnMut(&Known<'_>)) {
        let Some(store) = self.store.as_ref() else {
            return;
        };
        let (entries, _) = store.index().entries(|_| true);
        for e in entries {
            let x = e.fields();
            if x.unreadable {
                continue;
            }
            let (classes, envs) = (split(x.classes), split(x.environments));
            let ltype = x.device_type.to_lowercase();
            f(&Known {
                sn: x.sn,
                classes: &classes,
                envs: &envs,
                no_firmware: self.cfg.nofirmdev.contains(&ltype),
                no_bootcode: self.cfg.nobootdev.contains(&ltype),
                proved: identity_proved(
                    self.cfg,
                    self.identities.proved_by_certificate(x.sn),
                    x.firmware,
                ),
                missing: self.missing_since(x.seen),
            });
        }
    }
}

/// One tick: starts, ends or renews the rounds of snippet rollouts, advances the rollouts of the current configuration at the rollouts' clock,
/// writes the changed states and looks at state files of removed rollouts (blocking).
pub fn tick(app: &App) {
    let Some(cfg) = app.config.get().ok() else {
        return;
    };
    if !cfg.rollouts.is_empty() {
        let now = app.rollouts.now();
        let max = match cfg.server.max_snippet {
            0 => crate::config::DEFAULT_MAX_SNIPPET,
            m => m,
        };
        let dir = app.root.join(&cfg.times.dir);
        let files = (dir.as_path(), max, cfg.times.grace);
        for (id, words) in app.rollouts.sync_snippets(&cfg.rollouts, files, now) {
            // the server started (or ended) a round: in the audit log with the admins' actions
            let e = crate::audit::Entry::now("server", "-", "rollout-round", &id, true);
            app.admin.audit.record(&app.root, &e.detail(&words));
        }
        let fleet = IndexFleet::new(app, &cfg, now);
        app.rollouts.advance_all(&cfg.rollouts, &fleet, now);
    }
    app.rollouts
        .refresh_orphans(&cfg.rollouts, app.rollouts.now());
    // the kept snippet copies of rollouts no longer configured (once per configuration)
    app.rollouts.prune_kept(&cfg.rollouts);
    app.rollouts.write_dirty();
}

/// Starts the ticker (every `TICK`); it stops when the returned handle is dropped.
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

#[cfg(test)]
mod tests {
    use super::identity_proved;
    use crate::config::Config;

    fn cfg(times: &str) -> Config {
        let xml = format!(r#"<config><master info=""/>{times}</config>"#);
        Config::from_user_xml(&xml).expect("config")
    }

    #[test]
    fn under_forcetrust_a_proof_or_a_recorded_build_counts() {
        let on = cfg(r#"<times forcetrust="true"/>"#);
        assert!(!identity_proved(&on, false, ""));
        assert!(identity_proved(&on, true, ""));
        assert!(identity_proved(&on, false, "140010"));
        let off = cfg("");
        assert!(identity_proved(&off, false, ""));
    }
}
