//! Drawing μ-law classes from the decoder's logits: seeded, per voice, with temperature.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::mulaw::CLASSES;

/// How the next sample is chosen from the softmax.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sampling {
    /// Softmax temperature; 1 samples the model's distribution, lower is more
    /// conservative. Zero or below means greedy (always the most likely class).
    pub temperature: f32,
    /// Seed of the random draws. Voice `v` of a batch draws from ChaCha8 stream `v` of
    /// this seed, so a voice's output does not depend on which other voices share its batch.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            seed: 0,
        }
    }
}

impl Sampling {
    pub fn greedy(&self) -> bool {
        self.temperature <= 0.0
    }
}

/// One random stream per voice.
#[derive(Debug, Clone)]
pub struct Sampler {
    sampling: Sampling,
    rngs: Vec<ChaCha8Rng>,
}

impl Sampler {
    pub fn new(sampling: Sampling, voices: usize) -> Self {
        Self::for_voices(sampling, 0..voices)
    }

    /// The streams of voices `range` of a larger batch (local voice 0 is `range.start`),
    /// so a batch split across threads draws exactly what it would draw whole.
    pub fn for_voices(sampling: Sampling, range: std::ops::Range<usize>) -> Self {
        Self::with_streams(sampling, range.map(|v| v as u64))
    }

    /// Local voice `i` draws from stream `streams[i]`: a voice's audio then depends on its
    /// stream, not on where it sits in a batch (a resumed grid renders what a whole run would).
    pub fn with_streams(sampling: Sampling, streams: impl IntoIterator<Item = u64>) -> Self {
        let rngs = streams
            .into_iter()
            .map(|voice| {
                let mut rng = ChaCha8Rng::seed_from_u64(sampling.seed);
                rng.set_stream(voice);
                rng
            })
            .collect();
        Self { sampling, rngs }
    }

    /// Draws a softmax index (0..256) for `voice` from its `logits`.
    ///
    /// Inverse-CDF sampling over the unnormalised weights `exp((l − max) / T)`: the
    /// uniform draw is scaled by their sum instead of dividing every weight by it, so the
    /// distribution is normalised once, implicitly. One `f32` draw per sample per voice.
    pub fn draw(&mut self, voice: usize, logits: &[f32]) -> usize {
        debug_assert_eq!(logits.len(), CLASSES);
        if self.sampling.greedy() {
            return argmax(logits);
        }
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let inv_t = 1.0 / self.sampling.temperature;
        let mut weights = [0f32; CLASSES];
        let mut total = 0f32;
        for (w, &l) in weights.iter_mut().zip(logits) {
            *w = ((l - max) * inv_t).exp();
            total += *w;
        }
        self.pick(voice, &weights, total)
    }

    /// The sampling settings.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The next uniform draw in [0, 1) of `voice`'s stream: what [`Sampler::pick`] scales by
    /// the total (decoders that sample elsewhere, on a GPU, draw their uniforms here).
    pub fn uniform(&mut self, voice: usize) -> f32 {
        self.rngs[voice].random::<f32>()
    }

    /// Draws an index from unnormalised `weights` (all ≥ 0) summing to `total`: one
    /// uniform draw from `voice`'s stream, scaled by the total, then the running sum.
    pub fn pick(&mut self, voice: usize, weights: &[f32], total: f32) -> usize {
        let target = self.uniform(voice) * total;
        let mut cumulative = 0f32;
        let mut last_nonzero = 0;
        for (i, &w) in weights.iter().enumerate() {
            if w > 0.0 {
                cumulative += w;
                last_nonzero = i;
                if cumulative > target {
                    return i;
                }
            }
        }
        // Rounding left the running sum a hair below the target: the last possible class.
        last_nonzero
    }
}

/// Index of the largest value (the first one on ties; NaNs never win).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// `softmax(logits)` into `probs`, stably.
pub fn softmax(logits: &[f32], probs: &mut [f32]) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut total = 0f32;
    for (p, &l) in probs.iter_mut().zip(logits) {
        *p = (l - max).exp();
        total += *p;
    }
    let inv = 1.0 / total;
    probs.iter_mut().for_each(|p| *p *= inv);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_argmax() {
        let mut logits = [0f32; CLASSES];
        logits[200] = 5.0;
        let mut sampler = Sampler::new(
            Sampling {
                temperature: 0.0,
                seed: 1,
            },
            1,
        );
        assert_eq!(sampler.draw(0, &logits), 200);
    }

    #[test]
    fn draws_follow_the_distribution() {
        // Two classes with probabilities 0.25 and 0.75; all others impossible.
        let mut logits = [f32::NEG_INFINITY; CLASSES];
        logits[10] = 0.0;
        logits[20] = 3f32.ln();
        let mut sampler = Sampler::new(Sampling::default(), 1);
        let n = 20_000;
        let hits = (0..n).filter(|_| sampler.draw(0, &logits) == 20).count();
        let share = hits as f64 / n as f64;
        // 4.5 standard deviations of a binomial share at n = 20000.
        assert!((share - 0.75).abs() < 0.014, "share {share}");
    }

    #[test]
    fn voices_are_independent_of_batch_size() {
        let logits: Vec<f32> = (0..CLASSES).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut alone = Sampler::new(Sampling::default(), 3);
        let mut batch = Sampler::new(Sampling::default(), 8);
        for _ in 0..100 {
            assert_eq!(alone.draw(2, &logits), batch.draw(2, &logits));
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let logits: Vec<f32> = (0..CLASSES).map(|i| i as f32 * 0.1).collect();
        let mut probs = vec![0f32; CLASSES];
        softmax(&logits, &mut probs);
        let total: f32 = probs.iter().sum();
        assert!((total - 1.0).abs() < 1e-5);
        assert_eq!(argmax(&probs), CLASSES - 1);
    }
}
