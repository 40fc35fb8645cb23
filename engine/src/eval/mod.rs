//! `timbrel eval`: how well a model reconstructs notes it is given.
//!
//! - Teacher-forced NLL (nats and bits per sample) of the notes.
//! - A full encode → decode (free-running) reconstruction of each note, scored by
//!   - pitch accuracy: the share of pitched originals whose reconstruction's f0 (YIN) is
//!     within 50 cents of the original's (not of notes the dataset marks unpitched);
//!   - log-mel distance: the mean |dB| difference of 64-band mel spectrograms (1024-point
//!     STFT, hop 256, Hann; power in dB, both clipped 80 dB below the original's peak
//!     and, band by band, at the rounding noise of a 16-bit original) (`mel.rs`);
//!
//!   both also per instrument, worst first (`instruments.rs`).
//! - Blends (`blend.rs`): pairs of notes of two instruments at one pitch, blended 50/50,
//!   scored on pitch, loudness against the sources and distance from the sources and from
//!   their spectral average.

use candle_core::DType;
use serde::Serialize;

use crate::error::Result;
use crate::models::excitation::excitation_of;
use crate::models::{ModelFamily, scaled_tensor};

mod blend;
mod instruments;
mod mel;

pub use blend::{
    BlendFigures, BlendReport, BlendScore, BlendSummary, PairNote, pair_notes, rms_db, score_blend,
    summarise_blends,
};
pub use instruments::{InstrumentScore, by_instrument, worst_first};
pub use mel::{
    MEL_BANDS, MelFrame, MelSpectrogram, pitch_match, resolution_db, spectral_distance_db, to_db,
};

/// The mean teacher-forced NLL per sample of any family over `notes` (each batch cut to
/// the longest multiple of the hop all its notes have), `batch` at a time; `None` for a
/// family with no likelihood (the student). Notes too short for one frame score 0.
pub fn family_nll(
    family: &dyn ModelFamily,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    batch: usize,
) -> Result<Option<f64>> {
    let (hop, harmonics, device) = (family.hop(), family.excitation_harmonics(), family.device());
    let (mut total, mut count) = (0f64, 0usize);
    let batch = batch.max(1);
    for (i, chunk) in notes.chunks(batch).enumerate() {
        let len = chunk.iter().map(Vec::len).min().unwrap_or(0) / hop * hop;
        if len == 0 {
            continue;
        }
        let cut: Vec<&[f32]> = chunk.iter().map(|n| &n[..len]).collect();
        let x = scaled_tensor(&cut, device)?;
        let f0 = f0_hz.map(|f| &f[i * batch..i * batch + chunk.len()]);
        let excitation = excitation_of(harmonics, device, f0, len, &[])?;
        let Some(loss) = family.nll_loss(&x, excitation.as_ref()) else {
            return Ok(None);
        };
        let loss = loss?
            .to_dtype(DType::F64)
            .and_then(|l| l.to_scalar::<f64>())
            .map_err(autoencoder::Error::from)?;
        total += loss * (chunk.len() * len) as f64;
        count += chunk.len() * len;
    }
    Ok(Some(total / count.max(1) as f64))
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

/// Scores reconstructions against their originals. A note its dataset marks unpitched
/// (`unpitched[i]`, a drum: it has no pitch to be in tune with) is scored on its
/// spectrum only; the others on pitch too where YIN hears one in the original.
pub fn score(
    names: &[String],
    originals: &[Vec<f32>],
    reconstructions: &[Vec<f32>],
    unpitched: &[bool],
) -> (Option<f64>, usize, f64, Vec<NoteScore>) {
    let mel = MelSpectrogram::new();
    let per_note: Vec<NoteScore> = names
        .iter()
        .zip(originals.iter().zip(reconstructions))
        .enumerate()
        .map(|(i, (name, (o, r)))| NoteScore {
            note: name.clone(),
            pitch_match: if unpitched.get(i).copied().unwrap_or(false) {
                None
            } else {
                pitch_match(o, r)
            },
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

    #[test]
    fn notes_marked_unpitched_are_not_scored_on_pitch() {
        let tone: Vec<f32> = (0..16_000)
            .map(|i| 0.5 * (std::f32::consts::TAU * 220.0 * i as f32 / 16_000.0).sin())
            .collect();
        let octave: Vec<f32> = (0..16_000)
            .map(|i| 0.5 * (std::f32::consts::TAU * 440.0 * i as f32 / 16_000.0).sin())
            .collect();
        let names = vec!["a".to_string(), "b".to_string()];
        let originals = vec![tone.clone(), tone.clone()];
        let recons = vec![tone, octave];
        let (accuracy, pitched, _, notes) = score(&names, &originals, &recons, &[]);
        assert_eq!((accuracy, pitched), (Some(0.5), 2));
        assert_eq!(notes[1].pitch_match, Some(false));
        // The second marked unpitched (a drum): its spectrum counts, its pitch does not.
        let (accuracy, pitched, distance, notes) =
            score(&names, &originals, &recons, &[false, true]);
        assert_eq!((accuracy, pitched), (Some(1.0), 1));
        assert_eq!(notes[1].pitch_match, None);
        assert!(distance > 1.0, "{distance}");
    }
}
