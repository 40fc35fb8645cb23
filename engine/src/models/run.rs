//! Running any family's generator the same way (a worker thread, progress, cancellation),
//! and the one encode → decode of whole notes that evaluation and training's
//! free-running checks score.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use autoencoder::{Control, Generator, Request, Sampling};
use serde::Serialize;

use super::ModelFamily;
use crate::error::Result;

/// DecodeProgress of a decode, as handed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DecodeProgress {
    /// Samples generated, summed over voices.
    pub done: u64,
    pub total: u64,
    /// Aggregate samples per second so far.
    pub samples_per_s: f64,
    pub eta_secs: Option<f64>,
    pub elapsed_secs: f64,
}

/// Runs `generator` on a worker thread while this one reports progress every ~10 ms
/// (from `control`'s sample count) and relays cancellation: every family the same way.
pub fn run_generator(
    generator: &dyn Generator,
    request: &Request<'_>,
    control: &Control,
    progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
) -> Result<Vec<Vec<f32>>> {
    let total =
        (request.encoding.len() / generator.bottleneck().max(1) * generator.hop_length()) as u64;
    let started = Instant::now();
    let report = |done: u64| {
        let elapsed = started.elapsed().as_secs_f64();
        let rate = done as f64 / elapsed.max(1e-9);
        DecodeProgress {
            done,
            total,
            samples_per_s: rate,
            eta_secs: (done > 0).then(|| total.saturating_sub(done) as f64 / rate),
            elapsed_secs: elapsed,
        }
    };
    let audio = std::thread::scope(|scope| {
        let job = scope.spawn(|| generator.generate(request, control));
        while !job.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
            if progress(&report(control.samples().min(total))).is_break() {
                control.cancel();
            }
        }
        job.join()
            .unwrap_or(Err(autoencoder::Error::Panicked("the decoder")))
    })?;
    let _ = progress(&report(total));
    Ok(audio)
}

/// Encodes `notes` (16 kHz) with `family`'s encoder and decodes them back with its
/// scoring generator ([`ModelFamily::scoring_generator`]), all voices in one batch: each note cut to the longest length that every note has and
/// that is a multiple of the hop (empty outputs when that is zero), voice `i` drawing
/// from random stream `i` and held at `f0_hz[i]` (Hz, 0 = unpitched; `None`: no pitch
/// given), on every core. `progress(samples_done_per_voice)`.
pub fn reconstruct(
    family: &dyn ModelFamily,
    notes: &[Vec<f32>],
    f0_hz: Option<&[f32]>,
    sampling: Sampling,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<Vec<f32>>> {
    let generator = family.scoring_generator()?;
    let hop = generator.hop_length();
    let len = notes.iter().map(Vec::len).min().unwrap_or(0) / hop * hop;
    if len == 0 {
        return Ok(vec![Vec::new(); notes.len()]);
    }
    let cut: Vec<&[f32]> = notes.iter().map(|n| &n[..len]).collect();
    let curves: Option<Vec<f32>> = f0_hz.map(|f0| {
        f0.iter()
            .flat_map(|&hz| std::iter::repeat_n(hz, len))
            .collect()
    });
    let unpitched = vec![0.0; notes.len()];
    let embedding = family.encode(&cut, f0_hz.unwrap_or(&unpitched))?;
    let encoding: Vec<f32> = embedding
        .to_device(&candle_core::Device::Cpu)
        .and_then(|e| e.flatten_all())
        .and_then(|e| e.to_vec1())
        .map_err(autoencoder::Error::from)?;
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let streams: Vec<u64> = (0..notes.len() as u64).collect();
    let request = Request {
        encoding: &encoding,
        f0: curves.as_deref(),
        streams: &streams,
        sampling,
        threads,
    };
    run_generator(&*generator, &request, &Control::default(), &mut |p| {
        // Per voice: the voices advance together.
        progress(p.done as usize / notes.len().max(1));
        ControlFlow::Continue(())
    })
}
