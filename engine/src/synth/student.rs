//! Playing a Parallel WaveNet student: its own encoder, the same blends, and every voice
//! rendered in one parallel pass from logistic noise at the pitch it is given. (The GUI
//! and the grid use [`super::Engine`] only, for now.)

use std::path::Path;

use autoencoder::excitation::{Oscillator, excitation};
use autoencoder::mulaw;
use autoencoder::student::StudentAutoencoder;
use candle_core::{Device, Tensor};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Embedding, Glide, PITCH_RANGE, Prepared, prepare_note};
use crate::audio::ReadOptions;
use crate::error::{Error, Result};

/// A loaded student and what it is called.
#[derive(Debug)]
pub struct StudentEngine {
    model: StudentAutoencoder,
    name: String,
}

impl StudentEngine {
    /// Loads the student in `dir` (`student.json` + `weights.safetensors`).
    pub fn load(dir: &Path) -> Result<Self> {
        Ok(Self {
            model: crate::train::student::load(dir, &Device::Cpu)?,
            name: format!("student {}", dir.display()),
        })
    }

    /// Whether `dir` holds a student.
    pub fn is_student(dir: &Path) -> bool {
        dir.join(crate::train::student::STUDENT_FILE).is_file()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn hop(&self) -> usize {
        self.model.config().student.hop_length
    }

    /// A source at its own pitch (the student is told the pitch to play).
    pub fn prepare(
        &self,
        source: &Path,
        pitch: Option<u8>,
        options: ReadOptions,
    ) -> Result<Prepared> {
        prepare_note(source, pitch, None, options, false, self.hop())
    }

    /// Embeddings of 16 kHz notes (zero-padded to whole frames), one at a time.
    pub fn encode(&self, notes: &[&[f32]]) -> Result<Vec<Embedding>> {
        let hop = self.hop();
        notes
            .iter()
            .map(|n| {
                let len = n.len().div_ceil(hop).max(1) * hop;
                let mut scaled: Vec<f32> = n.iter().map(|&x| mulaw::scaled(x)).collect();
                scaled.resize(len, 0.0);
                let x = Tensor::from_vec(scaled, (1, len), &Device::Cpu)
                    .map_err(autoencoder::Error::from)?;
                let z = self.model.encode(&x)?;
                let (_, frames, channels) = z.dims3().map_err(autoencoder::Error::from)?;
                let data = z
                    .flatten_all()
                    .and_then(|z| z.to_vec1())
                    .map_err(autoencoder::Error::from)?;
                Ok(Embedding {
                    frames,
                    channels,
                    data,
                })
            })
            .collect()
    }

    /// Every voice in one pass: voice `v` plays `embeddings[v]` at `pitches[v]` (`None`:
    /// unpitched) from noise stream `v` of `seed`; each is as long as its embedding.
    pub fn render(
        &self,
        embeddings: &[Embedding],
        pitches: &[Option<Glide>],
        seed: u64,
    ) -> Result<Vec<Vec<f32>>> {
        let hop = self.hop();
        let cfg = &self.model.config().student;
        if let Some(bad) = pitches.iter().flatten().find(|g| !g.in_range()) {
            return Err(Error::Pitch(format!(
                "pitch {}..{} is outside what the model plays (MIDI {} to {})",
                bad.start,
                bad.end,
                PITCH_RANGE.start(),
                PITCH_RANGE.end()
            )));
        }
        let voices = embeddings.len();
        let frames = embeddings.iter().map(|e| e.frames).max().unwrap_or(0);
        if voices == 0 || frames == 0 || embeddings.iter().any(|e| e.channels != cfg.bottleneck) {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "the student plays embeddings of {} channels",
                cfg.bottleneck
            ))));
        }
        let time = frames * hop;
        let mut encoding = Vec::with_capacity(voices * frames * cfg.bottleneck);
        for e in embeddings {
            encoding.extend_from_slice(&e.data);
            for _ in e.frames..frames {
                encoding.extend_from_slice(e.frame(e.frames - 1));
            }
        }
        let k = cfg.excitation_harmonics;
        let mut exc = Vec::with_capacity(voices * time * 2 * k);
        let mut z = Vec::with_capacity(voices * time);
        for (v, e) in embeddings.iter().enumerate() {
            let mut curve = match pitches.get(v).copied().flatten() {
                Some(glide) => glide.f0_curve(e.frames * hop),
                None => vec![0.0; e.frames * hop],
            };
            let end = curve.last().copied().unwrap_or(0.0);
            curve.resize(time, end);
            exc.extend(excitation(&curve, k, Oscillator::new()));
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(v as u64);
            z.extend((0..time).map(|_| {
                let u = rng.random::<f32>().clamp(1e-6, 1.0 - 1e-6);
                (u / (1.0 - u)).ln()
            }));
        }
        let dev = Device::Cpu;
        let tensor = |data: Vec<f32>, shape: &[usize]| {
            Tensor::from_vec(data, shape, &dev).map_err(autoencoder::Error::from)
        };
        let encoding = tensor(encoding, &[voices, frames, cfg.bottleneck])?;
        let z = tensor(z, &[voices, time])?;
        let exc = if k > 0 {
            Some(tensor(exc, &[voices, time, 2 * k])?)
        } else {
            None
        };
        let out = self.model.render(&z, &encoding, exc.as_ref())?;
        let audio = out
            .audio
            .clamp(-1f32, 1f32)
            .and_then(|a| a.to_vec2::<f32>())
            .map_err(autoencoder::Error::from)?;
        Ok(audio
            .into_iter()
            .zip(embeddings)
            .map(|(mut a, e)| {
                a.truncate(e.frames * hop);
                a
            })
            .collect())
    }
}
