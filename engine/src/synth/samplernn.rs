//! Playing a SampleRNN inside the [`super::Engine`]: whether a directory holds one, and
//! loading it (`config.json` naming `"model": "samplernn"` + `weights.safetensors`).

use std::path::Path;

use autoencoder::samplernn::{SampleRnn, SampleRnnConfig};
use candle_core::Device;

use crate::error::{Error, Result, check_safetensors, read_bounded};
use crate::model_dir::{CONFIG_FILE, WEIGHTS_FILE, identity};

/// Where a model directory may keep a SampleRNN beside its WaveNet.
pub const SAMPLERNN_DIR: &str = "samplernn";

/// Whether `dir`'s `config.json` names the SampleRNN family.
pub fn is_samplernn(dir: &Path) -> bool {
    let Ok(bytes) = read_bounded(&dir.join(CONFIG_FILE), 1 << 20) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get(autoencoder::family::KEY)
                .and_then(|f| f.as_str().map(str::to_owned))
        })
        .is_some_and(|f| f == autoencoder::family::SAMPLERNN)
}

/// Reads `DIR/config.json` as a SampleRNN's.
pub fn read_config(dir: &Path) -> Result<SampleRnnConfig> {
    let path = dir.join(CONFIG_FILE);
    let bytes = read_bounded(&path, 1 << 20)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::invalid(&path, "config is not UTF-8 text"))?;
    SampleRnnConfig::from_json(text).map_err(|error| Error::Model { path, error })
}

/// Loads the SampleRNN in `dir` onto `device`, with its identity for caches.
pub fn load(dir: &Path, device: &Device) -> Result<(SampleRnn, String)> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, 2 << 30)?;
    check_safetensors(&path, &bytes)?;
    let model = SampleRnn::from_safetensors(&config, &bytes, device)
        .map_err(|error| Error::Model { path, error })?;
    Ok((model, identity(&config, &bytes)))
}
