//! Where each of the autoencoder's variables lives in the fused step's flat parameter
//! vector: the order of [`crate::wavenet::weights::shapes`].

use std::ops::Range;

use crate::fused::index::{Conv, EncoderIndex, GatedLayer, Variables};
use crate::{Config, Result};

/// Every variable's range, by role.
#[derive(Clone, Debug)]
pub(super) struct Index {
    pub enc: EncoderIndex,
    pub start: Conv,
    pub exc_start: Option<Range<usize>>,
    pub skip_start: Conv,
    pub decoder: Vec<GatedLayer>,
    pub out1: Conv,
    pub cond_out1: Conv,
    pub logits: Conv,
    pub variables: Variables,
}

impl Index {
    pub fn new(cfg: &Config) -> Result<Self> {
        let vars = Variables::new(crate::wavenet::weights::shapes(cfg), "the model");
        let e = 2 * cfg.excitation_harmonics;
        let excited = e > 0 && cfg.excitation_into.layers();
        let decoder = (1..=cfg.num_layers)
            .map(|i| vars.gated_layer("", i, excited))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            enc: EncoderIndex::new(&cfg.encoder_config(), &vars)?,
            start: vars.conv("startconv")?,
            exc_start: (e > 0 && cfg.excitation_into.input())
                .then(|| vars.range("exc_start/W"))
                .transpose()?,
            skip_start: vars.conv("skip_start")?,
            decoder,
            out1: vars.conv("out1")?,
            cond_out1: vars.conv("cond_map_out1")?,
            logits: vars.conv("logits")?,
            variables: vars,
        })
    }
}
