//! Timbrel as a CLAP instrument (on clack): notes in (CLAP and MIDI dialects), stereo
//! audio out, the pad (X, Y, pad mode, A↔B mix), attack, release and gain as automatable
//! parameters, and the four corners with the parameters saved as JSON in the project.
//!
//! Three threads: the host's main thread ([`MainThread`]: parameters' info, state, the
//! log), the audio thread ([`audio::AudioProcessor`]: events → the live engine → the
//! buffer) and our loader ([`loader`]: the model, the corners, the engine of each
//! activation). Until the loader has delivered, and after anything fails, the plugin plays
//! silence and says why in the host's log.

mod audio;
mod extensions;
pub mod loader;
pub mod params;
pub mod state;
pub mod status;

use std::cell::{Cell, RefCell};
use std::ffi::CString;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32};

use clack_extensions::latency::PluginLatency;
use clack_extensions::log::{HostLog, LogSeverity};
use clack_extensions::{audio_ports::PluginAudioPorts, note_ports::PluginNotePorts};
use clack_extensions::{params::PluginParams, render::PluginRender, state::PluginState};
use clack_plugin::prelude::*;

pub use audio::{AudioProcessor, BEND_SEMITONES};
use loader::{Job, Loader};
use params::{Param, Values};
use state::Corner;
use status::{Severity, Status};

/// The plugin's CLAP id.
pub const PLUGIN_ID: &str = "org.timbrel.timbrel";

/// The plugin type clack instantiates.
#[derive(Debug)]
pub struct Timbrel;

impl Plugin for Timbrel {
    type AudioProcessor<'a> = AudioProcessor<'a>;
    type Shared<'a> = Shared;
    type MainThread<'a> = MainThread<'a>;

    fn declare_extensions(builder: &mut PluginExtensions<Self>, _shared: Option<&Shared>) {
        builder
            .register::<PluginAudioPorts>()
            .register::<PluginNotePorts>()
            .register::<PluginParams>()
            .register::<PluginRender>()
            .register::<PluginState>()
            .register::<PluginLatency>();
    }
}

impl DefaultPluginFactory for Timbrel {
    fn get_descriptor() -> PluginDescriptor {
        use clack_plugin::plugin::features::{INSTRUMENT, STEREO, SYNTHESIZER};
        PluginDescriptor::new(PLUGIN_ID, "Timbrel")
            .with_vendor("Timbrel")
            .with_version(env!("CARGO_PKG_VERSION"))
            .with_description(
                "A neural synthesizer: four instruments on a pad, blended by an NSynth-style autoencoder",
            )
            .with_features([INSTRUMENT, SYNTHESIZER, STEREO])
    }

    fn new_shared(_host: HostSharedHandle<'_>) -> Result<Shared, PluginError> {
        Ok(Shared {
            values: Values::default(),
            status: Arc::new(Status::default()),
            offline: AtomicBool::new(false),
            latency_frames: AtomicU32::new(0),
        })
    }

    fn new_main_thread<'a>(
        host: HostMainThreadHandle<'a>,
        shared: &'a Shared,
    ) -> Result<MainThread<'a>, PluginError> {
        let log = host.get_extension::<HostLog>();
        let loader = Loader::start(Arc::clone(&shared.status))?;
        Ok(MainThread {
            host,
            log,
            shared,
            loader,
            paths: RefCell::new([None, None, None, None]),
            model: RefCell::new(None),
            started: Cell::new(false),
            sent: RefCell::new(None),
        })
    }
}

/// What every thread reads.
#[derive(Debug)]
pub struct Shared {
    pub(crate) values: Values,
    pub(crate) status: Arc<Status>,
    /// The host renders offline (a bounce): no voice is stopped to keep up with time.
    pub(crate) offline: AtomicBool,
    /// The latency of this activation's engine in host frames, set when the host
    /// activates the plugin (what the latency extension reports for its delay
    /// compensation).
    pub(crate) latency_frames: AtomicU32,
}

impl PluginShared<'_> for Shared {}

/// The host's main thread: parameters' info, state, the log.
pub struct MainThread<'a> {
    host: HostMainThreadHandle<'a>,
    log: Option<HostLog>,
    shared: &'a Shared,
    pub(crate) loader: Loader,
    /// The sound file or pack folder of each corner in the saved state (what a corner
    /// parameter at [`params::CORNER_FROM_FILE`] plays).
    paths: RefCell<[Option<PathBuf>; 4]>,
    /// The model directory in the saved state (`None`: the embedded student).
    model: RefCell<Option<PathBuf>>,
    /// Whether the loader may be given corners: from the first activation or state load
    /// on (so a project's own are not preceded by encoding the defaults).
    started: Cell<bool>,
    /// What the loader was last given.
    pub(crate) sent: RefCell<Option<([Corner; 4], Option<PathBuf>)>>,
}

impl std::fmt::Debug for MainThread<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainThread")
            .field("paths", &self.paths)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl<'a> PluginMainThread<'a, Shared> for MainThread<'a> {
    fn on_main_thread(&self) {
        self.sync_corners();
        self.log_reports();
    }
}

impl MainThread<'_> {
    /// The corners the corner parameters and the saved paths say.
    pub(crate) fn corners(&self) -> [Corner; 4] {
        let paths = self.paths.borrow();
        std::array::from_fn(|i| {
            let default = || Corner::Demo(engine::demo::PACKS[i].to_string());
            let value = self.shared.values.of(Param::Corner(i as u8)).round() as usize;
            match (value, &paths[i]) {
                (0, Some(path)) => Corner::Path(path.clone()),
                // Nothing saved to play: the corner's default instrument.
                (0, None) => default(),
                (n, _) => engine::demo::PACKS
                    .get(n - 1)
                    .map_or_else(default, |name| Corner::Demo(name.to_string())),
            }
        })
    }

    /// From now on the loader gets the corners (and at once, unless it has them).
    pub(crate) fn start_corners(&self) {
        self.started.set(true);
        self.sync_corners();
    }

    /// Gives the loader the corners and model if they changed since it last had them.
    pub(crate) fn sync_corners(&self) {
        if !self.started.get() {
            return;
        }
        let now = (self.corners(), self.model.borrow().clone());
        if self.sent.borrow().as_ref() == Some(&now) {
            return;
        }
        *self.sent.borrow_mut() = Some(now.clone());
        let (corners, model) = now;
        self.loader.send(Job::Corners { corners, model });
    }

    /// Takes a loaded state's corners: a path is kept and played (its parameter at
    /// [`params::CORNER_FROM_FILE`]), a demo sets its parameter.
    pub(crate) fn set_corners(&self, corners: &[Corner; 4], model: Option<PathBuf>) {
        let mut paths = self.paths.borrow_mut();
        for (i, corner) in corners.iter().enumerate() {
            let value = match corner {
                Corner::Path(path) => {
                    paths[i] = Some(path.clone());
                    params::CORNER_FROM_FILE
                }
                Corner::Demo(name) => {
                    paths[i] = None;
                    engine::demo::PACKS
                        .iter()
                        .position(|p| p == name)
                        .map_or(i + 1, |p| p + 1) as f32
                }
            };
            self.shared.values.set_param(Param::Corner(i as u8), value);
        }
        *self.model.borrow_mut() = model;
    }

    /// Writes the loader's messages to the host's log (stderr where it has none).
    pub(crate) fn log_reports(&self) {
        for report in self.shared.status.drain() {
            let severity = match report.severity {
                Severity::Info => LogSeverity::Info,
                Severity::Warning => LogSeverity::Warning,
                Severity::Error => LogSeverity::Error,
            };
            let line = format!("Timbrel: {}", report.message);
            match (&self.log, CString::new(line.replace('\0', " "))) {
                (Some(log), Ok(text)) => log.log(&self.host.shared(), severity, &text),
                _ => eprintln!("[{severity}] {line}"),
            }
        }
    }
}

clack_export_entry!(SinglePluginEntry<Timbrel>);
