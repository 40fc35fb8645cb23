//! Blends of a model whose frames carry a measured envelope, as loud as their sources.
//!
//! Such frames carry each source's band amplitudes, and a blend mixes them linearly, so
//! its spectrum lies between its sources' (session 16: nearer their average than either
//! source in all but a few pairs). Its loudness is then set by the louder source: a 50/50
//! blend of a quiet note and a loud one plays 6 dB under the loud one, however quiet the
//! other, where the weighted mean of the two levels in dB (what moving the pad from one
//! to the other should sweep through, evenly) lies halfway between them.
//!
//! So the envelope channels of a blend are scaled by one gain per set of weights: the
//! sources' whole-note levels' weighted mean in dB, less the level the mixed envelope
//! would have over the whole note with those weights. Both come from the sources' frames
//! alone ([`Loudness::of`]: each source's mean band power and every pair's mean product,
//! frame by frame as the blend pairs them), so the gain of any weights is a few
//! multiplications ([`Loudness::gain`]): a morph's moving weights and the live pad's get
//! the gain of where they are, and a single source (or weights on one source only) gets
//! exactly 1.

use std::ops::Range;

use super::blend::Embedding;

/// The most sources a [`Loudness`] follows (the XY pad's four corners).
pub const MAX_SOURCES: usize = 4;
/// The most a blend's envelope is turned up or down (dB).
pub const MAX_GAIN_DB: f32 = 24.0;
/// A source's mean band power never reads below this (dB): a silent source has a level.
const FLOOR_DB: f64 = -120.0;

/// What the gain of a blend's envelope depends on: its sources' mean band powers and
/// mean products, pair by pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Loudness {
    sources: usize,
    /// Each source's whole-note level (dB of its mean band power).
    levels_db: [f64; MAX_SOURCES],
    /// `cross[i][j]`: the mean over frames and bands of source i's amplitude times j's.
    cross: [[f64; MAX_SOURCES]; MAX_SOURCES],
}

impl Loudness {
    /// The statistics of `sources` (at most [`MAX_SOURCES`]; more are left out, as are
    /// any beyond the frames' channels), their band amplitudes in channels `bands` of
    /// every frame, over `frames` frames, a source shorter than that holding its last
    /// frame (as [`super::blend::blend`] pairs them). Allocates nothing.
    pub fn of(sources: &[&Embedding], bands: Range<usize>, frames: usize) -> Self {
        let n = sources.len().min(MAX_SOURCES);
        let mut cross = [[0f64; MAX_SOURCES]; MAX_SOURCES];
        let mut count = 0usize;
        for f in 0..frames {
            for i in 0..n {
                let a = band_slice(sources[i], f, &bands);
                for j in i..n {
                    let b = band_slice(sources[j], f, &bands);
                    let dot: f64 = a
                        .iter()
                        .zip(b)
                        .map(|(&x, &y)| f64::from(x) * f64::from(y))
                        .sum();
                    cross[i][j] += dot;
                    if j != i {
                        cross[j][i] += dot;
                    }
                }
            }
            count += bands.len();
        }
        let count = count.max(1) as f64;
        for row in cross.iter_mut().take(n) {
            row.iter_mut().take(n).for_each(|c| *c /= count);
        }
        let mut levels_db = [FLOOR_DB; MAX_SOURCES];
        for (i, (level, row)) in levels_db.iter_mut().zip(&cross).take(n).enumerate() {
            *level = power_db(row[i]);
        }
        Self {
            sources: n,
            levels_db,
            cross,
        }
    }

    /// The linear gain for the envelope of the blend with normalised `weights` (one per
    /// source): 1 when at most one weight is above 0, else the weighted mean of the
    /// sources' levels in dB less the mixed envelope's, within ±[`MAX_GAIN_DB`].
    pub fn gain(&self, weights: &[f32]) -> f32 {
        let n = self.sources.min(weights.len());
        if weights[..n].iter().filter(|&&w| w > 0.0).count() < 2 {
            return 1.0;
        }
        let mut target = 0f64;
        let mut mixed = 0f64;
        for ((&wi, &level), row) in weights[..n].iter().zip(&self.levels_db).zip(&self.cross) {
            let wi = f64::from(wi);
            target += wi * level;
            for (&wj, &c) in weights[..n].iter().zip(row) {
                mixed += wi * f64::from(wj) * c;
            }
        }
        let gain_db = ((target - power_db(mixed)) as f32).clamp(-MAX_GAIN_DB, MAX_GAIN_DB);
        10f32.powf(gain_db / 20.0)
    }
}

fn power_db(power: f64) -> f64 {
    (10.0 * power.max(0.0).log10()).max(FLOOR_DB)
}

/// Source `e`'s channels `bands` at frame `f` (its last frame past its end; nothing where
/// the channels run past its frames').
fn band_slice<'a>(e: &'a Embedding, f: usize, bands: &Range<usize>) -> &'a [f32] {
    if e.frames == 0 || bands.end > e.channels {
        return &[];
    }
    let frame = e.frame(f.min(e.frames - 1));
    &frame[bands.clone()]
}

/// Scales channels `bands` of `frame` by `gain`.
pub fn scale_bands(frame: &mut [f32], bands: &Range<usize>, gain: f32) {
    if gain != 1.0
        && let Some(b) = frame.get_mut(bands.clone())
    {
        b.iter_mut().for_each(|a| *a *= gain);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::blend::{Weights, blend};

    /// A note of `frames` frames: 2 other channels, then 3 bands at `amplitude` decaying
    /// by `decay` a frame.
    fn note(frames: usize, amplitude: f32, decay: f32) -> Embedding {
        let mut data = Vec::new();
        for f in 0..frames {
            let a = amplitude * decay.powi(f as i32);
            data.extend_from_slice(&[0.3, -0.2, a, 0.5 * a, 0.25 * a]);
        }
        Embedding {
            frames,
            channels: 5,
            data,
        }
    }

    fn level_db(e: &Embedding) -> f64 {
        Loudness::of(&[e], 2..5, e.frames).levels_db[0]
    }

    #[test]
    fn a_blend_is_as_loud_as_its_sources_mean_in_db() {
        let (quiet, loud) = (note(20, 0.05, 0.9), note(20, 0.5, 1.0));
        let l = Loudness::of(&[&quiet, &loud], 2..5, 20);
        for w in [0.5f32, 0.2, 0.9] {
            let weights = [1.0 - w, w];
            let mut b = blend(&[&quiet, &loud], &Weights::Fixed(weights.to_vec())).unwrap();
            let g = l.gain(&weights);
            for f in 0..b.frames {
                let frame = &mut b.data[f * 5..(f + 1) * 5];
                scale_bands(frame, &(2..5), g);
            }
            let target = f64::from(1.0 - w) * level_db(&quiet) + f64::from(w) * level_db(&loud);
            assert!(
                (level_db(&b) - target).abs() < 1e-3,
                "{w}: {} vs {target}",
                level_db(&b)
            );
            // The other channels are the blend's, untouched.
            let plain = blend(&[&quiet, &loud], &Weights::Fixed(weights.to_vec())).unwrap();
            assert_eq!(&b.data[..2], &plain.data[..2]);
        }
    }

    #[test]
    fn one_source_is_untouched_and_the_gain_is_bounded() {
        let (a, b) = (note(8, 0.2, 0.8), note(12, 1e-7, 1.0));
        let l = Loudness::of(&[&a, &b], 2..5, 12);
        assert_eq!(l.gain(&[1.0, 0.0]), 1.0);
        assert_eq!(l.gain(&[0.0, 1.0]), 1.0);
        let g = l.gain(&[0.5, 0.5]);
        assert!((20.0 * g.log10() + MAX_GAIN_DB).abs() < 1e-3, "{g}");
        // Equal sources: the blend is already as loud as each.
        let l = Loudness::of(&[&a, &a], 2..5, 8);
        assert!((l.gain(&[0.3, 0.7]) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn shorter_sources_hold_their_last_frame() {
        let (short, long) = (note(2, 0.4, 0.5), note(6, 0.4, 1.0));
        let l = Loudness::of(&[&short, &long], 2..5, 6);
        // Frames 2..6 of `short` hold its frame 1 (0.2): the mean product over 6 frames.
        let per_band = (0.4f64 * 0.4 + 0.4 * 0.2 * 5.0) / 6.0;
        let weights = (1.0 + 0.25 + 0.0625) / 3.0;
        assert!((l.cross[0][1] - per_band * weights).abs() < 1e-6);
    }
}
