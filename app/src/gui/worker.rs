//! The worker thread: it owns the engine (the model never runs on the GUI thread), takes
//! jobs over a channel and answers with events; the GUI drains them each frame.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use autoencoder::Control;
use autoencoder::Sampling;
use engine::audio::{ReadOptions, SAMPLE_RATE_HZ};
use engine::fsutil::Overwrite;
use engine::instrument::{self, InstrumentSpec};
use engine::live::{CornerSwap, Corners, LiveConfig, LiveEngine};
use engine::pack::Scan;
use engine::synth::render::{self, RenderOptions};
use engine::synth::{
    DecodeProgress, Embedding, Engine, ModelSource, NoteSpec, Prepared, Voice, Weights, XyMode,
};

/// What the GUI asks for.
#[derive(Debug)]
pub enum Job {
    Scan(PathBuf),
    Render(RenderJob),
    /// A pitched model's note for one key of the keyboard: `job` is the result `of`'s
    /// render at the key's pitch (sources nearest it, the decoder told it).
    Key {
        of: u64,
        job: RenderJob,
    },
    /// The preview grid: every cell of a res × res XY grid over the four corners.
    Grid(GridJob),
    Export {
        audio: Arc<Vec<f32>>,
        path: PathBuf,
        options: RenderOptions,
        /// The files the render was made from: never written over.
        inputs: Vec<PathBuf>,
    },
    /// File → Export instrument…: the blend at sampled keys and velocities, as an SF2 or
    /// SFZ (progress and failure come as `InstrumentProgress` and `InstrumentDone`).
    Instrument {
        spec: Box<InstrumentSpec>,
        control: Arc<Control>,
    },
    /// The live engine's corners (A, B, C, D: pack folders or sound files), encoded here
    /// and swapped into the engine; the first time, the engine is built for a device at
    /// `output_rate_hz` and sent back (`Event::LiveReady`).
    Live {
        corners: Vec<PathBuf>,
        output_rate_hz: u32,
    },
}

#[derive(Debug, Clone)]
pub struct RenderJob {
    pub id: u64,
    pub sources: Vec<PathBuf>,
    pub weights: Weights,
    pub pitch: u8,
    pub velocity: u8,
    /// The note's length (`None`: the sources').
    pub seconds: Option<f32>,
    pub sampling: Sampling,
    pub control: Arc<Control>,
}

#[derive(Debug, Clone)]
pub struct GridJob {
    pub id: u64,
    pub corners: [PathBuf; 4],
    pub res: usize,
    pub mode: XyMode,
    pub pitch: u8,
    pub velocity: u8,
    pub sampling: Sampling,
    pub control: Arc<Control>,
}

/// A finished render: what was decoded and what went into it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub audio: Vec<f32>,
    pub sources: Vec<Prepared>,
    pub blend: Embedding,
    /// Samples per embedding frame of the model that rendered it.
    pub hop: usize,
    pub decode_secs: f64,
    pub realtime_factor: f64,
}

/// What the worker reports.
#[derive(Debug)]
pub enum Event {
    ModelReady {
        name: String,
        parameters: usize,
        decoder: String,
        /// The model takes a pitch (has an excitation): keys get renders of their own.
        pitched: bool,
        /// A Parallel WaveNet student generates: renders are fast enough for the result
        /// to follow the puck.
        parallel: bool,
    },
    ModelFailed(String),
    /// A key's own render for the result `of` (see [`Job::Key`]).
    KeyRendered {
        of: u64,
        pitch: u8,
        audio: Result<Vec<f32>, String>,
        cancelled: bool,
    },
    Scanned {
        path: PathBuf,
        scan: Result<Scan, String>,
    },
    Progress {
        id: u64,
        progress: DecodeProgress,
    },
    Rendered {
        id: u64,
        result: Box<Rendered>,
    },
    RenderFailed {
        id: u64,
        error: String,
        cancelled: bool,
    },
    /// A grid's cells, row by row from A (`iy · res + ix`); its progress and failure come
    /// as `Progress` and `RenderFailed` with its id.
    GridReady {
        id: u64,
        cells: Vec<Arc<[f32]>>,
    },
    Exported(Result<PathBuf, String>),
    InstrumentProgress(DecodeProgress),
    /// An instrument export ended: what was written, or why not.
    InstrumentDone {
        result: Result<String, String>,
        cancelled: bool,
    },
    /// A live engine, built for the corners of a `Job::Live`: the GUI hands it to the
    /// audio callback.
    LiveReady(Box<LiveEngine>),
    /// The live engine's corners were swapped: their names.
    LiveCorners(Vec<String>),
    /// The live engine could not be built, or its corners encoded: why.
    LiveFailed(String),
}

/// The GUI's end of the worker.
#[derive(Debug)]
pub struct Worker {
    jobs: Sender<Job>,
    pub events: Receiver<Event>,
}

impl Worker {
    /// Starts the worker: it loads the model, then serves jobs until the GUI goes away.
    /// `repaint` is called after every event so the GUI wakes up to drain it.
    pub fn start(
        model: ModelSource,
        cache_dir: Option<PathBuf>,
        device: candle_core::Device,
        repaint: impl Fn() + Send + 'static,
    ) -> Self {
        let (jobs, job_rx) = channel::<Job>();
        let (event_tx, events) = channel::<Event>();
        let failed_tx = event_tx.clone();
        if let Err(e) = std::thread::Builder::new()
            .name("timbrel-worker".into())
            .spawn(move || serve(&model, cache_dir, &device, &job_rx, &event_tx, &repaint))
        {
            // The window says so instead of waiting for a model that never loads.
            let _ = failed_tx.send(Event::ModelFailed(format!(
                "cannot start the worker thread ({e})"
            )));
        }
        Self { jobs, events }
    }

    pub fn send(&self, job: Job) {
        // The worker only goes away with the process.
        let _ = self.jobs.send(job);
    }
}

fn serve(
    model: &ModelSource,
    cache_dir: Option<PathBuf>,
    device: &candle_core::Device,
    jobs: &Receiver<Job>,
    events: &Sender<Event>,
    repaint: &dyn Fn(),
) {
    let emit = |event: Event| {
        let _ = events.send(event);
        repaint();
    };
    let engine = match Engine::load(model, None, device) {
        Ok(engine) => {
            let engine = match cache_dir {
                Some(dir) => engine.with_cache(Some(engine::synth::Cache::new(dir))),
                None => engine,
            };
            emit(Event::ModelReady {
                name: engine.name().to_string(),
                parameters: engine.parameter_count(),
                decoder: engine.decoder_description(),
                pitched: engine.pitched(),
                parallel: engine.kind() == engine::synth::DecoderKind::Parallel,
            });
            Some(engine)
        }
        Err(e) => {
            emit(Event::ModelFailed(e.to_string()));
            None
        }
    };
    // The live engine's corner swap, once the engine is built.
    let mut swap: Option<CornerSwap> = None;
    for job in jobs {
        match job {
            Job::Live {
                corners,
                output_rate_hz,
            } => {
                let event = match &engine {
                    Some(engine) => live_job(engine, &corners, output_rate_hz, &mut swap),
                    None => Event::LiveFailed(no_model().to_string()),
                };
                emit(event);
            }
            Job::Scan(path) => {
                let scan = scan_source(&path).map_err(|e| e.to_string());
                emit(Event::Scanned { path, scan });
            }
            Job::Render(job) => {
                let id = job.id;
                let result = match &engine {
                    Some(engine) => render_job(engine, &job, &emit).map_err(JobError::from),
                    None => Err(no_model()),
                };
                match result {
                    Ok(result) => emit(Event::Rendered {
                        id,
                        result: Box::new(result),
                    }),
                    Err(e) => emit(failed(id, e)),
                }
            }
            Job::Key { of, job } => {
                let pitch = job.pitch;
                let result = match &engine {
                    Some(engine) => render_job(engine, &job, &|_| {}).map_err(JobError::from),
                    None => Err(no_model()),
                };
                let cancelled = result.as_ref().is_err_and(JobError::cancelled);
                emit(Event::KeyRendered {
                    of,
                    pitch,
                    audio: result.map(|r| r.audio).map_err(|e| e.to_string()),
                    cancelled,
                });
            }
            Job::Grid(job) => {
                let id = job.id;
                let result = match &engine {
                    Some(engine) => grid_job(engine, &job, &emit).map_err(JobError::from),
                    None => Err(no_model()),
                };
                match result {
                    Ok(cells) => emit(Event::GridReady { id, cells }),
                    Err(e) => emit(failed(id, e)),
                }
            }
            Job::Export {
                audio,
                path,
                options,
                inputs,
            } => {
                // The GUI asked the user before replacing a file, but never one it read.
                let result = engine::fsutil::check_not_input(&path, &inputs)
                    .and_then(|()| {
                        render::write(&path, audio.as_ref().clone(), &options, Overwrite::Allowed)
                    })
                    .map(|_| path)
                    .map_err(|e| e.to_string());
                emit(Event::Exported(result));
            }
            Job::Instrument { spec, control } => {
                let result = match &engine {
                    Some(engine) => instrument::run(
                        engine,
                        &spec,
                        &control,
                        &mut |p| {
                            emit(Event::InstrumentProgress(*p));
                            ControlFlow::Continue(())
                        },
                        &mut |_| {},
                    )
                    .map_err(JobError::from),
                    None => Err(no_model()),
                };
                let cancelled = result.as_ref().is_err_and(JobError::cancelled);
                emit(Event::InstrumentDone {
                    result: result
                        .map(|r| {
                            format!(
                                "exported {}: {} notes over {} keys, {} with a sustain loop",
                                r.file.display(),
                                r.notes,
                                r.keys,
                                r.looped
                            )
                        })
                        .map_err(|e| e.to_string()),
                    cancelled,
                });
            }
        }
    }
}

/// Why a job did not run: the engine said why, or there is no model to run it.
#[derive(Debug)]
enum JobError {
    NoModel,
    Engine(engine::Error),
}

impl From<engine::Error> for JobError {
    fn from(e: engine::Error) -> Self {
        Self::Engine(e)
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoModel => f.write_str("no model loaded"),
            Self::Engine(e) => e.fmt(f),
        }
    }
}

impl JobError {
    fn cancelled(&self) -> bool {
        matches!(self, Self::Engine(engine::Error::Cancelled))
    }
}

fn no_model() -> JobError {
    JobError::NoModel
}

fn failed(id: u64, error: JobError) -> Event {
    let cancelled = error.cancelled();
    Event::RenderFailed {
        id,
        error: if cancelled {
            "cancelled".into()
        } else {
            error.to_string()
        },
        cancelled,
    }
}

/// Encodes the live engine's corners and swaps them in, or builds the engine with them.
fn live_job(
    engine: &Engine,
    corners: &[PathBuf],
    output_rate_hz: u32,
    swap: &mut Option<CornerSwap>,
) -> Event {
    let Some(model) = engine.student_model() else {
        return Event::LiveFailed("the live engine plays a Parallel WaveNet student".into());
    };
    let paths: Vec<&std::path::Path> = corners.iter().map(PathBuf::as_path).collect();
    let corners = match Corners::encode(engine, &paths) {
        Ok(corners) => corners,
        Err(e) => return Event::LiveFailed(e.to_string()),
    };
    if let Some(swap) = swap {
        let names = corners.names().to_vec();
        return match swap.swap(corners) {
            Ok(()) => Event::LiveCorners(names),
            Err(e) => Event::LiveFailed(e.to_string()),
        };
    }
    // Voices on this thread's sibling cores: the worker and the GUI keep one.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let cfg = LiveConfig {
        output_rate_hz,
        max_voices: 8,
        helper_threads: cores.saturating_sub(2).min(3),
        ..LiveConfig::default()
    };
    match LiveEngine::new(model, corners, cfg) {
        Ok(live) => {
            *swap = Some(live.corner_swap());
            Event::LiveReady(Box::new(live))
        }
        Err(e) => Event::LiveFailed(e.to_string()),
    }
}

/// Every cell of the grid in one batch; cell `i` draws from random stream `i` (as
/// `timbrel grid` does), each as loud as its corners and cut to the longest corner note.
fn grid_job(
    engine: &Engine,
    job: &GridJob,
    emit: &dyn Fn(Event),
) -> engine::Result<Vec<Arc<[f32]>>> {
    let spec = NoteSpec {
        velocity: Some(job.velocity),
        ..NoteSpec::at(job.pitch)
    };
    let sources = engine.sources(&job.corners, &spec)?;
    let cells = engine::synth::grid::cells(job.res, &[job.pitch], job.mode);
    let weights: Vec<Weights> = cells
        .iter()
        .map(|c| Weights::Fixed(c.weights.to_vec()))
        .collect();
    let pitch = engine.held_pitch(Some(key_in_range(job.pitch)));
    let voices = weights
        .iter()
        .map(|w| Voice::blend(&sources, w, pitch))
        .collect::<engine::Result<Vec<_>>>()?;
    let streams: Vec<u64> = (0..cells.len() as u64).collect();
    let audio = render(
        engine,
        &voices,
        &streams,
        job.id,
        job.sampling,
        &job.control,
        emit,
    )?;
    Ok(audio.into_iter().map(Arc::from).collect())
}

fn render_job(engine: &Engine, job: &RenderJob, emit: &dyn Fn(Event)) -> engine::Result<Rendered> {
    let spec = NoteSpec {
        velocity: Some(job.velocity),
        seconds: job.seconds,
        ..NoteSpec::at(job.pitch)
    };
    let sources = engine.sources(&job.sources, &spec)?;
    // As loud as its sources and as long as its note, as `timbrel blend` plays it.
    let pitch = engine.held_pitch(Some(key_in_range(job.pitch)));
    let voice = Voice::blend(&sources, &job.weights, pitch)?;
    let started = std::time::Instant::now();
    let audio = render(
        engine,
        std::slice::from_ref(&voice),
        &[0],
        job.id,
        job.sampling,
        &job.control,
        emit,
    )?
    .into_iter()
    .next()
    .unwrap_or_default();
    let decode_secs = started.elapsed().as_secs_f64();
    let realtime_factor = audio.len() as f64 / f64::from(SAMPLE_RATE_HZ) / decode_secs.max(1e-9);
    let blend = voice.embedding;
    Ok(Rendered {
        audio,
        sources: sources.prepared,
        blend,
        hop: engine.hop(),
        decode_secs,
        realtime_factor,
    })
}

/// [`Engine::render`] with the job `id`'s progress sent to the GUI.
fn render(
    engine: &Engine,
    voices: &[Voice<'_>],
    streams: &[u64],
    id: u64,
    sampling: Sampling,
    control: &Control,
    emit: &dyn Fn(Event),
) -> engine::Result<Vec<Vec<f32>>> {
    engine.render(voices, streams, sampling, control, &mut |p| {
        emit(Event::Progress { id, progress: *p });
        ControlFlow::Continue(())
    })
}

/// The on-screen keyboard reaches past the piano's range; those keys play its ends.
fn key_in_range(pitch: u8) -> u8 {
    let (lo, hi) = engine::synth::PITCH_RANGE.into_inner();
    pitch.clamp(lo as u8, hi as u8)
}

/// A pack folder, or a single sound file as a pack of one note.
fn scan_source(path: &std::path::Path) -> engine::Result<Scan> {
    if !path.is_file() {
        return engine::pack::scan(path, ReadOptions::default());
    }
    let outcome = match engine::pack::describe(path, ReadOptions::default()) {
        Ok(note) => engine::pack::Outcome::Note(note),
        Err(e) => engine::pack::Outcome::Error(e.to_string()),
    };
    Ok(Scan {
        root: path.parent().map(PathBuf::from).unwrap_or_default(),
        entries: vec![engine::pack::Entry {
            file: PathBuf::from(path.file_name().unwrap_or_default()),
            outcome,
        }],
        other_files: 0,
        not_scanned: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The live engine's job on the shipped student: built, then its corners swapped;
    /// a corner that vanished or a rate the engine cannot serve is a reason, not a panic.
    #[test]
    fn the_live_job_builds_the_engine_swaps_corners_and_says_why_not() {
        let engine = Engine::load(
            &ModelSource::Default,
            Some(engine::synth::DecoderKind::Parallel),
            &candle_core::Device::Cpu,
        )
        .unwrap()
        .with_cache(None);
        let dir = tempfile::tempdir().unwrap();
        let packs = engine::demo::install(dir.path()).unwrap();
        let mut swap = None;

        let gone = vec![dir.path().join("gone.wav")];
        match live_job(&engine, &gone, 48_000, &mut swap) {
            Event::LiveFailed(e) => assert!(e.contains("gone.wav"), "{e}"),
            other => panic!("{other:?}"),
        }
        match live_job(&engine, &packs[..1], 1_000, &mut swap) {
            Event::LiveFailed(e) => assert!(e.contains("1000"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(swap.is_none());

        match live_job(&engine, &packs[..2], 48_000, &mut swap) {
            Event::LiveReady(live) => {
                assert_eq!(live.corners().len(), 2);
                assert_eq!(live.config().output_rate_hz, 48_000);
            }
            other => panic!("{other:?}"),
        }
        assert!(swap.is_some());
        match live_job(&engine, &packs[2..3], 48_000, &mut swap) {
            Event::LiveCorners(names) => assert_eq!(names.len(), 1),
            other => panic!("{other:?}"),
        }
    }
}
