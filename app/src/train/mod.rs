//! `timbrel train` (a WaveNet autoencoder or a SampleRNN) and `timbrel train-student`
//! (`student.rs`), on the flags they share (`flags.rs`) and one progress display.

mod flags;
mod student;

pub use student::{StudentArgs, run_student};

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use autoencoder::Config;
use autoencoder::samplernn::SampleRnnConfig;
use engine::fsutil::Overwrite;
use engine::train::samplernn::SampleRnnTrainer;
use engine::train::{Event, FamilyStep, TrainData, TrainOptions, Trainer, Training};

use crate::output::Output;
use flags::{RunArgs, TrainWords};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub run: RunArgs<TrainWords>,
    /// Model shape: small-pitched (the default model's: small with a 16-harmonic
    /// excitation at f0), small (no excitation), nsynth (Magenta's h512_bo16), or a
    /// SampleRNN: samplernn (tiers of 16 and 4 samples, GRUs of 256, the small encoder),
    /// samplernn-tiny (trains in seconds, for tests).
    #[arg(long, default_value = "small-pitched", conflicts_with = "config")]
    pub preset: String,
    /// A config.json with Magenta's hyper-parameter names, instead of a preset.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Gaussian noise (σ, in μ-law-scaled units: a class is 1/128) on the decoder's
    /// teacher-forced input, not its targets.
    #[arg(long, default_value_t = TrainOptions::default().input_noise)]
    pub input_noise: f64,
}

fn config(args: &Args) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Ok(engine::models::dir::read_config_file(path)?),
        None => Ok(Config::preset(&args.preset)?),
    }
}

fn options(args: &Args) -> TrainOptions {
    TrainOptions {
        input_noise: args.input_noise,
        ..args.run.options()
    }
}

/// Whether this run trains a SampleRNN: a SampleRNN preset, or resuming one.
fn is_samplernn(args: &Args) -> bool {
    if args.run.resume {
        engine::models::samplernn::is_samplernn(&args.run.out)
    } else {
        args.config.is_none() && SampleRnnConfig::preset(&args.preset).is_some()
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let device = args.run.device()?;
    let overwrite = args.run.overwrite();
    if is_samplernn(args) {
        return run_samplernn(args, &device, overwrite);
    }
    let mut trainer = if args.run.resume {
        Trainer::resume(&args.run.out, args.run.steps, args.run.lr, &device)
            .context("train --resume")?
    } else {
        Trainer::start(
            &args.run.out,
            &config(args)?,
            options(args),
            &device,
            overwrite,
        )
        .context("train")?
    };
    eprintln!(
        "training {} ({} parameters) {}, {} ({})",
        args.run.out.display(),
        trainer.config().parameter_count(),
        notes_words(trainer.data()),
        engine::device::describe(&device),
        if trainer.fused() {
            "fused training step"
        } else {
            "candle autograd"
        },
    );
    drive(
        &mut trainer,
        &args.run.out,
        args.run.quiet,
        ("train", "validation NLL (nats/sample)"),
    )
}

/// `timbrel train --preset samplernn…` (or `--resume` of one).
fn run_samplernn(
    args: &Args,
    device: &candle_core::Device,
    overwrite: Overwrite,
) -> anyhow::Result<ExitCode> {
    if args.run.lr.is_some() && args.run.resume {
        anyhow::bail!("train --resume: a SampleRNN run keeps its learning rate");
    }
    let mut trainer = if args.run.resume {
        SampleRnnTrainer::resume(&args.run.out, args.run.steps, device).context("train --resume")?
    } else {
        let config = SampleRnnConfig::preset(&args.preset)
            .ok_or_else(|| anyhow!("train: unknown preset {:?}", args.preset))?;
        SampleRnnTrainer::start(&args.run.out, &config, options(args), device, overwrite)
            .context("train")?
    };
    eprintln!(
        "training the SampleRNN {} ({} parameters; tiers of {} and {} samples, GRUs of {}; truncated BPTT over {}) {}, {}",
        args.run.out.display(),
        trainer.config().parameter_count(),
        trainer.config().top_frame,
        trainer.config().mid_frame,
        trainer.config().dim,
        trainer.config().tbptt,
        notes_words(trainer.data()),
        engine::device::describe(device),
    );
    drive(
        &mut trainer,
        &args.run.out,
        args.run.quiet,
        ("train", "validation NLL (nats/sample)"),
    )
}

/// The start line's words for the notes a run trains on and holds out.
pub(crate) fn notes_words(data: &TrainData) -> String {
    format!(
        "on {} notes, validating on {} notes of {} held-out instruments",
        data.train_notes(),
        data.validation_notes(),
        data.validation_instruments.len(),
    )
}

/// Runs a training loop with a progress bar (unless `quiet`), Ctrl-C asking it to
/// checkpoint and stop, and a summary at the end; `command` names the run in errors and
/// `validation` its validation figure in the summary.
pub(crate) fn drive<F: FamilyStep>(
    trainer: &mut Training<F>,
    out_dir: &std::path::Path,
    quiet: bool,
    (command, validation): (&'static str, &str),
) -> anyhow::Result<ExitCode> {
    let (step, steps) = (trainer.step(), trainer.options().steps);
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second Ctrl-C while the checkpoint is written is ignored; the checkpoint wins.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(steps).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    };
    bar.set_position(step);
    let mut val = String::from("val -");
    let summary = trainer.run(&stop, &mut |event| {
        match event {
            Event::Step {
                step,
                loss,
                samples_per_s,
                ..
            } => {
                bar.set_position(*step);
                bar.set_message(format!(
                    "loss {loss:.3}  {val}  {samples_per_s:.0} samples/s"
                ));
            }
            Event::Validation { nll, .. } => val = format!("val {nll:.3}"),
            Event::SpectralValidation { loss, .. } => val = format!("val {loss:.3}"),
            Event::StudentTerms { .. }
            | Event::LossWeights { .. }
            | Event::SubOctaveShare { .. }
            | Event::BankWeight { .. }
            | Event::ThroughEnvelope { .. } => {}
            Event::FreeRun {
                step,
                pitch_accuracy,
                pitched_notes,
                log_mel_distance_db,
                ..
            } => bar.println(format!(
                "step {step}: free-running on held-out notes: pitch {} of {pitched_notes}, log-mel {log_mel_distance_db:.1} dB",
                pitch_accuracy.map_or("-".into(), |a| format!("{:.0}", a * *pitched_notes as f64)),
            )),
            Event::Checkpoint { .. } => {}
    }
    })
    .context(command)?;
    bar.finish_and_clear();
    let mut out = Output::default();
    out.line(format!(
        "{} at step {}/{}: loss {}, {validation} {}; {:.0} s of training, {} samples seen",
        if summary.stopped_early {
            "stopped"
        } else {
            "finished"
        },
        summary.step,
        steps,
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary
            .last_validation_nll
            .map_or("-".into(), |l| format!("{l:.4}")),
        summary.train_secs,
        summary.samples_seen,
    ));
    out.line(format!(
        "model: {} (continue with --resume)",
        out_dir.display()
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
