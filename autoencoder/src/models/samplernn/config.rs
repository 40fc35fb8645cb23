//! SampleRNN's shape (`config.json` with `"model": "samplernn"`).

use serde::{Deserialize, Serialize};

use crate::{Config, Error, Result};

/// A three-tier SampleRNN conditioned on the autoencoder's embedding: a frame tier every
/// `top_frame` samples, a sub-frame tier every `mid_frame` samples, a sample-level MLP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleRnnConfig {
    /// The encoder's shape: the `ae_*` keys of an autoencoder config (its decoder keys are
    /// unused).
    pub encoder: Config,
    /// Samples per frame of the top tier (the paper: 16).
    pub top_frame: usize,
    /// Samples per frame of the middle tier (the paper: 4); the sample-level MLP reads
    /// this many previous samples.
    pub mid_frame: usize,
    /// Hidden units of each tier's GRU.
    pub dim: usize,
    /// Hidden units of the sample-level MLP.
    pub mlp_dim: usize,
    /// Size of the learned embedding of each μ-law class the MLP reads.
    pub embed_dim: usize,
    /// Harmonics of the excitation at f0 (0: none): into the top tier at each frame's
    /// first sample and into the sample-level MLP at every sample.
    #[serde(default)]
    pub excitation_harmonics: usize,
    /// Samples of each truncated back-propagation through time (the paper: 512).
    pub tbptt: usize,
}

const MAX_DIM: usize = 4096;
const MAX_FRAME: usize = 1024;

impl SampleRnnConfig {
    /// What Timbrel trains: the `small` encoder, tiers of 16 and 4 samples, GRUs of 256,
    /// an MLP of 256 and the 16-harmonic excitation.
    pub fn samplernn() -> Self {
        Self {
            encoder: Config::small(),
            top_frame: 16,
            mid_frame: 4,
            dim: 256,
            mlp_dim: 256,
            embed_dim: 32,
            excitation_harmonics: 16,
            tbptt: 512,
        }
    }

    /// A model that trains in seconds, for tests.
    pub fn tiny() -> Self {
        Self {
            encoder: Config {
                ae_num_stages: 3,
                ae_num_layers: 3,
                ae_width: 8,
                ae_bottleneck_width: 4,
                ae_hop_length: 64,
                ..Config::small()
            },
            top_frame: 16,
            mid_frame: 4,
            dim: 16,
            mlp_dim: 16,
            embed_dim: 4,
            excitation_harmonics: 2,
            tbptt: 128,
        }
    }

    pub const PRESETS: [&str; 2] = ["samplernn", "samplernn-tiny"];

    pub fn preset(name: &str) -> Option<Self> {
        match name {
            "samplernn" => Some(Self::samplernn()),
            "samplernn-tiny" => Some(Self::tiny()),
            _ => None,
        }
    }

    pub fn from_json(json: &str) -> Result<Self> {
        let cfg: Self = crate::family::from_json(crate::family::SAMPLERNN, false, json)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> Result<String> {
        crate::family::to_json(crate::family::SAMPLERNN, self)
    }

    /// Middle-tier frames per top-tier frame.
    pub fn ratio(&self) -> usize {
        self.top_frame / self.mid_frame.max(1)
    }

    /// Excitation channels per sample (`2K`).
    pub fn excitation_channels(&self) -> usize {
        2 * self.excitation_harmonics
    }

    pub fn validate(&self) -> Result<()> {
        self.encoder.validate()?;
        let hop = self.encoder.ae_hop_length;
        for (name, value, max) in [
            ("top_frame", self.top_frame, MAX_FRAME),
            ("mid_frame", self.mid_frame, MAX_FRAME),
            ("dim", self.dim, MAX_DIM),
            ("mlp_dim", self.mlp_dim, MAX_DIM),
            ("embed_dim", self.embed_dim, MAX_DIM),
            ("tbptt", self.tbptt, 1 << 20),
        ] {
            if value == 0 || value > max {
                return Err(Error::Config(format!(
                    "{name} must be between 1 and {max}, got {value}"
                )));
            }
        }
        if self.excitation_harmonics > crate::excitation::MAX_HARMONICS {
            return Err(Error::Config(format!(
                "excitation_harmonics = {} is larger than the supported maximum {}",
                self.excitation_harmonics,
                crate::excitation::MAX_HARMONICS
            )));
        }
        if !self.top_frame.is_multiple_of(self.mid_frame)
            || !hop.is_multiple_of(self.top_frame)
            || !self.tbptt.is_multiple_of(self.top_frame)
        {
            return Err(Error::Config(format!(
                "the middle frame ({}) must divide the top frame ({}), which must divide the \
                 hop length ({hop}) and the truncated BPTT length ({})",
                self.mid_frame, self.top_frame, self.tbptt
            )));
        }
        Ok(())
    }

    /// `(name, shape)` of every variable of the tiers and the MLP (the encoder's are
    /// [`crate::wavenet::weights::shapes`]' `ae_*` ones).
    pub fn shapes(&self) -> Vec<(String, Vec<usize>)> {
        let (d, m, e, em) = (
            self.dim,
            self.mlp_dim,
            self.excitation_channels(),
            self.embed_dim,
        );
        let bn = self.encoder.ae_bottleneck_width;
        let mut out = vec![("top/frame/W".into(), vec![self.top_frame, d])];
        out.push(("top/cond/W".into(), vec![bn, d]));
        if e > 0 {
            out.push(("top/exc/W".into(), vec![e, d]));
        }
        out.push(("top/biases".into(), vec![d]));
        let gru = |out: &mut Vec<(String, Vec<usize>)>, tier: &str| {
            out.push((format!("{tier}/gru/W_ih"), vec![d, 3 * d]));
            out.push((format!("{tier}/gru/W_hh"), vec![d, 3 * d]));
            out.push((format!("{tier}/gru/b_ih"), vec![3 * d]));
            out.push((format!("{tier}/gru/b_hh"), vec![3 * d]));
        };
        gru(&mut out, "top");
        out.push(("top/up/W".into(), vec![d, self.ratio() * d]));
        out.push(("top/up/biases".into(), vec![self.ratio() * d]));
        out.push(("mid/frame/W".into(), vec![self.mid_frame, d]));
        out.push(("mid/biases".into(), vec![d]));
        gru(&mut out, "mid");
        out.push(("mid/up/W".into(), vec![d, self.mid_frame * m]));
        out.push(("mid/up/biases".into(), vec![self.mid_frame * m]));
        out.push(("sample/embedding".into(), vec![crate::mulaw::CLASSES, em]));
        out.push(("sample/in/W".into(), vec![self.mid_frame * em, m]));
        if e > 0 {
            out.push(("sample/exc/W".into(), vec![e, m]));
        }
        out.push(("sample/in/biases".into(), vec![m]));
        out.push(("sample/hidden/W".into(), vec![m, m]));
        out.push(("sample/hidden/biases".into(), vec![m]));
        out.push(("sample/logits/W".into(), vec![m, crate::mulaw::CLASSES]));
        out.push(("sample/logits/biases".into(), vec![crate::mulaw::CLASSES]));
        out
    }

    /// Trainable numbers: the encoder's, the tiers' and the MLP's.
    pub fn parameter_count(&self) -> usize {
        let encoder: usize = crate::wavenet::weights::shapes(&self.encoder)
            .iter()
            .filter(|(n, _)| n.starts_with("ae_"))
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        encoder
            + self
                .shapes()
                .iter()
                .map(|(_, s)| s.iter().product::<usize>())
                .sum::<usize>()
    }
}
