//! The flags `timbrel train` and `timbrel train-student` share ([`RunArgs`], flattened into
//! each), with what each command says and defaults to in them ([`Words`]).
//!
//! The defaults that differ are strings here, not `default_value_t`: clap's derive keeps
//! a `default_value_t` in one static per field, which a generic struct would share
//! between both commands. The tests below hold them to the engine's `TrainOptions`.

use std::marker::PhantomData;
use std::path::PathBuf;

use anyhow::anyhow;
use engine::fsutil::Overwrite;
use engine::train::TrainOptions;

/// What one command says and defaults to in the shared flags.
#[derive(Debug)]
pub struct Wording {
    pub out_name: &'static str,
    pub out_help: &'static str,
    pub crop: &'static str,
    pub crop_help: &'static str,
    /// `None`: no default shown (`timbrel train`'s rate stays the run's on --resume).
    pub lr: Option<&'static str>,
    pub lr_help: &'static str,
    pub warmup: &'static str,
    pub checkpoint_help: Option<&'static str>,
    pub validate_help: &'static str,
    pub unpitched_share: &'static str,
    pub unpitched_help: &'static str,
    pub free_run_every: &'static str,
    pub free_run_help: &'static str,
    pub free_run_notes: &'static str,
    pub free_run_notes_help: Option<&'static str>,
    pub resume_help: &'static str,
    pub force_help: &'static str,
    pub device_help: Option<&'static str>,
}

/// A command that flattens [`RunArgs`].
pub trait Words {
    const WORDS: Wording;
}

/// `timbrel train`'s words.
#[derive(Debug, Clone, Copy)]
pub struct TrainWords;

impl Words for TrainWords {
    const WORDS: Wording = Wording {
        out_name: "MODEL_DIR",
        out_help: "The model directory to write (config.json, weights.safetensors, train state, log)",
        crop: "6144",
        crop_help: "Samples per training crop (a multiple of the hop length; NSynth used 6144)",
        lr: None,
        lr_help: "Peak learning rate (linear warm-up, then cosine decay to a tenth) [default: 6e-4]. With --resume: a new peak for the rest of the run (the schedule keeps its shape)",
        warmup: "200",
        checkpoint_help: Some("Steps between checkpoints (also written on Ctrl-C and at the end)"),
        validate_help: "Steps between validation NLL measurements",
        unpitched_share: "0",
        unpitched_help: "Share of crops trained with no excitation (pitched models), so that a model given no pitch still plays",
        free_run_every: "0",
        free_run_help: "Steps between free-running checks on held-out notes (0: none); pitch accuracy and log-mel distance go to train_log.jsonl",
        free_run_notes: "8",
        free_run_notes_help: Some(
            "Held-out notes a free-running check decodes (their first second each)",
        ),
        resume_help: "Continue the run saved in --out (its settings are kept; --steps may extend it)",
        force_help: "Start over in an --out that already holds a model",
        device_help: Some("cpu, or cuda in a build with the cuda feature"),
    };
}

/// `timbrel train-student`'s words.
#[derive(Debug, Clone, Copy)]
pub struct StudentWords;

impl Words for StudentWords {
    const WORDS: Wording = Wording {
        out_name: "STUDENT_DIR",
        out_help: "The student's directory to write (student.json, weights.safetensors, train state, log)",
        crop: "4096",
        crop_help: "Samples per training crop (a multiple of 512)",
        lr: Some("0.001"),
        lr_help: "Peak learning rate (linear warm-up, then cosine decay to a tenth)",
        warmup: "100",
        checkpoint_help: None,
        validate_help: "Steps between validations (spectral loss on held-out notes)",
        unpitched_share: "0.05",
        unpitched_help: "Share of crops trained with no excitation, so that the student given no pitch still plays",
        free_run_every: "100",
        free_run_help: "Steps between free-running checks (pitch accuracy, log-mel distance; 0: none)",
        free_run_notes: "16",
        free_run_notes_help: None,
        resume_help: "Continue the run saved in --out",
        force_help: "Start over in an --out that already holds a student",
        device_help: None,
    };
}

/// The flags of a training run, whatever it trains.
#[derive(Debug, clap::Args)]
pub struct RunArgs<W: Words> {
    /// A dataset in NSynth's layout (repeat for several).
    #[arg(long, value_name = "DIR", required_unless_present = "resume")]
    pub data: Vec<PathBuf>,
    #[arg(long, value_name = W::WORDS.out_name, help = W::WORDS.out_help)]
    pub out: PathBuf,
    /// Total optimiser steps (with --resume: the new total).
    #[arg(long)]
    pub steps: Option<u64>,
    #[arg(long, default_value_t = TrainOptions::default().batch)]
    pub batch: usize,
    #[arg(long, default_value = W::WORDS.crop, help = W::WORDS.crop_help)]
    pub crop: usize,
    #[arg(long, default_value = W::WORDS.lr, help = W::WORDS.lr_help)]
    pub lr: Option<f64>,
    #[arg(long, default_value = W::WORDS.warmup)]
    pub warmup: u64,
    #[arg(long, default_value_t = TrainOptions::default().checkpoint_every, help = W::WORDS.checkpoint_help)]
    pub checkpoint_every: u64,
    #[arg(long, default_value_t = TrainOptions::default().validate_every, help = W::WORDS.validate_help)]
    pub validate_every: u64,
    #[arg(long, default_value = W::WORDS.unpitched_share, help = W::WORDS.unpitched_help)]
    pub unpitched_share: f64,
    #[arg(long, default_value = W::WORDS.free_run_every, help = W::WORDS.free_run_help)]
    pub free_run_every: u64,
    #[arg(long, default_value = W::WORDS.free_run_notes, help = W::WORDS.free_run_notes_help)]
    pub free_run_notes: usize,
    /// Share of the instruments held out from training, for validation and for
    /// `eval --held-out` (at least one; more than 0, at most 0.5). Fixed when a run
    /// starts: a resumed run keeps its split. [default: 0.1]
    #[arg(long, value_name = "SHARE", conflicts_with = "resume", value_parser = held_out_share)]
    pub held_out_share: Option<f64>,
    #[arg(long, help = W::WORDS.resume_help)]
    pub resume: bool,
    #[arg(long, conflicts_with = "resume", help = W::WORDS.force_help)]
    pub force: bool,
    #[arg(long, default_value = "cpu", help = W::WORDS.device_help)]
    pub device: String,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[arg(skip)]
    words: PhantomData<W>,
}

fn held_out_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 0.5 => Ok(share),
        _ => Err(format!("{text:?} is not a share above 0 and at most 0.5")),
    }
}

impl<W: Words> RunArgs<W> {
    /// The run's options as these flags set them (the family's own at their defaults).
    pub fn options(&self) -> TrainOptions {
        let defaults = TrainOptions::default();
        TrainOptions {
            data: self.data.clone(),
            steps: self.steps.unwrap_or(defaults.steps),
            batch: self.batch,
            crop: self.crop,
            lr: self.lr.unwrap_or(defaults.lr),
            warmup_steps: self.warmup,
            checkpoint_every: self.checkpoint_every,
            validate_every: self.validate_every,
            seed: self.seed,
            unpitched_share: self.unpitched_share,
            free_run_every: self.free_run_every,
            free_run_notes: self.free_run_notes,
            validation_share: self.held_out_share.unwrap_or(defaults.validation_share),
            ..defaults
        }
    }

    /// Whether a start may clear an earlier run in --out (`--force`).
    pub fn overwrite(&self) -> Overwrite {
        if self.force {
            Overwrite::Allowed
        } else {
            Overwrite::Never
        }
    }

    /// The device --device names.
    pub fn device(&self) -> anyhow::Result<candle_core::Device> {
        engine::device::by_name(&self.device).map_err(|e| anyhow!(e))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli<W: Words> {
        #[command(flatten)]
        run: RunArgs<W>,
    }

    fn parse<W: Words>(args: &[&str]) -> TrainOptions {
        let argv = ["timbrel", "--out", "m", "--data", "d"].iter().chain(args);
        Cli::<W>::try_parse_from(argv).unwrap().run.options()
    }

    #[test]
    fn train_defaults_are_the_engines() {
        let options = parse::<TrainWords>(&[]);
        let defaults = TrainOptions {
            data: vec!["d".into()],
            ..TrainOptions::default()
        };
        assert_eq!(options, defaults);
    }

    #[test]
    fn each_command_keeps_its_own_defaults() {
        let student = parse::<StudentWords>(&[]);
        assert_eq!(
            (student.crop, student.lr, student.warmup_steps),
            (4096, 1e-3, 100)
        );
        assert_eq!(
            (
                student.unpitched_share,
                student.free_run_every,
                student.free_run_notes
            ),
            (0.05, 100, 16)
        );
        // Built after the student's, the train command's defaults are still its own.
        assert_eq!(parse::<TrainWords>(&[]).crop, 6144);
        let given = parse::<TrainWords>(&["--crop", "512", "--lr", "1e-4", "--seed", "3"]);
        assert_eq!((given.crop, given.lr, given.seed), (512, 1e-4, 3));
        let held = parse::<StudentWords>(&["--held-out-share", "0.13"]);
        assert_eq!(held.validation_share, 0.13);
        let argv = ["timbrel", "--out", "m", "--data", "d", "--held-out-share"];
        for bad in ["0", "0.6", "x"] {
            let args = argv.iter().chain([&bad]);
            assert!(Cli::<StudentWords>::try_parse_from(args).is_err(), "{bad}");
        }
    }
}
