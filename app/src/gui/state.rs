//! What the app remembers across restarts (eframe storage) and in session files.

use std::path::PathBuf;

use autoencoder::Sampling;
use engine::audio::wav::WavFormat;
use engine::instrument::Format;
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

impl ExportSettings {
    /// How a note is written with these settings (an instrument's notes are never
    /// trimmed: their length is the note's).
    pub fn render_options(&self, trim: bool) -> engine::synth::RenderOptions {
        engine::synth::RenderOptions {
            trim_silence: trim && self.trim,
            fade_out_ms: self.fade_ms,
            format: self.format,
            rate_hz: self.rate_hz,
        }
    }
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

/// File → Export instrument…'s settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstrumentSettings {
    /// The lowest and highest key.
    pub low: u8,
    pub high: u8,
    /// A note is rendered every this many semitones.
    pub every: u8,
    /// Velocity layers, comma-separated as typed.
    pub velocities: String,
    pub format: Format,
    /// Release after a key is let go, in seconds.
    pub release: f32,
}

impl Default for InstrumentSettings {
    fn default() -> Self {
        Self {
            low: 36,
            high: 84,
            every: 3,
            velocities: "64,100,127".into(),
            format: Format::Sf2,
            release: 0.3,
        }
    }
}

impl InstrumentSettings {
    /// The velocity layers typed, rising and distinct, or why they are not usable.
    pub fn velocity_layers(&self) -> Result<Vec<u8>, String> {
        let mut out = self
            .velocities
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<u8>()
                    .ok()
                    .filter(|v| (1..=127).contains(v))
                    .ok_or_else(|| format!("velocity {v:?} is not 1 to 127"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_unstable();
        out.dedup();
        if out.is_empty() {
            return Err("give at least one velocity".into());
        }
        Ok(out)
    }

    /// Notes an export renders (keys × layers, at most).
    pub fn notes(&self) -> usize {
        let keys =
            engine::instrument::key_spans(self.low, self.high.max(self.low), self.every.max(1))
                .len();
        keys * self.velocity_layers().map_or(0, |v| v.len())
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
    /// Length of a rendered note in seconds; 0: the sources' own.
    pub seconds: f32,
    pub export: ExportSettings,
    pub last_export: Option<PathBuf>,
    pub instrument: InstrumentSettings,
    /// Keys played live: the rise from a key's press to full level, seconds.
    pub live_attack_secs: f32,
    /// Keys played live: the fall after a key's release, seconds.
    pub live_release_secs: f32,
}

impl State {
    /// How the XY pad's position becomes corner weights.
    pub fn xy_mode(&self) -> XyMode {
        XyMode::from_bilinear(self.bilinear)
    }

    /// The note length asked for (`None`: the sources').
    pub fn note_seconds(&self) -> Option<f32> {
        (self.seconds > 0.0).then_some(self.seconds)
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
            seconds: 0.0,
            export: ExportSettings::default(),
            last_export: None,
            instrument: InstrumentSettings::default(),
            live_attack_secs: 0.01,
            live_release_secs: 0.3,
        }
    }
}
