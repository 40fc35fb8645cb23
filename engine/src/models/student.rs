//! The Parallel WaveNet student as a [`ModelFamily`]: whether a directory holds one,
//! reading its `student.json`, loading it, encoding (with its measured sub-partials) and
//! its generator (`autoencoder::student::generate::StudentGenerator`).

use std::path::Path;
use std::sync::Arc;

use autoencoder::student::cpu::CpuStudent;
use autoencoder::student::generate::{StudentGenerator, render_cpu};
use autoencoder::student::{StudentAutoencoder, StudentAutoencoderConfig};
use autoencoder::{Config, Control, FrameShape, Generator, Request, WaveNetAutoencoder};
use candle_core::{Device, Tensor};

use super::dir::{WEIGHTS_FILE, identity};
use super::{DecoderKind, ModelFamily, scaled_tensor};
use crate::error::{Error, Result, check_safetensors, read_bounded};

/// The student's shape in its model directory.
pub const STUDENT_FILE: &str = "student.json";

/// Whether `dir` holds a student.
pub fn is_student(dir: &Path) -> bool {
    dir.join(STUDENT_FILE).is_file()
}

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

/// [`load`], and the student's identity for caches ([`super::dir::identity`]).
pub fn load_identified(dir: &Path, device: &Device) -> Result<(StudentAutoencoder, String)> {
    let config = read_config(dir)?;
    let path = dir.join(WEIGHTS_FILE);
    let bytes = read_bounded(&path, 4 << 30)?;
    check_safetensors(&path, &bytes)?;
    let model = StudentAutoencoder::from_safetensors(&config, &bytes, device)
        .map_err(|error| Error::Model { path, error })?;
    Ok((model, identity(&config, &bytes)))
}

impl ModelFamily for StudentAutoencoder {
    fn kind(&self) -> DecoderKind {
        DecoderKind::Parallel
    }

    fn describe(&self) -> &'static str {
        "parallel (Parallel WaveNet student)"
    }

    fn encoder_config(&self) -> &Config {
        &self.config().encoder
    }

    fn bottleneck(&self) -> usize {
        self.config().student.frame_channels()
    }

    fn parameter_count(&self) -> usize {
        StudentAutoencoder::parameter_count(self)
    }

    fn device(&self) -> &Device {
        StudentAutoencoder::device(self)
    }

    fn pitched(&self) -> bool {
        self.config().student.excitation_channels() > 0
    }

    fn measures_pitch(&self) -> bool {
        self.config().student.measured_subpartials
    }

    fn envelope_bands(&self) -> usize {
        self.config().student.envelope_bands
    }

    fn excitation_harmonics(&self) -> usize {
        self.config().student.excitation_harmonics
    }

    fn encode(&self, notes: &[&[f32]], f0_hz: &[f32]) -> Result<Tensor> {
        let device = StudentAutoencoder::device(self);
        let x = scaled_tensor(notes, device)?;
        let s = &self.config().student;
        if !self.measures_pitch() && s.envelope_bands == 0 {
            return Ok(StudentAutoencoder::encode(self, &x, None)?);
        }
        let len = notes.first().map_or(0, |n| n.len());
        let audio = Tensor::from_vec(notes.concat(), (notes.len(), len), device)
            .map_err(autoencoder::Error::from)?;
        // The sub-partials are measured in the note itself, at its pitch.
        let measured = if self.measures_pitch() {
            let exc = super::excitation::excitation_partials_of(
                (s.excitation_harmonics, s.excitation_subpartials),
                device,
                Some(f0_hz),
                len,
                &[],
            )?;
            self.measure(&audio, exc.as_ref())?
        } else {
            None
        };
        let frames = StudentAutoencoder::encode(self, &x, measured.as_ref())?;
        // The envelope after the frames the flows read.
        Ok(match self.envelope(&audio)? {
            Some(envelope) => {
                Tensor::cat(&[&frames, &envelope], 2).map_err(autoencoder::Error::from)?
            }
            None => frames,
        })
    }

    fn generator(self: Arc<Self>) -> Result<Box<dyn Generator>> {
        Ok(Box::new(StudentGenerator::new(self)?))
    }

    fn tensor_decoding(&self) -> bool {
        !matches!(StudentAutoencoder::device(self), Device::Cpu)
    }

    fn tensor_generator(self: Arc<Self>, _device: &Device) -> Result<Box<dyn Generator>> {
        Ok(Box::new(StudentGenerator::with_tensors(self)))
    }

    fn scoring_generator(&self) -> Result<Box<dyn Generator>> {
        Ok(Box::new(HostStudent::new(self)?))
    }

    fn autoencoder(&self) -> Option<&WaveNetAutoencoder> {
        None
    }

    fn student(self: Arc<Self>) -> Option<Arc<StudentAutoencoder>> {
        Some(self)
    }
}

/// The student on the CPU renderer whatever its device: what `timbrel eval` and a
/// training run's free-running checks have always scored it with.
#[derive(Debug)]
struct HostStudent {
    cpu: CpuStudent,
    excitation_channels: usize,
}

impl HostStudent {
    fn new(model: &StudentAutoencoder) -> Result<Self> {
        Ok(Self {
            cpu: CpuStudent::new(model.student())?,
            excitation_channels: model.config().student.excitation_channels(),
        })
    }
}

impl Generator for HostStudent {
    fn shape(&self) -> FrameShape {
        FrameShape {
            hop_length: self.cpu.config().hop_length,
            bottleneck: self.cpu.config().frame_channels(),
            excitation_channels: self.excitation_channels,
        }
    }

    fn describe(&self, threads: usize) -> String {
        format!("CPU, {threads} threads")
    }

    fn generate(
        &self,
        request: &Request<'_>,
        control: &Control,
    ) -> autoencoder::Result<Vec<Vec<f32>>> {
        render_cpu(&self.cpu, request, control)
    }
}
