//! The app: panels drawn by `*_ui` functions that return commands, applied after drawing.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use autoencoder::Control;
use autoencoder::Sampling;
use eframe::egui::{self, Color32, Key, Sense, Stroke, Vec2};
use engine::pack::Scan;
use engine::pitch::midi_name;
use engine::synth::{DecodeProgress, ModelSource, Weights, XyMode, xy_weights};

use super::audio::Player;
use super::midi::{Midi, MidiEvent};
use super::plots;
use super::state::{PadMode, State};
use super::worker::{Event, GridJob, Job, RenderJob, Rendered, Worker};

mod commands;
mod events;
mod files;
mod instrument_dialog;
mod keyboard;
mod live_keys;
mod pad;
mod panels;
mod preview;
mod result;
pub use commands::Command;
use instrument_dialog::instrument_ui;
use keyboard::keyboard_ui;
use live_keys::{LiveKeys, live_key_events};
use pad::blend_ui;
use panels::*;
pub use preview::{PREVIEW_RES, Preview};

/// How the app starts.
#[derive(Debug, Clone)]
pub struct Options {
    pub model: ModelSource,
    /// Open the default audio output (off in tests).
    pub audio: bool,
    /// Connect the first MIDI input port (off in tests).
    pub midi: bool,
    /// Use native file dialogs (off in tests: they need a desktop portal).
    pub dialogs: bool,
    /// Restore the last session from eframe's storage.
    pub restore: bool,
    /// Where the demo packs are put on first start (`None`: the user's data folder).
    pub data_dir: Option<PathBuf>,
    /// Start a render as soon as the model is ready (for the screenshot script).
    pub render_on_start: bool,
    /// The embedding cache (`None`: the user's, see `engine::synth::Cache`).
    pub cache_dir: Option<PathBuf>,
    /// Where the worker's model runs (`timbrel gui --device`).
    pub device: candle_core::Device,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            model: ModelSource::Default,
            audio: true,
            midi: true,
            dialogs: true,
            restore: true,
            data_dir: None,
            render_on_start: false,
            cache_dir: None,
            device: candle_core::Device::Cpu, // host: the window's default, `--device cpu`
        }
    }
}

/// An instrument export under way.
#[derive(Debug)]
pub struct InstrumentRun {
    pub control: Arc<Control>,
    pub progress: Option<DecodeProgress>,
    pub started: Instant,
    pub path: PathBuf,
}

#[derive(Debug)]
enum ModelStatus {
    Loading,
    Ready(ModelInfo),
    Failed(String),
}

/// A loaded model, as the worker reports it.
#[derive(Debug)]
struct ModelInfo {
    name: String,
    parameters: usize,
    decoder: String,
    /// Its decoder plays any pitch (an excitation).
    pitched: bool,
    /// A Parallel WaveNet student generates (the result follows the puck).
    parallel: bool,
}

impl ModelInfo {
    /// The status line's words for it.
    fn describe(&self) -> String {
        format!(
            "{}, {:.2} M parameters{}, decoding {}{}",
            self.name,
            self.parameters as f64 / 1e6,
            if self.pitched {
                ", plays any pitch"
            } else {
                ""
            },
            self.decoder,
            if self.parallel {
                "; the result follows the puck"
            } else {
                ""
            }
        )
    }
}

#[derive(Debug)]
struct Running {
    id: u64,
    control: Arc<Control>,
    progress: Option<DecodeProgress>,
    started: Instant,
    /// Play the result as soon as it is there (a render started by the puck).
    autoplay: bool,
    /// What was asked, to render the keyboard's keys of this result the same way.
    job: RenderJob,
}

/// A finished render and what its plots show.
#[derive(Debug)]
pub struct ResultView {
    pub rendered: Rendered,
    pub pitch: u8,
    pub waveform: Vec<[f64; 2]>,
    pub source_waveforms: Vec<Vec<[f64; 2]>>,
    pub embedding: Vec<Vec<[f64; 2]>>,
    pub spectrogram: (Vec<f64>, usize),
    transposed: HashMap<i32, Vec<f32>>,
    /// The render this is (its id) and how it was asked for: a pitched model's keys are
    /// rendered the same way at their own pitch.
    id: u64,
    job: Option<RenderJob>,
    /// Keys rendered at their own pitch (pitched models), by MIDI pitch.
    native: HashMap<u8, Vec<f32>>,
    /// Keys being rendered, with the control that cancels them.
    pending: HashMap<u8, Arc<Control>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Waveform,
    Embedding,
    Spectrogram,
}

/// The computer keyboard's row: a chromatic octave from the rendered pitch.
const KEYS: [(Key, i32); 13] = [
    (Key::A, 0),
    (Key::W, 1),
    (Key::S, 2),
    (Key::E, 3),
    (Key::D, 4),
    (Key::F, 5),
    (Key::T, 6),
    (Key::G, 7),
    (Key::Y, 8),
    (Key::H, 9),
    (Key::U, 10),
    (Key::J, 11),
    (Key::K, 12),
];

pub struct TimbrelApp {
    pub state: State,
    options: Options,
    worker: Worker,
    player: Player,
    pub(super) midi: Midi,
    /// The MIDI note playing (its note-off stops it).
    midi_note: Option<u8>,
    /// Keys played live (see `live_keys.rs`).
    pub live: LiveKeys,
    /// Scans of the sources, by path (`None` while scanning).
    pub scans: BTreeMap<PathBuf, Option<Result<Scan, String>>>,
    model: ModelStatus,
    running: Option<Running>,
    pub result: Option<ResultView>,
    next_id: u64,
    /// The last error, shown once in the status line until dismissed.
    pub error: Option<String>,
    /// The last thing that happened (rendered, exported, cancelled).
    pub notice: Option<String>,
    /// An export waiting for the user to confirm replacing a file.
    pub confirm_overwrite: Option<PathBuf>,
    /// Where the next export goes when dialogs are off (tests).
    pub export_path: Option<PathBuf>,
    view: View,
    /// Longest and mean time spent drawing a frame while a render ran (ms).
    pub frame_ms_during_render: (f32, f32, u32),
    commands: Vec<Command>,
    /// The background preview grid, if asked for (see `preview.rs`).
    pub preview: Option<Preview>,
    /// The preview cell last played.
    pub preview_cell: Option<(usize, usize)>,
    /// Render (and play) the blend as soon as the worker is free.
    queued_render: bool,
    /// The puck moved since the last render started (parallel decoders only).
    follow_puck: bool,
    /// The instrument export dialog is open.
    pub instrument_dialog: bool,
    /// An instrument export under way.
    pub instrument: Option<InstrumentRun>,
    /// An instrument export waiting for the user to confirm replacing a file.
    pub confirm_instrument: Option<PathBuf>,
    /// Where the next instrument goes when dialogs are off (tests).
    pub instrument_path: Option<PathBuf>,
}

impl std::fmt::Debug for TimbrelApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimbrelApp")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TimbrelApp {
    pub fn new(cc: &eframe::CreationContext<'_>, options: Options) -> Self {
        let restored: Option<State> = if options.restore {
            cc.storage
                .and_then(|s| eframe::get_value(s, eframe::APP_KEY))
        } else {
            None
        };
        let ctx = cc.egui_ctx.clone();
        let worker = Worker::start(
            options.model.clone(),
            options.cache_dir.clone(),
            options.device.clone(),
            move || ctx.request_repaint(),
        );
        let player = if options.audio {
            Player::open()
        } else {
            Player::none("no audio output (disabled)")
        };
        let midi = if options.midi {
            let ctx = cc.egui_ctx.clone();
            Midi::open(move || ctx.request_repaint())
        } else {
            Midi::none("no MIDI input (disabled)")
        };
        let mut app = Self {
            state: restored.unwrap_or_default(),
            options,
            worker,
            player,
            midi,
            midi_note: None,
            live: LiveKeys::default(),
            scans: BTreeMap::new(),
            model: ModelStatus::Loading,
            running: None,
            result: None,
            next_id: 1,
            error: None,
            notice: None,
            confirm_overwrite: None,
            export_path: None,
            view: View::Waveform,
            frame_ms_during_render: (0.0, 0.0, 0),
            commands: Vec::new(),
            preview: None,
            preview_cell: None,
            queued_render: false,
            follow_puck: false,
            instrument_dialog: false,
            instrument: None,
            confirm_instrument: None,
            instrument_path: None,
        };
        if app.state.packs.is_empty() {
            app.install_demo();
        }
        for pack in app.state.packs.clone() {
            app.scan(pack);
        }
        app
    }

    /// The embedded demo notes as the first four sources, one per corner.
    fn install_demo(&mut self) {
        let dir = self
            .options
            .data_dir
            .clone()
            .or_else(engine::demo::data_dir);
        let Some(dir) = dir else {
            self.error = Some("no data folder for the demo notes ($HOME is not set)".into());
            return;
        };
        match engine::demo::install(&dir) {
            Ok(packs) => {
                for (i, pack) in packs.iter().enumerate().take(4) {
                    self.state.corners[i] = Some(pack.clone());
                }
                self.state.packs = packs;
            }
            Err(e) => self.error = Some(format!("demo notes: {e}")),
        }
    }

    fn scan(&mut self, path: PathBuf) {
        self.scans.insert(path.clone(), None);
        self.worker.send(Job::Scan(path));
    }

    /// Whether a render is running.
    pub fn rendering(&self) -> bool {
        self.running.is_some()
    }

    /// Whether every source has been scanned and the model has loaded (or failed).
    pub fn idle(&self) -> bool {
        self.running.is_none()
            && self.scans.values().all(Option::is_some)
            && !matches!(self.model, ModelStatus::Loading)
    }

    pub fn model_ready(&self) -> bool {
        matches!(self.model, ModelStatus::Ready(_))
    }

    /// The blend weights the pad or slider gives, with the sources they apply to.
    pub fn blend_spec(&self) -> Result<(Vec<PathBuf>, Weights), String> {
        let corner = |i: usize| {
            self.state.corners[i].clone().ok_or_else(|| {
                format!(
                    "choose an instrument for corner {}",
                    ["A", "B", "C", "D"][i]
                )
            })
        };
        match self.state.mode {
            PadMode::Slider => {
                let t = self.state.mix.clamp(0.0, 1.0);
                Ok((
                    vec![corner(0)?, corner(1)?],
                    Weights::Fixed(vec![1.0 - t, t]),
                ))
            }
            PadMode::Xy => {
                let w = xy_weights(self.state.xy[0], self.state.xy[1], self.state.xy_mode());
                // Corners with no weight need no instrument.
                let mut sources = Vec::new();
                let mut weights = Vec::new();
                for (i, &w) in w.iter().enumerate() {
                    if w > 0.0 {
                        sources.push(corner(i)?);
                        weights.push(w);
                    }
                }
                Ok((sources, Weights::Fixed(weights)))
            }
        }
    }

    fn suggested_name(&self) -> String {
        let name = |p: &Option<PathBuf>| {
            p.as_ref()
                .and_then(|p| p.file_stem())
                .map_or_else(|| "x".to_string(), |s| s.to_string_lossy().into_owned())
        };
        format!(
            "{}-{}-{}.wav",
            name(&self.state.corners[0]),
            name(&self.state.corners[1]),
            midi_name(self.state.pitch)
        )
    }

    fn start_render(&mut self) {
        self.start_render_with(false);
    }

    fn pitched(&self) -> bool {
        matches!(&self.model, ModelStatus::Ready(m) if m.pitched)
    }

    /// Whether a Parallel WaveNet student generates (the result follows the puck).
    pub fn parallel(&self) -> bool {
        matches!(&self.model, ModelStatus::Ready(m) if m.parallel)
    }

    /// The audio output (tests: what was sent to it).
    #[cfg(test)]
    pub fn player_mut(&mut self) -> &mut Player {
        &mut self.player
    }

    /// Renders asked of the worker so far.
    #[cfg(test)]
    pub fn renders_started(&self) -> u64 {
        self.next_id
    }

    fn start_render_with(&mut self, autoplay: bool) {
        if self.running.is_some() {
            return;
        }
        self.yield_preview();
        let Some((sources, weights)) = self.ready_blend() else {
            return;
        };
        let id = self.next_id;
        self.next_id += 1;
        let control = Arc::new(Control::default());
        let job = RenderJob {
            id,
            sources,
            weights,
            pitch: self.state.pitch,
            velocity: self.state.velocity,
            seconds: self.state.note_seconds(),
            sampling: self.state.sampling(),
            control: Arc::clone(&control),
        };
        // The keys still rendering for the old result are of no use any more.
        if let Some(r) = &mut self.result {
            r.pending.values().for_each(|c| c.cancel());
            r.pending.clear();
        }
        self.worker.send(Job::Render(job.clone()));
        self.running = Some(Running {
            id,
            control,
            progress: None,
            started: Instant::now(),
            autoplay,
            job,
        });
        self.frame_ms_during_render = (0.0, 0.0, 0);
        self.notice = None;
    }
}

impl eframe::App for TimbrelApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        self.poll();
        let mut commands = std::mem::take(&mut self.commands);

        // Files and folders dropped on the window become sources.
        ctx.input(|i| {
            for file in &i.raw.dropped_files {
                let path = file.path();
                if !path.as_os_str().is_empty() {
                    commands.push(Command::AddSource(path.to_path_buf()));
                }
            }
        });
        // Shortcuts: Ctrl+R renders, Escape cancels, Space plays; the key row plays
        // the live engine (a pitched student) or the result transposed.
        let live = self.live_keys();
        if !ctx.egui_wants_keyboard_input() {
            ctx.input(|i| {
                if live {
                    live_key_events(i, &mut commands);
                }
                if i.modifiers.command && i.key_pressed(Key::R) {
                    commands.push(Command::Render);
                } else if i.key_pressed(Key::Escape) {
                    commands.push(Command::Cancel);
                } else if i.key_pressed(Key::Space) {
                    commands.push(Command::PlayResult);
                } else if !i.modifiers.command && !live {
                    for (key, semitones) in KEYS {
                        if i.key_pressed(key) {
                            commands.push(Command::PlayTransposed(semitones));
                        }
                    }
                }
            });
        }

        self.midi_notes(&mut commands);

        egui::Panel::top("menu").show(ui, |ui| commands.extend(menu_ui(ui)));
        let status = Status {
            model: &self.model,
            instrument: self.instrument.as_ref(),
            reading: !self.rendering() && !self.idle(),
            player: self.player.describe(),
            midi: self.midi.describe(),
            midi_note: self.midi_note(),
            live: self.live_status(),
            result: self.result.as_ref(),
            notice: self.notice.as_deref(),
            error: self.error.as_deref(),
        };
        egui::Panel::bottom("status").show(ui, |ui| commands.extend(status_ui(ui, status)));
        egui::Panel::left("sources")
            .resizable(true)
            .default_size(320.0)
            .show(ui, |ui| {
                commands.extend(sources_ui(ui, &self.state, &self.scans))
            });
        egui::CentralPanel::default().show(ui, |ui| {
            let preview = self.preview.as_ref().map(Preview::describe);
            commands.extend(blend_ui(ui, &mut self.state, &self.scans, preview));
            ui.separator();
            let can_render = self.model_ready() && self.running.is_none();
            commands.extend(render_ui(
                ui,
                can_render,
                &self.player,
                self.result.as_ref(),
                &mut self.state.export,
            ));
            ui.separator();
            commands.extend(plots_ui(
                ui,
                &mut self.view,
                self.running.as_ref(),
                self.result.as_ref(),
            ));
        });
        if self.instrument_dialog {
            let (blend, ready) = (self.blend_spec().map(|_| ()), self.model_ready());
            let seconds = self.state.note_seconds();
            commands.extend(instrument_ui(
                &ctx,
                &mut self.state.instrument,
                self.instrument.as_ref(),
                ready,
                blend,
                seconds,
            ));
        }
        if let Some(path) = self
            .confirm_instrument
            .as_ref()
            .or(self.confirm_overwrite.as_ref())
        {
            commands.extend(confirm_ui(&ctx, path));
        }

        for command in commands {
            self.apply(command, &ctx);
        }
        self.live_sync();
        if self.queued_render && self.running.is_none() {
            self.queued_render = false;
            self.start_render_with(true);
        } else if self.follow_puck && self.running.is_none() {
            self.follow_puck = false;
            self.start_render_with(false);
        }
        self.update_preview();
        if self.preview.as_ref().is_some_and(Preview::running) {
            ctx.request_repaint_after(std::time::Duration::from_millis(250));
        }
        if self.instrument.is_some() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
        if self.running.is_some() {
            // Keep the progress bar moving; the worker also wakes us on each report.
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
            let ms = started.elapsed().as_secs_f32() * 1e3;
            let (max, mean, n) = self.frame_ms_during_render;
            self.frame_ms_during_render =
                (max.max(ms), (mean * n as f32 + ms) / (n + 1) as f32, n + 1);
        }
        if self.player.playing() || self.live_sounding() {
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        eframe::set_value(storage, eframe::APP_KEY, &self.state);
    }
}
