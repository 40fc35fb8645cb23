//! `timbrel train-student`: the Parallel WaveNet student, trained on a weighted sum of the
//! multi-resolution spectral loss and the power loss against the real notes (then with an
//! encoder of its own, trained jointly) and of the distillation KL against a WaveNet
//! teacher (then with the teacher's encoder, copied in and frozen, so both read the same
//! embedding). The same data, schedule, optimiser, checkpoints, exact resume and log as
//! [`super::Trainer`] (the generic run); the model directory holds `student.json` instead
//! of `config.json`. The student's step is `trainer.rs` (the fused pass in
//! `fused_step.rs`), its growth on resume `grow.rs`, its teacher `teacher.rs`.

mod fused_step;
mod grow;
mod teacher;
mod trainer;

use std::path::Path;

use autoencoder::mulaw;
use autoencoder::student::cpu::CpuStudent;
use autoencoder::student::generate::render_cpu;
use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig};
use candle_core::{Device, Tensor};

pub use grow::Grow;
pub use trainer::StudentTrainer;

use crate::error::{Error, Result, read_bounded};
use crate::model_dir::WEIGHTS_FILE;

/// The student's shape in its model directory.
pub const STUDENT_FILE: &str = "student.json";

/// Reads a student directory's `student.json`.
pub fn read_config(dir: &Path) -> Result<StudentAutoencoderConfig> {
    let path = dir.join(STUDENT_FILE);
    parse_config(&read_bounded(&path, 1 << 20)?, &path)
}

/// A `student.json`'s contents (from `path`, for errors), checked.
pub fn parse_config(bytes: &[u8], path: &Path) -> Result<StudentAutoencoderConfig> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid(path, "not a student config (not UTF-8 text)"))?;
    // Students written before configs named their family have no key: still students.
    let config: StudentAutoencoderConfig =
        autoencoder::family::from_json(autoencoder::family::PARALLEL_WAVENET, true, text)
            .map_err(|e| Error::invalid(path, format!("not a student config ({e})")))?;
    config.validate().map_err(|error| Error::Model {
        path: path.to_path_buf(),
        error,
    })?;
    Ok(config)
}

/// Loads a trained student (`student.json` + `weights.safetensors`).
pub fn load(dir: &Path, device: &Device) -> Result<StudentAutoencoder> {
    load_identified(dir, device).map(|(model, _)| model)
}

/// [`load`], and the student's identity for caches ([`crate::model_dir::identity`]).
pub fn load_identified(dir: &Path, device: &Device) -> Result<(StudentAutoencoder, String)> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, 4 << 30)?;
    crate::error::check_safetensors(&path, &bytes)?;
    let model = StudentAutoencoder::from_safetensors(&config, &bytes, device)
        .map_err(|error| Error::Model { path, error })?;
    Ok((model, crate::model_dir::identity(&config, &bytes)))
}

/// Plays `notes` (16 kHz, all as long as the first, a multiple of the hop) as the student
/// hears them: encoded, then rendered from noise drawn with `seed` at each note's f0.
pub fn reconstruct(
    model: &StudentAutoencoder,
    notes: &[Vec<f32>],
    f0_hz: &[f32],
    seed: u64,
) -> Result<Vec<Vec<f32>>> {
    // Every tensor on the model's device: a student trained or evaluated on a GPU plays there.
    let device = model.device().clone();
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
    let scaled: Vec<f32> = notes.iter().flatten().map(|&x| mulaw::scaled(x)).collect();
    let x =
        Tensor::from_vec(scaled, (notes.len(), len), &device).map_err(autoencoder::Error::from)?;
    let audio = Tensor::from_vec(notes.concat(), (notes.len(), len), &device)
        .map_err(autoencoder::Error::from)?;
    let exc = excitation(model.config(), f0_hz, len, &[], &device)?;
    let measured = model.measure(&audio, exc.as_ref())?;
    let encoding: Vec<f32> = model
        .encode(&x, measured.as_ref())?
        .flatten_all()
        .and_then(|e| e.to_vec1())
        .map_err(autoencoder::Error::from)?;
    // The CPU renderer, as the engine plays a student: voice `i` from noise stream `i`.
    let cpu = CpuStudent::new(model.student())?;
    let f0: Vec<f32> = f0_hz
        .iter()
        .flat_map(|&hz| std::iter::repeat_n(hz, len))
        .collect();
    let streams: Vec<u64> = (0..notes.len() as u64).collect();
    let request = autoencoder::Request {
        encoding: &encoding,
        f0: Some(&f0),
        streams: &streams,
        sampling: autoencoder::Sampling {
            temperature: 1.0,
            seed,
        },
        threads: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
    };
    Ok(render_cpu(
        &cpu,
        &request,
        &autoencoder::Control::default(),
    )?)
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
