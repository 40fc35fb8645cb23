//! Reading a source for a note: a sound file, or the note of a pack nearest the key
//! (and velocity), at the model's rate, shifted to the key by resampling for a model that
//! does not take a pitch.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::MAX_SHIFT_SEMITONES;
use crate::audio::{ReadOptions, SAMPLE_RATE_HZ, read_note, resample};
use crate::error::{Error, Result};
use crate::pack;
use crate::pitch::midi_name;

/// A source note made ready for encoding.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// The sound file used (for a pack: the note picked from it).
    pub file: PathBuf,
    /// 16 kHz mono at the requested pitch; a multiple of the hop long (zero-padded).
    #[serde(skip)]
    pub samples: Vec<f32>,
    /// Samples before that padding: the note's own length.
    pub length: usize,
    /// The note's own pitch (from its name, else detected), if it has one.
    pub pitch: Option<u8>,
    /// Semitones it was shifted by to reach the requested pitch (0: none).
    pub shift_semitones: i32,
}

impl Prepared {
    /// One line for the user about what was taken and whether it was shifted.
    pub fn describe(&self) -> String {
        let name = self.file.display();
        match (self.pitch, self.shift_semitones) {
            (Some(p), 0) => format!("{name} ({})", midi_name(p)),
            (Some(p), s) => format!(
                "{name} ({} shifted {s:+} semitones to {} by resampling)",
                midi_name(p),
                midi_name((i32::from(p) + s) as u8)
            ),
            (None, _) => format!("{name} (unpitched, used as is)"),
        }
    }
}

/// Reads a source: a sound file, or the note of a sample-pack folder nearest `pitch`
/// (and `velocity`; C4 without a pitch), zero-padded to whole frames of `hop`. With
/// `resample`, a pitched note not at `pitch` is shifted to it (at most two octaves);
/// without, it is used at its own pitch (a model that takes the pitch to play).
pub fn prepare_note(
    source: &Path,
    pitch: Option<u8>,
    velocity: Option<u8>,
    options: ReadOptions,
    resample: bool,
    hop: usize,
) -> Result<Prepared> {
    let (file, note_pitch) = if source.is_dir() {
        let scan = pack::scan(source, options)?;
        let want = pitch.unwrap_or(60);
        match scan.nearest_at(want, velocity) {
            Some((file, info)) => (scan.root.join(file), info.pitch.midi()),
            None => {
                // No pitched note: an unpitched one (a drum kit) is used as is.
                let (file, info) = scan
                    .notes()
                    .next()
                    .ok_or_else(|| Error::invalid(source, "the folder holds no readable notes"))?;
                (scan.root.join(file), info.pitch.midi())
            }
        }
    } else {
        let info = pack::describe(source, options)?;
        (source.to_path_buf(), info.pitch.midi())
    };
    let note = read_note(&file, options)?;
    // A model with an excitation plays the note at the pitch its decoder is given:
    // the source is encoded at its own pitch, not resampled.
    let shift = match (pitch, note_pitch) {
        (Some(want), Some(have)) if resample => i32::from(want) - i32::from(have),
        _ => 0,
    };
    if shift.abs() > MAX_SHIFT_SEMITONES {
        return Err(Error::invalid(
            &file,
            format!(
                "the nearest note is {} semitones from the requested pitch (at most {MAX_SHIFT_SEMITONES} are shifted); add notes nearer it",
                shift.abs()
            ),
        ));
    }
    let mut samples = if shift == 0 {
        note.samples
    } else {
        pitch_shift(&note.samples, shift).map_err(|e| Error::invalid(&file, e.to_string()))?
    };
    let length = samples.len();
    samples.resize(samples.len().div_ceil(hop).max(1) * hop, 0.0);
    Ok(Prepared {
        file,
        samples,
        length,
        pitch: note_pitch,
        shift_semitones: shift,
    })
}

/// Shifts a 16 kHz note by `semitones` by resampling (as a sampler does: up is shorter,
/// down is longer). The rate ratio is rounded to 10 Hz steps of the source rate, within
/// 0.6 cents of exact, which keeps the resampler's FFT sizes small.
pub fn pitch_shift(samples: &[f32], semitones: i32) -> Result<Vec<f32>> {
    let ratio = 2f64.powf(f64::from(semitones) / 12.0);
    let from = ((f64::from(SAMPLE_RATE_HZ) * ratio / 10.0).round() * 10.0) as u32;
    resample(samples, from, SAMPLE_RATE_HZ)
}

/// The pitch a prepared note sounds at, if known.
pub fn sounding_pitch(p: &Prepared) -> Option<u8> {
    p.pitch
        .map(|m| (i32::from(m) + p.shift_semitones).clamp(0, 127) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitch_shift_moves_the_pitch() {
        let a4: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let up = pitch_shift(&a4, 2).unwrap();
        assert!((up.len() as f32 - 16_000.0 / 2f32.powf(2.0 / 12.0)).abs() < 2.0);
        assert_eq!(crate::pitch::detect(&up).midi(), Some(71));
        let down = pitch_shift(&a4, -12).unwrap();
        assert_eq!(down.len(), 32_000);
        assert_eq!(crate::pitch::detect(&down).midi(), Some(57));
    }
}
