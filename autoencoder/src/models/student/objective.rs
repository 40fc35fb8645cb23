//! What a student trains on: a weighted sum of the multi-resolution spectral loss, the
//! paper's power loss (both against the real note) and the distillation KL against a
//! WaveNet teacher (see [`super::distill`]).

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::distill::{Bins, teacher_input};
use super::spectral::{MultiResolution, POWER_SIZE, SIZES, Stft, power_loss};
use super::{StudentAutoencoder, StudentOutput};
use crate::{Decoder, Error, Result};

/// How much each term counts (0: not computed).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    /// Multi-resolution spectral convergence + log magnitude.
    pub spectral: f64,
    /// Squared difference of time-averaged STFT power, relative (see
    /// [`super::spectral::power_loss`]).
    pub power: f64,
    /// `KL(student ‖ teacher)` per sample on the μ-law bins, in nats.
    pub distill: f64,
}

impl Default for LossWeights {
    /// The spectral loss alone: what the shipped student trained on first.
    fn default() -> Self {
        Self {
            spectral: 1.0,
            power: 0.0,
            distill: 0.0,
        }
    }
}

impl LossWeights {
    pub fn validate(&self) -> Result<()> {
        for (name, w) in [
            ("spectral", self.spectral),
            ("power", self.power),
            ("distillation", self.distill),
        ] {
            if !w.is_finite() || w < 0.0 {
                return Err(Error::Config(format!(
                    "the {name} loss weight must be a finite number ≥ 0, got {w}"
                )));
            }
        }
        if self.spectral + self.power + self.distill <= 0.0 {
            return Err(Error::Config(
                "at least one loss weight must be above 0".into(),
            ));
        }
        Ok(())
    }
}

/// The value of each term computed, for the log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Terms {
    pub total: f64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub spectral: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub power: Option<f64>,
    /// `H(student, teacher)` on the μ-law bins, nats per sample.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cross_entropy: Option<f64>,
    /// `H(student)` on the μ-law bins, nats per sample.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub entropy: Option<f64>,
    /// The sub-partial bank's match term (unweighted; the fused pass computes it).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub bank: Option<f64>,
}

impl Terms {
    /// `H(student, teacher) − H(student)`, where both were computed.
    pub fn kl(&self) -> Option<f64> {
        Some(self.cross_entropy? - self.entropy?)
    }
}

/// `total += weight · t` (`None`: nothing yet).
fn accumulate(total: &mut Option<Tensor>, t: &Tensor, weight: f64) -> Result<()> {
    let t = t.affine(weight, 0.0)?;
    *total = Some(match total.take() {
        Some(s) => (s + t)?,
        None => t,
    });
    Ok(())
}

fn scalar(t: &Tensor) -> Result<f64> {
    Ok(t.to_dtype(DType::F64)?.to_scalar::<f64>()?)
}

/// The training objective, its transforms built once.
#[derive(Debug, Clone)]
pub struct Objective {
    weights: LossWeights,
    spectral: MultiResolution,
    power: Stft,
    bins: Bins,
}

impl Objective {
    pub fn new(weights: LossWeights, device: &Device) -> Result<Self> {
        weights.validate()?;
        Ok(Self {
            weights,
            spectral: MultiResolution::new(&SIZES, device)?,
            power: Stft::new(POWER_SIZE, device)?,
            bins: Bins::new(device)?,
        })
    }

    /// The same objective with the spectral loss at `sizes` (tests use small ones).
    pub fn with_sizes(weights: LossWeights, sizes: &[usize], device: &Device) -> Result<Self> {
        Ok(Self {
            spectral: MultiResolution::new(sizes, device)?,
            ..Self::new(weights, device)?
        })
    }

    pub fn weights(&self) -> LossWeights {
        self.weights
    }

    pub fn bins(&self) -> &Bins {
        &self.bins
    }

    /// Plays the notes `audio` `[batch, time]` (`scaled`: their μ-law-scaled copy, what
    /// the encoder reads) from the noise `z` and scores the result. With a distillation
    /// weight, `teacher` (the decoder of the model whose encoder the student carries,
    /// frozen) scores the student's own samples; the embedding is then not trained.
    pub fn evaluate(
        &self,
        model: &StudentAutoencoder,
        teacher: Option<&Decoder>,
        audio: &Tensor,
        scaled: &Tensor,
        z: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<(Tensor, Terms)> {
        let measured = model.measure(audio, excitation)?;
        let mut encoding = model.encode(scaled, measured.as_ref())?;
        if teacher.is_some() {
            encoding = encoding.detach();
        }
        let out = model.render(z, &encoding, excitation)?;
        // The teacher reads the encoder's channels only (it has no measured ones).
        let learned = model.config().student.learned_channels();
        let teacher_encoding = encoding.narrow(candle_core::D::Minus1, 0, learned)?;
        self.score(&out, &teacher_encoding, teacher, audio, excitation)
    }

    /// The terms that compare the student's audio `candidate` with the notes `target`
    /// alone (spectral and power; not the distillation), weighted, summed.
    fn audio_terms(&self, candidate: &Tensor, target: &Tensor) -> Result<(Option<Tensor>, Terms)> {
        let w = self.weights;
        let mut total: Option<Tensor> = None;
        let mut add = |t: Tensor, weight: f64| accumulate(&mut total, &t, weight);
        let mut terms = Terms::default();
        if w.spectral > 0.0 {
            let l = self.spectral.loss(candidate, target)?;
            terms.spectral = Some(scalar(&l)?);
            add(l, w.spectral)?;
        }
        if w.power > 0.0 {
            let l = power_loss(&self.power, candidate, target)?;
            terms.power = Some(scalar(&l)?);
            add(l, w.power)?;
        }
        Ok((total, terms))
    }

    /// Scores audio `candidate` against the notes `target` (both `[batch, time]`) by an
    /// objective without a distillation term: what the fused training pass needs (it
    /// differentiates the result with respect to `candidate` only).
    pub fn score_audio(&self, candidate: &Tensor, target: &Tensor) -> Result<(Tensor, Terms)> {
        if self.weights.distill > 0.0 {
            return Err(Error::Config(
                "the distillation term needs the student's logistics, not only its audio".into(),
            ));
        }
        let (total, mut terms) = self.audio_terms(candidate, target)?;
        let total = total.ok_or_else(|| Error::Config("no loss term has a weight".into()))?;
        terms.total = scalar(&total)?;
        Ok((total, terms))
    }

    /// Scores the student's output `out` (rendered from `encoding`) against `audio`.
    pub fn score(
        &self,
        out: &StudentOutput,
        encoding: &Tensor,
        teacher: Option<&Decoder>,
        audio: &Tensor,
        excitation: Option<&Tensor>,
    ) -> Result<(Tensor, Terms)> {
        let w = self.weights;
        if w.distill > 0.0 && teacher.is_none() {
            return Err(Error::Config(
                "distillation needs a teacher to score the student".into(),
            ));
        }
        let (mut total, mut terms) = self.audio_terms(&out.audio, audio)?;
        let mut add = |t: Tensor, weight: f64| accumulate(&mut total, &t, weight);
        if let (true, Some(teacher)) = (w.distill > 0.0, teacher) {
            let logits =
                teacher.forward_excited(&teacher_input(&out.audio)?, encoding, excitation)?;
            let ce = self
                .bins
                .cross_entropy(&out.mean, &out.log_scale, &logits)?;
            let h = self.bins.entropy(&out.mean, &out.log_scale)?;
            terms.cross_entropy = Some(scalar(&ce)?);
            terms.entropy = Some(scalar(&h)?);
            add((ce - h)?, w.distill)?;
        }
        let total = total.ok_or_else(|| Error::Config("no loss term has a weight".into()))?;
        terms.total = scalar(&total)?;
        Ok((total, terms))
    }
}
