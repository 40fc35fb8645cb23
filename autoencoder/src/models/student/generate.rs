//! The student as a [`Generator`]: every voice rendered in whole-note passes from
//! logistic noise (voice `v` from stream `streams[v]` of the seed) at the f0 it is given,
//! on the CPU by [`CpuStudent`] (one voice at a time, its time split over threads),
//! elsewhere through candle on the model's device, [`VOICES_PER_PASS`] at a time.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::StudentAutoencoder;
use super::cpu::{CpuStudent, VoiceInput};
use super::envelope::{self, Bands};
use crate::excitation::Oscillator;
use crate::generate::{Control, FrameShape, Generator, Request};
use crate::{Error, Result};

/// Voices rendered in one candle pass: bounds memory (a 4 s voice's activations are about
/// 100 MB in f32) and sets how often progress is reported and cancellation looked at.
pub const VOICES_PER_PASS: usize = 4;

/// The longest stretch of a voice the CPU renderer computes at once: bounds its scratch
/// memory (about 1 KB per sample at width 32: 40 MB) whatever the note's length.
pub const STRETCH_SAMPLES: usize = 40_000;

/// Corner of the student's output stage, a one-pole DC blocker (see [`block_dc`]).
pub const DC_BLOCK_HZ: f64 = 10.0;

/// The student's output stage: `y[n] = x[n] − x[n−1] + R·y[n−1]` with `R = 1 − 2π·f/fs`
/// (f = [`DC_BLOCK_HZ`], fs = 16 kHz), from rest, in place. The spectral and power losses
/// barely see a constant (it lives in their lowest bin or two), and a trained student
/// settles on one: the shipped student at step 4,771 played its silences as a −0.002
/// offset (−54 dBFS), so notes never decayed below it and the pitch tracker, which reads
/// a note down to 30 dB under its peak, found no pitch in that tail. At 10 Hz the filter
/// takes −0.6 dB off A0 (27.5 Hz, the lowest note) and under 0.1 dB above 80 Hz; the
/// offset falls by 1/e every 16 ms. Every render of a student (CPU renderer, candle's
/// pass, a training run's free-running check) ends with it.
pub fn block_dc(audio: &mut [f32]) {
    let r = 1.0 - std::f64::consts::TAU * DC_BLOCK_HZ / crate::excitation::SAMPLE_RATE_HZ;
    let (mut x_prev, mut y_prev) = (0f64, 0f64);
    for a in audio.iter_mut() {
        let x = f64::from(*a);
        let y = x - x_prev + r * y_prev;
        (x_prev, y_prev) = (x, y);
        *a = y as f32;
    }
}

/// What every render of a student ends with: [`block_dc`], then the clamp to ±1.
pub fn output_stage(audio: &mut [f32]) {
    block_dc(audio);
    audio.iter_mut().for_each(|a| *a = a.clamp(-1.0, 1.0));
}

/// [`output_stage`] with the measured envelope between the DC blocker and the clamp (see
/// [`envelope`]): `envelope` `[frames, bands]` of frames of `hop` samples, shaped
/// where `bands` is given.
pub fn output_stage_shaped(audio: &mut [f32], bands: Option<&Bands>, envelope: &[f32], hop: usize) {
    block_dc(audio);
    if let Some(bands) = bands {
        envelope::shape_note(bands, audio, envelope, hop);
    }
    audio.iter_mut().for_each(|a| *a = a.clamp(-1.0, 1.0));
}

/// `n` draws of Logistic(0, 1) from `rng`: a student's noise.
pub fn logistic(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| logistic_draw(rng)).collect()
}

/// One draw of Logistic(0, 1) from `rng` (what [`logistic`] makes `n` of; a stream draws
/// them one at a time).
#[inline]
pub fn logistic_draw(rng: &mut ChaCha8Rng) -> f32 {
    let u = rng.random::<f32>().clamp(1e-6, 1.0 - 1e-6);
    (u / (1.0 - u)).ln()
}

/// `n` draws of Logistic(0, 1) from stream `stream` of `seed`.
pub fn logistic_noise(seed: u64, stream: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    logistic(&mut rng, n)
}

/// Renders `request` with the CPU renderer: one voice at a time from its own noise stream,
/// its time split over `request.threads` (what [`StudentGenerator`] does on the CPU; a
/// training run's evaluation plays notes the same way).
pub fn render_cpu(
    cpu: &CpuStudent,
    request: &Request<'_>,
    control: &Control,
) -> Result<Vec<Vec<f32>>> {
    let cfg = cpu.config();
    let (hop, bn, fc) = (cfg.hop_length, cfg.bottleneck, cfg.frame_channels());
    let voices = request.streams.len();
    let frames = request.frames(fc, hop)?;
    let time = frames * hop;
    let mut out = Vec::with_capacity(voices);
    for (v, &stream) in request.streams.iter().enumerate() {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let z = logistic_noise(request.sampling.seed, stream, time);
        let exc = request
            .f0
            .and_then(|f0| cfg.excitation(&f0[v * time..(v + 1) * time], Oscillator::new()));
        let (flows, env) = envelope::split_frames(
            &request.encoding[v * frames * fc..(v + 1) * frames * fc],
            bn,
            cfg.envelope_bands,
        );
        let voice = VoiceInput {
            z: &z,
            encoding: &flows,
            excitation: exc.as_deref(),
        };
        let mut audio = cpu.render(voice, request.threads, STRETCH_SAMPLES)?;
        output_stage_shaped(&mut audio, cpu.envelope(), &env, hop);
        out.push(audio);
        control.add_samples(time as u64);
    }
    Ok(out)
}

/// A student that generates: its model and, on the CPU, the flows repacked.
#[derive(Debug)]
pub struct StudentGenerator {
    model: Arc<StudentAutoencoder>,
    cpu: Option<CpuStudent>,
    /// The envelope's analysis for candle's path, for a student with one (the CPU
    /// renderer holds its own).
    bands: Option<Bands>,
}

impl StudentGenerator {
    /// Renders with [`CpuStudent`] where the model lives on the CPU, else through candle.
    pub fn new(model: Arc<StudentAutoencoder>) -> Result<Self> {
        let cpu = match model.device() {
            Device::Cpu => Some(CpuStudent::new(model.student())?),
            _ => None,
        };
        let bands = match cpu {
            Some(_) => None,
            None => Bands::of(&model.config().student),
        };
        Ok(Self { model, cpu, bands })
    }

    /// Renders through candle's tensors on the model's device (what a GPU runs; on the
    /// CPU device, the reference the CPU renderer is tested against).
    pub fn with_tensors(model: Arc<StudentAutoencoder>) -> Self {
        let bands = Bands::of(&model.config().student);
        Self {
            model,
            cpu: None,
            bands,
        }
    }

    /// Whether [`CpuStudent`] renders.
    pub fn on_cpu(&self) -> bool {
        self.cpu.is_some()
    }

    /// Voice `v`'s excitation channels, `[sample][2K]`, or `None` when unpitched.
    fn excitation_of(&self, request: &Request<'_>, v: usize, time: usize) -> Option<Vec<f32>> {
        let cfg = &self.model.config().student;
        request
            .f0
            .and_then(|f0| cfg.excitation(&f0[v * time..(v + 1) * time], Oscillator::new()))
    }
}

impl Generator for StudentGenerator {
    fn shape(&self) -> FrameShape {
        FrameShape {
            hop_length: self.model.config().student.hop_length,
            bottleneck: self.model.config().student.frame_channels(),
            excitation_channels: self.model.config().student.excitation_channels(),
        }
    }

    fn describe(&self, threads: usize) -> String {
        match (&self.cpu, self.model.device()) {
            (Some(_), _) => format!("CPU, {threads} threads"),
            (None, Device::Cpu) => "CPU (candle tensors)".into(),
            (None, Device::Cuda(_)) => "CUDA GPU".into(),
            (None, Device::Metal(_)) => "Metal GPU".into(),
        }
    }

    fn generate(&self, request: &Request<'_>, control: &Control) -> Result<Vec<Vec<f32>>> {
        let (hop, fc) = (self.hop_length(), self.bottleneck());
        if let Some(cpu) = &self.cpu {
            return render_cpu(cpu, request, control);
        }
        let cfg = &self.model.config().student;
        let (bn, bands) = (cfg.bottleneck, cfg.envelope_bands);
        let voices = request.streams.len();
        let frames = request.frames(fc, hop)?;
        let time = frames * hop;
        let seed = request.sampling.seed;
        let mut out = Vec::with_capacity(voices);
        let device = self.model.device();
        for first in (0..voices).step_by(VOICES_PER_PASS) {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let group = first..(first + VOICES_PER_PASS).min(voices);
            let n = group.len();
            let (enc, env) = envelope::split_frames(
                &request.encoding[first * frames * fc..group.end * frames * fc],
                bn,
                bands,
            );
            let enc = Tensor::from_vec(enc, (n, frames, bn), device)?;
            let z: Vec<f32> = group
                .clone()
                .flat_map(|v| logistic_noise(seed, request.streams[v], time))
                .collect();
            let z = Tensor::from_vec(z, (n, time), device)?;
            let exc = match self.excitation_channels() {
                0 => None,
                channels => request.f0.map(|_| {
                    let e: Vec<f32> = group
                        .clone()
                        .flat_map(|v| self.excitation_of(request, v, time).unwrap_or_default())
                        .collect();
                    Tensor::from_vec(e, (n, time, channels), device)
                }),
            }
            .transpose()?;
            let audio = self.model.render(&z, &enc, exc.as_ref())?.audio;
            let per_voice = frames * bands;
            out.extend(
                audio
                    .to_vec2::<f32>()?
                    .into_iter()
                    .enumerate()
                    .map(|(i, mut voice)| {
                        let env = env.get(i * per_voice..(i + 1) * per_voice).unwrap_or(&[]);
                        output_stage_shaped(&mut voice, self.bands.as_ref(), env, hop);
                        voice
                    }),
            );
            control.add_samples((n * time) as u64);
        }
        Ok(out)
    }
}
