//! The worker thread: it owns the engine (the model never runs on the GUI thread), takes
//! jobs over a channel and answers with events; the GUI drains them each frame.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

use autoencoder::Sampling;
use autoencoder::cpu::Control;
use engine::audio::ReadOptions;
use engine::fsutil::Overwrite;
use engine::pack::Scan;
use engine::synth::render::{self, RenderOptions};
use engine::synth::{Embedding, Engine, ModelSource, Prepared, Progress, Weights};

/// What the GUI asks for.
#[derive(Debug)]
pub enum Job {
    Scan(PathBuf),
    Render(RenderJob),
    Export {
        audio: Arc<Vec<f32>>,
        path: PathBuf,
        options: RenderOptions,
    },
}

#[derive(Debug, Clone)]
pub struct RenderJob {
    pub id: u64,
    pub sources: Vec<PathBuf>,
    pub weights: Weights,
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
    },
    ModelFailed(String),
    Scanned {
        path: PathBuf,
        scan: Result<Scan, String>,
    },
    Progress {
        id: u64,
        progress: Progress,
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
    Exported(Result<PathBuf, String>),
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
        repaint: impl Fn() + Send + 'static,
    ) -> Self {
        let (jobs, job_rx) = channel::<Job>();
        let (event_tx, events) = channel::<Event>();
        std::thread::Builder::new()
            .name("timbrel-worker".into())
            .spawn(move || serve(&model, cache_dir, &job_rx, &event_tx, &repaint))
            .map_or_else(
                |e| eprintln!("timbrel: cannot start the worker thread: {e}"),
                |_| (),
            );
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
    jobs: &Receiver<Job>,
    events: &Sender<Event>,
    repaint: &dyn Fn(),
) {
    let emit = |event: Event| {
        let _ = events.send(event);
        repaint();
    };
    let engine = match Engine::load(model, &candle_core::Device::Cpu) {
        Ok(engine) => {
            let engine = match cache_dir {
                Some(dir) => engine.with_cache(Some(engine::synth::Cache::new(dir))),
                None => engine,
            };
            emit(Event::ModelReady {
                name: engine.name().to_string(),
                parameters: engine.config().parameter_count(),
                decoder: engine.decoder_description(),
            });
            Some(engine)
        }
        Err(e) => {
            emit(Event::ModelFailed(e.to_string()));
            None
        }
    };
    for job in jobs {
        match job {
            Job::Scan(path) => {
                let scan = scan_source(&path).map_err(|e| e.to_string());
                emit(Event::Scanned { path, scan });
            }
            Job::Render(job) => {
                let Some(engine) = &engine else {
                    emit(Event::RenderFailed {
                        id: job.id,
                        error: "no model loaded".into(),
                        cancelled: false,
                    });
                    continue;
                };
                let id = job.id;
                match render_job(engine, &job, &emit) {
                    Ok(result) => emit(Event::Rendered {
                        id,
                        result: Box::new(result),
                    }),
                    Err(engine::Error::Cancelled) => emit(Event::RenderFailed {
                        id,
                        error: "cancelled".into(),
                        cancelled: true,
                    }),
                    Err(e) => emit(Event::RenderFailed {
                        id,
                        error: e.to_string(),
                        cancelled: false,
                    }),
                }
            }
            Job::Export {
                audio,
                path,
                options,
            } => {
                // The GUI asked the user before replacing a file.
                let result =
                    render::write(&path, audio.as_ref().clone(), &options, Overwrite::Allowed)
                        .map(|_| path)
                        .map_err(|e| e.to_string());
                emit(Event::Exported(result));
            }
        }
    }
}

fn render_job(engine: &Engine, job: &RenderJob, emit: &dyn Fn(Event)) -> engine::Result<Rendered> {
    let sources = job
        .sources
        .iter()
        .map(|s| {
            engine.prepare_at(
                s,
                Some(job.pitch),
                Some(job.velocity),
                ReadOptions::default(),
            )
        })
        .collect::<engine::Result<Vec<_>>>()?;
    let notes: Vec<&[f32]> = sources.iter().map(|p| p.samples.as_slice()).collect();
    let embeddings: Vec<Embedding> = engine
        .encode(&notes)?
        .into_iter()
        .map(|e| e.embedding)
        .collect();
    let refs: Vec<&Embedding> = embeddings.iter().collect();
    let blend = engine::synth::blend(&refs, &job.weights)
        .map_err(|e| engine::Error::Compute(autoencoder::Error::Shape(e)))?;
    let started = std::time::Instant::now();
    let mut audio = engine
        .decode(
            std::slice::from_ref(&blend),
            &[0],
            job.sampling,
            &job.control,
            &mut |p| {
                emit(Event::Progress {
                    id: job.id,
                    progress: *p,
                });
                ControlFlow::Continue(())
            },
        )?
        .into_iter()
        .next()
        .unwrap_or_default();
    let decode_secs = started.elapsed().as_secs_f64();
    audio.truncate(sources.iter().map(|p| p.length).max().unwrap_or(0));
    let realtime_factor = audio.len() as f64 / 16_000.0 / decode_secs.max(1e-9);
    Ok(Rendered {
        audio,
        sources,
        blend,
        decode_secs,
        realtime_factor,
    })
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
