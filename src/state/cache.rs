//! The parsed states of recently used devices, bounded in bytes (`<server state-cache>`).
//!
//! Each entry is charged an estimate of its memory ([`cost`]: the length of its file times
//! [`PER_BYTE`], but the compact message log at the size of its buffers); when the total
//! passes the cap, the least recently used entries go until a
//! quarter of the cap is free again. A device not in the cache is read from its file.

use super::DeviceState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Estimated bytes of memory of a parsed state per byte of its file (measured: 4.5 for a
/// state of the perf fleet without its message log).
pub const PER_BYTE: usize = 4;

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

    /// Keeps `state`; entries larger than a quarter of the cap are not kept.
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
        if cost > cap / 4 {
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

/// The memory charged for `state`: its element tree at [`PER_BYTE`] per byte of its file,
/// its compact message log ([`super::msglog`]) at its size.
pub fn cost(state: &DeviceState) -> usize {
    let tree = state.root.document_len().0;
    tree.saturating_mul(PER_BYTE) + state.log.heap_bytes() + 256
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
        assert!(tree >= 4000);
        for t in 0..100 {
            s.log.push_msg(0, t, "0123456789");
        }
        let with_log = cost(&s);
        let log = s.log.heap_bytes();
        assert!(log > 100 * ENTRY_BYTES);
        assert_eq!(with_log, tree + log);
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
    }
}
