//! The live engine's four corners: each a source's notes encoded once (through the
//! engine's cache), with their pitch and their attack / sustain / release frames; and the
//! handle that swaps a new set in from any thread while the audio thread plays.

use std::path::Path;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::audio::ReadOptions;
use crate::error::{Error, Result};
use crate::synth::blend::Embedding;
use crate::synth::loudness::Loudness;
use crate::synth::stretch::Segments;
use crate::synth::{Engine, Prepared, sounding_pitch};

/// The most corners (A, B, C, D, as `synth/blend.rs` places them on the pad).
pub const MAX_CORNERS: usize = 4;

/// The keys a pack folder is sampled at for a corner: its note nearest each (one an
/// octave), so a key plays the corner's note nearest it, never more than half an octave
/// away from a recorded one where the pack covers the range.
pub const PACK_KEYS: [u8; 6] = [36, 48, 60, 72, 84, 96];

/// One note of a corner: its embedding frames, the pitch it sounds at and where its
/// attack ends and its release starts.
#[derive(Debug, Clone)]
pub struct CornerNote {
    /// MIDI; 60 for an unpitched note.
    pub pitch: u8,
    pub embedding: Embedding,
    pub segments: Segments,
}

impl CornerNote {
    /// Frame `index` (from the note's start) of a voice walking this note: the attack as
    /// it was, then, while the key is held, the sustain back and forth (a note with no
    /// sustain goes on through its frames and holds its last); from frame `off` (the key
    /// let go) the release, then its last frame held.
    pub fn walk(&self, index: usize, off: Option<usize>) -> usize {
        let Segments {
            attack, release, ..
        } = self.segments;
        let last = self.embedding.frames.saturating_sub(1);
        if let Some(off) = off
            && index >= off
        {
            // A note without a sustain was walking its frames as they were: it goes on
            // from there rather than back to an earlier, louder frame.
            let start = if release <= attack {
                release.max(off)
            } else {
                release
            };
            return (start + (index - off)).min(last);
        }
        if index < attack || release <= attack {
            return index.min(last);
        }
        let len = release - attack;
        if len == 1 {
            return attack;
        }
        let k = (index - attack) % (2 * len - 2);
        (if k < len {
            attack + k
        } else {
            attack + 2 * len - 2 - k
        })
        .min(last)
    }
}

/// Up to four corners' notes, encoded, for [`super::LiveEngine`].
#[derive(Debug, Clone)]
pub struct Corners {
    corners: Vec<Vec<CornerNote>>,
    channels: usize,
    /// What each corner was made from (for the user).
    names: Vec<String>,
    /// Band amplitudes of a measured envelope ending every frame, whose blends are
    /// brought to their corners' loudness (0: none; see [`crate::synth::loudness`]).
    bands: usize,
    /// By key (0–127), the loudness of the corners' notes nearest it; empty without bands.
    loudness: Vec<Loudness>,
    /// Band amplitudes of a measured envelope ending every frame that follow the pitch a
    /// voice plays (0: none; [`Corners::with_envelope_shift`]).
    shift_bands: usize,
}

impl Corners {
    /// Reads and encodes `sources` (1 to 4: sound files, or pack folders sampled at
    /// [`PACK_KEYS`]) through `engine` and its cache. Slow (reads files, runs the
    /// encoder): call it off the audio thread.
    pub fn encode(engine: &Engine, sources: &[&Path]) -> Result<Self> {
        let read = ReadOptions::default();
        let mut prepared = Vec::with_capacity(sources.len());
        for &source in sources {
            let notes = if source.is_dir() {
                let mut notes: Vec<Prepared> = Vec::new();
                for key in PACK_KEYS {
                    let p = engine.prepare_at(source, Some(key), None, read)?;
                    if !notes.iter().any(|n| n.file == p.file) {
                        notes.push(p);
                    }
                }
                notes
            } else {
                vec![engine.prepare(source, None, read)?]
            };
            prepared.push(notes);
        }
        let names = sources.iter().map(|s| s.display().to_string()).collect();
        Self::from_prepared(engine, prepared, names)
    }

    /// Encodes notes already read (`prepared[c]`: corner `c`'s notes, any pitches; the
    /// demo instruments' three each) through `engine` and its cache.
    pub fn from_prepared(
        engine: &Engine,
        prepared: Vec<Vec<Prepared>>,
        names: Vec<String>,
    ) -> Result<Self> {
        if prepared.is_empty() || prepared.len() > MAX_CORNERS {
            return Err(Error::Blend(format!(
                "the live engine plays 1 to {MAX_CORNERS} corners, got {}",
                prepared.len()
            )));
        }
        if let Some(c) = prepared.iter().position(Vec::is_empty) {
            return Err(Error::Blend(format!("corner {} has no notes", c + 1)));
        }
        let flat: Vec<&Prepared> = prepared.iter().flatten().collect();
        let notes: Vec<&[f32]> = flat.iter().map(|p| p.samples.as_slice()).collect();
        let pitches: Vec<Option<u8>> = flat.iter().map(|p| sounding_pitch(p)).collect();
        let encoded = engine.encode(&notes, &pitches)?;
        let hop = engine.hop();
        let mut encoded = encoded.into_iter();
        let mut corners = Vec::with_capacity(prepared.len());
        for notes in &prepared {
            let mut out = Vec::with_capacity(notes.len());
            for p in notes {
                let Some(e) = encoded.next() else {
                    return Err(Error::Blend("a corner's note was not encoded".into()));
                };
                let embedding = e.embedding;
                let segments = Segments::of(&p.samples, p.length, hop, embedding.frames);
                out.push(CornerNote {
                    pitch: sounding_pitch(p).unwrap_or(60),
                    embedding,
                    segments,
                });
            }
            corners.push(out);
        }
        Ok(Self::from_notes(corners, names)?
            .with_loudness(engine.loudness_bands())
            .with_envelope_shift(engine.envelope_shift_bands()))
    }

    /// Corners from notes already encoded (`corners[c]`: corner `c`'s notes).
    pub fn from_notes(corners: Vec<Vec<CornerNote>>, names: Vec<String>) -> Result<Self> {
        if corners.is_empty() || corners.len() > MAX_CORNERS {
            return Err(Error::Blend(format!(
                "the live engine plays 1 to {MAX_CORNERS} corners, got {}",
                corners.len()
            )));
        }
        let channels = corners
            .first()
            .and_then(|c| c.first())
            .map_or(0, |n| n.embedding.channels);
        for (c, notes) in corners.iter().enumerate() {
            if notes.is_empty() {
                return Err(Error::Blend(format!("corner {} has no notes", c + 1)));
            }
            if let Some(bad) = notes
                .iter()
                .find(|n| n.embedding.channels != channels || n.embedding.frames == 0)
            {
                return Err(Error::Blend(format!(
                    "corner {}'s note has {} frames of {} channels, the others {channels} channels",
                    c + 1,
                    bad.embedding.frames,
                    bad.embedding.channels
                )));
            }
        }
        Ok(Self {
            corners,
            channels,
            names,
            bands: 0,
            shift_bands: 0,
            loudness: Vec::new(),
        })
    }

    /// These corners with their blends brought to their notes' loudness over `bands` band
    /// amplitudes ending each frame (a measured envelope's; 0: not): for every key, the
    /// loudness of the notes nearest it is computed here, so a voice only looks it up.
    pub fn with_loudness(mut self, bands: usize) -> Self {
        self.bands = bands.min(self.channels);
        self.loudness = if self.bands == 0 {
            Vec::new()
        } else {
            let range = self.channels - self.bands..self.channels;
            (0..=127u8)
                .map(|key| {
                    let notes: Vec<&Embedding> = (0..self.len())
                        .filter_map(|c| self.nearest(c, key).map(|n| &n.embedding))
                        .collect();
                    let frames = notes.iter().map(|e| e.frames).max().unwrap_or(0);
                    Loudness::of(&notes, range.clone(), frames)
                })
                .collect()
        };
        self
    }

    /// These corners with the last `bands` channels of every frame (a measured envelope)
    /// moved from each note's pitch to the pitch a voice plays (see
    /// [`autoencoder::student::envelope::shift`]).
    pub fn with_envelope_shift(mut self, bands: usize) -> Self {
        self.shift_bands = bands.min(self.channels);
        self
    }

    /// The channels of a measured envelope that follow the pitch played (empty: none).
    pub fn shift_channels(&self) -> std::ops::Range<usize> {
        self.channels - self.shift_bands..self.channels
    }

    /// The loudness of the corners' notes nearest `key` and the channels it scales, where
    /// blends are brought to it (see [`Corners::with_loudness`]).
    pub fn loudness(&self, key: u8) -> Option<(&Loudness, std::ops::Range<usize>)> {
        let l = self.loudness.get(usize::from(key))?;
        Some((l, self.channels - self.bands..self.channels))
    }

    /// How many corners (1 to 4).
    pub fn len(&self) -> usize {
        self.corners.len()
    }

    /// Never true (a set has at least one corner); here for `len`'s sake.
    pub fn is_empty(&self) -> bool {
        self.corners.is_empty()
    }

    /// Channels of every frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Corner `corner`'s note nearest `key` (the lower on a tie).
    pub fn nearest(&self, corner: usize, key: u8) -> Option<&CornerNote> {
        self.corners
            .get(corner)?
            .iter()
            .min_by_key(|n| (i32::from(n.pitch) - i32::from(key)).abs())
    }
}

/// Where new corners wait for the audio thread, and where it leaves the old ones to be
/// dropped elsewhere. Every pointer here came from `Arc::into_raw` and its count is owned
/// by whoever swaps it out of its slot.
#[derive(Debug)]
struct Mailbox {
    /// The newest corners not yet taken (null: none).
    pending: AtomicPtr<Corners>,
    /// Corners the audio thread is done with (null: an empty slot). Only the audio thread
    /// fills a slot; anyone empties one.
    retired: [AtomicPtr<Corners>; 4],
}

impl Mailbox {
    fn new() -> Self {
        Self {
            pending: AtomicPtr::new(ptr::null_mut()),
            retired: std::array::from_fn(|_| AtomicPtr::new(ptr::null_mut())),
        }
    }

    /// Drops the count behind `p` (null: nothing).
    #[allow(unsafe_code)]
    fn free(p: *mut Corners) {
        if !p.is_null() {
            // SAFETY: `p` came from `Arc::into_raw` and was swapped out of its slot (an
            // atomic exchange), so this thread owns that count.
            drop(unsafe { Arc::from_raw(p.cast_const()) });
        }
    }

    /// Drops what the audio thread has retired.
    fn collect(&self) {
        for slot in &self.retired {
            Self::free(slot.swap(ptr::null_mut(), Ordering::AcqRel));
        }
    }

    /// Posts `corners` for the audio thread (replacing any it has not taken yet).
    fn post(&self, corners: Arc<Corners>) {
        self.collect();
        let p = Arc::into_raw(corners).cast_mut();
        Self::free(self.pending.swap(p, Ordering::AcqRel));
    }

    /// On the audio thread: replaces `current` with the pending corners, if any and if a
    /// slot is free to retire `current` into (else they wait for the next block).
    /// Allocates and frees nothing.
    #[allow(unsafe_code)]
    fn take(&self, current: &mut Arc<Corners>) -> bool {
        let Some(slot) = self
            .retired
            .iter()
            .find(|s| s.load(Ordering::Acquire).is_null())
        else {
            return false;
        };
        let p = self.pending.swap(ptr::null_mut(), Ordering::AcqRel);
        if p.is_null() {
            return false;
        }
        // SAFETY: `p` came from `Arc::into_raw` in `post` and was swapped out of
        // `pending`, so this thread owns that count.
        let new = unsafe { Arc::from_raw(p.cast_const()) };
        let old = std::mem::replace(current, new);
        slot.store(Arc::into_raw(old).cast_mut(), Ordering::Release);
        true
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.collect();
        Self::free(self.pending.swap(ptr::null_mut(), Ordering::AcqRel));
    }
}

/// A handle that swaps the corners of a [`super::LiveEngine`] from any thread (a GUI, a
/// plugin's main thread): lock-free on both sides (an atomic pointer exchange). The
/// engine takes the newest set at its next block; the set it replaces is dropped by the
/// next [`CornerSwap::swap`] (or with the engine), never on the audio thread.
#[derive(Debug, Clone)]
pub struct CornerSwap {
    mailbox: Arc<Mailbox>,
    channels: usize,
}

impl CornerSwap {
    /// Hands `corners` to the engine; refused (and nothing changes) when their frames
    /// are not the engine's model's.
    pub fn swap(&self, corners: Corners) -> Result<()> {
        if corners.channels() != self.channels {
            return Err(Error::Blend(format!(
                "these corners' frames have {} channels; the live engine's model reads {}",
                corners.channels(),
                self.channels
            )));
        }
        self.mailbox.post(Arc::new(corners));
        Ok(())
    }

    /// Drops the corner sets the engine is done with (what `swap` does first anyway).
    pub fn collect(&self) {
        self.mailbox.collect();
    }
}

/// The engine's side of the swap.
#[derive(Debug)]
pub(super) struct Receiver {
    mailbox: Arc<Mailbox>,
}

impl Receiver {
    pub(super) fn new() -> Self {
        Self {
            mailbox: Arc::new(Mailbox::new()),
        }
    }

    pub(super) fn handle(&self, channels: usize) -> CornerSwap {
        CornerSwap {
            mailbox: Arc::clone(&self.mailbox),
            channels,
        }
    }

    /// See [`Mailbox::take`].
    pub(super) fn take(&self, current: &mut Arc<Corners>) -> bool {
        self.mailbox.take(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(frames: usize, attack: usize, release: usize) -> CornerNote {
        CornerNote {
            pitch: 60,
            embedding: Embedding {
                frames,
                channels: 1,
                data: (0..frames).map(|f| f as f32).collect(),
            },
            segments: Segments {
                attack,
                release,
                frames,
            },
        }
    }

    #[test]
    fn a_held_note_loops_its_sustain_and_a_released_one_plays_its_release() {
        let n = note(10, 3, 7);
        let held: Vec<usize> = (0..14).map(|i| n.walk(i, None)).collect();
        assert_eq!(held, [0, 1, 2, 3, 4, 5, 6, 5, 4, 3, 4, 5, 6, 5]);
        let released: Vec<usize> = (0..10).map(|i| n.walk(i, Some(5))).collect();
        assert_eq!(released, [0, 1, 2, 3, 4, 7, 8, 9, 9, 9]);
        // No sustain (a struck note): its frames as they were, the last held.
        let struck = note(5, 1, 1);
        let frames: Vec<usize> = (0..7).map(|i| struck.walk(i, None)).collect();
        assert_eq!(frames, [0, 1, 2, 3, 4, 4, 4]);
        let frames: Vec<usize> = (0..8).map(|i| struck.walk(i, Some(2))).collect();
        assert_eq!(frames, [0, 1, 2, 3, 4, 4, 4, 4]);
        // A one-frame sustain holds it.
        assert_eq!(note(6, 2, 3).walk(40, None), 2);
    }

    #[test]
    fn a_swap_replaces_the_corners_and_frees_the_old_ones_elsewhere() {
        let corners = |v: usize| Corners::from_notes(vec![vec![note(v, 1, 1)]], vec![]).unwrap();
        let receiver = Receiver::new();
        let swap = receiver.handle(1);
        let mut current = Arc::new(corners(3));
        assert!(!receiver.take(&mut current));
        swap.swap(corners(4)).unwrap();
        swap.swap(corners(5)).unwrap(); // the newest wins
        assert!(receiver.take(&mut current));
        assert_eq!(current.nearest(0, 60).unwrap().embedding.frames, 5);
        assert!(!receiver.take(&mut current));
        swap.collect();
        let wrong = Corners::from_notes(
            vec![vec![CornerNote {
                embedding: Embedding {
                    frames: 1,
                    channels: 2,
                    data: vec![0.0; 2],
                },
                ..note(1, 1, 1)
            }]],
            vec![],
        )
        .unwrap();
        assert!(swap.swap(wrong).is_err());
    }
}
