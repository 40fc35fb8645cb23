//! The two measures every score of `timbrel eval` is made of: the log-mel distance of two
//! sounds and whether one is at the other's pitch.

use std::sync::Arc;

use realfft::RealFftPlanner;

use crate::pitch::{self, Pitch};

const N_FFT: usize = 1024;
const HOP: usize = 256;
/// Bands of the mel spectrogram.
pub const MEL_BANDS: usize = 64;
const DYNAMIC_RANGE_DB: f32 = 80.0;
/// How far over the mean level of a 16-bit file's rounding noise [`resolution_db`] lies.
const NOISE_MARGIN_DB: f32 = 6.0;

/// One frame of a mel spectrogram, a value per band.
pub type MelFrame = [f32; MEL_BANDS];

/// Log-mel spectrograms: 64 triangular bands (HTK mel scale) from 0 to 8 kHz.
pub struct MelSpectrogram {
    fft: Arc<dyn realfft::RealToComplex<f32>>,
    window: Vec<f32>,
    /// `[band][bin]` weights.
    filters: Vec<Vec<f32>>,
}

impl std::fmt::Debug for MelSpectrogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MelSpectrogram")
    }
}

impl Default for MelSpectrogram {
    fn default() -> Self {
        Self::new()
    }
}

impl MelSpectrogram {
    pub fn new() -> Self {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        let window = (0..N_FFT)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / N_FFT as f32).cos())
            .collect();
        // Built as the student's measured envelope builds its own bands.
        let filters = autoencoder::student::envelope::mel_filters(MEL_BANDS, N_FFT);
        Self {
            fft,
            window,
            filters,
        }
    }

    /// `[frame][band]` power (linear).
    pub fn power(&self, samples: &[f32]) -> Vec<MelFrame> {
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let frames = samples.len().saturating_sub(N_FFT) / HOP + 1;
        (0..frames)
            .map(|f| {
                for (i, x) in input.iter_mut().enumerate() {
                    *x = samples.get(f * HOP + i).copied().unwrap_or(0.0) * self.window[i];
                }
                let mut out = [0f32; MEL_BANDS];
                if self.fft.process(&mut input, &mut spectrum).is_ok() {
                    let power: Vec<f32> = spectrum.iter().map(|c| c.norm_sqr()).collect();
                    for (o, filter) in out.iter_mut().zip(&self.filters) {
                        *o = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
                    }
                }
                out
            })
            .collect()
    }

    /// `[frame][band]` power in dB.
    pub fn db(&self, samples: &[f32]) -> Vec<MelFrame> {
        to_db(&self.power(samples))
    }

    /// Mean |dB| difference of `candidate` from `reference`, both clipped 80 dB below the
    /// reference's peak; the shorter is padded with silence.
    pub fn distance_db(&self, reference: &[f32], candidate: &[f32]) -> f32 {
        let len = reference.len().max(candidate.len());
        let (a, b) = (
            self.db(&padded(reference, len)),
            self.db(&padded(candidate, len)),
        );
        spectral_distance_db(&a, &b)
    }
}

/// `x` followed by silence up to `len` samples.
pub(crate) fn padded(x: &[f32], len: usize) -> Vec<f32> {
    let mut v = x.to_vec();
    v.resize(len.max(x.len()), 0.0);
    v
}

/// Power spectrogram → dB.
pub fn to_db(power: &[MelFrame]) -> Vec<MelFrame> {
    power
        .iter()
        .map(|frame| frame.map(|p| 10.0 * (p + 1e-10).log10()))
        .collect()
}

/// [`MelSpectrogram::distance_db`] of two dB spectrograms: the mean |dB| difference of
/// `candidate` from `reference` over the frames both have, both clipped 80 dB below the
/// reference's peak, and in each band no lower than the originals' resolution
/// ([`resolution_db`]).
pub fn spectral_distance_db(reference: &[MelFrame], candidate: &[MelFrame]) -> f32 {
    let peak = reference
        .iter()
        .flatten()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let floors = resolution_db().map(|r| r.max(peak - DYNAMIC_RANGE_DB));
    let (mut total, mut count) = (0f64, 0usize);
    for (fa, fb) in reference.iter().zip(candidate) {
        for ((x, y), &floor) in fa.iter().zip(fb).zip(&floors) {
            total += f64::from((x.max(floor) - y.max(floor)).abs());
            count += 1;
        }
    }
    (total / count.max(1) as f64) as f32
}

/// Per band, the level (dB, as [`MelSpectrogram::db`] reads it) under which a 16-bit
/// file, the format every note a dataset holds is read from, holds only its rounding
/// noise: uniform noise of one step's width (variance 1 / (12 · 32768²)) gives each bin
/// `σ² Σ w²` on average, each band that times its filter's weights, and a frame's reading
/// of it exceeds 4 times (6 dB over) its average in under 2 % of frames (an exponential
/// reading, the worst case, a band of one bin). Under it an original says nothing: a
/// quiet note's tail is its own rounding noise or digital silence (a FluidR3 note at
/// velocity 25 peaks near −40 dBFS, and 80 dB under its peak lies 30 dB under its last
/// bit). Scored down there, a
/// blend was "nearer" one source than the sources' average by its tail alone (session
/// 19: unclipped, a bass and a keyboard at C4 scored 6.58 / 9.18 dB from the sources and
/// 6.55 from their average; clipped here, 5.35 / 4.23 and 2.97), and a render exactly at
/// an original's noise floor scored differently whether or not it was itself rounded.
pub fn resolution_db() -> &'static MelFrame {
    static FLOOR: std::sync::OnceLock<MelFrame> = std::sync::OnceLock::new();
    FLOOR.get_or_init(|| {
        let variance = 1.0 / (12.0 * 32_768f64 * 32_768f64);
        let window_power: f64 = (0..N_FFT)
            .map(|i| {
                let w = 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64).cos();
                w * w
            })
            .sum();
        let filters = autoencoder::student::envelope::mel_filters(MEL_BANDS, N_FFT);
        std::array::from_fn(|b| {
            let weight: f64 = filters[b].iter().map(|&w| f64::from(w)).sum();
            (10.0 * (variance * window_power * weight).log10()) as f32 + NOISE_MARGIN_DB
        })
    })
}

/// Whether `candidate`'s pitch is within 50 cents of `reference`'s; `None` when the
/// reference is unpitched (it does not count).
pub fn pitch_match(reference: &[f32], candidate: &[f32]) -> Option<bool> {
    let Pitch::Detected { hz: f0, .. } = pitch::detect(reference) else {
        return None;
    };
    Some(match pitch::detect(candidate) {
        Pitch::Detected { hz, .. } => within_50_cents(hz, f0),
        _ => false,
    })
}

/// Whether `hz` is within 50 cents of `f0_hz`.
pub(crate) fn within_50_cents(hz: f32, f0_hz: f32) -> bool {
    (1200.0 * (hz / f0_hz).log2()).abs() <= 50.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoencoder::mulaw;

    fn note(hz: f32) -> Vec<f32> {
        (0..32_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                // Harmonics up to 7.5 kHz, as a bright instrument has.
                0.3 * (-t * 2.0).exp()
                    * (1..)
                        .take_while(|&h| hz * h as f32 <= 7500.0)
                        .map(|h| (2.0 * std::f32::consts::PI * hz * h as f32 * t).sin() / h as f32)
                        .sum::<f32>()
            })
            .collect()
    }

    #[test]
    fn the_distance_ranks_copies_sines_and_silence() {
        let mel = MelSpectrogram::new();
        let original = note(220.0);
        let copy: Vec<f32> = original
            .iter()
            .map(|&x| mulaw::inv_mu_law(mulaw::mu_law(x)))
            .collect();
        let sine: Vec<f32> = (0..32_000)
            .map(|i| 0.3 * (2.0 * std::f32::consts::PI * 220.0 * i as f32 / 16_000.0).sin())
            .collect();
        assert_eq!(mel.distance_db(&original, &original), 0.0);
        let d_copy = mel.distance_db(&original, &copy);
        let d_sine = mel.distance_db(&original, &sine);
        let d_silence = mel.distance_db(&original, &vec![0.0; 32_000]);
        // On real FluidR3 notes: copy 4.2 dB, sine 19.2 dB, silence 19.8 dB (MODEL.md).
        assert!(
            d_copy < 0.4 * d_sine,
            "μ-law copy {d_copy} vs sine {d_sine}"
        );
        assert!(d_sine < d_silence, "sine {d_sine} vs silence {d_silence}");
    }

    #[test]
    fn nothing_under_a_16_bit_originals_last_bit_is_scored() {
        let mel = MelSpectrogram::new();
        // A quiet note (peak near −40 dBFS, as FluidR3 plays velocity 25) that its 16-bit
        // file ends in digital silence.
        let original: Vec<f32> = note(220.0)
            .iter()
            .enumerate()
            .map(|(i, x)| {
                let x = if i < 16_000 { 0.03 * x } else { 0.0 };
                (x * 32_768.0).round() / 32_768.0
            })
            .collect();
        let with_noise = |amplitude: f32| -> Vec<f32> {
            use rand::{RngExt, SeedableRng};
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            original
                .iter()
                .map(|&x| x + amplitude / 32_768.0 * (2.0 * rng.random::<f32>() - 1.0))
                .collect()
        };
        // Noise as loud as the file's own rounding, in its tail, is not told apart from
        // silence; 20 dB above it is.
        let rounding = mel.distance_db(&original, &with_noise(0.5));
        let louder = mel.distance_db(&original, &with_noise(5.0));
        assert!(rounding < 0.1, "{rounding}");
        assert!(louder > 1.0, "{louder}");
        // The floor is 6 dB over that noise's level: white noise of the rounding's
        // variance reads within a dB of that level in every band, on average.
        let noise = with_noise(0.5);
        let db = mel.db(&noise[20_000..]);
        for (b, &floor) in resolution_db().iter().enumerate() {
            let power = db.iter().map(|f| 10f32.powf(f[b] / 10.0)).sum::<f32>() / db.len() as f32;
            let level = 10.0 * power.log10();
            let mean = floor - NOISE_MARGIN_DB;
            assert!((level - mean).abs() < 1.0, "band {b}: {level} vs {mean}");
        }
    }

    #[test]
    fn pitch_matches_within_50_cents() {
        let a = note(220.0);
        assert_eq!(pitch_match(&a, &note(224.0)), Some(true)); // 31 cents
        assert_eq!(pitch_match(&a, &note(233.0)), Some(false)); // 99 cents
        assert_eq!(pitch_match(&a, &vec![0.0; 32_000]), Some(false));
        assert_eq!(pitch_match(&vec![0.0; 32_000], &a), None);
    }
}
