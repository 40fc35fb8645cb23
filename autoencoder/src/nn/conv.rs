//! Magenta's `masked.conv1d` on `[batch, time, channels]` tensors.

use candle_core::{Module, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::{Error, Result};

/// Padding of a convolution along time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// Output `t` sees inputs `t − (k−1)·d ..= t` (the decoder).
    Causal,
    /// TensorFlow's `SAME`: output `t` sees `t − ⌊(k−1)/2⌋·d ..= t + ⌈(k−1)/2⌉·d`, zeros past
    /// the edges (the encoder).
    Same,
}

/// Options of a [`Conv1d`] beyond its channel counts.
#[derive(Clone, Copy, Debug)]
pub struct Conv1dConfig {
    pub filter_length: usize,
    pub dilation: usize,
    pub padding: Padding,
}

impl Default for Conv1dConfig {
    fn default() -> Self {
        Self {
            filter_length: 1,
            dilation: 1,
            padding: Padding::Causal,
        }
    }
}

/// A dilated 1-D convolution with weights `NAME/W` `[1, k, in, out]` and `NAME/biases`.
///
/// Magenta computes it as `time_to_batch` + `conv2d` + `batch_to_time`; with the time
/// length a multiple of the dilation (which Magenta asserts) that is exactly an ordinary
/// dilated convolution with zero padding, which is what this computes, for any length.
/// Each of the `k` taps is a matrix product of a shifted view of the zero-padded input
/// with its `[in, out]` slice of the kernel (seen as `[k·in, out]`, tap-major, Magenta's
/// layout); the views are strided, not copied.
#[derive(Clone, Debug)]
pub struct Conv1d {
    kernel: Tensor,
    bias: Tensor,
    cfg: Conv1dConfig,
    in_channels: usize,
    out_channels: usize,
}

impl Conv1d {
    /// Loads (or, with a `VarMap` behind `vb`, creates) the variables `name/W`, `name/biases`.
    pub fn new(
        vb: &VarBuilder,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        cfg: Conv1dConfig,
    ) -> Result<Self> {
        if cfg.filter_length == 0 || cfg.dilation == 0 {
            return Err(Error::Config(format!(
                "{name}: filter_length and dilation must be at least 1"
            )));
        }
        let fan_in = cfg.filter_length * in_channels;
        let limit = (3.0 / fan_in as f64).sqrt();
        let kernel = vb.get_with_hints(
            (1, cfg.filter_length, in_channels, out_channels),
            &format!("{name}/W"),
            Init::Uniform {
                lo: -limit,
                up: limit,
            },
        )?;
        let bias = vb.get_with_hints(out_channels, &format!("{name}/biases"), Init::Const(0.0))?;
        let kernel = kernel.reshape((cfg.filter_length * in_channels, out_channels))?;
        Ok(Self {
            kernel,
            bias,
            cfg,
            in_channels,
            out_channels,
        })
    }

    /// `(left, right)` zero padding along time, in samples.
    fn padding(&self) -> (usize, usize) {
        let span = (self.cfg.filter_length - 1) * self.cfg.dilation;
        match self.cfg.padding {
            Padding::Causal => (span, 0),
            Padding::Same => {
                let left = (self.cfg.filter_length - 1) / 2 * self.cfg.dilation;
                (left, span - left)
            }
        }
    }

    /// The kernel as `[k·in, out]`, tap-major (what the fast generator repacks).
    pub fn kernel(&self) -> &Tensor {
        &self.kernel
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    pub fn config(&self) -> Conv1dConfig {
        self.cfg
    }

    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
}

impl Module for Conv1d {
    /// `[batch, time, in]` → `[batch, time, out]`.
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, time, channels) = xs.dims3()?;
        if channels != self.in_channels {
            candle_core::bail!(
                "conv1d expects {} input channels, got {channels}",
                self.in_channels
            );
        }
        if self.cfg.filter_length == 1 {
            let rows = xs.reshape((batch * time, channels))?;
            return rows
                .matmul(&self.kernel)?
                .broadcast_add(&self.bias)?
                .reshape((batch, time, self.out_channels));
        }
        // One matmul per tap on a strided view of the padded input: no copy of the
        // shifted columns (concatenating them costs twice the matmul).
        let (left, right) = self.padding();
        let padded = xs.pad_with_zeros(1, left, right)?;
        let mut sum: Option<Tensor> = None;
        for tap in 0..self.cfg.filter_length {
            let view = padded.narrow(1, tap * self.cfg.dilation, time)?;
            let kernel = self.kernel.narrow(0, tap * channels, channels)?;
            let y = view.broadcast_matmul(&kernel)?;
            sum = Some(match sum {
                None => y,
                Some(acc) => (acc + y)?,
            });
        }
        match sum {
            Some(y) => y.broadcast_add(&self.bias),
            None => candle_core::bail!("conv1d with no taps"),
        }
    }
}
