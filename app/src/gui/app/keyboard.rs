//! The on-screen piano keyboard.

use super::*;

/// Two octaves of a piano from the C below the current pitch: white keys with the
/// black ones between them where a musician expects them, the current key lit, each C
/// named; octave buttons beside. Every key is a widget named "key C#4" for screen
/// readers and tests.
pub(super) fn keyboard_ui(ui: &mut egui::Ui, pitch: &mut u8) {
    const WHITE_W: f32 = 18.0;
    const WHITE_H: f32 = 64.0;
    let base = (*pitch / 12) * 12;
    let last = (base + 24).min(127);
    ui.horizontal(|ui| {
        if ui.small_button("oct -").clicked() && *pitch >= 12 {
            *pitch -= 12;
        }
        let whites: Vec<u8> = (base..=last).filter(|m| !is_black(*m)).collect();
        let size = Vec2::new(WHITE_W * whites.len() as f32, WHITE_H);
        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
        let lit = ui.visuals().selection.bg_fill;
        let mut keys = Vec::new();
        for (i, &m) in whites.iter().enumerate() {
            let r = egui::Rect::from_min_size(
                rect.min + Vec2::new(i as f32 * WHITE_W, 0.0),
                Vec2::new(WHITE_W, WHITE_H),
            );
            keys.push((m, r));
        }
        // A black key straddles the line between its white neighbours.
        for m in (base..=last).filter(|m| is_black(*m)) {
            if let Some(&(_, left)) = keys.iter().find(|(w, _)| *w == m - 1) {
                let r = egui::Rect::from_min_size(
                    egui::pos2(left.right() - WHITE_W * 0.3, rect.top()),
                    Vec2::new(WHITE_W * 0.6, WHITE_H * 0.6),
                );
                keys.push((m, r));
            }
        }
        // White keys first: the black ones are drawn and hit on top of them.
        let painter = ui.painter_at(rect.expand(1.0));
        for &(m, r) in &keys {
            let id = ui.make_persistent_id(("key", m));
            let response = ui
                .interact(r, id, Sense::click())
                .on_hover_text(midi_name(m));
            response.widget_info(|| {
                egui::WidgetInfo::labeled(egui::Role::Button, true, format!("key {}", midi_name(m)))
            });
            if response.clicked() {
                *pitch = m;
            }
            let black = is_black(m);
            let fill = if m == *pitch {
                lit
            } else if black {
                Color32::from_gray(if response.hovered() { 70 } else { 25 })
            } else {
                Color32::from_gray(if response.hovered() { 200 } else { 240 })
            };
            painter.rect_filled(r.shrink(0.5), 2.0, fill);
            painter.rect_stroke(
                r.shrink(0.5),
                2.0,
                Stroke::new(1.0, Color32::from_gray(90)),
                egui::StrokeKind::Inside,
            );
            if m % 12 == 0 {
                painter.text(
                    egui::pos2(r.center().x, r.bottom() - 8.0),
                    egui::Align2::CENTER_CENTER,
                    midi_name(m),
                    egui::FontId::proportional(9.0),
                    if m == *pitch {
                        Color32::WHITE
                    } else {
                        Color32::from_gray(40)
                    },
                );
            }
        }
        if ui.small_button("oct +").clicked() && *pitch <= 115 {
            *pitch += 12;
        }
    });
}

fn is_black(midi: u8) -> bool {
    matches!(midi % 12, 1 | 3 | 6 | 8 | 10)
}
