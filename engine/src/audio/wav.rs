//! WAV files: writing (16-bit, 24-bit, 32-bit float) and the fast path for reading
//! NSynth's 16-bit notes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};

/// Sample format of a written WAV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WavFormat {
    #[default]
    S16,
    S24,
    F32,
}

impl WavFormat {
    fn spec(self, sample_rate_hz: u32) -> hound::WavSpec {
        let (bits_per_sample, sample_format) = match self {
            Self::S16 => (16, hound::SampleFormat::Int),
            Self::S24 => (24, hound::SampleFormat::Int),
            Self::F32 => (32, hound::SampleFormat::Float),
        };
        hound::WavSpec {
            channels: 1,
            sample_rate: sample_rate_hz,
            bits_per_sample,
            sample_format,
        }
    }
}

/// Writes mono `samples` (clipped to [-1, 1]) as a WAV, atomically.
pub fn write(
    path: &Path,
    samples: &[f32],
    sample_rate_hz: u32,
    format: WavFormat,
    overwrite: Overwrite,
) -> Result<()> {
    write_atomic(path, overwrite, |out| {
        let mut w = hound::WavWriter::new(out, format.spec(sample_rate_hz))
            .map_err(std::io::Error::other)?;
        for &s in samples {
            let s = s.clamp(-1.0, 1.0);
            // Full scale is 2^(bits−1), as readers divide by it; +1.0 clamps to the
            // largest code.
            match format {
                WavFormat::S16 => w.write_sample((s * 32_768.0).round().min(32_767.0) as i16),
                WavFormat::S24 => w.write_sample((s * 8_388_608.0).round().min(8_388_607.0) as i32),
                WavFormat::F32 => w.write_sample(s),
            }
            .map_err(std::io::Error::other)?;
        }
        w.finalize().map_err(std::io::Error::other)
    })
}

/// Reads a 16-bit mono WAV of at most `max_frames` frames at `sample_rate_hz` (NSynth's
/// layout), without the generic decoder's resampling. Other formats are errors.
pub fn read_pcm16_mono(path: &Path, sample_rate_hz: u32, max_frames: usize) -> Result<Vec<f32>> {
    let bad = |what: String| Error::invalid(path, what);
    let reader = hound::WavReader::open(path).map_err(|e| match e {
        hound::Error::IoError(error) => Error::Read {
            path: path.to_path_buf(),
            error,
        },
        other => bad(format!("not a WAV file we can read ({other})")),
    })?;
    let spec = reader.spec();
    if spec.channels != 1
        || spec.bits_per_sample != 16
        || spec.sample_format != hound::SampleFormat::Int
        || spec.sample_rate != sample_rate_hz
    {
        return Err(bad(format!(
            "expected 16-bit mono {sample_rate_hz} Hz, found {}-bit {} ch {} Hz",
            spec.bits_per_sample, spec.channels, spec.sample_rate
        )));
    }
    let len = (reader.len() as usize).min(max_frames);
    let mut out = Vec::with_capacity(len);
    for s in reader.into_samples::<i16>().take(len) {
        let s = s.map_err(|e| bad(format!("truncated or corrupt audio data ({e})")))?;
        out.push(f32::from(s) / 32768.0);
    }
    if out.len() < len {
        return Err(bad("truncated audio data".into()));
    }
    Ok(out)
}
