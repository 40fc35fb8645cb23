//! `timbrel train-student`: the Parallel WaveNet student, trained on a weighted sum of the
//! multi-resolution spectral loss and the power loss against the real notes (then with an
//! encoder of its own, trained jointly) and of the distillation KL against a WaveNet
//! teacher (then with the teacher's encoder, copied in and frozen, so both read the same
//! embedding). The same data, schedule, optimiser, checkpoints, exact resume and log as
//! [`super::Trainer`]; the model directory holds `student.json` instead of `config.json`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use autoencoder::WaveNetAutoencoder;
use autoencoder::mulaw;
use autoencoder::optim::Optimizer;
use autoencoder::student::fused::{FusedStudent, StudentBatch};
use autoencoder::student::model::measured_channel;
use autoencoder::student::{Objective, StudentAutoencoder, StudentAutoencoderConfig, Weights};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Event, Summary, TrainData, TrainOptions, append_log, read_state};
use crate::error::{Error, Result, read_bounded};
use crate::fsutil::Overwrite;
use crate::models::dir::WEIGHTS_FILE;
pub use crate::models::student::{STUDENT_FILE, load, read_config};
use autoencoder::student::generate::logistic;

/// The noise of step `step`: its own stream of the run's seed, so a resumed run draws
/// the same.
fn step_rng(seed: u64, step: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x57D0_E47A);
    rng.set_stream(step);
    rng
}

/// Gives every variable its starting value from `seed` (candle's initialisers draw from
/// an unseeded generator): kernels uniform in ±√(3 / fan_in) as Magenta's, biases and
/// the flows' heads (`out/W`) zero, so a flow starts as a plain scale.
fn seed_variables(varmap: &VarMap, seed: u64) -> Result<()> {
    let data = varmap.data().lock().map_err(|_| {
        Error::Compute(autoencoder::Error::Shape(
            "variable map lock poisoned".into(),
        ))
    })?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1417_5EED);
    for name in names {
        if name.starts_with(autoencoder::student::model::BANK_PREFIX) {
            // The bank starts where its model puts it (a small gain, see BANK_INITIAL_GAIN).
            continue;
        }
        let var = &data[name];
        let dims = var.dims().to_vec();
        let count: usize = dims.iter().product();
        let limit = if name.ends_with("/W") && !name.ends_with("out/W") {
            let fan_in: usize = dims[..dims.len().saturating_sub(1)].iter().product();
            (3.0 / fan_in.max(1) as f32).sqrt()
        } else {
            0.0
        };
        let values: Vec<f32> = (0..count)
            .map(|_| limit * (2.0 * rng.random::<f32>() - 1.0))
            .collect();
        let tensor =
            Tensor::from_vec(values, dims, var.device()).map_err(autoencoder::Error::from)?;
        var.set(&tensor).map_err(autoencoder::Error::from)?;
    }
    Ok(())
}

/// Plays `notes` (16 kHz, all as long as the first, a multiple of the hop) as the student
/// hears them: encoded, then rendered from noise drawn with `seed` at each note's f0.
pub fn reconstruct(
    model: &StudentAutoencoder,
    notes: &[Vec<f32>],
    f0_hz: &[f32],
    seed: u64,
) -> Result<Vec<Vec<f32>>> {
    let len = notes.first().map_or(0, Vec::len);
    let hop = model.config().student.hop_length;
    if notes.is_empty()
        || len == 0
        || !len.is_multiple_of(hop)
        || notes.iter().any(|n| n.len() != len)
        || f0_hz.len() != notes.len()
    {
        return Err(Error::Compute(autoencoder::Error::Shape(format!(
            "the student plays notes of one length, a multiple of {hop} samples, one f0 each"
        ))));
    }
    // The CPU renderer whatever the device: voice `i` from noise stream `i`.
    let generator = crate::models::ModelFamily::scoring_generator(model)?;
    crate::models::reconstruct(
        crate::models::Encoder::Family(model),
        &*generator,
        notes,
        Some(f0_hz),
        autoencoder::Sampling {
            temperature: 1.0,
            seed,
        },
        &mut |_| {},
    )
}

/// The excitation `[notes, len, 2K + 2N]` of notes held at `f0_hz`, each from `offsets[i]`.
fn excitation(
    config: &StudentAutoencoderConfig,
    f0_hz: &[f32],
    len: usize,
    offsets: &[usize],
    device: &Device,
) -> Result<Option<Tensor>> {
    let s = &config.student;
    crate::eval::excitation_partials_of(
        (s.excitation_harmonics, s.excitation_subpartials),
        device,
        Some(f0_hz),
        len,
        offsets,
    )
}

/// Zero-pads every excitation projection (`…/exc_map_N/W`, `[1, 1, channels, 2w]`) of
/// the state tensors that has fewer input rows than `channels`: a student grown by
/// sub-partials (see [`StudentTrainer::resume_growing`]); the new rows, their moments and
/// their average are zero.
fn pad_excitation_rows(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    channels: usize,
) -> Result<()> {
    pad_rows(tensors, ".exc_map_", channels)
}

/// Zero-pads every `[1, 1, rows, cols]` kernel whose name contains `marker` to `rows`
/// input rows (the new rows, their moments and their average zero).
fn pad_rows(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    marker: &str,
    channels: usize,
) -> Result<()> {
    for (name, tensor) in tensors.iter_mut() {
        if !name.contains(marker) {
            continue;
        }
        let dims = tensor.dims().to_vec();
        if dims.len() == 4 && dims[2] < channels {
            *tensor = tensor
                .pad_with_zeros(2, 0, channels - dims[2])
                .map_err(autoencoder::Error::from)?;
        }
    }
    Ok(())
}

/// Grows the state tensors of a student given measured sub-partials (see
/// [`StudentTrainer::resume_growing`]) where they are narrower than its frames: every
/// flow's conditioning map gets zero rows for the measured channels (so the flows play
/// what they played), and the bank starts over as a measured bank starts (map and biases
/// zero: every gain the measured amplitude), its moments zero.
fn grow_measured(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    config: &StudentAutoencoderConfig,
    device: &Device,
) -> Result<()> {
    use autoencoder::student::model::BANK_PREFIX;
    let s = &config.student;
    if !s.measured_subpartials {
        return Ok(());
    }
    let key = format!("param/{BANK_PREFIX}W");
    let narrow = tensors
        .get(&key)
        .is_some_and(|w| w.dims().get(2).is_some_and(|&rows| rows < s.bottleneck));
    pad_rows(tensors, ".cond_map_", s.bottleneck)?;
    if narrow {
        new_bank(tensors, &config.student, device)?;
    }
    Ok(())
}

/// Puts a new bank's state tensors in `tensors` (replacing any): the map at zero, the
/// biases where a new student's start ([`autoencoder::student::model::bank_initial_bias`]),
/// their average the same, their moments zero.
fn new_bank(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    s: &autoencoder::student::StudentConfig,
    device: &Device,
) -> Result<()> {
    use autoencoder::student::model::{BANK_PREFIX, bank_initial_bias};
    let n = s.excitation_subpartials;
    let w = Tensor::zeros((1, 1, s.bottleneck, n), DType::F32, device)
        .map_err(autoencoder::Error::from)?;
    let b =
        Tensor::full(bank_initial_bias(s) as f32, n, device).map_err(autoencoder::Error::from)?;
    for (name, value) in [("W", w), ("biases", b)] {
        let zero = value.zeros_like().map_err(autoencoder::Error::from)?;
        for kind in ["m", "v"] {
            tensors.insert(format!("{kind}/{BANK_PREFIX}{name}"), zero.clone());
        }
        tensors.insert(format!("ema/{BANK_PREFIX}{name}"), value.clone());
        tensors.insert(format!("param/{BANK_PREFIX}{name}"), value);
    }
    Ok(())
}

/// Adds a sub-partial bank's variables where the state tensors have none (a student grown
/// by a bank, see [`StudentTrainer::resume_growing`]): as a new student's bank starts (the
/// map at zero, every gain at [`autoencoder::student::model::BANK_INITIAL_GAIN`]), their
/// moments zero, their average the same.
fn add_bank(
    tensors: &mut std::collections::HashMap<String, Tensor>,
    config: &StudentAutoencoderConfig,
    device: &Device,
) -> Result<()> {
    use autoencoder::student::model::BANK_PREFIX;
    let s = &config.student;
    if !s.subpartial_bank || tensors.contains_key(&format!("param/{BANK_PREFIX}W")) {
        return Ok(());
    }
    new_bank(tensors, s, device)
}

/// Whether variable `name` belongs to the encoder (Magenta's `ae_*` names).
fn is_encoder_variable(name: &str) -> bool {
    name.starts_with("ae_")
}

/// The teacher named by `options` (none where there is none), checked against the
/// student it is to teach: the same encoder and excitation.
fn load_teacher(
    options: &TrainOptions,
    config: &StudentAutoencoderConfig,
    device: &Device,
) -> Result<Option<WaveNetAutoencoder>> {
    let Some(dir) = &options.teacher else {
        if options.student_loss.distill > 0.0 {
            return Err(Error::Compute(autoencoder::Error::Config(
                "a distillation loss weight needs a teacher model".into(),
            )));
        }
        return Ok(None);
    };
    let teacher = crate::models::dir::load(dir, device)?.model;
    let tc = teacher.config();
    let same_encoder = [
        (tc.ae_num_stages, config.encoder.ae_num_stages),
        (tc.ae_num_layers, config.encoder.ae_num_layers),
        (tc.ae_filter_length, config.encoder.ae_filter_length),
        (tc.ae_width, config.encoder.ae_width),
        (tc.ae_bottleneck_width, config.encoder.ae_bottleneck_width),
        (tc.ae_hop_length, config.encoder.ae_hop_length),
    ]
    .iter()
    .all(|(a, b)| a == b);
    if !same_encoder
        || tc.excitation_harmonics != config.student.excitation_harmonics
        || config.student.excitation_subpartials != 0
    {
        return Err(Error::invalid(
            dir,
            "this teacher's encoder or excitation differs from the student's (a distilled \
             student carries its teacher's encoder and the same harmonics, no sub-partials)",
        ));
    }
    Ok(Some(teacher))
}

/// Sets the student's encoder variables to those of the teacher in `teacher_dir`.
fn copy_encoder(varmap: &VarMap, teacher_dir: &Path, device: &Device) -> Result<()> {
    let path = teacher_dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, 4 << 30)?;
    let weights = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| Error::invalid(&path, format!("not a safetensors file ({e})")))?;
    let data = varmap.data().lock().map_err(|_| {
        Error::Compute(autoencoder::Error::Shape(
            "variable map lock poisoned".into(),
        ))
    })?;
    for (name, var) in data.iter().filter(|(n, _)| is_encoder_variable(n)) {
        let value = weights
            .get(name)
            .ok_or_else(|| Error::invalid(&path, format!("the teacher has no variable {name}")))?;
        var.set(value).map_err(|error| Error::Model {
            path: path.clone(),
            error: error.into(),
        })?;
    }
    Ok(())
}

/// What [`StudentTrainer::resume_growing`] adds to a student before it resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grow {
    /// Grow to this many sub-partials of excitation (none: as it is).
    pub subpartials: Option<usize>,
    /// Add a sub-partial bank (false: as it is; a bank is never removed).
    pub subpartial_bank: bool,
    /// Measure the sub-partials into the frames (false: as it is; never undone). Needs a
    /// bank (or `subpartial_bank`).
    pub measured_subpartials: bool,
}

/// Refuses a bank match weight the run cannot use: a student without a sub-partial bank,
/// or steps through candle's autograd (which does not compute the term).
fn check_bank_weight(
    options: &TrainOptions,
    config: &StudentAutoencoderConfig,
    fused: bool,
) -> Result<()> {
    if options.bank_weight > 0.0 && !(config.student.subpartial_bank && fused) {
        return Err(Error::Compute(autoencoder::Error::Config(
            "a bank match weight needs a student with a sub-partial bank, trained on the CPU without a teacher term".into(),
        )));
    }
    Ok(())
}

/// A student's training run over a model directory.
pub struct StudentTrainer {
    dir: PathBuf,
    config: StudentAutoencoderConfig,
    options: TrainOptions,
    data: TrainData,
    model: StudentAutoencoder,
    optimizer: Optimizer,
    rng: ChaCha8Rng,
    objective: Objective,
    teacher: Option<WaveNetAutoencoder>,
    /// The variables, by name (the fused pass reads their values every step).
    varmap: VarMap,
    /// The hand-written training pass, on a CPU (candle's autograd elsewhere, and for
    /// the distillation term, which needs the teacher).
    fused: Option<FusedStudent>,
    device: Device,
    progress: super::driver::Progress,
}

impl std::fmt::Debug for StudentTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StudentTrainer")
            .field("dir", &self.dir)
            .field("step", &self.optimizer.step_count())
            .finish()
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
        let config_path = dir.join(STUDENT_FILE);
        super::check_start(dir, &config_path, overwrite)?;
        let split = super::Split {
            validation_share: options.validation_share,
            seed: options.seed,
        };
        let teacher = load_teacher(&options, config, device)?;
        let data = TrainData::open(&options.data, &split, None)?;
        let varmap = VarMap::new();
        let model = StudentAutoencoder::new(
            config,
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        seed_variables(&varmap, options.seed)?;
        if let Some(teacher) = &options.teacher {
            copy_encoder(&varmap, teacher, device)?;
        }
        let mut optimizer = Optimizer::new(&varmap, options.optimizer())?;
        if teacher.is_some() {
            optimizer.freeze(is_encoder_variable);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        rng.set_stream(1);
        super::init_dir(
            dir,
            &config_path,
            overwrite,
            autoencoder::family::to_json(autoencoder::family::PARALLEL_WAVENET, config),
        )?;
        Self::assemble(
            dir, config, options, data, model, varmap, teacher, optimizer, rng, device, 0, 0.0,
        )
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
        let grow_bank = grow.subpartial_bank && !config.student.subpartial_bank;
        let grow_subs = grow
            .subpartials
            .filter(|&n| n != config.student.excitation_subpartials);
        if grow_subs.is_some() && config.student.subpartial_bank {
            return Err(Error::invalid(
                dir.join(STUDENT_FILE),
                "a student with a sub-partial bank cannot grow sub-partials (the bank's gains are one per sub-partial)",
            ));
        }
        if let Some(n) = grow_subs {
            if n < config.student.excitation_subpartials || config.student.excitation_harmonics == 0
            {
                return Err(Error::invalid(
                    dir.join(STUDENT_FILE),
                    format!(
                        "a student can grow sub-partials, not lose them or gain them without an excitation (it has {} with {} harmonics, {n} asked)",
                        config.student.excitation_subpartials, config.student.excitation_harmonics
                    ),
                ));
            }
            config.student.excitation_subpartials = n;
        }
        if grow_bank {
            config.student.subpartial_bank = true;
        }
        let grow_measured_subs = grow.measured_subpartials && !config.student.measured_subpartials;
        if grow_measured_subs {
            config.student.measured_subpartials = true;
            config.student.bottleneck += config.student.excitation_subpartials;
        }
        let grown = grow_subs.is_some() || grow_bank || grow_measured_subs;
        if grown {
            config.validate().map_err(|error| Error::Model {
                path: dir.join(STUDENT_FILE),
                error,
            })?;
        }
        let varmap = VarMap::new();
        let model = StudentAutoencoder::new(
            &config,
            &VarBuilder::from_varmap(&varmap, DType::F32, device),
        )?;
        let teacher = load_teacher(&state.options, &config, device)?;
        let channels = config.student.excitation_channels();
        let (data, mut optimizer, rng) =
            super::restore_run_adapted(dir, &state, &varmap, device, &|tensors| {
                pad_excitation_rows(tensors, channels)?;
                add_bank(tensors, &config, device)?;
                grow_measured(tensors, &config, device)
            })?;
        if grown {
            // The weights grow first, then the config that names their shapes.
            crate::fsutil::write_tensors(
                &dir.join(WEIGHTS_FILE),
                &optimizer.ema(),
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
            optimizer.freeze(is_encoder_variable);
        }
        Self::assemble(
            dir,
            &config,
            state.options,
            data,
            model,
            varmap,
            teacher,
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
        config: &StudentAutoencoderConfig,
        options: TrainOptions,
        data: TrainData,
        model: StudentAutoencoder,
        varmap: VarMap,
        teacher: Option<WaveNetAutoencoder>,
        optimizer: Optimizer,
        rng: ChaCha8Rng,
        device: &Device,
        samples_seen: u64,
        train_secs: f64,
    ) -> Result<Self> {
        let objective = Objective::new(options.student_loss, device)
            .map_err(|e| Error::invalid(dir, e.to_string()))?;
        let fused = device
            .is_cpu()
            .then(|| FusedStudent::new(config, super::cpu_threads()))
            .transpose()?;
        let trainer = Self {
            dir: dir.to_path_buf(),
            config: config.clone(),
            options,
            data,
            model,
            optimizer,
            rng,
            objective,
            teacher,
            varmap,
            fused,
            device: device.clone(),
            progress: super::driver::Progress {
                samples_seen,
                train_secs,
                last_validation: None,
            },
        };
        check_bank_weight(&trainer.options, config, trainer.uses_fused())?;
        Ok(trainer)
    }

    pub fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    /// Steps through candle's autograd from now on, as on any device but the CPU: what
    /// runs on a GPU, run where there is none (a run with a bank match term is refused,
    /// as it would be on a GPU).
    pub fn use_autograd(&mut self) -> Result<()> {
        check_bank_weight(&self.options, &self.config, false)?;
        self.fused = None;
        Ok(())
    }

    /// Whether steps run the hand-written fused pass (on a CPU, without a teacher term)
    /// rather than candle's autograd.
    pub fn uses_fused(&self) -> bool {
        self.fused.is_some() && self.teacher.is_none() && self.objective.weights().distill == 0.0
    }

    /// One update through the fused pass: the flows and encoder by hand, the loss (and its
    /// gradient with respect to the audio) by candle.
    fn fused_step(
        &mut self,
        scaled: &[f32],
        z: &[f32],
        excitation: Option<&Tensor>,
        target: &Tensor,
        target_audio: &[f32],
        lr: f64,
    ) -> Result<(autoencoder::student::Terms, autoencoder::optim::StepStats)> {
        let fused = self.fused.as_mut().ok_or_else(|| {
            Error::Compute(autoencoder::Error::Config(
                "the fused pass runs on a CPU only".into(),
            ))
        })?;
        let compute = autoencoder::Error::from;
        let excitation = excitation
            .map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()))
            .transpose()
            .map_err(compute)?;
        {
            let vars = self
                .varmap
                .data()
                .lock()
                .map_err(|_| autoencoder::Error::Shape("variable map lock poisoned".into()))?;
            fused.load(|name| vars.get(name).map(|v| v.as_tensor()))?;
        }
        let student = &self.config.student;
        let bank_weight = self.options.bank_weight as f32;
        let measured_subs = student.measured_subpartials;
        let amplitudes = match &excitation {
            Some(e) if student.subpartial_bank && (bank_weight > 0.0 || measured_subs) => {
                let (crop, k2) = (self.options.crop, student.excitation_channels());
                Some(
                    target_audio
                        .chunks_exact(crop)
                        .zip(e.chunks_exact(crop * k2))
                        .flat_map(|(a, e)| {
                            autoencoder::student::model::subpartial_amplitudes(student, a, e)
                        })
                        .collect::<Vec<f32>>(),
                )
            }
            _ => None,
        };
        // What the frames measure of each crop: its own sub-partials (silent without an
        // excitation).
        let measured: Option<Vec<f32>> = measured_subs.then(|| {
            let (batch, frames) = (self.options.batch, self.options.crop / student.hop_length);
            match &amplitudes {
                Some(a) => a.iter().map(|&a| measured_channel(a)).collect(),
                None => {
                    vec![measured_channel(0.0); batch * frames * student.excitation_subpartials]
                }
            }
        });
        let batch = StudentBatch {
            batch: self.options.batch,
            time: self.options.crop,
            scaled,
            noise: z,
            excitation: excitation.as_deref(),
            bank_target: amplitudes
                .as_deref()
                .filter(|_| bank_weight > 0.0)
                .map(|a| (a, bank_weight)),
            measured: measured.as_deref(),
        };
        let audio = fused.forward(&batch)?;
        let candidate = candle_core::Var::from_tensor(
            &Tensor::from_vec(audio, target.dims(), &self.device).map_err(compute)?,
        )
        .map_err(compute)?;
        let (loss, mut terms) = self.objective.score_audio(candidate.as_tensor(), target)?;
        if let Some(bank) = fused.bank_loss() {
            terms.bank = Some(bank);
            terms.total += f64::from(bank_weight) * bank;
        }
        let grads = loss.backward().map_err(compute)?;
        let d_audio = grads
            .get(candidate.as_tensor())
            .ok_or_else(|| {
                Error::Compute(autoencoder::Error::Shape(
                    "the loss does not depend on the student's audio".into(),
                ))
            })?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(compute)?;
        let grads = fused.backward(&batch, &d_audio)?;
        let stats = self.optimizer.step_with(&grads, lr)?;
        Ok((terms, stats))
    }

    /// Trains on `weights` from the next step on (saved with the next checkpoint and
    /// logged as a `loss` event). Distillation needs the run to have a teacher.
    pub fn set_loss(&mut self, weights: Weights) -> Result<()> {
        if weights.distill > 0.0 && self.teacher.is_none() {
            return Err(Error::Compute(autoencoder::Error::Config(
                "a distillation loss weight needs a teacher model".into(),
            )));
        }
        self.objective = Objective::new(weights, &self.device)?;
        self.options.student_loss = weights;
        append_log(
            &self.dir,
            &Event::LossWeights {
                step: self.step(),
                weights,
            },
        )
    }

    /// Weighs the bank match term `weight` from the next step on (see
    /// [`TrainOptions::bank_weight`]; saved with the next checkpoint and logged as a `bank`
    /// event). It needs a student with a sub-partial bank, trained by the fused pass.
    pub fn set_bank_weight(&mut self, weight: f64) -> Result<()> {
        let options = TrainOptions {
            bank_weight: weight,
            ..self.options.clone()
        };
        options.check(&self.config.encoder)?;
        check_bank_weight(&options, &self.config, self.uses_fused())?;
        self.options = options;
        append_log(
            &self.dir,
            &Event::BankWeight {
                step: self.step(),
                weight,
            },
        )
    }

    /// Layers `share` of the crops over their octaves below from the next step on (see
    /// [`TrainOptions::sub_octave_share`]; saved with the next checkpoint and logged as a
    /// `layering` event).
    pub fn set_sub_octave_share(&mut self, share: f64) -> Result<()> {
        let options = TrainOptions {
            sub_octave_share: share,
            ..self.options.clone()
        };
        options.check(&self.config.encoder)?;
        self.options = options;
        append_log(
            &self.dir,
            &Event::SubOctaveShare {
                step: self.step(),
                share,
            },
        )
    }

    pub fn options(&self) -> &TrainOptions {
        &self.options
    }

    pub fn data(&self) -> &TrainData {
        &self.data
    }

    pub fn config(&self) -> &StudentAutoencoderConfig {
        &self.config
    }

    fn ema_model(&self) -> Result<StudentAutoencoder> {
        let vb = VarBuilder::from_tensors(self.optimizer.ema(), DType::F32, &self.device);
        Ok(StudentAutoencoder::new(&self.config, &vb)?)
    }

    /// The loss (all its weighted terms) of the EMA weights on the first crop of up to
    /// `validation_notes` held-out notes, from fixed noise.
    pub fn validate(&self) -> Result<f64> {
        let model = self.ema_model()?;
        let crop = self.options.crop;
        let notes = self
            .data
            .validation_notes_audio(self.options.validation_notes)?;
        let mut total = 0f64;
        for (i, chunk) in notes.chunks(super::VALIDATION_BATCH).enumerate() {
            let audio: Vec<f32> = chunk
                .iter()
                .flat_map(|(_, a, _)| &a[..crop])
                .copied()
                .collect();
            let scaled: Vec<f32> = audio.iter().map(|&x| mulaw::scaled(x)).collect();
            let f0: Vec<f32> = chunk.iter().map(|(_, _, f)| *f).collect();
            let shape = (chunk.len(), crop);
            let tensor = |v: Vec<f32>| {
                Tensor::from_vec(v, shape, &self.device).map_err(autoencoder::Error::from)
            };
            let z = logistic(&mut step_rng(0, i as u64), chunk.len() * crop);
            let exc = excitation(&self.config, &f0, crop, &[], &self.device)?;
            let (_, terms) = self.objective.evaluate(
                &model,
                self.teacher.as_ref().map(|t| t.decoder()),
                &tensor(audio)?,
                &tensor(scaled)?,
                &tensor(z)?,
                exc.as_ref(),
            )?;
            total += terms.total * chunk.len() as f64;
        }
        Ok(total / notes.len().max(1) as f64)
    }

    /// Plays held-out notes with the EMA weights and scores them as `timbrel eval` does.
    pub fn free_run(&self) -> Result<Event> {
        let model = self.ema_model()?;
        let hop = self.config.student.hop_length;
        let notes = super::driver::FreeRunNotes::pick(&self.data, &self.options, hop, true)?;
        let out = reconstruct(&model, &notes.originals, &notes.f0, 0)?;
        Ok(notes.scored(self.step(), &out))
    }

    /// Writes the student (EMA weights) and the exact training state.
    pub fn checkpoint(&self) -> Result<()> {
        super::driver::Job::checkpoint(self)
    }

    /// Trains until `options.steps` or until `stop` is set, as [`super::Trainer::run`].
    pub fn run(&mut self, stop: &AtomicBool, on_event: &mut dyn FnMut(&Event)) -> Result<Summary> {
        super::driver::run(self, stop, on_event)
    }
}

impl super::driver::Job for StudentTrainer {
    fn options(&self) -> &TrainOptions {
        &self.options
    }

    fn dir(&self) -> &Path {
        &self.dir
    }

    fn step(&self) -> u64 {
        self.optimizer.step_count()
    }

    fn train(&mut self, step: u64) -> Result<super::driver::Stepped> {
        let (batch, crop) = (self.options.batch, self.options.crop);
        let crops = self.data.crops(&mut self.rng, &self.options)?;
        let mut noise = step_rng(self.options.seed, step);
        let f0: Vec<f32> = crops
            .f0_hz
            .iter()
            .map(|&hz| {
                if noise.random::<f64>() < self.options.unpitched_share {
                    0.0
                } else {
                    hz
                }
            })
            .collect();
        let z = logistic(&mut noise, batch * crop);
        let shape = (batch, crop);
        let tensor = |v: &[f32]| {
            Tensor::from_slice(v, shape, &self.device).map_err(autoencoder::Error::from)
        };
        let exc = excitation(&self.config, &f0, crop, &crops.offsets, &self.device)?;
        let lr = self.options.lr_at(step);
        let audio = tensor(&crops.audio)?;
        let (terms, stats) = if self.uses_fused() {
            self.fused_step(&crops.scaled, &z, exc.as_ref(), &audio, &crops.audio, lr)?
        } else {
            let (loss, terms) = self.objective.evaluate(
                &self.model,
                self.teacher.as_ref().map(|t| t.decoder()),
                &audio,
                &tensor(&crops.scaled)?,
                &tensor(&z)?,
                exc.as_ref(),
            )?;
            (terms, self.optimizer.step(&loss, lr)?)
        };
        Ok(super::driver::Stepped {
            loss: terms.total,
            lr,
            grad_norm: stats.grad_norm,
            extra: vec![Event::StudentTerms { step, terms }],
        })
    }

    fn validation(&mut self, step: u64) -> Result<(f64, Event)> {
        let loss = self.validate()?;
        Ok((loss, Event::SpectralValidation { step, loss }))
    }

    fn free_run(&self) -> Result<Event> {
        StudentTrainer::free_run(self)
    }

    fn progress(&self) -> &super::driver::Progress {
        &self.progress
    }

    fn progress_mut(&mut self) -> &mut super::driver::Progress {
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
