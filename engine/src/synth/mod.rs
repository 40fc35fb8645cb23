//! The synthesizer: notes in, embeddings (encode, cached), blends, and new notes out
//! (decode with the autoregressive WaveNet on the fast CPU decoder or the tensor decoder
//! on a GPU, or with a Parallel WaveNet student in whole-note passes; batched, with
//! progress and cancellation).
//!
//! ```text
//! file / pack folder ──prepare──▶ 16 kHz note at the blend's pitch
//!     ──encode (cache)──▶ Embedding [frames, 16] ──blend (weights, XY, morph)──▶ Embedding
//!     ──decode (autoregressive or parallel, many voices at once)──▶ 16 kHz audio
//!     ──render──▶ WAV
//! ```

mod batches;
pub mod blend;
pub mod cache;
mod decode;
mod encode;
pub mod grid;
pub mod level;
pub mod loudness;
pub mod npy;
pub mod prepare;
pub mod render;
pub mod sources;
pub mod stretch;

pub use batches::Batches;
pub use decode::Voice;
pub use encode::Encoded;

use std::path::Path;
use std::sync::Arc;

use autoencoder::samplernn::SampleRnn;
use autoencoder::student::StudentAutoencoder;
use autoencoder::{Config, Generator, WaveNetAutoencoder};
use candle_core::Device;

use crate::audio::ReadOptions;
use crate::error::Result;
pub use crate::models::{DecodeProgress, DecoderKind, ModelSource, STUDENT_DIR};
use crate::models::{Loaded, ModelFamily};
pub use blend::{Embedding, Weights, XyMode, blend, xy_weights};
pub use cache::Cache;
pub use prepare::{Prepared, pitch_shift, prepare_note, sounding_pitch};
pub use render::RenderOptions;
pub use sources::{NoteSpec, Sources};

/// The largest pitch shift applied to reach a blend's pitch. Beyond two octaves a
/// resampled note is mostly artefact (and formants move with it); pick another note.
pub const MAX_SHIFT_SEMITONES: i32 = 24;

/// The pitches a pitched model is asked to play: the piano's range, A0 to C8.
pub const PITCH_RANGE: std::ops::RangeInclusive<f32> = 21.0..=108.0;

/// The pitch a voice is decoded at by a model with an excitation: MIDI (fractional
/// values are cents), moving from `start` at the first sample to `end` at the last,
/// linearly in semitones (a glide; `start == end` holds the note).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Glide {
    pub start: f32,
    pub end: f32,
}

impl Glide {
    /// A held note.
    pub fn at(pitch: f32) -> Self {
        Self {
            start: pitch,
            end: pitch,
        }
    }

    /// The f0 in Hz of each of `samples` samples.
    pub fn f0_curve(&self, samples: usize) -> Vec<f32> {
        let span = samples.saturating_sub(1).max(1) as f32;
        (0..samples)
            .map(|t| {
                let pitch = self.start + (self.end - self.start) * t as f32 / span;
                autoencoder::excitation::midi_to_hz(pitch)
            })
            .collect()
    }

    /// Whether both ends lie in [`PITCH_RANGE`].
    pub fn in_range(&self) -> bool {
        PITCH_RANGE.contains(&self.start) && PITCH_RANGE.contains(&self.end)
    }
}

/// A loaded model ready to encode and decode.
#[derive(Debug)]
pub struct Engine {
    family: Arc<dyn ModelFamily>,
    /// What decodes (the family's generator for the model's device).
    generator: Box<dyn Generator>,
    /// Whether `generator` is a tensor (GPU-style) one that wants wide batches.
    tensors: bool,
    name: String,
    identity: String,
    threads: usize,
    cache: Option<Cache>,
    /// Whether [`Engine::sources`] keeps the sources' levels so a blend can be brought to
    /// them ([`Sources::match_level`]).
    level_match: bool,
}

impl Engine {
    /// Whether decoding goes through the tensor decoder (a GPU's; it wants wide batches).
    pub fn uses_tensor_decoder(&self) -> bool {
        self.tensors
    }

    /// Decodes with the tensor decoder on `device` whatever the model's device (the
    /// GPU's decoder; on the CPU device, for tests and comparisons). A student renders
    /// through candle's tensors (as on a GPU) instead of `CpuStudent`, on its own device.
    pub fn with_tensor_decoder(mut self, device: &Device) -> Result<Self> {
        self.generator = Arc::clone(&self.family).tensor_generator(device)?;
        self.tensors = true;
        Ok(self)
    }

    /// Loads the model (see [`crate::models::open`] for which `kind` plays what) and
    /// repacks its decoder; threads default to every core; the cache to the user's (see
    /// [`Cache::user_default`]).
    pub fn load(source: &ModelSource, kind: Option<DecoderKind>, device: &Device) -> Result<Self> {
        Self::from_loaded(crate::models::open(source, kind, device)?)
    }

    /// An engine on a model already loaded.
    pub fn from_loaded(loaded: Loaded) -> Result<Self> {
        let generator = Arc::clone(&loaded.family).generator()?;
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Self {
            tensors: loaded.family.tensor_decoding(),
            family: loaded.family,
            generator,
            name: loaded.name,
            identity: loaded.identity,
            threads,
            cache: Cache::user_default(),
            level_match: true,
        })
    }

    /// An engine on a model already in memory; `identity` keys its cache entries.
    pub fn new(model: WaveNetAutoencoder, name: String, identity: String) -> Result<Self> {
        Self::on(model, name, identity)
    }

    /// An engine on a Parallel WaveNet student already in memory (rendered by
    /// `CpuStudent` where it lives on the CPU).
    pub fn with_student(model: StudentAutoencoder, name: String, identity: String) -> Result<Self> {
        Self::on(model, name, identity)
    }

    /// An engine on a SampleRNN already in memory.
    pub fn with_samplernn(model: SampleRnn, name: String, identity: String) -> Result<Self> {
        Self::on(model, name, identity)
    }

    fn on(model: impl ModelFamily + 'static, name: String, identity: String) -> Result<Self> {
        Self::from_loaded(Loaded {
            family: Arc::new(model),
            name,
            identity,
        })
    }

    /// Which decoder generates.
    pub fn kind(&self) -> DecoderKind {
        self.family.kind()
    }

    /// The model family behind the engine.
    pub fn family(&self) -> &dyn ModelFamily {
        &*self.family
    }

    pub fn with_cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// Whether blends are brought to their sources' level (on unless turned off here;
    /// see [`level`]).
    pub fn with_level_match(mut self, on: bool) -> Self {
        self.level_match = on;
        self
    }

    /// Whether blends are brought to their sources' level: asked for, and the model's
    /// frames do not carry the level themselves (a student with a measured envelope
    /// blends its sources' band amplitudes, the level with them; matching frame levels on
    /// top made its blends quieter, see the student's MODEL.md).
    pub fn level_match(&self) -> bool {
        self.level_match && !self.family.carries_envelope()
    }

    /// The band amplitudes ending each frame (a measured envelope) that follow the pitch
    /// a note is played at (`autoencoder::student::envelope::shift`): the model's
    /// envelope for a model that takes a pitch, none otherwise.
    pub fn envelope_shift_bands(&self) -> usize {
        if self.pitched() {
            self.family.envelope_bands()
        } else {
            0
        }
    }

    /// The band amplitudes ending each frame that a blend brings to its sources' loudness
    /// instead ([`loudness`]): the model's measured envelope's, with level matching asked
    /// for; else 0.
    pub fn loudness_bands(&self) -> usize {
        if self.level_match {
            self.family.envelope_bands()
        } else {
            0
        }
    }

    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The encoder's shape (the `ae_*` keys; for a student, its encoder's).
    pub fn encoder_config(&self) -> &Config {
        self.family.encoder_config()
    }

    /// The autoregressive model, where that is what generates.
    pub fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        self.family.autoencoder()
    }

    /// The Parallel WaveNet student, where that is what generates (what the live engine,
    /// [`crate::live::LiveEngine`], plays).
    pub fn student_model(&self) -> Option<Arc<StudentAutoencoder>> {
        Arc::clone(&self.family).student()
    }

    /// Trainable numbers of the whole model (encoder and decoder or student).
    pub fn parameter_count(&self) -> usize {
        self.family.parameter_count()
    }

    /// Embedding channels per frame (for a student with measured sub-partials, its
    /// encoder's and the measured ones).
    pub fn bottleneck(&self) -> usize {
        self.generator.bottleneck()
    }

    /// Whether the embedding frames hold measurements of the note taken at its pitch (a
    /// student with measured sub-partials): then [`Engine::encode`] needs each pitched
    /// note's pitch.
    pub fn measures_pitch(&self) -> bool {
        self.family.measures_pitch()
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn cache(&self) -> Option<&Cache> {
        self.cache.as_ref()
    }

    /// What decodes: the CPU decoder and its instruction set, or the GPU; or the
    /// student and where it runs.
    pub fn decoder_description(&self) -> String {
        format!(
            "{}, {}",
            self.family.describe(),
            self.generator.describe(self.threads)
        )
    }

    /// The hop of the embedding frames, in samples.
    pub fn hop(&self) -> usize {
        self.family.hop()
    }

    /// Whether the model takes the pitch to play (has an excitation): then sources are
    /// encoded at their own pitch and [`Engine::decode_at`] is given the target pitch.
    pub fn pitched(&self) -> bool {
        self.generator.excitation_channels() > 0
    }

    /// Reads a source for a blend at `pitch`: a sound file, or a sample-pack folder from
    /// which the note nearest `pitch` is taken (nearest C4 without a pitch). A pitched
    /// note that is not at `pitch` is shifted by resampling (at most two octaves).
    pub fn prepare(
        &self,
        source: &Path,
        pitch: Option<u8>,
        options: ReadOptions,
    ) -> Result<Prepared> {
        self.prepare_at(source, pitch, None, options)
    }

    /// [`Engine::prepare`], preferring among a pack's notes at the nearest pitch the one
    /// whose velocity is nearest `velocity` (velocity layers differ in timbre, not just level).
    pub fn prepare_at(
        &self,
        source: &Path,
        pitch: Option<u8>,
        velocity: Option<u8>,
        options: ReadOptions,
    ) -> Result<Prepared> {
        prepare_note(
            source,
            pitch,
            velocity,
            options,
            !self.pitched(),
            self.hop(),
        )
    }
}
