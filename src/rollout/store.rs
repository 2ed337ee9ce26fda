//! The shell of the rollouts: their states in memory ([`RolloutStore`], one per installation,
//! in `App`), loaded from `rollouts/ID.xml` under the installation root the first time a
//! configured rollout is used, and written behind: a ticker (`crate::rollout_ticker`)
//! advances every rollout each second (a new rollout opens its first wave on the first tick
//! once the device index is read) and writes the changed ones atomically (temporary file,
//! then rename). A state file whose rollout is no longer configured is left alone (and
//! reported, [`orphans_in`]: its devices may be moved back by `<master>`); a broken file, or
//! one written for other target builds, starts the rollout afresh (logged).
//!
//! The rollouts' clock is the store's ([`RolloutStore::now`]): the system clock plus an offset
//! a test can move forward ([`RolloutStore::skip`]) instead of waiting.

use super::decide::Fleet;
use super::state::{Action, Change, RolloutState};
use super::{Rollout, RolloutSummary, advance, control, summarize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
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
    /// Seconds added to the system clock ([`RolloutStore::skip`]).
    offset: AtomicI64,
    /// Whether the device index was complete at the last tick.
    fleet_ready: AtomicBool,
    /// State files of rollouts no longer configured (refreshed by each tick).
    orphans: Mutex<Vec<Orphan>>,
    /// The configured rollout ids and the time of the last look at the orphans.
    orphans_seen: Mutex<(String, i64)>,
    /// The previous versions of staged snippet files (`rollouts/.snippets/`).
    pub kept: super::kept::Kept,
}

/// Seconds between two looks at the state files of removed rollouts.
pub const ORPHAN_RESCAN: i64 = 60;

/// A state file `rollouts/ID.xml` whose rollout is not configured (any more).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Orphan {
    pub id: String,
    /// The target builds it was written for (`firmware/bootcode`, `-` for none).
    pub target: String,
    /// Devices it recorded as running its builds: `<master>` (or another rollout) decides
    /// for them now and may move them back.
    pub installed: usize,
    pub aborted: bool,
}

/// A poll's change moved by `offset` seconds.
fn shift(c: Change, offset: i64) -> Change {
    let o = |t: i64| t.saturating_add(offset);
    match c {
        Change::Told { sn, wave, at } => Change::Told {
            sn,
            wave,
            at: o(at),
        },
        Change::Succeeded { sn, wave, at } => Change::Succeeded {
            sn,
            wave,
            at: o(at),
        },
        other => other,
    }
}

/// Whether a poll's change belongs to a snippet round that ended before the poll began (a
/// new version was noticed while the poll ran): dropped.
fn stale(r: &Rollout, s: &RolloutState, c: &Change) -> bool {
    let at = match c {
        Change::Told { at, .. } | Change::Succeeded { at, .. } => *at,
        _ => return false,
    };
    r.stages_snippets() && at < s.round_at
}

/// A round change in words for the audit log: each file's previous version and the new one.
fn round_words(c: &Change, kept: &dyn Fn(&str) -> Option<i64>) -> String {
    match c {
        Change::Round { versions, .. } if !versions.is_empty() => {
            let files: Vec<String> = versions
                .iter()
                .map(|(f, v)| match kept(f) {
                    Some(k) => format!("{f} version {k} \u{2192} {v}"),
                    None => format!("{f} version {v}"),
                })
                .collect();
            format!("round started from wave 1: {}", files.join(", "))
        }
        other => other.to_string(),
    }
}

/// Most state files looked at for [`orphans_in`].
const MAX_ORPHAN_FILES: usize = 64;

/// The state files in `dir` of rollouts not in `configured` that recorded devices on their
/// builds (read only; at most 64 files).
pub fn orphans_in(dir: &Path, configured: &[Rollout]) -> Vec<Orphan> {
    let Ok(list) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in list.flatten().take(MAX_ORPHAN_FILES) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_suffix(".xml") else {
            continue;
        };
        if configured.iter().any(|r| r.id == id) || !super::config::valid_id(id) {
            continue;
        }
        let Ok(doc) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(e) = crate::xml::Element::parse(&doc) else {
            continue;
        };
        if e.attr("target").is_some_and(|t| t.starts_with("snippets:")) {
            // a removed snippet rollout: its devices get the live files, nothing moves back
            continue;
        }
        let installed = e
            .children_named("device")
            .filter(|d| d.attr("succeeded").is_some())
            .count();
        if installed > 0 {
            out.push(Orphan {
                id: id.to_string(),
                target: e.attr("target").unwrap_or("").to_string(),
                installed,
                aborted: e.attr("aborted").is_some(),
            });
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

impl RolloutStore {
    /// The store of the states in `dir` (`ROOT/rollouts`).
    pub fn new(dir: PathBuf) -> RolloutStore {
        RolloutStore {
            entries: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
            offset: AtomicI64::new(0),
            fleet_ready: AtomicBool::new(false),
            orphans: Mutex::new(Vec::new()),
            orphans_seen: Mutex::new((String::new(), 0)),
            kept: super::kept::Kept::new(dir.join(".snippets")),
            dir,
        }
    }

    /// The rollouts' clock: unix seconds, plus what [`Self::skip`] added.
    pub fn now(&self) -> i64 {
        crate::clock::now().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Moves the rollouts' clock forward by `secs` (tests and drills: a timeout or soak time
    /// passes without waiting for it).
    pub fn skip(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Whether the device index was complete at the last tick.
    pub fn fleet_ready(&self) -> bool {
        self.fleet_ready.load(Ordering::Relaxed)
    }

    /// The state files of rollouts no longer configured that recorded devices on their
    /// builds, as of the last tick.
    pub fn orphans(&self) -> Vec<Orphan> {
        self.orphans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Looks at the state files of rollouts not in `rollouts` again (blocking): when the
    /// configured rollouts changed, else at most every [`ORPHAN_RESCAN`] seconds.
    pub fn refresh_orphans(&self, rollouts: &[Rollout], now: i64) {
        let ids: Vec<&str> = rollouts.iter().map(|r| r.id.as_str()).collect();
        let key = ids.join(",");
        {
            let last = self.orphans_seen.lock().unwrap_or_else(|e| e.into_inner());
            if last.0 == key && now - last.1 < ORPHAN_RESCAN && last.1 != 0 {
                return;
            }
        }
        let found = orphans_in(&self.dir, rollouts);
        *self.orphans.lock().unwrap_or_else(|e| e.into_inner()) = found;
        *self.orphans_seen.lock().unwrap_or_else(|e| e.into_inner()) = (key, now);
    }

    /// Removes the kept snippet copies the configured `rollouts` do not need (blocking; the
    /// work is done once per configuration, see [`super::kept::Kept::prune`]).
    pub fn prune_kept(&self, rollouts: &[Rollout]) -> Vec<String> {
        let staged: super::kept::Staged = rollouts
            .iter()
            .filter(|r| r.stages_snippets())
            .map(|r| (r.id.clone(), r.snippets.clone()))
            .collect();
        self.kept.prune(&staged)
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
                    super::state::target_of(&e.rollout) == super::state::target_of(r)
                });
                let (state, dirty) = match map.remove(&r.id) {
                    Some(e) if target_same => (e.state, e.dirty),
                    _ => (self.load(r), false),
                };
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
                        started: s.started,
                        opened: s.opened.clone(),
                        paused: s.paused,
                        aborted: s.aborted,
                        halted: s.halted.clone(),
                        acknowledged: s.acknowledged,
                        resumed: s.resumed,
                        formed: String::new(),
                        regrouped: s.regrouped,
                        devices: Default::default(),
                        round: s.round.clone(),
                        round_at: s.round_at,
                    };
                    if let Some(d) = s.devices.get(sn.trim()) {
                        view.devices.insert(sn.trim().to_string(), d.clone());
                    }
                    (e.rollout.id.clone(), view)
                })
                .collect()
        })
    }

    /// Applies a poll's changes (logged, written behind). A poll's times are the system
    /// clock's; they are moved to the rollouts' clock ([`Self::skip`]).
    pub fn apply(&self, rollouts: &[Rollout], changes: &[(String, Change)]) {
        let offset = self.offset.load(Ordering::Relaxed);
        if offset == 0 {
            return self.apply_now(rollouts, changes);
        }
        let shifted: Vec<(String, Change)> = changes
            .iter()
            .map(|(id, c)| (id.clone(), shift(c.clone(), offset)))
            .collect();
        self.apply_now(rollouts, &shifted);
    }

    /// Applies changes timed by the rollouts' clock (logged, written behind).
    fn apply_now(&self, rollouts: &[Rollout], changes: &[(String, Change)]) {
        if changes.is_empty() {
            return;
        }
        self.with(rollouts, |map| {
            for (id, c) in changes {
                if let Some(e) = map.get_mut(id) {
                    if stale(&e.rollout, &e.state, c) {
                        continue;
                    }
                    tracing::info!("rollout {id}: {c}");
                    e.state.apply(c);
                    e.dirty = true;
                }
            }
        });
    }

    /// Advances every rollout at `now`.
    pub fn advance_all(&self, rollouts: &[Rollout], fleet: &dyn Fleet, now: i64) {
        self.fleet_ready.store(fleet.ready(), Ordering::Relaxed);
        let changes: Vec<(String, Change)> = self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id).map(|e| (r, e)))
                .flat_map(|(r, e)| {
                    advance(r, &e.state, fleet, now)
                        .into_iter()
                        .map(|c| (r.id.clone(), c))
                })
                .collect()
        });
        self.apply_now(rollouts, &changes);
    }

    /// An administrator's action on rollout `id` at `now`; the rollouts move on at once
    /// (a started rollout opens its first wave).
    pub fn act(
        &self,
        rollouts: &[Rollout],
        id: &str,
        action: Action,
        fleet: &dyn Fleet,
        now: i64,
    ) -> Result<(), StoreError> {
        let changes = self.with(rollouts, |map| {
            let e = map
                .get(id)
                .ok_or_else(|| StoreError::Unknown(id.to_string()))?;
            Ok::<_, StoreError>(control(&e.rollout, &e.state, action, fleet, now)?)
        })?;
        tracing::info!("rollout {id}: administrator action {}", action.as_str());
        let changes: Vec<(String, Change)> =
            changes.into_iter().map(|c| (id.to_string(), c)).collect();
        self.apply_now(rollouts, &changes);
        self.advance_all(rollouts, fleet, now);
        Ok(())
    }

    /// The summaries of the configured rollouts, in configuration order.
    pub fn summaries(&self, rollouts: &[Rollout], now: i64) -> Vec<RolloutSummary> {
        let ready = self.fleet_ready();
        let previous = self.kept.previous();
        let mut list: Vec<RolloutSummary> = self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id).map(|e| summarize(r, &e.state, ready, now)))
                .collect()
        });
        for f in list.iter_mut().flat_map(|s| s.snippets.iter_mut()) {
            f.previous = previous.get(&f.name).map(|p| p.mtime);
        }
        list
    }

    /// Brings the snippet rollouts in line with their files in `snippets` (the snippet
    /// directory; blocking I/O, at most `max` bytes read per file): a round that is done
    /// makes its versions the previous ones; a file whose live version is not the previous
    /// one starts (or keeps) a round once it is `grace` seconds old (`times/@grace`: a file
    /// being edited starts none), any other change of the round starts a new one from wave 1
    /// (see `rollout::staged`). Returns each round begun or ended, with its rollout and
    /// in words (`round started: a.txt version 10 → 20`), for the audit log.
    pub fn sync_snippets(
        &self,
        rollouts: &[Rollout],
        (snippets, max, grace): (&Path, u64, i64),
        now: i64,
    ) -> Vec<(String, String)> {
        let staged: Vec<(String, Vec<String>)> = rollouts
            .iter()
            .filter(|r| r.stages_snippets())
            .map(|r| (r.id.clone(), r.snippets.clone()))
            .collect();
        if staged.is_empty() {
            return Vec::new();
        }
        let done: Vec<(String, Vec<(String, i64)>)> = self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter_map(|r| map.get(&r.id).map(|e| (r, e)))
                .filter(|(r, e)| {
                    r.stages_snippets()
                        && !e.state.round.is_empty()
                        && e.state.opened.len() >= r.waves.len()
                        && summarize(r, &e.state, true, now).phase == super::Phase::Done
                })
                .map(|(r, e)| (r.id.clone(), e.state.round.clone()))
                .collect()
        });
        for (id, round) in &done {
            self.kept.promote(id, round, snippets, max);
        }
        let versions = self.kept.sync(&staged, snippets, max);
        let get = |f: &str, pick: fn(&super::kept::Versions) -> Option<i64>| {
            versions.get(f).and_then(pick)
        };
        // the grace period is the files' (the system clock, as the polls see it)
        let wall = crate::clock::now();
        let settled = |f: &str| get(f, |v| v.live).filter(|v| wall - *v >= grace);
        let changes: Vec<(String, Change)> = self.with(rollouts, |map| {
            rollouts
                .iter()
                .filter(|r| r.stages_snippets())
                .filter_map(|r| {
                    let round = super::staged::round_of(r, &settled, &|f| get(f, |v| v.kept));
                    let c = super::staged::next_round(r, &map.get(&r.id)?.state, round, now)?;
                    Some((r.id.clone(), c))
                })
                .collect()
        });
        self.apply_now(rollouts, &changes);
        let kept = |f: &str| get(f, |v| v.kept);
        changes
            .iter()
            .map(|(id, c)| (id.clone(), round_words(c, &kept)))
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollout::decide::testing::{Dev, ListFleet};

    #[test]
    fn the_clock_moves_and_poll_times_follow_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = RolloutStore::new(dir.path().join("rollouts"));
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="r" firmware="1" applies="phone" start="manual"/></rollouts></config>"#,
        )
        .expect("config");
        let rs = &cfg.rollouts;
        let fleet = ListFleet {
            devices: vec![Dev::phone("009033000001")],
            ..ListFleet::default()
        };
        let before = store.now();
        store.skip(10_000);
        assert!(store.now() >= before + 10_000);
        store.advance_all(rs, &fleet, store.now());
        assert!(
            store.state(rs, "r").expect("state").opened.is_empty(),
            "waits for its start"
        );
        let now = store.now();
        store
            .act(rs, "r", Action::Start, &fleet, now)
            .expect("start");
        let s = store.state(rs, "r").expect("state");
        assert_eq!((s.started, s.opened.clone()), (Some(now), vec![now]));
        let told = Change::Told {
            sn: "009033000001".into(),
            wave: 0,
            at: 5,
        };
        store.apply(rs, &[("r".into(), told)]);
        let s = store.state(rs, "r").expect("state");
        assert_eq!(
            s.devices["009033000001"].told,
            Some(10_005),
            "moved to the rollouts' clock"
        );
        assert_eq!(store.summaries(rs, now)[0].waves[0].population, 1);
        store.write_dirty();
        assert!(dir.path().join("rollouts/r.xml").exists());
    }

    #[test]
    fn a_poll_of_a_round_that_ended_before_it_is_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = RolloutStore::new(dir.path().join("rollouts"));
        let cfg = crate::config::Config::from_user_xml(
            r#"<config><rollouts><rollout id="s" snippets="a.txt"/></rollouts></config>"#,
        )
        .expect("config");
        let rs = &cfg.rollouts;
        let round = Change::Round {
            at: 100,
            versions: vec![("a.txt".into(), 7)],
        };
        store.apply_now(rs, &[("s".into(), round)]);
        let told = |sn: &str, at: i64| {
            (
                "s".to_string(),
                Change::Told {
                    sn: sn.into(),
                    wave: 0,
                    at,
                },
            )
        };
        store.apply(rs, &[told("old", 99), told("new", 100)]);
        let s = store.state(rs, "s").expect("state");
        assert!(!s.devices.contains_key("old") && s.devices.contains_key("new"));
    }
}
