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
            || self.encoder.ae_bottleneck_width != self.student.learned_channels()
        {
            return Err(Error::Config(format!(
                "the encoder makes {} channels every {} samples, the student reads {} learned ones every {}",
                self.encoder.ae_bottleneck_width,
                self.encoder.ae_hop_length,
                self.student.learned_channels(),
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
            encoder: Encoder::new(&config.encoder.encoder_config(), vb)?,
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

    /// μ-law-scaled audio `[batch, time]` → embedding `[batch, frames, bottleneck]`: the
    /// encoder's channels, then (for a student with measured sub-partials) `measured`
    /// `[batch, frames, N]` ([`StudentAutoencoder::measure`] of the same notes).
    pub fn encode(&self, scaled: &Tensor, measured: Option<&Tensor>) -> Result<Tensor> {
        let learned = self.encoder.forward(scaled)?;
        match (self.config.student.measured_channels(), measured) {
            (0, _) => Ok(learned),
            (n, Some(m)) if m.dims3()?.2 == n && m.dims3()?.1 == learned.dims3()?.1 => {
                Ok(Tensor::cat(&[&learned, m], 2)?)
            }
            (n, _) => Err(Error::Shape(format!(
                "this student's frames end in {n} measured sub-partial channels; the encoding needs them for every frame"
            ))),
        }
    }

    /// The measured channels `[batch, frames, N]` of notes `audio` `[batch, time]` with
    /// their excitation `[batch, time, 2K + 2N]` at their own pitch (`None`: unpitched, every
    /// sub-partial silent), for a student with measured sub-partials; `None` for others.
    pub fn measure(&self, audio: &Tensor, excitation: Option<&Tensor>) -> Result<Option<Tensor>> {
        let s = &self.config.student;
        let n = s.measured_channels();
        if n == 0 {
            return Ok(None);
        }
        let (batch, time) = audio.dims2()?;
        let frames = time / s.hop_length;
        let samples = audio.flatten_all()?.to_vec1::<f32>()?;
        let exc = excitation
            .map(|e| e.flatten_all().and_then(|e| e.to_vec1::<f32>()))
            .transpose()?;
        let k2 = s.excitation_channels();
        let mut out = Vec::with_capacity(batch * frames * n);
        for (i, note) in samples.chunks_exact(time.max(1)).enumerate() {
            let e = exc.as_ref().map(|e| &e[i * time * k2..(i + 1) * time * k2]);
            out.extend(super::model::measured_channels(s, note, e));
        }
        Ok(Some(Tensor::from_vec(
            out,
            (batch, frames, n),
            audio.device(),
        )?))
    }

    /// The measured envelope `[batch, frames, bands]` of notes `audio` `[batch, time]` (see
    /// [`super::envelope`]) for a student with one, `None` for others. An embedding to
    /// play is [`StudentAutoencoder::encode`]'s frames with these after them.
    pub fn envelope(&self, audio: &Tensor) -> Result<Option<Tensor>> {
        let s = &self.config.student;
        let Some(bands) = super::envelope::Bands::of(s) else {
            return Ok(None);
        };
        let (batch, time) = audio.dims2()?;
        let frames = time / s.hop_length;
        let samples = audio.flatten_all()?.to_vec1::<f32>()?;
        let mut out = Vec::with_capacity(batch * frames * s.envelope_bands);
        for note in samples.chunks_exact(time.max(1)) {
            out.extend(super::envelope::measure(&bands, note, s.hop_length));
        }
        Ok(Some(Tensor::from_vec(
            out,
            (batch, frames, s.envelope_bands),
            audio.device(),
        )?))
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
        spectral.loss(&self.play(audio, scaled, z, excitation)?.audio, audio)
    }

    /// The notes `audio` `[batch, time]` (their μ-law-scaled copy `scaled` is what the
    /// encoder reads) encoded, with their measured channels, and played from the noise `z`
    /// with the excitation.
    pub fn play(
        &self,
        audio: &Tensor,
        scaled: &Tensor,
        z: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<StudentOutput> {
        let measured = self.measure(audio, excitation)?;
        let encoding = self.encode(scaled, measured.as_ref())?;
        self.render(z, &encoding, excitation)
    }
}
