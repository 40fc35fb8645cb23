//! The fast CPU decoder: Fast WaveNet generation without per-op dispatch.
//!
//! The same arithmetic as [`crate::FastGenerator`] (the reference), arranged for the
//! machine:
//! - Every matrix is repacked once into panels of [`NR`] output columns, `[panel][k][NR]`,
//!   so a panel streams contiguously and its columns fill SIMD registers.
//! - The dilated convolution's taps are one matrix over the concatenated inputs
//!   `[x(t − (k−1)d) … x(t − d), x(t)]`; its output columns are interleaved so that a
//!   panel holds 8 sigmoid and the matching 8 tanh channels, and the gate is applied to
//!   the panel in registers (the "epilogue"), conditioning and bias included.
//! - The residual and skip 1×1s are one matrix `[res | skip]`, accumulated straight into
//!   the residual stream and the skip sum.
//! - A register tile is `MR` voices × `PB` panels × [`NR`] columns: a batch of voices
//!   shares every weight load (4 voices per load), one voice keeps 4 panels in flight so
//!   the FMA latency is hidden.
//! - With AVX2 and FMA (detected at run time), the same code is compiled with those
//!   features and `mul_add`; elsewhere plain `a · b + c`.
//! - sigmoid and tanh use [`exp_fast`] (relative error ≤ 2.5e-7, so σ is within 1e-7 and
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

mod kernels;
mod parallel;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::mulaw::{self, CLASSES};
use crate::sampling::{Sampler, Sampling, argmax};
use crate::{Error, Result, WaveNetAutoencoder};
use kernels::{HALF, Packed, fmadd, gate, gate_columns, host_vec, matmul, pad, pad16, project};
pub use kernels::{NR, exp_fast, sigmoid, tanh};
use parallel::{Exchange, Part, split};

/// The instruction set the kernels were compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX2 and FMA.
    Avx2Fma,
    /// Portable code (still auto-vectorised for the baseline target).
    Generic,
}

impl Isa {
    /// The best the running CPU supports.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2Fma;
            }
        }
        Isa::Generic
    }

    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx2Fma => "avx2+fma",
            Isa::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone)]
struct Layer {
    dilation: usize,
    /// `[k·width] → gate panels`, bias included.
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
pub struct CpuDecoder {
    isa: Isa,
    width: usize,
    skip_width: usize,
    bottleneck: usize,
    hop_length: usize,
    filter_length: usize,
    /// `[tap][width]` and `[width]`: the start convolution has one input channel.
    start_kernel: Vec<f32>,
    start_bias: Vec<f32>,
    skip_start: Packed,
    layers: Vec<Layer>,
    out1: Packed,
    cond_out_kernel: Vec<f32>,
    cond_out_bias: Vec<f32>,
    logits: Packed,
    /// Every panel of every matrix: a step on one thread.
    whole: Part,
    parallelism: Parallelism,
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

impl CpuDecoder {
    /// Repacks `model`'s decoder for the best instruction set of this CPU.
    pub fn new(model: &WaveNetAutoencoder) -> Result<Self> {
        Self::with_isa(model, Isa::detect())
    }

    /// Repacks for a given instruction set ([`Isa::Avx2Fma`] only where detected).
    pub fn with_isa(model: &WaveNetAutoencoder, isa: Isa) -> Result<Self> {
        if isa == Isa::Avx2Fma && Isa::detect() != Isa::Avx2Fma {
            return Err(Error::Shape("this CPU lacks AVX2 and FMA".into()));
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
                let gate = Packed::new(
                    &host_vec(layer.dilated.kernel())?,
                    &host_vec(layer.dilated.bias())?,
                    k * w,
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
            bottleneck: cfg.ae_bottleneck_width,
            hop_length: cfg.ae_hop_length,
            filter_length: dec.start.config().filter_length,
            start_kernel: host_vec(dec.start.kernel())?,
            start_bias: host_vec(dec.start.bias())?,
            skip_start: Packed::dense(&dec.skip_start)?,
            layers,
            out1: Packed::dense(&dec.out1)?,
            cond_out_kernel: host_vec(dec.cond_map_out1.kernel())?,
            cond_out_bias: host_vec(dec.cond_map_out1.bias())?,
            logits: Packed::dense(&dec.logits)?,
            whole: Part::new(w, sw, 0, 1),
            parallelism: Parallelism::Auto,
        })
    }

    /// Sets how batches are spread over threads (the default chooses).
    pub fn with_parallelism(mut self, parallelism: Parallelism) -> Self {
        self.parallelism = parallelism;
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

    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    pub fn bottleneck(&self) -> usize {
        self.bottleneck
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

    /// Generates `frames × hop_length` samples for each of `voices` voices from
    /// `encoding` `[voice][frame][bottleneck]`, on up to `threads` threads (voices are
    /// split in contiguous groups). `control` counts the samples done (summed over
    /// voices) and is checked for cancellation before every sample.
    pub fn generate(
        &self,
        encoding: &[f32],
        voices: usize,
        sampling: Sampling,
        threads: usize,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let streams: Vec<u64> = (0..voices as u64).collect();
        self.generate_streams(encoding, &streams, sampling, threads, control)
    }

    /// [`CpuDecoder::generate`] with voice `v` drawing from random stream `streams[v]`
    /// (`generate` uses stream `v`).
    pub fn generate_streams(
        &self,
        encoding: &[f32],
        streams: &[u64],
        sampling: Sampling,
        threads: usize,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let per_voice = frames_in(encoding, voices, self.bottleneck)? * self.bottleneck;
        let threads = threads.max(1);
        if threads > 1 && self.parallelism_for(voices, threads) == Parallelism::Columns {
            return self.generate_columns(encoding, streams, sampling, threads, control);
        }
        let groups = split(voices, threads);
        if groups.len() == 1 {
            return self.generate_group(encoding, streams, sampling, control);
        }
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|range| {
                    let range = range.clone();
                    let enc = &encoding[range.start * per_voice..range.end * per_voice];
                    let streams = &streams[range];
                    scope.spawn(move || self.generate_group(enc, streams, sampling, control))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Shape("a decoder thread panicked".into())))
                })
                .collect::<Vec<_>>()
        });
        let mut audio = Vec::with_capacity(voices);
        for r in results {
            audio.extend(r?);
        }
        Ok(audio)
    }

    /// All voices on `threads` threads, each computing a share of every matrix.
    fn generate_columns(
        &self,
        encoding: &[f32],
        streams: &[u64],
        sampling: Sampling,
        threads: usize,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let per_voice = encoding.len() / voices;
        let frames = per_voice / self.bottleneck;
        let total = frames * self.hop_length;
        let ex = Exchange::new(self, voices, threads);
        let results = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|index| {
                    let ex = &ex;
                    scope.spawn(move || -> Result<Vec<Vec<f32>>> {
                        let part = Part::new(self.width, self.skip_width, index, threads);
                        let mut state = State::new(self, voices);
                        let mut sampler = Sampler::with_streams(sampling, streams.iter().copied());
                        let mut audio = if index == 0 {
                            vec![Vec::with_capacity(total); voices]
                        } else {
                            Vec::new()
                        };
                        let mut frame = vec![0f32; voices * self.bottleneck];
                        let mut classes = vec![0usize; voices];
                        for f in 0..frames {
                            for (v, z) in frame.chunks_exact_mut(self.bottleneck).enumerate() {
                                z.copy_from_slice(
                                    &encoding[v * per_voice + f * self.bottleneck..]
                                        [..self.bottleneck],
                                );
                            }
                            state.set_frame(self, &frame)?;
                            for _ in 0..self.hop_length {
                                let stop = index == 0 && control.is_cancelled();
                                state.sample_part(
                                    self,
                                    &part,
                                    Some(ex),
                                    stop,
                                    &mut sampler,
                                    &mut classes,
                                );
                                // Published by thread 0 with the last exchange of the
                                // step: every thread stops after the same step.
                                if ex.stop.load(Ordering::Relaxed) {
                                    return Err(Error::Cancelled);
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
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::Shape("a decoder thread panicked".into())))
                })
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
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let per_voice = encoding.len() / voices;
        let frames = per_voice / self.bottleneck;
        let mut state = State::new(self, voices);
        let mut sampler = Sampler::with_streams(sampling, streams.iter().copied());
        let total = frames * self.hop_length;
        let mut audio = vec![Vec::with_capacity(total); voices];
        let mut frame = vec![0f32; voices * self.bottleneck];
        let mut classes = vec![0usize; voices];
        for f in 0..frames {
            for (v, z) in frame.chunks_exact_mut(self.bottleneck).enumerate() {
                z.copy_from_slice(
                    &encoding[v * per_voice + f * self.bottleneck..][..self.bottleneck],
                );
            }
            state.set_frame(self, &frame)?;
            for _ in 0..self.hop_length {
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

/// The frames per voice of an encoding `[voice][frame][bottleneck]` of `voices` voices,
/// or why it cannot be one.
pub fn frames_in(encoding: &[f32], voices: usize, bottleneck: usize) -> Result<usize> {
    let per_voice = encoding.len().checked_div(voices).unwrap_or(0);
    if voices == 0 || !per_voice.is_multiple_of(bottleneck) || per_voice * voices != encoding.len()
    {
        return Err(Error::Shape(format!(
            "an encoding for {voices} voices of {bottleneck}-channel frames cannot have {} values",
            encoding.len()
        )));
    }
    Ok(per_voice / bottleneck)
}

/// Progress and cancellation shared between a generation and whoever watches it.
#[derive(Debug, Default)]
pub struct Control {
    /// Samples generated so far, summed over voices.
    pub samples: AtomicU64,
    /// Set to stop the generation before its next sample ([`Error::Cancelled`]).
    pub cancel: AtomicBool,
}

impl Control {
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// The per-voice state of a generation: queues, the current frame's conditioning, scratch.
#[derive(Debug, Clone)]
pub struct State {
    voices: usize,
    t: usize,
    /// `[voice][filter_length − 1]`: the previous inputs of the start convolution.
    start_history: Vec<f32>,
    /// Per layer `[slot][voice][width]`, slot = time mod ((k − 1)·d + 1).
    rings: Vec<Vec<f32>>,
    /// Per layer `[voice][gate panels · NR]`: bias + conditioning of the current frame.
    gate_cond: Vec<Vec<f32>>,
    /// `[voice][skip_width]` padded: out1's bias + the output conditioning.
    out_cond: Vec<f32>,
    /// `[voice][k·width]`: the dilated convolution's taps, concatenated.
    xin: Vec<f32>,
    /// Residual stream `[voice][pad(width)]`, gate output `[voice][gate panels · 8]`.
    l: Vec<f32>,
    g: Vec<f32>,
    /// Skip sum and hidden layer `[voice][pad(skip_width)]`.
    s: Vec<f32>,
    h: Vec<f32>,
    /// `[voice][256]`.
    logits: Vec<f32>,
    /// `[voice][panels · NR]`: a matrix product before its epilogue.
    sums: Vec<f32>,
    /// A matrix product's inputs, transposed per tile of voices.
    xt: Vec<f32>,
    cond_scratch: Vec<f32>,
    previous: Vec<f32>,
}

impl State {
    pub fn new(dec: &CpuDecoder, voices: usize) -> Self {
        let (w, sw) = (dec.width, dec.skip_width);
        let k = dec.filter_length;
        let rings = dec
            .layers
            .iter()
            .map(|l| {
                let taps = l.gate.k / w;
                vec![0f32; ((taps - 1) * l.dilation + 1) * voices * w]
            })
            .collect();
        let gate_cond = dec
            .layers
            .iter()
            .map(|l| vec![0f32; voices * l.gate.panels * NR])
            .collect();
        let max_k = dec.layers.iter().map(|l| l.gate.k).max().unwrap_or(w);
        let max_n = dec
            .layers
            .iter()
            .map(|l| (l.gate.panels).max(l.out.panels) * NR)
            .max()
            .unwrap_or(0);
        Self {
            voices,
            t: 0,
            start_history: vec![0f32; voices * k.saturating_sub(1)],
            rings,
            gate_cond,
            out_cond: vec![0f32; voices * pad(sw)],
            xin: vec![0f32; voices * max_k],
            l: vec![0f32; voices * pad16(w)],
            g: vec![0f32; voices * w.div_ceil(HALF) * HALF],
            s: vec![0f32; voices * pad(sw)],
            h: vec![0f32; voices * pad(sw)],
            logits: vec![0f32; voices * CLASSES],
            sums: vec![0f32; voices * max_n],
            xt: vec![0f32; voices * max_k.max(pad(sw))],
            cond_scratch: vec![0f32; 2 * w.max(sw)],
            previous: vec![0f32; voices],
        }
    }

    /// Empties the queues: the next step is sample 0 of a new note.
    pub fn reset(&mut self) {
        self.t = 0;
        self.start_history.fill(0.0);
        self.rings.iter_mut().for_each(|r| r.fill(0.0));
        self.previous.fill(0.0);
    }

    /// Sets the embedding frame `[voice][bottleneck]` of the next samples.
    pub fn set_frame(&mut self, dec: &CpuDecoder, frame: &[f32]) -> Result<()> {
        let bn = dec.bottleneck;
        if frame.len() != self.voices * bn {
            return Err(Error::Shape(format!(
                "an embedding frame for {} voices has {} values, got {}",
                self.voices,
                self.voices * bn,
                frame.len()
            )));
        }
        let (w, sw) = (dec.width, dec.skip_width);
        for (layer, cond) in dec.layers.iter().zip(&mut self.gate_cond) {
            let stride = layer.gate.panels * NR;
            let columns = &layer.cond_columns;
            for (v, z) in frame.chunks_exact(bn).enumerate() {
                let c = &mut self.cond_scratch[..2 * w];
                project(&layer.cond_kernel, &layer.cond_bias, z, c);
                for (slot, src) in cond[v * stride..(v + 1) * stride].iter_mut().zip(columns) {
                    *slot = src.map_or(0.0, |s| c[s]);
                }
                for (slot, b) in cond[v * stride..(v + 1) * stride]
                    .iter_mut()
                    .zip(&layer.gate.bias)
                {
                    *slot += b;
                }
            }
        }
        let stride = pad(sw);
        for (v, z) in frame.chunks_exact(bn).enumerate() {
            let out = &mut self.out_cond[v * stride..v * stride + sw];
            project(&dec.cond_out_kernel, &dec.cond_out_bias, z, out);
            for (o, b) in out.iter_mut().zip(&dec.out1.bias) {
                *o += b;
            }
        }
        Ok(())
    }

    /// Teacher-forced step: `scaled[v]` is voice `v`'s previous sample (μ-law class / 128);
    /// returns the logits `[voice][256]` of the current sample.
    pub fn step(&mut self, dec: &CpuDecoder, scaled: &[f32]) -> &[f32] {
        debug_assert_eq!(scaled.len(), self.voices);
        self.previous.copy_from_slice(scaled);
        let whole = dec.whole.clone();
        match dec.isa {
            Isa::Avx2Fma => self.step_avx2(dec, &whole, None, false),
            Isa::Generic => self.step_impl::<false>(dec, &whole, None, false),
        }
        &self.logits
    }

    /// Generates one sample per voice (fed back as the next input); `classes[v]` gets
    /// voice `v`'s softmax index.
    pub fn sample(&mut self, dec: &CpuDecoder, sampler: &mut Sampler, classes: &mut [usize]) {
        let whole = dec.whole.clone();
        self.sample_part(dec, &whole, None, false, sampler, classes);
    }

    /// [`State::sample`] as one of the threads of a split step (see [`State::step_impl`]).
    /// Every thread draws the same classes: the same logits, the same random streams.
    fn sample_part(
        &mut self,
        dec: &CpuDecoder,
        part: &Part,
        ex: Option<&Exchange>,
        stop: bool,
        sampler: &mut Sampler,
        classes: &mut [usize],
    ) {
        match dec.isa {
            Isa::Avx2Fma => {
                self.step_avx2(dec, part, ex, stop);
                self.draw_avx2(sampler, classes);
            }
            Isa::Generic => {
                self.step_impl::<false>(dec, part, ex, stop);
                self.draw_impl::<false>(sampler, classes);
            }
        }
    }

    #[allow(unsafe_code)]
    fn step_avx2(&mut self, dec: &CpuDecoder, part: &Part, ex: Option<&Exchange>, stop: bool) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `dec.isa` is `Avx2Fma` only when `Isa::detect` found AVX2 and FMA on
        // this CPU (checked in `CpuDecoder::with_isa`).
        unsafe {
            self.step_avx2_inner(dec, part, ex, stop)
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.step_impl::<false>(dec, part, ex, stop)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn step_avx2_inner(
        &mut self,
        dec: &CpuDecoder,
        part: &Part,
        ex: Option<&Exchange>,
        stop: bool,
    ) {
        self.step_impl::<true>(dec, part, ex, stop)
    }

    /// Draws each voice's class from the logits of the last step (and makes it the next
    /// input), without stepping: with [`State::step`], a teacher-forced check of sampling.
    pub fn draw(&mut self, dec: &CpuDecoder, sampler: &mut Sampler, classes: &mut [usize]) {
        match dec.isa {
            Isa::Avx2Fma => self.draw_avx2(sampler, classes),
            Isa::Generic => self.draw_impl::<false>(sampler, classes),
        }
    }

    #[allow(unsafe_code)]
    fn draw_avx2(&mut self, sampler: &mut Sampler, classes: &mut [usize]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `step_avx2`.
        unsafe {
            self.draw_avx2_inner(sampler, classes)
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.draw_impl::<false>(sampler, classes)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn draw_avx2_inner(&mut self, sampler: &mut Sampler, classes: &mut [usize]) {
        self.draw_impl::<true>(sampler, classes)
    }

    #[inline(always)]
    fn draw_impl<const FMA: bool>(&mut self, sampler: &mut Sampler, classes: &mut [usize]) {
        let sampling = sampler.sampling();
        let inv_t = if sampling.greedy() {
            0.0
        } else {
            1.0 / sampling.temperature
        };
        let mut weights = [0f32; CLASSES];
        for (v, (logits, class)) in self
            .logits
            .chunks_exact(CLASSES)
            .zip(classes.iter_mut())
            .enumerate()
        {
            *class = if sampling.greedy() {
                argmax(logits)
            } else {
                let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                for (w, &l) in weights.iter_mut().zip(logits) {
                    *w = exp_fast((l - max) * inv_t);
                }
                let total = weights.iter().sum::<f32>();
                sampler.pick(v, &weights, total)
            };
            // Magenta feeds back inv_mu_law(class) and re-quantises it: the identity on
            // classes, so the next input is the class / 128.
            self.previous[v] = mulaw::index_class(*class) as f32 / 128.0;
        }
    }

    /// One step for every voice. `part` is the share of each matrix this thread computes;
    /// with `ex`, the threads of a split step swap the shares they computed (gate outputs
    /// and the residual stream after every layer, the skip sum, hidden layer and logits at
    /// the end), so every thread ends the step with the whole state. Each output column
    /// is summed by exactly one thread in the same order as a whole step would, so a split
    /// step computes bit for bit what one thread would. `stop` is thread 0's view of the
    /// cancel flag, published with the last exchange so that all threads agree on it.
    #[inline(always)]
    fn step_impl<const FMA: bool>(
        &mut self,
        dec: &CpuDecoder,
        part: &Part,
        ex: Option<&Exchange>,
        stop: bool,
    ) {
        let (w, sw) = (dec.width, dec.skip_width);
        let (lw, swp) = (pad16(w), pad(sw));
        let voices = self.voices;
        let t = self.t;
        let k = dec.filter_length;

        // Start: a causal convolution of the 1-channel input, then the first skip.
        for v in 0..voices {
            let hist = &mut self.start_history[v * (k - 1)..(v + 1) * (k - 1)];
            let l = &mut self.l[v * lw..v * lw + w];
            l.copy_from_slice(&dec.start_bias);
            for (tap, row) in dec.start_kernel.chunks_exact(w).enumerate() {
                // Tap k − 1 is the current input; tap i lags k − 1 − i samples.
                let x = if tap == k - 1 {
                    self.previous[v]
                } else {
                    hist[(t + tap) % (k - 1)]
                };
                for (o, &wv) in l.iter_mut().zip(row) {
                    *o = fmadd::<FMA>(x, wv, *o);
                }
            }
            if k > 1 {
                hist[t % (k - 1)] = self.previous[v];
            }
        }
        matmul::<FMA>(
            &dec.skip_start,
            part.skip.clone(),
            &self.l,
            lw,
            voices,
            &mut self.xt,
            &mut self.s,
        );
        add_bias(&mut self.s, swp, &dec.skip_start.bias, &part.skip);

        let gw = w.div_ceil(HALF) * HALF;
        let last = dec.layers.len().saturating_sub(1);
        for (i, (layer, (ring, cond))) in dec
            .layers
            .iter()
            .zip(self.rings.iter_mut().zip(&self.gate_cond))
            .enumerate()
        {
            let taps = layer.gate.k / w;
            let slots = (taps - 1) * layer.dilation + 1;
            let kin = layer.gate.k;
            let at = |slot: usize, v: usize| (slot * voices + v) * w;
            for v in 0..voices {
                ring[at(t % slots, v)..][..w].copy_from_slice(&self.l[v * lw..][..w]);
                for tap in 0..taps {
                    let lag = (taps - 1 - tap) * layer.dilation;
                    let slot = (t + slots - lag) % slots;
                    self.xin[v * kin + tap * w..][..w].copy_from_slice(&ring[at(slot, v)..][..w]);
                }
            }
            let cstride = layer.gate.panels * NR;
            let sums = &mut self.sums[..voices * cstride];
            matmul::<FMA>(
                &layer.gate,
                part.gate.clone(),
                &self.xin,
                kin,
                voices,
                &mut self.xt,
                sums,
            );
            for ((sums, cond), g) in sums
                .chunks_exact(cstride)
                .zip(cond.chunks_exact(cstride))
                .zip(self.g.chunks_exact_mut(gw))
            {
                for ((sums, cond), g) in sums.as_chunks::<NR>().0[part.gate.clone()]
                    .iter()
                    .zip(&cond.as_chunks::<NR>().0[part.gate.clone()])
                    .zip(&mut g.as_chunks_mut::<HALF>().0[part.gate.clone()])
                {
                    gate(sums, cond, g);
                }
            }
            if let Some(ex) = ex {
                let owned = part.gate.start * HALF..part.gate.end * HALF;
                ex.share(&ex.g, &mut self.g, gw, owned, voices);
            }
            let ostride = layer.out.panels * NR;
            let sums = &mut self.sums[..voices * ostride];
            let res = if layer.res_panels > 0 {
                part.res.clone()
            } else {
                0..0
            };
            let skip = layer.res_panels + part.skip.start..layer.res_panels + part.skip.end;
            matmul::<FMA>(
                &layer.out,
                res.clone(),
                &self.g,
                gw,
                voices,
                &mut self.xt,
                sums,
            );
            matmul::<FMA>(&layer.out, skip, &self.g, gw, voices, &mut self.xt, sums);
            let split = layer.res_panels * NR;
            let (rcols, scols) = (
                res.start * NR..res.end * NR,
                part.skip.start * NR..part.skip.end * NR,
            );
            for (v, sums) in sums.chunks_exact(ostride).enumerate() {
                let (rsum, ssum) = sums.split_at(split);
                let (rb, sb) = layer.out.bias.split_at(split);
                for ((l, r), b) in self.l[v * lw..][rcols.clone()]
                    .iter_mut()
                    .zip(&rsum[rcols.clone()])
                    .zip(&rb[rcols.clone()])
                {
                    *l += r + b;
                }
                for ((s, r), b) in self.s[v * swp..][scols.clone()]
                    .iter_mut()
                    .zip(&ssum[scols.clone()])
                    .zip(&sb[scols.clone()])
                {
                    *s += r + b;
                }
            }
            if let Some(ex) = ex
                && i != last
            {
                ex.share(&ex.l, &mut self.l, lw, rcols, voices);
            }
        }
        if let Some(ex) = ex {
            let owned = part.skip.start * NR..part.skip.end * NR;
            ex.share(&ex.s, &mut self.s, swp, owned, voices);
        }

        self.s.iter_mut().for_each(|s| *s = s.max(0.0));
        matmul::<FMA>(
            &dec.out1,
            part.out1.clone(),
            &self.s,
            swp,
            voices,
            &mut self.xt,
            &mut self.h,
        );
        let cols = part.out1.start * NR..part.out1.end * NR;
        for (h, c) in self
            .h
            .chunks_exact_mut(swp)
            .zip(self.out_cond.chunks_exact(swp))
        {
            for (h, c) in h[cols.clone()].iter_mut().zip(&c[cols.clone()]) {
                *h = (*h + c).max(0.0);
            }
        }
        if let Some(ex) = ex {
            ex.share(&ex.h, &mut self.h, swp, cols, voices);
        }
        matmul::<FMA>(
            &dec.logits,
            part.logits.clone(),
            &self.h,
            swp,
            voices,
            &mut self.xt,
            &mut self.logits,
        );
        add_bias(&mut self.logits, CLASSES, &dec.logits.bias, &part.logits);
        let cols = part.logits.start * NR..part.logits.end * NR;
        if let Some(ex) = ex {
            if part.index == 0 {
                ex.stop.store(stop, Ordering::Relaxed);
            }
            ex.share(&ex.logits, &mut self.logits, CLASSES, cols, voices);
        }
        self.t += 1;
    }
}

/// `out[v][c] += bias[c]` for every voice (`out` is `[voice][stride]`) and the columns of
/// `panels`: the bias of a matrix product this thread computed.
#[inline(always)]
fn add_bias(out: &mut [f32], stride: usize, bias: &[f32], panels: &std::ops::Range<usize>) {
    let cols = panels.start * NR..panels.end * NR;
    for row in out.chunks_exact_mut(stride) {
        for (o, b) in row[cols.clone()].iter_mut().zip(&bias[cols.clone()]) {
            *o += b;
        }
    }
}
