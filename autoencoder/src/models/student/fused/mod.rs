//! The student's fused training pass: its encoder and flows, forward and backward, by
//! hand on the CPU (as [`crate::wavenet::fused`] does for the WaveNet autoencoder: both
//! are made of [`crate::fused`]'s pieces, the encoder pass and the gated-layer stack
//! included). One crop's passes are in `crop.rs`.
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

mod crop;

use candle_core::Tensor;

use super::StudentAutoencoderConfig;
use super::model::{BANK_PREFIX, INITIAL_LOG_SCALE};
use crate::cpu::Isa;
use crate::fused::encoder::EncoderDims;
use crate::fused::index::{Conv, EncoderIndex, Variables};
use crate::fused::{add_in_order, check_crops, check_len, for_each_crop};
use crate::{Error, Result};
use crop::{Crop, Dims, Flow, Net, Work, crop_backward, crop_forward};

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

/// The student's fused forward and backward pass, with its per-crop buffers.
pub struct FusedStudent {
    model: Model,
    variables: Variables,
    threads: usize,
    params: Vec<f32>,
    works: Vec<Work>,
    /// The batch of the last forward pass (`batch`, `time`, with an excitation).
    pending: Option<(usize, usize, bool)>,
    /// The bank's match term of the last forward pass (unweighted), where it had one.
    bank_loss: Option<f64>,
}

/// The batch's sub-partial amplitudes and match weight where they apply (a bank, and
/// an excitation), checked against its size.
fn check_bank_target<'a>(
    d: &Dims,
    batch: &StudentBatch<'a>,
    excited: bool,
) -> Result<Option<(&'a [f32], f32)>> {
    let target = batch.bank_target.filter(|_| d.bank > 0 && excited);
    if let Some((a, _)) = target {
        let want = batch.batch * batch.time / d.hop * d.bank;
        if a.len() != want {
            return Err(Error::Shape(format!(
                "{} sub-partial amplitudes for {} crops of {} frames and {} sub-partials",
                a.len(),
                batch.batch,
                batch.time / d.hop,
                d.bank
            )));
        }
    }
    Ok(target)
}

/// The batch's measured channels, checked against its size (`None` for a student
/// without; required for one with them).
fn check_measured<'a>(d: &Dims, batch: &StudentBatch<'a>) -> Result<Option<&'a [f32]>> {
    if d.measured == 0 {
        return Ok(None);
    }
    let want = batch.batch * batch.time / d.hop * d.measured;
    match batch.measured {
        Some(m) if m.len() == want => Ok(Some(m)),
        m => Err(Error::Shape(format!(
            "{} measured sub-partial channels for {} crops of {} frames and {} sub-partials",
            m.map_or(0, <[f32]>::len),
            batch.batch,
            batch.time / d.hop,
            d.measured
        ))),
    }
}

/// The student's layout: what a crop's passes read beside the parameters.
struct Model {
    isa: Isa,
    dims: Dims,
    enc_index: EncoderIndex,
    flows: Vec<Flow>,
    bank: Option<Conv>,
}

impl Model {
    fn net<'a>(&'a self, params: &'a [f32]) -> Net<'a> {
        Net {
            isa: self.isa,
            dims: &self.dims,
            enc_index: &self.enc_index,
            flows: &self.flows,
            bank: self.bank.as_ref(),
            params,
        }
    }
}

impl std::fmt::Debug for FusedStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedStudent")
            .field("threads", &self.threads)
            .field("isa", &self.model.isa)
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
        let vars = Variables::new(variable_shapes(cfg), "the student");
        let e = s.excitation_channels();
        let flows = s
            .flows
            .iter()
            .enumerate()
            .map(|(f, &layers)| {
                let p = format!("flow_{}.", f + 1);
                Ok(Flow {
                    start: vars.conv(&format!("{p}startconv"))?,
                    layers: (1..=layers)
                        .map(|n| vars.gated_layer(&p, n, e > 0 && s.excitation_harmonics > 0))
                        .collect::<Result<Vec<_>>>()?,
                    out: vars.conv(&format!("{p}out"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let dims = Dims {
            enc: EncoderDims::of(&cfg.encoder.encoder_config()),
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
            .then(|| vars.conv(BANK_PREFIX.trim_end_matches('/')))
            .transpose()?;
        Ok(Self {
            model: Model {
                isa,
                dims,
                enc_index: EncoderIndex::new(&cfg.encoder.encoder_config(), &vars)?,
                flows,
                bank,
            },
            variables: vars,
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
        self.variables.load(&mut self.params, variable)
    }

    /// Plays `batch` at the parameters last [`FusedStudent::load`]ed: the audio `[batch,
    /// time]`, as [`super::Student::forward`] makes it. Keeps what
    /// [`FusedStudent::backward`] needs.
    pub fn forward(&mut self, batch: &StudentBatch) -> Result<Vec<f32>> {
        let (b, time, d) = (batch.batch, batch.time, &self.model.dims);
        if self.params.len() != self.variables.len {
            return Err(Error::Config(
                "the fused student has no parameters loaded".into(),
            ));
        }
        check_crops(b, time, d.hop)?;
        let n = b * time;
        check_len("the audio", batch.scaled.len(), n)?;
        check_len("the noise", batch.noise.len(), n)?;
        let excitation = batch.excitation.filter(|_| d.e > 0);
        if let Some(e) = excitation {
            check_len("the excitation", e.len(), n * d.e)?;
        }
        let bank_target = check_bank_target(d, batch, excitation.is_some())?;
        let measured = check_measured(d, batch)?;
        let per_crop = time / d.hop * d.measured;
        self.works.resize_with(b, Work::default);
        self.works.truncate(b);
        let mut workers = vec![(); self.threads];
        let net = self.model.net(&self.params);
        let len = self.variables.len;
        let crops = |i: usize| Crop {
            scaled: &batch.scaled[i * time..(i + 1) * time],
            noise: &batch.noise[i * time..(i + 1) * time],
            excitation: excitation.map(|e| &e[i * time * d.e..(i + 1) * time * d.e]),
            bank_target: None,
            measured: measured.map(|m| &m[i * per_crop..(i + 1) * per_crop]),
        };
        for_each_crop(&mut self.works, &mut workers, |_, i, work| {
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
        let flows = self.model.dims.dilations.len();
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
        let d = &self.model.dims;
        let excitation = batch.excitation.filter(|_| d.e > 0 && excited);
        let bank_target = check_bank_target(d, batch, excitation.is_some())?;
        let measured = check_measured(d, batch)?;
        let per_crop = time / d.hop * d.bank;
        let per_crop_measured = time / d.hop * d.measured;
        let net = self.model.net(&self.params);
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
        let mut workers = vec![(); self.threads];
        for_each_crop(&mut self.works, &mut workers, |_, i, work| {
            crop_backward(net, &crops(i), &d_audio[i * time..(i + 1) * time], work);
        })?;
        let (first, rest) = self.works.split_at_mut(1);
        add_in_order(&mut first[0].grad, rest.iter().map(|w| w.grad.as_slice()));
        let dilations = &self.model.dims.dilations;
        self.variables.gradients(&first[0].grad, |name| {
            dilations
                .iter()
                .enumerate()
                .any(|(f, dil)| name.starts_with(&format!("flow_{}.res_{}/", f + 1, dil.len())))
                || (excitation.is_none()
                    && (name.contains("/exc_map_") || name.starts_with(BANK_PREFIX)))
        })
    }
}
