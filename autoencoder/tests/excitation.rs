#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The harmonic excitation through every decoder: the parallel (teacher-forced) decoder,
//! the reference generator, the CPU decoder and the tensor decoder see the same f0
//! curve and compute the same distribution; the curve reaches the output; an all-zero
//! curve is the model without the excitation; gradients reach its projections.

mod common;

use std::collections::HashMap;

use autoencoder::cpu::Isa;
use autoencoder::excitation::{Oscillator, excitation};
use autoencoder::mulaw::CLASSES;
use autoencoder::sampling::softmax;
use autoencoder::wavenet::cpu::{CpuGenerator, State};
use autoencoder::wavenet::weights::{BiasInit, varmap};
use autoencoder::{Config, ExcitationInto, FastGenerator, TensorGenerator, WaveNetAutoencoder};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::{frames_of, max_abs_diff, scaled_audio, tensor, tiny, wide};

fn pitched(cfg: Config, harmonics: usize, into: ExcitationInto) -> Config {
    Config {
        excitation_harmonics: harmonics,
        excitation_into: into,
        ..cfg
    }
}

/// Per voice a glide (so the phase accumulates a varying f0), high enough at the end that
/// some harmonics pass the cutoff, with voice 1 unpitched for a stretch.
fn f0_curves(voices: usize, length: usize) -> Vec<f32> {
    let mut f0 = Vec::with_capacity(voices * length);
    for v in 0..voices {
        for t in 0..length {
            let hz = 110.0 * (v + 1) as f32 + 3000.0 * t as f32 / length as f32;
            f0.push(if v == 1 && (length / 3..length / 2).contains(&t) {
                0.0
            } else {
                hz
            });
        }
    }
    f0
}

fn excitation_tensor(cfg: &Config, f0: &[f32], voices: usize, length: usize) -> Tensor {
    let k = cfg.excitation_harmonics;
    let mut all = Vec::new();
    for v in 0..voices {
        all.extend(excitation(
            &f0[v * length..(v + 1) * length],
            k,
            Oscillator::new(),
        ));
    }
    tensor(&all, &[voices, length, 2 * k])
}

/// Teacher-forced logits of the parallel decoder `[voice][t][256]`.
fn parallel_logits(
    model: &WaveNetAutoencoder,
    scaled: &[f32],
    enc: &[f32],
    f0: Option<&[f32]>,
    voices: usize,
    frames: usize,
) -> Vec<f32> {
    let cfg = model.config();
    let length = frames * cfg.ae_hop_length;
    let x = tensor(scaled, &[voices, length]);
    let e = tensor(enc, &[voices, frames, cfg.ae_bottleneck_width]);
    let exc = f0.map(|f0| excitation_tensor(cfg, f0, voices, length));
    model
        .decoder()
        .forward_excited(&x, &e, exc.as_ref())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn worst_probability(a: &[f32], b: &[f32]) -> f32 {
    let (mut pa, mut pb) = (vec![0f32; CLASSES], vec![0f32; CLASSES]);
    a.chunks_exact(CLASSES)
        .zip(b.chunks_exact(CLASSES))
        .map(|(x, y)| {
            softmax(x, &mut pa);
            softmax(y, &mut pb);
            max_abs_diff(&pa, &pb)
        })
        .fold(0.0, f32::max)
}

/// Every generator stepped teacher-forced with the f0 curve, against the parallel decoder.
fn check(cfg: &Config, voices: usize, frames: usize, seed: u64) {
    let model = common::random_model(cfg, seed);
    let (bn, hop) = (cfg.ae_bottleneck_width, cfg.ae_hop_length);
    let length = frames * hop;
    let enc = frames_of(voices, frames, bn, seed);
    let scaled = scaled_audio(voices, length, seed + 1);
    let f0 = f0_curves(voices, length);
    let parallel = parallel_logits(&model, &scaled, &enc, Some(&f0), voices, frames);

    let mut reference = FastGenerator::new(&model, voices).unwrap();
    let decoders: Vec<CpuGenerator> = [Isa::Generic, Isa::detect()]
        .into_iter()
        .map(|isa| CpuGenerator::with_isa(&model, isa).unwrap())
        .collect();
    let mut states: Vec<State> = decoders.iter().map(|d| State::new(d, voices)).collect();
    let tensorgen = TensorGenerator::new(&model, &Device::Cpu).unwrap();
    let mut run = tensorgen.start(voices).unwrap();

    let mut logits: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0f32; voices * length * CLASSES]);
    let mut previous = vec![0f32; voices];
    let mut frame = vec![0f32; voices * bn];
    let mut now = vec![0f32; voices];
    for t in 0..length {
        if t % hop == 0 {
            for v in 0..voices {
                let at = (v * frames + t / hop) * bn;
                frame[v * bn..(v + 1) * bn].copy_from_slice(&enc[at..at + bn]);
            }
            reference.set_frame(&frame).unwrap();
            for (d, s) in decoders.iter().zip(&mut states) {
                s.set_frame(d, &frame).unwrap();
            }
            tensorgen
                .set_frame(&mut run, &tensor(&frame, &[voices, bn]))
                .unwrap();
        }
        for v in 0..voices {
            now[v] = f0[v * length + t];
        }
        reference.set_f0(&now).unwrap();
        let outs: Vec<Vec<f32>> = {
            let mut outs = vec![reference.step(&previous).to_vec()];
            for (d, s) in decoders.iter().zip(&mut states) {
                s.set_f0(&now).unwrap();
                outs.push(s.step(d, &previous).to_vec());
            }
            let e = tensorgen.excitation(&mut run, &now, 1).unwrap();
            let e = e.map(|e| e.squeeze(0).unwrap());
            let x = tensor(&previous, &[voices, 1]);
            outs.push(
                tensorgen
                    .step_excited(&mut run, &x, e.as_ref())
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1()
                    .unwrap(),
            );
            outs
        };
        for (which, out) in outs.iter().enumerate() {
            for v in 0..voices {
                logits[which][(v * length + t) * CLASSES..][..CLASSES]
                    .copy_from_slice(&out[v * CLASSES..(v + 1) * CLASSES]);
            }
        }
        for v in 0..voices {
            previous[v] = scaled[v * length + t];
        }
    }
    // The reference against the parallel decoder: as in streaming.rs, the same sums in
    // another order, 1e-5 on probabilities. The fast decoders against the reference: as
    // in cpu_decoder.rs and tensor_decoder.rs, 1e-4 (fused multiply-adds, fast exp).
    let worst = worst_probability(&parallel, &logits[0]);
    assert!(worst < 1e-5, "{cfg:?}: reference vs parallel {worst}");
    for (name, fast) in [
        ("cpu generic", &logits[1]),
        ("cpu detected", &logits[2]),
        ("tensor", &logits[3]),
    ] {
        let worst = worst_probability(&logits[0], fast);
        assert!(worst < 1e-4, "{cfg:?}: {name} vs reference {worst}");
    }
}

#[test]
fn every_decoder_follows_the_same_f0_curve() {
    for into in [
        ExcitationInto::Layers,
        ExcitationInto::Input,
        ExcitationInto::Both,
    ] {
        check(&pitched(tiny(3, 4, 6, 32), 4, into), 3, 3, 1);
        check(&pitched(tiny(2, 3, 5, 16), 1, into), 2, 5, 2);
    }
    // Widths with ragged panels, more harmonics than fit under the cutoff at the top.
    check(&pitched(wide(40, 24), 12, ExcitationInto::Layers), 5, 2, 3);
}

#[test]
fn the_f0_curve_reaches_the_output() {
    let cfg = pitched(tiny(3, 4, 6, 32), 4, ExcitationInto::Layers);
    let model = common::random_model(&cfg, 4);
    let (voices, frames) = (2, 3);
    let length = frames * cfg.ae_hop_length;
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 4);
    let scaled = scaled_audio(voices, length, 5);
    let low = vec![220.0f32; voices * length];
    let high = vec![330.0f32; voices * length];
    let a = parallel_logits(&model, &scaled, &enc, Some(&low), voices, frames);
    let b = parallel_logits(&model, &scaled, &enc, Some(&high), voices, frames);
    assert!(
        max_abs_diff(&a, &b) > 1e-2,
        "a fifth up does not change the logits"
    );
}

#[test]
fn an_all_zero_curve_is_the_model_without_the_excitation() {
    let dev = Device::Cpu;
    for into in [
        ExcitationInto::Layers,
        ExcitationInto::Input,
        ExcitationInto::Both,
    ] {
        let cfg = pitched(tiny(3, 4, 6, 32), 4, into);
        let plain_cfg = pitched(cfg.clone(), 0, ExcitationInto::Layers);
        let weights =
            autoencoder::wavenet::weights::random(&cfg, 7, BiasInit::Uniform(0.2), &dev).unwrap();
        let plain: HashMap<String, Tensor> = weights
            .iter()
            .filter(|(name, _)| !name.starts_with("exc_"))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        assert!(plain.len() < weights.len());
        let excited =
            WaveNetAutoencoder::new(&cfg, VarBuilder::from_tensors(weights, DType::F32, &dev))
                .unwrap();
        let without = WaveNetAutoencoder::new(
            &plain_cfg,
            VarBuilder::from_tensors(plain, DType::F32, &dev),
        )
        .unwrap();
        let (voices, frames) = (2, 2);
        let length = frames * cfg.ae_hop_length;
        let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 8);
        let scaled = scaled_audio(voices, length, 9);
        let zeros = vec![0f32; voices * length];
        let a = parallel_logits(&excited, &scaled, &enc, Some(&zeros), voices, frames);
        let b = parallel_logits(&without, &scaled, &enc, None, voices, frames);
        assert_eq!(a, b, "{into:?}");
        // No curve at all is the same as zeros.
        let c = parallel_logits(&excited, &scaled, &enc, None, voices, frames);
        assert_eq!(a, c, "{into:?}");
    }
}

#[test]
fn gradients_reach_the_excitation_projections() {
    let dev = Device::Cpu;
    let cfg = pitched(tiny(3, 3, 4, 16), 3, ExcitationInto::Both);
    let vm = varmap(&cfg, 5, BiasInit::Uniform(0.2), DType::F64, &dev).unwrap();
    let model =
        WaveNetAutoencoder::new(&cfg, VarBuilder::from_varmap(&vm, DType::F64, &dev)).unwrap();
    let scaled: Vec<f64> = scaled_audio(2, 64, 3).into_iter().map(f64::from).collect();
    let x = Tensor::from_vec(scaled, (2, 64), &dev).unwrap();
    let f0 = f0_curves(2, 64);
    let exc = excitation_tensor(&cfg, &f0, 2, 64)
        .to_dtype(DType::F64)
        .unwrap();
    let loss = || model.loss_excited(&x, None, Some(&exc)).unwrap();
    let grads = loss().backward().unwrap();
    let data = vm.data().lock().unwrap();
    for name in ["exc_start/W", "exc_map_1/W", "exc_map_4/W"] {
        let v = data.get(name).unwrap();
        let g = grads.get(v.as_tensor()).expect(name);
        // Finite difference of one weight in f64 (as training.rs does for the others).
        let values: Vec<f64> = v.flatten_all().unwrap().to_vec1().unwrap();
        let nudged = |delta: f64| {
            let mut w = values.clone();
            w[1] += delta;
            v.set(&Tensor::from_vec(w, v.shape(), &dev).unwrap())
                .unwrap();
            let l = loss().to_scalar::<f64>().unwrap();
            v.set(&Tensor::from_vec(values.clone(), v.shape(), &dev).unwrap())
                .unwrap();
            l
        };
        let numeric = (nudged(1e-5) - nudged(-1e-5)) / 2e-5;
        let analytic = g.flatten_all().unwrap().to_vec1::<f64>().unwrap()[1];
        let err = (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(1e-3);
        assert!(err < 1e-5, "{name}: {analytic} vs {numeric}");
    }
}

#[test]
fn configs_with_the_excitation_round_trip_and_magentas_stay_as_they_were() {
    let pitched = Config::small_pitched();
    let json = serde_json::to_string(&pitched).unwrap();
    assert!(json.contains("\"excitation_harmonics\":16"));
    assert_eq!(Config::from_json(&json).unwrap(), pitched);
    // Magenta's keys only: the new ones are absent, not zero.
    let magenta = serde_json::to_string(&Config::nsynth()).unwrap();
    assert!(!magenta.contains("excitation"));
    let too_many = Config {
        excitation_harmonics: 65,
        ..Config::small()
    };
    assert!(too_many.validate().is_err());
    let into = |name: &str| json.replace("}", &format!(",\"excitation_into\":\"{name}\"}}"));
    assert_eq!(
        Config::from_json(&into("both")).unwrap().excitation_into,
        ExcitationInto::Both
    );
    assert!(Config::from_json(&into("everywhere")).is_err());
}
