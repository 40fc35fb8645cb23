//! Notes of a known pitch, written as WAVs at the models' 16 kHz, named as NSynth names
//! its notes so the engine reads their pitch and velocity from the name.

use std::f32::consts::TAU;
use std::path::Path;

use engine::audio::wav::{self, WavFormat};
use engine::fsutil::Overwrite;

/// The rate the notes are written at: the models'.
pub const RATE_HZ: u32 = 16_000;

/// The frequency of MIDI pitch `midi` in equal temperament (A4 = 69 = 440 Hz).
pub fn hz(midi: u8) -> f32 {
    440.0 * 2f32.powf((f32::from(midi) - 69.0) / 12.0)
}

/// `len` samples at [`RATE_HZ`] of a sine at `hz`, of peak `amp`.
pub fn sine(hz: f32, amp: f32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|t| amp * (TAU * hz * t as f32 / RATE_HZ as f32).sin())
        .collect()
}

/// NSynth's name for a note: `flute_acoustic_000-060-100.wav` (instrument, MIDI pitch,
/// velocity).
pub fn nsynth_name(instrument: &str, pitch: u8, velocity: u8) -> String {
    format!("{instrument}_acoustic_000-{pitch:03}-{velocity:03}.wav")
}

/// Writes `samples` at [`RATE_HZ`] to `path` (which must not exist yet).
pub fn write(path: &Path, samples: &[f32], format: WavFormat) {
    wav::write(path, samples, RATE_HZ, format, Overwrite::Never)
        .unwrap_or_else(|e| panic!("{e}: {}", path.display()));
}

/// How many `.wav` files `dir` holds (not counting subfolders').
pub fn wav_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{e}: {}", dir.display()))
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wav")
        })
        .count()
}
