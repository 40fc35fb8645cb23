#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The fast CPU decoder against the reference generator ([`FastGenerator`]): the same
//! distribution teacher-forced, the same samples at the same seed, on every instruction
//! set this CPU has, for widths that do and do not fill whole SIMD panels.

mod common;

use autoencoder::cpu::Isa;
use autoencoder::wavenet::cpu::{CpuGenerator, Parallelism, State};
use autoencoder::{Control, Generator, Request, Stepper};
use autoencoder::{Error, Sampling};
use common::{
    Candidate, conformance_cases, draws_agree, frames_of, random_model, teacher_forced_worst, tiny,
    wide,
};

fn isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Generic];
    if Isa::detect() == Isa::Avx2Fma {
        isas.push(Isa::Avx2Fma);
    } else {
        println!("skipping the AVX2+FMA kernels: this CPU lacks them");
    }
    isas
}

/// `dec` on `voices` voices, voice `v` drawing from stream `v`, through the generator
/// contract as the engine runs it.
fn generate(
    dec: &CpuGenerator,
    encoding: &[f32],
    voices: usize,
    sampling: Sampling,
    threads: usize,
    control: &Control,
) -> autoencoder::Result<Vec<Vec<f32>>> {
    let streams: Vec<u64> = (0..voices as u64).collect();
    let request = Request {
        encoding,
        f0: None,
        streams: &streams,
        sampling,
        threads,
    };
    Generator::generate(dec, &request, control)
}

impl Candidate for CpuGenerator {
    fn stepper(&self, voices: usize) -> Box<dyn Stepper + '_> {
        Box::new(CpuGenerator::stepper(self, voices))
    }
}

#[test]
fn teacher_forced_probabilities_match_the_reference() {
    // 1e-4 is the bound. The two compute the same sums in another order (fused
    // multiply-adds, panels) with activations within 3e-7 of exact: a few ulps of the
    // logits, ~1e-6 in probability; a wrong tap, lag or column moves them by 1e-2 or more.
    for isa in isas() {
        for (cfg, voices, frames) in conformance_cases() {
            let worst = teacher_forced_worst(&cfg, voices, frames, 3, |model| {
                CpuGenerator::with_isa(model, isa).unwrap()
            });
            assert!(
                worst < 1e-4,
                "{isa:?} {cfg:?} × {voices}: probability error {worst}"
            );
        }
    }
}

#[test]
fn draws_equal_the_reference_at_the_same_seed() {
    // Teacher-forced on the reference's own samples, both draw from the same per-voice
    // streams: a class can differ only where the uniform draw falls within the logits'
    // ~1e-6 difference of a class boundary (probability ~1e-6 per sample). A flip in
    // free-running generation changes the rest of that voice's note, so free-running
    // equality is checked between thread counts below, not against the reference.
    let model = random_model(&wide(24, 40), 5);
    for isa in isas() {
        let generator = CpuGenerator::with_isa(&model, isa).unwrap();
        draws_agree(&model, &generator, 5, 24, 2, &format!("{isa:?}"));
    }
}

#[test]
fn threads_do_not_change_the_audio() {
    let cfg = wide(24, 40);
    let model = random_model(&cfg, 6);
    let (voices, frames) = (7, 6);
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 6);
    let sampling = Sampling {
        temperature: 1.0,
        seed: 3,
    };
    let dec = CpuGenerator::new(&model).unwrap();
    let one = generate(&dec, &enc, voices, sampling, 1, &Control::default()).unwrap();
    assert_eq!(one.len(), voices);
    assert!(one.iter().all(|v| v.len() == frames * cfg.ae_hop_length));
    // Split by voices or by columns, on any number of threads, the arithmetic of every
    // output is the same: the audio is identical.
    for parallelism in [Parallelism::Voices, Parallelism::Columns, Parallelism::Auto] {
        let dec = CpuGenerator::new(&model)
            .unwrap()
            .with_parallelism(parallelism);
        for threads in [2, 3, 8] {
            let control = Control::default();
            let many = generate(&dec, &enc, voices, sampling, threads, &control).unwrap();
            assert_eq!(many, one, "{parallelism:?} on {threads} threads");
            assert_eq!(
                control.samples(),
                (voices * frames * cfg.ae_hop_length) as u64
            );
        }
    }
    // One voice on several threads (columns), and ragged widths.
    let cfg = wide(40, 24);
    let model = random_model(&cfg, 8);
    let enc = frames_of(1, 4, cfg.ae_bottleneck_width, 8);
    let dec = CpuGenerator::new(&model).unwrap();
    let one = generate(&dec, &enc, 1, sampling, 1, &Control::default()).unwrap();
    for threads in [2, 3] {
        let dec = dec.clone().with_parallelism(Parallelism::Columns);
        let many = generate(&dec, &enc, 1, sampling, threads, &Control::default()).unwrap();
        assert_eq!(many, one, "one voice on {threads} threads");
    }
    // Going on with one thread part-way (as a split decode does when its partners do not
    // get their cores), at any frame: the same audio, and the control says from where.
    for (threads, frame) in [(2, 1), (3, 2), (2, 3)] {
        let dec = dec
            .clone()
            .with_parallelism(Parallelism::Columns)
            .with_forced_solo(frame);
        let control = Control::default();
        let many = generate(&dec, &enc, 1, sampling, threads, &control).unwrap();
        assert_eq!(many, one, "alone from frame {frame} of {threads} threads");
        // From the first step of that frame at the latest (earlier where the threads
        // outnumber the free cores and the meetings say so).
        let from = control.solo_from.load(std::sync::atomic::Ordering::Relaxed);
        assert!(
            from > 0 && from <= (frame * cfg.ae_hop_length + 1) as u64,
            "{from}"
        );
        assert_eq!(control.samples(), (4 * cfg.ae_hop_length) as u64);
    }
}

#[test]
fn a_cancelled_generation_stops() {
    let cfg = tiny(3, 3, 4, 16);
    let model = random_model(&cfg, 2);
    let dec = CpuGenerator::new(&model).unwrap();
    let enc = frames_of(2, 1000, cfg.ae_bottleneck_width, 1);
    for parallelism in [Parallelism::Voices, Parallelism::Columns] {
        let dec = dec.clone().with_parallelism(parallelism);
        let control = Control::default();
        control.cancel();
        let result = generate(&dec, &enc, 2, Sampling::default(), 2, &control);
        assert!(matches!(result, Err(Error::Cancelled)), "{parallelism:?}");
        assert_eq!(control.samples(), 0);
        // Cancelled mid-way from another thread: every thread stops, none hangs.
        let control = Control::default();
        let result = std::thread::scope(|scope| {
            let job = scope.spawn(|| generate(&dec, &enc, 2, Sampling::default(), 2, &control));
            while control.samples() < 1000 {
                std::thread::yield_now();
            }
            control.cancel();
            job.join().unwrap()
        });
        assert!(matches!(result, Err(Error::Cancelled)), "{parallelism:?}");
        assert!(control.samples() < 2 * 1000 * 16);
    }
}

#[test]
fn bad_shapes_are_errors() {
    let cfg = tiny(3, 3, 4, 16);
    let model = random_model(&cfg, 2);
    let dec = CpuGenerator::new(&model).unwrap();
    let control = Control::default();
    assert!(generate(&dec, &[0.0; 7], 2, Sampling::default(), 1, &control).is_err());
    assert!(generate(&dec, &[], 0, Sampling::default(), 1, &control).is_err());
    let mut state = State::new(&dec, 2);
    assert!(state.set_frame(&dec, &[0.0; 5]).is_err());
}
