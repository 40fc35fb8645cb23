//! A tiny dataset for the training tests: notes rendered by `timbrel dataset render` from
//! the tiny SoundFont (included with `#[path = "support/tiny_notes.rs"] mod tiny_notes;`).
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
