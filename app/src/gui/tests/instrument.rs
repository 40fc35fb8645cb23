//! File → Export instrument…: the dialog exports, asks before replacing a file, and
//! cancels keeping the notes rendered so far.

use super::*;

/// Keys `low..=high` every `every` at `velocities`, exported to `path` (the dialog open).
fn export_instrument(
    h: &mut Harness<'_, TimbrelApp>,
    (low, high, every, velocities): (u8, u8, u8, &str),
    path: &Path,
) {
    let settings = &mut h.state_mut().state.instrument;
    settings.low = low;
    settings.high = high;
    settings.every = every;
    settings.velocities = velocities.into();
    h.state_mut().instrument_path = Some(path.to_path_buf());
    h.run_steps(2);
    h.get_by_label("Export…").click();
}

#[test]
fn the_instrument_dialog_exports_asks_before_replacing_and_cancels() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model and the demo packs", |a| {
        a.idle() && a.model_ready()
    });
    // Short notes: the saw pack (0.25 s) in the slider's two corners.
    let pack = s.path("mypack");
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.corners[0] = Some(pack.clone());
    h.state_mut().state.corners[1] = Some(pack.clone());
    h.run_steps(2);

    // File → Export instrument… opens the dialog.
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export instrument…").click();
    h.run_steps(3);
    assert!(h.state().instrument_dialog);
    assert!(h.get_all_by_label("Lowest key").next().is_some());
    assert!(h.get_all_by_label("Velocity layers").next().is_some());
    // A typo is shown and the export waits for a fix.
    h.state_mut().state.instrument.velocities = "64,x".into();
    h.run_steps(2);
    h.get_by_label_contains("velocity \"x\"");
    let out = s.path("blend.sf2");
    export_instrument(&mut h, (60, 66, 6, "100"), &out);
    wait(&mut h, "the instrument", |a| {
        a.instrument.is_none() && out.exists()
    });
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("2 notes over 2 keys")),
        "{:?}",
        app.notice
    );
    let font = rustysynth::SoundFont::new(&mut std::fs::File::open(&out).unwrap()).unwrap();
    assert_eq!(font.get_instruments()[0].get_regions().len(), 2);

    // Again to the same file: asked first; kept.
    let before = std::fs::read(&out).unwrap();
    h.get_by_label("Export…").click();
    h.run_steps(4);
    assert_eq!(h.state().confirm_instrument.as_ref(), Some(&out));
    h.get_by_label("Keep it").click();
    h.run_steps(2);
    assert!(h.state().instrument.is_none());
    assert_eq!(std::fs::read(&out).unwrap(), before);

    // A long export, cancelled: nothing written, the notes kept to resume.
    let big = s.path("big.sfz");
    export_instrument(&mut h, (36, 96, 1, "40,80,120"), &big);
    h.run_steps(1);
    wait(&mut h, "the export's progress", |a| {
        a.instrument.as_ref().is_some_and(|r| r.progress.is_some())
    });
    h.get_by_label("Cancel export").click();
    wait(&mut h, "the cancelled export", |a| a.instrument.is_none());
    let app = h.state();
    assert!(
        app.notice
            .as_deref()
            .is_some_and(|n| n.contains("cancelled")),
        "{:?}",
        app.notice
    );
    assert!(!big.exists());
    assert!(engine::instrument::parts_dir(&big).exists());
}
