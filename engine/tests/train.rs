#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Train → checkpoint → resume on a tiny config and a handful of generated notes.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use autoencoder::Config;
use candle_core::Device;
use engine::fsutil::Overwrite;
use engine::soundfont::{RenderOptions, render_dataset};
#[path = "support/tiny_sf2.rs"]
mod tiny_sf2;
use engine::train::{Event, TrainOptions, Trainer};
use tiny_sf2::tiny_sf2;

pub fn tiny_config() -> Config {
    Config {
        num_stages: 4,
        num_layers: 4,
        filter_length: 3,
        width: 8,
        skip_width: 8,
        ae_num_stages: 4,
        ae_num_layers: 3,
        ae_filter_length: 3,
        ae_width: 8,
        ae_bottleneck_width: 4,
        ae_hop_length: 64,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    }
}

fn notes(dir: &Path) -> std::path::PathBuf {
    let font = dir.join("tiny.sf2");
    std::fs::write(&font, tiny_sf2(&[0, 24, 40, 56])).unwrap();
    let data = dir.join("notes");
    let options = RenderOptions {
        programs: vec![0, 24, 40, 56],
        drum_kits: false,
        pitches: vec![48, 60, 72],
        velocities: vec![100],
        sample: None,
        seed: 0,
        overwrite: Overwrite::Never,
    };
    render_dataset(&font, &data, &options, &|_, _| {}).unwrap();
    data
}

fn options(data: &Path, steps: u64) -> TrainOptions {
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

/// Runs `t` and asks it to stop (as Ctrl-C does) once `steps` steps are done.
fn run_stopping_after(t: &mut Trainer, steps: usize) -> engine::train::Summary {
    stopping_after(steps, |stop, on_event| t.run(stop, on_event))
}

/// Runs a training loop (`run(stop, on_event)`) and asks it to stop after `steps` steps.
fn stopping_after(
    steps: usize,
    run: impl FnOnce(&AtomicBool, &mut dyn FnMut(&Event)) -> engine::Result<engine::train::Summary>,
) -> engine::train::Summary {
    let stop = AtomicBool::new(false);
    let mut seen = 0;
    run(&stop, &mut |e| {
        if matches!(e, Event::Step { .. }) {
            seen += 1;
            if seen == steps {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
    })
    .unwrap()
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("weights.safetensors")).unwrap()
}

#[test]
fn resuming_continues_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = tiny_config();
    let stop = AtomicBool::new(false);

    // 8 steps in one go.
    let straight = tmp.path().join("straight");
    let mut t = Trainer::start(
        &straight,
        &cfg,
        options(&data, 8),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    assert!(t.fused(), "on the CPU, training takes the fused step");
    assert_eq!(
        t.data().validation_notes(),
        3,
        "one instrument of four held out"
    );
    let mut events = Vec::new();
    let summary = t.run(&stop, &mut |e| events.push(e.clone())).unwrap();
    assert_eq!(summary.step, 8);
    assert!(summary.last_validation_nll.unwrap() > 0.0);
    let steps = events
        .iter()
        .filter(|e| matches!(e, Event::Step { .. }))
        .count();
    let checkpoints = events
        .iter()
        .filter(|e| matches!(e, Event::Checkpoint { .. }))
        .count();
    assert_eq!((steps, checkpoints), (8, 3)); // at 3, 6 and 8

    // The same run stopped after 4 steps (as Ctrl-C does), then resumed by a new Trainer.
    let resumed = tmp.path().join("resumed");
    let mut t = Trainer::start(
        &resumed,
        &cfg,
        options(&data, 8),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let summary = run_stopping_after(&mut t, 4);
    assert!(summary.stopped_early);
    drop(t);
    let mut t = Trainer::resume(&resumed, None, None, &Device::Cpu).unwrap();
    assert_eq!(t.step(), 4);
    t.run(&stop, &mut |_| {}).unwrap();
    assert!(
        weights(&straight) == weights(&resumed),
        "a resumed run must equal an uninterrupted one, bit for bit"
    );

    // The log holds every step of both halves.
    let log = std::fs::read_to_string(resumed.join("train_log.jsonl")).unwrap();
    let logged_steps = log
        .lines()
        .filter(|l| l.contains("\"event\":\"step\""))
        .count();
    assert_eq!(logged_steps, 8);

    // The saved model loads like any other.
    let loaded = engine::models::dir::load(&resumed, &Device::Cpu).unwrap();
    assert_eq!(loaded.model.config(), &cfg);
}

#[test]
fn a_stop_request_checkpoints_and_training_lowers_the_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let dir = tmp.path().join("model");
    let mut opts = options(&data, 40);
    opts.validate_every = 40;
    opts.checkpoint_every = 1000;
    let mut t = Trainer::start(&dir, &tiny_config(), opts, &Device::Cpu, Overwrite::Never).unwrap();
    let before = t.validate().unwrap();
    let stop = AtomicBool::new(false);
    let summary = t.run(&stop, &mut |_| {}).unwrap();
    let after = summary.last_validation_nll.unwrap();
    // From ~ln 256 = 5.5 nats, 40 small steps on sine notes of unseen instruments: a
    // model that learns drops by tenths of a nat (measured 0.28); one that does not stays
    // within f32 noise (1e-6).
    assert!(after < before - 0.2, "validation NLL {before} → {after}");

    // Ctrl-C: the flag is set before the next step; a checkpoint is written at once.
    // Resuming may set a new total and a new peak learning rate; both are kept.
    let mut t = Trainer::resume(&dir, Some(100), Some(3e-4), &Device::Cpu).unwrap();
    let summary = run_stopping_after(&mut t, 2);
    assert!(summary.stopped_early);
    assert_eq!(summary.step, 42);
    let t = Trainer::resume(&dir, None, None, &Device::Cpu).unwrap();
    assert_eq!(t.step(), 42);
    assert_eq!((t.options().steps, t.options().lr), (100, 3e-4));
    assert!(Trainer::resume(&dir, None, Some(-1.0), &Device::Cpu).is_err());
}

#[test]
fn a_model_directory_is_not_overwritten_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let dir = tmp.path().join("model");
    Trainer::start(
        &dir,
        &tiny_config(),
        options(&data, 1),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let err = Trainer::start(
        &dir,
        &tiny_config(),
        options(&data, 1),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("a model is already there") && err.ends_with("config.json"),
        "{err}"
    );
    Trainer::start(
        &dir,
        &tiny_config(),
        options(&data, 1),
        &Device::Cpu,
        Overwrite::Allowed,
    )
    .unwrap();
    let mut bad = options(&data, 1);
    bad.crop = 100;
    let err = Trainer::start(
        &tmp.path().join("x"),
        &tiny_config(),
        bad,
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("multiple of the hop"), "{err}");
}

#[test]
fn a_pitched_model_trains_with_noise_and_free_running_checks_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = Config {
        excitation_harmonics: 4,
        ..tiny_config()
    };
    let opts = TrainOptions {
        input_noise: 0.05,
        unpitched_share: 0.3,
        free_run_every: 3,
        free_run_notes: 2,
        free_run_secs: 0.1,
        ..options(&data, 6)
    };
    let straight = tmp.path().join("straight");
    let mut t = Trainer::start(
        &straight,
        &cfg,
        opts.clone(),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let mut events = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| events.push(e.clone()))
        .unwrap();
    let free_runs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::FreeRun {
                step,
                notes,
                log_mel_distance_db,
                ..
            } => Some((*step, *notes, *log_mel_distance_db)),
            _ => None,
        })
        .collect();
    assert_eq!(free_runs.len(), 2, "at steps 3 and 6");
    assert!(
        free_runs
            .iter()
            .all(|&(_, n, d)| n == 2 && d.is_finite() && d > 0.0)
    );
    let log = std::fs::read_to_string(straight.join("train_log.jsonl")).unwrap();
    assert_eq!(log.matches("\"event\":\"freerun\"").count(), 2);
    // The saved model has the excitation's weights.
    let saved = engine::models::dir::load(&straight, &Device::Cpu).unwrap();
    assert_eq!(saved.model.config().excitation_harmonics, 4);

    // Stopped after 2 steps and resumed: the same weights (noise and dropped
    // excitations are drawn from the step, not from a stream a resume would lose).
    let resumed = tmp.path().join("resumed");
    let mut t = Trainer::start(&resumed, &cfg, opts, &Device::Cpu, Overwrite::Never).unwrap();
    run_stopping_after(&mut t, 2);
    // As if it had been killed after logging two more steps than it checkpointed.
    let log_path = resumed.join("train_log.jsonl");
    let mut log = std::fs::read_to_string(&log_path).unwrap();
    log.push_str("{\"event\":\"step\",\"step\":3}\n{\"event\":\"step\",\"step\":4}\n");
    std::fs::write(&log_path, log).unwrap();
    let mut t = Trainer::resume(&resumed, None, None, &Device::Cpu).unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(weights(&straight), weights(&resumed));
    // The log reads as one run: steps 1..=6 once each.
    let steps: Vec<u64> = std::fs::read_to_string(&log_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "step")
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, (1..=6).collect::<Vec<_>>());
}

/// A tiny student with its own tiny encoder and a 2-harmonic excitation.
fn tiny_student(flows: Vec<usize>) -> autoencoder::student::StudentAutoencoderConfig {
    autoencoder::student::StudentAutoencoderConfig {
        encoder: tiny_config(),
        student: autoencoder::student::StudentConfig {
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
        },
    }
}

#[test]
fn a_student_trains_on_spectra_checks_itself_free_running_and_resumes_exactly() {
    use engine::train::student::{StudentTrainer, load};
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = tiny_student(vec![2, 2]);
    let opts = TrainOptions {
        unpitched_share: 0.3,
        free_run_every: 3,
        free_run_notes: 2,
        free_run_secs: 0.1,
        ..options(&data, 6)
    };
    let straight = tmp.path().join("straight");
    let mut t = StudentTrainer::start(
        &straight,
        &cfg,
        opts.clone(),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let mut events = Vec::new();
    let summary = t
        .run(&AtomicBool::new(false), &mut |e| events.push(e.clone()))
        .unwrap();
    assert_eq!(summary.step, 6);
    let losses: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            Event::Step { loss, .. } => Some(*loss),
            _ => None,
        })
        .collect();
    assert!(losses.iter().all(|l| l.is_finite() && *l > 0.0));
    let validations = events
        .iter()
        .filter(|e| matches!(e, Event::SpectralValidation { loss, .. } if loss.is_finite()))
        .count();
    let free_runs = events
        .iter()
        .filter(|e| matches!(e, Event::FreeRun { notes: 2, .. }))
        .count();
    assert_eq!((validations, free_runs), (2, 2));
    // A loadable student; a second start without force is refused.
    let student = load(&straight, &Device::Cpu).unwrap();
    assert_eq!(student.config(), &cfg);
    assert!(
        StudentTrainer::start(
            &straight,
            &cfg,
            opts.clone(),
            &Device::Cpu,
            Overwrite::Never
        )
        .is_err()
    );

    // Stopped after 2 steps and resumed: the same weights as the straight run (the start
    // is seeded, the noise drawn per step).
    let resumed = tmp.path().join("resumed");
    let mut t =
        StudentTrainer::start(&resumed, &cfg, opts, &Device::Cpu, Overwrite::Never).unwrap();
    stopping_after(2, |stop, on_event| t.run(stop, on_event));
    let mut t = StudentTrainer::resume(&resumed, None, &Device::Cpu).unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(weights(&straight), weights(&resumed));
}

#[test]
fn a_student_grown_by_sub_partials_plays_as_before_and_trains_on() {
    use autoencoder::excitation::Oscillator;
    use engine::train::student::{Grow, StudentTrainer, load};
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = tiny_student(vec![2]);
    let dir = tmp.path().join("student");
    let opts = options(&data, 2);
    let mut t = StudentTrainer::start(&dir, &cfg, opts, &Device::Cpu, Overwrite::Never).unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    drop(t);
    // What a student plays: noise, an embedding and a 220 Hz excitation, fixed.
    let play = |dir: &Path| {
        let model = load(dir, &Device::Cpu).unwrap();
        let (frames, time) = (6, 6 * 64);
        let student = &model.config().student;
        let z = candle_core::Tensor::from_vec(
            autoencoder::student::generate::logistic_noise(7, 0, time),
            (1, time),
            &Device::Cpu,
        )
        .unwrap();
        let enc: Vec<f32> = (0..frames * 4).map(|i| (i as f32 * 0.3).sin()).collect();
        let enc = candle_core::Tensor::from_vec(enc, (1, frames, 4), &Device::Cpu).unwrap();
        let exc = student
            .excitation(&vec![220.0; time], Oscillator::new())
            .unwrap();
        let channels = student.excitation_channels();
        let exc = candle_core::Tensor::from_vec(exc, (1, time, channels), &Device::Cpu).unwrap();
        let audio = model.render(&z, &enc, Some(&exc)).unwrap().audio;
        (
            channels,
            audio.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        )
    };
    let (before_channels, before) = play(&dir);

    // Grown to 3 sub-partials: the files say so at once, and it plays what it played.
    let subs = |n| Grow {
        subpartials: Some(n),
        ..Grow::default()
    };
    let t = StudentTrainer::resume_growing(&dir, Some(4), subs(3), &Device::Cpu).unwrap();
    drop(t);
    let (after_channels, after) = play(&dir);
    assert_eq!((before_channels, after_channels), (4, 10));
    let worst = before
        .iter()
        .zip(&after)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "{worst}");
    assert!(before.iter().any(|a| a.abs() > 1e-4));
    // Fewer is refused; a plain resume before any checkpoint grows the state tensors
    // itself, and training goes on with the new inputs.
    assert!(StudentTrainer::resume_growing(&dir, None, subs(1), &Device::Cpu).is_err());
    let mut t = StudentTrainer::resume(&dir, Some(4), &Device::Cpu).unwrap();
    let mut losses = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| {
        if let Event::Step { loss, .. } = e {
            losses.push(*loss);
        }
    })
    .unwrap();
    assert_eq!(losses.len(), 2);
    assert!(losses.iter().all(|l| l.is_finite()));
    let grown = load(&dir, &Device::Cpu).unwrap();
    assert_eq!(grown.config().student.excitation_subpartials, 3);
    let exc_rows: Vec<_> =
        candle_core::safetensors::load(dir.join("weights.safetensors"), &Device::Cpu)
            .unwrap()
            .into_iter()
            .filter(|(name, _)| name.contains("exc_map_"))
            .map(|(_, t)| t.dims()[2])
            .collect();
    assert!(!exc_rows.is_empty() && exc_rows.iter().all(|&rows| rows == 10));

    // Resumed with half its crops layered over their octaves below (the notes of 60 and
    // 72 have them): a share past 1 is refused, the change is logged and saved.
    let mut t = StudentTrainer::resume(&dir, Some(6), &Device::Cpu).unwrap();
    assert!(t.set_sub_octave_share(1.5).is_err());
    t.set_sub_octave_share(0.5).unwrap();
    let mut losses = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| {
        if let Event::Step { loss, .. } = e {
            losses.push(*loss);
        }
    })
    .unwrap();
    assert!(losses.len() == 2 && losses.iter().all(|l| l.is_finite()));
    let log = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
    assert!(
        log.contains(r#"{"event":"layering","step":4,"share":0.5}"#),
        "{log}"
    );
    let mut t = StudentTrainer::resume(&dir, None, &Device::Cpu).unwrap();
    assert_eq!((t.step(), t.options().sub_octave_share), (6, 0.5));
    assert!(
        t.set_bank_weight(1.0).is_err(),
        "a bank match weight without a bank"
    );
    drop(t);

    // Grown by a sub-partial bank: it plays what it played plus every sub-partial's sine
    // at the bank's starting gain, trains on (the bank's map leaves zero), and can no
    // longer grow sub-partials.
    let (_, before) = play(&dir);
    let bank = Grow {
        subpartial_bank: true,
        ..Grow::default()
    };
    drop(StudentTrainer::resume_growing(&dir, Some(8), bank, &Device::Cpu).unwrap());
    let (_, after) = play(&dir);
    let sines = {
        let e = load(&dir, &Device::Cpu)
            .unwrap()
            .config()
            .student
            .excitation(&vec![220.0; 6 * 64], Oscillator::new())
            .unwrap();
        // Channels: 2 harmonics (4), then 3 sub-partials as (sin, cos) pairs.
        e.chunks_exact(10)
            .map(|row| row[4] + row[6] + row[8])
            .collect::<Vec<f32>>()
    };
    let gain = autoencoder::student::model::BANK_INITIAL_GAIN as f32;
    let worst = before
        .iter()
        .zip(&after)
        .zip(&sines)
        .map(|((a, b), s)| (a + gain * s - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 1e-6, "{worst}");
    assert!(
        load(&dir, &Device::Cpu)
            .unwrap()
            .config()
            .student
            .subpartial_bank
    );
    assert!(StudentTrainer::resume_growing(&dir, None, subs(4), &Device::Cpu).is_err());
    // With the bank's match term: logged with every step's terms, and a negative weight
    // is refused.
    let mut t = StudentTrainer::resume(&dir, Some(8), &Device::Cpu).unwrap();
    assert!(t.set_bank_weight(-1.0).is_err());
    t.set_bank_weight(0.5).unwrap();
    let mut banks = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| {
        if let Event::StudentTerms { terms, .. } = e {
            banks.push(terms.bank);
        }
    })
    .unwrap();
    assert_eq!(t.step(), 8);
    assert!(
        banks.len() == 2 && banks.iter().all(|b| b.is_some_and(f64::is_finite)),
        "{banks:?}"
    );
    assert_eq!(t.options().bank_weight, 0.5);
    drop(t);
    let map = candle_core::safetensors::load(dir.join("weights.safetensors"), &Device::Cpu)
        .unwrap()
        .remove("subpartial_bank/W")
        .unwrap();
    let moved = map
        .abs()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(moved > 0.0, "the bank trains");

    // Grown by measured sub-partials: the frames gain a channel per sub-partial; the
    // flows play what they played (their new rows are zero) and the bank starts over at
    // the measured amplitudes, so with every sub-partial measured silent it plays the
    // flows alone, and with amplitudes a it adds Σ a_m·sin_m; it trains on.
    let old = load(&dir, &Device::Cpu).unwrap();
    let (frames, time) = (6, 6 * 64);
    let z = candle_core::Tensor::from_vec(
        autoencoder::student::generate::logistic_noise(7, 0, time),
        (1, time),
        &Device::Cpu,
    )
    .unwrap();
    let learned: Vec<f32> = (0..frames * 4).map(|i| (i as f32 * 0.3).sin()).collect();
    let exc_rows = old
        .config()
        .student
        .excitation(&vec![220.0; time], Oscillator::new())
        .unwrap();
    let exc = candle_core::Tensor::from_vec(exc_rows.clone(), (1, time, 10), &Device::Cpu).unwrap();
    let play_with = |model: &autoencoder::student::StudentAutoencoder,
                     amplitudes: Option<[f32; 3]>| {
        let mut enc = Vec::new();
        for f in 0..frames {
            enc.extend_from_slice(&learned[f * 4..(f + 1) * 4]);
            if let Some(a) = amplitudes {
                enc.extend(a.map(autoencoder::student::model::measured_channel));
            }
        }
        let bn = enc.len() / frames;
        let enc = candle_core::Tensor::from_vec(enc, (1, frames, bn), &Device::Cpu).unwrap();
        let out = model.render(&z, &enc, Some(&exc)).unwrap().audio;
        out.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let old_enc =
        candle_core::Tensor::from_vec(learned.clone(), (1, frames, 4), &Device::Cpu).unwrap();
    let old_gains = old
        .student()
        .bank()
        .unwrap()
        .gains(&old_enc)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let sub_sines = |gains: &dyn Fn(usize) -> [f32; 3]| -> Vec<f32> {
        exc_rows
            .chunks_exact(10)
            .enumerate()
            .map(|(t, row)| {
                let g = gains(t / 64);
                g[0] * row[4] + g[1] * row[6] + g[2] * row[8]
            })
            .collect()
    };
    let old_bank = sub_sines(&|f| [old_gains[f * 3], old_gains[f * 3 + 1], old_gains[f * 3 + 2]]);
    let flows_alone: Vec<f32> = play_with(&old, None)
        .iter()
        .zip(&old_bank)
        .map(|(a, b)| a - b)
        .collect();
    let measure = Grow {
        measured_subpartials: true,
        ..Grow::default()
    };
    drop(StudentTrainer::resume_growing(&dir, Some(10), measure, &Device::Cpu).unwrap());
    let grown = load(&dir, &Device::Cpu).unwrap();
    let s = &grown.config().student;
    assert!(s.measured_subpartials);
    assert_eq!((s.bottleneck, s.learned_channels()), (7, 4));
    let silent = play_with(&grown, Some([0.0; 3]));
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max)
    };
    assert!(
        close(&silent, &flows_alone) < 1e-5,
        "{}",
        close(&silent, &flows_alone)
    );
    let a = [0.1f32, 0.0, 0.04];
    let sounding = play_with(&grown, Some(a));
    let want: Vec<f32> = flows_alone
        .iter()
        .zip(sub_sines(&|_| a))
        .map(|(f, b)| f + b)
        .collect();
    // The measured channel round trip (ln, exp) in f32: within 1e-5 of 0.1.
    assert!(
        close(&sounding, &want) < 3e-6,
        "{}",
        close(&sounding, &want)
    );
    let mut t = StudentTrainer::resume(&dir, Some(10), &Device::Cpu).unwrap();
    let mut losses = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| {
        if let Event::Step { loss, .. } = e {
            losses.push(*loss);
        }
    })
    .unwrap();
    assert!(
        losses.len() == 2 && losses.iter().all(|l| l.is_finite()),
        "{losses:?}"
    );
    let w = candle_core::safetensors::load(dir.join("weights.safetensors"), &Device::Cpu)
        .unwrap()
        .remove("subpartial_bank/W")
        .unwrap();
    assert_eq!(w.dims(), &[1, 1, 7, 3]);
    // The grown student reconstructs (its frames measured from the notes).
    let note: Vec<f32> = (0..time).map(|t| (t as f32 * 0.086).sin() * 0.3).collect();
    let out = engine::train::student::reconstruct(&grown, &[note], &[220.0], 0).unwrap();
    assert!(out[0].len() == time && out[0].iter().all(|v| v.is_finite()));
}

#[test]
fn a_student_distilled_from_a_teacher_keeps_its_encoder_and_resumes_exactly() {
    use autoencoder::student::{StudentAutoencoderConfig, StudentConfig, Weights};
    use engine::train::student::StudentTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let teacher_cfg = Config {
        excitation_harmonics: 2,
        ..tiny_config()
    };
    let teacher = tmp.path().join("teacher");
    engine::models::dir::write_random(&teacher, &teacher_cfg, 3).unwrap();
    let cfg = StudentAutoencoderConfig {
        encoder: teacher_cfg.clone(),
        student: StudentConfig {
            flows: vec![2],
            num_stages: 3,
            filter_length: 3,
            width: 8,
            bottleneck: 4,
            hop_length: 64,
            excitation_harmonics: 2,
            excitation_subpartials: 0,
            subpartial_bank: false,
            measured_subpartials: false,
        },
    };
    let opts = TrainOptions {
        teacher: Some(teacher.clone()),
        student_loss: Weights {
            spectral: 0.5,
            power: 0.5,
            distill: 1.0,
        },
        ..options(&data, 4)
    };
    let straight = tmp.path().join("straight");
    let mut t = StudentTrainer::start(
        &straight,
        &cfg,
        opts.clone(),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let mut events = Vec::new();
    t.run(&AtomicBool::new(false), &mut |e| events.push(e.clone()))
        .unwrap();
    let terms: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::StudentTerms { terms, .. } => Some(*terms),
            _ => None,
        })
        .collect();
    assert_eq!(terms.len(), 4);
    for t in &terms {
        let kl = t.kl().unwrap();
        let sum = 0.5 * t.spectral.unwrap() + 0.5 * t.power.unwrap() + kl;
        assert!(
            (sum - t.total).abs() < 1e-3 * t.total.abs().max(1.0),
            "{t:?}"
        );
    }
    // The encoder is the teacher's, bit for bit, after training.
    let tensors = |dir: &Path| {
        candle_core::safetensors::load(dir.join("weights.safetensors"), &Device::Cpu).unwrap()
    };
    let (trained, original) = (tensors(&straight), tensors(&teacher));
    let mut encoder: Vec<&String> = original.keys().filter(|k| k.starts_with("ae_")).collect();
    encoder.sort();
    assert!(!encoder.is_empty());
    let values = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for name in encoder {
        assert_eq!(values(&trained[name]), values(&original[name]), "{name}");
    }
    // The log carries the terms.
    let log = std::fs::read_to_string(straight.join("train_log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"terms\"") && log.contains("cross_entropy"));

    // Resumed from step 2: the same weights (the teacher is found again from the state).
    let resumed = tmp.path().join("resumed");
    let mut t = StudentTrainer::start(&resumed, &cfg, opts.clone(), &Device::Cpu, Overwrite::Never)
        .unwrap();
    stopping_after(2, |stop, on_event| t.run(stop, on_event));
    let mut t = StudentTrainer::resume(&resumed, None, &Device::Cpu).unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    assert_eq!(weights(&straight), weights(&resumed));

    // A teacher with a different encoder is refused, naming the teacher.
    let other = tmp.path().join("other");
    engine::models::dir::write_random(
        &other,
        &Config {
            ae_width: 6,
            ..teacher_cfg
        },
        3,
    )
    .unwrap();
    let err = StudentTrainer::start(
        &tmp.path().join("refused"),
        &cfg,
        TrainOptions {
            teacher: Some(other.clone()),
            ..opts
        },
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("encoder") && err.contains("other"), "{err}");
}

#[test]
fn a_samplernn_resumes_exactly() {
    use autoencoder::samplernn::SampleRnnConfig;
    use engine::train::samplernn::SampleRnnTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = SampleRnnConfig::tiny();
    let mut opts = options(&data, 5);
    opts.free_run_every = 5;
    opts.free_run_notes = 1;
    opts.free_run_secs = 0.05;
    let stop = AtomicBool::new(false);
    let straight = tmp.path().join("straight");
    let mut t = SampleRnnTrainer::start(
        &straight,
        &cfg,
        opts.clone(),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    let summary = t.run(&stop, &mut |_| {}).unwrap();
    assert_eq!(summary.step, 5);
    assert!(summary.last_loss.unwrap().is_finite());
    let split = tmp.path().join("split");
    let mut t =
        SampleRnnTrainer::start(&split, &cfg, opts, &Device::Cpu, Overwrite::Never).unwrap();
    let summary = stopping_after(2, |stop, on_event| t.run(stop, on_event));
    assert_eq!(summary.step, 2);
    assert!(summary.stopped_early);
    drop(t);
    let mut t = SampleRnnTrainer::resume(&split, None, &Device::Cpu).unwrap();
    assert_eq!(t.step(), 2);
    t.run(&stop, &mut |_| {}).unwrap();
    assert!(
        weights(&straight) == weights(&split),
        "resumed ≠ uninterrupted"
    );
    let log = std::fs::read_to_string(straight.join("train_log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"freerun\""), "{log}");
    // The other trainer refuses it.
    assert!(Trainer::resume(&straight, None, None, &Device::Cpu).is_err());
}

/// `--force` starts over only in a folder a Timbrel run made, clearing only a run's files;
/// a folder with run files of someone else's is refused (with every trainer) and kept.
#[test]
fn force_starts_over_only_in_a_folder_timbrel_made_and_keeps_the_users_files() {
    use autoencoder::samplernn::SampleRnnConfig;
    use engine::train::samplernn::SampleRnnTrainer;
    use engine::train::student::StudentTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());

    // The user's folder: a config.json and a student.json of theirs, and a train/ folder.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir_all(theirs.join("train")).unwrap();
    for name in ["config.json", "student.json", "train/notes.txt"] {
        std::fs::write(theirs.join(name), b"the user's own").unwrap();
    }
    let refused = |err: engine::Error| {
        assert!(
            matches!(err, engine::Error::NotCreatedByTimbrel { .. }),
            "{err}"
        );
    };
    let opts = || options(&data, 1);
    refused(
        Trainer::start(
            &theirs,
            &tiny_config(),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    refused(
        StudentTrainer::start(
            &theirs,
            &tiny_student(vec![2]),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    refused(
        SampleRnnTrainer::start(
            &theirs,
            &SampleRnnConfig::tiny(),
            opts(),
            &Device::Cpu,
            Overwrite::Allowed,
        )
        .unwrap_err(),
    );
    // Only train/ of theirs (no config): refused too, even without --force.
    let only_state = tmp.path().join("only-state");
    std::fs::create_dir_all(only_state.join("train")).unwrap();
    std::fs::write(only_state.join("train/notes.txt"), b"mine").unwrap();
    refused(
        Trainer::start(
            &only_state,
            &tiny_config(),
            opts(),
            &Device::Cpu,
            Overwrite::Never,
        )
        .unwrap_err(),
    );
    for name in ["config.json", "student.json", "train/notes.txt"] {
        assert_eq!(std::fs::read(theirs.join(name)).unwrap(), b"the user's own");
    }
    assert!(only_state.join("train/notes.txt").exists());

    // A run's own folder, with the user's files put beside its own: starting over clears
    // the run's files and keeps theirs.
    let ours = tmp.path().join("ours");
    let mut t = Trainer::start(
        &ours,
        &tiny_config(),
        opts(),
        &Device::Cpu,
        Overwrite::Never,
    )
    .unwrap();
    t.run(&AtomicBool::new(false), &mut |_| {}).unwrap();
    assert!(ours.join("train/state.json").exists());
    std::fs::write(ours.join("train/mine.txt"), b"keep").unwrap();
    std::fs::write(ours.join("README.md"), b"keep").unwrap();
    Trainer::start(
        &ours,
        &tiny_config(),
        opts(),
        &Device::Cpu,
        Overwrite::Allowed,
    )
    .unwrap();
    assert!(!ours.join("train/state.json").exists());
    assert!(!ours.join("weights.safetensors").exists());
    assert!(!ours.join("train_log.jsonl").exists());
    assert!(
        ours.join(format!("train/{}", engine::train::MARKER_FILE))
            .exists()
    );
    assert_eq!(std::fs::read(ours.join("train/mine.txt")).unwrap(), b"keep");
    assert_eq!(std::fs::read(ours.join("README.md")).unwrap(), b"keep");
}
