#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The synthesizer's pitch end to end: a pitched tiny model plays the asked pitch without
//! resampling its sources, and the default model plays with its student and says so.

use autoencoder::Config;
use std::path::Path;
use tests::{glide, one_line_error, timbrel_in};

#[path = "support/synth_setup.rs"]
mod setup;
use setup::{Setup, read_wav, tiny};

#[test]
fn a_pitched_model_plays_the_asked_pitch_without_resampling_the_sources() {
    let s = Setup::new();
    let pitched = Config {
        excitation_harmonics: 4,
        ..tiny()
    };
    testkit::tiny::random_model(&s.dir.path().join("pitched"), &pitched, 7);
    let run = |args: &[&str]| s.on_model("pitched", args).output().unwrap();
    let (a, b) = (s.note("flute", 48), s.note("organ", 48));
    let out = run(&[glide(&a, &b, &s.p("glide.wav")), vec!["--json"]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for source in summary["sources"].as_array().unwrap() {
        assert_eq!(source["shift_semitones"], 0, "{source}");
        assert_eq!(source["pitch"], 48);
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("the decoder plays E4 gliding to G4"));
    // The C3 sources are not resampled: the output is as long as they are.
    assert_eq!(read_wav(&s.p("glide.wav")).1.len(), 8000);
    // reconstruct --pitch keeps the note's length too (a resampled octave up would halve it).
    let out = run(&["reconstruct", &a, "--pitch", "C4", "-o", &s.p("up.wav")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_wav(&s.p("up.wav")).1.len(), 8000);
    // Out of range: one line naming the range.
    let out = run(&[
        "blend",
        &a,
        &b,
        "--mix",
        "0.5",
        "--pitch",
        "120",
        "-o",
        &s.p("x.wav"),
        "--quiet",
    ]);
    let err = one_line_error(&out);
    assert!(err.contains("MIDI 21 to 108"), "{err}");

    // A model without an excitation cannot glide, and says so.
    let out = s.run(&glide(&a, &b, &s.p("no.wav")));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no excitation"), "{err}");
    assert!(!Path::new(&s.p("no.wav")).exists());
}

#[test]
fn the_default_model_plays_with_its_student_by_default_and_says_so() {
    let s = Setup::new();
    let run = |args: &[&str]| {
        timbrel_in(&s.dir.path().join("cache"), args)
            .output()
            .unwrap()
    };
    let (a, b) = (s.note("flute", 48), s.note("organ", 60));
    let blend = |out: &str, extra: &[&str]| {
        let mut args = vec![
            "blend", &a, &b, "--mix", "0.5", "--pitch", "E4", "-o", out, "--json",
        ];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (summary, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (summary, stderr) = blend(&s.p("default.wav"), &[]);
    assert!(
        summary["model"].as_str().unwrap().contains("student"),
        "{summary}"
    );
    assert!(stderr.contains("decoder: parallel by default"), "{stderr}");
    let (_, samples) = read_wav(&s.p("default.wav"));
    assert_eq!(samples.len(), 8000);
    // Asked for explicitly: the same sound, no note about the default.
    let (summary, stderr) = blend(&s.p("parallel.wav"), &["--decoder", "parallel"]);
    assert!(summary["model"].as_str().unwrap().contains("student"));
    assert!(!stderr.contains("by default"), "{stderr}");
    assert_eq!(read_wav(&s.p("parallel.wav")).1, samples);
    // The autoregressive teacher (a tenth of a second: it is slow in debug builds).
    let (summary, _) = blend(
        &s.p("teacher.wav"),
        &["--decoder", "autoregressive", "--max-secs", "0.1"],
    );
    assert!(!summary["model"].as_str().unwrap().contains("student"));
    // A model directory without a student asked for one: one line naming the directory.
    let out = run(&[
        "blend",
        &a,
        &b,
        "--mix",
        "0.5",
        "--decoder",
        "parallel",
        "--model",
        &s.p("model"),
        "-o",
        &s.p("x.wav"),
        "--quiet",
    ]);
    let err = one_line_error(&out);
    assert!(err.contains("no Parallel WaveNet student"), "{err}");
}
