//! The model families behind one trait, and the one loader: [`open`] reads any model
//! directory by its family tag (`autoencoder::family`) or the model embedded in the binary.
//!
//! - [`wavenet`]: NSynth's WaveNet autoencoder (its directory: [`dir`]; embedded:
//!   [`embedded`]), decoded sample by sample;
//! - [`student`]: a Parallel WaveNet student, whole notes at once;
//! - [`samplernn`]: a SampleRNN, sample by sample with tiers once per frame.
//!
//! Each keeps [`ModelFamily`]: encode notes (with their pitch where it measures at it),
//! its generator on a device, hop, bottleneck, parameter count. [`run_generator`] runs any
//! generator; [`reconstruct`] is the one encode → decode of whole notes that evaluation
//! scores.

pub mod dir;
pub mod embedded;
pub mod excitation;
mod open;
mod run;
pub mod samplernn;
pub mod student;
pub mod wavenet;

pub use open::{Loaded, open};
pub use run::{DecodeProgress, reconstruct, run_generator};
pub use wavenet::wavenet_generator;

use std::path::PathBuf;
use std::sync::Arc;

use autoencoder::student::StudentAutoencoder;
use autoencoder::{Config, Generator, WaveNetAutoencoder, mulaw};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::error::Result;

/// Which model the engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// The model embedded in the binary (and the student shipped beside it).
    Default,
    /// A model directory (`config.json` + `weights.safetensors`, and perhaps its student
    /// in `student/`), or a student's (`student.json` + `weights.safetensors`).
    Dir(PathBuf),
}

/// How notes are generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// The WaveNet autoencoder's decoder, one sample at a time (Fast WaveNet).
    Autoregressive,
    /// A Parallel WaveNet student: every sample of a note at once.
    Parallel,
    /// A SampleRNN: recurrent tiers at frame rates and a sample-level MLP.
    #[serde(rename = "samplernn")]
    SampleRnn,
}

impl DecoderKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Autoregressive => "autoregressive",
            Self::Parallel => "parallel",
            Self::SampleRnn => "samplernn",
        }
    }
}

/// Where a model directory keeps its Parallel WaveNet student.
pub const STUDENT_DIR: &str = "student";

/// A model family: what the engine, evaluation and the trainers' checks ask of a model,
/// whichever it is (kept by `WaveNetAutoencoder`, `StudentAutoencoder` and `SampleRnn`).
pub trait ModelFamily: std::fmt::Debug + Send + Sync {
    /// Which decoder generates.
    fn kind(&self) -> DecoderKind;

    /// What decodes, for status lines ("autoregressive", …).
    fn describe(&self) -> &'static str;

    /// The encoder's shape (the `ae_*` keys; a student's or a SampleRNN's encoder's).
    fn encoder_config(&self) -> &Config;

    /// Samples per embedding frame.
    fn hop(&self) -> usize {
        self.encoder_config().ae_hop_length
    }

    /// Embedding channels per frame (a student with measured sub-partials: with them).
    fn bottleneck(&self) -> usize;

    /// Trainable numbers of the whole model (encoder and decoder or student).
    fn parameter_count(&self) -> usize;

    /// Where its tensors live.
    fn device(&self) -> &Device;

    /// Whether it takes the pitch to play (has an excitation).
    fn pitched(&self) -> bool;

    /// Whether its embedding frames hold measurements of the note taken at its pitch (a
    /// student with measured sub-partials): then [`ModelFamily::encode`] reads the f0.
    fn measures_pitch(&self) -> bool {
        false
    }

    /// Whether its embedding frames carry the note's measured spectral envelope (a student
    /// with `envelope_bands`): its output follows the frames' level and spectrum.
    fn carries_envelope(&self) -> bool {
        self.envelope_bands() > 0
    }

    /// How many band amplitudes of a measured envelope end each embedding frame (0: none).
    fn envelope_bands(&self) -> usize {
        0
    }

    /// Harmonics `K` of the excitation its teacher-forced loss takes (`2K` channels).
    fn excitation_harmonics(&self) -> usize;

    /// Encodes 16 kHz notes of one length (a multiple of the hop), each at `f0_hz[i]`
    /// (Hz, 0 = unpitched; read only where it measures at the pitch): `[notes, frames,
    /// bottleneck]` on its device.
    fn encode(&self, notes: &[&[f32]], f0_hz: &[f32]) -> Result<Tensor>;

    /// What generates on its device (what the engine plays with).
    fn generator(self: Arc<Self>) -> Result<Box<dyn Generator>>;

    /// Whether [`ModelFamily::generator`] is a tensor (GPU-style) one that wants wide
    /// batches.
    fn tensor_decoding(&self) -> bool;

    /// A generator of candle tensors on `device` whatever its device (a GPU's; on the
    /// CPU device, for tests and comparisons); refused by a family that has none.
    fn tensor_generator(self: Arc<Self>, device: &Device) -> Result<Box<dyn Generator>>;

    /// What evaluation and a training run's free-running checks decode with: its
    /// generator, but for the student, always the CPU renderer.
    fn scoring_generator(&self) -> Result<Box<dyn Generator>>;

    /// The teacher-forced mean NLL per sample of μ-law-scaled notes `[notes, len]` given
    /// their excitation; `None` for a family with no likelihood to score (the student,
    /// trained on spectra).
    fn nll_loss(
        &self,
        _scaled: &Tensor,
        _excitation: Option<&Tensor>,
    ) -> Option<autoencoder::Result<Tensor>> {
        None
    }

    /// The WaveNet autoencoder, where that is the family.
    fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        None
    }

    /// The Parallel WaveNet student, where that is the family.
    fn student(self: Arc<Self>) -> Option<Arc<StudentAutoencoder>> {
        None
    }
}

/// 16 kHz notes of one length as an encoder's input `[notes, len]` (μ-law scaled) on
/// `device`.
pub fn scaled_tensor(notes: &[&[f32]], device: &Device) -> Result<Tensor> {
    let len = notes.first().map_or(0, |n| n.len());
    let flat: Vec<f32> = notes
        .iter()
        .flat_map(|n| n.iter().map(|&x| mulaw::scaled(x)))
        .collect();
    Ok(Tensor::from_vec(flat, (notes.len(), len), device).map_err(autoencoder::Error::from)?)
}
