//! A training run's folder: marked as Timbrel's when a run starts (`train/timbrel-run.json`),
//! so that starting over (`Overwrite::Allowed`) clears only a folder Timbrel made, and in it
//! only the files a run writes. Anything else there (a user's notes, another program's
//! `config.json`) is never removed; a folder with run files Timbrel did not mark is refused.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{LOG_FILE, STATE_DIR, STATE_FILE};
use crate::error::{Error, Result, read_bounded};
use crate::fsutil::{Overwrite, remove_own, write_atomic};
use crate::models::dir::WEIGHTS_FILE;

/// The mark of a run's folder, in its state folder.
pub const MARKER_FILE: &str = "timbrel-run.json";

/// What the mark says: which trainer made the folder (its config file's name).
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    made_by: String,
    config: String,
}

const MADE_BY: &str = "timbrel";

/// Refuses a start in `dir` before any work: over a model unless `overwrite`, and over a
/// folder holding a run's files that Timbrel did not make, whatever `overwrite` says.
pub(crate) fn check_start(dir: &Path, config_path: &Path, overwrite: Overwrite) -> Result<()> {
    if overwrite == Overwrite::Never && config_path.exists() {
        return Err(Error::ModelExists(config_path.to_path_buf()));
    }
    if let Some(found) = run_file_present(dir, config_path)
        && !made_by_timbrel(dir, config_path)
    {
        return Err(Error::NotCreatedByTimbrel {
            path: found,
            what: format!(
                "no {STATE_DIR}/{MARKER_FILE} and no earlier run's {STATE_DIR}/{STATE_FILE} beside a {}",
                file_name(config_path)
            ),
        });
    }
    Ok(())
}

/// Readies `dir` for a new run: a checked folder ([`check_start`]) is cleared of an
/// earlier run's files (only those), marked, and given its config (`json`, or why it
/// could not be written) at `config_path`.
pub(crate) fn init_dir(
    dir: &Path,
    config_path: &Path,
    overwrite: Overwrite,
    json: autoencoder::Result<String>,
) -> Result<()> {
    check_start(dir, config_path, overwrite)?;
    let state_dir = dir.join(STATE_DIR);
    if state_dir.exists() {
        remove_own(&state_dir, &state_files(&state_dir))?;
    }
    crate::fsutil::remove_files(dir, &[LOG_FILE, WEIGHTS_FILE])?;
    std::fs::create_dir_all(&state_dir).map_err(|error| Error::Write {
        path: state_dir.clone(),
        error,
    })?;
    let marker = Marker {
        made_by: MADE_BY.into(),
        config: file_name(config_path),
    };
    let marker_path = state_dir.join(MARKER_FILE);
    let text = serde_json::to_string_pretty(&marker)
        .map_err(|e| Error::invalid(&marker_path, format!("cannot write JSON ({e})")))?;
    write_atomic(&marker_path, Overwrite::Allowed, |out| {
        out.write_all(text.as_bytes())
    })?;
    let text = json.map_err(|error| Error::Model {
        path: config_path.to_path_buf(),
        error,
    })?;
    write_atomic(config_path, Overwrite::Allowed, |out| {
        out.write_all(text.as_bytes())
    })
}

/// Whether `dir` is a run's folder Timbrel made for this trainer: marked by it, or an
/// earlier run's (from before marks: its `train/state.json` beside the config).
pub fn made_by_timbrel(dir: &Path, config_path: &Path) -> bool {
    let marker_path = dir.join(STATE_DIR).join(MARKER_FILE);
    if marker_path.exists() {
        return read_bounded(&marker_path, 1 << 16)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Marker>(&bytes).ok())
            .is_some_and(|m| m.made_by == MADE_BY && m.config == file_name(config_path));
    }
    config_path.is_file() && dir.join(STATE_DIR).join(STATE_FILE).is_file()
}

/// The first of a run's files that is in `dir` (an empty state folder is none).
fn run_file_present(dir: &Path, config_path: &Path) -> Option<PathBuf> {
    let state_dir = dir.join(STATE_DIR);
    let state_used = std::fs::read_dir(&state_dir).is_ok_and(|mut e| e.next().is_some());
    [
        config_path.to_path_buf(),
        dir.join(WEIGHTS_FILE),
        dir.join(LOG_FILE),
    ]
    .into_iter()
    .find(|p| p.exists())
    .or_else(|| state_used.then_some(state_dir))
}

/// The names a run writes in its state folder that are there now.
fn state_files(state_dir: &Path) -> Vec<PathBuf> {
    let mut names: Vec<PathBuf> = vec![STATE_FILE.into(), MARKER_FILE.into()];
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        names.extend(
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| is_state_tensors(n))
                .map(PathBuf::from),
        );
    }
    names
}

/// `state-STEP.safetensors`: a checkpoint's state tensors.
pub(crate) fn is_state_tensors(name: &str) -> bool {
    name.strip_prefix("state-")
        .and_then(|rest| rest.strip_suffix(".safetensors"))
        .is_some_and(|step| !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_tensors_are_named_by_step() {
        assert!(is_state_tensors("state-00001200.safetensors"));
        assert!(!is_state_tensors("state-.safetensors"));
        assert!(!is_state_tensors("state-mine.safetensors"));
        assert!(!is_state_tensors("notes.txt"));
    }

    fn ok_json() -> autoencoder::Result<String> {
        Ok("{}".into())
    }

    #[test]
    fn a_folder_timbrel_did_not_make_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, b"someone else's").unwrap();
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(dir.path().join(STATE_DIR).join("mine.txt"), b"keep").unwrap();
        let err = init_dir(dir.path(), &config, Overwrite::Allowed, ok_json()).unwrap_err();
        assert!(matches!(err, Error::NotCreatedByTimbrel { .. }), "{err}");
        assert_eq!(std::fs::read(&config).unwrap(), b"someone else's");
        assert!(dir.path().join(STATE_DIR).join("mine.txt").exists());
    }

    #[test]
    fn starting_over_clears_only_the_runs_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("student.json");
        init_dir(dir.path(), &config, Overwrite::Never, ok_json()).unwrap();
        let state = dir.path().join(STATE_DIR);
        for name in ["state.json", "state-00000010.safetensors", "mine.txt"] {
            std::fs::write(state.join(name), b"x").unwrap();
        }
        std::fs::write(dir.path().join(LOG_FILE), b"x").unwrap();
        std::fs::write(dir.path().join("notes.md"), b"keep").unwrap();
        let err = init_dir(dir.path(), &config, Overwrite::Never, ok_json()).unwrap_err();
        assert!(matches!(err, Error::ModelExists(_)), "{err}");
        // Another trainer's config name is not this folder's run.
        let other = dir.path().join("config.json");
        std::fs::write(&other, b"{}").unwrap();
        let err = init_dir(dir.path(), &other, Overwrite::Allowed, ok_json()).unwrap_err();
        assert!(matches!(err, Error::NotCreatedByTimbrel { .. }), "{err}");
        std::fs::remove_file(&other).unwrap();
        init_dir(dir.path(), &config, Overwrite::Allowed, ok_json()).unwrap();
        assert!(!state.join("state.json").exists());
        assert!(!state.join("state-00000010.safetensors").exists());
        assert!(!dir.path().join(LOG_FILE).exists());
        assert_eq!(std::fs::read(state.join("mine.txt")).unwrap(), b"x");
        assert_eq!(std::fs::read(dir.path().join("notes.md")).unwrap(), b"keep");
        assert!(made_by_timbrel(dir.path(), &config));
    }

    #[test]
    fn an_earlier_run_without_a_mark_is_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.json");
        std::fs::write(&config, b"{}").unwrap();
        std::fs::create_dir(dir.path().join(STATE_DIR)).unwrap();
        std::fs::write(dir.path().join(STATE_DIR).join(STATE_FILE), b"{}").unwrap();
        assert!(made_by_timbrel(dir.path(), &config));
        init_dir(dir.path(), &config, Overwrite::Allowed, ok_json()).unwrap();
        assert!(dir.path().join(STATE_DIR).join(MARKER_FILE).exists());
    }
}
