#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! NSynth layout round trip and SoundFont rendering.

use std::collections::BTreeMap;
use std::path::Path;

use engine::fsutil::Overwrite;
use engine::nsynth::{Dataset, DatasetWriter, Example, NOTE_SAMPLES};
use engine::pitch::{self, Pitch};
use engine::soundfont::{RenderOptions, render_dataset};
use testkit::skip;
#[path = "support/tiny_sf2.rs"]
mod tiny_sf2;
use tiny_sf2::tiny_sf2;

fn options(programs: &[u8], pitches: &[u8], velocities: &[u8]) -> RenderOptions {
    RenderOptions {
        programs: programs.to_vec(),
        drum_kits: false,
        pitches: pitches.to_vec(),
        velocities: velocities.to_vec(),
        sample: None,
        seed: 0,
        overwrite: Overwrite::Never,
    }
}

fn tiny_font(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("tiny.sf2");
    std::fs::write(&path, tiny_sf2(&[0, 24])).unwrap();
    path
}

fn peak(x: &[f32]) -> f32 {
    x.iter().fold(0.0, |m, v| m.max(v.abs()))
}

#[test]
fn renders_nsynth_notes_from_a_soundfont() {
    let tmp = tempfile::tempdir().unwrap();
    let font = tiny_font(tmp.path());
    let out = tmp.path().join("data");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let summary = render_dataset(
        &font,
        &out,
        &options(&[0, 24], &[30, 48, 60, 72, 90], &[50, 127]),
        &|_, total| {
            assert_eq!(total, 20);
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
    )
    .unwrap();
    assert_eq!(done.into_inner(), 20);
    // Keys 30 and 90 are outside the instrument's 36–84: silent, skipped.
    assert_eq!(
        (summary.written, summary.skipped_silent, summary.clipped),
        (12, 8, 0)
    );

    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.examples.len(), 12);
    let piano = &ds.examples["keyboard_synthetic_000-060-127"];
    assert_eq!(piano.instrument_family_str, "keyboard");
    assert_eq!(piano.instrument_source_str, "synthetic");
    assert_eq!(
        (piano.pitch, piano.velocity, piano.sample_rate),
        (60, 127, 16_000)
    );
    let guitar = &ds.examples["guitar_synthetic_024-048-050"];
    assert_eq!((guitar.instrument, guitar.instrument_family), (24, 3));
    // Note ids follow program, pitch, velocity over the whole grid, skipped notes included.
    assert_eq!(guitar.note, 10 + 2);

    let loud = ds.load("keyboard_synthetic_000-060-127").unwrap();
    let soft = ds.load("keyboard_synthetic_000-060-050").unwrap();
    assert_eq!(loud.len(), NOTE_SAMPLES);
    // Velocity means loudness: no per-note normalisation.
    assert!(
        peak(&soft) < 0.7 * peak(&loud),
        "{} vs {}",
        peak(&soft),
        peak(&loud)
    );
    assert!(matches!(
        pitch::detect(&loud),
        Pitch::Detected { midi: 60, .. }
    ));
    // Held for 3 s, then released: the last half second is far quieter than the held part.
    assert!(peak(&loud[56_000..]) < 0.1 * peak(&loud[16_000..48_000]));
    assert!(peak(&loud[40_000..48_000]) > 0.5 * peak(&loud));
}

#[test]
fn rendering_is_deterministic_and_never_overwrites_without_force() {
    let tmp = tempfile::tempdir().unwrap();
    let font = tiny_font(tmp.path());
    let mut opts = options(&[0, 24], &[40, 50, 60, 70, 80], &[64, 100]);
    opts.sample = Some(7);
    opts.seed = 3;
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    render_dataset(&font, &a, &opts, &|_, _| {}).unwrap();
    render_dataset(&font, &b, &opts, &|_, _| {}).unwrap();
    let json_a = std::fs::read(a.join("examples.json")).unwrap();
    assert_eq!(json_a, std::fs::read(b.join("examples.json")).unwrap());
    let ds = Dataset::open(&a).unwrap();
    assert_eq!(ds.examples.len(), 7);
    for key in ds.examples.keys() {
        let wav = format!("audio/{key}.wav");
        assert_eq!(
            std::fs::read(a.join(&wav)).unwrap(),
            std::fs::read(b.join(&wav)).unwrap()
        );
    }
    // Another seed, another subset.
    opts.seed = 4;
    let c = tmp.path().join("c");
    render_dataset(&font, &c, &opts, &|_, _| {}).unwrap();
    assert_ne!(json_a, std::fs::read(c.join("examples.json")).unwrap());

    let err = render_dataset(&font, &a, &opts, &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists") && err.ends_with("examples.json"),
        "{err}"
    );
    opts.overwrite = Overwrite::Allowed;
    render_dataset(&font, &a, &opts, &|_, _| {}).unwrap();
}

#[test]
fn bad_render_requests_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let font = tiny_font(tmp.path());
    let out = tmp.path().join("x");
    let check = |opts: RenderOptions, needle: &str| {
        let err = render_dataset(&font, &out, &opts, &|_, _| {})
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{err}");
    };
    check(options(&[200], &[60], &[100]), "program 200");
    check(options(&[0], &[128], &[100]), "128 is not a MIDI value");
    check(options(&[0], &[60], &[0]), "velocity 0");
    let garbage = tmp.path().join("garbage.sf2");
    std::fs::write(&garbage, b"RIFF\x04\x00\x00\x00sfbk").unwrap();
    let err = render_dataset(&garbage, &out, &options(&[0], &[60], &[100]), &|_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not a SoundFont") && err.ends_with("garbage.sf2"),
        "{err}"
    );
}

#[test]
fn renders_from_fluidr3_where_installed() {
    let font = Path::new("/usr/share/sounds/sf2/FluidR3_GM.sf2");
    if !font.exists() {
        skip::skip(&format!(
            "{} is not installed (Debian package fluid-soundfont-gm; `./dev test` installs it)",
            font.display()
        ));
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let summary = render_dataset(
        font,
        tmp.path(),
        &options(&[0, 33, 73], &[48, 60], &[100]),
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(summary.written, 6);
    let ds = Dataset::open(tmp.path()).unwrap();
    let families: Vec<&str> = ds
        .examples
        .values()
        .map(|e| e.instrument_family_str.as_str())
        .collect();
    assert!(
        families.contains(&"keyboard") && families.contains(&"bass") && families.contains(&"flute")
    );
    for key in ds.examples.keys() {
        let note = ds.load(key).unwrap();
        let p = peak(&note);
        assert!(p > 0.05 && p <= 1.0, "{key}: peak {p}");
    }
}

#[test]
fn the_nsynth_layout_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let writer = DatasetWriter::create(tmp.path(), Overwrite::Never).unwrap();
    let mut examples = BTreeMap::new();
    for (i, (pitch, velocity)) in [(21u8, 25u8), (60, 100), (108, 127)]
        .into_iter()
        .enumerate()
    {
        let e = Example::new(i as u64, 5, 8, 0, pitch, velocity);
        let samples: Vec<f32> = (0..NOTE_SAMPLES)
            .map(|t| 0.9 * ((t as f32) * 0.01 * (i + 1) as f32).sin())
            .collect();
        writer.write_audio(&e, &samples).unwrap();
        examples.insert(e.note_str.clone(), (e, samples));
    }
    let metadata: BTreeMap<String, Example> = examples
        .iter()
        .map(|(k, (e, _))| (k.clone(), e.clone()))
        .collect();
    writer.finish(&metadata).unwrap();

    let ds = Dataset::open(tmp.path()).unwrap();
    assert_eq!(ds.examples, metadata);
    for (key, (_, samples)) in &examples {
        let back = ds.load(key).unwrap();
        let err = back
            .iter()
            .zip(samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(
            err <= 0.5 / 32768.0 + 1e-7,
            "{key}: 16-bit round trip error {err}"
        );
    }
    // The JSON has NSynth's 13 fields and nothing else.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("examples.json")).unwrap()).unwrap();
    let fields = json
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_object()
        .unwrap()
        .len();
    assert_eq!(fields, 13);
}

#[test]
fn broken_datasets_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.ends_with("examples.json") && err.contains("cannot read"),
        "{err}"
    );

    let e = Example::new(0, 1, 0, 2, 60, 100);
    let write = |value: serde_json::Value| {
        std::fs::write(tmp.path().join("examples.json"), value.to_string()).unwrap();
        Dataset::open(tmp.path()).unwrap_err().to_string()
    };
    let mut evil = e.clone();
    evil.note_str = "../../etc/passwd".into();
    let err = write(serde_json::json!({ "../../etc/passwd": evil }));
    assert!(err.contains("not a plain file name"), "{err}");
    let err = write(serde_json::json!({ "other": e }));
    assert!(err.contains("differs from its note_str"), "{err}");
    let err = write(serde_json::json!([1, 2]));
    assert!(err.contains("not an NSynth examples.json"), "{err}");

    // A note whose audio is stereo, or short.
    std::fs::write(
        tmp.path().join("examples.json"),
        serde_json::json!({ e.note_str.clone(): e }).to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.path().join("audio")).unwrap();
    let ds = Dataset::open(tmp.path()).unwrap();
    let path = ds.audio_path(&e.note_str);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    (0..100).for_each(|_| w.write_sample(0i16).unwrap());
    w.finalize().unwrap();
    let err = ds.load(&e.note_str).unwrap_err().to_string();
    assert!(
        err.contains("expected 16-bit mono") && err.ends_with(".wav"),
        "{err}"
    );
    engine::audio::wav::write(
        &path,
        &[0.1; 100],
        16_000,
        Default::default(),
        Overwrite::Allowed,
    )
    .unwrap();
    let err = ds.load(&e.note_str).unwrap_err().to_string();
    assert!(err.contains("100 samples"), "{err}");
}

#[test]
fn drum_kits_render_as_unpitched_notes() {
    let tmp = tempfile::tempdir().unwrap();
    let font = tiny_font(tmp.path());
    let out = tmp.path().join("drums");
    let drums = RenderOptions {
        drum_kits: true,
        ..options(&[0], &[36, 38], &[100])
    };
    let summary = render_dataset(&font, &out, &drums, &|_, _| {}).unwrap();
    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.examples.len(), summary.written);
    assert!(summary.written > 0, "the kit made no sound");
    for e in ds.examples.values() {
        assert!(e.unpitched, "{}", e.note_str);
        assert_eq!(e.instrument_family_str, "mallet");
    }
    // The mark survives the file; NSynth's own files, without it, read as pitched.
    let json = std::fs::read_to_string(out.join("examples.json")).unwrap();
    assert!(json.contains("\"unpitched\": true") || json.contains("\"unpitched\":true"));
    let pitched = tmp.path().join("pitched");
    render_dataset(&font, &pitched, &options(&[0], &[60], &[100]), &|_, _| {}).unwrap();
    let json = std::fs::read_to_string(pitched.join("examples.json")).unwrap();
    assert!(!json.contains("unpitched"));
}

#[test]
#[should_panic(expected = "TIMBREL_NO_SKIP=1, but a tool is missing")]
fn a_skip_fails_where_skipping_is_not_allowed() {
    skip::skip_or_fail("a tool is missing", true);
}
