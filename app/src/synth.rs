//! The synthesizer's commands: `reconstruct`, `blend`, `grid`, `encode`, `decode`.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use autoencoder::Control;
use autoencoder::Sampling;
use engine::audio::wav::WavFormat;
use engine::audio::{DEFAULT_MAX_SECS, ReadOptions, SAMPLE_RATE_HZ};
use engine::fsutil::Overwrite;
use engine::synth::grid::{self, GridSpec};
use engine::synth::render::{self, Finished, RenderOptions};
use engine::synth::{
    DecoderKind, Embedding, Engine, Glide, ModelSource, NoteSpec, PITCH_RANGE, Prepared, Progress,
    Weights, XyMode, npy,
};
use serde::Serialize;

use crate::output::Output;

/// Flags every synthesis command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Model directory (config.json + weights.safetensors), or a Parallel WaveNet
    /// student's (student.json + weights.safetensors); default: the embedded model.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// How notes are generated: autoregressive (the WaveNet decoder, sample by sample) or
    /// parallel (the Parallel WaveNet student beside the model, in its student/ folder,
    /// every sample at once). Default: parallel for the embedded model while its student
    /// plays better; autoregressive for a model directory.
    #[arg(long, value_enum)]
    pub decoder: Option<DecoderArg>,
    /// Seed of the decoder's random draws: the same seed gives the same audio.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Softmax temperature: 1 samples the model as trained, lower is cleaner but duller,
    /// 0 always takes the most likely sample.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// Sample format of written WAVs.
    #[arg(long, value_enum, default_value_t = FormatArg::S16)]
    pub format: FormatArg,
    /// Sample rate of written WAVs: 16000 (the model's), 44100 or 48000.
    #[arg(long, default_value_t = SAMPLE_RATE_HZ)]
    pub rate: u32,
    /// Cut the silence at the end of generated notes.
    #[arg(long)]
    pub trim: bool,
    /// Fade-out at the end of generated notes, in milliseconds.
    #[arg(long, default_value_t = 20.0, value_name = "MS")]
    pub fade_ms: f32,
    /// Replace existing output files.
    #[arg(long)]
    pub force: bool,
    /// No progress bar or notes on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// Print a machine-readable summary (JSON) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Decoder threads (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Where the encoder runs: cpu, or cuda on a build with the `cuda` feature (the
    /// decoder runs on the CPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Do not read or write the embedding cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Read at most this many seconds of each source note.
    #[arg(long, default_value_t = DEFAULT_MAX_SECS, value_name = "SECS")]
    pub max_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    S16,
    S24,
    F32,
}

impl From<FormatArg> for WavFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::S16 => WavFormat::S16,
            FormatArg::S24 => WavFormat::S24,
            FormatArg::F32 => WavFormat::F32,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReconstructArgs {
    /// Sound files to encode and decode as they are (several are decoded as one batch).
    #[arg(required = true, value_name = "IN")]
    pub inputs: Vec<PathBuf>,
    /// Output WAV, or a folder (ending in '/' or existing) where each output keeps its
    /// input's name.
    #[arg(short, long, value_name = "OUT")]
    pub out: PathBuf,
    /// Play the notes at this pitch instead of their own (MIDI number or name): with a
    /// model that takes a pitch, the timbre is kept and the decoder is given the pitch;
    /// with one that does not, the input is resampled to it.
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide: the pitch moves from --pitch (or the note's own) to this across the note
    /// (models that take a pitch).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch_end: Option<u8>,
    /// Length of each note in seconds (default: its input's): the sustain of the
    /// embedding is stretched or shrunk, the attack and release kept.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f32>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("how").args(["mix", "xy", "weights"])))]
pub struct BlendArgs {
    /// Two sources (A B: half and half, or --mix) or four (A B C D, the XY pad's corners:
    /// the pad's centre, or --xy): sound files, or sample-pack folders (the note nearest
    /// --pitch is used).
    #[arg(required = true, num_args = 2..=4, value_name = "SOURCE")]
    pub sources: Vec<PathBuf>,
    /// Two-way mix: 0 is A, 1 is B.
    #[arg(long, value_name = "T")]
    pub mix: Option<f32>,
    /// Morph: the mix moves from --mix at the start to this at the end of the note.
    #[arg(long, value_name = "T", requires = "mix")]
    pub mix_end: Option<f32>,
    /// XY pad position (A at 0,0; B at 1,0; C at 0,1; D at 1,1).
    #[arg(long, value_name = "X,Y", value_parser = parse_xy)]
    pub xy: Option<(f32, f32)>,
    /// Morph: the puck moves from --xy at the start to this at the end of the note.
    #[arg(long, value_name = "X,Y", value_parser = parse_xy, requires = "xy")]
    pub xy_end: Option<(f32, f32)>,
    /// Bilinear XY weights instead of NSynth Super's distance cones.
    #[arg(long)]
    pub bilinear: bool,
    /// Explicit weights, one per source (normalised).
    #[arg(long, value_name = "W,W,...", value_delimiter = ',')]
    pub weights: Option<Vec<f32>>,
    /// Pitch of the blend (MIDI number or name such as C4 or F#3). A model that takes a
    /// pitch (the default model) is given it and the sources are encoded at their own;
    /// for one that does not, sources at another pitch are shifted to it by resampling.
    /// Default: the first source's pitch.
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide: the pitch moves from --pitch to this across the note (models that take a
    /// pitch).
    #[arg(long, value_parser = parse_pitch, requires = "pitch")]
    pub pitch_end: Option<u8>,
    /// Length of the note in seconds (default: the longest source's): the sustain of each
    /// source's embedding is stretched or shrunk, its attack and release kept.
    #[arg(long, value_name = "S")]
    pub seconds: Option<f32>,
    #[arg(short, long, value_name = "OUT.wav")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct GridArgs {
    /// The four corners A B C D: sound files or sample-pack folders.
    #[arg(long, num_args = 4, required = true, value_name = "SOURCE")]
    pub corners: Vec<PathBuf>,
    /// Cells per side.
    #[arg(long, default_value_t = 5)]
    pub res: usize,
    /// Pitches (MIDI numbers or names), comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_pitch, default_value = "60")]
    pub pitches: Vec<u8>,
    /// Bilinear XY weights instead of NSynth Super's distance cones.
    #[arg(long)]
    pub bilinear: bool,
    /// Voices decoded together; each batch is written before the next starts (default:
    /// 32 on the CPU, 1024 on a GPU, which needs wide batches to pay for its launches).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Output folder (cells already there are skipped, unless --force).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct EncodeArgs {
    /// A sound file, or a sample-pack folder (the note nearest --pitch).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Pitch to take from a folder or shift a file to (MIDI number or name).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// The embedding, as a numpy .npy [frames, 16] float32.
    #[arg(short, long, value_name = "EMB.npy")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// An embedding .npy [frames, 16] (float32 or float64).
    #[arg(value_name = "EMB.npy")]
    pub input: PathBuf,
    /// The pitch to play it at, for a model that takes a pitch (an embedding carries
    /// none; without it the note is decoded unpitched).
    #[arg(long, value_parser = parse_pitch)]
    pub pitch: Option<u8>,
    /// Glide from --pitch to this across the note.
    #[arg(long, value_parser = parse_pitch, requires = "pitch")]
    pub pitch_end: Option<u8>,
    #[arg(short, long, value_name = "OUT.wav")]
    pub out: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

pub(crate) fn parse_xy(s: &str) -> Result<(f32, f32), String> {
    let (x, y) = s
        .split_once(',')
        .ok_or_else(|| format!("expected X,Y (e.g. 0.5,0.25), got {s:?}"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| format!("{v:?} is not a number from 0 to 1"))
    };
    Ok((parse(x)?, parse(y)?))
}

pub(crate) fn parse_pitch(s: &str) -> Result<u8, String> {
    s.trim()
        .parse::<u8>()
        .ok()
        .filter(|m| *m <= 127)
        .or_else(|| engine::pitch::note_name(s.trim()))
        .ok_or_else(|| format!("{s:?} is not a MIDI note (0-127) or a note name such as C4"))
}

/// `--decoder`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DecoderArg {
    Autoregressive,
    Parallel,
}

impl From<DecoderArg> for DecoderKind {
    fn from(d: DecoderArg) -> Self {
        match d {
            DecoderArg::Autoregressive => Self::Autoregressive,
            DecoderArg::Parallel => Self::Parallel,
        }
    }
}

impl Common {
    pub(crate) fn engine(&self) -> anyhow::Result<Engine> {
        let source = self
            .model
            .clone()
            .map_or(ModelSource::Default, ModelSource::Dir);
        let device = engine::device::by_name(&self.device).map_err(|e| anyhow!(e))?;
        let mut engine = Engine::load(&source, self.decoder.map(DecoderKind::from), &device)?;
        if source == ModelSource::Default && self.decoder.is_none() {
            self.note(format!(
                "decoder: {} by default ({})",
                engine.kind().name(),
                engine::default_model::DEFAULT_DECODER_REASON
            ));
        }
        if let Some(t) = self.threads {
            engine = engine.with_threads(t);
        }
        if self.no_cache {
            engine = engine.with_cache(None);
        }
        Ok(engine)
    }

    pub(crate) fn sampling(&self) -> anyhow::Result<Sampling> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            bail!("--temperature must be 0 or more, got {}", self.temperature);
        }
        Ok(Sampling {
            temperature: self.temperature,
            seed: self.seed,
        })
    }

    pub(crate) fn render(&self) -> anyhow::Result<RenderOptions> {
        if !render::RATES_HZ.contains(&self.rate) {
            bail!("--rate must be 16000, 44100 or 48000, got {}", self.rate);
        }
        Ok(RenderOptions {
            trim_silence: self.trim,
            fade_out_ms: self.fade_ms,
            format: self.format.into(),
            rate_hz: self.rate,
        })
    }

    pub(crate) fn read(&self) -> ReadOptions {
        ReadOptions {
            max_secs: self.max_secs,
        }
    }

    fn overwrite(&self) -> Overwrite {
        if self.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        }
    }

    /// Refuses an existing output before any work is done.
    fn check_output(&self, path: &Path) -> anyhow::Result<()> {
        if !self.force && path.exists() {
            bail!(
                "{} already exists (use --force to overwrite)",
                path.display()
            );
        }
        Ok(())
    }

    pub(crate) fn note(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", text.as_ref());
        }
    }
}

/// A progress bar on stderr that appears only once a job has run for a second.
struct Bar {
    bar: indicatif::ProgressBar,
    started: Instant,
    quiet: bool,
    shown: bool,
}

impl Bar {
    fn new(quiet: bool) -> Self {
        let bar = indicatif::ProgressBar::hidden().with_style(
            indicatif::ProgressStyle::with_template("{bar:30} {percent:>3}%  {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Self {
            bar,
            started: Instant::now(),
            quiet,
            shown: false,
        }
    }

    fn update(&mut self, p: &Progress) {
        if !self.quiet && !self.shown && self.started.elapsed().as_secs_f64() > 1.0 {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
            self.shown = true;
        }
        self.bar.set_length(p.total.max(1));
        self.bar.set_position(p.done);
        let eta = p
            .eta_secs
            .map_or_else(|| "…".to_string(), |s| format!("{s:.0} s"));
        self.bar.set_message(format!(
            "{:.1}k samples/s  ETA {eta}",
            p.samples_per_s / 1000.0
        ));
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Ctrl-C cancels the running decode (which then leaves no output file).
fn cancel_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    ctrlc::set_handler(move || handler_flag.store(true, Ordering::Relaxed))
        .context("cannot install the Ctrl-C handler")?;
    Ok(flag)
}

/// Runs a long `job` with a progress bar on stderr and its log lines printed above the
/// bar (neither when `quiet`); Ctrl-C cancels it through the progress callback.
pub(crate) fn with_progress<T>(
    quiet: bool,
    job: impl FnOnce(&mut dyn FnMut(&Progress) -> ControlFlow<()>, &mut dyn FnMut(&str)) -> T,
) -> anyhow::Result<T> {
    let stop = cancel_on_ctrl_c()?;
    let mut bar = Bar::new(quiet);
    let log_bar = bar.bar.clone();
    let result = job(&mut watch(&mut bar, &stop), &mut |line| {
        if !quiet {
            log_bar.suspend(|| eprintln!("{line}"));
        }
    });
    bar.finish();
    Ok(result)
}

/// A progress callback that moves `bar` and cancels once Ctrl-C set `stop`.
fn watch<'a>(
    bar: &'a mut Bar,
    stop: &'a AtomicBool,
) -> impl FnMut(&Progress) -> ControlFlow<()> + 'a {
    move |p| {
        bar.update(p);
        if stop.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}

/// The glide a pitched model decodes a voice at: from `start` (else the note's own
/// pitch) to `end` (else held); `None` for a model without an excitation (after checking
/// that no glide was asked of it) or when no pitch is known.
fn glide(
    engine: &Engine,
    start: Option<u8>,
    end: Option<u8>,
    own: Option<u8>,
) -> anyhow::Result<Option<Glide>> {
    glide_for(engine.pitched(), engine.name(), start, end, own)
}

/// [`glide`] for a model that does (`pitched`) or does not take a pitch.
fn glide_for(
    pitched: bool,
    name: &str,
    start: Option<u8>,
    end: Option<u8>,
    own: Option<u8>,
) -> anyhow::Result<Option<Glide>> {
    if !pitched {
        if end.is_some() {
            bail!("--pitch-end needs a model that takes a pitch; {name} has no excitation");
        }
        return Ok(None);
    }
    let Some(start) = start.or(own) else {
        if end.is_some() {
            bail!("--pitch-end needs a starting pitch: give --pitch");
        }
        return Ok(None);
    };
    let glide = Glide {
        start: f32::from(start),
        end: f32::from(end.unwrap_or(start)),
    };
    if !glide.in_range() {
        bail!(
            "the model plays MIDI {} to {} (A0 to C8); got {}",
            PITCH_RANGE.start(),
            PITCH_RANGE.end(),
            if PITCH_RANGE.contains(&glide.start) {
                glide.end
            } else {
                glide.start
            }
        );
    }
    Ok(Some(glide))
}

/// Decodes with a progress bar; Ctrl-C cancels. `pitches[v]` is voice `v`'s pitch for a
/// model that takes one (see [`glide`]).
fn decode(
    engine: &Engine,
    embeddings: &[Embedding],
    pitches: &[Option<Glide>],
    common: &Common,
) -> anyhow::Result<(Vec<Vec<f32>>, f64)> {
    let sampling = common.sampling()?;
    let stop = cancel_on_ctrl_c()?;
    let mut bar = Bar::new(common.quiet);
    let started = Instant::now();
    let streams: Vec<u64> = (0..embeddings.len() as u64).collect();
    let result = engine.decode_at(
        embeddings,
        pitches,
        &streams,
        sampling,
        &Control::default(),
        &mut watch(&mut bar, &stop),
    );
    bar.finish();
    let audio = result.map_err(|e| match e {
        engine::Error::Cancelled => anyhow!("cancelled; nothing was written"),
        other => other.into(),
    })?;
    Ok((audio, started.elapsed().as_secs_f64()))
}

#[derive(Debug, Serialize)]
struct Written {
    file: PathBuf,
    #[serde(flatten)]
    finished: Finished,
}

#[derive(Debug, Serialize)]
struct Summary<'a> {
    command: &'a str,
    model: &'a str,
    sources: Vec<&'a Prepared>,
    written: Vec<Written>,
    cached_encodings: usize,
    decode_secs: f64,
    samples_per_s: f64,
    realtime_factor: f64,
}

fn print_summary(common: &Common, summary: &Summary<'_>) -> anyhow::Result<ExitCode> {
    let mut out = Output::default();
    if common.json {
        out.line(serde_json::to_string_pretty(summary)?);
    } else {
        for w in &summary.written {
            out.line(format!(
                "wrote {} ({:.2} s, peak {:.1} dBFS{})",
                w.file.display(),
                w.finished.duration_secs,
                w.finished.peak_dbfs,
                if w.finished.gain < 1.0 {
                    format!(", gain {:.2} to avoid clipping", w.finished.gain)
                } else {
                    String::new()
                }
            ));
        }
        out.line(format!(
            "decoded in {:.1} s ({:.0} samples/s, {:.2}× real time per voice)",
            summary.decode_secs, summary.samples_per_s, summary.realtime_factor
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Aggregate samples per second and the real-time factor per voice.
fn rates(voices: usize, total_samples: usize, secs: f64) -> (f64, f64) {
    let per_s = total_samples as f64 / secs.max(1e-9);
    (
        per_s,
        per_s / voices.max(1) as f64 / f64::from(SAMPLE_RATE_HZ),
    )
}

pub fn reconstruct(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    let to_dir = args.inputs.len() > 1
        || args.out.is_dir()
        || args.out.as_os_str().to_string_lossy().ends_with('/');
    let outputs: Vec<PathBuf> = if to_dir {
        let mut seen = std::collections::HashSet::new();
        args.inputs
            .iter()
            .map(|input| {
                let stem = input
                    .file_stem()
                    .ok_or_else(|| anyhow!("{} has no file name", input.display()))?;
                let out = args.out.join(Path::new(stem).with_extension("wav"));
                if !seen.insert(out.clone()) {
                    bail!("two inputs would both be written as {}", out.display());
                }
                Ok(out)
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        vec![args.out.clone()]
    };
    for out in &outputs {
        c.check_output(out)?;
    }
    let engine = c.engine()?;
    let prepared = args
        .inputs
        .iter()
        .map(|input| {
            if input.is_dir() {
                bail!(
                    "{} is a folder; reconstruct takes sound files",
                    input.display()
                );
            }
            // A model without an excitation transposes by resampling the input.
            let resample_to = args.pitch.filter(|_| !engine.pitched());
            Ok(engine.prepare(input, resample_to, c.read())?)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pitches = prepared
        .iter()
        .map(|p| glide(&engine, args.pitch, args.pitch_end, p.pitch))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let notes: Vec<&[f32]> = prepared.iter().map(|p| p.samples.as_slice()).collect();
    let encoded = engine.encode(&notes)?;
    let cached = encoded.iter().filter(|e| e.cached).count();
    let mut embeddings: Vec<Embedding> = encoded.into_iter().map(|e| e.embedding).collect();
    let lengths = engine.fit(&prepared, &mut embeddings, args.seconds)?;
    c.note(format!(
        "decoding {} note(s) with {} on {}",
        embeddings.len(),
        engine.name(),
        engine.decoder_description()
    ));
    let (audio, secs) = decode(&engine, &embeddings, &pitches, c)?;
    let total: usize = audio.iter().map(Vec::len).sum();
    if to_dir {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    let mut written = Vec::new();
    for ((mut audio, length), out) in audio.into_iter().zip(lengths).zip(&outputs) {
        // The input's own length or the one asked for (the model works in whole frames).
        audio.truncate(length);
        let finished = render::write(out, audio, &render, c.overwrite())?;
        written.push(Written {
            file: out.clone(),
            finished,
        });
    }
    let (per_s, rt) = rates(prepared.len(), total, secs);
    print_summary(
        c,
        &Summary {
            command: "reconstruct",
            model: engine.name(),
            sources: prepared.iter().collect(),
            written,
            cached_encodings: cached,
            decode_secs: secs,
            samples_per_s: per_s,
            realtime_factor: rt,
        },
    )
}

pub fn blend(args: &BlendArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    let n = args.sources.len();
    let mode = if args.bilinear {
        XyMode::Bilinear
    } else {
        XyMode::Cone
    };
    let weights = blend_weights(&BlendHow {
        sources: n,
        mix: args.mix,
        mix_end: args.mix_end,
        xy: args.xy,
        xy_end: args.xy_end,
        weights: args.weights.clone(),
        mode,
    })?;
    c.check_output(&args.out)?;
    let engine = c.engine()?;
    let spec = NoteSpec {
        pitch: args.pitch,
        velocity: None,
        seconds: args.seconds,
        read: c.read(),
    };
    let sources = engine.sources(&args.sources, &spec)?;
    let prepared = &sources.prepared;
    for (name, p) in ["A", "B", "C", "D"].iter().zip(prepared) {
        c.note(format!("{name}: {}", p.describe()));
    }
    let cached = sources.cached;
    let blended = sources.blend(&weights)?;
    let own = prepared.iter().find_map(engine::synth::sounding_pitch);
    let pitch = glide(&engine, args.pitch, args.pitch_end, own)?;
    if let Some(g) = pitch {
        c.note(format!(
            "the decoder plays {}",
            if g.start == g.end {
                engine::pitch::midi_name(g.start as u8)
            } else {
                format!(
                    "{} gliding to {}",
                    engine::pitch::midi_name(g.start as u8),
                    engine::pitch::midi_name(g.end as u8)
                )
            }
        ));
    }
    let (audio, secs) = decode(&engine, std::slice::from_ref(&blended), &[pitch], c)?;
    let total: usize = audio.iter().map(Vec::len).sum();
    let mut audio = audio.into_iter().next().unwrap_or_default();
    // As long as the longest source or as asked (the model works in whole frames).
    audio.truncate(sources.length);
    let finished = render::write(&args.out, audio, &render, c.overwrite())?;
    let (per_s, rt) = rates(1, total, secs);
    print_summary(
        c,
        &Summary {
            command: "blend",
            model: engine.name(),
            sources: prepared.iter().collect(),
            written: vec![Written {
                file: args.out.clone(),
                finished,
            }],
            cached_encodings: cached,
            decode_secs: secs,
            samples_per_s: per_s,
            realtime_factor: rt,
        },
    )
}

/// How a blend's weights were asked for on the command line.
pub(crate) struct BlendHow {
    pub sources: usize,
    pub mix: Option<f32>,
    pub mix_end: Option<f32>,
    pub xy: Option<(f32, f32)>,
    pub xy_end: Option<(f32, f32)>,
    pub weights: Option<Vec<f32>>,
    pub mode: XyMode,
}

/// The weights of a blend: `--mix` (two sources), `--xy` (four) or `--weights`; without
/// any, half and half for two sources and the pad's centre for four.
pub(crate) fn blend_weights(how: &BlendHow) -> anyhow::Result<Weights> {
    let n = how.sources;
    if n == 3 || !(1..=4).contains(&n) {
        bail!("a blend takes two sources (with --mix) or four (with --xy), got {n}");
    }
    let (mix, xy) = match (how.mix, how.xy, &how.weights) {
        (None, None, None) if n == 2 => (Some(0.5), None),
        (None, None, None) if n == 4 => (None, Some((0.5, 0.5))),
        other => (other.0, other.1),
    };
    let weights = if let Some(t) = mix {
        if n != 2 {
            bail!("--mix blends two sources; got {n} (use --xy with four)");
        }
        let check = |t: f32| {
            if (0.0..=1.0).contains(&t) {
                Ok(vec![1.0 - t, t])
            } else {
                Err(anyhow!("--mix must be from 0 to 1, got {t}"))
            }
        };
        match how.mix_end {
            Some(end) => Weights::Morph {
                start: check(t)?,
                end: check(end)?,
            },
            None => Weights::Fixed(check(t)?),
        }
    } else if let Some((x, y)) = xy {
        if n != 4 {
            bail!("--xy blends four sources (A B C D); got {n}");
        }
        let at = |x, y| engine::synth::xy_weights(x, y, how.mode).to_vec();
        match how.xy_end {
            Some((x2, y2)) => Weights::Morph {
                start: at(x, y),
                end: at(x2, y2),
            },
            None => Weights::Fixed(at(x, y)),
        }
    } else if let Some(w) = &how.weights {
        if w.len() != n {
            bail!("--weights has {} values for {n} sources", w.len());
        }
        Weights::Fixed(w.clone())
    } else {
        bail!("say how to blend: --mix, --xy or --weights");
    };
    Ok(weights)
}

pub fn grid(args: &GridArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let [a, b, cc, d] = <[PathBuf; 4]>::try_from(args.corners.clone())
        .map_err(|_| anyhow!("--corners takes four sources: A B C D"))?;
    let spec = GridSpec {
        corners: [a, b, cc, d],
        res: args.res,
        pitches: args.pitches.clone(),
        mode: if args.bilinear {
            XyMode::Bilinear
        } else {
            XyMode::Cone
        },
        out_dir: args.out.clone(),
        render: c.render()?,
        sampling: c.sampling()?,
        read: c.read(),
        batch: 0,
        overwrite: c.force,
    };
    let engine = c.engine()?;
    let spec = GridSpec {
        batch: args.batch.unwrap_or(if engine.uses_tensor_decoder() {
            1024
        } else {
            32
        }),
        ..spec
    };
    let started = Instant::now();
    let result = with_progress(c.quiet, |progress, log| {
        grid::run(&engine, &spec, &Control::default(), progress, log)
    })?;
    let report = result.map_err(|e| match e {
        engine::Error::Cancelled => {
            anyhow!("cancelled; the cells written so far are kept, run again to resume")
        }
        other => other.into(),
    })?;
    let secs = started.elapsed().as_secs_f64();
    let mut out = Output::default();
    if c.json {
        out.line(serde_json::to_string_pretty(&report)?);
    } else {
        out.line(format!(
            "{} cells: {} rendered, {} already there; index {}",
            report.cells,
            report.rendered,
            report.skipped,
            report.index.display()
        ));
        out.line(format!(
            "took {secs:.1} s ({:.1} s decoding)",
            report.decode_secs
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn encode(args: &EncodeArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    c.check_output(&args.out)?;
    let engine = c.engine()?;
    let prepared = engine.prepare(&args.input, args.pitch, c.read())?;
    c.note(prepared.describe());
    let encoded = engine.encode(&[prepared.samples.as_slice()])?;
    let e = &encoded
        .first()
        .ok_or_else(|| anyhow!("nothing was encoded"))?
        .embedding;
    npy::write(&args.out, &e.data, e.frames, e.channels, c.overwrite())?;
    let mut out = Output::default();
    if c.json {
        out.line(serde_json::to_string_pretty(&serde_json::json!({
            "command": "encode",
            "model": engine.name(),
            "source": prepared,
            "file": args.out,
            "frames": e.frames,
            "channels": e.channels,
            "cached": encoded[0].cached,
        }))?);
    } else {
        out.line(format!(
            "wrote {} ({} frames × {} channels{})",
            args.out.display(),
            e.frames,
            e.channels,
            if encoded[0].cached {
                ", from the cache"
            } else {
                ""
            }
        ));
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

pub fn decode_npy(args: &DecodeArgs) -> anyhow::Result<ExitCode> {
    let c = &args.common;
    let render = c.render()?;
    c.check_output(&args.out)?;
    let engine = c.engine()?;
    let (data, frames, channels) = npy::read(&args.input)?;
    let want = engine.bottleneck();
    if channels != want || frames == 0 {
        bail!(
            "{}: this model decodes [frames, {want}] embeddings, the file holds [{frames}, {channels}]",
            args.input.display()
        );
    }
    let embedding = Embedding {
        frames,
        channels,
        data,
    };
    let pitch = glide(&engine, args.pitch, args.pitch_end, None)?;
    let (audio, secs) = decode(&engine, std::slice::from_ref(&embedding), &[pitch], c)?;
    let total: usize = audio.iter().map(Vec::len).sum();
    let audio = audio.into_iter().next().unwrap_or_default();
    let finished = render::write(&args.out, audio, &render, c.overwrite())?;
    let (per_s, rt) = rates(1, total, secs);
    print_summary(
        c,
        &Summary {
            command: "decode",
            model: engine.name(),
            sources: Vec::new(),
            written: vec![Written {
                file: args.out.clone(),
                finished,
            }],
            cached_encodings: 0,
            decode_secs: secs,
            samples_per_s: per_s,
            realtime_factor: rt,
        },
    )
}
