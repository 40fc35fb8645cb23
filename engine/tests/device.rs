#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The device a caller picks reaches every tensor: the student's training step through
//! candle's autograd (the GPU's path), its free-running checks and evaluation
//! (`reconstruct`), and the engine's playback all run on a `Device` value passed in, here
//! the CPU chosen by name as `--device cpu` does. A tensor built on a hard-coded device
//! beside it would fail on a GPU; on a CPU-only machine that is caught by the invariant
//! (ARCHITECTURE.md), which the second test checks over the sources.

use std::path::Path;
use std::sync::atomic::AtomicBool;

use autoencoder::{Control, Sampling};
use engine::fsutil::Overwrite;
use engine::synth::{DecoderKind, Embedding, Engine, Glide, ModelSource};
use engine::train::student::{self, StudentTrainer};
use engine::train::{Event, TrainOptions};

#[path = "train/setup.rs"]
mod setup;
#[path = "support/tiny_sf2.rs"]
mod tiny_sf2;

#[test]
fn the_students_training_evaluation_and_playback_run_on_the_device_given() {
    let device = engine::device::by_name("cpu").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = setup::notes_at(tmp.path(), &[48, 60]);
    let dir = tmp.path().join("student");
    let options = TrainOptions {
        data: vec![data],
        steps: 2,
        batch: 2,
        crop: 256,
        lr: 1e-3,
        warmup_steps: 1,
        checkpoint_every: 2,
        validate_every: 2,
        validation_notes: 1,
        free_run_every: 2,
        free_run_notes: 1,
        free_run_secs: 0.05,
        seed: 3,
        ..Default::default()
    };
    let mut trainer = StudentTrainer::start(
        &dir,
        &setup::tiny_student(vec![2]),
        options,
        &device,
        Overwrite::Never,
    )
    .unwrap();
    // The GPU's training step: candle's autograd, not the CPU's fused pass.
    trainer.use_autograd().unwrap();
    assert!(!trainer.uses_fused());
    let mut events = Vec::new();
    let summary = trainer
        .run(&AtomicBool::new(false), &mut |e| events.push(e.clone()))
        .unwrap();
    assert_eq!(summary.step, 2);
    let steps = events
        .iter()
        .filter(|e| matches!(e, Event::Step { loss, .. } if loss.is_finite()))
        .count();
    let free_runs = events
        .iter()
        .filter(|e| matches!(e, Event::FreeRun { notes: 1, log_mel_distance_db, .. } if log_mel_distance_db.is_finite()))
        .count();
    assert_eq!((steps, free_runs), (2, 1), "{events:?}");

    // Evaluation's reconstruction, on the device the model was loaded on.
    let model = student::load(&dir, &device).unwrap();
    assert!(model.device().same_device(&device));
    let note: Vec<f32> = (0..640)
        .map(|t| 0.5 * (t as f32 * 220.0 * std::f32::consts::TAU / 16_000.0).sin())
        .collect();
    let out = student::reconstruct(&model, &[note], &[220.0], 0).unwrap();
    assert_eq!(out[0].len(), 640);
    assert!(out[0].iter().all(|s| s.is_finite()));

    // Playback: the engine on the same device value, pitched.
    let engine = Engine::load(&ModelSource::Dir(dir), Some(DecoderKind::Parallel), &device)
        .unwrap()
        .with_cache(None);
    let embedding = Embedding {
        frames: 8,
        channels: 4,
        data: (0..32).map(|i| (i as f32 * 0.3).sin()).collect(),
    };
    let audio = engine
        .decode_at(
            &[embedding],
            &[Some(Glide {
                start: 57.0,
                end: 57.0,
            })],
            &[0],
            Sampling::default(),
            &Control::default(),
            &mut |_| std::ops::ControlFlow::Continue(()),
        )
        .unwrap();
    assert_eq!(audio[0].len(), 8 * 64);
    assert!(audio[0].iter().all(|s| s.is_finite()));
}

/// The lines of `text` (a source file) that name `Device::Cpu` where ARCHITECTURE.md's
/// invariant does not allow it: outside a test module, not a copy to or from the host
/// (`to_device(&…)`), not a match on a device, not marked `// host:` with its reason.
fn unexplained_cpu(text: &str) -> Vec<String> {
    text.lines()
        .take_while(|line| !line.contains("#[cfg(test)]"))
        .filter(|line| line.contains("Device::Cpu"))
        .filter(|line| {
            !(line.contains("to_device(&")
                || line.contains("Device::Cpu =>")
                || line.contains("matches!(")
                || line.contains("// host"))
        })
        .map(str::to_string)
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn device_cpu_is_named_only_where_the_invariant_allows() {
    assert_eq!(
        unexplained_cpu("let d = Device::Cpu;\n"),
        ["let d = Device::Cpu;"]
    );
    assert!(unexplained_cpu("let d = Device::Cpu; // host: a file\n").is_empty());
    assert!(unexplained_cpu("#[cfg(test)]\nlet d = Device::Cpu;\n").is_empty());

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&root.join("engine/src"), &mut files);
    rust_files(&root.join("app/src"), &mut files);
    assert!(files.len() > 20, "the sources were not found");
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // Test modules inside the sources (`tests.rs`, `*_tests.rs`, `tests/`) run on the CPU.
        if relative == "engine/src/device.rs"
            || relative.ends_with("tests.rs")
            || relative.contains("/tests/")
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        found.extend(
            unexplained_cpu(&text)
                .into_iter()
                .map(|line| format!("{relative}: {}", line.trim())),
        );
    }
    assert!(
        found.is_empty(),
        "a device is hard-coded where it should be passed in (or say why with `// host:`):\n{}",
        found.join("\n")
    );
}
