#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The live engine's `process` never calls the allocator: a test binary of its own whose
//! global allocator counts every call (allocation, free, reallocation) per thread, across
//! many blocks with notes starting, ending and being stolen, the XY point, bend, mod
//! wheel and corners changing.

use std::alloc::System;
use std::path::Path;

use engine::live::{Corners, LiveConfig, LiveEngine};
use testkit::alloc::{Counting, calls_on_this_thread as calls};
use testkit::demo::{default_student, demo_corners};

#[global_allocator]
static ALLOCATOR: Counting<System> = Counting(System);

#[test]
fn process_never_calls_the_allocator() {
    let engine = default_student();
    let dir = tempfile::tempdir().unwrap();
    let (packs, corners) = demo_corners(&engine, dir.path());
    let paths: Vec<&Path> = packs.iter().map(|p| p.as_path()).collect();
    let fewer = Corners::encode(&engine, &paths[1..3]).unwrap();
    // With and without the measured envelope's output stage (the shipped student has one).
    for (helper_threads, envelope) in [(0, false), (1, false), (0, true)] {
        let cfg = LiveConfig {
            output_rate_hz: 44_100,
            max_block_frames: 128,
            max_voices: 3,
            helper_threads,
            envelope,
        };
        let live = LiveEngine::new(engine.student_model().unwrap(), corners.clone(), cfg).unwrap();
        check(live, &fewer);
    }
}

/// Many blocks of `live` with everything a player does, counted on this thread (the audio
/// thread's part; with helper threads, theirs is lent voices and buffers, moved back).
fn check(mut live: LiveEngine, fewer: &Corners) {
    // The guard on: stopping voices must not allocate either.
    let swap = live.corner_swap();
    let mut out = vec![0f32; 128];
    let mut odd = vec![0f32; 300]; // longer than the blocks it was set up for
    let before = calls();
    // Calls made here by the test itself (posting new corners), not by `process`.
    let mut excluded = 0;
    for block in 0..200usize {
        match block {
            0 => live.note_on(60, 0.8),
            20 => live.note_on(64, 0.6),
            30 => live.note_on(67, 0.6),
            40 => live.note_on(71, 0.6), // stolen
            50 => live.note_off(64),
            60 => live.set_xy(0.7, 0.2),
            70 => live.set_pitch_bend(-1.5),
            80 => live.set_mod_wheel(0.8),
            90 => live.set_weights([0.0, 1.0, 1.0, 0.0]),
            100 => {
                // Another thread's part (a GUI's), played here: counted apart. The
                // engine takes the set at its next block without allocating or freeing.
                let mid = calls();
                swap.swap(fewer.clone()).unwrap();
                excluded += calls() - mid;
            }
            110 => live.all_notes_off(),
            120 => live.note_on(200, 1.0),
            130 => live.note_on(48, 1.0),
            _ => {}
        }
        if block % 37 == 0 {
            live.process(&mut odd);
        } else {
            live.process(&mut out);
        }
    }
    let total = calls() - before - excluded;
    assert!(
        excluded > 0,
        "the counter sees allocations (the swap's clone)"
    );
    assert_eq!(total, 0, "process used the allocator {total} times");
    assert!(live.active_voices() > 0);
    assert!(out.iter().all(|x| x.is_finite()));
    assert_eq!(live.corners().len(), 2, "the swapped corners play");
}
