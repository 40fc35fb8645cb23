//! The one loader: any model directory, by its family tag, or the embedded default.

use std::path::Path;
use std::sync::Arc;

use candle_core::Device;

use super::samplernn::{SAMPLERNN_DIR, is_samplernn};
use super::student::is_student;
use super::{DecoderKind, ModelFamily, ModelSource, STUDENT_DIR, dir, embedded};
use crate::error::{Error, Result};

/// A loaded model: its family, what status lines call it, and its identity for caches
/// (the SHA-256 of its config and weights, [`dir::identity`]).
#[derive(Debug, Clone)]
pub struct Loaded {
    pub family: Arc<dyn ModelFamily>,
    pub name: String,
    pub identity: String,
}

/// Loads the model `source` names onto `device`.
///
/// `kind` picks the decoder: the default model plays with [`embedded::DEFAULT_DECODER`]
/// unless told otherwise; a model directory with the student in its `student/` folder
/// where it has one (as the default model's own folder does), else with its
/// autoregressive decoder, unless told otherwise; a student's own directory only plays
/// in parallel; a SampleRNN's only with the samplernn decoder (a model directory may
/// keep one in `samplernn/`).
pub fn open(source: &ModelSource, kind: Option<DecoderKind>, device: &Device) -> Result<Loaded> {
    match source {
        ModelSource::Default => match kind.unwrap_or(embedded::DEFAULT_DECODER) {
            DecoderKind::Autoregressive => {
                let model = embedded::load(device)?;
                let identity = dir::identity(model.config(), embedded::WEIGHTS);
                Ok(loaded(model, embedded::NAME.to_string(), identity))
            }
            DecoderKind::Parallel => {
                let model = embedded::load_student(device)?;
                let identity = dir::identity(model.config(), embedded::STUDENT_WEIGHTS);
                Ok(loaded(model, embedded::STUDENT_NAME.to_string(), identity))
            }
            DecoderKind::SampleRnn => Err(Error::invalid(
                Path::new(embedded::NAME),
                "the default model has no SampleRNN; train one and give its directory",
            )),
        },
        ModelSource::Dir(dir) => open_dir(dir, kind, device),
    }
}

fn open_dir(dir: &Path, kind: Option<DecoderKind>, device: &Device) -> Result<Loaded> {
    if is_samplernn(dir) {
        return match kind {
            None | Some(DecoderKind::SampleRnn) => open_samplernn(dir, device),
            Some(_) => Err(Error::invalid(
                dir,
                "this is a SampleRNN: it plays with the samplernn decoder only",
            )),
        };
    }
    if kind == Some(DecoderKind::SampleRnn) {
        let beside = dir.join(SAMPLERNN_DIR);
        if !is_samplernn(&beside) {
            return Err(Error::invalid(
                dir,
                format!("no SampleRNN in this directory or beside it (none in {SAMPLERNN_DIR}/)"),
            ));
        }
        return open_samplernn(&beside, device);
    }
    let student = is_student(dir);
    let beside = dir.join(STUDENT_DIR);
    match (kind, student) {
        (Some(DecoderKind::Autoregressive), true) => Err(Error::invalid(
            dir,
            "this is a Parallel WaveNet student: it has no autoregressive decoder",
        )),
        (_, true) => open_student(dir, device),
        (None, false) if is_student(&beside) => open_student(&beside, device),
        (Some(DecoderKind::Parallel), false) => {
            if !is_student(&beside) {
                return Err(Error::invalid(
                    dir,
                    format!(
                        "no Parallel WaveNet student beside this model (none in {STUDENT_DIR}/)"
                    ),
                ));
            }
            open_student(&beside, device)
        }
        (_, false) => {
            let model = dir::load(dir, device)?;
            Ok(loaded(
                model.model,
                dir.display().to_string(),
                model.identity,
            ))
        }
    }
}

fn open_samplernn(dir: &Path, device: &Device) -> Result<Loaded> {
    let (model, identity) = super::samplernn::load(dir, device)?;
    Ok(loaded(model, dir.display().to_string(), identity))
}

fn open_student(dir: &Path, device: &Device) -> Result<Loaded> {
    let (model, identity) = super::student::load_identified(dir, device)?;
    Ok(loaded(
        model,
        format!("{} (student)", dir.display()),
        identity,
    ))
}

fn loaded(model: impl ModelFamily + 'static, name: String, identity: String) -> Loaded {
    Loaded {
        family: Arc::new(model),
        name,
        identity,
    }
}
