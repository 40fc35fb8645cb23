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

use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig};
use candle_core::{Device, Tensor};

pub use grow::Grow;
pub use trainer::StudentTrainer;

use crate::error::{Error, Result};
pub use crate::models::student::{STUDENT_FILE, load, read_config};

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
    crate::models::reconstruct(
        model,
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
    crate::models::excitation::excitation_partials_of(
        (s.excitation_harmonics, s.excitation_subpartials),
        device,
        Some(f0_hz),
        len,
        offsets,
    )
}
