#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! A SampleRNN end to end: `timbrel train --preset samplernn-tiny` → `--resume` (equal to
//! an uninterrupted run) → `timbrel eval` → `timbrel reconstruct`, in seconds.

#[path = "support/tiny_notes.rs"]
mod tiny_notes;

use tests::{ok, timbrel};

#[test]
fn a_samplernn_trains_resumes_and_plays() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let notes = tiny_notes::render(tmp.path(), &[0, 24, 40], "60,72");
    let train = |out: &str, extra: &[&str]| {
        let mut args = vec!["train", "--out", out, "--quiet"];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let start = |out: &str, steps: &str| {
        train(
            out,
            &[
                "--data",
                &notes,
                "--preset",
                "samplernn-tiny",
                "--steps",
                steps,
                "--batch",
                "2",
                "--crop",
                "256",
                "--warmup",
                "1",
                "--checkpoint-every",
                "2",
                "--validate-every",
                "2",
                "--free-run-every",
                "4",
                "--free-run-notes",
                "1",
            ],
        )
    };
    // Two steps, then two more after a resume (exact resumption is checked in
    // engine/tests/train/, where a run can be stopped part-way).
    let straight = p("model");
    let text = ok(&start(&straight, "2"));
    assert!(text.contains("finished at step 2/2"), "{text}");
    let text = ok(&train(&straight, &["--resume", "--steps", "4"]));
    assert!(text.contains("finished at step 4/4"), "{text}");
    let config = std::fs::read_to_string(format!("{straight}/config.json")).unwrap();
    assert!(config.contains("\"model\": \"samplernn\""), "{config}");
    let log = std::fs::read_to_string(format!("{straight}/train_log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"freerun\""), "{log}");
    assert!(log.contains("\"event\":\"validation\""), "{log}");

    // Scored on the instruments its run held out: NLL, pitch, log-mel.
    let text = ok(&timbrel(&[
        "eval",
        "--model",
        &straight,
        "--data",
        &notes,
        "--notes",
        "1",
        "--held-out",
        "--quiet",
    ]));
    assert!(text.contains("nll_nats="), "{text}");
    assert!(text.contains("log_mel_distance_db="), "{text}");
    // Asked for another family's decoder, it says what it is.
    let out = timbrel(&[
        "eval",
        "--model",
        &straight,
        "--data",
        &notes,
        "--decoder",
        "parallel",
        "--quiet",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SampleRNN"), "{err}");

    // It plays wherever a model is taken.
    let note = std::fs::read_dir(format!("{notes}/audio"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let wav = p("again.wav");
    ok(&timbrel(&[
        "reconstruct",
        "--model",
        &straight,
        note.to_str().unwrap(),
        "-o",
        &wav,
        "--quiet",
    ]));
    assert!(std::fs::metadata(&wav).unwrap().len() > 44);
}
