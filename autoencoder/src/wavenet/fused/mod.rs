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
pub(crate) mod encoder;
pub(crate) mod index;
pub(crate) mod layers;
pub(crate) mod linalg;
pub(crate) mod pointwise;

use candle_core::{Device, Tensor};

use crate::wavenet::cpu::Isa;
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

/// Copies every variable's current value (`variable`: name → tensor) into `params` at
/// its range of `variables` (`(name, shape, range)`, `len` values in all).
pub(crate) fn load_params<'a>(
    variables: &[(String, Vec<usize>, std::ops::Range<usize>)],
    len: usize,
    params: &mut Vec<f32>,
    mut variable: impl FnMut(&str) -> Option<&'a Tensor>,
) -> Result<()> {
    params.resize(len, 0.0);
    for (name, shape, range) in variables {
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

impl FusedStep {
    /// `threads` workers (at least one), the best kernels the CPU has.
    pub fn new(cfg: &Config, threads: usize) -> Result<Self> {
        Self::with_isa(cfg, threads, Isa::detect())
    }

    /// [`FusedStep::new`] with the kernels chosen (tests compare both).
    pub fn with_isa(cfg: &Config, threads: usize, isa: Isa) -> Result<Self> {
        cfg.validate()?;
        let dims = crop::Dims {
            enc: encoder::EncoderDims::of(cfg),
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
        load_params(
            &self.index.variables,
            self.index.len,
            &mut self.params,
            variable,
        )
    }

    /// The loss and every gradient of `batch` at the parameters last [`FusedStep::load`]ed.
    pub fn run(&mut self, batch: &FusedBatch) -> Result<FusedOutput> {
        let (b, time, d) = (batch.batch, batch.time, &self.dims);
        if self.params.len() != self.index.len {
            return Err(Error::Config(
                "the fused step has no parameters loaded".into(),
            ));
        }
        if b == 0 || time < 2 || time % d.hop != 0 {
            return Err(Error::Shape(format!(
                "a training batch needs crops of a positive multiple of the hop length {} \
                 samples, got {b} crops of {time}",
                d.hop
            )));
        }
        let n = b * time;
        let check = |what: &str, len: usize, want: usize| {
            if len == want {
                Ok(())
            } else {
                Err(Error::Shape(format!(
                    "{what} has {len} values, the batch needs {want}"
                )))
            }
        };
        check("the audio", batch.scaled.len(), n)?;
        if let Some(x) = batch.inputs {
            check("the decoder input", x.len(), n)?;
        }
        let excitation = batch.excitation.filter(|_| d.e > 0);
        if let Some(e) = excitation {
            check("the excitation", e.len(), n * d.e)?;
        }
        self.crop_grads.resize_with(b, Vec::new);
        for g in &mut self.crop_grads {
            g.clear();
            g.resize(self.index.len, 0.0);
        }
        let scale = 1.0 / n as f32;
        let net = crop::Net {
            isa: self.isa,
            dims: &self.dims,
            index: &self.index,
            params: &self.params,
        };
        // Crops dealt round-robin: worker j takes crops j, j + threads, …
        let mut shares: Vec<Vec<(usize, &mut Vec<f32>)>> =
            (0..self.threads).map(|_| Vec::new()).collect();
        for (i, g) in self.crop_grads.iter_mut().enumerate() {
            shares[i % self.threads].push((i, g));
        }
        let crop_of = |i: usize| crop::Crop {
            target: &batch.scaled[i * time..(i + 1) * time],
            input: &batch.inputs.unwrap_or(batch.scaled)[i * time..(i + 1) * time],
            excitation: excitation.map(|e| &e[i * time * d.e..(i + 1) * time * d.e]),
        };
        let nll: Vec<(usize, f64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .zip(self.works.iter_mut())
                .filter(|(share, _)| !share.is_empty())
                .map(|(share, work)| {
                    scope.spawn(move || {
                        share
                            .into_iter()
                            .map(|(i, g)| {
                                let c = crop_of(i);
                                (i, crop::run(net, &c, work, g, scale))
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| Error::Panicked("a training worker")))
                .collect::<Result<Vec<_>>>()
                .map(|v| v.into_iter().flatten().collect())
        })?;
        let mut sums = vec![0f64; b];
        for (i, v) in nll {
            sums[i] = v;
        }
        let loss = sums.iter().sum::<f64>() / n as f64;
        // Added in crop order: the same sum whatever the threads did.
        let (first, rest) = self.crop_grads.split_at_mut(1);
        for g in rest.iter() {
            for (a, &v) in first[0].iter_mut().zip(g) {
                *a += v;
            }
        }
        let total = &first[0];
        let absent = |name: &str| {
            let last = format!("res_{}/", self.dims.dilations.len());
            name.starts_with(&last) || (excitation.is_none() && name.starts_with("exc_"))
        };
        let grads = self
            .index
            .variables
            .iter()
            .filter(|(name, _, _)| !absent(name))
            .map(|(name, shape, range)| {
                let t = Tensor::from_slice(&total[range.clone()], shape.as_slice(), &Device::Cpu)?;
                Ok((name.clone(), t))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(FusedOutput { loss, grads })
    }
}
