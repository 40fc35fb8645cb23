//! What an instrument renders and where: the keys and velocity layers it covers, the
//! notes that serve them, its zones, and the resumable work folder with its plan.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::InstrumentSpec;
use crate::error::{Error, Result};
use crate::fsutil::{Overwrite, write_atomic};
use crate::synth::{Engine, Weights};

/// The record of the request in the work folder.
pub(super) const PLAN_FILE: &str = "plan.json";

/// A rendered key and the keys it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySpan {
    pub key: u8,
    pub lo: u8,
    pub hi: u8,
}

/// The rendered keys from `lo` to `hi`, `every` apart (and `hi`), each covering the keys
/// nearer it than its neighbours (a tie goes to the lower one): every key of the range
/// once.
pub fn key_spans(lo: u8, hi: u8, every: u8) -> Vec<KeySpan> {
    let mut keys: Vec<u8> = (lo..=hi).step_by(usize::from(every.max(1))).collect();
    if keys.last() != Some(&hi) {
        keys.push(hi);
    }
    let n = keys.len();
    (0..n)
        .map(|i| KeySpan {
            key: keys[i],
            lo: if i == 0 {
                lo
            } else {
                (keys[i - 1] + keys[i]) / 2 + 1
            },
            hi: if i + 1 == n {
                hi
            } else {
                (keys[i] + keys[i + 1]) / 2
            },
        })
        .collect()
}

/// The velocity range each layer covers: from just above the previous layer's velocity
/// (the first from 1) to its own (the last to 127). `velocities` sorted, distinct, 1–127.
pub fn velocity_spans(velocities: &[u8]) -> Vec<(u8, u8)> {
    let n = velocities.len();
    velocities
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let lo = if i == 0 { 1 } else { velocities[i - 1] + 1 };
            let hi = if i + 1 == n { 127 } else { v };
            (lo, hi)
        })
        .collect()
}

/// One note to render: a key and the velocity layers it serves (layers whose sources
/// pick the same notes share one render).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedNote {
    pub file: String,
    pub key: u8,
    /// Indices into the request's velocities.
    pub velocities: Vec<usize>,
}

/// What was asked, as the work folder records it: a resumed run must ask the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Plan {
    pub(super) model: String,
    pub(super) sources: Vec<PathBuf>,
    pub(super) weights: Weights,
    pub(super) keys: Vec<KeySpan>,
    pub(super) velocities: Vec<u8>,
    pub(super) seconds: Option<f32>,
    pub(super) seed: u64,
    pub(super) temperature: f32,
    pub(super) layers: Vec<PlannedNote>,
}

/// The work folder of an output: `NAME.sf2.parts` beside `NAME.sf2`.
pub fn parts_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".parts");
    out.with_file_name(name)
}

/// The folder of an SFZ's WAVs: `NAME_samples` beside `NAME.sfz`.
pub fn samples_dir(out: &Path) -> PathBuf {
    let stem = out.file_stem().unwrap_or_default().to_string_lossy();
    out.with_file_name(format!("{stem}_samples"))
}

/// The notes to render, key by key: velocity layers whose sources pick the same notes
/// share one. Also the files they read (a pack's notes), none of which may be an output.
pub(super) fn plan_layers(
    engine: &Engine,
    spec: &InstrumentSpec,
    spans: &[KeySpan],
) -> Result<(Vec<PlannedNote>, Vec<PathBuf>)> {
    let mut layers = Vec::new();
    let mut read = spec.sources.clone();
    for span in spans {
        let mut groups: Vec<(Vec<PathBuf>, Vec<usize>)> = Vec::new();
        for (v, &velocity) in spec.velocities.iter().enumerate() {
            let files = spec
                .sources
                .iter()
                .map(|s| {
                    engine
                        .prepare_at(s, Some(span.key), Some(velocity), spec.read)
                        .map(|p| p.file)
                })
                .collect::<Result<Vec<_>>>()?;
            match groups.iter_mut().find(|(f, _)| *f == files) {
                Some((_, vs)) => vs.push(v),
                None => groups.push((files, vec![v])),
            }
        }
        for (files, velocities) in groups {
            read.extend(files);
            let top = velocities
                .iter()
                .map(|&v| spec.velocities[v])
                .max()
                .unwrap_or(0);
            layers.push(PlannedNote {
                file: format!("k{:03}_v{top:03}.wav", span.key),
                key: span.key,
                velocities,
            });
        }
    }
    read.sort();
    read.dedup();
    Ok((layers, read))
}

/// A zone: the note (index into the layers) and the keys and velocities it plays.
pub(super) type ZoneOf = (usize, KeySpan, (u8, u8));

/// Per rendered key and velocity layer, the note that plays it; neighbouring velocity
/// layers that play the same note are one zone.
pub(super) fn zones(
    layers: &[PlannedNote],
    spans: &[KeySpan],
    velocities: &[u8],
) -> Result<Vec<ZoneOf>> {
    let vel_spans = velocity_spans(velocities);
    let mut zones = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        let span = spans
            .iter()
            .find(|s| s.key == layer.key)
            .copied()
            .ok_or_else(|| Error::invalid(&layer.file, "internal: a note without its key"))?;
        for &v in &layer.velocities {
            zones.push((i, span, vel_spans[v]));
        }
    }
    zones.sort_by_key(|&(_, span, vel)| (span.key, vel.0));
    zones.dedup_by(|next, prev| {
        let joins = next.0 == prev.0 && next.1 == prev.1 && next.2.0 == prev.2.1 + 1;
        if joins {
            prev.2.1 = next.2.1;
        }
        joins
    });
    Ok(zones)
}

/// Creates the work folder with its plan, or checks that an existing one holds renders
/// of the same request; a folder of that name that holds anything but no plan is refused.
pub(super) fn open_parts(parts: &Path, plan: &Plan) -> Result<()> {
    let plan_path = parts.join(PLAN_FILE);
    if plan_path.exists() {
        let bytes = crate::error::read_bounded(&plan_path, 16 << 20)?;
        let old: Plan = serde_json::from_slice(&bytes)
            .map_err(|e| Error::invalid(&plan_path, format!("not a render plan ({e})")))?;
        if old != *plan {
            return Err(Error::invalid(
                parts,
                "holds the renders of a different request (model, sources, keys, velocities, length or seed); remove the folder to start again",
            ));
        }
        return Ok(());
    }
    // A folder of that name without a plan is not Timbrel's: its files would be taken
    // for renders and removed at the end. An empty one (a run stopped before its plan
    // was written) holds nothing to lose.
    if std::fs::read_dir(parts).is_ok_and(|mut entries| entries.next().is_some()) || parts.is_file()
    {
        return Err(Error::NotCreatedByTimbrel {
            path: parts.to_path_buf(),
            what: format!("a work folder without its {PLAN_FILE}"),
        });
    }
    std::fs::create_dir_all(parts).map_err(|error| Error::Write {
        path: parts.to_path_buf(),
        error,
    })?;
    let json = serde_json::to_vec_pretty(plan)
        .map_err(|e| Error::invalid(&plan_path, format!("cannot write the plan ({e})")))?;
    write_atomic(&plan_path, Overwrite::Allowed, |w| {
        use std::io::Write;
        w.write_all(&json)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_spans_cover_every_key_once() {
        for (lo, hi, every) in [
            (36, 84, 3),
            (36, 85, 3),
            (60, 60, 1),
            (0, 127, 7),
            (40, 44, 12),
        ] {
            let spans = key_spans(lo, hi, every);
            let covered: Vec<u8> = spans.iter().flat_map(|s| s.lo..=s.hi).collect();
            assert_eq!(covered, (lo..=hi).collect::<Vec<_>>(), "{lo}-{hi}/{every}");
            for s in &spans {
                assert!((s.lo..=s.hi).contains(&s.key));
                assert!(s.key - s.lo <= every / 2 + 1 && s.hi - s.key <= every / 2 + 1);
            }
        }
        let s = key_spans(36, 42, 3);
        assert_eq!(
            s.iter().map(|s| (s.key, s.lo, s.hi)).collect::<Vec<_>>(),
            [(36, 36, 37), (39, 38, 40), (42, 41, 42)]
        );
    }

    #[test]
    fn velocity_spans_cover_1_to_127_once() {
        assert_eq!(
            velocity_spans(&[64, 100, 127]),
            [(1, 64), (65, 100), (101, 127)]
        );
        assert_eq!(velocity_spans(&[100]), [(1, 127)]);
        assert_eq!(velocity_spans(&[30, 90]), [(1, 30), (31, 127)]);
    }
}
