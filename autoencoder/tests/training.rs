#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Gradients: finite differences, every variable reached, and an optimiser step that helps.

mod common;

use autoencoder::WaveNetAutoencoder;
use autoencoder::nn::{Conv1d, Conv1dConfig, Padding};
use autoencoder::wavenet::weights::{BiasInit, varmap};
use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use common::{scaled_audio, tiny};

fn var(vm: &VarMap, name: &str) -> Var {
    vm.data().lock().unwrap().get(name).unwrap().clone()
}

fn nudge(v: &Var, index: usize, delta: f64) {
    let mut values: Vec<f64> = v.flatten_all().unwrap().to_vec1().unwrap();
    values[index] += delta;
    v.set(&Tensor::from_vec(values, v.shape(), v.device()).unwrap())
        .unwrap();
}

fn at(t: &Tensor, index: usize) -> f64 {
    t.flatten_all().unwrap().to_vec1::<f64>().unwrap()[index]
}

/// Central differences in f64 against backprop: `∂loss/∂θ ≈ (L(θ+ε) − L(θ−ε)) / 2ε`.
///
/// Agreement is relative (`tol`) plus the rounding floor of the difference quotient itself:
/// each loss carries an error of about `u·|L|` (u = 2⁻⁵³, summed terms adding a few ulps), so
/// the quotient is uncertain by `~4u·|L| / ε`. A gradient below that floor cannot be judged
/// relatively; an absolute 1e-9 at ε = 1e-6 was once exceeded by a correct one (CI).
fn check_gradient(loss: &dyn Fn() -> Tensor, v: &Var, indices: &[usize], eps: f64, tol: f64) {
    let grads = loss().backward().unwrap();
    let analytic = grads
        .get(v.as_tensor())
        .expect("no gradient reached the variable");
    for &i in indices {
        nudge(v, i, eps);
        let plus = loss().to_scalar::<f64>().unwrap();
        nudge(v, i, -2.0 * eps);
        let minus = loss().to_scalar::<f64>().unwrap();
        nudge(v, i, eps);
        let numeric = (plus - minus) / (2.0 * eps);
        let a = at(analytic, i);
        let floor = 16.0 * f64::EPSILON * plus.abs().max(minus.abs()).max(1.0) / eps;
        assert!(
            (a - numeric).abs() <= tol * a.abs().max(numeric.abs()) + floor,
            "index {i}: backprop {a} vs finite difference {numeric} (rounding floor {floor:e})"
        );
    }
}

/// Deterministic standard-normal-ish values (a seeded ChaCha stream, Box–Muller).
fn seeded(shape: (usize, usize, usize), seed: u64) -> Tensor {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let n = shape.0 * shape.1 * shape.2;
    let values: Vec<f64> = (0..n)
        .map(|_| {
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

#[test]
fn dilated_conv_gradient_matches_finite_differences() {
    let dev = Device::Cpu;
    for padding in [Padding::Causal, Padding::Same] {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F64, &dev);
        let cfg = Conv1dConfig {
            filter_length: 3,
            dilation: 4,
            padding,
        };
        let conv = Conv1d::new(&vb, "dilatedconv_1", 3, 5, cfg).unwrap();
        // Biases start at zero; give them values so their gradient is not trivially tested.
        nudge(&var(&vm, "dilatedconv_1/biases"), 2, 0.3);
        // Seeded values everywhere (the weights' initialiser draws from an unseeded stream), so
        // a failure reproduces.
        let w = var(&vm, "dilatedconv_1/W");
        w.set(
            &(seeded((3, 3, 5), 11) * 0.5)
                .unwrap()
                .reshape(w.shape())
                .unwrap(),
        )
        .unwrap();
        let x = Var::from_tensor(&seeded((2, 24, 3), 12)).unwrap();
        let r = seeded((2, 24, 5), 13);
        // A weighted sum of a nonlinearity of the output, so the gradient depends on it.
        let loss = || {
            (conv.forward(x.as_tensor()).unwrap().tanh().unwrap() * &r)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        // f64 with ε = 1e-6: truncation error ε²·f‴ ≈ 1e-12, rounding as `check_gradient`
        // says; 1e-6 relative is loose for a correct gradient and tight for a wrong one.
        check_gradient(&loss, &w, &[0, 7, 16, 22, 31, 44], 1e-6, 1e-6);
        check_gradient(
            &loss,
            &var(&vm, "dilatedconv_1/biases"),
            &[0, 2, 4],
            1e-6,
            1e-6,
        );
        // The input's gradient, at the edges where padding matters and in the middle.
        check_gradient(&loss, &x, &[0, 1, 5, 35, 70, 143], 1e-6, 1e-6);
    }
}

#[test]
fn model_gradient_matches_finite_differences_through_every_part() {
    let dev = Device::Cpu;
    let cfg = tiny(3, 3, 4, 16);
    let vm = varmap(&cfg, 5, BiasInit::Uniform(0.2), DType::F64, &dev).unwrap();
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F64, &dev)).unwrap();
    let scaled: Vec<f64> = scaled_audio(2, 64, 3).into_iter().map(f64::from).collect();
    let x = Tensor::from_vec(scaled, (2, 64), &dev).unwrap();
    let loss = || model.loss(&x).unwrap();
    // ε = 1e-5 through ReLUs: a kink crossed inside ±ε would show as a large error; with
    // this seed none is, and smooth parts agree to ~1e-8.
    for (name, indices) in [
        ("startconv/W", &[0usize, 5][..]),
        ("dilatedconv_2/W", &[3, 100]),
        ("cond_map_1/biases", &[1, 9]),
        ("skip_3/W", &[4]),
        ("out1/W", &[7]),
        ("logits/biases", &[0, 128]),
        ("ae_startconv/W", &[2]),
        ("ae_dilatedconv_2/W", &[11]),
        ("ae_bottleneck/W", &[1, 8]),
    ] {
        check_gradient(&loss, &var(&vm, name), indices, 1e-5, 1e-5);
    }
}

#[test]
fn gradients_reach_every_variable() {
    let dev = Device::Cpu;
    let cfg = tiny(3, 3, 4, 16);
    let vm = varmap(&cfg, 6, BiasInit::Uniform(0.2), DType::F32, &dev).unwrap();
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
    let x = Tensor::from_vec(scaled_audio(2, 64, 4), (2, 64), &dev).unwrap();
    let grads = model.loss(&x).unwrap().backward().unwrap();
    let data = vm.data().lock().unwrap();
    assert_eq!(
        data.len(),
        autoencoder::wavenet::weights::shapes(&cfg).len()
    );
    // In h512_bo16.py the last layer's residual output is never read (only the skips
    // go on), so `res_{num_layers}` is dead weight there too: no gradient reaches it.
    let dead = [
        format!("res_{}/W", cfg.num_layers),
        format!("res_{}/biases", cfg.num_layers),
    ];
    for (name, v) in data.iter() {
        if dead.contains(name) {
            assert!(
                grads.get(v.as_tensor()).is_none(),
                "{name} should be unused"
            );
            continue;
        }
        let g = grads
            .get(v.as_tensor())
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let norm = g
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(norm > 0.0, "zero gradient for {name}");
    }
}

#[test]
fn one_adamw_step_lowers_the_loss() {
    let dev = Device::Cpu;
    let cfg = tiny(3, 3, 4, 16);
    let vm = varmap(&cfg, 7, BiasInit::Zero, DType::F32, &dev).unwrap();
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
    let x = Tensor::from_vec(scaled_audio(4, 128, 8), (4, 128), &dev).unwrap();
    let mut opt = AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let before = model.loss(&x).unwrap();
    opt.backward_step(&before).unwrap();
    let before = before.to_scalar::<f32>().unwrap();
    let after = model.loss(&x).unwrap().to_scalar::<f32>().unwrap();
    // A fresh model sits near ln 256 = 5.55 nats; one step of 1e-3 on every weight moves
    // it measurably (≈ 0.05 nats here), far beyond f32 noise.
    assert!(after < before - 1e-3, "loss {before} → {after}");
}
