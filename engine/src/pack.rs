//! Sample packs: a folder (recursive) of one-shots or multisamples, read-only.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::audio::{ReadOptions, SourceFormat, read_note};
use crate::error::{Error, Result};
use crate::pitch::{self, Pitch};

/// File extensions we try to read as audio; other files in a pack are counted, not read.
pub const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "ogg", "oga", "mp3", "aif", "aiff", "aifc",
];

/// A pack deeper than this is not a sample pack (or is a link loop).
const MAX_DEPTH: usize = 32;
/// More files than this in one pack are not scanned (the rest is reported as skipped).
const MAX_FILES: usize = 100_000;

/// One usable note of a pack.
#[derive(Debug, Clone, Serialize)]
pub struct NoteInfo {
    pub format: SourceFormat,
    /// The whole file's duration where the header says it, else what was read.
    pub duration_secs: f64,
    pub pitch: Pitch,
    pub velocity: Option<u8>,
    pub peak_dbfs: f32,
    pub near_silent: bool,
}

/// A file of a pack and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Relative to the pack's root.
    pub file: PathBuf,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Note(NoteInfo),
    Error(String),
}

/// The result of scanning a pack.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    pub root: PathBuf,
    /// Sorted by file.
    pub entries: Vec<Entry>,
    /// Files without an audio extension (kit descriptions, images, readmes).
    pub other_files: usize,
    /// Audio files beyond the scan limit, not read.
    pub not_scanned: usize,
}

impl Scan {
    pub fn notes(&self) -> impl Iterator<Item = (&Path, &NoteInfo)> {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Note(n) => Some((e.file.as_path(), n)),
            Outcome::Error(_) => None,
        })
    }

    pub fn errors(&self) -> impl Iterator<Item = (&Path, &str)> {
        self.entries.iter().filter_map(|e| match &e.outcome {
            Outcome::Error(msg) => Some((e.file.as_path(), msg.as_str())),
            Outcome::Note(_) => None,
        })
    }

    /// The pitched note nearest `midi` (ties: the louder velocity, then the first file).
    pub fn nearest(&self, midi: u8) -> Option<(&Path, &NoteInfo)> {
        self.nearest_at(midi, None)
    }

    /// The pitched note nearest `midi`; among those, the velocity nearest `velocity`
    /// (without one, the loudest), then the first file.
    pub fn nearest_at(&self, midi: u8, velocity: Option<u8>) -> Option<(&Path, &NoteInfo)> {
        self.notes()
            .filter_map(|(f, n)| n.pitch.midi().map(|p| (f, n, p.abs_diff(midi))))
            .min_by_key(|&(_, n, distance)| {
                let v = n.velocity.unwrap_or(0);
                let by_velocity = match velocity {
                    Some(want) => i32::from(v.abs_diff(want)),
                    None => -i32::from(v),
                };
                (distance, by_velocity)
            })
            .map(|(f, n, _)| (f, n))
    }
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn is_hidden(entry: &walkdir::DirEntry) -> bool {
    entry.depth() > 0
        && entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.'))
}

/// Reads one file of a pack: format, pitch (name first, then detection) and velocity.
pub fn describe(path: &Path, options: ReadOptions) -> Result<NoteInfo> {
    let note = read_note(path, options)?;
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let named = pitch::from_name(stem);
    let pitch = match named.pitch {
        Some(midi) => Pitch::Name { midi },
        None => pitch::detect(&note.samples),
    };
    Ok(NoteInfo {
        duration_secs: note
            .format
            .duration_secs
            .unwrap_or_else(|| note.duration_secs()),
        near_silent: note.near_silent(),
        peak_dbfs: note.peak_dbfs(),
        format: note.format,
        pitch,
        velocity: named.velocity,
    })
}

/// Scans the folder `root` recursively. Hidden files and folders are passed over and
/// symbolic links are not followed. Never writes anything. Fails only if `root` itself
/// cannot be listed; each file's problem is its own entry.
pub fn scan(root: &Path, options: ReadOptions) -> Result<Scan> {
    let meta = std::fs::metadata(root).map_err(|error| Error::Read {
        path: root.to_path_buf(),
        error,
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid(
            root,
            "not a folder (a sample pack is a folder of sound files)",
        ));
    }
    let mut audio = Vec::new();
    let mut other_files = 0;
    let mut not_scanned = 0;
    let mut walk_errors = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .max_depth(MAX_DEPTH)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| !is_hidden(e));
    for entry in walker {
        match entry {
            Ok(e) if e.file_type().is_file() => {
                if !is_audio(e.path()) {
                    other_files += 1;
                } else if audio.len() < MAX_FILES {
                    audio.push(e.into_path());
                } else {
                    not_scanned += 1;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let path = e.path().unwrap_or(root).to_path_buf();
                walk_errors.push(Entry {
                    file: path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                    outcome: Outcome::Error(format!("cannot list ({e}): {}", path.display())),
                });
            }
        }
    }
    let mut entries: Vec<Entry> = audio
        .par_iter()
        .map(|path| Entry {
            file: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
            outcome: match describe(path, options) {
                Ok(info) => Outcome::Note(info),
                Err(e) => Outcome::Error(e.to_string()),
            },
        })
        .collect();
    entries.extend(walk_errors);
    entries.sort_by(|a, b| a.file.cmp(&b.file));
    Ok(Scan {
        root: root.to_path_buf(),
        entries,
        other_files,
        not_scanned,
    })
}
