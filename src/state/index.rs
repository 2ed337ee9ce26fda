//! The device index: a compact entry per state file with what the status page, its filter,
//! the fleet summary and the device list need, kept in memory instead of the states
//! themselves.
//!
//! An [`Entry`] holds typed fields; what many devices share (type, classes, phase,
//! environments, builds, certificate status, proxy) is one shared `Profile`, the message log and the
//! delivered snippets are only counted, and the values of the `queries/query/show` XPath
//! columns are evaluated when the entry is (re)built from a state and kept as short strings
//! (at most [`MAX_CELL`] characters). A typical device costs about 300 bytes
//! ([`Entry::cost`]; 100 000 devices ≈ 30 MB). The full state is read from its file when a
//! poll or a detail view needs it.
//!
//! Entries are built when a state is written (from the element at hand) and, at start, by a
//! background scan of the directory ([`Index::scan`]); the XPath columns are evaluated again
//! only when the device's query results changed (their `seen`) or the configured columns did.

use super::DeviceState;
use super::view::{self, Cell, DeviceView, QueryResult, ShowGroup};
use crate::xml::Element;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Longest value of one XPath column kept (characters).
pub const MAX_CELL: usize = 256;

/// What the index keeps of one device.
#[derive(Debug, Clone)]
pub struct Entry {
    key: Arc<str>,
    /// The serial number, when it differs from the file name.
    sn: Option<Box<str>>,
    problem: Option<Box<str>>,
    hwid: Box<str>,
    name: Box<str>,
    realip: Box<str>,
    /// The request's address, when it differs from `realip`.
    ip: Option<Box<str>>,
    /// What many devices have in common, shared between them.
    profile: Arc<Profile>,
    seen: i64,
    backup: Option<i64>,
    log_entries: u32,
    log_polls: u32,
    snippets: u32,
    via_proxy: bool,
    request_error: bool,
    queries: Box<[Option<QueryResult>]>,
}

/// The fields devices of one kind, phase and rollout state have in common; one copy is
/// shared by all entries with the same values (a fleet has few of them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Profile {
    proxy: Box<str>,
    device_type: Box<str>,
    phase: Box<str>,
    classes: Box<str>,
    environments: Box<str>,
    firmware: Box<str>,
    firmware_requested: Box<str>,
    bootcode: Box<str>,
    bootcode_requested: Box<str>,
    certstat: Option<Box<str>>,
}

fn boxed(s: &str) -> Box<str> {
    s.into()
}

fn clip(c: Cell) -> Cell {
    let cut = |s: String| match s.char_indices().nth(MAX_CELL) {
        Some((i, _)) => s[..i].to_string(),
        None => s,
    };
    match c {
        Cell::Value(s) => Cell::Value(cut(s)),
        Cell::Error(s) => Cell::Error(cut(s)),
    }
}

impl Entry {
    fn from_view(key: Arc<str>, v: DeviceView, strings: &mut Interner) -> Entry {
        let queries = v
            .queries
            .into_iter()
            .map(|q| {
                q.map(|q| QueryResult {
                    seen: q.seen,
                    cells: q.cells.into_iter().map(clip).collect(),
                })
            })
            .collect();
        Entry {
            sn: (v.sn != *key).then(|| boxed(&v.sn)),
            key,
            problem: v.problem.as_deref().map(boxed),
            hwid: boxed(&v.hwid),
            name: boxed(&v.name),
            ip: (v.ip != v.realip).then(|| boxed(&v.ip)),
            realip: boxed(&v.realip),
            profile: strings.get(Profile {
                proxy: boxed(&v.proxy),
                device_type: boxed(&v.device_type),
                phase: boxed(&v.phase),
                classes: boxed(&v.classes),
                environments: boxed(&v.environments),
                firmware: boxed(&v.firmware),
                firmware_requested: boxed(&v.firmware_requested),
                bootcode: boxed(&v.bootcode),
                bootcode_requested: boxed(&v.bootcode_requested),
                certstat: v.certstat.as_deref().map(boxed),
            }),
            seen: v.seen,
            backup: v.backup,
            log_entries: v.log_entries as u32,
            log_polls: v.log_polls as u32,
            snippets: v.snippet_count as u32,
            via_proxy: v.via_proxy,
            request_error: v.request_error,
            queries,
        }
    }

    /// The state file's name without `.xml`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What the filter, the sort and the fleet summary look at; the certificate facts that
    /// come from files (`csr_waiting`, `signed_waiting`, an error file) are the caller's.
    pub fn fields(&self) -> super::fields::Fields<'_> {
        super::fields::Fields {
            key: &self.key,
            unreadable: self.problem.is_some(),
            sn: self.sn.as_deref().unwrap_or(&self.key),
            device_type: &self.profile.device_type,
            name: &self.name,
            realip: &self.realip,
            ip: self.ip.as_deref().unwrap_or(&self.realip),
            phase: &self.profile.phase,
            classes: &self.profile.classes,
            environments: &self.profile.environments,
            firmware: &self.profile.firmware,
            firmware_requested: &self.profile.firmware_requested,
            bootcode: &self.profile.bootcode,
            bootcode_requested: &self.profile.bootcode_requested,
            seen: self.seen,
            backup: self.backup,
            certstat: self.profile.certstat.as_deref(),
            csr_waiting: false,
            signed_waiting: false,
            cert_error: self.request_error,
        }
    }

    /// The view the pages render (without message log and snippet list).
    pub fn to_view(&self) -> DeviceView {
        let s = |a: &str| a.to_string();
        let mut v = DeviceView::empty(&self.key);
        v.problem = self.problem.as_deref().map(s);
        v.sn = self.sn.as_deref().map_or_else(|| s(&self.key), s);
        v.hwid = s(&self.hwid);
        v.name = s(&self.name);
        v.realip = s(&self.realip);
        v.ip = self.ip.as_deref().map_or_else(|| s(&self.realip), s);
        let p = &self.profile;
        v.proxy = s(&p.proxy);
        v.device_type = s(&p.device_type);
        v.phase = s(&p.phase);
        v.classes = s(&p.classes);
        v.environments = s(&p.environments);
        v.firmware = s(&p.firmware);
        v.firmware_requested = s(&p.firmware_requested);
        v.bootcode = s(&p.bootcode);
        v.bootcode_requested = s(&p.bootcode_requested);
        v.certstat = p.certstat.as_deref().map(s);
        v.seen = self.seen;
        v.backup = self.backup;
        v.log_entries = self.log_entries as usize;
        v.log_polls = self.log_polls as usize;
        v.snippet_count = self.snippets as usize;
        v.via_proxy = self.via_proxy;
        v.request_error = self.request_error;
        v.queries = self.queries.to_vec();
        v
    }

    /// Bytes this entry costs: the struct and the strings only it holds (the profile is
    /// shared and not counted; the index's map adds about 20 % for its nodes).
    pub fn cost(&self) -> usize {
        let own = |s: &str| {
            if s.is_empty() {
                0
            } else {
                s.len().next_multiple_of(16)
            }
        };
        let cells: usize = self
            .queries
            .iter()
            .flatten()
            .flat_map(|q| q.cells.iter())
            .map(|c| match c {
                Cell::Value(s) | Cell::Error(s) => own(s) + std::mem::size_of::<Cell>(),
            })
            .sum();
        std::mem::size_of::<Entry>()
            + 16 // the box's allocation overhead and the map slot
            + own(&self.key)
            + 16
            + self.sn.as_deref().map_or(0, own)
            + self.problem.as_deref().map_or(0, own)
            + own(&self.hwid)
            + own(&self.name)
            + own(&self.realip)
            + self.ip.as_deref().map_or(0, own)
            + self.queries.len() * std::mem::size_of::<Option<QueryResult>>()
            + cells
    }
}

/// Shared copies of the [`Profile`]s devices have in common.
#[derive(Default)]
struct Interner {
    set: HashSet<Arc<Profile>>,
    purge_at: usize,
}

impl Interner {
    fn get(&mut self, p: Profile) -> Arc<Profile> {
        if let Some(a) = self.set.get(&p) {
            return a.clone();
        }
        if self.set.len() >= self.purge_at {
            // profiles no entry uses any more
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.purge_at = self.set.len() * 2 + 1024;
        }
        let a = Arc::new(p);
        self.set.insert(a.clone());
        a
    }
}

#[derive(Default)]
struct Inner {
    /// Boxed: a map node's slots stay small (nodes are not always full).
    entries: BTreeMap<Arc<str>, Arc<Entry>>,
    groups: Arc<Vec<ShowGroup>>,
    strings: Interner,
}

/// The device index of one status directory.
#[derive(Default)]
pub struct Index {
    inner: RwLock<Inner>,
    complete: AtomicBool,
    done: (std::sync::Mutex<bool>, std::sync::Condvar),
}

impl Index {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the configured `show` columns; `true` when they changed (the entries' columns are
    /// then stale until rebuilt).
    pub fn set_groups(&self, groups: Vec<ShowGroup>) -> bool {
        if *self.read().groups == groups {
            return false;
        }
        self.write().groups = Arc::new(groups);
        true
    }

    /// Whether the start-up scan has finished (every state file is in the index).
    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Waits (blocking, at most `limit`) until the start-up scan has finished.
    pub fn wait_complete(&self, limit: std::time::Duration) -> bool {
        let (lock, cv) = &self.done;
        let g = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = cv
            .wait_timeout_while(g, limit, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        *g
    }

    fn mark_complete(&self) {
        self.complete.store(true, Ordering::Release);
        let (lock, cv) = &self.done;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }

    pub fn contains(&self, key: &str) -> bool {
        self.read().entries.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (Re)builds the entry of `key` from its state. The XPath columns are evaluated again
    /// when `fresh_queries` or when the device's query results are not those of the entry.
    pub fn update(&self, key: &str, state: &DeviceState, fresh_queries: bool) {
        let (groups, previous) = {
            let inner = self.read();
            let prev = inner.entries.get(key).map(|e| e.queries.clone());
            (inner.groups.clone(), prev)
        };
        let seens = view::query_seens(&state.root, &groups);
        let reuse = previous.filter(|p| {
            !fresh_queries
                && p.len() == seens.len()
                && p.iter()
                    .zip(&seens)
                    .all(|(q, s)| q.as_ref().map(|q| q.seen) == *s)
        });
        // the query columns are evaluated only when their results changed
        let evaluated = if reuse.is_some() {
            &[][..]
        } else {
            &groups[..]
        };
        let mut v = DeviceView::summary(key, state, &mut view::XPaths::new(evaluated));
        if let Some(prev) = reuse {
            v.queries = prev.into_vec();
        }
        self.insert(key, v, true);
    }

    /// Updates only the time last seen and the message counts of `key`'s entry, when
    /// `state` differs from `prev` (the state it was made from) in nothing else an entry
    /// shows: the same children (shared, not copied) and the same root attributes but
    /// `seen`. Most polls change only these. `false` when the entry has to be built again
    /// ([`Self::update`]).
    pub fn touch(&self, key: &str, state: &DeviceState, prev: &DeviceState) -> bool {
        if !only_seen_and_log_differ(&prev.root, &state.root) {
            return false;
        }
        let (log_entries, log_polls) = view::log_counts(state);
        let seen = crate::php::intval(state.root.attr("seen").unwrap_or("0"));
        let mut inner = self.write();
        let columns = inner.groups.len();
        let Some(e) = inner.entries.get_mut(key) else {
            return false;
        };
        if e.problem.is_some() || e.queries.len() != columns {
            return false;
        }
        let e = Arc::make_mut(e);
        e.seen = seen;
        e.log_entries = log_entries as u32;
        e.log_polls = log_polls as u32;
        true
    }

    /// Enters a file that cannot be read as a state.
    pub fn update_problem(&self, key: &str, problem: String) {
        let mut v = DeviceView::empty(key);
        v.problem = Some(problem);
        self.insert(key, v, true);
    }

    fn insert(&self, key: &str, v: DeviceView, replace: bool) {
        let mut inner = self.write();
        if !replace && inner.entries.contains_key(key) {
            return;
        }
        let k: Arc<str> = match inner.entries.get_key_value(key) {
            Some((k, _)) => k.clone(),
            None => key.into(),
        };
        let entry = Entry::from_view(k.clone(), v, &mut inner.strings);
        inner.entries.insert(k, Arc::new(entry));
    }

    pub fn remove(&self, key: &str) {
        self.write().entries.remove(key);
    }

    /// The views of all devices, sorted by key, those `keep` lets through.
    pub fn views(
        &self,
        mut keep: impl FnMut(&DeviceView) -> bool,
    ) -> (Vec<Arc<DeviceView>>, usize) {
        let inner = self.read();
        let total = inner.entries.len();
        let out = inner
            .entries
            .values()
            .map(|e| e.to_view())
            .filter(|v| keep(v))
            .map(Arc::new)
            .collect();
        (out, total)
    }

    /// The entries of all devices, sorted by key, those `keep` lets through (shared, not
    /// copied), and the number of entries.
    pub fn entries(&self, mut keep: impl FnMut(&Entry) -> bool) -> (Vec<Arc<Entry>>, usize) {
        let inner = self.read();
        let out = inner
            .entries
            .values()
            .filter(|e| keep(e))
            .cloned()
            .collect();
        (out, inner.entries.len())
    }

    /// Whether a device other than `key` records `hwid` in its state (a pass over the index;
    /// asked only for a soft device's backup under forcetrust).
    pub fn hwid_recorded_elsewhere(&self, hwid: &str, key: &str) -> bool {
        self.read()
            .entries
            .values()
            .any(|e| &*e.hwid == hwid && &*e.key != key)
    }

    /// The entry of `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.read().entries.get(key).map(|e| (**e).clone())
    }

    /// Bytes all entries cost ([`Entry::cost`]).
    pub fn cost(&self) -> usize {
        self.read().entries.values().map(|e| e.cost()).sum()
    }

    /// Reads every state file of `dir` not in the index yet (at start; entries written in the
    /// meantime are newer and stay). With `all`, rebuilds every entry (the columns changed).
    /// Returns the number of files read.
    pub fn scan(&self, dir: &Path, load: impl Fn(&str) -> super::Loaded, all: bool) -> usize {
        let Ok(rd) = std::fs::read_dir(dir) else {
            self.mark_complete();
            return 0;
        };
        let mut n = 0;
        for entry in rd.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(stem) = name.strip_suffix(".xml") else {
                continue;
            };
            if stem.is_empty() || name.starts_with('.') || (!all && self.contains(stem)) {
                continue;
            }
            n += 1;
            match load(stem) {
                super::Loaded::Ok(el) => self.update(stem, &el, all),
                super::Loaded::Corrupt { error, .. } => {
                    self.update_problem(stem, format!("cannot read state file {stem}.xml: {error}"))
                }
                super::Loaded::Missing => {}
            }
        }
        self.mark_complete();
        n
    }
}

/// Whether `state` has the children of `prev` (the same shared ones) and its root
/// attributes but `seen`: then the two differ at most in `seen` and the message log.
fn only_seen_and_log_differ(prev: &Element, state: &Element) -> bool {
    let (a, b): (&[Arc<Element>], &[Arc<Element>]) = (&prev.children, &state.children);
    prev.name == state.name
        && a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
        && prev.attrs.len() == state.attrs.len()
        && prev
            .attrs
            .iter()
            .zip(&state.attrs)
            .all(|(x, y)| x.0 == y.0 && (x.0 == "seen" || x.1 == y.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(sn: &str, i: usize) -> DeviceState {
        let xml = format!(
            r#"<state seen="1000"><device sn="{sn}" type="IP232" hwid="IP232-{i}" realip="172.16.{}.{}" ip="172.16.{}.{}" classes="phone, ip232" phase="update" environments="default" certstat="ok"/><firmware build="130100" requested="130160"/><bootcode build="130150"/><msgs time="1000" msg=""/><msgs time="1000" msg="hello"/><config filename="scripts/update-all-default.txt" delivered="950" version="800"/></state>"#,
            i / 256 % 256,
            i % 256,
            i / 256 % 256,
            i % 256
        );
        DeviceState::parse(xml.as_bytes()).expect("state")
    }

    #[test]
    fn a_typical_device_costs_less_than_350_bytes() {
        let index = Index::default();
        for i in 0..1000 {
            let sn = format!(
                "00-90-33-{:02x}-{:02x}-{:02x}",
                i / 65536,
                i / 256 % 256,
                i % 256
            );
            index.update(&sn, &state(&sn, i), false);
        }
        let per = index.cost() / 1000;
        assert!(per < 350, "{per} bytes per device");
        assert!(per > std::mem::size_of::<Entry>(), "{per}");
    }

    #[test]
    fn a_state_that_differs_only_in_seen_and_log_touches_the_entry() {
        let sn = "00-90-33-00-00-01";
        let (index, fresh) = (Index::default(), Index::default());
        let prev = state(sn, 1);
        index.update(sn, &prev, false);
        let mut next = prev.clone();
        next.root.set_attr("seen", "2000");
        let at = next.root.children.len();
        next.log.push_msg(at, 2000, "");
        next.log.push_msg(at, 2000, "again");
        next.log.push_msg(at, 2000, "and again");
        assert!(index.touch(sn, &next, &prev));
        fresh.update(sn, &next, false);
        let (touched, built) = (index.views(|_| true).0, fresh.views(|_| true).0);
        assert_eq!(touched, built);
        assert_eq!(
            (
                touched[0].seen,
                touched[0].log_entries,
                touched[0].log_polls
            ),
            (2000, 3, 2)
        );

        let mut moved = next.clone();
        moved
            .root
            .child_or_insert("device")
            .set_attr("phase", "final");
        assert!(!index.touch(sn, &moved, &next), "a changed child");
        let mut root = next.clone();
        root.root.set_attr("requested", "130160bootcode");
        assert!(!index.touch(sn, &root, &next), "a changed root attribute");
        assert!(!index.touch("other", &next, &prev), "no entry yet");
    }

    #[test]
    fn an_hwid_is_found_only_in_other_devices() {
        let index = Index::default();
        index.update("a", &state("a", 7), false);
        assert!(!index.hwid_recorded_elsewhere("IP232-7", "a"));
        assert!(!index.hwid_recorded_elsewhere("IP232-8", "b"));
        index.update("b", &state("b", 7), false);
        assert!(index.hwid_recorded_elsewhere("IP232-7", "a"));
        assert!(index.hwid_recorded_elsewhere("IP232-7", "b"));
    }

    #[test]
    fn views_round_trip_the_fields() {
        let index = Index::default();
        let el = state("00-90-33-00-00-01", 1);
        index.update("00-90-33-00-00-01", &el, false);
        let (views, total) = index.views(|_| true);
        assert_eq!(total, 1);
        let full = DeviceView::from_element("00-90-33-00-00-01", &el, &mut view::XPaths::new(&[]));
        let mut expected = full.clone();
        expected.msgs.clear();
        expected.snippets.clear();
        assert_eq!(*views[0], expected);
        assert_eq!(views[0].log_polls, 1);
        assert_eq!(views[0].log_entries, 1);
        assert_eq!(views[0].snippet_count, 1);
    }
}
