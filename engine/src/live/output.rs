//! The live engine's way out: its 16 kHz mix resampled to the host's rate (rubato's sinc
//! resampler in fixed chunks, prepared once) into a FIFO the host's blocks are taken from.

use rubato::{
    Resampler, SincFixedIn, SincInterpolationParameters, SincInterpolationType, WindowFunction,
    calculate_cutoff,
};

use crate::error::{Error, Result};

/// The model's rate.
pub(super) const MODEL_RATE_HZ: u32 = crate::audio::SAMPLE_RATE_HZ;

/// Samples (16 kHz) per resampler chunk: 2 ms, the granularity of the mix.
pub(super) const CHUNK_IN: usize = 32;

/// Taps of the resampler's sinc filter: 64 at 16 kHz reach 2 ms ahead (half of them), and
/// keep the band up to ~7 kHz, above what the model plays.
const SINC_LEN: usize = 64;

/// The host rates the engine serves.
pub const RATE_RANGE: std::ops::RangeInclusive<u32> = 8_000..=384_000;

pub(super) struct Output {
    /// `None` at 16 kHz (the mix is the output).
    resampler: Option<SincFixedIn<f32>>,
    /// Resampled chunk, `[output_frames_max]`.
    chunk_out: Vec<f32>,
    /// Host-rate samples ready, `fifo[..ready]`.
    fifo: Vec<f32>,
    ready: usize,
    /// The fewest host samples a chunk gives.
    per_chunk_min: usize,
    delay_frames: usize,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("ready", &self.ready)
            .field("delay_frames", &self.delay_frames)
            .finish_non_exhaustive()
    }
}

impl Output {
    /// For host blocks of at most `max_block` frames at `rate_hz`; also returns the most
    /// 16 kHz samples one refill asks the voices for.
    pub fn new(rate_hz: u32, max_block: usize) -> Result<(Self, usize)> {
        if !RATE_RANGE.contains(&rate_hz) {
            return Err(Error::Audio(format!(
                "the live engine plays at {} to {} Hz, not {rate_hz} Hz",
                RATE_RANGE.start(),
                RATE_RANGE.end()
            )));
        }
        let ratio = f64::from(rate_hz) / f64::from(MODEL_RATE_HZ);
        let resampler = if rate_hz == MODEL_RATE_HZ {
            None
        } else {
            let window = WindowFunction::BlackmanHarris2;
            let params = SincInterpolationParameters {
                sinc_len: SINC_LEN,
                f_cutoff: calculate_cutoff(SINC_LEN, window),
                oversampling_factor: 256,
                interpolation: SincInterpolationType::Linear,
                window,
            };
            Some(
                SincFixedIn::<f32>::new(ratio, 1.0, params, CHUNK_IN, 1).map_err(|e| {
                    Error::Audio(format!("cannot resample 16 kHz to {rate_hz} Hz ({e})"))
                })?,
            )
        };
        let out_max = resampler
            .as_ref()
            .map_or(CHUNK_IN, Resampler::output_frames_max);
        let per_chunk_min = ((CHUNK_IN as f64 * ratio).floor() as usize)
            .saturating_sub(1)
            .max(1);
        let chunks = max_block.div_ceil(per_chunk_min) + 1;
        let delay_frames = resampler.as_ref().map_or(0, Resampler::output_delay);
        Ok((
            Self {
                resampler,
                chunk_out: vec![0.0; out_max],
                fifo: vec![0.0; max_block + (chunks + 1) * out_max],
                ready: 0,
                per_chunk_min,
                delay_frames,
            },
            chunks * CHUNK_IN,
        ))
    }

    /// 16 kHz samples (whole chunks) the voices should make so that `n` host samples are
    /// ready (0 when they already are).
    pub fn wanted(&self, n: usize) -> usize {
        n.saturating_sub(self.ready).div_ceil(self.per_chunk_min) * CHUNK_IN
    }

    /// Resamples `mix` (whole chunks) into the FIFO. Allocates nothing.
    pub fn push(&mut self, mix: &[f32]) {
        for chunk in mix.chunks_exact(CHUNK_IN) {
            let written = match &mut self.resampler {
                None => {
                    self.chunk_out[..CHUNK_IN].copy_from_slice(chunk);
                    CHUNK_IN
                }
                Some(r) => {
                    match r.process_into_buffer(&[chunk], &mut [&mut self.chunk_out[..]], None) {
                        Ok((_, written)) => written,
                        // The buffers are sized by the resampler itself; silence if not.
                        Err(_) => 0,
                    }
                }
            };
            let room = self.fifo.len() - self.ready;
            let written = written.min(room);
            self.fifo[self.ready..self.ready + written].copy_from_slice(&self.chunk_out[..written]);
            self.ready += written;
        }
    }

    /// Moves the oldest `out.len()` samples out (zeros for any not ready); returns how
    /// many were ready.
    pub fn pop(&mut self, out: &mut [f32]) -> usize {
        let n = out.len().min(self.ready);
        out[..n].copy_from_slice(&self.fifo[..n]);
        out[n..].fill(0.0);
        self.fifo.copy_within(n..self.ready, 0);
        self.ready -= n;
        n
    }

    /// Host frames between a sample entering the mix and leaving a block, at most: the
    /// resampler's delay and what the FIFO may hold ahead (a chunk's worth).
    pub fn latency_frames(&self) -> usize {
        self.delay_frames + self.chunk_out.len()
    }
}
