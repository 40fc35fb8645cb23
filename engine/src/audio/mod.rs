//! Sound files in, 16 kHz mono notes out.

mod decode;
mod header;
mod resample;
pub mod wav;

pub use decode::{DEFAULT_MAX_SECS, ReadOptions, SourceFormat, read_note};
pub use resample::resample;

/// The model's sample rate (the one `autoencoder::excitation::SAMPLE_RATE_HZ` names, as
/// a file's rate).
pub const SAMPLE_RATE_HZ: u32 = autoencoder::excitation::SAMPLE_RATE_HZ as u32;

/// Peak below which a note is too quiet to be an instrument sound (−80 dBFS).
pub const SILENT_PEAK: f32 = 1e-4;
/// Peak below which a note is reported as near-silent (−50 dBFS).
pub const QUIET_PEAK: f32 = 3.162e-3;

/// A note read from a sound file: mono, 16 kHz, at most the requested duration.
#[derive(Debug, Clone)]
pub struct Note {
    pub samples: Vec<f32>,
    pub format: SourceFormat,
    /// Largest |sample| of what was read (after mixing to mono).
    pub peak: f32,
}

impl Note {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / f64::from(SAMPLE_RATE_HZ)
    }

    pub fn peak_dbfs(&self) -> f32 {
        20.0 * self.peak.max(1e-10).log10()
    }

    /// Quiet enough to mention (−50 dBFS peak) but not silent.
    pub fn near_silent(&self) -> bool {
        self.peak < QUIET_PEAK
    }
}

pub(crate) fn peak(samples: &[f32]) -> f32 {
    samples.iter().fold(0f32, |m, s| m.max(s.abs()))
}
