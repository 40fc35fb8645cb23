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

pub mod blend;
pub mod cache;
pub mod grid;
pub mod npy;
pub mod render;
pub mod sources;
pub mod stretch;
pub mod student;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use autoencoder::cpu::{Control, CpuDecoder};
use autoencoder::student::StudentAutoencoder;
use autoencoder::student::cpu::CpuStudent;
use autoencoder::{Config, Sampling, TensorGenerator, WaveNetAutoencoder, mulaw};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::audio::{ReadOptions, SAMPLE_RATE_HZ, read_note, resample};
use crate::error::{Error, Result};
use crate::pitch::midi_name;
use crate::{default_model, model_dir, pack};
pub use blend::{Embedding, Weights, XyMode, blend, xy_weights};
pub use cache::Cache;
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
}

impl DecoderKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Autoregressive => "autoregressive",
            Self::Parallel => "parallel",
        }
    }
}

/// Where a model directory keeps its Parallel WaveNet student.
pub const STUDENT_DIR: &str = "student";

/// What generates: the autoregressive WaveNet and its fast generator, or a student.
#[derive(Debug)]
enum Voice {
    Autoregressive {
        model: Box<WaveNetAutoencoder>,
        decoder: Decoder,
    },
    Parallel {
        model: Box<StudentAutoencoder>,
        /// The flows repacked for the CPU (a student on the CPU device).
        cpu: Option<CpuStudent>,
    },
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
    voice: Voice,
    name: String,
    identity: String,
    threads: usize,
    cache: Option<Cache>,
}

/// Progress of a decode, as handed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    /// Samples generated, summed over voices.
    pub done: u64,
    pub total: u64,
    /// Aggregate samples per second so far.
    pub samples_per_s: f64,
    pub eta_secs: Option<f64>,
    pub elapsed_secs: f64,
}

/// A source note made ready for encoding.
#[derive(Debug, Clone, Serialize)]
pub struct Prepared {
    /// The sound file used (for a pack: the note picked from it).
    pub file: PathBuf,
    /// 16 kHz mono at the requested pitch; a multiple of the hop long (zero-padded).
    #[serde(skip)]
    pub samples: Vec<f32>,
    /// Samples before that padding: the note's own length.
    pub length: usize,
    /// The note's own pitch (from its name, else detected), if it has one.
    pub pitch: Option<u8>,
    /// Semitones it was shifted by to reach the requested pitch (0: none).
    pub shift_semitones: i32,
}

impl Prepared {
    /// One line for the user about what was taken and whether it was shifted.
    pub fn describe(&self) -> String {
        let name = self.file.display();
        match (self.pitch, self.shift_semitones) {
            (Some(p), 0) => format!("{name} ({})", midi_name(p)),
            (Some(p), s) => format!(
                "{name} ({} shifted {s:+} semitones to {} by resampling)",
                midi_name(p),
                midi_name((i32::from(p) + s) as u8)
            ),
            (None, _) => format!("{name} (unpitched, used as is)"),
        }
    }
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
        matches!(
            self.voice,
            Voice::Autoregressive {
                decoder: Decoder::Device(_),
                ..
            } | Voice::Parallel { cpu: None, .. }
        )
    }

    /// Decodes with the tensor decoder on `device` whatever the model's device (the
    /// GPU's decoder; on the CPU device, for tests and comparisons). A student renders
    /// through candle's tensors (as on a GPU) instead of [`CpuStudent`], on its own device.
    pub fn with_tensor_decoder(mut self, device: &Device) -> Result<Self> {
        match &mut self.voice {
            Voice::Autoregressive { model, decoder } => {
                *decoder = Decoder::Device(TensorGenerator::new(model, device)?);
            }
            Voice::Parallel { cpu, .. } => *cpu = None,
        }
        Ok(self)
    }

    /// Loads the model and repacks its decoder; threads default to every core; the cache
    /// to the user's (see [`Cache::user_default`]).
    ///
    /// `kind` picks the decoder: the default model plays with
    /// [`default_model::DEFAULT_DECODER`] unless told otherwise; a model directory with
    /// its autoregressive decoder unless asked for `Parallel`, which takes the student in
    /// its `student/` folder; a student's own directory only plays in parallel.
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
            },
            ModelSource::Dir(dir) => {
                let is_student = student::is_student(dir);
                match (kind, is_student) {
                    (Some(DecoderKind::Autoregressive), true) => Err(Error::invalid(
                        dir,
                        "this is a Parallel WaveNet student: it has no autoregressive decoder",
                    )),
                    (_, true) => Self::load_student(dir, device),
                    (Some(DecoderKind::Parallel), false) => {
                        let beside = dir.join(STUDENT_DIR);
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

    fn load_student(dir: &Path, device: &Device) -> Result<Self> {
        let (model, identity) = crate::train::student::load_identified(dir, device)?;
        Self::with_student(model, format!("{} (student)", dir.display()), identity)
    }

    /// An engine on a model already in memory; `identity` keys its cache entries.
    pub fn new(model: WaveNetAutoencoder, name: String, identity: String) -> Result<Self> {
        let decoder = Decoder::for_device(&model, model.device())?;
        Ok(Self::assemble(
            Voice::Autoregressive {
                model: Box::new(model),
                decoder,
            },
            name,
            identity,
        ))
    }

    /// An engine on a Parallel WaveNet student already in memory (rendered by
    /// [`CpuStudent`] where it lives on the CPU).
    pub fn with_student(model: StudentAutoencoder, name: String, identity: String) -> Result<Self> {
        let cpu = match model.device() {
            Device::Cpu => Some(CpuStudent::new(model.student())?),
            _ => None,
        };
        Ok(Self::assemble(
            Voice::Parallel {
                model: Box::new(model),
                cpu,
            },
            name,
            identity,
        ))
    }

    fn assemble(voice: Voice, name: String, identity: String) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            voice,
            name,
            identity,
            threads,
            cache: Cache::user_default(),
        }
    }

    /// Which decoder generates.
    pub fn kind(&self) -> DecoderKind {
        match self.voice {
            Voice::Autoregressive { .. } => DecoderKind::Autoregressive,
            Voice::Parallel { .. } => DecoderKind::Parallel,
        }
    }

    pub fn with_cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache;
        self
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
        match &self.voice {
            Voice::Autoregressive { model, .. } => model.config(),
            Voice::Parallel { model: student, .. } => &student.config().encoder,
        }
    }

    /// The autoregressive model, where that is what generates.
    pub fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        match &self.voice {
            Voice::Autoregressive { model, .. } => Some(model),
            Voice::Parallel { .. } => None,
        }
    }

    /// Trainable numbers of the whole model (encoder and decoder or student).
    pub fn parameter_count(&self) -> usize {
        match &self.voice {
            Voice::Autoregressive { model, .. } => model.config().parameter_count(),
            Voice::Parallel { model: student, .. } => student.parameter_count(),
        }
    }

    /// Embedding channels per frame.
    pub fn bottleneck(&self) -> usize {
        self.encoder_config().ae_bottleneck_width
    }

    fn device(&self) -> &Device {
        match &self.voice {
            Voice::Autoregressive { model, .. } => model.device(),
            Voice::Parallel { model: student, .. } => student.device(),
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
        match &self.voice {
            Voice::Autoregressive { decoder, .. } => {
                format!("autoregressive, {}", decoder.describe(self.threads))
            }
            Voice::Parallel {
                model: student,
                cpu,
            } => format!(
                "parallel (Parallel WaveNet student), {}",
                match cpu {
                    Some(_) => format!("CPU, {} threads", self.threads),
                    None => crate::device::describe(student.device()).to_string(),
                }
            ),
        }
    }

    /// The hop of the embedding frames, in samples.
    pub fn hop(&self) -> usize {
        self.encoder_config().ae_hop_length
    }

    /// Whether the model takes the pitch to play (has an excitation): then sources are
    /// encoded at their own pitch and [`Engine::decode_at`] is given the target pitch.
    pub fn pitched(&self) -> bool {
        match &self.voice {
            Voice::Autoregressive { model, .. } => model.config().pitched(),
            Voice::Parallel { model: student, .. } => {
                student.config().student.excitation_harmonics > 0
            }
        }
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
    /// them. Notes of equal length are encoded together.
    pub fn encode(&self, notes: &[&[f32]]) -> Result<Vec<Encoded>> {
        let hop = self.hop();
        let channels = self.bottleneck();
        let padded: Vec<Vec<f32>> = notes
            .iter()
            .map(|n| {
                let mut n = n.to_vec();
                n.resize(n.len().div_ceil(hop).max(1) * hop, 0.0);
                n
            })
            .collect();
        let keys: Vec<String> = padded
            .iter()
            .map(|n| Cache::key(&self.identity, n))
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
                let z = match &self.voice {
                    Voice::Autoregressive { model, .. } => model.encode(&x)?,
                    Voice::Parallel { model: student, .. } => student.encode(&x)?,
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
        let mut audio = match &self.voice {
            Voice::Autoregressive { decoder, .. } => run_decoder(
                decoder,
                self.threads,
                &encoding,
                curves.as_deref(),
                streams,
                sampling,
                control,
                progress,
            )?,
            Voice::Parallel { model, cpu } => student::render(
                model,
                cpu.as_ref(),
                self.threads,
                &encoding,
                curves.as_deref(),
                streams,
                sampling.seed,
                control,
                progress,
            )?,
        };
        for (a, e) in audio.iter_mut().zip(embeddings) {
            a.truncate(e.frames * self.hop());
        }
        Ok(audio)
    }
}

/// What decodes: the fast CPU decoder on the CPU, the tensor decoder
/// ([`TensorGenerator`]) on a GPU, where a per-sample step of whole-batch operations
/// pays for its kernel launches once the batch is wide.
#[derive(Debug)]
pub enum Decoder {
    Cpu(Box<CpuDecoder>),
    Device(TensorGenerator),
}

impl Decoder {
    /// The decoder for a model whose tensors live on `device`.
    pub fn for_device(model: &WaveNetAutoencoder, device: &Device) -> Result<Self> {
        Ok(match device {
            Device::Cpu => Self::Cpu(Box::new(CpuDecoder::new(model)?)),
            gpu => Self::Device(TensorGenerator::new(model, gpu)?),
        })
    }

    pub fn hop_length(&self) -> usize {
        match self {
            Self::Cpu(d) => d.hop_length(),
            Self::Device(d) => d.hop_length(),
        }
    }

    pub fn bottleneck(&self) -> usize {
        match self {
            Self::Cpu(d) => d.bottleneck(),
            Self::Device(d) => d.bottleneck(),
        }
    }

    /// Generates every voice (see [`CpuDecoder::generate_streams`]); `threads` is for the
    /// CPU decoder.
    /// `f0` is each voice's f0 curve `[voice][sample]` in Hz, for models with an
    /// excitation (others ignore it); `None` plays them unpitched.
    #[allow(clippy::too_many_arguments)]
    pub fn generate_streams(
        &self,
        encoding: &[f32],
        f0: Option<&[f32]>,
        streams: &[u64],
        sampling: Sampling,
        threads: usize,
        control: &Control,
    ) -> autoencoder::Result<Vec<Vec<f32>>> {
        match self {
            Self::Cpu(d) => {
                d.generate_streams_f0(encoding, f0, streams, sampling, threads, control)
            }
            Self::Device(d) => d.generate_streams_f0(encoding, f0, streams, sampling, control),
        }
    }

    /// Whether the model takes an f0 curve (has an excitation).
    pub fn pitched(&self) -> bool {
        match self {
            Self::Cpu(d) => d.excitation_channels() > 0,
            Self::Device(d) => d.excitation_channels() > 0,
        }
    }

    /// For status lines: "CPU (avx2+fma, 2 threads)" or "CUDA GPU (tensor decoder)".
    pub fn describe(&self, threads: usize) -> String {
        match self {
            Self::Cpu(d) => format!("CPU ({}, {threads} threads)", d.isa().name()),
            Self::Device(d) => format!("{} (tensor decoder)", crate::device::describe(d.device())),
        }
    }
}

/// Runs `decoder` on `encoding` (`[voice][frame][bottleneck]`, one voice per stream) and
/// the voices' f0 curves (see [`Decoder::generate_streams`]) on a worker thread while
/// this one reports progress every ~10 ms and relays cancellation.
#[allow(clippy::too_many_arguments)]
pub fn run_decoder(
    decoder: &Decoder,
    threads: usize,
    encoding: &[f32],
    f0: Option<&[f32]>,
    streams: &[u64],
    sampling: Sampling,
    control: &Control,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Vec<Vec<f32>>> {
    let total = (encoding.len() / decoder.bottleneck().max(1) * decoder.hop_length()) as u64;
    let started = Instant::now();
    let audio = std::thread::scope(|scope| {
        let job = scope
            .spawn(|| decoder.generate_streams(encoding, f0, streams, sampling, threads, control));
        while !job.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
            let elapsed = started.elapsed().as_secs_f64();
            let done = control.samples();
            let rate = done as f64 / elapsed.max(1e-9);
            let report = Progress {
                done,
                total,
                samples_per_s: rate,
                eta_secs: (done > 0).then(|| (total - done.min(total)) as f64 / rate),
                elapsed_secs: elapsed,
            };
            if progress(&report).is_break() {
                control.cancel();
            }
        }
        job.join()
            .unwrap_or_else(|_| Err(autoencoder::Error::Shape("the decoder panicked".into())))
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let _ = progress(&Progress {
        done: total,
        total,
        samples_per_s: total as f64 / elapsed.max(1e-9),
        eta_secs: Some(0.0),
        elapsed_secs: elapsed,
    });
    Ok(audio)
}

/// Reads a source: a sound file, or the note of a sample-pack folder nearest `pitch`
/// (and `velocity`; C4 without a pitch), zero-padded to whole frames of `hop`. With
/// `resample`, a pitched note not at `pitch` is shifted to it (at most two octaves);
/// without, it is used at its own pitch (a model that takes the pitch to play).
pub fn prepare_note(
    source: &Path,
    pitch: Option<u8>,
    velocity: Option<u8>,
    options: ReadOptions,
    resample: bool,
    hop: usize,
) -> Result<Prepared> {
    let (file, note_pitch) = if source.is_dir() {
        let scan = pack::scan(source, options)?;
        let want = pitch.unwrap_or(60);
        match scan.nearest_at(want, velocity) {
            Some((file, info)) => (scan.root.join(file), info.pitch.midi()),
            None => {
                // No pitched note: an unpitched one (a drum kit) is used as is.
                let (file, info) = scan
                    .notes()
                    .next()
                    .ok_or_else(|| Error::invalid(source, "the folder holds no readable notes"))?;
                (scan.root.join(file), info.pitch.midi())
            }
        }
    } else {
        let info = pack::describe(source, options)?;
        (source.to_path_buf(), info.pitch.midi())
    };
    let note = read_note(&file, options)?;
    // A model with an excitation plays the note at the pitch its decoder is given:
    // the source is encoded at its own pitch, not resampled.
    let shift = match (pitch, note_pitch) {
        (Some(want), Some(have)) if resample => i32::from(want) - i32::from(have),
        _ => 0,
    };
    if shift.abs() > MAX_SHIFT_SEMITONES {
        return Err(Error::invalid(
            &file,
            format!(
                "the nearest note is {} semitones from the requested pitch (at most {MAX_SHIFT_SEMITONES} are shifted); add notes nearer it",
                shift.abs()
            ),
        ));
    }
    let mut samples = if shift == 0 {
        note.samples
    } else {
        pitch_shift(&note.samples, shift).map_err(|e| Error::invalid(&file, e))?
    };
    let length = samples.len();
    samples.resize(samples.len().div_ceil(hop).max(1) * hop, 0.0);
    Ok(Prepared {
        file,
        samples,
        length,
        pitch: note_pitch,
        shift_semitones: shift,
    })
}

/// Shifts a 16 kHz note by `semitones` by resampling (as a sampler does: up is shorter,
/// down is longer). The rate ratio is rounded to 10 Hz steps of the source rate, within
/// 0.6 cents of exact, which keeps the resampler's FFT sizes small.
pub fn pitch_shift(samples: &[f32], semitones: i32) -> std::result::Result<Vec<f32>, String> {
    let ratio = 2f64.powf(f64::from(semitones) / 12.0);
    let from = ((f64::from(SAMPLE_RATE_HZ) * ratio / 10.0).round() * 10.0) as u32;
    resample(samples, from, SAMPLE_RATE_HZ)
}

/// The pitch a prepared note sounds at, if known.
pub fn sounding_pitch(p: &Prepared) -> Option<u8> {
    p.pitch
        .map(|m| (i32::from(m) + p.shift_semitones).clamp(0, 127) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pitch_shift_moves_the_pitch() {
        let a4: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let up = pitch_shift(&a4, 2).unwrap();
        assert!((up.len() as f32 - 16_000.0 / 2f32.powf(2.0 / 12.0)).abs() < 2.0);
        assert_eq!(crate::pitch::detect(&up).midi(), Some(71));
        let down = pitch_shift(&a4, -12).unwrap();
        assert_eq!(down.len(), 32_000);
        assert_eq!(crate::pitch::detect(&down).midi(), Some(57));
    }
}
