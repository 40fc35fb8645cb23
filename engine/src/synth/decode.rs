//! Decoding embeddings into audio, and every render's tail (decode → level match → cut)
//! written once: [`Engine::render`].

use std::ops::ControlFlow;

use autoencoder::{Control, Request, Sampling};

use super::{DecodeProgress, Embedding, Engine, Glide, PITCH_RANGE, Sources, Weights};
use crate::error::{Error, Result};
use crate::models::run_generator;

/// One note of a render: what is decoded, at which pitch, and what is done to it after.
#[derive(Debug, Clone)]
pub struct Voice<'a> {
    pub embedding: Embedding,
    /// The pitch the decoder is told ([`Engine::held_pitch`]; `None`: unpitched).
    pub pitch: Option<Glide>,
    /// A blend's sources and weights: the audio is brought to their level
    /// ([`Sources::match_level`]).
    pub level: Option<(&'a Sources, &'a Weights)>,
    /// The samples kept (the model decodes whole frames); `None`: all it decoded.
    pub length: Option<usize>,
}

impl<'a> Voice<'a> {
    /// The blend of `sources` with `weights`, decoded at `pitch`, brought to the sources'
    /// level and cut to their note's length.
    pub fn blend(sources: &'a Sources, weights: &'a Weights, pitch: Option<Glide>) -> Result<Self> {
        Ok(Self {
            embedding: sources.blend(weights, pitch)?,
            pitch,
            level: Some((sources, weights)),
            length: Some(sources.length),
        })
    }

    /// An embedding decoded at `pitch`, as it comes.
    pub fn of(embedding: Embedding, pitch: Option<Glide>) -> Self {
        Self {
            embedding,
            pitch,
            level: None,
            length: None,
        }
    }
}

impl Engine {
    /// Renders `voices` in one batched decode (voice `v` from random stream `streams[v]`,
    /// see [`Engine::decode_at`]), then brings each blend to its sources' level and cuts
    /// it to its length: the one tail of every render (`timbrel blend`, `reconstruct`,
    /// `decode`, grids, instruments, the GUI's renders).
    pub fn render(
        &self,
        voices: &[Voice<'_>],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let embeddings: Vec<Embedding> = voices.iter().map(|v| v.embedding.clone()).collect();
        let pitches: Vec<Option<Glide>> = voices.iter().map(|v| v.pitch).collect();
        let mut audio =
            self.decode_at(&embeddings, &pitches, streams, sampling, control, progress)?;
        for (audio, voice) in audio.iter_mut().zip(voices) {
            if let Some((sources, weights)) = voice.level {
                // As loud as its sources (a blend of two or more; see super::level).
                sources.match_level(weights, audio)?;
            }
            if let Some(length) = voice.length {
                audio.truncate(length);
            }
        }
        Ok(audio)
    }

    /// Decodes embeddings into 16 kHz audio, all voices in one batched pass on the
    /// engine's threads. Voice `v` draws from random stream `streams[v]` of
    /// `sampling.seed` (pass `0..n` when unsure). Embeddings of different lengths are
    /// decoded together and each voice's audio is cut to its own length (the decoder is
    /// causal, so what follows a note's end never changes it).
    ///
    /// `progress` is called about every 10 ms; returning `Break` cancels, as does
    /// `control.cancel()` from another thread: either stops the decode with
    /// [`Error::Cancelled`], the CPU decoder before its next sample (well within 50 ms),
    /// the tensor (GPU) decoder before its next frame of 512 samples.
    pub fn decode(
        &self,
        embeddings: &[Embedding],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        self.decode_at(embeddings, &[], streams, sampling, control, progress)
    }

    /// [`Engine::decode`] with the pitch each voice is to play: `pitches[v]` for voice
    /// `v` (`None`, or a voice past the end of `pitches`: unpitched). Models without an
    /// excitation cannot take a pitch and say so.
    pub fn decode_at(
        &self,
        embeddings: &[Embedding],
        pitches: &[Option<Glide>],
        streams: &[u64],
        sampling: Sampling,
        control: &Control,
        progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let channels = self.bottleneck();
        if pitches.iter().any(Option::is_some) && !self.pitched() {
            return Err(Error::Pitch(format!(
                "the model {} has no excitation, so its decoder cannot be given a pitch (its sources are resampled instead)",
                self.name
            )));
        }
        if let Some(bad) = pitches.iter().flatten().find(|g| !g.in_range()) {
            return Err(Error::Pitch(format!(
                "pitch {}..{} is outside what the model plays (MIDI {} to {})",
                bad.start,
                bad.end,
                PITCH_RANGE.start(),
                PITCH_RANGE.end()
            )));
        }
        if embeddings.is_empty() {
            return Ok(Vec::new());
        }
        if streams.len() != embeddings.len() {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "{} random streams for {} voices",
                streams.len(),
                embeddings.len()
            ))));
        }
        if let Some(bad) = embeddings
            .iter()
            .find(|e| e.channels != channels || e.frames == 0)
        {
            return Err(Error::Compute(autoencoder::Error::Shape(format!(
                "this model decodes embeddings of {channels} channels, got {} × {}",
                bad.frames, bad.channels
            ))));
        }
        let frames = embeddings.iter().map(|e| e.frames).max().unwrap_or(0);
        let mut encoding = Vec::with_capacity(embeddings.len() * frames * channels);
        for e in embeddings {
            encoding.extend_from_slice(&e.data);
            for _ in e.frames..frames {
                encoding.extend_from_slice(e.frame(e.frames - 1));
            }
        }
        let samples = frames * self.hop();
        let curves: Option<Vec<f32>> = pitches.iter().any(Option::is_some).then(|| {
            embeddings
                .iter()
                .enumerate()
                .flat_map(|(v, e)| match pitches.get(v).copied().flatten() {
                    Some(glide) => {
                        // The glide spans the voice's own length; the padding holds its end.
                        let mut curve = glide.f0_curve(e.frames * self.hop());
                        let end = curve.last().copied().unwrap_or(0.0);
                        curve.resize(samples, end);
                        curve
                    }
                    None => vec![0.0; samples],
                })
                .collect()
        });
        let request = Request {
            encoding: &encoding,
            f0: curves.as_deref(),
            streams,
            sampling,
            threads: self.threads,
        };
        let mut audio = run_generator(&*self.generator, &request, control, progress)?;
        for (a, e) in audio.iter_mut().zip(embeddings) {
            a.truncate(e.frames * self.hop());
        }
        Ok(audio)
    }
}
