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
pub mod grid;
pub mod level;
pub mod npy;
pub mod prepare;
pub mod render;
pub mod samplernn;
pub mod sources;
pub mod stretch;
pub mod student;

pub use batches::{Batches, Progress};

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoencoder::samplernn::{SampleRnn, SampleRnnGenerator};
use autoencoder::student::StudentAutoencoder;
use autoencoder::student::generate::StudentGenerator;
use autoencoder::wavenet::cpu::CpuGenerator;
use autoencoder::{
    Config, Control, Generator, Request, Sampling, TensorGenerator, WaveNetAutoencoder, mulaw,
};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::audio::ReadOptions;
use crate::error::{Error, Result};
use crate::{default_model, model_dir};
pub use blend::{Embedding, Weights, XyMode, blend, xy_weights};
pub use cache::Cache;
pub use prepare::{Prepared, pitch_shift, prepare_note, sounding_pitch};
pub use render::RenderOptions;
pub use sources::{NoteSpec, Sources};

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

/// The model family whose encoder reads the sources (its generator decodes).
#[derive(Debug)]
enum Family {
    /// The WaveNet autoencoder: its decoder generates sample by sample.
    WaveNet(Arc<WaveNetAutoencoder>),
    /// A Parallel WaveNet student with its own encoder: whole notes at once.
    Student(Arc<StudentAutoencoder>),
    /// A SampleRNN with its own encoder: sample by sample, tiers once per frame.
    SampleRnn(Arc<SampleRnn>),
}

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
    family: Family,
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

/// An encoded note and whether the cache had it.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub embedding: Embedding,
    pub cached: bool,
}

impl Engine {
    /// Whether decoding goes through the tensor decoder (a GPU's; it wants wide batches).
    pub fn uses_tensor_decoder(&self) -> bool {
        self.tensors
    }

    /// Decodes with the tensor decoder on `device` whatever the model's device (the
    /// GPU's decoder; on the CPU device, for tests and comparisons). A student renders
    /// through candle's tensors (as on a GPU) instead of [`CpuStudent`], on its own device.
    pub fn with_tensor_decoder(mut self, device: &Device) -> Result<Self> {
        self.generator = match &self.family {
            Family::WaveNet(model) => Box::new(TensorGenerator::new(model, device)?),
            Family::Student(model) => Box::new(StudentGenerator::with_tensors(Arc::clone(model))),
            Family::SampleRnn(_) => {
                return Err(Error::invalid(
                    Path::new("samplernn"),
                    "SampleRNN has no tensor decoder: it generates on the CPU",
                ));
            }
        };
        self.tensors = true;
        Ok(self)
    }

    /// Loads the model and repacks its decoder; threads default to every core; the cache
    /// to the user's (see [`Cache::user_default`]).
    ///
    /// `kind` picks the decoder: the default model plays with
    /// [`default_model::DEFAULT_DECODER`] unless told otherwise; a model directory with
    /// the student in its `student/` folder where it has one (as the default model's own
    /// folder does), else with its autoregressive decoder, unless told otherwise; a
    /// student's own directory only plays in parallel.
    pub fn load(source: &ModelSource, kind: Option<DecoderKind>, device: &Device) -> Result<Self> {
        match source {
            ModelSource::Default => match kind.unwrap_or(default_model::DEFAULT_DECODER) {
                DecoderKind::Autoregressive => {
                    let model = default_model::load(device)?;
                    let identity = model_dir::identity(model.config(), default_model::WEIGHTS);
                    Self::new(model, default_model::NAME.to_string(), identity)
                }
                DecoderKind::Parallel => {
                    let model = default_model::load_student(device)?;
                    let identity =
                        model_dir::identity(model.config(), default_model::STUDENT_WEIGHTS);
                    Self::with_student(model, default_model::STUDENT_NAME.to_string(), identity)
                }
                DecoderKind::SampleRnn => Err(Error::invalid(
                    Path::new(default_model::NAME),
                    "the default model has no SampleRNN; train one and give its directory",
                )),
            },
            ModelSource::Dir(dir) => {
                if samplernn::is_samplernn(dir) {
                    return match kind {
                        None | Some(DecoderKind::SampleRnn) => Self::load_samplernn(dir, device),
                        Some(_) => Err(Error::invalid(
                            dir,
                            "this is a SampleRNN: it plays with the samplernn decoder only",
                        )),
                    };
                }
                if kind == Some(DecoderKind::SampleRnn) {
                    let beside = dir.join(samplernn::SAMPLERNN_DIR);
                    if !samplernn::is_samplernn(&beside) {
                        return Err(Error::invalid(
                            dir,
                            format!(
                                "no SampleRNN in this directory or beside it (none in {}/)",
                                samplernn::SAMPLERNN_DIR
                            ),
                        ));
                    }
                    return Self::load_samplernn(&beside, device);
                }
                let is_student = student::is_student(dir);
                let beside = dir.join(STUDENT_DIR);
                match (kind, is_student) {
                    (Some(DecoderKind::Autoregressive), true) => Err(Error::invalid(
                        dir,
                        "this is a Parallel WaveNet student: it has no autoregressive decoder",
                    )),
                    (_, true) => Self::load_student(dir, device),
                    (None, false) if student::is_student(&beside) => {
                        Self::load_student(&beside, device)
                    }
                    (Some(DecoderKind::Parallel), false) => {
                        if !student::is_student(&beside) {
                            return Err(Error::invalid(
                                dir,
                                format!(
                                    "no Parallel WaveNet student beside this model (none in {STUDENT_DIR}/)"
                                ),
                            ));
                        }
                        Self::load_student(&beside, device)
                    }
                    (_, false) => {
                        let loaded = model_dir::load(dir, device)?;
                        Self::new(loaded.model, dir.display().to_string(), loaded.identity)
                    }
                }
            }
        }
    }

    fn load_samplernn(dir: &Path, device: &Device) -> Result<Self> {
        let (model, identity) = samplernn::load(dir, device)?;
        Self::with_samplernn(model, dir.display().to_string(), identity)
    }

    /// An engine on a SampleRNN already in memory.
    pub fn with_samplernn(model: SampleRnn, name: String, identity: String) -> Result<Self> {
        let generator = SampleRnnGenerator::new(&model)?;
        Ok(Self::assemble(
            Family::SampleRnn(Arc::new(model)),
            Box::new(generator),
            false,
            name,
            identity,
        ))
    }

    fn load_student(dir: &Path, device: &Device) -> Result<Self> {
        let (model, identity) = crate::train::student::load_identified(dir, device)?;
        Self::with_student(model, format!("{} (student)", dir.display()), identity)
    }

    /// An engine on a model already in memory; `identity` keys its cache entries.
    pub fn new(model: WaveNetAutoencoder, name: String, identity: String) -> Result<Self> {
        let generator = wavenet_generator(&model)?;
        let tensors = !matches!(model.device(), Device::Cpu);
        Ok(Self::assemble(
            Family::WaveNet(Arc::new(model)),
            generator,
            tensors,
            name,
            identity,
        ))
    }

    /// An engine on a Parallel WaveNet student already in memory (rendered by
    /// [`CpuStudent`] where it lives on the CPU).
    pub fn with_student(model: StudentAutoencoder, name: String, identity: String) -> Result<Self> {
        let model = Arc::new(model);
        let generator = StudentGenerator::new(Arc::clone(&model))?;
        let tensors = !generator.on_cpu();
        Ok(Self::assemble(
            Family::Student(model),
            Box::new(generator),
            tensors,
            name,
            identity,
        ))
    }

    fn assemble(
        family: Family,
        generator: Box<dyn Generator>,
        tensors: bool,
        name: String,
        identity: String,
    ) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            family,
            generator,
            tensors,
            name,
            identity,
            threads,
            cache: Cache::user_default(),
            level_match: true,
        }
    }

    /// Which decoder generates.
    pub fn kind(&self) -> DecoderKind {
        match self.family {
            Family::WaveNet(_) => DecoderKind::Autoregressive,
            Family::Student(_) => DecoderKind::Parallel,
            Family::SampleRnn(_) => DecoderKind::SampleRnn,
        }
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

    pub fn level_match(&self) -> bool {
        self.level_match
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
        match &self.family {
            Family::WaveNet(model) => model.config(),
            Family::Student(student) => &student.config().encoder,
            Family::SampleRnn(model) => &model.config().encoder,
        }
    }

    /// The autoregressive model, where that is what generates.
    pub fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        match &self.family {
            Family::WaveNet(model) => Some(model),
            Family::Student(_) | Family::SampleRnn(_) => None,
        }
    }

    /// The Parallel WaveNet student, where that is what generates (what the live engine,
    /// [`crate::live::LiveEngine`], plays).
    pub fn student_model(&self) -> Option<Arc<StudentAutoencoder>> {
        match &self.family {
            Family::Student(model) => Some(Arc::clone(model)),
            Family::WaveNet(_) | Family::SampleRnn(_) => None,
        }
    }

    /// Trainable numbers of the whole model (encoder and decoder or student).
    pub fn parameter_count(&self) -> usize {
        match &self.family {
            Family::WaveNet(model) => model.config().parameter_count(),
            Family::Student(student) => student.parameter_count(),
            Family::SampleRnn(model) => model.config().parameter_count(),
        }
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
        match &self.family {
            Family::Student(student) => student.config().student.measured_subpartials,
            Family::WaveNet(_) | Family::SampleRnn(_) => false,
        }
    }

    fn device(&self) -> &Device {
        match &self.family {
            Family::WaveNet(model) => model.device(),
            Family::Student(student) => student.device(),
            Family::SampleRnn(model) => model.device(),
        }
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
        let what = match self.family {
            Family::WaveNet(_) => "autoregressive",
            Family::Student(_) => "parallel (Parallel WaveNet student)",
            Family::SampleRnn(_) => "SampleRNN",
        };
        format!("{what}, {}", self.generator.describe(self.threads))
    }

    /// The hop of the embedding frames, in samples.
    pub fn hop(&self) -> usize {
        self.encoder_config().ae_hop_length
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

    /// Encodes 16 kHz notes (zero-padded to whole frames), from the cache where it has
    /// them. Notes of equal length are encoded together. `pitches`: each note's own pitch
    /// (MIDI; `None`: unpitched), or empty for all unpitched; a student with measured
    /// sub-partials measures them at it.
    pub fn encode(&self, notes: &[&[f32]], pitches: &[Option<u8>]) -> Result<Vec<Encoded>> {
        let hop = self.hop();
        let channels = self.bottleneck();
        if !pitches.is_empty() && pitches.len() != notes.len() {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "{} pitches for {} notes",
                pitches.len(),
                notes.len()
            ))));
        }
        let pitch = |i: usize| pitches.get(i).copied().flatten();
        let measures = self.measures_pitch();
        let padded: Vec<Vec<f32>> = notes
            .iter()
            .map(|n| {
                let mut n = n.to_vec();
                n.resize(n.len().div_ceil(hop).max(1) * hop, 0.0);
                n
            })
            .collect();
        // What a note encodes to depends on its pitch where the frames measure at it.
        let keys: Vec<String> = padded
            .iter()
            .enumerate()
            .map(|(i, n)| match (measures, pitch(i)) {
                (true, Some(p)) => Cache::key(&format!("{}@{p}", self.identity), n),
                (true, None) => Cache::key(&format!("{}@-", self.identity), n),
                (false, _) => Cache::key(&self.identity, n),
            })
            .collect();
        let mut out: Vec<Option<Encoded>> = keys
            .iter()
            .map(|k| {
                self.cache
                    .as_ref()
                    .and_then(|c| c.get(k, channels))
                    .map(|embedding| Encoded {
                        embedding,
                        cached: true,
                    })
            })
            .collect();
        // The misses, grouped by length, at most 8 at a time (bounded memory).
        let mut misses: Vec<usize> = (0..notes.len()).filter(|&i| out[i].is_none()).collect();
        misses.sort_by_key(|&i| padded[i].len());
        for group in misses.chunk_by(|&a, &b| padded[a].len() == padded[b].len()) {
            for chunk in group.chunks(8) {
                let len = padded[chunk[0]].len();
                let flat: Vec<f32> = chunk
                    .iter()
                    .flat_map(|&i| padded[i].iter().map(|&x| mulaw::scaled(x)))
                    .collect();
                let x = Tensor::from_vec(flat, (chunk.len(), len), self.device())
                    .map_err(autoencoder::Error::from)?;
                let z = match &self.family {
                    Family::WaveNet(model) => model.encode(&x)?,
                    Family::Student(student) if !measures => student.encode(&x, None)?,
                    Family::Student(student) => {
                        let audio: Vec<f32> = chunk
                            .iter()
                            .flat_map(|&i| padded[i].iter().copied())
                            .collect();
                        let audio = Tensor::from_vec(audio, (chunk.len(), len), self.device())
                            .map_err(autoencoder::Error::from)?;
                        let f0: Vec<f32> = chunk
                            .iter()
                            .map(|&i| {
                                pitch(i).map_or(0.0, |p| {
                                    autoencoder::excitation::midi_to_hz(f32::from(p))
                                })
                            })
                            .collect();
                        let s = &student.config().student;
                        let exc = crate::eval::excitation_partials_of(
                            (s.excitation_harmonics, s.excitation_subpartials),
                            self.device(),
                            Some(&f0),
                            len,
                            &[],
                        )?;
                        let measured = student.measure(&audio, exc.as_ref())?;
                        student.encode(&x, measured.as_ref())?
                    }
                    Family::SampleRnn(model) => model.encode(&x)?,
                };
                let z: Vec<f32> = z
                    .to_device(&Device::Cpu)
                    .and_then(|z| z.flatten_all())
                    .and_then(|z| z.to_vec1())
                    .map_err(autoencoder::Error::from)?;
                let frames = len / hop;
                for (&i, data) in chunk.iter().zip(z.chunks_exact(frames * channels)) {
                    let embedding = Embedding {
                        frames,
                        channels,
                        data: data.to_vec(),
                    };
                    if let Some(cache) = &self.cache {
                        // A cache that cannot be written costs time later, not this job.
                        let _ = cache.put(&keys[i], &embedding);
                    }
                    out[i] = Some(Encoded {
                        embedding,
                        cached: false,
                    });
                }
            }
        }
        out.into_iter()
            .map(|e| {
                e.ok_or(Error::Compute(autoencoder::Error::Shape(
                    "a note was not encoded".into(),
                )))
            })
            .collect()
    }

    /// Decodes embeddings into 16 kHz audio, all voices in one batched pass on the
    /// engine's threads. Voice `v` draws from random stream `streams[v]` of
    /// `sampling.seed` (pass `0..n` when unsure). Embeddings of different lengths are
    /// decoded together and each voice's audio is cut to its own length (the decoder is
    /// causal, so what follows a note's end never changes it).
    ///
    /// `progress` is called about every 10 ms; returning `Break` cancels, as does
    /// `control.cancel()` from another thread: either stops the decode with
    /// [`Error::Cancelled`], the CPU decoder before its next sample (well within 50 ms),
    /// the tensor (GPU) decoder before its next frame of 512 samples.
    pub fn decode(
        &self,
        embeddings: &[Embedding],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        self.decode_at(embeddings, &[], streams, sampling, control, progress)
    }

    /// [`Engine::decode`] with the pitch each voice is to play: `pitches[v]` for voice
    /// `v` (`None`, or a voice past the end of `pitches`: unpitched). Models without an
    /// excitation cannot take a pitch and say so.
    pub fn decode_at(
        &self,
        embeddings: &[Embedding],
        pitches: &[Option<Glide>],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let channels = self.bottleneck();
        if pitches.iter().any(Option::is_some) && !self.pitched() {
            return Err(Error::Pitch(format!(
                "the model {} has no excitation, so its decoder cannot be given a pitch (its sources are resampled instead)",
                self.name
            )));
        }
        if let Some(bad) = pitches.iter().flatten().find(|g| !g.in_range()) {
            return Err(Error::Pitch(format!(
                "pitch {}..{} is outside what the model plays (MIDI {} to {})",
                bad.start,
                bad.end,
                PITCH_RANGE.start(),
                PITCH_RANGE.end()
            )));
        }
        if embeddings.is_empty() {
            return Ok(Vec::new());
        }
        if streams.len() != embeddings.len() {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "{} random streams for {} voices",
                streams.len(),
                embeddings.len()
            ))));
        }
        if let Some(bad) = embeddings
            .iter()
            .find(|e| e.channels != channels || e.frames == 0)
        {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "this model decodes embeddings of {channels} channels, got {} × {}",
                bad.frames, bad.channels
            ))));
        }
        let frames = embeddings.iter().map(|e| e.frames).max().unwrap_or(0);
        let mut encoding = Vec::with_capacity(embeddings.len() * frames * channels);
        for e in embeddings {
            encoding.extend_from_slice(&e.data);
            for _ in e.frames..frames {
                encoding.extend_from_slice(e.frame(e.frames - 1));
            }
        }
        let samples = frames * self.hop();
        let curves: Option<Vec<f32>> = pitches.iter().any(Option::is_some).then(|| {
            embeddings
                .iter()
                .enumerate()
                .flat_map(|(v, e)| match pitches.get(v).copied().flatten() {
                    Some(glide) => {
                        // The glide spans the voice's own length; the padding holds its end.
                        let mut curve = glide.f0_curve(e.frames * self.hop());
                        let end = curve.last().copied().unwrap_or(0.0);
                        curve.resize(samples, end);
                        curve
                    }
                    None => vec![0.0; samples],
                })
                .collect()
        });
        let request = Request {
            encoding: &encoding,
            f0: curves.as_deref(),
            streams,
            sampling,
            threads: self.threads,
        };
        let mut audio = run_generator(&*self.generator, &request, control, progress)?;
        for (a, e) in audio.iter_mut().zip(embeddings) {
            a.truncate(e.frames * self.hop());
        }
        Ok(audio)
    }
}

/// The WaveNet's generator for the device its tensors live on: the fast CPU decoder on
/// the CPU, the tensor decoder ([`TensorGenerator`]) on a GPU, where a per-sample step of
/// whole-batch operations pays for its kernel launches once the batch is wide.
pub fn wavenet_generator(model: &WaveNetAutoencoder) -> Result<Box<dyn Generator>> {
    Ok(match model.device() {
        Device::Cpu => Box::new(CpuGenerator::new(model)?),
        gpu => Box::new(TensorGenerator::new(model, gpu)?),
    })
}

/// Runs `generator` on a worker thread while this one reports progress every ~10 ms
/// (from `control`'s sample count) and relays cancellation: every family the same way.
pub fn run_generator(
    generator: &dyn Generator,
    request: &Request<'_>,
    control: &Control,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Vec<Vec<f32>>> {
    let total =
        (request.encoding.len() / generator.bottleneck().max(1) * generator.hop_length()) as u64;
    let started = Instant::now();
    let report = |done: u64| {
        let elapsed = started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        Progress {
            done,
            total,
            samples_per_s: rate,
            eta_secs: (done > 0).then(|| total.saturating_sub(done) as f64 / rate),
            elapsed_secs: elapsed,
        }
    };
    let audio = std::thread::scope(|scope| {
        let job = scope.spawn(|| generator.generate(request, control));
        while !job.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
            if progress(&report(control.samples().min(total))).is_break() {
                control.cancel();
            }
        }
        job.join()
            .unwrap_or(Err(autoencoder::Error::Panicked("the decoder")))
    })?;
    let _ = progress(&report(total));
    Ok(audio)
}
