//! The real app driven through egui_kittest, headless: a tiny random model, a temporary
//! pack folder, no display, no sound card, no file dialogs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoencoder::Config;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine::audio::wav::{self, WavFormat};
use engine::fsutil::Overwrite;
use engine::synth::ModelSource;

use super::app::{Options, PREVIEW_RES, TimbrelApp};
use super::state::PadMode;

mod live;

#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        Self::with_harmonics(0)
    }

    /// With a model whose decoder takes the pitch (`harmonics` > 0).
    fn with_harmonics(harmonics: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            num_stages: 4,
            num_layers: 4,
            filter_length: 3,
            width: 16,
            skip_width: 16,
            ae_num_stages: 4,
            ae_num_layers: 3,
            ae_filter_length: 3,
            ae_width: 8,
            ae_bottleneck_width: 4,
            ae_hop_length: 64,
            excitation_harmonics: harmonics,
            excitation_into: Default::default(),
        };
        engine::models::dir::write_random(&dir.path().join("model"), &cfg, 3).unwrap();
        let pack = dir.path().join("mypack");
        std::fs::create_dir_all(&pack).unwrap();
        for pitch in [48u8, 60, 72] {
            let hz = 440.0 * 2f32.powf((f32::from(pitch) - 69.0) / 12.0);
            let samples: Vec<f32> = (0..4000)
                .map(|t| 0.5 * (std::f32::consts::TAU * hz * t as f32 / 16_000.0).sin())
                .collect();
            wav::write(
                &pack.join(format!("saw_{}.wav", engine::pitch::midi_name(pitch))),
                &samples,
                16_000,
                WavFormat::S16,
                Overwrite::Never,
            )
            .unwrap();
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn harness(&self) -> Harness<'static, TimbrelApp> {
        self.harness_on(ModelSource::Dir(self.path("model")))
    }

    fn harness_on(&self, model: ModelSource) -> Harness<'static, TimbrelApp> {
        let options = Options {
            model,
            audio: false,
            midi: false,
            dialogs: false,
            restore: false,
            data_dir: Some(self.path("data")),
            render_on_start: false,
            cache_dir: Some(self.path("cache")),
            device: candle_core::Device::Cpu,
        };
        Harness::builder()
            .with_size(egui::Vec2::new(1400.0, 900.0))
            .build_eframe(move |cc| TimbrelApp::new(cc, options))
    }
}

/// Steps the app until `done` holds (the worker runs on its own thread).
fn wait(h: &mut Harness<'_, TimbrelApp>, what: &str, done: impl Fn(&TimbrelApp) -> bool) {
    let started = Instant::now();
    while !done(h.state()) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    h.step();
}

#[test]
fn a_first_session_blends_renders_and_exports() {
    let s = Setup::new();
    let mut h = s.harness();
    // First start: the demo packs are the sources and fill the four corners.
    wait(&mut h, "the model and the demo packs", |a| {
        a.idle() && a.model_ready()
    });
    assert_eq!(h.state().state.packs.len(), 4);
    assert!(h.state().state.corners.iter().all(Option::is_some));
    h.get_by_label("Render");

    // Drop the user's pack on the window; it is scanned and listed with its notes.
    let pack = s.path("mypack");
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(pack.clone())));
    wait(&mut h, "the pack scan", |a| {
        a.scans.get(&pack).is_some_and(Option::is_some)
    });
    let scan = h.state().scans[&pack].clone().unwrap().unwrap();
    assert_eq!(scan.notes().count(), 3);

    // Make it corner B through its button in the sources list, and corner A through
    // the corner's combo box.
    h.get_by_label("mypack").click();
    h.run_steps(2);
    h.get_by_label("to B").click();
    h.run_steps(2);
    assert_eq!(h.state().state.corners[1].as_ref(), Some(&pack));
    h.get_by_label("Corner A").click();
    h.run_steps(2);
    h.get_all_by_label("mypack").last().unwrap().click();
    h.run_steps(2);
    assert_eq!(h.state().state.corners[0].as_ref(), Some(&pack));
    // And drag it from the list onto corner C.
    let from = h.get_by_label("drag mypack onto a corner").rect().center();
    let to = h.get_by_label("C:").rect().center();
    h.drag_at(from);
    h.run_steps(1);
    h.hover_at(to);
    h.run_steps(1);
    h.drop_at(to);
    h.run_steps(2);
    assert_eq!(h.state().state.corners[2].as_ref(), Some(&pack));

    // Drag the puck into the bottom-right corner of the pad (B), past its edge: it
    // stops at the corner.
    let pad = h.get_by_label("XY pad puck").rect();
    h.drag_at(pad.center());
    h.run_steps(1);
    h.hover_at(egui::pos2(pad.right() + 30.0, pad.bottom() + 30.0));
    h.run_steps(1);
    h.drop_at(egui::pos2(pad.right() + 30.0, pad.bottom() + 30.0));
    h.run_steps(2);
    assert_eq!(h.state().state.xy, [1.0, 0.0]);

    // Render at C4 and wait; the result and its plots are there.
    h.get_by_label("Render").click();
    h.run_steps(1);
    assert!(h.state().rendering());
    wait(&mut h, "the render", |a| !a.rendering());
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    let result = app.result.as_ref().expect("a result");
    assert_eq!(result.pitch, 60);
    assert_eq!(result.rendered.audio.len(), 4000);
    assert!(!result.waveform.is_empty());
    assert_eq!(result.embedding.len(), 4, "one line per embedding channel");
    assert!(result.spectrogram.1 > 0);
    // Only corner B has weight at (1, 0): one source went into the blend.
    assert_eq!(result.rendered.sources.len(), 1);
    assert!(result.rendered.sources[0].file.starts_with(&pack));
    for view in ["Embedding", "Spectrogram", "Waveforms"] {
        h.get_by_label(view).click();
        h.run_steps(2);
    }

    // Export: written; a second export to the same path asks first.
    let out = s.path("out.wav");
    h.state_mut().export_path = Some(out.clone());
    h.get_by_label("Export WAV…").click();
    wait(&mut h, "the export", |_| out.exists());
    wait(&mut h, "the export notice", |a| {
        a.notice
            .as_deref()
            .is_some_and(|n| n.starts_with("exported"))
    });
    let first = std::fs::read(&out).unwrap();
    assert!(hound::WavReader::open(&out).is_ok());
    std::fs::write(&out, b"mine").unwrap();
    h.get_by_label("Export WAV…").click();
    h.run_steps(2);
    assert_eq!(h.state().confirm_overwrite.as_ref(), Some(&out));
    // A new window is laid out invisibly in its first frame.
    h.run_steps(2);
    h.get_by_label("Keep it").click();
    h.run_steps(2);
    assert_eq!(std::fs::read(&out).unwrap(), b"mine");
    h.get_by_label("Export WAV…").click();
    h.run_steps(4);
    h.get_by_label("Replace").click();
    wait(&mut h, "the replaced export", |_| {
        std::fs::read(&out).is_ok_and(|b| b.len() > 100)
    });
    assert_eq!(std::fs::read(&out).unwrap(), first);
}

#[test]
fn a_render_can_be_cancelled() {
    let s = Setup::new();
    // A long note so the render is still running when Cancel is clicked.
    let long = s.path("long.wav");
    let samples: Vec<f32> = (0..16_000 * 60)
        .map(|t| 0.3 * (t as f32 * 0.05).sin())
        .collect();
    wav::write(&long, &samples, 16_000, WavFormat::S16, Overwrite::Never).unwrap();
    let mut h = s.harness();
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.mix = 0.0;
    h.state_mut().state.corners[0] = Some(long.clone());
    h.run_steps(2);
    // The engine reads 4 s of a file by default: still 64,000 samples to decode.
    h.get_by_label("Render").click();
    h.run_steps(1);
    assert!(h.state().rendering());
    wait(&mut h, "the cancel button", |a| a.rendering());
    h.get_by_label("Cancel").click();
    wait(&mut h, "the cancelled render", |a| !a.rendering());
    let app = h.state();
    assert_eq!(app.notice.as_deref(), Some("render cancelled"));
    assert!(app.result.is_none());
    assert!(app.error.is_none(), "{:?}", app.error);
}

#[test]
fn state_survives_a_restart() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model", |a| a.idle());
    h.state_mut().state.pitch = 67;
    h.state_mut().state.xy = [0.25, 0.75];
    let saved = serde_json::to_string(&h.state().state).unwrap();
    let restored: super::state::State = serde_json::from_str(&saved).unwrap();
    assert_eq!(restored, h.state().state);
    // Missing keys (an older session file) take their defaults.
    let partial: super::state::State = serde_json::from_str(r#"{"pitch": 50}"#).unwrap();
    assert_eq!(partial.pitch, 50);
    assert_eq!(partial.velocity, 100);
    // A session file: loaded, its packs rescanned; garbage is a clear error.
    let file = s.path("session.json");
    std::fs::write(&file, &saved).unwrap();
    h.state_mut().load_session(&file).unwrap();
    assert_eq!(h.state().state.pitch, 67);
    std::fs::write(&file, b"{not json").unwrap();
    let err = h.state_mut().load_session(&file).unwrap_err();
    assert!(err.contains("session.json"), "{err}");
}

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
    wav::write(
        &other.join("hum_C4.wav"),
        &quiet,
        16_000,
        WavFormat::S16,
        Overwrite::Never,
    )
    .unwrap();
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
fn a_midi_keyboard_plays_the_result_transposed() {
    let s = Setup::new();
    let mut h = s.harness();
    let (keys, midi) = super::midi::Midi::fake();
    h.state_mut().midi = midi;
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    // Nothing rendered yet: a note says so instead of playing.
    let on = |note| super::midi::MidiEvent::NoteOn { note, velocity: 90 };
    keys.send(on(60)).unwrap();
    h.run_steps(2);
    assert!(h.state().notice.as_deref().unwrap_or("").contains("render"));

    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.mix = 0.0;
    h.state_mut().state.corners[0] = Some(s.path("mypack"));
    h.run_steps(2);
    h.get_by_label("Render").click();
    h.run_steps(1);
    assert!(
        h.state().rendering(),
        "{:?} {:?}",
        h.state().error,
        h.state().notice
    );
    wait(&mut h, "the render", |a| !a.rendering());
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert_eq!(h.state().result.as_ref().unwrap().pitch, 60);

    // D4 plays the C4 render two semitones up until its note-off.
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), Some(62));
    assert_eq!(h.state().transposed_cached(), vec![2]);
    keys.send(super::midi::MidiEvent::NoteOff { note: 61 })
        .unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), Some(62), "another key's release");
    keys.send(super::midi::MidiEvent::NoteOff { note: 62 })
        .unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), None);
    // Three octaves up is past the engine's shift range: not played, and said so.
    keys.send(on(96)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), None);
    assert!(
        h.state()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("two octaves")
    );
    assert!(h.state().error.is_none());
}

#[test]
fn a_pitched_models_keys_get_renders_of_their_own() {
    let s = Setup::with_harmonics(4);
    let mut h = s.harness();
    let (keys, midi) = super::midi::Midi::fake();
    h.state_mut().midi = midi;
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.mix = 0.0;
    h.state_mut().state.corners[0] = Some(s.path("mypack"));
    h.run_steps(2);
    h.get_by_label("Render").click();
    h.run_steps(1);
    wait(&mut h, "the render", |a| !a.rendering());
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert_eq!(h.state().result.as_ref().unwrap().pitch, 60);

    // D4: its own render is asked for; meanwhile C4's plays two semitones up.
    let on = |note| super::midi::MidiEvent::NoteOn { note, velocity: 90 };
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().transposed_cached(), vec![2]);
    let notice = h.state().notice.clone().unwrap_or_default();
    assert!(notice.contains("D4: playing C4 transposed"), "{notice}");
    wait(&mut h, "D4's own render", |a| a.native_keys() == vec![62]);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(
        h.state()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("D4 rendered at its own pitch")
    );
    // Pressed again, D4 plays its own render: nothing more is transposed.
    keys.send(super::midi::MidiEvent::NoteOff { note: 62 })
        .unwrap();
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().transposed_cached(), vec![2]);
    // E4 meanwhile plays the nearest note rendered so far, D4, a tone up.
    keys.send(on(64)).unwrap();
    h.run_steps(2);
    let notice = h.state().notice.clone().unwrap_or_default();
    assert!(notice.contains("E4: playing D4 transposed"), "{notice}");
    wait(&mut h, "E4's own render", |a| {
        a.native_keys() == vec![62, 64]
    });
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
    let settings = &mut h.state_mut().state.instrument;
    settings.low = 60;
    settings.high = 66;
    settings.every = 6;
    settings.velocities = "100".into();
    let out = s.path("blend.sf2");
    h.state_mut().instrument_path = Some(out.clone());
    h.run_steps(2);
    h.get_by_label("Export…").click();
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
    let settings = &mut h.state_mut().state.instrument;
    settings.low = 36;
    settings.high = 96;
    settings.every = 1;
    settings.velocities = "40,80,120".into();
    let big = s.path("big.sfz");
    h.state_mut().instrument_path = Some(big.clone());
    h.run_steps(2);
    h.get_by_label("Export…").click();
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

#[test]
fn the_piano_keys_and_the_note_length_set_the_render() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model and the demo packs", |a| {
        a.idle() && a.model_ready()
    });
    // Pitch C4: the keyboard shows C4 to C6, black keys between the white ones.
    let c4 = h.get_by_label("key C4").rect();
    let cs4 = h.get_by_label("key C#4").rect();
    let d4 = h.get_by_label("key D4").rect();
    assert!(cs4.center().x > c4.center().x && cs4.center().x < d4.center().x);
    assert!(cs4.height() < c4.height(), "black keys are shorter");
    h.get_by_label("key C#4").click();
    h.run_steps(2);
    assert_eq!(h.state().state.pitch, 61);
    // The lower half of a white key under a black one is the white key.
    let low_d4 = egui::pos2(d4.center().x, d4.bottom() - 4.0);
    h.drag_at(low_d4);
    h.run_steps(1);
    h.drop_at(low_d4);
    h.run_steps(2);
    assert_eq!(h.state().state.pitch, 62);
    assert!(h.get_all_by_label("Length").next().is_some());

    // A 20 s note from the 0.25 s saw notes (long enough to see it rendering).
    let pack = s.path("mypack");
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.corners[0] = Some(pack.clone());
    h.state_mut().state.corners[1] = Some(pack);
    h.state_mut().state.seconds = 20.0;
    h.state_mut().state.pitch = 60;
    h.run_steps(2);
    h.get_by_label("Render").click();
    h.run_steps(2);
    assert!(h.state().rendering());
    // The progress shows where the result will be.
    h.get_by_label("Rendering");
    wait(&mut h, "the render", |a| !a.rendering());
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    assert_eq!(app.result.as_ref().unwrap().rendered.audio.len(), 320_000);
}

#[test]
fn the_status_lines_error_goes_when_dismissed() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    h.state_mut().error = Some("mypack/a.wav: not a sound file".into());
    h.run_steps(2);
    h.get_by_label("mypack/a.wav: not a sound file");
    h.get_by_label("dismiss").click();
    h.run_steps(2);
    assert!(h.state().error.is_none());
    assert!(h.query_by_label("dismiss").is_none());
}

#[test]
fn a_samplernn_model_renders_in_the_window() {
    use autoencoder::samplernn::{SampleRnn, SampleRnnConfig};
    let s = Setup::new();
    // A random SampleRNN of the tiny preset as a model directory.
    let dir = s.path("samplernn");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = SampleRnnConfig::tiny();
    let varmap = candle_nn::VarMap::new();
    SampleRnn::new(
        &cfg,
        &candle_nn::VarBuilder::from_varmap(
            &varmap,
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        ),
    )
    .unwrap();
    varmap.save(dir.join("weights.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), cfg.to_json().unwrap()).unwrap();
    let mut h = s.harness_on(ModelSource::Dir(dir));
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    h.get_by_label_contains("SampleRNN");
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.mix = 0.0;
    h.state_mut().state.corners[0] = Some(s.path("mypack"));
    h.run_steps(2);
    h.get_by_label("Render").click();
    h.run_steps(1);
    wait(&mut h, "the render", |a| !a.rendering());
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(h.state().result.is_some());
}
