//! Generating with the tensor decoder: the whole-note loop of the [`crate::Generator`]
//! contract (uniforms and f0 uploaded and classes fetched once per frame), and the
//! one-sample [`TensorStepper`] the conformance tests drive.

use candle_core::{DType, Device, Tensor};

use super::{Run, TensorGenerator};
use crate::generate::{Control, Request};
use crate::mulaw;
use crate::sampling::Sampler;
use crate::{Error, Result};

impl crate::generate::Generator for TensorGenerator {
    fn shape(&self) -> crate::generate::FrameShape {
        self.shape
    }

    fn describe(&self, _threads: usize) -> String {
        let device = match self.device {
            Device::Cpu => "CPU",
            Device::Cuda(_) => "CUDA GPU",
            Device::Metal(_) => "Metal GPU",
        };
        format!("{device} (tensor decoder)")
    }

    /// Generates `frames × hop_length` samples for each voice of `request`, voice `v`
    /// drawing from stream `streams[v]` of `sampling.seed` (as [`crate::CpuGenerator`]
    /// does). `control` counts the samples done, per frame, and is checked for
    /// cancellation once per frame.
    fn generate(&self, request: &Request<'_>, control: &Control) -> Result<Vec<Vec<f32>>> {
        let (encoding, f0, sampling) = (request.encoding, request.f0, request.sampling);
        let voices = request.streams.len();
        let (bn, hop) = (self.shape.bottleneck, self.shape.hop_length);
        let frames = request.frames(bn, hop)?;
        let total = frames * hop;
        let mut frame_f0 = vec![0f32; hop * voices];
        let encoding = Tensor::from_slice(encoding, (voices, frames, bn), &self.device)?;
        let mut run = self.start(voices)?;
        let mut sampler = Sampler::with_streams(sampling, request.streams.iter().copied());
        let mut audio = vec![Vec::with_capacity(frames * hop); voices];
        let mut scaled = Tensor::zeros((voices, 1), DType::F32, &self.device)?;
        let mut uniforms = vec![0f32; hop * voices];
        // This frame's classes, `[sample][voice]`, fetched once per frame.
        let picks = Tensor::zeros((hop, voices), DType::F32, &self.device)?;
        for f in 0..frames {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let frame = encoding.narrow(1, f, 1)?.squeeze(1)?;
            self.set_frame(&mut run, &frame)?;
            if !sampling.greedy() {
                for v in 0..voices {
                    for j in 0..hop {
                        uniforms[j * voices + v] = sampler.uniform(v);
                    }
                }
            }
            let u = Tensor::from_slice(&uniforms, (hop, voices), &self.device)?;
            if let Some(f0) = f0 {
                for v in 0..voices {
                    for j in 0..hop {
                        frame_f0[j * voices + v] = f0[v * total + f * hop + j];
                    }
                }
            }
            // Uploaded once per frame, like the uniforms.
            let excitation = self.excitation(&mut run, &frame_f0, hop)?;
            for j in 0..hop {
                let e = excitation
                    .as_ref()
                    .map(|e| e.narrow(0, j, 1)?.squeeze(0))
                    .transpose()?;
                let logits = self.step_excited(&mut run, &scaled, e.as_ref())?;
                let index =
                    self.draw(&logits, sampling, &u.narrow(0, j, 1)?.reshape((voices, 1))?)?;
                picks.slice_set(&index.reshape((1, voices))?, 0, j)?;
                // The class / 128 the network sees next: (index − 128) / 128.
                scaled = index.affine(1.0 / 128.0, -1.0)?;
            }
            for row in picks.to_device(&Device::Cpu)?.to_vec2::<f32>()? {
                for (out, &i) in audio.iter_mut().zip(&row) {
                    out.push(mulaw::inv_mu_law(mulaw::index_class(i as usize)));
                }
            }
            control
                .samples
                .fetch_add((voices * hop) as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(audio)
    }
}

/// The tensor decoder's voices advanced one sample at a time
/// ([`crate::generate::Stepper`]), frames and samples moved between host and device.
#[derive(Debug)]
pub struct TensorStepper<'a> {
    generator: &'a TensorGenerator,
    run: Run,
    logits: Option<Tensor>,
    voices: usize,
}

impl TensorGenerator {
    /// A [`TensorStepper`] over `voices` voices from empty queues.
    pub fn stepper(&self, voices: usize) -> Result<TensorStepper<'_>> {
        Ok(TensorStepper {
            generator: self,
            run: self.start(voices)?,
            logits: None,
            voices,
        })
    }
}

impl crate::generate::Stepper for TensorStepper<'_> {
    fn set_frame(&mut self, frame: &[f32]) -> Result<()> {
        let bn = self.generator.shape.bottleneck;
        let frame = Tensor::from_slice(frame, (self.voices, bn), &self.generator.device)?;
        self.generator.set_frame(&mut self.run, &frame)
    }

    fn step(&mut self, previous: &[f32]) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(previous, (self.voices, 1), &self.generator.device)?;
        let logits = self.generator.step(&mut self.run, &x)?;
        let host = logits.flatten_all()?.to_vec1()?;
        self.logits = Some(logits);
        Ok(host)
    }

    fn draw(&mut self, sampler: &mut crate::sampling::Sampler) -> Result<Vec<usize>> {
        let logits = self
            .logits
            .as_ref()
            .ok_or_else(|| Error::Shape("draw before the first step".into()))?;
        let sampling = sampler.sampling();
        let u: Vec<f32> = if sampling.greedy() {
            vec![0.0; self.voices]
        } else {
            (0..self.voices).map(|v| sampler.uniform(v)).collect()
        };
        let u = Tensor::from_vec(u, (self.voices, 1), &self.generator.device)?;
        let picks: Vec<f32> = self
            .generator
            .draw(logits, sampling, &u)?
            .flatten_all()?
            .to_vec1()?;
        Ok(picks.into_iter().map(|p| p as usize).collect())
    }
}
