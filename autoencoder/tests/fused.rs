#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The fused training step against candle's autograd (the reference, in f64): the loss
//! within 1e-5 relative and every gradient within 1e-4 of its norm, over filter lengths
//! 1–4, ragged widths, with and without the excitation (into the layers, the input, both)
//! and a noisy decoder input; a finite-difference check of its own; determinism.

mod common;

use std::collections::HashMap;

use autoencoder::cpu::Isa;
use autoencoder::wavenet::fused::{FusedBatch, FusedStep};
use autoencoder::wavenet::weights::{BiasInit, varmap};
use autoencoder::{Config, ExcitationInto, WaveNetAutoencoder};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::{scaled_audio, tiny};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

struct Case {
    cfg: Config,
    batch: usize,
    time: usize,
    noisy_input: bool,
}

fn uniform(n: usize, seed: u64, spread: f32) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| spread * (2.0 * rng.random::<f32>() - 1.0))
        .collect()
}

struct Inputs {
    scaled: Vec<f32>,
    inputs: Option<Vec<f32>>,
    excitation: Option<Vec<f32>>,
}

fn inputs(case: &Case) -> Inputs {
    let n = case.batch * case.time;
    let scaled = scaled_audio(case.batch, case.time, 5);
    let inputs = case.noisy_input.then(|| {
        scaled
            .iter()
            .zip(uniform(n, 6, 0.05))
            .map(|(x, e)| x + e)
            .collect()
    });
    let e = 2 * case.cfg.excitation_harmonics;
    let excitation = (e > 0).then(|| uniform(n * e, 7, 1.0));
    Inputs {
        scaled,
        inputs,
        excitation,
    }
}

fn batch<'a>(case: &Case, x: &'a Inputs) -> FusedBatch<'a> {
    FusedBatch {
        batch: case.batch,
        time: case.time,
        scaled: &x.scaled,
        inputs: x.inputs.as_deref(),
        excitation: x.excitation.as_deref(),
    }
}

fn vars(vm: &VarMap) -> HashMap<String, Tensor> {
    vm.data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect()
}

/// The reference's loss and gradients (f64 autograd through the candle model).
fn reference(case: &Case, x: &Inputs, vm: &VarMap) -> (f64, HashMap<String, Vec<f64>>) {
    let dev = Device::Cpu;
    let model =
        WaveNetAutoencoder::new(&case.cfg, VarBuilder::from_varmap(vm, DType::F64, &dev)).unwrap();
    let t = |v: &[f32], shape: &[usize]| {
        Tensor::from_slice(v, shape, &dev)
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    };
    let (b, time) = (case.batch, case.time);
    let scaled = t(&x.scaled, &[b, time]);
    let inputs = x.inputs.as_ref().map(|v| t(v, &[b, time]));
    let e = 2 * case.cfg.excitation_harmonics;
    let excitation = x.excitation.as_ref().map(|v| t(v, &[b, time, e]));
    let loss = model
        .loss_excited(&scaled, inputs.as_ref(), excitation.as_ref())
        .unwrap();
    let grads = loss.backward().unwrap();
    let out = vars(vm)
        .into_iter()
        .filter_map(|(name, var)| {
            grads
                .get(&var)
                .map(|g| (name, g.flatten_all().unwrap().to_vec1::<f64>().unwrap()))
        })
        .collect();
    (loss.to_scalar::<f64>().unwrap(), out)
}

fn fused(
    case: &Case,
    x: &Inputs,
    vm: &VarMap,
    threads: usize,
    isa: Isa,
) -> (f64, HashMap<String, Vec<f32>>) {
    let mut step = FusedStep::with_isa(&case.cfg, threads, isa).unwrap();
    let values: HashMap<String, Tensor> = vars(vm)
        .into_iter()
        .map(|(k, v)| (k, v.to_dtype(DType::F32).unwrap()))
        .collect();
    step.load(|name| values.get(name)).unwrap();
    let out = step.run(&batch(case, x)).unwrap();
    let grads = out
        .grads
        .into_iter()
        .map(|(name, g)| (name, g.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect();
    (out.loss, grads)
}

fn check(case: &Case, label: &str) {
    let x = inputs(case);
    // Weights rounded to f32 first, so both paths see the same values.
    let vm = varmap(
        &case.cfg,
        3,
        BiasInit::Uniform(0.2),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let vm64 = VarMap::new();
    for (name, t) in vars(&vm) {
        vm64.data().lock().unwrap().insert(
            name,
            candle_core::Var::from_tensor(&t.to_dtype(DType::F64).unwrap()).unwrap(),
        );
    }
    let (ref_loss, ref_grads) = reference(case, &x, &vm64);
    for isa in [Isa::Generic, Isa::detect()] {
        let (loss, grads) = fused(case, &x, &vm, 2, isa);
        assert!(
            ((loss - ref_loss) / ref_loss).abs() < 1e-5,
            "{label} ({isa:?}): loss {loss} vs reference {ref_loss}"
        );
        let mut names: Vec<_> = ref_grads.keys().collect();
        names.sort();
        let mut fused_names: Vec<_> = grads.keys().collect();
        fused_names.sort();
        assert_eq!(
            names, fused_names,
            "{label}: the variables a gradient reaches"
        );
        for name in names {
            let (r, f) = (&ref_grads[name], &grads[name]);
            let norm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
            let diff = r
                .iter()
                .zip(f)
                .map(|(a, &b)| (a - f64::from(b)).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                diff <= 1e-4 * norm,
                "{label} ({isa:?}): {name}: ‖fused − reference‖ = {diff:e}, ‖reference‖ = {norm:e}"
            );
        }
    }
}

fn with(cfg: Config, f: impl FnOnce(&mut Config)) -> Config {
    let mut cfg = cfg;
    f(&mut cfg);
    cfg
}

#[test]
fn filter_lengths_one_to_four_match_the_reference() {
    for filter_length in 1..=4 {
        let cfg = with(tiny(filter_length, 3, 5, 16), |c| {
            c.ae_filter_length = filter_length
        });
        let case = Case {
            cfg,
            batch: 3,
            time: 64,
            noisy_input: false,
        };
        check(&case, &format!("filter length {filter_length}"));
    }
}

#[test]
fn ragged_widths_and_a_noisy_input_match_the_reference() {
    let cfg = with(tiny(3, 4, 6, 32), |c| {
        c.width = 7;
        c.skip_width = 11;
        c.ae_width = 9;
        c.ae_bottleneck_width = 5;
        c.ae_filter_length = 2;
    });
    check(
        &Case {
            cfg,
            batch: 2,
            time: 96,
            noisy_input: true,
        },
        "ragged widths",
    );
}

#[test]
fn the_excitation_matches_the_reference_wherever_it_goes() {
    for into in [
        ExcitationInto::Layers,
        ExcitationInto::Input,
        ExcitationInto::Both,
    ] {
        let cfg = with(tiny(3, 3, 4, 16), |c| {
            c.excitation_harmonics = 3;
            c.excitation_into = into;
        });
        let case = Case {
            cfg,
            batch: 2,
            time: 48,
            noisy_input: true,
        };
        check(&case, &format!("excitation into {into:?}"));
    }
}

#[test]
fn a_pitched_model_given_no_excitation_matches_the_reference() {
    let cfg = with(tiny(3, 3, 4, 16), |c| c.excitation_harmonics = 2);
    let case = Case {
        cfg: cfg.clone(),
        batch: 2,
        time: 32,
        noisy_input: false,
    };
    let mut x = inputs(&case);
    x.excitation = None;
    let vm = varmap(&cfg, 3, BiasInit::Uniform(0.2), DType::F32, &Device::Cpu).unwrap();
    let (loss, grads) = fused(&case, &x, &vm, 1, Isa::detect());
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu))
            .unwrap();
    let scaled = Tensor::from_slice(&x.scaled, (2, 32), &Device::Cpu).unwrap();
    let reference = model.loss(&scaled).unwrap().to_scalar::<f32>().unwrap();
    assert!(((loss - f64::from(reference)) / f64::from(reference)).abs() < 1e-5);
    assert!(
        grads.keys().all(|k| !k.starts_with("exc_")),
        "no gradient reaches an unused projection"
    );
}

/// The fused loss along its own gradient: `(L(θ + εu) − L(θ − εu)) / 2ε = ‖g‖` for the
/// unit vector `u = g / ‖g‖`. In f32 a step of ε = 1e-2 keeps the rounding (~1e-7·L/ε)
/// far below the 1 % allowed, and the curvature term (ε²·L‴) too.
#[test]
fn the_fused_gradient_matches_finite_differences_of_the_fused_loss() {
    let cfg = with(tiny(3, 3, 4, 16), |c| c.excitation_harmonics = 2);
    let case = Case {
        cfg: cfg.clone(),
        batch: 2,
        time: 48,
        noisy_input: true,
    };
    let x = inputs(&case);
    let vm = varmap(&cfg, 9, BiasInit::Uniform(0.2), DType::F32, &Device::Cpu).unwrap();
    let mut step = FusedStep::new(&cfg, 2).unwrap();
    let base = vars(&vm);
    step.load(|n| base.get(n)).unwrap();
    let out = step.run(&batch(&case, &x)).unwrap();
    let grads: HashMap<String, Tensor> = out.grads.into_iter().collect();
    let norm = grads
        .values()
        .map(|g| {
            g.sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        })
        .sum::<f32>()
        .sqrt();
    let eps = 1e-2;
    let loss_at = |step: &mut FusedStep, sign: f64| {
        let moved: HashMap<String, Tensor> = base
            .iter()
            .map(|(k, v)| {
                let v = match grads.get(k) {
                    Some(g) => (v + (g * (sign * eps / f64::from(norm))).unwrap()).unwrap(),
                    None => v.clone(),
                };
                (k.clone(), v)
            })
            .collect();
        step.load(|n| moved.get(n)).unwrap();
        step.run(&batch(&case, &x)).unwrap().loss
    };
    let numeric = (loss_at(&mut step, 1.0) - loss_at(&mut step, -1.0)) / (2.0 * eps);
    let rel = (numeric - f64::from(norm)).abs() / f64::from(norm);
    assert!(rel < 1e-2, "directional derivative {numeric} vs ‖g‖ {norm}");
}

/// The same gradients bit for bit whatever the thread count (crops summed in order).
#[test]
fn the_result_does_not_depend_on_the_threads() {
    let cfg = with(tiny(2, 3, 4, 16), |c| c.excitation_harmonics = 2);
    let case = Case {
        cfg: cfg.clone(),
        batch: 5,
        time: 32,
        noisy_input: true,
    };
    let x = inputs(&case);
    let vm = varmap(&cfg, 4, BiasInit::Uniform(0.2), DType::F32, &Device::Cpu).unwrap();
    let one = fused(&case, &x, &vm, 1, Isa::detect());
    let three = fused(&case, &x, &vm, 3, Isa::detect());
    assert_eq!(one.0.to_bits(), three.0.to_bits());
    for (name, g) in &one.1 {
        assert!(
            g.iter()
                .zip(&three.1[name])
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}"
        );
    }
}

#[test]
fn bad_batches_are_refused() {
    let cfg = tiny(3, 3, 4, 16);
    let vm = varmap(&cfg, 4, BiasInit::Zero, DType::F32, &Device::Cpu).unwrap();
    let mut step = FusedStep::new(&cfg, 1).unwrap();
    let audio = vec![0f32; 40];
    let b = FusedBatch {
        batch: 1,
        time: 40,
        scaled: &audio,
        inputs: None,
        excitation: None,
    };
    assert!(step.run(&b).is_err(), "no parameters loaded");
    let values = vars(&vm);
    step.load(|n| values.get(n)).unwrap();
    assert!(step.run(&b).is_err(), "40 is not a multiple of the hop 16");
    let b = FusedBatch {
        batch: 2,
        time: 16,
        scaled: &audio,
        inputs: None,
        excitation: None,
    };
    assert!(step.run(&b).is_err(), "40 values for 2 × 16");
}
