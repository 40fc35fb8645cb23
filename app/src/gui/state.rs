//! What the app remembers across restarts (eframe storage) and in session files.

use std::path::PathBuf;

use autoencoder::Sampling;
use engine::audio::wav::WavFormat;
use engine::synth::XyMode;
use serde::{Deserialize, Serialize};

/// How the blend is controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PadMode {
    /// Four corners, NSynth Super's XY pad.
    #[default]
    Xy,
    /// Two sources (corners A and B), a slider between them.
    Slider,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExportSettings {
    pub format: WavFormat,
    pub rate_hz: u32,
    pub trim: bool,
    pub fade_ms: f32,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            format: WavFormat::S16,
            rate_hz: 44_100,
            trim: false,
            fade_ms: 20.0,
        }
    }
}

/// The persisted part of the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct State {
    /// Sample-pack folders (or single sound files) in the sources list.
    pub packs: Vec<PathBuf>,
    /// A, B, C, D: an entry of `packs` each.
    pub corners: [Option<PathBuf>; 4],
    pub mode: PadMode,
    /// Puck position, (0, 0) = A, (1, 0) = B, (0, 1) = C, (1, 1) = D.
    pub xy: [f32; 2],
    /// Slider mode: 0 = A, 1 = B.
    pub mix: f32,
    pub bilinear: bool,
    /// Pre-render a grid of the corners in the background (see `app/preview.rs`).
    pub preview_grid: bool,
    /// MIDI pitch of the blend.
    pub pitch: u8,
    /// Preferred velocity layer of the packs' notes.
    pub velocity: u8,
    pub temperature: f32,
    pub seed: u64,
    pub export: ExportSettings,
    pub last_export: Option<PathBuf>,
}

impl State {
    /// How the XY pad's position becomes corner weights.
    pub fn xy_mode(&self) -> XyMode {
        if self.bilinear {
            XyMode::Bilinear
        } else {
            XyMode::Cone
        }
    }

    /// The sampling settings of a render (a negative temperature is greedy, as 0).
    pub fn sampling(&self) -> Sampling {
        Sampling {
            temperature: self.temperature.max(0.0),
            seed: self.seed,
        }
    }
}

impl Default for State {
    fn default() -> Self {
        Self {
            packs: Vec::new(),
            corners: [None, None, None, None],
            mode: PadMode::Xy,
            xy: [0.5, 0.5],
            mix: 0.5,
            bilinear: false,
            preview_grid: false,
            pitch: 60,
            velocity: 100,
            temperature: 1.0,
            seed: 0,
            export: ExportSettings::default(),
            last_export: None,
        }
    }
}
