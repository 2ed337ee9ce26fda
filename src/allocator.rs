//! The allocator of the `update-server` binary (mimalloc) and what keeps the resident set
//! near the memory in use.
//!
//! mimalloc gives freed memory back to the system a while after it was freed (`purge_delay`),
//! but only when a thread asks it to: on its own allocation paths, which an idle server does
//! not take. After a burst (a 16 MiB upload, a minute of hostile requests) the memory it
//! freed then stayed resident until traffic came again (measured: 33 MB after one 16 MiB
//! `mode=vardump`, 12 MB of it still after further polls). So a worker thread that goes idle
//! hands its free pages back ([`on_idle`]; so does a thread of the blocking pool after each
//! task, `app::blocking`), and a tick of
//! the runtime ([`tick`]) makes the purges that came due since happen.
//!
//! Transparent huge pages are off for the process ([`configure`]): mimalloc asks for them on
//! its arenas (`madvise(MADV_HUGEPAGE)`), and the kernel then makes every 2 MiB range with
//! a little memory in use wholly resident, and joins small pages into such ranges in the
//! background (`khugepaged`): the resident set grew for as long as the server ran under
//! varied requests (measured: 53 MiB of 112 MiB in huge pages after two minutes of hostile
//! requests; 10,000 devices polled once: 42 MiB with, 28 MiB without).

use std::time::Duration;

// Every poll builds and drops many small strings (the answer, the device state); mimalloc
// handles that allocation pattern across threads far better than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
}

/// `mi_option_purge_delay` in mimalloc.h (v3); checked against its default in the tests.
pub const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

// mimalloc (v3) gives freed memory back to the system a second after it was freed
// (`purge_delay`, 1000 ms); large requests that follow each other faster (the pages of the
// device list) take new memory meanwhile. Purging at once keeps the resident set at what is
// in use (benches/memory.rs, 16 clients of hostile requests for 4 minutes: flat at 50–55 MiB
// with 0 ms, 63–65 MiB and later up to 96 MiB with 100 ms; 10 ms was worse than both, 185 MiB
// after 2 minutes), and cost no throughput measurable there (322,000 requests in the first
// minute against 292,000 with 100 ms).
const PURGE_DELAY_MS: std::ffi::c_long = 0;

/// `mi_option_allow_thp` in mimalloc.h (v3); checked against its default in the tests.
pub const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// Sets the purge delay and turns transparent huge pages off, unless the environment
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ALLOW_THP`) says otherwise. First thing in `main`.
pub fn configure() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain numeric option of the allocator linked above (thread-safe)
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: as above; mimalloc no longer asks for huge pages on new memory
        unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) };
        // the arena it reserved before `main` was advised already: the process-wide switch
        // (a flag of the process; nothing else in it wants huge pages)
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours
        unsafe {
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
        };
    }
}

/// A worker thread goes idle (`on_thread_park`): see [`update_server::idle_memory`].
pub fn on_idle() {
    update_server::idle_memory::collect();
}

/// Once a second on the runtime: the purges that came due while every thread was idle.
pub async fn tick() {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        update_server::idle_memory::collect_now();
    }
}
