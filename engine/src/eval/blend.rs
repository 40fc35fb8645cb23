//! Blends as `timbrel eval` scores them: pairs of notes of two instruments at one pitch,
//! each blended 50/50 through the synthesizer, and how the blend stands to its sources.
//!
//! A blend should be in tune, as loud as its sources, and nearer their spectral average
//! (the mean of the two sources' mel power spectrograms) than either source alone.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::mel::{MelSpectrogram, padded, spectral_distance_db, to_db, within_50_cents};
use crate::pitch::{self, Pitch};

/// A note that may be paired: its instrument, pitch and velocity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairNote {
    pub instrument: u32,
    pub pitch: u8,
    pub velocity: u8,
}

/// Up to `n` pairs `(i, j)` of `notes` (indices, `i < j`) at the same pitch and of two
/// different instruments, drawn deterministically from `seed`.
///
/// One at a time, each the pair that (in this order) uses the instruments used least so
/// far, has the nearest velocities (velocity layers differ in timbre, not just level, so a
/// blend of like velocities compares like with like), and is at the pitch used least so
/// far; ties go to the seed's shuffle. Fewer than `n` when the notes hold fewer pairs.
pub fn pair_notes(notes: &[PairNote], n: usize, seed: u64) -> Vec<(usize, usize)> {
    let mut by_pitch: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
    for (i, note) in notes.iter().enumerate() {
        by_pitch.entry(note.pitch).or_default().push(i);
    }
    let mut pairs: Vec<(usize, usize)> = by_pitch
        .values()
        .flat_map(|group| {
            group.iter().enumerate().flat_map(move |(k, &i)| {
                group[k + 1..]
                    .iter()
                    .filter(move |&&j| notes[i].instrument != notes[j].instrument)
                    .map(move |&j| (i, j))
            })
        })
        .collect();
    pairs.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut instrument_uses: BTreeMap<u32, usize> = BTreeMap::new();
    let mut pitch_uses: BTreeMap<u8, usize> = BTreeMap::new();
    let mut chosen = Vec::with_capacity(n.min(pairs.len()));
    while chosen.len() < n {
        let uses = |i: usize| {
            instrument_uses
                .get(&notes[i].instrument)
                .copied()
                .unwrap_or(0)
        };
        let Some(best) = pairs
            .iter()
            .enumerate()
            .min_by_key(|&(k, &(i, j))| {
                (
                    uses(i) + uses(j),
                    notes[i].velocity.abs_diff(notes[j].velocity),
                    pitch_uses.get(&notes[i].pitch).copied().unwrap_or(0),
                    k,
                )
            })
            .map(|(k, _)| k)
        else {
            break;
        };
        let (i, j) = pairs.swap_remove(best);
        // swap_remove moved the last pair into `best`: the order of the rest is still
        // the seed's, bar that one, which keeps the draw deterministic.
        for note in [i, j] {
            *instrument_uses.entry(notes[note].instrument).or_default() += 1;
        }
        *pitch_uses.entry(notes[i].pitch).or_default() += 1;
        chosen.push((i, j));
    }
    chosen
}

/// How one blend stands to its two sources.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlendFigures {
    /// Whether the blend's pitch (YIN) is within 50 cents of the pitch it was asked to
    /// play, or of a source's own YIN pitch (where YIN hears a source an octave off, as
    /// it does organs with a strong sub-octave, the same reading on the blend is YIN's
    /// error, not the blend's: [`super::pitch_match`] compares a reconstruction with its
    /// original's reading the same way).
    pub pitch_match: bool,
    /// The blend's RMS level (dB) less the mean of the two sources' RMS levels (dB):
    /// −6 is a blend 6 dB quieter than its sources.
    pub loudness_error_db: f32,
    /// Log-mel distance of the blend from each source.
    pub distance_a_db: f32,
    pub distance_b_db: f32,
    /// Log-mel distance of the blend from the sources' spectral average (the mean of
    /// their mel power spectrograms).
    pub distance_average_db: f32,
    /// Whether the blend is nearer the average than it is to either source.
    pub nearer_average: bool,
}

/// RMS level in dB (of full scale); silence is −120 dB.
pub fn rms_db(x: &[f32]) -> f32 {
    let power = x.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / x.len().max(1) as f64;
    (10.0 * (power + 1e-12).log10()) as f32
}

/// Scores `blend`, asked to play `pitch_hz`, against its sources `a` and `b` (all 16 kHz;
/// the shorter are padded with silence to the longest).
pub fn score_blend(
    mel: &MelSpectrogram,
    a: &[f32],
    b: &[f32],
    blend: &[f32],
    pitch_hz: f32,
) -> BlendFigures {
    let len = a.len().max(b.len()).max(blend.len());
    let (a, b, blend) = (padded(a, len), padded(b, len), padded(blend, len));
    let (pa, pb) = (mel.power(&a), mel.power(&b));
    let average: Vec<_> = pa
        .iter()
        .zip(&pb)
        .map(|(x, y)| std::array::from_fn(|band| 0.5 * (x[band] + y[band])))
        .collect();
    let blend_db = mel.db(&blend);
    let distance_a_db = spectral_distance_db(&to_db(&pa), &blend_db);
    let distance_b_db = spectral_distance_db(&to_db(&pb), &blend_db);
    let distance_average_db = spectral_distance_db(&to_db(&average), &blend_db);
    let pitch_match = match pitch::detect(&blend) {
        Pitch::Detected { hz, .. } => {
            within_50_cents(hz, pitch_hz)
                || [&a, &b].iter().any(|s| {
                    matches!(pitch::detect(s), Pitch::Detected { hz: f0, .. } if within_50_cents(hz, f0))
                })
        }
        _ => false,
    };
    BlendFigures {
        pitch_match,
        loudness_error_db: rms_db(&blend) - 0.5 * (rms_db(&a) + rms_db(&b)),
        distance_a_db,
        distance_b_db,
        distance_average_db,
        nearer_average: distance_average_db < distance_a_db.min(distance_b_db),
    }
}

/// The figures of many blends together.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BlendSummary {
    pub blends: usize,
    /// Share of the blends in tune.
    pub in_tune: f64,
    /// Mean |loudness error|, dB.
    pub mean_abs_loudness_error_db: f64,
    /// Share within 3 dB of their sources' loudness.
    pub within_3_db: f64,
    /// Share nearer the sources' spectral average than either source.
    pub nearer_average: f64,
    /// Mean log-mel distance from the sources (both of each pair).
    pub mean_distance_sources_db: f64,
    /// Mean log-mel distance from the sources' spectral average.
    pub mean_distance_average_db: f64,
}

/// Sums up `blends`; `None` when there are none.
pub fn summarise_blends(blends: &[BlendFigures]) -> Option<BlendSummary> {
    if blends.is_empty() {
        return None;
    }
    let n = blends.len() as f64;
    let share =
        |f: &dyn Fn(&BlendFigures) -> bool| blends.iter().filter(|b| f(b)).count() as f64 / n;
    let mean =
        |f: &dyn Fn(&BlendFigures) -> f32| blends.iter().map(|b| f64::from(f(b))).sum::<f64>() / n;
    Some(BlendSummary {
        blends: blends.len(),
        in_tune: share(&|b| b.pitch_match),
        mean_abs_loudness_error_db: mean(&|b| b.loudness_error_db.abs()),
        within_3_db: share(&|b| b.loudness_error_db.abs() <= 3.0),
        nearer_average: share(&|b| b.nearer_average),
        mean_distance_sources_db: mean(&|b| 0.5 * (b.distance_a_db + b.distance_b_db)),
        mean_distance_average_db: mean(&|b| b.distance_average_db),
    })
}

/// One scored blend, with what it blended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlendScore {
    /// The sources' notes (`note_str`) and instruments.
    pub a: String,
    pub b: String,
    pub instrument_a: String,
    pub instrument_b: String,
    /// MIDI pitch of both sources and of the blend.
    pub pitch: u8,
    pub velocity_a: u8,
    pub velocity_b: u8,
    #[serde(flatten)]
    pub figures: BlendFigures,
}

/// What `timbrel eval --blends` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BlendReport {
    /// Pairs asked for; fewer are scored when the notes hold fewer pairs.
    pub asked: usize,
    pub summary: Option<BlendSummary>,
    pub pairs: Vec<BlendScore>,
}
