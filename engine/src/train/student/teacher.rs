//! A distilled student's teacher: found from the run's options, checked against the
//! student (the same encoder and excitation), its encoder copied into the student and
//! frozen there.

use std::path::Path;

use autoencoder::WaveNetAutoencoder;
use autoencoder::student::StudentAutoencoderConfig;
use candle_core::Device;
use candle_nn::VarMap;

use crate::error::{Error, Result, read_bounded};
use crate::models::dir::WEIGHTS_FILE;
use crate::train::TrainOptions;

/// Whether variable `name` belongs to the encoder (Magenta's `ae_*` names).
pub(super) fn is_encoder_variable(name: &str) -> bool {
    name.starts_with("ae_")
}

/// The teacher named by `options` (none where there is none), checked against the
/// student it is to teach: the same encoder and excitation.
pub(super) fn load_teacher(
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
pub(super) fn copy_encoder(varmap: &VarMap, teacher_dir: &Path, device: &Device) -> Result<()> {
    let path = teacher_dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, 4 << 30)?;
    let weights = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| Error::invalid(&path, format!("not a safetensors file ({e})")))?;
    let data = varmap
        .data()
        .lock()
        .map_err(|_| crate::train::run::poisoned())?;
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
