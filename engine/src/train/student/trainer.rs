//! The student's part of a run: its start (seeded, with a teacher's encoder where it has
//! one), its resume (grown as asked), its step (the fused pass on a CPU, candle's autograd
//! elsewhere and for the distillation term), validation and free-running checks, and the
//! loss settings a resume may change.

use std::path::Path;

use autoencoder::WaveNetAutoencoder;
use autoencoder::student::fused::FusedStudent;
use autoencoder::student::generate::logistic;
use autoencoder::student::{LossWeights, Objective, StudentAutoencoder, StudentAutoencoderConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::grow::{Grow, adapt, grow_config};
use super::teacher::{copy_encoder, is_encoder_variable, load_teacher};
use super::{STUDENT_FILE, excitation, read_config, reconstruct};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::models::dir::WEIGHTS_FILE;
use crate::train::checkpoint::{append_log, read_state};
use crate::train::run::{
    FamilyStep, NewRun, Run, Start, Stepped, cpu_threads, free_run_check, seed_uniform, sorted_vars,
};
use crate::train::{Event, TrainOptions, Training, VALIDATION_BATCH};

/// A student's training run over a model directory.
pub type StudentTrainer = Training<StudentStep>;

/// The student's part of a run.
pub struct StudentStep {
    pub(super) config: StudentAutoencoderConfig,
    pub(super) model: StudentAutoencoder,
    pub(super) objective: Objective,
    pub(super) teacher: Option<WaveNetAutoencoder>,
    /// The variables, by name (the fused pass reads their values every step).
    pub(super) varmap: VarMap,
    /// The hand-written training pass, on a CPU (candle's autograd elsewhere, and for
    /// the distillation term, which needs the teacher).
    pub(super) fused: Option<FusedStudent>,
}

impl std::fmt::Debug for StudentStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudentStep")
            .field("teacher", &self.teacher.is_some())
            .field("fused", &self.fused.is_some())
            .finish_non_exhaustive()
    }
}

/// The noise of step `step`: its own stream of the run's seed, so a resumed run draws
/// the same.
fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57D0_E47A);
    rng.set_stream(step);
    rng
}

/// Gives every variable its starting value from `seed`: kernels uniform in
/// ±√(3 / fan_in) as Magenta's, biases and the flows' heads (`out/W`) zero, so a flow
/// starts as a plain scale; the bank where its model puts it (a small gain, see
/// `BANK_INITIAL_GAIN`).
fn seed_variables(varmap: &VarMap, seed: u64) -> Result<()> {
    seed_uniform(&sorted_vars(varmap)?, seed ^ 0x1417_5EED, |name| {
        if name.starts_with(autoencoder::student::model::BANK_PREFIX) {
            Start::Kept
        } else if name.ends_with("/W") && !name.ends_with("out/W") {
            Start::Uniform
        } else {
            Start::Zero
        }
    })
}

/// A student over fresh variables (their values set by a start or a resume).
fn model(
    config: &StudentAutoencoderConfig,
    device: &Device,
) -> Result<(StudentAutoencoder, VarMap)> {
    let varmap = VarMap::new();
    let model = StudentAutoencoder::new(
        config,
        &VarBuilder::from_varmap(&varmap, DType::F32, device),
    )?;
    Ok((model, varmap))
}

/// Refuses the terms only the fused pass computes where the run cannot use them: a bank
/// match weight without a sub-partial bank, training through the envelope without one,
/// and either through candle's autograd.
fn check_fused_terms(
    options: &TrainOptions,
    config: &StudentAutoencoderConfig,
    fused: bool,
) -> Result<()> {
    let refuse = |why: &str| Err(Error::Compute(autoencoder::Error::Config(why.into())));
    if options.bank_weight > 0.0 && !(config.student.subpartial_bank && fused) {
        return refuse(
            "a bank match weight needs a student with a sub-partial bank, trained on the CPU without a teacher term",
        );
    }
    if options.through_envelope && !(config.student.envelope_bands > 0 && fused) {
        return refuse(
            "training through the envelope needs a student with a measured envelope, trained on the CPU without a teacher term",
        );
    }
    Ok(())
}

impl StudentStep {
    fn new(
        config: &StudentAutoencoderConfig,
        (model, varmap): (StudentAutoencoder, VarMap),
        teacher: Option<WaveNetAutoencoder>,
        run: &Run,
    ) -> Result<Self> {
        let objective = Objective::new(run.options.student_loss, &run.device)
            .map_err(|e| Error::invalid(&run.dir, e.to_string()))?;
        let fused = run
            .device
            .is_cpu()
            .then(|| FusedStudent::new(config, cpu_threads()))
            .transpose()?;
        let step = Self {
            config: config.clone(),
            model,
            objective,
            teacher,
            varmap,
            fused,
        };
        check_fused_terms(&run.options, config, step.uses_fused())?;
        Ok(step)
    }

    /// Whether steps run the hand-written fused pass (on a CPU, without a teacher term)
    /// rather than candle's autograd.
    fn uses_fused(&self) -> bool {
        self.fused.is_some() && self.teacher.is_none() && self.objective.weights().distill == 0.0
    }

    /// The student with the averaged weights (what is saved).
    fn ema_model(&self, run: &Run) -> Result<StudentAutoencoder> {
        Ok(StudentAutoencoder::new(&self.config, &run.ema_vars())?)
    }
}

impl StudentTrainer {
    /// Starts a new run in `dir` (refused where a student is already, unless `overwrite`).
    /// The variables start from the run's seed (see [`seed_variables`]).
    pub fn start(
        dir: &Path,
        config: &StudentAutoencoderConfig,
        options: TrainOptions,
        device: &Device,
        overwrite: Overwrite,
    ) -> Result<Self> {
        options.check(&config.encoder)?;
        let new = NewRun {
            dir,
            config_file: STUDENT_FILE,
            options,
            device,
            overwrite,
        };
        let data = new.open()?;
        let teacher = load_teacher(&new.options, config, device)?;
        let (model, varmap) = model(config, device)?;
        seed_variables(&varmap, new.options.seed)?;
        if let Some(teacher) = &new.options.teacher {
            copy_encoder(&varmap, teacher, device)?;
        }
        let json = autoencoder::family::to_json(autoencoder::family::PARALLEL_WAVENET, config);
        let mut run = new.begin(data, &varmap, json)?;
        if teacher.is_some() {
            run.optimizer.freeze(is_encoder_variable);
        }
        let family = StudentStep::new(config, (model, varmap), teacher, &run)?;
        Ok(Self { run, family })
    }

    /// Continues the run saved in `dir` exactly (`steps`: a new total).
    pub fn resume(dir: &Path, steps: Option<u64>, device: &Device) -> Result<Self> {
        Self::resume_growing(dir, steps, Grow::default(), device)
    }

    /// [`Self::resume`], first growing the student as `grow` asks. To more sub-partials
    /// of excitation: the new inputs' weights (and their optimiser moments) start at zero,
    /// so the grown student plays exactly what it played, and training teaches it to use
    /// them. By a sub-partial bank: it starts as a new student's does (every gain at
    /// [`autoencoder::student::model::BANK_INITIAL_GAIN`]), so the grown student plays
    /// what it played plus those quiet partials. `student.json` is rewritten at once; the
    /// state tensors grow when they are read (here, and on any later resume), so a run
    /// stopped before its next checkpoint resumes all the same.
    pub fn resume_growing(
        dir: &Path,
        steps: Option<u64>,
        grow: Grow,
        device: &Device,
    ) -> Result<Self> {
        let state = read_state(dir, steps)?;
        let mut config = read_config(dir)?;
        let grown = grow_config(dir, &mut config, grow)?;
        let (model, varmap) = model(&config, device)?;
        let teacher = load_teacher(&state.options, &config, device)?;
        let mut run = Run::resume(dir, state, &varmap, device, &|tensors| {
            adapt(tensors, &config, device)
        })?;
        if grown {
            // The weights grow first, then the config that names their shapes.
            crate::fsutil::write_tensors(
                &dir.join(WEIGHTS_FILE),
                &run.optimizer.ema(),
                Overwrite::Allowed,
            )?;
            let path = dir.join(STUDENT_FILE);
            let text =
                autoencoder::family::to_json(autoencoder::family::PARALLEL_WAVENET, &config)?;
            crate::fsutil::write_atomic(&path, Overwrite::Allowed, |out| {
                std::io::Write::write_all(out, text.as_bytes())
            })?;
        }
        if teacher.is_some() {
            run.optimizer.freeze(is_encoder_variable);
        }
        let family = StudentStep::new(&config, (model, varmap), teacher, &run)?;
        Ok(Self { run, family })
    }

    /// Steps through candle's autograd from now on, as on any device but the CPU: what
    /// runs on a GPU, run where there is none (a run with a bank match term is refused,
    /// as it would be on a GPU).
    pub fn use_autograd(&mut self) -> Result<()> {
        check_fused_terms(&self.run.options, &self.family.config, false)?;
        self.family.fused = None;
        Ok(())
    }

    /// Whether steps run the hand-written fused pass (on a CPU, without a teacher term)
    /// rather than candle's autograd.
    pub fn uses_fused(&self) -> bool {
        self.family.uses_fused()
    }

    /// Trains on `weights` from the next step on (saved with the next checkpoint and
    /// logged as a `loss` event). Distillation needs the run to have a teacher.
    pub fn set_loss(&mut self, weights: LossWeights) -> Result<()> {
        if weights.distill > 0.0 && self.family.teacher.is_none() {
            return Err(Error::Compute(autoencoder::Error::Config(
                "a distillation loss weight needs a teacher model".into(),
            )));
        }
        self.family.objective = Objective::new(weights, &self.run.device)?;
        self.run.options.student_loss = weights;
        let step = self.step();
        append_log(&self.run.dir, &Event::LossWeights { step, weights })
    }

    /// Weighs the bank match term `weight` from the next step on (see
    /// [`TrainOptions::bank_weight`]; saved with the next checkpoint and logged as a `bank`
    /// event). It needs a student with a sub-partial bank, trained by the fused pass.
    pub fn set_bank_weight(&mut self, weight: f64) -> Result<()> {
        let options = TrainOptions {
            bank_weight: weight,
            ..self.run.options.clone()
        };
        options.check(&self.family.config.encoder)?;
        check_fused_terms(&options, &self.family.config, self.uses_fused())?;
        self.run.options = options;
        let step = self.step();
        append_log(&self.run.dir, &Event::BankWeight { step, weight })
    }

    /// Trains through the envelope stage (or not) from the next step on (see
    /// [`TrainOptions::through_envelope`]; saved with the next checkpoint and logged as a
    /// `through_envelope` event). It needs a student with a measured envelope, trained by
    /// the fused pass.
    pub fn set_through_envelope(&mut self, on: bool) -> Result<()> {
        let options = TrainOptions {
            through_envelope: on,
            ..self.run.options.clone()
        };
        check_fused_terms(&options, &self.family.config, self.uses_fused())?;
        self.run.options = options;
        let step = self.step();
        append_log(&self.run.dir, &Event::ThroughEnvelope { step, on })
    }

    /// Layers `share` of the crops over their octaves below from the next step on (see
    /// [`TrainOptions::sub_octave_share`]; saved with the next checkpoint and logged as a
    /// `layering` event).
    pub fn set_sub_octave_share(&mut self, share: f64) -> Result<()> {
        let options = TrainOptions {
            sub_octave_share: share,
            ..self.run.options.clone()
        };
        options.check(&self.family.config.encoder)?;
        self.run.options = options;
        let step = self.step();
        append_log(&self.run.dir, &Event::SubOctaveShare { step, share })
    }
}

impl FamilyStep for StudentStep {
    type Config = StudentAutoencoderConfig;

    fn config(&self) -> &StudentAutoencoderConfig {
        &self.config
    }

    fn train(&mut self, run: &mut Run, step: u64) -> Result<Stepped> {
        let (batch, crop) = (run.options.batch, run.options.crop);
        let crops = run.data.crops(&mut run.rng, &run.options)?;
        let mut noise = step_rng(run.options.seed, step);
        let f0: Vec<f32> = crops
            .f0_hz
            .iter()
            .map(|&hz| {
                if noise.random::<f64>() < run.options.unpitched_share {
                    0.0
                } else {
                    hz
                }
            })
            .collect();
        let z = logistic(&mut noise, batch * crop);
        let device = run.device.clone();
        let tensor = |v: &[f32]| {
            Tensor::from_slice(v, (batch, crop), &device).map_err(autoencoder::Error::from)
        };
        let exc = excitation(&self.config, &f0, crop, &crops.offsets, &device)?;
        let lr = run.options.lr_at(step);
        let audio = tensor(&crops.audio)?;
        let (terms, stats) = if self.uses_fused() {
            let inputs = (crops.scaled.as_slice(), z.as_slice(), exc.as_ref());
            self.fused_step(run, inputs, (&audio, &crops.audio), lr)?
        } else {
            let (loss, terms) = self.objective.evaluate(
                &self.model,
                self.teacher.as_ref().map(|t| t.decoder()),
                &audio,
                &tensor(&crops.scaled)?,
                &tensor(&z)?,
                exc.as_ref(),
            )?;
            (terms, run.optimizer.step(&loss, lr)?)
        };
        Ok(Stepped {
            extra: vec![Event::StudentTerms { step, terms }],
            ..Stepped::new(terms.total, lr, &stats)
        })
    }

    /// The loss (all its weighted terms) of the EMA weights on the first crop of up to
    /// `validation_notes` held-out notes, from fixed noise.
    fn validate(&self, run: &Run) -> Result<f64> {
        let model = self.ema_model(run)?;
        let crop = run.options.crop;
        let notes = run
            .data
            .validation_notes_audio(run.options.validation_notes)?;
        let mut total = 0f64;
        for (i, chunk) in notes.chunks(VALIDATION_BATCH).enumerate() {
            let audio: Vec<f32> = chunk
                .iter()
                .flat_map(|(_, a, _)| &a[..crop])
                .copied()
                .collect();
            let scaled: Vec<f32> = audio
                .iter()
                .map(|&x| autoencoder::mulaw::scaled(x))
                .collect();
            let f0: Vec<f32> = chunk.iter().map(|(_, _, f)| *f).collect();
            let shape = (chunk.len(), crop);
            let tensor = |v: Vec<f32>| {
                Tensor::from_vec(v, shape, &run.device).map_err(autoencoder::Error::from)
            };
            let z = logistic(&mut step_rng(0, i as u64), chunk.len() * crop);
            let exc = excitation(&self.config, &f0, crop, &[], &run.device)?;
            let (_, terms) = if run.options.through_envelope {
                // Scored after the envelope stage, as the steps are.
                let target = tensor(audio.clone())?;
                let played = model
                    .play(&target, &tensor(scaled)?, &tensor(z)?, exc.as_ref())?
                    .audio
                    .flatten_all()
                    .and_then(|t| t.to_vec1::<f32>())
                    .map_err(autoencoder::Error::from)?;
                let through =
                    super::fused_step::Through::new(&self.config.student, crop, played, &audio);
                self.objective
                    .score_audio(&tensor(through.shaped())?, &target)?
            } else {
                self.objective.evaluate(
                    &model,
                    self.teacher.as_ref().map(|t| t.decoder()),
                    &tensor(audio)?,
                    &tensor(scaled)?,
                    &tensor(z)?,
                    exc.as_ref(),
                )?
            };
            total += terms.total * chunk.len() as f64;
        }
        Ok(total / notes.len().max(1) as f64)
    }

    fn validation_event(step: u64, loss: f64) -> Event {
        Event::SpectralValidation { step, loss }
    }

    /// Plays held-out notes with the EMA weights and scores them as `timbrel eval` does.
    fn free_run(&self, run: &Run) -> Result<Event> {
        let model = self.ema_model(run)?;
        free_run_check(run, self.config.student.hop_length, true, |notes, f0| {
            reconstruct(&model, notes, f0, 0)
        })
    }
}
