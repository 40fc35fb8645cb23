//! NSynth's WaveNet autoencoder as a [`ModelFamily`]: its encoder, and its decoder
//! generating sample by sample on the fast CPU decoder or, on a GPU, the tensor decoder.
//! (Its directory is [`super::dir`]; the embedded one [`super::embedded`].)

use std::sync::Arc;

use autoencoder::wavenet::cpu::CpuGenerator;
use autoencoder::{Config, Generator, TensorGenerator, WaveNetAutoencoder};
use candle_core::{Device, Tensor};

use super::{DecoderKind, ModelFamily, scaled_tensor};
use crate::error::Result;

/// The WaveNet's generator for the device its tensors live on: the fast CPU decoder on
/// the CPU, the tensor decoder ([`TensorGenerator`]) on a GPU, where a per-sample step of
/// whole-batch operations pays for its kernel launches once the batch is wide.
pub fn wavenet_generator(model: &WaveNetAutoencoder) -> Result<Box<dyn Generator>> {
    Ok(match model.device() {
        Device::Cpu => Box::new(CpuGenerator::new(model)?),
        gpu => Box::new(TensorGenerator::new(model, gpu)?),
    })
}

impl ModelFamily for WaveNetAutoencoder {
    fn kind(&self) -> DecoderKind {
        DecoderKind::Autoregressive
    }

    fn describe(&self) -> &'static str {
        "autoregressive"
    }

    fn encoder_config(&self) -> &Config {
        self.config()
    }

    fn bottleneck(&self) -> usize {
        self.config().ae_bottleneck_width
    }

    fn parameter_count(&self) -> usize {
        self.config().parameter_count()
    }

    fn device(&self) -> &Device {
        WaveNetAutoencoder::device(self)
    }

    fn pitched(&self) -> bool {
        self.config().excitation_harmonics > 0
    }

    fn excitation_harmonics(&self) -> usize {
        self.config().excitation_harmonics
    }

    fn encode(&self, notes: &[&[f32]], _f0_hz: &[f32]) -> Result<Tensor> {
        let x = scaled_tensor(notes, WaveNetAutoencoder::device(self))?;
        Ok(WaveNetAutoencoder::encode(self, &x)?)
    }

    fn generator(self: Arc<Self>) -> Result<Box<dyn Generator>> {
        wavenet_generator(&self)
    }

    fn tensor_decoding(&self) -> bool {
        !matches!(WaveNetAutoencoder::device(self), Device::Cpu)
    }

    fn tensor_generator(self: Arc<Self>, device: &Device) -> Result<Box<dyn Generator>> {
        Ok(Box::new(TensorGenerator::new(&self, device)?))
    }

    fn scoring_generator(&self) -> Result<Box<dyn Generator>> {
        wavenet_generator(self)
    }

    fn nll_loss(
        &self,
        scaled: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Option<autoencoder::Result<Tensor>> {
        Some(self.loss_excited(scaled, None, excitation))
    }

    fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        Some(self)
    }
}
