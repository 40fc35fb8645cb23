#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The Parallel WaveNet student: an inverse autoregressive flow (each sample depends only
//! on the noise before it, and on its own noise through its scale and shift), the
//! closed-form mean and scale that reproduce the audio, the spectral loss it trains on,
//! and the CPU renderer against the reference pass.

mod common;

use autoencoder::student::spectral::{MultiResolution, Stft};
use autoencoder::student::{Student, StudentConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use common::student::{inputs, random_student, rows, tiny};

#[test]
fn each_sample_is_its_noise_scaled_and_shifted_by_what_came_before() {
    for (cfg, batch, frames) in [(tiny(vec![4], 0), 1, 4), (tiny(vec![3, 2, 4], 2), 2, 3)] {
        let (_, student) = random_student(&cfg, 1, 0.3);
        let (z, enc, exc) = inputs(&cfg, batch, frames, 2);
        let time = frames * cfg.hop_length;
        let zt = Tensor::from_vec(z.clone(), (batch, time), &Device::Cpu).unwrap();
        let out = student.forward(&zt, &enc, exc.as_ref()).unwrap();
        // x = z · S + M, so the noise comes back from the audio (the flow inverted with
        // the mean and scale of the noise before each sample).
        let back = ((&out.audio - &out.mean).unwrap() / out.log_scale.exp().unwrap()).unwrap();
        let worst = rows(&back)
            .iter()
            .flatten()
            .zip(&z)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{cfg:?}: z recovered within {worst}");

        // Changing the noise at t0 changes nothing before t0, and the mean and scale
        // only after it: they are functions of the noise before each sample.
        let t0 = time / 2;
        let mut z2 = z.clone();
        z2[t0] += 1.0;
        let z2 = Tensor::from_vec(z2, (batch, time), &Device::Cpu).unwrap();
        let out2 = student.forward(&z2, &enc, exc.as_ref()).unwrap();
        let (a, b) = (rows(&out.audio), rows(&out2.audio));
        let (m, m2) = (rows(&out.mean), rows(&out2.mean));
        let (s, s2) = (rows(&out.log_scale), rows(&out2.log_scale));
        assert_eq!(a[0][..t0], b[0][..t0]);
        assert_eq!(m[0][..=t0], m2[0][..=t0]);
        assert_eq!(s[0][..=t0], s2[0][..=t0]);
        assert_ne!(a[0][t0], b[0][t0]);
        assert_ne!(m[0][t0 + 1..], m2[0][t0 + 1..], "later samples see it");
        if batch > 1 {
            assert_eq!(a[1], b[1], "another voice's noise");
        }
    }
}

#[test]
fn a_fresh_student_starts_as_quiet_noise() {
    let cfg = tiny(vec![2, 2], 0);
    let vm = VarMap::new();
    let student = Student::new(
        &cfg,
        &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let (z, enc, _) = inputs(&cfg, 1, 4, 3);
    let zt = Tensor::from_vec(z.clone(), (1, 64), &Device::Cpu).unwrap();
    let out = student.forward(&zt, &enc, None).unwrap();
    let x = rows(&out.audio)[0].clone();
    for (x, z) in x.iter().zip(&z) {
        assert!((x - z * (-3f32).exp()).abs() < 1e-6);
    }
}

#[test]
fn bad_shapes_and_configs_are_errors() {
    let cfg = tiny(vec![2], 0);
    let (_, student) = random_student(&cfg, 1, 0.3);
    let z = Tensor::zeros((1, 50), DType::F32, &Device::Cpu).unwrap();
    let enc = Tensor::zeros((1, 4, 3), DType::F32, &Device::Cpu).unwrap();
    assert!(student.forward(&z, &enc, None).is_err());
    assert!(tiny(vec![], 0).validate().is_err());
    assert!(tiny(vec![3, 0], 0).validate().is_err());
    assert!(StudentConfig::small().validate().is_ok());
}

#[test]
fn the_stft_finds_a_sine_in_its_bin_and_the_loss_is_zero_only_for_the_same_sound() {
    let dev = Device::Cpu;
    let stft = Stft::new(256, &dev).unwrap();
    // Bin 20 of 256 at 16 kHz is 1250 Hz.
    let sine: Vec<f32> = (0..2048)
        .map(|t| (std::f32::consts::TAU * 1250.0 * t as f32 / 16_000.0).sin())
        .collect();
    let x = Tensor::from_vec(sine.clone(), (1, 2048), &dev).unwrap();
    let mag = stft.magnitude(&x).unwrap();
    let (_, frames, bins) = mag.dims3().unwrap();
    assert_eq!((frames, bins), (2048 / 64 - 3, 129));
    let frame: Vec<f32> = mag.get(0).unwrap().get(3).unwrap().to_vec1().unwrap();
    let peak = frame
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .unwrap()
        .0;
    assert_eq!(peak, 20);
    // A Hann-windowed unit sine: the peak bin's magnitude is N/4.
    assert!((frame[20] - 64.0).abs() < 0.5, "{}", frame[20]);

    // The power loss's average: each bin's power over the frames.
    let power: Vec<f32> = autoencoder::student::spectral::average_power(&stft, &x)
        .unwrap()
        .get(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    let direct: f32 = (0..frames)
        .map(|f| {
            mag.get(0)
                .unwrap()
                .get(f)
                .unwrap()
                .get(20)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                .powi(2)
        })
        .sum::<f32>()
        / frames as f32;
    assert!((power[20] - direct).abs() < 1e-3 * direct);

    let loss = MultiResolution::new(&[256, 128], &dev).unwrap();
    let same = loss.loss(&x, &x).unwrap().to_scalar::<f32>().unwrap();
    assert!(same.abs() < 1e-5, "{same}");
    let quieter = (&x * 0.5).unwrap();
    let other = loss.loss(&quieter, &x).unwrap().to_scalar::<f32>().unwrap();
    assert!(other > 0.5, "{other}");
}

#[test]
fn training_on_the_spectral_loss_moves_a_student_towards_a_note() {
    let dev = Device::Cpu;
    let cfg = tiny(vec![3], 2);
    let vm = VarMap::new();
    let student = Student::new(&cfg, &VarBuilder::from_varmap(&vm, DType::F32, &dev)).unwrap();
    let (z, enc, exc) = inputs(&cfg, 2, 32, 4);
    let time = 32 * cfg.hop_length;
    let z = Tensor::from_vec(z, (2, time), &dev).unwrap();
    let target: Vec<f32> = (0..2 * time)
        .map(|t| 0.3 * (std::f32::consts::TAU * 440.0 * (t % time) as f32 / 16_000.0).sin())
        .collect();
    let target = Tensor::from_vec(target, (2, time), &dev).unwrap();
    let loss_fn = MultiResolution::new(&[256, 128], &dev).unwrap();
    let loss = || {
        let out = student.forward(&z, &enc, exc.as_ref()).unwrap();
        loss_fn.loss(&out.audio, &target).unwrap()
    };
    let before = loss().to_scalar::<f32>().unwrap();
    let mut opt = AdamW::new(
        vm.all_vars(),
        ParamsAdamW {
            lr: 1e-2,
            weight_decay: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    for _ in 0..80 {
        opt.backward_step(&loss()).unwrap();
    }
    let after = loss().to_scalar::<f32>().unwrap();
    assert!(after < 0.8 * before, "{before} -> {after}");
}

#[test]
fn the_parameter_count_is_the_number_of_weights() {
    use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig};
    for cfg in [
        StudentAutoencoderConfig::small(),
        StudentAutoencoderConfig {
            encoder: autoencoder::Config {
                ae_num_layers: 3,
                ae_width: 7,
                ..autoencoder::Config::small()
            },
            student: tiny(vec![2, 3], 4),
        },
        StudentAutoencoderConfig {
            encoder: autoencoder::Config::small(),
            student: StudentConfig {
                excitation_subpartials: 5,
                subpartial_bank: true,
                ..tiny(vec![2], 4)
            },
        },
    ] {
        let cfg = StudentAutoencoderConfig {
            student: StudentConfig {
                bottleneck: cfg.encoder.ae_bottleneck_width,
                hop_length: cfg.encoder.ae_hop_length,
                ..cfg.student
            },
            ..cfg
        };
        let vm = VarMap::new();
        let model = StudentAutoencoder::new(
            &cfg,
            &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
        )
        .unwrap();
        let weights: usize = vm.all_vars().iter().map(|v| v.elem_count()).sum();
        assert_eq!(model.parameter_count(), weights);
    }
}

/// The CPU renderer against the reference pass: any split of time over threads and
/// stretches, either instruction set, with and without an excitation, with a sub-partial
/// bank.
#[test]
fn the_cpu_renderer_equals_the_reference_pass() {
    use autoencoder::cpu::Isa;
    use autoencoder::student::cpu::{CpuStudent, VoiceInput};
    for (flows, harmonics, subpartials, bank, measured) in [
        (vec![3, 2], 2, 0, false, false),
        (vec![4], 0, 0, false, false),
        (vec![2], 2, 3, false, false),
        (vec![2, 1], 2, 3, true, false),
        (vec![2, 1], 2, 3, true, true),
    ] {
        let cfg = StudentConfig {
            excitation_subpartials: subpartials,
            subpartial_bank: bank,
            measured_subpartials: measured,
            bottleneck: if measured { 6 } else { 3 },
            ..tiny(flows, harmonics)
        };
        let (_, student) = random_student(&cfg, 31, 0.3);
        let (voices, frames) = (2, 9);
        let time = frames * cfg.hop_length;
        let (z, enc, exc) = inputs(&cfg, voices, frames, 12);
        // Measured channels hold amplitudes up to 0.2 (a third of them silent).
        let enc = if measured {
            let mut e: Vec<f32> = enc.flatten_all().unwrap().to_vec1().unwrap();
            for (i, v) in e.iter_mut().enumerate() {
                if i % 6 >= 3 {
                    *v = autoencoder::student::model::measured_channel((0.2 * *v).max(0.0));
                }
            }
            Tensor::from_vec(e, (voices, frames, 6), &Device::Cpu).unwrap()
        } else {
            enc
        };
        let zt = Tensor::from_vec(z.clone(), (voices, time), &Device::Cpu).unwrap();
        let reference = rows(&student.forward(&zt, &enc, exc.as_ref()).unwrap().audio);
        let enc_flat: Vec<f32> = enc.flatten_all().unwrap().to_vec1().unwrap();
        let exc_flat: Option<Vec<f32>> = exc
            .as_ref()
            .map(|e| e.flatten_all().unwrap().to_vec1().unwrap());
        let k2 = cfg.excitation_channels();
        let cpu = CpuStudent::new(&student).unwrap();
        // (taps − 1) · Σ dilations of the deepest flow: 2 · (1 + 2 + 4), 2 · (1 + 2 + 4 + 1)
        // and 2 · (1 + 2).
        let deepest = cfg.flows.iter().max().copied().unwrap();
        assert_eq!(cpu.warmup(), [0, 2, 6, 14, 16][deepest]);
        for isa in [Isa::Generic, Isa::detect()] {
            let cpu = cpu.clone().with_isa(isa);
            for (threads, stretch) in [(1, 0), (2, 0), (3, 0), (2, 37), (1, 5)] {
                for v in 0..voices {
                    let voice = VoiceInput {
                        z: &z[v * time..(v + 1) * time],
                        encoding: &enc_flat
                            [v * frames * cfg.bottleneck..(v + 1) * frames * cfg.bottleneck],
                        excitation: exc_flat
                            .as_ref()
                            .map(|e| &e[v * time * k2..(v + 1) * time * k2]),
                    };
                    let audio = cpu.render(voice, threads, stretch).unwrap();
                    let worst = audio
                        .iter()
                        .zip(&reference[v])
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(
                        worst < 1e-4,
                        "{isa:?} threads {threads} stretch {stretch} voice {v}: {worst}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_output_stage_removes_a_constant_and_keeps_the_notes() {
    use autoencoder::student::generate::block_dc;
    // A constant offset decays by 1/e every 1/(2π·10 Hz) = 16 ms: under 1e-5 of it after
    // 0.25 s (e^-15.7 = 1.5e-7).
    let mut offset = vec![-0.002f32; 16_000];
    block_dc(&mut offset);
    assert!(
        (offset[0] + 0.002).abs() < 1e-9,
        "from rest: the first sample passes"
    );
    assert!(
        offset[4_000..].iter().all(|a| a.abs() < 2e-8),
        "{}",
        offset[4_000]
    );
    // Notes pass: A0 (27.5 Hz, the lowest key) loses 0.6 dB, A4 within 0.02 dB (the pole lifts it by 0.015). Gain read
    // over the second half (the start's transient gone).
    let gain = |hz: f64| {
        let tone: Vec<f32> = (0..32_000)
            .map(|t| (std::f64::consts::TAU * hz * t as f64 / 16_000.0).sin() as f32)
            .collect();
        let mut out = tone.clone();
        block_dc(&mut out);
        let rms = |x: &[f32]| (x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>()).sqrt();
        20.0 * (rms(&out[16_000..]) / rms(&tone[16_000..])).log10()
    };
    let (a0, a4) = (gain(27.5), gain(440.0));
    assert!((-0.8..-0.4).contains(&a0), "A0: {a0} dB");
    assert!(a4.abs() < 0.02, "A4: {a4} dB");
}
