#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `timbrel eval --blends` end to end: a tiny student, a tiny dataset, two blends scored
//! and written, the worst instruments listed.

#[path = "support/tiny_notes.rs"]
mod tiny_notes;

use tests::{ok, timbrel};
use tiny_notes::{TINY_ENCODER, TINY_STUDENT};

#[test]
fn eval_scores_blends_and_lists_the_worst_instruments() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let notes = tiny_notes::render(tmp.path(), &[0, 24, 40], "60,72");
    let student = p("student");
    let train = [
        "train-student",
        "--out",
        &student,
        "--quiet",
        "--data",
        &notes,
        "--steps",
        "1",
    ];
    ok(&timbrel(
        &[&train[..], &TINY_STUDENT, &TINY_ENCODER].concat(),
    ));
    let eval = |extra: &[&str]| {
        let mut args = vec![
            "eval", "--model", &student, "--data", &notes, "--notes", "6", "--blends", "2",
            "--quiet",
        ];
        args.extend_from_slice(extra);
        timbrel(&args)
    };

    let text = ok(&eval(&[]));
    assert!(text.contains("instruments=3 (worst 3"), "{text}");
    assert!(text.contains("blends=2 (of 2 asked"), "{text}");
    assert!(text.contains("blends_in_tune="), "{text}");
    assert!(text.contains("blend_loudness_error_db="), "{text}");
    assert!(text.contains("blends_nearer_average="), "{text}");

    let out = p("eval");
    let json = ok(&eval(&["--json", "--out", &out]));
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("eval/eval.json")).unwrap()).unwrap();
    assert_eq!(report, written, "--json prints what eval.json holds");

    // Per instrument, worst first, every note counted once.
    let instruments = report["instruments"].as_array().unwrap();
    assert_eq!(instruments.len(), 3);
    let db: Vec<f64> = instruments
        .iter()
        .map(|i| i["log_mel_distance_db"].as_f64().unwrap())
        .collect();
    assert!(db.windows(2).all(|w| w[0] >= w[1]), "{db:?}");
    let counted: u64 = instruments
        .iter()
        .map(|i| i["notes"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, 6);

    // Two blends of two instruments at one pitch, each scored.
    let blends = &report["blends"];
    assert_eq!(blends["asked"], 2);
    assert_eq!(blends["summary"]["blends"], 2);
    let pairs = blends["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2);
    for pair in pairs {
        assert_ne!(pair["instrument_a"], pair["instrument_b"]);
        let (a, b) = (pair["a"].as_str().unwrap(), pair["b"].as_str().unwrap());
        let pitch = format!("-{:03}-", pair["pitch"].as_u64().unwrap());
        assert!(a.contains(&pitch) && b.contains(&pitch), "{pair}");
        assert!(pair["loudness_error_db"].as_f64().unwrap().is_finite());
        let (da, dav) = (
            pair["distance_a_db"].as_f64().unwrap(),
            pair["distance_average_db"].as_f64().unwrap(),
        );
        let nearer = dav < da.min(pair["distance_b_db"].as_f64().unwrap());
        assert_eq!(pair["nearer_average"], nearer);
        let wav =
            hound::WavReader::open(tmp.path().join(format!("eval/blend-{a}+{b}.wav"))).unwrap();
        assert_eq!(wav.len(), 64_000, "the whole note");
    }
    // The same seed, the same pairs and figures.
    let again: serde_json::Value = serde_json::from_str(&ok(&eval(&["--json"]))).unwrap();
    assert_eq!(again["blends"], report["blends"]);

    // Asked for blends where no two instruments share a pitch: a one-line error.
    let out = timbrel(&[
        "eval",
        "--model",
        &student,
        "--data",
        &notes,
        "--blends",
        "2",
        "--held-out",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no two instruments"), "{err}");
}
