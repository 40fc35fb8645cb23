//! Fast WaveNet generation (Paine et al. 2016; Magenta's `nsynth/wavenet/fastgen.py`):
//! each causal convolution keeps a queue of its past inputs, so one new sample costs
//! O(layers) instead of recomputing the whole receptive field.
//!
//! This is the reference generator: plain loops over `f32` slices, written to be obviously
//! equal to the parallel decoder. It allocates nothing per sample.

use crate::generate::Control;

use candle_core::{DType, Device, Tensor};

use crate::excitation::Oscillator;
use crate::mulaw::{self, CLASSES};
use crate::nn::conv::Conv1d;
use crate::nn::gated::Projection;
use crate::sampling::{Sampler, Sampling};
use crate::{Error, Result, WaveNetAutoencoder};

fn host_vec(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// A 1×1 convolution: `out = bias + x · kernel`, kernel `[in][out]` row-major.
#[derive(Debug, Clone)]
struct Dense {
    kernel: Vec<f32>,
    bias: Vec<f32>,
    cin: usize,
    cout: usize,
}

impl Dense {
    fn new(conv: &Conv1d) -> Result<Self> {
        Ok(Self {
            kernel: host_vec(conv.kernel())?,
            bias: host_vec(conv.bias())?,
            cin: conv.in_channels(),
            cout: conv.out_channels(),
        })
    }

    /// A bias-free projection (the excitation's).
    fn projection(p: &Projection) -> Result<Self> {
        let (cin, cout) = p.kernel.dims2()?;
        Ok(Self {
            kernel: host_vec(&p.kernel)?,
            bias: vec![0.0; cout],
            cin,
            cout,
        })
    }

    /// `out += x · kernel` (no bias).
    fn accumulate(&self, x: &[f32], out: &mut [f32]) {
        for (&xv, row) in x.iter().zip(self.kernel.chunks_exact(self.cout)) {
            for (o, &w) in out.iter_mut().zip(row) {
                *o += xv * w;
            }
        }
    }

    /// `out = bias + x · kernel`.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        self.accumulate(x, out);
    }
}

/// A causal dilated convolution with a queue of its last `(k − 1) · d` inputs per voice
/// (Magenta's `causal_linear` keeps two FIFOs of length `d` for `k = 3`; a ring of `2d`
/// slots is the same thing for any `k`).
#[derive(Debug, Clone)]
struct Queued {
    /// `[k][in][out]`; tap `k − 1` is the current input, tap `i` lags `(k − 1 − i) · d`.
    taps: Vec<Dense>,
    bias: Vec<f32>,
    dilation: usize,
    /// `[slot][voice][in]`, slot = time mod `(k − 1) · d`.
    history: Vec<f32>,
    slots: usize,
}

impl Queued {
    fn new(conv: &Conv1d, voices: usize) -> Result<Self> {
        let cfg = conv.config();
        let (cin, cout) = (conv.in_channels(), conv.out_channels());
        let kernel = host_vec(conv.kernel())?;
        let taps = kernel
            .chunks_exact(cin * cout)
            .map(|k| Dense {
                kernel: k.to_vec(),
                bias: Vec::new(),
                cin,
                cout,
            })
            .collect();
        let slots = (cfg.filter_length - 1) * cfg.dilation;
        Ok(Self {
            taps,
            bias: host_vec(conv.bias())?,
            dilation: cfg.dilation,
            history: vec![0.0; slots * voices * cin],
            slots,
        })
    }

    fn cin(&self) -> usize {
        self.taps[0].cin
    }

    /// `out = bias + Σ taps` for `voice` at time `t`, then remembers `x` as input `t`.
    fn step(&mut self, t: usize, voice: usize, voices: usize, x: &[f32], out: &mut [f32]) {
        let cin = self.cin();
        let k = self.taps.len();
        out.copy_from_slice(&self.bias);
        for (i, tap) in self.taps.iter().enumerate() {
            let lag = (k - 1 - i) * self.dilation;
            if lag == 0 {
                tap.accumulate(x, out);
            } else {
                let slot = (t + self.slots - lag) % self.slots;
                let at = (slot * voices + voice) * cin;
                tap.accumulate(&self.history[at..at + cin], out);
            }
        }
        if self.slots > 0 {
            let at = ((t % self.slots) * voices + voice) * cin;
            self.history[at..at + cin].copy_from_slice(x);
        }
    }

    fn reset(&mut self) {
        self.history.fill(0.0);
    }
}

#[derive(Debug, Clone)]
struct Layer {
    dilated: Queued,
    cond_map: Dense,
    exc_map: Option<Dense>,
    res: Dense,
    skip: Dense,
}

/// Incremental decoder for a batch of voices that advance one sample at a time together.
#[derive(Debug, Clone)]
pub struct FastGenerator {
    voices: usize,
    hop_length: usize,
    bottleneck: usize,
    width: usize,
    skip_width: usize,
    /// Samples generated since the last reset.
    t: usize,
    start: Queued,
    exc_start: Option<Dense>,
    skip_start: Dense,
    layers: Vec<Layer>,
    out1: Dense,
    cond_map_out1: Dense,
    logits: Dense,
    /// Per layer `[voice][2 · width]`: the conditioning of the current frame, bias included.
    layer_cond: Vec<Vec<f32>>,
    /// `[voice][skip_width]`.
    out_cond: Vec<f32>,
    // Scratch, one voice at a time.
    l: Vec<f32>,
    s: Vec<f32>,
    d: Vec<f32>,
    g: Vec<f32>,
    tmp: Vec<f32>,
    /// `[voice][256]` logits of the last step.
    out_logits: Vec<f32>,
    /// `[voice]`: the f0 (Hz) of the next samples, and each voice's oscillator.
    f0: Vec<f32>,
    oscillators: Vec<Oscillator>,
    /// `[2K]` scratch: the current sample's excitation.
    excitation: Vec<f32>,
}

impl FastGenerator {
    /// Copies the decoder's weights out of `model` for `voices` voices.
    pub fn new(model: &WaveNetAutoencoder, voices: usize) -> Result<Self> {
        if voices == 0 {
            return Err(Error::Shape("a generator needs at least one voice".into()));
        }
        let cfg = model.config();
        let dec = model.decoder();
        let layers = dec
            .layers
            .iter()
            .map(|layer| {
                Ok(Layer {
                    dilated: Queued::new(&layer.dilated, voices)?,
                    cond_map: Dense::new(&layer.cond_map)?,
                    exc_map: layer.exc_map.as_ref().map(Dense::projection).transpose()?,
                    res: Dense::new(&layer.res)?,
                    skip: Dense::new(&layer.skip)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (w, sw) = (cfg.width, cfg.skip_width);
        Ok(Self {
            voices,
            hop_length: cfg.ae_hop_length,
            bottleneck: cfg.ae_bottleneck_width,
            width: w,
            skip_width: sw,
            t: 0,
            start: Queued::new(&dec.start, voices)?,
            exc_start: dec.exc_start.as_ref().map(Dense::projection).transpose()?,
            skip_start: Dense::new(&dec.skip_start)?,
            layer_cond: vec![vec![0.0; voices * 2 * w]; layers.len()],
            layers,
            out1: Dense::new(&dec.out1)?,
            cond_map_out1: Dense::new(&dec.cond_map_out1)?,
            logits: Dense::new(&dec.logits)?,
            out_cond: vec![0.0; voices * sw],
            l: vec![0.0; w],
            s: vec![0.0; sw],
            d: vec![0.0; 2 * w],
            g: vec![0.0; w],
            tmp: vec![0.0; w.max(sw)],
            out_logits: vec![0.0; voices * CLASSES],
            f0: vec![0.0; voices],
            oscillators: vec![Oscillator::new(); voices],
            excitation: vec![0.0; dec.excitation_channels()],
        })
    }

    /// Sets each voice's f0 in Hz (`[voice]`; 0 = unpitched) for the next samples, until
    /// set again. Models without an excitation ignore it.
    pub fn set_f0(&mut self, f0_hz: &[f32]) -> Result<()> {
        crate::excitation::check_voices(f0_hz, self.voices)?;
        self.f0.copy_from_slice(f0_hz);
        Ok(())
    }

    pub fn voices(&self) -> usize {
        self.voices
    }

    /// Samples generated since the last reset.
    pub fn position(&self) -> usize {
        self.t
    }

    /// Empties every queue: the next step is sample 0 of a new note.
    pub fn reset(&mut self) {
        self.t = 0;
        self.oscillators.fill(Oscillator::new());
        self.start.reset();
        self.layers.iter_mut().for_each(|l| l.dilated.reset());
    }

    /// Sets the embedding frame the next samples are conditioned on: `frame` is
    /// `[voice][bottleneck]`. The per-layer projections are computed here, once per frame.
    pub fn set_frame(&mut self, frame: &[f32]) -> Result<()> {
        if frame.len() != self.voices * self.bottleneck {
            return Err(Error::Shape(format!(
                "an embedding frame for {} voices has {} values, got {}",
                self.voices,
                self.voices * self.bottleneck,
                frame.len()
            )));
        }
        let two_w = 2 * self.width;
        for (layer, cond) in self.layers.iter().zip(&mut self.layer_cond) {
            for (z, out) in frame
                .chunks_exact(self.bottleneck)
                .zip(cond.chunks_exact_mut(two_w))
            {
                layer.cond_map.apply(z, out);
            }
        }
        for (z, out) in frame
            .chunks_exact(self.bottleneck)
            .zip(self.out_cond.chunks_exact_mut(self.skip_width))
        {
            self.cond_map_out1.apply(z, out);
        }
        Ok(())
    }

    /// Advances every voice by one sample. `scaled[v]` is voice `v`'s previous sample as
    /// the network sees it (μ-law class / 128; 0 before the first sample). Returns the
    /// logits `[voice][256]` of the current sample.
    pub fn step(&mut self, scaled: &[f32]) -> &[f32] {
        debug_assert_eq!(scaled.len(), self.voices);
        let (w, sw, t, voices) = (self.width, self.skip_width, self.t, self.voices);
        for (v, &x) in scaled.iter().enumerate() {
            let excited = !self.excitation.is_empty();
            if excited {
                self.oscillators[v].next(self.f0[v], &mut self.excitation);
            }
            self.start.step(t, v, voices, &[x], &mut self.l);
            if let Some(p) = &self.exc_start {
                p.accumulate(&self.excitation, &mut self.l);
            }
            self.skip_start.apply(&self.l, &mut self.s);
            let last = self.layers.len() - 1;
            for (i, (layer, cond)) in self.layers.iter_mut().zip(&self.layer_cond).enumerate() {
                layer.dilated.step(t, v, voices, &self.l, &mut self.d);
                if let Some(p) = &layer.exc_map {
                    p.accumulate(&self.excitation, &mut self.d);
                }
                let cond = &cond[v * 2 * w..(v + 1) * 2 * w];
                self.d.iter_mut().zip(cond).for_each(|(d, c)| *d += c);
                let (sig, tanh) = self.d.split_at(w);
                for ((g, &a), &b) in self.g.iter_mut().zip(sig).zip(tanh) {
                    *g = sigmoid(a) * b.tanh();
                }
                // The last layer's residual output is never read (as in h512_bo16.py).
                if i != last {
                    layer.res.apply(&self.g, &mut self.tmp[..w]);
                    self.l.iter_mut().zip(&self.tmp).for_each(|(l, r)| *l += r);
                }
                layer.skip.apply(&self.g, &mut self.tmp[..sw]);
                self.s.iter_mut().zip(&self.tmp).for_each(|(s, r)| *s += r);
            }
            self.s.iter_mut().for_each(|s| *s = s.max(0.0));
            let hidden = &mut self.tmp[..sw];
            self.out1.apply(&self.s, hidden);
            let cond = &self.out_cond[v * sw..(v + 1) * sw];
            hidden
                .iter_mut()
                .zip(cond)
                .for_each(|(h, c)| *h = (*h + c).max(0.0));
            self.logits
                .apply(hidden, &mut self.out_logits[v * CLASSES..(v + 1) * CLASSES]);
        }
        self.t += 1;
        &self.out_logits
    }

    /// Generates audio for every voice from `encoding` `[voice][frame][bottleneck]`:
    /// `frames × hop_length` samples per voice, each drawn from the softmax (voice `v` from
    /// random stream `v`) and fed back; `f0` is each voice's f0 curve `[voice][sample]` in
    /// Hz, or `None` for unpitched. The reference keeps this one entry rather than the
    /// [`crate::Generator`] contract: it holds its voices' queues, so it generates through
    /// `&mut self`. As every generator, it counts the samples it finishes in `control` and
    /// stops with [`Error::Cancelled`] once `control` is cancelled (checked once per frame).
    pub fn generate(
        &mut self,
        encoding: &[f32],
        f0: Option<&[f32]>,
        sampling: Sampling,
        control: &Control,
    ) -> Result<Vec<Vec<f32>>> {
        let frames = crate::generate::frames_in(encoding, self.voices, self.bottleneck)?;
        let total = frames * self.hop_length;
        crate::excitation::check_curves(f0, self.voices, total)?;
        self.reset();
        self.f0.fill(0.0);
        let mut sampler = Sampler::new(sampling, self.voices);
        let mut audio = vec![Vec::with_capacity(total); self.voices];
        let mut frame = vec![0f32; self.voices * self.bottleneck];
        let mut previous = vec![0f32; self.voices];
        for f in 0..frames {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            crate::generate::frame_of(encoding, frames, f, &mut frame, self.bottleneck);
            self.set_frame(&frame)?;
            for i in 0..self.hop_length {
                if let Some(f0) = f0 {
                    crate::excitation::curves_at(f0, total, f * self.hop_length + i, &mut self.f0);
                }
                let logits = self.step(&previous);
                for (v, out) in audio.iter_mut().enumerate() {
                    let class = mulaw::index_class(
                        sampler.draw(v, &logits[v * CLASSES..(v + 1) * CLASSES]),
                    );
                    // Magenta feeds back inv_mu_law(class) and re-quantises it; that round
                    // trip is the identity on classes (tested in `mulaw`).
                    previous[v] = class as f32 / 128.0;
                    out.push(mulaw::inv_mu_law(class));
                }
                control.add_samples(self.voices as u64);
            }
        }
        Ok(audio)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl crate::generate::Stepper for FastGenerator {
    fn set_frame(&mut self, frame: &[f32]) -> Result<()> {
        FastGenerator::set_frame(self, frame)
    }

    fn step(&mut self, previous: &[f32]) -> Result<Vec<f32>> {
        crate::generate::check_previous(previous, self.voices)?;
        Ok(FastGenerator::step(self, previous).to_vec())
    }

    fn draw(&mut self, sampler: &mut crate::sampling::Sampler) -> Result<Vec<usize>> {
        let classes = crate::mulaw::CLASSES;
        Ok((0..self.voices)
            .map(|v| sampler.draw(v, &self.out_logits[v * classes..(v + 1) * classes]))
            .collect())
    }
}
