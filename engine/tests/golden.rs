#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use autoencoder::wavenet::weights::{self, BiasInit};
use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::{Device, Tensor};
use engine::golden;

fn magenta_tiny() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/magenta-tiny")
}

#[test]
fn magentas_fixture_passes_parity() {
    let report = golden::check(&magenta_tiny()).unwrap();
    let names: Vec<&str> = report.deviations.iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        ["quantized", "encoding", "logits", "loss", "fastgen_probs"]
    );
    for d in &report.deviations {
        assert!(d.passes(), "{d:?}");
    }
    // μ-law must be exact, not merely close.
    assert_eq!(report.deviations[0].max_abs_error, 0.0);
}

fn sizes() -> Config {
    // Sizes unlike the shared fixture's: filter 3 as Magenta requires for fastgen, more
    // stages than layers, a hop of 128, a batch of 3.
    Config {
        num_stages: 7,
        num_layers: 5,
        filter_length: 3,
        width: 12,
        skip_width: 10,
        ae_num_stages: 2,
        ae_num_layers: 5,
        ae_filter_length: 3,
        ae_width: 6,
        ae_bottleneck_width: 5,
        ae_hop_length: 128,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    }
}

fn own_fixture(dir: &Path) -> (usize, usize) {
    let cfg = sizes();
    let (batch, length) = (3, 512);
    let tensors: HashMap<String, Tensor> =
        weights::random(&cfg, 3, BiasInit::Uniform(0.1), &Device::Cpu).unwrap();
    let model = WaveNetAutoencoder::new(
        &cfg,
        candle_nn::VarBuilder::from_tensors(tensors.clone(), candle_core::DType::F32, &Device::Cpu),
    )
    .unwrap();
    let wav: Vec<f32> = (0..batch * length)
        .map(|i| 0.8 * ((i as f32) * 0.05).sin() * ((i % length) as f32 / length as f32))
        .collect();
    golden::write_fixture(dir, &model, &tensors, &wav, (batch, length)).unwrap();
    (batch, length)
}

#[test]
fn the_checker_reads_fixtures_of_any_size_and_catches_a_wrong_value() {
    let dir = tempfile::tempdir().unwrap();
    let (batch, length) = own_fixture(dir.path());
    let report = golden::check(dir.path()).unwrap();
    assert_eq!((report.batch, report.length), (batch, length));
    assert!(report.passes(), "{report:?}");

    // One logit off by 1e-3 must fail the check.
    let io_path = dir.path().join("io.safetensors");
    let mut io = candle_core::safetensors::load(&io_path, &Device::Cpu).unwrap();
    let logits = &io["logits"];
    let mut values: Vec<f32> = logits.flatten_all().unwrap().to_vec1().unwrap();
    values[1234] += 1e-3;
    io.insert(
        "logits".into(),
        Tensor::from_vec(values, logits.shape(), &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&io, &io_path).unwrap();
    let report = golden::check(dir.path()).unwrap();
    assert!(!report.passes());
    let failing: Vec<&str> = report
        .deviations
        .iter()
        .filter(|d| !d.passes())
        .map(|d| d.name)
        .collect();
    assert_eq!(failing, ["logits"]);
}

fn check_error(setup: impl FnOnce(&Path), needle: &str) {
    let dir = tempfile::tempdir().unwrap();
    own_fixture(dir.path());
    setup(dir.path());
    let err = golden::check(dir.path()).unwrap_err().to_string();
    assert!(err.contains(needle), "error {err:?} lacks {needle:?}");
    assert!(!err.contains('\n'), "not one line: {err:?}");
}

#[test]
fn broken_fixtures_give_one_line_errors_naming_the_file() {
    check_error(
        |d| std::fs::remove_file(d.join("io.safetensors")).unwrap(),
        "io.safetensors",
    );
    check_error(
        |d| std::fs::write(d.join("config.json"), "{").unwrap(),
        "config.json",
    );
    check_error(
        |d| {
            let text = std::fs::read_to_string(d.join("config.json")).unwrap();
            std::fs::write(
                d.join("config.json"),
                text.replace("\"batch\":3", "\"batch\":0"),
            )
            .unwrap()
        },
        "positive integer \"batch\"",
    );
    check_error(
        |d| std::fs::write(d.join("weights.safetensors"), b"garbage").unwrap(),
        "weights.safetensors",
    );
    check_error(
        |d| {
            let mut w = candle_core::safetensors::load(d.join("weights.safetensors"), &Device::Cpu)
                .unwrap();
            w.remove("dilatedconv_3/W");
            candle_core::safetensors::save(&w, d.join("weights.safetensors")).unwrap();
        },
        "dilatedconv_3/W",
    );
    check_error(
        |d| {
            let mut io =
                candle_core::safetensors::load(d.join("io.safetensors"), &Device::Cpu).unwrap();
            io.insert(
                "wav".into(),
                Tensor::zeros((2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
            );
            candle_core::safetensors::save(&io, d.join("io.safetensors")).unwrap();
        },
        "tensor \"wav\" has shape [2, 2], expected [3, 512]",
    );
}
