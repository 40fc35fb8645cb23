//! Training batches: random crops of notes from NSynth-layout datasets, with a validation
//! split by instrument so validation measures generalisation to unseen instruments.

use std::collections::BTreeSet;
use std::path::PathBuf;

use autoencoder::mulaw;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::nsynth::{Dataset, NOTE_SAMPLES};

/// An instrument of one of the datasets: (dataset index, `instrument`).
pub type InstrumentKey = (usize, u32);

/// A note: (dataset index, `note_str`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct NoteKey(usize, String);

/// Training crops: μ-law-scaled `[crop · batch]`, and per crop its note's f0 (Hz, 0 =
/// unpitched) and its first sample's position in the note.
#[derive(Debug, Clone)]
pub struct Batch {
    pub scaled: Vec<f32>,
    /// The same crops as they are, `[batch · crop]` (what a spectral loss compares with).
    pub audio: Vec<f32>,
    pub f0_hz: Vec<f32>,
    pub offsets: Vec<usize>,
}

/// The notes of the training datasets, split by instrument.
#[derive(Debug)]
pub struct TrainData {
    datasets: Vec<Dataset>,
    train: Vec<NoteKey>,
    validation: Vec<NoteKey>,
    pub validation_instruments: BTreeSet<InstrumentKey>,
}

/// How the validation split is made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Split {
    /// Share of instruments held out (at least one, and at least one left to train on).
    pub validation_share: f64,
    pub seed: u64,
}

impl TrainData {
    /// Opens the datasets and splits their instruments. `held_out`, when given (a resumed
    /// run), is the split to keep.
    pub fn open(
        dirs: &[PathBuf],
        split: &Split,
        held_out: Option<&BTreeSet<InstrumentKey>>,
    ) -> Result<Self> {
        let datasets = dirs
            .iter()
            .map(|d| Dataset::open(d))
            .collect::<Result<Vec<_>>>()?;
        let mut instruments: Vec<InstrumentKey> = datasets
            .iter()
            .enumerate()
            .flat_map(|(i, ds)| ds.examples.values().map(move |e| (i, e.instrument)))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let first = dirs.first().cloned().unwrap_or_default();
        if instruments.len() < 2 {
            return Err(Error::invalid(
                first,
                format!(
                    "training needs notes of at least 2 instruments (one is held out for validation); found {}",
                    instruments.len()
                ),
            ));
        }
        let validation_instruments: BTreeSet<InstrumentKey> = match held_out {
            Some(set) => set.clone(),
            None => {
                let mut rng = ChaCha8Rng::seed_from_u64(split.seed ^ 0x5EED_5911);
                instruments.shuffle(&mut rng);
                let n = ((instruments.len() as f64 * split.validation_share).ceil() as usize)
                    .clamp(1, instruments.len() - 1);
                instruments[..n].iter().copied().collect()
            }
        };
        let (mut train, mut validation) = (Vec::new(), Vec::new());
        for (i, ds) in datasets.iter().enumerate() {
            for e in ds.examples.values() {
                let key = NoteKey(i, e.note_str.clone());
                if validation_instruments.contains(&(i, e.instrument)) {
                    validation.push(key);
                } else {
                    train.push(key);
                }
            }
        }
        if train.is_empty() || validation.is_empty() {
            return Err(Error::invalid(
                first,
                "the validation split left no notes on one side",
            ));
        }
        Ok(Self {
            datasets,
            train,
            validation,
            validation_instruments,
        })
    }

    pub fn train_notes(&self) -> usize {
        self.train.len()
    }

    pub fn validation_notes(&self) -> usize {
        self.validation.len()
    }

    fn load(&self, key: &NoteKey) -> Result<Vec<f32>> {
        self.datasets[key.0].load(&key.1)
    }

    /// The note's f0 in Hz from its NSynth `pitch` (every note of an NSynth-layout
    /// dataset is pitched; drums rendered as notes carry their key, which is no pitch,
    /// but no dataset we render holds them yet).
    fn f0_hz(&self, key: &NoteKey) -> f32 {
        self.datasets[key.0].examples.get(&key.1).map_or(0.0, |e| {
            autoencoder::excitation::midi_to_hz(f32::from(e.pitch))
        })
    }

    /// A batch of `batch` random crops of `crop` samples from random training notes, as
    /// μ-law-scaled values `[batch · crop]` (row-major), with each crop's note f0 and
    /// where in its note the crop starts.
    pub fn batch(&self, rng: &mut ChaCha8Rng, batch: usize, crop: usize) -> Result<Batch> {
        let mut out = Batch {
            scaled: Vec::with_capacity(batch * crop),
            audio: Vec::with_capacity(batch * crop),
            f0_hz: Vec::with_capacity(batch),
            offsets: Vec::with_capacity(batch),
        };
        for _ in 0..batch {
            let key = &self.train[rng.random_range(0..self.train.len())];
            let offset = rng.random_range(0..=NOTE_SAMPLES - crop);
            let note = self.load(key)?;
            out.scaled.extend(
                note[offset..offset + crop]
                    .iter()
                    .map(|&x| mulaw::scaled(x)),
            );
            out.audio.extend_from_slice(&note[offset..offset + crop]);
            out.f0_hz.push(self.f0_hz(key));
            out.offsets.push(offset);
        }
        Ok(out)
    }

    /// Up to `notes` held-out notes spread evenly over the validation split: their
    /// names, audio (the whole 4 s) and f0 in Hz.
    pub fn validation_notes_audio(&self, notes: usize) -> Result<Vec<(String, Vec<f32>, f32)>> {
        let n = notes.min(self.validation.len()).max(1);
        let step = self.validation.len() as f64 / n as f64;
        (0..n)
            .map(|i| {
                let key = &self.validation[(i as f64 * step) as usize];
                Ok((key.1.clone(), self.load(key)?, self.f0_hz(key)))
            })
            .collect()
    }

    /// A fixed validation set: the first `crop` samples (the attack and early sustain,
    /// where timbre lives) of up to `notes` held-out notes spread evenly over the split.
    /// Each with its note's f0 in Hz.
    pub fn validation_set(&self, notes: usize, crop: usize) -> Result<Vec<(Vec<f32>, f32)>> {
        Ok(self
            .validation_notes_audio(notes)?
            .into_iter()
            .map(|(_, note, f0)| (note[..crop].iter().map(|&x| mulaw::scaled(x)).collect(), f0))
            .collect())
    }
}
