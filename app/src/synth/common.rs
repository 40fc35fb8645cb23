//! What every synthesis command shares: its flags ([`Common`]), argument parsers, and
//! the progress bar with Ctrl-C cancellation.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, anyhow, bail};
use autoencoder::Sampling;
use engine::audio::wav::WavFormat;
use engine::audio::{DEFAULT_MAX_SECS, ReadOptions, SAMPLE_RATE_HZ};
use engine::fsutil::Overwrite;
use engine::synth::render::{self, RenderOptions};
use engine::synth::{DecodeProgress, DecoderKind, Engine, ModelSource};

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
    /// plays better, and for a model directory with a student/ folder (the default
    /// model's own folder included); autoregressive for one without.
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
    /// Leave a blend of two or more sources at the level it decodes at, instead of
    /// bringing it to its sources' weighted mean level in dB (frame by frame; for a model
    /// whose frames carry a measured envelope, the default student, the envelope over the
    /// whole note).
    #[arg(long)]
    pub no_level_match: bool,
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
    /// A SampleRNN (a SampleRNN's directory, or one in `samplernn/` beside the model).
    Samplernn,
}

impl From<DecoderArg> for DecoderKind {
    fn from(d: DecoderArg) -> Self {
        match d {
            DecoderArg::Autoregressive => Self::Autoregressive,
            DecoderArg::Parallel => Self::Parallel,
            DecoderArg::Samplernn => Self::SampleRnn,
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
        if self.decoder.is_none() {
            match &source {
                ModelSource::Default => self.note(format!(
                    "decoder: {} by default ({})",
                    engine.kind().name(),
                    engine::models::embedded::DEFAULT_DECODER_REASON
                )),
                ModelSource::Dir(dir)
                    if engine.kind() == DecoderKind::Parallel
                        && !engine::models::student::is_student(dir) =>
                {
                    self.note(format!(
                        "decoder: parallel by default (the student in {}; --decoder autoregressive for the WaveNet decoder)",
                        dir.join(engine::synth::STUDENT_DIR).display()
                    ));
                }
                ModelSource::Dir(_) => {}
            }
        }
        if let Some(t) = self.threads {
            engine = engine.with_threads(t);
        }
        if self.no_cache {
            engine = engine.with_cache(None);
        }
        Ok(engine.with_level_match(!self.no_level_match))
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

    pub(super) fn overwrite(&self) -> Overwrite {
        if self.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        }
    }

    /// Refuses an existing output before any work is done, and an output that is one of
    /// the `inputs` even with --force.
    pub(super) fn check_output(&self, path: &Path, inputs: &[PathBuf]) -> anyhow::Result<()> {
        engine::fsutil::check_not_input(path, inputs)?;
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
pub(super) struct Bar {
    bar: indicatif::ProgressBar,
    started: Instant,
    quiet: bool,
    shown: bool,
}

impl Bar {
    pub(super) fn new(quiet: bool) -> Self {
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

    pub(super) fn update(&mut self, p: &DecodeProgress) {
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

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// Ctrl-C cancels the running decode (which then leaves no output file).
pub(super) fn cancel_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
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
    job: impl FnOnce(&mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>, &mut dyn FnMut(&str)) -> T,
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
pub(super) fn watch<'a>(
    bar: &'a mut Bar,
    stop: &'a AtomicBool,
) -> impl FnMut(&DecodeProgress) -> ControlFlow<()> + 'a {
    move |p| {
        bar.update(p);
        if stop.load(Ordering::Relaxed) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }
}
