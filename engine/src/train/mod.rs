//! `timbrel train`: the training loop, its checkpoints and its log.
//!
//! A model directory being trained holds `config.json` + `weights.safetensors` (the EMA
//! weights: a loadable model at every checkpoint), `train_log.jsonl` (one line per step
//! and per validation), and `train/` with the exact training state (`state.json` and the
//! `state-STEP.safetensors` it names: raw weights, Adam moments, EMA). `state.json` is
//! written last, so a checkpoint either happened entirely or not at all. `train/` also
//! holds the folder's mark (`timbrel-run.json`, see `run_dir`): starting over clears only
//! a folder so marked, and only the files a run writes.
//!
//! One generic run ([`Training`], `run.rs`: folder, options, data, optimiser, sampler,
//! progress, checkpoints, exact resume, the loop) that each family's step plugs into:
//! `wavenet.rs` ([`Trainer`]), `student/` ([`student::StudentTrainer`]), `samplernn.rs`
//! ([`samplernn::SampleRnnTrainer`]).

mod checkpoint;
mod data;
mod options;
mod run;
mod run_dir;
pub mod samplernn;
pub mod student;
mod wavenet;

use serde::Serialize;

pub use checkpoint::validation_split;
pub use data::{InstrumentKey, Split, TrainData};
pub use options::{LrRestart, OptionsError, TrainOptions};
pub use run::{FamilyStep, Run, Stepped, Training};
pub use run_dir::{MARKER_FILE, made_by_timbrel};
pub use wavenet::Trainer;

pub const LOG_FILE: &str = "train_log.jsonl";
pub const STATE_DIR: &str = "train";
const STATE_FILE: &str = "state.json";
/// Validation crops evaluated together.
pub const VALIDATION_BATCH: usize = 4;

/// What the loop reports.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    Step {
        step: u64,
        steps: u64,
        loss: f64,
        lr: f64,
        grad_norm: f64,
        samples_per_s: f64,
        eta_secs: f64,
    },
    Validation {
        step: u64,
        nll: f64,
    },
    /// A student's validation: its multi-resolution spectral loss on held-out notes.
    SpectralValidation {
        step: u64,
        loss: f64,
    },
    /// A student's loss weights changed on resume (in force from the step after `step`).
    #[serde(rename = "loss")]
    LossWeights {
        step: u64,
        weights: autoencoder::student::LossWeights,
    },
    /// A run's sub-octave share changed on resume (in force from the step after `step`).
    #[serde(rename = "layering")]
    SubOctaveShare {
        step: u64,
        share: f64,
    },
    /// A run's bank match weight changed on resume (in force from the step after `step`).
    #[serde(rename = "bank")]
    BankWeight {
        step: u64,
        weight: f64,
    },
    /// Whether a run trains through its envelope stage changed on resume (from the step
    /// after `step`).
    #[serde(rename = "through_envelope")]
    ThroughEnvelope {
        step: u64,
        on: bool,
    },
    /// The terms of a student's loss at a step (logged after its `Step`).
    #[serde(rename = "terms")]
    StudentTerms {
        step: u64,
        #[serde(flatten)]
        terms: autoencoder::student::Terms,
    },
    /// A free-running check on held-out notes (see [`TrainOptions::free_run_every`]).
    FreeRun {
        step: u64,
        notes: usize,
        pitched_notes: usize,
        pitch_accuracy: Option<f64>,
        log_mel_distance_db: f64,
        secs: f64,
    },
    Checkpoint {
        step: u64,
    },
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct Summary {
    pub step: u64,
    pub stopped_early: bool,
    pub last_loss: Option<f64>,
    pub last_validation_nll: Option<f64>,
    pub train_notes: usize,
    pub validation_notes: usize,
    pub train_secs: f64,
    pub samples_seen: u64,
}
