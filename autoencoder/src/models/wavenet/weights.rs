//! The model's variables: names and shapes exactly as Magenta's checkpoints, and
//! seeded random initialisation.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Config, Result};

/// `(name, shape)` of every variable, in checkpoint order. `NAME/W` is
/// `[1, filter_length, in, out]` and `NAME/biases` is `[out]`, as in Magenta's
/// `masked.conv1d`.
pub fn shapes(cfg: &Config) -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    let mut conv = |name: String, taps: usize, cin: usize, cout: usize| {
        out.push((format!("{name}/W"), vec![1, taps, cin, cout]));
        out.push((format!("{name}/biases"), vec![cout]));
    };
    let (aw, bn) = (cfg.ae_width, cfg.ae_bottleneck_width);
    conv("ae_startconv".into(), cfg.ae_filter_length, 1, aw);
    for i in 1..=cfg.ae_num_layers {
        conv(format!("ae_dilatedconv_{i}"), cfg.ae_filter_length, aw, aw);
        conv(format!("ae_res_{i}"), 1, aw, aw);
    }
    conv("ae_bottleneck".into(), 1, aw, bn);
    let (w, sw) = (cfg.width, cfg.skip_width);
    conv("startconv".into(), cfg.filter_length, 1, w);
    conv("skip_start".into(), 1, w, sw);
    for i in 1..=cfg.num_layers {
        conv(format!("dilatedconv_{i}"), cfg.filter_length, w, 2 * w);
        conv(format!("cond_map_{i}"), 1, bn, 2 * w);
        conv(format!("res_{i}"), 1, w, w);
        conv(format!("skip_{i}"), 1, w, sw);
    }
    conv("out1".into(), 1, sw, sw);
    conv("cond_map_out1".into(), 1, bn, sw);
    conv("logits".into(), 1, sw, crate::mulaw::CLASSES);
    // Timbrel's excitation projections (no biases: the layers' own biases serve).
    let e = 2 * cfg.excitation_harmonics;
    if e > 0 && cfg.excitation_into.input() {
        out.push(("exc_start/W".into(), vec![1, 1, e, w]));
    }
    if e > 0 && cfg.excitation_into.layers() {
        for i in 1..=cfg.num_layers {
            out.push((format!("exc_map_{i}/W"), vec![1, 1, e, 2 * w]));
        }
    }
    out
}

/// How to fill the biases of a fresh model.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BiasInit {
    /// Zeros, as Magenta initialises them for training.
    Zero,
    /// Uniform in ±`scale`: tests use this so that every bias is exercised.
    Uniform(f32),
}

/// A freshly initialised model: kernels from Magenta's
/// `uniform_unit_scaling_initializer(1.0)` (uniform in ±√(3 / fan_in), fan_in = taps · in),
/// biases as asked. Deterministic for a seed.
pub fn random(
    cfg: &Config,
    seed: u64,
    bias: BiasInit,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut map = HashMap::new();
    for (name, shape) in shapes(cfg) {
        let count: usize = shape.iter().product();
        let limit = if name.ends_with("/W") {
            let fan_in = shape[1] * shape[2];
            (3.0 / fan_in as f32).sqrt()
        } else {
            match bias {
                BiasInit::Zero => 0.0,
                BiasInit::Uniform(scale) => scale,
            }
        };
        let values: Vec<f32> = (0..count)
            .map(|_| limit * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let tensor = Tensor::from_vec(values, shape, device)?.to_dtype(DType::F32)?;
        map.insert(name, tensor);
    }
    Ok(map)
}

/// A `VarMap` holding a fresh seeded model (see [`random`]) in `dtype`, ready for an
/// optimiser: `VarBuilder::from_varmap` over it builds a trainable model.
pub fn varmap(
    cfg: &Config,
    seed: u64,
    bias: BiasInit,
    dtype: DType,
    device: &Device,
) -> Result<candle_nn::VarMap> {
    let varmap = candle_nn::VarMap::new();
    {
        let mut vars = varmap
            .data()
            .lock()
            .map_err(|_| crate::Error::Shape("variable map lock poisoned".into()))?;
        for (name, tensor) in random(cfg, seed, bias, device)? {
            vars.insert(
                name,
                candle_core::Var::from_tensor(&tensor.to_dtype(dtype)?)?,
            );
        }
    }
    Ok(varmap)
}
