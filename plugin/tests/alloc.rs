#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The audio thread never allocates: every `process` call, with notes (both dialects),
//! parameter changes, pitch bend and the mod wheel, runs under a counting global allocator
//! that must see zero calls from this thread. (Its own test binary: the allocator is
//! global.)

mod common;

use std::alloc::System;

use common::{Harness, demo_state, rms};
use testkit::alloc::{Counting, calls_on_this_thread};

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting(System);

/// One block processed with the allocator watching; returns the calls it saw.
fn counted(h: &mut Harness) -> u64 {
    let before = calls_on_this_thread();
    h.process();
    calls_on_this_thread() - before
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
    let before = calls_on_this_thread();
    let probe = std::hint::black_box(vec![1u8; 7]);
    let seen = calls_on_this_thread() - before;
    drop(probe);
    assert!(seen > 0, "the counter sees nothing");

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
