#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The streamed student equals the whole-note render of the same inputs (the CPU
//! renderer, `render_cpu`, and candle's `Student::forward` through the output stage),
//! whatever the block sizes: every flow is causal, and the stream carries everything
//! that runs along the note from one block to the next.
//!
//! Tolerance: 1e-5 of the note's peak against `render_cpu` (the same arithmetic summed in
//! another order: the stream's register tiles against the `gemm` crate, each about 1e-7
//! relative per product, through two or three flows of a few layers); 1e-4 against
//! candle's pass, the CPU renderer's own bound against it (`tests/student.rs`).

use std::sync::Arc;

use autoencoder::cpu::Isa;
use autoencoder::excitation::{Oscillator, midi_to_hz};
use autoencoder::student::cpu::CpuStudent;
use autoencoder::student::generate::{logistic_noise, output_stage, render_cpu};
use autoencoder::student::stream::{Frames, SliceFrames, StudentStream};
use autoencoder::student::{Student, StudentConfig};
use autoencoder::{Control, Request, Sampling};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(
    flows: Vec<usize>,
    harmonics: usize,
    subpartials: usize,
    bank: bool,
    measured: bool,
) -> StudentConfig {
    StudentConfig {
        flows,
        num_stages: 4,
        filter_length: 3,
        width: 16,
        bottleneck: if measured { 3 + subpartials } else { 3 },
        hop_length: 64,
        excitation_harmonics: harmonics,
        excitation_subpartials: subpartials,
        subpartial_bank: bank,
        measured_subpartials: measured,
        envelope_bands: 0,
        envelope_refinements: 0,
    }
}

/// A student with every variable random: weights of `scale` keep its output inside ±1,
/// so the output stage's clamp hides no difference.
fn random_student(cfg: &StudentConfig, seed: u64, scale: f32) -> Student {
    let vm = VarMap::new();
    Student::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, var) in vars {
        let n = var.elem_count();
        // The bank's gains are exp(10·(e·W + b)): small weights, a bias near 0.01.
        let (s, offset) = if name.starts_with("subpartial_bank/biases") {
            (0.02, -0.46)
        } else if name.starts_with("subpartial_bank/") {
            (0.01, 0.0)
        } else {
            (scale, 0.0)
        };
        let values: Vec<f32> = (0..n)
            .map(|_| offset + s * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    Student::new(cfg, &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu)).unwrap()
}

/// Embedding frames `[frames, bottleneck]`: smooth learned channels, and measured ones
/// holding amplitudes up to 0.05.
fn frames_of(cfg: &StudentConfig, frames: usize) -> Vec<f32> {
    let bn = cfg.bottleneck;
    let learned = cfg.learned_channels();
    (0..frames * bn)
        .map(|i| {
            let v = (i as f32 * 0.37).sin();
            if i % bn >= learned {
                autoencoder::student::model::measured_channel(0.05 * v.max(0.0))
            } else {
                v
            }
        })
        .collect()
}

/// A gliding f0 with vibrato: from MIDI 57 to 64 over the note, ±0.5 semitone at 5.5 Hz
/// (every sample a different f0); or silence (unpitched) where `pitched` is false.
fn gliding_f0(time: usize, pitched: bool) -> Vec<f32> {
    (0..time)
        .map(|t| {
            if !pitched {
                return 0.0;
            }
            let s = t as f32 / time as f32;
            let vibrato = 0.5 * (std::f32::consts::TAU * 5.5 * t as f32 / 16_000.0).sin();
            midi_to_hz(57.0 + 7.0 * s + vibrato)
        })
        .collect()
}

/// The whole-note render (`render_cpu`, 2 threads) of one voice, noise stream `stream` of
/// `seed`.
fn whole_note(
    cpu: &CpuStudent,
    enc: &[f32],
    f0: Option<&[f32]>,
    seed: u64,
    stream: u64,
) -> Vec<f32> {
    let request = Request {
        encoding: enc,
        f0,
        streams: &[stream],
        sampling: Sampling {
            temperature: 1.0,
            seed,
        },
        threads: 2,
    };
    render_cpu(cpu, &request, &Control::default())
        .unwrap()
        .remove(0)
}

/// The note streamed in blocks of `sizes` (cycled).
fn stream(
    cpu: &Arc<CpuStudent>,
    enc: &[f32],
    f0: &[f32],
    seed: u64,
    stream: u64,
    sizes: &[usize],
) -> Vec<f32> {
    let bn = cpu.config().frame_channels();
    let mut s = StudentStream::new(Arc::clone(cpu), seed, stream);
    let mut frames = SliceFrames {
        data: enc,
        bottleneck: bn,
    };
    let mut out = vec![0f32; f0.len()];
    let mut at = 0;
    for &n in sizes.iter().cycle() {
        if at == out.len() {
            break;
        }
        let n = n.min(out.len() - at);
        s.process(&f0[at..at + n], &mut frames, &mut out[at..at + n])
            .unwrap();
        at += n;
    }
    assert_eq!(s.position(), out.len() as u64);
    out
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max)
}

fn peak(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Block sizes to stream with: fixed ones and random mixes.
fn block_plans() -> Vec<Vec<usize>> {
    let mut plans: Vec<Vec<usize>> = [1, 7, 64, 256, 512].iter().map(|&n| vec![n]).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for _ in 0..3 {
        plans.push((0..40).map(|_| rng.random_range(1..=300)).collect());
    }
    plans
}

#[test]
fn a_streamed_note_equals_the_whole_note_render() {
    for (cfg, pitched) in [
        (config(vec![3, 2], 2, 0, false, false), true),
        (config(vec![4], 0, 0, false, false), false),
        (config(vec![2, 3], 3, 3, false, false), true),
        (config(vec![2, 2], 3, 3, true, false), true),
        (config(vec![3, 2], 3, 3, true, true), true),
        (config(vec![3, 2], 3, 3, true, true), false),
    ] {
        let student = random_student(&cfg, 7, 0.12);
        let frames = 13;
        let time = frames * cfg.hop_length;
        let enc = frames_of(&cfg, frames);
        let f0 = gliding_f0(time, pitched);
        let (seed, stream_id) = (11, 3);
        for isa in [Isa::Generic, Isa::detect()] {
            let cpu = Arc::new(CpuStudent::new(&student).unwrap().with_isa(isa));
            let pitch = (cfg.excitation_harmonics > 0).then_some(f0.as_slice());
            let offline = whole_note(&cpu, &enc, pitch, seed, stream_id);
            let p = peak(&offline);
            assert!(
                p > 1e-3 && p < 0.99,
                "{cfg:?}: peak {p} (want the clamp unused)"
            );
            for plan in block_plans() {
                let streamed = stream(&cpu, &enc, &f0, seed, stream_id, &plan);
                let w = worst(&streamed, &offline);
                assert!(
                    w <= 1e-5 * p,
                    "{isa:?} {cfg:?} blocks {:?}: {w} of peak {p}",
                    &plan[..plan.len().min(4)]
                );
            }
        }
        // And candle's pass (the reference the CPU renderer is held to), through the
        // same output stage.
        let z = logistic_noise(seed, stream_id, time);
        let zt = Tensor::from_vec(z, (1, time), &Device::Cpu).unwrap();
        let enc_t =
            Tensor::from_vec(enc.clone(), (1, frames, cfg.bottleneck), &Device::Cpu).unwrap();
        let exc = cfg.excitation(&f0, Oscillator::new()).map(|e| {
            Tensor::from_vec(e, (1, time, cfg.excitation_channels()), &Device::Cpu).unwrap()
        });
        let mut reference: Vec<f32> = student
            .forward(&zt, &enc_t, exc.as_ref())
            .unwrap()
            .audio
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        output_stage(&mut reference);
        let cpu = Arc::new(CpuStudent::new(&student).unwrap());
        let streamed = stream(&cpu, &enc, &f0, seed, stream_id, &[100, 3, 77]);
        let w = worst(&streamed, &reference);
        assert!(w < 1e-4, "{cfg:?} against candle: {w}");
    }
}

/// A student with a measured envelope streams what the whole-note render plays, later by
/// the envelope's window (the shaper's delay): the same `Shaper` runs in both, fed the
/// same frames at the same samples.
#[test]
fn a_streamed_note_with_an_envelope_equals_the_whole_note_render_delayed() {
    let mut cfg = config(vec![3, 2], 3, 3, true, true);
    cfg.hop_length = 256;
    cfg.envelope_bands = 8;
    let student = random_student(&cfg, 7, 0.12);
    let frames = 9;
    let time = frames * cfg.hop_length;
    let (bn, bands) = (cfg.bottleneck, cfg.envelope_bands);
    // The flows' frames, each followed by an envelope: amplitudes from −60 to −30 dB
    // moving from frame to frame and band to band.
    let flows = frames_of(&cfg, frames);
    let enc: Vec<f32> = flows
        .chunks_exact(bn)
        .enumerate()
        .flat_map(|(f, frame)| {
            let env = (0..bands).map(move |b| {
                let db = -45.0 + 15.0 * ((f * 3 + b) as f32 * 0.7).sin();
                10f32.powf(db / 20.0)
            });
            frame.iter().copied().chain(env).collect::<Vec<_>>()
        })
        .collect();
    let f0 = gliding_f0(time, true);
    let (seed, stream_id) = (11, 3);
    let cpu = Arc::new(CpuStudent::new(&student).unwrap());
    let offline = whole_note(&cpu, &enc, Some(&f0), seed, stream_id);
    let p = peak(&offline);
    assert!(p > 1e-4 && p < 0.99, "peak {p}");
    let delay = StudentStream::new(Arc::clone(&cpu), 0, 0).delay();
    assert_eq!(delay, autoencoder::student::envelope::WINDOW);
    // Streamed past the end by the delay, the last frame held (as the render holds it).
    let long_f0: Vec<f32> = f0
        .iter()
        .copied()
        .chain(std::iter::repeat_n(f0[time - 1], delay))
        .collect();
    for plan in block_plans() {
        let streamed = stream(&cpu, &enc, &long_f0, seed, stream_id, &plan);
        // Up to a window before the end: there the whole-note stage hears the silence after
        // the note, the stream the flows going on.
        let w = worst(&streamed[delay..time], &offline[..time - delay]);
        assert!(
            w <= 1e-5 * p,
            "blocks {:?}: {w} of peak {p}",
            &plan[..plan.len().min(4)]
        );
    }
}

/// Frames that count how often they are asked for, and when.
struct Counting<'a> {
    inner: SliceFrames<'a>,
    asked: Vec<usize>,
}

impl Frames for Counting<'_> {
    fn frame(&mut self, index: usize, frame: &mut [f32]) {
        self.asked.push(index);
        self.inner.frame(index, frame);
    }
}

#[test]
fn frames_are_asked_for_once_each_as_they_fall_due_and_a_reset_starts_over() {
    let cfg = config(vec![2], 2, 0, false, false);
    let student = random_student(&cfg, 3, 0.12);
    let cpu = Arc::new(CpuStudent::new(&student).unwrap());
    let enc = frames_of(&cfg, 4);
    let f0 = vec![220.0; 5 * cfg.hop_length];
    let mut s = StudentStream::new(Arc::clone(&cpu), 1, 0);
    let mut frames = Counting {
        inner: SliceFrames {
            data: &enc,
            bottleneck: cfg.bottleneck,
        },
        asked: Vec::new(),
    };
    let mut first = vec![0f32; f0.len()];
    for (f, o) in f0.chunks(50).zip(first.chunks_mut(50)) {
        s.process(f, &mut frames, o).unwrap();
    }
    // Five frames' worth from four: the last held (as a whole-note render holds it).
    assert_eq!(frames.asked, [0, 1, 2, 3, 4]);
    s.reset(1, 0);
    let mut again = vec![0f32; f0.len()];
    s.process(&f0, &mut frames, &mut again).unwrap();
    assert_eq!(
        first, again,
        "a reset stream plays the note again, bit for bit"
    );
    // Another noise stream, another note.
    s.reset(1, 1);
    s.process(&f0, &mut frames, &mut again).unwrap();
    assert_ne!(first, again);
    // A block whose f0 does not match is refused, not half-played.
    let mut out = [0f32; 8];
    assert!(s.process(&[100.0; 7], &mut frames, &mut out).is_err());
}
