#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `timbrel train` → checkpoint → `--resume` → `timbrel eval`, on a tiny config and a
//! handful of generated notes.

#[path = "support/tiny_notes.rs"]
mod tiny_notes;

use tests::{glide, ok, timbrel};
use tiny_notes::{TINY_ENCODER, TINY_STUDENT};

const TINY: &str = r#"{"num_stages": 4, "num_layers": 4, "filter_length": 3, "width": 8,
  "skip_width": 8, "ae_num_stages": 4, "ae_num_layers": 3, "ae_filter_length": 3,
  "ae_width": 8, "ae_bottleneck_width": 4, "ae_hop_length": 64}"#;

#[test]
fn train_resume_and_eval_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("tiny.json"), TINY).unwrap();
    let notes = tiny_notes::render(tmp.path(), &[0, 24, 40, 56, 73], "48,60,72");
    let train = |extra: &[&str]| {
        let model = p("model");
        let mut args = vec![
            "train", "--out", &model, "--quiet", "--batch", "2", "--crop", "512",
        ];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let config = p("tiny.json");
    let text = ok(&train(&[
        "--data",
        &notes,
        "--config",
        &config,
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--validate-every",
        "2",
        "--lr",
        "3e-3",
        "--warmup",
        "1",
    ]));
    assert!(text.contains("finished at step 4/4"), "{text}");
    // Starting again over an existing model needs --resume or --force.
    let out = train(&["--data", &notes, "--config", &config, "--steps", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
    let text = ok(&train(&["--resume", "--steps", "6"]));
    assert!(text.contains("finished at step 6/6"), "{text}");
    let log = std::fs::read_to_string(tmp.path().join("model/train_log.jsonl")).unwrap();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("\"event\":\"step\""))
            .count(),
        6
    );

    let text = ok(&timbrel(&[
        "eval",
        "--model",
        &p("model"),
        "--data",
        &notes,
        "--notes",
        "2",
        "--held-out",
        "--out",
        &p("eval"),
        "--quiet",
    ]));
    assert!(
        text.contains("notes=2 (of 3, held-out instruments)"),
        "{text}"
    );
    for key in [
        "nll_nats=",
        "nll_bits=",
        "pitch_accuracy=",
        "log_mel_distance_db=",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("eval/eval.json")).unwrap()).unwrap();
    assert_eq!(report["reconstructed"], 2);
    let nll = report["nll_nats"].as_f64().unwrap();
    assert!(nll > 0.0 && nll < 6.0, "{nll}");
    assert_eq!(testkit::notes::wav_count(&tmp.path().join("eval")), 2);
}

#[test]
fn a_student_trains_resumes_and_is_evaluated_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let notes = tiny_notes::render(tmp.path(), &[0, 24, 40], "60,72");
    let student = p("student");
    let train = |extra: &[&str]| {
        let mut args = vec!["train-student", "--out", &student, "--quiet"];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let flags = [
        "--data",
        &notes,
        "--steps",
        "2",
        "--checkpoint-every",
        "1",
        "--validate-every",
        "2",
        "--free-run-every",
        "2",
        "--free-run-notes",
        "1",
    ];
    let text = ok(&train(&[&flags[..], &TINY_STUDENT, &TINY_ENCODER].concat()));
    assert!(text.contains("finished at step 2/2"), "{text}");
    assert!(text.contains("validation loss"), "{text}");
    let text = ok(&train(&["--resume", "--steps", "3"]));
    assert!(text.contains("finished at step 3/3"), "{text}");
    let log = std::fs::read_to_string(tmp.path().join("student/train_log.jsonl")).unwrap();
    assert!(log.contains("\"event\":\"freerun\""));

    let text = ok(&timbrel(&[
        "eval",
        "--model",
        &student,
        "--data",
        &notes,
        "--notes",
        "1",
        "--held-out",
        "--out",
        &p("eval"),
        "--quiet",
    ]));
    assert!(text.contains("nll_nats=- (no likelihood"), "{text}");
    assert!(text.contains("log_mel_distance_db="), "{text}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("eval/eval.json")).unwrap()).unwrap();
    assert_eq!(report["reconstructed"], 1);
    assert!(report["nll_nats"].is_null());

    // The CLI plays it: a blend at a pitch of its own, a note transposed.
    let mut wavs: Vec<String> = std::fs::read_dir(tmp.path().join("notes/audio"))
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_string())
        .collect();
    wavs.sort();
    let blend_wav = p("blend.wav");
    let mut args = glide(&wavs[0], &wavs[1], &blend_wav);
    args.extend(["--model", &student, "--json"]);
    let out = timbrel(&args);
    let summary: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert!(summary["model"].as_str().unwrap().ends_with("(student)"));
    assert_eq!(summary["sources"][0]["shift_semitones"], 0);
    let r = hound::WavReader::open(p("blend.wav")).unwrap();
    assert_eq!(r.len(), 64_000, "as long as the 4 s sources");
    ok(&timbrel(&[
        "reconstruct",
        &wavs[0],
        "--pitch",
        "C5",
        "--model",
        &student,
        "-o",
        &p("r.wav"),
        "--quiet",
    ]));
    assert!(std::path::Path::new(&p("r.wav")).exists());
}

#[test]
fn a_student_is_distilled_from_a_teacher_and_plays_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let notes = tiny_notes::render(tmp.path(), &[0, 24, 40], "60,72");
    // A tiny pitched teacher, and its student in its student/ folder.
    let teacher = autoencoder::Config {
        num_stages: 3,
        num_layers: 3,
        width: 8,
        skip_width: 8,
        ae_num_stages: 3,
        ae_num_layers: 2,
        ae_width: 4,
        ae_bottleneck_width: 4,
        ae_hop_length: 64,
        excitation_harmonics: 2,
        ..autoencoder::Config::small()
    };
    testkit::tiny::random_model(&tmp.path().join("teacher"), &teacher, 1);
    let (teacher_dir, student_dir) = (p("teacher"), p("teacher/student"));
    let flags = [
        "train-student",
        "--data",
        &notes,
        "--teacher",
        &teacher_dir,
        "--out",
        &student_dir,
        "--power-weight",
        "0.5",
        "--steps",
        "2",
        "--free-run-every",
        "0",
        "--quiet",
    ];
    let text = ok(&timbrel(&[&flags[..], &TINY_STUDENT].concat()));
    assert!(text.contains("finished at step 2/2"), "{text}");
    let log = std::fs::read_to_string(tmp.path().join("teacher/student/train_log.jsonl")).unwrap();
    assert!(
        log.contains("\"cross_entropy\"") && log.contains("\"power\""),
        "{log}"
    );
    // Its embedding is the teacher's: the same hop and channels.
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("teacher/student/student.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(config["student"]["hop_length"], 64);
    assert_eq!(config["encoder"]["ae_width"], 4);

    // --decoder parallel on the teacher's directory plays the student beside it.
    let wavs: Vec<String> = {
        let mut w: Vec<String> = std::fs::read_dir(tmp.path().join("notes/audio"))
            .unwrap()
            .map(|e| e.unwrap().path().to_str().unwrap().to_string())
            .collect();
        w.sort();
        w
    };
    // A blend on the teacher's directory: which model played, and what it said.
    let blend = |out: &str, extra: &[&str]| {
        let (teacher, out) = (p("teacher"), p(out));
        let mut args = vec![
            "blend", &wavs[0], &wavs[1], "--mix", "0.5", "--pitch", "E4", "--model", &teacher,
            "-o", &out, "--json",
        ];
        args.extend_from_slice(extra);
        let run = timbrel(&args);
        let summary: serde_json::Value = serde_json::from_str(&ok(&run)).unwrap();
        let model = summary["model"].as_str().unwrap().to_string();
        (model, String::from_utf8_lossy(&run.stderr).into_owned())
    };
    let (model, _) = blend("blend.wav", &["--decoder", "parallel"]);
    assert!(model.ends_with("student (student)"), "{model}");
    // Unasked, too (as the embedded default model plays its student), and it says so.
    let (model, stderr) = blend("blend-default.wav", &[]);
    assert!(model.ends_with("student (student)"), "{model}");
    assert!(
        stderr.contains("decoder: parallel by default (the student in"),
        "{stderr}"
    );
    // A distillation weight without a teacher is refused before anything is written.
    let out = timbrel(&[
        "train-student",
        "--data",
        &notes,
        "--out",
        &p("lonely"),
        "--distill-weight",
        "1",
        "--quiet",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--teacher"));
    assert!(!tmp.path().join("lonely").exists());
}

#[test]
fn force_refuses_a_folder_timbrel_did_not_make_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    std::fs::write(p("tiny.json"), TINY).unwrap();
    let notes = tiny_notes::render(tmp.path(), &[0, 24], "48,60");
    // Someone's project folder that happens to hold a config.json and a train/ folder.
    let theirs = tmp.path().join("project");
    std::fs::create_dir_all(theirs.join("train")).unwrap();
    std::fs::write(theirs.join("config.json"), b"{\"theirs\": true}").unwrap();
    std::fs::write(theirs.join("train/data.csv"), b"1,2,3").unwrap();
    let out = timbrel(&[
        "train",
        "--data",
        &notes,
        "--config",
        &p("tiny.json"),
        "--out",
        &p("project"),
        "--steps",
        "1",
        "--force",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("Timbrel did not make"), "{err}");
    assert_eq!(
        std::fs::read(theirs.join("config.json")).unwrap(),
        b"{\"theirs\": true}"
    );
    assert_eq!(
        std::fs::read(theirs.join("train/data.csv")).unwrap(),
        b"1,2,3"
    );
}
