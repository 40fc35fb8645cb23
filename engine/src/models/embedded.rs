//! The model that ships inside the binary: `assets/default-model` (see its MODEL.md),
//! embedded at build time so `timbrel` works from any folder.

use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig};
use autoencoder::{Config, WaveNetAutoencoder};
use candle_core::Device;

use crate::error::{Error, Result};

/// `assets/default-model/config.json`.
pub const CONFIG_JSON: &str = include_str!("../../../assets/default-model/config.json");
/// `assets/default-model/weights.safetensors` (the EMA weights of the training run).
pub const WEIGHTS: &[u8] = include_bytes!("../../../assets/default-model/weights.safetensors");

/// What the status line and `timbrel model info` call it.
pub const NAME: &str = "default (small-pitched, FluidR3_GM)";

/// `assets/default-model/student/student.json`: the Parallel WaveNet student shipped
/// beside the default model (see its MODEL.md).
pub const STUDENT_JSON: &str = include_str!("../../../assets/default-model/student/student.json");
/// `assets/default-model/student/weights.safetensors`.
pub const STUDENT_WEIGHTS: &[u8] =
    include_bytes!("../../../assets/default-model/student/weights.safetensors");

/// What the status line calls the shipped student.
pub const STUDENT_NAME: &str = "default student (Parallel WaveNet, FluidR3_GM)";

/// The decoder the default model plays with when none is asked for: the student while
/// it beats the autoregressive teacher on held-out notes (assets/default-model/MODEL.md
/// and student/MODEL.md keep the figures: the student plays most of them in tune, the
/// teacher none).
pub const DEFAULT_DECODER: super::DecoderKind = super::DecoderKind::Parallel;

/// Why [`DEFAULT_DECODER`] is what it is, for status lines.
pub const DEFAULT_DECODER_REASON: &str =
    "it beats the autoregressive teacher on held-out notes; figures in MODEL.md";

fn embedded_path() -> std::path::PathBuf {
    "<embedded>/assets/default-model".into()
}

pub fn config() -> Result<Config> {
    Config::from_json(CONFIG_JSON).map_err(|error| Error::Model {
        path: embedded_path(),
        error,
    })
}

/// Loads the embedded model onto `device`.
pub fn load(device: &Device) -> Result<WaveNetAutoencoder> {
    WaveNetAutoencoder::from_safetensors(&config()?, WEIGHTS, device).map_err(|error| {
        Error::Model {
            path: embedded_path(),
            error,
        }
    })
}

fn embedded_student_path() -> std::path::PathBuf {
    "<embedded>/assets/default-model/student".into()
}

pub fn student_config() -> Result<StudentAutoencoderConfig> {
    super::student::parse_config(STUDENT_JSON.as_bytes(), &embedded_student_path())
}

/// Loads the embedded student onto `device`.
pub fn load_student(device: &Device) -> Result<StudentAutoencoder> {
    StudentAutoencoder::from_safetensors(&student_config()?, STUDENT_WEIGHTS, device).map_err(
        |error| Error::Model {
            path: embedded_student_path(),
            error,
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_model_loads() {
        let model = super::load(&candle_core::Device::Cpu).unwrap();
        assert_eq!(model.config(), &autoencoder::Config::small_pitched());
    }

    #[test]
    fn the_embedded_student_loads_and_reads_the_pitch() {
        let student = super::load_student(&candle_core::Device::Cpu).unwrap();
        assert!(student.config().student.excitation_harmonics > 0);
    }
}
