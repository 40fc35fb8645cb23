//! The student on the CPU without candle's per-operation tensors: each flow as a few
//! large matrix products per layer over a stretch of time, the gate fused and
//! vectorised, the stretches of a note spread over threads.
//!
//! A flow is a causal convolution stack over a known input (the previous flow's output),
//! so any stretch `[t0, t1)` of its output can be computed from the input alone, starting
//! [`CpuStudent::warmup`] samples early: every layer's dilated taps reach back
//! `(filter_length − 1) · dilation` samples, so values within the sum of those of the
//! stretch's start are built on zeros instead of the true earlier activations, and are
//! computed and thrown away. From sample 0 the zeros are the real causal padding. So
//! threads split a note into stretches with no exchange between them, at the price of
//! recomputing the warm-up (2,046 samples for ten layers of dilations 1…512).
//!
//! Exactness: the products sum in another order than candle's, and the gate uses
//! [`crate::cpu::kernels`]' `exp` (relative error ≤ 2.5e-7); the tests bound the
//! difference from [`super::Student::forward`] (the reference) on the audio.

use std::ops::Range;

use super::Student;
use super::StudentConfig;
use super::model::{Flow, INITIAL_LOG_SCALE, bank_gain, bank_sample, scale_by_measured};
use crate::cpu::Isa;
use crate::cpu::kernels::host_vec;
use crate::cpu::rows::gate;
use crate::nn::conv::Conv1d;
use crate::{Error, Result};

/// A dense `[k, n]` kernel (row-major) and its bias `[n]`.
#[derive(Debug, Clone)]
pub(super) struct Dense {
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
}

impl Dense {
    fn conv(conv: &Conv1d) -> Result<Self> {
        Ok(Self {
            w: host_vec(conv.kernel())?,
            b: host_vec(conv.bias())?,
        })
    }
}

#[derive(Debug, Clone)]
pub(super) struct Layer {
    pub(super) dilation: usize,
    /// `[taps · width, 2 · width]`, tap-major.
    pub(super) dilated: Dense,
    /// `[bottleneck, 2 · width]`.
    pub(super) cond: Dense,
    /// `[2K, 2 · width]`, bias-free.
    pub(super) exc: Option<Vec<f32>>,
    pub(super) res: Dense,
    pub(super) skip: Dense,
}

#[derive(Debug, Clone)]
pub(super) struct CpuFlow {
    /// `[taps, width]`.
    pub(super) start: Dense,
    pub(super) layers: Vec<Layer>,
    /// `[width, 2]`: μ and log s.
    pub(super) out: Dense,
}

impl CpuFlow {
    fn new(flow: &Flow, cfg: &StudentConfig, with_excitation: bool) -> Result<Self> {
        let layers = flow
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                Ok(Layer {
                    dilation: cfg.dilation(i),
                    dilated: Dense::conv(&l.dilated)?,
                    cond: Dense::conv(&l.cond_map)?,
                    exc: match (&l.exc_map, with_excitation) {
                        (Some(p), true) => Some(host_vec(&p.kernel)?),
                        _ => None,
                    },
                    res: Dense::conv(&l.res)?,
                    skip: Dense::conv(&l.skip)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            start: Dense::conv(&flow.start)?,
            layers,
            out: Dense::conv(&flow.out)?,
        })
    }

    /// Samples before a stretch that must be computed and thrown away.
    fn warmup(&self, taps: usize) -> usize {
        self.layers.iter().map(|l| (taps - 1) * l.dilation).sum()
    }
}

/// The sub-partial bank (see [`super::model::SubpartialBank`]): `w` `[bottleneck, N]`,
/// `b` `[N]`.
#[derive(Debug, Clone)]
pub(super) struct CpuBank {
    pub(super) w: Vec<f32>,
    pub(super) b: Vec<f32>,
    /// The frames end in measured channels, added to the pre-activations.
    pub(super) measured: bool,
}

impl CpuBank {
    /// Adds the bank to the voice `x` `[time]`: per frame the gains `exp(r·(e_f·w + b))`,
    /// per sample their sum over the sub-partials' sines in `excitation` `[time, 2K + 2N]`.
    fn add(&self, cfg: &StudentConfig, encoding: &[f32], excitation: &[f32], x: &mut [f32]) {
        let (hop, bn, n) = (cfg.hop_length, cfg.bottleneck, self.b.len());
        let (k2, first) = (cfg.excitation_channels(), 2 * cfg.excitation_harmonics);
        let mut gain = [0f32; crate::excitation::MAX_SUBPARTIALS];
        let gain = &mut gain[..n];
        for (f, (xs, e)) in x
            .chunks_exact_mut(hop)
            .zip(excitation.chunks_exact(hop * k2))
            .enumerate()
        {
            gain.copy_from_slice(&self.b);
            let frame = &encoding[f * bn..(f + 1) * bn];
            for (c, &ev) in frame.iter().enumerate() {
                for (g, &k) in gain.iter_mut().zip(&self.w[c * n..(c + 1) * n]) {
                    *g += ev * k;
                }
            }
            for g in gain.iter_mut() {
                *g = bank_gain(*g);
            }
            if self.measured {
                scale_by_measured(gain, frame);
            }
            for (xt, row) in xs.iter_mut().zip(e.chunks_exact(k2)) {
                *xt += bank_sample(gain, &row[first..]);
            }
        }
    }
}

/// The student's flows, repacked for [`CpuStudent::render`].
#[derive(Debug, Clone)]
pub struct CpuStudent {
    config: StudentConfig,
    flows: Vec<CpuFlow>,
    bank: Option<CpuBank>,
    /// The envelope's analysis, for a student with one.
    envelope: Option<super::envelope::Bands>,
    isa: Isa,
}

/// One voice's inputs to a render.
#[derive(Debug, Clone, Copy)]
pub struct VoiceInput<'a> {
    /// Logistic noise `[time]`.
    pub z: &'a [f32],
    /// Embedding frames `[frames, bottleneck]` (what the flows read: no envelope), `time =
    /// frames · hop`.
    pub encoding: &'a [f32],
    /// Excitation `[time, 2K]`, or `None` (unpitched).
    pub excitation: Option<&'a [f32]>,
}

impl CpuStudent {
    pub fn new(student: &Student) -> Result<Self> {
        let config = student.config().clone();
        let flows = student
            .flows()
            .iter()
            .map(|f| CpuFlow::new(f, &config, config.excitation_harmonics > 0))
            .collect::<Result<Vec<_>>>()?;
        let bank = student
            .bank()
            .map(|b| {
                Ok::<_, Error>(CpuBank {
                    w: host_vec(&b.w)?,
                    b: host_vec(&b.b)?,
                    measured: config.measured_subpartials,
                })
            })
            .transpose()?;
        let envelope = super::envelope::Bands::of(&config);
        Ok(Self {
            config,
            flows,
            bank,
            envelope,
            isa: Isa::detect(),
        })
    }

    /// The same with the portable kernels (for tests of the two against each other).
    pub fn with_isa(mut self, isa: Isa) -> Self {
        self.isa = isa;
        self
    }

    pub fn config(&self) -> &StudentConfig {
        &self.config
    }

    /// The kernels it runs.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    pub(super) fn flows(&self) -> &[CpuFlow] {
        &self.flows
    }

    pub(super) fn bank(&self) -> Option<&CpuBank> {
        self.bank.as_ref()
    }

    /// The envelope's analysis, for a student with a measured envelope.
    pub fn envelope(&self) -> Option<&super::envelope::Bands> {
        self.envelope.as_ref()
    }

    /// Samples a stretch is started early by (the largest of the flows').
    pub fn warmup(&self) -> usize {
        self.flows
            .iter()
            .map(|f| f.warmup(self.config.filter_length))
            .max()
            .unwrap_or(0)
    }

    /// The audio `[time]` of one voice, its time split over `threads` stretches.
    /// `stretch` caps a stretch's length (memory: about 0.6 KB per sample of a stretch
    /// at width 32); 0: no cap.
    pub fn render(
        &self,
        voice: VoiceInput<'_>,
        threads: usize,
        stretch: usize,
    ) -> Result<Vec<f32>> {
        let cfg = &self.config;
        let time = voice.z.len();
        let (hop, bn, k2) = (cfg.hop_length, cfg.bottleneck, cfg.excitation_channels());
        if time == 0 || !time.is_multiple_of(hop) || voice.encoding.len() != time / hop * bn {
            return Err(Error::Shape(format!(
                "the student renders whole frames: noise of {time} samples needs {} embedding values, got {}",
                time / hop * bn,
                voice.encoding.len()
            )));
        }
        let excitation = voice.excitation.filter(|_| k2 > 0);
        if let Some(e) = excitation
            && e.len() != time * k2
        {
            return Err(Error::Shape(format!(
                "an excitation of {} values for {time} samples of {k2} channels",
                e.len()
            )));
        }
        let threads = threads.max(1);
        let mut per = time.div_ceil(threads);
        if stretch > 0 {
            per = per.min(stretch);
        }
        let per = per.max(1);
        let stretches: Vec<Range<usize>> = (0..time)
            .step_by(per)
            .map(|t0| t0..(t0 + per).min(time))
            .collect();
        let share = (INITIAL_LOG_SCALE / self.flows.len() as f64) as f32;
        // Scratch for each thread, sized for the longest stretch, kept for every flow.
        let rows = per + self.warmup();
        let pad = self.pad();
        let mut scratch: Vec<Scratch> = (0..threads.min(stretches.len()))
            .map(|_| Scratch::new(cfg, rows, pad, time / hop))
            .collect();
        let mut x = voice.z.to_vec();
        let mut next = vec![0f32; time];
        for flow in &self.flows {
            let job = Job {
                flow,
                cfg,
                isa: self.isa,
                x: &x,
                encoding: voice.encoding,
                excitation,
                share,
                pad,
            };
            let mut parts: Vec<(&Range<usize>, &mut [f32])> = Vec::with_capacity(stretches.len());
            let mut rest: &mut [f32] = &mut next;
            for r in &stretches {
                let (head, tail) = rest.split_at_mut(r.len());
                parts.push((r, head));
                rest = tail;
            }
            // Stretches in rounds of one per thread, each writing its own part of `next`.
            for round in parts.chunks_mut(threads) {
                let Some(((r0, out0), others)) = round.split_first_mut() else {
                    continue;
                };
                let Some((s0, other_scratch)) = scratch.split_first_mut() else {
                    continue;
                };
                std::thread::scope(|scope| {
                    for ((r, out), s) in others.iter_mut().zip(other_scratch.iter_mut()) {
                        let job = &job;
                        let r = (*r).clone();
                        scope.spawn(move || job.run(r, out, s));
                    }
                    job.run((*r0).clone(), out0, s0);
                });
            }
            std::mem::swap(&mut x, &mut next);
        }
        if let (Some(bank), Some(e)) = (&self.bank, excitation) {
            bank.add(cfg, voice.encoding, e, &mut x);
        }
        Ok(x)
    }

    /// Zero rows in front of the residual stream: what the dilated taps of a stretch's
    /// first rows read (the causal padding from sample 0; thrown-away warm-up otherwise).
    fn pad(&self) -> usize {
        let taps = self.config.filter_length;
        self.flows
            .iter()
            .flat_map(|f| f.layers.iter().map(move |l| (taps - 1) * l.dilation))
            .max()
            .unwrap_or(0)
    }
}

/// Rows of a block: the products and the gate of a block stay in L2.
const BLOCK: usize = 128;

/// One thread's buffers, allocated once per render.
struct Scratch {
    /// The residual stream in and out of a layer, `[pad + rows, width]` each, the first
    /// `pad` rows zero.
    l: [Vec<f32>; 2],
    /// `[rows, width]`.
    skip: Vec<f32>,
    /// `[BLOCK, 2 · width]` and `[BLOCK, width]`.
    d: Vec<f32>,
    g: Vec<f32>,
    /// Per embedding frame, `[frames, 2 · width]`: conditioning + dilated bias.
    cond: Vec<f32>,
}

impl Scratch {
    fn new(cfg: &StudentConfig, rows: usize, pad: usize, frames: usize) -> Self {
        let w = cfg.width;
        Self {
            l: [vec![0f32; (pad + rows) * w], vec![0f32; (pad + rows) * w]],
            skip: vec![0f32; rows * w],
            d: vec![0f32; BLOCK * 2 * w],
            g: vec![0f32; BLOCK * w],
            cond: vec![0f32; frames * 2 * w],
        }
    }
}

/// One flow over one stretch.
struct Job<'a> {
    flow: &'a CpuFlow,
    cfg: &'a StudentConfig,
    isa: Isa,
    /// The flow's input, the whole voice.
    x: &'a [f32],
    encoding: &'a [f32],
    excitation: Option<&'a [f32]>,
    share: f32,
    pad: usize,
}

impl Job<'_> {
    /// Writes `x · s + μ` for `rows` into `out`.
    fn run(&self, rows: Range<usize>, out: &mut [f32], scratch: &mut Scratch) {
        let cfg = self.cfg;
        let (w, taps, hop, bn) = (cfg.width, cfg.filter_length, cfg.hop_length, cfg.bottleneck);
        let k2 = cfg.excitation_channels();
        let pad = self.pad;
        let start = rows.start.saturating_sub(self.flow.warmup(taps));
        let n = rows.end - start;
        let Scratch {
            l,
            skip,
            d,
            g,
            cond,
        } = scratch;
        let skip = &mut skip[..n * w];
        skip.fill(0.0);
        let [la, lb] = l;
        let (mut l_in, mut l_out) = (la, lb);
        // The padding rows: zero in both buffers (earlier stretches leave values there).
        l_in[..pad * w].fill(0.0);
        l_out[..pad * w].fill(0.0);

        // The start convolution over the input shifted right by one (x[t − 1], zero
        // before the note).
        let input = |t: isize| -> f32 { if t >= 1 { self.x[t as usize - 1] } else { 0.0 } };
        for r in 0..n {
            let t = (start + r) as isize;
            let row = &mut l_in[(pad + r) * w..(pad + r + 1) * w];
            row.copy_from_slice(&self.flow.start.b);
            for j in 0..taps {
                let u = input(t - (taps - 1 - j) as isize);
                for (o, &k) in row.iter_mut().zip(&self.flow.start.w[j * w..(j + 1) * w]) {
                    *o += u * k;
                }
            }
        }
        let frames = self.encoding.len() / bn;
        for layer in &self.flow.layers {
            // Per frame: the conditioning and the dilated convolution's bias.
            for (f, c) in cond.chunks_exact_mut(2 * w).enumerate().take(frames) {
                for (ch, o) in c.iter_mut().enumerate() {
                    *o = layer.cond.b[ch] + layer.dilated.b[ch];
                }
                let e = &self.encoding[f * bn..(f + 1) * bn];
                for (i, &ev) in e.iter().enumerate() {
                    for (o, &k) in c.iter_mut().zip(&layer.cond.w[i * 2 * w..(i + 1) * 2 * w]) {
                        *o += ev * k;
                    }
                }
            }
            for b0 in (0..n).step_by(BLOCK) {
                let m = BLOCK.min(n - b0);
                let d = &mut d[..m * 2 * w];
                let g = &mut g[..m * w];
                for (i, row) in d.chunks_exact_mut(2 * w).enumerate() {
                    let f = ((start + b0 + i) / hop).min(frames - 1);
                    row.copy_from_slice(&cond[f * 2 * w..(f + 1) * 2 * w]);
                }
                for j in 0..taps {
                    let from = (pad + b0 - (taps - 1 - j) * layer.dilation) * w;
                    matmul(
                        m,
                        w,
                        2 * w,
                        &l_in[from..from + m * w],
                        &layer.dilated.w[j * w * 2 * w..(j + 1) * w * 2 * w],
                        d,
                    );
                }
                if let (Some(k), Some(e)) = (&layer.exc, self.excitation) {
                    let e = &e[(start + b0) * k2..(start + b0 + m) * k2];
                    matmul(m, k2, 2 * w, e, k, d);
                }
                gate(self.isa, d, w, g);
                let rows_out = (pad + b0) * w..(pad + b0 + m) * w;
                let next = &mut l_out[rows_out.clone()];
                for (row, prev) in next.chunks_exact_mut(w).zip(l_in[rows_out].chunks_exact(w)) {
                    for ((o, &p), &bias) in row.iter_mut().zip(prev).zip(&layer.res.b) {
                        *o = p + bias;
                    }
                }
                matmul(m, w, w, g, &layer.res.w, next);
                let skip = &mut skip[b0 * w..(b0 + m) * w];
                add_rows(skip, &layer.skip.b);
                matmul(m, w, w, g, &layer.skip.w, skip);
            }
            std::mem::swap(&mut l_in, &mut l_out);
        }
        let keep = rows.start - start;
        let (wo, bo) = (&self.flow.out.w, &self.flow.out.b);
        for (i, o) in out.iter_mut().enumerate() {
            let r = keep + i;
            let h = &skip[r * w..(r + 1) * w];
            let (mut mu, mut log_s) = (bo[0], bo[1]);
            for (c, &hv) in h.iter().enumerate() {
                let hv = hv.max(0.0);
                mu += hv * wo[2 * c];
                log_s += hv * wo[2 * c + 1];
            }
            *o = self.x[rows.start + i] * (log_s + self.share).exp() + mu;
        }
    }
}

/// `dst[m, n] += lhs[m, k] · rhs[k, n]`, all row-major and contiguous.
fn matmul(m: usize, k: usize, n: usize, lhs: &[f32], rhs: &[f32], dst: &mut [f32]) {
    use crate::gemm::{View, gemm};
    gemm(
        dst,
        n,
        View::new(&lhs[..m * k], m, k),
        View::new(&rhs[..k * n], k, n),
        true,
    );
}

/// Adds `bias` to every row of `rows`.
fn add_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        for (o, &b) in row.iter_mut().zip(bias) {
            *o += b;
        }
    }
}
