//! `timbrel model ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use candle_core::Device;

use crate::output::Output;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show a model: where it comes from, its hyper-parameters and size.
    Info(InfoArgs),
    /// Import a TensorFlow checkpoint of Magenta's NSynth (e.g. the published
    /// wavenet-ckpt/model.ckpt-200000) into a model directory.
    ImportTf(ImportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The checkpoint prefix (…/model.ckpt-200000: its .index and .data-* files beside
    /// it), or a folder whose `checkpoint` file names one.
    #[arg(value_name = "CKPT")]
    pub ckpt: PathBuf,
    /// The model directory to write (config.json + weights.safetensors).
    #[arg(short, long, value_name = "DIR")]
    pub out: PathBuf,
    /// Take the ExponentialMovingAverage shadows instead of the raw weights.
    #[arg(long)]
    pub ema: bool,
    /// Samples per embedding frame (not stored in the weights; default: Magenta's).
    #[arg(long, default_value_t = autoencoder::Config::nsynth().ae_hop_length)]
    pub hop: usize,
    /// The decoder's dilation cycle (default: Magenta's 10 when the layer count allows).
    #[arg(long)]
    pub stages: Option<usize>,
    /// The encoder's dilation cycle (default as --stages).
    #[arg(long)]
    pub encoder_stages: Option<usize>,
    /// Replace a model already in --out.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// A model directory (or a Parallel WaveNet student's); the embedded default model
    /// when omitted.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
}

pub fn run(command: &Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Info(args) => info(args),
        Command::ImportTf(args) => import_tf(args),
    }
}

fn import_tf(args: &ImportArgs) -> anyhow::Result<ExitCode> {
    use engine::import_tf::{ImportOptions, import, resolve_prefix};
    let prefix = resolve_prefix(&args.ckpt).context("model import-tf")?;
    let options = ImportOptions {
        ema: args.ema,
        hop_length: args.hop,
        num_stages: args.stages,
        ae_num_stages: args.encoder_stages,
    };
    let overwrite = if args.force {
        engine::fsutil::Overwrite::Allowed
    } else {
        engine::fsutil::Overwrite::Never
    };
    let imported = match import(&prefix, &args.out, &options, overwrite) {
        Err(e @ engine::Error::StagesUnknown { part, .. }) => anyhow::bail!(
            "model import-tf: {e} (give it with {})",
            if part == "decoder" {
                "--stages"
            } else {
                "--encoder-stages"
            }
        ),
        other => other.context("model import-tf")?,
    };
    let c = &imported.config;
    let mut out = Output::default();
    out.line(format!(
        "imported {} of the {} variables of {} ({}) into {}",
        imported.taken,
        imported.variables,
        imported.prefix.display(),
        if args.ema {
            "moving averages"
        } else {
            "raw weights"
        },
        args.out.display()
    ));
    out.line(format!(
        "decoder {} layers in stages of {}, width {}, skip {}; encoder {} layers in stages of {}, width {}, {} channels every {} samples; {} parameters",
        c.num_layers,
        c.num_stages,
        c.width,
        c.skip_width,
        c.ae_num_layers,
        c.ae_num_stages,
        c.ae_width,
        c.ae_bottleneck_width,
        c.ae_hop_length,
        c.parameter_count()
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    let host = Device::Cpu; // host: `model info` only reads shapes and counts
    let mut out = Output::default();
    if let Some(dir) = args.model.as_deref()
        && engine::models::student::is_student(dir)
    {
        let student = engine::models::student::load(dir, &host).context("model info")?;
        out.line(format!(
            "model: {} (a Parallel WaveNet student)",
            dir.display()
        ));
        student_lines(&mut out, &student, "plays only in parallel");
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let (source, model) = match &args.model {
        Some(dir) => (
            dir.display().to_string(),
            engine::models::dir::load(dir, &host)
                .context("model info")?
                .model,
        ),
        None => (
            engine::models::embedded::NAME.to_string(),
            engine::models::embedded::load(&host).context("model info")?,
        ),
    };
    let c = model.config();
    out.line(format!("model: {source}"));
    out.line(format!(
        "parameters: {} ({:.1} MB as f32)",
        c.parameter_count(),
        c.parameter_count() as f64 * 4.0 / 1e6
    ));
    out.line(format!(
        "decoder: {} layers in stages of {}, filter {}, width {}, skip {}; receptive field {} samples ({:.0} ms)",
        c.num_layers,
        c.num_stages,
        c.filter_length,
        c.width,
        c.skip_width,
        c.receptive_field(),
        c.receptive_field() as f64 / 16.0
    ));
    out.line(format!(
        "encoder: {} layers in stages of {}, filter {}, width {}; embedding {} channels every {} samples",
        c.ae_num_layers, c.ae_num_stages, c.ae_filter_length, c.ae_width, c.ae_bottleneck_width, c.ae_hop_length
    ));
    out.line(if c.pitched() {
        format!(
            "pitch: takes the pitch to play, a {}-harmonic excitation at f0 into the decoder's {} (MIDI {} to {})",
            c.excitation_harmonics,
            match c.excitation_into {
                autoencoder::ExcitationInto::Layers => "gated layers",
                autoencoder::ExcitationInto::Input => "input",
                autoencoder::ExcitationInto::Both => "input and gated layers",
            },
            engine::synth::PITCH_RANGE.start(),
            engine::synth::PITCH_RANGE.end()
        )
    } else {
        "pitch: none of its own (sources are resampled to a blend's pitch)".to_string()
    });
    out.line(format!("config: {}", serde_json::to_string(c)?));
    match &args.model {
        None => {
            let student = engine::models::embedded::load_student(&host).context("model info")?;
            let default = engine::models::embedded::DEFAULT_DECODER;
            let role = if default == engine::synth::DecoderKind::Parallel {
                format!(
                    "plays by default ({}); --decoder autoregressive for the WaveNet decoder",
                    engine::models::embedded::DEFAULT_DECODER_REASON
                )
            } else {
                "plays with --decoder parallel".to_string()
            };
            student_lines(&mut out, &student, &role);
        }
        Some(dir) => {
            let beside = dir.join(engine::synth::STUDENT_DIR);
            if engine::models::student::is_student(&beside) {
                let student =
                    engine::models::student::load(&beside, &host).context("model info")?;
                student_lines(
                    &mut out,
                    &student,
                    "plays by default; --decoder autoregressive for the WaveNet decoder",
                );
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The `student:` lines of a Parallel WaveNet student.
fn student_lines(out: &mut Output, student: &autoencoder::student::StudentAutoencoder, role: &str) {
    let c = student.config();
    out.line(format!(
        "student: Parallel WaveNet, flows of {:?} layers, width {}, {}-harmonic excitation{}{}; its encoder {} layers, width {}; {} parameters; {role}",
        c.student.flows,
        c.student.width,
        c.student.excitation_harmonics,
        match (
            c.student.excitation_subpartials,
            c.student.subpartial_bank,
            c.student.measured_subpartials
        ) {
            (0, _, _) => String::new(),
            (n, false, _) => format!(" with {n} sub-partials"),
            (n, true, false) => format!(" with {n} sub-partials and a bank of them"),
            (n, true, true) => format!(
                " with {n} sub-partials and a bank of them at the levels measured into each frame"
            ),
        },
        match c.student.envelope_bands {
            0 => String::new(),
            b => format!(
                "; each frame carries the note's measured spectral envelope ({b} mel bands), which its output stage shapes the flows' sound to"
            ),
        },
        c.encoder.ae_num_layers,
        c.encoder.ae_width,
        student.parameter_count()
    ));
}
