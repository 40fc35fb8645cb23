//! `timbrel train` for the WaveNet autoencoder: its step (the hand-written fused step on
//! the CPU, candle's autograd elsewhere), validation NLL and free-running checks, on the
//! generic run.

use std::path::Path;

use autoencoder::wavenet::fused::{FusedBatch, FusedStep};
use autoencoder::wavenet::weights::{self, BiasInit};
use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::checkpoint::read_state;
use super::data::Batch;
use super::run::{
    FamilyStep, NewRun, Run, Stepped, cpu_threads, free_run_check, mean_over_crops, step_draws,
};
use super::{Event, TrainOptions, Training};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::models::dir::CONFIG_FILE;

/// A WaveNet autoencoder's training run over a model directory.
pub type Trainer = Training<WaveNetStep>;

/// The WaveNet autoencoder's part of a run.
pub struct WaveNetStep {
    config: Config,
    model: WaveNetAutoencoder,
    varmap: VarMap,
    /// The hand-written training step, on the CPU (`None`: candle's autograd, on a GPU).
    fused: Option<FusedStep>,
    /// Validation crops (μ-law-scaled) and their notes' f0.
    validation: Vec<(Vec<f32>, f32)>,
}

impl std::fmt::Debug for WaveNetStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaveNetStep")
            .field("fused", &self.fused.is_some())
            .finish_non_exhaustive()
    }
}

impl WaveNetStep {
    fn new(config: &Config, varmap: &VarMap, run: &Run) -> Result<Self> {
        let device = &run.device;
        let model =
            WaveNetAutoencoder::new(config, VarBuilder::from_varmap(varmap, DType::F32, device))?;
        let validation = run
            .data
            .validation_set(run.options.validation_notes, run.options.crop)?;
        let fused = device
            .is_cpu()
            .then(|| FusedStep::new(config, cpu_threads()))
            .transpose()?;
        Ok(Self {
            config: config.clone(),
            model,
            varmap: varmap.clone(),
            fused,
            validation,
        })
    }

    /// The model with the averaged weights (what is saved).
    fn ema_model(&self, run: &Run) -> Result<WaveNetAutoencoder> {
        Ok(WaveNetAutoencoder::new(&self.config, run.ema_vars())?)
    }

    /// The excitation and the decoder's input of a training batch (see [`step_draws`]).
    fn batch_inputs(
        &self,
        run: &Run,
        batch: &Batch,
        x: &Tensor,
        step: u64,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (f0, noise) = step_draws(&run.options, batch, step);
        let crop = run.options.crop;
        let excitation = crate::models::excitation::excitation_tensor(
            &self.model,
            Some(&f0),
            crop,
            &batch.offsets,
        )?;
        let inputs = noise
            .map(|noise| {
                Tensor::from_vec(noise, x.shape(), &run.device).and_then(|noise| x + noise)
            })
            .transpose()
            .map_err(autoencoder::Error::from)?;
        Ok((excitation, inputs))
    }

    /// One update: the fused step on the CPU, candle's autograd elsewhere. Returns the
    /// batch's loss (mean NLL) and the optimiser's figures.
    fn train_step(
        &mut self,
        run: &mut Run,
        crops: &Batch,
        x: &Tensor,
        (inputs, excitation): (Option<&Tensor>, Option<&Tensor>),
        lr: f64,
    ) -> Result<(f64, autoencoder::optim::StepStats)> {
        let Some(fused) = self.fused.as_mut() else {
            let loss = self.model.loss_excited(x, inputs, excitation)?;
            let stats = run.optimizer.step(&loss, lr)?;
            let loss = loss
                .to_dtype(DType::F64)
                .and_then(|l| l.to_scalar::<f64>())
                .map_err(autoencoder::Error::from)?;
            return Ok((loss, stats));
        };
        let host = |t: Option<&Tensor>| {
            t.map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()))
                .transpose()
                .map_err(autoencoder::Error::from)
        };
        let (inputs, excitation) = (host(inputs)?, host(excitation)?);
        {
            let vars = self
                .varmap
                .data()
                .lock()
                .map_err(|_| super::run::poisoned())?;
            fused.load(|name| vars.get(name).map(|v| v.as_tensor()))?;
        }
        let out = fused.run(&FusedBatch {
            batch: run.options.batch,
            time: run.options.crop,
            scaled: &crops.scaled,
            inputs: inputs.as_deref(),
            excitation: excitation.as_deref(),
        })?;
        let stats = run.optimizer.step_with(&out.grads, lr)?;
        Ok((out.loss, stats))
    }
}

impl FamilyStep for WaveNetStep {
    type Config = Config;

    fn config(&self) -> &Config {
        &self.config
    }

    fn train(&mut self, run: &mut Run, step: u64) -> Result<Stepped> {
        let (batch, crop) = (run.options.batch, run.options.crop);
        let crops = run.data.crops(&mut run.rng, &run.options)?;
        let x = Tensor::from_vec(crops.scaled.clone(), (batch, crop), &run.device)
            .map_err(autoencoder::Error::from)?;
        let (excitation, inputs) = self.batch_inputs(run, &crops, &x, step)?;
        let lr = run.options.lr_at(step);
        let (loss, stats) =
            self.train_step(run, &crops, &x, (inputs.as_ref(), excitation.as_ref()), lr)?;
        Ok(Stepped::new(loss, lr, &stats))
    }

    /// Mean NLL (nats per sample) on the validation crops of the EMA weights, in batches
    /// of at most [`super::VALIDATION_BATCH`] crops.
    ///
    /// The EMA weights are plain tensors, not the optimiser's variables, so nothing here
    /// records a graph for backpropagation: each activation is freed once the next layer
    /// has read it, and validation needs a fraction of a training step's memory.
    fn validate(&self, run: &Run) -> Result<f64> {
        let model = self.ema_model(run)?;
        mean_over_crops(&self.validation, run, |x, f0| {
            let excitation = crate::models::excitation::excitation_tensor(
                &model,
                Some(f0),
                run.options.crop,
                &[],
            )?;
            Ok(model.loss_excited(x, None, excitation.as_ref())?)
        })
    }

    fn free_run(&self, run: &Run) -> Result<Event> {
        let model = self.ema_model(run)?;
        free_run_check(run, self.config.ae_hop_length, false, |notes, f0| {
            let sampling = autoencoder::Sampling::default();
            crate::models::reconstruct(&model, notes, Some(f0), sampling, &mut |_| {})
        })
    }
}

impl Trainer {
    /// Starts a new run in `dir`. Refuses a directory that already holds a model unless
    /// `overwrite` allows it (use [`Self::resume`] to continue one).
    pub fn start(
        dir: &Path,
        config: &Config,
        options: TrainOptions,
        device: &Device,
        overwrite: Overwrite,
    ) -> Result<Self> {
        options.check(config)?;
        let new = NewRun {
            dir,
            config_file: CONFIG_FILE,
            options,
            device,
            overwrite,
        };
        let data = new.open()?;
        let varmap = weights::varmap(config, new.options.seed, BiasInit::Zero, DType::F32, device)?;
        let run = new.begin(data, &varmap, config.to_json())?;
        let family = WaveNetStep::new(config, &varmap, &run)?;
        Ok(Self { run, family })
    }

    /// Continues the run saved in `dir` exactly; `steps` sets a new total and `lr` a new
    /// peak learning rate for the rest of the run (both kept in the state from then on).
    pub fn resume(
        dir: &Path,
        steps: Option<u64>,
        lr: Option<f64>,
        device: &Device,
    ) -> Result<Self> {
        let mut state = read_state(dir, steps)?;
        if let Some(lr) = lr {
            // The rest of the run at the new peak: a restarted schedule scales with it.
            let old = state.options.lr;
            if let Some(r) = state.options.lr_restart.as_mut()
                && old > 0.0
            {
                r.lr *= lr / old;
            }
            state.options.lr = lr;
        }
        let config = crate::models::dir::read_config(dir)?;
        state
            .options
            .check(&config)
            .map_err(|e| Error::invalid(dir, e.to_string()))?;
        let varmap = weights::varmap(&config, 0, BiasInit::Zero, DType::F32, device)?;
        let run = Run::resume(dir, state, &varmap, device, &|_| Ok(()))?;
        let family = WaveNetStep::new(&config, &varmap, &run)?;
        Ok(Self { run, family })
    }

    /// Whether steps run the hand-written fused step (on a CPU) rather than candle's
    /// autograd (elsewhere).
    pub fn fused(&self) -> bool {
        self.family.fused.is_some()
    }
}
