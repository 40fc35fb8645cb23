//! What a project saves: the four corners (sound files, pack folders or the embedded demo
//! instruments), the model (the embedded student unless a directory is named) and every
//! parameter, as JSON through the CLAP state extension.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::params::{PARAMS, Spec, Values};

/// The version written; a state from a newer plugin is refused rather than misread.
pub const STATE_VERSION: u32 = 1;

/// Where a corner's sound comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Corner {
    /// One of the demo instruments embedded in the plugin (`engine::demo::PACKS`).
    Demo(String),
    /// A sound file or a sample-pack folder.
    Path(PathBuf),
}

impl std::fmt::Display for Corner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Demo(name) => write!(f, "the demo {name}"),
            Self::Path(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The default corners: the four demo instruments, A to D.
pub fn default_corners() -> [Corner; 4] {
    engine::demo::PACKS.map(|name| Corner::Demo(name.to_string()))
}

/// The saved state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Saved {
    pub version: u32,
    /// A, B, C, D.
    pub corners: [Corner; 4],
    /// A student's model directory; `None`: the student embedded in the plugin.
    pub model: Option<PathBuf>,
    /// Plain values by [`Spec::key`]; a key this version does not know is ignored, a
    /// missing one keeps its default.
    pub params: BTreeMap<String, f32>,
}

impl Default for Saved {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            corners: default_corners(),
            model: None,
            params: PARAMS
                .iter()
                .map(|s| (s.key.to_string(), s.default))
                .collect(),
        }
    }
}

/// Why a state could not be read.
#[derive(Debug)]
pub enum StateError {
    Json(serde_json::Error),
    Version(u32),
    UnknownDemo(String),
}

impl std::fmt::Display for StateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Json(e) => write!(f, "the saved Timbrel state cannot be read: {e}"),
            Self::Version(v) => write!(
                f,
                "the saved Timbrel state is version {v}, newer than this plugin reads ({STATE_VERSION}): update the plugin"
            ),
            Self::UnknownDemo(name) => write!(
                f,
                "the saved Timbrel state names a demo instrument that does not exist: {name} (there are {})",
                engine::demo::PACKS.join(", ")
            ),
        }
    }
}

impl Saved {
    /// The current parameters with these corners and model.
    pub fn capture(corners: &[Corner; 4], model: Option<PathBuf>, values: &Values) -> Self {
        Self {
            version: STATE_VERSION,
            corners: corners.clone(),
            model,
            params: PARAMS
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key.to_string(), values.get(i)))
                .collect(),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings, paths and floats always serialises; NaN (never stored:
        // `Values` clamps it away) would be written as null.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, StateError> {
        let saved: Self = serde_json::from_slice(bytes).map_err(StateError::Json)?;
        if saved.version > STATE_VERSION {
            return Err(StateError::Version(saved.version));
        }
        for corner in &saved.corners {
            if let Corner::Demo(name) = corner
                && !engine::demo::PACKS.contains(&name.as_str())
            {
                return Err(StateError::UnknownDemo(name.clone()));
            }
        }
        Ok(saved)
    }

    /// Writes the saved parameters into `values` (the others keep theirs).
    pub fn apply_params(&self, values: &Values) {
        for (key, value) in &self.params {
            if let Some((index, _)) = Spec::of_key(key) {
                values.set(index, *value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_it_cannot_read() {
        let values = Values::default();
        values.set(0, 0.25);
        let corners = [
            Corner::Path("/x/a.wav".into()),
            Corner::Demo("piano".into()),
            Corner::Demo("strings".into()),
            Corner::Path("/packs/b".into()),
        ];
        let saved = Saved::capture(&corners, Some("/m".into()), &values);
        let back = Saved::from_json(&saved.to_json()).unwrap();
        assert_eq!(back, saved);
        let fresh = Values::default();
        back.apply_params(&fresh);
        assert_eq!(fresh.get(0), 0.25);

        // Missing fields take their defaults; unknown parameter keys are ignored.
        let partial = Saved::from_json(br#"{"params": {"x": 1.0, "wobble": 3}}"#).unwrap();
        assert_eq!(partial.corners, default_corners());
        partial.apply_params(&fresh);
        assert_eq!(fresh.get(0), 1.0);

        assert!(matches!(
            Saved::from_json(b"{not json"),
            Err(StateError::Json(_))
        ));
        assert!(matches!(
            Saved::from_json(br#"{"version": 99}"#),
            Err(StateError::Version(99))
        ));
        let bad = br#"{"corners": [{"demo": "kazoo"}, {"demo": "piano"}, {"demo": "piano"}, {"demo": "piano"}]}"#;
        assert!(matches!(
            Saved::from_json(bad),
            Err(StateError::UnknownDemo(n)) if n == "kazoo"
        ));
    }
}
