#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The student's fused training pass against candle's autograd (the reference, in f64):
//! the audio within 1e-5 of its scale and every gradient within 1e-4 of its norm, for
//! one and two flows, filter lengths 2 and 3, with and without the excitation (and its
//! sub-partials, and their bank), one and two threads, both kernel sets; the gradient of the real
//! objective (spectral and power terms) through it; and determinism.

mod common;

use std::collections::HashMap;

use autoencoder::cpu::Isa;
use autoencoder::student::fused::{FusedStudent, StudentBatch, variable_shapes};
use autoencoder::student::{
    LossWeights, Objective, StudentAutoencoder, StudentAutoencoderConfig, StudentConfig,
};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::scaled_audio;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| spread * (2.0 * rng.random::<f32>() - 1.0))
        .collect()
}

fn config(
    flows: Vec<usize>,
    filter_length: usize,
    harmonics: usize,
    subpartials: usize,
) -> StudentAutoencoderConfig {
    let mut encoder = common::tiny(3, 3, 3, 16);
    encoder.ae_width = 6;
    StudentAutoencoderConfig {
        encoder,
        student: StudentConfig {
            flows,
            num_stages: 3,
            filter_length,
            width: 8,
            bottleneck: 3,
            hop_length: 16,
            excitation_harmonics: harmonics,
            excitation_subpartials: subpartials,
            subpartial_bank: false,
            measured_subpartials: false,
            envelope_bands: 0,
            envelope_refinements: 0,
        },
    }
}

/// `cfg` with a bank and its sub-partials measured into the frames (after the encoder's
/// channels).
fn measured(mut cfg: StudentAutoencoderConfig) -> StudentAutoencoderConfig {
    cfg.student.subpartial_bank = true;
    cfg.student.measured_subpartials = true;
    cfg.student.bottleneck += cfg.student.excitation_subpartials;
    cfg.validate().unwrap();
    cfg
}

/// Every variable random, the heads too (they start at zero in training, where their
/// gradients would hide the rest).
fn random(cfg: &StudentAutoencoderConfig, seed: u64) -> VarMap {
    let vm = VarMap::new();
    StudentAutoencoder::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let data = vm.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for (i, name) in names.into_iter().enumerate() {
        let var = &data[name];
        let fan_in: usize = var.dims()[..var.dims().len() - 1].iter().product();
        let spread = if var.dims().len() == 1 {
            0.1
        } else {
            (2.0 / fan_in.max(1) as f32).sqrt()
        };
        let v = uniform(var.elem_count(), seed + i as u64, spread);
        var.set(&Tensor::from_vec(v, var.dims(), &Device::Cpu).unwrap())
            .unwrap();
    }
    drop(data);
    vm
}

struct Inputs {
    batch: usize,
    time: usize,
    scaled: Vec<f32>,
    noise: Vec<f32>,
    excitation: Option<Vec<f32>>,
    /// Measured channels `[batch, frames, N]`, for a student with them: amplitudes from
    /// 0 to 0.5, a third of them silent.
    measured: Option<Vec<f32>>,
}

fn inputs(cfg: &StudentAutoencoderConfig, batch: usize, frames: usize) -> Inputs {
    let time = frames * cfg.student.hop_length;
    let e = cfg.student.excitation_channels();
    Inputs {
        batch,
        time,
        scaled: scaled_audio(batch, time, 5),
        noise: uniform(batch * time, 6, 2.0),
        excitation: (cfg.student.excitation_harmonics > 0)
            .then(|| uniform(batch * time * e, 7, 1.0)),
        measured: (cfg.student.measured_channels() > 0).then(|| {
            uniform(batch * frames * cfg.student.measured_channels(), 13, 1.0)
                .into_iter()
                .map(|v| autoencoder::student::model::measured_channel((v - 0.33).max(0.0) * 0.75))
                .collect()
        }),
    }
}

fn batch(x: &Inputs) -> StudentBatch<'_> {
    StudentBatch {
        batch: x.batch,
        time: x.time,
        scaled: &x.scaled,
        noise: &x.noise,
        excitation: x.excitation.as_deref(),
        bank_target: None,
        measured: x.measured.as_deref(),
    }
}

/// The measured channels of `x` as the f64 reference takes them.
fn measured_tensor(cfg: &StudentAutoencoderConfig, x: &Inputs) -> Option<Tensor> {
    let frames = x.time / cfg.student.hop_length;
    let n = cfg.student.measured_channels();
    x.measured
        .as_ref()
        .map(|m| f64_tensor(m, &[x.batch, frames, n]))
}

fn f64_tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape, &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
}

/// A copy of the variables in f64, and the model over them.
fn f64_model(cfg: &StudentAutoencoderConfig, vm: &VarMap) -> (VarMap, StudentAutoencoder) {
    let f64_vm = VarMap::new();
    {
        let mut dst = f64_vm.data().lock().unwrap();
        for (name, var) in vm.data().lock().unwrap().iter() {
            let t = var.as_tensor().to_dtype(DType::F64).unwrap();
            dst.insert(name.clone(), Var::from_tensor(&t).unwrap());
        }
    }
    let model = StudentAutoencoder::new(
        cfg,
        &VarBuilder::from_varmap(&f64_vm, DType::F64, &Device::Cpu),
    )
    .unwrap();
    (f64_vm, model)
}

/// The reference audio and the gradients of `Σ audio · r` (f64 autograd).
fn reference(
    cfg: &StudentAutoencoderConfig,
    vm: &VarMap,
    x: &Inputs,
    r: &[f32],
) -> (Vec<f64>, HashMap<String, Vec<f64>>) {
    let (f64_vm, model) = f64_model(cfg, vm);
    let (b, t) = (x.batch, x.time);
    let e = cfg.student.excitation_channels();
    let exc = x.excitation.as_ref().map(|v| f64_tensor(v, &[b, t, e]));
    let enc = model
        .encode(
            &f64_tensor(&x.scaled, &[b, t]),
            measured_tensor(cfg, x).as_ref(),
        )
        .unwrap();
    let out = model
        .render(&f64_tensor(&x.noise, &[b, t]), &enc, exc.as_ref())
        .unwrap();
    let loss = (&out.audio * f64_tensor(r, &[b, t]))
        .unwrap()
        .sum_all()
        .unwrap();
    let grads = loss.backward().unwrap();
    let audio = out.audio.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let g = f64_vm
        .data()
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(name, var)| {
            grads
                .get(var.as_tensor())
                .map(|g| (name.clone(), g.flatten_all().unwrap().to_vec1().unwrap()))
        })
        .collect();
    (audio, g)
}

/// Loads the variables of `vm` into `step`.
fn load_vars(step: &mut FusedStudent, vm: &VarMap) {
    let vars = vm.data().lock().unwrap();
    step.load(|name| vars.get(name).map(|v| v.as_tensor()))
        .unwrap();
}

/// A backward pass's gradients, flattened, by name.
fn flat(grads: Vec<(String, Tensor)>) -> HashMap<String, Vec<f32>> {
    grads
        .into_iter()
        .map(|(n, g)| (n, g.flatten_all().unwrap().to_vec1().unwrap()))
        .collect()
}

/// A fused gradient within 1e-4 of the norm of its f64 reference.
fn assert_gradient_close(name: &str, want: &[f64], got: &[f32]) {
    let norm = want.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-3);
    let err = want
        .iter()
        .zip(got)
        .map(|(a, b)| (a - f64::from(*b)).powi(2))
        .sum::<f64>()
        .sqrt();
    assert!(
        err <= 1e-4 * norm,
        "{name}: gradient off by {err:e} (norm {norm:e})"
    );
}

fn fused(
    cfg: &StudentAutoencoderConfig,
    vm: &VarMap,
    x: &Inputs,
    r: &[f32],
    threads: usize,
    isa: Isa,
) -> (Vec<f32>, HashMap<String, Vec<f32>>) {
    let mut step = FusedStudent::with_isa(cfg, threads, isa).unwrap();
    load_vars(&mut step, vm);
    let audio = step.forward(&batch(x)).unwrap();
    let grads = flat(step.backward(&batch(x), r).unwrap());
    (audio, grads)
}

fn agree(cfg: &StudentAutoencoderConfig, threads: usize, isa: Isa) {
    let vm = random(cfg, 11);
    let x = inputs(cfg, 3, 6);
    let r = uniform(x.batch * x.time, 9, 1.0);
    let (want_audio, want) = reference(cfg, &vm, &x, &r);
    let (audio, got) = fused(cfg, &vm, &x, &r, threads, isa);
    let scale = want_audio.iter().fold(0f64, |m, v| m.max(v.abs())).max(1.0);
    for (i, (a, b)) in audio.iter().zip(&want_audio).enumerate() {
        assert!(
            (f64::from(*a) - b).abs() <= 1e-5 * scale,
            "{cfg:?}: audio[{i}] {a} against {b}"
        );
    }
    let mut names: Vec<&String> = want.keys().collect();
    names.sort();
    let got_names: std::collections::BTreeSet<&String> = got.keys().collect();
    assert_eq!(
        got_names,
        names.iter().copied().collect(),
        "the same variables get gradients"
    );
    for name in names {
        assert_gradient_close(name, &want[name], &got[name]);
    }
}

#[test]
fn the_fused_pass_equals_autograd() {
    for (flows, taps, harmonics, subpartials, bank) in [
        (vec![3], 3, 0, 0, false),
        (vec![2, 3], 3, 2, 0, false),
        (vec![3, 2], 2, 2, 3, false),
        (vec![1, 1, 2], 3, 1, 0, false),
        (vec![2, 2], 3, 2, 3, true),
    ] {
        let mut cfg = config(flows, taps, harmonics, subpartials);
        cfg.student.subpartial_bank = bank;
        agree(&cfg, 1, Isa::detect());
        agree(&cfg, 2, Isa::Generic);
    }
    // Measured sub-partials: the frames the flows and the bank read end in them.
    let cfg = measured(config(vec![2, 2], 3, 2, 3));
    agree(&cfg, 1, Isa::detect());
    agree(&cfg, 2, Isa::Generic);
}

#[test]
fn a_measured_batch_needs_its_channels() {
    let cfg = measured(config(vec![2], 3, 2, 3));
    let vm = random(&cfg, 5);
    let x = inputs(&cfg, 2, 4);
    let mut step = FusedStudent::new(&cfg, 1).unwrap();
    load_vars(&mut step, &vm);
    let without = StudentBatch {
        measured: None,
        ..batch(&x)
    };
    assert!(step.forward(&without).is_err());
    let m = x.measured.as_ref().unwrap();
    let short = StudentBatch {
        measured: Some(&m[1..]),
        ..batch(&x)
    };
    assert!(step.forward(&short).is_err());
    step.forward(&batch(&x)).unwrap();
}

#[test]
fn the_variables_are_the_models() {
    let mut banked = config(vec![2, 3], 3, 2, 3);
    banked.student.subpartial_bank = true;
    for cfg in [
        config(vec![2, 3], 3, 2, 3),
        banked,
        measured(config(vec![2, 3], 3, 2, 3)),
        StudentAutoencoderConfig::small(),
    ] {
        let vm = VarMap::new();
        StudentAutoencoder::new(
            &cfg,
            &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let want: HashMap<String, Vec<usize>> = vm
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.dims().to_vec()))
            .collect();
        let got: HashMap<String, Vec<usize>> = variable_shapes(&cfg).into_iter().collect();
        assert_eq!(got, want);
    }
}

#[test]
fn the_objective_backpropagates_through_it() {
    // The real objective's gradient with respect to the audio, handed to the backward
    // pass, equals autograd through the whole model.
    let mut cfg = config(vec![2, 2], 3, 2, 2);
    cfg.student.subpartial_bank = true;
    let vm = random(&cfg, 21);
    let x = inputs(&cfg, 2, 8);
    let weights = LossWeights {
        spectral: 1.0,
        power: 2.0,
        distill: 0.0,
    };
    let objective = Objective::with_sizes(weights, &[32, 16], &Device::Cpu).unwrap();
    let target = Tensor::from_vec(
        uniform(x.batch * x.time, 3, 0.5),
        (x.batch, x.time),
        &Device::Cpu,
    )
    .unwrap();
    // Reference: autograd through the f32 model.
    let model = StudentAutoencoder::new(
        &cfg,
        &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let e = cfg.student.excitation_channels();
    let t = |v: &[f32], s: &[usize]| Tensor::from_slice(v, s, &Device::Cpu).unwrap();
    let exc = x.excitation.as_ref().map(|v| t(v, &[x.batch, x.time, e]));
    let (loss, terms) = objective
        .evaluate(
            &model,
            None,
            &target,
            &t(&x.scaled, &[x.batch, x.time]),
            &t(&x.noise, &[x.batch, x.time]),
            exc.as_ref(),
        )
        .unwrap();
    let grads = loss.backward().unwrap();
    // Fused: forward, the objective on its audio, backward.
    let mut step = FusedStudent::new(&cfg, 2).unwrap();
    load_vars(&mut step, &vm);
    let audio = step.forward(&batch(&x)).unwrap();
    let candidate = Var::from_tensor(&t(&audio, &[x.batch, x.time])).unwrap();
    let (floss, fterms) = objective
        .score_audio(candidate.as_tensor(), &target)
        .unwrap();
    assert!((fterms.total - terms.total).abs() <= 1e-4 * terms.total.abs());
    let d = floss
        .backward()
        .unwrap()
        .get(candidate.as_tensor())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let fgrads: HashMap<String, Tensor> =
        step.backward(&batch(&x), &d).unwrap().into_iter().collect();
    for (name, var) in vm.data().lock().unwrap().iter() {
        let Some(want) = grads.get(var.as_tensor()) else {
            assert!(
                !fgrads.contains_key(name),
                "{name} got a gradient autograd did not give"
            );
            continue;
        };
        let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        let got: Vec<f32> = fgrads[name].flatten_all().unwrap().to_vec1().unwrap();
        let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-6);
        let err = want
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt();
        // f32 on both sides, through STFTs of a few hundred terms: 1e-3 of the norm.
        assert!(err <= 1e-3 * norm, "{name}: off by {err:e} of {norm:e}");
    }
}

#[test]
fn the_fused_pass_is_deterministic_and_checks_its_input() {
    let cfg = config(vec![2, 2], 3, 2, 1);
    let vm = random(&cfg, 4);
    let x = inputs(&cfg, 5, 4);
    let r = uniform(x.batch * x.time, 2, 1.0);
    let one = fused(&cfg, &vm, &x, &r, 1, Isa::detect());
    let two = fused(&cfg, &vm, &x, &r, 2, Isa::detect());
    let three = fused(&cfg, &vm, &x, &r, 3, Isa::detect());
    assert_eq!(one.0, two.0);
    assert_eq!(one.1, two.1, "the sum does not depend on the threads");
    assert_eq!(one.1, three.1);
    let mut step = FusedStudent::new(&cfg, 2).unwrap();
    assert!(step.forward(&batch(&x)).is_err(), "no parameters loaded");
    load_vars(&mut step, &vm);
    assert!(
        step.backward(&batch(&x), &r).is_err(),
        "a backward pass needs a forward pass"
    );
    let short = StudentBatch {
        noise: &x.noise[1..],
        ..batch(&x)
    };
    assert!(
        step.forward(&short).is_err(),
        "the noise is one sample short"
    );
    step.forward(&batch(&x)).unwrap();
    assert!(step.backward(&batch(&x), &r[1..]).is_err());
}

/// The bank's match term through the fused pass: its value, and the gradients of
/// `Σ audio · r + weight · mean(bank_match)`, equal f64 autograd through the reference
/// model's gains; without amplitudes (or with weight 0) it changes nothing.
#[test]
fn the_bank_match_term_equals_autograd() {
    use autoencoder::student::model::BANK_MATCH_FLOOR;
    let mut cfg = config(vec![2, 2], 3, 2, 3);
    cfg.student.subpartial_bank = true;
    let vm = random(&cfg, 17);
    let x = inputs(&cfg, 3, 5);
    let r = uniform(x.batch * x.time, 8, 1.0);
    let frames = x.time / cfg.student.hop_length;
    let n = cfg.student.excitation_subpartials;
    // Targets around the gains' scale (and some at zero: the floor).
    let amplitudes: Vec<f32> = uniform(x.batch * frames * n, 12, 1.0)
        .into_iter()
        .map(|v| if v < -0.5 { 0.0 } else { v.abs() * 2.0 })
        .collect();
    let weight = 0.7f32;
    // Reference, f64.
    let (f64_vm, model) = f64_model(&cfg, &vm);
    let (b, t) = (x.batch, x.time);
    let e = cfg.student.excitation_channels();
    let exc = f64_tensor(x.excitation.as_ref().unwrap(), &[b, t, e]);
    let enc = model.encode(&f64_tensor(&x.scaled, &[b, t]), None).unwrap();
    let out = model
        .render(&f64_tensor(&x.noise, &[b, t]), &enc, Some(&exc))
        .unwrap();
    let gains = model.student().bank().unwrap().gains(&enc).unwrap();
    let eps = f64::from(BANK_MATCH_FLOOR);
    let target = f64_tensor(&amplitudes, &[b, frames, n])
        .affine(1.0, eps)
        .unwrap()
        .log()
        .unwrap();
    let matched = (gains.affine(1.0, eps).unwrap().log().unwrap() - target)
        .unwrap()
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap();
    let loss = ((&out.audio * f64_tensor(&r, &[b, t]))
        .unwrap()
        .sum_all()
        .unwrap()
        + matched.affine(f64::from(weight), 0.0).unwrap())
    .unwrap();
    let grads = loss.backward().unwrap();
    // Fused.
    let mut step = FusedStudent::new(&cfg, 2).unwrap();
    load_vars(&mut step, &vm);
    let with = StudentBatch {
        bank_target: Some((&amplitudes, weight)),
        ..batch(&x)
    };
    step.forward(&with).unwrap();
    let value = step.bank_loss().unwrap();
    let want_value = matched.to_scalar::<f64>().unwrap();
    assert!(
        (value - want_value).abs() <= 1e-4 * want_value,
        "{value} against {want_value}"
    );
    let got = flat(step.backward(&with, &r).unwrap());
    let mut checked = 0;
    for (name, var) in f64_vm.data().lock().unwrap().iter() {
        let Some(want) = grads.get(var.as_tensor()) else {
            continue;
        };
        let want: Vec<f64> = want.flatten_all().unwrap().to_vec1().unwrap();
        assert_gradient_close(name, &want, &got[name]);
        checked += 1;
    }
    assert!(checked > 10);
    // No amplitudes: no term, and the plain gradients.
    step.forward(&batch(&x)).unwrap();
    assert!(step.bank_loss().is_none());
    let plain = flat(step.backward(&batch(&x), &r).unwrap());
    assert_ne!(
        plain["subpartial_bank/biases"],
        got["subpartial_bank/biases"]
    );
    let (_, reference_plain) = fused(&cfg, &vm, &x, &r, 1, Isa::detect());
    assert_eq!(plain.len(), reference_plain.len());
    // A batch whose amplitudes are the wrong length is refused.
    let short = StudentBatch {
        bank_target: Some((&amplitudes[1..], weight)),
        ..batch(&x)
    };
    assert!(step.forward(&short).is_err());
}
