//! The app's files: WAV and instrument exports, sessions saved and opened.

use super::*;

impl TimbrelApp {
    pub(super) fn export(&mut self, path: PathBuf) {
        let Some(result) = &self.result else {
            self.error = Some("render something first".into());
            return;
        };
        let e = &self.state.export;
        self.worker.send(Job::Export {
            audio: Arc::new(result.rendered.audio.clone()),
            path: path.clone(),
            options: e.render_options(true),
            inputs: result
                .rendered
                .sources
                .iter()
                .map(|p| p.file.clone())
                .collect(),
        });
        self.state.last_export = Some(path);
    }

    /// The blend's sources and weights once the model is ready; otherwise `None`, with
    /// the reason in the status line.
    pub(super) fn ready_blend(&mut self) -> Option<(Vec<PathBuf>, Weights)> {
        if !self.model_ready() {
            self.error = Some("the model is not loaded yet".into());
            return None;
        }
        self.blend_spec().map_err(|e| self.error = Some(e)).ok()
    }

    /// Starts exporting the current blend as an instrument to `path` (replacing what is
    /// there only when `overwrite`, which the user confirmed).
    pub(super) fn export_instrument(&mut self, path: PathBuf, overwrite: bool) {
        if self.instrument.is_some() {
            return;
        }
        let Some((sources, weights)) = self.ready_blend() else {
            return;
        };
        let settings = &self.state.instrument;
        let velocities = match settings.velocity_layers() {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let e = &self.state.export;
        let spec = engine::instrument::InstrumentSpec {
            sources,
            weights,
            keys: (
                settings.low.min(settings.high),
                settings.high.max(settings.low),
            ),
            every: settings.every.max(1),
            velocities,
            seconds: self.state.note_seconds(),
            release_secs: settings.release,
            out: path.clone(),
            render: e.render_options(false),
            sampling: self.state.sampling(),
            read: engine::audio::ReadOptions::default(),
            batch: 16,
            overwrite,
        };
        let control = Arc::new(Control::default());
        // The instrument goes before the preview grid, as a render does.
        self.yield_preview();
        self.worker.send(Job::Instrument {
            spec: Box::new(spec),
            control: Arc::clone(&control),
        });
        self.instrument = Some(InstrumentRun {
            control,
            progress: None,
            started: Instant::now(),
            path,
        });
    }

    pub(super) fn save_session(&mut self) {
        if !self.options.dialogs {
            return;
        }
        let Some(path) = rfd::FileDialog::new()
            .add_filter("Timbrel session", &["json"])
            .set_file_name("session.json")
            .save_file()
        else {
            return;
        };
        let result = serde_json::to_vec_pretty(&self.state)
            .map_err(|e| e.to_string())
            .and_then(|json| {
                engine::fsutil::write_atomic(&path, engine::fsutil::Overwrite::Allowed, |out| {
                    use std::io::Write;
                    out.write_all(&json)
                })
                .map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => self.notice = Some(format!("session saved to {}", path.display())),
            Err(e) => self.error = Some(e),
        }
    }

    pub(super) fn open_session(&mut self) {
        if !self.options.dialogs {
            return;
        }
        let Some(path) = rfd::FileDialog::new()
            .add_filter("Timbrel session", &["json"])
            .pick_file()
        else {
            return;
        };
        match self.load_session(&path) {
            Ok(()) => self.notice = Some(format!("session opened from {}", path.display())),
            Err(e) => self.error = Some(e),
        }
    }

    /// Replaces the state with a session file's.
    pub fn load_session(&mut self, path: &Path) -> Result<(), String> {
        let meta = std::fs::metadata(path)
            .map_err(|e| format!("cannot read ({e}): {}", path.display()))?;
        if meta.len() > 1 << 20 {
            return Err(format!(
                "not a session file (too large): {}",
                path.display()
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read ({e}): {}", path.display()))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| format!("not a session file ({e}): {}", path.display()))?;
        self.state = state;
        self.scans.clear();
        for pack in self.state.packs.clone() {
            self.scan(pack);
        }
        Ok(())
    }
}
