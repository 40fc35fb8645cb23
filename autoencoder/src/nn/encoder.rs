//! NSynth's non-causal temporal encoder (Magenta's `h512_bo16.py`, `Config.build`): audio
//! → embedding frames. All three families condition on it (the WaveNet autoencoder's
//! own, the student's, SampleRNN's).

use candle_core::{Module, Tensor};
use candle_nn::VarBuilder;

use super::conv::{Conv1d, Conv1dConfig, Padding};
use super::gated::one_by_one;
use crate::{Error, Result};

/// The encoder's hyper-parameters: the `ae_*` fields of the autoencoder's config
/// ([`crate::Config::encoder_config`]; each documented there), under Magenta's names, in
/// the order the encoder is built: taps, channels, layers, their dilation cycle, then the
/// bottleneck's channels and the frames' hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    pub ae_filter_length: usize,
    pub ae_width: usize,
    pub ae_num_layers: usize,
    pub ae_num_stages: usize,
    pub ae_bottleneck_width: usize,
    pub ae_hop_length: usize,
}

impl EncoderConfig {
    /// Dilation of encoder layer `layer`.
    pub fn ae_dilation(&self, layer: usize) -> usize {
        1 << (layer % self.ae_num_stages)
    }
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
    pub fn new(cfg: &EncoderConfig, vb: &VarBuilder) -> Result<Self> {
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
