#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The fast CPU decoder against the reference generator ([`FastGenerator`]): the same
//! distribution teacher-forced, the same samples at the same seed, on every instruction
//! set this CPU has, for widths that do and do not fill whole SIMD panels.

mod common;

use autoencoder::Control;
use autoencoder::wavenet::cpu::{CpuGenerator, Isa, Parallelism, State};
use autoencoder::{Config, Error, FastGenerator, Sampling};
use common::{Conformance, frames_of, random_model, scaled_audio, tiny, wide};

fn isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Generic];
    if Isa::detect() == Isa::Avx2Fma {
        isas.push(Isa::Avx2Fma);
    } else {
        println!("skipping the AVX2+FMA kernels: this CPU lacks them");
    }
    isas
}

/// Teacher-forced on the same input, the largest probability difference.
fn teacher_forced(cfg: &Config, voices: usize, frames: usize, isa: Isa, seed: u64) -> f32 {
    let model = random_model(cfg, seed);
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, seed);
    let audio = scaled_audio(voices, frames * cfg.ae_hop_length, seed + 1);
    let dec = CpuGenerator::with_isa(&model, isa).unwrap();
    Conformance::new(cfg, voices, frames, &enc).teacher_forced(
        &mut FastGenerator::new(&model, voices).unwrap(),
        &mut dec.stepper(voices),
        &audio,
    )
}

#[test]
fn teacher_forced_probabilities_match_the_reference() {
    // 1e-4 is the bound. The two compute the same sums in another order (fused
    // multiply-adds, panels) with activations within 3e-7 of exact: a few ulps of the
    // logits, ~1e-6 in probability; a wrong tap, lag or column moves them by 1e-2 or more.
    for isa in isas() {
        for (cfg, voices, frames) in [
            // Magenta's filter 3, dilations 1..16; batches that use every tile shape.
            (tiny(3, 5, 10, 32), 1, 3),
            (tiny(3, 5, 10, 32), 7, 2),
            // Other filter lengths; dilations past the hop.
            (tiny(2, 6, 7, 16), 2, 6),
            (tiny(4, 3, 5, 8), 3, 8),
            (tiny(1, 2, 3, 8), 5, 4),
            // Widths that fill whole panels, and ones that leave a ragged edge.
            (wide(64, 128), 4, 2),
            (wide(40, 24), 6, 2),
            (wide(20, 200), 1, 2),
        ] {
            let worst = teacher_forced(&cfg, voices, frames, isa, 3);
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
    let cfg = wide(24, 40);
    let model = random_model(&cfg, 5);
    let (voices, frames) = (5, 24);
    let enc = frames_of(voices, frames, cfg.ae_bottleneck_width, 5);
    for temperature in [1.0, 0.7, 0.0] {
        let sampling = Sampling {
            temperature,
            seed: 17,
        };
        for isa in isas() {
            let dec = CpuGenerator::with_isa(&model, isa).unwrap();
            let (draws, different) = Conformance::new(&cfg, voices, frames, &enc).draws(
                &mut FastGenerator::new(&model, voices).unwrap(),
                &mut dec.stepper(voices),
                sampling,
            );
            assert_eq!(draws, voices * frames * cfg.ae_hop_length);
            assert!(
                different <= 2,
                "{isa:?}, temperature {temperature}: {different} of {draws} draws differ"
            );
        }
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
    let one = dec
        .generate(&enc, voices, sampling, 1, &Control::default())
        .unwrap();
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
            let many = dec
                .generate(&enc, voices, sampling, threads, &control)
                .unwrap();
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
    let one = dec
        .generate(&enc, 1, sampling, 1, &Control::default())
        .unwrap();
    for threads in [2, 3] {
        let dec = dec.clone().with_parallelism(Parallelism::Columns);
        let many = dec
            .generate(&enc, 1, sampling, threads, &Control::default())
            .unwrap();
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
        let many = dec.generate(&enc, 1, sampling, threads, &control).unwrap();
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
        let result = dec.generate(&enc, 2, Sampling::default(), 2, &control);
        assert!(matches!(result, Err(Error::Cancelled)), "{parallelism:?}");
        assert_eq!(control.samples(), 0);
        // Cancelled mid-way from another thread: every thread stops, none hangs.
        let control = Control::default();
        let result = std::thread::scope(|scope| {
            let job = scope.spawn(|| dec.generate(&enc, 2, Sampling::default(), 2, &control));
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
    assert!(
        dec.generate(&[0.0; 7], 2, Sampling::default(), 1, &control)
            .is_err()
    );
    assert!(
        dec.generate(&[], 0, Sampling::default(), 1, &control)
            .is_err()
    );
    let mut state = State::new(&dec, 2);
    assert!(state.set_frame(&dec, &[0.0; 5]).is_err());
}
