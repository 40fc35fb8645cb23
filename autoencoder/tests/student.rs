#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The Parallel WaveNet student: an inverse autoregressive flow (each sample depends only
//! on the noise before it, and on its own noise through its scale and shift), the
//! closed-form mean and scale that reproduce the audio, and the spectral loss it trains on.

use autoencoder::student::spectral::{MultiResolution, Stft};
use autoencoder::student::{Student, StudentConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny(flows: Vec<usize>, harmonics: usize) -> StudentConfig {
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
    }
}

/// A student with every variable random (the zero-initialised heads too).
fn random_student(cfg: &StudentConfig, seed: u64) -> (VarMap, Student) {
    let vm = VarMap::new();
    let student =
        Student::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // By name: the map's own order changes from run to run, and so would the weights.
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, var) in vars {
        let n = var.elem_count();
        let values: Vec<f32> = (0..n)
            .map(|_| 0.3 * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    (vm, student)
}

fn logistic(batch: usize, time: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..batch * time)
        .map(|_| {
            let u = rng.random::<f32>().clamp(1e-6, 1.0 - 1e-6);
            (u / (1.0 - u)).ln()
        })
        .collect()
}

fn inputs(
    cfg: &StudentConfig,
    batch: usize,
    frames: usize,
    seed: u64,
) -> (Vec<f32>, Tensor, Option<Tensor>) {
    let time = frames * cfg.hop_length;
    let z = logistic(batch, time, seed);
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
fn bank_only_student(cfg: &StudentConfig, seed: u64) -> (VarMap, Student) {
    let (vm, _) = random_student(cfg, seed);
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
fn bank_variables(vm: &VarMap) -> (Vec<f32>, Vec<f32>) {
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

fn rows(t: &Tensor) -> Vec<Vec<f32>> {
    t.to_vec2().unwrap()
}

#[test]
fn each_sample_is_its_noise_scaled_and_shifted_by_what_came_before() {
    for (cfg, batch, frames) in [(tiny(vec![4], 0), 1, 4), (tiny(vec![3, 2, 4], 2), 2, 3)] {
        let (_, student) = random_student(&cfg, 1);
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
    let (_, student) = random_student(&cfg, 1);
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
        let (_, student) = random_student(&cfg, 31);
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

/// The sub-partial bank is what its doc says: with the flows' heads at zero and no noise
/// the audio is `Σ_m exp(r · (e_f · W + b))_m · sin_m(t)` exactly, the gains following the
/// embedding frame by frame; no excitation (unpitched), no bank; and a bank without
/// sub-partials is refused.
#[test]
fn the_subpartial_bank_adds_its_sines_at_gains_from_the_embedding() {
    let cfg = StudentConfig {
        excitation_subpartials: 3,
        subpartial_bank: true,
        ..tiny(vec![2], 2)
    };
    let (vm, student) = bank_only_student(&cfg, 5);
    let (frames, hop, n, bn) = (4, cfg.hop_length, 3, cfg.bottleneck);
    let time = frames * hop;
    let (_, enc, exc) = inputs(&cfg, 1, frames, 3);
    let exc = exc.unwrap();
    let z = Tensor::zeros((1, time), DType::F32, &Device::Cpu).unwrap();
    let out = student.forward(&z, &enc, Some(&exc)).unwrap();
    let audio = rows(&out.audio).remove(0);
    let mean = rows(&out.mean).remove(0);
    let (w, b) = bank_variables(&vm);
    let e: Vec<f32> = enc.flatten_all().unwrap().to_vec1().unwrap();
    let x: Vec<f32> = exc.flatten_all().unwrap().to_vec1().unwrap();
    let k2 = cfg.excitation_channels();
    let mut worst = 0f32;
    for t in 0..time {
        let f = t / hop;
        let want: f32 = (0..n)
            .map(|m| {
                let v = b[m] + (0..bn).map(|c| e[f * bn + c] * w[c * n + m]).sum::<f32>();
                (autoencoder::student::model::BANK_RATE as f32 * v).exp()
                    * x[t * k2 + 2 * cfg.excitation_harmonics + 2 * m]
            })
            .sum();
        worst = worst
            .max((audio[t] - want).abs())
            .max((mean[t] - want).abs());
    }
    assert!(worst < 1e-5, "the bank's audio is off by {worst}");
    assert!(audio.iter().any(|v| v.abs() > 1e-2), "the bank plays");
    let silent = student.forward(&z, &enc, None).unwrap();
    assert!(
        rows(&silent.audio)[0].iter().all(|&v| v == 0.0),
        "unpitched: no bank"
    );
    assert!(
        StudentConfig {
            excitation_subpartials: 0,
            ..cfg.clone()
        }
        .validate()
        .is_err()
    );
}

/// The lock-in measurement the bank's match term compares its gains with: a sine at a
/// sub-partial, at any phase, measures its amplitude there and next to nothing at the
/// others; a harmonic of f0 barely leaks into them; silence and a missing excitation
/// measure zero.
#[test]
fn subpartial_amplitudes_measure_a_sine_at_its_sub_partial() {
    use autoencoder::excitation::{Oscillator, subpartial_multiple};
    use autoencoder::student::model::subpartial_amplitudes;
    let cfg = StudentConfig {
        excitation_subpartials: 6,
        subpartial_bank: true,
        hop_length: 512,
        ..tiny(vec![1], 4)
    };
    let (f0, time) = (220.0f32, 8 * 512);
    let exc = cfg.excitation(&vec![f0; time], Oscillator::new()).unwrap();
    // Sub-partial 1 (m = 2: f0/2) at 0.3 and a phase of its own, and f0 itself at 0.5.
    let audio: Vec<f32> = (0..time)
        .map(|t| {
            let s = t as f32 / 16_000.0;
            let sub = subpartial_multiple(1) as f32 * f0 / 4.0;
            0.3 * (std::f32::consts::TAU * sub * s + 1.1).sin()
                + 0.5 * (std::f32::consts::TAU * f0 * s).sin()
        })
        .collect();
    let a = subpartial_amplitudes(&cfg, &audio, &exc);
    assert_eq!(a.len(), 8 * 6);
    for (f, row) in a.chunks_exact(6).enumerate() {
        assert!((row[1] - 0.3).abs() < 0.01, "frame {f}: {row:?}");
        for (m, &v) in row.iter().enumerate().filter(|(m, _)| *m != 1) {
            assert!(v < 0.01, "frame {f}, sub-partial {m}: {v}");
        }
    }
    assert!(
        subpartial_amplitudes(&cfg, &vec![0.0; time], &exc)
            .iter()
            .all(|&v| v == 0.0)
    );
    assert!(
        subpartial_amplitudes(&cfg, &audio, &[])
            .iter()
            .all(|&v| v == 0.0)
    );
}

/// The window spans whole periods of f0/4, so a low note's strong harmonics leak nothing
/// into its sub-partials: at 55 Hz (f0/4 = 13.75 Hz apart, closer than a three-hop window
/// resolves) eight harmonics at 0.3 and a sub-octave at 0.05 measure 0.05 there and next to
/// nothing elsewhere; a note too low for the longest window measures nothing.
#[test]
fn subpartial_amplitudes_of_a_low_note_ignore_its_harmonics() {
    use autoencoder::excitation::{Oscillator, subpartial_multiple};
    use autoencoder::student::model::{MEASURE_MAX_HOPS, measure_window, subpartial_amplitudes};
    let cfg = StudentConfig {
        excitation_subpartials: 12,
        subpartial_bank: true,
        hop_length: 512,
        ..tiny(vec![1], 16)
    };
    let time = 16 * 512;
    let note = |f0: f32| -> (Vec<f32>, Vec<f32>) {
        let exc = cfg.excitation(&vec![f0; time], Oscillator::new()).unwrap();
        let audio = (0..time)
            .map(|t| {
                let s = t as f32 / 16_000.0;
                let harmonics: f32 = (1..=8)
                    .map(|k| 0.3 * (std::f32::consts::TAU * k as f32 * f0 * s + k as f32).sin())
                    .sum();
                harmonics + 0.05 * (std::f32::consts::TAU * f0 / 2.0 * s + 0.4).sin()
            })
            .collect();
        (audio, exc)
    };
    assert_eq!(subpartial_multiple(1), 2, "sub-partial 1 is f0/2");
    let (audio, exc) = note(55.0);
    let a = subpartial_amplitudes(&cfg, &audio, &exc);
    for (f, row) in a.chunks_exact(12).enumerate() {
        assert!((row[1] - 0.05).abs() < 0.003, "frame {f}: {row:?}");
        for (m, &v) in row.iter().enumerate().filter(|(m, _)| *m != 1) {
            assert!(v < 0.003, "frame {f}, sub-partial {m}: {v}");
        }
    }
    let (audio, exc) = note(40.0);
    assert!(
        subpartial_amplitudes(&cfg, &audio, &exc)
            .iter()
            .all(|&v| v == 0.0)
    );
    // The window: whole periods of f0/4, at least three of them and three hops.
    let step = |hz: f64| std::f64::consts::TAU * hz / 16_000.0;
    let period = |hz: f64| 4.0 * 16_000.0 / hz;
    for hz in [55.0, 110.0, 261.6, 1000.0] {
        let len = measure_window(512, time, step(hz)).unwrap() as f64;
        let periods = len / period(hz);
        assert!(
            (periods - periods.round()).abs() * period(hz) <= 0.5,
            "{hz} Hz: {periods}"
        );
        assert!(periods.round() >= 3.0 && len >= 1535.0, "{hz} Hz: {len}");
    }
    assert_eq!(measure_window(512, time, step(40.0)), None);
    assert_eq!(
        measure_window(512, 2048, step(55.0)),
        None,
        "longer than the crop"
    );
    assert!(measure_window(512, time, step(47.0)).unwrap() <= MEASURE_MAX_HOPS * 512);
    assert_eq!(measure_window(512, time, 0.0), None, "unpitched");
}

/// With measured sub-partials the bank plays each at the frame's measured amplitude times
/// its learnt gain, `a_m(f) · exp(r · (e_f · W + b))_m · sin_m(t)`; silent ones not at all.
#[test]
fn a_measured_bank_plays_the_measured_amplitudes() {
    use autoencoder::student::model::{BANK_RATE, measured_channel};
    let cfg = StudentConfig {
        excitation_subpartials: 3,
        subpartial_bank: true,
        measured_subpartials: true,
        bottleneck: 6,
        ..tiny(vec![2], 2)
    };
    cfg.validate().unwrap();
    assert_eq!(cfg.learned_channels(), 3);
    let (vm, student) = bank_only_student(&cfg, 9);
    let (frames, hop, n, bn) = (4, cfg.hop_length, 3, cfg.bottleneck);
    let time = frames * hop;
    let (_, enc, exc) = inputs(&cfg, 1, frames, 3);
    let exc = exc.unwrap();
    // The last three channels of every frame: measured amplitudes, one of them silent.
    let amplitude = |f: usize, m: usize| [0.2f32, 0.0, 0.05][m] * (1.0 + f as f32 * 0.5);
    let mut e: Vec<f32> = enc.flatten_all().unwrap().to_vec1().unwrap();
    for f in 0..frames {
        for m in 0..n {
            e[f * bn + bn - n + m] = measured_channel(amplitude(f, m));
        }
    }
    let enc = Tensor::from_vec(e.clone(), (1, frames, bn), &Device::Cpu).unwrap();
    let z = Tensor::zeros((1, time), DType::F32, &Device::Cpu).unwrap();
    let audio = rows(&student.forward(&z, &enc, Some(&exc)).unwrap().audio).remove(0);
    let (w, b) = bank_variables(&vm);
    let x: Vec<f32> = exc.flatten_all().unwrap().to_vec1().unwrap();
    let k2 = cfg.excitation_channels();
    let mut worst = 0f32;
    for (t, &got) in audio.iter().enumerate() {
        let f = t / hop;
        let want: f32 = (0..n)
            .map(|m| {
                let v = b[m] + (0..bn).map(|c| e[f * bn + c] * w[c * n + m]).sum::<f32>();
                amplitude(f, m)
                    * (BANK_RATE as f32 * v).exp()
                    * x[t * k2 + 2 * cfg.excitation_harmonics + 2 * m]
            })
            .sum();
        worst = worst.max((got - want).abs());
    }
    assert!(worst < 1e-5, "the measured bank's audio is off by {worst}");
    assert!(audio.iter().any(|v| v.abs() > 1e-3), "the bank plays");
    // A measured student needs a bank and a bottleneck wider than its sub-partials.
    for bad in [
        StudentConfig {
            subpartial_bank: false,
            ..cfg.clone()
        },
        StudentConfig {
            bottleneck: 3,
            ..cfg.clone()
        },
    ] {
        assert!(bad.validate().is_err());
    }
}
