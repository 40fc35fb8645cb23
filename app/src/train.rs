//! `timbrel train`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use autoencoder::Config;
use engine::fsutil::Overwrite;
use engine::train::{Event, TrainOptions, Trainer};

use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A dataset in NSynth's layout (repeat for several).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub data: Vec<PathBuf>,
    /// The model directory to write (config.json, weights.safetensors, train state, log).
    #[arg(long, value_name = "MODEL_DIR")]
    pub out: PathBuf,
    /// Model shape: small-pitched (the default model's: small with a 16-harmonic
    /// excitation at f0), small (no excitation) or nsynth (Magenta's h512_bo16).
    #[arg(long, default_value = "small-pitched", conflicts_with = "config")]
    pub preset: String,
    /// A config.json with Magenta's hyper-parameter names, instead of a preset.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long, default_value_t = TrainOptions::default().batch)]
    pub batch: usize,
    /// Samples per training crop (a multiple of the hop length; NSynth used 6144).
    #[arg(long, default_value_t = TrainOptions::default().crop)]
    pub crop: usize,
    /// Peak learning rate (linear warm-up, then cosine decay to a tenth) [default: 6e-4].
    /// With --resume: a new peak for the rest of the run (the schedule keeps its shape).
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long, default_value_t = TrainOptions::default().warmup_steps)]
    pub warmup: u64,
    /// Steps between checkpoints (also written on Ctrl-C and at the end).
    #[arg(long, default_value_t = TrainOptions::default().checkpoint_every)]
    pub checkpoint_every: u64,
    /// Steps between validation NLL measurements.
    #[arg(long, default_value_t = TrainOptions::default().validate_every)]
    pub validate_every: u64,
    /// Gaussian noise (σ, in μ-law-scaled units: a class is 1/128) on the decoder's
    /// teacher-forced input, not its targets.
    #[arg(long, default_value_t = TrainOptions::default().input_noise)]
    pub input_noise: f64,
    /// Share of crops trained with no excitation (pitched models), so that a model given
    /// no pitch still plays.
    #[arg(long, default_value_t = TrainOptions::default().unpitched_share)]
    pub unpitched_share: f64,
    /// Steps between free-running checks on held-out notes (0: none); pitch accuracy and
    /// log-mel distance go to train_log.jsonl.
    #[arg(long, default_value_t = TrainOptions::default().free_run_every)]
    pub free_run_every: u64,
    /// Held-out notes a free-running check decodes (their first second each).
    #[arg(long, default_value_t = TrainOptions::default().free_run_notes)]
    pub free_run_notes: usize,
    /// Continue the run saved in --out (its settings are kept; --steps may extend it).
    #[arg(long)]
    pub resume: bool,
    /// Start over in an --out that already holds a model.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    /// cpu, or cuda in a build with the cuda feature.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

fn config(args: &Args) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Ok(engine::model_dir::read_config_file(path)?),
        None => Ok(Config::preset(&args.preset)?),
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let mut trainer = if args.resume {
        Trainer::resume(&args.out, args.steps, args.lr, &device).context("train --resume")?
    } else {
        let options = TrainOptions {
            data: args.data.clone(),
            steps: args.steps.unwrap_or(TrainOptions::default().steps),
            batch: args.batch,
            crop: args.crop,
            lr: args.lr.unwrap_or(TrainOptions::default().lr),
            warmup_steps: args.warmup,
            checkpoint_every: args.checkpoint_every,
            validate_every: args.validate_every,
            seed: args.seed,
            input_noise: args.input_noise,
            unpitched_share: args.unpitched_share,
            free_run_every: args.free_run_every,
            free_run_notes: args.free_run_notes,
            ..Default::default()
        };
        let overwrite = if args.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        };
        Trainer::start(&args.out, &config(args)?, options, &device, overwrite).context("train")?
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second Ctrl-C while the checkpoint is written is ignored; the checkpoint wins.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("cannot install the Ctrl-C handler")?;
    }
    let opts = trainer.options().clone();
    eprintln!(
        "training {} ({} parameters) on {} notes, validating on {} notes of {} held-out instruments, {}",
        args.out.display(),
        trainer.config().parameter_count(),
        trainer.data().train_notes(),
        trainer.data().validation_notes(),
        trainer.data().validation_instruments.len(),
        engine::device::describe(&device),
    );
    let bar = if args.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(opts.steps).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} step {pos}/{len}  {msg}  ETA {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    };
    bar.set_position(trainer.step());
    let mut val = String::from("val -");
    let summary = trainer
        .run(&stop, &mut |event| match event {
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
        })
        .context("train")?;
    bar.finish_and_clear();
    let mut out = Output::default();
    out.line(format!(
        "{} at step {}/{}: loss {}, validation NLL {} nats/sample; {:.0} s of training, {} samples seen",
        if summary.stopped_early { "stopped" } else { "finished" },
        summary.step,
        opts.steps,
        summary.last_loss.map_or("-".into(), |l| format!("{l:.4}")),
        summary.last_validation_nll.map_or("-".into(), |l| format!("{l:.4}")),
        summary.train_secs,
        summary.samples_seen,
    ));
    out.line(format!(
        "model: {} (continue with --resume)",
        args.out.display()
    ));
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
