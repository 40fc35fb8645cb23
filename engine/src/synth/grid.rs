//! NSynth Super's pre-render: every cell of a res × res XY grid over four corner
//! instruments, at each pitch, decoded in batches, resumable, with an index of the files.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use autoencoder::Control;
use autoencoder::Sampling;
use serde::{Deserialize, Serialize};

use super::blend::{Weights, XyMode, xy_weights};
use super::render::{self, RenderOptions};
use super::{Batches, DecodeProgress, Engine, NoteSpec, Prepared, Sources, Voice};
use crate::audio::ReadOptions;
use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};
use crate::pitch::midi_name;

/// The name of the index written beside the cells.
pub const INDEX_FILE: &str = "index.json";
/// The largest grid side (a 33 × 33 grid is already 1,089 notes per pitch).
pub const MAX_RES: usize = 33;

#[derive(Debug, Clone)]
pub struct GridSpec {
    /// A, B, C, D: sound files or pack folders, at (0, 0), (1, 0), (0, 1), (1, 1).
    pub corners: [PathBuf; 4],
    pub res: usize,
    pub pitches: Vec<u8>,
    pub mode: XyMode,
    pub out_dir: PathBuf,
    pub render: RenderOptions,
    pub sampling: Sampling,
    pub read: ReadOptions,
    /// Voices decoded together (a finished batch is written before the next starts, so
    /// an interrupted grid loses at most one batch).
    pub batch: usize,
    /// Render cells whose files exist again, replacing them.
    pub overwrite: bool,
}

/// One cell of the grid, as the index lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub file: String,
    pub pitch: u8,
    pub ix: usize,
    pub iy: usize,
    pub x: f32,
    pub y: f32,
    /// Weights of A, B, C, D.
    pub weights: [f32; 4],
}

/// The index: what was asked for and every cell's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub model: String,
    pub res: usize,
    pub pitches: Vec<u8>,
    pub mode: XyMode,
    pub seed: u64,
    pub temperature: f32,
    pub corners: Vec<PathBuf>,
    pub cells: Vec<Cell>,
}

/// What a grid run did.
#[derive(Debug, Clone, Serialize)]
pub struct GridReport {
    pub cells: usize,
    pub rendered: usize,
    /// Cells whose files were already there.
    pub skipped: usize,
    pub index: PathBuf,
    /// Per pitch, the four corner notes used.
    pub sources: Vec<(u8, Vec<Prepared>)>,
    pub decode_secs: f64,
}

/// The cells of a grid, pitch by pitch, row by row: cell `i` of this list draws from
/// random stream `i`, so a resumed grid renders what a whole run would have.
pub fn cells(res: usize, pitches: &[u8], mode: XyMode) -> Vec<Cell> {
    let coord = |i: usize| {
        if res > 1 {
            i as f32 / (res - 1) as f32
        } else {
            0.5
        }
    };
    let mut out = Vec::with_capacity(res * res * pitches.len());
    for &pitch in pitches {
        for iy in 0..res {
            for ix in 0..res {
                let (x, y) = (coord(ix), coord(iy));
                out.push(Cell {
                    file: format!("{}_p{pitch:03}_x{ix}_y{iy}.wav", midi_name(pitch)),
                    pitch,
                    ix,
                    iy,
                    x,
                    y,
                    weights: xy_weights(x, y, mode),
                });
            }
        }
    }
    out
}

/// Renders the grid into `spec.out_dir`, skipping cells whose files exist (unless
/// `spec.overwrite`). `progress` sees the samples of the whole run; `log` gets one line
/// per notable event (the corner notes picked, each batch written).
pub fn run(
    engine: &Engine,
    spec: &GridSpec,
    control: &Control,
    progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    log: &mut dyn FnMut(&str),
) -> Result<GridReport> {
    let dir = &spec.out_dir;
    if spec.res == 0 || spec.res > MAX_RES {
        return Err(Error::invalid(
            dir,
            format!("grid resolution must be 1 to {MAX_RES}, got {}", spec.res),
        ));
    }
    if spec.pitches.is_empty() {
        return Err(Error::invalid(dir, "a grid needs at least one pitch"));
    }
    std::fs::create_dir_all(dir).map_err(|error| Error::Write {
        path: dir.clone(),
        error,
    })?;
    let all = cells(spec.res, &spec.pitches, spec.mode);
    let index = Index {
        model: engine.name().to_string(),
        res: spec.res,
        pitches: spec.pitches.clone(),
        mode: spec.mode,
        seed: spec.sampling.seed,
        temperature: spec.sampling.temperature,
        corners: spec.corners.to_vec(),
        cells: all.clone(),
    };
    let index_path = dir.join(INDEX_FILE);
    crate::fsutil::check_not_input(&index_path, &spec.corners)?;
    write_index(&index_path, &index)?;

    let todo: Vec<usize> = (0..all.len())
        .filter(|&i| spec.overwrite || !dir.join(&all[i].file).exists())
        .collect();
    let skipped = all.len() - todo.len();
    if skipped > 0 {
        log(&format!(
            "{skipped} of {} cells already rendered, skipped",
            all.len()
        ));
    }
    // The corners' notes and embeddings, per pitch that still has work.
    let mut corners: Vec<(u8, Sources)> = Vec::new();
    for &pitch in &spec.pitches {
        if !todo.iter().any(|&i| all[i].pitch == pitch) {
            continue;
        }
        let note = NoteSpec {
            read: spec.read,
            ..NoteSpec::at(pitch)
        };
        let notes = engine.sources(&spec.corners, &note)?;
        for (name, p) in ["A", "B", "C", "D"].iter().zip(&notes.prepared) {
            log(&format!("{} {name}: {}", midi_name(pitch), p.describe()));
        }
        corners.push((pitch, notes));
    }
    // No cell may be written over a file it is made from (a corner, or a pack's note).
    let inputs: Vec<std::path::PathBuf> = spec
        .corners
        .iter()
        .cloned()
        .chain(
            corners
                .iter()
                .flat_map(|(_, s)| s.prepared.iter().map(|p| p.file.clone())),
        )
        .collect();
    for &i in &todo {
        crate::fsutil::check_not_input(&dir.join(&all[i].file), &inputs)?;
    }
    let at_pitch = |pitch: u8| {
        corners
            .iter()
            .find(|(p, _)| *p == pitch)
            .map(|(_, s)| s)
            .ok_or_else(|| Error::invalid(dir, "internal: corner notes missing"))
    };

    let hop = engine.hop() as u64;
    let frames_of = |s: &Sources| s.embeddings.iter().map(|e| e.frames).max().unwrap_or(0) as u64;
    let total: u64 = todo
        .iter()
        .map(|&i| at_pitch(all[i].pitch).map_or(0, |s| frames_of(s) * hop))
        .sum();
    let mut batches = Batches::new(total);
    let mut rendered = 0;
    for batch in todo.chunks(spec.batch.max(1)) {
        let weights: Vec<Weights> = batch
            .iter()
            .map(|&i| Weights::Fixed(all[i].weights.to_vec()))
            .collect();
        // A model with an excitation is told each cell's pitch (its corners were encoded
        // at their own); one without plays the corners resampled to it. Each cell is as
        // loud as its corners and keeps all it decoded.
        let voices = batch
            .iter()
            .zip(&weights)
            .map(|(&i, w)| {
                let pitch = engine.held_pitch(Some(all[i].pitch));
                let voice = Voice::blend(at_pitch(all[i].pitch)?, w, pitch)?;
                Ok(Voice {
                    length: None,
                    ..voice
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let audio = batches.render(engine, batch, &voices, spec.sampling, control, progress)?;
        for (&i, audio) in batch.iter().zip(audio) {
            let overwrite = if spec.overwrite {
                Overwrite::Allowed
            } else {
                Overwrite::Never
            };
            render::write(&dir.join(&all[i].file), audio, &spec.render, overwrite)?;
            rendered += 1;
        }
        log(&format!("{rendered} of {} cells rendered", todo.len()));
    }
    Ok(GridReport {
        cells: all.len(),
        rendered,
        skipped,
        index: index_path,
        sources: corners
            .into_iter()
            .map(|(pitch, s)| (pitch, s.prepared))
            .collect(),
        decode_secs: batches.secs(),
    })
}

fn write_index(path: &Path, index: &Index) -> Result<()> {
    let json = serde_json::to_vec_pretty(index)
        .map_err(|e| Error::invalid(path, format!("cannot write the index ({e})")))?;
    write_atomic(path, Overwrite::Allowed, |out| {
        use std::io::Write;
        out.write_all(&json)?;
        out.write_all(b"\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cover_the_pad_and_pitches() {
        let c = cells(3, &[48, 60], XyMode::Cone);
        assert_eq!(c.len(), 18);
        assert_eq!(c[0].weights, [1.0, 0.0, 0.0, 0.0]);
        assert_eq!(c[2].weights, [0.0, 1.0, 0.0, 0.0]);
        assert_eq!(c[8].weights, [0.0, 0.0, 0.0, 1.0]);
        assert_eq!((c[4].x, c[4].y), (0.5, 0.5));
        assert_eq!(c[9].pitch, 60);
        let names: std::collections::HashSet<_> = c.iter().map(|c| &c.file).collect();
        assert_eq!(names.len(), 18, "file names are unique");
        assert_eq!(cells(1, &[60], XyMode::Cone)[0].weights, [0.25; 4]);
    }
}
