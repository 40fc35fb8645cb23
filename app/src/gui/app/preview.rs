//! The preview grid (NSynth Super's pre-render, in the background): every cell of a
//! 5 × 5 grid over the four corners at the current pitch, decoded on the worker while
//! nothing else renders. Once it is there, releasing the puck plays the nearest cell at
//! once while the exact blend renders (and plays when done).

use super::*;

/// Cells per side of the preview grid.
pub const PREVIEW_RES: usize = 5;

/// What a preview grid was rendered for; any change makes it stale.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PreviewKey {
    corners: [PathBuf; 4],
    mode: XyMode,
    pitch: u8,
    velocity: u8,
    sampling: Sampling,
}

/// A preview grid: rendering, ready or failed.
#[derive(Debug)]
pub struct Preview {
    key: PreviewKey,
    pub(super) id: u64,
    control: Arc<Control>,
    pub progress: Option<DecodeProgress>,
    /// Row by row from A: cell `(ix, iy)` at `iy · res + ix`.
    pub cells: Option<Vec<Arc<[f32]>>>,
    pub failed: Option<String>,
}

impl Preview {
    /// Whether the worker is still on it.
    pub fn running(&self) -> bool {
        self.cells.is_none() && self.failed.is_none()
    }

    /// One line for the blend panel.
    pub fn describe(&self) -> String {
        match (&self.cells, &self.failed, &self.progress) {
            (Some(cells), _, _) => format!("{} cells ready: release the puck to hear", cells.len()),
            (None, Some(e), _) => format!("failed: {e}"),
            (None, None, Some(p)) if p.total > 0 => {
                format!("rendering {:.0} %", 100.0 * p.done as f64 / p.total as f64)
            }
            _ => "rendering".into(),
        }
    }
}

impl TimbrelApp {
    /// The preview the settings ask for: `None` when it is off, not in XY mode or a
    /// corner is empty.
    fn preview_key(&self) -> Option<PreviewKey> {
        if !self.state.preview_grid || self.state.mode != PadMode::Xy {
            return None;
        }
        let [a, b, c, d] = &self.state.corners;
        Some(PreviewKey {
            corners: [a.clone()?, b.clone()?, c.clone()?, d.clone()?],
            mode: self.state.xy_mode(),
            pitch: self.state.pitch,
            velocity: self.state.velocity,
            sampling: self.state.sampling(),
        })
    }

    /// Starts, replaces or drops the preview grid to match the settings (each frame). A
    /// stale grid is cancelled; a new one starts only while no render runs.
    pub(super) fn update_preview(&mut self) {
        let key = self.preview_key();
        if let (Some(p), Some(k)) = (&self.preview, &key)
            && p.key == *k
        {
            return;
        }
        if let Some(old) = self.preview.take() {
            old.control.cancel();
        }
        let Some(key) = key else { return };
        if self.running.is_some() || !self.model_ready() {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        let control = Arc::new(Control::default());
        self.worker.send(Job::Grid(GridJob {
            id,
            corners: key.corners.clone(),
            res: PREVIEW_RES,
            mode: key.mode,
            pitch: key.pitch,
            velocity: key.velocity,
            sampling: key.sampling,
            control: Arc::clone(&control),
        }));
        self.preview = Some(Preview {
            key,
            id,
            control,
            progress: None,
            cells: None,
            failed: None,
        });
    }

    /// Renders take the worker first: an unfinished preview is dropped (and starts
    /// again after the render).
    pub(super) fn yield_preview(&mut self) {
        if self.preview.as_ref().is_some_and(Preview::running)
            && let Some(p) = self.preview.take()
        {
            p.control.cancel();
        }
    }

    /// Whether a preview grid for the current settings is ready to play.
    pub fn preview_ready(&self) -> bool {
        self.preview.as_ref().is_some_and(|p| p.cells.is_some())
            && self.preview.as_ref().map(|p| &p.key) == self.preview_key().as_ref()
    }

    /// Plays the preview cell nearest the puck; returns it (`None`: no preview ready).
    pub(super) fn play_nearest_cell(&mut self) -> Option<(usize, usize)> {
        if !self.preview_ready() {
            return None;
        }
        let cells = self.preview.as_ref()?.cells.as_ref()?;
        let at = |v: f32| ((v.clamp(0.0, 1.0) * (PREVIEW_RES - 1) as f32).round()) as usize;
        let (ix, iy) = (at(self.state.xy[0]), at(self.state.xy[1]));
        let cell = cells.get(iy * PREVIEW_RES + ix)?;
        self.player.play(cell);
        Some((ix, iy))
    }

    /// The worker's report on a preview grid; false if the id is not the preview's.
    pub(super) fn preview_event(&mut self, event: &Event) -> bool {
        let Some(p) = &mut self.preview else {
            return false;
        };
        match event {
            Event::Progress { id, progress } if *id == p.id => p.progress = Some(*progress),
            Event::RenderFailed { id, error, .. } if *id == p.id => {
                p.failed = Some(error.clone());
            }
            Event::GridReady { id, cells } if *id == p.id => p.cells = Some(cells.clone()),
            _ => return false,
        }
        true
    }
}
