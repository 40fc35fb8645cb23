//! A generation's state (queues, the current frame's conditioning, scratch) and the
//! fused per-sample step over it: the decoder's layers as packed-panel matrix products
//! with their epilogues, optionally split by columns across threads.

use std::sync::atomic::Ordering;

use super::CpuGenerator;
use crate::cpu::kernels::{HALF, fmadd, gate, matmul, pad, pad16, project};
use crate::cpu::parallel::{Exchange, Part};
use crate::cpu::{Isa, NR, exp_fast};
use crate::excitation::Oscillator;
use crate::mulaw::{self, CLASSES};
use crate::sampling::{Sampler, argmax};
use crate::{Error, Result};

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
    /// `[voice]`: the f0 (Hz) of the next samples, and each voice's oscillator.
    f0: Vec<f32>,
    oscillators: Vec<Oscillator>,
    /// `[voice][2K]`: the current sample's excitation.
    excitation: Vec<f32>,
}

impl State {
    pub fn new(dec: &CpuGenerator, voices: usize) -> Self {
        let (w, sw) = (dec.width, dec.skip_width);
        let k = dec.filter_length;
        let rings = dec
            .layers
            .iter()
            .map(|l| vec![0f32; ((l.taps - 1) * l.dilation + 1) * voices * w])
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
            f0: vec![0f32; voices],
            oscillators: vec![Oscillator::new(); voices],
            excitation: vec![0f32; voices * dec.shape.excitation_channels],
        }
    }

    /// Sets each voice's f0 in Hz (`[voice]`, 0 = unpitched) for the next samples, until
    /// set again. Models without an excitation ignore it.
    pub fn set_f0(&mut self, f0_hz: &[f32]) -> Result<()> {
        crate::excitation::check_voices(f0_hz, self.voices)?;
        self.f0.copy_from_slice(f0_hz);
        Ok(())
    }

    /// Voice `v`'s f0 for the next samples (no check: the generation loop's fast path).
    pub(super) fn f0_mut(&mut self) -> &mut [f32] {
        &mut self.f0
    }

    /// Empties the queues: the next step is sample 0 of a new note.
    pub fn reset(&mut self) {
        self.t = 0;
        self.start_history.fill(0.0);
        self.rings.iter_mut().for_each(|r| r.fill(0.0));
        self.previous.fill(0.0);
        self.oscillators.fill(Oscillator::new());
    }

    /// Sets the embedding frame `[voice][bottleneck]` of the next samples.
    pub fn set_frame(&mut self, dec: &CpuGenerator, frame: &[f32]) -> Result<()> {
        let bn = dec.shape.bottleneck;
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
    pub fn step(&mut self, dec: &CpuGenerator, scaled: &[f32]) -> &[f32] {
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
    pub fn sample(&mut self, dec: &CpuGenerator, sampler: &mut Sampler, classes: &mut [usize]) {
        let whole = dec.whole.clone();
        self.sample_part(dec, &whole, None, false, sampler, classes);
    }

    /// [`State::sample`] as one of the threads of a split step (see [`State::step_impl`]).
    /// Every thread draws the same classes: the same logits, the same random streams.
    pub(super) fn sample_part(
        &mut self,
        dec: &CpuGenerator,
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
    fn step_avx2(&mut self, dec: &CpuGenerator, part: &Part, ex: Option<&Exchange>, stop: bool) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `dec.isa` is `Avx2Fma` only when `Isa::detect` found AVX2 and FMA on
        // this CPU (checked in `CpuGenerator::with_isa`).
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
        dec: &CpuGenerator,
        part: &Part,
        ex: Option<&Exchange>,
        stop: bool,
    ) {
        self.step_impl::<true>(dec, part, ex, stop)
    }

    /// Draws each voice's class from the logits of the last step (and makes it the next
    /// input), without stepping: with [`State::step`], a teacher-forced check of sampling.
    pub fn draw(&mut self, dec: &CpuGenerator, sampler: &mut Sampler, classes: &mut [usize]) {
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
        dec: &CpuGenerator,
        part: &Part,
        ex: Option<&Exchange>,
        stop: bool,
    ) {
        let (w, sw) = (dec.width, dec.skip_width);
        let (lw, swp) = (pad16(w), pad(sw));
        let voices = self.voices;
        let t = self.t;
        let k = dec.filter_length;
        let e = dec.shape.excitation_channels;

        // The excitation of this sample (every thread of a split step computes the same).
        if e > 0 {
            for ((osc, &hz), out) in self
                .oscillators
                .iter_mut()
                .zip(&self.f0)
                .zip(self.excitation.chunks_exact_mut(e))
            {
                osc.next(hz, out);
            }
        }

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
            if !dec.exc_start_kernel.is_empty() {
                let exc = &self.excitation[v * e..(v + 1) * e];
                for (&x, row) in exc.iter().zip(dec.exc_start_kernel.chunks_exact(w)) {
                    for (o, &wv) in l.iter_mut().zip(row) {
                        *o = fmadd::<FMA>(x, wv, *o);
                    }
                }
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
            let taps = layer.taps;
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
                if dec.excitation_layers {
                    self.xin[v * kin + taps * w..][..e]
                        .copy_from_slice(&self.excitation[v * e..(v + 1) * e]);
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
