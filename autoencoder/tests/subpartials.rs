#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The student's sub-partials: the bank that adds their sines at gains from the
//! embedding, the lock-in measurement of a note's sub-partial amplitudes, and a bank that
//! plays measured amplitudes.

mod common;

use autoencoder::student::StudentConfig;
use candle_core::{DType, Device, Tensor};
use common::student::{bank_only_student, bank_variables, inputs, rows, tiny};

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
