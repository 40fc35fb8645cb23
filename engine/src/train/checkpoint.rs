//! A run's files: its exact state (`train/state.json` and the `state-STEP.safetensors` it
//! names), written once per checkpoint for every family, read back on resume, and its log
//! (`train_log.jsonl`), trimmed on resume to the checkpoint it continues from.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use autoencoder::optim::Optimizer;
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{InstrumentKey, LOG_FILE, STATE_DIR, STATE_FILE, Split, TrainData, TrainOptions};
use crate::error::{Error, Result, read_bounded};
use crate::fsutil::{Overwrite, write_atomic, write_tensors};
use crate::models::dir::WEIGHTS_FILE;

/// The resumable part of a run, `train/state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub options: TrainOptions,
    pub step: u64,
    /// Word position of the batch sampler's ChaCha8 stream.
    pub rng_word_pos: u128,
    pub tensors_file: String,
    pub validation_instruments: BTreeSet<InstrumentKey>,
    pub samples_seen: u64,
    pub train_secs: f64,
}

/// The datasets a model in `dir` was trained on and the instruments its run held out for
/// validation; `None` if the directory has no training state.
pub fn validation_split(dir: &Path) -> Result<Option<(Vec<PathBuf>, BTreeSet<InstrumentKey>)>> {
    let path = dir.join(STATE_DIR).join(STATE_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let bytes = read_bounded(&path, 64 << 20)?;
    let state: State = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&path, format!("not a training state ({e})")))?;
    Ok(Some((state.options.data, state.validation_instruments)))
}

/// A run's `train/state.json`, with `steps` as the new total when given.
pub(crate) fn read_state(dir: &Path, steps: Option<u64>) -> Result<State> {
    let state_path = dir.join(STATE_DIR).join(STATE_FILE);
    let bytes = read_bounded(&state_path, 64 << 20)?;
    let mut state: State = serde_json::from_slice(&bytes)
        .map_err(|e| Error::invalid(&state_path, format!("not a training state ({e})")))?;
    if let Some(steps) = steps {
        state.options = state.options.clone().with_steps(steps, state.step);
    }
    Ok(state)
}

/// What a resume does to the state tensors before they are restored (a student grown by
/// sub-partials pads its excitation rows there).
pub(crate) type Adapt<'a> = &'a dyn Fn(&mut HashMap<String, Tensor>) -> Result<()>;

/// What a resumed run continues from: its data with the same split, the optimiser
/// restored into `varmap` (the model's fresh variables) from the state tensors (after
/// `adapt`), the batch sampler at its word, and the log trimmed to the checkpoint.
pub(crate) fn restore(
    dir: &Path,
    state: &State,
    varmap: &VarMap,
    device: &Device,
    adapt: Adapt<'_>,
) -> Result<(TrainData, Optimizer, ChaCha8Rng)> {
    let data = TrainData::open(
        &state.options.data,
        &split(&state.options),
        Some(&state.validation_instruments),
    )?;
    let tensors_path = dir.join(STATE_DIR).join(&state.tensors_file);
    let tensors_bytes = read_bounded(&tensors_path, 8 << 30)?;
    crate::error::check_safetensors(&tensors_path, &tensors_bytes)?;
    let mut tensors = candle_core::safetensors::load_buffer(&tensors_bytes, device)
        .map_err(|e| Error::invalid(&tensors_path, e.to_string()))?;
    adapt(&mut tensors)?;
    let optimizer = Optimizer::restore(varmap, state.options.optimizer(), &tensors, state.step)
        .map_err(|error| Error::Model {
            path: tensors_path.clone(),
            error,
        })?;
    let mut rng = sampler(state.options.seed);
    rng.set_word_pos(state.rng_word_pos);
    trim_log(&dir.join(LOG_FILE), state.step)?;
    Ok((data, optimizer, rng))
}

/// How a run's instruments are split, from its options.
pub(crate) fn split(options: &TrainOptions) -> Split {
    Split {
        validation_share: options.validation_share,
        seed: options.seed,
    }
}

/// The batch sampler's random stream at its start: the run's seed, stream 1.
pub(crate) fn sampler(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(1);
    rng
}

/// Writes a run's model (its EMA weights as `weights.safetensors`) and its exact state
/// (`train/state-STEP.safetensors`, then `train/state.json` naming it, last); older state
/// tensors are removed. `state.tensors_file` is filled in here.
pub(crate) fn write_checkpoint(dir: &Path, optimizer: &Optimizer, mut state: State) -> Result<()> {
    write_tensors(
        &dir.join(WEIGHTS_FILE),
        &optimizer.ema(),
        Overwrite::Allowed,
    )?;
    let tensors_file = format!("state-{:08}.safetensors", state.step);
    let state_dir = dir.join(STATE_DIR);
    write_tensors(
        &state_dir.join(&tensors_file),
        &optimizer.state(),
        Overwrite::Allowed,
    )?;
    state.tensors_file = tensors_file.clone();
    let path = state_dir.join(STATE_FILE);
    let text = serde_json::to_string_pretty(&state).map_err(json_err(&path))?;
    write_atomic(&path, Overwrite::Allowed, |out| {
        out.write_all(text.as_bytes())
    })?;
    // Older state tensors are no longer named by state.json.
    if let Ok(entries) = std::fs::read_dir(&state_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if super::run_dir::is_state_tensors(&name) && name != tensors_file {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// Appends one event to the run's `train_log.jsonl`.
pub(crate) fn append_log(dir: &Path, event: &impl Serialize) -> Result<()> {
    let path = dir.join(LOG_FILE);
    let mut line = serde_json::to_string(event).map_err(json_err(&path))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|error| Error::Write {
            path: path.clone(),
            error,
        })?;
    file.write_all(line.as_bytes())
        .map_err(|error| Error::Write { path, error })
}

/// Drops the log's lines of steps after `step` (a run that was killed after its last
/// checkpoint logged steps the resumed run will take again), so the log reads as one run.
fn trim_log(path: &Path, step: u64) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let bytes = read_bounded(path, 1 << 30)?;
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
                .is_none_or(|s| s <= step)
        })
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    let mut out = kept.join("\n");
    out.push('\n');
    write_atomic(path, Overwrite::Allowed, |f| f.write_all(out.as_bytes()))
}

fn json_err(path: &Path) -> impl Fn(serde_json::Error) -> Error + '_ {
    move |e| Error::invalid(path, format!("cannot write JSON ({e})"))
}
