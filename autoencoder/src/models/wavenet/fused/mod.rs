//! The fused training step: the WaveNet autoencoder's loss and every gradient, by hand.
//!
//! candle's autograd keeps every intermediate of the 40 layers and walks them one
//! element-wise kernel at a time: at batch 8 × 6144 that is ~12 GB resident and a step
//! spent mostly moving memory. Here the mathematics is the same (the tests hold it to the
//! autograd path: loss within 1e-5 relative, each gradient within 1e-4 of its norm) but
//! arranged for a CPU:
//!
//! - **Crop by crop.** A crop's forward and backward pass touch no other crop, so each
//!   worker thread takes whole crops and keeps only its crop's activations (~170 MB for
//!   `small` at 6144 samples) in buffers it reuses every step. Memory grows with threads,
//!   not with the batch.
//! - **Products are `gemm` calls on strided views** (a transpose is a stride), a dilated
//!   convolution one product per tap on shifted rows, its two gradients likewise; biases,
//!   gates, ReLUs and the softmax are single vectorised sweeps (see `pointwise`).
//! - **Kept or recomputed** by cost: the gate's `[σ | tanh]` are kept (recomputing them
//!   means exponentials), its product and the encoder's `relu(en)` are recomputed.
//! - **Deterministic**: each crop's gradient goes to a buffer of its own and the buffers
//!   are added in crop order, so the result does not depend on the thread count or on
//!   which thread finished first, and a resumed run repeats an uninterrupted one.

mod crop;
mod index;

use candle_core::Tensor;

use crate::cpu::Isa;
use crate::fused::encoder::EncoderDims;
use crate::fused::{add_in_order, check_crops, check_len, for_each_crop};
use crate::{Config, Error, Result};

/// One training batch for [`FusedStep::run`], all row-major.
#[derive(Clone, Copy, Debug)]
pub struct FusedBatch<'a> {
    pub batch: usize,
    pub time: usize,
    /// μ-law-scaled targets `[batch, time]`.
    pub scaled: &'a [f32],
    /// The decoder's input `[batch, time]` when it differs from the targets (noise added).
    pub inputs: Option<&'a [f32]>,
    /// The excitation `[batch, time, 2K]`; ignored by a model without one.
    pub excitation: Option<&'a [f32]>,
}

/// The loss and gradients of one batch.
#[derive(Debug)]
pub struct FusedOutput {
    /// Mean NLL (nats) over every sample of the batch.
    pub loss: f64,
    /// `(name, gradient)` for every variable a gradient reaches, shaped as the variable.
    /// The decoder's last residual projection is absent (nothing reads its output), as are
    /// the excitation projections when the batch has no excitation.
    pub grads: Vec<(String, Tensor)>,
}

/// The fused forward + backward pass of a [`Config`], with its worker buffers.
pub struct FusedStep {
    dims: crop::Dims,
    index: index::Index,
    isa: Isa,
    threads: usize,
    works: Vec<crop::Work>,
    crop_grads: Vec<Vec<f32>>,
    params: Vec<f32>,
}

impl std::fmt::Debug for FusedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FusedStep")
            .field("threads", &self.threads)
            .field("isa", &self.isa)
            .finish()
    }
}

impl FusedStep {
    /// `threads` workers (at least one), the best kernels the CPU has.
    pub fn new(cfg: &Config, threads: usize) -> Result<Self> {
        Self::with_isa(cfg, threads, Isa::detect())
    }

    /// [`FusedStep::new`] with the kernels chosen (tests compare both).
    pub fn with_isa(cfg: &Config, threads: usize, isa: Isa) -> Result<Self> {
        cfg.validate()?;
        let dims = crop::Dims {
            enc: EncoderDims::of(&cfg.encoder_config()),
            bn: cfg.ae_bottleneck_width,
            hop: cfg.ae_hop_length,
            w: cfg.width,
            sw: cfg.skip_width,
            taps: cfg.filter_length,
            dilations: (0..cfg.num_layers).map(|i| cfg.dilation(i)).collect(),
            e: 2 * cfg.excitation_harmonics,
        };
        let threads = threads.max(1);
        Ok(Self {
            dims,
            index: index::Index::new(cfg)?,
            isa,
            threads,
            works: (0..threads).map(|_| crop::Work::default()).collect(),
            crop_grads: Vec::new(),
            params: Vec::new(),
        })
    }

    /// Copies the current values of `variables` (name → tensor, every variable of the
    /// model) into the step's parameter vector.
    pub fn load<'a>(&mut self, variable: impl FnMut(&str) -> Option<&'a Tensor>) -> Result<()> {
        self.index.variables.load(&mut self.params, variable)
    }

    /// The loss and every gradient of `batch` at the parameters last [`FusedStep::load`]ed.
    pub fn run(&mut self, batch: &FusedBatch) -> Result<FusedOutput> {
        let (b, time, d) = (batch.batch, batch.time, &self.dims);
        if self.params.len() != self.index.variables.len {
            return Err(Error::Config(
                "the fused step has no parameters loaded".into(),
            ));
        }
        check_crops(b, time, d.hop)?;
        let n = b * time;
        check_len("the audio", batch.scaled.len(), n)?;
        if let Some(x) = batch.inputs {
            check_len("the decoder input", x.len(), n)?;
        }
        let excitation = batch.excitation.filter(|_| d.e > 0);
        if let Some(e) = excitation {
            check_len("the excitation", e.len(), n * d.e)?;
        }
        self.crop_grads.resize_with(b, Vec::new);
        for g in &mut self.crop_grads {
            g.clear();
            g.resize(self.index.variables.len, 0.0);
        }
        let scale = 1.0 / n as f32;
        let net = crop::Net {
            isa: self.isa,
            dims: &self.dims,
            index: &self.index,
            params: &self.params,
        };
        let crop_of = |i: usize| crop::Crop {
            target: &batch.scaled[i * time..(i + 1) * time],
            input: &batch.inputs.unwrap_or(batch.scaled)[i * time..(i + 1) * time],
            excitation: excitation.map(|e| &e[i * time * d.e..(i + 1) * time * d.e]),
        };
        let sums = for_each_crop(&mut self.crop_grads, &mut self.works, |work, i, g| {
            crop::run(net, &crop_of(i), work, g, scale)
        })?;
        let loss = sums.iter().sum::<f64>() / n as f64;
        let (first, rest) = self.crop_grads.split_at_mut(1);
        add_in_order(&mut first[0], rest.iter().map(Vec::as_slice));
        let last = format!("res_{}/", self.dims.dilations.len());
        let grads = self.index.variables.gradients(&first[0], |name| {
            name.starts_with(&last) || (excitation.is_none() && name.starts_with("exc_"))
        })?;
        Ok(FusedOutput { loss, grads })
    }
}
