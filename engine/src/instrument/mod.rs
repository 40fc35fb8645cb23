//! A blend as a playable instrument: the blend rendered at sampled keys and velocities,
//! written as a SoundFont 2 (`.sf2`) or an SFZ (`.sfz` and a folder of WAVs) that any
//! sampler plays at every key, held for as long as the key is where a clean sustain loop
//! exists ([`looping`]).
//!
//! Rendering is resumable as the grid is: each note is written to a work folder beside
//! the output (`NAME.sf2.parts/`) as soon as its batch is decoded, with a record of what
//! was asked; a run with the same request skips the notes already there, and the notes
//! and plan go once the instrument is written (then the folder, if that emptied it). A
//! folder of that name without a plan is refused, never adopted.

pub mod looping;
mod plan;
pub mod sf2;
pub mod sfz;
mod write;
pub use plan::{KeySpan, PlannedNote, key_spans, parts_dir, samples_dir, velocity_spans};
use plan::{PLAN_FILE, Plan, ZoneOf, open_parts, plan_layers, zones};
use write::{Written, write_sf2, write_sfz};

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use autoencoder::Control;
use autoencoder::Sampling;
use serde::{Deserialize, Serialize};

use crate::audio::wav::{self, WavFormat};
use crate::audio::{ReadOptions, SAMPLE_RATE_HZ};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::synth::render::{self, PEAK_LIMIT, RenderOptions};
use crate::synth::{Batches, DecodeProgress, Engine, NoteSpec, PITCH_RANGE, Voice, Weights};

/// The most notes one instrument renders.
pub const MAX_NOTES: usize = 2_048;

/// What is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One `.sf2` file, samples inside (16-bit).
    Sf2,
    /// An `.sfz` text file and a folder of WAVs beside it (`NAME_samples/`).
    Sfz,
}

impl Format {
    /// The format a file name asks for (`.sf2` or `.sfz`).
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "sf2" => Some(Self::Sf2),
            "sfz" => Some(Self::Sfz),
            _ => None,
        }
    }
}

/// An instrument to render.
#[derive(Debug, Clone)]
pub struct InstrumentSpec {
    /// The blend's sources: sound files or sample-pack folders (a pack gives, at each key
    /// and velocity, its nearest note).
    pub sources: Vec<PathBuf>,
    /// One per source.
    pub weights: Weights,
    /// The lowest and highest key the instrument plays.
    pub keys: (u8, u8),
    /// A note is rendered every this many semitones (the top key always); the keys
    /// between play the nearest rendered note, shifted by the sampler.
    pub every: u8,
    /// Velocity layers: each covers the velocities above the previous one up to itself
    /// (the first from 1, the last to 127).
    pub velocities: Vec<u8>,
    /// Note length in seconds (`None`: the sources').
    pub seconds: Option<f32>,
    /// The release after a key is let go, in seconds.
    pub release_secs: f32,
    /// `NAME.sf2` or `NAME.sfz`.
    pub out: PathBuf,
    /// Rate, fade-out and (for SFZ's WAVs) sample format; trimming is not used.
    pub render: RenderOptions,
    pub sampling: Sampling,
    pub read: ReadOptions,
    /// Notes decoded together.
    pub batch: usize,
    /// Replace an existing output.
    pub overwrite: bool,
}

/// What an export did.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub file: PathBuf,
    /// The SFZ's folder of WAVs.
    pub samples_dir: Option<PathBuf>,
    pub keys: usize,
    /// Notes in the instrument (renders).
    pub notes: usize,
    /// Notes decoded by this run (the rest were in the work folder).
    pub rendered: usize,
    /// Notes with a sustain loop.
    pub looped: usize,
    /// Key × velocity zones (SF2) or regions (SFZ).
    pub zones: usize,
    /// The one gain applied to every note (dB).
    pub gain_db: f32,
    pub decode_secs: f64,
}

fn check(engine: &Engine, spec: &InstrumentSpec) -> Result<Format> {
    let out = &spec.out;
    let format = Format::of(out).ok_or_else(|| {
        Error::invalid(out, "an instrument is written as .sf2 or .sfz; name it so")
    })?;
    let (lo, hi) = spec.keys;
    if lo > hi || hi > 127 {
        return Err(Error::invalid(
            out,
            format!("the key range {lo}-{hi} is empty or above 127"),
        ));
    }
    if engine.pitched()
        && !(PITCH_RANGE.contains(&f32::from(lo)) && PITCH_RANGE.contains(&f32::from(hi)))
    {
        return Err(Error::Pitch(format!(
            "the model plays MIDI {} to {}; keys {lo}-{hi} reach outside",
            PITCH_RANGE.start(),
            PITCH_RANGE.end()
        )));
    }
    if spec.every == 0 {
        return Err(Error::invalid(out, "keys are rendered at least 1 apart"));
    }
    let sorted = spec.velocities.windows(2).all(|w| w[0] < w[1]);
    if spec.velocities.is_empty()
        || !sorted
        || spec.velocities.iter().any(|v| !(1..=127).contains(v))
    {
        return Err(Error::invalid(
            out,
            format!(
                "velocities must be rising, distinct and 1 to 127, got {:?}",
                spec.velocities
            ),
        ));
    }
    let notes = key_spans(lo, hi, spec.every).len() * spec.velocities.len();
    if notes > MAX_NOTES {
        return Err(Error::invalid(
            out,
            format!("{notes} notes is more than the {MAX_NOTES} an instrument may render"),
        ));
    }
    crate::synth::sources::check_seconds(spec.seconds)?;
    crate::fsutil::check_not_input(out, &spec.sources)?;
    if !(spec.release_secs.is_finite() && (0.0..=20.0).contains(&spec.release_secs)) {
        return Err(Error::invalid(
            out,
            format!("a release of {} s is not 0 to 20 s", spec.release_secs),
        ));
    }
    if !spec.overwrite {
        for path in [
            Some(out.clone()),
            (format == Format::Sfz).then(|| samples_dir(out)),
        ]
        .into_iter()
        .flatten()
        {
            if path.exists() {
                return Err(Error::Exists(path));
            }
        }
    }
    Ok(format)
}

/// Renders the instrument and writes it; `progress` sees the samples decoded, `log`
/// one line per notable event.
pub fn run(
    engine: &Engine,
    spec: &InstrumentSpec,
    control: &Control,
    progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    log: &mut dyn FnMut(&str),
) -> Result<Report> {
    let format = check(engine, spec)?;
    let spans = key_spans(spec.keys.0, spec.keys.1, spec.every);
    let (layers, inputs) = plan_layers(engine, spec, &spans)?;
    // Nothing written may be a file the instrument is made from, even with `overwrite`.
    crate::fsutil::check_not_input(&spec.out, &inputs)?;
    if format == Format::Sfz {
        let samples = samples_dir(&spec.out);
        for layer in &layers {
            crate::fsutil::check_not_input(&samples.join(&layer.file), &inputs)?;
        }
    }
    let plan = Plan {
        model: engine.identity().to_string(),
        sources: spec.sources.clone(),
        weights: spec.weights.clone(),
        keys: spans.clone(),
        velocities: spec.velocities.clone(),
        seconds: spec.seconds,
        seed: spec.sampling.seed,
        temperature: spec.sampling.temperature,
        layers: layers.clone(),
    };
    let parts = parts_dir(&spec.out);
    open_parts(&parts, &plan)?;

    let todo: Vec<usize> = (0..layers.len())
        .filter(|&i| !parts.join(&layers[i].file).exists())
        .collect();
    log(&format!(
        "{} keys × {} velocity layers: {} notes to render{}",
        spans.len(),
        spec.velocities.len(),
        layers.len(),
        if todo.len() < layers.len() {
            format!(
                ", {} already in {}",
                layers.len() - todo.len(),
                parts.display()
            )
        } else {
            String::new()
        }
    ));
    let decode_secs = render_layers(engine, spec, &layers, &todo, &parts, control, progress, log)?;

    let (notes, gain) = read_notes(&parts, &layers, &spec.render)?;
    let rate = spec.render.rate_hz;
    let loops: Vec<Option<(u32, u32)>> = layers
        .iter()
        .zip(&notes)
        .map(|(layer, audio)| {
            let f0 = autoencoder::excitation::midi_to_hz(f32::from(layer.key));
            looping::find(audio, rate, f0).map(|l| (l.start as u32, l.end as u32))
        })
        .collect();
    let zones = zones(&layers, &spans, &spec.velocities)?;
    let written = Written {
        layers: &layers,
        notes: &notes,
        loops: &loops,
        zones: &zones,
    };
    let samples_dir = match format {
        Format::Sf2 => {
            write_sf2(engine, spec, &written)?;
            None
        }
        Format::Sfz => Some(write_sfz(engine, spec, &written)?),
    };
    // The work folder has served: its plan and the renders go (only what this run
    // wrote: anything else put there stays, and so does the folder then); a failure to
    // remove them leaves only scratch behind.
    let ours: Vec<PathBuf> = layers
        .iter()
        .map(|l| PathBuf::from(&l.file))
        .chain([PathBuf::from(PLAN_FILE)])
        .collect();
    let _ = crate::fsutil::remove_own(&parts, &ours);
    Ok(Report {
        file: spec.out.clone(),
        samples_dir,
        keys: spans.len(),
        notes: layers.len(),
        rendered: todo.len(),
        looped: loops.iter().flatten().count(),
        zones: zones.len(),
        gain_db: 20.0 * gain.log10(),
        decode_secs,
    })
}

/// Every rendered note at the output rate, faded as asked, and the one gain that brings
/// the loudest to [`PEAK_LIMIT`] (applied to all: velocity layers keep their levels).
fn read_notes(
    parts: &Path,
    layers: &[PlannedNote],
    render: &RenderOptions,
) -> Result<(Vec<Vec<f32>>, f32)> {
    let mut notes = Vec::with_capacity(layers.len());
    for layer in layers {
        let raw = read_raw(&parts.join(&layer.file))?;
        notes.push(render::shape(raw, render)?.0);
    }
    let peak = notes.iter().flatten().fold(0f32, |m, s| m.max(s.abs()));
    let gain = if peak > 1e-6 { PEAK_LIMIT / peak } else { 1.0 };
    notes
        .iter_mut()
        .for_each(|n| n.iter_mut().for_each(|s| *s *= gain));
    Ok((notes, gain))
}

/// Decodes the layers `todo` in batches, writing each note to `parts` as its batch ends.
#[allow(clippy::too_many_arguments)]
fn render_layers(
    engine: &Engine,
    spec: &InstrumentSpec,
    layers: &[PlannedNote],
    todo: &[usize],
    parts: &Path,
    control: &Control,
    progress: &mut dyn FnMut(&DecodeProgress) -> ControlFlow<()>,
    log: &mut dyn FnMut(&str),
) -> Result<f64> {
    let hop = engine.hop() as u64;
    let mut batches = Batches::default();
    let mut rendered = 0;
    for batch in todo.chunks(spec.batch.max(1)) {
        let all_sources = batch
            .iter()
            .map(|&i| {
                let layer = &layers[i];
                let note = NoteSpec {
                    pitch: Some(layer.key),
                    velocity: Some(spec.velocities[layer.velocities[0]]),
                    seconds: spec.seconds,
                    read: spec.read,
                };
                engine.sources(&spec.sources, &note)
            })
            .collect::<Result<Vec<_>>>()?;
        // Each as loud as its sources (two or more blended; see synth::level) and as
        // long as its note.
        let voices = batch
            .iter()
            .zip(&all_sources)
            .map(|(&i, sources)| {
                let pitch = engine.held_pitch(Some(layers[i].key));
                Voice::blend(sources, &spec.weights, pitch)
            })
            .collect::<Result<Vec<_>>>()?;
        if batches.total == 0 {
            // Every note is as long as the first batch's (the same sources' lengths, or
            // the length asked for), an estimate good enough for the bar.
            let per = voices
                .iter()
                .map(|v| v.embedding.frames as u64 * hop)
                .max()
                .unwrap_or(0);
            batches.total = per * todo.len() as u64;
        }
        let audio = batches.render(engine, batch, &voices, spec.sampling, control, progress)?;
        for (&i, audio) in batch.iter().zip(audio) {
            wav::write(
                &parts.join(&layers[i].file),
                &audio,
                SAMPLE_RATE_HZ,
                WavFormat::F32,
                Overwrite::Allowed,
            )?;
            rendered += 1;
        }
        log(&format!("{rendered} of {} notes rendered", todo.len()));
    }
    Ok(batches.secs())
}

/// A note the work folder holds (a 32-bit float WAV at 16 kHz this module wrote).
fn read_raw(path: &Path) -> Result<Vec<f32>> {
    let bad = |e: hound::Error| Error::invalid(path, format!("not a render of this export ({e})"));
    let reader = hound::WavReader::open(path).map_err(bad)?;
    let spec = reader.spec();
    if spec.sample_format != hound::SampleFormat::Float
        || spec.channels != 1
        || spec.sample_rate != SAMPLE_RATE_HZ
        || reader.len() as usize > MAX_NOTE_SAMPLES
    {
        return Err(Error::invalid(path, "not a render of this export"));
    }
    reader
        .into_samples::<f32>()
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(bad)
}

/// The longest note the work folder may hold (a minute at 16 kHz, with a frame to spare).
const MAX_NOTE_SAMPLES: usize = 61 * SAMPLE_RATE_HZ as usize;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_name() {
        assert_eq!(Format::of(Path::new("a/b.SF2")), Some(Format::Sf2));
        assert_eq!(Format::of(Path::new("b.sfz")), Some(Format::Sfz));
        assert_eq!(Format::of(Path::new("b.wav")), None);
        assert_eq!(parts_dir(Path::new("x/p.sf2")), Path::new("x/p.sf2.parts"));
        assert_eq!(samples_dir(Path::new("x/p.sfz")), Path::new("x/p_samples"));
    }
}
