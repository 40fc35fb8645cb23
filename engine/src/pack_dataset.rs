//! A sample pack made into a note dataset in NSynth's layout, so real recordings (the
//! Hydrogen drum kits, a user's own multisamples) can be trained and evaluated on beside
//! rendered SoundFonts.
//!
//! Each folder directly under the pack is one instrument (a drum kit, a multisampled
//! instrument), with every sound file below it; files lying in the pack's own folder are
//! one more instrument. Each file becomes one note: mixed to mono at 16 kHz, its first 4 s
//! (a longer file is cut, its last 10 ms faded out), padded with silence to 4 s. The pack
//! is only read.
//!
//! Pitch is the file name's or, failing that, YIN's; a file with none (a drum) is marked
//! unpitched and numbered through the keys, as is every file when all are asked to be
//! unpitched. Velocity is the name's, else 100; two notes of one instrument that would
//! share a pitch and velocity (NSynth's note name) move to the nearest free velocity.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::audio::{ReadOptions, read_note};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::nsynth::{DatasetWriter, Example, FAMILIES, NOTE_SAMPLES, SOURCES};
use crate::pack::{self, NoteInfo};

/// Samples faded out at the end of a cut note (10 ms).
const CUT_FADE: usize = 160;
/// Velocity of a note whose file name does not give one.
const DEFAULT_VELOCITY: u8 = 100;

/// How a pack becomes a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct PackDatasetOptions {
    /// NSynth family of every note (an index of [`FAMILIES`]).
    pub family: u8,
    /// NSynth source of every note (an index of [`SOURCES`]).
    pub source: u8,
    /// Every note unpitched (a drum kit), whatever its name or YIN says.
    pub unpitched: bool,
    pub overwrite: Overwrite,
}

/// What [`pack_dataset`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PackDatasetSummary {
    pub written: usize,
    /// The instruments' names (their folders; the pack's own name for its loose files),
    /// by instrument number.
    pub instruments: Vec<String>,
    pub unpitched: usize,
    /// Notes longer than 4 s, cut.
    pub cut: usize,
    /// Files too quiet to be a note, left out.
    pub near_silent: usize,
    /// Files that could not be read, each with why (left out).
    pub unreadable: Vec<(PathBuf, String)>,
    pub examples_path: PathBuf,
}

/// One note of the pack before it has its name.
struct Planned {
    file: PathBuf,
    instrument: u32,
    pitch: Option<u8>,
    velocity: u8,
}

/// The instrument a pack file belongs to: its first folder under the pack, or the pack's
/// own name for a file lying in the pack's folder.
fn instrument_of(file: &Path, pack: &Path) -> String {
    let mut components = file.components();
    match (components.next(), components.next()) {
        (Some(first), Some(_)) => first.as_os_str().to_string_lossy().into_owned(),
        _ => pack
            .file_name()
            .map_or_else(|| "pack".into(), |n| n.to_string_lossy().into_owned()),
    }
}

/// The (pitch, velocity) a note of an instrument gets: `pitch` at `velocity` if free,
/// else the nearest free velocity (1–127) at that pitch; `None` if all 127 are taken.
fn free_slot(taken: &BTreeSet<(u8, u8)>, pitch: u8, velocity: u8) -> Option<(u8, u8)> {
    let v = i16::from(velocity.clamp(1, 127));
    (0..127i16)
        .flat_map(|d| [v - d, v + d])
        .filter(|c| (1..=127).contains(c))
        .map(|c| (pitch, c as u8))
        .find(|slot| !taken.contains(slot))
}

/// Makes the pack at `pack` a dataset in NSynth's layout at `out`. `progress(done, total)`
/// is called as notes are written. Fails if the pack cannot be listed, holds no readable
/// note, or `out` already holds a dataset (unless `options.overwrite` allows it).
pub fn pack_dataset(
    pack: &Path,
    out: &Path,
    options: &PackDatasetOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<PackDatasetSummary> {
    if usize::from(options.family) >= FAMILIES.len() || usize::from(options.source) >= SOURCES.len()
    {
        return Err(Error::invalid(
            pack,
            "the instrument family or source is not one of NSynth's",
        ));
    }
    let scan = pack::scan(pack, ReadOptions::default())?;
    let mut unreadable: Vec<(PathBuf, String)> = scan
        .errors()
        .map(|(f, e)| (f.to_path_buf(), e.to_string()))
        .collect();
    let mut near_silent = 0;
    let notes: Vec<(&Path, &NoteInfo)> = scan
        .notes()
        .filter(|(_, n)| {
            near_silent += usize::from(n.near_silent);
            !n.near_silent
        })
        .collect();
    if notes.is_empty() {
        return Err(Error::invalid(
            pack,
            "no readable sound file in this folder that is louder than silence",
        ));
    }
    // Each note's instrument, once; the instruments numbered in sorted order.
    let of_note: Vec<String> = notes.iter().map(|(f, _)| instrument_of(f, pack)).collect();
    let names: Vec<String> = of_note
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let planned: Vec<Planned> = notes
        .iter()
        .zip(&of_note)
        .map(|((f, n), name)| Planned {
            file: f.to_path_buf(),
            instrument: names.binary_search(name).unwrap_or(0) as u32,
            pitch: if options.unpitched {
                None
            } else {
                n.pitch.midi()
            },
            velocity: n.velocity.unwrap_or(DEFAULT_VELOCITY),
        })
        .collect();

    // Names: pitched notes first (they keep their pitch), then the unpitched numbered
    // through the keys, each instrument on its own.
    let mut taken: BTreeMap<u32, BTreeSet<(u8, u8)>> = BTreeMap::new();
    let mut examples: Vec<(usize, Example)> = Vec::with_capacity(planned.len());
    let mut next_key: BTreeMap<u32, u8> = BTreeMap::new();
    let order = (0..planned.len())
        .filter(|&i| planned[i].pitch.is_some())
        .chain((0..planned.len()).filter(|&i| planned[i].pitch.is_none()));
    for i in order {
        let p = &planned[i];
        let slots = taken.entry(p.instrument).or_default();
        let want = match p.pitch {
            Some(pitch) => pitch,
            None => {
                let key = next_key.entry(p.instrument).or_insert(0);
                let k = *key;
                *key = (k + 1) % 128;
                k
            }
        };
        let slot = free_slot(slots, want, p.velocity)
            .or_else(|| (0..128u8).find_map(|k| free_slot(slots, k, p.velocity)))
            .ok_or_else(|| {
                Error::invalid(
                    pack.join(&p.file),
                    "more notes in one instrument than NSynth's names can tell apart (128 × 127)",
                )
            })?;
        slots.insert(slot);
        let mut example = Example::new(
            examples.len() as u64,
            p.instrument,
            options.family,
            options.source,
            slot.0,
            slot.1,
        );
        example.unpitched = p.pitch.is_none();
        examples.push((i, example));
    }
    examples.sort_by_key(|(i, _)| *i);

    let writer = DatasetWriter::create(out, options.overwrite)?;
    let total = examples.len();
    let done = AtomicUsize::new(0);
    let read = ReadOptions {
        max_secs: NOTE_SAMPLES as f64 / 16_000.0 + 1.0,
    };
    let results: Vec<std::result::Result<(Example, bool), (PathBuf, String)>> = examples
        .into_par_iter()
        .map(|(i, example)| {
            let path = pack.join(&planned[i].file);
            let outcome = read_note(&path, read)
                .map_err(|e| (planned[i].file.clone(), e.to_string()))
                .and_then(|note| {
                    let (samples, cut) = four_seconds(note.samples);
                    writer
                        .write_audio(&example, &samples)
                        .map_err(|e| (planned[i].file.clone(), e.to_string()))?;
                    Ok((example, cut))
                });
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            outcome
        })
        .collect();
    let mut written = BTreeMap::new();
    let (mut cut, mut unpitched) = (0, 0);
    for result in results {
        match result {
            Ok((example, was_cut)) => {
                cut += usize::from(was_cut);
                unpitched += usize::from(example.unpitched);
                written.insert(example.note_str.clone(), example);
            }
            Err(problem) => unreadable.push(problem),
        }
    }
    if written.is_empty() {
        return Err(Error::invalid(
            pack,
            "none of its sound files could be read",
        ));
    }
    unreadable.sort();
    Ok(PackDatasetSummary {
        written: written.len(),
        instruments: names,
        unpitched,
        cut,
        near_silent,
        unreadable,
        examples_path: writer.finish(&written)?,
    })
}

/// A note as NSynth's 4 s: cut (its last 10 ms faded out) or padded with silence, each
/// sample within ±1. Returns whether it was cut.
fn four_seconds(mut samples: Vec<f32>) -> (Vec<f32>, bool) {
    let cut = samples.len() > NOTE_SAMPLES;
    samples.resize(NOTE_SAMPLES, 0.0);
    if cut {
        let start = NOTE_SAMPLES - CUT_FADE;
        for (k, s) in samples[start..].iter_mut().enumerate() {
            let x = (k + 1) as f32 / CUT_FADE as f32;
            *s *= 0.5 * (1.0 + (std::f32::consts::PI * x).cos());
        }
    }
    samples.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
    (samples, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::{self, WavFormat};
    use crate::nsynth::Dataset;

    fn tone(hz: f32, secs: f32) -> Vec<f32> {
        (0..(secs * 16_000.0) as usize)
            .map(|i| 0.5 * (std::f32::consts::TAU * hz * i as f32 / 16_000.0).sin())
            .collect()
    }

    fn click() -> Vec<f32> {
        let mut x = vec![0.0; 8_000];
        let mut state = 1u32;
        for (i, s) in x.iter_mut().take(800).enumerate() {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            *s = ((state >> 8) as f32 / (1u32 << 24) as f32 - 0.5) * (1.0 - i as f32 / 800.0);
        }
        x
    }

    fn put(path: &Path, samples: &[f32]) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        wav::write(path, samples, 16_000, WavFormat::S16, Overwrite::Never).unwrap();
    }

    fn options(unpitched: bool) -> PackDatasetOptions {
        PackDatasetOptions {
            family: 5,
            source: 0,
            unpitched,
            overwrite: Overwrite::Never,
        }
    }

    #[test]
    fn a_pack_becomes_a_dataset_by_folders() {
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("mypack");
        put(&pack.join("kit/kick.wav"), &click());
        put(&pack.join("kit/snare.wav"), &click());
        put(&pack.join("kit/deeper/tom.wav"), &click());
        put(&pack.join("piano/A4.wav"), &tone(440.0, 5.0));
        put(&pack.join("piano/A4_v64.wav"), &tone(440.0, 1.0));
        put(&pack.join("loose.wav"), &tone(220.0, 1.0));
        put(&pack.join("piano/silent.wav"), &vec![0.0; 1_000]);
        let whisper: Vec<f32> = tone(440.0, 1.0).iter().map(|s| s * 0.002).collect();
        put(&pack.join("piano/whisper.wav"), &whisper);
        std::fs::write(pack.join("kit/broken.wav"), b"RIFF nonsense").unwrap();
        std::fs::write(pack.join("kit/readme.txt"), b"not audio").unwrap();
        let before = std::fs::read(pack.join("kit/kick.wav")).unwrap();

        let out = dir.path().join("ds");
        let s = pack_dataset(&pack, &out, &options(false), &|_, _| {}).unwrap();
        assert_eq!(s.instruments, ["kit", "mypack", "piano"]);
        assert_eq!(s.written, 6);
        assert_eq!(s.near_silent, 1);
        assert_eq!(s.cut, 1);
        assert_eq!(s.unpitched, 3);
        // The broken file and the silent one (no sound at all) are left out, each named.
        assert_eq!(s.unreadable.len(), 2);
        assert!(s.unreadable[0].0.ends_with("broken.wav"));
        assert!(s.unreadable[1].0.ends_with("silent.wav"));
        assert_eq!(std::fs::read(pack.join("kit/kick.wav")).unwrap(), before);

        let ds = Dataset::open(&out).unwrap();
        let by = |instrument: u32| -> Vec<&Example> {
            ds.examples
                .values()
                .filter(|e| e.instrument == instrument)
                .collect()
        };
        // The kit's three drums: unpitched, numbered through the keys.
        let kit = by(0);
        assert_eq!(kit.len(), 3);
        assert!(kit.iter().all(|e| e.unpitched && e.velocity == 100));
        let keys: BTreeSet<u8> = kit.iter().map(|e| e.pitch).collect();
        assert_eq!(keys.len(), 3);
        // The piano's two A4s: named pitch, the second at a velocity of its own.
        let piano = by(2);
        assert_eq!(piano.len(), 2);
        assert!(piano.iter().all(|e| e.pitch == 69 && !e.unpitched));
        assert_ne!(piano[0].velocity, piano[1].velocity);
        // The loose file: its own instrument, YIN's pitch (A3).
        assert_eq!(by(1)[0].pitch, 57);
        // 4 s each; the 5 s note cut, its end faded to silence.
        for e in ds.examples.values() {
            assert_eq!(ds.load(&e.note_str).unwrap().len(), NOTE_SAMPLES);
        }
        let long = ds
            .examples
            .values()
            .find(|e| e.instrument == 2 && e.velocity == 100)
            .unwrap();
        let x = ds.load(&long.note_str).unwrap();
        assert!(x[NOTE_SAMPLES - 1].abs() < 1e-3);
        assert!(
            x[NOTE_SAMPLES - 400..NOTE_SAMPLES - 200]
                .iter()
                .any(|s| s.abs() > 0.3)
        );

        // Never over an existing dataset without leave.
        let again = pack_dataset(&pack, &out, &options(false), &|_, _| {});
        assert!(matches!(again, Err(Error::Exists(_))));
    }

    #[test]
    fn all_unpitched_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("p");
        put(&pack.join("bells/A4.wav"), &tone(440.0, 1.0));
        put(&pack.join("bells/C5.wav"), &tone(523.25, 1.0));
        let s = pack_dataset(&pack, &dir.path().join("d"), &options(true), &|_, _| {}).unwrap();
        assert_eq!((s.written, s.unpitched), (2, 2));
    }

    #[test]
    fn an_empty_pack_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let err = pack_dataset(
            dir.path(),
            &dir.path().join("d"),
            &options(false),
            &|_, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("no readable sound file"), "{err}");
    }

    #[test]
    fn slots_move_to_the_nearest_free_velocity() {
        let mut taken = BTreeSet::new();
        taken.insert((60, 100));
        assert_eq!(free_slot(&taken, 60, 100), Some((60, 99)));
        taken.insert((60, 99));
        assert_eq!(free_slot(&taken, 60, 100), Some((60, 101)));
        let full: BTreeSet<(u8, u8)> = (1..=127).map(|v| (5, v)).collect();
        assert_eq!(free_slot(&full, 5, 64), None);
    }
}
