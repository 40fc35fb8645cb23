//! SampleRNN played sample by sample on the CPU: each tier runs once per its frame (the
//! top tier every `top_frame` samples, the middle every `mid_frame`), the MLP every
//! sample; every buffer is allocated when the stepper is made, none per sample.

use super::SampleRnnConfig;
use super::model::{Dense, Gru, SampleRnn};
use crate::cpu::{sigmoid, tanh};
use crate::excitation::Oscillator;
use crate::generate::{Control, FrameShape, Generator, Request, Stepper, frame_of};
use crate::mulaw::{self, CLASSES};
use crate::sampling::Sampler;
use crate::{Error, Result};

fn host(t: &candle_core::Tensor) -> Result<Vec<f32>> {
    Ok(t.flatten_all()?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1()?)
}

/// A dense layer on the host: `w` `[in][out]` row-major and its bias.
#[derive(Debug, Clone)]
struct HostDense {
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    out: usize,
}

impl HostDense {
    fn new(d: &Dense) -> Result<Self> {
        Ok(Self {
            out: d.w.dim(1)?,
            w: host(&d.w)?,
            b: d.b.as_ref().map(host).transpose()?,
        })
    }

    /// `y += x · W` (no bias).
    fn add(&self, x: &[f32], y: &mut [f32]) {
        for (&xv, row) in x.iter().zip(self.w.chunks_exact(self.out)) {
            for (o, &wv) in y.iter_mut().zip(row) {
                *o += xv * wv;
            }
        }
    }

    /// `y = b + x · W`.
    fn set(&self, x: &[f32], y: &mut [f32]) {
        match &self.b {
            Some(b) => y.copy_from_slice(b),
            None => y.fill(0.0),
        }
        self.add(x, y);
    }
}

#[derive(Debug, Clone)]
struct HostGru {
    w_ih: HostDense,
    w_hh: HostDense,
    dim: usize,
}

impl HostGru {
    fn new(g: &Gru) -> Result<Self> {
        let dense = |w: &candle_core::Tensor, b: &candle_core::Tensor| {
            HostDense::new(&Dense {
                w: w.clone(),
                b: Some(b.clone()),
            })
        };
        Ok(Self {
            w_ih: dense(&g.w_ih, &g.b_ih)?,
            w_hh: dense(&g.w_hh, &g.b_hh)?,
            dim: g.w_hh.dim(0)?,
        })
    }

    /// `h ← GRU(a, h)`; `gi`, `gh` are scratch of `3·dim`.
    fn step(&self, a: &[f32], h: &mut [f32], gi: &mut [f32], gh: &mut [f32]) {
        let d = self.dim;
        self.w_ih.set(a, gi);
        self.w_hh.set(h, gh);
        for j in 0..d {
            let r = sigmoid(gi[j] + gh[j]);
            let z = sigmoid(gi[d + j] + gh[d + j]);
            let n = tanh(gi[2 * d + j] + r * gh[2 * d + j]);
            h[j] = (1.0 - z) * n + z * h[j];
        }
    }
}

/// The tiers' weights on the host.
#[derive(Debug, Clone)]
struct Weights {
    top_frame: HostDense,
    top_cond: HostDense,
    top_exc: Option<HostDense>,
    top_bias: Vec<f32>,
    top_gru: HostGru,
    top_up: HostDense,
    mid_frame: HostDense,
    mid_bias: Vec<f32>,
    mid_gru: HostGru,
    mid_up: HostDense,
    embedding: Vec<f32>,
    sample_in: HostDense,
    sample_exc: Option<HostDense>,
    hidden: HostDense,
    logits: HostDense,
}

/// SampleRNN's generator: embedding frames (and f0) in, audio out.
#[derive(Debug, Clone)]
pub struct SampleRnnGenerator {
    config: SampleRnnConfig,
    w: Weights,
}

impl SampleRnnGenerator {
    pub fn new(model: &SampleRnn) -> Result<Self> {
        let t = &model.tiers;
        let opt = |d: &Option<Dense>| d.as_ref().map(HostDense::new).transpose();
        Ok(Self {
            config: model.config().clone(),
            w: Weights {
                top_frame: HostDense::new(&t.top_frame)?,
                top_cond: HostDense::new(&t.top_cond)?,
                top_exc: opt(&t.top_exc)?,
                top_bias: host(&t.top_bias)?,
                top_gru: HostGru::new(&t.top_gru)?,
                top_up: HostDense::new(&t.top_up)?,
                mid_frame: HostDense::new(&t.mid_frame)?,
                mid_bias: host(&t.mid_bias)?,
                mid_gru: HostGru::new(&t.mid_gru)?,
                mid_up: HostDense::new(&t.mid_up)?,
                embedding: host(&t.embedding)?,
                sample_in: HostDense::new(&t.sample_in)?,
                sample_exc: opt(&t.sample_exc)?,
                hidden: HostDense::new(&t.hidden)?,
                logits: HostDense::new(&t.logits)?,
            },
        })
    }

    /// A stepper for `voices` voices, at the first sample of a note.
    pub fn stepper(&self, voices: usize) -> SampleRnnStepper<'_> {
        let c = &self.config;
        let (d, m, e) = (c.dim, c.mlp_dim, c.excitation_channels());
        SampleRnnStepper {
            g: self,
            voices,
            t: 0,
            frame: vec![0.0; voices * c.encoder.ae_bottleneck_width],
            f0: vec![0.0; voices],
            oscillators: vec![Oscillator::new(); voices],
            excitation: vec![0.0; e.max(1)],
            history: vec![0.0; voices * c.top_frame],
            h_top: vec![0.0; voices * d],
            h_mid: vec![0.0; voices * d],
            top_up: vec![0.0; voices * c.ratio() * d],
            mid_up: vec![0.0; voices * c.mid_frame * m],
            a: vec![0.0; d],
            gi: vec![0.0; 3 * d],
            gh: vec![0.0; 3 * d],
            embedded: vec![0.0; c.mid_frame * c.embed_dim],
            s: vec![0.0; m],
            s2: vec![0.0; m],
            logits: vec![0.0; voices * CLASSES],
        }
    }
}

/// Voices advanced one sample at a time (see [`Stepper`]).
#[derive(Debug)]
pub struct SampleRnnStepper<'a> {
    g: &'a SampleRnnGenerator,
    voices: usize,
    /// The sample the next step predicts.
    t: usize,
    frame: Vec<f32>,
    f0: Vec<f32>,
    oscillators: Vec<Oscillator>,
    excitation: Vec<f32>,
    /// Each voice's last `top_frame` samples, oldest first.
    history: Vec<f32>,
    h_top: Vec<f32>,
    h_mid: Vec<f32>,
    top_up: Vec<f32>,
    mid_up: Vec<f32>,
    a: Vec<f32>,
    gi: Vec<f32>,
    gh: Vec<f32>,
    embedded: Vec<f32>,
    s: Vec<f32>,
    s2: Vec<f32>,
    logits: Vec<f32>,
}

impl SampleRnnStepper<'_> {
    /// Sets each voice's f0 (Hz, 0: unpitched) for the next steps.
    pub fn set_f0(&mut self, f0: &[f32]) -> Result<()> {
        crate::excitation::check_voices(f0, self.voices)?;
        self.f0.copy_from_slice(f0);
        Ok(())
    }

    /// The logits of every voice's next sample, `previous` being each voice's last.
    fn advance(&mut self, previous: &[f32]) -> &[f32] {
        let c = &self.g.config;
        let w = &self.g.w;
        let (f1, f2, d, m, em) = (c.top_frame, c.mid_frame, c.dim, c.mlp_dim, c.embed_dim);
        let bn = c.encoder.ae_bottleneck_width;
        let e = c.excitation_channels();
        let t = self.t;
        for (v, &last) in previous.iter().enumerate().take(self.voices) {
            let history = &mut self.history[v * f1..(v + 1) * f1];
            history.copy_within(1.., 0);
            history[f1 - 1] = last;
            if e > 0 {
                self.oscillators[v].next(self.f0[v], &mut self.excitation[..e]);
            }
            let exc = &self.excitation[..e];
            if t.is_multiple_of(f1) {
                let a = &mut self.a;
                a.copy_from_slice(&w.top_bias);
                w.top_frame.add(history, a);
                w.top_cond.add(&self.frame[v * bn..(v + 1) * bn], a);
                if let Some(p) = &w.top_exc {
                    p.add(exc, a);
                }
                let h = &mut self.h_top[v * d..(v + 1) * d];
                w.top_gru.step(a, h, &mut self.gi, &mut self.gh);
                let r = c.ratio();
                w.top_up
                    .set(h, &mut self.top_up[v * r * d..(v + 1) * r * d]);
            }
            if t.is_multiple_of(f2) {
                let k = (t % f1) / f2;
                let r = c.ratio();
                let a = &mut self.a;
                a.copy_from_slice(&self.top_up[(v * r + k) * d..(v * r + k + 1) * d]);
                for (o, &b) in a.iter_mut().zip(&w.mid_bias) {
                    *o += b;
                }
                w.mid_frame.add(&history[f1 - f2..], a);
                let h = &mut self.h_mid[v * d..(v + 1) * d];
                w.mid_gru.step(a, h, &mut self.gi, &mut self.gh);
                w.mid_up
                    .set(h, &mut self.mid_up[v * f2 * m..(v + 1) * f2 * m]);
            }
            for (o, &x) in history[f1 - f2..].iter().enumerate() {
                let class = (x * 128.0 + 128.0).round().clamp(0.0, 255.0) as usize;
                self.embedded[o * em..(o + 1) * em]
                    .copy_from_slice(&w.embedding[class * em..(class + 1) * em]);
            }
            let i = t % f2;
            w.sample_in.set(&self.embedded, &mut self.s);
            for (o, &u) in self
                .s
                .iter_mut()
                .zip(&self.mid_up[(v * f2 + i) * m..(v * f2 + i + 1) * m])
            {
                *o += u;
            }
            if let Some(p) = &w.sample_exc {
                p.add(exc, &mut self.s);
            }
            for x in self.s.iter_mut() {
                *x = x.max(0.0);
            }
            w.hidden.set(&self.s, &mut self.s2);
            for x in self.s2.iter_mut() {
                *x = x.max(0.0);
            }
            w.logits
                .set(&self.s2, &mut self.logits[v * CLASSES..(v + 1) * CLASSES]);
        }
        self.t += 1;
        &self.logits
    }
}

impl Stepper for SampleRnnStepper<'_> {
    fn set_frame(&mut self, frame: &[f32]) -> Result<()> {
        if frame.len() != self.frame.len() {
            return Err(Error::Shape(format!(
                "a frame for {} voices has {} values, got {}",
                self.voices,
                self.frame.len(),
                frame.len()
            )));
        }
        self.frame.copy_from_slice(frame);
        Ok(())
    }

    fn step(&mut self, previous: &[f32]) -> Result<Vec<f32>> {
        crate::generate::check_previous(previous, self.voices)?;
        Ok(self.advance(previous).to_vec())
    }

    fn draw(&mut self, sampler: &mut Sampler) -> Result<Vec<usize>> {
        Ok((0..self.voices)
            .map(|v| sampler.draw(v, &self.logits[v * CLASSES..(v + 1) * CLASSES]))
            .collect())
    }
}

impl Generator for SampleRnnGenerator {
    fn shape(&self) -> FrameShape {
        FrameShape {
            hop_length: self.config.encoder.ae_hop_length,
            bottleneck: self.config.encoder.ae_bottleneck_width,
            excitation_channels: self.config.excitation_channels(),
        }
    }

    fn describe(&self, _threads: usize) -> String {
        "SampleRNN on the CPU".into()
    }

    fn generate(&self, request: &Request<'_>, control: &Control) -> Result<Vec<Vec<f32>>> {
        let (hop, bn) = (self.hop_length(), self.bottleneck());
        let voices = request.streams.len();
        let frames = request.frames(bn, hop)?;
        let time = frames * hop;
        let mut stepper = self.stepper(voices);
        let mut sampler = Sampler::with_streams(request.sampling, request.streams.iter().copied());
        let mut audio = vec![Vec::with_capacity(time); voices];
        let mut frame = vec![0f32; voices * bn];
        let mut previous = vec![0f32; voices];
        let mut f0 = vec![0f32; voices];
        for t in 0..time {
            if control.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if t.is_multiple_of(hop) {
                frame_of(request.encoding, frames, t / hop, &mut frame, bn);
                stepper.set_frame(&frame)?;
            }
            if let Some(curves) = request.f0 {
                crate::excitation::curves_at(curves, time, t, &mut f0);
                stepper.set_f0(&f0)?;
            }
            let logits = stepper.advance(&previous);
            for (v, out) in audio.iter_mut().enumerate() {
                let class =
                    mulaw::index_class(sampler.draw(v, &logits[v * CLASSES..(v + 1) * CLASSES]));
                previous[v] = class as f32 / 128.0;
                out.push(mulaw::inv_mu_law(class));
            }
            control.add_samples(voices as u64);
        }
        Ok(audio)
    }
}
