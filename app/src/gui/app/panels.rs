//! The window's panels: menu, status line, sources, render controls, plots and the
//! overwrite confirmation (the blend panel is `pad.rs`). Each draws from the app's state
//! and returns the [`Command`]s the user gave, which `TimbrelApp::apply` carries out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eframe::egui::{self, Color32, RichText, Vec2};
use egui_plot::{Heatmap, Legend, Line, Plot};
use engine::audio::wav::WavFormat;
use engine::pack::{Outcome, Scan};
use engine::pitch::midi_name;

use super::{Command, InstrumentRun, ModelStatus, ResultView, Running, View};
use crate::gui::audio::Player;
use crate::gui::state::{ExportSettings, State};

pub(super) fn menu_ui(ui: &mut egui::Ui) -> Vec<Command> {
    let mut out = Vec::new();
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Add sample pack folder…").clicked() {
                if let Some(dir) = rfd::FileDialog::new().pick_folder() {
                    out.push(Command::AddSource(dir));
                }
                ui.close();
            }
            if ui.button("Add sound files…").clicked() {
                for file in rfd::FileDialog::new()
                    .add_filter("Sound files", engine::pack::AUDIO_EXTENSIONS)
                    .pick_files()
                    .unwrap_or_default()
                {
                    out.push(Command::AddSource(file));
                }
                ui.close();
            }
            ui.separator();
            if ui.button("Open session…").clicked() {
                out.push(Command::OpenSession);
                ui.close();
            }
            if ui.button("Save session…").clicked() {
                out.push(Command::SaveSession);
                ui.close();
            }
            ui.separator();
            if ui.button("Export WAV…").clicked() {
                out.push(Command::ExportDialog);
                ui.close();
            }
            if ui.button("Export instrument…").clicked() {
                out.push(Command::InstrumentDialog(true));
                ui.close();
            }
        });
    });
    out
}

/// What the status line shows.
pub(super) struct Status<'a> {
    pub model: &'a ModelStatus,
    pub instrument: Option<&'a InstrumentRun>,
    /// Sources are being read (no render running, not idle).
    pub reading: bool,
    pub player: String,
    pub midi: String,
    pub midi_note: Option<u8>,
    /// The live engine: its voices and CPU load, or why keys do not play live yet.
    pub live: Option<String>,
    pub result: Option<&'a ResultView>,
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
}

/// The status line: the model, what is under way, the audio and MIDI devices, the last
/// notice and error (with its dismiss button).
pub(super) fn status_ui(ui: &mut egui::Ui, app: Status) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal_wrapped(|ui| {
        match app.model {
            ModelStatus::Loading => {
                ui.spinner();
                ui.label("loading the model…");
            }
            ModelStatus::Ready(model) => {
                ui.label(model.describe());
            }
            ModelStatus::Failed(e) => {
                ui.colored_label(Color32::LIGHT_RED, format!("no model: {e}"));
            }
        }
        if let Some(run) = app.instrument {
            ui.spinner();
            let percent = run
                .progress
                .map_or(0.0, |p| 100.0 * p.done as f32 / p.total.max(1) as f32);
            ui.label(format!("exporting the instrument… {percent:.0} %"));
        }
        if app.reading {
            ui.spinner();
            ui.label("reading sources…");
        }
        ui.separator();
        ui.label(&app.player);
        ui.separator();
        match app.midi_note {
            Some(note) => ui.label(format!("{}, playing {}", app.midi, midi_name(note))),
            None => ui.label(&app.midi),
        };
        if let Some(live) = &app.live {
            ui.separator();
            ui.label(live);
        }
        if let Some(r) = app.result {
            ui.separator();
            ui.label(format!(
                "last render {:.2}× real time",
                r.rendered.realtime_factor
            ));
        }
        if let Some(n) = app.notice {
            ui.separator();
            ui.label(n);
        }
        if let Some(e) = app.error {
            ui.separator();
            ui.colored_label(Color32::LIGHT_RED, e);
            if ui.small_button("dismiss").clicked() {
                out.push(Command::DismissError);
            }
        }
    });
    out
}

/// A pack being dragged from the sources list onto a corner.
#[derive(Debug, Clone)]
pub(super) struct DraggedSource(pub(super) PathBuf);

pub(super) fn source_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub(super) fn sources_ui(
    ui: &mut egui::Ui,
    state: &State,
    scans: &BTreeMap<PathBuf, Option<Result<Scan, String>>>,
) -> Vec<Command> {
    let mut out = Vec::new();
    ui.heading("Sources");
    ui.horizontal(|ui| {
        if ui.button("Add folder…").clicked()
            && let Some(dir) = rfd::FileDialog::new().pick_folder()
        {
            out.push(Command::AddSource(dir));
        }
        ui.weak("or drop folders and files here");
    });
    ui.separator();
    egui::ScrollArea::vertical().show(ui, |ui| {
        for path in &state.packs {
            let name = source_name(path);
            let corners: String = state
                .corners
                .iter()
                .zip(["A", "B", "C", "D"])
                .filter(|(c, _)| c.as_ref() == Some(path))
                .map(|(_, n)| n)
                .collect();
            let title = if corners.is_empty() {
                name.clone()
            } else {
                format!("{name}  [{corners}]")
            };
            egui::CollapsingHeader::new(title)
                .id_salt(path)
                .show(ui, |ui| {
                    ui.weak(path.display().to_string());
                    ui.dnd_drag_source(
                        egui::Id::unique(("drag-pack", path)),
                        DraggedSource(path.clone()),
                        |ui| {
                            ui.add(
                                egui::Label::new(
                                    RichText::new(format!("drag {name} onto a corner")).small(),
                                )
                                .selectable(false),
                            );
                        },
                    )
                    .response
                    .on_hover_cursor(egui::CursorIcon::Grab);
                    match scans.get(path) {
                        None | Some(None) => {
                            ui.horizontal(|ui| {
                                ui.spinner();
                                ui.label("scanning…");
                            });
                        }
                        Some(Some(Err(e))) => {
                            ui.colored_label(Color32::LIGHT_RED, e);
                        }
                        Some(Some(Ok(scan))) => notes_ui(ui, scan),
                    }
                    ui.horizontal(|ui| {
                        for (i, corner) in ["A", "B", "C", "D"].iter().enumerate() {
                            if ui
                                .small_button(format!("to {corner}"))
                                .on_hover_text(format!("use {name} as corner {corner}"))
                                .clicked()
                            {
                                out.push(Command::SetCorner(i, Some(path.clone())));
                            }
                        }
                        if ui.small_button("remove").clicked() {
                            out.push(Command::RemoveSource(path.clone()));
                        }
                    });
                });
        }
    });
    out
}

pub(super) fn notes_ui(ui: &mut egui::Ui, scan: &Scan) {
    egui::Grid::new(("notes", &scan.root))
        .striped(true)
        .show(ui, |ui| {
            for entry in &scan.entries {
                let file = entry.file.display().to_string();
                match &entry.outcome {
                    Outcome::Note(n) => {
                        ui.label(file);
                        ui.label(n.pitch.midi().map_or_else(|| "unpitched".into(), midi_name));
                        ui.label(n.velocity.map_or_else(|| "–".into(), |v| format!("v{v}")));
                        ui.label(format!("{:.1} s", n.duration_secs));
                    }
                    Outcome::Error(e) => {
                        ui.label(file);
                        ui.colored_label(Color32::LIGHT_RED, e);
                    }
                }
                ui.end_row();
            }
        });
    if scan.entries.is_empty() {
        ui.weak("no sound files");
    }
}

/// Render, Play, Stop, Export and the export's settings; the result's sources to play.
/// `can_render`: a model is loaded and no render is running.
pub(super) fn render_ui(
    ui: &mut egui::Ui,
    can_render: bool,
    player: &Player,
    result: Option<&ResultView>,
    export: &mut ExportSettings,
) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                can_render,
                egui::Button::new(RichText::new("Render").strong()),
            )
            .on_hover_text("render the blend (Ctrl+R)")
            .clicked()
        {
            out.push(Command::Render);
        }
        ui.separator();
        let has_result = result.is_some();
        if ui
            .add_enabled(has_result && player.available(), egui::Button::new("Play"))
            .on_hover_text(
                "play the result (Space); keys A W S E D F T G Y H U J K play it transposed",
            )
            .clicked()
        {
            out.push(Command::PlayResult);
        }
        if ui
            .add_enabled(player.playing(), egui::Button::new("Stop"))
            .clicked()
        {
            out.push(Command::Stop);
        }
        if ui
            .add_enabled(has_result, egui::Button::new("Export WAV…"))
            .clicked()
        {
            out.push(Command::ExportDialog);
        }
        let e = export;
        let label = ui.label("Format");
        egui::ComboBox::from_id_salt("format")
            .selected_text(match e.format {
                WavFormat::S16 => "16-bit",
                WavFormat::S24 => "24-bit",
                WavFormat::F32 => "32-bit float",
            })
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut e.format, WavFormat::S16, "16-bit");
                ui.selectable_value(&mut e.format, WavFormat::S24, "24-bit");
                ui.selectable_value(&mut e.format, WavFormat::F32, "32-bit float");
            })
            .response
            .labelled_by(label.id);
        let label = ui.label("Rate");
        egui::ComboBox::from_id_salt("rate")
            .selected_text(format!("{} Hz", e.rate_hz))
            .show_ui(ui, |ui| {
                for rate in engine::synth::render::RATES_HZ {
                    ui.selectable_value(&mut e.rate_hz, rate, format!("{rate} Hz"));
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut e.trim, "Trim silence");
    });
    if let Some(r) = result {
        ui.horizontal_wrapped(|ui| {
            ui.weak(format!("result at {}:", midi_name(r.pitch)));
            for (i, s) in r.rendered.sources.iter().enumerate() {
                if ui
                    .add_enabled(
                        player.available(),
                        egui::Button::new(format!("play {}", source_name(&s.file))).small(),
                    )
                    .on_hover_text(s.describe())
                    .clicked()
                {
                    out.push(Command::PlaySource(i));
                }
            }
        });
    }
    out
}

/// The view tabs, the render's progress and the result's plots.
pub(super) fn plots_ui(
    ui: &mut egui::Ui,
    view: &mut View,
    running: Option<&Running>,
    result: Option<&ResultView>,
) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        ui.selectable_value(view, View::Waveform, "Waveforms");
        ui.selectable_value(view, View::Embedding, "Embedding");
        ui.selectable_value(view, View::Spectrogram, "Spectrogram");
    });
    // The render's progress shows where its result will appear.
    if let Some(r) = running {
        let (fraction, eta) = r.progress.map_or((0.0, None), |p| {
            (p.done as f32 / p.total.max(1) as f32, p.eta_secs)
        });
        let mut cancel = false;
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label("Rendering");
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(320.0)
                    .show_percentage(),
            );
            ui.label(match eta {
                Some(s) => format!("ETA {s:.0} s"),
                None => format!("{:.0} s", r.started.elapsed().as_secs_f32()),
            });
            cancel = ui
                .button("Cancel")
                .on_hover_text("stop the render (Esc)")
                .clicked();
        });
        if cancel {
            out.push(Command::Cancel);
        }
    }
    let Some(r) = result else {
        if running.is_none() {
            ui.weak("Render a blend to see it here.");
        }
        return out;
    };
    match *view {
        View::Waveform => {
            Plot::new("waveforms")
                .legend(Legend::default())
                .x_axis_label("s")
                .show(ui, |plot| {
                    plot.line(Line::new("result", r.waveform.clone()));
                    for (s, points) in r.rendered.sources.iter().zip(&r.source_waveforms) {
                        plot.line(Line::new(source_name(&s.file), points.clone()));
                    }
                });
        }
        View::Embedding => {
            Plot::new("embedding").x_axis_label("s").show(ui, |plot| {
                for (c, points) in r.embedding.iter().enumerate() {
                    plot.line(Line::new(format!("z{c}"), points.clone()));
                }
            });
        }
        View::Spectrogram => {
            let (values, cols) = &r.spectrogram;
            if *cols > 0 {
                Plot::new("spectrogram")
                    .x_axis_label("frame (16 ms)")
                    .y_axis_label("mel band")
                    .show(ui, |plot| {
                        plot.heatmap(Heatmap::new(values.clone(), *cols).show_labels(false));
                    });
            }
        }
    }
    out
}

pub(super) fn confirm_ui(ctx: &egui::Context, path: &Path) -> Vec<Command> {
    let mut out = Vec::new();
    egui::Window::new("Replace file?")
        .collapsible(false)
        .resizable(false)
        .anchor(egui::Align2::CENTER_CENTER, Vec2::ZERO)
        .show(ctx, |ui| {
            ui.label(format!("{} already exists.", path.display()));
            ui.horizontal(|ui| {
                if ui.button("Replace").clicked() {
                    out.push(Command::ConfirmOverwrite(true));
                }
                if ui.button("Keep it").clicked() {
                    out.push(Command::ConfirmOverwrite(false));
                }
            });
        });
    out
}
