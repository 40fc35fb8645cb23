#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code)]

use autoencoder::weights::BiasInit;
use autoencoder::{Config, WaveNetAutoencoder};
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
