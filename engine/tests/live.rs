#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The live engine on the shipped student with the demo instruments as corners: the
//! streamed student equals its whole-note render, a held note sounds at its key (YIN, the
//! engine's pitch detection), falls silent after its release, bends, moves its timbre
//! with the XY point, steals voices past the limit, takes swapped corners, and refuses
//! or ignores bad input without panicking. (Allocation: `tests/live_alloc.rs`.)

use std::sync::{Arc, OnceLock};

use autoencoder::student::StudentAutoencoder;
use autoencoder::student::cpu::CpuStudent;
use autoencoder::student::generate::render_cpu;
use autoencoder::student::stream::{SliceFrames, StudentStream};
use autoencoder::{Control, Request, Sampling};
use engine::eval::MelSpectrogram;
use engine::live::{CornerNote, Corners, LiveConfig, LiveEngine};
use engine::pitch::{Pitch, detect};

use testkit::demo::{default_student, demo_corners};

const RATE: u32 = 48_000;

struct Shared {
    model: Arc<StudentAutoencoder>,
    /// The demo instruments: flute, piano, strings, trumpet (A, B, C, D).
    corners: Corners,
    /// Each alone.
    single: Vec<Corners>,
}

/// The shipped student and the demo corners, encoded once for every test here (no
/// cache: nothing is written outside a temporary folder).
fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let engine = default_student();
        let dir = tempfile::tempdir().unwrap();
        let (_, corners) = demo_corners(&engine, dir.path());
        let single = (0..4)
            .map(|c| {
                let notes: Vec<CornerNote> = [36u8, 48, 60, 72, 84, 96]
                    .iter()
                    .filter_map(|&k| corners.nearest(c, k).cloned())
                    .fold(Vec::new(), |mut v: Vec<CornerNote>, n| {
                        if !v.iter().any(|m| m.pitch == n.pitch) {
                            v.push(n);
                        }
                        v
                    });
                Corners::from_notes(vec![notes], vec![]).unwrap()
            })
            .collect();
        Shared {
            model: engine.student_model().unwrap(),
            corners,
            single,
        }
    })
}

fn live(corners: &Corners, max_voices: usize) -> LiveEngine {
    let cfg = LiveConfig {
        output_rate_hz: RATE,
        max_block_frames: 256,
        max_voices,
        helper_threads: 0,
        envelope: true,
    };
    let mut e = LiveEngine::new(Arc::clone(&shared().model), corners.clone(), cfg).unwrap();
    // The tests' debug build is far slower than real time: the guard would stop voices.
    e.set_cpu_guard(false);
    e
}

/// `secs` of output in blocks of 256.
fn play(e: &mut LiveEngine, secs: f32) -> Vec<f32> {
    let mut out = vec![0f32; (secs * RATE as f32) as usize];
    for block in out.chunks_mut(256) {
        e.process(block);
    }
    out
}

/// The pitch (Hz) YIN finds in 48 kHz audio.
fn hz_of(audio: &[f32]) -> f32 {
    let at16 = engine::audio::resample(audio, RATE, 16_000).unwrap();
    match detect(&at16) {
        Pitch::Detected { hz, .. } => hz,
        other => panic!("no pitch found: {other:?}"),
    }
}

fn peak(a: &[f32]) -> f32 {
    a.iter().fold(0f32, |m, x| m.max(x.abs()))
}

/// Mean log-mel spectrum (dB per band) of 48 kHz audio.
fn spectrum(audio: &[f32]) -> Vec<f32> {
    let at16 = engine::audio::resample(audio, RATE, 16_000).unwrap();
    let frames = MelSpectrogram::new().db(&at16);
    let mut mean = vec![0f32; frames[0].len()];
    for f in &frames {
        for (m, v) in mean.iter_mut().zip(f) {
            *m += v / frames.len() as f32;
        }
    }
    mean
}

fn distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

#[test]
fn the_shipped_student_streams_what_it_renders() {
    let s = shared();
    let cpu = Arc::new(CpuStudent::new(s.model.student()).unwrap());
    let cfg = cpu.config().clone();
    let note = s.corners.nearest(2, 60).unwrap();
    let frames = 8.min(note.embedding.frames);
    let enc = &note.embedding.data[..frames * cfg.frame_channels()];
    let time = frames * cfg.hop_length;
    // Its measured envelope delays the stream by the shaper's window.
    let delay = StudentStream::new(Arc::clone(&cpu), 9, 4).delay();
    // A glide with vibrato: every sample its own f0 (streamed on past the note by the
    // delay, the last frame held).
    let f0: Vec<f32> = (0..time + delay)
        .map(|t| {
            let vib = 0.3 * (std::f32::consts::TAU * 6.0 * t as f32 / 16_000.0).sin();
            autoencoder::excitation::midi_to_hz(60.0 + 3.0 * t as f32 / time as f32 + vib)
        })
        .collect();
    let request = Request {
        encoding: enc,
        f0: Some(&f0[..time]),
        streams: &[4],
        sampling: Sampling {
            temperature: 1.0,
            seed: 9,
        },
        threads: 1,
    };
    let offline = render_cpu(&cpu, &request, &Control::default())
        .unwrap()
        .remove(0);
    let p = peak(&offline);
    assert!(p > 0.01, "the note is silent: {p}");
    for blocks in [[256usize, 256], [85, 96], [7, 300]] {
        let mut stream = StudentStream::new(Arc::clone(&cpu), 9, 4);
        let mut source = SliceFrames {
            data: enc,
            bottleneck: cfg.frame_channels(),
        };
        let mut out = vec![0f32; time + delay];
        let mut at = 0;
        for &n in blocks.iter().cycle() {
            if at == out.len() {
                break;
            }
            let n = n.min(out.len() - at);
            stream
                .process(&f0[at..at + n], &mut source, &mut out[at..at + n])
                .unwrap();
            at += n;
        }
        // Up to a window before the end (there the whole note's stage hears silence after
        // the note, the stream the flows going on).
        let worst = out[delay..time]
            .iter()
            .zip(&offline)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        // 1e-5 of the peak: see autoencoder/tests/stream.rs.
        assert!(worst <= 1e-5 * p, "blocks {blocks:?}: {worst} of peak {p}");
    }
}

#[test]
fn a_held_note_sounds_at_its_key_and_is_silent_after_its_release() {
    let mut e = live(&shared().corners, 4);
    e.set_xy(0.0, 1.0); // C: strings, a held note
    e.note_on(57, 0.9);
    let held = play(&mut e, 1.0);
    assert_eq!(e.active_voices(), 1);
    let hz = hz_of(&held[4800..]);
    let want = engine::pitch::midi_to_hz(57.0);
    assert!(
        (hz / want).log2().abs() * 12.0 < 0.5,
        "{hz} Hz for {want} Hz"
    );
    assert!(peak(&held) > 0.02);
    e.set_envelope(0.01, 0.2);
    e.note_off(57);
    let after = play(&mut e, 0.5);
    assert_eq!(e.active_voices(), 0);
    // 0.2 s of release, the resampler's few milliseconds, then nothing.
    assert!(
        peak(&after[..4800]) > 1e-3,
        "the release should still sound"
    );
    assert!(peak(&after[12_000..]) < 1e-6, "{}", peak(&after[12_000..]));
}

#[test]
fn bending_moves_the_pitch() {
    let mut e = live(&shared().corners, 2);
    e.set_xy(0.0, 1.0);
    e.set_pitch_bend(3.0);
    e.note_on(55, 1.0);
    let bent = play(&mut e, 0.8);
    let hz = hz_of(&bent[4800..]);
    let want = engine::pitch::midi_to_hz(58.0);
    assert!(
        (hz / want).log2().abs() * 12.0 < 0.5,
        "{hz} Hz for {want} Hz"
    );
}

#[test]
fn moving_the_xy_point_while_a_note_is_held_moves_its_timbre_to_the_other_corner() {
    let s = shared();
    let at = |x: f32, y: f32, then: Option<(f32, f32)>| {
        let mut e = live(&s.corners, 2);
        e.set_xy(x, y);
        e.note_on(60, 1.0);
        let first = play(&mut e, 0.5);
        if let Some((x, y)) = then {
            e.set_xy(x, y);
        }
        let second = play(&mut e, 0.6);
        (first, second)
    };
    let (flute_before, flute) = at(0.0, 0.0, None);
    let (_, strings) = at(0.0, 1.0, None);
    let (before, moved) = at(0.0, 0.0, Some((0.0, 1.0)));
    let (sf, ss, sm) = (
        spectrum(&flute[9600..]),
        spectrum(&strings[9600..]),
        spectrum(&moved[9600..]),
    );
    let (to_flute, to_strings) = (distance(&sm, &sf), distance(&sm, &ss));
    assert!(
        distance(&sf, &ss) > 1.0,
        "the corners should sound different"
    );
    assert!(
        to_strings < to_flute,
        "moved: {to_strings} dB from strings, {to_flute} from flute"
    );
    // Before the move it was the flute, sample for sample (same note, same noise).
    assert_eq!(before, flute_before);
}

#[test]
fn voices_past_the_limit_are_stolen_oldest_released_first() {
    let mut e = live(&shared().corners, 3);
    for k in [60, 64, 67] {
        e.note_on(k, 0.8);
    }
    play(&mut e, 0.05);
    assert_eq!(e.active_voices(), 3);
    e.note_off(64);
    e.note_on(72, 0.8);
    let keys = |e: &LiveEngine| {
        let mut k: Vec<(u8, bool)> = e.voice_keys().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&e), [(60, true), (67, true), (72, true)]);
    e.note_on(74, 0.8);
    assert_eq!(keys(&e), [(67, true), (72, true), (74, true)]);
    let out = play(&mut e, 0.2);
    assert!(out.iter().all(|x| x.is_finite()) && peak(&out) > 0.01);
    e.all_notes_off();
    assert!(e.voice_keys().all(|(_, held)| !held));
}

/// The CPU guard, given no time for voices (a share of 0: any measured cost is too much),
/// stops voices, the oldest released first, then the oldest held, down to the newest
/// one; switched off, it stops none.
#[test]
fn the_cpu_guard_stops_the_oldest_voices_when_the_block_has_no_time_for_them() {
    let keys = |e: &LiveEngine| {
        let mut k: Vec<(u8, bool)> = e.voice_keys().collect();
        k.sort();
        k
    };
    // `pressed` in order (each sounding a little before the next), `released` let go; then
    // the voices get no time at all (unless `guard` is off).
    let starved = |pressed: &[u8], released: u8, guard: bool| {
        // Off while the notes start (this debug build is slower than real time).
        let mut e = live(&shared().corners, 8);
        for &k in pressed {
            e.note_on(k, 0.8);
            play(&mut e, 0.02);
        }
        e.note_off(released);
        play(&mut e, 0.01);
        e.set_cpu_guard(guard);
        e.set_cpu_share(0.0);
        play(&mut e, 0.02);
        let survivors = keys(&e);
        let out = play(&mut e, 0.1);
        assert!(out.iter().all(|x| x.is_finite()) && peak(&out) > 0.01);
        survivors
    };
    let five = [48, 52, 55, 60, 64];
    assert_eq!(
        starved(&five, 52, false),
        [(48, true), (52, false), (55, true), (60, true), (64, true)],
        "the guard is off"
    );
    // Held voices go oldest first: the newest held note is the one left.
    assert_eq!(starved(&five, 52, true), [(64, true)]);
    // A released voice goes before any held one, however old that is.
    assert_eq!(starved(&[48, 52], 52, true), [(48, true)]);
}

#[test]
fn swapped_corners_take_effect_at_the_next_block() {
    let s = shared();
    // Swapped in before a note: exactly what an engine built with them plays.
    let mut built = live(&s.single[2], 2);
    let mut swapped = live(&s.single[0], 2);
    swapped.corner_swap().swap(s.single[2].clone()).unwrap();
    for e in [&mut built, &mut swapped] {
        e.note_on(62, 0.7);
    }
    let (a, b) = (play(&mut built, 0.3), play(&mut swapped, 0.3));
    assert!(peak(&a) > 0.01);
    assert_eq!(a, b);
    // From another thread, while a note sounds.
    let handle = swapped.corner_swap();
    let flute = s.single[0].clone();
    std::thread::spawn(move || handle.swap(flute).unwrap())
        .join()
        .unwrap();
    let c = play(&mut swapped, 0.3);
    let d = play(&mut built, 0.3);
    assert_ne!(c, d);
    // Frames of another model's shape are refused.
    let other = Corners::from_notes(
        vec![vec![CornerNote {
            embedding: engine::synth::Embedding {
                frames: 1,
                channels: 3,
                data: vec![0.0; 3],
            },
            ..s.corners.nearest(0, 60).unwrap().clone()
        }]],
        vec![],
    )
    .unwrap();
    assert!(swapped.corner_swap().swap(other.clone()).is_err());
    assert!(LiveEngine::new(Arc::clone(&s.model), other, LiveConfig::default()).is_err());
}

#[test]
fn bad_input_is_refused_or_ignored_without_a_panic() {
    let s = shared();
    let model = || Arc::clone(&s.model);
    for cfg in [
        LiveConfig {
            output_rate_hz: 1_000,
            ..LiveConfig::default()
        },
        LiveConfig {
            output_rate_hz: 0,
            ..LiveConfig::default()
        },
        LiveConfig {
            max_voices: 0,
            ..LiveConfig::default()
        },
        LiveConfig {
            max_block_frames: 0,
            ..LiveConfig::default()
        },
    ] {
        assert!(
            LiveEngine::new(model(), s.corners.clone(), cfg).is_err(),
            "{cfg:?}"
        );
    }
    let mut e = live(&s.corners, 2);
    for key in [0u8, 10, 120, 200, 255] {
        e.note_on(key, 1.0);
    }
    e.note_on(60, f32::NAN);
    assert_eq!(e.active_voices(), 0);
    e.set_xy(f32::NAN, 2.0);
    e.set_weights([f32::INFINITY, -1.0, 0.0, 0.0]);
    e.set_pitch_bend(f32::NAN);
    e.set_envelope(-1.0, f32::INFINITY);
    e.set_gain(f32::NAN);
    e.note_on(60, 3.0);
    // A block longer than the engine was set up for: played in pieces.
    let mut long = vec![0f32; 1000];
    e.process(&mut long);
    let mut empty: [f32; 0] = [];
    e.process(&mut empty);
    assert!(long.iter().all(|x| x.is_finite()));
    assert!(peak(&long[600..]) > 0.0);
    // Other rates play too, with the measured envelope on (the default) as without: the
    // same latency, and the note's first sound at the same frame (its voice runs its
    // flows ahead).
    for rate in [16_000, 44_100, 96_000] {
        let first_sound = |envelope: bool| {
            let cfg = LiveConfig {
                output_rate_hz: rate,
                envelope,
                ..LiveConfig::default()
            };
            let mut e = LiveEngine::new(model(), s.corners.clone(), cfg).unwrap();
            e.set_cpu_guard(false);
            e.note_on(60, 1.0);
            let mut out = vec![0f32; rate as usize / 10];
            for b in out.chunks_mut(300) {
                e.process(b);
            }
            assert!(
                peak(&out) > 0.0 && out.iter().all(|x| x.is_finite()),
                "{rate} Hz, envelope {envelope}"
            );
            assert!(e.latency_secs() < 0.01, "{rate} Hz: {}", e.latency_secs());
            let onset = out.iter().position(|x| x.abs() > 1e-4);
            (e.latency_secs(), onset)
        };
        let (without, with) = (first_sound(false), first_sound(true));
        assert_eq!(without.0, with.0, "{rate} Hz");
        let (Some(a), Some(b)) = (without.1, with.1) else {
            panic!("{rate} Hz: silent {without:?} {with:?}");
        };
        assert!(
            a.abs_diff(b) <= rate as usize / 1000,
            "{rate} Hz: onsets {a} and {b}"
        );
    }
}

#[test]
fn the_engine_moves_to_an_audio_thread_and_the_swap_handle_anywhere() {
    fn send<T: Send>() {}
    fn shared_anywhere<T: Send + Sync + Clone>() {}
    send::<LiveEngine>();
    shared_anywhere::<engine::live::CornerSwap>();
}

#[test]
fn helper_threads_play_what_one_thread_plays() {
    let s = shared();
    let run = |helper_threads: usize| {
        let cfg = LiveConfig {
            output_rate_hz: RATE,
            max_block_frames: 256,
            max_voices: 5,
            helper_threads,
            envelope: true,
        };
        let mut e = LiveEngine::new(Arc::clone(&s.model), s.corners.clone(), cfg).unwrap();
        e.set_cpu_guard(false);
        e.set_xy(0.3, 0.6);
        for k in [48, 55, 60, 64, 67] {
            e.note_on(k, 0.7);
        }
        let mut out = play(&mut e, 0.2);
        e.note_off(55);
        e.set_xy(0.9, 0.1);
        out.extend(play(&mut e, 0.2));
        out
    };
    let one = run(0);
    assert!(peak(&one) > 0.01);
    for threads in [1, 2] {
        let many = run(threads);
        // The same voices, summed in another order.
        let worst = one
            .iter()
            .zip(&many)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{threads} helpers: {worst}");
    }
}

/// A live blend sounds as loud as its corners: halfway between the two neighbouring
/// corners whose levels differ most (a held C4), its level is near the mean of theirs in
/// dB, the envelope brought there by the corners' loudness (`synth::loudness`), nearer
/// than the plain mix of band amplitudes.
#[test]
fn a_live_blend_is_as_loud_as_its_corners() {
    let s = shared();
    let level = |corners: &Corners, (x, y): (f32, f32)| {
        let mut e = live(corners, 2);
        e.set_xy(x, y);
        e.note_on(60, 1.0);
        let a = play(&mut e, 1.2);
        let held = &a[9600..];
        10.0 * (held.iter().map(|v| v * v).sum::<f32>() / held.len() as f32).log10()
    };
    let corner = [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)].map(|p| level(&s.corners, p));
    let edges = [(0, 1), (0, 2), (1, 3), (2, 3)];
    let (a, b) = edges
        .into_iter()
        .max_by(|&(a, b), &(c, d)| {
            (corner[a] - corner[b])
                .abs()
                .total_cmp(&(corner[c] - corner[d]).abs())
        })
        .unwrap();
    let points = [(0.0f32, 0.0f32), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)];
    let middle = (
        0.5 * (points[a].0 + points[b].0),
        0.5 * (points[a].1 + points[b].1),
    );
    let blend = level(&s.corners, middle);
    let plain = level(&s.corners.clone().with_loudness(0), middle);
    let mean = 0.5 * (corner[a] + corner[b]);
    eprintln!("corners {corner:?}: {a} and {b}, mean {mean} dB, blend {blend}, plain {plain}");
    assert!(
        (corner[a] - corner[b]).abs() > 3.0,
        "corners of one level test nothing"
    );
    assert!(
        (blend - mean).abs() < 3.0,
        "blend {blend} dB, corners' mean {mean} dB"
    );
    assert!(
        (blend - mean).abs() < (plain - mean).abs(),
        "plain mix {plain} dB"
    );
}
