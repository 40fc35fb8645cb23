//! One training run, whatever the family: its folder, options, data, optimiser, batch
//! sampler and running totals ([`Run`]), the loop that steps it until the total or a stop
//! request (the step log with its smoothed ETA, validation and free-running checks on
//! their schedules, checkpoints written once for every family, one more when stopped
//! early), and the contract each family's step plugs into ([`FamilyStep`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use autoencoder::optim::Optimizer;
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::checkpoint::{self, Adapt, State, append_log, write_checkpoint};
use super::run_dir::{check_start, init_dir};
use super::{Event, Summary, TrainData, TrainOptions, VALIDATION_BATCH};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;

/// What one step reports to the loop.
#[derive(Debug)]
pub struct Stepped {
    /// The batch's loss.
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Logged after the step's own event (a student's loss terms).
    pub extra: Vec<Event>,
}

impl Stepped {
    /// A step's report with nothing more to log.
    pub fn new(loss: f64, lr: f64, stats: &autoencoder::optim::StepStats) -> Self {
        Self {
            loss,
            lr,
            grad_norm: stats.grad_norm,
            extra: Vec::new(),
        }
    }
}

/// A family's part of a run (the WaveNet autoencoder's, the student's, the SampleRNN's):
/// its model and step; the run holds the rest.
pub trait FamilyStep {
    /// The model's shape (what its config file holds).
    type Config;
    fn config(&self) -> &Self::Config;
    /// Draws a batch from `run` and takes update number `step` (`run.step() + 1`).
    fn train(&mut self, run: &mut Run, step: u64) -> Result<Stepped>;
    /// Scores the EMA weights (the model that gets saved) on held-out notes.
    fn validate(&self, run: &Run) -> Result<f64>;
    /// The log's event for a validation figure (a mean NLL unless the family says
    /// otherwise).
    fn validation_event(step: u64, value: f64) -> Event {
        Event::Validation { step, nll: value }
    }
    /// Decodes held-out notes free-running with the EMA weights and scores them as
    /// `timbrel eval` does (see [`TrainOptions::free_run_every`]).
    fn free_run(&self, run: &Run) -> Result<Event>;
}

/// A run's totals so far (saved in its state, so a resumed run goes on counting).
#[derive(Clone, Debug, Default)]
pub struct TrainProgress {
    pub samples_seen: u64,
    pub train_secs: f64,
    /// The last validation figure (NLL for the autoencoder, the spectral loss for a student).
    pub last_validation: Option<f64>,
}

/// What every run holds, whatever its family.
#[derive(Debug)]
pub struct Run {
    pub(crate) dir: PathBuf,
    pub(crate) options: TrainOptions,
    pub(crate) data: TrainData,
    pub(crate) optimizer: Optimizer,
    /// The batch sampler (stream 1 of the run's seed; its word is saved in the state).
    pub(crate) rng: ChaCha8Rng,
    pub(crate) device: Device,
    pub(crate) progress: TrainProgress,
}

/// A new run, before its family's model is made.
pub(crate) struct NewRun<'a> {
    pub dir: &'a Path,
    /// The family's config file, in `dir`.
    pub config_file: &'a str,
    pub options: TrainOptions,
    pub device: &'a Device,
    pub overwrite: Overwrite,
}

impl NewRun<'_> {
    /// Refuses a start in `dir` before any work (over a model unless `overwrite`, over a
    /// folder Timbrel did not make), then opens the data and splits it.
    pub fn open(&self) -> Result<TrainData> {
        check_start(self.dir, &self.dir.join(self.config_file), self.overwrite)?;
        TrainData::open(&self.options.data, &checkpoint::split(&self.options), None)
    }

    /// The run over `varmap` (the model's variables, at their starting values): its
    /// optimiser, its sampler at the start, and `dir` readied for it (an earlier run's
    /// files cleared, marked, its config `json` written).
    pub fn begin(
        self,
        data: TrainData,
        varmap: &VarMap,
        json: autoencoder::Result<String>,
    ) -> Result<Run> {
        let optimizer = Optimizer::new(varmap, self.options.optimizer())?;
        let rng = checkpoint::sampler(self.options.seed);
        let config_path = self.dir.join(self.config_file);
        init_dir(self.dir, &config_path, self.overwrite, json)?;
        Ok(Run {
            dir: self.dir.to_path_buf(),
            options: self.options,
            data,
            optimizer,
            rng,
            device: self.device.clone(),
            progress: TrainProgress::default(),
        })
    }
}

impl Run {
    /// The run saved in `dir` as `state` says, its optimiser restored into `varmap` (the
    /// model's fresh variables) from the state tensors after `adapt`.
    pub(crate) fn resume(
        dir: &Path,
        state: State,
        varmap: &VarMap,
        device: &Device,
        adapt: Adapt<'_>,
    ) -> Result<Self> {
        let (data, optimizer, rng) = checkpoint::restore(dir, &state, varmap, device, adapt)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            options: state.options,
            data,
            optimizer,
            rng,
            device: device.clone(),
            progress: TrainProgress {
                samples_seen: state.samples_seen,
                train_secs: state.train_secs,
                last_validation: None,
            },
        })
    }

    /// Updates taken so far.
    pub(crate) fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    /// The averaged weights (what is saved), to build the model from.
    pub(crate) fn ema_vars(&self) -> VarBuilder<'static> {
        VarBuilder::from_tensors(self.optimizer.ema(), DType::F32, &self.device)
    }

    /// Writes the model (EMA weights) and the exact training state.
    fn checkpoint(&self) -> Result<()> {
        write_checkpoint(
            &self.dir,
            &self.optimizer,
            State {
                options: self.options.clone(),
                step: self.step(),
                rng_word_pos: self.rng.get_word_pos(),
                tensors_file: String::new(),
                validation_instruments: self.data.validation_instruments.clone(),
                samples_seen: self.progress.samples_seen,
                train_secs: self.progress.train_secs,
            },
        )
    }

    fn emit(&self, on_event: &mut dyn FnMut(&Event), event: &Event) -> Result<()> {
        append_log(&self.dir, event)?;
        on_event(event);
        Ok(())
    }
}

/// A training run over a model directory: the run and its family's part.
pub struct Training<F> {
    pub(crate) run: Run,
    pub(crate) family: F,
}

impl<F> std::fmt::Debug for Training<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Training")
            .field("family", &std::any::type_name::<F>())
            .field("dir", &self.run.dir)
            .field("step", &self.run.step())
            .finish()
    }
}

impl<F: FamilyStep> Training<F> {
    pub fn step(&self) -> u64 {
        self.run.step()
    }

    pub fn options(&self) -> &TrainOptions {
        &self.run.options
    }

    pub fn data(&self) -> &TrainData {
        &self.run.data
    }

    pub fn config(&self) -> &F::Config {
        self.family.config()
    }

    /// The validation figure of the EMA weights (the model that gets saved): the mean
    /// NLL (nats per sample) of the held-out crops for a WaveNet or a SampleRNN, the
    /// weighted loss on held-out notes for a student.
    pub fn validate(&self) -> Result<f64> {
        self.family.validate(&self.run)
    }

    /// Decodes held-out notes free-running with the EMA weights (see
    /// [`TrainOptions::free_run_every`]) and scores them as `timbrel eval` does.
    pub fn free_run(&self) -> Result<Event> {
        self.family.free_run(&self.run)
    }

    /// Writes the model (EMA weights) and the exact training state.
    pub fn checkpoint(&self) -> Result<()> {
        self.run.checkpoint()
    }

    /// Trains until `options.steps` or until `stop` is set (checked between steps), with
    /// checkpoints every `checkpoint_every` steps, at the end, and when stopped early.
    pub fn run(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(&Event)) -> Result<Summary> {
        let (samples, steps) = {
            let o = &self.run.options;
            ((o.batch * o.crop) as u64, o.steps)
        };
        let mut last_loss = None;
        let mut recent_rate = None::<f64>;
        let mut stopped_early = false;
        while self.run.step() < steps {
            if stop.load(Ordering::Relaxed) {
                stopped_early = true;
                break;
            }
            let started = Instant::now();
            let step = self.run.step() + 1;
            let stepped = self.family.train(&mut self.run, step)?;
            let secs = started.elapsed().as_secs_f64();
            self.run.progress.samples_seen += samples;
            self.run.progress.train_secs += secs;
            let rate = samples as f64 / secs.max(1e-9);
            let smoothed = recent_rate.map_or(rate, |r| 0.9 * r + 0.1 * rate);
            recent_rate = Some(smoothed);
            last_loss = Some(stepped.loss);
            let event = Event::Step {
                step,
                steps,
                loss: stepped.loss,
                lr: stepped.lr,
                grad_norm: stepped.grad_norm,
                samples_per_s: rate,
                eta_secs: (steps - step) as f64 * samples as f64 / smoothed,
            };
            self.run.emit(on_event, &event)?;
            for event in &stepped.extra {
                self.run.emit(on_event, event)?;
            }
            let o = self.run.options.clone();
            let last = step == steps;
            if step.is_multiple_of(o.validate_every.max(1)) || last {
                let value = self.family.validate(&self.run)?;
                self.run.progress.last_validation = Some(value);
                self.run.emit(on_event, &F::validation_event(step, value))?;
            }
            if o.free_run_every > 0 && (step.is_multiple_of(o.free_run_every) || last) {
                let event = self.family.free_run(&self.run)?;
                self.run.emit(on_event, &event)?;
            }
            if step.is_multiple_of(o.checkpoint_every.max(1)) || last {
                self.run.checkpoint()?;
                on_event(&Event::Checkpoint { step });
            }
        }
        if stopped_early {
            self.run.checkpoint()?;
            on_event(&Event::Checkpoint {
                step: self.run.step(),
            });
        }
        let progress = &self.run.progress;
        Ok(Summary {
            step: self.run.step(),
            stopped_early,
            last_loss,
            last_validation_nll: progress.last_validation,
            train_notes: self.run.data.train_notes(),
            validation_notes: self.run.data.validation_notes(),
            train_secs: progress.train_secs,
            samples_seen: progress.samples_seen,
        })
    }
}

/// The mean over validation `crops` (μ-law-scaled, each with its note's f0), in batches
/// of at most [`VALIDATION_BATCH`] crops, of `loss`: a batch's mean, given its crops
/// `[n, crop]` and their f0 (a scalar tensor).
pub(crate) fn mean_over_crops(
    crops: &[(Vec<f32>, f32)],
    run: &Run,
    loss: impl Fn(&Tensor, &[f32]) -> Result<Tensor>,
) -> Result<f64> {
    let mut total = 0f64;
    for chunk in crops.chunks(VALIDATION_BATCH) {
        let flat: Vec<f32> = chunk.iter().flat_map(|(x, _)| x).copied().collect();
        let f0: Vec<f32> = chunk.iter().map(|(_, f0)| *f0).collect();
        let x = Tensor::from_vec(flat, (chunk.len(), run.options.crop), &run.device)
            .map_err(autoencoder::Error::from)?;
        let mean = loss(&x, &f0)?
            .to_dtype(DType::F64)
            .and_then(|l| l.to_scalar::<f64>())
            .map_err(autoencoder::Error::from)?;
        total += mean * chunk.len() as f64;
    }
    Ok(total / crops.len().max(1) as f64)
}

/// Worker threads for a fused training step: one per core the process may use.
pub(crate) fn cpu_threads() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// The error of a variable map whose lock a panicking thread left poisoned.
pub(crate) fn poisoned() -> Error {
    Error::Compute(autoencoder::Error::Shape(
        "variable map lock poisoned".into(),
    ))
}

/// The variables of `varmap`, sorted by name (the order seeding draws them in).
pub(crate) fn sorted_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap.data().lock().map_err(|_| poisoned())?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

/// How seeding starts a variable (see [`seed_uniform`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// Uniform in ±√(3 / fan-in), as Magenta's kernels.
    Uniform,
    /// Zero (its draws still taken, so the variables after it draw the same).
    Zero,
    /// As its model made it, no draws.
    Kept,
}

/// Gives `vars` (sorted by name) their starting values from `seed` (candle's initialisers
/// draw from an unseeded generator), each as `start` says by its name; the fan-in is the
/// product of all dimensions but the last.
pub(crate) fn seed_uniform(
    vars: &[(String, Var)],
    seed: u64,
    start: impl Fn(&str) -> Start,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (name, var) in vars {
        let limit = match start(name) {
            Start::Kept => continue,
            Start::Zero => 0.0,
            Start::Uniform => {
                let dims = var.dims();
                let fan_in: usize = dims[..dims.len().saturating_sub(1)].iter().product();
                (3.0 / fan_in.max(1) as f32).sqrt()
            }
        };
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let values: Vec<f32> = (0..count)
            .map(|_| limit * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let t = Tensor::from_vec(values, dims, var.device()).map_err(autoencoder::Error::from)?;
        var.set(&t).map_err(autoencoder::Error::from)?;
    }
    Ok(())
}

/// A step's own random draws, from a stream seeded by the run's seed and the step (so a
/// resumed run draws the same): each crop's f0, 0 for the share trained unpitched, and the
/// Gaussian noise (σ = `input_noise`) added to the decoder's input, if any.
pub(crate) fn step_draws(
    options: &TrainOptions,
    batch: &super::data::Batch,
    step: u64,
) -> (Vec<f32>, Option<Vec<f32>>) {
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

/// A free-running check: held-out notes picked for `run` (their first `free_run_secs`
/// in whole hops of `hop`, zero-padded to that when `pad`), played by `play` (the notes
/// and their f0 in, what the model made of them out) and scored.
pub(crate) fn free_run_check(
    run: &Run,
    hop: usize,
    pad: bool,
    play: impl FnOnce(&[Vec<f32>], &[f32]) -> Result<Vec<Vec<f32>>>,
) -> Result<Event> {
    let notes = FreeRunNotes::pick(&run.data, &run.options, hop, pad)?;
    let out = play(&notes.originals, &notes.f0)?;
    Ok(notes.scored(run.step(), &out))
}

/// The held-out notes a free-running check plays: their names, their first
/// `free_run_secs` in whole hops (zero-padded to that length when `pad`), and their f0.
pub(crate) struct FreeRunNotes {
    pub names: Vec<String>,
    pub originals: Vec<Vec<f32>>,
    pub f0: Vec<f32>,
    started: Instant,
}

impl FreeRunNotes {
    /// Which notes have no pitch (f0 0: marked unpitched in their dataset).
    fn unpitched(&self) -> Vec<bool> {
        self.f0.iter().map(|&f| f <= 0.0).collect()
    }

    pub fn pick(data: &TrainData, options: &TrainOptions, hop: usize, pad: bool) -> Result<Self> {
        let started = Instant::now();
        let len = ((options.free_run_secs * crate::audio::SAMPLE_RATE_HZ as f64) as usize / hop)
            .max(1)
            * hop;
        let notes = data.validation_notes_audio(options.free_run_notes)?;
        Ok(Self {
            names: notes.iter().map(|(n, _, _)| n.clone()).collect(),
            originals: notes
                .iter()
                .map(|(_, a, _)| {
                    let mut a = a[..len.min(a.len())].to_vec();
                    if pad {
                        a.resize(len, 0.0);
                    }
                    a
                })
                .collect(),
            f0: notes.iter().map(|(_, _, f)| *f).collect(),
            started,
        })
    }

    /// The check's event for the notes played back as `out`, scored as `timbrel eval` does.
    pub fn scored(&self, step: u64, out: &[Vec<f32>]) -> Event {
        let (pitch_accuracy, pitched_notes, distance, _) =
            crate::eval::score(&self.names, &self.originals, out, &self.unpitched());
        Event::FreeRun {
            step,
            notes: self.names.len(),
            pitched_notes,
            pitch_accuracy,
            log_mel_distance_db: distance,
            secs: self.started.elapsed().as_secs_f64(),
        }
    }
}
