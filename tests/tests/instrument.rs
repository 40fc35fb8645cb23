#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `timbrel instrument` on the default model: the exported SoundFont plays a key between
//! two rendered keys at that key's pitch in rustysynth and in FluidSynth (where it is
//! installed); `--seconds` makes notes of any length; `blend A B` mixes half and half.

use std::path::Path;
use std::process::Command;

use engine::audio::ReadOptions;
use tests::{repo_root, run_ok, timbrel_in};

fn run(args: &[&str], cache: &Path) -> String {
    run_ok(&mut timbrel_in(cache, args))
}

fn demo(name: &str) -> String {
    repo_root()
        .join("assets/demo")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// The MIDI pitch of mono 16 kHz audio, from the engine's detector.
fn pitch_of(samples: &[f32]) -> Option<u8> {
    engine::pitch::detect(samples).midi()
}

/// A standard MIDI file: `key` held for 1.5 s at velocity 100.
fn midi_file(key: u8) -> Vec<u8> {
    let ticks: u16 = 480; // per quarter note, 120 bpm: 1.5 s is 1,440 ticks
    let mut track = vec![0x00, 0x90, key, 100];
    track.extend_from_slice(&[0x8B, 0x20, 0x80, key, 0]); // 1,440 as a variable-length number
    track.extend_from_slice(&[0x00, 0xFF, 0x2F, 0x00]);
    let mut out = b"MThd".to_vec();
    out.extend_from_slice(&6u32.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 1]);
    out.extend_from_slice(&ticks.to_be_bytes());
    out.extend_from_slice(b"MTrk");
    out.extend_from_slice(&(track.len() as u32).to_be_bytes());
    out.extend_from_slice(&track);
    out
}

#[test]
fn an_exported_soundfont_plays_between_its_keys_at_the_keys_pitch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let font = dir.path().join("flute-trumpet.sf2");
    let font_s = font.to_str().unwrap();
    // Rendered at 57, 63 and 69; 60 (C4) plays the 57 shifted up by the sampler.
    let summary = run(
        &[
            "instrument",
            "--corners",
            &demo("flute"),
            &demo("trumpet"),
            "--keys",
            "57-69",
            "--every",
            "6",
            "--velocities",
            "100",
            "--rate",
            "44100",
            "-o",
            font_s,
            "--json",
            "--quiet",
        ],
        &cache,
    );
    let report: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(report["notes"], 3, "{report}");

    let sf = std::sync::Arc::new(
        rustysynth::SoundFont::new(&mut std::fs::File::open(&font).unwrap()).unwrap(),
    );
    let settings = rustysynth::SynthesizerSettings::new(44_100);
    let mut synth = rustysynth::Synthesizer::new(&sf, &settings).unwrap();
    synth.note_on(0, 60, 100);
    let (mut left, mut right) = (vec![0f32; 44_100], vec![0f32; 44_100]);
    synth.render(&mut left, &mut right);
    let mono: Vec<f32> = left
        .iter()
        .zip(&right)
        .map(|(l, r)| 0.5 * (l + r))
        .collect();
    let at_16k = engine::audio::resample(&mono[4_410..], 44_100, 16_000).unwrap();
    assert_eq!(pitch_of(&at_16k), Some(60), "rustysynth");

    // The same font in FluidSynth, from a MIDI file.
    if Command::new("fluidsynth")
        .arg("--version")
        .output()
        .is_err()
    {
        testkit::skip::skip(
            "the FluidSynth check: fluidsynth is not installed (apt-get install fluidsynth; `./dev test` installs it)",
        );
        return;
    }
    let mid = dir.path().join("c4.mid");
    std::fs::write(&mid, midi_file(60)).unwrap();
    let wav = dir.path().join("c4.wav");
    let out = Command::new("fluidsynth")
        .args(["-ni", "-g", "1", "-r", "44100", "-F"])
        .arg(&wav)
        .arg(&font)
        .arg(&mid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = engine::audio::read_note(&wav, ReadOptions::default()).unwrap();
    assert!(note.peak > 0.01, "FluidSynth played nothing");
    assert_eq!(pitch_of(&note.samples[1_600..]), Some(60), "fluidsynth");
}

#[test]
fn seconds_makes_an_eight_second_note_whose_sustain_holds() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("long.wav");
    run(
        &[
            "blend",
            &demo("flute"),
            &demo("trumpet"),
            "--pitch",
            "C4",
            "--seconds",
            "8",
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ],
        &cache,
    );
    let note = engine::audio::read_note(&out, ReadOptions { max_secs: 10.0 }).unwrap();
    assert_eq!(note.samples.len(), 8 * 16_000);
    // The demo notes are held for 3 s of their 4: the sustain now runs to about 7 s.
    let level = |from: f32, to: f32| {
        let s = &note.samples[(from * 16_000.0) as usize..(to * 16_000.0) as usize];
        10.0 * (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).log10()
    };
    let (early, late) = (level(1.0, 2.0), level(5.0, 6.0));
    assert!(
        (early - late).abs() < 6.0,
        "the sustain fell from {early:.1} dB to {late:.1} dB"
    );
    assert!(
        level(7.8, 8.0) < early - 20.0,
        "the release is kept at the end"
    );
}

#[test]
fn blend_of_two_sources_mixes_half_and_half_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (a, b) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    let (flute, trumpet) = (demo("flute"), demo("trumpet"));
    run(
        &[
            "blend",
            &flute,
            &trumpet,
            "-o",
            a.to_str().unwrap(),
            "--quiet",
        ],
        &cache,
    );
    run(
        &[
            "blend",
            &flute,
            &trumpet,
            "--mix",
            "0.5",
            "-o",
            b.to_str().unwrap(),
            "--quiet",
        ],
        &cache,
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}
