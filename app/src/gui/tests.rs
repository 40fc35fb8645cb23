//! The real app driven through egui_kittest, headless: a tiny random model, a temporary
//! pack folder, no display, no sound card, no file dialogs.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use autoencoder::Config;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use engine::audio::wav::WavFormat;
use engine::synth::ModelSource;
use testkit::notes;

use super::app::{Options, PREVIEW_RES, TimbrelApp};
use super::state::PadMode;

mod instrument;
mod keys;
mod live;
mod pad;

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
            num_layers: 4,
            excitation_harmonics: harmonics,
            ..testkit::tiny::wavenet()
        };
        testkit::tiny::random_model(&dir.path().join("model"), &cfg, 3);
        let pack = dir.path().join("mypack");
        std::fs::create_dir_all(&pack).unwrap();
        for pitch in [48u8, 60, 72] {
            let samples = notes::sine(notes::hz(pitch), 0.5, 4000);
            let name = format!("saw_{}.wav", engine::pitch::midi_name(pitch));
            notes::write(&pack.join(name), &samples, WavFormat::S16);
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

/// The saw pack alone (corner A, the slider at A) rendered at the app's pitch: waits for
/// the result and checks it came without an error.
fn render_the_saw_pack(h: &mut Harness<'_, TimbrelApp>, s: &Setup) {
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
    wait(h, "the render", |a| !a.rendering());
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
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
    notes::write(&long, &samples, WavFormat::S16);
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
    render_the_saw_pack(&mut h, &s);
    assert!(h.state().result.is_some());
}
