//! The window's panels: menu, status line, sources, blend (corners, XY pad, keyboard),
//! render controls, plots and the overwrite confirmation. Each draws from the app's state
//! and returns the [`Command`]s the user gave, which `TimbrelApp::apply` carries out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eframe::egui::{self, Color32, RichText, Sense, Stroke, Vec2};
use egui_plot::{Heatmap, Legend, Line, Plot};
use engine::audio::wav::WavFormat;
use engine::pack::{Outcome, Scan};
use engine::pitch::midi_name;
use engine::synth::xy_weights;

use super::{
    Command, InstrumentRun, ModelStatus, PREVIEW_RES, ResultView, Running, View, keyboard_ui,
};
use crate::gui::audio::Player;
use crate::gui::state::{ExportSettings, PadMode, State};

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
            ModelStatus::Ready {
                name,
                parameters,
                decoder,
                pitched,
                parallel,
            } => {
                ui.label(format!(
                    "{name}, {:.2} M parameters{}, decoding {decoder}{}",
                    *parameters as f64 / 1e6,
                    if *pitched { ", plays any pitch" } else { "" },
                    if *parallel {
                        "; the result follows the puck"
                    } else {
                        ""
                    }
                ));
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

pub(super) fn blend_ui(
    ui: &mut egui::Ui,
    state: &mut State,
    scans: &BTreeMap<PathBuf, Option<Result<Scan, String>>>,
    preview: Option<String>,
) -> Vec<Command> {
    let mut out = Vec::new();
    ui.horizontal(|ui| {
        ui.heading("Blend");
        ui.selectable_value(&mut state.mode, PadMode::Xy, "XY pad");
        ui.selectable_value(&mut state.mode, PadMode::Slider, "Slider");
        if state.mode == PadMode::Xy {
            ui.checkbox(&mut state.bilinear, "bilinear");
            ui.checkbox(
                &mut state.preview_grid,
                format!("Preview grid ({PREVIEW_RES}x{PREVIEW_RES})"),
            )
            .on_hover_text(
                "Pre-render a grid of blends in the background; then letting go of the \
                 puck plays the nearest one at once while the exact blend renders",
            );
            if let Some(line) = preview {
                ui.weak(line);
            }
        }
    });
    let corners = if state.mode == PadMode::Xy { 4 } else { 2 };
    ui.horizontal_wrapped(|ui| {
        for i in 0..corners {
            let (_, dropped) = ui.dnd_drop_zone::<DraggedSource, ()>(
                egui::Frame::default().inner_margin(2.0),
                |ui| {
                    ui.horizontal(|ui| corner_ui(ui, state, scans, i, &mut out));
                },
            );
            if let Some(source) = dropped {
                out.push(Command::SetCorner(i, Some(source.0.clone())));
            }
        }
    });
    ui.horizontal(|ui| {
        match state.mode {
            PadMode::Xy => match xy_pad_ui(ui, state) {
                Some(PuckEvent::Released) => out.push(Command::PuckReleased),
                Some(PuckEvent::Moved) => out.push(Command::PuckMoved),
                None => {}
            },
            PadMode::Slider => {
                let label = ui.label("Mix (A to B)");
                ui.add(egui::Slider::new(&mut state.mix, 0.0..=1.0))
                    .labelled_by(label.id);
            }
        }
        ui.vertical(|ui| {
            ui.label(format!(
                "Pitch {} (MIDI {})",
                midi_name(state.pitch),
                state.pitch
            ));
            keyboard_ui(ui, &mut state.pitch);
            egui::Grid::new("note settings")
                .num_columns(2)
                .show(ui, |ui| {
                    let label = ui.label("Velocity");
                    ui.add(egui::Slider::new(&mut state.velocity, 1..=127))
                        .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Length");
                    ui.add(
                        egui::Slider::new(&mut state.seconds, 0.0..=30.0)
                            .custom_formatter(|v, _| {
                                if v <= 0.0 {
                                    "as the sources".into()
                                } else {
                                    format!("{v:.1} s")
                                }
                            })
                            .custom_parser(|t| {
                                t.trim().trim_end_matches('s').trim().parse::<f64>().ok()
                            }),
                    )
                    .labelled_by(label.id)
                    .on_hover_text(
                        "0: as long as the sources; otherwise their sustain is stretched \
                         (attack and release kept)",
                    );
                    ui.end_row();
                    let label = ui.label("Temperature");
                    ui.add(egui::Slider::new(&mut state.temperature, 0.0..=1.5))
                        .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Seed");
                    ui.add(egui::DragValue::new(&mut state.seed))
                        .labelled_by(label.id);
                    ui.end_row();
                    let label = ui.label("Key attack");
                    ui.add(
                        egui::Slider::new(&mut state.live_attack_secs, 0.001..=2.0)
                            .logarithmic(true)
                            .suffix(" s"),
                    )
                    .labelled_by(label.id)
                    .on_hover_text("keys played live: the rise to full level");
                    ui.end_row();
                    let label = ui.label("Key release");
                    ui.add(
                        egui::Slider::new(&mut state.live_release_secs, 0.001..=5.0)
                            .logarithmic(true)
                            .suffix(" s"),
                    )
                    .labelled_by(label.id)
                    .on_hover_text("keys played live: the fade after a key is let go");
                    ui.end_row();
                });
        });
    });
    out
}

/// A pack being dragged from the sources list onto a corner.
#[derive(Debug, Clone)]
pub(super) struct DraggedSource(PathBuf);

/// One corner's instrument menu.
pub(super) fn corner_ui(
    ui: &mut egui::Ui,
    state: &State,
    scans: &BTreeMap<PathBuf, Option<Result<Scan, String>>>,
    i: usize,
    out: &mut Vec<Command>,
) {
    let label = ["A", "B", "C", "D"][i];
    let current = state.corners[i]
        .as_deref()
        .map_or_else(|| "(none)".to_string(), source_name);
    {
        {
            let name = ui.label(format!("{label}:"));
            egui::ComboBox::from_id_salt(("corner", i))
                .selected_text(current)
                .width(110.0)
                .show_ui(ui, |ui| {
                    for path in scans.keys() {
                        if ui
                            .selectable_label(
                                state.corners[i].as_ref() == Some(path),
                                source_name(path),
                            )
                            .clicked()
                        {
                            out.push(Command::SetCorner(i, Some(path.clone())));
                        }
                    }
                })
                .response
                .labelled_by(name.id)
                .widget_info(|| {
                    egui::WidgetInfo::labeled(egui::Role::ComboBox, true, format!("Corner {label}"))
                });
        }
    }
}

/// What the puck did this frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PuckEvent {
    /// Dragged to a new position.
    Moved,
    /// Let go (after a drag, or a click on the pad).
    Released,
}

/// NSynth Super's pad: a square with an instrument in each corner and a puck.
pub(super) fn xy_pad_ui(ui: &mut egui::Ui, state: &mut State) -> Option<PuckEvent> {
    // The pad grows with the window, leaving room for the keyboard beside it and the
    // plots below.
    let side = (ui.available_width() - 460.0)
        .min(ui.ctx().content_rect().height() * 0.38)
        .clamp(200.0, 560.0);
    let size = Vec2::splat(side);
    let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
    let response = response.on_hover_text("XY pad: drag the puck");
    response.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Unknown, true, "XY pad puck"));
    let before = state.xy;
    if let Some(pos) = response.interact_pointer_pos() {
        let p = (pos - rect.min) / rect.size();
        // Screen y grows downwards; the pad's y grows upwards (A and B at the bottom).
        state.xy = [p.x.clamp(0.0, 1.0), (1.0 - p.y).clamp(0.0, 1.0)];
    }
    let moved = state.xy != before;
    let painter = ui.painter_at(rect);
    let visuals = ui.visuals();
    painter.rect_filled(rect, 6.0, visuals.extreme_bg_color);
    painter.rect_stroke(
        rect,
        6.0,
        Stroke::new(1.0, visuals.weak_text_color()),
        egui::StrokeKind::Inside,
    );
    let weights = xy_weights(state.xy[0], state.xy[1], state.xy_mode());
    for (i, ((cx, cy), name)) in engine::synth::blend::CORNERS
        .iter()
        .zip(["A", "B", "C", "D"])
        .enumerate()
    {
        let at = rect.min + Vec2::new(cx * rect.width(), (1.0 - cy) * rect.height());
        let right = *cx > 0.5;
        let inward = Vec2::new(
            if right { -6.0 } else { 6.0 },
            if *cy > 0.5 { 12.0 } else { -12.0 },
        );
        painter.text(
            at + inward,
            if right {
                egui::Align2::RIGHT_CENTER
            } else {
                egui::Align2::LEFT_CENTER
            },
            format!("{name} {:.0}%", weights[i] * 100.0),
            egui::FontId::proportional(13.0),
            visuals.text_color(),
        );
    }
    let puck = rect.min
        + Vec2::new(
            state.xy[0] * rect.width(),
            (1.0 - state.xy[1]) * rect.height(),
        );
    painter.circle_filled(puck, 9.0, visuals.selection.bg_fill);
    painter.circle_stroke(puck, 9.0, Stroke::new(2.0, visuals.strong_text_color()));
    if response.drag_stopped() || response.clicked() {
        Some(PuckEvent::Released)
    } else if moved {
        Some(PuckEvent::Moved)
    } else {
        None
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
