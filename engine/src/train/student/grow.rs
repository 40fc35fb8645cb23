//! Growing a student on resume ([`Grow`]): more sub-partials of excitation, a sub-partial
//! bank, measured sub-partials, or a measured envelope. The config grows at once; the state tensors grow when
//! they are read ([`adapt`]), so a run stopped before its next checkpoint resumes all the
//! same.

use std::collections::HashMap;
use std::path::Path;

use autoencoder::student::StudentAutoencoderConfig;
use candle_core::{DType, Device, Tensor};

use super::STUDENT_FILE;
use crate::error::{Error, Result};

/// What [`super::StudentTrainer::resume_growing`] adds to a student before it resumes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grow {
    /// Grow to this many sub-partials of excitation (none: as it is).
    pub subpartials: Option<usize>,
    /// Add a sub-partial bank (false: as it is; a bank is never removed).
    pub subpartial_bank: bool,
    /// Measure the sub-partials into the frames (false: as it is; never undone). Needs a
    /// bank (or `subpartial_bank`).
    pub measured_subpartials: bool,
    /// Carry a measured spectral envelope of this many bands in the frames (none: as it
    /// is; 0 takes it off). The flows do not read it, so no weight changes.
    pub envelope_bands: Option<usize>,
    /// Refine the envelope stage's gains this many times when it plays (none: as it is).
    /// Training shapes in one pass whatever this says, so nothing else changes.
    pub envelope_refinements: Option<usize>,
}

/// Zero-pads every excitation projection (`…/exc_map_N/W`, `[1, 1, channels, 2w]`) of
/// the state tensors that has fewer input rows than `channels`: a student grown by
/// sub-partials (see [`super::StudentTrainer::resume_growing`]); the new rows, their moments and
/// their average are zero.
fn pad_excitation_rows(tensors: &mut HashMap<String, Tensor>, channels: usize) -> Result<()> {
    pad_rows(tensors, ".exc_map_", channels)
}

/// Zero-pads every `[1, 1, rows, cols]` kernel whose name contains `marker` to `rows`
/// input rows (the new rows, their moments and their average zero).
fn pad_rows(tensors: &mut HashMap<String, Tensor>, marker: &str, channels: usize) -> Result<()> {
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
/// [`super::StudentTrainer::resume_growing`]) where they are narrower than its frames: every
/// flow's conditioning map gets zero rows for the measured channels (so the flows play
/// what they played), and the bank starts over as a measured bank starts (map and biases
/// zero: every gain the measured amplitude), its moments zero.
fn grow_measured(
    tensors: &mut HashMap<String, Tensor>,
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
    tensors: &mut HashMap<String, Tensor>,
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
/// by a bank, see [`super::StudentTrainer::resume_growing`]): as a new student's bank starts (the
/// map at zero, every gain at [`autoencoder::student::model::BANK_INITIAL_GAIN`]), their
/// moments zero, their average the same.
fn add_bank(
    tensors: &mut HashMap<String, Tensor>,
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

/// What a resume does to the state tensors of a student shaped as `config` (see
/// [`super::StudentTrainer::resume_growing`]): each growth is done where the tensors do not
/// have it yet, so a later resume adapts them again as needed.
pub(super) fn adapt(
    tensors: &mut HashMap<String, Tensor>,
    config: &StudentAutoencoderConfig,
    device: &Device,
) -> Result<()> {
    pad_excitation_rows(tensors, config.student.excitation_channels())?;
    add_bank(tensors, config, device)?;
    grow_measured(tensors, config, device)
}

/// Grows `config` (read from `dir`) as `grow` asks; whether it grew. Refused: a student
/// with a bank growing sub-partials, a student losing sub-partials or gaining them
/// without an excitation, and a grown config that does not hold together.
pub(super) fn grow_config(
    dir: &Path,
    config: &mut StudentAutoencoderConfig,
    grow: Grow,
) -> Result<bool> {
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
        if n < config.student.excitation_subpartials || config.student.excitation_harmonics == 0 {
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
    let grow_envelope = grow
        .envelope_bands
        .filter(|&n| n != config.student.envelope_bands);
    if let Some(n) = grow_envelope {
        config.student.envelope_bands = n;
    }
    let refine = grow
        .envelope_refinements
        .filter(|&n| n != config.student.envelope_refinements);
    if let Some(n) = refine {
        config.student.envelope_refinements = n;
    }
    let grown = grow_subs.is_some()
        || grow_bank
        || grow_measured_subs
        || grow_envelope.is_some()
        || refine.is_some();
    if grown {
        config.validate().map_err(|error| Error::Model {
            path: dir.join(STUDENT_FILE),
            error,
        })?;
    }
    Ok(grown)
}
