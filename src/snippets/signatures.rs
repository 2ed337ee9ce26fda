//! The CHECK signatures computed last (most polls of an installation send the same few lists
//! of snippets): a list is known by the very snippet contents it was computed of. An entry
//! holds its contents, so they cannot be freed and their place taken by others while it is
//! kept. The cache belongs to the snippet store (one per server), not to the poll's core.

use super::Snippet;
use std::sync::{Arc, Mutex};

/// Lists kept.
const KEEP: usize = 32;

type Entry = (Vec<Arc<Vec<u8>>>, String);

/// The signatures computed last, newest first (see the module documentation).
#[derive(Debug, Default)]
pub struct SignatureCache {
    last: Mutex<Vec<Entry>>,
}

fn same(parts: &[Arc<Vec<u8>>], snippets: &[&Snippet]) -> bool {
    parts.len() == snippets.len()
        && parts
            .iter()
            .zip(snippets)
            .all(|(p, s)| Arc::ptr_eq(p, &s.signature_part))
}

impl SignatureCache {
    /// The signature of `snippets`, computed with `compute` when not kept.
    pub fn of(&self, snippets: &[&Snippet], compute: impl FnOnce() -> String) -> String {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = last.iter().position(|(parts, _)| same(parts, snippets)) {
            let hit = last.remove(i);
            let sig = hit.1.clone();
            last.insert(0, hit);
            return sig;
        }
        drop(last);
        let sig = compute();
        let parts = snippets.iter().map(|s| s.signature_part.clone()).collect();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        last.insert(0, (parts, sig.clone()));
        last.truncate(KEEP);
        sig
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_signature_is_only_for_the_same_contents() {
        let a = Snippet::new(1, b"config add A".to_vec());
        let b = Snippet::new(1, b"config add A".to_vec());
        let cache = SignatureCache::default();
        let mut computed = 0;
        let mut sig = |list: &[&Snippet]| {
            cache.of(list, || {
                computed += 1;
                format!("sig{computed}")
            })
        };
        let first = sig(&[&a]);
        assert_eq!(sig(&[&a]), first, "kept");
        // equal text, other snippet (a changed file is a new snippet): computed anew
        assert_ne!(sig(&[&b]), first);
        assert_ne!(sig(&[&a, &b]), first);
        assert_ne!(sig(&[]), first);
        assert_eq!(sig(&[&a]), first);
    }
}
