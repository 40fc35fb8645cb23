//! The loader thread: everything slow or fallible happens here, never on the audio thread
//! and never blocking it. It loads the model, encodes the corners, and for each
//! activation builds a [`LiveEngine`] at the host's rate and hands it to the audio thread
//! through a one-slot lock-free ring; later corners reach a running engine through its
//! [`CornerSwap`]. Whatever fails is said through [`Status`] and leaves the plugin silent.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use autoencoder::student::StudentAutoencoder;
use engine::live::{CornerSwap, Corners, LiveConfig, LiveEngine};
use engine::synth::{Engine, ModelSource};

use crate::state::Corner;
use crate::status::{Severity, Status};

/// The most voices the plugin plays at once.
pub const MAX_VOICES: usize = 16;

/// What the main thread asks of the loader.
#[derive(Debug)]
pub enum Job {
    /// Use these corners (and this model: `None` is the embedded student).
    Corners {
        corners: [Corner; 4],
        model: Option<PathBuf>,
    },
    /// The host activated the plugin: build an engine for it and send it down `engines`.
    Activate {
        rate_hz: u32,
        max_block_frames: usize,
        engines: rtrb::Producer<Box<LiveEngine>>,
    },
    /// The host deactivated the plugin (the engine went with the audio processor).
    Deactivate,
}

/// The loader thread's handle, owned by the main thread; dropping it stops the thread
/// (after the step it is in) and waits for it.
#[derive(Debug)]
pub struct Loader {
    jobs: Option<Sender<Job>>,
    quit: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Loader {
    /// Starts the thread; it loads the embedded model at once (most projects use it).
    pub fn start(status: Arc<Status>) -> std::io::Result<Self> {
        let (jobs, rx) = channel();
        let quit = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            status,
            quit: Arc::clone(&quit),
            model: None,
            corners: None,
            active: None,
        };
        let thread = std::thread::Builder::new()
            .name("timbrel-loader".into())
            .spawn(move || worker.run(rx))?;
        Ok(Self {
            jobs: Some(jobs),
            quit,
            thread: Some(thread),
        })
    }

    pub fn send(&self, job: Job) {
        // The thread only ends when this handle drops; a send can only fail if it
        // panicked, and then there is nobody to tell but the log it already wrote.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(job);
        }
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Release);
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A loaded model: the synthesizer engine (its encoder reads the corners) and the student
/// the voices stream.
struct Model {
    synth: Engine,
    student: Arc<StudentAutoencoder>,
}

/// The engine of the current activation.
struct Active {
    rate_hz: u32,
    max_block_frames: usize,
    /// Until the engine is built and sent.
    engines: Option<rtrb::Producer<Box<LiveEngine>>>,
    /// Once it is, with the model it plays (`None`: the embedded one).
    swap: Option<(CornerSwap, Option<PathBuf>)>,
}

struct Worker {
    status: Arc<Status>,
    quit: Arc<AtomicBool>,
    /// The model asked for and how loading it went.
    model: Option<(Option<PathBuf>, Result<Model, String>)>,
    /// The corners asked for and how encoding them went.
    corners: Option<([Corner; 4], Result<Corners, String>)>,
    active: Option<Active>,
}

impl Worker {
    fn run(mut self, jobs: Receiver<Job>) {
        self.load_model(None);
        while let Ok(job) = jobs.recv() {
            if self.quit.load(Ordering::Acquire) {
                return;
            }
            match job {
                Job::Corners { corners, model } => {
                    self.load_model(model);
                    self.encode(corners);
                }
                Job::Activate {
                    rate_hz,
                    max_block_frames,
                    engines,
                } => {
                    self.active = Some(Active {
                        rate_hz,
                        max_block_frames,
                        engines: Some(engines),
                        swap: None,
                    });
                }
                Job::Deactivate => self.active = None,
            }
            self.deliver();
        }
    }

    /// Loads `choice` unless it is what is loaded (or failed to load) already.
    fn load_model(&mut self, choice: Option<PathBuf>) {
        if matches!(&self.model, Some((c, _)) if *c == choice) {
            return;
        }
        let loaded = load_model(choice.as_ref());
        match &loaded {
            Ok(model) => self.status.report(
                Severity::Info,
                format!("model loaded: {}", model.synth.name()),
            ),
            Err(why) => {
                self.status.set_playable(false);
                self.status
                    .report(Severity::Error, format!("silent: {why}"));
            }
        }
        // New corners must be encoded by the new model.
        self.corners = None;
        self.model = Some((choice, loaded));
    }

    fn encode(&mut self, corners: [Corner; 4]) {
        let Some((_, Ok(model))) = &self.model else {
            // The model's failure was reported; keep the corners for when one loads.
            self.corners = Some((corners, Err("no model".into())));
            return;
        };
        let encoded = encode_corners(&model.synth, &corners);
        match &encoded {
            Ok(_) => self.status.report(
                Severity::Info,
                format!(
                    "corners ready: {}",
                    corners
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Err(why) => {
                self.status.set_playable(false);
                self.status
                    .report(Severity::Error, format!("silent: {why}"));
            }
        }
        self.corners = Some((corners, encoded));
    }

    /// Builds the activation's engine once the model and corners are ready, or gives a
    /// running one the new corners; says whether it can play.
    fn deliver(&mut self) {
        let (Some((choice, Ok(model))), Some((_, Ok(corners))), Some(active)) =
            (&self.model, &self.corners, &mut self.active)
        else {
            return;
        };
        if let Some((swap, playing)) = &active.swap {
            if playing != choice {
                // A running engine keeps its model; a new one needs a new engine, built
                // at the next activation (the main thread asked the host for a restart).
                self.status.set_playable(false);
                self.status.report(
                    Severity::Warning,
                    "silent until the host restarts the plugin: the model changed",
                );
                return;
            }
            match swap.swap(corners.clone()) {
                Ok(()) => self.status.set_playable(true),
                Err(e) => {
                    self.status.set_playable(false);
                    self.status.report(
                        Severity::Error,
                        format!("silent: the corners do not fit the engine: {e}"),
                    );
                }
            }
            return;
        }
        let Some(engines) = active.engines.as_mut() else {
            return;
        };
        if engines.is_abandoned() {
            return;
        }
        let cfg = LiveConfig {
            output_rate_hz: active.rate_hz,
            max_block_frames: active.max_block_frames,
            max_voices: MAX_VOICES,
            helper_threads: 1,
            envelope: true,
        };
        match LiveEngine::new(Arc::clone(&model.student), corners.clone(), cfg) {
            Ok(live) => {
                let swap = live.corner_swap();
                let latency_ms = live.latency_secs() * 1000.0;
                if engines.push(Box::new(live)).is_ok() {
                    active.swap = Some((swap, choice.clone()));
                    active.engines = None;
                    self.status.set_playable(true);
                    self.status.report(
                        Severity::Info,
                        format!(
                            "playing at {} Hz ({latency_ms:.1} ms latency)",
                            active.rate_hz
                        ),
                    );
                }
            }
            Err(e) => {
                active.engines = None;
                self.status.set_playable(false);
                self.status.report(
                    Severity::Error,
                    format!(
                        "silent: the voice engine cannot run at {} Hz in blocks of {}: {e}",
                        active.rate_hz, active.max_block_frames
                    ),
                );
            }
        }
    }
}

fn load_model(choice: Option<&PathBuf>) -> Result<Model, String> {
    let source = match choice {
        Some(dir) => ModelSource::Dir(dir.clone()),
        None => ModelSource::Default,
    };
    let device = candle_core::Device::Cpu;
    let synth = Engine::load(&source, Some(engine::synth::DecoderKind::Parallel), &device)
        .map_err(|e| format!("the model will not load: {e}"))?;
    let student = synth.student_model().ok_or_else(|| {
        format!(
            "the model has no Parallel WaveNet student: {}",
            synth.name()
        )
    })?;
    Ok(Model { synth, student })
}

/// The corners' sources on disk: the demo instruments are written under the user's data
/// folder (as the app does) the first time one is used.
fn resolve(corners: &[Corner; 4]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::with_capacity(4);
    let mut demo: Option<Vec<PathBuf>> = None;
    for (letter, corner) in ['A', 'B', 'C', 'D'].into_iter().zip(corners) {
        match corner {
            Corner::Path(path) => {
                if !path.exists() {
                    return Err(format!(
                        "corner {letter}'s sound is gone (moved or deleted?): {}",
                        path.display()
                    ));
                }
                out.push(path.clone());
            }
            Corner::Demo(name) => {
                if demo.is_none() {
                    let dir = engine::demo::data_dir().ok_or_else(|| {
                        "no folder for the demo instruments (neither TIMBREL_DATA_DIR, XDG_DATA_HOME nor HOME is set)".to_string()
                    })?;
                    demo = Some(
                        engine::demo::install(&dir)
                            .map_err(|e| format!("the demo instruments cannot be written: {e}"))?,
                    );
                }
                let index = engine::demo::PACKS
                    .iter()
                    .position(|p| p == name)
                    .ok_or_else(|| format!("corner {letter}: no demo instrument called {name}"))?;
                let folder = demo
                    .as_ref()
                    .and_then(|d| d.get(index))
                    .ok_or_else(|| format!("corner {letter}: the demo {name} was not installed"))?;
                out.push(folder.clone());
            }
        }
    }
    Ok(out)
}

fn encode_corners(synth: &Engine, corners: &[Corner; 4]) -> Result<Corners, String> {
    let sources = resolve(corners)?;
    let sources: Vec<&std::path::Path> = sources.iter().map(PathBuf::as_path).collect();
    Corners::encode(synth, &sources).map_err(|e| format!("the corners cannot be read: {e}"))
}
