//! Probability density distillation (Parallel WaveNet, §3): the student is trained to
//! minimise `KL(student ‖ teacher) = H(student, teacher) − H(student)` on its own samples,
//! which the teacher scores in one teacher-forced pass.
//!
//! Our teacher is a 256-way μ-law softmax: a distribution over bins, bin `k` (μ-law class
//! `k − 128`) covering `[e_k, e_{k+1})` of the sample range, the outer two reaching to ±∞
//! (what lies beyond ±1 is clipped into them). Given the noise before it, each student
//! sample is logistic with mean `M_t` and scale `S_t` ([`super::StudentOutput`]), so its
//! mass on bin `k` is `P_S(k) = σ((e_{k+1} − M)/S) − σ((e_k − M)/S)`, and the KL of the
//! student's sample, quantised as the teacher hears it, against the teacher is exact with
//! no Monte Carlo:
//!
//! `KL_t = Σ_k P_S(k) · (log P_S(k) − log P_T(k))` (cross-entropy minus entropy),
//!
//! never negative, zero only where the student's bin masses are the teacher's. (The
//! continuous entropy of the logistic, `log S + 2`, against the teacher's
//! piecewise-constant density is not a KL here: mass the student puts beyond ±1 raises
//! its entropy for free, and a student trained on it learns to roar.)
//!
//! The teacher reads each sample as its μ-law class (what it was trained on); the gradient
//! passes through the continuous companding (straight-through), so the cross-entropy
//! pushes the student's samples, not just their bin masses.

use candle_core::{D, Device, Tensor};

use crate::mulaw::{CLASSES, MU};
use crate::{Error, Result};

/// The sample value where companded value `y` (in [−1, 1]) begins: the inverse of
/// μ-law companding, in f64.
fn expand(y: f64) -> f64 {
    y.signum() * ((1.0 + MU as f64).powf(y.abs()) - 1.0) / MU as f64
}

/// The 255 inner bin edges `e_1 … e_255` in sample values, rising: bin `k` (index, class
/// `k − 128`) holds the samples whose companded value is in `[(k − 128)/128, (k − 127)/128)`.
pub fn bin_edges() -> Vec<f64> {
    (1..CLASSES)
        .map(|j| {
            let y = (j as f64 - 128.0) / 128.0;
            if j == 128 { 0.0 } else { expand(y) }
        })
        .collect()
}

/// The μ-law class index (0..=255) of sample value `x`, by the edges of [`bin_edges`].
pub fn bin_of(x: f64, edges: &[f64]) -> usize {
    edges.partition_point(|&e| e <= x)
}

/// The bins' edges as a tensor, built once per device.
#[derive(Debug, Clone)]
pub struct Bins {
    /// `[255]`.
    edges: Tensor,
}

impl Bins {
    pub fn new(device: &Device) -> Result<Self> {
        let edges: Vec<f32> = bin_edges().iter().map(|&e| e as f32).collect();
        Ok(Self {
            edges: Tensor::from_vec(edges, CLASSES - 1, device)?,
        })
    }

    /// The mass `[batch, time, 256]` a logistic of `mean` and `log_scale` (each `[batch,
    /// time]`) puts on each bin; every row sums to 1.
    pub fn masses(&self, mean: &Tensor, log_scale: &Tensor) -> Result<Tensor> {
        if mean.dims() != log_scale.dims() || mean.rank() != 2 {
            return Err(Error::Shape(format!(
                "bin masses need a mean and log-scale [batch, time], got {:?} and {:?}",
                mean.dims(),
                log_scale.dims()
            )));
        }
        let (batch, time) = mean.dims2()?;
        let inv_scale = log_scale.neg()?.exp()?.unsqueeze(2)?;
        let centred = self
            .edges
            .reshape((1, 1, CLASSES - 1))?
            .broadcast_sub(&mean.unsqueeze(2)?)?;
        let cdf = candle_nn::ops::sigmoid(&centred.broadcast_mul(&inv_scale)?)?;
        let zeros = Tensor::zeros((batch, time, 1), cdf.dtype(), cdf.device())?;
        let ones = Tensor::ones((batch, time, 1), cdf.dtype(), cdf.device())?;
        let upper = Tensor::cat(&[&cdf, &ones], 2)?;
        let lower = Tensor::cat(&[&zeros, &cdf], 2)?;
        // Differences of sigmoids can round a hair below zero far in a tail.
        Ok((upper - lower)?.relu()?)
    }

    /// Mean over samples of the exact cross-entropy (nats) `−Σ_k P_S(k) log P_T(k)` of
    /// the student's bin masses (from `mean`, `log_scale`, `[batch, time]`) against the
    /// teacher's softmax of `teacher_logits` `[batch, time, 256]`.
    pub fn cross_entropy(
        &self,
        mean: &Tensor,
        log_scale: &Tensor,
        teacher_logits: &Tensor,
    ) -> Result<Tensor> {
        let masses = self.masses(mean, log_scale)?;
        if teacher_logits.dims() != masses.dims() {
            return Err(Error::Shape(format!(
                "teacher logits {:?} for student samples {:?}",
                teacher_logits.dims(),
                mean.dims()
            )));
        }
        let log_p = candle_nn::ops::log_softmax(teacher_logits, D::Minus1)?;
        Ok((masses * log_p)?.sum(D::Minus1)?.mean_all()?.neg()?)
    }

    /// Mean over samples of the entropy (nats) `−Σ_k P_S(k) log P_S(k)` of the student's
    /// bin masses.
    pub fn entropy(&self, mean: &Tensor, log_scale: &Tensor) -> Result<Tensor> {
        let masses = self.masses(mean, log_scale)?;
        // 0 · log 0 = 0; the floor keeps the gradient finite there.
        let log_m = masses.affine(1.0, 1e-30)?.log()?;
        Ok((masses * log_m)?.sum(D::Minus1)?.mean_all()?.neg()?)
    }
}

/// The teacher's input for the student's audio `[batch, time]`: each sample's μ-law class
/// scaled to [−1, 1) as the teacher was trained on, with the gradient of the continuous
/// companding (straight-through). Samples outside [−1, 1] count as ±1.
pub fn teacher_input(audio: &Tensor) -> Result<Tensor> {
    let x = audio.clamp(-1f32, 1f32)?;
    let ln_mu = (1.0 + MU as f64).ln();
    let companded = (x.sign()?
        * x.abs()?
            .affine(MU as f64, 1.0)?
            .log()?
            .affine(1.0 / ln_mu, 0.0)?)?;
    // Class / 128 as mulaw::scaled computes it: floor(c · 128) / 128, top class 127.
    let quantised = companded
        .affine(128.0, 0.0)?
        .floor()?
        .clamp(-128f32, 127f32)?
        .affine(1.0 / 128.0, 0.0)?;
    let offset = (quantised - &companded)?.detach();
    Ok((companded + offset)?)
}
