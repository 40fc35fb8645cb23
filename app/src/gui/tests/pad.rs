//! The XY pad's puck: with the preview grid, the nearest cell plays while the exact blend
//! renders; with the default student, the result follows the puck as it is dragged.

use super::*;

#[test]
fn the_preview_grid_plays_the_nearest_cell_while_the_exact_blend_renders() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model and the demo packs", |a| {
        a.idle() && a.model_ready()
    });
    assert!(h.state().preview.is_none(), "off until asked for");
    // Short notes in the corners (the demo notes are 4 s): the saw pack in A and B, a
    // quieter one-note pack in C and D.
    let other = s.path("other");
    std::fs::create_dir_all(&other).unwrap();
    let quiet: Vec<f32> = (0..3000).map(|t| 0.2 * (t as f32 * 0.11).sin()).collect();
    notes::write(&other.join("hum_C4.wav"), &quiet, WavFormat::S16);
    let pack = s.path("mypack");
    h.state_mut().state.corners = [
        Some(pack.clone()),
        Some(pack),
        Some(other.clone()),
        Some(other),
    ];
    h.run_steps(2);

    h.get_by_label(&format!("Preview grid ({PREVIEW_RES}x{PREVIEW_RES})"))
        .click();
    h.run_steps(2);
    assert!(h.state().state.preview_grid);
    wait(&mut h, "the preview grid", TimbrelApp::preview_ready);
    {
        let app = h.state();
        let preview = app.preview.as_ref().unwrap();
        let cells = preview.cells.as_ref().unwrap();
        assert_eq!(cells.len(), PREVIEW_RES * PREVIEW_RES);
        assert!(
            cells.iter().all(|c| c.len() == 4000),
            "the longest corner note"
        );
        // Corner cells are single instruments: A's and D's are different notes.
        assert_ne!(cells[0], cells[PREVIEW_RES * PREVIEW_RES - 1]);
        assert!(!app.rendering(), "the grid is not the exact render");
    }

    // Let go of the puck near B (x 1, y 0, the pad's bottom right): the nearest cell
    // plays at once and the exact blend renders.
    let pad = h.get_by_label("XY pad puck").rect();
    let near_b = egui::pos2(pad.right() - 8.0, pad.bottom() - 8.0);
    h.drag_at(pad.center());
    h.run_steps(1);
    h.hover_at(near_b);
    h.run_steps(1);
    h.drop_at(near_b);
    h.run_steps(2);
    assert_eq!(h.state().preview_cell, Some((PREVIEW_RES - 1, 0)));
    assert!(h.state().rendering(), "the exact blend renders");
    wait(&mut h, "the exact render", |a| !a.rendering());
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    let xy = app.state.xy;
    assert!(xy[0] > 0.9 && xy[1] < 0.1, "{xy:?}");
    assert!(app.result.is_some());

    // Another pitch makes the grid stale: it renders again for the new one.
    h.state_mut().state.pitch = 62;
    h.run_steps(2);
    assert!(!h.state().preview_ready());
    wait(&mut h, "the new preview grid", TimbrelApp::preview_ready);
}

#[test]
fn with_the_default_student_the_result_follows_the_puck() {
    let s = Setup::new();
    let mut h = s.harness_on(ModelSource::Default);
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    assert!(
        h.state().parallel(),
        "the default model plays with its student"
    );
    assert!(
        h.query_by_label_contains("the result follows the puck")
            .is_some(),
        "the status line says so"
    );
    let pack = s.path("mypack");
    h.state_mut().state.corners = [
        Some(pack.clone()),
        Some(pack.clone()),
        Some(pack.clone()),
        Some(pack),
    ];
    h.run_steps(2);
    wait(&mut h, "the corners", TimbrelApp::idle);
    let before = h.state().renders_started();

    // Drag the puck across the pad, pausing at each point until the render of the
    // moment is done: each move is followed by a render of where the puck then is.
    let pad = h.get_by_label("XY pad puck").rect();
    h.drag_at(pad.center());
    h.run_steps(1);
    for (fx, fy) in [(0.3, 0.4), (0.7, 0.6), (0.9, 0.9)] {
        h.hover_at(egui::pos2(
            pad.left() + fx * pad.width(),
            pad.top() + fy * pad.height(),
        ));
        h.run_steps(2);
        wait(&mut h, "a render while dragging", |a| !a.rendering());
    }
    let while_dragging = h.state().renders_started() - before;
    assert!(
        while_dragging >= 3,
        "{while_dragging} renders while dragging"
    );
    assert!(h.state().result.is_some());

    // Let go: the exact blend of where the puck is renders (and would play).
    let end = egui::pos2(
        pad.left() + 0.9 * pad.width(),
        pad.top() + 0.9 * pad.height(),
    );
    h.drop_at(end);
    h.run_steps(2);
    wait(&mut h, "the render on release", |a| !a.rendering());
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    assert!(app.renders_started() - before > while_dragging);
    let [x, y] = app.state.xy;
    assert!((x - 0.9).abs() < 0.02 && (y - 0.1).abs() < 0.02, "{x} {y}");
}
