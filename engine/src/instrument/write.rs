//! Writing the rendered notes out: one SoundFont 2, or an SFZ with its folder of WAVs.

use std::path::{Path, PathBuf};

use super::{InstrumentSpec, PlannedNote, ZoneOf, samples_dir, sf2, sfz};
use crate::audio::wav;
use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};
use crate::synth::Engine;

/// What goes into the written instrument.
pub(super) struct Written<'a> {
    pub layers: &'a [PlannedNote],
    pub notes: &'a [Vec<f32>],
    pub loops: &'a [Option<(u32, u32)>],
    pub zones: &'a [ZoneOf],
}

fn title(engine: &Engine, spec: &InstrumentSpec) -> String {
    format!(
        "{}: a Timbrel blend of {} ({})",
        instrument_name(&spec.out),
        spec.sources
            .iter()
            .map(|s| s
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned())
            .collect::<Vec<_>>()
            .join(", "),
        engine.name()
    )
}

fn overwrite(spec: &InstrumentSpec) -> Overwrite {
    if spec.overwrite {
        Overwrite::Allowed
    } else {
        Overwrite::Never
    }
}

pub(super) fn write_sf2(engine: &Engine, spec: &InstrumentSpec, w: &Written<'_>) -> Result<()> {
    let font = sf2::Font {
        name: title(engine, spec),
        instrument: instrument_name(&spec.out),
        presets: vec![sf2::Preset {
            name: instrument_name(&spec.out),
            bank: 0,
            program: 0,
        }],
        samples: w
            .layers
            .iter()
            .zip(w.notes)
            .zip(w.loops)
            .map(|((layer, audio), lp)| sf2::Sample {
                name: layer.file.trim_end_matches(".wav").to_string(),
                data: audio
                    .iter()
                    .map(|s| (s.clamp(-1.0, 1.0) * 32_767.0).round() as i16)
                    .collect(),
                rate_hz: spec.render.rate_hz,
                root_key: layer.key,
                sustain_loop: *lp,
                loop_after_release: false,
            })
            .collect(),
        zones: w
            .zones
            .iter()
            .map(|&(sample, span, vel)| sf2::Zone {
                sample,
                keys: (span.lo, span.hi),
                velocities: vel,
                release_secs: spec.release_secs,
            })
            .collect(),
    };
    let bytes = sf2::write(&font).map_err(|e| Error::invalid(&spec.out, e.to_string()))?;
    write_atomic(&spec.out, overwrite(spec), |out| {
        use std::io::Write;
        out.write_all(&bytes)
    })
}

/// Writes the WAVs into their folder, then the `.sfz` that points at them; returns the
/// folder.
pub(super) fn write_sfz(
    engine: &Engine,
    spec: &InstrumentSpec,
    w: &Written<'_>,
) -> Result<PathBuf> {
    let dir = samples_dir(&spec.out);
    std::fs::create_dir_all(&dir).map_err(|error| Error::Write {
        path: dir.clone(),
        error,
    })?;
    let folder = dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    for (layer, audio) in w.layers.iter().zip(w.notes) {
        wav::write(
            &dir.join(&layer.file),
            audio,
            spec.render.rate_hz,
            spec.render.format,
            Overwrite::Allowed,
        )?;
    }
    let regions: Vec<sfz::Region> = w
        .zones
        .iter()
        .map(|&(i, span, vel)| sfz::Region {
            sample: format!("{folder}/{}", w.layers[i].file),
            keycenter: span.key,
            keys: (span.lo, span.hi),
            velocities: vel,
            sustain_loop: w.loops[i],
        })
        .collect();
    let text = sfz::write(&title(engine, spec), spec.release_secs, &regions);
    write_atomic(&spec.out, overwrite(spec), |out| {
        use std::io::Write;
        out.write_all(text.as_bytes())
    })?;
    Ok(dir)
}

/// The instrument's name: the output's file stem.
fn instrument_name(out: &Path) -> String {
    out.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}
