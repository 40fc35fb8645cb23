//! The training loop both trainers share: steps until the total or a stop request, the
//! step log with its smoothed ETA, validation, free-running checks and checkpoints on
//! their schedules, and a checkpoint when stopped early.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use autoencoder::optim::Optimizer;

use super::{Event, State, Summary, TrainData, TrainOptions, append_log, write_checkpoint};
use crate::error::Result;

/// What one step reports to the loop.
pub(crate) struct Stepped {
    /// The batch's loss.
    pub loss: f64,
    pub lr: f64,
    pub grad_norm: f64,
    /// Logged after the step's own event (a student's loss terms).
    pub extra: Vec<Event>,
}

/// A training run the loop drives (the WaveNet autoencoder's, the student's).
pub(crate) trait Job {
    fn options(&self) -> &TrainOptions;
    fn dir(&self) -> &Path;
    /// Updates taken so far.
    fn step(&self) -> u64;
    /// Draws a batch and takes update number `step` (`self.step() + 1`).
    fn train(&mut self, step: u64) -> Result<Stepped>;
    /// Scores the held-out crops: the figure (kept as the last validation) and its event.
    fn validation(&mut self, step: u64) -> Result<(f64, Event)>;
    /// Decodes held-out notes free-running and scores them.
    fn free_run(&self) -> Result<Event>;
    /// The run's running totals.
    fn progress(&self) -> &Progress;
    fn progress_mut(&mut self) -> &mut Progress;
    fn data(&self) -> &TrainData;
    fn optimizer(&self) -> &Optimizer;
    /// Where the batch sampler's random stream stands.
    fn rng_word_pos(&self) -> u128;

    /// Writes the model (EMA weights) and the exact training state.
    fn checkpoint(&self) -> Result<()> {
        let progress = self.progress();
        write_checkpoint(
            self.dir(),
            self.optimizer(),
            State {
                options: self.options().clone(),
                step: self.step(),
                rng_word_pos: self.rng_word_pos(),
                tensors_file: String::new(),
                validation_instruments: self.data().validation_instruments.clone(),
                samples_seen: progress.samples_seen,
                train_secs: progress.train_secs,
            },
        )
    }
}

/// A run's totals so far (saved in its state, so a resumed run goes on counting).
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    pub samples_seen: u64,
    pub train_secs: f64,
    /// The last validation figure (NLL for the autoencoder, the spectral loss for a student).
    pub last_validation: Option<f64>,
}

/// Trains until `options.steps` or until `stop` is set (checked between steps), with
/// checkpoints every `checkpoint_every` steps, at the end, and when stopped early.
pub(crate) fn run(
    job: &mut dyn Job,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(&Event),
) -> Result<Summary> {
    let (samples, steps) = {
        let o = job.options();
        ((o.batch * o.crop) as u64, o.steps)
    };
    let mut last_loss = None;
    let mut recent_rate = None::<f64>;
    let mut stopped_early = false;
    fn emit(job: &dyn Job, on_event: &mut dyn FnMut(&Event), event: &Event) -> Result<()> {
        append_log(job.dir(), event)?;
        on_event(event);
        Ok(())
    }
    while job.step() < steps {
        if stop.load(Ordering::Relaxed) {
            stopped_early = true;
            break;
        }
        let started = Instant::now();
        let step = job.step() + 1;
        let stepped = job.train(step)?;
        let secs = started.elapsed().as_secs_f64();
        job.progress_mut().samples_seen += samples;
        job.progress_mut().train_secs += secs;
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
        emit(job, on_event, &event)?;
        for event in &stepped.extra {
            emit(job, on_event, event)?;
        }
        let o = job.options().clone();
        let last = step == steps;
        if step.is_multiple_of(o.validate_every.max(1)) || last {
            let (value, event) = job.validation(step)?;
            job.progress_mut().last_validation = Some(value);
            emit(job, on_event, &event)?;
        }
        if o.free_run_every > 0 && (step.is_multiple_of(o.free_run_every) || last) {
            let event = job.free_run()?;
            emit(job, on_event, &event)?;
        }
        if step.is_multiple_of(o.checkpoint_every.max(1)) || last {
            job.checkpoint()?;
            on_event(&Event::Checkpoint { step });
        }
    }
    if stopped_early {
        job.checkpoint()?;
        on_event(&Event::Checkpoint { step: job.step() });
    }
    let progress = job.progress().clone();
    Ok(Summary {
        step: job.step(),
        stopped_early,
        last_loss,
        last_validation_nll: progress.last_validation,
        train_notes: job.data().train_notes(),
        validation_notes: job.data().validation_notes(),
        train_secs: progress.train_secs,
        samples_seen: progress.samples_seen,
    })
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
            crate::eval::score(&self.names, &self.originals, out);
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
