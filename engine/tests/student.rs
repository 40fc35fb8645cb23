#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The engine with a Parallel WaveNet student: found beside a model or named itself,
//! rendered by the CPU renderer exactly as the reference pass plays the same noise,
//! pitched, cancellable.

use std::path::Path;

use autoencoder::Control;
use autoencoder::Sampling;
use autoencoder::student::generate::logistic_noise;
use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig, StudentConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use engine::synth::{DecoderKind, Embedding, Engine, Glide, ModelSource};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config() -> StudentAutoencoderConfig {
    StudentAutoencoderConfig {
        encoder: autoencoder::Config {
            ae_num_stages: 3,
            ae_num_layers: 3,
            ae_width: 6,
            ae_bottleneck_width: 4,
            ae_hop_length: 32,
            ..autoencoder::Config::small()
        },
        student: StudentConfig {
            flows: vec![3, 2],
            num_stages: 4,
            filter_length: 3,
            width: 8,
            bottleneck: 4,
            hop_length: 32,
            excitation_harmonics: 3,
            excitation_subpartials: 0,
            subpartial_bank: false,
            measured_subpartials: false,
            envelope_bands: 0,
            envelope_refinements: 0,
        },
    }
}

/// Writes a student with random weights into `dir`.
fn write_student(dir: &Path) -> StudentAutoencoder {
    write_student_with(dir, &config())
}

/// Writes a student of `cfg` with random weights into `dir`.
fn write_student_with(dir: &Path, cfg: &StudentAutoencoderConfig) -> StudentAutoencoder {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = cfg.clone();
    let vm = VarMap::new();
    let model = StudentAutoencoder::new(
        &cfg,
        &VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let mut vars: Vec<_> = vm.data().lock().unwrap().clone().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for (_, var) in vars {
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| 0.3 * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    vm.save(dir.join("weights.safetensors")).unwrap();
    std::fs::write(
        dir.join("student.json"),
        serde_json::to_string_pretty(&cfg).unwrap(),
    )
    .unwrap();
    model
}

fn embedding(frames: usize, seed: usize) -> Embedding {
    Embedding {
        frames,
        channels: 4,
        data: (0..frames * 4)
            .map(|i| ((i + seed) as f32 * 0.61).sin())
            .collect(),
    }
}

#[test]
fn the_engine_renders_a_student_as_the_reference_pass_does() {
    let tmp = tempfile::tempdir().unwrap();
    let teacher = tmp.path().join("model");
    engine::models::dir::write_random(&teacher, &config().encoder, 1).unwrap();
    let model = write_student(&teacher.join("student"));

    // The teacher's directory plays its student beside it unless asked for its
    // autoregressive decoder (as the embedded default model does); the student's own
    // directory only in parallel; a model with no student autoregressively.
    let load = |dir: &Path, kind| Engine::load(&ModelSource::Dir(dir.into()), kind, &Device::Cpu);
    assert_eq!(load(&teacher, None).unwrap().kind(), DecoderKind::Parallel);
    assert_eq!(
        load(&teacher, Some(DecoderKind::Autoregressive))
            .unwrap()
            .kind(),
        DecoderKind::Autoregressive
    );
    let engine = load(&teacher, Some(DecoderKind::Parallel))
        .unwrap()
        .with_cache(None)
        .with_threads(2);
    assert_eq!(engine.kind(), DecoderKind::Parallel);
    assert!(engine.pitched());
    assert!(engine.decoder_description().starts_with("parallel"));
    assert_eq!(
        load(&teacher.join("student"), None).unwrap().kind(),
        DecoderKind::Parallel
    );
    let err = load(&teacher.join("student"), Some(DecoderKind::Autoregressive))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no autoregressive decoder"), "{err}");
    let lone = tmp.path().join("lone");
    engine::models::dir::write_random(&lone, &config().encoder, 1).unwrap();
    assert_eq!(
        load(&lone, None).unwrap().kind(),
        DecoderKind::Autoregressive
    );
    let err = load(&lone, Some(DecoderKind::Parallel))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no Parallel WaveNet student") && err.contains("lone"),
        "{err}"
    );

    // Two voices of different lengths, one pitched and one not, from streams 5 and 9.
    let embeddings = [embedding(40, 0), embedding(25, 3)];
    let pitches = [
        Some(Glide {
            start: 60.0,
            end: 67.0,
        }),
        None,
    ];
    let sampling = Sampling {
        temperature: 1.0,
        seed: 11,
    };
    let render = |engine: &Engine, control: &Control| {
        engine.decode_at(
            &embeddings,
            &pitches,
            &[5, 9],
            sampling,
            control,
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
    };
    let audio = render(&engine, &Control::default()).unwrap();
    assert_eq!(audio[0].len(), 40 * 32);
    assert_eq!(audio[1].len(), 25 * 32);

    // The reference: candle's pass over the same noise, embedding and excitation (the
    // shorter voice padded with its last frame, as the engine does, then cut).
    for (v, (e, stream)) in embeddings.iter().zip([5u64, 9]).enumerate() {
        let time = 40 * 32;
        let mut enc = e.data.clone();
        for _ in e.frames..40 {
            enc.extend_from_slice(e.frame(e.frames - 1));
        }
        let enc = Tensor::from_vec(enc, (1, 40, 4), &Device::Cpu).unwrap();
        let z =
            Tensor::from_vec(logistic_noise(11, stream, time), (1, time), &Device::Cpu).unwrap();
        let exc = pitches[v].map(|g| {
            let mut curve = g.f0_curve(e.frames * 32);
            let end = *curve.last().unwrap();
            curve.resize(time, end);
            let k = 3;
            let x = autoencoder::excitation::excitation(
                &curve,
                k,
                autoencoder::excitation::Oscillator::new(),
            );
            Tensor::from_vec(x, (1, time, 2 * k), &Device::Cpu).unwrap()
        });
        let reference = model.render(&z, &enc, exc.as_ref()).unwrap().audio;
        let mut reference: Vec<f32> = reference.flatten_all().unwrap().to_vec1().unwrap();
        autoencoder::student::generate::output_stage(&mut reference);
        let worst = audio[v]
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "voice {v}: {worst}");
        assert!(
            audio[v].iter().any(|a| a.abs() > 1e-3),
            "voice {v} is silent"
        );
    }

    // Through candle's tensors (the GPU's path), on the CPU device: the same audio.
    let tensor = load(&teacher, Some(DecoderKind::Parallel))
        .unwrap()
        .with_cache(None)
        .with_tensor_decoder(&Device::Cpu)
        .unwrap();
    assert!(tensor.uses_tensor_decoder() && !engine.uses_tensor_decoder());
    let through_tensors = render(&tensor, &Control::default()).unwrap();
    for (a, b) in through_tensors.iter().zip(&audio) {
        assert_eq!(a.len(), b.len());
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
    }

    // A cancelled render stops with Cancelled.
    let control = Control::default();
    control.cancel();
    let result = render(&engine, &control);
    assert!(matches!(result, Err(engine::Error::Cancelled)));

    // Its own encoder: a note encodes to frames of its bottleneck.
    let note: Vec<f32> = (0..320).map(|t| (t as f32 * 0.05).sin() * 0.5).collect();
    let encoded = engine.encode(&[&note], &[]).unwrap();
    assert_eq!(
        (encoded[0].embedding.frames, encoded[0].embedding.channels),
        (10, 4)
    );
}

/// A student whose frames measure the note's sub-partials encodes each note at its own
/// pitch: the frames end in the measured amplitudes (a sub-octave at 0.2 measures 0.2), an
/// unpitched note measures silence, and the cache keeps the two apart.
#[test]
fn a_measured_student_encodes_each_note_at_its_pitch() {
    use autoencoder::student::model::measured_amplitude;
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config();
    cfg.student.excitation_subpartials = 3;
    cfg.student.subpartial_bank = true;
    cfg.student.measured_subpartials = true;
    cfg.student.bottleneck = 7;
    cfg.validate().unwrap();
    let dir = tmp.path().join("student");
    write_student_with(&dir, &cfg);
    let cache = engine::synth::cache::Cache::new(tmp.path().join("cache"));
    let engine = Engine::load(&ModelSource::Dir(dir), None, &Device::Cpu)
        .unwrap()
        .with_cache(Some(cache))
        .with_threads(1);
    assert!(engine.measures_pitch());
    assert_eq!(engine.bottleneck(), 7);
    // C6 (1046.5 Hz) with a sub-octave (sub-partial 1, f0/2) at 0.2.
    let f0 = autoencoder::excitation::midi_to_hz(84.0);
    let note: Vec<f32> = (0..32 * 24)
        .map(|t| {
            let s = t as f32 / 16_000.0;
            0.3 * (std::f32::consts::TAU * f0 * s).sin()
                + 0.2 * (std::f32::consts::TAU * f0 / 2.0 * s + 0.7).sin()
        })
        .collect();
    let pitched = engine.encode(&[&note], &[Some(84)]).unwrap().remove(0);
    assert!(!pitched.cached);
    let e = &pitched.embedding;
    assert_eq!((e.frames, e.channels), (24, 7));
    for f in 0..e.frames {
        let a: Vec<f32> = e.frame(f)[4..]
            .iter()
            .map(|&c| measured_amplitude(c))
            .collect();
        assert!(
            (a[1] - 0.2).abs() < 0.01 && a[0] < 0.01 && a[2] < 0.01,
            "frame {f}: {a:?}"
        );
    }
    let unpitched = engine.encode(&[&note], &[None]).unwrap().remove(0);
    assert!(!unpitched.cached, "not served the pitched note's frames");
    assert!((0..24).all(|f| {
        unpitched.embedding.frame(f)[4..]
            .iter()
            .all(|&c| measured_amplitude(c) == 0.0)
    }));
    assert_eq!(
        unpitched.embedding.frame(3)[..4],
        e.frame(3)[..4],
        "the encoder's channels do not depend on the pitch"
    );
    let again = engine.encode(&[&note], &[Some(84)]).unwrap().remove(0);
    assert!(again.cached);
    assert_eq!(again.embedding.data, e.data);
    assert!(
        engine.encode(&[&note], &[Some(84), None]).is_err(),
        "one pitch per note"
    );
}
