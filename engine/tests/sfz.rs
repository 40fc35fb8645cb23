#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The SFZ the exporter writes, played by the tests' SFZ player
//! (`support/sfz_player.rs`) as a sampler plays it: a sine written as the exporter writes
//! its notes (`instrument::sfz::write`, `audio::wav::write`) sounds exactly as recorded at
//! its key, in tune at the keys around it (by the engine's pitch detection), holds its
//! loop for as long as a key is held, is silent once its release is over, and louder at a
//! higher velocity. `engine/tests/instrument.rs` plays an exported instrument the same way.

use std::path::Path;

use engine::audio::wav::{self, WavFormat};
use engine::fsutil::Overwrite;
use engine::instrument::sfz::{self, Region};

#[path = "support/sfz_player.rs"]
mod sfz_player;
use sfz_player::Instrument;

const RATE: u32 = 44_100;
/// A period of exactly 200 sample points: 220.5 Hz, MIDI 57.04 (A3).
const PERIOD: usize = 200;
const KEYCENTER: u8 = 57;

fn sine(secs: f32) -> Vec<f32> {
    (0..(secs * RATE as f32) as usize)
        .map(|t| 0.5 * (std::f32::consts::TAU * t as f32 / PERIOD as f32).sin())
        .collect()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Writes `dir/inst.sfz` with one region over every key: the 0.5 s sine, with a sustain
/// loop of 50 whole periods from 0.1 s when `looped`, released over `release_secs`.
fn write_instrument(dir: &Path, looped: bool, release_secs: f32) -> (Instrument, Vec<f32>) {
    let samples = sine(0.5);
    std::fs::create_dir_all(dir.join("inst_samples")).unwrap();
    wav::write(
        &dir.join("inst_samples/a3.wav"),
        &samples,
        RATE,
        WavFormat::F32,
        Overwrite::Never,
    )
    .unwrap();
    let start = 4_400u32;
    let text = sfz::write(
        "a sine",
        release_secs,
        &[Region {
            sample: "inst_samples/a3.wav".into(),
            keycenter: KEYCENTER,
            keys: (0, 127),
            velocities: (1, 127),
            sustain_loop: looped.then_some((start, start + 50 * PERIOD as u32)),
        }],
    );
    let path = dir.join("inst.sfz");
    std::fs::write(&path, text).unwrap();
    (Instrument::open(&path), samples)
}

#[test]
fn a_note_sounds_as_recorded_at_its_key_and_in_tune_around_it() {
    let dir = tempfile::tempdir().unwrap();
    let (inst, samples) = write_instrument(dir.path(), true, 0.1);
    // At its key, at full velocity, held past the loop's start: the recording, exactly.
    let played = inst.play(KEYCENTER, 127, 0.3, 0.3);
    assert_eq!(played, samples[..played.len()]);
    // Around it, pitched by (key − pitch_keycenter) semitones: C4 is C4.
    for key in [50u8, KEYCENTER, 60, 64, 69] {
        let note = inst.play(key, 100, 1.0, 1.0);
        let at_16k = engine::audio::resample(&note, RATE, 16_000).unwrap();
        assert_eq!(
            engine::pitch::detect(&at_16k).midi(),
            Some(key),
            "key {key}"
        );
    }
}

#[test]
fn the_loop_holds_a_long_note_and_the_release_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let (inst, _) = write_instrument(dir.path(), true, 0.1);
    let rate = RATE as usize;
    // Held 3 s, six times the recording: the loop sustains it at its level.
    let note = inst.play(KEYCENTER, 127, 3.0, 3.5);
    let late = rms(&note[rate * 5 / 2..rate * 3]);
    assert!(
        (late - 0.5 / 2f32.sqrt()).abs() < 0.01,
        "rms {late} at 2.5–3 s"
    );
    // Let go at 3 s: the 0.1 s release fades it, then silence.
    let fading = rms(&note[rate * 3 + rate / 40..rate * 3 + rate / 20]);
    assert!(fading > 0.0 && fading < late, "{fading}");
    assert!(note[rate * 3 + rate / 10 + 1..].iter().all(|&s| s == 0.0));

    // Without the loop the same hold runs out with the recording.
    let other = tempfile::tempdir().unwrap();
    let (plain, _) = write_instrument(other.path(), false, 0.1);
    let note = plain.play(KEYCENTER, 127, 3.0, 3.5);
    assert!(note[rate / 2..].iter().all(|&s| s == 0.0));
}

#[test]
fn a_higher_velocity_is_louder() {
    let dir = tempfile::tempdir().unwrap();
    let (inst, _) = write_instrument(dir.path(), true, 0.1);
    let level = |velocity| rms(&inst.play(60, velocity, 0.4, 0.4));
    let (soft, loud) = (level(40), level(120));
    assert!(loud > soft);
    // SFZ's default velocity tracking: a gain of (velocity / 127)².
    let expected = (40.0f32 / 120.0).powi(2);
    assert!((soft / loud - expected).abs() < 1e-4, "{}", soft / loud);
}
