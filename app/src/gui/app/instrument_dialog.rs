//! File → Export instrument…'s window.

use eframe::egui::{self, Color32};
use engine::pitch::midi_name;

use super::{Command, InstrumentRun};
use crate::gui::state::InstrumentSettings;

/// File → Export instrument…: the keys, velocity layers, format and release of a sampler
/// instrument made from the current blend, and the export's progress and Cancel.
/// `ready`: a model is loaded; `blend`: why the current blend cannot be exported, if it
/// cannot; `seconds`: the note length asked for (none: the sources' own).
pub(super) fn instrument_ui(
    ctx: &egui::Context,
    s: &mut InstrumentSettings,
    run: Option<&InstrumentRun>,
    ready: bool,
    blend: Result<(), String>,
    seconds: Option<f32>,
) -> Vec<Command> {
    let mut out = Vec::new();
    let mut open = true;
    let running = run.is_some();
    egui::Window::new("Export instrument")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            ui.add_enabled_ui(!running, |ui| {
                egui::Grid::new("instrument settings")
                    .num_columns(2)
                    .show(ui, |ui| {
                        let label = ui.label("Lowest key");
                        ui.add(
                            egui::DragValue::new(&mut s.low)
                                .range(21..=108)
                                .custom_formatter(|v, _| midi_name(v as u8)),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Highest key");
                        ui.add(
                            egui::DragValue::new(&mut s.high)
                                .range(21..=108)
                                .custom_formatter(|v, _| midi_name(v as u8)),
                        )
                        .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("A note every");
                        ui.add(egui::DragValue::new(&mut s.every).range(1..=12).suffix(" semitones"))
                            .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Velocity layers");
                        ui.add(egui::TextEdit::singleline(&mut s.velocities).desired_width(120.0))
                            .labelled_by(label.id)
                            .on_hover_text("rising velocities, comma-separated: each layer covers those above the one before");
                        ui.end_row();
                        let label = ui.label("Format");
                        egui::ComboBox::from_id_salt("instrument format")
                            .selected_text(match s.format {
                                engine::instrument::Format::Sf2 => "SoundFont 2 (.sf2)",
                                engine::instrument::Format::Sfz => "SFZ (.sfz + WAVs)",
                            })
                            .show_ui(ui, |ui| {
                                ui.selectable_value(&mut s.format, engine::instrument::Format::Sf2, "SoundFont 2 (.sf2)");
                                ui.selectable_value(&mut s.format, engine::instrument::Format::Sfz, "SFZ (.sfz + WAVs)");
                            })
                            .response
                            .labelled_by(label.id);
                        ui.end_row();
                        let label = ui.label("Release");
                        ui.add(egui::Slider::new(&mut s.release, 0.0..=3.0).suffix(" s"))
                            .labelled_by(label.id);
                        ui.end_row();
                    });
            });
            if s.low > s.high {
                std::mem::swap(&mut s.low, &mut s.high);
            }
            let layers = s.velocity_layers();
            match &layers {
                Ok(_) => {
                    ui.label(format!(
                        "{} notes of the current blend, {}; the rate and fade as for WAV export",
                        s.notes(),
                        seconds.map_or_else(|| "as long as its sources".to_string(), |v| format!("{v:.1} s long"))
                    ));
                }
                Err(e) => {
                    ui.colored_label(Color32::LIGHT_RED, e);
                }
            }
            if let Err(e) = &blend {
                ui.colored_label(Color32::LIGHT_RED, e);
            }
            match run {
                Some(run) => {
                    let (fraction, eta) = run.progress.map_or((0.0, None), |p| {
                        (p.done as f32 / p.total.max(1) as f32, p.eta_secs)
                    });
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.add(egui::ProgressBar::new(fraction).desired_width(220.0).show_percentage());
                        ui.label(match eta {
                            Some(s) => format!("ETA {s:.0} s"),
                            None => format!("{:.0} s", run.started.elapsed().as_secs_f32()),
                        });
                        if ui.button("Cancel export").clicked() {
                            out.push(Command::CancelInstrument);
                        }
                    });
                    ui.weak(format!("writing {}", run.path.display()));
                }
                None => {
                    let can = ready && layers.is_ok() && blend.is_ok();
                    if ui.add_enabled(can, egui::Button::new("Export…")).clicked() {
                        out.push(Command::InstrumentChooseFile);
                    }
                }
            }
        });
    if !open {
        out.push(Command::InstrumentDialog(false));
    }
    out
}
