//! The binary's front door. (Having an integration test here also makes
//! `cargo test --workspace` build `target/<profile>/timbrel`, which the end-to-end tests in
//! `tests/` run.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included

use std::process::Command;

fn timbrel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_timbrel"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn help_lists_the_commands() {
    let out = timbrel(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for command in [
        "check-golden",
        "blend",
        "grid",
        "reconstruct",
        "encode",
        "decode",
        "gui",
    ] {
        assert!(text.contains(command), "{command}: {text}");
    }
    let out = timbrel(&["check-golden", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1e-4"));
}

#[test]
fn without_a_display_the_window_fails_with_a_clear_message() {
    // `timbrel` alone opens the window; with no display it must say so, not panic.
    let out = Command::new(env!("CARGO_BIN_EXE_timbrel"))
        .args(["gui", "--no-audio", "--fresh"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .env(
            "TIMBREL_DATA_DIR",
            std::env::temp_dir().join("timbrel-cli-test"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot open the window"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_commands_fail() {
    let out = timbrel(&["frobnicate"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}

#[test]
fn the_gpu_decoder_benchmarks_on_any_device_and_cuda_is_explained() {
    // The tensor decoder (the GPU path) on the CPU device: the benchmark's figures print.
    let out = timbrel(&[
        "bench",
        "decode",
        "--tensor",
        "--batch",
        "2",
        "--samples",
        "512",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("decoder=tensor"), "{text}");
    assert!(text.contains("samples_per_s="), "{text}");
    assert!(text.contains("realtime_factor="), "{text}");
    // --device cuda: runs where there is a CUDA build and a GPU; otherwise one line says why.
    let out = timbrel(&["bench", "decode", "--device", "cuda", "--samples", "512"]);
    if out.status.success() {
        println!("a CUDA GPU is present: the GPU decoder ran");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("CUDA"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn model_info_names_the_student_and_which_decoder_plays() {
    let out = timbrel(&["model", "info"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let student = text
        .lines()
        .find(|l| l.starts_with("student: Parallel WaveNet"))
        .unwrap_or_else(|| panic!("no student line in {text}"));
    assert!(student.contains("plays by default"), "{student}");
    // The embedded student's own count (it changes as the shipped student grows).
    let embedded = engine::models::embedded::load_student(&candle_core::Device::Cpu).unwrap();
    let count = format!("{} parameters", embedded.parameter_count());
    assert!(student.contains(&count), "{student} (expected {count})");
}

#[test]
fn the_student_benchmarks_one_voice() {
    let out = timbrel(&[
        "bench",
        "decode",
        "--decoder",
        "parallel",
        "--samples",
        "8192",
        "--batch",
        "2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("decoder=parallel") && text.contains("batch=2"),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("realtime_factor=")),
        "{text}"
    );
}

#[test]
fn the_training_benchmark_times_both_paths_and_names_its_figures() {
    // A small batch so the reference path stays quick; the figures' names are the contract.
    let out = timbrel(&[
        "bench", "train", "--batch", "2", "--crop", "1024", "--steps", "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["samples_per_s=", "reference_samples_per_s=", "peak_rss_mb="] {
        let line = text
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} line in {text}"));
        let value: f64 = line[key.len()..].parse().unwrap();
        assert!(value > 0.0, "{line}");
    }
}
