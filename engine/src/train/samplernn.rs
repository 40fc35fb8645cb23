//! `timbrel train` for a SampleRNN: the same loop, data, checkpoints, resume, log and
//! free-running checks as the WaveNet's, with truncated back-propagation through time.

use std::path::{Path, PathBuf};

use autoencoder::optim::Optimizer;
use autoencoder::samplernn::{SampleRnn, SampleRnnConfig, SampleRnnGenerator};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::driver::{self, Progress};
use super::{
    Event, Split, Summary, TrainData, TrainOptions, VALIDATION_BATCH, read_state, restore_run,
};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::models::dir::CONFIG_FILE;

/// A SampleRNN training run over a model directory.
pub struct SampleRnnTrainer {
    dir: PathBuf,
    config: SampleRnnConfig,
    options: TrainOptions,
    data: TrainData,
    model: SampleRnn,
    vars: Vec<(String, Var)>,
    optimizer: Optimizer,
    rng: ChaCha8Rng,
    validation: Vec<(Vec<f32>, f32)>,
    device: Device,
    progress: Progress,
}

impl std::fmt::Debug for SampleRnnTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleRnnTrainer")
            .field("dir", &self.dir)
            .field("step", &self.optimizer.step_count())
            .finish()
    }
}

fn lock(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap.data().lock().map_err(|_| {
        Error::Compute(autoencoder::Error::Shape(
            "variable map lock poisoned".into(),
        ))
    })?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// Seeded initial values: weights uniform in ±√(3 / fan-in), biases zero.
fn seed_variables(vars: &[(String, Var)], seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5A3B_1E77);
    for (name, var) in vars {
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let bias = name.ends_with("biases") || name.contains("/b_");
        let fan_in: usize = dims[..dims.len().saturating_sub(1)].iter().product();
        let limit = if bias {
            0.0
        } else {
            (3.0 / fan_in.max(1) as f32).sqrt()
        };
        let values: Vec<f32> = (0..count)
            .map(|_| limit * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let t = Tensor::from_vec(values, dims, var.device()).map_err(autoencoder::Error::from)?;
        var.set(&t).map_err(autoencoder::Error::from)?;
    }
    Ok(())
}

/// Reads `DIR/config.json` as a SampleRNN's.
pub use crate::models::samplernn::read_config;

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
        let config_path = dir.join(CONFIG_FILE);
        super::check_start(dir, &config_path, overwrite)?;
        let split = Split {
            validation_share: options.validation_share,
            seed: options.seed,
        };
        let data = TrainData::open(&options.data, &split, None)?;
        let varmap = VarMap::new();
        let model = SampleRnn::new(
            config,
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        seed_variables(&lock(&varmap)?, options.seed)?;
        let optimizer = Optimizer::new(&varmap, options.optimizer())?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(1);
        super::init_dir(dir, &config_path, overwrite, config.to_json())?;
        Self::assemble(
            dir,
            config,
            options,
            data,
            (model, &varmap),
            optimizer,
            rng,
            device,
            Progress::default(),
        )
    }

    /// Continues the run saved in `dir` exactly (`steps`: a new total).
    pub fn resume(dir: &Path, steps: Option<u64>, device: &Device) -> Result<Self> {
        let state = read_state(dir, steps)?;
        let config = read_config(dir)?;
        let varmap = VarMap::new();
        let model = SampleRnn::new(
            &config,
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        let (data, optimizer, rng) = restore_run(dir, &state, &varmap, device)?;
        let progress = Progress {
            samples_seen: state.samples_seen,
            train_secs: state.train_secs,
            last_validation: None,
        };
        Self::assemble(
            dir,
            &config,
            state.options,
            data,
            (model, &varmap),
            optimizer,
            rng,
            device,
            progress,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        config: &SampleRnnConfig,
        options: TrainOptions,
        data: TrainData,
        (model, varmap): (SampleRnn, &VarMap),
        optimizer: Optimizer,
        rng: ChaCha8Rng,
        device: &Device,
        progress: Progress,
    ) -> Result<Self> {
        let validation = data.validation_set(options.validation_notes, options.crop)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config: config.clone(),
            options,
            data,
            model,
            vars: lock(varmap)?,
            optimizer,
            rng,
            validation,
            device: device.clone(),
            progress,
        })
    }

    pub fn config(&self) -> &SampleRnnConfig {
        &self.config
    }

    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    pub fn data(&self) -> &TrainData {
        &self.data
    }

    pub fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    /// Trains until `options.steps` or until `stop` is set, as [`super::Trainer::run`].
    pub fn run(
        &mut self,
        stop: &std::sync::atomic::AtomicBool,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<Summary> {
        driver::run(self, stop, on_event)
    }

    /// Writes the model (EMA weights) and the exact training state.
    pub fn checkpoint(&self) -> Result<()> {
        driver::Job::checkpoint(self)
    }

    /// The model with the averaged weights (what is saved).
    fn ema_model(&self) -> Result<SampleRnn> {
        let vb = VarBuilder::from_tensors(self.optimizer.ema(), DType::F32, &self.device);
        Ok(SampleRnn::new(&self.config, &vb)?)
    }

    /// Mean teacher-forced NLL of the validation crops (EMA weights).
    pub fn validate(&self) -> Result<f64> {
        let model = self.ema_model()?;
        let crop = self.options.crop;
        let k = self.config.excitation_harmonics;
        let mut total = 0f64;
        for chunk in self.validation.chunks(VALIDATION_BATCH) {
            let flat: Vec<f32> = chunk.iter().flat_map(|(x, _)| x).copied().collect();
            let f0: Vec<f32> = chunk.iter().map(|(_, f0)| *f0).collect();
            let x = Tensor::from_vec(flat, (chunk.len(), crop), &self.device)
                .map_err(autoencoder::Error::from)?;
            let excitation = crate::eval::excitation_of(k, &self.device, Some(&f0), crop, &[])?;
            let loss = model
                .loss(&x, None, excitation.as_ref())?
                .to_dtype(DType::F64)
                .and_then(|l| l.to_scalar::<f64>())
                .map_err(autoencoder::Error::from)?;
            total += loss * chunk.len() as f64;
        }
        Ok(total / self.validation.len().max(1) as f64)
    }

    /// Decodes held-out notes free-running with the EMA weights and scores them.
    pub fn free_run(&self) -> Result<Event> {
        let model = self.ema_model()?;
        let hop = self.config.encoder.ae_hop_length;
        let notes = driver::FreeRunNotes::pick(&self.data, &self.options, hop, false)?;
        let generator = SampleRnnGenerator::new(&model)?;
        let coder = crate::eval::Coder {
            encode: &|x| model.encode(x),
            generator: &generator,
            device: model.device(),
        };
        let out = crate::eval::reconstruct_with(
            &coder,
            &notes.originals,
            Some(&notes.f0),
            autoencoder::Sampling::default(),
            &mut |_| {},
        )?;
        Ok(notes.scored(self.step(), &out))
    }
}

impl driver::Job for SampleRnnTrainer {
    fn options(&self) -> &TrainOptions {
        &self.options
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    fn train(&mut self, step: u64) -> Result<driver::Stepped> {
        let (batch, crop) = (self.options.batch, self.options.crop);
        let crops = self.data.crops(&mut self.rng, &self.options)?;
        let (f0, noise) = super::step_draws(&self.options, &crops, step);
        let k = self.config.excitation_harmonics;
        let excitation =
            crate::eval::excitation_of(k, &self.device, Some(&f0), crop, &crops.offsets)?;
        let tensor = |v: Vec<f32>| {
            Tensor::from_vec(v, (batch, crop), &self.device).map_err(autoencoder::Error::from)
        };
        let inputs = noise
            .map(|n| tensor(crops.scaled.iter().zip(n).map(|(x, e)| x + e).collect()))
            .transpose()?;
        let x = tensor(crops.scaled)?;
        let (loss, grads) =
            self.model
                .tbptt(&x, inputs.as_ref(), excitation.as_ref(), &self.vars)?;
        let lr = self.options.lr_at(step);
        let stats = self.optimizer.step_with(&grads, lr)?;
        Ok(driver::Stepped {
            loss,
            lr,
            grad_norm: stats.grad_norm,
            extra: Vec::new(),
        })
    }

    fn validation(&mut self, step: u64) -> Result<(f64, Event)> {
        let nll = self.validate()?;
        Ok((nll, Event::Validation { step, nll }))
    }

    fn free_run(&self) -> Result<Event> {
        SampleRnnTrainer::free_run(self)
    }

    fn progress(&self) -> &Progress {
        &self.progress
    }

    fn progress_mut(&mut self) -> &mut Progress {
        &mut self.progress
    }

    fn data(&self) -> &TrainData {
        &self.data
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn rng_word_pos(&self) -> u128 {
        self.rng.get_word_pos()
    }
}
