//! The parsed states of recently used devices, bounded in bytes (`<server state-cache>`).
//!
//! Each entry is charged the memory its state takes ([`cost`]: every element, string and
//! list at the size the allocator was asked for, the compact message log at the size of its
//! buffers, an eighth more for the allocator's size classes, and the entry's bookkeeping);
//! when the total passes the cap, the least recently used entries go until a quarter of the
//! cap is free again. A state charged more than [`MAX_ENTRY`] (or a quarter of the cap) is
//! not kept: a device's state of polls is a few to some tens of KB; one much larger holds
//! what a device uploaded (query results), would take the place of many others, and is read
//! from its file when needed. A device not in the cache is read from its file. The charge is checked
//! against the allocator's own count in the tests (`bytes_tests`).

use super::DeviceState;
use crate::xml::Element;
use compact_str::CompactString;
use std::collections::HashMap;
use std::mem::size_of;
use std::sync::{Arc, Mutex};

#[cfg(test)]
mod bytes_tests;

/// Bytes charged for an entry besides its state: the key, the slot and the map's share.
pub const SLOT_BYTES: usize = 256;

/// Default cap (`<server state-cache>`).
pub const DEFAULT_CAP: usize = 8 * 1024 * 1024;

/// Largest charge of a state kept (a state of 500 log entries is charged about 50 KB).
pub const MAX_ENTRY: usize = 64 * 1024;

struct Slot {
    state: Arc<DeviceState>,
    cost: usize,
    used: u64,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Box<str>, Slot>,
    total: usize,
    tick: u64,
}

/// A byte-bounded LRU of parsed states.
pub struct Lru {
    inner: Mutex<Inner>,
    cap: std::sync::atomic::AtomicUsize,
}

impl Lru {
    pub fn new(cap: usize) -> Lru {
        Lru {
            inner: Mutex::new(Inner::default()),
            cap: std::sync::atomic::AtomicUsize::new(cap),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_cap(&self, cap: usize) {
        self.cap.store(cap, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn get(&self, key: &str) -> Option<Arc<DeviceState>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let slot = inner.slots.get_mut(key)?;
        slot.used = tick;
        Some(slot.state.clone())
    }

    /// Keeps `state`; entries larger than [`MAX_ENTRY`] or a quarter of the cap are not kept.
    pub fn put(&self, key: &str, state: Arc<DeviceState>) {
        let cost = cost(&state);
        self.put_costed(key, state, cost);
    }

    /// [`Self::put`] with the state's [`cost`] already known.
    pub fn put_costed(&self, key: &str, state: Arc<DeviceState>, cost: usize) {
        let cap = self.cap.load(std::sync::atomic::Ordering::Relaxed);
        let mut inner = self.lock();
        if let Some(old) = inner.slots.remove(key) {
            inner.total -= old.cost;
        }
        if cost > cap / 4 || cost > MAX_ENTRY {
            return;
        }
        inner.tick += 1;
        let used = inner.tick;
        inner.total += cost;
        inner.slots.insert(key.into(), Slot { state, cost, used });
        if inner.total > cap {
            evict(&mut inner, cap - cap / 4);
        }
    }

    pub fn remove(&self, key: &str) {
        let mut inner = self.lock();
        if let Some(old) = inner.slots.remove(key) {
            inner.total -= old.cost;
        }
    }

    /// Bytes charged now.
    pub fn charged(&self) -> usize {
        self.lock().total
    }
}

/// The memory charged for `state` (see the module documentation). A child element another
/// state shares ([`crate::xml::Children`]) is charged to each of them: the charge is at
/// least what the state holds.
pub fn cost(state: &DeviceState) -> usize {
    let bytes = size_of::<DeviceState>() + tree_bytes(&state.root) + state.log.heap_bytes();
    bytes + bytes / 8 + SLOT_BYTES
}

/// Bytes allocated for what `el` owns (not the element itself).
fn tree_bytes(el: &Element) -> usize {
    fn heap(s: &CompactString) -> usize {
        if s.is_heap_allocated() {
            s.capacity()
        } else {
            0
        }
    }
    let mut n = heap(&el.name) + el.text.capacity();
    if el.attrs.spilled() {
        n += el.attrs.capacity() * size_of::<(CompactString, CompactString)>();
    }
    n += el
        .attrs
        .iter()
        .map(|(k, v)| heap(k) + heap(v))
        .sum::<usize>();
    if !el.children.is_empty() {
        // a list grown by pushing: its capacity is the next power of two, at least 4
        let slots = el.children.len().next_power_of_two().max(4);
        n += slots * size_of::<Arc<Element>>();
    }
    // each child behind its reference counts
    let child = size_of::<Element>() + 2 * size_of::<usize>();
    n + el
        .children
        .iter()
        .map(|c| child + tree_bytes(c))
        .sum::<usize>()
}

/// Drops the least recently used entries until at most `target` bytes are charged.
fn evict(inner: &mut Inner, target: usize) {
    let mut ages: Vec<(u64, usize)> = inner.slots.values().map(|s| (s.used, s.cost)).collect();
    ages.sort_unstable();
    let mut total = inner.total;
    let mut cutoff = 0;
    for (used, cost) in ages {
        if total <= target {
            break;
        }
        total -= cost;
        cutoff = used;
    }
    inner.slots.retain(|_, s| s.used > cutoff);
    inner.total = inner.slots.values().map(|s| s.cost).sum();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::msglog::ENTRY_BYTES;
    use crate::xml::Element;

    /// A state whose file has about `len` bytes.
    fn big(len: usize) -> DeviceState {
        let mut s = DeviceState::default();
        s.root.set_attr("x", "a".repeat(len));
        s.root.children.push(Element::new("device"));
        s
    }

    #[test]
    fn a_message_log_is_charged_at_its_size() {
        let mut s = big(1000);
        let tree = cost(&s);
        assert!(tree >= 1000);
        for t in 0..100 {
            s.log.push_msg(0, t, "0123456789");
        }
        let with_log = cost(&s);
        let log = s.log.heap_bytes();
        assert!(log > 100 * ENTRY_BYTES);
        assert!(with_log >= tree + log, "{with_log} {tree} {log}");
    }

    #[test]
    fn stays_within_its_cap_and_keeps_the_recent() {
        let lru = Lru::new(100_000);
        for i in 0..1000 {
            lru.put(&format!("d{i}"), Arc::new(big(1000)));
            assert!(lru.charged() <= 100_000);
        }
        assert!(lru.get("d999").is_some());
        assert!(lru.get("d0").is_none());
        lru.put("huge", Arc::new(big(1_000_000)));
        assert!(lru.get("huge").is_none());
        // not kept however large the cap: an uploaded result, not a state of polls
        let lru = Lru::new(1 << 30);
        lru.put("upload", Arc::new(big(MAX_ENTRY)));
        assert!(lru.get("upload").is_none());
        lru.put("polls", Arc::new(big(MAX_ENTRY / 2)));
        assert!(lru.get("polls").is_some());
    }
}
