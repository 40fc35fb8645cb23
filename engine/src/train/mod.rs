//! `timbrel train`: the training loop, its checkpoints and its log.
//!
//! A model directory being trained holds `config.json` + `weights.safetensors` (the EMA
//! weights: a loadable model at every checkpoint), `train_log.jsonl` (one line per step
//! and per validation), and `train/` with the exact training state (`state.json` and the
//! `state-STEP.safetensors` it names: raw weights, Adam moments, EMA). `state.json` is
//! written last, so a checkpoint either happened entirely or not at all. `train/` also
//! holds the folder's mark (`timbrel-run.json`, see `run_dir`): starting over clears only
//! a folder so marked, and only the files a run writes.

mod data;
mod driver;
mod options;
mod run_dir;
pub mod samplernn;
pub mod student;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use autoencoder::optim::Optimizer;
use autoencoder::wavenet::fused::{FusedBatch, FusedStep};
use autoencoder::wavenet::weights::{self, BiasInit};
use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub use data::{InstrumentKey, Split, TrainData};
pub use options::{LrRestart, OptionsError, TrainOptions};
pub use run_dir::{MARKER_FILE, made_by_timbrel};
pub(crate) use run_dir::{check_start, init_dir};

use crate::error::{Error, Result, read_bounded};
use crate::fsutil::{Overwrite, write_atomic, write_tensors};
use crate::models::dir::{CONFIG_FILE, WEIGHTS_FILE};

pub const LOG_FILE: &str = "train_log.jsonl";
pub const STATE_DIR: &str = "train";
const STATE_FILE: &str = "state.json";
/// Validation crops evaluated together.
pub const VALIDATION_BATCH: usize = 4;

/// The resumable part of a run, `train/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    options: TrainOptions,
    step: u64,
    /// Word position of the batch sampler's ChaCha8 stream.
    rng_word_pos: u128,
    tensors_file: String,
    validation_instruments: BTreeSet<InstrumentKey>,
    samples_seen: u64,
    train_secs: f64,
}

/// The datasets a model in `dir` was trained on and the instruments its run held out for
/// validation; `None` if the directory has no training state.
pub fn validation_split(dir: &Path) -> Result<Option<(Vec<PathBuf>, BTreeSet<InstrumentKey>)>> {
    let path = dir.join(STATE_DIR).join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(&path, 64 << 20)?;
    let state: State = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&path, format!("not a training state ({e})")))?;
    Ok(Some((state.options.data, state.validation_instruments)))
}

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
        weights: autoencoder::student::Weights,
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

/// A training run over a model directory.
/// Worker threads for a fused training step: one per core the process may use.
fn cpu_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

pub struct Trainer {
    dir: PathBuf,
    config: Config,
    options: TrainOptions,
    data: TrainData,
    model: WaveNetAutoencoder,
    varmap: VarMap,
    /// The hand-written training step, on the CPU (`None`: candle's autograd, on a GPU).
    fused: Option<FusedStep>,
    optimizer: Optimizer,
    rng: ChaCha8Rng,
    /// Validation crops (μ-law-scaled) and their notes' f0.
    validation: Vec<(Vec<f32>, f32)>,
    device: Device,
    progress: driver::Progress,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("dir", &self.dir)
            .field("step", &self.optimizer.step_count())
            .finish()
    }
}

/// A run's `train/state.json`, with `steps` as the new total when given.
fn read_state(dir: &Path, steps: Option<u64>) -> Result<State> {
    let state_path = dir.join(STATE_DIR).join(STATE_FILE);
    let bytes = read_bounded(&state_path, 64 << 20)?;
    let mut state: State = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&state_path, format!("not a training state ({e})")))?;
    if let Some(steps) = steps {
        state.options = state.options.clone().with_steps(steps, state.step);
    }
    Ok(state)
}

/// What a resumed run continues from: its data with the same split, the optimiser
/// restored into `varmap` (the model's fresh variables) from the state tensors, the batch
/// sampler at its word, and the log trimmed to the checkpoint.
fn restore_run(
    dir: &Path,
    state: &State,
    varmap: &VarMap,
    device: &Device,
) -> Result<(TrainData, Optimizer, ChaCha8Rng)> {
    restore_run_adapted(dir, state, varmap, device, &|_| Ok(()))
}

/// [`restore_run`] with `adapt` applied to the state tensors before they are restored (a
/// student grown by sub-partials pads its excitation rows there).
type Adapt<'a> = &'a dyn Fn(&mut std::collections::HashMap<String, Tensor>) -> Result<()>;

fn restore_run_adapted(
    dir: &Path,
    state: &State,
    varmap: &VarMap,
    device: &Device,
    adapt: Adapt<'_>,
) -> Result<(TrainData, Optimizer, ChaCha8Rng)> {
    let split = Split {
        validation_share: state.options.validation_share,
        seed: state.options.seed,
    };
    let data = TrainData::open(
        &state.options.data,
        &split,
        Some(&state.validation_instruments),
    )?;
    let tensors_path = dir.join(STATE_DIR).join(&state.tensors_file);
    let tensors_bytes = read_bounded(&tensors_path, 8 << 30)?;
    crate::error::check_safetensors(&tensors_path, &tensors_bytes)?;
    let mut tensors = candle_core::safetensors::load_buffer(&tensors_bytes, device)
        .map_err(|e| Error::invalid(&tensors_path, e.to_string()))?;
    adapt(&mut tensors)?;
    let optimizer = Optimizer::restore(varmap, state.options.optimizer(), &tensors, state.step)
        .map_err(|error| Error::Model {
            path: tensors_path.clone(),
            error,
        })?;
    let mut rng = ChaCha8Rng::seed_from_u64(state.options.seed);
    rng.set_stream(1);
    rng.set_word_pos(state.rng_word_pos);
    trim_log(&dir.join(LOG_FILE), state.step)?;
    Ok((data, optimizer, rng))
}

/// Writes a run's model (its EMA weights as `weights.safetensors`) and its exact state
/// (`train/state-STEP.safetensors`, then `train/state.json` naming it, last); older state
/// tensors are removed. `state.tensors_file` is filled in here.
fn write_checkpoint(dir: &Path, optimizer: &Optimizer, mut state: State) -> Result<()> {
    write_tensors(
        &dir.join(WEIGHTS_FILE),
        &optimizer.ema(),
        Overwrite::Allowed,
    )?;
    let tensors_file = format!("state-{:08}.safetensors", state.step);
    let state_dir = dir.join(STATE_DIR);
    write_tensors(
        &state_dir.join(&tensors_file),
        &optimizer.state(),
        Overwrite::Allowed,
    )?;
    state.tensors_file = tensors_file.clone();
    let path = state_dir.join(STATE_FILE);
    let text = serde_json::to_string_pretty(&state).map_err(json_err(&path))?;
    write_atomic(&path, Overwrite::Allowed, |out| {
        out.write_all(text.as_bytes())
    })?;
    // Older state tensors are no longer named by state.json.
    if let Ok(entries) = std::fs::read_dir(&state_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if run_dir::is_state_tensors(&name) && name != tensors_file {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// A step's own random draws, from a stream seeded by the run's seed and the step (so a
/// resumed run draws the same): each crop's f0, 0 for the share trained unpitched, and the
/// Gaussian noise (σ = `input_noise`) added to the decoder's input, if any.
pub(crate) fn step_draws(
    options: &TrainOptions,
    batch: &data::Batch,
    step: u64,
) -> (Vec<f32>, Option<Vec<f32>>) {
    use rand::RngExt;
    let mut rng =
        ChaCha8Rng::seed_from_u64(options.seed ^ step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let f0 = batch
        .f0_hz
        .iter()
        .map(|&hz| {
            if rng.random::<f64>() < options.unpitched_share {
                0.0
            } else {
                hz
            }
        })
        .collect();
    let noise = (options.input_noise > 0.0).then(|| {
        let sigma = options.input_noise as f32;
        (0..batch.scaled.len())
            .map(|_| {
                // Box–Muller.
                let u1 = rng.random::<f32>().max(f32::MIN_POSITIVE);
                let u2 = rng.random::<f32>();
                sigma * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect()
    });
    (f0, noise)
}

/// Appends one event to the run's `train_log.jsonl`.
fn append_log(dir: &Path, event: &impl Serialize) -> Result<()> {
    let path = dir.join(LOG_FILE);
    let mut line = serde_json::to_string(event).map_err(json_err(&path))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| Error::Write {
            path: path.clone(),
            error,
        })?;
    file.write_all(line.as_bytes())
        .map_err(|error| Error::Write { path, error })
}

/// Drops the log's lines of steps after `step` (a run that was killed after its last
/// checkpoint logged steps the resumed run will take again), so the log reads as one run.
fn trim_log(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let bytes = read_bounded(path, 1 << 30)?;
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
                .is_none_or(|s| s <= step)
        })
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    let mut out = kept.join("\n");
    out.push('\n');
    write_atomic(path, Overwrite::Allowed, |f| f.write_all(out.as_bytes()))
}

fn json_err(path: &Path) -> impl Fn(serde_json::Error) -> Error + '_ {
    move |e| Error::invalid(path, format!("cannot write JSON ({e})"))
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
        let config_path = dir.join(CONFIG_FILE);
        check_start(dir, &config_path, overwrite)?;
        let split = Split {
            validation_share: options.validation_share,
            seed: options.seed,
        };
        let data = TrainData::open(&options.data, &split, None)?;
        let varmap = weights::varmap(config, options.seed, BiasInit::Zero, DType::F32, device)?;
        let optimizer = Optimizer::new(&varmap, options.optimizer())?;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(1);
        init_dir(dir, &config_path, overwrite, config.to_json())?;
        Self::assemble(
            dir, config, options, data, &varmap, optimizer, rng, device, 0, 0.0,
        )
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
        let (data, optimizer, rng) = restore_run(dir, &state, &varmap, device)?;
        Self::assemble(
            dir,
            &config,
            state.options,
            data,
            &varmap,
            optimizer,
            rng,
            device,
            state.samples_seen,
            state.train_secs,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        dir: &Path,
        config: &Config,
        options: TrainOptions,
        data: TrainData,
        varmap: &VarMap,
        optimizer: Optimizer,
        rng: ChaCha8Rng,
        device: &Device,
        samples_seen: u64,
        train_secs: f64,
    ) -> Result<Self> {
        let model =
            WaveNetAutoencoder::new(config, VarBuilder::from_varmap(varmap, DType::F32, device))?;
        let validation = data.validation_set(options.validation_notes, options.crop)?;
        let fused = device
            .is_cpu()
            .then(|| FusedStep::new(config, cpu_threads()))
            .transpose()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config: config.clone(),
            options,
            data,
            model,
            varmap: varmap.clone(),
            fused,
            optimizer,
            rng,
            validation,
            device: device.clone(),
            progress: driver::Progress {
                samples_seen,
                train_secs,
                last_validation: None,
            },
        })
    }

    pub fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    /// Whether steps run the hand-written fused step (on a CPU) rather than candle's
    /// autograd (elsewhere).
    pub fn fused(&self) -> bool {
        self.fused.is_some()
    }

    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    pub fn data(&self) -> &TrainData {
        &self.data
    }

    /// Mean NLL (nats per sample) on the validation crops of the EMA weights (the model
    /// that gets saved), in batches of at most [`VALIDATION_BATCH`] crops.
    ///
    /// The EMA weights are plain tensors, not the optimiser's variables, so nothing here
    /// records a graph for backpropagation: each activation is freed once the next layer
    /// has read it, and validation needs a fraction of a training step's memory.
    pub fn validate(&self) -> Result<f64> {
        let crop = self.options.crop;
        let vb = VarBuilder::from_tensors(self.optimizer.ema(), DType::F32, &self.device);
        let model = WaveNetAutoencoder::new(&self.config, vb)?;
        let mut total = 0f64;
        for chunk in self.validation.chunks(VALIDATION_BATCH) {
            let flat: Vec<f32> = chunk.iter().flat_map(|(x, _)| x).copied().collect();
            let f0: Vec<f32> = chunk.iter().map(|(_, f0)| *f0).collect();
            let x = Tensor::from_vec(flat, (chunk.len(), crop), &self.device)
                .map_err(autoencoder::Error::from)?;
            let excitation = crate::eval::excitation_tensor(&model, Some(&f0), crop, &[])?;
            let loss = model
                .loss_excited(&x, None, excitation.as_ref())?
                .to_dtype(DType::F64)
                .map_err(autoencoder::Error::from)?;
            total +=
                loss.to_scalar::<f64>().map_err(autoencoder::Error::from)? * chunk.len() as f64;
        }
        Ok(total / self.validation.len() as f64)
    }

    /// Decodes held-out notes free-running with the EMA weights (see
    /// [`TrainOptions::free_run_every`]) and scores them as `timbrel eval` does.
    pub fn free_run(&self) -> Result<Event> {
        let vb = VarBuilder::from_tensors(self.optimizer.ema(), DType::F32, &self.device);
        let model = WaveNetAutoencoder::new(&self.config, vb)?;
        let hop = self.config.ae_hop_length;
        let notes = driver::FreeRunNotes::pick(&self.data, &self.options, hop, false)?;
        let sampling = autoencoder::Sampling::default();
        let out = crate::eval::reconstruct(
            &model,
            &notes.originals,
            Some(&notes.f0),
            sampling,
            &mut |_| {},
        )?;
        Ok(notes.scored(self.step(), &out))
    }

    /// The excitation and the decoder's input of a training batch (see [`step_draws`]).
    fn batch_inputs(
        &self,
        batch: &data::Batch,
        x: &Tensor,
        step: u64,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (f0, noise) = step_draws(&self.options, batch, step);
        let crop = self.options.crop;
        let excitation =
            crate::eval::excitation_tensor(&self.model, Some(&f0), crop, &batch.offsets)?;
        let inputs = noise
            .map(|noise| {
                Tensor::from_vec(noise, x.shape(), &self.device).and_then(|noise| x + noise)
            })
            .transpose()
            .map_err(autoencoder::Error::from)?;
        Ok((excitation, inputs))
    }

    /// One update: the fused step on the CPU, candle's autograd elsewhere. Returns the
    /// batch's loss (mean NLL) and the optimiser's figures.
    fn train_step(
        &mut self,
        crops: &data::Batch,
        x: &Tensor,
        inputs: Option<&Tensor>,
        excitation: Option<&Tensor>,
        lr: f64,
    ) -> Result<(f64, autoencoder::optim::StepStats)> {
        let Some(fused) = self.fused.as_mut() else {
            let loss = self.model.loss_excited(x, inputs, excitation)?;
            let stats = self.optimizer.step(&loss, lr)?;
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
                .map_err(|_| autoencoder::Error::Shape("variable map lock poisoned".into()))?;
            fused.load(|name| vars.get(name).map(|v| v.as_tensor()))?;
        }
        let out = fused.run(&FusedBatch {
            batch: self.options.batch,
            time: self.options.crop,
            scaled: &crops.scaled,
            inputs: inputs.as_deref(),
            excitation: excitation.as_deref(),
        })?;
        let stats = self.optimizer.step_with(&out.grads, lr)?;
        Ok((out.loss, stats))
    }

    /// Writes the model (EMA weights) and the exact training state.
    pub fn checkpoint(&self) -> Result<()> {
        driver::Job::checkpoint(self)
    }

    /// Trains until `options.steps` or until `stop` is set (checked between steps), with
    /// checkpoints every `checkpoint_every` steps and at the end.
    pub fn run(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(&Event)) -> Result<Summary> {
        driver::run(self, stop, on_event)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl driver::Job for Trainer {
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
        let x = Tensor::from_vec(crops.scaled.clone(), (batch, crop), &self.device)
            .map_err(autoencoder::Error::from)?;
        let (excitation, inputs) = self.batch_inputs(&crops, &x, step)?;
        let lr = self.options.lr_at(step);
        let (loss, stats) =
            self.train_step(&crops, &x, inputs.as_ref(), excitation.as_ref(), lr)?;
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
        Trainer::free_run(self)
    }

    fn progress(&self) -> &driver::Progress {
        &self.progress
    }

    fn progress_mut(&mut self) -> &mut driver::Progress {
        &mut self.progress
    }

    fn optimizer(&self) -> &Optimizer {
        &self.optimizer
    }

    fn rng_word_pos(&self) -> u128 {
        self.rng.get_word_pos()
    }

    fn data(&self) -> &TrainData {
        &self.data
    }
}
