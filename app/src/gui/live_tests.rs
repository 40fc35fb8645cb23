//! The audio callback with live keys, no sound card: the shipped student and the demo
//! instruments as corners; commands go in through the GUI's ring as the app sends them,
//! audio comes out of `Renderer::fill` as a device would take it (stereo, 48 kHz, 480
//! frames a buffer).

use std::sync::{Arc, OnceLock};

use engine::live::{Corners, LiveConfig, LiveEngine};
use engine::pitch::{Pitch, detect};

use super::*;
use testkit::alloc::calls_on_this_thread;
use testkit::demo::{default_student, demo_corners};

const RATE: u32 = 48_000;
const BUFFER_FRAMES: usize = 480;

struct Model {
    model: Arc<autoencoder::student::StudentAutoencoder>,
    /// flute, piano, strings, trumpet (A, B, C, D).
    corners: Corners,
}

fn shared() -> &'static Model {
    static SHARED: OnceLock<Model> = OnceLock::new();
    SHARED.get_or_init(|| {
        let engine = default_student();
        let dir = tempfile::tempdir().unwrap();
        let (_, corners) = demo_corners(&engine, dir.path());
        Model {
            corners,
            model: engine.student_model().unwrap(),
        }
    })
}

/// A callback's state with a live engine handed to it (its CPU guard off: the tests'
/// build is slower than real time), and the GUI's ends.
fn callback() -> (LiveInput, Arc<Shared>, Renderer) {
    let (_commands, _returned, shared_, mut live, renderer) = Renderer::new(2, RATE);
    let cfg = LiveConfig {
        output_rate_hz: RATE,
        max_block_frames: 512,
        max_voices: 4,
        helper_threads: 0,
        envelope: false,
    };
    let s = shared();
    let mut engine = LiveEngine::new(Arc::clone(&s.model), s.corners.clone(), cfg).unwrap();
    engine.set_cpu_guard(false);
    live.install(Box::new(engine)).unwrap();
    (live, shared_, renderer)
}

/// `secs` of the callback's output, the left channel (the right checked equal).
fn play(renderer: &mut Renderer, secs: f32) -> Vec<f32> {
    let mut out = vec![0f32; 2 * BUFFER_FRAMES];
    let mut left = Vec::new();
    for _ in 0..(secs * RATE as f32) as usize / BUFFER_FRAMES {
        renderer.fill(&mut out);
        for frame in out.chunks_exact(2) {
            assert_eq!(frame[0], frame[1]);
            left.push(frame[0]);
        }
    }
    left
}

fn peak(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Mean log-mel spectrum (dB per band) of 48 kHz audio.
fn spectrum(audio: &[f32]) -> Vec<f32> {
    let at16 = engine::audio::resample(audio, RATE, 16_000).unwrap();
    let frames = engine::eval::MelSpectrogram::new().db(&at16);
    let mut mean = vec![0f32; frames[0].len()];
    for f in &frames {
        for (m, v) in mean.iter_mut().zip(f) {
            *m += v / frames.len() as f32;
        }
    }
    mean
}

const STRINGS: [f32; 4] = [0.0, 0.0, 1.0, 0.0];
const FLUTE: [f32; 4] = [1.0, 0.0, 0.0, 0.0];

#[test]
fn a_live_key_sounds_at_its_pitch_moves_with_the_puck_and_falls_silent() {
    // The same note twice (the same noise stream): one left on the strings, one moved
    // to the flute half-way.
    let (mut live, stats, mut renderer) = callback();
    let (mut moved_live, _, mut moved) = callback();
    for l in [&mut live, &mut moved_live] {
        assert!(l.send(LiveCommand::Weights(STRINGS)));
        assert!(l.send(LiveCommand::NoteOn {
            key: 57,
            velocity: 0.9
        }));
    }
    let held = play(&mut renderer, 0.5);
    assert_eq!(held, play(&mut moved, 0.5), "the same note, the same noise");
    assert!(!stats.playing.load(Ordering::Relaxed), "no buffer plays");
    assert_eq!(live.stats.voices(), 1);
    assert!(live.stats.running() && live.stats.cpu_load() > 0.0);
    // YIN, the engine's pitch detection, within half a semitone of A3.
    let at16 = engine::audio::resample(&held[4800..], RATE, 16_000).unwrap();
    let want = engine::pitch::midi_to_hz(57.0);
    match detect(&at16) {
        Pitch::Detected { hz, .. } => assert!(
            (hz / want).log2().abs() * 12.0 < 0.5,
            "{hz} Hz for {want} Hz"
        ),
        other => panic!("no pitch in the live key: {other:?}"),
    }
    assert!(peak(&held) > 0.02);

    // The puck moves to the flute while the key is held: the note goes on and its
    // timbre changes.
    assert!(moved_live.send(LiveCommand::Weights(FLUTE)));
    let (still, flute) = (play(&mut renderer, 0.6), play(&mut moved, 0.6));
    let (a, b) = (spectrum(&still[9600..]), spectrum(&flute[9600..]));
    let db = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32;
    assert!(db > 1.0, "moving the puck changed the spectrum by {db} dB");
    assert!(peak(&flute[9600..]) > 0.01, "still sounding");

    // Let go: the release (0.3 s), then silence; no voice left.
    assert!(live.send(LiveCommand::NoteOff { key: 57 }));
    let after = play(&mut renderer, 0.6);
    assert!(peak(&after[..4800]) > 1e-3, "the release sounds");
    assert!(peak(&after[21_600..]) < 1e-6, "{}", peak(&after[21_600..]));
    assert_eq!(live.stats.voices(), 0);
}

#[test]
fn the_callback_with_live_voices_never_allocates() {
    let (mut live, _, mut renderer) = callback();
    let mut out = vec![0f32; 2 * BUFFER_FRAMES];
    // The engine is taken at the first fill.
    renderer.fill(&mut out);
    for command in [
        LiveCommand::Weights([0.2, 0.3, 0.4, 0.1]),
        LiveCommand::NoteOn {
            key: 48,
            velocity: 1.0,
        },
        LiveCommand::NoteOn {
            key: 64,
            velocity: 0.5,
        },
        LiveCommand::NoteOn {
            key: 71,
            velocity: 0.7,
        },
        LiveCommand::Bend(1.5),
        LiveCommand::ModWheel(0.8),
        LiveCommand::Envelope {
            attack_secs: 0.02,
            release_secs: 0.5,
        },
    ] {
        assert!(live.send(command));
    }
    let before = calls_on_this_thread();
    for _ in 0..20 {
        renderer.fill(&mut out);
    }
    assert_eq!(calls_on_this_thread() - before, 0, "while voices play");
    assert_eq!(live.stats.voices(), 3);

    // Keys let go, others stolen past the four voices, all off, a new engine handed
    // over (the old one goes back to this side to be dropped): still nothing.
    let s = shared();
    let cfg = LiveConfig {
        output_rate_hz: RATE,
        max_block_frames: 512,
        max_voices: 2,
        helper_threads: 0,
        envelope: false,
    };
    let mut second = LiveEngine::new(Arc::clone(&s.model), s.corners.clone(), cfg).unwrap();
    second.set_cpu_guard(false);
    for key in [50, 52, 55] {
        assert!(live.send(LiveCommand::NoteOn { key, velocity: 0.6 }));
    }
    assert!(live.send(LiveCommand::NoteOff { key: 64 }));
    let before = calls_on_this_thread();
    for _ in 0..10 {
        renderer.fill(&mut out);
    }
    assert_eq!(calls_on_this_thread() - before, 0, "stealing and releasing");
    assert_eq!(live.stats.voices(), 4);
    assert!(live.send(LiveCommand::AllOff));
    live.install(Box::new(second)).unwrap();
    assert!(live.send(LiveCommand::NoteOn {
        key: 60,
        velocity: 1.0
    }));
    let before = calls_on_this_thread();
    for _ in 0..10 {
        renderer.fill(&mut out);
    }
    assert_eq!(calls_on_this_thread() - before, 0, "an engine swapped in");
    assert_eq!(live.stats.voices(), 1, "the new engine plays the new key");
    assert!(out.iter().all(|x| x.is_finite()));
    live.collect();
}
