//! The Parallel WaveNet student (van den Oord et al. 2017, arXiv 1711.10433): an inverse
//! autoregressive flow that turns logistic noise into a whole note at once.
//!
//! `z ~ Logistic(0, 1)` per sample passes through `K` flows; flow `k` is a WaveNet over
//! the previous flow's output, shifted right by one (so its sample `t` sees only samples
//! before `t`), conditioned on the embedding frames and the pitch excitation, and gives a
//! shift `μ_t` and a log-scale `log s_t`: `x ← x · s + μ`. Composed, every output sample
//! is `z_t · S_t + M_t` with `S_t = Π s_t` and `M_t` the shifts carried through, so given
//! the noise before it each sample is logistic with known mean and scale: the student's
//! entropy is closed-form and its density on μ-law bins computable, which probability
//! density distillation from the autoregressive teacher needs. Every flow runs over a
//! known input, so generation is one parallel pass, not a loop over samples.
//!
//! This folder holds the model ([`model`]), the student with its encoder
//! ([`autoencoder`]), and what it trains on ([`objective`]): the multi-resolution spectral
//! and power losses ([`spectral`]) and probability density distillation from a WaveNet
//! teacher ([`distill`]).

pub mod autoencoder;
pub mod cpu;
pub mod distill;
pub mod envelope;
pub mod fused;
pub mod generate;
pub mod model;
pub mod objective;
pub mod spectral;
pub mod stream;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub use autoencoder::{StudentAutoencoder, StudentAutoencoderConfig};
pub use model::{Student, StudentOutput};
pub use objective::{LossWeights, Objective, Terms};

/// The student's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    /// Gated layers of each flow, first to last (the paper: 10, 10, 10, 30).
    pub flows: Vec<usize>,
    /// Dilation cycles through `2^(i % num_stages)` within a flow.
    pub num_stages: usize,
    /// Taps of the causal convolutions.
    pub filter_length: usize,
    /// Residual (and skip) channels of every flow (the paper: 64).
    pub width: usize,
    /// Embedding channels (NSynth: 16).
    pub bottleneck: usize,
    /// Samples per embedding frame (NSynth: 512).
    pub hop_length: usize,
    /// Harmonics of the excitation at f0 (see [`crate::excitation`]); 0: none.
    pub excitation_harmonics: usize,
    /// Sub-partials of the excitation (at `m·f0/4`, see [`crate::excitation`]), after
    /// the harmonics; 0 (and absent from older students' files): none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub excitation_subpartials: usize,
    /// A bank of the sub-partials added to the output (see [`model::SubpartialBank`]):
    /// each sub-partial's sine at a gain `exp(u)` per embedding frame, `u` a learned
    /// linear map of the frame. Needs sub-partials; false (and absent from older
    /// students' files): none.
    #[serde(default, skip_serializing_if = "is_false")]
    pub subpartial_bank: bool,
    /// The last `N` of the `bottleneck` channels of every embedding frame are measured,
    /// not learned: each sub-partial's amplitude in the source note around the frame
    /// ([`model::measured_channels`], at the note's own pitch), as `ln(a + ε) / r`; the
    /// bank plays each at that amplitude times its learned gain, and the flows read them as
    /// they read the rest of the frame. Needs a bank; the encoder then makes `bottleneck −
    /// N` channels. False (and absent from older students' files): all are learned.
    #[serde(default, skip_serializing_if = "is_false")]
    pub measured_subpartials: bool,
    /// Bands of the measured spectral envelope every embedding frame carries after its
    /// `bottleneck` channels (see [`envelope`]): the source note's amplitude per mel band
    /// around the frame. The flows do not read them; the output stage shapes the flows'
    /// sound to them. 0 (and absent from older students' files): none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub envelope_bands: usize,
    /// How many times the output stage refines each window's band gains after its first
    /// estimate (see [`envelope::Bands::refine`]): each pass measures what the gains it
    /// has give every band and corrects them by what is still missing. Training shapes
    /// in one pass whatever this says (its gradient is that rule's); playing refines. 0
    /// (and absent from older students' files): one pass.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub envelope_refinements: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl StudentConfig {
    /// What Timbrel starts from: two flows of ten layers, width 32, and the 16-harmonic
    /// excitation, the size of the prototype that played held-out notes in tune after 38
    /// minutes on 2 cores, with a second flow.
    pub fn small() -> Self {
        Self {
            flows: vec![10, 10],
            num_stages: 10,
            filter_length: 3,
            width: 32,
            bottleneck: 16,
            hop_length: 512,
            excitation_harmonics: 16,
            excitation_subpartials: 0,
            subpartial_bank: false,
            measured_subpartials: false,
            envelope_bands: 0,
            envelope_refinements: 0,
        }
    }

    /// Channels of an embedding frame: the `bottleneck` the flows read, then the
    /// envelope's bands.
    pub fn frame_channels(&self) -> usize {
        self.bottleneck + self.envelope_bands
    }

    /// Measured channels at the end of every embedding frame (see
    /// [`StudentConfig::measured_subpartials`]): `N`, or 0.
    pub fn measured_channels(&self) -> usize {
        if self.measured_subpartials {
            self.excitation_subpartials
        } else {
            0
        }
    }

    /// Channels of an embedding frame its encoder makes (the rest are measured).
    pub fn learned_channels(&self) -> usize {
        self.bottleneck.saturating_sub(self.measured_channels())
    }

    /// Channels of the excitation: `2K` harmonic and `2N` sub-partial ones.
    pub fn excitation_channels(&self) -> usize {
        2 * (self.excitation_harmonics + self.excitation_subpartials)
    }

    /// The excitation `[time][channels]` of one voice held along `f0` from `start`, or
    /// `None` for a student without one.
    pub fn excitation(&self, f0: &[f32], start: crate::excitation::Oscillator) -> Option<Vec<f32>> {
        (self.excitation_harmonics > 0).then(|| {
            crate::excitation::excitation_partials(
                f0,
                self.excitation_harmonics,
                self.excitation_subpartials,
                start,
            )
        })
    }

    /// Checks that the numbers describe a student that can be built.
    pub fn validate(&self) -> Result<()> {
        if self.flows.is_empty() || self.flows.len() > 16 {
            return Err(Error::Config(format!(
                "a student needs 1 to 16 flows, got {}",
                self.flows.len()
            )));
        }
        for (name, value, max) in [
            (
                "flow layers",
                self.flows.iter().copied().max().unwrap_or(0),
                256,
            ),
            ("num_stages", self.num_stages, 16),
            ("filter_length", self.filter_length, 16),
            ("width", self.width, 4096),
            ("bottleneck", self.bottleneck, 4096),
            ("hop_length", self.hop_length, 16384),
        ] {
            if value == 0 || value > max {
                return Err(Error::Config(format!(
                    "{name} must be from 1 to {max}, got {value}"
                )));
            }
        }
        if self.envelope_bands > envelope::MAX_BANDS {
            return Err(Error::Config(format!(
                "envelope_bands = {} is larger than the supported maximum {}",
                self.envelope_bands,
                envelope::MAX_BANDS
            )));
        }
        if self.flows.contains(&0) {
            return Err(Error::Config("every flow needs at least one layer".into()));
        }
        if self.excitation_harmonics > crate::excitation::MAX_HARMONICS {
            return Err(Error::Config(format!(
                "excitation_harmonics = {} is larger than the supported maximum {}",
                self.excitation_harmonics,
                crate::excitation::MAX_HARMONICS
            )));
        }
        if self.excitation_subpartials > crate::excitation::MAX_SUBPARTIALS {
            return Err(Error::Config(format!(
                "excitation_subpartials = {} is larger than the supported maximum {}",
                self.excitation_subpartials,
                crate::excitation::MAX_SUBPARTIALS
            )));
        }
        if self.excitation_subpartials > 0 && self.excitation_harmonics == 0 {
            return Err(Error::Config(
                "sub-partials need an excitation (excitation_harmonics > 0)".into(),
            ));
        }
        if self.subpartial_bank && self.excitation_subpartials == 0 {
            return Err(Error::Config(
                "a sub-partial bank needs sub-partials (excitation_subpartials > 0)".into(),
            ));
        }
        if self.measured_subpartials
            && (!self.subpartial_bank || self.bottleneck <= self.excitation_subpartials)
        {
            return Err(Error::Config(format!(
                "measured sub-partials need a sub-partial bank and a bottleneck wider than the {} sub-partials (the encoder makes the rest), got {} channels{}",
                self.excitation_subpartials,
                self.bottleneck,
                if self.subpartial_bank {
                    ""
                } else {
                    " and no bank"
                }
            )));
        }
        Ok(())
    }

    /// Dilation of layer `i` of a flow.
    pub fn dilation(&self, layer: usize) -> usize {
        1 << (layer % self.num_stages)
    }
}
