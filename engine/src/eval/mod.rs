//! `timbrel eval`: how well a model reconstructs notes it is given.
//!
//! - Teacher-forced NLL (nats and bits per sample) of the notes.
//! - A full encode → decode (free-running) reconstruction of each note, scored by
//!   - pitch accuracy: the share of pitched originals whose reconstruction's f0 (YIN) is
//!     within 50 cents of the original's;
//!   - log-mel distance: the mean |dB| difference of 64-band mel spectrograms (1024-point
//!     STFT, hop 256, Hann; power in dB, both clipped 80 dB below the original's peak)
//!     (`mel.rs`);
//!
//!   both also per instrument, worst first (`instruments.rs`).
//! - Blends (`blend.rs`): pairs of notes of two instruments at one pitch, blended 50/50,
//!   scored on pitch, loudness against the sources and distance from the sources and from
//!   their spectral average.

use std::ops::ControlFlow;

use autoencoder::{Sampling, WaveNetAutoencoder, mulaw};
use candle_core::{DType, Tensor};
use serde::Serialize;

use crate::error::Result;

mod blend;
mod instruments;
mod mel;

pub use blend::{
    BlendFigures, BlendReport, BlendScore, BlendSummary, PairNote, pair_notes, rms_db, score_blend,
    summarise_blends,
};
pub use instruments::{InstrumentScore, by_instrument, worst_first};
pub use mel::{MEL_BANDS, MelFrame, MelSpectrogram, pitch_match, spectral_distance_db, to_db};

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

/// The figures of one evaluation.
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
    /// Per instrument, worst first.
    pub instruments: Vec<InstrumentScore>,
    /// The 50/50 blends of pairs of notes, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blends: Option<BlendReport>,
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
