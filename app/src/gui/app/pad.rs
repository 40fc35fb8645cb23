//! The blend panel: the four corners' instruments, the slider or NSynth Super's XY pad
//! with its puck, the preview grid's switch and the pitch keyboard. Like the other
//! panels it draws from the state and returns the [`Command`]s the user gave.

use std::collections::BTreeMap;
use std::path::PathBuf;

use eframe::egui::{self, Sense, Stroke, Vec2};
use engine::pack::Scan;
use engine::pitch::midi_name;
use engine::synth::xy_weights;

use super::panels::{DraggedSource, source_name};
use super::{Command, PREVIEW_RES, keyboard_ui};
use crate::gui::state::{PadMode, State};

/// The blend: corners, pad or slider, pitch, velocity and length.
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
