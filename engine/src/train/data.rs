//! Training batches: random crops of notes from NSynth-layout datasets, with a validation
//! split by instrument so validation measures generalisation to unseen instruments.

use std::collections::{BTreeMap, BTreeSet};
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
    /// The training notes by (dataset, instrument, pitch), each with its velocity: where
    /// sub-octave layering finds a note's octaves below.
    by_pitch: BTreeMap<(usize, u32, u8), Vec<(u8, usize)>>,
}

/// Gain of a sub-octave layer against its note, drawn uniformly from this range.
pub const LAYER_GAIN: std::ops::Range<f32> = 0.3..1.0;

/// The loudest a layered note may peak; a louder sum is scaled down to it.
const LAYER_PEAK: f32 = 0.99;

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
        let mut by_pitch: BTreeMap<(usize, u32, u8), Vec<(u8, usize)>> = BTreeMap::new();
        for (index, key) in train.iter().enumerate() {
            if let Some(e) = datasets[key.0].examples.get(&key.1) {
                by_pitch
                    .entry((key.0, e.instrument, e.pitch))
                    .or_default()
                    .push((e.velocity, index));
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
            by_pitch,
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

    /// A training step's crops as `options` ask: its batch and crop length, layered
    /// (see [`Self::batch_layered`]) as its sub-octave share says.
    pub fn crops(&self, rng: &mut ChaCha8Rng, options: &super::TrainOptions) -> Result<Batch> {
        self.batch_layered(rng, options.batch, options.crop, options.sub_octave_share)
    }

    /// A batch of `batch` random crops of `crop` samples from random training notes, as
    /// μ-law-scaled values `[batch · crop]` (row-major), with each crop's note f0 and
    /// where in its note the crop starts; `sub_octave_share` of the crops' notes layered
    /// over the same instrument's note one or two octaves below (as an organ's 16′ and
    /// 32′ stops sound with its 8′): the layer's gain drawn from [`LAYER_GAIN`], the sum
    /// scaled down where it would peak above 0.99, the crop still labelled with its own
    /// note's f0. Its waveform then repeats at f0/2 or f0/4, which the excitation's
    /// sub-partials can make; without such notes in the data a student never learns to
    /// use them. A note with no octave below among the training notes stays as it is.
    /// With a share of 0 each crop takes two draws (its note, its start), as before
    /// layering existed, so older runs resume onto the same crops.
    pub fn batch_layered(
        &self,
        rng: &mut ChaCha8Rng,
        batch: usize,
        crop: usize,
        sub_octave_share: f64,
    ) -> Result<Batch> {
        let mut out = Batch {
            scaled: Vec::with_capacity(batch * crop),
            audio: Vec::with_capacity(batch * crop),
            f0_hz: Vec::with_capacity(batch),
            offsets: Vec::with_capacity(batch),
        };
        for _ in 0..batch {
            let key = &self.train[rng.random_range(0..self.train.len())];
            let offset = rng.random_range(0..=NOTE_SAMPLES - crop);
            let mut note = self.load(key)?;
            if sub_octave_share > 0.0 && rng.random::<f64>() < sub_octave_share {
                let octaves = rng.random_range(1..=2u8);
                let gain = rng.random_range(LAYER_GAIN);
                if let Some(below) = self.octaves_below(key, octaves) {
                    layer(&mut note, &self.load(below)?, gain);
                }
            }
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

    /// The training note of `key`'s instrument `octaves` octaves below it, of the
    /// nearest velocity (the softer on a tie).
    fn octaves_below(&self, key: &NoteKey, octaves: u8) -> Option<&NoteKey> {
        let e = self.datasets[key.0].examples.get(&key.1)?;
        let pitch = e.pitch.checked_sub(12 * octaves)?;
        let candidates = self.by_pitch.get(&(key.0, e.instrument, pitch))?;
        let &(_, index) = candidates
            .iter()
            .min_by_key(|(velocity, _)| (velocity.abs_diff(e.velocity), *velocity))?;
        self.train.get(index)
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

/// Adds `below` at `gain` to `note` in place, then scales the sum down to peak at
/// [`LAYER_PEAK`] where it peaks above it.
fn layer(note: &mut [f32], below: &[f32], gain: f32) {
    for (x, &b) in note.iter_mut().zip(below) {
        *x += gain * b;
    }
    let peak = note.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    if peak > LAYER_PEAK {
        let scale = LAYER_PEAK / peak;
        for x in note.iter_mut() {
            *x *= scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsutil::Overwrite;
    use crate::nsynth::{DatasetWriter, Example};
    use std::path::Path;

    /// Instrument 1's notes (pitch, velocity), then instrument 2's (held out).
    const NOTES: [(u32, u8, u8); 6] = [
        (1, 36, 100),
        (1, 48, 50),
        (1, 48, 100),
        (1, 60, 90),
        (2, 48, 100),
        (2, 60, 100),
    ];

    /// A note: a sine at its pitch, `velocity / 400` loud (so no layered sum comes near
    /// full scale) and phased by its velocity (so notes of one pitch differ in shape), so
    /// each note's octave is plain to see.
    fn sine(pitch: u8, velocity: u8) -> Vec<f32> {
        let hz = autoencoder::excitation::midi_to_hz(f32::from(pitch));
        let amplitude = f32::from(velocity) / 400.0;
        (0..NOTE_SAMPLES)
            .map(|t| {
                amplitude
                    * (std::f32::consts::TAU * hz * t as f32 / 16_000.0 + f32::from(velocity)).sin()
            })
            .collect()
    }

    fn data(dir: &Path) -> TrainData {
        let writer = DatasetWriter::create(dir, Overwrite::Never).unwrap();
        let mut examples = BTreeMap::new();
        for (i, &(instrument, pitch, velocity)) in NOTES.iter().enumerate() {
            let e = Example::new(i as u64, instrument, 3, 2, pitch, velocity);
            writer.write_audio(&e, &sine(pitch, velocity)).unwrap();
            examples.insert(e.note_str.clone(), e);
        }
        writer.finish(&examples).unwrap();
        let split = Split {
            validation_share: 0.5,
            seed: 0,
        };
        let held_out = BTreeSet::from([(0, 2)]);
        TrainData::open(&[dir.to_path_buf()], &split, Some(&held_out)).unwrap()
    }

    fn key(pitch: u8, velocity: u8) -> NoteKey {
        NoteKey(0, format!("guitar_synthetic_001-{pitch:03}-{velocity:03}"))
    }

    #[test]
    fn the_octaves_below_are_the_same_instruments_training_notes_of_the_nearest_velocity() {
        let tmp = tempfile::tempdir().unwrap();
        let data = data(tmp.path());
        let c4 = key(60, 90);
        assert!(data.train.contains(&c4));
        assert_eq!(data.octaves_below(&c4, 1), Some(&key(48, 100)));
        assert_eq!(data.octaves_below(&c4, 2), Some(&key(36, 100)));
        assert_eq!(data.octaves_below(&key(36, 100), 1), None);
        assert_eq!(data.octaves_below(&key(48, 50), 2), None);
        // The held-out instrument's notes are neither layered nor layers.
        assert!(!data.by_pitch.contains_key(&(0, 2, 48)));
        assert_eq!(data.by_pitch.len(), 3);
    }

    #[test]
    fn layering_adds_the_octave_below_and_keeps_the_peak_under_full_scale() {
        let mut note = vec![0.5, -0.25, 0.0];
        layer(&mut note, &[0.25, 0.25, 1.0], 0.5);
        assert_eq!(note, [0.625, -0.125, 0.5]);
        let mut loud = vec![0.9, -0.9];
        layer(&mut loud, &[0.8, 0.1], 1.0);
        assert!((loud[0] - LAYER_PEAK).abs() < 1e-6, "{loud:?}");
        assert!((loud[1] / loud[0] + 0.8 / 1.7).abs() < 1e-6, "{loud:?}");
    }

    #[test]
    fn a_share_of_nothing_draws_as_before_layering_and_a_full_share_layers_every_note_with_octaves()
    {
        let tmp = tempfile::tempdir().unwrap();
        let data = data(tmp.path());
        // Share 0: the draws crops took before layering existed (a note, then its start),
        // replayed here, and nothing else drawn.
        let (mut a, mut b) = (ChaCha8Rng::seed_from_u64(3), ChaCha8Rng::seed_from_u64(3));
        let same = data.batch_layered(&mut b, 6, 512, 0.0).unwrap();
        for i in 0..6 {
            let key = &data.train[a.random_range(0..data.train.len())];
            let offset = a.random_range(0..=NOTE_SAMPLES - 512);
            let note = data.load(key).unwrap();
            assert_eq!(same.offsets[i], offset);
            assert_eq!(
                same.audio[i * 512..(i + 1) * 512],
                note[offset..offset + 512]
            );
        }
        assert_eq!(a.get_word_pos(), b.get_word_pos());

        let crop = 512;
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let batch = data.batch_layered(&mut rng, 48, crop, 1.0).unwrap();
        let energy = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        let (mut layered, mut plain) = (0, 0);
        for (i, &hz) in batch.f0_hz.iter().enumerate() {
            let audio = &batch.audio[i * crop..(i + 1) * crop];
            let offset = batch.offsets[i];
            let at =
                |pitch: u8, velocity: u8| sine(pitch, velocity)[offset..offset + crop].to_vec();
            let pitch = (69.0 + 12.0 * (hz / 440.0).log2()).round() as u8;
            let training = |p: u8| NOTES[..4].iter().filter(move |n| n.1 == p).map(|n| n.2);
            // Its own note, then whatever is left fitted (least squares) to a training
            // note an octave or two below: the layer at its gain.
            let fits = training(pitch).find_map(|velocity| {
                let residual: Vec<f32> = audio
                    .iter()
                    .zip(at(pitch, velocity))
                    .map(|(x, m)| x - m)
                    .collect();
                if energy(&residual) < 1e-6 * energy(audio) {
                    return Some(None);
                }
                [12, 24]
                    .iter()
                    .filter_map(|&d| pitch.checked_sub(d))
                    .find_map(|p| {
                        training(p).find_map(|v| {
                            let below = at(p, v);
                            let g = residual.iter().zip(&below).map(|(r, b)| r * b).sum::<f32>()
                                / energy(&below);
                            let rest: Vec<f32> = residual
                                .iter()
                                .zip(&below)
                                .map(|(r, b)| r - g * b)
                                .collect();
                            (energy(&rest) < 1e-4 * energy(&residual)).then_some(Some(g))
                        })
                    })
            });
            match fits {
                Some(None) => {
                    // Only a note with no octave below among the training notes stays
                    // plain: C2 always, C3 when two octaves were drawn.
                    assert!(
                        pitch == 36 || pitch == 48,
                        "crop {i}: plain C{}",
                        pitch / 12 - 1
                    );
                    plain += 1;
                }
                Some(Some(gain)) => {
                    assert!(
                        LAYER_GAIN.contains(&gain) || (gain - LAYER_GAIN.end).abs() < 1e-3,
                        "{gain}"
                    );
                    layered += 1;
                }
                None => panic!("crop {i} at pitch {pitch} is neither its note nor layered"),
            }
        }
        assert!(
            layered >= 10 && plain >= 3,
            "{layered} layered, {plain} plain"
        );
    }
}
