#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! Instrument export on a tiny random model: the SF2 loads in rustysynth and plays at a
//! key between two rendered ones, every key and velocity is covered once (SF2 zones and
//! SFZ regions), an exported SFZ plays in the tests' SFZ player, an interrupted export
//! resumes where it stopped, nothing is overwritten unasked, no input is written over
//! even when asked, and no folder Timbrel did not make is adopted or removed.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use autoencoder::Control;
use autoencoder::{Config, Sampling};
use engine::audio::wav::WavFormat;
use engine::audio::{ReadOptions, SAMPLE_RATE_HZ};
use engine::instrument::{self, InstrumentSpec};
use engine::synth::{Engine, RenderOptions, Weights};
use testkit::notes;

#[path = "support/sfz_player.rs"]
mod sfz_player;

struct Setup {
    dir: tempfile::TempDir,
    engine: Engine,
    sources: Vec<PathBuf>,
}

/// A tiny pitched model and two packs (C4 at velocities 60 and 120; the second pack one
/// velocity only).
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        excitation_harmonics: 4,
        ..testkit::tiny::small_wavenet()
    };
    let model = testkit::tiny::random_model(&dir.path().join("model"), &config, 5);
    let engine = testkit::tiny::load(&model).with_threads(1);
    let mut sources = Vec::new();
    for (name, velocities) in [("flute", vec![60u8, 120]), ("organ", vec![100])] {
        let pack = dir.path().join(name);
        std::fs::create_dir_all(&pack).unwrap();
        for v in velocities {
            let hz = autoencoder::excitation::midi_to_hz(60.0);
            let samples = notes::sine(hz, f32::from(v) / 200.0, 4000);
            notes::write(
                &pack.join(notes::nsynth_name(name, 60, v)),
                &samples,
                WavFormat::S16,
            );
        }
        sources.push(pack);
    }
    Setup {
        dir,
        engine,
        sources,
    }
}

fn spec(s: &Setup, out: &Path) -> InstrumentSpec {
    InstrumentSpec {
        sources: s.sources.clone(),
        weights: Weights::Fixed(vec![0.5, 0.5]),
        keys: (60, 66),
        every: 6,
        velocities: vec![64, 127],
        seconds: Some(0.5),
        release_secs: 0.2,
        out: out.to_path_buf(),
        render: RenderOptions {
            rate_hz: 44_100,
            ..RenderOptions::default()
        },
        sampling: Sampling::default(),
        read: ReadOptions::default(),
        batch: 1,
        overwrite: false,
    }
}

/// An export cancelled once its first note is written: the error it stopped with.
fn export_cancelled_after_one_note(s: &Setup, spec: &InstrumentSpec) -> engine::Error {
    let control = Control::default();
    instrument::run(
        &s.engine,
        spec,
        &control,
        &mut |_| ControlFlow::Continue(()),
        &mut |line| {
            if line.starts_with("1 of") {
                control.cancel();
            }
        },
    )
    .unwrap_err()
}

fn export(s: &Setup, spec: &InstrumentSpec) -> engine::Result<instrument::Report> {
    instrument::run(
        &s.engine,
        spec,
        &Control::default(),
        &mut |_| ControlFlow::Continue(()),
        &mut |_| {},
    )
}

#[test]
fn an_sf2_plays_in_rustysynth_covering_every_key_and_velocity_once() {
    let s = setup();
    let out = s.dir.path().join("blend.sf2");
    let report = export(&s, &spec(&s, &out)).unwrap();
    // Keys 60 and 66; the flute pack has two velocity layers, so both are rendered.
    assert_eq!((report.keys, report.notes, report.zones), (2, 4, 4));
    assert!(
        !instrument::parts_dir(&out).exists(),
        "the work folder goes"
    );

    let font = rustysynth::SoundFont::new(&mut std::fs::File::open(&out).unwrap()).unwrap();
    let regions = font.get_instruments()[0].get_regions();
    for key in 0..=127 {
        for vel in 1..=127 {
            let n = regions
                .iter()
                .filter(|r| {
                    (r.get_key_range_start()..=r.get_key_range_end()).contains(&key)
                        && (r.get_velocity_range_start()..=r.get_velocity_range_end())
                            .contains(&vel)
                })
                .count();
            let inside = (60..=66).contains(&key);
            assert_eq!(n, usize::from(inside), "key {key} velocity {vel}");
        }
    }
    for r in regions {
        assert_eq!(r.get_sample_end() - r.get_sample_start(), 22_050);
    }
    assert!(
        regions
            .iter()
            .all(|r| r.get_root_key() == 60 || r.get_root_key() == 66)
    );

    // Key 63 lies between the rendered 60 and 66: it sounds.
    let settings = rustysynth::SynthesizerSettings::new(44_100);
    let mut synth = rustysynth::Synthesizer::new(&std::sync::Arc::new(font), &settings).unwrap();
    synth.note_on(0, 63, 100);
    let (mut left, mut right) = (vec![0f32; 11_025], vec![0f32; 11_025]);
    synth.render(&mut left, &mut right);
    let rms = (left.iter().map(|x| x * x).sum::<f32>() / left.len() as f32).sqrt();
    assert!(rms > 1e-3, "key 63 is silent (rms {rms})");

    // Not overwritten without being asked.
    let err = export(&s, &spec(&s, &out)).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    export(
        &s,
        &InstrumentSpec {
            overwrite: true,
            ..spec(&s, &out)
        },
    )
    .unwrap();
}

#[test]
fn an_sfz_has_a_region_for_every_key_and_velocity_once() {
    let s = setup();
    let out = s.dir.path().join("blend.sfz");
    let report = export(
        &s,
        &InstrumentSpec {
            keys: (58, 70),
            every: 4,
            velocities: vec![30, 90, 127],
            ..spec(&s, &out)
        },
    )
    .unwrap();
    assert_eq!(report.keys, 4);
    let text = std::fs::read_to_string(&out).unwrap();
    let regions: Vec<&str> = text.lines().filter(|l| l.starts_with("<region>")).collect();
    assert_eq!(regions.len(), report.zones);
    let field = |line: &str, name: &str| -> u32 {
        line.split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} missing in {line}"))
            .parse()
            .unwrap()
    };
    let mut covered = std::collections::HashMap::new();
    for line in &regions {
        for key in field(line, "lokey")..=field(line, "hikey") {
            for vel in field(line, "lovel")..=field(line, "hivel") {
                *covered.entry((key, vel)).or_insert(0) += 1;
            }
        }
        let sample = line
            .split_whitespace()
            .find_map(|t| t.strip_prefix("sample="))
            .unwrap();
        let wav = out.parent().unwrap().join(sample);
        let reader = hound::WavReader::open(&wav).unwrap();
        assert_eq!(reader.spec().sample_rate, 44_100);
        if line.contains("loop_sustain") {
            assert!(field(line, "loop_end") < reader.len());
            assert!(field(line, "loop_start") < field(line, "loop_end"));
        }
    }
    assert_eq!(covered.len(), 13 * 127);
    assert!(covered.values().all(|&n| n == 1));
    assert!(text.contains("ampeg_release=0.200"));
}

#[test]
fn an_interrupted_export_resumes_with_the_same_notes() {
    let s = setup();
    let whole = s.dir.path().join("whole.sf2");
    export(&s, &spec(&s, &whole)).unwrap();

    // Stopped once its first note is written.
    let out = s.dir.path().join("resumed.sf2");
    let err = export_cancelled_after_one_note(&s, &spec(&s, &out));
    assert!(matches!(err, engine::Error::Cancelled), "{err}");
    assert!(!out.exists());
    let parts = instrument::parts_dir(&out);
    assert_eq!(notes::wav_count(&parts), 1);

    // Another request does not mix with those renders.
    let other = InstrumentSpec {
        velocities: vec![100],
        ..spec(&s, &out)
    };
    let err = export(&s, &other).unwrap_err();
    assert!(err.to_string().contains("different request"), "{err}");

    let report = export(&s, &spec(&s, &out)).unwrap();
    assert_eq!(report.rendered, 3);
    let waves = |path: &Path| {
        rustysynth::SoundFont::new(&mut std::fs::File::open(path).unwrap())
            .unwrap()
            .get_wave_data()
            .to_vec()
    };
    assert_eq!(waves(&out), waves(&whole));
}

#[test]
fn bad_requests_are_refused_before_any_work() {
    let s = setup();
    let out = s.dir.path().join("x.sf2");
    let refuse = |spec: InstrumentSpec, says: &str| {
        let err = export(&s, &spec).unwrap_err().to_string();
        assert!(err.contains(says), "{err}");
        assert!(!instrument::parts_dir(&spec.out).exists());
    };
    refuse(
        InstrumentSpec {
            out: s.dir.path().join("x.wav"),
            ..spec(&s, &out)
        },
        ".sf2 or .sfz",
    );
    refuse(
        InstrumentSpec {
            keys: (10, 60),
            ..spec(&s, &out)
        },
        "MIDI 21 to 108",
    );
    refuse(
        InstrumentSpec {
            velocities: vec![100, 64],
            ..spec(&s, &out)
        },
        "rising",
    );
    refuse(
        InstrumentSpec {
            seconds: Some(0.0),
            ..spec(&s, &out)
        },
        "seconds",
    );
    assert_eq!(SAMPLE_RATE_HZ, 16_000);
}

#[test]
fn velocity_layers_that_pick_the_same_notes_share_one_note_and_zone() {
    let s = setup();
    let out = s.dir.path().join("organ.sf2");
    // The organ pack has one velocity: three layers, one note and one zone per key.
    let report = export(
        &s,
        &InstrumentSpec {
            sources: vec![s.sources[1].clone()],
            weights: Weights::Fixed(vec![1.0]),
            velocities: vec![40, 80, 120],
            ..spec(&s, &out)
        },
    )
    .unwrap();
    assert_eq!((report.keys, report.notes, report.zones), (2, 2, 2));
    let font = rustysynth::SoundFont::new(&mut std::fs::File::open(&out).unwrap()).unwrap();
    for r in font.get_instruments()[0].get_regions() {
        assert_eq!(
            (r.get_velocity_range_start(), r.get_velocity_range_end()),
            (1, 127)
        );
    }
}

#[test]
fn an_exported_sfz_plays_in_a_sampler() {
    let s = setup();
    let out = s.dir.path().join("played.sfz");
    let spec = InstrumentSpec {
        release_secs: 0.1,
        ..spec(&s, &out)
    };
    export(&s, &spec).unwrap();
    let inst = sfz_player::Instrument::open(&out);
    let rate = 44_100.0;
    for region in &inst.regions {
        let v = region.velocities.1;
        let gain = (f32::from(v) / 127.0).powi(2);
        let secs = region.sample.len() as f32 / rate;
        // At its key, held for the whole note: every sample point as written (scaled by
        // the velocity's gain).
        let played = inst.play(region.keycenter, v, secs, secs);
        let expected: Vec<f32> = region.sample.iter().map(|&x| gain * x).collect();
        assert_eq!(played.len(), expected.len());
        assert!(
            played == expected,
            "{} is not played as written",
            region.sample_path
        );
        // Let go after 0.1 s: silent once the 0.1 s release is over.
        let released = inst.play(region.keycenter, v, 0.1, 0.3);
        assert!(released[..4_000].iter().any(|&x| x != 0.0));
        assert!(
            released[(0.2 * rate) as usize + 1..]
                .iter()
                .all(|&x| x == 0.0)
        );
        // A looped note held three times its length still sounds at the end of the hold.
        if region.sustain_loop.is_some() {
            let held = inst.play(region.keycenter, v, 3.0 * secs, 3.0 * secs);
            let tail = &held[held.len() - 4_000..];
            assert!(tail.iter().any(|&x| x != 0.0), "{}", region.sample_path);
        }
    }
    // The flute's two velocity layers: the loud one louder.
    let level = |v| {
        let x = inst.play(60, v, 0.4, 0.4);
        (x.iter().map(|s| s * s).sum::<f32>() / x.len() as f32).sqrt()
    };
    assert!(level(127) > level(64), "{} {}", level(127), level(64));
}

#[test]
fn a_parts_folder_timbrel_did_not_make_is_refused_and_kept() {
    let s = setup();
    let out = s.dir.path().join("mine.sf2");
    let parts = instrument::parts_dir(&out);
    std::fs::create_dir_all(&parts).unwrap();
    std::fs::write(parts.join("k060_v127.wav"), b"the user's own").unwrap();
    for overwrite in [false, true] {
        let err = export(
            &s,
            &InstrumentSpec {
                overwrite,
                ..spec(&s, &out)
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, engine::Error::NotCreatedByTimbrel { ref path, .. } if *path == parts),
            "{err}"
        );
    }
    assert_eq!(
        std::fs::read(parts.join("k060_v127.wav")).unwrap(),
        b"the user's own"
    );
    assert!(!out.exists());
}

#[test]
fn a_finished_export_removes_only_what_it_wrote() {
    let s = setup();
    let out = s.dir.path().join("kept.sf2");
    // Stopped after its first note, with the user's file put in the work folder.
    let err = export_cancelled_after_one_note(&s, &spec(&s, &out));
    assert!(matches!(err, engine::Error::Cancelled), "{err}");
    let parts = instrument::parts_dir(&out);
    std::fs::write(parts.join("notes.txt"), b"keep").unwrap();
    export(&s, &spec(&s, &out)).unwrap();
    assert!(out.exists());
    let left: Vec<String> = std::fs::read_dir(&parts)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["notes.txt"]);
}

#[test]
fn an_output_that_is_an_input_is_refused_even_with_overwrite() {
    let s = setup();
    // The organ pack's one note, and an output that is the same file by another name.
    let organ = std::fs::read_dir(&s.sources[1])
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let before = std::fs::read(&organ).unwrap();
    let out = s.dir.path().join("organ.sf2");
    std::fs::hard_link(&organ, &out).unwrap();
    let err = export(
        &s,
        &InstrumentSpec {
            sources: vec![s.sources[1].clone()],
            weights: Weights::Fixed(vec![1.0]),
            overwrite: true,
            ..spec(&s, &out)
        },
    )
    .unwrap_err();
    assert!(matches!(err, engine::Error::OutputIsInput { .. }), "{err}");
    assert_eq!(std::fs::read(&organ).unwrap(), before);
    assert!(!instrument::parts_dir(&out).exists());
}
