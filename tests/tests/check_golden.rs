#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! `timbrel check-golden` as a user runs it.

use std::collections::HashMap;

use autoencoder::wavenet::weights::{self, BiasInit};
use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::{DType, Device, Tensor};
use tests::{magenta_tiny, timbrel};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The max abs error printed for `name`.
fn error_of(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} max_abs_err=")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("max_abs_err="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the error in {line:?}"))
}

#[test]
fn magentas_fixture_passes() {
    let out = timbrel(&["check-golden", magenta_tiny().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    for name in ["encoding", "logits", "loss", "fastgen_probs"] {
        assert!(error_of(&text, name) <= 1e-4, "{name}:\n{text}");
    }
    assert_eq!(error_of(&text, "quantized"), 0.0);
    assert!(text.contains("parity: ok"));
}

#[test]
fn the_shared_fixture_passes_where_present() {
    let shared = tests::repo_root().join("../shared/golden/magenta-tiny");
    if !shared.join("io.safetensors").exists() {
        println!(
            "skipped: no shared/ beside the repository ({})",
            shared.display()
        );
        return;
    }
    let out = timbrel(&["check-golden", shared.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn a_fixture_of_other_sizes_passes_and_a_wrong_one_fails() {
    let cfg = Config {
        num_stages: 5,
        num_layers: 8,
        filter_length: 3,
        width: 24,
        skip_width: 16,
        ae_num_stages: 4,
        ae_num_layers: 6,
        ae_filter_length: 3,
        ae_width: 12,
        ae_bottleneck_width: 6,
        ae_hop_length: 256,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    };
    let (batch, length) = (4, 1024);
    let tensors: HashMap<String, Tensor> =
        weights::random(&cfg, 21, BiasInit::Uniform(0.1), &Device::Cpu).unwrap();
    let model = WaveNetAutoencoder::new(
        &cfg,
        candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu),
    )
    .unwrap();
    let wav: Vec<f32> = (0..batch * length)
        .map(|i| 0.7 * ((i as f32) * 0.031).sin())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    engine::golden::write_fixture(dir.path(), &model, &tensors, &wav, (batch, length)).unwrap();
    let out = timbrel(&["check-golden", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("batch 4, length 1024"));

    // Make the expected loss wrong: exit status 1 and a FAIL line.
    let io_path = dir.path().join("io.safetensors");
    let mut io = candle_core::safetensors::load(&io_path, &Device::Cpu).unwrap();
    let loss = io["loss"].to_scalar::<f32>().unwrap();
    io.insert(
        "loss".into(),
        Tensor::new(loss + 0.01, &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&io, &io_path).unwrap();
    let out = timbrel(&["check-golden", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("loss ") && l.ends_with("FAIL")),
        "{text}"
    );
    assert!(text.contains("parity: FAIL"));
}

#[test]
fn a_missing_fixture_is_a_one_line_error() {
    let out = timbrel(&["check-golden", "/no/such/fixture"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/no/such/fixture/config.json"), "{err}");
}

#[test]
fn magentas_own_checkpoint_imports_and_passes_check_golden() {
    let tmp = tempfile::tempdir().unwrap();
    let imported = tmp.path().join("imported");
    let ckpt = magenta_tiny().join("ckpt");
    // The fixture's dilation cycles are not in its weights: without them, one line
    // saying which flag gives them.
    let import = |extra: &[&str]| {
        let mut args = vec![
            "model",
            "import-tf",
            ckpt.to_str().unwrap(),
            "-o",
            imported.to_str().unwrap(),
            "--hop",
            "64",
        ];
        args.extend_from_slice(extra);
        timbrel(&args)
    };
    let out = import(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--stages") && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(!imported.exists());

    let out = import(&["--stages", "4", "--encoder-stages", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout(&out).contains("imported 78 of the 78 variables"));
    // Magenta's inputs and outputs with the imported weights.
    let golden = tmp.path().join("golden");
    std::fs::create_dir_all(&golden).unwrap();
    for file in ["config.json", "io.safetensors"] {
        std::fs::copy(magenta_tiny().join(file), golden.join(file)).unwrap();
    }
    std::fs::copy(
        imported.join("weights.safetensors"),
        golden.join("weights.safetensors"),
    )
    .unwrap();
    let out = timbrel(&["check-golden", golden.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("parity: ok"));
}
