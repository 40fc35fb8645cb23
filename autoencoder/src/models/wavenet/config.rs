//! Hyper-parameters of the WaveNet autoencoder, under Magenta's own names.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Hyper-parameters of NSynth's WaveNet autoencoder.
///
/// The keys are exactly the local variable names of Magenta's
/// `nsynth/wavenet/h512_bo16.py` (`Config.build`), so a `config.json` reads the same as
/// the reference. Unknown keys are rejected so that a typo does not silently fall back
/// to a default.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Decoder: dilation cycles through `2^(i % num_stages)`.
    pub num_stages: usize,
    /// Decoder: number of gated residual layers.
    pub num_layers: usize,
    /// Decoder: taps of the causal convolutions (Magenta uses 3).
    pub filter_length: usize,
    /// Decoder: residual channels (the gated layers produce `2 * width`).
    pub width: usize,
    /// Decoder: skip channels.
    pub skip_width: usize,
    /// Encoder: dilation cycles through `2^(i % ae_num_stages)`.
    pub ae_num_stages: usize,
    /// Encoder: number of residual layers.
    pub ae_num_layers: usize,
    /// Encoder: taps of the non-causal convolutions.
    pub ae_filter_length: usize,
    /// Encoder: channels.
    pub ae_width: usize,
    /// Channels of the embedding (NSynth: 16).
    pub ae_bottleneck_width: usize,
    /// Samples averaged into one embedding frame (NSynth: 512, i.e. 32 ms at 16 kHz).
    pub ae_hop_length: usize,
    /// Timbrel's addition, not in Magenta (absent from a config = 0 = off): harmonics `K`
    /// of the excitation at f0 fed to the decoder, `2K` channels per sample (see
    /// [`crate::excitation`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excitation_harmonics: usize,
    /// Timbrel's addition: where the excitation enters the decoder (ignored while
    /// `excitation_harmonics` is 0).
    #[serde(default, skip_serializing_if = "ExcitationInto::is_default")]
    pub excitation_into: ExcitationInto,
}

/// Where the excitation is projected into the decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExcitationInto {
    /// Into every gated layer, beside the embedding (`exc_map_N`, `2K → 2·width`).
    #[default]
    Layers,
    /// Into the residual stream after the start convolution (`exc_start`, `2K → width`).
    Input,
    /// Both.
    Both,
}

impl ExcitationInto {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Whether the gated layers get their own projection.
    pub fn layers(self) -> bool {
        matches!(self, Self::Layers | Self::Both)
    }

    /// Whether the start of the stack gets a projection.
    pub fn input(self) -> bool {
        matches!(self, Self::Input | Self::Both)
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Bounds that keep a config from asking for absurd amounts of memory or time.
/// They are far above anything published (NSynth: 30 layers, width 512).
const MAX_LAYERS: usize = 256;
const MAX_STAGES: usize = 16;
const MAX_FILTER_LENGTH: usize = 16;
const MAX_WIDTH: usize = 4096;
const MAX_HOP_LENGTH: usize = 16384;

impl Config {
    /// Magenta's published NSynth model, `h512_bo16`.
    pub fn nsynth() -> Self {
        Self {
            num_stages: 10,
            num_layers: 30,
            filter_length: 3,
            width: 512,
            skip_width: 256,
            ae_num_stages: 10,
            ae_num_layers: 30,
            ae_filter_length: 3,
            ae_width: 128,
            ae_bottleneck_width: 16,
            ae_hop_length: 512,
            excitation_harmonics: 0,
            excitation_into: ExcitationInto::Layers,
        }
    }

    /// The size Timbrel ships: 2 × 10 layers in both halves, small enough to decode in
    /// real time on one CPU core, with NSynth's embedding shape (16 every 512 samples).
    pub fn small() -> Self {
        Self {
            num_stages: 10,
            num_layers: 20,
            filter_length: 3,
            width: 64,
            skip_width: 128,
            ae_num_stages: 10,
            ae_num_layers: 20,
            ae_filter_length: 3,
            ae_width: 64,
            ae_bottleneck_width: 16,
            ae_hop_length: 512,
            excitation_harmonics: 0,
            excitation_into: ExcitationInto::Layers,
        }
    }

    /// [`Config::small`] with a 16-harmonic excitation into every gated layer: the
    /// default model's shape from its pitched run on.
    pub fn small_pitched() -> Self {
        Self {
            excitation_harmonics: 16,
            excitation_into: ExcitationInto::Layers,
            ..Self::small()
        }
    }

    /// The preset names [`Config::preset`] knows.
    pub const PRESETS: [&str; 3] = ["nsynth", "small", "small-pitched"];

    /// A preset by name: `nsynth`, `small` or `small-pitched`.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "nsynth" => Ok(Self::nsynth()),
            "small" => Ok(Self::small()),
            "small-pitched" => Ok(Self::small_pitched()),
            other => Err(Error::Config(format!(
                "unknown preset {other:?} (known: {})",
                Self::PRESETS.join(", ")
            ))),
        }
    }

    /// Whether the decoder takes an f0 curve (the excitation is on).
    pub fn pitched(&self) -> bool {
        self.excitation_harmonics > 0
    }

    /// Parses and validates a `config.json`.
    pub fn from_json(json: &str) -> Result<Self> {
        let cfg: Self = crate::family::from_json(crate::family::WAVENET_AE, true, json)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The config as `config.json` holds it: pretty JSON naming its family
    /// (`"model": "wavenet_ae"`).
    pub fn to_json(&self) -> Result<String> {
        crate::family::to_json(crate::family::WAVENET_AE, self)
    }

    /// Checks that the numbers describe a model that can be built and run.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("num_stages", self.num_stages),
            ("num_layers", self.num_layers),
            ("filter_length", self.filter_length),
            ("width", self.width),
            ("skip_width", self.skip_width),
            ("ae_num_stages", self.ae_num_stages),
            ("ae_num_layers", self.ae_num_layers),
            ("ae_filter_length", self.ae_filter_length),
            ("ae_width", self.ae_width),
            ("ae_bottleneck_width", self.ae_bottleneck_width),
            ("ae_hop_length", self.ae_hop_length),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("{name} must be at least 1, got 0")));
            }
        }
        let bounded = [
            ("num_layers", self.num_layers, MAX_LAYERS),
            ("ae_num_layers", self.ae_num_layers, MAX_LAYERS),
            ("num_stages", self.num_stages, MAX_STAGES),
            ("ae_num_stages", self.ae_num_stages, MAX_STAGES),
            ("filter_length", self.filter_length, MAX_FILTER_LENGTH),
            ("ae_filter_length", self.ae_filter_length, MAX_FILTER_LENGTH),
            ("width", self.width, MAX_WIDTH),
            ("skip_width", self.skip_width, MAX_WIDTH),
            ("ae_width", self.ae_width, MAX_WIDTH),
            ("ae_bottleneck_width", self.ae_bottleneck_width, MAX_WIDTH),
            ("ae_hop_length", self.ae_hop_length, MAX_HOP_LENGTH),
            (
                "excitation_harmonics",
                self.excitation_harmonics,
                crate::excitation::MAX_HARMONICS,
            ),
        ];
        for (name, value, max) in bounded {
            if value > max {
                return Err(Error::Config(format!(
                    "{name} = {value} is larger than the supported maximum {max}"
                )));
            }
        }
        Ok(())
    }

    /// Dilation of decoder layer `i` (0-based), as in `h512_bo16.py`.
    pub fn dilation(&self, layer: usize) -> usize {
        1 << (layer % self.num_stages)
    }

    /// The encoder's part of the config.
    pub fn encoder_config(&self) -> crate::nn::EncoderConfig {
        crate::nn::EncoderConfig {
            ae_filter_length: self.ae_filter_length,
            ae_width: self.ae_width,
            ae_num_layers: self.ae_num_layers,
            ae_num_stages: self.ae_num_stages,
            ae_bottleneck_width: self.ae_bottleneck_width,
            ae_hop_length: self.ae_hop_length,
        }
    }

    /// Dilation of encoder layer `i` (0-based).
    pub fn ae_dilation(&self, layer: usize) -> usize {
        self.encoder_config().ae_dilation(layer)
    }

    /// Samples of past input the decoder sees for one output: its receptive field.
    pub fn receptive_field(&self) -> usize {
        let taps = self.filter_length - 1;
        // startconv (dilation 1), then each dilated layer.
        1 + taps
            + (0..self.num_layers)
                .map(|i| taps * self.dilation(i))
                .sum::<usize>()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        crate::wavenet::weights::shapes(self)
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }
}
