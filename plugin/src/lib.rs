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
use std::sync::atomic::AtomicBool;

use clack_extensions::log::{HostLog, LogSeverity};
use clack_extensions::{audio_ports::PluginAudioPorts, note_ports::PluginNotePorts};
use clack_extensions::{params::PluginParams, render::PluginRender, state::PluginState};
use clack_plugin::prelude::*;

pub use audio::{AudioProcessor, BEND_SEMITONES};
use loader::{Job, Loader};
use params::Values;
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
            .register::<PluginState>();
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
            corners: RefCell::new(state::default_corners()),
            model: RefCell::new(None),
            corners_sent: Cell::new(false),
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
}

impl PluginShared<'_> for Shared {}

/// The host's main thread: parameters' info, state, the log.
pub struct MainThread<'a> {
    host: HostMainThreadHandle<'a>,
    log: Option<HostLog>,
    shared: &'a Shared,
    pub(crate) loader: Loader,
    corners: RefCell<[Corner; 4]>,
    model: RefCell<Option<PathBuf>>,
    /// Whether the loader has been given corners (the defaults go at the first
    /// activation, so a project's own are not preceded by encoding the demo's).
    corners_sent: Cell<bool>,
}

impl std::fmt::Debug for MainThread<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainThread")
            .field("corners", &self.corners)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl<'a> PluginMainThread<'a, Shared> for MainThread<'a> {
    fn on_main_thread(&self) {
        self.log_reports();
    }
}

impl MainThread<'_> {
    /// Sends the corners to the loader unless it has some.
    pub(crate) fn start_corners(&self) {
        if !self.corners_sent.get() {
            self.send_corners();
        }
    }

    fn send_corners(&self) {
        self.corners_sent.set(true);
        self.loader.send(Job::Corners {
            corners: self.corners.borrow().clone(),
            model: self.model.borrow().clone(),
        });
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
