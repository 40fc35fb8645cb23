//! `timbrel train-student`: a Parallel WaveNet student, started with its shape and loss
//! from the flags, or resumed (grown, its loss weights, layering and bank weight changed).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use engine::train::TrainOptions;
use engine::train::student::{Grow, StudentTrainer};

use super::flags::{RunArgs, StudentWords};
use super::{drive, notes_words};

/// Refinements of the envelope stage's gains a new student plays with (session 19, the
/// shipped student's held-out notes: 0 → 2.45 dB log-mel on TimGM6mb, 1 → 2.32, 2 →
/// 2.27, 3 → 2.25).
const DEFAULT_ENVELOPE_REFINEMENTS: usize = 3;

#[derive(Debug, clap::Args)]
pub struct StudentArgs {
    #[command(flatten)]
    pub run: RunArgs<StudentWords>,
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
    /// Carry each note's measured spectral envelope (its amplitude in this many mel bands,
    /// 1 to 64, every embedding frame) after its embedding: the output stage shapes what
    /// the flows play to it, and blends mix it. Not trained: with --resume it is added to
    /// (or, with 0, taken off) a student at once.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=64))]
    pub envelope_bands: Option<u8>,
    /// Times the envelope stage refines each window's band gains when it plays (0 to 8;
    /// each pass corrects what the last left between neighbouring bands). Training shapes
    /// in one pass. Default for a new student with an envelope: 3; with --resume, as the
    /// student has it.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub envelope_refinements: Option<u8>,
    /// Score the flows' crops after the envelope stage (its gains from each crop, held
    /// fixed), so the flows learn what the envelope does not set (needs a measured
    /// envelope and the CPU's fused pass; default off; with --resume: `true` or `false`
    /// changes the run's from here on, the bare flag turns it on).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub through_envelope: Option<bool>,
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
    /// Share of crops whose note is layered over the same instrument's note one or two
    /// octaves below, so that the student learns to use its sub-partials (default 0;
    /// with --resume: changes the run's share from here on).
    #[arg(long)]
    pub sub_octave_share: Option<f64>,
}

/// `timbrel train-student`.
pub fn run_student(args: &StudentArgs) -> anyhow::Result<ExitCode> {
    let device = args.run.device()?;
    let mut trainer = if args.run.resume {
        let mut trainer = StudentTrainer::resume_growing(
            &args.run.out,
            args.run.steps,
            Grow {
                subpartials: args.subpartials,
                subpartial_bank: args.subpartial_bank,
                measured_subpartials: args.measured_subpartials,
                envelope_bands: args.envelope_bands.map(usize::from),
                envelope_refinements: args.envelope_refinements.map(usize::from),
            },
            &device,
        )
        .context("train-student --resume")?;
        let was = trainer.options().student_loss;
        let weights = autoencoder::student::LossWeights {
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
        if let Some(on) = args
            .through_envelope
            .filter(|&on| on != trainer.options().through_envelope)
        {
            trainer
                .set_through_envelope(on)
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
        config.student.envelope_bands = args.envelope_bands.map_or(0, usize::from);
        if config.student.envelope_bands > 0 {
            config.student.envelope_refinements = args
                .envelope_refinements
                .map_or(DEFAULT_ENVELOPE_REFINEMENTS, usize::from);
        }
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
            sub_octave_share: args.sub_octave_share.unwrap_or(0.0),
            bank_weight: args.bank_weight.unwrap_or(0.0),
            through_envelope: args.through_envelope.unwrap_or(false),
            student_loss: autoencoder::student::LossWeights {
                spectral: args.spectral_weight.unwrap_or(1.0),
                power: args.power_weight.unwrap_or(0.0),
                distill,
            },
            teacher: args.teacher.clone(),
            ..args.run.options()
        };
        StudentTrainer::start(
            &args.run.out,
            &config,
            options,
            &device,
            args.run.overwrite(),
        )
        .context("train-student")?
    };
    let loss = trainer.options().student_loss;
    eprintln!(
        "training the student {} (flows {:?}, width {}; {} encoder, {} layers, width {}; loss {} spectral + {} power + {} distillation{}{}{}) {}, {}",
        args.run.out.display(),
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
        if trainer.options().through_envelope {
            "; scored after the envelope stage"
        } else {
            ""
        },
        notes_words(trainer.data()),
        engine::device::describe(&device),
    );
    drive(
        &mut trainer,
        &args.run.out,
        args.run.quiet,
        ("train-student", "validation loss"),
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
