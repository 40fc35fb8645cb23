//! What the training tests set up: tiny configs, a handful of generated notes, small
//! options, and running a loop to its end or stopping it as Ctrl-C does. Also included by
//! `tests/device.rs` (`#[path = "train/setup.rs"] mod setup;`, beside its own `tiny_sf2`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use autoencoder::Config;
use autoencoder::samplernn::SampleRnnConfig;
use autoencoder::student::{StudentAutoencoderConfig, StudentConfig};
use candle_core::Device;
use engine::fsutil::Overwrite;
use engine::soundfont::{RenderOptions, render_dataset};
use engine::train::samplernn::SampleRnnTrainer;
use engine::train::student::StudentTrainer;
use engine::train::{Event, FamilyStep, Summary, TrainOptions, Trainer, Training};

use crate::tiny_sf2::tiny_sf2;

pub fn tiny_config() -> Config {
    Config {
        num_layers: 4,
        width: 8,
        skip_width: 8,
        ..testkit::tiny::wavenet()
    }
}

/// A tiny student with an encoder of `encoder`'s shape, a 2-harmonic excitation and
/// flows of `flows` layers.
pub fn student_of(encoder: Config, flows: Vec<usize>) -> StudentAutoencoderConfig {
    StudentAutoencoderConfig {
        encoder,
        student: StudentConfig {
            flows,
            num_stages: 3,
            filter_length: 3,
            width: 8,
            bottleneck: 4,
            hop_length: 64,
            excitation_harmonics: 2,
            excitation_subpartials: 0,
            subpartial_bank: false,
            measured_subpartials: false,
            envelope_bands: 0,
            envelope_refinements: 0,
        },
    }
}

/// A tiny student with its own tiny encoder and a 2-harmonic excitation.
pub fn tiny_student(flows: Vec<usize>) -> StudentAutoencoderConfig {
    student_of(tiny_config(), flows)
}

/// Notes of four instruments at 48, 60 and 72, rendered into `dir/notes`.
pub fn notes(dir: &Path) -> PathBuf {
    notes_at(dir, &[48, 60, 72])
}

/// Notes of four instruments at `pitches`, rendered into `dir/notes`.
pub fn notes_at(dir: &Path, pitches: &[u8]) -> PathBuf {
    let font = dir.join("tiny.sf2");
    std::fs::write(&font, tiny_sf2(&[0, 24, 40, 56])).unwrap();
    let data = dir.join("notes");
    let options = RenderOptions {
        programs: vec![0, 24, 40, 56],
        drum_kits: false,
        pitches: pitches.to_vec(),
        velocities: vec![100],
        sample: None,
        seed: 0,
        overwrite: Overwrite::Never,
    };
    render_dataset(&font, &data, &options, &|_, _| {}).unwrap();
    data
}

pub fn options(data: &Path, steps: u64) -> TrainOptions {
    TrainOptions {
        data: vec![data.to_path_buf()],
        steps,
        batch: 2,
        crop: 256,
        lr: 3e-3,
        warmup_steps: 2,
        checkpoint_every: 3,
        validate_every: 3,
        validation_notes: 2,
        seed: 5,
        ..Default::default()
    }
}

/// Runs `t` to its end; its summary and every event it reported.
pub fn run_to_end<F: FamilyStep>(t: &mut Training<F>) -> (Summary, Vec<Event>) {
    let mut events = Vec::new();
    let summary = t
        .run(&AtomicBool::new(false), &mut |e| events.push(e.clone()))
        .unwrap();
    (summary, events)
}

/// Runs `t` and asks it to stop (as Ctrl-C does) once `steps` steps are done.
pub fn run_stopping_after<F: FamilyStep>(t: &mut Training<F>, steps: usize) -> Summary {
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    t.run(&stop, &mut |e| {
        if matches!(e, Event::Step { .. }) {
            seen += 1;
            if seen == steps {
                stop.store(true, Ordering::Relaxed);
            }
        }
    })
    .unwrap()
}

/// The losses of the steps among `events`.
pub fn step_losses(events: &[Event]) -> Vec<f64> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Step { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect()
}

/// A steady sine note of `len` samples (~219 Hz at 16 kHz, amplitude 0.3).
pub fn sine_note(len: usize) -> Vec<f32> {
    (0..len).map(|t| (t as f32 * 0.086).sin() * 0.3).collect()
}

pub fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("weights.safetensors")).unwrap()
}

/// A new WaveNet run in `dir` (refused over a model).
pub fn start_wavenet(dir: &Path, config: &Config, options: TrainOptions) -> Trainer {
    Trainer::start(dir, config, options, &Device::Cpu, Overwrite::Never).unwrap()
}

/// A new student's run in `dir` (refused over a student).
pub fn start_student(
    dir: &Path,
    config: &StudentAutoencoderConfig,
    options: TrainOptions,
) -> StudentTrainer {
    StudentTrainer::start(dir, config, options, &Device::Cpu, Overwrite::Never).unwrap()
}

/// A new SampleRNN run in `dir` (refused over a model).
pub fn start_samplernn(
    dir: &Path,
    config: &SampleRnnConfig,
    options: TrainOptions,
) -> SampleRnnTrainer {
    SampleRnnTrainer::start(dir, config, options, &Device::Cpu, Overwrite::Never).unwrap()
}

/// The run `start` makes in `dir`, stopped after `steps` steps (as Ctrl-C does), then
/// made again by `resume` and run to its end: its weights must equal those of the
/// uninterrupted run in `straight`, bit for bit.
pub fn assert_resumes_exactly<F: FamilyStep>(
    straight: &Path,
    dir: &Path,
    steps: usize,
    start: impl FnOnce(&Path) -> Training<F>,
    resume: impl FnOnce(&Path) -> Training<F>,
) {
    let mut t = start(dir);
    assert!(run_stopping_after(&mut t, steps).stopped_early);
    drop(t);
    let mut t = resume(dir);
    assert_eq!(t.step(), steps as u64);
    run_to_end(&mut t);
    assert!(
        weights(straight) == weights(dir),
        "a resumed run must equal an uninterrupted one, bit for bit"
    );
}
