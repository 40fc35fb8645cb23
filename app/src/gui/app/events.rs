//! What the worker reports, drained each frame.

use super::*;

impl TimbrelApp {
    /// Drains the worker's events.
    pub(super) fn poll(&mut self) {
        while let Ok(event) = self.worker.events.try_recv() {
            if self.preview_event(&event) {
                continue;
            }
            match event {
                Event::ModelReady {
                    name,
                    parameters,
                    decoder,
                    pitched,
                    parallel,
                } => {
                    self.model = ModelStatus::Ready(ModelInfo {
                        name,
                        parameters,
                        decoder,
                        pitched,
                        parallel,
                    });
                    if self.options.render_on_start {
                        self.options.render_on_start = false;
                        self.start_render();
                    }
                }
                Event::LiveReady(engine) => {
                    // A full ring (an engine already waiting) drops this one here.
                    let _ = self.player.install_live(engine);
                    // A new engine starts from its defaults: the pad's weights again.
                    self.live.forget_sent();
                }
                Event::LiveCorners(names) => {
                    self.live.error = None;
                    self.notice = Some(format!("keys play {}", names.join(", ")));
                }
                Event::LiveFailed(e) => self.live.error = Some(e),
                Event::ModelFailed(e) => {
                    self.error = Some(format!("model: {e}"));
                    self.model = ModelStatus::Failed(e);
                }
                Event::Scanned { path, scan } => {
                    if let Some(slot) = self.scans.get_mut(&path) {
                        *slot = Some(scan);
                    }
                }
                Event::Progress { id, progress } => {
                    if let Some(r) = &mut self.running
                        && r.id == id
                    {
                        r.progress = Some(progress);
                    }
                }
                Event::Rendered { id, result } => {
                    if let Some(running) = self.running.take_if(|r| r.id == id) {
                        if running.autoplay {
                            self.player.play(&result.audio);
                        }
                        let (max, mean, _) = self.frame_ms_during_render;
                        self.notice = Some(format!(
                            "rendered in {:.1} s ({:.2}× real time); UI frames meanwhile {mean:.1} ms mean, {max:.1} ms max",
                            result.decode_secs, result.realtime_factor
                        ));
                        let mut view = self.view_of(*result);
                        view.id = running.id;
                        view.job = Some(running.job);
                        self.result = Some(view);
                    }
                }
                Event::KeyRendered {
                    of,
                    pitch,
                    audio,
                    cancelled,
                } => {
                    if let Some(r) = self.result.as_mut().filter(|r| r.id == of) {
                        r.pending.remove(&pitch);
                        match audio {
                            Ok(audio) => {
                                r.native.insert(pitch, audio);
                                self.notice = Some(format!(
                                    "{} rendered at its own pitch",
                                    engine::pitch::midi_name(pitch)
                                ));
                            }
                            Err(e) if !cancelled => {
                                self.error =
                                    Some(format!("{}: {e}", engine::pitch::midi_name(pitch)));
                            }
                            Err(_) => {}
                        }
                    }
                }
                Event::RenderFailed {
                    id,
                    error,
                    cancelled,
                } => {
                    if self.running.as_ref().is_some_and(|r| r.id == id) {
                        self.running = None;
                        if cancelled {
                            self.notice = Some("render cancelled".into());
                        } else {
                            self.error = Some(error);
                        }
                    }
                }
                // A grid of a preview since replaced or cancelled: of no use.
                Event::GridReady { .. } => {}
                Event::Exported(result) => match result {
                    Ok(path) => self.notice = Some(format!("exported {}", path.display())),
                    Err(e) => self.error = Some(e),
                },
                Event::InstrumentProgress(progress) => {
                    if let Some(run) = &mut self.instrument {
                        run.progress = Some(progress);
                    }
                }
                Event::InstrumentDone { result, cancelled } => {
                    self.instrument = None;
                    match result {
                        Ok(line) => self.notice = Some(line),
                        Err(_) if cancelled => {
                            self.notice = Some(
                                "instrument export cancelled; the notes rendered so far are kept to resume"
                                    .into(),
                            );
                        }
                        Err(e) => self.error = Some(e),
                    }
                }
            }
        }
        self.player.collect();
    }
}
