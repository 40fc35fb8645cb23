//! Where each variable lives in the flat parameter (and gradient) vector: its range by
//! name ([`Variables`], in the order of a family's shapes) and by role (a convolution's
//! kernel and bias, an encoder layer, a gated layer, the whole encoder).

use std::collections::HashMap;
use std::ops::Range;

use candle_core::Tensor;

use crate::nn::encoder::EncoderConfig;
use crate::{Error, Result};

/// A convolution's kernel `[taps·in, out]` and bias `[out]`.
#[derive(Clone, Debug)]
pub(crate) struct Conv {
    pub w: Range<usize>,
    pub b: Range<usize>,
}

#[derive(Clone, Debug)]
pub(crate) struct EncoderLayer {
    pub dilated: Conv,
    pub res: Conv,
}

/// One gated residual layer's variables (the decoder's, and a student flow's).
#[derive(Clone, Debug)]
pub(crate) struct GatedLayer {
    pub dilated: Conv,
    pub cond: Conv,
    pub exc: Option<Range<usize>>,
    pub res: Conv,
    pub skip: Conv,
}

/// Every variable of a model laid end to end in its checkpoint order, looked up by name.
#[derive(Clone, Debug)]
pub(crate) struct Variables {
    /// `(name, shape, range)` in order.
    pub list: Vec<(String, Vec<usize>, Range<usize>)>,
    /// Values in all.
    pub len: usize,
    at: HashMap<String, Range<usize>>,
    /// What the model is called in an error ("the model", "the student").
    owner: &'static str,
}

impl Variables {
    /// The variables of `shapes` (`(name, shape)`), in that order.
    pub(crate) fn new(shapes: Vec<(String, Vec<usize>)>, owner: &'static str) -> Self {
        let mut list = Vec::new();
        let mut at = HashMap::new();
        let mut len = 0;
        for (name, shape) in shapes {
            let n: usize = shape.iter().product();
            at.insert(name.clone(), len..len + n);
            list.push((name, shape, len..len + n));
            len += n;
        }
        Self {
            list,
            len,
            at,
            owner,
        }
    }

    /// Where the variable `name` lives.
    pub(crate) fn range(&self, name: &str) -> Result<Range<usize>> {
        self.at
            .get(name)
            .cloned()
            .ok_or_else(|| Error::Config(format!("{} has no variable {name}", self.owner)))
    }

    /// The convolution `name` (`name/W`, `name/biases`).
    pub(crate) fn conv(&self, name: &str) -> Result<Conv> {
        Ok(Conv {
            w: self.range(&format!("{name}/W"))?,
            b: self.range(&format!("{name}/biases"))?,
        })
    }

    /// Gated layer `n` (from 1) of a stack whose variables are named `{prefix}dilatedconv_n`
    /// and so on; `excited`: it has an excitation map `{prefix}exc_map_n/W`.
    pub(crate) fn gated_layer(&self, prefix: &str, n: usize, excited: bool) -> Result<GatedLayer> {
        Ok(GatedLayer {
            dilated: self.conv(&format!("{prefix}dilatedconv_{n}"))?,
            cond: self.conv(&format!("{prefix}cond_map_{n}"))?,
            exc: excited
                .then(|| self.range(&format!("{prefix}exc_map_{n}/W")))
                .transpose()?,
            res: self.conv(&format!("{prefix}res_{n}"))?,
            skip: self.conv(&format!("{prefix}skip_{n}"))?,
        })
    }

    /// Copies every variable's current value (`variable`: name → tensor) into `params` at
    /// its range.
    pub(crate) fn load<'a>(
        &self,
        params: &mut Vec<f32>,
        mut variable: impl FnMut(&str) -> Option<&'a Tensor>,
    ) -> Result<()> {
        params.resize(self.len, 0.0);
        for (name, shape, range) in &self.list {
            let t = variable(name)
                .ok_or_else(|| Error::Config(format!("the model has no variable {name}")))?;
            if t.dims() != shape.as_slice() {
                return Err(Error::Shape(format!(
                    "{name} is {:?}, the config makes it {shape:?}",
                    t.dims()
                )));
            }
            let values = t
                .flatten_all()?
                .to_dtype(candle_core::DType::F32)?
                .to_vec1::<f32>()?;
            params[range.clone()].copy_from_slice(&values);
        }
        Ok(())
    }

    /// `(name, gradient)` for every variable but those `absent` names, each shaped as its
    /// variable, from the flat gradient `total`.
    pub(crate) fn gradients(
        &self,
        total: &[f32],
        absent: impl Fn(&str) -> bool,
    ) -> Result<Vec<(String, Tensor)>> {
        self.list
            .iter()
            .filter(|(name, _, _)| !absent(name))
            .map(|(name, shape, range)| {
                let t = Tensor::from_slice(
                    &total[range.clone()],
                    shape.as_slice(),
                    &candle_core::Device::Cpu,
                )?;
                Ok((name.clone(), t))
            })
            .collect()
    }
}

/// Where the encoder's variables live in a flat parameter vector.
#[derive(Clone, Debug)]
pub(crate) struct EncoderIndex {
    pub ae_start: Conv,
    pub encoder: Vec<EncoderLayer>,
    pub bottleneck: Conv,
}

impl EncoderIndex {
    /// The ranges of `cfg`'s encoder variables (`ae_*`) among `vars`.
    pub(crate) fn new(cfg: &EncoderConfig, vars: &Variables) -> Result<Self> {
        if cfg.ae_num_layers == 0 {
            return Err(Error::Config("an encoder needs at least one layer".into()));
        }
        Ok(Self {
            ae_start: vars.conv("ae_startconv")?,
            encoder: (1..=cfg.ae_num_layers)
                .map(|i| {
                    Ok(EncoderLayer {
                        dilated: vars.conv(&format!("ae_dilatedconv_{i}"))?,
                        res: vars.conv(&format!("ae_res_{i}"))?,
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            bottleneck: vars.conv("ae_bottleneck")?,
        })
    }
}
