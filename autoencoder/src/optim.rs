//! Training updates: AdamW (decoupled weight decay), global gradient-norm clipping, and an
//! exponential moving average (EMA) of the weights, with all state as named tensors so a
//! checkpoint restores it exactly.
//!
//! The EMA follows TensorFlow's `ExponentialMovingAverage(decay, num_updates=step)`, which
//! Magenta's NSynth training uses with decay 0.9999: the decay actually applied is
//! `min(decay, (1 + t) / (10 + t))`, so early averages are not dominated by the random init.

use std::collections::HashMap;

use candle_core::{DType, Tensor, Var};
use candle_nn::VarMap;

use crate::{Error, Result};

/// Hyper-parameters of [`Optimizer`] other than the learning rate (given per step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Gradients are scaled down so their global L2 norm is at most this; `None` = off.
    pub clip_norm: Option<f64>,
    pub ema_decay: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            clip_norm: Some(1.0),
            ema_decay: 0.9999,
        }
    }
}

/// What one update did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Global L2 norm of the gradients before clipping.
    pub grad_norm: f64,
    pub clipped: bool,
}

struct Slot {
    name: String,
    var: Var,
    m: Tensor,
    v: Tensor,
    ema: Tensor,
    /// Left exactly as it is: no update, no decay (see [`Optimizer::freeze`]).
    frozen: bool,
}

/// AdamW + clipping + EMA over every variable of a `VarMap`.
pub struct Optimizer {
    config: OptimizerConfig,
    slots: Vec<Slot>,
    step: u64,
}

impl std::fmt::Debug for Optimizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Optimizer")
            .field("config", &self.config)
            .field("variables", &self.slots.len())
            .field("step", &self.step)
            .finish()
    }
}

fn lock_vars(varmap: &VarMap) -> Result<Vec<(String, Var)>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| Error::Shape("variable map lock poisoned".into()))?;
    let mut vars: Vec<(String, Var)> = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(vars)
}

impl Optimizer {
    /// Fresh state (moments zero, EMA = current weights) for every variable of `varmap`.
    pub fn new(varmap: &VarMap, config: OptimizerConfig) -> Result<Self> {
        let slots = lock_vars(varmap)?
            .into_iter()
            .map(|(name, var)| {
                let t = var.as_tensor();
                Ok(Slot {
                    m: t.zeros_like()?,
                    v: t.zeros_like()?,
                    ema: t.detach().copy()?,
                    name,
                    var,
                    frozen: false,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config,
            slots,
            step: 0,
        })
    }

    /// Leaves the variables whose names `is_frozen` accepts exactly as they are from now
    /// on (a distilled student's encoder is its teacher's); returns how many it froze.
    pub fn freeze(&mut self, is_frozen: impl Fn(&str) -> bool) -> usize {
        let mut count = 0;
        for slot in &mut self.slots {
            if is_frozen(&slot.name) {
                slot.frozen = true;
                count += 1;
            }
        }
        count
    }

    /// Updates taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// Back-propagates `loss` and updates every variable with learning rate `lr`.
    pub fn step(&mut self, loss: &Tensor, lr: f64) -> Result<StepStats> {
        let grads = loss.backward()?;
        let found: Vec<Option<Tensor>> = self
            .slots
            .iter()
            .map(|s| {
                (!s.frozen)
                    .then(|| grads.get(s.var.as_tensor()).cloned())
                    .flatten()
            })
            .collect();
        self.update(found, lr)
    }

    /// [`Optimizer::step`] with gradients computed elsewhere (the fused training step):
    /// `grads` names each variable's gradient; a variable it does not name got none (it
    /// only decays, as with [`Optimizer::step`]).
    pub fn step_with(&mut self, grads: &[(String, Tensor)], lr: f64) -> Result<StepStats> {
        let by_name: std::collections::HashMap<&str, &Tensor> =
            grads.iter().map(|(n, g)| (n.as_str(), g)).collect();
        let found = self
            .slots
            .iter()
            .map(|s| {
                if s.frozen {
                    return Ok(None);
                }
                by_name
                    .get(s.name.as_str())
                    .map(|g| {
                        let g = g.to_device(s.var.device())?.to_dtype(s.var.dtype())?;
                        if g.dims() != s.var.dims() {
                            return Err(Error::Shape(format!(
                                "the gradient of {} is {:?}, the variable {:?}",
                                s.name,
                                g.dims(),
                                s.var.dims()
                            )));
                        }
                        Ok(g)
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        self.update(found, lr)
    }

    /// Clips, then AdamW and the EMA, from each variable's gradient (`None`: none reached it).
    fn update(&mut self, found: Vec<Option<Tensor>>, lr: f64) -> Result<StepStats> {
        let mut squares = 0f64;
        for g in found.iter().flatten() {
            squares += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
        let grad_norm = squares.sqrt();
        let scale = match self.config.clip_norm {
            Some(max) if grad_norm > max => max / grad_norm,
            _ => 1.0,
        };
        if !grad_norm.is_finite() {
            return Err(Error::Diverged(grad_norm));
        }
        let t = self.step + 1;
        let c = self.config;
        let bias1 = 1.0 - c.beta1.powf(t as f64);
        let bias2 = 1.0 - c.beta2.powf(t as f64);
        let ema_decay = c.ema_decay.min((1.0 + t as f64) / (10.0 + t as f64));
        for (slot, g) in self.slots.iter_mut().zip(found) {
            if slot.frozen {
                continue;
            }
            let theta = slot.var.as_tensor().detach();
            // A variable no gradient reaches (the last layer's residual) only decays.
            if let Some(g) = g {
                // Detached: candle's gradients can carry the graph that made them, and the
                // moments would then keep every step's activations alive.
                let g = g.detach().affine(scale, 0.0)?;
                slot.m = ((&slot.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                slot.v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            }
            let m_hat = (&slot.m / bias1)?;
            let v_hat = (&slot.v / bias2)?;
            let update = ((m_hat / (v_hat.sqrt()? + c.eps)?)? + (&theta * c.weight_decay)?)?;
            let next = (theta - (update * lr)?)?;
            slot.var.set(&next)?;
            slot.ema = ((&slot.ema * ema_decay)? + (&next * (1.0 - ema_decay))?)?;
        }
        self.step = t;
        Ok(StepStats {
            grad_norm,
            clipped: scale < 1.0,
        })
    }

    /// The averaged weights under their variable names: what gets saved as the model.
    pub fn ema(&self) -> HashMap<String, Tensor> {
        self.slots
            .iter()
            .map(|s| (s.name.clone(), s.ema.clone()))
            .collect()
    }

    /// Everything needed to continue exactly: `param/NAME`, `m/NAME`, `v/NAME`, `ema/NAME`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for s in &self.slots {
            out.insert(format!("param/{}", s.name), s.var.as_tensor().detach());
            out.insert(format!("m/{}", s.name), s.m.clone());
            out.insert(format!("v/{}", s.name), s.v.clone());
            out.insert(format!("ema/{}", s.name), s.ema.clone());
        }
        out
    }

    /// Restores [`Self::state`] after `step` updates into the variables of `varmap`.
    pub fn restore(
        varmap: &VarMap,
        config: OptimizerConfig,
        state: &HashMap<String, Tensor>,
        step: u64,
    ) -> Result<Self> {
        let mut opt = Self::new(varmap, config)?;
        let get = |kind: &str, name: &str, like: &Tensor| -> Result<Tensor> {
            let key = format!("{kind}/{name}");
            let t = state
                .get(&key)
                .ok_or_else(|| Error::Shape(format!("the training state has no {key}")))?;
            if t.dims() != like.dims() {
                return Err(Error::Shape(format!(
                    "{key} has shape {:?}, the model needs {:?}",
                    t.dims(),
                    like.dims()
                )));
            }
            Ok(t.to_device(like.device())?.to_dtype(like.dtype())?)
        };
        for slot in &mut opt.slots {
            let like = slot.var.as_tensor().clone();
            slot.var.set(&get("param", &slot.name, &like)?)?;
            slot.m = get("m", &slot.name, &like)?;
            slot.v = get("v", &slot.name, &like)?;
            slot.ema = get("ema", &slot.name, &like)?;
        }
        opt.step = step;
        Ok(opt)
    }
}
