//! The shell of the rollouts: their states in memory ([`RolloutStore`], one per installation,
//! in `App`), loaded from `rollouts/ID.xml` under the installation root the first time a
//! configured rollout is used (and moved on at once: a new rollout opens its first wave), and
//! written behind: a ticker ([`start_ticker`]) advances
//! every rollout each second and writes the changed ones atomically (temporary file, then
//! rename). A state file whose rollout is no longer configured is left alone; a broken file,
//! or one written for other target builds, starts the rollout afresh (logged).

use super::state::{Action, Change, RolloutState};
use super::{Rollout, RolloutSummary, advance, control, summarize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How often the ticker advances the rollouts and writes changed states (the write-behind
/// delay bound).
pub const TICK: Duration = Duration::from_secs(1);

/// Why an administrator's action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("no rollout '{0}' is configured")]
    Unknown(String),
    #[error(transparent)]
    Refused(#[from] super::decide::ActionError),
}

struct Entry {
    rollout: Rollout,
    state: RolloutState,
    dirty: bool,
}

/// The rollout states of one installation.
pub struct RolloutStore {
    dir: PathBuf,
    entries: Mutex<HashMap<String, Entry>>,
    /// Held by [`RolloutStore::write_dirty`] from taking the changed states until they are
    /// written, so a caller that finds nothing left to write knows the files are written.
    writing: Mutex<()>,
}

impl RolloutStore {
    /// The store of the states in `dir` (`ROOT/rollouts`).
    pub fn new(dir: PathBuf) -> RolloutStore {
        RolloutStore {
            dir,
            entries: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The state file of a rollout.
    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.xml"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a rollout's state file (a fresh state when there is none or it does not fit).
    pub fn load(&self, r: &Rollout) -> RolloutState {
        let path = self.path(&r.id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return RolloutState::default(),
            Err(e) => {
                tracing::error!("rollout {}: cannot read {}: {e}", r.id, path.display());
                return RolloutState::default();
            }
        };
        let state = crate::xml::Element::parse(&bytes)
            .ok()
            .and_then(|e| RolloutState::from_element(r, &e));
        state.unwrap_or_else(|| {
            tracing::warn!(
                "rollout {}: {} is broken or for other builds; starting afresh",
                r.id,
                path.display()
            );
            RolloutState::default()
        })
    }

    /// Brings the entries in line with the configured rollouts (loading new ones) and runs
    /// `f` over them.
    fn with<T>(&self, rollouts: &[Rollout], f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut map = self.lock();
        map.retain(|id, _| rollouts.iter().any(|r| &r.id == id));
        for r in rollouts {
            let fresh = map.get(&r.id).is_none_or(|e| e.rollout != *r);
            if fresh {
                let target_same = map.get(&r.id).is_some_and(|e| {
                    e.rollout.firmware == r.firmware && e.rollout.bootcode == r.bootcode
                });
                let mut state = match map.remove(&r.id) {
                    Some(e) if target_same => e.state,
                    _ => self.load(r),
                };
                // at once, so the first poll after loading sees the first wave open
                let changes = advance(r, &state, &|_| false, crate::clock::now());
                for c in &changes {
                    tracing::info!("rollout {}: {c}", r.id);
                    state.apply(c);
                }
                let dirty = !changes.is_empty();
                map.insert(
                    r.id.clone(),
                    Entry {
                        rollout: r.clone(),
                        state,
                        dirty,
                    },
                );
            }
        }
        f(&mut map)
    }

    /// The states a poll of device `sn` looks at: each configured rollout's state with only
    /// this device's record (cheap to copy).
    pub fn for_device(&self, rollouts: &[Rollout], sn: &str) -> Vec<(String, RolloutState)> {
        if rollouts.is_empty() {
            return Vec::new();
        }
        self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id))
                .map(|e| {
                    let s = &e.state;
                    let mut view = RolloutState {
                        opened: s.opened.clone(),
                        paused: s.paused,
                        aborted: s.aborted,
                        halted: s.halted.clone(),
                        acknowledged: s.acknowledged,
                        devices: Default::default(),
                    };
                    if let Some(d) = s.devices.get(sn.trim()) {
                        view.devices.insert(sn.trim().to_string(), d.clone());
                    }
                    (e.rollout.id.clone(), view)
                })
                .collect()
        })
    }

    /// Applies a poll's or an action's changes (logged, written behind).
    pub fn apply(&self, rollouts: &[Rollout], changes: &[(String, Change)]) {
        if changes.is_empty() {
            return;
        }
        self.with(rollouts, |map| {
            for (id, c) in changes {
                if let Some(e) = map.get_mut(id) {
                    tracing::info!("rollout {id}: {c}");
                    e.state.apply(c);
                    e.dirty = true;
                }
            }
        });
    }

    /// Advances every rollout at `now` (`missing(sn)`: the device went missing).
    pub fn advance_all(&self, rollouts: &[Rollout], missing: &dyn Fn(&str) -> bool, now: i64) {
        let changes: Vec<(String, Change)> = self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id).map(|e| (r, e)))
                .flat_map(|(r, e)| {
                    advance(r, &e.state, missing, now)
                        .into_iter()
                        .map(|c| (r.id.clone(), c))
                })
                .collect()
        });
        self.apply(rollouts, &changes);
    }

    /// An administrator's action on rollout `id` at `now`.
    pub fn act(
        &self,
        rollouts: &[Rollout],
        id: &str,
        action: Action,
        now: i64,
    ) -> Result<(), StoreError> {
        let changes = self.with(rollouts, |map| {
            let e = map
                .get(id)
                .ok_or_else(|| StoreError::Unknown(id.to_string()))?;
            Ok::<_, StoreError>(control(&e.rollout, &e.state, action, now)?)
        })?;
        tracing::info!("rollout {id}: administrator action {}", action.as_str());
        let changes: Vec<(String, Change)> =
            changes.into_iter().map(|c| (id.to_string(), c)).collect();
        self.apply(rollouts, &changes);
        Ok(())
    }

    /// The summaries of the configured rollouts, in configuration order.
    pub fn summaries(&self, rollouts: &[Rollout], now: i64) -> Vec<RolloutSummary> {
        self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id).map(|e| summarize(r, &e.state, now)))
                .collect()
        })
    }

    /// A copy of one rollout's state.
    pub fn state(&self, rollouts: &[Rollout], id: &str) -> Option<RolloutState> {
        self.with(rollouts, |map| map.get(id).map(|e| e.state.clone()))
    }

    /// Writes every changed state now (blocking file I/O); returns once they are written,
    /// also those another call was writing.
    pub fn write_dirty(&self) {
        let _writing = self.writing.lock().unwrap_or_else(|e| e.into_inner());
        let docs: Vec<(String, String)> = {
            let mut map = self.lock();
            map.values_mut()
                .filter(|e| e.dirty)
                .map(|e| {
                    e.dirty = false;
                    (
                        e.rollout.id.clone(),
                        e.state.to_element(&e.rollout).to_document(),
                    )
                })
                .collect()
        };
        for (id, doc) in docs {
            let path = self.path(&id);
            if let Err(e) = crate::fsio::write_atomic(&path, doc.as_bytes()) {
                tracing::error!("rollout {id}: cannot write {}: {e}", path.display());
                if let Some(e) = self.lock().get_mut(&id) {
                    e.dirty = true;
                }
            }
        }
    }
}
