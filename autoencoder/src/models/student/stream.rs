//! The student streamed: a note generated block by block, for playing live.
//!
//! Every flow is a causal WaveNet over a known input (the noise, or the previous flow's
//! output, shifted right by one), so sample `t` of every flow needs only samples before
//! `t`: a block of samples is the flows run one after the other over the block, each
//! layer reading its dilated taps from the rows it kept of its input (Fast WaveNet's
//! queues, Paine et al. 2016, here one history per layer rather than one queue per tap,
//! so a block of rows is one matrix product per tap). What a whole-note render computes
//! in one pass is computed here in pieces, with everything that runs along the note
//! carried from one block to the next: each layer's past, each flow's last inputs, the
//! oscillator's phase (f0 may change every sample: bends, glides, vibrato), the noise
//! stream, the embedding frame (asked for from a [`Frames`] when it falls due, every
//! hop), the sub-partial bank's gains, the DC blocker of the output stage
//! ([`super::generate::output_stage`]) and the measured envelope's [`Shaper`] (whose
//! window delays the output by [`StudentStream::delay`] samples).
//!
//! Exactness: the same arithmetic as [`CpuStudent::render`] in another summation order
//! (the products here are [`crate::cpu::rows`]', there the `gemm` crate's), so a streamed note
//! equals the whole-note render within float rounding, whatever the block sizes
//! (`autoencoder/tests/stream.rs`, 1e-5 of the peak).
//!
//! Nothing is allocated after [`StudentStream::new`]: the histories, the scratch and the
//! frame are sized there, so [`StudentStream::process`] can run on an audio thread.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::StudentConfig;
use super::cpu::CpuStudent;
use super::envelope::{self, Shaper};
use super::generate::{DC_BLOCK_HZ, logistic_draw};
use super::model::{INITIAL_LOG_SCALE, bank_gain, bank_sample, scale_by_measured};
use crate::cpu::rows::{gate, matmul};
use crate::excitation::{MAX_SUBPARTIALS, Oscillator, SAMPLE_RATE_HZ};
use crate::{Error, Result};

/// The most rows one step of the flows computes: a block longer than this (or one that
/// crosses an embedding frame) is run in several steps. 128 rows of the shipped student's
/// activations stay in L2.
pub const CHUNK: usize = 128;

/// Where a stream's embedding frames come from: asked for frame `index` (from 0 at the
/// note's start) when its first sample is due.
pub trait Frames {
    /// Writes frame `index` (the student's `frame_channels()` values) into `frame`.
    fn frame(&mut self, index: usize, frame: &mut [f32]);
}

/// The frames of a whole embedding `[frames, bottleneck]` (`bottleneck`: the student's
/// `frame_channels()`), the last one held past its end (what a whole-note render of the
/// same frames plays).
#[derive(Debug, Clone, Copy)]
pub struct SliceFrames<'a> {
    pub data: &'a [f32],
    pub bottleneck: usize,
}

impl Frames for SliceFrames<'_> {
    fn frame(&mut self, index: usize, frame: &mut [f32]) {
        let bn = self.bottleneck.max(1);
        let frames = self.data.len() / bn;
        if frames == 0 {
            frame.fill(0.0);
            return;
        }
        let f = index.min(frames - 1);
        for (o, &v) in frame.iter_mut().zip(&self.data[f * bn..(f + 1) * bn]) {
            *o = v;
        }
    }
}

/// The rows a layer (or a flow's input) keeps: `hist` rows of the past before `pos`, room
/// for `cap` more after it; when the room runs out the past moves to the front (one copy
/// of `hist` rows every `cap` rows, so at most one row copied per row computed).
#[derive(Debug, Clone)]
struct History {
    data: Vec<f32>,
    width: usize,
    hist: usize,
    cap: usize,
    pos: usize,
}

impl History {
    fn new(width: usize, hist: usize) -> Self {
        let cap = hist.max(CHUNK);
        Self {
            data: vec![0.0; (hist + cap) * width],
            width,
            hist,
            cap,
            pos: hist,
        }
    }

    /// Back to the causal zeros before a note.
    fn reset(&mut self) {
        self.data.fill(0.0);
        self.pos = self.hist;
    }

    /// Makes room for `m` (≤ [`CHUNK`]) rows at `pos`.
    fn reserve(&mut self, m: usize) {
        if self.pos + m > self.hist + self.cap {
            let w = self.width;
            self.data
                .copy_within((self.pos - self.hist) * w..self.pos * w, 0);
            self.pos = self.hist;
        }
    }

    /// `m` rows starting `back` (≤ `hist`) rows before `pos`.
    fn rows(&self, back: usize, m: usize) -> &[f32] {
        let r0 = self.pos - back;
        &self.data[r0 * self.width..(r0 + m) * self.width]
    }

    /// The `m` new rows at `pos` (after [`History::reserve`]).
    fn fresh(&mut self, m: usize) -> &mut [f32] {
        &mut self.data[self.pos * self.width..(self.pos + m) * self.width]
    }

    fn advance(&mut self, m: usize) {
        self.pos += m;
    }
}

/// One flow's carried state: its input's last samples and every layer's input rows.
#[derive(Debug, Clone)]
struct FlowState {
    /// The flow's input (noise or the previous flow's output), `filter_length` rows of
    /// past: the start convolution reads `x[t − taps .. t − 1]`.
    input: History,
    /// The residual stream into each layer, `(taps − 1) · dilation` rows of past.
    layers: Vec<History>,
}

/// One voice of the student, generated block by block (see the module doc).
#[derive(Debug)]
pub struct StudentStream {
    model: Arc<CpuStudent>,
    flows: Vec<FlowState>,
    /// Per flow and layer, `[2 · width]`: the current frame's conditioning plus the
    /// dilated convolution's bias.
    cond: Vec<f32>,
    /// The current frame, `[frame_channels]`.
    frame: Vec<f32>,
    /// The measured envelope's output stage, for a student with one.
    shaper: Option<Shaper>,
    /// The bank's gains for the current frame, `[N]`.
    gains: [f32; MAX_SUBPARTIALS],
    /// `[CHUNK, 2K + 2N]`.
    excitation: Vec<f32>,
    /// `[CHUNK, 2 · width]`, `[CHUNK, width]`, `[CHUNK, width]`.
    d: Vec<f32>,
    g: Vec<f32>,
    skip: Vec<f32>,
    /// The last flow's output, `[CHUNK]`.
    x: Vec<f32>,
    oscillator: Oscillator,
    rng: ChaCha8Rng,
    /// The DC blocker's last input and output.
    dc: (f64, f64),
    /// Samples generated since the note's start.
    t: u64,
}

impl StudentStream {
    /// A stream of the student `model` at the start of a note whose noise is stream
    /// `stream` of `seed` (what [`super::generate::render_cpu`] draws for a voice of that
    /// stream).
    pub fn new(model: Arc<CpuStudent>, seed: u64, stream: u64) -> Self {
        let cfg = model.config().clone();
        let (w, taps) = (cfg.width, cfg.filter_length);
        let flows = model
            .flows()
            .iter()
            .map(|f| FlowState {
                input: History::new(1, taps),
                layers: f
                    .layers
                    .iter()
                    .map(|l| History::new(w, (taps - 1) * l.dilation))
                    .collect(),
            })
            .collect::<Vec<_>>();
        let layers: usize = cfg.flows.iter().sum();
        let mut s = Self {
            cond: vec![0.0; layers * 2 * w],
            frame: vec![0.0; cfg.frame_channels()],
            shaper: model
                .envelope()
                .map(|bands| Shaper::new(bands, cfg.hop_length)),
            gains: [0.0; MAX_SUBPARTIALS],
            excitation: vec![0.0; CHUNK * cfg.excitation_channels()],
            d: vec![0.0; CHUNK * 2 * w],
            g: vec![0.0; CHUNK * w],
            skip: vec![0.0; CHUNK * w],
            x: vec![0.0; CHUNK],
            flows,
            model,
            oscillator: Oscillator::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            dc: (0.0, 0.0),
            t: 0,
        };
        s.reset(seed, stream);
        s
    }

    pub fn config(&self) -> &StudentConfig {
        self.model.config()
    }

    /// Samples generated since the note started.
    pub fn position(&self) -> u64 {
        self.t
    }

    /// Starts a new note (from stream `stream` of `seed`), as a new stream would: the
    /// histories back to zero, the phase to 0, the output stage at rest. Allocates nothing.
    pub fn reset(&mut self, seed: u64, stream: u64) {
        for f in &mut self.flows {
            f.input.reset();
            f.layers.iter_mut().for_each(History::reset);
        }
        self.oscillator.reset();
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        self.rng.set_stream(stream);
        self.dc = (0.0, 0.0);
        if let Some(shaper) = &mut self.shaper {
            shaper.reset();
        }
        self.t = 0;
    }

    /// Plays the student's measured envelope (the default, for a student with one) or
    /// not (the flows alone, no delay). Allocates only when turned back on.
    pub fn set_envelope(&mut self, on: bool) {
        if !on {
            self.shaper = None;
        } else if self.shaper.is_none() {
            let hop = self.model.config().hop_length;
            self.shaper = self.model.envelope().map(|bands| Shaper::new(bands, hop));
        }
    }

    /// Samples the output lags the flows by: the envelope's window for a student with a
    /// measured envelope (played), else 0. Sample `t` of a whole-note render is sample `t + delay`
    /// of the stream.
    pub fn delay(&self) -> usize {
        if self.shaper.is_some() {
            envelope::WINDOW
        } else {
            0
        }
    }

    /// Generates the next `out.len()` samples (any number) at f0 `f0_hz[i]` for sample `i`
    /// (Hz; 0: unpitched), asking `frames` for each embedding frame as it falls due.
    /// Allocates nothing; the only error is `f0_hz` of another length than `out`.
    pub fn process(
        &mut self,
        f0_hz: &[f32],
        frames: &mut dyn Frames,
        out: &mut [f32],
    ) -> Result<()> {
        if f0_hz.len() != out.len() {
            return Err(Error::Shape(format!(
                "a block of {} samples needs as many f0 values, got {}",
                out.len(),
                f0_hz.len()
            )));
        }
        let hop = self.config().hop_length as u64;
        let mut done = 0;
        while done < out.len() {
            let into_frame = self.t % hop;
            if into_frame == 0 {
                let index = (self.t / hop) as usize;
                frames.frame(index, &mut self.frame);
                self.start_frame();
                let bn = self.model.config().bottleneck;
                if let Some(shaper) = &mut self.shaper {
                    shaper.set_frame(index, &self.frame[bn..]);
                }
            }
            let m = (out.len() - done)
                .min(CHUNK)
                .min((hop - into_frame) as usize);
            let block = &mut out[done..done + m];
            self.step(&f0_hz[done..done + m], block);
            if let Some(shaper) = &mut self.shaper {
                shaper.process(block);
            }
            block.iter_mut().for_each(|o| *o = o.clamp(-1.0, 1.0));
            done += m;
        }
        Ok(())
    }

    /// The current frame's conditioning for every layer, and the bank's gains.
    fn start_frame(&mut self) {
        let cfg = self.model.config();
        let (w, bn) = (cfg.width, cfg.bottleneck);
        let layers = self.model.flows().iter().flat_map(|f| f.layers.iter());
        for (layer, c) in layers.zip(self.cond.chunks_exact_mut(2 * w)) {
            for ((o, &cb), &db) in c.iter_mut().zip(&layer.cond.b).zip(&layer.dilated.b) {
                *o = cb + db;
            }
            for (i, &e) in self.frame.iter().enumerate().take(bn) {
                for (o, &k) in c.iter_mut().zip(&layer.cond.w[i * 2 * w..(i + 1) * 2 * w]) {
                    *o += e * k;
                }
            }
        }
        if let Some(bank) = self.model.bank() {
            let n = bank.b.len();
            let gains = &mut self.gains[..n];
            gains.copy_from_slice(&bank.b);
            for (c, &e) in self.frame[..bn].iter().enumerate() {
                for (g, &k) in gains.iter_mut().zip(&bank.w[c * n..(c + 1) * n]) {
                    *g += e * k;
                }
            }
            for g in gains.iter_mut() {
                *g = bank_gain(*g);
            }
            if bank.measured {
                scale_by_measured(gains, &self.frame[..bn]);
            }
        }
    }

    /// `m = out.len()` (≤ [`CHUNK`]) samples, all within one embedding frame.
    fn step(&mut self, f0_hz: &[f32], out: &mut [f32]) {
        let m = out.len();
        let model = &*self.model;
        let cfg = model.config();
        let (w, taps) = (cfg.width, cfg.filter_length);
        let (k2, harmonics) = (cfg.excitation_channels(), 2 * cfg.excitation_harmonics);
        let isa = model.isa();
        let share = (INITIAL_LOG_SCALE / model.flows().len() as f64) as f32;

        // The noise, into the first flow's input.
        if let Some(first) = self.flows.first_mut() {
            first.input.reserve(m);
            for z in first.input.fresh(m) {
                *z = logistic_draw(&mut self.rng);
            }
        }
        // The excitation, from the running phase.
        if k2 > 0 {
            for (row, &hz) in self.excitation.chunks_exact_mut(k2).zip(f0_hz) {
                let (h, s) = row.split_at_mut(harmonics);
                self.oscillator.next_partials(hz, h, s);
            }
        }
        let excitation = &self.excitation[..m * k2];

        let mut cond_at = 0;
        let nflows = self.flows.len();
        for fi in 0..nflows {
            let (this, rest) = self.flows[fi..].split_at_mut(1);
            let state = &mut this[0];
            let flow = &model.flows()[fi];
            let skip = &mut self.skip[..m * w];
            skip.fill(0.0);
            for h in &mut state.layers {
                h.reserve(m);
            }
            // The start convolution over the input shifted right by one.
            {
                let input = state.input.rows(taps, taps + m);
                let Some(l0) = state.layers.first_mut() else {
                    continue;
                };
                let rows = l0.fresh(m);
                for (r, row) in rows.chunks_exact_mut(w).enumerate() {
                    row.copy_from_slice(&flow.start.b);
                    for j in 0..taps {
                        let u = input[r + j];
                        for (o, &k) in row.iter_mut().zip(&flow.start.w[j * w..(j + 1) * w]) {
                            *o += u * k;
                        }
                    }
                }
            }
            let nlayers = flow.layers.len();
            for (li, layer) in flow.layers.iter().enumerate() {
                let d = &mut self.d[..m * 2 * w];
                let g = &mut self.g[..m * w];
                let c = &self.cond[cond_at..cond_at + 2 * w];
                cond_at += 2 * w;
                for row in d.chunks_exact_mut(2 * w) {
                    row.copy_from_slice(c);
                }
                let (before, after) = state.layers.split_at_mut(li + 1);
                let input = &before[li];
                for j in 0..taps {
                    let back = (taps - 1 - j) * layer.dilation;
                    let rhs = &layer.dilated.w[j * w * 2 * w..(j + 1) * w * 2 * w];
                    matmul(isa, m, w, 2 * w, input.rows(back, m), rhs, d);
                }
                if let Some(k) = &layer.exc {
                    matmul(isa, m, k2, 2 * w, excitation, k, d);
                }
                gate(isa, d, w, g);
                // The residual stream into the next layer (nothing reads the last's).
                if li + 1 < nlayers {
                    let prev = input.rows(0, m);
                    let next = after[0].fresh(m);
                    for (row, p) in next.chunks_exact_mut(w).zip(prev.chunks_exact(w)) {
                        for ((o, &p), &b) in row.iter_mut().zip(p).zip(&layer.res.b) {
                            *o = p + b;
                        }
                    }
                    matmul(isa, m, w, w, g, &layer.res.w, next);
                }
                for row in skip.chunks_exact_mut(w) {
                    for (o, &b) in row.iter_mut().zip(&layer.skip.b) {
                        *o += b;
                    }
                }
                matmul(isa, m, w, w, g, &layer.skip.w, skip);
            }
            // The head: x · s + μ, into the next flow's input or the output.
            let (wo, bo) = (&flow.out.w, &flow.out.b);
            let x_in = state.input.rows(0, m);
            let x_out: &mut [f32] = match rest.first_mut() {
                Some(next) => {
                    next.input.reserve(m);
                    next.input.fresh(m)
                }
                None => &mut self.x[..m],
            };
            for ((o, &x), h) in x_out.iter_mut().zip(x_in).zip(skip.chunks_exact(w)) {
                let (mut mu, mut log_s) = (bo[0], bo[1]);
                for (ch, &hv) in h.iter().enumerate() {
                    let hv = hv.max(0.0);
                    mu += hv * wo[2 * ch];
                    log_s += hv * wo[2 * ch + 1];
                }
                *o = x * (log_s + share).exp() + mu;
            }
            state.input.advance(m);
            for h in &mut state.layers {
                h.advance(m);
            }
        }

        // The bank, then the output stage with its state carried.
        let x = &mut self.x[..m];
        if let Some(bank) = model.bank()
            && k2 > 0
        {
            let gains = &self.gains[..bank.b.len()];
            for (xt, row) in x.iter_mut().zip(excitation.chunks_exact(k2)) {
                *xt += bank_sample(gains, &row[harmonics..]);
            }
        }
        let r = 1.0 - std::f64::consts::TAU * DC_BLOCK_HZ / SAMPLE_RATE_HZ;
        let (mut x_prev, mut y_prev) = self.dc;
        for (o, &xt) in out.iter_mut().zip(x.iter()) {
            let xv = f64::from(xt);
            let y = xv - x_prev + r * y_prev;
            (x_prev, y_prev) = (xv, y);
            // Clamped in `process`, after the envelope.
            *o = y as f32;
        }
        self.dc = (x_prev, y_prev);
        self.t += m as u64;
    }
}
