#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
use autoencoder::Config;
use autoencoder::wavenet::weights::{self, BiasInit};
use candle_core::Device;
use engine::models::dir as model_dir;

fn write_model(dir: &std::path::Path, cfg: &Config) {
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_string_pretty(cfg).unwrap(),
    )
    .unwrap();
    let w = weights::random(cfg, 1, BiasInit::Zero, &Device::Cpu).unwrap();
    candle_core::safetensors::save(&w, dir.join("weights.safetensors")).unwrap();
}

fn tiny() -> Config {
    Config {
        num_stages: 2,
        num_layers: 2,
        filter_length: 3,
        width: 4,
        skip_width: 4,
        ae_num_stages: 2,
        ae_num_layers: 2,
        ae_filter_length: 3,
        ae_width: 4,
        ae_bottleneck_width: 2,
        ae_hop_length: 8,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    }
}

#[test]
fn a_model_directory_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_model(dir.path(), &tiny());
    let loaded = model_dir::load(dir.path(), &Device::Cpu).unwrap();
    assert_eq!(loaded.model.config(), &tiny());
}

#[test]
fn bad_model_directories_name_the_file_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let err = model_dir::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("cannot read"),
        "{err}"
    );

    write_model(dir.path(), &tiny());
    let mut bad = tiny();
    bad.width = 8; // the weights are for width 4
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_string(&bad).unwrap(),
    )
    .unwrap();
    let err = model_dir::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("weights.safetensors") && err.contains("shape mismatch"),
        "{err}"
    );

    std::fs::write(dir.path().join("config.json"), r#"{"width": 4}"#).unwrap();
    let err = model_dir::load(dir.path(), &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.json") && err.contains("missing field"),
        "{err}"
    );
}

#[test]
fn config_json_names_its_family_and_old_ones_without_it_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m");
    model_dir::write_random(&model, &tiny(), 1).unwrap();
    let path = model.join(model_dir::CONFIG_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"model\": \"wavenet_ae\""), "{text}");
    let loaded = model_dir::load(&model, &Device::Cpu).unwrap();
    // Without the key (every directory written before it): the same model, the same
    // identity (caches stay valid).
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    value.as_object_mut().unwrap().remove("model");
    std::fs::write(&path, value.to_string()).unwrap();
    let old = model_dir::load(&model, &Device::Cpu).unwrap();
    assert_eq!(old.identity, loaded.identity);
    // Another family's config is refused, naming the file and the family.
    value["model"] = "parallel_wavenet".into();
    std::fs::write(&path, value.to_string()).unwrap();
    let err = model_dir::load(&model, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("parallel_wavenet") && err.contains("config.json"),
        "{err}"
    );
}
