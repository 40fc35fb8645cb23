//! A tiny dataset for the training tests: notes rendered by `timbrel dataset render` from
//! the tiny SoundFont, and the flags of a tiny student to train on them (included with
//! `#[path = "support/tiny_notes.rs"] mod tiny_notes;`).
#![allow(clippy::unwrap_used, dead_code)]

#[path = "../../../engine/tests/support/tiny_sf2.rs"]
mod tiny_sf2;

use std::path::Path;
use tests::{ok, timbrel};

/// Renders `dir/notes` (velocity 100) from a tiny SoundFont with a preset at each of
/// `programs`, at `pitches` (as `--pitches` takes them); the dataset's path.
pub fn render(dir: &Path, programs: &[u8], pitches: &str) -> String {
    let font = dir.join("tiny.sf2");
    std::fs::write(&font, tiny_sf2::tiny_sf2(programs)).unwrap();
    let notes = dir.join("notes").to_str().unwrap().to_string();
    let programs: Vec<String> = programs.iter().map(u8::to_string).collect();
    ok(&timbrel(&[
        "dataset",
        "render",
        "--soundfont",
        font.to_str().unwrap(),
        "--out",
        &notes,
        "--programs",
        &programs.join(","),
        "--pitches",
        pitches,
        "--velocities",
        "100",
        "--quiet",
    ]));
    notes
}

/// `timbrel train-student` flags for a student small enough to train in seconds: one
/// flow of width 4, batch 1 of 1,024 samples, one warm-up step.
pub const TINY_STUDENT: [&str; 10] = [
    "--batch", "1", "--crop", "1024", "--flows", "1", "--width", "4", "--warmup", "1",
];

/// With an encoder of its own (no teacher's): one layer of width 4.
pub const TINY_ENCODER: [&str; 4] = ["--encoder-layers", "1", "--encoder-width", "4"];
