//! The non-causal encoder and the teacher-forced (parallel) WaveNet decoder of
//! Magenta's `h512_bo16.py`, `Config.build`.

use candle_core::{D, DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::wavenet::layers::{Conv1d, Conv1dConfig, Padding};
use crate::{Config, Error, Result};

/// `x += encoding`, each embedding frame held for `hop` samples
/// (Magenta's `Config._condition`).
pub(crate) fn condition(xs: &Tensor, frames: &Tensor) -> Result<Tensor> {
    let (batch, time, channels) = xs.dims3()?;
    let (frame_batch, frame_count, frame_channels) = frames.dims3()?;
    if frame_batch != batch || frame_channels != channels || time % frame_count.max(1) != 0 {
        return Err(Error::Shape(format!(
            "cannot condition [{batch}, {time}, {channels}] on embedding frames \
             [{frame_batch}, {frame_count}, {frame_channels}]"
        )));
    }
    let hop = time / frame_count;
    let held = xs
        .reshape((batch, frame_count, hop, channels))?
        .broadcast_add(&frames.reshape((batch, frame_count, 1, channels))?)?;
    Ok(held.reshape((batch, time, channels))?)
}

/// Magenta's `masked.shift_right`: a zero in front, the last sample dropped.
pub(crate) fn shift_right(xs: &Tensor) -> Result<Tensor> {
    let time = xs.dim(1)?;
    Ok(xs.pad_with_zeros(1, 1, 0)?.narrow(1, 0, time)?)
}

pub(crate) fn one_by_one(vb: &VarBuilder, name: &str, cin: usize, cout: usize) -> Result<Conv1d> {
    Conv1d::new(vb, name, cin, cout, Conv1dConfig::default())
}

/// Splits `[.., 2w]` into its sigmoid and tanh halves: `σ(first half) ⊙ tanh(second half)`,
/// the order of `h512_bo16.py`.
///
/// `tanh(x)` is computed as `2σ(2x) − 1` (the same function; rounding differs by a few
/// ulps) because candle's sigmoid is vectorised and its tanh is not: 3× faster here.
pub(crate) fn gate(xs: &Tensor, width: usize) -> Result<Tensor> {
    let sigmoid = candle_nn::ops::sigmoid(&xs.narrow(D::Minus1, 0, width)?)?;
    let doubled = xs.narrow(D::Minus1, width, width)?.affine(2.0, 0.0)?;
    let tanh = candle_nn::ops::sigmoid(&doubled)?.affine(2.0, -1.0)?;
    Ok((sigmoid * tanh)?)
}

/// One residual layer of the encoder.
#[derive(Debug)]
struct EncoderLayer {
    dilated: Conv1d,
    res: Conv1d,
}

/// The non-causal temporal encoder: audio → embedding frames.
#[derive(Debug)]
pub struct Encoder {
    start: Conv1d,
    layers: Vec<EncoderLayer>,
    bottleneck: Conv1d,
    hop_length: usize,
}

impl Encoder {
    pub fn new(cfg: &Config, vb: &VarBuilder) -> Result<Self> {
        let same = |dilation| Conv1dConfig {
            filter_length: cfg.ae_filter_length,
            dilation,
            padding: Padding::Same,
        };
        let start = Conv1d::new(vb, "ae_startconv", 1, cfg.ae_width, same(1))?;
        let layers = (0..cfg.ae_num_layers)
            .map(|i| {
                Ok(EncoderLayer {
                    dilated: Conv1d::new(
                        vb,
                        &format!("ae_dilatedconv_{}", i + 1),
                        cfg.ae_width,
                        cfg.ae_width,
                        same(cfg.ae_dilation(i)),
                    )?,
                    res: one_by_one(vb, &format!("ae_res_{}", i + 1), cfg.ae_width, cfg.ae_width)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let bottleneck = one_by_one(vb, "ae_bottleneck", cfg.ae_width, cfg.ae_bottleneck_width)?;
        Ok(Self {
            start,
            layers,
            bottleneck,
            hop_length: cfg.ae_hop_length,
        })
    }

    /// `scaled` `[batch, time]` (μ-law classes / 128) → `[batch, time / hop, bottleneck]`.
    /// `time` must be a multiple of the hop length (Magenta asserts the same).
    pub fn forward(&self, scaled: &Tensor) -> Result<Tensor> {
        let (batch, time) = scaled.dims2()?;
        if time == 0 || time % self.hop_length != 0 {
            return Err(Error::Shape(format!(
                "the encoder needs a length that is a positive multiple of the hop length \
                 {}, got {time} samples",
                self.hop_length
            )));
        }
        let mut en = self.start.forward(&scaled.unsqueeze(2)?)?;
        for layer in &self.layers {
            let d = layer.dilated.forward(&en.relu()?)?.relu()?;
            en = (en + layer.res.forward(&d)?)?;
        }
        let en = self.bottleneck.forward(&en)?;
        let channels = en.dim(2)?;
        let frames = time / self.hop_length;
        Ok(en
            .reshape((batch, frames, self.hop_length, channels))?
            .mean(2)?)
    }
}

/// A bias-free 1×1 projection `NAME/W` `[1, 1, in, out]` (Timbrel's excitation maps).
#[derive(Clone, Debug)]
pub(crate) struct Projection {
    /// `[in, out]`.
    pub(crate) kernel: Tensor,
}

impl Projection {
    pub(crate) fn new(vb: &VarBuilder, name: &str, cin: usize, cout: usize) -> Result<Self> {
        let limit = (3.0 / cin as f64).sqrt();
        let kernel = vb.get_with_hints(
            (1, 1, cin, cout),
            &format!("{name}/W"),
            candle_nn::Init::Uniform {
                lo: -limit,
                up: limit,
            },
        )?;
        Ok(Self {
            kernel: kernel.reshape((cin, cout))?,
        })
    }

    /// `[batch, time, in]` → `[batch, time, out]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, time, cin) = xs.dims3()?;
        let cout = self.kernel.dim(1)?;
        Ok(xs
            .reshape((batch * time, cin))?
            .matmul(&self.kernel)?
            .reshape((batch, time, cout))?)
    }
}

/// One gated residual layer of the decoder.
#[derive(Debug)]
pub(crate) struct DecoderLayer {
    pub(crate) dilated: Conv1d,
    pub(crate) cond_map: Conv1d,
    /// The excitation's projection into the gate (`exc_map_N`), when the config has one.
    pub(crate) exc_map: Option<Projection>,
    pub(crate) res: Conv1d,
    pub(crate) skip: Conv1d,
}

/// The WaveNet decoder, conditioned on embedding frames.
#[derive(Debug)]
pub struct Decoder {
    pub(crate) start: Conv1d,
    /// The excitation's projection into the residual stream (`exc_start`), if any.
    pub(crate) exc_start: Option<Projection>,
    pub(crate) skip_start: Conv1d,
    pub(crate) layers: Vec<DecoderLayer>,
    pub(crate) out1: Conv1d,
    pub(crate) cond_map_out1: Conv1d,
    pub(crate) logits: Conv1d,
    pub(crate) width: usize,
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
        let exc_layers = e > 0 && cfg.excitation_into.layers();
        let skip_start = one_by_one(vb, "skip_start", w, sw)?;
        let layers = (0..cfg.num_layers)
            .map(|i| {
                let n = i + 1;
                Ok(DecoderLayer {
                    dilated: Conv1d::new(
                        vb,
                        &format!("dilatedconv_{n}"),
                        w,
                        2 * w,
                        causal(cfg.dilation(i)),
                    )?,
                    cond_map: one_by_one(vb, &format!("cond_map_{n}"), bn, 2 * w)?,
                    exc_map: exc_layers
                        .then(|| Projection::new(vb, &format!("exc_map_{n}"), e, 2 * w))
                        .transpose()?,
                    res: one_by_one(vb, &format!("res_{n}"), w, w)?,
                    skip: one_by_one(vb, &format!("skip_{n}"), w, sw)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            start,
            exc_start,
            skip_start,
            layers,
            out1: one_by_one(vb, "out1", sw, sw)?,
            cond_map_out1: one_by_one(vb, "cond_map_out1", bn, sw)?,
            logits: one_by_one(vb, "logits", sw, crate::mulaw::CLASSES)?,
            width: w,
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
            let mut d = layer.dilated.forward(&l)?;
            if let (Some(p), Some(e)) = (&layer.exc_map, excitation) {
                d = (d + p.forward(e)?)?;
            }
            let d = condition(&d, &layer.cond_map.forward(encoding)?)?;
            let d = gate(&d, self.width)?;
            l = (l + layer.res.forward(&d)?)?;
            s = (s + layer.skip.forward(&d)?)?;
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
            encoder: Encoder::new(config, &vb)?,
            decoder: Decoder::new(config, &vb)?,
            device: vb.device().clone(),
        })
    }

    /// Builds the model from the bytes of a `weights.safetensors`.
    pub fn from_safetensors(config: &Config, bytes: &[u8], device: &Device) -> Result<Self> {
        let vb = VarBuilder::from_slice_safetensors(bytes, DType::F32, device)?;
        Self::new(config, vb)
    }

    /// A model with fresh seeded weights (see [`crate::wavenet::weights::random`]): for tests and
    /// benchmarks, and the starting point of training.
    pub fn random(
        config: &Config,
        seed: u64,
        bias: crate::wavenet::weights::BiasInit,
        device: &Device,
    ) -> Result<Self> {
        config.validate()?;
        let tensors = crate::wavenet::weights::random(config, seed, bias, device)?;
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
