//! NSynth's jsonwav release layout: `DIR/examples.json` (a map from `note_str` to its 13
//! fields) and `DIR/audio/<note_str>.wav` (16 kHz mono 16-bit, 64000 samples). A user
//! with the real NSynth download can point training at it unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::audio::{SAMPLE_RATE_HZ, wav};
use crate::error::{Error, Result, read_bounded};
use crate::fsutil::{Overwrite, write_atomic};

/// `instrument_family_str` by `instrument_family`.
pub const FAMILIES: [&str; 11] = [
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
];
/// `instrument_source_str` by `instrument_source`.
pub const SOURCES: [&str; 3] = ["acoustic", "electronic", "synthetic"];
/// The ten note qualities, in the order of the `qualities` vector.
pub const QUALITIES: [&str; 10] = [
    "bright",
    "dark",
    "distortion",
    "fast_decay",
    "long_release",
    "multiphonic",
    "nonlinear_env",
    "percussive",
    "reverb",
    "tempo-synced",
];
/// Samples of one NSynth note: 4 s at 16 kHz.
pub const NOTE_SAMPLES: usize = 64_000;

pub const EXAMPLES_FILE: &str = "examples.json";
pub const AUDIO_DIR: &str = "audio";

/// The real `nsynth-train` examples.json is about 90 MB.
const MAX_EXAMPLES_BYTES: u64 = 1 << 30;

/// One note's metadata, NSynth's 13 fields under NSynth's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub note: u64,
    pub note_str: String,
    pub instrument: u32,
    pub instrument_str: String,
    pub pitch: u8,
    pub velocity: u8,
    pub sample_rate: u32,
    pub qualities: Vec<u8>,
    pub qualities_str: Vec<String>,
    pub instrument_family: u8,
    pub instrument_family_str: String,
    pub instrument_source: u8,
    pub instrument_source_str: String,
    /// Timbrel's addition (absent from NSynth's files, where every note is pitched): a
    /// note with no pitch, such as a drum, whose `pitch` is only the key that played it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unpitched: bool,
}

impl Example {
    /// A note in NSynth's naming: `note_str` = `{family}_{source}_{instrument:03}-{pitch:03}-{velocity:03}`,
    /// with no qualities annotated.
    pub fn new(
        note: u64,
        instrument: u32,
        family: u8,
        source: u8,
        pitch: u8,
        velocity: u8,
    ) -> Self {
        let family_str = FAMILIES[usize::from(family).min(FAMILIES.len() - 1)];
        let source_str = SOURCES[usize::from(source).min(SOURCES.len() - 1)];
        let instrument_str = format!("{family_str}_{source_str}_{instrument:03}");
        Self {
            note,
            note_str: format!("{instrument_str}-{pitch:03}-{velocity:03}"),
            instrument,
            instrument_str,
            pitch,
            velocity,
            sample_rate: SAMPLE_RATE_HZ,
            qualities: vec![0; QUALITIES.len()],
            qualities_str: Vec::new(),
            instrument_family: family,
            instrument_family_str: family_str.into(),
            instrument_source: source,
            instrument_source_str: source_str.into(),
            unpitched: false,
        }
    }

    /// What is wrong with this example, if anything.
    fn problem(&self, key: &str) -> Option<String> {
        if key != self.note_str {
            return Some(format!(
                "key {key:?} differs from its note_str {:?}",
                self.note_str
            ));
        }
        if !safe_file_stem(&self.note_str) {
            return Some(format!(
                "note_str {:?} is not a plain file name",
                self.note_str
            ));
        }
        if self.pitch > 127 || self.velocity > 127 {
            return Some(format!(
                "{key}: pitch and velocity must be MIDI values (0..=127)"
            ));
        }
        if self.sample_rate != SAMPLE_RATE_HZ {
            return Some(format!(
                "{key}: sample_rate {} (NSynth notes are 16000 Hz)",
                self.sample_rate
            ));
        }
        let family = FAMILIES.get(usize::from(self.instrument_family));
        if family != Some(&self.instrument_family_str.as_str()) {
            return Some(format!(
                "{key}: instrument_family {} does not name {:?}",
                self.instrument_family, self.instrument_family_str
            ));
        }
        let source = SOURCES.get(usize::from(self.instrument_source));
        if source != Some(&self.instrument_source_str.as_str()) {
            return Some(format!(
                "{key}: instrument_source {} does not name {:?}",
                self.instrument_source, self.instrument_source_str
            ));
        }
        None
    }
}

/// Letters, digits, `_`, `-`, `.`; not starting with a dot: nothing that leaves `audio/`.
fn safe_file_stem(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A dataset in NSynth's layout, opened for reading.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub dir: PathBuf,
    /// By `note_str`, sorted.
    pub examples: BTreeMap<String, Example>,
}

impl Dataset {
    /// Reads and checks `DIR/examples.json`. The audio is read note by note with [`Self::load`].
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join(EXAMPLES_FILE);
        let bytes = read_bounded(&path, MAX_EXAMPLES_BYTES)?;
        let examples: BTreeMap<String, Example> = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(&path, format!("not an NSynth examples.json ({e})")))?;
        if let Some(problem) = examples.iter().find_map(|(k, e)| e.problem(k)) {
            return Err(Error::invalid(&path, problem));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            examples,
        })
    }

    pub fn audio_path(&self, note_str: &str) -> PathBuf {
        self.dir.join(AUDIO_DIR).join(format!("{note_str}.wav"))
    }

    /// The 64000 samples of a note (shorter files are errors).
    pub fn load(&self, note_str: &str) -> Result<Vec<f32>> {
        let path = self.audio_path(note_str);
        let samples = wav::read_pcm16_mono(&path, SAMPLE_RATE_HZ, NOTE_SAMPLES)?;
        if samples.len() != NOTE_SAMPLES {
            return Err(Error::invalid(
                &path,
                format!(
                    "{} samples, NSynth notes have {NOTE_SAMPLES}",
                    samples.len()
                ),
            ));
        }
        Ok(samples)
    }
}

/// Writes a dataset in NSynth's layout: audio files as they come (from any thread), then
/// `examples.json` last, so a dataset without it is recognisably unfinished.
#[derive(Debug)]
pub struct DatasetWriter {
    dir: PathBuf,
    overwrite: Overwrite,
}

impl DatasetWriter {
    /// Prepares `dir` (created if missing). Refuses a folder that already holds a dataset
    /// unless `overwrite` allows it.
    pub fn create(dir: &Path, overwrite: Overwrite) -> Result<Self> {
        let examples = dir.join(EXAMPLES_FILE);
        if overwrite == Overwrite::Never && examples.exists() {
            return Err(Error::Exists(examples));
        }
        let audio = dir.join(AUDIO_DIR);
        std::fs::create_dir_all(&audio).map_err(|error| Error::Write { path: audio, error })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            overwrite,
        })
    }

    /// Writes `audio/<note_str>.wav`: exactly 64000 samples, 16-bit.
    pub fn write_audio(&self, example: &Example, samples: &[f32]) -> Result<()> {
        let path = self
            .dir
            .join(AUDIO_DIR)
            .join(format!("{}.wav", example.note_str));
        if samples.len() != NOTE_SAMPLES || !safe_file_stem(&example.note_str) {
            return Err(Error::invalid(
                &path,
                format!("an NSynth note has {NOTE_SAMPLES} samples and a plain name"),
            ));
        }
        wav::write(
            &path,
            samples,
            SAMPLE_RATE_HZ,
            wav::WavFormat::S16,
            self.overwrite,
        )
    }

    /// Writes `examples.json`.
    pub fn finish(self, examples: &BTreeMap<String, Example>) -> Result<PathBuf> {
        let path = self.dir.join(EXAMPLES_FILE);
        write_atomic(&path, Overwrite::Allowed, |out| {
            serde_json::to_writer_pretty(out, examples).map_err(std::io::Error::other)
        })?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nsynth() {
        let e = Example::new(7, 24, 3, 2, 60, 100);
        assert_eq!(e.note_str, "guitar_synthetic_024-060-100");
        assert_eq!(e.instrument_str, "guitar_synthetic_024");
        assert_eq!(e.problem(&e.note_str), None);
        assert!(e.problem("other").is_some());
        let mut bad = e.clone();
        bad.instrument_family_str = "bass".into();
        assert!(bad.problem(&bad.note_str.clone()).is_some());
        assert!(!safe_file_stem("../etc/passwd"));
        assert!(!safe_file_stem(".hidden"));
    }

    #[test]
    fn reads_nsynths_own_json() {
        // One entry of the real nsynth-test examples.json, as released.
        let json = r#"{"bass_synthetic_068-049-025": {"qualities": [0, 1, 0, 0, 0, 0, 0, 0, 0, 0],
            "pitch": 49, "note": 217499, "instrument_source_str": "synthetic", "velocity": 25,
            "instrument_str": "bass_synthetic_068", "instrument": 656, "sample_rate": 16000,
            "qualities_str": ["dark"], "instrument_source": 2, "note_str": "bass_synthetic_068-049-025",
            "instrument_family": 0, "instrument_family_str": "bass"}}"#;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(EXAMPLES_FILE), json).unwrap();
        let ds = Dataset::open(dir.path()).unwrap();
        let e = &ds.examples["bass_synthetic_068-049-025"];
        assert_eq!((e.pitch, e.velocity, e.instrument), (49, 25, 656));
        assert_eq!(e.qualities_str, ["dark"]);
    }
}
