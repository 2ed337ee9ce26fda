//! Handing a thread's free memory back to the allocator's arenas (mimalloc, the binary's
//! allocator) when the thread goes idle: a worker thread that parks, a thread of the blocking
//! pool after its task. mimalloc purges freed pages only on the owning thread's own paths, so
//! pages a thread freed stayed resident while it had nothing to do (measured with 16 clients
//! of hostile requests: the blocking pool grew to about 25 threads, each keeping its own).
//! Without mimalloc as the global allocator (the library's tests) a collection is a no-op.

use std::cell::Cell;
use std::time::{Duration, Instant};

// links mimalloc's C library (`mi_collect`) into every binary of this crate, also those whose
// global allocator is another one
use mimalloc as _;

unsafe extern "C" {
    fn mi_collect(force: bool);
}

/// Shortest time between two collections by one thread.
pub const COLLECT_EVERY: Duration = Duration::from_millis(100);

/// The calling thread's empty pages go back to the arenas and the purges due are made, at
/// most every [`COLLECT_EVERY`] per thread.
pub fn collect() {
    thread_local! {
        static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
    }
    let now = Instant::now();
    let due = LAST
        .try_with(|last| {
            let due = last
                .get()
                .is_none_or(|t| now.duration_since(t) >= COLLECT_EVERY);
            if due {
                last.set(Some(now));
            }
            due
        })
        .unwrap_or(false);
    if due {
        collect_now();
    }
}

/// [`collect`] without the time limit.
pub fn collect_now() {
    // SAFETY: a collection of the calling thread's heap, without forcing; mimalloc is linked
    // (a dependency of this crate) whether or not it is the global allocator
    unsafe { mi_collect(false) };
}
