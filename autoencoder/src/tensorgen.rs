//! Fast WaveNet generation as batched tensor operations on any candle device: the GPU
//! decoder. A whole grid of voices advances one sample per step; each step is a fixed
//! sequence of whole-batch operations (per layer: one concatenation of the queued taps,
//! one matrix product for all taps, the conditioning, the gate, one matrix product for
//! residual and skip together, and one in-place queue write), so the number of kernel
//! launches per sample does not grow with the batch and a wide batch keeps the GPU busy.
//!
//! Sampling stays on the device: inverse-CDF over `exp((l − max) / T)` with the running
//! sum as a product with an upper-triangular matrix, against uniform draws made on the
//! host from the same per-voice streams as [`Sampler`] (uploaded once per frame). The
//! host sees the chosen classes once per frame, which is also when progress is reported
//! and cancellation checked.
//!
//! The same code runs on the CPU device, which is how it is tested against
//! [`crate::FastGenerator`] without a GPU.

use candle_core::{DType, Device, Tensor};

use crate::cpu::{Control, frames_in};
use crate::layers::Conv1d;
use crate::mulaw::{self, CLASSES};
use crate::sampling::{Sampler, Sampling};
use crate::{Error, Result, WaveNetAutoencoder};

/// A 1×1 convolution on the device: `x · w + b`.
#[derive(Debug, Clone)]
struct Dense {
    /// `[in, out]`.
    w: Tensor,
    /// `[1, out]`.
    b: Tensor,
}

impl Dense {
    fn new(conv: &Conv1d, device: &Device) -> Result<Self> {
        Self::from_parts(conv.kernel(), conv.bias(), device)
    }

    fn from_parts(kernel: &Tensor, bias: &Tensor, device: &Device) -> Result<Self> {
        Ok(Self {
            w: on(kernel, device)?,
            b: on(bias, device)?.unsqueeze(0)?,
        })
    }

    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.matmul(&self.w)?.broadcast_add(&self.b)?)
    }
}

fn on(t: &Tensor, device: &Device) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?.to_device(device)?.contiguous()?)
}

/// A causal dilated convolution's taps (no bias) with its queue geometry.
#[derive(Debug, Clone)]
struct Taps {
    /// `[k · in, out]`, tap-major: rows of tap `i` multiply the input `(k − 1 − i) · d` ago.
    w: Tensor,
    filter_length: usize,
    dilation: usize,
    cin: usize,
}

impl Taps {
    fn new(conv: &Conv1d, device: &Device) -> Result<Self> {
        let cfg = conv.config();
        Ok(Self {
            w: on(conv.kernel(), device)?,
            filter_length: cfg.filter_length,
            dilation: cfg.dilation,
            cin: conv.in_channels(),
        })
    }

    /// Slots of the ring that remembers past inputs: `(k − 1) · d`.
    fn slots(&self) -> usize {
        (self.filter_length - 1) * self.dilation
    }

    /// `Σ taps` at time `t` for input `x` `[voices, in]`, then remembers `x` in `ring`
    /// `[slots, voices, in]` (slot = time mod slots).
    fn step(&self, ring: &Tensor, t: usize, x: &Tensor) -> Result<Tensor> {
        let slots = self.slots();
        if slots == 0 {
            return Ok(x.matmul(&self.w)?);
        }
        let k = self.filter_length;
        let mut parts = Vec::with_capacity(k);
        for i in 0..k - 1 {
            let lag = (k - 1 - i) * self.dilation;
            let slot = (t + slots - lag) % slots;
            parts.push(ring.narrow(0, slot, 1)?.squeeze(0)?);
        }
        parts.push(x.clone());
        // The concatenation copies the lagged inputs before the ring is written below
        // (operations on one device run in order), so the slot read at lag (k − 1) · d,
        // which is the slot written now, is read first.
        let out = Tensor::cat(&parts, 1)?.matmul(&self.w)?;
        ring.slice_set(&x.unsqueeze(0)?, 0, t % slots)?;
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    taps: Taps,
    /// The embedding's projection; its bias includes the dilated convolution's.
    cond: Dense,
    /// Residual and skip 1×1s side by side, `[width, width + skip]` (skip only for the
    /// last layer, whose residual output is never read, as in `h512_bo16.py`).
    res_skip: Dense,
    has_res: bool,
}

/// The decoder's weights on a device, ready to generate batches of any size.
#[derive(Debug, Clone)]
pub struct TensorGenerator {
    device: Device,
    hop_length: usize,
    bottleneck: usize,
    width: usize,
    skip_width: usize,
    start: Taps,
    start_bias: Tensor,
    skip_start: Dense,
    layers: Vec<Layer>,
    out1: Dense,
    cond_map_out1: Dense,
    logits: Dense,
    /// `[256, 256]`, ones on and above the diagonal: `w · triu` is the running sum of `w`.
    triu: Tensor,
}

impl TensorGenerator {
    /// Copies the decoder's weights out of `model` onto `device`.
    pub fn new(model: &WaveNetAutoencoder, device: &Device) -> Result<Self> {
        let cfg = model.config();
        let dec = model.decoder();
        let last = dec.layers.len().saturating_sub(1);
        let layers = dec
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let bias = (layer.cond_map.bias() + layer.dilated.bias())?;
                let cond = Dense::from_parts(layer.cond_map.kernel(), &bias, device)?;
                let has_res = i != last;
                let res_skip = if has_res {
                    Dense::from_parts(
                        &Tensor::cat(&[layer.res.kernel(), layer.skip.kernel()], 1)?,
                        &Tensor::cat(&[layer.res.bias(), layer.skip.bias()], 0)?,
                        device,
                    )?
                } else {
                    Dense::new(&layer.skip, device)?
                };
                Ok(Layer {
                    taps: Taps::new(&layer.dilated, device)?,
                    cond,
                    res_skip,
                    has_res,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let triu: Vec<f32> = (0..CLASSES * CLASSES)
            .map(|i| f32::from(u8::from(i / CLASSES <= i % CLASSES)))
            .collect();
        Ok(Self {
            device: device.clone(),
            hop_length: cfg.ae_hop_length,
            bottleneck: cfg.ae_bottleneck_width,
            width: cfg.width,
            skip_width: cfg.skip_width,
            start: Taps::new(&dec.start, device)?,
            start_bias: on(dec.start.bias(), device)?.unsqueeze(0)?,
            skip_start: Dense::new(&dec.skip_start, device)?,
            layers,
            out1: Dense::new(&dec.out1, device)?,
            cond_map_out1: Dense::new(&dec.cond_map_out1, device)?,
            logits: Dense::new(&dec.logits, device)?,
            triu: Tensor::from_vec(triu, (CLASSES, CLASSES), device)?,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn hop_length(&self) -> usize {
        self.hop_length
    }

    pub fn bottleneck(&self) -> usize {
        self.bottleneck
    }

    /// The state of a new generation of `voices` voices (empty queues).
    pub fn start(&self, voices: usize) -> Result<Run> {
        if voices == 0 {
            return Err(Error::Shape("a generator needs at least one voice".into()));
        }
        let ring = |taps: &Taps| -> Result<Tensor> {
            Ok(Tensor::zeros(
                (taps.slots().max(1), voices, taps.cin),
                DType::F32,
                &self.device,
            )?)
        };
        Ok(Run {
            voices,
            t: 0,
            start_ring: ring(&self.start)?,
            rings: self
                .layers
                .iter()
                .map(|l| ring(&l.taps))
                .collect::<Result<_>>()?,
            cond: Vec::new(),
            out_cond: None,
        })
    }

    /// Sets the embedding frame `[voices, bottleneck]` the next samples are conditioned
    /// on; the per-layer projections are computed here, once per frame.
    pub fn set_frame(&self, run: &mut Run, frame: &Tensor) -> Result<()> {
        let (voices, channels) = frame.dims2()?;
        if voices != run.voices || channels != self.bottleneck {
            return Err(Error::Shape(format!(
                "an embedding frame for {} voices is [{}, {}], got [{voices}, {channels}]",
                run.voices, run.voices, self.bottleneck
            )));
        }
        let frame = frame.to_dtype(DType::F32)?.contiguous()?;
        run.cond = self
            .layers
            .iter()
            .map(|l| l.cond.apply(&frame))
            .collect::<Result<_>>()?;
        run.out_cond = Some(self.cond_map_out1.apply(&frame)?);
        Ok(())
    }

    /// Advances every voice by one sample. `scaled` `[voices, 1]` is each voice's previous
    /// sample as the network sees it (μ-law class / 128; 0 before the first). Returns the
    /// logits `[voices, 256]`.
    pub fn step(&self, run: &mut Run, scaled: &Tensor) -> Result<Tensor> {
        let (Some(out_cond), false) = (&run.out_cond, run.cond.is_empty()) else {
            return Err(Error::Shape(
                "set_frame must come before the first step".into(),
            ));
        };
        let (w, sw, t) = (self.width, self.skip_width, run.t);
        let mut l = self
            .start
            .step(&run.start_ring, t, scaled)?
            .broadcast_add(&self.start_bias)?;
        let mut s = self.skip_start.apply(&l)?;
        for ((layer, ring), cond) in self.layers.iter().zip(&run.rings).zip(&run.cond) {
            let d = (layer.taps.step(ring, t, &l)? + cond)?;
            let g = (candle_nn::ops::sigmoid(&d.narrow(1, 0, w)?)? * d.narrow(1, w, w)?.tanh()?)?;
            let rs = layer.res_skip.apply(&g)?;
            if layer.has_res {
                l = (l + rs.narrow(1, 0, w)?)?;
                s = (s + rs.narrow(1, w, sw)?)?;
            } else {
                s = (s + rs)?;
            }
        }
        let hidden = (self.out1.apply(&s.relu()?)? + out_cond)?.relu()?;
        run.t += 1;
        self.logits.apply(&hidden)
    }

    /// Draws a softmax index per voice from `logits` `[voices, 256]` as `f32` `[voices, 1]`:
    /// the argmax when greedy, else inverse-CDF sampling of `exp((l − max) / T)` against
    /// `uniforms` `[voices, 1]` in [0, 1) ([`Sampler::uniform`]), which is what
    /// [`Sampler::draw`] does with the same uniform (up to the order of the running sum).
    pub fn draw(&self, logits: &Tensor, sampling: Sampling, uniforms: &Tensor) -> Result<Tensor> {
        if sampling.greedy() {
            return Ok(logits.argmax_keepdim(1)?.to_dtype(DType::F32)?);
        }
        let max = logits.max_keepdim(1)?;
        let weights = logits
            .broadcast_sub(&max)?
            .affine(1.0 / f64::from(sampling.temperature), 0.0)?
            .exp()?;
        let cdf = weights.matmul(&self.triu)?;
        let target = (cdf.narrow(1, CLASSES - 1, 1)? * uniforms)?;
        // The first class whose running sum exceeds the target = how many do not.
        let below = cdf
            .broadcast_le(&target)?
            .to_dtype(DType::F32)?
            .sum_keepdim(1)?;
        Ok(below.minimum((CLASSES - 1) as f64)?)
    }

    /// Generates `frames × hop_length` samples for each voice from `encoding`
    /// `[voice][frame][bottleneck]`, voice `v` drawing from stream `streams[v]` of
    /// `sampling.seed` (as [`crate::CpuDecoder::generate_streams`]). `control` counts the
    /// samples done, per frame, and is checked for cancellation once per frame.
    pub fn generate_streams(
        &self,
        encoding: &[f32],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let voices = streams.len();
        let bn = self.bottleneck;
        let frames = frames_in(encoding, voices, bn)?;
        let hop = self.hop_length;
        let encoding = Tensor::from_slice(encoding, (voices, frames, bn), &self.device)?;
        let mut run = self.start(voices)?;
        let mut sampler = Sampler::with_streams(sampling, streams.iter().copied());
        let mut audio = vec![Vec::with_capacity(frames * hop); voices];
        let mut scaled = Tensor::zeros((voices, 1), DType::F32, &self.device)?;
        let mut uniforms = vec![0f32; hop * voices];
        let mut picks = Vec::with_capacity(hop);
        for f in 0..frames {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let frame = encoding.narrow(1, f, 1)?.squeeze(1)?;
            self.set_frame(&mut run, &frame)?;
            if !sampling.greedy() {
                for v in 0..voices {
                    for j in 0..hop {
                        uniforms[j * voices + v] = sampler.uniform(v);
                    }
                }
            }
            let u = Tensor::from_slice(&uniforms, (hop, voices), &self.device)?;
            picks.clear();
            for j in 0..hop {
                let logits = self.step(&mut run, &scaled)?;
                let index = self.draw(&logits, sampling, &u.narrow(0, j, 1)?.t()?)?;
                // The class / 128 the network sees next: (index − 128) / 128.
                scaled = index.affine(1.0 / 128.0, -1.0)?;
                picks.push(index);
            }
            let picks = Tensor::cat(&picks, 1)?
                .to_device(&Device::Cpu)?
                .to_vec2::<f32>()?;
            for (out, row) in audio.iter_mut().zip(picks) {
                out.extend(
                    row.iter()
                        .map(|&i| mulaw::inv_mu_law(mulaw::index_class(i as usize))),
                );
            }
            control
                .samples
                .fetch_add((voices * hop) as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(audio)
    }
}

/// The state of one generation: the queues of every causal convolution (`[slots,
/// voices, in]` rings on the device) and the current frame's conditioning.
#[derive(Debug)]
pub struct Run {
    voices: usize,
    t: usize,
    start_ring: Tensor,
    rings: Vec<Tensor>,
    /// Per layer `[voices, 2 · width]`, both biases included.
    cond: Vec<Tensor>,
    /// `[voices, skip_width]`.
    out_cond: Option<Tensor>,
}

impl Run {
    pub fn voices(&self) -> usize {
        self.voices
    }

    /// Samples generated so far.
    pub fn position(&self) -> usize {
        self.t
    }
}
