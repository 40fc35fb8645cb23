//! What the panels ask for, and how the app carries it out once the frame is drawn.

use super::*;

/// Something a panel asks for; the app applies it after the frame is drawn.
#[derive(Debug, Clone, PartialEq)]
#[must_use]
pub enum Command {
    AddSource(PathBuf),
    RemoveSource(PathBuf),
    SetCorner(usize, Option<PathBuf>),
    Render,
    Cancel,
    PlayResult,
    PlaySource(usize),
    Stop,
    /// Play the result transposed by this many semitones (the computer keyboard).
    PlayTransposed(i32),
    /// A key of the computer keyboard's row, this many semitones from the pitch, went
    /// down or up (keys played live).
    LiveKey {
        semitones: i32,
        down: bool,
    },
    /// Let every live key go (the window lost the keyboard).
    LiveAllOff,
    ExportDialog,
    ExportTo(PathBuf),
    ConfirmOverwrite(bool),
    SaveSession,
    OpenSession,
    /// The puck was let go: with the preview grid ready, play the nearest cell and
    /// render the exact blend; with a parallel decoder, render and play the exact blend.
    PuckReleased,
    /// The puck is being dragged: with a parallel decoder the result follows it.
    PuckMoved,
    /// File → Export instrument…: show (true) or hide the instrument dialog.
    InstrumentDialog(bool),
    /// Ask where the instrument goes (a file dialog), then export it there.
    InstrumentChooseFile,
    /// Export the instrument to this path (asking first if it exists).
    InstrumentTo(PathBuf),
    CancelInstrument,
    /// The status line's error was dismissed.
    DismissError,
}

impl TimbrelApp {
    pub(super) fn apply(&mut self, command: Command, ctx: &egui::Context) {
        match command {
            Command::AddSource(path) => {
                if !self.state.packs.contains(&path) {
                    self.state.packs.push(path.clone());
                    if let Some(free) = self.state.corners.iter().position(Option::is_none) {
                        self.state.corners[free] = Some(path.clone());
                    }
                    self.scan(path);
                }
            }
            Command::RemoveSource(path) => {
                self.state.packs.retain(|p| p != &path);
                self.scans.remove(&path);
                for c in &mut self.state.corners {
                    if c.as_ref() == Some(&path) {
                        *c = None;
                    }
                }
            }
            Command::SetCorner(i, path) => {
                if let Some(c) = self.state.corners.get_mut(i) {
                    *c = path;
                }
            }
            Command::Render => self.start_render(),
            Command::Cancel => {
                if let Some(r) = &self.running {
                    r.control.cancel();
                }
            }
            Command::PlayResult => {
                if let Some(r) = &self.result {
                    self.player.play(&r.rendered.audio);
                }
            }
            Command::PlaySource(i) => {
                if let Some(s) = self.result.as_ref().and_then(|r| r.rendered.sources.get(i)) {
                    self.player.play(&s.samples[..s.length]);
                }
            }
            Command::Stop => self.player.stop(),
            Command::PlayTransposed(semitones) => self.play_key(semitones),
            Command::LiveKey { semitones, down } => self.live_key(semitones, down),
            Command::LiveAllOff => self.live_all_off(),
            Command::ExportDialog => {
                let path = if self.options.dialogs {
                    let mut dialog = rfd::FileDialog::new()
                        .add_filter("WAV", &["wav"])
                        .set_file_name(self.suggested_name());
                    if let Some(dir) = self.state.last_export.as_ref().and_then(|p| p.parent()) {
                        dialog = dialog.set_directory(dir);
                    }
                    dialog.save_file()
                } else {
                    self.export_path.clone()
                };
                if let Some(path) = path {
                    self.commands.push(Command::ExportTo(path));
                }
            }
            Command::ExportTo(path) => {
                if path.exists() {
                    self.confirm_overwrite = Some(path);
                } else {
                    self.export(path);
                }
            }
            Command::ConfirmOverwrite(yes) => {
                if let Some(path) = self.confirm_instrument.take() {
                    if yes {
                        self.export_instrument(path, true);
                    }
                } else if let Some(path) = self.confirm_overwrite.take()
                    && yes
                {
                    self.export(path);
                }
            }
            Command::InstrumentDialog(open) => self.instrument_dialog = open,
            Command::InstrumentChooseFile => {
                let format = self.state.instrument.format;
                let ext = match format {
                    engine::instrument::Format::Sf2 => "sf2",
                    engine::instrument::Format::Sfz => "sfz",
                };
                let path = if self.options.dialogs {
                    rfd::FileDialog::new()
                        .add_filter(ext.to_uppercase(), &[ext])
                        .set_file_name(self.suggested_name().replace(".wav", &format!(".{ext}")))
                        .save_file()
                } else {
                    self.instrument_path.clone()
                };
                if let Some(path) = path {
                    let path = if engine::instrument::Format::of(&path).is_some() {
                        path
                    } else {
                        path.with_extension(ext)
                    };
                    self.commands.push(Command::InstrumentTo(path));
                }
            }
            Command::InstrumentTo(path) => {
                let taken = path.exists()
                    || (engine::instrument::Format::of(&path)
                        == Some(engine::instrument::Format::Sfz)
                        && engine::instrument::samples_dir(&path).exists());
                if taken {
                    self.confirm_instrument = Some(path);
                } else {
                    self.export_instrument(path, false);
                }
            }
            Command::DismissError => self.error = None,
            Command::CancelInstrument => {
                if let Some(run) = &self.instrument {
                    run.control.cancel();
                }
            }
            Command::SaveSession => self.save_session(),
            Command::OpenSession => self.open_session(),
            Command::PuckMoved => {
                // Renders follow the puck, one at a time: the next starts with the
                // position of the moment the last one is done.
                if self.parallel() {
                    self.follow_puck = true;
                }
            }
            Command::PuckReleased if self.parallel() => {
                self.follow_puck = false;
                if let Some(r) = &self.running {
                    r.control.cancel();
                }
                self.queued_render = true;
            }
            Command::PuckReleased => {
                if let Some(cell) = self.play_nearest_cell() {
                    self.preview_cell = Some(cell);
                    // The exact blend of the new position: now, or once a render of the
                    // old one has stopped.
                    if let Some(r) = &self.running {
                        r.control.cancel();
                    }
                    self.queued_render = true;
                }
            }
        }
        ctx.request_repaint();
    }
}
