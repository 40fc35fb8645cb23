//! A student grown on resume (sub-partials, a bank, measured sub-partials, an envelope) plays as
//! before and trains on.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use engine::train::Event;

use crate::setup::*;

#[test]
fn a_student_grown_by_sub_partials_plays_as_before_and_trains_on() {
    use autoencoder::excitation::Oscillator;
    use engine::train::student::{Grow, StudentTrainer, load};
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = tiny_student(vec![2]);
    let dir = tmp.path().join("student");
    let opts = options(&data, 2);
    run_to_end(&mut start_student(&dir, &cfg, opts));
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
    let losses = step_losses(&run_to_end(&mut t).1);
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
    let losses = step_losses(&run_to_end(&mut t).1);
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
    let losses = step_losses(&run_to_end(&mut t).1);
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
    let note = sine_note(time);
    let out = engine::train::student::reconstruct(&grown, &[note], &[220.0], 0).unwrap();
    assert!(out[0].len() == time && out[0].iter().all(|v| v.is_finite()));
}

#[test]
fn a_student_given_an_envelope_keeps_its_weights_trains_on_and_plays_the_envelope() {
    use engine::models::ModelFamily;
    use engine::train::student::{Grow, StudentTrainer, load};
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let cfg = tiny_student(vec![2]);
    let dir = tmp.path().join("student");
    run_to_end(&mut start_student(&dir, &cfg, options(&data, 2)));
    let before = weights(&dir);
    let envelope = Grow {
        envelope_bands: Some(6),
        ..Grow::default()
    };
    drop(StudentTrainer::resume_growing(&dir, Some(2), envelope, &Device::Cpu).unwrap());
    let grown = load(&dir, &Device::Cpu).unwrap();
    assert_eq!(grown.config().student.envelope_bands, 6);
    assert_eq!(ModelFamily::bottleneck(&grown), 4 + 6);
    assert_eq!(weights(&dir), before);
    // Its frames carry the note's envelope after the flows' channels, and it plays a note
    // back through the shaper: the same note's encoding, whole, and its envelope measured.
    let time = 8 * 64;
    let note = sine_note(time);
    let enc = ModelFamily::encode(&grown, &[&note], &[220.0]).unwrap();
    assert_eq!(enc.dims(), &[1, 8, 10]);
    let bands = autoencoder::student::envelope::Bands::new(6);
    let want = autoencoder::student::envelope::measure(&bands, &note, 64);
    let got: Vec<f32> = enc
        .narrow(2, 4, 6)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(got, want);
    let out = engine::train::student::reconstruct(&grown, &[note], &[220.0], 0).unwrap();
    assert!(out[0].len() == time && out[0].iter().all(|v| v.is_finite()));
    // It resumes and trains on (the flows never see the envelope), then through the
    // envelope stage: the option is kept by its checkpoint, logged, and refused where
    // the steps would go through candle's autograd.
    let mut t = StudentTrainer::resume(&dir, Some(4), &Device::Cpu).unwrap();
    let losses = step_losses(&run_to_end(&mut t).1);
    assert!(
        losses.len() == 2 && losses.iter().all(|l| l.is_finite()),
        "{losses:?}"
    );
    let mut t = StudentTrainer::resume(&dir, Some(7), &Device::Cpu).unwrap();
    t.set_through_envelope(true).unwrap();
    let losses = step_losses(&run_to_end(&mut t).1);
    assert!(
        losses.len() == 3 && losses.iter().all(|l| l.is_finite()),
        "{losses:?}"
    );
    let log = std::fs::read_to_string(dir.join("train_log.jsonl")).unwrap();
    assert!(
        log.contains(r#""event":"through_envelope","step":4,"on":true"#),
        "{log}"
    );
    let mut t = StudentTrainer::resume(&dir, Some(8), &Device::Cpu).unwrap();
    assert!(t.options().through_envelope);
    assert!(t.use_autograd().is_err());
}

#[test]
fn training_through_an_envelope_is_refused_for_a_student_without_one() {
    use engine::train::student::StudentTrainer;
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let dir = tmp.path().join("student");
    run_to_end(&mut start_student(
        &dir,
        &tiny_student(vec![2]),
        options(&data, 1),
    ));
    let mut t = StudentTrainer::resume(&dir, Some(2), &Device::Cpu).unwrap();
    let error = t.set_through_envelope(true).unwrap_err().to_string();
    assert!(error.contains("measured envelope"), "{error}");
}

#[test]
fn a_student_trained_through_its_envelope_resumes_with_more_bands_refined() {
    use engine::models::ModelFamily;
    use engine::train::student::{Grow, StudentTrainer, load};
    let tmp = tempfile::tempdir().unwrap();
    let data = notes(tmp.path());
    let dir = tmp.path().join("student");
    let mut cfg = tiny_student(vec![2]);
    cfg.student.envelope_bands = 6;
    let mut t = start_student(&dir, &cfg, options(&data, 2));
    t.set_through_envelope(true).unwrap();
    run_to_end(&mut t);
    let before = weights(&dir);
    // Finer bands, refined twice when played: the same weights (the flows never read the
    // envelope), the frames carrying the new bands, and training goes on through the
    // finer stage.
    let finer = Grow {
        envelope_bands: Some(9),
        envelope_refinements: Some(2),
        ..Grow::default()
    };
    let mut t = StudentTrainer::resume_growing(&dir, Some(4), finer, &Device::Cpu).unwrap();
    assert_eq!(weights(&dir), before);
    assert!(t.options().through_envelope);
    let losses = step_losses(&run_to_end(&mut t).1);
    assert!(
        losses.len() == 2 && losses.iter().all(|l| l.is_finite()),
        "{losses:?}"
    );
    let grown = load(&dir, &Device::Cpu).unwrap();
    assert_eq!(grown.config().student.envelope_bands, 9);
    assert_eq!(grown.config().student.envelope_refinements, 2);
    let note = sine_note(8 * 64);
    let enc = ModelFamily::encode(&grown, &[&note], &[220.0]).unwrap();
    assert_eq!(enc.dims(), &[1, 8, 4 + 9]);
    let out = engine::train::student::reconstruct(&grown, &[note], &[220.0], 0).unwrap();
    assert!(out[0].iter().all(|v| v.is_finite()));
}
