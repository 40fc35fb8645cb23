//! The students the student tests build: tiny configs, random weights, noise, frames and
//! excitations.

use autoencoder::student::{Student, StudentConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub fn tiny(flows: Vec<usize>, harmonics: usize) -> StudentConfig {
    StudentConfig {
        flows,
        num_stages: 3,
        filter_length: 3,
        width: 8,
        bottleneck: 3,
        hop_length: 16,
        excitation_harmonics: harmonics,
        excitation_subpartials: 0,
        subpartial_bank: false,
        measured_subpartials: false,
        envelope_bands: 0,
        envelope_refinements: 0,
    }
}

/// A student whose variables are all random (`spread` their range), heads included.
pub fn random_student(cfg: &StudentConfig, seed: u64, spread: f32) -> (VarMap, Student) {
    let vm = VarMap::new();
    let student =
        Student::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // By name: the map's own order changes from run to run, and so would the weights.
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in vars {
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| spread * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    (vm, student)
}

/// `n` draws of standard logistic noise.
pub fn logistic(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let u = rng.random::<f32>().clamp(1e-6, 1.0 - 1e-6);
            (u / (1.0 - u)).ln()
        })
        .collect()
}

pub fn inputs(
    cfg: &StudentConfig,
    batch: usize,
    frames: usize,
    seed: u64,
) -> (Vec<f32>, Tensor, Option<Tensor>) {
    let time = frames * cfg.hop_length;
    let z = logistic(batch * time, seed);
    let enc: Vec<f32> = (0..batch * frames * cfg.bottleneck)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let enc = Tensor::from_vec(enc, (batch, frames, cfg.bottleneck), &Device::Cpu).unwrap();
    let exc = cfg
        .excitation(
            &vec![440.0; batch * time],
            autoencoder::excitation::Oscillator::new(),
        )
        .map(|e| {
            Tensor::from_vec(e, (batch, time, cfg.excitation_channels()), &Device::Cpu).unwrap()
        });
    (z, enc, exc)
}

/// A random student whose flows' heads are zero: each flow is x · s₀, so z = 0 plays
/// silence but for the bank.
pub fn bank_only_student(cfg: &StudentConfig, seed: u64) -> (VarMap, Student) {
    let (vm, _) = random_student(cfg, seed, 0.3);
    for (name, var) in vm.data().lock().unwrap().iter() {
        if name.ends_with("out/W") || name.ends_with("out/biases") {
            var.set(&var.as_tensor().zeros_like().unwrap()).unwrap();
        }
    }
    let student =
        Student::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    (vm, student)
}

/// The sub-partial bank's map `[bottleneck · N]` and biases `[N]`.
pub fn bank_variables(vm: &VarMap) -> (Vec<f32>, Vec<f32>) {
    let data = vm.data().lock().unwrap();
    let get = |name: &str| -> Vec<f32> {
        data[name]
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    (get("subpartial_bank/W"), get("subpartial_bank/biases"))
}

pub fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2().unwrap()
}
