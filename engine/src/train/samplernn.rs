//! `timbrel train` for a SampleRNN: the same loop, data, checkpoints, resume, log and
//! free-running checks as the WaveNet's, with truncated back-propagation through time.

use std::path::Path;

use autoencoder::samplernn::{SampleRnn, SampleRnnConfig};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};

use super::checkpoint::read_state;
use super::run::{
    FamilyStep, NewRun, Run, Start, Stepped, free_run_check, mean_over_crops, seed_uniform,
    sorted_vars, step_draws,
};
use super::{Event, TrainOptions, Training};
use crate::error::Result;
use crate::fsutil::Overwrite;
use crate::models::dir::CONFIG_FILE;

/// A SampleRNN training run over a model directory.
pub type SampleRnnTrainer = Training<SampleRnnStep>;

/// A SampleRNN's part of a run.
pub struct SampleRnnStep {
    config: SampleRnnConfig,
    model: SampleRnn,
    vars: Vec<(String, Var)>,
    validation: Vec<(Vec<f32>, f32)>,
}

impl std::fmt::Debug for SampleRnnStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleRnnStep")
            .field("vars", &self.vars.len())
            .finish_non_exhaustive()
    }
}

/// Seeded initial values: weights uniform in ±√(3 / fan-in), biases zero.
fn seed_variables(vars: &[(String, Var)], seed: u64) -> Result<()> {
    seed_uniform(vars, seed ^ 0x5A3B_1E77, |name| {
        if name.ends_with("biases") || name.contains("/b_") {
            Start::Zero
        } else {
            Start::Uniform
        }
    })
}

/// Reads `DIR/config.json` as a SampleRNN's.
pub use crate::models::samplernn::read_config;

/// A SampleRNN over fresh variables (their values set by a start or a resume).
fn model(config: &SampleRnnConfig, device: &Device) -> Result<(SampleRnn, VarMap)> {
    let varmap = VarMap::new();
    let model = SampleRnn::new(
        config,
        &VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    Ok((model, varmap))
}

impl SampleRnnStep {
    fn new(
        config: &SampleRnnConfig,
        (model, varmap): (SampleRnn, &VarMap),
        run: &Run,
    ) -> Result<Self> {
        let validation = run
            .data
            .validation_set(run.options.validation_notes, run.options.crop)?;
        Ok(Self {
            config: config.clone(),
            model,
            vars: sorted_vars(varmap)?,
            validation,
        })
    }

    /// The model with the averaged weights (what is saved).
    fn ema_model(&self, run: &Run) -> Result<SampleRnn> {
        Ok(SampleRnn::new(&self.config, &run.ema_vars())?)
    }
}

impl SampleRnnTrainer {
    /// Starts a new run in `dir` (refused over an existing model unless `overwrite`).
    pub fn start(
        dir: &Path,
        config: &SampleRnnConfig,
        options: TrainOptions,
        device: &Device,
        overwrite: Overwrite,
    ) -> Result<Self> {
        config.validate()?;
        options.check(&config.encoder)?;
        let new = NewRun {
            dir,
            config_file: CONFIG_FILE,
            options,
            device,
            overwrite,
        };
        let data = new.open()?;
        let (model, varmap) = model(config, device)?;
        seed_variables(&sorted_vars(&varmap)?, new.options.seed)?;
        let run = new.begin(data, &varmap, config.to_json())?;
        let family = SampleRnnStep::new(config, (model, &varmap), &run)?;
        Ok(Self { run, family })
    }

    /// Continues the run saved in `dir` exactly (`steps`: a new total).
    pub fn resume(dir: &Path, steps: Option<u64>, device: &Device) -> Result<Self> {
        let state = read_state(dir, steps)?;
        let config = read_config(dir)?;
        let (model, varmap) = model(&config, device)?;
        let run = Run::resume(dir, state, &varmap, device, &|_| Ok(()))?;
        let family = SampleRnnStep::new(&config, (model, &varmap), &run)?;
        Ok(Self { run, family })
    }
}

impl FamilyStep for SampleRnnStep {
    type Config = SampleRnnConfig;

    fn config(&self) -> &SampleRnnConfig {
        &self.config
    }

    fn train(&mut self, run: &mut Run, step: u64) -> Result<Stepped> {
        let (batch, crop) = (run.options.batch, run.options.crop);
        let crops = run.data.crops(&mut run.rng, &run.options)?;
        let (f0, noise) = step_draws(&run.options, &crops, step);
        let k = self.config.excitation_harmonics;
        let excitation = crate::models::excitation::excitation_of(
            k,
            &run.device,
            Some(&f0),
            crop,
            &crops.offsets,
        )?;
        let tensor = |v: Vec<f32>| {
            Tensor::from_vec(v, (batch, crop), &run.device).map_err(autoencoder::Error::from)
        };
        let inputs = noise
            .map(|n| tensor(crops.scaled.iter().zip(n).map(|(x, e)| x + e).collect()))
            .transpose()?;
        let x = tensor(crops.scaled)?;
        let (loss, grads) =
            self.model
                .tbptt(&x, inputs.as_ref(), excitation.as_ref(), &self.vars)?;
        let lr = run.options.lr_at(step);
        let stats = run.optimizer.step_with(&grads, lr)?;
        Ok(Stepped::new(loss, lr, &stats))
    }

    /// Mean teacher-forced NLL of the validation crops (EMA weights).
    fn validate(&self, run: &Run) -> Result<f64> {
        let model = self.ema_model(run)?;
        let k = self.config.excitation_harmonics;
        mean_over_crops(&self.validation, run, |x, f0| {
            let excitation = crate::models::excitation::excitation_of(
                k,
                &run.device,
                Some(f0),
                run.options.crop,
                &[],
            )?;
            Ok(model.loss(x, None, excitation.as_ref())?)
        })
    }

    fn free_run(&self, run: &Run) -> Result<Event> {
        let model = self.ema_model(run)?;
        let hop = self.config.encoder.ae_hop_length;
        free_run_check(run, hop, false, |notes, f0| {
            let sampling = autoencoder::Sampling::default();
            crate::models::reconstruct(&model, notes, Some(f0), sampling, &mut |_| {})
        })
    }
}
