#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Probability density distillation and the power loss: the exact bin-mass cross-entropy
//! against a μ-law teacher agrees with sampling, the student's flow inverts, and training
//! a tiny student on either term lowers it.

mod common;

use autoencoder::student::distill::{Bins, bin_edges, bin_of, teacher_input};
use autoencoder::student::spectral::{POWER_SIZE, Stft, power_loss};
use autoencoder::student::{LossWeights, Objective, Student, StudentConfig};
use autoencoder::{Config, WaveNetAutoencoder, mulaw};
use candle_core::{D, DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use common::student::{logistic, random_student, tiny as tiny_student};
use common::{random_model, tiny};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const HOP: usize = 16;
const HARMONICS: usize = 2;

fn teacher() -> WaveNetAutoencoder {
    let cfg = Config {
        excitation_harmonics: HARMONICS,
        ..tiny(3, 3, 4, HOP)
    };
    random_model(&cfg, 11)
}

fn student_config(flows: Vec<usize>) -> StudentConfig {
    StudentConfig {
        hop_length: HOP,
        ..tiny_student(flows, HARMONICS)
    }
}

/// A note for the encoder and the losses: `[batch, time]` audio and its μ-law copy.
fn note(batch: usize, time: usize) -> (Tensor, Tensor) {
    let audio: Vec<f32> = (0..batch * time)
        .map(|i| {
            let t = (i % time) as f32;
            let b = (i / time) as f32;
            0.4 * (-t / (2.0 * time as f32)).exp()
                * (std::f32::consts::TAU * (220.0 + 110.0 * b) * t / 16_000.0).sin()
        })
        .collect();
    let scaled: Vec<f32> = audio.iter().map(|&x| mulaw::scaled(x)).collect();
    (
        Tensor::from_vec(audio, (batch, time), &Device::Cpu).unwrap(),
        Tensor::from_vec(scaled, (batch, time), &Device::Cpu).unwrap(),
    )
}

fn excitation(batch: usize, time: usize) -> Tensor {
    let e = autoencoder::excitation::excitation(
        &vec![330.0; batch * time],
        HARMONICS,
        autoencoder::excitation::Oscillator::new(),
    );
    Tensor::from_vec(e, (batch, time, 2 * HARMONICS), &Device::Cpu).unwrap()
}

fn adam(vm: &VarMap) -> AdamW {
    let params = ParamsAdamW {
        lr: 1e-2,
        weight_decay: 0.0,
        ..Default::default()
    };
    AdamW::new(vm.all_vars(), params).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn the_bins_are_the_mu_law_classes_and_their_masses_sum_to_one() {
    let edges = bin_edges();
    assert_eq!(edges.len(), 255);
    assert!(edges.windows(2).all(|w| w[0] < w[1]));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..20_000 {
        // Uniform in the companded domain, so every bin is visited.
        let y: f32 = 2.0 * rng.random::<f32>() - 1.0;
        let x = y.signum() * (256f32.powf(y.abs()) - 1.0) / 255.0;
        assert_eq!(
            bin_of(x as f64, &edges),
            mulaw::class_index(mulaw::mu_law(x)) as usize,
            "x = {x}"
        );
    }
    assert!(edges[0] > -1.0 && edges[254] < 1.0 && edges[127] == 0.0);

    let bins = Bins::new(&Device::Cpu).unwrap();
    let mean = Tensor::new(&[[0.0f32, 0.3, -0.99, 1.5]], &Device::Cpu).unwrap();
    let log_scale = Tensor::new(&[[-9.0f32, -3.0, -1.0, 0.5]], &Device::Cpu).unwrap();
    let masses = bins.masses(&mean, &log_scale).unwrap();
    assert_eq!(masses.dims(), &[1, 4, 256]);
    for sum in masses
        .sum(D::Minus1)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
    {
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
    }
    // A narrow logistic at 0.3 puts nearly all its mass in 0.3's own bin.
    let narrow = Tensor::new(&[[0.3f32]], &Device::Cpu).unwrap();
    let tight = Tensor::new(&[[-12.0f32]], &Device::Cpu).unwrap();
    let m = bins
        .masses(&narrow, &tight)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    assert!(m[bin_of(0.3, &edges)] > 0.99);
}

#[test]
fn the_exact_cross_entropy_equals_a_monte_carlo_estimate() {
    let teacher = teacher();
    let cfg = student_config(vec![2, 2]);
    let (_, student) = random_student(&cfg, 5, 0.3);
    let (batch, time) = (2, 2 * HOP);
    let (_, scaled) = note(batch, time);
    let encoding = teacher.encode(&scaled).unwrap();
    let exc = excitation(batch, time);
    let z = Tensor::from_vec(logistic(batch * time, 9), (batch, time), &Device::Cpu).unwrap();
    let out = student.forward(&z, &encoding, Some(&exc)).unwrap();
    let logits = teacher
        .decoder()
        .forward_excited(&teacher_input(&out.audio).unwrap(), &encoding, Some(&exc))
        .unwrap();
    let bins = Bins::new(&Device::Cpu).unwrap();
    let exact = scalar(
        &bins
            .cross_entropy(&out.mean, &out.log_scale, &logits)
            .unwrap(),
    );

    // Sample each position's logistic many times; score each draw by the teacher's
    // probability of its bin.
    let log_p = candle_nn::ops::log_softmax(&logits, D::Minus1)
        .unwrap()
        .to_vec3::<f32>()
        .unwrap();
    let mean = out.mean.to_vec2::<f32>().unwrap();
    let scale = out.log_scale.exp().unwrap().to_vec2::<f32>().unwrap();
    let edges = bin_edges();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let draws = 4000;
    let (mut sum, mut sum_sq, mut n) = (0f64, 0f64, 0f64);
    for b in 0..batch {
        for t in 0..time {
            let mut row = 0f64;
            for _ in 0..draws {
                let u = rng.random::<f64>().clamp(1e-12, 1.0 - 1e-12);
                let x = mean[b][t] as f64 + scale[b][t] as f64 * (u / (1.0 - u)).ln();
                let k = bin_of(x, &edges);
                let v = -(log_p[b][t][k] as f64);
                row += v;
                sum_sq += v * v;
                n += 1.0;
            }
            sum += row;
        }
    }
    let estimate = sum / n;
    let std_err = ((sum_sq / n - estimate * estimate) / n).sqrt();
    assert!(
        (exact - estimate).abs() < 4.0 * std_err + 1e-4,
        "exact {exact}, Monte Carlo {estimate} ± {std_err}"
    );
}

#[test]
fn the_whole_flow_inverted_one_sample_at_a_time_gives_back_the_noise() {
    let teacher = teacher();
    let cfg = student_config(vec![3, 2]);
    let (_, student) = random_student(&cfg, 8, 0.3);
    let (batch, time) = (2, 2 * HOP);
    let (_, scaled) = note(batch, time);
    let encoding = teacher.encode(&scaled).unwrap();
    let exc = excitation(batch, time);
    let z = logistic(batch * time, 21);
    let zt = Tensor::from_vec(z.clone(), (batch, time), &Device::Cpu).unwrap();
    let x = student
        .forward(&zt, &encoding, Some(&exc))
        .unwrap()
        .audio
        .to_vec2::<f32>()
        .unwrap();
    // Sample t's shift and scale depend only on the noise before t: recover z in order.
    let mut guess = vec![0f32; batch * time];
    for t in 0..time {
        let g = Tensor::from_vec(guess.clone(), (batch, time), &Device::Cpu).unwrap();
        let out = student.forward(&g, &encoding, Some(&exc)).unwrap();
        let mean = out.mean.to_vec2::<f32>().unwrap();
        let scale = out.log_scale.exp().unwrap().to_vec2::<f32>().unwrap();
        for b in 0..batch {
            guess[b * time + t] = (x[b][t] - mean[b][t]) / scale[b][t];
        }
    }
    let worst = guess
        .iter()
        .zip(&z)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst < 1e-3,
        "largest error of the recovered noise: {worst}"
    );
}

#[test]
fn distilling_a_tiny_teacher_lowers_the_kl() {
    let dev = Device::Cpu;
    let teacher = teacher();
    let cfg = student_config(vec![3]);
    // Random heads: the student starts far from the teacher.
    let (vm, student) = random_student(&cfg, 4, 0.3);
    let (batch, time) = (2, 4 * HOP);
    let (audio, scaled) = note(batch, time);
    let encoding = teacher.encode(&scaled).unwrap();
    let exc = excitation(batch, time);
    let objective = Objective::new(
        LossWeights {
            spectral: 0.0,
            power: 0.0,
            distill: 1.0,
        },
        &dev,
    )
    .unwrap();
    let kl = |seed: u64| {
        let z = Tensor::from_vec(logistic(batch * time, seed), (batch, time), &dev).unwrap();
        let out = student.forward(&z, &encoding, Some(&exc)).unwrap();
        objective
            .score(&out, &encoding, Some(teacher.decoder()), &audio, Some(&exc))
            .unwrap()
    };
    let (_, before) = kl(1000);
    let mut opt = adam(&vm);
    for step in 0..60 {
        let (loss, _) = kl(step);
        opt.backward_step(&loss).unwrap();
    }
    let (_, after) = kl(1000);
    let (b, a) = (before.kl().unwrap(), after.kl().unwrap());
    eprintln!("KL {b} -> {a}");
    // The floor (about 0.84 nats here) is how far a logistic is from this random
    // teacher's many-peaked density.
    assert!(a < b - 0.5, "KL {b} -> {a}");
    assert!((before.total - b).abs() < 1e-4, "the loss is the KL");
}

#[test]
fn the_power_loss_is_one_for_silence_zero_for_the_same_note_and_training_lowers_it() {
    let dev = Device::Cpu;
    let stft = Stft::new(POWER_SIZE, &dev).unwrap();
    let (batch, time) = (2, 64 * HOP);
    let (audio, scaled) = note(batch, time);
    let same = scalar(&power_loss(&stft, &audio, &audio).unwrap());
    let silent = scalar(&power_loss(&stft, &audio.zeros_like().unwrap(), &audio).unwrap());
    assert!(same < 1e-9, "{same}");
    assert!((silent - 1.0).abs() < 1e-3, "{silent}");

    let teacher = teacher();
    let encoding = teacher.encode(&scaled).unwrap().detach();
    let exc = excitation(batch, time);
    let cfg = student_config(vec![3]);
    let vm = VarMap::new();
    let student = Student::new(&cfg, &VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
    let objective = Objective::new(
        LossWeights {
            spectral: 0.0,
            power: 1.0,
            distill: 0.0,
        },
        &dev,
    )
    .unwrap();
    let z = Tensor::from_vec(logistic(batch * time, 2), (batch, time), &dev).unwrap();
    let loss = || {
        let out = student.forward(&z, &encoding, Some(&exc)).unwrap();
        objective
            .score(&out, &encoding, None, &audio, Some(&exc))
            .unwrap()
    };
    let (_, before) = loss();
    let mut opt = adam(&vm);
    for _ in 0..60 {
        opt.backward_step(&loss().0).unwrap();
    }
    let (_, after) = loss();
    let (b, a) = (before.power.unwrap(), after.power.unwrap());
    assert!(a < 0.5 * b, "power loss {b} -> {a}");
}

#[test]
fn bad_weights_and_a_missing_teacher_are_errors() {
    let dev = Device::Cpu;
    let zero = LossWeights {
        spectral: 0.0,
        power: 0.0,
        distill: 0.0,
    };
    assert!(Objective::new(zero, &dev).is_err());
    let negative = LossWeights {
        power: -1.0,
        ..LossWeights::default()
    };
    assert!(Objective::new(negative, &dev).is_err());
    let distil = LossWeights {
        distill: 1.0,
        ..LossWeights::default()
    };
    let objective = Objective::new(distil, &dev).unwrap();
    let cfg = student_config(vec![1]);
    let (_, student) = random_student(&cfg, 1, 0.1);
    let (audio, scaled) = note(1, HOP);
    let encoding = teacher().encode(&scaled).unwrap();
    let z = Tensor::from_vec(logistic(HOP, 1), (1, HOP), &dev).unwrap();
    let out = student.forward(&z, &encoding, None).unwrap();
    assert!(
        objective
            .score(&out, &encoding, None, &audio, None)
            .is_err()
    );
}

#[test]
fn the_kl_is_never_negative_and_zero_against_the_student_itself() {
    let dev = Device::Cpu;
    let bins = Bins::new(&dev).unwrap();
    // Wide, narrow, off-centre and far-out logistics (much of the last beyond ±1).
    let mean = Tensor::new(&[[0.0f32, 0.3, -0.7, 2.5]], &dev).unwrap();
    let log_scale = Tensor::new(&[[-6.0f32, -2.0, -0.5, 1.0]], &dev).unwrap();
    let masses = bins.masses(&mean, &log_scale).unwrap();
    let h = scalar(&bins.entropy(&mean, &log_scale).unwrap());
    // The student against itself: KL 0.
    let itself = masses.affine(1.0, 1e-30).unwrap().log().unwrap();
    let ce = scalar(&bins.cross_entropy(&mean, &log_scale, &itself).unwrap());
    assert!((ce - h).abs() < 1e-4, "{ce} vs {h}");
    // Against random teachers: never below 0.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for _ in 0..20 {
        let logits: Vec<f32> = (0..4 * 256).map(|_| 4.0 * rng.random::<f32>()).collect();
        let logits = Tensor::from_vec(logits, (1, 4, 256), &dev).unwrap();
        let ce = scalar(&bins.cross_entropy(&mean, &log_scale, &logits).unwrap());
        assert!(ce - h > 0.0, "KL {}", ce - h);
    }
}
