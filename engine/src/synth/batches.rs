//! A decode's progress, and progress over a job decoded in batches.

use std::ops::ControlFlow;
use std::time::Instant;

use autoencoder::{Control, Sampling};
use serde::Serialize;

use super::{Embedding, Engine, Glide};
use crate::error::Result;

/// Progress of a decode, as handed to the progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Progress {
    /// Samples generated, summed over voices.
    pub done: u64,
    pub total: u64,
    /// Aggregate samples per second so far.
    pub samples_per_s: f64,
    pub eta_secs: Option<f64>,
    pub elapsed_secs: f64,
}

/// Progress over a job decoded in batches (a grid, an instrument): each batch's decode
/// reports its own samples; this adds what the batches before it did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batches {
    done: u64,
    secs: f64,
    /// Samples of the whole job.
    pub total: u64,
}

impl Batches {
    pub fn new(total: u64) -> Self {
        Self {
            total,
            ..Self::default()
        }
    }

    /// The whole job's progress, `p` being the running batch's.
    pub fn overall(&self, p: &Progress) -> Progress {
        let done = self.done + p.done;
        let total = self.total.max(done);
        let elapsed = self.secs + p.elapsed_secs;
        let rate = done as f64 / elapsed.max(1e-9);
        Progress {
            done,
            total,
            samples_per_s: rate,
            eta_secs: (done > 0).then(|| (total - done) as f64 / rate),
            elapsed_secs: elapsed,
        }
    }

    /// A batch of `samples` samples decoded in `secs` seconds.
    pub fn finished(&mut self, samples: u64, secs: f64) {
        self.done += samples;
        self.secs += secs;
    }

    /// Seconds spent decoding so far.
    pub fn secs(&self) -> f64 {
        self.secs
    }

    /// Decodes one batch of the job: voice `j` is the job's item `items[j]` and draws
    /// from random stream `items[j]` (so a resumed job renders what a whole one would
    /// have); `progress` sees the whole job's progress.
    #[allow(clippy::too_many_arguments)]
    pub fn decode(
        &mut self,
        engine: &Engine,
        items: &[usize],
        blends: &[Embedding],
        pitches: &[Option<Glide>],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let streams: Vec<u64> = items.iter().map(|&i| i as u64).collect();
        let samples: u64 = blends
            .iter()
            .map(|b| (b.frames * engine.hop()) as u64)
            .sum();
        let started = Instant::now();
        let audio = engine.decode_at(blends, pitches, &streams, sampling, control, &mut |p| {
            progress(&self.overall(p))
        });
        self.finished(samples, started.elapsed().as_secs_f64());
        audio
    }
}
