//! `timbrel train`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use autoencoder::Config;
use autoencoder::samplernn::SampleRnnConfig;
use engine::fsutil::Overwrite;
use engine::train::samplernn::SampleRnnTrainer;
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
    /// excitation at f0), small (no excitation), nsynth (Magenta's h512_bo16), or a
    /// SampleRNN: samplernn (tiers of 16 and 4 samples, GRUs of 256, the small encoder),
    /// samplernn-tiny (trains in seconds, for tests).
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
        Some(path) => Ok(engine::models::dir::read_config_file(path)?),
        None => Ok(Config::preset(&args.preset)?),
    }
}

fn options(args: &Args) -> TrainOptions {
    TrainOptions {
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
    }
}

/// Whether this run trains a SampleRNN: a SampleRNN preset, or resuming one.
fn is_samplernn(args: &Args) -> bool {
    if args.resume {
        engine::models::samplernn::is_samplernn(&args.out)
    } else {
        args.config.is_none() && SampleRnnConfig::preset(&args.preset).is_some()
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let overwrite = if args.force {
        Overwrite::Allowed
    } else {
        Overwrite::Never
    };
    if is_samplernn(args) {
        return run_samplernn(args, &device, overwrite);
    }
    let mut trainer = if args.resume {
        Trainer::resume(&args.out, args.steps, args.lr, &device).context("train --resume")?
    } else {
        Trainer::start(&args.out, &config(args)?, options(args), &device, overwrite)
            .context("train")?
    };
    eprintln!(
        "training {} ({} parameters) on {} notes, validating on {} notes of {} held-out instruments, {} ({})",
        args.out.display(),
        trainer.config().parameter_count(),
        trainer.data().train_notes(),
        trainer.data().validation_notes(),
        trainer.data().validation_instruments.len(),
        engine::device::describe(&device),
        if trainer.fused() {
            "fused training step"
        } else {
            "candle autograd"
        },
    );
    let step = trainer.step();
    let steps = trainer.options().steps;
    drive(
        &args.out,
        "validation NLL (nats/sample)",
        step,
        steps,
        args.quiet,
        |stop, on_event| trainer.run(stop, on_event).context("train"),
    )
}

/// `timbrel train --preset samplernn…` (or `--resume` of one).
fn run_samplernn(
    args: &Args,
    device: &candle_core::Device,
    overwrite: Overwrite,
) -> anyhow::Result<ExitCode> {
    if args.lr.is_some() && args.resume {
        anyhow::bail!("train --resume: a SampleRNN run keeps its learning rate");
    }
    let mut trainer = if args.resume {
        SampleRnnTrainer::resume(&args.out, args.steps, device).context("train --resume")?
    } else {
        let config = SampleRnnConfig::preset(&args.preset)
            .ok_or_else(|| anyhow!("train: unknown preset {:?}", args.preset))?;
        SampleRnnTrainer::start(&args.out, &config, options(args), device, overwrite)
            .context("train")?
    };
    eprintln!(
        "training the SampleRNN {} ({} parameters; tiers of {} and {} samples, GRUs of {}; truncated BPTT over {}) on {} notes, validating on {} notes of {} held-out instruments, {}",
        args.out.display(),
        trainer.config().parameter_count(),
        trainer.config().top_frame,
        trainer.config().mid_frame,
        trainer.config().dim,
        trainer.config().tbptt,
        trainer.data().train_notes(),
        trainer.data().validation_notes(),
        trainer.data().validation_instruments.len(),
        engine::device::describe(device),
    );
    let step = trainer.step();
    let steps = trainer.options().steps;
    drive(
        &args.out,
        "validation NLL (nats/sample)",
        step,
        steps,
        args.quiet,
        |stop, on_event| trainer.run(stop, on_event).context("train"),
    )
}

#[derive(Debug, clap::Args)]
pub struct StudentArgs {
    /// A dataset in NSynth's layout (repeat for several).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub data: Vec<PathBuf>,
    /// The student's directory to write (student.json, weights.safetensors, train state, log).
    #[arg(long, value_name = "STUDENT_DIR")]
    pub out: PathBuf,
    /// Gated layers of each flow, first to last.
    #[arg(long, value_delimiter = ',', default_value = "10,10")]
    pub flows: Vec<usize>,
    /// Channels of every flow.
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Layers of the student's own encoder (in stages of 10); with --teacher, the
    /// teacher's encoder is used instead.
    #[arg(long, default_value_t = 10)]
    pub encoder_layers: usize,
    /// Channels of the student's own encoder.
    #[arg(long, default_value_t = 32)]
    pub encoder_width: usize,
    /// Sub-partials of the excitation (partials at m·f0/4 between the harmonics, so the
    /// student can play a waveform that repeats an octave or two below its note, as a
    /// drawbar organ's 16′ stop does); with --resume, grows the student to this many (the
    /// new inputs start at zero weight, so it plays as before until it learns them).
    #[arg(long)]
    pub subpartials: Option<usize>,
    /// Add the sub-partials to the output as a bank of sines, each at a gain learnt per
    /// embedding frame (needs --subpartials; with --resume, adds a bank to a student
    /// without one, its gains starting small).
    #[arg(long)]
    pub subpartial_bank: bool,
    /// Measure each note's sub-partials into its embedding frames (their amplitudes at its
    /// own pitch, after the encoder's channels): the bank plays each at the measured level
    /// times a learnt gain (needs --subpartial-bank or a student with a bank; with
    /// --resume, grows a student: the bank starts over at the measured levels).
    #[arg(long)]
    pub measured_subpartials: bool,
    /// Weight of the bank's match term: each gain of the sub-partial bank against the
    /// amplitude the note has at its sub-partial (measured against the excitation), so
    /// the encoder learns what sub-octaves a note has (default 0; with --resume: changes
    /// the run's weight from here on).
    #[arg(long)]
    pub bank_weight: Option<f64>,
    /// A WaveNet teacher (model directory) to distil from: the student carries its
    /// encoder, frozen, and --distill-weight defaults to 1.
    #[arg(long, value_name = "MODEL_DIR")]
    pub teacher: Option<PathBuf>,
    /// Weight of the multi-resolution spectral loss against the real notes (default 1;
    /// with --resume: changes the run's weight from here on).
    #[arg(long)]
    pub spectral_weight: Option<f64>,
    /// Weight of the power loss (time-averaged STFT power against the real note's;
    /// default 0; with --resume: changes the run's weight from here on).
    #[arg(long)]
    pub power_weight: Option<f64>,
    /// Weight of the distillation KL(student ‖ teacher), nats per sample (needs
    /// --teacher; default 1 with one, 0 without).
    #[arg(long)]
    pub distill_weight: Option<f64>,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Samples per training crop (a multiple of 512).
    #[arg(long, default_value_t = 4096)]
    pub crop: usize,
    /// Peak learning rate (linear warm-up, then cosine decay to a tenth).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// Share of crops trained with no excitation, so that the student given no pitch
    /// still plays.
    #[arg(long, default_value_t = 0.05)]
    pub unpitched_share: f64,
    /// Share of crops whose note is layered over the same instrument's note one or two
    /// octaves below, so that the student learns to use its sub-partials (default 0;
    /// with --resume: changes the run's share from here on).
    #[arg(long)]
    pub sub_octave_share: Option<f64>,
    #[arg(long, default_value_t = 100)]
    pub checkpoint_every: u64,
    /// Steps between validations (spectral loss on held-out notes).
    #[arg(long, default_value_t = 100)]
    pub validate_every: u64,
    /// Steps between free-running checks (pitch accuracy, log-mel distance; 0: none).
    #[arg(long, default_value_t = 100)]
    pub free_run_every: u64,
    #[arg(long, default_value_t = 16)]
    pub free_run_notes: usize,
    /// Continue the run saved in --out.
    #[arg(long)]
    pub resume: bool,
    /// Start over in an --out that already holds a student.
    #[arg(long, conflicts_with = "resume")]
    pub force: bool,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `timbrel train-student`.
pub fn run_student(args: &StudentArgs) -> anyhow::Result<ExitCode> {
    use engine::train::student::StudentTrainer;
    let device = engine::device::by_name(&args.device).map_err(|e| anyhow!(e))?;
    let mut trainer = if args.resume {
        let mut trainer = StudentTrainer::resume_growing(
            &args.out,
            args.steps,
            engine::train::student::Grow {
                subpartials: args.subpartials,
                subpartial_bank: args.subpartial_bank,
                measured_subpartials: args.measured_subpartials,
            },
            &device,
        )
        .context("train-student --resume")?;
        let was = trainer.options().student_loss;
        let weights = autoencoder::student::Weights {
            spectral: args.spectral_weight.unwrap_or(was.spectral),
            power: args.power_weight.unwrap_or(was.power),
            distill: args.distill_weight.unwrap_or(was.distill),
        };
        if weights != was {
            trainer
                .set_loss(weights)
                .context("train-student --resume")?;
        }
        if let Some(share) = args
            .sub_octave_share
            .filter(|&s| s != trainer.options().sub_octave_share)
        {
            trainer
                .set_sub_octave_share(share)
                .context("train-student --resume")?;
        }
        if let Some(weight) = args
            .bank_weight
            .filter(|&w| w != trainer.options().bank_weight)
        {
            trainer
                .set_bank_weight(weight)
                .context("train-student --resume")?;
        }
        trainer
    } else {
        let mut config = autoencoder::student::StudentAutoencoderConfig::small();
        config.student.flows = args.flows.clone();
        config.student.width = args.width;
        config.encoder.ae_num_layers = args.encoder_layers;
        config.encoder.ae_width = args.encoder_width;
        config.student.excitation_subpartials = args.subpartials.unwrap_or(0);
        config.student.subpartial_bank = args.subpartial_bank;
        if args.measured_subpartials {
            config.student.measured_subpartials = true;
            config.student.bottleneck += config.student.excitation_subpartials;
        }
        if let Some(teacher) = &args.teacher {
            // A distilled student reads its teacher's embedding, at the teacher's pitch.
            let tc =
                engine::models::dir::read_config(teacher).context("train-student --teacher")?;
            config.student.excitation_harmonics = tc.excitation_harmonics;
            config.student.hop_length = tc.ae_hop_length;
            config.student.bottleneck = tc.ae_bottleneck_width + config.student.measured_channels();
            config.encoder = tc;
        }
        let distill = args
            .distill_weight
            .unwrap_or(if args.teacher.is_some() { 1.0 } else { 0.0 });
        if distill > 0.0 && args.teacher.is_none() {
            anyhow::bail!("train-student: --distill-weight needs --teacher");
        }
        let options = TrainOptions {
            data: args.data.clone(),
            steps: args.steps.unwrap_or(TrainOptions::default().steps),
            batch: args.batch,
            crop: args.crop,
            lr: args.lr,
            warmup_steps: args.warmup,
            checkpoint_every: args.checkpoint_every,
            validate_every: args.validate_every,
            seed: args.seed,
            unpitched_share: args.unpitched_share,
            sub_octave_share: args.sub_octave_share.unwrap_or(0.0),
            bank_weight: args.bank_weight.unwrap_or(0.0),
            free_run_every: args.free_run_every,
            free_run_notes: args.free_run_notes,
            student_loss: autoencoder::student::Weights {
                spectral: args.spectral_weight.unwrap_or(1.0),
                power: args.power_weight.unwrap_or(0.0),
                distill,
            },
            teacher: args.teacher.clone(),
            ..Default::default()
        };
        let overwrite = if args.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        };
        StudentTrainer::start(&args.out, &config, options, &device, overwrite)
            .context("train-student")?
    };
    let loss = trainer.options().student_loss;
    eprintln!(
        "training the student {} (flows {:?}, width {}; {} encoder, {} layers, width {}; loss {} spectral + {} power + {} distillation{}{}) on {} notes, validating on {} notes of {} held-out instruments, {}",
        args.out.display(),
        trainer.config().student.flows,
        trainer.config().student.width,
        if trainer.options().teacher.is_some() {
            "the teacher's frozen"
        } else {
            "its own"
        },
        trainer.config().encoder.ae_num_layers,
        trainer.config().encoder.ae_width,
        loss.spectral,
        loss.power,
        loss.distill,
        trainer
            .options()
            .teacher
            .as_ref()
            .map_or(String::new(), |t| format!(" from {}", t.display())),
        layering(trainer.options().sub_octave_share),
        trainer.data().train_notes(),
        trainer.data().validation_notes(),
        trainer.data().validation_instruments.len(),
        engine::device::describe(&device),
    );
    let step = trainer.step();
    let steps = trainer.options().steps;
    drive(
        &args.out,
        "validation loss",
        step,
        steps,
        args.quiet,
        |stop, on_event| trainer.run(stop, on_event).context("train-student"),
    )
}

/// The start line's words for a run's sub-octave layering (nothing when off).
fn layering(share: f64) -> String {
    if share > 0.0 {
        format!(
            "; {:.0} % of crops layered over an octave or two below",
            share * 100.0
        )
    } else {
        String::new()
    }
}

/// Runs a training loop with a progress bar (unless `quiet`), Ctrl-C asking it to
/// checkpoint and stop, and a summary at the end.
fn drive(
    out_dir: &std::path::Path,
    validation: &str,
    step: u64,
    steps: u64,
    quiet: bool,
    run: impl FnOnce(&AtomicBool, &mut dyn FnMut(&Event)) -> anyhow::Result<engine::train::Summary>,
) -> anyhow::Result<ExitCode> {
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
    let summary = run(&stop, &mut |event| {
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
            | Event::BankWeight { .. } => {}
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
    })?;
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
