//! Blending embeddings: weighted sums of the instruments' temporal embeddings, with the
//! weights fixed (a mix, a point of the XY pad) or changing across the note (a morph).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A note's temporal embedding: `frames × channels` (16 channels every 512 samples for
/// NSynth's shape), row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub frames: usize,
    pub channels: usize,
    pub data: Vec<f32>,
}

impl Embedding {
    pub fn frame(&self, f: usize) -> &[f32] {
        &self.data[f * self.channels..(f + 1) * self.channels]
    }
}

/// The four corners of the XY pad, as NSynth Super placed its instruments: A at (0, 0),
/// B at (1, 0), C at (0, 1), D at (1, 1).
pub const CORNERS: [(f32, f32); 4] = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)];

/// How a point of the pad becomes four weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XyMode {
    /// NSynth Super's: `w_i = max(1 − ‖xy − corner_i‖, 0)`, normalised. Each corner's
    /// influence is a cone of radius 1, so near a corner only that instrument sounds.
    #[default]
    Cone,
    /// Bilinear interpolation: `(1 − x)(1 − y)`, `x(1 − y)`, `(1 − x)y`, `xy`.
    Bilinear,
}

impl XyMode {
    /// Bilinear when `bilinear`, else NSynth Super's cones (the `--bilinear` switch).
    pub fn from_bilinear(bilinear: bool) -> Self {
        if bilinear { Self::Bilinear } else { Self::Cone }
    }
}

/// Weights of the four corners for the point `(x, y)` (clamped to the unit square),
/// summing to 1.
pub fn xy_weights(x: f32, y: f32, mode: XyMode) -> [f32; 4] {
    let (x, y) = (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0));
    let raw = match mode {
        XyMode::Cone => CORNERS.map(|(cx, cy)| (1.0 - (x - cx).hypot(y - cy)).max(0.0)),
        XyMode::Bilinear => [(1.0 - x) * (1.0 - y), x * (1.0 - y), (1.0 - x) * y, x * y],
    };
    // Inside the unit square the cones never all vanish (the nearest corner is at most
    // √2 / 2 away), so the sum is positive.
    let total: f32 = raw.iter().sum();
    raw.map(|w| w / total)
}

/// Weights normalised to sum to 1; `None` if any is negative or not finite, or all are 0.
pub fn normalise(weights: &[f32]) -> Option<Vec<f32>> {
    if weights.iter().any(|w| !w.is_finite() || *w < 0.0) {
        return None;
    }
    let total: f32 = weights.iter().sum();
    (total > 0.0).then(|| weights.iter().map(|w| w / total).collect())
}

/// Weights over the note: fixed, or moving linearly from `start` (first frame) to `end`
/// (last frame): A → B across the note is `Morph { start: [1, 0], end: [0, 1] }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    Fixed(Vec<f32>),
    Morph { start: Vec<f32>, end: Vec<f32> },
}

impl Weights {
    fn len(&self) -> usize {
        match self {
            Weights::Fixed(w) => w.len(),
            Weights::Morph { start, .. } => start.len(),
        }
    }

    /// The weights at frame `f` of `frames`, normalised (`None` where they cannot be).
    pub fn normalised_at(&self, f: usize, frames: usize) -> Option<Vec<f32>> {
        normalise(&self.at(f, frames))
    }

    /// The weights at frame `f` of `frames`, as given.
    fn at(&self, f: usize, frames: usize) -> Vec<f32> {
        match self {
            Weights::Fixed(w) => w.clone(),
            Weights::Morph { start, end } => {
                let t = if frames > 1 {
                    f as f32 / (frames - 1) as f32
                } else {
                    0.0
                };
                start
                    .iter()
                    .zip(end)
                    .map(|(a, b)| a + (b - a) * t)
                    .collect()
            }
        }
    }
}

/// Blends `sources` with `weights` (one per source, normalised here).
///
/// Notes of different lengths: the blend is as long as the longest; a shorter
/// embedding holds its last frame (the state its note ended in: the decay or silence
/// for a struck note, the sustain for a held one), which keeps every source's
/// contribution in proportion instead of letting it drop to zero, a point of the
/// embedding space no note produced.
pub fn blend(sources: &[&Embedding], weights: &Weights) -> Result<Embedding> {
    let Some(first) = sources.first() else {
        return Err(Error::Blend("a blend needs at least one source".into()));
    };
    if weights.len() != sources.len() {
        return Err(Error::Blend(format!(
            "{} weights for {} sources",
            weights.len(),
            sources.len()
        )));
    }
    let channels = first.channels;
    if let Some(other) = sources.iter().find(|s| s.channels != channels) {
        return Err(Error::Blend(format!(
            "embeddings of {} and {} channels cannot be blended",
            channels, other.channels
        )));
    }
    if let Some(empty) = sources.iter().position(|s| s.frames == 0) {
        return Err(Error::Blend(format!(
            "source {} has an empty embedding",
            empty + 1
        )));
    }
    let check = |w: &[f32]| {
        normalise(w).ok_or_else(|| {
            Error::Blend(format!(
                "blend weights must be non-negative and not all zero, got {w:?}"
            ))
        })
    };
    let frames = sources.iter().map(|s| s.frames).max().unwrap_or(0);
    let fixed = match weights {
        Weights::Fixed(w) => Some(check(w)?),
        Weights::Morph { start, end } => {
            check(start)?;
            check(end)?;
            None
        }
    };
    let mut data = vec![0f32; frames * channels];
    for (f, out) in data.chunks_exact_mut(channels).enumerate() {
        let morphed;
        let w = match &fixed {
            Some(w) => w,
            None => {
                morphed = check(&weights.at(f, frames))?;
                &morphed
            }
        };
        for (source, &w) in sources.iter().zip(w) {
            if w == 0.0 {
                continue;
            }
            let z = source.frame(f.min(source.frames - 1));
            for (o, &v) in out.iter_mut().zip(z) {
                *o += w * v;
            }
        }
    }
    Ok(Embedding {
        frames,
        channels,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emb(frames: usize, value: f32) -> Embedding {
        Embedding {
            frames,
            channels: 2,
            data: (0..frames * 2).map(|i| value + i as f32).collect(),
        }
    }

    #[test]
    fn corners_are_their_instruments() {
        for mode in [XyMode::Cone, XyMode::Bilinear] {
            for (i, &(x, y)) in CORNERS.iter().enumerate() {
                let w = xy_weights(x, y, mode);
                let mut expected = [0.0; 4];
                expected[i] = 1.0;
                assert_eq!(w, expected, "{mode:?} corner {i}");
            }
            let centre = xy_weights(0.5, 0.5, mode);
            assert!(centre.iter().all(|w| (w - 0.25).abs() < 1e-6), "{centre:?}");
        }
        // NSynth Super's cones: halfway along the bottom edge, only A and B.
        let w = xy_weights(0.5, 0.0, XyMode::Cone);
        assert!((w[0] - 0.5).abs() < 1e-6 && (w[1] - 0.5).abs() < 1e-6);
        assert_eq!(&w[2..], &[0.0, 0.0]);
        // Out-of-range points are clamped onto the pad.
        assert_eq!(xy_weights(-3.0, 9.0, XyMode::Cone), [0.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn weights_one_zero_give_the_first_source() {
        let (a, b) = (emb(4, 1.0), emb(4, 100.0));
        let out = blend(&[&a, &b], &Weights::Fixed(vec![1.0, 0.0])).unwrap();
        assert_eq!(out, a);
        let half = blend(&[&a, &b], &Weights::Fixed(vec![2.0, 2.0])).unwrap();
        assert_eq!(half.data[0], 50.5);
    }

    #[test]
    fn shorter_notes_hold_their_last_frame() {
        let (a, b) = (emb(2, 0.0), emb(4, 0.0));
        let out = blend(&[&a, &b], &Weights::Fixed(vec![1.0, 1.0])).unwrap();
        assert_eq!(out.frames, 4);
        // Frame 3: a holds frame 1 ([2, 3]), b has [6, 7].
        assert_eq!(out.frame(3), &[4.0, 5.0]);
    }

    #[test]
    fn a_morph_moves_from_start_to_end() {
        let (a, b) = (emb(5, 0.0), emb(5, 100.0));
        let morph = Weights::Morph {
            start: vec![1.0, 0.0],
            end: vec![0.0, 1.0],
        };
        let out = blend(&[&a, &b], &morph).unwrap();
        assert_eq!(out.frame(0), a.frame(0));
        assert_eq!(out.frame(4), b.frame(4));
        assert_eq!(out.frame(2)[0], 0.5 * a.frame(2)[0] + 0.5 * b.frame(2)[0]);
    }

    #[test]
    fn bad_blends_are_errors() {
        let a = emb(2, 0.0);
        assert!(blend(&[], &Weights::Fixed(vec![])).is_err());
        assert!(blend(&[&a], &Weights::Fixed(vec![1.0, 1.0])).is_err());
        assert!(blend(&[&a, &a], &Weights::Fixed(vec![0.0, 0.0])).is_err());
        assert!(blend(&[&a, &a], &Weights::Fixed(vec![-1.0, 2.0])).is_err());
        let other = Embedding {
            frames: 2,
            channels: 3,
            data: vec![0.0; 6],
        };
        assert!(blend(&[&a, &other], &Weights::Fixed(vec![1.0, 1.0])).is_err());
    }
}
