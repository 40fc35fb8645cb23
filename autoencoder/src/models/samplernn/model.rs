//! SampleRNN, teacher-forced on candle tensors: what training differentiates and what the
//! incremental generator is checked against.

use candle_core::{D, DType, Device, Tensor, Var};
use candle_nn::{Init, VarBuilder};

use super::SampleRnnConfig;
use crate::{Encoder, Error, Result};

/// A GRU's weights (PyTorch's gate order: reset, update, new).
#[derive(Debug, Clone)]
pub(crate) struct Gru {
    pub w_ih: Tensor,
    pub w_hh: Tensor,
    pub b_ih: Tensor,
    pub b_hh: Tensor,
}

/// A dense layer `x · W (+ b)` over the last axis.
#[derive(Debug, Clone)]
pub(crate) struct Dense {
    pub w: Tensor,
    pub b: Option<Tensor>,
}

impl Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.broadcast_matmul(&self.w)?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

/// Each tier's recurrent state, `[batch, dim]`.
#[derive(Debug, Clone)]
pub struct Hidden {
    pub top: Tensor,
    pub mid: Tensor,
}

impl Hidden {
    pub fn zeros(batch: usize, dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        let z = Tensor::zeros((batch, dim), dtype, device)?;
        Ok(Self {
            top: z.clone(),
            mid: z,
        })
    }

    fn detach(&self) -> Self {
        Self {
            top: self.top.detach(),
            mid: self.mid.detach(),
        }
    }
}

/// The tiers and the MLP (everything but the encoder).
#[derive(Debug, Clone)]
pub(crate) struct Tiers {
    pub top_frame: Dense,
    pub top_cond: Dense,
    pub top_exc: Option<Dense>,
    pub top_bias: Tensor,
    pub top_gru: Gru,
    pub top_up: Dense,
    pub mid_frame: Dense,
    pub mid_bias: Tensor,
    pub mid_gru: Gru,
    pub mid_up: Dense,
    pub embedding: Tensor,
    pub sample_in: Dense,
    pub sample_exc: Option<Dense>,
    pub hidden: Dense,
    pub logits: Dense,
}

fn get(vb: &VarBuilder, name: &str, shape: &[usize]) -> Result<Tensor> {
    let init = if name.ends_with("biases") || name.contains("/b_") {
        Init::Const(0.0)
    } else {
        let limit = (3.0 / shape[0] as f64).sqrt();
        Init::Uniform {
            lo: -limit,
            up: limit,
        }
    };
    Ok(vb.get_with_hints(shape, name, init)?)
}

impl Tiers {
    fn new(cfg: &SampleRnnConfig, vb: &VarBuilder) -> Result<Self> {
        let shapes: std::collections::HashMap<String, Vec<usize>> =
            cfg.shapes().into_iter().collect();
        let t = |name: &str| -> Result<Tensor> {
            let shape = shapes
                .get(name)
                .ok_or_else(|| Error::Config(format!("SampleRNN has no variable {name}")))?;
            get(vb, name, shape)
        };
        let dense = |w: &str, b: Option<&str>| -> Result<Dense> {
            Ok(Dense {
                w: t(w)?,
                b: b.map(t).transpose()?,
            })
        };
        let gru = |tier: &str| -> Result<Gru> {
            Ok(Gru {
                w_ih: t(&format!("{tier}/gru/W_ih"))?,
                w_hh: t(&format!("{tier}/gru/W_hh"))?,
                b_ih: t(&format!("{tier}/gru/b_ih"))?,
                b_hh: t(&format!("{tier}/gru/b_hh"))?,
            })
        };
        let excited = cfg.excitation_harmonics > 0;
        Ok(Self {
            top_frame: dense("top/frame/W", None)?,
            top_cond: dense("top/cond/W", None)?,
            top_exc: excited.then(|| dense("top/exc/W", None)).transpose()?,
            top_bias: t("top/biases")?,
            top_gru: gru("top")?,
            top_up: dense("top/up/W", Some("top/up/biases"))?,
            mid_frame: dense("mid/frame/W", None)?,
            mid_bias: t("mid/biases")?,
            mid_gru: gru("mid")?,
            mid_up: dense("mid/up/W", Some("mid/up/biases"))?,
            embedding: t("sample/embedding")?,
            sample_in: dense("sample/in/W", Some("sample/in/biases"))?,
            sample_exc: excited.then(|| dense("sample/exc/W", None)).transpose()?,
            hidden: dense("sample/hidden/W", Some("sample/hidden/biases"))?,
            logits: dense("sample/logits/W", Some("sample/logits/biases"))?,
        })
    }
}

/// One GRU over the steps of `a` `[batch, steps, dim]` (its input already projected to
/// `dim`) from `h` `[batch, dim]`: every step's state `[batch, steps, dim]` and the last.
fn gru(g: &Gru, a: &Tensor, h: &Tensor) -> Result<(Tensor, Tensor)> {
    let (_, steps, dim) = a.dims3()?;
    let gi = a.broadcast_matmul(&g.w_ih)?.broadcast_add(&g.b_ih)?;
    let mut h = h.clone();
    let mut states = Vec::with_capacity(steps);
    for i in 0..steps {
        let x = gi.narrow(1, i, 1)?.squeeze(1)?;
        let gh = h.matmul(&g.w_hh)?.broadcast_add(&g.b_hh)?;
        let r = candle_nn::ops::sigmoid(&(x.narrow(1, 0, dim)? + gh.narrow(1, 0, dim)?)?)?;
        let z = candle_nn::ops::sigmoid(&(x.narrow(1, dim, dim)? + gh.narrow(1, dim, dim)?)?)?;
        let n = (x.narrow(1, 2 * dim, dim)? + (r * gh.narrow(1, 2 * dim, dim)?)?)?.tanh()?;
        h = ((&n - (&z * &n)?)? + (&z * &h)?)?;
        states.push(h.clone());
    }
    Ok((Tensor::stack(&states, 1)?, h))
}

/// The μ-law classes of scaled samples (`x · 128 + 128`, rounded into 0..=255).
fn classes(scaled: &Tensor) -> Result<Tensor> {
    Ok(scaled
        .affine(128.0, 128.0)?
        .round()?
        .clamp(0.0, 255.0)?
        .to_dtype(DType::U32)?)
}

/// Encoder (`ae_*` variables) and the three tiers.
#[derive(Debug)]
pub struct SampleRnn {
    config: SampleRnnConfig,
    encoder: Encoder,
    pub(crate) tiers: Tiers,
    device: Device,
}

impl SampleRnn {
    pub fn new(config: &SampleRnnConfig, vb: &VarBuilder) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config: config.clone(),
            encoder: Encoder::new(&config.encoder.encoder_config(), vb)?,
            tiers: Tiers::new(config, vb)?,
            device: vb.device().clone(),
        })
    }

    /// Builds it from the bytes of a `weights.safetensors`.
    pub fn from_safetensors(
        config: &SampleRnnConfig,
        bytes: &[u8],
        device: &Device,
    ) -> Result<Self> {
        Self::new(
            config,
            &VarBuilder::from_slice_safetensors(bytes, DType::F32, device)?,
        )
    }

    pub fn config(&self) -> &SampleRnnConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// μ-law-scaled audio `[batch, time]` → embedding `[batch, frames, bottleneck]`.
    pub fn encode(&self, scaled: &Tensor) -> Result<Tensor> {
        self.encoder.forward(scaled)
    }

    /// Teacher-forced logits `[batch, len, 256]` of samples `start..start + len` of
    /// `inputs` `[batch, time]` (each predicted from the samples before it), from the
    /// tiers' state `hidden` at `start`; returns the state at `start + len` too. `start`
    /// and `len` are whole top-tier frames; `encoding` `[batch, time / hop, bottleneck]`,
    /// `excitation` `[batch, time, 2K]` (ignored by a model without one).
    pub fn logits(
        &self,
        inputs: &Tensor,
        start: usize,
        len: usize,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
        hidden: &Hidden,
    ) -> Result<(Tensor, Hidden)> {
        let c = &self.config;
        let t = &self.tiers;
        let (batch, time) = inputs.dims2()?;
        let (f1, f2, hop) = (c.top_frame, c.mid_frame, c.encoder.ae_hop_length);
        let frames = encoding.dim(1)?;
        if !start.is_multiple_of(f1)
            || !len.is_multiple_of(f1)
            || len == 0
            || start + len > time
            || frames * hop != time
        {
            return Err(Error::Shape(format!(
                "SampleRNN runs whole frames of {f1} within {time} samples of {frames} \
                 embedding frames of {hop}; asked for {len} from {start}"
            )));
        }
        let excitation = excitation.filter(|_| c.excitation_harmonics > 0);
        let padded = inputs.pad_with_zeros(1, f1, 0)?;
        let (n1, n2) = (len / f1, len / f2);
        // Top tier: the previous frame's samples, the embedding frame and the excitation
        // at the frame's first sample.
        let top_in = padded.narrow(1, start, len)?.reshape((batch, n1, f1))?;
        let per = hop / f1;
        let held = encoding
            .unsqueeze(2)?
            .broadcast_as((batch, frames, per, encoding.dim(2)?))?
            .reshape((batch, frames * per, encoding.dim(2)?))?
            .narrow(1, start / f1, n1)?;
        let mut a1 = (t.top_frame.forward(&top_in)? + t.top_cond.forward(&held)?)?
            .broadcast_add(&t.top_bias)?;
        if let (Some(p), Some(e)) = (&t.top_exc, excitation) {
            let e_dim = e.dim(2)?;
            let at_frames = e
                .narrow(1, start, len)?
                .reshape((batch, n1, f1, e_dim))?
                .narrow(2, 0, 1)?
                .squeeze(2)?;
            a1 = (a1 + p.forward(&at_frames)?)?;
        }
        let (h1, top_last) = gru(&t.top_gru, &a1, &hidden.top)?;
        let up1 = t.top_up.forward(&h1)?.reshape((batch, n2, c.dim))?;
        // Middle tier: the previous sub-frame's samples plus the top tier's output.
        let mid_in = padded
            .narrow(1, start + f1 - f2, len)?
            .reshape((batch, n2, f2))?;
        let a2 = (t.mid_frame.forward(&mid_in)? + up1)?.broadcast_add(&t.mid_bias)?;
        let (h2, mid_last) = gru(&t.mid_gru, &a2, &hidden.mid)?;
        let up2 = t.mid_up.forward(&h2)?.reshape((batch, len, c.mlp_dim))?;
        // Sample level: the embeddings of the previous `f2` samples, oldest first.
        let embedded = (0..f2)
            .map(|o| {
                let cls = classes(&padded.narrow(1, start + f1 - f2 + o, len)?)?;
                Ok(t.embedding.index_select(&cls.flatten_all()?, 0)?.reshape((
                    batch,
                    len,
                    c.embed_dim,
                ))?)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut s = (t.sample_in.forward(&Tensor::cat(&embedded, D::Minus1)?)? + up2)?;
        if let (Some(p), Some(e)) = (&t.sample_exc, excitation) {
            s = (s + p.forward(&e.narrow(1, start, len)?)?)?;
        }
        let s = t.hidden.forward(&s.relu()?)?.relu()?;
        let logits = t.logits.forward(&s)?;
        Ok((
            logits,
            Hidden {
                top: top_last,
                mid: mid_last,
            },
        ))
    }

    /// Mean NLL of every sample of `scaled` `[batch, time]`, teacher-forced in one pass
    /// from zero state (the decoder reads `inputs`, `scaled` when `None`).
    pub fn loss(
        &self,
        scaled: &Tensor,
        inputs: Option<&Tensor>,
        excitation: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (batch, time) = scaled.dims2()?;
        let encoding = self.encode(scaled)?;
        let hidden = Hidden::zeros(
            batch,
            self.config.dim,
            self.tiers.top_bias.dtype(),
            &self.device,
        )?;
        let (logits, _) = self.logits(
            inputs.unwrap_or(scaled),
            0,
            time,
            &encoding,
            excitation,
            &hidden,
        )?;
        crate::wavenet::model::nll(&logits, scaled)
    }

    /// Truncated back-propagation through time: the crop's loss (mean NLL over every
    /// sample) and its gradient for each of `vars` a gradient reaches, taken over
    /// subsequences of `tbptt` samples that carry the tiers' state from one to the next
    /// (not its gradient). The encoder runs once on the whole crop; the subsequences'
    /// gradients with respect to the embedding are summed and taken through it once.
    pub fn tbptt(
        &self,
        scaled: &Tensor,
        inputs: Option<&Tensor>,
        excitation: Option<&Tensor>,
        vars: &[(String, Var)],
    ) -> Result<(f64, Vec<(String, Tensor)>)> {
        let (batch, time) = scaled.dims2()?;
        let inputs = inputs.unwrap_or(scaled);
        let encoding = self.encode(scaled)?;
        let held = Var::from_tensor(&encoding.detach())?;
        let mut hidden = Hidden::zeros(
            batch,
            self.config.dim,
            self.tiers.top_bias.dtype(),
            &self.device,
        )?;
        let mut sums: Vec<Option<Tensor>> = vec![None; vars.len()];
        let mut d_encoding: Option<Tensor> = None;
        // Detached: a gradient that kept its graph would keep every subsequence's
        // activations alive (and, in the optimiser's moments, every step's).
        let add = |slot: &mut Option<Tensor>, g: &Tensor| -> Result<()> {
            let g = g.detach();
            *slot = Some(match slot.take() {
                Some(s) => (s + g)?,
                None => g,
            });
            Ok(())
        };
        let mut total = 0f64;
        let mut start = 0;
        while start < time {
            let len = self.config.tbptt.min(time - start);
            let (logits, next) =
                self.logits(inputs, start, len, held.as_tensor(), excitation, &hidden)?;
            let weight = len as f64 / time as f64;
            let loss =
                (crate::wavenet::model::nll(&logits, &scaled.narrow(1, start, len)?)? * weight)?;
            total += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            let grads = loss.backward()?;
            for ((_, var), slot) in vars.iter().zip(sums.iter_mut()) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    add(slot, g)?;
                }
            }
            if let Some(g) = grads.get(held.as_tensor()) {
                add(&mut d_encoding, g)?;
            }
            hidden = next.detach();
            start += len;
        }
        if let Some(g) = d_encoding {
            // ∂L/∂θ_encoder = (∂L/∂encoding) · (∂encoding/∂θ): one backward pass through
            // the encoder of the embedding times its summed gradient.
            let grads = (encoding * g.detach())?.sum_all()?.backward()?;
            for ((_, var), slot) in vars.iter().zip(sums.iter_mut()) {
                if let Some(g) = grads.get(var.as_tensor()) {
                    add(slot, g)?;
                }
            }
        }
        let grads = vars
            .iter()
            .zip(sums)
            .filter_map(|((name, _), g)| g.map(|g| (name.clone(), g)))
            .collect();
        Ok((total, grads))
    }
}
