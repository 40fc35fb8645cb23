//! Playing a Parallel WaveNet student inside the [`super::Engine`]: whether a directory
//! holds one, its noise, and every voice rendered in whole-note passes from logistic noise
//! at the pitch it is given. (Loading it is [`crate::train::student::load_identified`].)

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use autoencoder::cpu::Control;
use autoencoder::excitation::{Oscillator, excitation};
use autoencoder::student::StudentAutoencoder;
use autoencoder::student::cpu::{CpuStudent, VoiceInput};
use candle_core::Tensor;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Progress;
use crate::error::{Error, Result};
use crate::train::student::STUDENT_FILE;

/// Voices rendered in one pass: bounds memory (a 4 s voice's activations are about 100 MB
/// in f32) and sets how often progress is reported and cancellation looked at.
pub const VOICES_PER_PASS: usize = 4;

/// The longest stretch of a voice the CPU renderer computes at once: bounds its scratch
/// memory (about 1 KB per sample at width 32: 40 MB) whatever the note's length.
pub const STRETCH_SAMPLES: usize = 40_000;

/// Whether `dir` holds a student.
pub fn is_student(dir: &Path) -> bool {
    dir.join(STUDENT_FILE).is_file()
}

/// `n` draws of Logistic(0, 1) from `rng`: a student's noise.
pub fn logistic(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            let u = rng.random::<f32>().clamp(1e-6, 1.0 - 1e-6);
            (u / (1.0 - u)).ln()
        })
        .collect()
}

/// `n` draws of Logistic(0, 1) from stream `stream` of `seed`.
pub fn logistic_noise(seed: u64, stream: u64, n: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    logistic(&mut rng, n)
}

/// Renders every voice of `encoding` (`[voice][frame][bottleneck]`, all voices the same
/// length) with the f0 curves `f0` (`[voice][sample]`; `None`: unpitched), voice `v`
/// from noise stream `streams[v]` of `seed`: with `cpu`, one voice at a time with its
/// time split over `threads`; otherwise through candle on the model's device,
/// [`VOICES_PER_PASS`] at a time. Progress is reported after each voice or pass; a
/// cancellation is seen before the next.
#[allow(clippy::too_many_arguments)]
pub(super) fn render(
    model: &StudentAutoencoder,
    cpu: Option<&CpuStudent>,
    threads: usize,
    encoding: &[f32],
    f0: Option<&[f32]>,
    streams: &[u64],
    seed: u64,
    control: &Control,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Vec<Vec<f32>>> {
    let cfg = &model.config().student;
    let (hop, bn, k) = (cfg.hop_length, cfg.bottleneck, cfg.excitation_harmonics);
    let voices = streams.len();
    let frames = autoencoder::cpu::frames_in(encoding, voices, bn)?;
    let time = frames * hop;
    let total = (voices * time) as u64;
    let started = Instant::now();
    let shape_err = |e: candle_core::Error| Error::from(autoencoder::Error::from(e));
    let mut out = Vec::with_capacity(voices);
    let mut report = |done: usize| {
        let done = done as u64;
        control
            .samples
            .store(done, std::sync::atomic::Ordering::Relaxed);
        let elapsed = started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        let report = Progress {
            done,
            total,
            samples_per_s: rate,
            eta_secs: Some((total - done) as f64 / rate),
            elapsed_secs: elapsed,
        };
        if progress(&report).is_break() {
            control.cancel();
        }
    };
    if let Some(cpu) = cpu {
        let mut exc = Vec::new();
        for (v, &stream) in streams.iter().enumerate() {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let z = logistic_noise(seed, stream, time);
            let excitation = match f0 {
                Some(f0) if k > 0 => {
                    exc.clear();
                    exc.extend(excitation(
                        &f0[v * time..(v + 1) * time],
                        k,
                        Oscillator::new(),
                    ));
                    Some(exc.as_slice())
                }
                _ => None,
            };
            let voice = VoiceInput {
                z: &z,
                encoding: &encoding[v * frames * bn..(v + 1) * frames * bn],
                excitation,
            };
            let mut audio = cpu.render(voice, threads, STRETCH_SAMPLES)?;
            for a in &mut audio {
                *a = a.clamp(-1.0, 1.0);
            }
            out.push(audio);
            report((v + 1) * time);
        }
        return Ok(out);
    }
    for first in (0..voices).step_by(VOICES_PER_PASS) {
        if control.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let group = first..(first + VOICES_PER_PASS).min(voices);
        let n = group.len();
        let enc = &encoding[first * frames * bn..group.end * frames * bn];
        let enc = Tensor::from_slice(enc, (n, frames, bn), model.device()).map_err(shape_err)?;
        let z: Vec<f32> = group
            .clone()
            .flat_map(|v| logistic_noise(seed, streams[v], time))
            .collect();
        let z = Tensor::from_vec(z, (n, time), model.device()).map_err(shape_err)?;
        let exc = match f0 {
            Some(f0) if k > 0 => {
                let mut e = Vec::with_capacity(n * time * 2 * k);
                for v in group.clone() {
                    e.extend(excitation(
                        &f0[v * time..(v + 1) * time],
                        k,
                        Oscillator::new(),
                    ));
                }
                Some(Tensor::from_vec(e, (n, time, 2 * k), model.device()).map_err(shape_err)?)
            }
            _ => None,
        };
        let audio = model.render(&z, &enc, exc.as_ref())?.audio;
        out.extend(
            audio
                .clamp(-1f32, 1f32)
                .and_then(|a| a.to_vec2::<f32>())
                .map_err(shape_err)?,
        );
        report(group.end * time);
    }
    Ok(out)
}
