//! The student's fused training step: the flows and encoder by hand (on a CPU), the
//! loss (and its gradient with respect to the audio) by candle, the bank's match term
//! and the measured sub-partials from the crops, and (through the envelope) the envelope
//! stage between the flows and the loss.

use autoencoder::student::StudentConfig;
use autoencoder::student::envelope::{
    Bands, NoteGains, apply_gains, gains_backward, measure, note_gains,
};
use autoencoder::student::fused::StudentBatch;
use autoencoder::student::model::measured_channel;
use candle_core::Tensor;

use super::trainer::StudentStep;
use crate::error::{Error, Result};
use crate::train::run::{Run, poisoned};

impl StudentStep {
    /// One update through the fused pass: the crops' μ-law-scaled samples, the noise and
    /// the excitation in; the loss against `target` (the crops as they are, as a tensor
    /// and on the host).
    pub(super) fn fused_step(
        &mut self,
        run: &mut Run,
        (scaled, z, excitation): (&[f32], &[f32], Option<&Tensor>),
        (target, target_audio): (&Tensor, &[f32]),
        lr: f64,
    ) -> Result<(autoencoder::student::Terms, autoencoder::optim::StepStats)> {
        let fused = self.fused.as_mut().ok_or_else(|| {
            Error::Compute(autoencoder::Error::Config(
                "the fused pass runs on a CPU only".into(),
            ))
        })?;
        let compute = autoencoder::Error::from;
        let excitation = excitation
            .map(|t| t.flatten_all().and_then(|t| t.to_vec1::<f32>()))
            .transpose()
            .map_err(compute)?;
        {
            let vars = self.varmap.data().lock().map_err(|_| poisoned())?;
            fused.load(|name| vars.get(name).map(|v| v.as_tensor()))?;
        }
        let student = &self.config.student;
        let bank_weight = run.options.bank_weight as f32;
        let measured_subs = student.measured_subpartials;
        let amplitudes = match &excitation {
            Some(e) if student.subpartial_bank && (bank_weight > 0.0 || measured_subs) => {
                let (crop, k2) = (run.options.crop, student.excitation_channels());
                Some(
                    target_audio
                        .chunks_exact(crop)
                        .zip(e.chunks_exact(crop * k2))
                        .flat_map(|(a, e)| {
                            autoencoder::student::model::subpartial_amplitudes(student, a, e)
                        })
                        .collect::<Vec<f32>>(),
                )
            }
            _ => None,
        };
        // What the frames measure of each crop: its own sub-partials (silent without an
        // excitation).
        let measured: Option<Vec<f32>> = measured_subs.then(|| {
            let (batch, frames) = (run.options.batch, run.options.crop / student.hop_length);
            match &amplitudes {
                Some(a) => a.iter().map(|&a| measured_channel(a)).collect(),
                None => {
                    vec![measured_channel(0.0); batch * frames * student.excitation_subpartials]
                }
            }
        });
        let batch = StudentBatch {
            batch: run.options.batch,
            time: run.options.crop,
            scaled,
            noise: z,
            excitation: excitation.as_deref(),
            bank_target: amplitudes
                .as_deref()
                .filter(|_| bank_weight > 0.0)
                .map(|a| (a, bank_weight)),
            measured: measured.as_deref(),
        };
        let audio = fused.forward(&batch)?;
        let (audio, through) = if run.options.through_envelope {
            let through = Through::new(student, run.options.crop, audio, target_audio);
            (through.shaped(), Some(through))
        } else {
            (audio, None)
        };
        let candidate = candle_core::Var::from_tensor(
            &Tensor::from_vec(audio, target.dims(), &run.device).map_err(compute)?,
        )
        .map_err(compute)?;
        let (loss, mut terms) = self.objective.score_audio(candidate.as_tensor(), target)?;
        if let Some(bank) = fused.bank_loss() {
            terms.bank = Some(bank);
            terms.total += f64::from(bank_weight) * bank;
        }
        let grads = loss.backward().map_err(compute)?;
        let d_audio = grads
            .get(candidate.as_tensor())
            .ok_or_else(|| {
                Error::Compute(autoencoder::Error::Shape(
                    "the loss does not depend on the student's audio".into(),
                ))
            })?
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(compute)?;
        // Back through the stage and its gains.
        let d_audio = match &through {
            Some(t) => t.backward(&d_audio),
            None => d_audio,
        };
        let grads = fused.backward(&batch, &d_audio)?;
        let stats = run.optimizer.step_with(&grads, lr)?;
        Ok((terms, stats))
    }
}

/// Training through the envelope stage ([`crate::train::TrainOptions::through_envelope`]):
/// each crop's stage towards the envelope measured from its target, its gains from the
/// crop the flows played. [`Through::shaped`] plays the stage; [`Through::backward`]
/// carries the loss's gradient back through it and through its gains (held fixed, the
/// gradient would push each band's level, which the stage undoes: session 16's run 17).
pub(super) struct Through {
    bands: Bands,
    crop: usize,
    gains: Vec<NoteGains>,
    /// The flows' crops, `[batch · crop]`.
    played: Vec<f32>,
}

impl Through {
    /// For crops of `crop` samples of the flows' `audio` and their `target`s (both
    /// `[batch · crop]`).
    pub(super) fn new(
        student: &StudentConfig,
        crop: usize,
        audio: Vec<f32>,
        target: &[f32],
    ) -> Self {
        // One pass, whatever the student's `envelope_refinements`: the gradient through
        // the gains is that rule's (the refinements are what it plays with).
        let bands = Bands::new(student.envelope_bands);
        let hop = student.hop_length;
        let gains = audio
            .chunks_exact(crop.max(1))
            .zip(target.chunks_exact(crop.max(1)))
            .map(|(a, t)| note_gains(&bands, a, &measure(&bands, t, hop), hop))
            .collect();
        Self {
            bands,
            crop,
            gains,
            played: audio,
        }
    }

    /// The gradient with respect to the flows' crops from `dy`, the one with respect to
    /// the stage's output.
    pub(super) fn backward(&self, dy: &[f32]) -> Vec<f32> {
        let crop = self.crop.max(1);
        dy.chunks_exact(crop)
            .zip(self.played.chunks_exact(crop))
            .zip(&self.gains)
            .flat_map(|((d, x), g)| gains_backward(&self.bands, g, x, d))
            .collect()
    }

    /// The stage over every crop the flows played.
    pub(super) fn shaped(&self) -> Vec<f32> {
        self.played
            .chunks_exact(self.crop.max(1))
            .zip(&self.gains)
            .flat_map(|(c, g)| apply_gains(&self.bands, g, c))
            .collect()
    }
}
