//! The student's fused training pass: its encoder and flows, forward and backward, by
//! hand on the CPU (as [`crate::wavenet::fused`] does for the WaveNet autoencoder, whose
//! encoder pass and products it shares).
//!
//! The loss itself (multi-resolution spectral and power terms, a few products with DFT
//! matrices) stays with candle: [`FusedStudent::forward`] plays the batch, the caller
//! scores the audio and hands back the loss's gradient with respect to it, and
//! [`FusedStudent::backward`] turns that into every variable's gradient. Between the two
//! calls each crop's activations wait in a buffer of its own (~40 MB a crop of 4,096
//! samples for the default student), reused from step to step.
//!
//! Held to candle's autograd by the tests (`autoencoder/tests/student_fused.rs`): the
//! audio within 1e-5 of its scale, every gradient within 1e-4 of its norm. Deterministic:
//! crop `i` always runs on worker `i % threads` and the crops' gradients are added in
//! crop order, so a resumed run repeats an uninterrupted one whatever the thread count.

use std::ops::Range;

use candle_core::{Device, Tensor};

use super::StudentAutoencoderConfig;
use super::model::{
    BANK_PREFIX, BANK_RATE, INITIAL_LOG_SCALE, bank_gain, bank_sample, scale_by_measured,
};
use crate::wavenet::cpu::Isa;
use crate::wavenet::fused::encoder::{
    EncoderDims, EncoderIndex, EncoderWork, dense_grads, encode, encode_backward,
};
use crate::wavenet::fused::index::{Conv, DecoderLayer};
use crate::wavenet::fused::layers::{
    StackDims, StackInputs, StackScratch, stack_backward, stack_forward,
};
use crate::wavenet::fused::linalg::{
    Taps, View, col_sums, conv1, conv1_dw, fill_rows, gemm, project_frames, sized,
};
use crate::wavenet::fused::load_params;
use crate::wavenet::fused::pointwise::{relu_into, relu_mask};
use crate::{Error, Result};

/// One batch for [`FusedStudent::forward`], row-major.
#[derive(Clone, Copy, Debug)]
pub struct StudentBatch<'a> {
    pub batch: usize,
    pub time: usize,
    /// μ-law-scaled notes `[batch, time]`: what the encoder reads.
    pub scaled: &'a [f32],
    /// The logistic noise `z` `[batch, time]`.
    pub noise: &'a [f32],
    /// The excitation `[batch, time, e]`; ignored by a student without one.
    pub excitation: Option<&'a [f32]>,
    /// For a student with a sub-partial bank: the notes' sub-partial amplitudes `[batch,
    /// frames, N]` ([`super::model::subpartial_amplitudes`]) and the weight of the bank's
    /// match term, the mean of [`super::model::bank_match`] over them (with an excitation).
    pub bank_target: Option<(&'a [f32], f32)>,
    /// For a student with measured sub-partials: every crop's measured channels `[batch,
    /// frames, N]` ([`super::model::measured_channels`] of the crop, with its excitation),
    /// the end of each embedding frame after the encoder's channels.
    pub measured: Option<&'a [f32]>,
}

/// A flow's gated layer: the decoder's variables, by role.
type FlowLayer = DecoderLayer;

#[derive(Clone, Debug)]
struct Flow {
    start: Conv,
    layers: Vec<FlowLayer>,
    out: Conv,
}

#[derive(Clone, Debug)]
struct Dims {
    enc: EncoderDims,
    w: usize,
    bn: usize,
    hop: usize,
    taps: usize,
    /// Each flow's layers' dilations.
    dilations: Vec<Vec<usize>>,
    e: usize,
    /// Each flow's fixed share of the initial log-scale.
    share: f32,
    /// The sub-partial bank's sub-partials (0: no bank) and its first excitation channel.
    bank: usize,
    first_sub: usize,
    /// Measured channels at the end of each frame (0: none).
    measured: usize,
}

impl Dims {
    /// The flows' gated layers' sizes (the skip width is the residual width).
    fn stack(&self) -> StackDims {
        StackDims {
            w: self.w,
            sw: self.w,
            bn: self.bn,
            hop: self.hop,
            taps: self.taps,
            e: self.e,
        }
    }

    /// The batch's sub-partial amplitudes and match weight where they apply (a bank, and
    /// an excitation), checked against its size.
    fn bank_target<'a>(
        &self,
        batch: &StudentBatch<'a>,
        excited: bool,
    ) -> Result<Option<(&'a [f32], f32)>> {
        let target = batch.bank_target.filter(|_| self.bank > 0 && excited);
        if let Some((a, _)) = target {
            let want = batch.batch * batch.time / self.hop * self.bank;
            if a.len() != want {
                return Err(Error::Shape(format!(
                    "{} sub-partial amplitudes for {} crops of {} frames and {} sub-partials",
                    a.len(),
                    batch.batch,
                    batch.time / self.hop,
                    self.bank
                )));
            }
        }
        Ok(target)
    }

    /// The batch's measured channels, checked against its size (`None` for a student
    /// without; required for one with them).
    fn measured<'a>(&self, batch: &StudentBatch<'a>) -> Result<Option<&'a [f32]>> {
        if self.measured == 0 {
            return Ok(None);
        }
        let want = batch.batch * batch.time / self.hop * self.measured;
        match batch.measured {
            Some(m) if m.len() == want => Ok(Some(m)),
            m => Err(Error::Shape(format!(
                "{} measured sub-partial channels for {} crops of {} frames and {} sub-partials",
                m.map_or(0, <[f32]>::len),
                batch.batch,
                batch.time / self.hop,
                self.measured
            ))),
        }
    }

    fn causal(&self, dilation: usize) -> Taps {
        Taps {
            taps: self.taps,
            dilation,
            left: (self.taps - 1) * dilation,
        }
    }
}

/// One flow's kept activations for one crop.
#[derive(Default)]
struct FlowWork {
    /// The flow's input `x_{f−1}` shifted right by one `[time]`.
    shifted: Vec<f32>,
    /// Residual streams `l_i` `[layers, time, w]`.
    l: Vec<f32>,
    /// Gate activations `[σ | tanh]` `[layers, time, 2w]`.
    act: Vec<f32>,
    /// Skip sum `[time, w]`.
    s: Vec<f32>,
    /// `exp(log s)` per sample.
    scale: Vec<f32>,
}

/// A crop's buffers: what the backward pass reads, kept from the forward pass.
#[derive(Default)]
struct Work {
    time: usize,
    enc: EncoderWork,
    flows: Vec<FlowWork>,
    /// Each flow's input: `x_0 = z`, …, and the output last `[flows + 1, time]`.
    xs: Vec<f32>,
    // Scratch.
    a: Vec<f32>,
    frames: Vec<f32>,
    g: Vec<f32>,
    head: Vec<f32>,
    dg: Vec<f32>,
    dz: Vec<f32>,
    dl: Vec<f32>,
    ds: Vec<f32>,
    dx: Vec<f32>,
    dshift: Vec<f32>,
    /// The skip sum's gradient's column sums `[w]`.
    ds_sums: Vec<f32>,
    /// The sub-partial bank's gains `[frames, N]`, and their gradient.
    gain: Vec<f32>,
    dgain: Vec<f32>,
    /// The frames the flows and the bank read `[frames, bn]` (the encoder's channels, then
    /// any measured ones), and their gradient.
    cond: Vec<f32>,
    dcond: Vec<f32>,
    grad: Vec<f32>,
}

impl Work {
    fn prepare(&mut self, d: &Dims, time: usize, params: usize) {
        self.time = time;
        self.enc.prepare(&d.enc, time);
        let (w, frames) = (d.w, time / d.hop);
        self.flows.resize_with(d.dilations.len(), FlowWork::default);
        for (fw, dil) in self.flows.iter_mut().zip(&d.dilations) {
            sized(&mut fw.shifted, time);
            sized(&mut fw.l, dil.len() * time * w);
            sized(&mut fw.act, dil.len() * time * 2 * w);
            sized(&mut fw.s, time * w);
            sized(&mut fw.scale, time);
        }
        sized(&mut self.xs, (d.dilations.len() + 1) * time);
        sized(&mut self.a, time * w);
        sized(&mut self.frames, frames * 2 * w);
        sized(&mut self.g, time * w);
        sized(&mut self.head, time * 2);
        sized(&mut self.dg, time * w);
        sized(&mut self.dz, time * 2 * w);
        sized(&mut self.dl, time * w);
        sized(&mut self.ds, time * w);
        sized(&mut self.dx, time);
        sized(&mut self.dshift, time);
        sized(&mut self.ds_sums, d.w);
        sized(&mut self.gain, frames * d.bank);
        sized(&mut self.dgain, frames * d.bank);
        sized(&mut self.cond, frames * d.bn);
        sized(&mut self.dcond, frames * d.bn);
        self.grad.clear();
        self.grad.resize(params, 0.0);
    }
}

/// The student's fused forward and backward pass, with its per-crop buffers.
pub struct FusedStudent {
    dims: Dims,
    enc_index: EncoderIndex,
    flows: Vec<Flow>,
    bank: Option<Conv>,
    /// `(name, shape, range)` of every variable.
    variables: Vec<(String, Vec<usize>, Range<usize>)>,
    len: usize,
    isa: Isa,
    threads: usize,
    params: Vec<f32>,
    works: Vec<Work>,
    /// The batch of the last forward pass (`batch`, `time`, with an excitation).
    pending: Option<(usize, usize, bool)>,
    /// The bank's match term of the last forward pass (unweighted), where it had one.
    bank_loss: Option<f64>,
}

impl std::fmt::Debug for FusedStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedStudent")
            .field("threads", &self.threads)
            .field("isa", &self.isa)
            .finish()
    }
}

/// Every variable of a student (its encoder's and flows'), name and shape, in a fixed
/// order: the `ae_*` variables of the encoder's config, then `flow_F.…`, the excitation
/// maps, and the sub-partial bank's.
pub fn variable_shapes(cfg: &StudentAutoencoderConfig) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = crate::wavenet::weights::shapes(&cfg.encoder)
        .into_iter()
        .filter(|(name, _)| name.starts_with("ae_"))
        .collect();
    let s = &cfg.student;
    let (w, taps, bn, e) = (
        s.width,
        s.filter_length,
        s.bottleneck,
        s.excitation_channels(),
    );
    let mut conv = |name: String, k: usize, cin: usize, cout: usize| {
        out.push((format!("{name}/W"), vec![1, k, cin, cout]));
        out.push((format!("{name}/biases"), vec![cout]));
    };
    let mut maps = Vec::new();
    for (f, &layers) in s.flows.iter().enumerate() {
        let p = format!("flow_{}.", f + 1);
        conv(format!("{p}startconv"), taps, 1, w);
        for n in 1..=layers {
            conv(format!("{p}dilatedconv_{n}"), taps, w, 2 * w);
            conv(format!("{p}cond_map_{n}"), 1, bn, 2 * w);
            conv(format!("{p}res_{n}"), 1, w, w);
            conv(format!("{p}skip_{n}"), 1, w, w);
            if e > 0 {
                maps.push((format!("{p}exc_map_{n}/W"), vec![1, 1, e, 2 * w]));
            }
        }
        conv(format!("{p}out"), 1, w, 2);
    }
    out.extend(maps);
    if s.subpartial_bank {
        let n = s.excitation_subpartials;
        out.push((format!("{BANK_PREFIX}W"), vec![1, 1, bn, n]));
        out.push((format!("{BANK_PREFIX}biases"), vec![n]));
    }
    out
}

impl FusedStudent {
    /// `threads` workers (at least one), the best kernels the CPU has.
    pub fn new(cfg: &StudentAutoencoderConfig, threads: usize) -> Result<Self> {
        Self::with_isa(cfg, threads, Isa::detect())
    }

    /// [`FusedStudent::new`] with the kernels chosen (tests compare both).
    pub fn with_isa(cfg: &StudentAutoencoderConfig, threads: usize, isa: Isa) -> Result<Self> {
        cfg.validate()?;
        let s = &cfg.student;
        let mut variables = Vec::new();
        let mut at = std::collections::HashMap::new();
        let mut len = 0;
        for (name, shape) in variable_shapes(cfg) {
            let n: usize = shape.iter().product();
            at.insert(name.clone(), len..len + n);
            variables.push((name, shape, len..len + n));
            len += n;
        }
        let range = |name: String| {
            at.get(&name)
                .cloned()
                .ok_or_else(|| Error::Config(format!("the student has no variable {name}")))
        };
        let conv = |name: String| -> Result<Conv> {
            Ok(Conv {
                w: range(format!("{name}/W"))?,
                b: range(format!("{name}/biases"))?,
            })
        };
        let e = s.excitation_channels();
        let flows = s
            .flows
            .iter()
            .enumerate()
            .map(|(f, &layers)| {
                let p = format!("flow_{}.", f + 1);
                Ok(Flow {
                    start: conv(format!("{p}startconv"))?,
                    layers: (1..=layers)
                        .map(|n| {
                            Ok(FlowLayer {
                                dilated: conv(format!("{p}dilatedconv_{n}"))?,
                                cond: conv(format!("{p}cond_map_{n}"))?,
                                exc: (e > 0 && s.excitation_harmonics > 0)
                                    .then(|| range(format!("{p}exc_map_{n}/W")))
                                    .transpose()?,
                                res: conv(format!("{p}res_{n}"))?,
                                skip: conv(format!("{p}skip_{n}"))?,
                            })
                        })
                        .collect::<Result<Vec<_>>>()?,
                    out: conv(format!("{p}out"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dims = Dims {
            enc: EncoderDims::of(&cfg.encoder),
            w: s.width,
            bn: s.bottleneck,
            hop: s.hop_length,
            taps: s.filter_length,
            dilations: s
                .flows
                .iter()
                .map(|&layers| (0..layers).map(|i| s.dilation(i)).collect())
                .collect(),
            e: if s.excitation_harmonics > 0 { e } else { 0 },
            share: (INITIAL_LOG_SCALE / s.flows.len() as f64) as f32,
            bank: if s.subpartial_bank {
                s.excitation_subpartials
            } else {
                0
            },
            first_sub: 2 * s.excitation_harmonics,
            measured: s.measured_channels(),
        };
        let bank = s
            .subpartial_bank
            .then(|| conv(BANK_PREFIX.trim_end_matches('/').to_string()))
            .transpose()?;
        Ok(Self {
            enc_index: EncoderIndex::new(&cfg.encoder, &range)?,
            dims,
            flows,
            bank,
            variables,
            len,
            isa,
            threads: threads.max(1),
            params: Vec::new(),
            works: Vec::new(),
            pending: None,
            bank_loss: None,
        })
    }

    /// Copies the current values of `variables` (name → tensor, every variable of the
    /// student) into the pass's parameter vector.
    pub fn load<'a>(&mut self, variable: impl FnMut(&str) -> Option<&'a Tensor>) -> Result<()> {
        self.pending = None;
        load_params(&self.variables, self.len, &mut self.params, variable)
    }

    /// Plays `batch` at the parameters last [`FusedStudent::load`]ed: the audio `[batch,
    /// time]`, as [`super::Student::forward`] makes it. Keeps what
    /// [`FusedStudent::backward`] needs.
    pub fn forward(&mut self, batch: &StudentBatch) -> Result<Vec<f32>> {
        let (b, time, d) = (batch.batch, batch.time, &self.dims);
        if self.params.len() != self.len {
            return Err(Error::Config(
                "the fused student has no parameters loaded".into(),
            ));
        }
        if b == 0 || time < 2 || time % d.hop != 0 {
            return Err(Error::Shape(format!(
                "a training batch needs crops of a positive multiple of the hop length {} \
                 samples, got {b} crops of {time}",
                d.hop
            )));
        }
        let n = b * time;
        let check = |what: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(Error::Shape(format!(
                    "{what} has {len} values, the batch needs {want}"
                )))
            }
        };
        check("the audio", batch.scaled.len(), n)?;
        check("the noise", batch.noise.len(), n)?;
        let excitation = batch.excitation.filter(|_| d.e > 0);
        if let Some(e) = excitation {
            check("the excitation", e.len(), n * d.e)?;
        }
        let bank_target = d.bank_target(batch, excitation.is_some())?;
        let measured = d.measured(batch)?;
        let per_crop = time / d.hop * d.measured;
        self.works.resize_with(b, Work::default);
        self.works.truncate(b);
        let net = Net {
            isa: self.isa,
            dims: &self.dims,
            enc_index: &self.enc_index,
            flows: &self.flows,
            bank: self.bank.as_ref(),
            params: &self.params,
        };
        let len = self.len;
        let crops = |i: usize| Crop {
            scaled: &batch.scaled[i * time..(i + 1) * time],
            noise: &batch.noise[i * time..(i + 1) * time],
            excitation: excitation.map(|e| &e[i * time * d.e..(i + 1) * time * d.e]),
            bank_target: None,
            measured: measured.map(|m| &m[i * per_crop..(i + 1) * per_crop]),
        };
        for_each_crop(&mut self.works, self.threads, |i, work| {
            work.prepare(net.dims, time, len);
            crop_forward(net, &crops(i), work);
        })?;
        self.pending = Some((b, time, excitation.is_some()));
        self.bank_loss = bank_target.map(|(a, _)| {
            let gains = self.works.iter().flat_map(|w| &w.gain);
            let sum: f64 = gains
                .zip(a)
                .map(|(&g, &a)| f64::from(super::model::bank_match(g, a).0))
                .sum();
            sum / a.len().max(1) as f64
        });
        let flows = self.dims.dilations.len();
        let mut audio = Vec::with_capacity(n);
        for work in &self.works {
            audio.extend_from_slice(&work.xs[flows * time..(flows + 1) * time]);
        }
        Ok(audio)
    }

    /// The bank's match term (unweighted) of the last forward pass, where its batch had
    /// sub-partial amplitudes (and the student a bank, and the batch an excitation).
    pub fn bank_loss(&self) -> Option<f64> {
        self.bank_loss
    }

    /// Every variable's gradient from `d_audio` `[batch, time]` (and the bank's match
    /// term's own, weighted, where the batch has one), the loss's gradient with
    /// respect to the audio of the last [`FusedStudent::forward`] (same batch, which it
    /// must be given again). The last residual projection of each flow is absent (nothing
    /// reads its output), as are the excitation maps when the batch had no excitation.
    pub fn backward(
        &mut self,
        batch: &StudentBatch,
        d_audio: &[f32],
    ) -> Result<Vec<(String, Tensor)>> {
        let Some((b, time, excited)) = self.pending.take() else {
            return Err(Error::Config(
                "the fused student's backward pass needs a forward pass first".into(),
            ));
        };
        if batch.batch != b || batch.time != time || d_audio.len() != b * time {
            return Err(Error::Shape(format!(
                "the backward pass got {} gradients for a forward pass of {b} crops of {time}",
                d_audio.len()
            )));
        }
        let d = &self.dims;
        let excitation = batch.excitation.filter(|_| d.e > 0 && excited);
        let bank_target = d.bank_target(batch, excitation.is_some())?;
        let measured = d.measured(batch)?;
        let per_crop = time / d.hop * d.bank;
        let per_crop_measured = time / d.hop * d.measured;
        let net = Net {
            isa: self.isa,
            dims: &self.dims,
            enc_index: &self.enc_index,
            flows: &self.flows,
            bank: self.bank.as_ref(),
            params: &self.params,
        };
        let crops = |i: usize| Crop {
            scaled: &batch.scaled[i * time..(i + 1) * time],
            noise: &batch.noise[i * time..(i + 1) * time],
            excitation: excitation.map(|e| &e[i * time * d.e..(i + 1) * time * d.e]),
            // The mean over the whole batch: each gain's share is weight / count.
            bank_target: bank_target.map(|(a, weight)| {
                (
                    &a[i * per_crop..(i + 1) * per_crop],
                    weight / (b * per_crop).max(1) as f32,
                )
            }),
            measured: measured.map(|m| &m[i * per_crop_measured..(i + 1) * per_crop_measured]),
        };
        for_each_crop(&mut self.works, self.threads, |i, work| {
            crop_backward(net, &crops(i), &d_audio[i * time..(i + 1) * time], work);
        })?;
        // Added in crop order: the same sum whatever the threads did.
        let (first, rest) = self.works.split_at_mut(1);
        let total = &mut first[0].grad;
        for work in rest.iter() {
            for (a, &v) in total.iter_mut().zip(&work.grad) {
                *a += v;
            }
        }
        let total = &first[0].grad;
        let absent = |name: &str| {
            self.dims
                .dilations
                .iter()
                .enumerate()
                .any(|(f, dil)| name.starts_with(&format!("flow_{}.res_{}/", f + 1, dil.len())))
                || (excitation.is_none()
                    && (name.contains("/exc_map_") || name.starts_with(BANK_PREFIX)))
        };
        self.variables
            .iter()
            .filter(|(name, _, _)| !absent(name))
            .map(|(name, shape, range)| {
                let t = Tensor::from_slice(&total[range.clone()], shape.as_slice(), &Device::Cpu)?;
                Ok((name.clone(), t))
            })
            .collect()
    }
}

/// Runs `job(i, work_i)` for every crop, crop `i` on worker `i % threads`.
fn for_each_crop(
    works: &mut [Work],
    threads: usize,
    job: impl Fn(usize, &mut Work) + Sync,
) -> Result<()> {
    let mut shares: Vec<Vec<(usize, &mut Work)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, w) in works.iter_mut().enumerate() {
        shares[i % threads].push((i, w));
    }
    let job = &job;
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .filter(|share| !share.is_empty())
            .map(|share| {
                scope.spawn(move || {
                    for (i, w) in share {
                        job(i, w);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().map_err(|_| Error::Panicked("a training worker")))
    })
}

#[derive(Clone, Copy)]
struct Net<'a> {
    isa: Isa,
    dims: &'a Dims,
    enc_index: &'a EncoderIndex,
    flows: &'a [Flow],
    bank: Option<&'a Conv>,
    params: &'a [f32],
}

impl Net<'_> {
    fn w(&self, c: &Conv) -> &[f32] {
        &self.params[c.w.clone()]
    }
    fn b(&self, c: &Conv) -> &[f32] {
        &self.params[c.b.clone()]
    }
}

struct Crop<'a> {
    scaled: &'a [f32],
    noise: &'a [f32],
    excitation: Option<&'a [f32]>,
    /// The crop's sub-partial amplitudes and each gain's weight in the match term.
    bank_target: Option<(&'a [f32], f32)>,
    /// The crop's measured channels `[frames, N]`.
    measured: Option<&'a [f32]>,
}

/// The frames the flows and the bank read: each the encoder's channels `enc` `[frames,
/// bn − N]`, then the measured ones `[frames, N]` (none: `N = 0`).
fn fill_cond(cond: &mut [f32], enc: &[f32], measured: Option<&[f32]>, bn: usize, n: usize) {
    for (f, row) in cond.chunks_exact_mut(bn).enumerate() {
        let (learned, tail) = row.split_at_mut(bn - n);
        learned.copy_from_slice(&enc[f * (bn - n)..(f + 1) * (bn - n)]);
        if let Some(m) = measured {
            tail.copy_from_slice(&m[f * n..(f + 1) * n]);
        }
    }
}

fn crop_forward(net: Net, crop: &Crop, wk: &mut Work) {
    let d = net.dims;
    encode(
        net.isa,
        &d.enc,
        net.enc_index,
        net.params,
        crop.scaled,
        &mut wk.enc,
    );
    fill_cond(&mut wk.cond, &wk.enc.enc, crop.measured, d.bn, d.measured);
    let time = wk.time;
    wk.xs[..time].copy_from_slice(crop.noise);
    for (f, flow) in net.flows.iter().enumerate() {
        let (before, after) = wk.xs.split_at_mut((f + 1) * time);
        let x = &before[f * time..];
        let next = &mut after[..time];
        flow_forward(
            net,
            f,
            flow,
            crop,
            x,
            &mut wk.flows[f],
            Scratch {
                enc: &wk.cond,
                frames: &mut wk.frames,
                g: &mut wk.g,
                a: &mut wk.a,
                head: &mut wk.head,
            },
        );
        let scale = &mut wk.flows[f].scale;
        for (((o, sc), &xt), h) in next
            .iter_mut()
            .zip(scale.iter_mut())
            .zip(x)
            .zip(wk.head.chunks_exact(2))
        {
            let s = (h[1] + d.share).exp();
            *sc = s;
            *o = xt * s + h[0];
        }
    }
    if let (Some(bank), Some(e)) = (net.bank, crop.excitation) {
        // The sub-partial bank: gains per frame, their sines summed onto the output.
        let n = d.bank;
        project_frames(&mut wk.gain, &wk.cond, net.params, bank, d.bn, n);
        for g in wk.gain.iter_mut() {
            *g = bank_gain(*g);
        }
        if d.measured > 0 {
            for (g, frame) in wk.gain.chunks_exact_mut(n).zip(wk.cond.chunks_exact(d.bn)) {
                scale_by_measured(g, frame);
            }
        }
        let flows = net.flows.len();
        let out = &mut wk.xs[flows * time..(flows + 1) * time];
        for (t, o) in out.iter_mut().enumerate() {
            let gain = &wk.gain[t / d.hop * n..(t / d.hop + 1) * n];
            *o += bank_sample(gain, &e[t * d.e + d.first_sub..(t + 1) * d.e]);
        }
    }
}

struct Scratch<'a> {
    enc: &'a [f32],
    frames: &'a mut [f32],
    g: &'a mut [f32],
    a: &'a mut [f32],
    head: &'a mut [f32],
}

/// One flow over its input `x`: leaves `[μ, log s − share]` per sample in `sc.head`.
fn flow_forward(
    net: Net,
    f: usize,
    flow: &Flow,
    crop: &Crop,
    x: &[f32],
    fw: &mut FlowWork,
    sc: Scratch,
) {
    let (isa, d) = (net.isa, net.dims);
    let time = x.len();
    let w = d.w;
    let n = time * w;
    fw.shifted[0] = 0.0;
    fw.shifted[1..].copy_from_slice(&x[..time - 1]);
    let l0 = &mut fw.l[..n];
    fill_rows(l0, net.b(&flow.start));
    conv1(l0, &fw.shifted, net.w(&flow.start), d.causal(1), w);
    fw.s.fill(0.0);
    stack_forward(
        isa,
        d.stack(),
        &flow.layers,
        &d.dilations[f],
        net.params,
        sc.enc,
        crop.excitation,
        &mut fw.l,
        &mut fw.act,
        &mut fw.s,
        sc.g,
        sc.frames,
    );
    relu_into(isa, &fw.s, sc.a);
    fill_rows(sc.head, net.b(&flow.out));
    gemm(
        sc.head,
        2,
        View::new(sc.a, time, w),
        View::new(net.w(&flow.out), w, 2),
        true,
    );
}

fn crop_backward(net: Net, crop: &Crop, d_audio: &[f32], wk: &mut Work) {
    let (isa, d) = (net.isa, net.dims);
    let time = wk.time;
    let (w, bn) = (d.w, d.bn);
    let frames = time / d.hop;
    let grad = &mut wk.grad;
    wk.dcond.fill(0.0);
    if let (Some(bank), Some(e)) = (net.bank, crop.excitation) {
        // a_t = Σ_m g_m(f)·sin_m(t), g = exp(r·v), v = e·W + b:
        // dv_m(f) = r·g_m(f)·Σ_{t ∈ f} da_t·sin_m(t).
        let n = d.bank;
        wk.dgain.fill(0.0);
        for (t, &da) in d_audio.iter().enumerate() {
            let dg = &mut wk.dgain[t / d.hop * n..(t / d.hop + 1) * n];
            let sub = &e[t * d.e + d.first_sub..(t + 1) * d.e];
            for (o, pair) in dg.iter_mut().zip(sub.chunks_exact(2)) {
                *o += da * pair[0];
            }
        }
        if let Some((amplitudes, weight)) = crop.bank_target {
            // The match term's own gradient with respect to each gain.
            for ((o, &g), &a) in wk.dgain.iter_mut().zip(&wk.gain).zip(amplitudes) {
                *o += weight * super::model::bank_match(g, a).1;
            }
        }
        for (o, &g) in wk.dgain.iter_mut().zip(&wk.gain) {
            *o *= BANK_RATE as f32 * g;
        }
        dense_grads(grad, bank, View::new(&wk.cond, frames, bn), &wk.dgain, n);
        gemm(
            &mut wk.dcond,
            bn,
            View::new(&wk.dgain, frames, n),
            View::new(net.w(bank), bn, n).t(),
            true,
        );
    }
    wk.dx.copy_from_slice(d_audio);
    for (f, flow) in net.flows.iter().enumerate().rev() {
        let fw = &wk.flows[f];
        let x = &wk.xs[f * time..(f + 1) * time];
        // x_f = x_{f−1}·s + μ: dμ = dx, d log s = dx·x_{f−1}·s, and dx_{f−1} = dx·s.
        for (((dx, h), &xt), &s) in wk
            .dx
            .iter_mut()
            .zip(wk.head.chunks_exact_mut(2))
            .zip(x)
            .zip(&fw.scale)
        {
            let g = *dx;
            h[0] = g;
            h[1] = g * xt * s;
            *dx = g * s;
        }
        let a = &mut wk.a[..time * w];
        relu_into(isa, &fw.s, a);
        dense_grads(grad, &flow.out, View::new(a, time, w), &wk.head, 2);
        gemm(
            &mut wk.ds,
            w,
            View::new(&wk.head, time, 2),
            View::new(net.w(&flow.out), w, 2).t(),
            false,
        );
        relu_mask(isa, &mut wk.ds, &fw.s);
        wk.ds_sums.fill(0.0);
        col_sums(&mut wk.ds_sums, &wk.ds);
        stack_backward(
            isa,
            d.stack(),
            &flow.layers,
            &d.dilations[f],
            net.params,
            &StackInputs {
                l: &fw.l,
                act: &fw.act,
                enc: &wk.cond,
                excitation: crop.excitation,
            },
            &wk.ds,
            &wk.ds_sums,
            StackScratch {
                g: &mut wk.g,
                dg: &mut wk.dg,
                dz: &mut wk.dz,
                dl: &mut wk.dl,
                frames: &mut wk.frames,
            },
            &mut wk.dcond,
            grad,
        );
        // The start convolution: its kernel, and the gradient of its (shifted) input.
        let taps = d.causal(1);
        conv1_dw(
            &mut grad[flow.start.w.clone()],
            &fw.shifted,
            &wk.dl,
            taps,
            w,
        );
        col_sums(&mut grad[flow.start.b.clone()], &wk.dl);
        conv1_dx(&mut wk.dshift, &wk.dl, net.w(&flow.start), taps, w);
        // shifted[t] = x[t − 1].
        for (dx, &v) in wk.dx.iter_mut().zip(&wk.dshift[1..]) {
            *dx += v;
        }
    }
    // The encoder's share of the frames' gradient (the measured channels are data).
    let learned = bn - d.measured;
    for (o, row) in wk
        .enc
        .denc
        .chunks_exact_mut(learned)
        .zip(wk.dcond.chunks_exact(bn))
    {
        o.copy_from_slice(&row[..learned]);
    }
    encode_backward(
        isa,
        &d.enc,
        net.enc_index,
        net.params,
        crop.scaled,
        &mut wk.enc,
        grad,
    );
}

/// [`conv1`]'s input gradient: `dx[t + o_k] = Σ_k Σ_c dy[t, c]·w[k, c]` (overwrites `dx`).
fn conv1_dx(dx: &mut [f32], dy: &[f32], w: &[f32], taps: Taps, cout: usize) {
    dx.fill(0.0);
    let time = dx.len();
    for k in 0..taps.taps {
        let offset = (k * taps.dilation) as isize - taps.left as isize;
        let wk = &w[k * cout..(k + 1) * cout];
        let start = (-offset).max(0) as usize;
        let end = (time as isize - offset).clamp(0, time as isize) as usize;
        for t in start..end.max(start) {
            let row = &dy[t * cout..(t + 1) * cout];
            let v: f32 = row.iter().zip(wk).map(|(a, b)| a * b).sum();
            dx[(t as isize + offset) as usize] += v;
        }
    }
}
