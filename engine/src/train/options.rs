//! What a training run is asked for, and the checks that it can make a run.

use std::path::PathBuf;

use autoencoder::Config;
use autoencoder::optim::OptimizerConfig;
use serde::{Deserialize, Serialize};

/// Everything about a run except the model's shape. Saved in the state, so `--resume`
/// continues with the same settings (only `steps` may change).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainOptions {
    pub data: Vec<PathBuf>,
    /// Total optimiser steps of the run.
    pub steps: u64,
    pub batch: usize,
    /// Samples per training crop (NSynth: 6144); a multiple of the hop length.
    pub crop: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up from 0 to `lr` over this many steps, then cosine decay to
    /// `lr · final_lr_ratio` at `steps`.
    pub warmup_steps: u64,
    pub final_lr_ratio: f64,
    pub weight_decay: f64,
    pub clip_norm: f64,
    pub ema_decay: f64,
    pub seed: u64,
    pub checkpoint_every: u64,
    pub validate_every: u64,
    pub validation_notes: usize,
    pub validation_share: f64,
    /// σ of Gaussian noise added to the decoder's input (μ-law-scaled units; a class is
    /// 1/128), not to its targets, so that it learns to continue from imperfect past
    /// samples, as it must when free-running (LPCNet, FFTNet). 0: off.
    #[serde(default)]
    pub input_noise: f64,
    /// Share of crops trained with an all-zero excitation (f0 0), so that a pitched
    /// model still makes a sound when given no pitch. Only for models with an excitation.
    #[serde(default)]
    pub unpitched_share: f64,
    /// Share of crops whose note is layered over the same instrument's note one or two
    /// octaves below (see [`super::data::TrainData::batch_layered`]), so that a model
    /// with sub-partials of excitation learns to play waveforms that repeat below their
    /// note. 0: off.
    #[serde(default)]
    pub sub_octave_share: f64,
    /// Weight of a student's bank match term (a student with a sub-partial bank: each
    /// gain against the amplitude the note has at its sub-partial, see
    /// `autoencoder::student::model::bank_match`); computed by the CPU's fused pass. 0: off.
    #[serde(default)]
    pub bank_weight: f64,
    /// Train a student with a measured envelope through its envelope stage: the loss
    /// scores the flows' crop after the stage (its gains from the crop itself, held
    /// fixed), so the flows learn what the envelope does not set. Computed by the CPU's
    /// fused pass. false: the flows' own output is scored.
    #[serde(default)]
    pub through_envelope: bool,
    /// Steps between free-running checks (0: none): the EMA model decodes the first
    /// `free_run_secs` of `free_run_notes` held-out notes from their own embeddings and
    /// f0, sampled, and the log records their pitch accuracy and log-mel distance.
    #[serde(default)]
    pub free_run_every: u64,
    #[serde(default = "default_free_run_notes")]
    pub free_run_notes: usize,
    #[serde(default = "default_free_run_secs")]
    pub free_run_secs: f64,
    /// A student's loss terms (see [`autoencoder::student::LossWeights`]); unused by `train`.
    #[serde(default)]
    pub student_loss: autoencoder::student::LossWeights,
    /// The WaveNet teacher a student is distilled from (its model directory): the
    /// student carries the teacher's encoder, frozen. `None`: no teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher: Option<PathBuf>,
    /// Where a resumed run was given a new `steps`: from that step on the learning rate
    /// falls by a cosine from what it was there to `lr · final_lr_ratio` at the new
    /// `steps` (see [`TrainOptions::with_steps`]), instead of the whole schedule
    /// stretching (or shrinking) under the steps already taken. `None`: one schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_restart: Option<LrRestart>,
}

/// A resumed run's new schedule: from `step`, where the learning rate was `lr`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LrRestart {
    pub step: u64,
    pub lr: f64,
}

fn default_free_run_notes() -> usize {
    8
}

fn default_free_run_secs() -> f64 {
    1.0
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            steps: 10_000,
            batch: 8,
            crop: 6144,
            lr: 6e-4,
            warmup_steps: 200,
            final_lr_ratio: 0.1,
            weight_decay: 0.0,
            clip_norm: 1.0,
            ema_decay: 0.9999,
            seed: 0,
            checkpoint_every: 100,
            validate_every: 100,
            validation_notes: 16,
            validation_share: 0.1,
            input_noise: 0.0,
            unpitched_share: 0.0,
            sub_octave_share: 0.0,
            bank_weight: 0.0,
            through_envelope: false,
            free_run_every: 0,
            free_run_notes: default_free_run_notes(),
            free_run_secs: default_free_run_secs(),
            student_loss: autoencoder::student::LossWeights::default(),
            teacher: None,
            lr_restart: None,
        }
    }
}

impl TrainOptions {
    /// The learning rate of step `step` (1-based); after an [`LrRestart`], of the steps
    /// after it (a resumed run asks for no earlier ones).
    pub fn lr_at(&self, step: u64) -> f64 {
        let floor = self.lr * self.final_lr_ratio;
        if let Some(r) = self.lr_restart.filter(|r| step > r.step) {
            let span = self.steps.saturating_sub(r.step).max(1) as f64;
            let progress = ((step - r.step) as f64 / span).min(1.0);
            let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
            return floor + (r.lr - floor) * cosine;
        }
        if step <= self.warmup_steps {
            return self.lr * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / span).min(1.0);
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
        self.lr * (self.final_lr_ratio + (1.0 - self.final_lr_ratio) * cosine)
    }

    /// These options with `steps` total steps, for a run resumed at step `done`: the
    /// learning rate goes on from where it was at `done`, falling by a cosine to its floor
    /// at `steps` (a restart of the schedule, [`LrRestart`]); the same steps change nothing.
    pub fn with_steps(mut self, steps: u64, done: u64) -> Self {
        if steps != self.steps && done > 0 {
            self.lr_restart = Some(LrRestart {
                step: done,
                lr: self.lr_at(done),
            });
        }
        self.steps = steps;
        self
    }

    pub(crate) fn optimizer(&self) -> OptimizerConfig {
        OptimizerConfig {
            weight_decay: self.weight_decay,
            clip_norm: (self.clip_norm > 0.0).then_some(self.clip_norm),
            ema_decay: self.ema_decay,
            ..Default::default()
        }
    }

    pub(crate) fn check(&self, config: &Config) -> std::result::Result<(), OptionsError> {
        if self.data.is_empty() {
            return Err(OptionsError::NoData);
        }
        if self.crop == 0
            || !self.crop.is_multiple_of(config.ae_hop_length)
            || self.crop > crate::nsynth::NOTE_SAMPLES
        {
            return Err(OptionsError::Crop {
                crop: self.crop,
                hop: config.ae_hop_length,
                max: crate::nsynth::NOTE_SAMPLES,
            });
        }
        if self.batch == 0 || self.steps == 0 {
            return Err(OptionsError::BatchOrSteps);
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(OptionsError::LearningRate(self.lr));
        }
        if !(0.0..=1.0).contains(&self.input_noise) {
            return Err(OptionsError::InputNoise(self.input_noise));
        }
        if !(0.0..=1.0).contains(&self.unpitched_share) {
            return Err(OptionsError::UnpitchedShare(self.unpitched_share));
        }
        if !(0.0..=1.0).contains(&self.sub_octave_share) {
            return Err(OptionsError::SubOctaveShare(self.sub_octave_share));
        }
        if !(self.bank_weight >= 0.0 && self.bank_weight.is_finite()) {
            return Err(OptionsError::BankWeight(self.bank_weight));
        }
        if !(self.free_run_secs > 0.0 && self.free_run_secs <= 4.0) || self.free_run_notes == 0 {
            return Err(OptionsError::FreeRun);
        }
        Ok(())
    }
}

pub use crate::error::OptionsError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_steps_on_resume_continue_the_learning_rate_from_where_it_was() {
        let run = TrainOptions {
            steps: 1_000,
            warmup_steps: 100,
            lr: 1e-3,
            ..Default::default()
        };
        let floor = 1e-4;
        assert!((run.lr_at(1_000) - floor).abs() < 1e-12);
        // Extended at step 600: step 601 is where 600 was, and the new end is the floor.
        let at = run.lr_at(600);
        let longer = run.clone().with_steps(3_000, 600);
        assert!(
            (longer.lr_at(601) - at).abs() < 1e-6 * at,
            "{} against {at}",
            longer.lr_at(601)
        );
        assert!((longer.lr_at(3_000) - floor).abs() < 1e-12);
        assert!(longer.lr_at(1_800) < at && longer.lr_at(1_800) > floor);
        // Extended again, and past the end of a finished run: it goes on from there.
        let again = longer.clone().with_steps(4_000, 2_000);
        assert!((again.lr_at(2_001) - longer.lr_at(2_000)).abs() < 1e-6 * floor);
        let finished = run.clone().with_steps(2_000, 1_000);
        assert!((finished.lr_at(1_500) - floor).abs() < 1e-12);
        // The same steps, or a fresh run: one schedule, as before.
        assert_eq!(run.clone().with_steps(1_000, 600), run);
        assert_eq!(run.clone().with_steps(2_000, 0).lr_restart, None);
    }
}
