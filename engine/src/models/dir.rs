//! A model directory: `config.json` + `weights.safetensors`, Magenta's names and layouts.

use std::path::{Path, PathBuf};

use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::Device;

use crate::error::{Error, Result, check_safetensors, read_bounded};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// Larger than the `nsynth` preset's weights (≈ 200 MB in f32) with room to spare;
/// a `config.json` is a few hundred bytes.
const MAX_WEIGHTS_BYTES: u64 = 2 << 30;
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and validates `DIR/config.json`.
pub fn read_config(dir: &Path) -> Result<Config> {
    read_config_file(&dir.join(CONFIG_FILE))
}

/// Reads and validates a config file (at most 1 MB read).
pub fn read_config_file(path: &Path) -> Result<Config> {
    let path = path.to_path_buf();
    let bytes = read_bounded(&path, MAX_CONFIG_BYTES)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::invalid(&path, "config is not UTF-8 text"))?;
    Config::from_json(text).map_err(|error| Error::Model { path, error })
}

/// A model loaded from a directory, with where it came from.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: WaveNetAutoencoder,
    pub dir: PathBuf,
    /// [`identity`] of the config and weights.
    pub identity: String,
}

/// A model's identity for caches: the SHA-256 of its config (as JSON: an autoencoder's or
/// a student's) and weight bytes, so retraining or editing either changes it.
pub fn identity(config: &impl serde::Serialize, weights: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(serde_json::to_vec(config).unwrap_or_default());
    hash.update(b"\0");
    hash.update(weights);
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Loads `DIR/config.json` and `DIR/weights.safetensors` onto `device`.
pub fn load(dir: &Path, device: &Device) -> Result<LoadedModel> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, MAX_WEIGHTS_BYTES)?;
    check_safetensors(&path, &bytes)?;
    let model = WaveNetAutoencoder::from_safetensors(&config, &bytes, device)
        .map_err(|error| Error::Model { path, error })?;
    Ok(LoadedModel {
        identity: identity(&config, &bytes),
        model,
        dir: dir.to_path_buf(),
    })
}

/// Writes a model directory with freshly initialised weights (Magenta's initialiser,
/// biases uniform in ±0.1 so every path is exercised): for tests and experiments.
pub fn write_random(dir: &Path, config: &Config, seed: u64) -> Result<()> {
    let write_err = |path: PathBuf, error| Error::Write { path, error };
    std::fs::create_dir_all(dir).map_err(|e| write_err(dir.to_path_buf(), e))?;
    let json = config.to_json().map_err(|error| Error::Model {
        path: dir.join(CONFIG_FILE),
        error,
    })?;
    crate::fsutil::write_atomic(
        &dir.join(CONFIG_FILE),
        crate::fsutil::Overwrite::Allowed,
        |out| {
            use std::io::Write;
            out.write_all(json.as_bytes())
        },
    )?;
    let varmap = autoencoder::wavenet::weights::varmap(
        config,
        seed,
        autoencoder::wavenet::weights::BiasInit::Uniform(0.1),
        candle_core::DType::F32,
        &Device::Cpu, // host: a file's weights, made in host memory
    )?;
    let path = dir.join(WEIGHTS_FILE);
    let tensors: std::collections::HashMap<String, candle_core::Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| Error::invalid(&path, "cannot save weights (variable map lock poisoned)"))?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect();
    crate::fsutil::write_tensors(&path, &tensors, crate::fsutil::Overwrite::Allowed)
}
