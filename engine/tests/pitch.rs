#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Native pitch: with a model that has an excitation, sources are encoded at their own
//! pitch (not resampled) and the decoder is handed the target's f0 curve; a model
//! without one resamples as before and refuses a pitch for its decoder.

use std::ops::ControlFlow;

use autoencoder::wavenet::cpu::CpuGenerator;
use autoencoder::{Config, ExcitationInto, Sampling};
use autoencoder::{Control, Generator, Request};
use engine::audio::ReadOptions;
use engine::audio::wav::WavFormat;
use engine::synth::{Engine, Glide};
use testkit::notes;

fn tiny(harmonics: usize) -> Config {
    Config {
        ae_num_stages: 3,
        excitation_harmonics: harmonics,
        excitation_into: ExcitationInto::Layers,
        ..testkit::tiny::wavenet()
    }
}

/// A 0.25 s note at MIDI 48 (C3), named so that its pitch is known.
fn source(dir: &std::path::Path) -> (std::path::PathBuf, Vec<f32>) {
    let samples = notes::sine(autoencoder::excitation::midi_to_hz(48.0), 0.5, 4000);
    let path = dir.join(notes::nsynth_name("flute", 48, 100));
    notes::write(&path, &samples, WavFormat::F32);
    (path, samples)
}

fn engine(dir: &std::path::Path, harmonics: usize) -> Engine {
    let model =
        testkit::tiny::random_model(&dir.join(format!("model-{harmonics}")), &tiny(harmonics), 3);
    testkit::tiny::load(&model).with_threads(1)
}

fn decode(engine: &Engine, pitch: Option<Glide>) -> engine::Result<Vec<f32>> {
    let (dir, _) = (tempfile::tempdir().unwrap(), ());
    let (path, _) = source(dir.path());
    let prepared = engine
        .prepare(&path, Some(64), ReadOptions::default())
        .unwrap();
    let encoded = engine
        .encode(
            &[prepared.samples.as_slice()],
            &[engine::synth::sounding_pitch(&prepared)],
        )
        .unwrap();
    let audio = engine.decode_at(
        &[encoded[0].embedding.clone()],
        &[pitch],
        &[0],
        Sampling::default(),
        &Control::default(),
        &mut |_| ControlFlow::Continue(()),
    )?;
    Ok(audio.into_iter().next().unwrap())
}

#[test]
fn a_pitched_model_encodes_sources_as_they_are_and_gives_the_decoder_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), 4);
    assert!(engine.pitched());
    let (path, samples) = source(dir.path());
    // Asked for E4 (64), the C3 note is used as it is: no resampling.
    let prepared = engine
        .prepare(&path, Some(64), ReadOptions::default())
        .unwrap();
    assert_eq!(prepared.shift_semitones, 0);
    assert_eq!(prepared.pitch, Some(48));
    assert_eq!(&prepared.samples[..samples.len()], samples.as_slice());

    // The engine's decode equals the decoder handed E4's f0 directly.
    let audio = decode(&engine, Some(Glide::at(64.0))).unwrap();
    let encoded = engine
        .encode(
            &[prepared.samples.as_slice()],
            &[engine::synth::sounding_pitch(&prepared)],
        )
        .unwrap();
    let embedding = &encoded[0].embedding;
    let f0 = vec![autoencoder::excitation::midi_to_hz(64.0); embedding.frames * 64];
    let request = Request {
        encoding: &embedding.data,
        f0: Some(&f0),
        streams: &[0],
        sampling: Sampling::default(),
        threads: 1,
    };
    let direct = CpuGenerator::new(engine.autoencoder().unwrap())
        .unwrap()
        .generate(&request, &Control::default())
        .unwrap();
    assert_eq!(audio, direct[0]);

    // Another pitch, a glide, or none at all, is another sound.
    let other = decode(&engine, Some(Glide::at(60.0))).unwrap();
    assert_ne!(audio, other);
    let glide = decode(
        &engine,
        Some(Glide {
            start: 64.0,
            end: 76.0,
        }),
    )
    .unwrap();
    assert_ne!(audio, glide);
    assert_eq!(audio.len(), glide.len());
    let unpitched = decode(&engine, None).unwrap();
    assert_ne!(audio, unpitched);

    // Out of the piano's range: a one-line error, not a panic.
    let error = decode(&engine, Some(Glide::at(120.0))).unwrap_err();
    assert!(error.to_string().contains("MIDI 21 to 108"), "{error}");
}

#[test]
fn a_model_without_an_excitation_resamples_and_refuses_a_decoder_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), 0);
    assert!(!engine.pitched());
    let (path, samples) = source(dir.path());
    let prepared = engine
        .prepare(&path, Some(60), ReadOptions::default())
        .unwrap();
    assert_eq!(prepared.shift_semitones, 12);
    assert!(
        prepared.length < samples.len() * 3 / 4,
        "an octave up is half as long"
    );
    let error = decode(&engine, Some(Glide::at(64.0))).unwrap_err();
    assert!(error.to_string().contains("no excitation"), "{error}");
    assert!(decode(&engine, None).is_ok());
}

#[test]
fn a_glide_moves_in_semitones_from_start_to_end() {
    let curve = Glide {
        start: 57.0,
        end: 69.0,
    }
    .f0_curve(101);
    assert!((curve[0] - 220.0).abs() < 1e-3);
    assert!((curve[50] - 311.127).abs() < 1e-2, "{}", curve[50]);
    assert!((curve[100] - 440.0).abs() < 1e-3);
}
