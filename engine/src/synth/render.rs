//! From generated samples to a file a musician can use: optional trim of the trailing
//! silence, a short fade-out, a gain that never clips, resampling to the session's rate,
//! and an atomic WAV write.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::audio::wav::{self, WavFormat};
use crate::audio::{SAMPLE_RATE_HZ, resample};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;

/// Output rates offered: the model's own, CD and video/DAW rates.
pub const RATES_HZ: [u32; 3] = [16_000, 44_100, 48_000];

/// The largest peak a render is allowed (−0.2 dBFS), leaving headroom for the
/// inter-sample peaks of a resampled file.
pub const PEAK_LIMIT: f32 = 0.977;
/// Trailing audio quieter than this (−60 dBFS) counts as silence when trimming.
const SILENCE: f32 = 1e-3;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RenderOptions {
    /// Cut the silence after the note's last sound (keeping a 50 ms tail).
    pub trim_silence: bool,
    /// Fade-out length at the end, in milliseconds (0: none). A WaveNet note ends
    /// wherever its embedding ends, often mid-sound; a fade avoids the click.
    pub fade_out_ms: f32,
    pub format: WavFormat,
    pub rate_hz: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self {
            trim_silence: false,
            fade_out_ms: 20.0,
            format: WavFormat::S16,
            rate_hz: SAMPLE_RATE_HZ,
        }
    }
}

/// What [`finish`] did, for the summary.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Finished {
    /// Gain applied to keep the peak at or below [`PEAK_LIMIT`] (1: none).
    pub gain: f32,
    pub trimmed_samples: usize,
    pub duration_secs: f64,
    pub peak_dbfs: f32,
}

/// Trims, fades and scales 16 kHz `audio` in place, then returns it at `rate_hz`.
pub fn finish(audio: Vec<f32>, options: &RenderOptions) -> Result<(Vec<f32>, Finished)> {
    let before = audio.len();
    let (mut out, kept) = shape(audio, options)?;
    let peak = out.iter().fold(0f32, |m, s| m.max(s.abs()));
    let gain = if peak > PEAK_LIMIT {
        PEAK_LIMIT / peak
    } else {
        1.0
    };
    if gain != 1.0 {
        out.iter_mut().for_each(|s| *s *= gain);
    }
    let finished = Finished {
        gain,
        trimmed_samples: before - kept,
        duration_secs: out.len() as f64 / f64::from(options.rate_hz),
        peak_dbfs: 20.0 * (peak * gain).max(1e-10).log10(),
    };
    Ok((out, finished))
}

/// [`finish`] without the gain: trimmed, faded and at `rate_hz`, with the number of
/// 16 kHz samples kept (an instrument sets one gain for all its notes).
pub fn shape(mut audio: Vec<f32>, options: &RenderOptions) -> Result<(Vec<f32>, usize)> {
    if !RATES_HZ.contains(&options.rate_hz) {
        return Err(Error::Audio(format!(
            "output rate {} Hz is not one of 16000, 44100, 48000",
            options.rate_hz
        )));
    }
    if options.trim_silence {
        let tail = SAMPLE_RATE_HZ as usize / 20;
        let last = audio
            .iter()
            .rposition(|s| s.abs() >= SILENCE)
            .map_or(0, |i| i + 1);
        audio.truncate((last + tail).min(audio.len()));
    }
    let fade = ((options.fade_out_ms.max(0.0) / 1000.0) * SAMPLE_RATE_HZ as f32) as usize;
    let fade = fade.min(audio.len());
    let n = audio.len();
    for (i, s) in audio[n - fade..].iter_mut().enumerate() {
        // Raised cosine from 1 to 0.
        let t = (i + 1) as f32 / fade as f32;
        *s *= 0.5 * (1.0 + (std::f32::consts::PI * t).cos());
    }
    Ok((resample(&audio, SAMPLE_RATE_HZ, options.rate_hz)?, n))
}

/// [`finish`]es `audio` and writes it as `path` (atomically; an existing file only with
/// `overwrite`; `write_atomic` refuses an existing file, even one that appears meanwhile).
pub fn write(
    path: &Path,
    audio: Vec<f32>,
    options: &RenderOptions,
    overwrite: Overwrite,
) -> Result<Finished> {
    let (audio, finished) = finish(audio, options).map_err(|e| match e {
        Error::Audio(what) => Error::invalid(path, what),
        other => other,
    })?;
    wav::write(path, &audio, options.rate_hz, options.format, overwrite)?;
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_clips_and_fades_out() {
        let audio: Vec<f32> = (0..16_000).map(|i| 1.5 * (i as f32 * 0.05).sin()).collect();
        let (out, f) = finish(audio, &RenderOptions::default()).unwrap();
        assert!(f.gain < 1.0);
        assert!(out.iter().all(|s| s.abs() <= PEAK_LIMIT + 1e-6));
        assert_eq!(*out.last().unwrap(), 0.0);
        assert_eq!(out.len(), 16_000);
    }

    #[test]
    fn trims_trailing_silence_and_resamples() {
        let mut audio = vec![0.5f32; 8_000];
        audio.extend(vec![0.0; 8_000]);
        let options = RenderOptions {
            trim_silence: true,
            rate_hz: 48_000,
            ..RenderOptions::default()
        };
        let (out, f) = finish(audio, &options).unwrap();
        assert_eq!(f.trimmed_samples, 8_000 - 800);
        assert_eq!(out.len(), 8_800 * 3);
        assert_eq!(f.gain, 1.0);
        assert!(
            finish(
                vec![0.0; 10],
                &RenderOptions {
                    rate_hz: 22_050,
                    ..options
                }
            )
            .is_err()
        );
    }
}
