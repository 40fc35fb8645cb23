#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The tensor (GPU) decoder against the reference generator ([`FastGenerator`]), run on
//! the CPU device: the same operations are what a CUDA build launches on the GPU, so
//! these tests check its logic (taps, lags, queues, conditioning, gate, sampling)
//! everywhere; only the device's kernels differ. With the `cuda` feature and a GPU
//! present, the same checks run on the GPU too.

mod common;

use autoencoder::{Control, Generator, Request, Stepper};
use autoencoder::{CpuGenerator, Error, Sampling, TensorGenerator};
use candle_core::{Device, Tensor};
use common::{
    Candidate, conformance_cases, draws_agree, frames_of, random_model, teacher_forced_worst, wide,
};

/// The devices to check: the CPU always; GPU 0 where this is a CUDA build and one exists.
fn devices() -> Vec<Device> {
    let mut devices = vec![Device::Cpu];
    match Device::new_cuda(0) {
        Ok(gpu) => devices.push(gpu),
        Err(e) => println!("checking on the CPU device only: no CUDA device ({e})"),
    }
    devices
}

/// A request for `streams.len()` voices of `encoding`, unpitched.
fn request<'a>(
    encoding: &'a [f32],
    streams: &'a [u64],
    sampling: Sampling,
    threads: usize,
) -> Request<'a> {
    Request {
        encoding,
        f0: None,
        streams,
        sampling,
        threads,
    }
}

impl Candidate for TensorGenerator {
    fn stepper(&self, voices: usize) -> Box<dyn Stepper + '_> {
        Box::new(TensorGenerator::stepper(self, voices).unwrap())
    }
}

#[test]
fn teacher_forced_probabilities_match_the_reference() {
    // 1e-4 is the bound; the two compute the same sums in another order (~1e-6 in
    // probability); a wrong tap, lag, slot or bias moves them by 1e-2 or more.
    for device in devices() {
        for (cfg, voices, frames) in conformance_cases() {
            let worst = teacher_forced_worst(&cfg, voices, frames, 3, |model| {
                TensorGenerator::new(model, &device).unwrap()
            });
            assert!(
                worst < 1e-4,
                "{device:?} {cfg:?} × {voices}: probability error {worst}"
            );
        }
    }
}

#[test]
fn draws_equal_the_reference_at_the_same_seed() {
    // Teacher-forced on the reference's samples, both draw with the same per-voice
    // uniforms: a class can differ only where a uniform falls within the running sums'
    // ~1e-6 rounding difference of a class boundary.
    let model = random_model(&wide(24, 40), 5);
    for device in devices() {
        let generator = TensorGenerator::new(&model, &device).unwrap();
        draws_agree(&model, &generator, 5, 12, 2, &format!("{device:?}"));
    }
}

#[test]
fn generation_has_the_cpu_decoders_shape_and_is_reproducible() {
    let cfg = wide(24, 40);
    let model = random_model(&cfg, 6);
    let (voices, frames) = (3, 5);
    let hop = cfg.ae_hop_length;
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 6);
    let streams = [4u64, 0, 9];
    for device in devices() {
        let generator = TensorGenerator::new(&model, &device).unwrap();
        for temperature in [1.0, 0.0] {
            let sampling = Sampling {
                temperature,
                seed: 3,
            };
            let control = Control::default();
            let audio =
                Generator::generate(&generator, &request(&enc, &streams, sampling, 1), &control)
                    .unwrap();
            assert_eq!(control.samples(), (voices * frames * hop) as u64);
            assert_eq!(audio.len(), voices);
            assert!(audio.iter().all(|a| a.len() == frames * hop));
            assert!(audio.iter().flatten().all(|x| x.abs() <= 1.0));
            let again = Generator::generate(
                &generator,
                &request(&enc, &streams, sampling, 1),
                &Control::default(),
            )
            .unwrap();
            assert_eq!(again, audio, "{device:?}: same seed, same audio");
            // The fast CPU decoder draws from the same streams: the notes agree sample for
            // sample until a draw falls on a class boundary (~1e-6 per sample), after which
            // that voice's note goes its own way. Over 3 × 160 samples, all but a rare
            // voice agree throughout.
            let cpu = Generator::generate(
                &CpuGenerator::new(&model).unwrap(),
                &request(&enc, &streams, sampling, 1),
                &Control::default(),
            )
            .unwrap();
            let agreeing = cpu.iter().zip(&audio).filter(|(a, b)| a == b).count();
            assert!(
                agreeing >= voices - 1,
                "{device:?}: {agreeing} of {voices} voices agree"
            );
        }
    }
}

#[test]
fn cancelling_stops_before_the_next_frame_and_bad_shapes_are_errors() {
    let cfg = wide(24, 40);
    let model = random_model(&cfg, 7);
    let generator = TensorGenerator::new(&model, &Device::Cpu).unwrap();
    let enc = frames_of(2, 4, cfg.ae_bottleneck_width, 7);
    let control = Control::default();
    control.cancel();
    let result = Generator::generate(
        &generator,
        &request(&enc, &[0, 1], Sampling::default(), 1),
        &control,
    );
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(control.samples(), 0);
    let result = Generator::generate(
        &generator,
        &request(&enc[1..], &[0, 1], Sampling::default(), 1),
        &control,
    );
    assert!(matches!(result, Err(Error::Shape(_))), "{result:?}");
    let mut run = generator.start(2).unwrap();
    let x = Tensor::zeros((2, 1), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(
        generator.step(&mut run, &x).is_err(),
        "a step needs a frame first"
    );
}
