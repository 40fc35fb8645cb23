//! The first half of every render, written once: the sources' notes read at a key (and
//! velocity), encoded (cached), brought to the note's length, ready to blend.

use std::path::PathBuf;

use serde::Serialize;

use super::blend::{Embedding, Weights, blend};
use super::loudness::{Loudness, MAX_SOURCES, scale_bands};
use super::stretch::{Segments, stretch};
use super::{Engine, Glide, Prepared};
use crate::audio::{ReadOptions, SAMPLE_RATE_HZ};
use crate::error::{Error, Result};
use autoencoder::student::envelope;

/// The longest note `seconds` may ask for.
pub const MAX_SECONDS: f32 = 60.0;

/// What to read from each source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoteSpec {
    /// The key to play: a pack gives its note nearest it; a model that takes a pitch is
    /// told it, one that does not gets the notes resampled to it. `None`: each note's own.
    pub pitch: Option<u8>,
    /// Among a pack's notes nearest the key, the velocity layer nearest this.
    pub velocity: Option<u8>,
    /// The note's length: `None` keeps the sources' (the longest); `Some(s)` stretches or
    /// shrinks each source's embedding to `s` seconds ([`super::stretch`]).
    pub seconds: Option<f32>,
    pub read: ReadOptions,
}

impl NoteSpec {
    pub fn at(pitch: u8) -> Self {
        Self {
            pitch: Some(pitch),
            velocity: None,
            seconds: None,
            read: ReadOptions::default(),
        }
    }
}

/// The sources of a note, encoded and at the note's length.
#[derive(Debug, Clone, Serialize)]
pub struct Sources {
    pub prepared: Vec<Prepared>,
    #[serde(skip)]
    pub embeddings: Vec<Embedding>,
    /// How many embeddings came from the cache.
    pub cached: usize,
    /// Samples a decoded blend keeps (the model decodes whole frames).
    pub length: usize,
    /// Each source's level per embedding frame (dBFS, [`super::level::frame_levels`]),
    /// brought to the note's length as its embedding was; empty when the engine does not
    /// match a blend's level ([`Engine::with_level_match`]).
    #[serde(skip)]
    pub levels: Vec<Embedding>,
    /// Samples per embedding frame.
    #[serde(skip)]
    pub hop: usize,
    /// Band amplitudes of a measured envelope at the end of every frame, whose blends
    /// [`Sources::blend`] brings to their sources' loudness (see [`super::loudness`]); 0
    /// for a model without one, or with level matching off.
    #[serde(skip)]
    pub envelope_bands: usize,
    /// Band amplitudes of a measured envelope at the end of every frame that follow the
    /// pitch a blend is played at ([`Sources::blend`]); 0 for a model without an envelope
    /// or without a pitch.
    #[serde(skip)]
    pub shift_bands: usize,
    /// The pitch (MIDI) each source sounds at, where known: its envelope is moved from it
    /// to the pitch played. Empty: none is moved.
    #[serde(skip)]
    pub pitches: Vec<Option<f32>>,
}

impl Sources {
    /// The blend of the sources with `weights`, one per source, to be played at `pitch`;
    /// for a model whose frames carry a measured envelope, each source's envelope moved
    /// from its own pitch to the one played, frame by frame ([`envelope::shift`]), and the
    /// blend's brought to the weighted mean in dB of the sources' whole-note levels (at
    /// each frame's weights; see [`super::loudness`]).
    pub fn blend(&self, weights: &Weights, pitch: Option<Glide>) -> Result<Embedding> {
        let shifted = self.shifted(pitch);
        let refs: Vec<&Embedding> = match &shifted {
            Some(moved) => moved.iter().collect(),
            None => self.embeddings.iter().collect(),
        };
        let mut out = blend(&refs, weights)?;
        if self.envelope_bands > 0 && (2..=MAX_SOURCES).contains(&refs.len()) {
            let channels = out.channels;
            let bands = channels.saturating_sub(self.envelope_bands)..channels;
            let loudness = Loudness::of(&refs, bands.clone(), out.frames);
            let frames = out.frames;
            for (f, frame) in out.data.chunks_exact_mut(channels.max(1)).enumerate() {
                if let Some(w) = weights.normalised_at(f, frames) {
                    scale_bands(frame, &bands, loudness.gain(&w));
                }
            }
        }
        Ok(out)
    }

    /// The embeddings with each source's envelope moved to `pitch` (at each frame's
    /// centre, a glide's pitch there); `None` when none moves.
    fn shifted(&self, pitch: Option<Glide>) -> Option<Vec<Embedding>> {
        let pitch = pitch?;
        if self.shift_bands == 0 || self.pitches.len() != self.embeddings.len() {
            return None;
        }
        let moved = self
            .embeddings
            .iter()
            .zip(&self.pitches)
            .map(|(e, own)| {
                let mut e = e.clone();
                let (Some(own), Some(bands)) = (own, e.channels.checked_sub(self.shift_bands))
                else {
                    return e;
                };
                let frames = e.frames.max(1) as f32;
                for (f, frame) in e.data.chunks_exact_mut(e.channels.max(1)).enumerate() {
                    let at = pitch.start + (pitch.end - pitch.start) * (f as f32 + 0.5) / frames;
                    envelope::shift(&mut frame[bands..], at - own);
                }
                e
            })
            .collect();
        Some(moved)
    }

    /// Brings `audio`, the decoded [`Sources::blend`] with `weights`, to the weighted
    /// mean in dB of the sources' levels, frame by frame (see [`super::level`]): blends
    /// of two or more sources only; a single source's audio is left bit for bit, as is
    /// any when level matching is off.
    pub fn match_level(&self, weights: &Weights, audio: &mut [f32]) -> Result<()> {
        super::level::match_blend(audio, &self.levels, weights, self.hop)
    }
}

/// Refuses a note length that cannot be rendered.
pub(crate) fn check_seconds(seconds: Option<f32>) -> Result<()> {
    match seconds {
        Some(s) if !(s > 0.0 && s <= MAX_SECONDS) => Err(Error::Length(format!(
            "a note is more than 0 and at most {MAX_SECONDS} seconds long, not {s}"
        ))),
        _ => Ok(()),
    }
}

impl Engine {
    /// Reads, encodes (from the cache where it can) and sizes `sources` for one note.
    pub fn sources(&self, sources: &[PathBuf], spec: &NoteSpec) -> Result<Sources> {
        check_seconds(spec.seconds)?;
        let prepared = sources
            .iter()
            .map(|s| self.prepare_at(s, spec.pitch, spec.velocity, spec.read))
            .collect::<Result<Vec<_>>>()?;
        let notes: Vec<&[f32]> = prepared.iter().map(|p| p.samples.as_slice()).collect();
        let pitches: Vec<Option<u8>> = prepared.iter().map(super::sounding_pitch).collect();
        let encoded = self.encode(&notes, &pitches)?;
        let cached = encoded.iter().filter(|e| e.cached).count();
        let mut embeddings: Vec<Embedding> = encoded.into_iter().map(|e| e.embedding).collect();
        // The levels before fitting: fitted as the embeddings are, they stay aligned.
        let mut levels: Vec<Embedding> = if self.level_match() {
            prepared
                .iter()
                .zip(&embeddings)
                .map(|(p, e)| super::level::frame_levels(&p.samples, self.hop(), e.frames))
                .collect()
        } else {
            Vec::new()
        };
        let lengths = self.fit(&prepared, &mut embeddings, spec.seconds)?;
        if !levels.is_empty() {
            self.fit(&prepared, &mut levels, spec.seconds)?;
        }
        Ok(Sources {
            prepared,
            embeddings,
            cached,
            length: lengths.into_iter().max().unwrap_or(0),
            levels,
            hop: self.hop(),
            envelope_bands: self.loudness_bands(),
            shift_bands: self.envelope_shift_bands(),
            pitches: pitches.iter().map(|p| p.map(f32::from)).collect(),
        })
    }

    /// Brings each of `prepared`'s `embeddings` to `seconds` (see [`super::stretch`]);
    /// returns the samples each decoded note keeps: `seconds`' worth, or without it the
    /// note's own length.
    pub fn fit(
        &self,
        prepared: &[Prepared],
        embeddings: &mut [Embedding],
        seconds: Option<f32>,
    ) -> Result<Vec<usize>> {
        check_seconds(seconds)?;
        let Some(seconds) = seconds else {
            return Ok(prepared.iter().map(|p| p.length).collect());
        };
        let length = (seconds * SAMPLE_RATE_HZ as f32).round() as usize;
        let hop = self.hop();
        let frames = length.div_ceil(hop).max(1);
        for (e, p) in embeddings.iter_mut().zip(prepared) {
            let segments = Segments::of(&p.samples, p.length, hop, e.frames);
            *e = stretch(e, segments, frames);
        }
        Ok(vec![length; prepared.len()])
    }

    /// The pitch the decoder is told for a note at `pitch`: `Some` for a model that takes
    /// one (its sources were encoded at their own pitch), `None` for one that does not
    /// (its sources were resampled to the pitch). A pitch outside [`super::PITCH_RANGE`]
    /// is left for the decoder to refuse.
    pub fn held_pitch(&self, pitch: Option<u8>) -> Option<Glide> {
        let pitch = pitch?;
        self.pitched().then(|| Glide::at(f32::from(pitch)))
    }
}
