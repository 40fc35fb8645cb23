//! The student with an encoder of its own, trained together on the spectral loss (the
//! prototype's recipe): what a student needs before there is a teacher worth distilling.

use candle_core::{DType, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

use super::spectral::MultiResolution;
use super::{Student, StudentConfig, StudentOutput};
use crate::{Config, Encoder, Error, Result};

/// `student.json`: the encoder's shape (the `ae_*` keys of an autoencoder config; its
/// decoder keys are unused) and the student's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentAutoencoderConfig {
    pub encoder: Config,
    pub student: StudentConfig,
}

impl StudentAutoencoderConfig {
    /// The `small` autoencoder's encoder and [`StudentConfig::small`].
    pub fn small() -> Self {
        Self {
            encoder: Config::small(),
            student: StudentConfig::small(),
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        self.student.validate()?;
        if self.encoder.ae_hop_length != self.student.hop_length
            || self.encoder.ae_bottleneck_width != self.student.bottleneck
        {
            return Err(Error::Config(format!(
                "the encoder makes {} channels every {} samples, the student reads {} every {}",
                self.encoder.ae_bottleneck_width,
                self.encoder.ae_hop_length,
                self.student.bottleneck,
                self.student.hop_length
            )));
        }
        Ok(())
    }
}

/// Encoder (`ae_*` variables) and student (`flow_N/*`).
#[derive(Debug)]
pub struct StudentAutoencoder {
    config: StudentAutoencoderConfig,
    encoder: Encoder,
    student: Student,
    device: candle_core::Device,
}

impl StudentAutoencoder {
    pub fn new(config: &StudentAutoencoderConfig, vb: &VarBuilder) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            encoder: Encoder::new(&config.encoder, vb)?,
            student: Student::new(&config.student, vb)?,
            device: vb.device().clone(),
        })
    }

    /// Builds it from the bytes of a `weights.safetensors`.
    pub fn from_safetensors(
        config: &StudentAutoencoderConfig,
        bytes: &[u8],
        device: &candle_core::Device,
    ) -> Result<Self> {
        Self::new(
            config,
            &VarBuilder::from_slice_safetensors(bytes, DType::F32, device)?,
        )
    }

    pub fn config(&self) -> &StudentAutoencoderConfig {
        &self.config
    }

    /// The flows.
    pub fn student(&self) -> &Student {
        &self.student
    }

    /// Where its tensors live.
    pub fn device(&self) -> &candle_core::Device {
        &self.device
    }

    /// Trainable numbers: the encoder's and the flows'.
    pub fn parameter_count(&self) -> usize {
        let e = &self.config.encoder;
        let s = &self.config.student;
        let (w, f, bn) = (e.ae_width, e.ae_filter_length, e.ae_bottleneck_width);
        let encoder =
            (f * w + w) + e.ae_num_layers * ((f * w * w + w) + (w * w + w)) + (w * bn + bn);
        let (sw, sf, exc) = (s.width, s.filter_length, s.excitation_channels());
        let flow = |layers: usize| {
            (sf * sw + sw)
                + layers
                    * ((sf * sw * 2 * sw + 2 * sw)
                        + (s.bottleneck * 2 * sw + 2 * sw)
                        + exc * 2 * sw
                        + 2 * (sw * sw + sw))
                + (sw * 2 + 2)
        };
        let bank = if s.subpartial_bank {
            (s.bottleneck + 1) * s.excitation_subpartials
        } else {
            0
        };
        encoder + s.flows.iter().map(|&l| flow(l)).sum::<usize>() + bank
    }

    /// μ-law-scaled audio `[batch, time]` → embedding `[batch, frames, bottleneck]`.
    pub fn encode(&self, scaled: &Tensor) -> Result<Tensor> {
        self.encoder.forward(scaled)
    }

    /// The student's audio from noise `z` (see [`Student::forward`]).
    pub fn render(
        &self,
        z: &Tensor,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<StudentOutput> {
        self.student.forward(z, encoding, excitation)
    }

    /// The training loss: the notes `audio` `[batch, time]` (their μ-law-scaled copy
    /// `scaled` is what the encoder reads) encoded, played from the noise `z` with the
    /// excitation, and compared with `audio` by `spectral`.
    pub fn spectral_loss(
        &self,
        audio: &Tensor,
        scaled: &Tensor,
        z: &Tensor,
        excitation: Option<&Tensor>,
        spectral: &MultiResolution,
    ) -> Result<Tensor> {
        let encoding = self.encode(scaled)?;
        let out = self.render(z, &encoding, excitation)?;
        spectral.loss(&out.audio, audio)
    }
}
