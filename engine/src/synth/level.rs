//! Blends as loud as their sources: a mean of embeddings decodes quieter than the notes
//! it mixes (session 14 measured every one of 48 blends below its sources' mean level),
//! so a render that blends two or more sources brings its audio, frame by frame (one
//! embedding frame, `hop` samples), to the weighted mean in dB of the sources' levels at
//! that frame.
//!
//! - A source's level track is one value per embedding frame (the RMS of the frame's
//!   samples, in dB, floored at [`LEVEL_FLOOR_DB`]), kept as a one-channel [`Embedding`]
//!   so it is stretched to the note's length exactly as the source's embedding is, and
//!   blended with the same weights (a morph's included): the blend of the tracks *is* the
//!   target, the weighted mean in dB. A level below [`SILENCE_DB`] counts as that floor
//!   there, so how deep a source's silence is (digital zero or a noise floor) does not
//!   set how loud its partner plays.
//! - The gain of a frame is the target less the decoded frame's level, clamped to
//!   ±[`MAX_GAIN_DB`], and 0 dB where the target is within [`NEAR_SILENCE_DB`] of
//!   [`SILENCE_DB`] or the decoded frame is below it (no noise pumped up, silence left
//!   silent).
//! - The gains (in dB) are placed at the frames' centres and interpolated linearly
//!   between them, sample by sample (held before the first centre and after the last), so
//!   the gain never moves by more than [`max_step_db`] from one sample to the next: no
//!   clicks.

use super::blend::{Embedding, Weights, blend};
use crate::error::Result;

/// A frame's level never reads below this (dBFS): an all-zero frame has a finite level.
pub const LEVEL_FLOOR_DB: f32 = -100.0;
/// Below this (dBFS), a target or a decoded frame counts as silence: its gain stays 0 dB.
pub const SILENCE_DB: f32 = -60.0;
/// A target within this of [`SILENCE_DB`] (every source silent, or nearly) is silence.
pub const NEAR_SILENCE_DB: f32 = 1.0;
/// The largest gain, up or down, level matching applies (dB).
pub const MAX_GAIN_DB: f32 = 18.0;

/// The level in dBFS of each of `frames` frames of `hop` samples of `samples` (samples
/// past its end count as zeros), as a one-channel embedding.
pub fn frame_levels(samples: &[f32], hop: usize, frames: usize) -> Embedding {
    let hop = hop.max(1);
    let data = (0..frames)
        .map(|f| {
            let start = (f * hop).min(samples.len());
            let end = ((f + 1) * hop).min(samples.len());
            let power = samples[start..end]
                .iter()
                .map(|&s| f64::from(s) * f64::from(s))
                .sum::<f64>()
                / hop as f64;
            ((10.0 * power.max(1e-30).log10()) as f32).max(LEVEL_FLOOR_DB)
        })
        .collect();
    Embedding {
        frames,
        channels: 1,
        data,
    }
}

/// Whether `weights` blend two or more sources (some frame gives two a nonzero weight,
/// or a morph moves from one to another); one source alone is left as decoded.
pub fn blends_several(weights: &Weights) -> bool {
    let used = |w: &[f32], i: usize| w.get(i).is_some_and(|&w| w != 0.0);
    let (start, end): (&[f32], &[f32]) = match weights {
        Weights::Fixed(w) => (w, w),
        Weights::Morph { start, end } => (start, end),
    };
    (0..start.len().max(end.len()))
        .filter(|&i| used(start, i) || used(end, i))
        .count()
        >= 2
}

/// The target level (dBFS) of each frame of a blend of sources whose level tracks are
/// `levels`, with `weights`: the weighted mean of their levels in dB.
pub fn targets(levels: &[&Embedding], weights: &Weights) -> Result<Vec<f32>> {
    // Below the silence floor every level is silence: how deep a source's silence is
    // (digital zero or a noise floor) must not set how loud its partner plays there.
    let floored: Vec<Embedding> = levels
        .iter()
        .map(|l| Embedding {
            data: l.data.iter().map(|&v| v.max(SILENCE_DB)).collect(),
            ..(*l).clone()
        })
        .collect();
    let refs: Vec<&Embedding> = floored.iter().collect();
    Ok(blend(&refs, weights)?.data)
}

/// The gain (dB) of each frame of `audio` that brings it to `targets` (see the module's
/// notes); frames past `targets`' end get 0 dB.
pub fn frame_gains_db(audio: &[f32], targets: &[f32], hop: usize) -> Vec<f32> {
    let hop = hop.max(1);
    let frames = audio.len().div_ceil(hop);
    let have = frame_levels(audio, hop, frames).data;
    have.iter()
        .enumerate()
        .map(|(f, &level)| match targets.get(f) {
            Some(&target) if target >= SILENCE_DB + NEAR_SILENCE_DB && level >= SILENCE_DB => {
                (target - level).clamp(-MAX_GAIN_DB, MAX_GAIN_DB)
            }
            _ => 0.0,
        })
        .collect()
}

/// The largest change of the gain (dB) between two neighbouring samples of an
/// [`envelope`] at `hop`: a full swing from −[`MAX_GAIN_DB`] to +[`MAX_GAIN_DB`] across
/// one frame.
pub fn max_step_db(hop: usize) -> f32 {
    2.0 * MAX_GAIN_DB / hop.max(1) as f32
}

/// The gain in dB of each of `len` samples: `gains_db[f]` at the centre of frame `f`,
/// linear between centres, held before the first and after the last.
pub fn envelope_db(gains_db: &[f32], hop: usize, len: usize) -> Vec<f32> {
    let hop = hop.max(1);
    let centre = |f: usize| f as f32 * hop as f32 + (hop as f32 - 1.0) / 2.0;
    (0..len)
        .map(|t| {
            let Some(&last) = gains_db.last() else {
                return 0.0;
            };
            let x = t as f32;
            if x <= centre(0) {
                return gains_db[0];
            }
            let f = ((x - centre(0)) / hop as f32) as usize;
            if f + 1 >= gains_db.len() {
                return last;
            }
            let frac = (x - centre(f)) / hop as f32;
            gains_db[f] + (gains_db[f + 1] - gains_db[f]) * frac
        })
        .collect()
}

/// Brings `audio` (a decoded blend, frames of `hop` samples) to `targets` in place.
pub fn match_levels(audio: &mut [f32], targets: &[f32], hop: usize) {
    let gains = frame_gains_db(audio, targets, hop);
    if gains.iter().all(|&g| g == 0.0) {
        return;
    }
    let envelope = envelope_db(&gains, hop, audio.len());
    for (s, g) in audio.iter_mut().zip(envelope) {
        *s *= 10f32.powf(g / 20.0);
    }
}

/// [`targets`] then [`match_levels`], for a blend of two or more sources; one source
/// alone, or no level tracks (level matching off), leaves `audio` bit for bit.
pub fn match_blend(
    audio: &mut [f32],
    levels: &[Embedding],
    weights: &Weights,
    hop: usize,
) -> Result<()> {
    if levels.is_empty() || !blends_several(weights) {
        return Ok(());
    }
    let refs: Vec<&Embedding> = levels.iter().collect();
    let targets = targets(&refs, weights)?;
    match_levels(audio, &targets, hop);
    Ok(())
}
