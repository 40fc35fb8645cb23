//! Fast WaveNet generation as batched tensor operations on any candle device: the GPU
//! decoder. A whole grid of voices advances one sample per step; each step is a fixed
//! sequence of whole-batch operations (per layer: the concatenation of the queued taps,
//! one matrix product for all taps, the conditioning, the gate, one matrix product for
//! residual and skip together, three additions and one in-place queue write), so the
//! number of kernel launches per sample does not grow with the batch and a wide batch
//! keeps the GPU busy.
//!
//! Activations are channel-major, `[channels, voices]`, and biases are materialised per
//! voice, so every operation of a step works on contiguous tensors: in candle's CUDA
//! backend an operation on a strided view (a column slice, a broadcast bias) first
//! uploads its shape and strides, which would cost about as much as a launch. The skip
//! biases are summed into the first skip's, and `out1`'s into the per-frame conditioning.
//!
//! Sampling stays on the device: inverse-CDF over the softmax at temperature `T`, the
//! running sum as a product with an upper-triangular matrix, against uniform draws made
//! on the host from the same per-voice streams as [`Sampler`] (uploaded once per frame).
//! Sums and counts are matrix products rather than reductions (a reduction uploads its
//! layout too). The host sees the chosen classes once per frame, which is also when
//! progress is reported and cancellation checked.
//!
//! The same code runs on the CPU device, which is how it is tested against
//! [`crate::FastGenerator`] without a GPU.

mod generate;

use candle_core::{DType, Device, Tensor};

use crate::excitation::Oscillator;
use crate::mulaw::CLASSES;
use crate::nn::conv::Conv1d;
use crate::sampling::Sampling;
use crate::{Error, Result, WaveNetAutoencoder};
pub use generate::TensorStepper;

fn on(t: &Tensor, device: &Device) -> Result<Tensor> {
    Ok(t.to_dtype(DType::F32)?.to_device(device)?.contiguous()?)
}

/// A `[in, out]` kernel as the `[out, in]` matrix that multiplies channel-major inputs.
fn transposed(kernel: &Tensor, device: &Device) -> Result<Tensor> {
    Ok(on(kernel, device)?.t()?.contiguous()?)
}

/// A bias `[out]` as a column `[out, 1]`, to be materialised per voice by [`Run`].
fn column(bias: &Tensor, device: &Device) -> Result<Tensor> {
    Ok(on(bias, device)?.unsqueeze(1)?)
}

/// A causal dilated convolution's taps (no bias) with its queue geometry.
#[derive(Debug, Clone)]
struct Taps {
    /// `[out, k · in]`, tap-major columns: tap `i` multiplies the input `(k − 1 − i) · d` ago.
    w: Tensor,
    filter_length: usize,
    dilation: usize,
    cin: usize,
}

impl Taps {
    fn new(conv: &Conv1d, device: &Device) -> Result<Self> {
        let cfg = conv.config();
        Ok(Self {
            w: transposed(conv.kernel(), device)?,
            filter_length: cfg.filter_length,
            dilation: cfg.dilation,
            cin: conv.in_channels(),
        })
    }

    /// Slots of the ring that remembers past inputs: `(k − 1) · d`.
    fn slots(&self) -> usize {
        (self.filter_length - 1) * self.dilation
    }

    /// `Σ taps` at time `t` for input `x` `[in, voices]`, then remembers `x` in `ring`
    /// `[slots, in, voices]` (slot = time mod slots).
    fn step(&self, ring: &Tensor, t: usize, x: &Tensor) -> Result<Tensor> {
        let slots = self.slots();
        if slots == 0 {
            return Ok(self.w.matmul(x)?);
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
        let out = self.w.matmul(&Tensor::cat(&parts, 0)?)?;
        ring.slice_set(&x.unsqueeze(0)?, 0, t % slots)?;
        Ok(out)
    }
}

#[derive(Debug, Clone)]
struct Layer {
    taps: Taps,
    /// The embedding's projection `[2 · width, bottleneck]`; its bias (a column) includes
    /// the dilated convolution's.
    cond_w: Tensor,
    cond_b: Tensor,
    /// Residual and skip 1×1s stacked, `[width + skip, width]` (skip only for the last
    /// layer, whose residual output is never read, as in `h512_bo16.py`).
    res_skip: Tensor,
    /// The residual bias (a column); `None` for the last layer.
    res_b: Option<Tensor>,
    /// The excitation's projection `[2 · width, 2K]`, when the model has one per layer.
    exc_w: Option<Tensor>,
}

/// The decoder's weights on a device, ready to generate batches of any size.
#[derive(Debug, Clone)]
pub struct TensorGenerator {
    device: Device,
    width: usize,
    skip_width: usize,
    start: Taps,
    start_b: Tensor,
    /// The excitation's projection into the residual stream `[width, 2K]`, if any.
    exc_start: Option<Tensor>,
    /// `2K` (0: the model takes no excitation).
    shape: crate::generate::FrameShape,
    skip_start: Tensor,
    /// `skip_start`'s bias plus every layer's skip bias (a column).
    skip_b: Tensor,
    layers: Vec<Layer>,
    out1: Tensor,
    /// The output conditioning `[skip, bottleneck]`; its bias includes `out1`'s.
    out_cond_w: Tensor,
    out_cond_b: Tensor,
    /// `logits` as `[skip, 256]` (the last product is voice-major, for the softmax).
    logits: Tensor,
    logits_b: Tensor,
    /// `[256, 256]`, ones on and above the diagonal: `p · triu` is the running sum of `p`.
    triu: Tensor,
    /// `[256, 1]`: picks the last column (the total of a running sum).
    last: Tensor,
    /// `[256, 1]`: ones but the last, so a count of classes below a target is at most 255.
    all_but_last: Tensor,
    /// `[1, 256]` ones: a column repeated across the classes.
    across: Tensor,
}

impl TensorGenerator {
    /// Copies the decoder's weights out of `model` onto `device`.
    pub fn new(model: &WaveNetAutoencoder, device: &Device) -> Result<Self> {
        let cfg = model.config();
        let dec = model.decoder();
        let last_layer = dec.layers.len().saturating_sub(1);
        let mut skip_bias = dec.skip_start.bias().clone();
        let layers = dec
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                skip_bias = (&skip_bias + layer.skip.bias())?;
                let has_res = i != last_layer;
                let res_skip = if has_res {
                    Tensor::cat(&[layer.res.kernel(), layer.skip.kernel()], 1)?
                } else {
                    layer.skip.kernel().clone()
                };
                Ok(Layer {
                    taps: Taps::new(&layer.dilated, device)?,
                    cond_w: transposed(layer.cond_map.kernel(), device)?,
                    cond_b: column(&(layer.cond_map.bias() + layer.dilated.bias())?, device)?,
                    res_skip: transposed(&res_skip, device)?,
                    res_b: if has_res {
                        Some(column(layer.res.bias(), device)?)
                    } else {
                        None
                    },
                    exc_w: layer
                        .exc_map
                        .as_ref()
                        .map(|p| transposed(&p.kernel, device))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let host = |values: Vec<f32>, shape: (usize, usize)| -> Result<Tensor> {
            Ok(Tensor::from_vec(values, shape, device)?)
        };
        let triu = (0..CLASSES * CLASSES)
            .map(|i| f32::from(u8::from(i / CLASSES <= i % CLASSES)))
            .collect();
        let last = (0..CLASSES)
            .map(|i| f32::from(u8::from(i == CLASSES - 1)))
            .collect();
        let all_but_last = (0..CLASSES)
            .map(|i| f32::from(u8::from(i < CLASSES - 1)))
            .collect();
        Ok(Self {
            device: device.clone(),
            shape: crate::generate::FrameShape {
                hop_length: cfg.ae_hop_length,
                bottleneck: cfg.ae_bottleneck_width,
                excitation_channels: dec.excitation_channels(),
            },
            width: cfg.width,
            skip_width: cfg.skip_width,
            start: Taps::new(&dec.start, device)?,
            start_b: column(dec.start.bias(), device)?,
            exc_start: dec
                .exc_start
                .as_ref()
                .map(|p| transposed(&p.kernel, device))
                .transpose()?,
            skip_start: transposed(dec.skip_start.kernel(), device)?,
            skip_b: column(&skip_bias, device)?,
            layers,
            out1: transposed(dec.out1.kernel(), device)?,
            out_cond_w: transposed(dec.cond_map_out1.kernel(), device)?,
            out_cond_b: column(&(dec.cond_map_out1.bias() + dec.out1.bias())?, device)?,
            logits: on(dec.logits.kernel(), device)?,
            logits_b: on(dec.logits.bias(), device)?.unsqueeze(0)?,
            triu: host(triu, (CLASSES, CLASSES))?,
            last: host(last, (CLASSES, 1))?,
            all_but_last: host(all_but_last, (CLASSES, 1))?,
            across: Tensor::ones((1, CLASSES), DType::F32, device)?,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The state of a new generation of `voices` voices (empty queues).
    pub fn start(&self, voices: usize) -> Result<Run> {
        if voices == 0 {
            return Err(Error::Shape("a generator needs at least one voice".into()));
        }
        let ring = |taps: &Taps| -> Result<Tensor> {
            Ok(Tensor::zeros(
                (taps.slots().max(1), taps.cin, voices),
                DType::F32,
                &self.device,
            )?)
        };
        let per_voice =
            |column: &Tensor| -> Result<Tensor> { Ok(column.repeat((1, voices))?.contiguous()?) };
        Ok(Run {
            voices,
            t: 0,
            start_ring: ring(&self.start)?,
            rings: self
                .layers
                .iter()
                .map(|l| ring(&l.taps))
                .collect::<Result<_>>()?,
            start_b: per_voice(&self.start_b)?,
            skip_b: per_voice(&self.skip_b)?,
            res_b: self
                .layers
                .iter()
                .map(|l| l.res_b.as_ref().map(&per_voice).transpose())
                .collect::<Result<_>>()?,
            logits_b: self.logits_b.repeat((voices, 1))?.contiguous()?,
            cond: Vec::new(),
            out_cond: None,
            oscillators: vec![Oscillator::new(); voices],
        })
    }

    /// Channels of excitation per sample (`2K`; 0: the model takes no f0).
    pub fn excitation_channels(&self) -> usize {
        self.shape.excitation_channels
    }

    /// The excitation of the next `samples` samples of every voice, `[samples, 2K,
    /// voices]` on the device, from `f0` `[sample][voice]` in Hz; advances the run's
    /// oscillators. `None` when the model takes no excitation.
    pub fn excitation(&self, run: &mut Run, f0: &[f32], samples: usize) -> Result<Option<Tensor>> {
        let (e, voices) = (self.shape.excitation_channels, run.voices);
        if e == 0 {
            return Ok(None);
        }
        if f0.len() != samples * voices {
            return Err(Error::Shape(format!(
                "an f0 for {samples} samples of {voices} voices has {} values, got {}",
                samples * voices,
                f0.len()
            )));
        }
        let mut host = vec![0f32; samples * e * voices];
        let mut one = vec![0f32; e];
        for j in 0..samples {
            for (v, osc) in run.oscillators.iter_mut().enumerate() {
                osc.next(f0[j * voices + v], &mut one);
                for (c, &x) in one.iter().enumerate() {
                    host[(j * e + c) * voices + v] = x;
                }
            }
        }
        Ok(Some(Tensor::from_vec(
            host,
            (samples, e, voices),
            &self.device,
        )?))
    }

    /// Sets the embedding frame `[voices, bottleneck]` the next samples are conditioned
    /// on; the per-layer projections are computed here, once per frame.
    pub fn set_frame(&self, run: &mut Run, frame: &Tensor) -> Result<()> {
        let (voices, channels) = frame.dims2()?;
        if voices != run.voices || channels != self.shape.bottleneck {
            return Err(Error::Shape(format!(
                "an embedding frame for {} voices is [{}, {}], got [{voices}, {channels}]",
                run.voices, run.voices, self.shape.bottleneck
            )));
        }
        // Channel-major `[bottleneck, voices]`.
        let frame = frame.to_dtype(DType::F32)?.t()?.contiguous()?;
        run.cond = self
            .layers
            .iter()
            .map(|l| Ok(l.cond_w.matmul(&frame)?.broadcast_add(&l.cond_b)?))
            .collect::<Result<_>>()?;
        run.out_cond = Some(
            self.out_cond_w
                .matmul(&frame)?
                .broadcast_add(&self.out_cond_b)?,
        );
        Ok(())
    }

    /// Advances every voice by one sample. `scaled` `[voices, 1]` is each voice's previous
    /// sample as the network sees it (μ-law class / 128; 0 before the first). Returns the
    /// logits `[voices, 256]`.
    pub fn step(&self, run: &mut Run, scaled: &Tensor) -> Result<Tensor> {
        self.step_excited(run, scaled, None)
    }

    /// [`TensorGenerator::step`] with this sample's excitation `[2K, voices]` (a row of
    /// [`TensorGenerator::excitation`]); `None` is silence (unpitched).
    pub fn step_excited(
        &self,
        run: &mut Run,
        scaled: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<Tensor> {
        let excitation = excitation.filter(|_| self.shape.excitation_channels > 0);
        let (Some(out_cond), false) = (&run.out_cond, run.cond.is_empty()) else {
            return Err(Error::Shape(
                "set_frame must come before the first step".into(),
            ));
        };
        let (w, sw, t) = (self.width, self.skip_width, run.t);
        let x = scaled.contiguous()?.reshape((1, run.voices))?;
        let mut l = (self.start.step(&run.start_ring, t, &x)? + &run.start_b)?;
        if let (Some(w), Some(e)) = (&self.exc_start, excitation) {
            l = (l + w.matmul(e)?)?;
        }
        let mut s = (self.skip_start.matmul(&l)? + &run.skip_b)?;
        for (((layer, ring), cond), res_b) in self
            .layers
            .iter()
            .zip(&run.rings)
            .zip(&run.cond)
            .zip(&run.res_b)
        {
            let mut d = (layer.taps.step(ring, t, &l)? + cond)?;
            if let (Some(w), Some(e)) = (&layer.exc_w, excitation) {
                d = (d + w.matmul(e)?)?;
            }
            let g = (candle_nn::ops::sigmoid(&d.narrow(0, 0, w)?)? * d.narrow(0, w, w)?.tanh()?)?;
            let rs = layer.res_skip.matmul(&g)?;
            match res_b {
                Some(res_b) => {
                    l = ((l + rs.narrow(0, 0, w)?)? + res_b)?;
                    s = (s + rs.narrow(0, w, sw)?)?;
                }
                None => s = (s + rs)?,
            }
        }
        let hidden = (self.out1.matmul(&s.relu()?)? + out_cond)?.relu()?;
        run.t += 1;
        // Voice-major for the softmax over classes: `hidden` is seen transposed.
        Ok((hidden.t()?.matmul(&self.logits)? + &run.logits_b)?)
    }

    /// Draws a softmax index per voice from `logits` `[voices, 256]` as `f32` `[voices, 1]`:
    /// the argmax when greedy, else inverse-CDF sampling of the softmax at the temperature
    /// against `uniforms` `[voices, 1]` in [0, 1) ([`Sampler::uniform`]), which is what
    /// [`Sampler::draw`] does with the same uniform (up to rounding in the running sum).
    pub fn draw(&self, logits: &Tensor, sampling: Sampling, uniforms: &Tensor) -> Result<Tensor> {
        if sampling.greedy() {
            return Ok(logits.argmax_keepdim(1)?.to_dtype(DType::F32)?);
        }
        let p = candle_nn::ops::softmax_last_dim(
            &logits.affine(1.0 / f64::from(sampling.temperature), 0.0)?,
        )?;
        let cdf = p.matmul(&self.triu)?;
        let target = (cdf.matmul(&self.last)? * uniforms.contiguous()?)?;
        // The first class whose running sum exceeds the target = how many do not.
        let below = cdf
            .le(&target.matmul(&self.across)?)?
            .to_dtype(DType::F32)?;
        Ok(below.matmul(&self.all_but_last)?)
    }
}

/// The state of one generation: the queues of every causal convolution (`[slots, in,
/// voices]` rings on the device), the biases per voice and the current frame's
/// conditioning.
#[derive(Debug)]
pub struct Run {
    voices: usize,
    t: usize,
    start_ring: Tensor,
    rings: Vec<Tensor>,
    start_b: Tensor,
    skip_b: Tensor,
    res_b: Vec<Option<Tensor>>,
    logits_b: Tensor,
    /// Per layer `[2 · width, voices]`, both biases included.
    cond: Vec<Tensor>,
    /// `[skip_width, voices]`, `out1`'s bias included.
    out_cond: Option<Tensor>,
    /// Each voice's excitation oscillator (advanced on the host, once per frame).
    oscillators: Vec<Oscillator>,
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
