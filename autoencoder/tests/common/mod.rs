#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

pub mod student;

use autoencoder::wavenet::weights::BiasInit;
use autoencoder::{Config, Stepper, WaveNetAutoencoder};
use candle_core::{Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A tiny config; the arguments are the ones the tests vary.
pub fn tiny(filter_length: usize, num_stages: usize, num_layers: usize, hop: usize) -> Config {
    Config {
        num_stages,
        num_layers,
        filter_length,
        width: 8,
        skip_width: 6,
        ae_num_stages: 3,
        ae_num_layers: 3,
        ae_filter_length: 3,
        ae_width: 5,
        ae_bottleneck_width: 3,
        ae_hop_length: hop,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    }
}

/// [`tiny`] with other widths (filter 3, dilations 1..16, hop 32).
pub fn wide(width: usize, skip_width: usize) -> Config {
    Config {
        width,
        skip_width,
        ..tiny(3, 5, 10, 32)
    }
}

/// A deterministic embedding `[voice][frame][bn]` with values in [-1.5, 1.5].
pub fn frames_of(voices: usize, frames: usize, bn: usize, seed: u64) -> Vec<f32> {
    (0..voices * frames * bn)
        .map(|i| ((i as f32 + seed as f32) * 0.71).sin() * 1.5)
        .collect()
}

pub fn random_model(cfg: &Config, seed: u64) -> WaveNetAutoencoder {
    WaveNetAutoencoder::random(cfg, seed, BiasInit::Uniform(0.2), &Device::Cpu).unwrap()
}

/// Audio-like input: a decaying chord plus noise, in [-1, 1], as μ-law-scaled values.
pub fn scaled_audio(batch: usize, length: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(batch * length);
    for b in 0..batch {
        let f = 0.013 * (b + 1) as f32;
        for t in 0..length {
            let t = t as f32;
            let x = 0.6 * (-t / 400.0).exp() * ((f * t).sin() + 0.5 * (2.7 * f * t).sin())
                + 0.05 * (rng.random::<f32>() - 0.5);
            out.push(autoencoder::mulaw::scaled(x.clamp(-1.0, 1.0)));
        }
    }
    out
}

pub fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(values, shape, &Device::Cpu).unwrap()
}

pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The conformance harness every autoregressive generator runs against the reference
/// ([`autoencoder::FastGenerator`]), through the one [`Stepper`] contract: the same
/// conditioning frames `enc` (`[voice][frame][bottleneck]`) for both.
pub struct Conformance<'a> {
    pub voices: usize,
    pub frames: usize,
    pub bottleneck: usize,
    pub hop: usize,
    pub enc: &'a [f32],
}

impl<'a> Conformance<'a> {
    pub fn new(cfg: &Config, voices: usize, frames: usize, enc: &'a [f32]) -> Self {
        Self {
            voices,
            frames,
            bottleneck: cfg.ae_bottleneck_width,
            hop: cfg.ae_hop_length,
            enc,
        }
    }

    fn set_frames(&self, t: usize, steppers: &mut [&mut dyn Stepper]) {
        if !t.is_multiple_of(self.hop) {
            return;
        }
        let bn = self.bottleneck;
        let mut frame = vec![0f32; self.voices * bn];
        autoencoder::generate::frame_of(self.enc, self.frames, t / self.hop, &mut frame, bn);
        for s in steppers.iter_mut() {
            s.set_frame(&frame).unwrap();
        }
    }

    /// Teacher-forced on `audio` (`[voice][sample]`, the scaled inputs), the largest
    /// difference between the two's probabilities over every class, voice and sample.
    pub fn teacher_forced(
        &self,
        reference: &mut dyn Stepper,
        candidate: &mut dyn Stepper,
        audio: &[f32],
    ) -> f32 {
        use autoencoder::mulaw::CLASSES;
        use autoencoder::sampling::softmax;
        let (mut p_ref, mut p_cand) = (vec![0f32; CLASSES], vec![0f32; CLASSES]);
        let mut previous = vec![0f32; self.voices];
        let mut worst = 0f32;
        let length = self.frames * self.hop;
        for t in 0..length {
            self.set_frames(t, &mut [&mut *reference, &mut *candidate]);
            let r = reference.step(&previous).unwrap();
            let c = candidate.step(&previous).unwrap();
            for v in 0..self.voices {
                softmax(&r[v * CLASSES..(v + 1) * CLASSES], &mut p_ref);
                softmax(&c[v * CLASSES..(v + 1) * CLASSES], &mut p_cand);
                worst = worst.max(max_abs_diff(&p_ref, &p_cand));
                previous[v] = audio[v * length + t];
            }
        }
        worst
    }

    /// Teacher-forced on the reference's own draws, both drawing from the same per-voice
    /// streams of `sampling`: (draws, how many of the candidate's differ).
    pub fn draws(
        &self,
        reference: &mut dyn Stepper,
        candidate: &mut dyn Stepper,
        sampling: autoencoder::Sampling,
    ) -> (usize, usize) {
        use autoencoder::sampling::Sampler;
        let mut ref_sampler = Sampler::new(sampling, self.voices);
        let mut cand_sampler = Sampler::new(sampling, self.voices);
        let mut previous = vec![0f32; self.voices];
        let (mut draws, mut different) = (0, 0);
        for t in 0..self.frames * self.hop {
            self.set_frames(t, &mut [&mut *reference, &mut *candidate]);
            reference.step(&previous).unwrap();
            candidate.step(&previous).unwrap();
            let r = reference.draw(&mut ref_sampler).unwrap();
            let c = candidate.draw(&mut cand_sampler).unwrap();
            for v in 0..self.voices {
                draws += 1;
                different += usize::from(r[v] != c[v]);
                previous[v] = autoencoder::mulaw::index_class(r[v]) as f32 / 128.0;
            }
        }
        (draws, different)
    }
}

/// The configurations every autoregressive generator is checked on against the reference:
/// `(config, voices, frames)`. Magenta's filter 3 with dilations 1..16 and batches that use
/// every tile shape; other filter lengths and dilations past the hop; widths that fill
/// whole SIMD panels and ones that leave a ragged edge.
pub fn conformance_cases() -> Vec<(Config, usize, usize)> {
    vec![
        (tiny(3, 5, 10, 32), 1, 3),
        (tiny(3, 5, 10, 32), 7, 2),
        (tiny(2, 6, 7, 16), 2, 6),
        (tiny(4, 3, 5, 8), 3, 8),
        (tiny(1, 2, 3, 8), 5, 4),
        (wide(64, 128), 4, 2),
        (wide(40, 24), 6, 2),
        (wide(20, 200), 1, 2),
    ]
}

/// A generator under test, as the harness drives it: its stepper for `voices`.
pub trait Candidate {
    fn stepper(&self, voices: usize) -> Box<dyn Stepper + '_>;
}

/// Teacher-forced on the same audio, the largest probability difference between the
/// reference generator and the generator `make` builds for a random model of `cfg`.
pub fn teacher_forced_worst<G: Candidate>(
    cfg: &Config,
    voices: usize,
    frames: usize,
    seed: u64,
    make: impl FnOnce(&WaveNetAutoencoder) -> G,
) -> f32 {
    let model = random_model(cfg, seed);
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, seed);
    let audio = scaled_audio(voices, frames * cfg.ae_hop_length, seed + 1);
    let generator = make(&model);
    Conformance::new(cfg, voices, frames, &enc).teacher_forced(
        &mut autoencoder::FastGenerator::new(&model, voices).unwrap(),
        generator.stepper(voices).as_mut(),
        &audio,
    )
}

/// At temperatures 1, 0.7 and 0 (greedy), teacher-forced on the reference's own draws
/// from the same per-voice streams, at most `allowed` of the candidate's draws differ.
pub fn draws_agree(
    model: &WaveNetAutoencoder,
    generator: &dyn Candidate,
    voices: usize,
    frames: usize,
    allowed: usize,
    label: &str,
) {
    let cfg = model.config();
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 5);
    for temperature in [1.0, 0.7, 0.0] {
        let sampling = autoencoder::Sampling {
            temperature,
            seed: 17,
        };
        let (draws, different) = Conformance::new(cfg, voices, frames, &enc).draws(
            &mut autoencoder::FastGenerator::new(model, voices).unwrap(),
            generator.stepper(voices).as_mut(),
            sampling,
        );
        assert_eq!(draws, voices * frames * cfg.ae_hop_length);
        assert!(
            different <= allowed,
            "{label}, temperature {temperature}: {different} of {draws} draws differ"
        );
    }
}
