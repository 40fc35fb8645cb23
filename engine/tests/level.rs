#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Blends as loud as their sources (`engine::synth::level`): a decoded blend brought,
//! frame by frame, to the weighted mean in dB of its sources' levels; single sources and
//! silence untouched; the gain clamped and smooth.

use engine::synth::Weights;
use engine::synth::level::{
    MAX_GAIN_DB, SILENCE_DB, envelope_db, frame_gains_db, frame_levels, match_blend, match_levels,
    max_step_db, targets,
};

const HOP: usize = 512;

/// A 440 Hz tone whose level in dBFS at frame `f` is `level(f)` (RMS; the frame's own
/// level, constant within the frame).
fn tone(frames: usize, level: impl Fn(usize) -> f32) -> Vec<f32> {
    (0..frames * HOP)
        .map(|t| {
            let amp = std::f32::consts::SQRT_2 * 10f32.powf(level(t / HOP) / 20.0);
            amp * (2.0 * std::f32::consts::PI * 440.0 * t as f32 / 16_000.0).sin()
        })
        .collect()
}

#[test]
fn a_blend_comes_out_at_its_sources_db_weighted_mean() {
    let frames = 40;
    // Slowly moving levels (a level matched by a gain interpolated between frames can
    // only be exact where neighbouring frames agree to within a fraction of a dB).
    let la = |f: usize| -12.0 - 0.25 * f as f32;
    let lb = |f: usize| -30.0 + 0.15 * f as f32;
    let (a, b) = (tone(frames, la), tone(frames, lb));
    // The decoded blend, quieter and with a level of its own.
    let mut blended = tone(frames, |f| -25.0 + 0.1 * f as f32);
    let levels = [frame_levels(&a, HOP, frames), frame_levels(&b, HOP, frames)];
    for (w, weights) in [
        (0.5, Weights::Fixed(vec![1.0, 1.0])),
        (0.25, Weights::Fixed(vec![0.25, 0.75])),
    ] {
        let mut out = blended.clone();
        match_blend(&mut out, &levels, &weights, HOP).unwrap();
        let got = frame_levels(&out, HOP, frames);
        for f in 0..frames {
            let want = w * la(f) + (1.0 - w) * lb(f);
            // 0.5 dB: the tone's RMS over a frame differs from its nominal level by
            // the partial cycle (< 0.1 dB at 440 Hz over 512 samples), and the gain
            // ramps linearly in dB between frame centres, which with levels moving at
            // most 0.35 dB a frame costs less than 0.2 dB.
            assert!(
                (got.data[f] - want).abs() < 0.5,
                "weights {weights:?} frame {f}: {} dB, want {want} dB",
                got.data[f]
            );
        }
    }
    // And a morph: A's level at the start, B's at the end.
    let morph = Weights::Morph {
        start: vec![1.0, 0.0],
        end: vec![0.0, 1.0],
    };
    match_blend(&mut blended, &levels, &morph, HOP).unwrap();
    let got = frame_levels(&blended, HOP, frames);
    for f in 0..frames {
        let t = f as f32 / (frames - 1) as f32;
        let want = (1.0 - t) * la(f) + t * lb(f);
        assert!((got.data[f] - want).abs() < 0.5, "morph frame {f}");
    }
}

#[test]
fn a_single_source_is_untouched_bit_for_bit() {
    let frames = 20;
    let a = tone(frames, |_| -10.0);
    let b = tone(frames, |_| -40.0);
    let levels = [frame_levels(&a, HOP, frames), frame_levels(&b, HOP, frames)];
    let decoded = tone(frames, |f| -30.0 - f as f32);
    for weights in [
        Weights::Fixed(vec![1.0, 0.0]),
        Weights::Fixed(vec![0.0, 3.0]),
        Weights::Morph {
            start: vec![0.0, 1.0],
            end: vec![0.0, 1.0],
        },
    ] {
        let mut out = decoded.clone();
        match_blend(&mut out, &levels, &weights, HOP).unwrap();
        assert_eq!(out, decoded, "{weights:?}");
    }
    // One source alone, whatever its weight.
    let mut out = decoded.clone();
    match_blend(&mut out, &levels[..1], &Weights::Fixed(vec![1.0]), HOP).unwrap();
    assert_eq!(out, decoded);
    // Level matching off: no level tracks, no change.
    let mut out = decoded.clone();
    match_blend(&mut out, &[], &Weights::Fixed(vec![1.0, 1.0]), HOP).unwrap();
    assert_eq!(out, decoded);
}

#[test]
fn silence_stays_silent_and_noise_is_not_pumped_up() {
    let frames = 12;
    // Sources loud only in frames 0..6; the decoded blend has faint noise (−70 dBFS)
    // in frames 6.. and exact silence in frame 3.
    let a = tone(frames, |f| if f < 6 { -6.0 } else { -200.0 });
    let b = tone(frames, |f| if f < 6 { -20.0 } else { -200.0 });
    let mut decoded = tone(frames, |f| if f < 6 { -30.0 } else { -70.0 });
    decoded[3 * HOP..4 * HOP].fill(0.0);
    let levels = [frame_levels(&a, HOP, frames), frame_levels(&b, HOP, frames)];
    let targets: Vec<f32> = levels[0]
        .data
        .iter()
        .zip(&levels[1].data)
        .map(|(x, y)| 0.5 * (x + y))
        .collect();
    let gains = frame_gains_db(&decoded, &targets, HOP);
    assert_eq!(gains[3], 0.0, "a silent decoded frame gets no gain");
    assert!(gains[6..].iter().all(|&g| g == 0.0), "{gains:?}");
    assert!(targets[6..].iter().all(|&t| t < SILENCE_DB));
    let mut out = decoded.clone();
    match_levels(&mut out, &targets, HOP);
    assert!(out[3 * HOP..4 * HOP].iter().all(|&s| s == 0.0));
    // The noise frames well after the last loud one are as decoded.
    assert_eq!(out[8 * HOP..], decoded[8 * HOP..]);
}

#[test]
fn a_silent_source_counts_at_the_silence_floor() {
    // A silent (digital zero) and a −20 dBFS source, half and half: the target is the
    // mean of −60 (the floor) and −20, however deep the silence.
    let frames = 4;
    let quiet = frame_levels(&vec![0.0; frames * HOP], HOP, frames);
    let loud = frame_levels(&tone(frames, |_| -20.0), HOP, frames);
    let t = targets(&[&quiet, &loud], &Weights::Fixed(vec![1.0, 1.0])).unwrap();
    assert!(
        t.iter()
            .all(|&t| (t - 0.5 * (SILENCE_DB - 20.0)).abs() < 0.1),
        "{t:?}"
    );
    // Both silent: the target is the floor, which counts as silence (no gain).
    let t = targets(&[&quiet, &quiet], &Weights::Fixed(vec![0.3, 0.7])).unwrap();
    let decoded = tone(frames, |_| -40.0);
    assert!(frame_gains_db(&decoded, &t, HOP).iter().all(|&g| g == 0.0));
}

#[test]
fn the_gain_is_clamped() {
    let frames = 8;
    let decoded = tone(frames, |_| -50.0);
    let up = frame_gains_db(&decoded, &[0.0; 8], HOP);
    assert!(up.iter().all(|&g| g == MAX_GAIN_DB), "{up:?}");
    let loud = tone(frames, |_| -3.0);
    let down = frame_gains_db(&loud, &[-55.0; 8], HOP);
    assert!(down.iter().all(|&g| g == -MAX_GAIN_DB), "{down:?}");
    let mut out = decoded.clone();
    match_levels(&mut out, &[0.0; 8], HOP);
    let got = frame_levels(&out, HOP, frames);
    assert!(
        got.data
            .iter()
            .all(|l| (l - (-50.0 + MAX_GAIN_DB)).abs() < 0.1)
    );
}

#[test]
fn the_envelope_moves_smoothly() {
    // The worst case: gains swinging between the clamps every frame.
    let gains: Vec<f32> = (0..16)
        .map(|f| {
            if f % 2 == 0 {
                MAX_GAIN_DB
            } else {
                -MAX_GAIN_DB
            }
        })
        .collect();
    let env = envelope_db(&gains, HOP, 16 * HOP);
    let bound = max_step_db(HOP);
    // 36 dB over 512 samples: 0.0703 dB, a gain ratio of 1.008 between samples.
    assert!(bound < 0.071);
    let worst = env
        .windows(2)
        .map(|w| (w[1] - w[0]).abs())
        .fold(0f32, f32::max);
    assert!(worst <= bound + 1e-4, "step {worst} dB > {bound} dB");
    assert!(worst > 0.5 * bound, "the test swings the gain");
    assert!(env.iter().all(|g| g.abs() <= MAX_GAIN_DB + 1e-4));
    // Held before the first centre and after the last.
    assert_eq!(env[0], MAX_GAIN_DB);
    assert_eq!(*env.last().unwrap(), -MAX_GAIN_DB);
}

/// The engine's path: `Engine::sources` keeps each source's level track fitted to the
/// note's length as its embedding is, `Sources::match_level` leaves a single source's
/// decode bit for bit, moves a blend's by at most the clamp, and is off when asked.
#[test]
fn the_engine_keeps_aligned_levels_and_spares_single_sources() {
    use autoencoder::{Control, Sampling};
    use engine::audio::wav::{self, WavFormat};
    use engine::fsutil::Overwrite;
    use engine::synth::{NoteSpec, Voice};
    use std::ops::ControlFlow;

    let dir = tempfile::tempdir().unwrap();
    let model = testkit::tiny::random_model(
        &dir.path().join("model"),
        &testkit::tiny::small_wavenet(),
        5,
    );
    let engine = testkit::tiny::load(&model).with_threads(1);
    assert!(engine.level_match(), "on by default");
    let mut files = Vec::new();
    for (name, amp, decay) in [("a", 0.5f32, 0.0f32), ("b", 0.05, 3.0)] {
        let samples: Vec<f32> = (0..4000)
            .map(|t| {
                let secs = t as f32 / 16_000.0;
                amp * (-decay * secs).exp() * (std::f32::consts::TAU * 261.6 * secs).sin()
            })
            .collect();
        let file = dir.path().join(format!("{name}.wav"));
        wav::write(&file, &samples, 16_000, WavFormat::F32, Overwrite::Never).unwrap();
        files.push(file);
    }
    let spec = NoteSpec {
        pitch: None,
        velocity: None,
        seconds: Some(0.5),
        read: Default::default(),
    };
    let sources = engine.sources(&files, &spec).unwrap();
    assert_eq!(sources.levels.len(), 2);
    for (l, e) in sources.levels.iter().zip(&sources.embeddings) {
        assert_eq!((l.frames, l.channels), (e.frames, 1), "stretched alike");
    }
    let decode = |weights: &Weights| {
        let blended = sources.blend(weights, None).unwrap();
        engine
            .decode(
                &[blended],
                &[0],
                Sampling {
                    temperature: 1.0,
                    seed: 0,
                },
                &Control::default(),
                &mut |_| ControlFlow::Continue(()),
            )
            .unwrap()
            .remove(0)
    };
    let one = Weights::Fixed(vec![0.0, 1.0]);
    let decoded = decode(&one);
    let mut out = decoded.clone();
    sources.match_level(&one, &mut out).unwrap();
    assert_eq!(out, decoded, "a single source is left as decoded");
    let half = Weights::Fixed(vec![0.5, 0.5]);
    let decoded = decode(&half);
    let mut out = decoded.clone();
    sources.match_level(&half, &mut out).unwrap();
    let (before, after) = (
        frame_levels(&decoded, 64, decoded.len() / 64),
        frame_levels(&out, 64, decoded.len() / 64),
    );
    for (b, a) in before.data.iter().zip(&after.data) {
        assert!((a - b).abs() <= MAX_GAIN_DB + 0.01, "{b} → {a}");
    }
    // Engine::render is that sequence, voice by voice in one batch: decode, bring a blend
    // to its sources' level, cut it to the note's length; an embedding alone as decoded.
    let rendered = engine
        .render(
            &[
                Voice::blend(&sources, &half, None).unwrap(),
                Voice::of(sources.blend(&one, None).unwrap(), None),
            ],
            &[0, 0],
            Sampling {
                temperature: 1.0,
                seed: 0,
            },
            &Control::default(),
            &mut |_| ControlFlow::Continue(()),
        )
        .unwrap();
    assert_eq!(
        rendered[0],
        out[..sources.length],
        "blend, decode, level, cut"
    );
    assert!(sources.length <= out.len());
    assert_eq!(rendered[1], decode(&one), "an embedding as decoded");
    // Off: no level tracks kept, nothing changed.
    let off = engine.with_level_match(false);
    let sources = off.sources(&files, &spec).unwrap();
    assert!(sources.levels.is_empty());
    let mut out = decoded.clone();
    sources.match_level(&half, &mut out).unwrap();
    assert_eq!(out, decoded);
}
