//! The model that ships inside the binary: `assets/default-model` (see its MODEL.md),
//! embedded at build time so `timbrel` works from any folder.

use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::Device;

use crate::error::{Error, Result};

/// `assets/default-model/config.json`.
pub const CONFIG_JSON: &str = include_str!("../../assets/default-model/config.json");
/// `assets/default-model/weights.safetensors` (the EMA weights of the training run).
pub const WEIGHTS: &[u8] = include_bytes!("../../assets/default-model/weights.safetensors");

/// What the status line and `timbrel model info` call it.
pub const NAME: &str = "default (small-pitched, FluidR3_GM)";

fn embedded_path() -> std::path::PathBuf {
    "<embedded>/assets/default-model".into()
}

pub fn config() -> Result<Config> {
    Config::from_json(CONFIG_JSON).map_err(|error| Error::Model {
        path: embedded_path(),
        error,
    })
}

/// Loads the embedded model onto `device`.
pub fn load(device: &Device) -> Result<WaveNetAutoencoder> {
    WaveNetAutoencoder::from_safetensors(&config()?, WEIGHTS, device).map_err(|error| {
        Error::Model {
            path: embedded_path(),
            error,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_model_loads() {
        let model = super::load(&candle_core::Device::Cpu).unwrap();
        assert_eq!(model.config(), &autoencoder::Config::small_pitched());
    }
}
