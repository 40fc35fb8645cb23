#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! SampleRNN: sample-by-sample generation equals the teacher-forced pass, truncated BPTT
//! equals plain back-propagation where nothing is truncated, the gradients agree with
//! finite differences (the encoder's too, taken through the embedding's gradient), and the
//! generator keeps the contract (streams, progress, cancellation).

mod common;

use std::collections::HashMap;

use autoencoder::excitation::{Oscillator, excitation};
use autoencoder::samplernn::{Hidden, SampleRnn, SampleRnnConfig, SampleRnnGenerator};
use autoencoder::sampling::softmax;
use autoencoder::{Control, Error, Generator, Request, Sampling, Stepper};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use common::{frames_of, max_abs_diff, scaled_audio};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A tiny model with every variable random (biases too), in `dtype`.
fn random(cfg: &SampleRnnConfig, seed: u64, dtype: DType) -> (VarMap, SampleRnn) {
    let vm = VarMap::new();
    let model = SampleRnn::new(cfg, &VarBuilder::from_varmap(&vm, dtype, &Device::Cpu)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in vars {
        let spread = (3.0 / var.dims()[0] as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| spread * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap();
        var.set(&t.to_dtype(dtype).unwrap()).unwrap();
    }
    (vm, model)
}

fn sorted_vars(vm: &VarMap) -> Vec<(String, Var)> {
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Two voices gliding in pitch: each voice's f0 per sample and its excitation tensor.
fn pitch(cfg: &SampleRnnConfig, voices: usize, time: usize) -> (Vec<f32>, Tensor) {
    let f0: Vec<f32> = (0..voices * time)
        .map(|i| 180.0 + 40.0 * (i / time) as f32 + 0.1 * (i % time) as f32)
        .collect();
    let e: Vec<f32> = f0
        .chunks(time)
        .flat_map(|c| excitation(c, cfg.excitation_harmonics, Oscillator::new()))
        .collect();
    let e = Tensor::from_vec(e, (voices, time, cfg.excitation_channels()), &Device::Cpu).unwrap();
    (f0, e)
}

#[test]
fn generation_step_by_step_equals_the_teacher_forced_pass() {
    for harmonics in [0, 2] {
        let cfg = SampleRnnConfig {
            excitation_harmonics: harmonics,
            ..SampleRnnConfig::tiny()
        };
        let (_, model) = random(&cfg, 1, DType::F32);
        let (voices, frames, hop) = (2, 3, cfg.encoder.ae_hop_length);
        let time = frames * hop;
        let bn = cfg.encoder.ae_bottleneck_width;
        let audio = scaled_audio(voices, time, 4);
        let enc = frames_of(voices, frames, bn, 2);
        let (f0, exc) = pitch(&cfg, voices, time);
        let x = Tensor::from_slice(&audio, (voices, time), &Device::Cpu).unwrap();
        let encoding = Tensor::from_slice(&enc, (voices, frames, bn), &Device::Cpu).unwrap();
        let hidden = Hidden::zeros(voices, cfg.dim, DType::F32, &Device::Cpu).unwrap();
        let (logits, _) = model
            .logits(
                &x,
                0,
                time,
                &encoding,
                (harmonics > 0).then_some(&exc),
                &hidden,
            )
            .unwrap();
        let logits: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
        let generator = SampleRnnGenerator::new(&model).unwrap();
        let mut stepper = generator.stepper(voices);
        let (mut p_ref, mut p_step) = (vec![0f32; 256], vec![0f32; 256]);
        let mut previous = vec![0f32; voices];
        let mut frame = vec![0f32; voices * bn];
        let mut worst = 0f32;
        for t in 0..time {
            if t % hop == 0 {
                autoencoder::generate::frame_of(&enc, frames, t / hop, &mut frame, bn);
                stepper.set_frame(&frame).unwrap();
            }
            let now: Vec<f32> = (0..voices).map(|v| f0[v * time + t]).collect();
            stepper.set_f0(&now).unwrap();
            let step = stepper.step(&previous).unwrap();
            for v in 0..voices {
                let at = (v * time + t) * 256;
                softmax(&logits[at..at + 256], &mut p_ref);
                softmax(&step[v * 256..(v + 1) * 256], &mut p_step);
                worst = worst.max(max_abs_diff(&p_ref, &p_step));
                previous[v] = audio[v * time + t];
            }
        }
        // The same sums in another order (and σ, tanh within 3e-7): ~1e-6 in probability;
        // a wrong lag, tier offset or gate moves them by 1e-2 or more.
        assert!(
            worst < 1e-4,
            "harmonics {harmonics}: probability error {worst}"
        );
    }
}

#[test]
fn truncated_bptt_splits_the_loss_exactly_and_equals_backprop_where_nothing_is_cut() {
    let cfg = SampleRnnConfig::tiny();
    let (vm, model) = random(&cfg, 2, DType::F32);
    let (voices, time) = (2, 4 * cfg.encoder.ae_hop_length);
    let x = Tensor::from_vec(scaled_audio(voices, time, 5), (voices, time), &Device::Cpu).unwrap();
    let (_, exc) = pitch(&cfg, voices, time);
    let vars = sorted_vars(&vm);
    let plain = model.loss(&x, None, Some(&exc)).unwrap();
    let plain_loss = plain.to_scalar::<f32>().unwrap() as f64;
    let plain_grads = plain.backward().unwrap();
    // Cut into subsequences: the same forward (the state is carried), so the same loss.
    let (cut, _) = model.tbptt(&x, None, Some(&exc), &vars).unwrap();
    assert!(
        (cut - plain_loss).abs() < 1e-5 * plain_loss,
        "{cut} vs {plain_loss}"
    );
    // One subsequence as long as the crop: exactly back-propagation.
    let whole = SampleRnnConfig {
        tbptt: time,
        ..cfg.clone()
    };
    let model = SampleRnn::new(
        &whole,
        &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let (loss, grads) = model.tbptt(&x, None, Some(&exc), &vars).unwrap();
    assert!((loss - plain_loss).abs() < 1e-5 * plain_loss);
    let grads: HashMap<String, Tensor> = grads.into_iter().collect();
    assert!(
        grads.contains_key("ae_startconv/W"),
        "the encoder gets its gradient"
    );
    for (name, var) in &vars {
        let reference = plain_grads.get(var.as_tensor()).expect(name);
        let g = &grads[name];
        let diff = (g - reference).unwrap().sqr().unwrap().sum_all().unwrap();
        let norm = reference.sqr().unwrap().sum_all().unwrap();
        let (diff, norm) = (
            diff.to_scalar::<f32>().unwrap().sqrt(),
            norm.to_scalar::<f32>().unwrap().sqrt(),
        );
        assert!(diff <= 1e-4 * norm + 1e-7, "{name}: {diff} vs norm {norm}");
    }
}

/// Central differences in f64 against [`SampleRnn::tbptt`]'s gradients (one subsequence):
/// a tier's weights, the MLP's, the embedding table's used rows and the encoder's.
#[test]
fn gradients_match_finite_differences() {
    let cfg = SampleRnnConfig {
        tbptt: 128,
        ..SampleRnnConfig::tiny()
    };
    let (vm, model) = random(&cfg, 3, DType::F64);
    let (voices, time) = (1, 2 * cfg.encoder.ae_hop_length);
    let x = Tensor::from_vec(scaled_audio(voices, time, 6), (voices, time), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let (_, exc) = pitch(&cfg, voices, time);
    let exc = exc.to_dtype(DType::F64).unwrap();
    let vars = sorted_vars(&vm);
    let (_, grads) = model.tbptt(&x, None, Some(&exc), &vars).unwrap();
    let grads: HashMap<String, Tensor> = grads.into_iter().collect();
    let loss = || {
        model
            .loss(&x, None, Some(&exc))
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let eps = 1e-6;
    for name in [
        "top/gru/W_hh",
        "top/exc/W",
        "mid/up/W",
        "sample/logits/biases",
        "sample/in/W",
        "ae_dilatedconv_2/W",
        "ae_bottleneck/biases",
    ] {
        let var = &vars.iter().find(|(n, _)| n == name).expect(name).1;
        let analytic: Vec<f64> = grads[name].flatten_all().unwrap().to_vec1().unwrap();
        for i in [0, analytic.len() / 2, analytic.len() - 1] {
            let nudge = |delta: f64| {
                let mut v: Vec<f64> = var.flatten_all().unwrap().to_vec1().unwrap();
                v[i] += delta;
                var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                    .unwrap();
            };
            nudge(eps);
            let plus = loss();
            nudge(-2.0 * eps);
            let minus = loss();
            nudge(eps);
            let numeric = (plus - minus) / (2.0 * eps);
            let floor = 16.0 * f64::EPSILON * plus.abs().max(1.0) / eps;
            assert!(
                (analytic[i] - numeric).abs()
                    <= 1e-5 * analytic[i].abs().max(numeric.abs()) + floor,
                "{name}[{i}]: backprop {} vs finite difference {numeric}",
                analytic[i]
            );
        }
    }
}

#[test]
fn the_generator_keeps_the_contract() {
    let cfg = SampleRnnConfig::tiny();
    let (_, model) = random(&cfg, 4, DType::F32);
    let generator = SampleRnnGenerator::new(&model).unwrap();
    let (voices, frames) = (3, 2);
    let hop = generator.hop_length();
    // Every voice the same note: what tells them apart is their random stream.
    let enc = frames_of(1, frames, generator.bottleneck(), 1).repeat(voices);
    let f0 = vec![220f32; voices * frames * hop];
    let request = |streams: &'static [u64]| Request {
        encoding: &enc,
        f0: Some(&f0),
        streams,
        sampling: Sampling {
            temperature: 1.0,
            seed: 9,
        },
        threads: 1,
    };
    let control = Control::default();
    let audio = generator.generate(&request(&[0, 1, 2]), &control).unwrap();
    assert_eq!(control.samples(), (voices * frames * hop) as u64);
    assert!(audio.iter().all(|a| a.len() == frames * hop));
    assert!(audio.iter().flatten().all(|x| x.abs() <= 1.0));
    // A voice's audio is its stream's, wherever it sits in the batch.
    let swapped = generator
        .generate(&request(&[2, 1, 0]), &Control::default())
        .unwrap();
    assert_eq!(swapped[0], audio[2]);
    assert_eq!(swapped[2], audio[0]);
    assert_ne!(audio[0], audio[1], "streams differ");
    let cancelled = Control::default();
    cancelled.cancel();
    assert!(matches!(
        generator.generate(&request(&[0, 1, 2]), &cancelled),
        Err(Error::Cancelled)
    ));
    let bad = Request {
        encoding: &enc[1..],
        ..request(&[0, 1, 2])
    };
    assert!(generator.generate(&bad, &Control::default()).is_err());
}

#[test]
fn configs_round_trip_with_their_family_and_bad_ones_are_refused() {
    let cfg = SampleRnnConfig::samplernn();
    let json = cfg.to_json().unwrap();
    assert!(json.contains("\"model\": \"samplernn\""), "{json}");
    assert_eq!(SampleRnnConfig::from_json(&json).unwrap(), cfg);
    let bad = SampleRnnConfig {
        mid_frame: 3,
        ..SampleRnnConfig::tiny()
    };
    assert!(bad.validate().is_err(), "3 does not divide 16");
    let wavenet = autoencoder::Config::small().to_json().unwrap();
    assert!(SampleRnnConfig::from_json(&wavenet).is_err());
    assert_eq!(
        SampleRnnConfig::preset("samplernn-tiny"),
        Some(SampleRnnConfig::tiny())
    );
    let (vm, _) = random(&SampleRnnConfig::tiny(), 1, DType::F32);
    let count: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
    assert_eq!(SampleRnnConfig::tiny().parameter_count(), count);
}
