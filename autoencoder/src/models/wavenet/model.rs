//! The teacher-forced (parallel) WaveNet decoder of Magenta's `h512_bo16.py`,
//! `Config.build`, and the autoencoder it makes with the NSynth encoder ([`Encoder`]).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::nn::conv::{Conv1d, Conv1dConfig, Padding};
use crate::nn::gated::{GatedDims, GatedLayer, Projection, condition, one_by_one, shift_right};
use crate::{Config, Encoder, Error, Result};

/// The WaveNet decoder, conditioned on embedding frames.
#[derive(Debug)]
pub struct Decoder {
    pub(crate) start: Conv1d,
    /// The excitation's projection into the residual stream (`exc_start`), if any.
    pub(crate) exc_start: Option<Projection>,
    pub(crate) skip_start: Conv1d,
    pub(crate) layers: Vec<GatedLayer>,
    pub(crate) out1: Conv1d,
    pub(crate) cond_map_out1: Conv1d,
    pub(crate) logits: Conv1d,
    /// `2K` channels of excitation per sample (0: none).
    pub(crate) excitation_channels: usize,
}

impl Decoder {
    pub fn new(cfg: &Config, vb: &VarBuilder) -> Result<Self> {
        let causal = |dilation| Conv1dConfig {
            filter_length: cfg.filter_length,
            dilation,
            padding: Padding::Causal,
        };
        let (w, sw, bn) = (cfg.width, cfg.skip_width, cfg.ae_bottleneck_width);
        let start = Conv1d::new(vb, "startconv", 1, w, causal(1))?;
        let e = 2 * cfg.excitation_harmonics;
        let exc_start = (e > 0 && cfg.excitation_into.input())
            .then(|| Projection::new(vb, "exc_start", e, w))
            .transpose()?;
        let dims = GatedDims {
            width: w,
            skip_width: sw,
            bottleneck: bn,
            excitation: if cfg.excitation_into.layers() { e } else { 0 },
            filter_length: cfg.filter_length,
        };
        let skip_start = one_by_one(vb, "skip_start", w, sw)?;
        let layers = (0..cfg.num_layers)
            .map(|i| GatedLayer::new(vb, i + 1, dims, cfg.dilation(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            start,
            exc_start,
            skip_start,
            layers,
            out1: one_by_one(vb, "out1", sw, sw)?,
            cond_map_out1: one_by_one(vb, "cond_map_out1", bn, sw)?,
            logits: one_by_one(vb, "logits", sw, crate::mulaw::CLASSES)?,
            excitation_channels: e,
        })
    }

    /// Channels of excitation per sample the decoder takes (`2K`; 0 without one).
    pub fn excitation_channels(&self) -> usize {
        self.excitation_channels
    }

    /// Teacher-forced logits: `scaled` `[batch, time]` are the μ-law-scaled targets (the
    /// decoder sees them shifted right by one), `encoding` `[batch, frames, bottleneck]`
    /// with `time` a multiple of `frames`. Returns `[batch, time, 256]`.
    pub fn forward(&self, scaled: &Tensor, encoding: &Tensor) -> Result<Tensor> {
        self.forward_excited(scaled, encoding, None)
    }

    /// [`Decoder::forward`] with the excitation `[batch, time, 2K]` of the samples'
    /// f0 curve (see [`crate::excitation`]). A model with an excitation given `None` is
    /// given zeros (unpitched); one without ignores it.
    pub fn forward_excited(
        &self,
        scaled: &Tensor,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (batch, time) = scaled.dims2()?;
        let (enc_batch, frames, _) = encoding.dims3()?;
        if enc_batch != batch || frames == 0 || time % frames != 0 {
            return Err(Error::Shape(format!(
                "the decoder needs audio [{batch}, time] with time a multiple of the \
                 {frames} embedding frames of a batch of {enc_batch}; got time {time}"
            )));
        }
        let excitation = match excitation {
            Some(e) if self.excitation_channels > 0 => {
                if e.dims() != [batch, time, self.excitation_channels] {
                    return Err(Error::Shape(format!(
                        "the decoder needs an excitation [{batch}, {time}, {}], got {:?}",
                        self.excitation_channels,
                        e.dims()
                    )));
                }
                Some(e)
            }
            _ => None,
        };
        let mut l = self.start.forward(&shift_right(&scaled.unsqueeze(2)?)?)?;
        if let (Some(p), Some(e)) = (&self.exc_start, excitation) {
            l = (l + p.forward(e)?)?;
        }
        let mut s = self.skip_start.forward(&l)?;
        for layer in &self.layers {
            let (next, skip) = layer.forward(&l, encoding, excitation)?;
            l = next;
            s = (s + skip)?;
        }
        let s = self.out1.forward(&s.relu()?)?;
        let s = condition(&s, &self.cond_map_out1.forward(encoding)?)?.relu()?;
        Ok(self.logits.forward(&s)?)
    }
}

/// Encoder, decoder and their config: NSynth's WaveNet autoencoder.
#[derive(Debug)]
pub struct WaveNetAutoencoder {
    config: Config,
    encoder: Encoder,
    decoder: Decoder,
    device: Device,
}

impl WaveNetAutoencoder {
    /// Builds the model from the variables behind `vb` (a checkpoint, or a `VarMap` for
    /// training). Every variable is looked up under its Magenta name.
    pub fn new(config: &Config, vb: VarBuilder) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            encoder: Encoder::new(&config.encoder_config(), &vb)?,
            decoder: Decoder::new(config, &vb)?,
            device: vb.device().clone(),
        })
    }

    /// Builds the model from the bytes of a `weights.safetensors`.
    pub fn from_safetensors(config: &Config, bytes: &[u8], device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_slice_safetensors(bytes, DType::F32, device)?;
        Self::new(config, vb)
    }

    /// A model with fresh seeded weights (see [`super::weights::random`]): for tests and
    /// benchmarks, and the starting point of training.
    pub fn random(
        config: &Config,
        seed: u64,
        bias: super::weights::BiasInit,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let tensors = super::weights::random(config, seed, bias, device)?;
        Self::new(
            config,
            VarBuilder::from_tensors(tensors, DType::F32, device),
        )
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    pub fn decoder(&self) -> &Decoder {
        &self.decoder
    }

    /// `scaled` `[batch, time]` → embedding `[batch, time / hop, bottleneck]`.
    pub fn encode(&self, scaled: &Tensor) -> Result<Tensor> {
        self.encoder.forward(scaled)
    }

    /// Teacher-forced logits `[batch, time, 256]` of `scaled` given `encoding`.
    pub fn decode_logits(&self, scaled: &Tensor, encoding: &Tensor) -> Result<Tensor> {
        self.decoder.forward(scaled, encoding)
    }

    /// Encodes and decodes `scaled` in one pass, as training does: `(encoding, logits)`.
    pub fn forward(&self, scaled: &Tensor) -> Result<(Tensor, Tensor)> {
        let encoding = self.encode(scaled)?;
        let logits = self.decode_logits(scaled, &encoding)?;
        Ok((encoding, logits))
    }

    /// Mean negative log-likelihood (nats) of the μ-law classes behind `scaled`: the
    /// training loss of `h512_bo16.py`.
    pub fn loss(&self, scaled: &Tensor) -> Result<Tensor> {
        let (_, logits) = self.forward(scaled)?;
        nll(&logits, scaled)
    }

    /// The training loss with the excitation `[batch, time, 2K]` of the crops' f0 and,
    /// optionally, a different decoder input than the targets (`inputs`: `scaled` with
    /// noise added, so the decoder learns to recover from its own imperfect samples).
    pub fn loss_excited(
        &self,
        scaled: &Tensor,
        inputs: Option<&Tensor>,
        excitation: Option<&Tensor>,
    ) -> Result<Tensor> {
        let encoding = self.encode(scaled)?;
        let logits =
            self.decoder
                .forward_excited(inputs.unwrap_or(scaled), &encoding, excitation)?;
        nll(&logits, scaled)
    }
}

/// Mean NLL of `logits` `[batch, time, 256]` against the classes of `scaled` `[batch, time]`.
pub fn nll(logits: &Tensor, scaled: &Tensor) -> Result<Tensor> {
    let flat = logits.reshape(((), crate::mulaw::CLASSES))?;
    // scaled · 128 + 128 is an exact small integer in f32.
    let targets = scaled
        .flatten_all()?
        .affine(128.0, 128.0)?
        .round()?
        .to_dtype(DType::U32)?;
    Ok(candle_nn::loss::cross_entropy(&flat, &targets)?)
}
