//! The state cache's charge ([`super::cost`]) against the allocator: the bytes asked of it
//! for states held, counted by a global allocator of the unit tests that keeps, per thread,
//! the bytes allocated and not yet freed.

use super::{SLOT_BYTES, cost};
use crate::state::DeviceState;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the live bytes of each thread.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|l| l.set(l.get() + delta));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: the caller's contract is the system allocator's
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        // SAFETY: as above
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        // SAFETY: as above
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        // SAFETY: as above
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// `n` states read from `doc` as the store reads a file; the bytes they hold (as the
/// allocator counts them) and what the cache charges for them.
fn measure(doc: &str, n: usize) -> (usize, usize) {
    let before = live();
    let mut states = Vec::with_capacity(n);
    let list = live();
    for _ in 0..n {
        states.push(DeviceState::parse(doc.as_bytes()).expect("state parses"));
    }
    let held = (live() - list) as usize + (list - before) as usize;
    let charged: usize = states.iter().map(cost).sum();
    drop(states);
    (held, charged)
}

/// A state as a poll writes it: device facts, a message log of `msgs` entries, a query.
fn poll_state(msgs: usize) -> String {
    let mut d = String::from(
        r#"<?xml version="1.0"?><state seen="1796542338"><device sn="00-90-33-30-00-af" hwid="IP232-30-00-af" type="IP232" ip="10.0.0.1" realip="10.0.0.1" rp="false" classes="phone, ip232" phase="update" env="site" fw="13r2 sr8 [130178]" boot="13r2 sr8 [130178]" polling="0" name="reception"/>"#,
    );
    for i in 0..msgs {
        d.push_str(&format!(
            r#"<msgs time="{}" msg="poll {i}: script sent, snippet all-phone-all.txt delivered"/>"#,
            1796542338 + i
        ));
    }
    d.push_str(r#"<queries><admin seen="1796542338"><info version="13r2" serial="x"/></admin></queries></state>"#);
    d
}

/// What an anonymous device can make a state hold through `mode=query` (64 KiB bodies).
fn hostile_states() -> Vec<(&'static str, String)> {
    let wrap = |inner: String| {
        format!(
            r#"<?xml version="1.0"?><state seen="1"><device sn="00-90-34-00-00-05"/><queries><admin seen="1">{inner}</admin></queries></state>"#
        )
    };
    vec![
        ("64 KiB of text", wrap("x".repeat(64 * 1024))),
        ("64 KiB of escaped text", wrap("&lt;".repeat(16 * 1024))),
        ("16,000 empty elements", wrap("<a/>".repeat(16 * 1024))),
        (
            "elements with attributes",
            wrap(r#"<a b="1" c="2" d="3"/>"#.repeat(3000)),
        ),
        (
            "nesting 200 deep",
            wrap("<a>".repeat(200) + &"</a>".repeat(200)),
        ),
        (
            "long names and values",
            wrap(
                format!(
                    r#"<{0} {0}="{1}">{1}</{0}>"#,
                    "n".repeat(60),
                    "v".repeat(300)
                )
                .repeat(150),
            ),
        ),
    ]
}

#[test]
fn the_charge_of_a_state_covers_what_the_allocator_gives_it() {
    let mut cases = vec![
        ("poll state, no log", poll_state(0)),
        ("poll state, 100 messages", poll_state(100)),
        ("poll state, 500 messages", poll_state(500)),
    ];
    cases.extend(hostile_states());
    for (name, doc) in cases {
        let (held, charged) = measure(&doc, 20);
        let ratio = charged as f64 / held as f64;
        println!(
            "{name}: file {} bytes, held {} bytes, charged {} bytes, charge/held {ratio:.2}",
            doc.len(),
            held / 20,
            charged / 20,
        );
        assert!(charged >= held, "{name}: charged {charged} < held {held}");
        // close enough that the cap is worth its name: a state with little in it is charged
        // the bookkeeping of its slot
        assert!(
            charged <= 2 * held + 20 * SLOT_BYTES,
            "{name}: charged {charged} for {held} held"
        );
    }
}
