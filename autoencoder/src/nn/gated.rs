//! The gated residual layer of WaveNet (van den Oord et al. 2016) as `h512_bo16.py`
//! builds it, and its helpers: what the WaveNet decoder and the student's flows are
//! stacks of.

use candle_core::{D, Module, Tensor};
use candle_nn::VarBuilder;

use super::conv::{Conv1d, Conv1dConfig, Padding};
use crate::{Error, Result};

/// `x += encoding`, each embedding frame held for `hop` samples
/// (Magenta's `Config._condition`).
pub(crate) fn condition(xs: &Tensor, frames: &Tensor) -> Result<Tensor> {
    let (batch, time, channels) = xs.dims3()?;
    let (frame_batch, frame_count, frame_channels) = frames.dims3()?;
    if frame_batch != batch || frame_channels != channels || time % frame_count.max(1) != 0 {
        return Err(Error::Shape(format!(
            "cannot condition [{batch}, {time}, {channels}] on embedding frames \
             [{frame_batch}, {frame_count}, {frame_channels}]"
        )));
    }
    let hop = time / frame_count;
    let held = xs
        .reshape((batch, frame_count, hop, channels))?
        .broadcast_add(&frames.reshape((batch, frame_count, 1, channels))?)?;
    Ok(held.reshape((batch, time, channels))?)
}

/// Magenta's `masked.shift_right`: a zero in front, the last sample dropped.
pub(crate) fn shift_right(xs: &Tensor) -> Result<Tensor> {
    let time = xs.dim(1)?;
    Ok(xs.pad_with_zeros(1, 1, 0)?.narrow(1, 0, time)?)
}

pub(crate) fn one_by_one(vb: &VarBuilder, name: &str, cin: usize, cout: usize) -> Result<Conv1d> {
    Conv1d::new(vb, name, cin, cout, Conv1dConfig::default())
}

/// Splits `[.., 2w]` into its sigmoid and tanh halves: `σ(first half) ⊙ tanh(second half)`,
/// the order of `h512_bo16.py`.
///
/// `tanh(x)` is computed as `2σ(2x) − 1` (the same function; rounding differs by a few
/// ulps) because candle's sigmoid is vectorised and its tanh is not: 3× faster here.
pub(crate) fn gate(xs: &Tensor, width: usize) -> Result<Tensor> {
    let sigmoid = candle_nn::ops::sigmoid(&xs.narrow(D::Minus1, 0, width)?)?;
    let doubled = xs.narrow(D::Minus1, width, width)?.affine(2.0, 0.0)?;
    let tanh = candle_nn::ops::sigmoid(&doubled)?.affine(2.0, -1.0)?;
    Ok((sigmoid * tanh)?)
}
/// A bias-free 1×1 projection `NAME/W` `[1, 1, in, out]` (Timbrel's excitation maps).
#[derive(Clone, Debug)]
pub(crate) struct Projection {
    /// `[in, out]`.
    pub(crate) kernel: Tensor,
}

impl Projection {
    pub(crate) fn new(vb: &VarBuilder, name: &str, cin: usize, cout: usize) -> Result<Self> {
        let limit = (3.0 / cin as f64).sqrt();
        let kernel = vb.get_with_hints(
            (1, 1, cin, cout),
            &format!("{name}/W"),
            candle_nn::Init::Uniform {
                lo: -limit,
                up: limit,
            },
        )?;
        Ok(Self {
            kernel: kernel.reshape((cin, cout))?,
        })
    }

    /// `[batch, time, in]` → `[batch, time, out]`.
    pub(crate) fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let (batch, time, cin) = xs.dims3()?;
        let cout = self.kernel.dim(1)?;
        Ok(xs
            .reshape((batch * time, cin))?
            .matmul(&self.kernel)?
            .reshape((batch, time, cout))?)
    }
}
/// The sizes of a [`GatedLayer`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct GatedDims {
    /// Residual channels (the gate has twice as many).
    pub width: usize,
    /// Skip channels.
    pub skip_width: usize,
    /// Embedding channels the layer is conditioned on.
    pub bottleneck: usize,
    /// Excitation channels projected into the gate (`exc_map_N`); 0: no projection.
    pub excitation: usize,
    /// Taps of the dilated causal convolution.
    pub filter_length: usize,
}

/// One gated residual layer: `d = dilated(l) (+ exc_map(e)) + cond_map(frames)`, `g =
/// σ(d₁) ⊙ tanh(d₂)`, `l + res(g)` on to the next layer and `skip(g)` to the skip sum.
#[derive(Debug)]
pub(crate) struct GatedLayer {
    pub(crate) dilated: Conv1d,
    pub(crate) cond_map: Conv1d,
    /// The excitation's projection into the gate (`exc_map_N`), when the model has one.
    pub(crate) exc_map: Option<Projection>,
    pub(crate) res: Conv1d,
    pub(crate) skip: Conv1d,
}

impl GatedLayer {
    /// Layer `n` (from 1) of a stack, its variables `dilatedconv_n`, `cond_map_n`,
    /// `exc_map_n`, `res_n` and `skip_n` behind `vb`.
    pub(crate) fn new(vb: &VarBuilder, n: usize, dims: GatedDims, dilation: usize) -> Result<Self> {
        let GatedDims {
            width: w,
            skip_width: sw,
            bottleneck: bn,
            excitation: e,
            filter_length,
        } = dims;
        let causal = Conv1dConfig {
            filter_length,
            dilation,
            padding: Padding::Causal,
        };
        Ok(Self {
            dilated: Conv1d::new(vb, &format!("dilatedconv_{n}"), w, 2 * w, causal)?,
            cond_map: one_by_one(vb, &format!("cond_map_{n}"), bn, 2 * w)?,
            exc_map: (e > 0)
                .then(|| Projection::new(vb, &format!("exc_map_{n}"), e, 2 * w))
                .transpose()?,
            res: one_by_one(vb, &format!("res_{n}"), w, w)?,
            skip: one_by_one(vb, &format!("skip_{n}"), w, sw)?,
        })
    }

    /// The residual stream `l` `[batch, time, width]` through the layer, conditioned on
    /// `encoding` `[batch, frames, bottleneck]` (and `excitation` `[batch, time, e]` where
    /// the layer projects one): `(l + res(g), skip(g))`.
    pub(crate) fn forward(
        &self,
        l: &Tensor,
        encoding: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let mut d = self.dilated.forward(l)?;
        if let (Some(p), Some(e)) = (&self.exc_map, excitation) {
            d = (d + p.forward(e)?)?;
        }
        let d = condition(&d, &self.cond_map.forward(encoding)?)?;
        let g = gate(&d, self.dilated.out_channels() / 2)?;
        Ok(((l + self.res.forward(&g)?)?, self.skip.forward(&g)?))
    }
}
