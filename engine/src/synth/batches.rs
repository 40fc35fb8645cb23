//! A decode's progress, and progress over a job decoded in batches.

use std::ops::ControlFlow;
use std::time::Instant;

use autoencoder::{Control, Sampling};

use super::{DecodeProgress, Engine, Voice};
use crate::error::Result;

/// DecodeProgress over a job decoded in batches (a grid, an instrument): each batch's decode
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
    pub fn overall(&self, p: &DecodeProgress) -> DecodeProgress {
        let done = self.done + p.done;
        let total = self.total.max(done);
        let elapsed = self.secs + p.elapsed_secs;
        let rate = done as f64 / elapsed.max(1e-9);
        DecodeProgress {
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

    /// Renders one batch of the job ([`Engine::render`]): voice `j` is the job's item
    /// `items[j]` and draws from random stream `items[j]` (so a resumed job renders what
    /// a whole one would have); `progress` sees the whole job's progress.
    pub fn render(
        &mut self,
        engine: &Engine,
        items: &[usize],
        voices: &[Voice<'_>],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let streams: Vec<u64> = items.iter().map(|&i| i as u64).collect();
        let samples: u64 = voices
            .iter()
            .map(|v| (v.embedding.frames * engine.hop()) as u64)
            .sum();
        let started = Instant::now();
        let audio = engine.render(voices, &streams, sampling, control, &mut |p| {
            progress(&self.overall(p))
        });
        self.finished(samples, started.elapsed().as_secs_f64());
        audio
    }
}
