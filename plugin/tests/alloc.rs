#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The audio thread never allocates: every `process` call, with notes (both dialects),
//! parameter changes, pitch bend and the mod wheel, runs under a counting global allocator
//! that must see zero calls from this thread. (Its own test binary: the allocator is
//! global.)

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Harness, demo_state, rms};

struct Counting;

static CALLS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Count only this thread (the loader and the engine's helpers run beside it).
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if COUNTING.with(Cell::get) {
        CALLS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call forwards to the system allocator unchanged.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded as given.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One block processed with the allocator watching; returns the calls it saw.
fn counted(h: &mut Harness) -> usize {
    let before = CALLS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    h.process();
    COUNTING.with(|c| c.set(false));
    CALLS.load(Ordering::Relaxed) - before
}

#[test]
fn the_audio_thread_never_allocates() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new();
    assert!(h.load_state(&demo_state(
        dir.path(),
        "\"attack_secs\": 0.01, \"release_secs\": 0.1"
    )));
    h.activate(48_000.0, 256);
    h.wait_ready();

    // The counter works: an allocation on this thread is seen.
    COUNTING.with(|c| c.set(true));
    let probe = std::hint::black_box(vec![1u8; 7]);
    COUNTING.with(|c| c.set(false));
    drop(probe);
    assert!(
        CALLS.load(Ordering::Relaxed) > 0,
        "the counter sees nothing"
    );

    let mut calls = 0;
    let mut level = 0.0f32;
    for block in 0..600 {
        // Events are queued before the count starts (the host's buffer, not ours).
        match block % 100 {
            0 => h.note_on(60, 0.9),
            10 => h.midi([0x90, 64, 90]),
            20 => h.param(1, 0.9),
            25 => h.param(3, 1.0),
            30 => h.midi([0xE0, 0x00, 0x50]),
            35 => h.midi([0xB0, 1, 100]),
            40 => h.param(7, -6.0),
            45 => h.note_on(67, 0.5),
            50 => h.note_off(60),
            55 => h.param(5, 0.2),
            60 => h.midi([0x80, 64, 0]),
            70 => h.note_off(67),
            80 => h.midi([0xB0, 123, 0]),
            90 => h.param(1, 0.1),
            _ => {}
        }
        calls += counted(&mut h);
        level = level.max(rms(h.left()));
        h.callbacks();
    }
    assert!(level > 1e-3, "nothing played (peak block rms {level})");
    assert_eq!(
        calls, 0,
        "the audio thread called the allocator {calls} times"
    );
}
