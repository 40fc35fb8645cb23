//! The student's run: trained on spectra, checked free-running, resumed exactly; distilled
//! from a teacher whose encoder it keeps.

use autoencoder::Config;
use std::path::Path;

use candle_core::Device;
use engine::fsutil::Overwrite;
use engine::train::{Event, TrainOptions};

use crate::setup::*;

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
    let (summary, events) = run_to_end(&mut start_student(&straight, &cfg, opts.clone()));
    assert_eq!(summary.step, 6);
    let losses = step_losses(&events);
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
    assert_resumes_exactly(
        &straight,
        &tmp.path().join("resumed"),
        2,
        |dir| start_student(dir, &cfg, opts),
        |dir| StudentTrainer::resume(dir, None, &Device::Cpu).unwrap(),
    );
}

#[test]
fn a_student_distilled_from_a_teacher_keeps_its_encoder_and_resumes_exactly() {
    use autoencoder::student::LossWeights;
    use engine::train::student::StudentTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let teacher_cfg = Config {
        excitation_harmonics: 2,
        ..tiny_config()
    };
    let teacher = tmp.path().join("teacher");
    engine::models::dir::write_random(&teacher, &teacher_cfg, 3).unwrap();
    let cfg = student_of(teacher_cfg.clone(), vec![2]);
    let opts = TrainOptions {
        teacher: Some(teacher.clone()),
        student_loss: LossWeights {
            spectral: 0.5,
            power: 0.5,
            distill: 1.0,
        },
        ..options(&data, 4)
    };
    let straight = tmp.path().join("straight");
    let (_, events) = run_to_end(&mut start_student(&straight, &cfg, opts.clone()));
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
    assert_resumes_exactly(
        &straight,
        &tmp.path().join("resumed"),
        2,
        |dir| start_student(dir, &cfg, opts.clone()),
        |dir| StudentTrainer::resume(dir, None, &Device::Cpu).unwrap(),
    );

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
