//! SampleRNN as a [`ModelFamily`]: whether a directory holds one, and loading it
//! (`config.json` naming `"model": "samplernn"` + `weights.safetensors`).

use std::path::Path;
use std::sync::Arc;

use autoencoder::samplernn::{SampleRnn, SampleRnnConfig, SampleRnnGenerator};
use autoencoder::{Config, Generator};
use candle_core::{Device, Tensor};

use super::dir::{CONFIG_FILE, WEIGHTS_FILE, identity};
use super::{DecoderKind, ModelFamily, scaled_tensor};
use crate::error::{Error, Result, check_safetensors, read_bounded};

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

impl ModelFamily for SampleRnn {
    fn kind(&self) -> DecoderKind {
        DecoderKind::SampleRnn
    }

    fn describe(&self) -> &'static str {
        "SampleRNN"
    }

    fn encoder_config(&self) -> &Config {
        &self.config().encoder
    }

    fn bottleneck(&self) -> usize {
        self.config().encoder.ae_bottleneck_width
    }

    fn parameter_count(&self) -> usize {
        self.config().parameter_count()
    }

    fn device(&self) -> &Device {
        SampleRnn::device(self)
    }

    fn pitched(&self) -> bool {
        self.config().excitation_channels() > 0
    }

    fn excitation_harmonics(&self) -> usize {
        self.config().excitation_harmonics
    }

    fn encode(&self, notes: &[&[f32]], _f0_hz: &[f32]) -> Result<Tensor> {
        let x = scaled_tensor(notes, SampleRnn::device(self))?;
        Ok(SampleRnn::encode(self, &x)?)
    }

    fn generator(self: Arc<Self>) -> Result<Box<dyn Generator>> {
        self.scoring_generator()
    }

    fn tensor_decoding(&self) -> bool {
        false
    }

    fn tensor_generator(self: Arc<Self>, _device: &Device) -> Result<Box<dyn Generator>> {
        Err(Error::invalid(
            Path::new("samplernn"),
            "SampleRNN has no tensor decoder: it generates on the CPU",
        ))
    }

    fn scoring_generator(&self) -> Result<Box<dyn Generator>> {
        Ok(Box::new(SampleRnnGenerator::new(self)?))
    }

    fn nll_loss(
        &self,
        scaled: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Option<autoencoder::Result<Tensor>> {
        Some(self.loss(scaled, None, excitation))
    }
}
