//! Where each variable lives in the flat parameter (and gradient) vector: the order of
//! [`crate::wavenet::weights::shapes`].

use std::collections::HashMap;
use std::ops::Range;

use super::encoder::EncoderIndex;
use crate::{Config, Error, Result};

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
pub(crate) struct DecoderLayer {
    pub dilated: Conv,
    pub cond: Conv,
    pub exc: Option<Range<usize>>,
    pub res: Conv,
    pub skip: Conv,
}

/// Every variable's range, by role.
#[derive(Clone, Debug)]
pub(super) struct Index {
    pub enc: EncoderIndex,
    pub start: Conv,
    pub exc_start: Option<Range<usize>>,
    pub skip_start: Conv,
    pub decoder: Vec<DecoderLayer>,
    pub out1: Conv,
    pub cond_out1: Conv,
    pub logits: Conv,
    /// `(name, shape, range)` in checkpoint order.
    pub variables: Vec<(String, Vec<usize>, Range<usize>)>,
    pub len: usize,
}

impl Index {
    pub fn new(cfg: &Config) -> Result<Self> {
        let mut variables = Vec::new();
        let mut at = HashMap::new();
        let mut len = 0;
        for (name, shape) in crate::wavenet::weights::shapes(cfg) {
            let n: usize = shape.iter().product();
            at.insert(name.clone(), len..len + n);
            variables.push((name, shape, len..len + n));
            len += n;
        }
        let range = |name: String| {
            at.get(&name)
                .cloned()
                .ok_or_else(|| Error::Config(format!("the model has no variable {name}")))
        };
        let conv = |name: &str| -> Result<Conv> {
            Ok(Conv {
                w: range(format!("{name}/W"))?,
                b: range(format!("{name}/biases"))?,
            })
        };
        let e = 2 * cfg.excitation_harmonics;
        let enc = EncoderIndex::new(cfg, &range)?;
        let decoder = (1..=cfg.num_layers)
            .map(|i| {
                Ok(DecoderLayer {
                    dilated: conv(&format!("dilatedconv_{i}"))?,
                    cond: conv(&format!("cond_map_{i}"))?,
                    exc: (e > 0 && cfg.excitation_into.layers())
                        .then(|| range(format!("exc_map_{i}/W")))
                        .transpose()?,
                    res: conv(&format!("res_{i}"))?,
                    skip: conv(&format!("skip_{i}"))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            enc,
            start: conv("startconv")?,
            exc_start: (e > 0 && cfg.excitation_into.input())
                .then(|| range("exc_start/W".into()))
                .transpose()?,
            skip_start: conv("skip_start")?,
            decoder,
            out1: conv("out1")?,
            cond_out1: conv("cond_map_out1")?,
            logits: conv("logits")?,
            variables,
            len,
        })
    }
}
