//! `timbrel eval`: how well a model reconstructs notes it is given.
//!
//! - Teacher-forced NLL (nats and bits per sample) of the notes.
//! - A full encode → autoregressive decode reconstruction of each note, scored by
//!   - pitch accuracy: the share of pitched originals whose reconstruction's f0 (YIN) is
//!     within 50 cents of the original's;
//!   - log-mel distance: the mean |dB| difference of 64-band mel spectrograms (1024-point
//!     STFT, hop 256, Hann; power in dB, both clipped 80 dB below the original's peak).

use std::ops::ControlFlow;
use std::sync::Arc;

use autoencoder::{Sampling, WaveNetAutoencoder, mulaw};
use candle_core::{DType, Tensor};
use realfft::RealFftPlanner;
use serde::Serialize;

use crate::audio::SAMPLE_RATE_HZ;
use crate::error::Result;
use crate::pitch::{self, Pitch};

const N_FFT: usize = 1024;
const HOP: usize = 256;
const MEL_BANDS: usize = 64;
const DYNAMIC_RANGE_DB: f32 = 80.0;

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

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
        let bins = N_FFT / 2 + 1;
        let nyquist = SAMPLE_RATE_HZ as f32 / 2.0;
        let top = hz_to_mel(nyquist);
        let edges: Vec<f32> = (0..MEL_BANDS + 2)
            .map(|i| mel_to_hz(top * i as f32 / (MEL_BANDS + 1) as f32))
            .collect();
        let filters = (0..MEL_BANDS)
            .map(|b| {
                let (lo, mid, hi) = (edges[b], edges[b + 1], edges[b + 2]);
                (0..bins)
                    .map(|k| {
                        let f = k as f32 * nyquist / (bins - 1) as f32;
                        if f <= lo || f >= hi {
                            0.0
                        } else if f <= mid {
                            (f - lo) / (mid - lo)
                        } else {
                            (hi - f) / (hi - mid)
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            fft,
            window,
            filters,
        }
    }

    /// `[frame][band]` power in dB.
    pub fn db(&self, samples: &[f32]) -> Vec<[f32; MEL_BANDS]> {
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
                        let p: f32 = filter.iter().zip(&power).map(|(w, p)| w * p).sum();
                        *o = 10.0 * (p + 1e-10).log10();
                    }
                }
                out
            })
            .collect()
    }

    /// Mean |dB| difference of `candidate` from `reference`, both clipped 80 dB below the
    /// reference's peak; the shorter is padded with silence.
    pub fn distance_db(&self, reference: &[f32], candidate: &[f32]) -> f32 {
        let len = reference.len().max(candidate.len());
        let pad = |x: &[f32]| {
            let mut v = x.to_vec();
            v.resize(len, 0.0);
            v
        };
        let (a, b) = (self.db(&pad(reference)), self.db(&pad(candidate)));
        let peak = a
            .iter()
            .flatten()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        let floor = peak - DYNAMIC_RANGE_DB;
        let (mut total, mut count) = (0f64, 0usize);
        for (fa, fb) in a.iter().zip(&b) {
            for (x, y) in fa.iter().zip(fb) {
                total += f64::from((x.max(floor) - y.max(floor)).abs());
                count += 1;
            }
        }
        (total / count.max(1) as f64) as f32
    }
}

/// Whether `candidate`'s pitch is within 50 cents of `reference`'s; `None` when the
/// reference is unpitched (it does not count).
pub fn pitch_match(reference: &[f32], candidate: &[f32]) -> Option<bool> {
    let Pitch::Detected { hz: f0, .. } = pitch::detect(reference) else {
        return None;
    };
    Some(match pitch::detect(candidate) {
        Pitch::Detected { hz, .. } => (1200.0 * (hz / f0).log2()).abs() <= 50.0,
        _ => false,
    })
}

/// The notes as the network's input `[notes, len]`, all cut to the longest length that
/// every note has and that is a multiple of the hop; `None` when that length is zero.
fn scaled_batch(
    hop: usize,
    device: &candle_core::Device,
    notes: &[Vec<f32>],
) -> Result<Option<(Tensor, usize)>> {
    let len = notes.iter().map(Vec::len).min().unwrap_or(0) / hop * hop;
    if len == 0 {
        return Ok(None);
    }
    let flat: Vec<f32> = notes
        .iter()
        .flat_map(|n| n[..len].iter().map(|&x| mulaw::scaled(x)))
        .collect();
    let x = Tensor::from_vec(flat, (notes.len(), len), device).map_err(autoencoder::Error::from)?;
    Ok(Some((x, len)))
}

/// Teacher-forced NLL (nats per sample) of whole notes, `batch` at a time.
pub fn nll(
    model: &WaveNetAutoencoder,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    batch: usize,
) -> Result<f64> {
    let c = model.config();
    let shape = (c.ae_hop_length, c.excitation_harmonics);
    nll_with(
        &|x, e| model.loss_excited(x, None, e),
        shape,
        model.device(),
        notes,
        f0_hz,
        batch,
    )
}

/// [`nll`] of a SampleRNN (teacher-forced from zero state over each whole note).
pub fn samplernn_nll(
    model: &autoencoder::samplernn::SampleRnn,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    batch: usize,
) -> Result<f64> {
    let c = model.config();
    let shape = (c.encoder.ae_hop_length, c.excitation_harmonics);
    nll_with(
        &|x, e| model.loss(x, None, e),
        shape,
        model.device(),
        notes,
        f0_hz,
        batch,
    )
}

/// The mean of `loss(scaled, excitation)` (a mean NLL per sample) over `notes`, `batch`
/// at a time, for a model with `(hop, harmonics)`.
fn nll_with(
    loss: &dyn Fn(&Tensor, Option<&Tensor>) -> autoencoder::Result<Tensor>,
    (hop, harmonics): (usize, usize),
    device: &candle_core::Device,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    batch: usize,
) -> Result<f64> {
    let (mut total, mut count) = (0f64, 0usize);
    let batch = batch.max(1);
    for (i, chunk) in notes.chunks(batch).enumerate() {
        let Some((x, len)) = scaled_batch(hop, device, chunk)? else {
            continue;
        };
        let f0 = f0_hz.map(|f| &f[i * batch..i * batch + chunk.len()]);
        let excitation = excitation_of(harmonics, device, f0, len, &[])?;
        let loss = loss(&x, excitation.as_ref())?
            .to_dtype(DType::F64)
            .and_then(|l| l.to_scalar::<f64>())
            .map_err(autoencoder::Error::from)?;
        total += loss * (chunk.len() * len) as f64;
        count += chunk.len() * len;
    }
    Ok(total / count.max(1) as f64)
}

/// Encodes `notes` (16 kHz, lengths multiples of the hop) and decodes them back,
/// all voices in one batch. `progress(samples_done_per_voice)`.
pub fn reconstruct(
    model: &WaveNetAutoencoder,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    sampling: Sampling,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let generator = crate::synth::wavenet_generator(model)?;
    let coder = Coder {
        encode: &|x| model.encode(x),
        generator: &*generator,
        device: model.device(),
    };
    reconstruct_with(&coder, notes, f0_hz, sampling, progress)
}

/// A family's encoder and generator, as [`reconstruct_with`] takes them.
pub struct Coder<'a> {
    /// μ-law-scaled notes `[notes, len]` → embedding `[notes, frames, bottleneck]`.
    pub encode: &'a dyn Fn(&Tensor) -> autoencoder::Result<Tensor>,
    pub generator: &'a dyn autoencoder::Generator,
    /// Where the encoder's tensors live.
    pub device: &'a candle_core::Device,
}

impl std::fmt::Debug for Coder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coder")
            .field("generator", &self.generator)
            .finish_non_exhaustive()
    }
}

/// [`reconstruct`] for any family: `coder` encodes the notes and generates them back.
pub fn reconstruct_with(
    coder: &Coder,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    sampling: Sampling,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let hop = coder.generator.hop_length();
    let Some((x, len)) = scaled_batch(hop, coder.device, notes)? else {
        return Ok(vec![Vec::new(); notes.len()]);
    };
    let curves: Option<Vec<f32>> = f0_hz.map(|f0| {
        f0.iter()
            .flat_map(|&hz| std::iter::repeat_n(hz, len))
            .collect()
    });
    let encoding: Vec<f32> = (coder.encode)(&x)?
        .to_device(&candle_core::Device::Cpu)
        .and_then(|e| e.flatten_all())
        .and_then(|e| e.to_vec1())
        .map_err(autoencoder::Error::from)?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let streams: Vec<u64> = (0..notes.len() as u64).collect();
    let request = autoencoder::Request {
        encoding: &encoding,
        f0: curves.as_deref(),
        streams: &streams,
        sampling,
        threads,
    };
    crate::synth::run_generator(
        coder.generator,
        &request,
        &autoencoder::Control::default(),
        &mut |p| {
            // Per voice, as before: the voices advance together.
            progress(p.done as usize / notes.len().max(1));
            ControlFlow::Continue(())
        },
    )
}

/// The figures of one evaluation.
/// The excitation `[notes, len, 2K]` of notes held at `f0_hz` (one per note, Hz; 0 =
/// unpitched), each from sample `offsets[i]` of its note (empty: all from the start);
/// `None` when the model has no excitation or no f0 is given.
pub fn excitation_tensor(
    model: &WaveNetAutoencoder,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    let k = model.config().excitation_harmonics;
    excitation_of(k, model.device(), f0_hz, len, offsets)
}

/// [`excitation_tensor`] for `k` harmonics on `device` (any family).
pub fn excitation_of(
    k: usize,
    device: &candle_core::Device,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    excitation_partials_of((k, 0), device, f0_hz, len, offsets)
}

/// [`excitation_of`] with `(harmonics, subpartials)`: the `2K + 2N` channels of
/// [`autoencoder::excitation::excitation_partials`] (a student with sub-partials).
pub fn excitation_partials_of(
    (k, n): (usize, usize),
    device: &candle_core::Device,
    f0_hz: Option<&[f32]>,
    len: usize,
    offsets: &[usize],
) -> Result<Option<Tensor>> {
    use autoencoder::excitation::{Oscillator, excitation_partials};
    let Some(f0_hz) = f0_hz.filter(|_| k > 0) else {
        return Ok(None);
    };
    let channels = 2 * (k + n);
    let mut all = Vec::with_capacity(f0_hz.len() * len * channels);
    for (i, &hz) in f0_hz.iter().enumerate() {
        let start = Oscillator::at_offset(hz, offsets.get(i).copied().unwrap_or(0));
        all.extend(excitation_partials(&vec![hz; len], k, n, start));
    }
    let t = Tensor::from_vec(all, (f0_hz.len(), len, channels), device)
        .map_err(autoencoder::Error::from)?;
    Ok(Some(t))
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub notes: usize,
    /// Teacher-forced NLL; `None` for a model that has no likelihood to score (the
    /// Parallel WaveNet student trained on spectra).
    pub nll_nats: Option<f64>,
    pub nll_bits: Option<f64>,
    pub reconstructed: usize,
    /// Share of pitched originals reconstructed within 50 cents (`None`: none pitched).
    pub pitch_accuracy: Option<f64>,
    pub pitched_notes: usize,
    pub log_mel_distance_db: f64,
    /// Per reconstructed note: (name, pitch matched, log-mel distance).
    pub per_note: Vec<NoteScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NoteScore {
    pub note: String,
    pub pitch_match: Option<bool>,
    pub log_mel_distance_db: f32,
}

/// Scores reconstructions against their originals.
pub fn score(
    names: &[String],
    originals: &[Vec<f32>],
    reconstructions: &[Vec<f32>],
) -> (Option<f64>, usize, f64, Vec<NoteScore>) {
    let mel = MelSpectrogram::new();
    let per_note: Vec<NoteScore> = names
        .iter()
        .zip(originals.iter().zip(reconstructions))
        .map(|(name, (o, r))| NoteScore {
            note: name.clone(),
            pitch_match: pitch_match(o, r),
            log_mel_distance_db: mel.distance_db(&o[..r.len().min(o.len())], r),
        })
        .collect();
    let pitched: Vec<bool> = per_note.iter().filter_map(|n| n.pitch_match).collect();
    let accuracy = (!pitched.is_empty())
        .then(|| pitched.iter().filter(|&&m| m).count() as f64 / pitched.len() as f64);
    let distance = per_note
        .iter()
        .map(|n| f64::from(n.log_mel_distance_db))
        .sum::<f64>()
        / per_note.len().max(1) as f64;
    (accuracy, pitched.len(), distance, per_note)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pitch_matches_within_50_cents() {
        let a = note(220.0);
        assert_eq!(pitch_match(&a, &note(224.0)), Some(true)); // 31 cents
        assert_eq!(pitch_match(&a, &note(233.0)), Some(false)); // 99 cents
        assert_eq!(pitch_match(&a, &vec![0.0; 32_000]), Some(false));
        assert_eq!(pitch_match(&vec![0.0; 32_000], &a), None);
    }
}
