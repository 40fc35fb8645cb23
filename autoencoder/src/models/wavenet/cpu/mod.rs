//! The fast CPU decoder: Fast WaveNet generation without per-op dispatch.
//!
//! The same arithmetic as [`crate::FastGenerator`] (the reference), arranged for the
//! machine:
//! - Every matrix is repacked once into panels of [`crate::cpu::NR`] output columns, `[panel][k][NR]`,
//!   so a panel streams contiguously and its columns fill SIMD registers.
//! - The dilated convolution's taps are one matrix over the concatenated inputs
//!   `[x(t − (k−1)d) … x(t − d), x(t)]`; its output columns are interleaved so that a
//!   panel holds 8 sigmoid and the matching 8 tanh channels, and the gate is applied to
//!   the panel in registers (the "epilogue"), conditioning and bias included.
//! - The residual and skip 1×1s are one matrix `[res | skip]`, accumulated straight into
//!   the residual stream and the skip sum.
//! - A register tile is `MR` voices × `PB` panels × [`crate::cpu::NR`] columns: a batch of voices
//!   shares every weight load (4 voices per load), one voice keeps 4 panels in flight so
//!   the FMA latency is hidden.
//! - With AVX2 and FMA (detected at run time), the same code is compiled with those
//!   features and `mul_add`; elsewhere plain `a · b + c`.
//! - sigmoid and tanh use [`crate::cpu::exp_fast`] (relative error ≤ 2.5e-7, so σ is within 1e-7 and
//!   tanh = 2σ(2x) − 1 within 3e-7 of the exact values; tested).
//! - Nothing is allocated per sample. Voices are split across threads in contiguous
//!   groups; each group is an independent generator, so no thread waits for another.
//!
//! Equality with the reference: the sums are the same but taken in another order (and
//! fused), and the activations differ by < 3e-7; the logits agree to ~1e-6 and the
//! probabilities to far better than the tested 1e-4. Sampling uses the same per-voice
//! ChaCha streams and the same inverse-CDF draw, so at the same seed the samples are the
//! same except where a uniform draw falls within ~1e-6 of a class boundary (a flip that
//! then changes the rest of that voice's note); the tests check this on thousands of samples.

mod state;

use std::sync::atomic::Ordering;

use crate::generate::{Control, Request, frame_of};

use crate::cpu::Isa;
use crate::cpu::kernels::{NR, Packed, gate_columns, host_vec, pad16};
use crate::cpu::parallel::{Exchange, Part, split};
use crate::mulaw;
use crate::sampling::{Sampler, Sampling};
use crate::{Error, Result, WaveNetAutoencoder};
pub use state::State;

/// A split decode goes on with one thread when more than one step in this many had a
/// meeting at which a thread waited past its spinning budget, over the last
/// [`SOLO_CHECK_STEPS`]: idle, such meetings are rare (a timer interrupt); with the cores
/// taken by another program, a partner thread misses its time slice at most meetings
/// and every step waits for it.
const SOLO_SLOW_STEPS: u64 = 16;
/// Steps between two looks at the meetings (thread 0; any step boundary will do: every
/// thread's state is whole there).
const SOLO_CHECK_STEPS: usize = 64;

#[derive(Debug, Clone)]
struct Layer {
    dilation: usize,
    /// Taps of the dilated convolution.
    taps: usize,
    /// `[k·width (+ 2K excitation)] → gate panels`, bias included: the excitation's
    /// projection `exc_map_N` is extra rows of the same matrix, its input the
    /// excitation appended to the taps.
    gate: Packed,
    /// The conditioning projection, plain `[bottleneck][2·width]` (once per frame).
    cond_kernel: Vec<f32>,
    cond_bias: Vec<f32>,
    /// [`gate_columns`] of the width: where each conditioning channel goes.
    cond_columns: Vec<Option<usize>>,
    /// `[width] → [res panels | skip panels]` (no res part in the last layer).
    out: Packed,
    res_panels: usize,
}

/// The decoder's weights, repacked; immutable and shared by every generating thread.
#[derive(Debug, Clone)]
pub struct CpuGenerator {
    isa: Isa,
    width: usize,
    skip_width: usize,
    filter_length: usize,
    /// `[tap][width]` and `[width]`: the start convolution has one input channel.
    start_kernel: Vec<f32>,
    start_bias: Vec<f32>,
    /// `[2K][width]`: the excitation's projection into the residual stream (empty: none).
    exc_start_kernel: Vec<f32>,
    /// Frames, hop and the excitation's `2K` channels per sample (0: none).
    shape: crate::generate::FrameShape,
    /// Whether the gate matrices take the excitation as extra rows.
    excitation_layers: bool,
    skip_start: Packed,
    layers: Vec<Layer>,
    out1: Packed,
    cond_out_kernel: Vec<f32>,
    cond_out_bias: Vec<f32>,
    logits: Packed,
    /// Every panel of every matrix: a step on one thread.
    whole: Part,
    parallelism: Parallelism,
    /// A split decode goes on alone from this frame whatever its meetings (tests).
    forced_solo: Option<usize>,
}

/// How a batch is spread over threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// [`Parallelism::Columns`] when there are fewer voices than threads or the model is
    /// wide (its weights do not stay in cache, so splitting them is what pays), else
    /// [`Parallelism::Voices`].
    #[default]
    Auto,
    /// Each thread generates its own group of voices, independently (no waiting).
    Voices,
    /// Every thread computes a share of each matrix's columns for all voices and the
    /// threads swap their shares twice per layer (spin barriers).
    Columns,
}

impl CpuGenerator {
    /// Repacks `model`'s decoder for the best instruction set of this CPU.
    pub fn new(model: &WaveNetAutoencoder) -> Result<Self> {
        Self::with_isa(model, Isa::detect())
    }

    /// Repacks for a given instruction set ([`Isa::Avx2Fma`] only where detected).
    pub fn with_isa(model: &WaveNetAutoencoder, isa: Isa) -> Result<Self> {
        if isa == Isa::Avx2Fma && Isa::detect() != Isa::Avx2Fma {
            return Err(Error::UnsupportedCpu("AVX2 and FMA"));
        }
        let cfg = model.config();
        let dec = model.decoder();
        if dec.start.config().dilation != 1 || dec.start.in_channels() != 1 {
            return Err(Error::Shape(
                "the decoder's start convolution must be undilated with one input".into(),
            ));
        }
        let (w, sw) = (cfg.width, cfg.skip_width);
        let last = dec.layers.len().saturating_sub(1);
        let layers = dec
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let k = layer.dilated.config().filter_length;
                let mut gate_kernel = host_vec(layer.dilated.kernel())?;
                if let Some(p) = &layer.exc_map {
                    gate_kernel.extend(host_vec(&p.kernel)?);
                }
                let rows = gate_kernel.len() / (2 * w);
                let gate = Packed::new(
                    &gate_kernel,
                    &host_vec(layer.dilated.bias())?,
                    rows,
                    2 * w,
                    &gate_columns(w),
                );
                let res_panels = if i == last { 0 } else { w.div_ceil(NR) };
                let mut kernel = vec![0f32; w * (w + sw)];
                let mut bias = vec![0f32; w + sw];
                let (rk, rb) = (host_vec(layer.res.kernel())?, host_vec(layer.res.bias())?);
                let (sk, sb) = (host_vec(layer.skip.kernel())?, host_vec(layer.skip.bias())?);
                for r in 0..w {
                    kernel[r * (w + sw)..][..w].copy_from_slice(&rk[r * w..][..w]);
                    kernel[r * (w + sw) + w..][..sw].copy_from_slice(&sk[r * sw..][..sw]);
                }
                bias[..w].copy_from_slice(&rb);
                bias[w..].copy_from_slice(&sb);
                let columns: Vec<_> = (0..res_panels * NR)
                    .map(|c| (c < w).then_some(c))
                    .chain((0..pad16(sw)).map(|c| (c < sw).then_some(w + c)))
                    .collect();
                Ok(Layer {
                    dilation: layer.dilated.config().dilation,
                    taps: k,
                    gate,
                    cond_kernel: host_vec(layer.cond_map.kernel())?,
                    cond_bias: host_vec(layer.cond_map.bias())?,
                    cond_columns: gate_columns(w),
                    out: Packed::new(&kernel, &bias, w, w + sw, &columns),
                    res_panels,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            isa,
            width: w,
            skip_width: sw,
            shape: crate::generate::FrameShape {
                hop_length: cfg.ae_hop_length,
                bottleneck: cfg.ae_bottleneck_width,
                excitation_channels: dec.excitation_channels(),
            },
            filter_length: dec.start.config().filter_length,
            start_kernel: host_vec(dec.start.kernel())?,
            start_bias: host_vec(dec.start.bias())?,
            exc_start_kernel: match &dec.exc_start {
                Some(p) => host_vec(&p.kernel)?,
                None => Vec::new(),
            },
            excitation_layers: dec.layers.iter().any(|l| l.exc_map.is_some()),
            skip_start: Packed::dense(&dec.skip_start)?,
            layers,
            out1: Packed::dense(&dec.out1)?,
            cond_out_kernel: host_vec(dec.cond_map_out1.kernel())?,
            cond_out_bias: host_vec(dec.cond_map_out1.bias())?,
            logits: Packed::dense(&dec.logits)?,
            whole: Part::new(w, sw, 0, 1),
            parallelism: Parallelism::Auto,
            forced_solo: None,
        })
    }

    /// Sets how batches are spread over threads (the default chooses).
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
        self
    }

    /// Makes a split decode go on with one thread from frame `frame` whatever its
    /// meetings: to show that the audio does not depend on when it does.
    pub fn with_forced_solo(mut self, frame: usize) -> Self {
        self.forced_solo = Some(frame);
        self
    }

    /// What [`Parallelism::Auto`] picks for `voices` on `threads`.
    pub fn parallelism_for(&self, voices: usize, threads: usize) -> Parallelism {
        match self.parallelism {
            Parallelism::Auto if threads > 1 && (voices < threads || self.width >= 256) => {
                Parallelism::Columns
            }
            Parallelism::Auto => Parallelism::Voices,
            other => other,
        }
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Multiply-adds per generated sample (the packed matrices, padding included).
    pub fn macs_per_sample(&self) -> usize {
        let size = |p: &Packed| p.data.len();
        self.start_kernel.len()
            + size(&self.skip_start)
            + self
                .layers
                .iter()
                .map(|l| size(&l.gate) + size(&l.out))
                .sum::<usize>()
            + size(&self.out1)
            + size(&self.logits)
    }

    /// All voices on `threads` threads, each computing a share of every matrix.
    fn generate_columns(
        &self,
        encoding: &[f32],
        f0: Option<&[f32]>,
        streams: &[u64],
        sampling: Sampling,
        threads: usize,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let per_voice = encoding.len() / voices;
        let frames = per_voice / self.shape.bottleneck;
        let total = frames * self.shape.hop_length;
        let ex = Exchange::new(self.width, self.skip_width, voices, threads);
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|index| {
                    let ex = &ex;
                    scope.spawn(move || -> Result<Vec<Vec<f32>>> {
                        let mut part = Part::new(self.width, self.skip_width, index, threads);
                        let mut state = State::new(self, voices);
                        let mut sampler = Sampler::with_streams(sampling, streams.iter().copied());
                        let mut audio = if index == 0 {
                            vec![Vec::with_capacity(total); voices]
                        } else {
                            Vec::new()
                        };
                        let mut frame = vec![0f32; voices * self.shape.bottleneck];
                        let mut classes = vec![0usize; voices];
                        // Thread 0 alone from here on (see `SOLO_SLOW_STEPS`).
                        let mut solo = false;
                        let mut going_solo = false;
                        for f in 0..frames {
                            frame_of(encoding, frames, f, &mut frame, self.shape.bottleneck);
                            state.set_frame(self, &frame)?;
                            for i in 0..self.shape.hop_length {
                                let t = f * self.shape.hop_length + i;
                                if index == 0
                                    && !solo
                                    && t > 0
                                    && t.is_multiple_of(SOLO_CHECK_STEPS)
                                {
                                    // Slow meetings in the last steps: a partner kept
                                    // waiting for its core. The split no longer pays;
                                    // finish alone.
                                    going_solo = ex.take_slow_meetings() * SOLO_SLOW_STEPS
                                        > SOLO_CHECK_STEPS as u64;
                                }
                                if index == 0 && self.forced_solo.is_some_and(|at| f >= at) {
                                    going_solo = true;
                                }
                                if let Some(f0) = f0 {
                                    crate::excitation::curves_at(f0, total, t, state.f0_mut());
                                }
                                if solo {
                                    if control.is_cancelled() {
                                        return Err(Error::Cancelled);
                                    }
                                    state.sample_part(
                                        self,
                                        &part,
                                        None,
                                        false,
                                        &mut sampler,
                                        &mut classes,
                                    );
                                } else {
                                    let cancel = index == 0 && control.is_cancelled();
                                    if index == 0 && going_solo && !cancel {
                                        ex.solo.store(true, Ordering::Relaxed);
                                    }
                                    state.sample_part(
                                        self,
                                        &part,
                                        Some(ex),
                                        cancel || (index == 0 && going_solo),
                                        &mut sampler,
                                        &mut classes,
                                    );
                                    // Published by thread 0 with the last exchange of the
                                    // step: every thread stops splitting after the same
                                    // step, with every value of it in its state.
                                    if ex.stop.load(Ordering::Relaxed) {
                                        if !ex.solo.load(Ordering::Relaxed) {
                                            return Err(Error::Cancelled);
                                        }
                                        if index != 0 {
                                            return Ok(Vec::new());
                                        }
                                        solo = true;
                                        part = Part::new(self.width, self.skip_width, 0, 1);
                                        control.solo_from.store(t as u64 + 1, Ordering::Relaxed);
                                    }
                                }
                                if index == 0 {
                                    for (out, &c) in audio.iter_mut().zip(&classes) {
                                        out.push(mulaw::inv_mu_law(mulaw::index_class(c)));
                                    }
                                    control.samples.fetch_add(voices as u64, Ordering::Relaxed);
                                }
                            }
                        }
                        Ok(audio)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Panicked("a decoder thread"))))
                .collect::<Vec<_>>()
        });
        let mut first = None;
        for r in results {
            let audio = r?;
            first.get_or_insert(audio);
        }
        first.ok_or_else(|| Error::Shape("no decoder thread ran".into()))
    }

    /// One thread's share: the voices of `streams` (`encoding` holds only theirs).
    fn generate_group(
        &self,
        encoding: &[f32],
        f0: Option<&[f32]>,
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let per_voice = encoding.len() / voices;
        let frames = per_voice / self.shape.bottleneck;
        let mut state = State::new(self, voices);
        let mut sampler = Sampler::with_streams(sampling, streams.iter().copied());
        let total = frames * self.shape.hop_length;
        let mut audio = vec![Vec::with_capacity(total); voices];
        let mut frame = vec![0f32; voices * self.shape.bottleneck];
        let mut classes = vec![0usize; voices];
        for f in 0..frames {
            frame_of(encoding, frames, f, &mut frame, self.shape.bottleneck);
            state.set_frame(self, &frame)?;
            for i in 0..self.shape.hop_length {
                if let Some(f0) = f0 {
                    let t = f * self.shape.hop_length + i;
                    crate::excitation::curves_at(f0, total, t, state.f0_mut());
                }
                if control.cancel.load(Ordering::Relaxed) {
                    return Err(Error::Cancelled);
                }
                state.sample(self, &mut sampler, &mut classes);
                for (out, &c) in audio.iter_mut().zip(&classes) {
                    out.push(mulaw::inv_mu_law(mulaw::index_class(c)));
                }
                control.samples.fetch_add(voices as u64, Ordering::Relaxed);
            }
        }
        Ok(audio)
    }
}

impl crate::generate::Generator for CpuGenerator {
    fn shape(&self) -> crate::generate::FrameShape {
        self.shape
    }

    fn describe(&self, threads: usize) -> String {
        format!("CPU ({}, {threads} threads)", self.isa.name())
    }

    /// Generates `frames × hop_length` samples for each voice of `request`, voice `v`
    /// drawing from random stream `streams[v]`, on up to `request.threads` threads: voices
    /// split in contiguous groups, or every thread a share of each matrix
    /// ([`Parallelism`]). `control` counts the samples done (summed over voices) and is
    /// checked for cancellation before every sample.
    fn generate(&self, request: &Request<'_>, control: &Control) -> Result<Vec<Vec<f32>>> {
        let (encoding, f0, streams) = (request.encoding, request.f0, request.streams);
        let (sampling, threads) = (request.sampling, request.threads);
        let voices = streams.len();
        let frames = request.frames(self.shape.bottleneck, self.shape.hop_length)?;
        let per_voice = frames * self.shape.bottleneck;
        let total = frames * self.shape.hop_length;
        let threads = threads.max(1);
        if threads > 1 && self.parallelism_for(voices, threads) == Parallelism::Columns {
            return self.generate_columns(encoding, f0, streams, sampling, threads, control);
        }
        let groups = split(voices, threads);
        if groups.len() == 1 {
            return self.generate_group(encoding, f0, streams, sampling, control);
        }
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|range| {
                    let range = range.clone();
                    let enc = &encoding[range.start * per_voice..range.end * per_voice];
                    let f0 = f0.map(|f0| &f0[range.start * total..range.end * total]);
                    let streams = &streams[range];
                    scope.spawn(move || self.generate_group(enc, f0, streams, sampling, control))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(Error::Panicked("a decoder thread"))))
                .collect::<Vec<_>>()
        });
        let mut audio = Vec::with_capacity(voices);
        for r in results {
            audio.extend(r?);
        }
        Ok(audio)
    }
}

/// The CPU decoder's voices advanced one sample at a time ([`crate::generate::Stepper`]).
#[derive(Debug)]
pub struct CpuStepper<'a> {
    decoder: &'a CpuGenerator,
    state: State,
    voices: usize,
}

impl CpuGenerator {
    /// A [`CpuStepper`] over `voices` voices from empty queues.
    pub fn stepper(&self, voices: usize) -> CpuStepper<'_> {
        CpuStepper {
            decoder: self,
            state: State::new(self, voices),
            voices,
        }
    }
}

impl crate::generate::Stepper for CpuStepper<'_> {
    fn set_frame(&mut self, frame: &[f32]) -> Result<()> {
        self.state.set_frame(self.decoder, frame)
    }

    fn step(&mut self, previous: &[f32]) -> Result<Vec<f32>> {
        crate::generate::check_previous(previous, self.voices)?;
        Ok(self.state.step(self.decoder, previous).to_vec())
    }

    fn draw(&mut self, sampler: &mut Sampler) -> Result<Vec<usize>> {
        let mut classes = vec![0usize; self.voices];
        self.state.draw(self.decoder, sampler, &mut classes);
        Ok(classes)
    }
}
