#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
//! The measured envelope and its output stage (`autoencoder::student::envelope`): the
//! resynthesis returns a note unchanged where the gains are 1, a note is shaped towards
//! the envelope it is given, silence is never raised, and the shaper streams in any block
//! sizes what the whole-note stage plays.

use autoencoder::student::StudentConfig;
use autoencoder::student::envelope::{
    Bands, HOP, MAX_GAIN_DB, Shaper, WINDOW, apply_gains, gains_backward, measure, note_gains,
    shape_note, shift, split_frames,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const FRAME: usize = 512;
const BANDS: usize = 24;

fn sines(parts: &[(f32, f32)], len: usize) -> Vec<f32> {
    (0..len)
        .map(|t| {
            parts
                .iter()
                .map(|&(hz, a)| a * (std::f32::consts::TAU * hz * t as f32 / 16_000.0).sin())
                .sum()
        })
        .collect()
}

fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..len)
        .map(|_| 0.2 * (2.0 * rng.random::<f32>() - 1.0))
        .collect()
}

fn db(a: f32) -> f32 {
    20.0 * a.max(1e-10).log10()
}

/// Mean |dB| difference of two envelopes over frames `frames` and the bands where the
/// target is within 60 dB of its loudest.
fn envelope_distance(target: &[f32], got: &[f32], frames: std::ops::Range<usize>) -> f32 {
    let loudest = target.iter().copied().fold(0f32, f32::max);
    let (mut sum, mut n) = (0f32, 0);
    for f in frames {
        for b in 0..BANDS {
            let (t, g) = (target[f * BANDS + b], got[f * BANDS + b]);
            if db(t) > db(loudest) - 60.0 {
                sum += (db(t) - db(g)).abs();
                n += 1;
            }
        }
    }
    sum / n.max(1) as f32
}

#[test]
fn a_full_scale_sine_reads_near_one_in_its_band() {
    let bands = Bands::new(BANDS);
    let note = sines(&[(1000.0, 1.0)], 8 * FRAME);
    let env = measure(&bands, &note, FRAME);
    assert_eq!(env.len(), 8 * BANDS);
    let loudest = env[3 * BANDS..4 * BANDS]
        .iter()
        .copied()
        .fold(0f32, f32::max);
    // The sine lies between two bands' centres: each reads a fraction of it.
    assert!(loudest > 0.5 && loudest < 1.1, "{loudest}");
}

/// The output stage blocks DC, so the envelope is measured as it can be played: a note
/// with a DC offset (FluidR3's program 88 has one) measures as the same note without it,
/// where the 256-sample window would read the offset as low partials (20 dB of them here).
#[test]
fn a_dc_offset_is_not_read_as_low_partials() {
    let bands = Bands::new(BANDS);
    let note = sines(&[(660.0, 0.3), (1320.0, 0.1)], 16 * FRAME);
    let offset: Vec<f32> = note.iter().map(|x| x + 0.1).collect();
    let (clean, with_offset) = (
        measure(&bands, &note, FRAME),
        measure(&bands, &offset, FRAME),
    );
    // After the blocker's first ~50 ms (its time constant is 16 ms).
    let frames = 4..16;
    let d = envelope_distance(&clean, &with_offset, frames.clone());
    assert!(d < 0.1, "{d} dB");
    let lowest = |env: &[f32]| frames.clone().map(|f| env[f * BANDS]).fold(0f32, f32::max);
    assert!(
        db(lowest(&with_offset)) < db(lowest(&clean)) + 1.0,
        "{} vs {}",
        db(lowest(&with_offset)),
        db(lowest(&clean))
    );
}

/// A note played away from the pitch its envelope was measured at: the envelope moved by
/// the interval is (nearly) the one measured at the new pitch, where unmoved it puts the
/// partials' bands where the new note has none.
#[test]
fn an_envelope_moved_by_an_interval_is_the_envelope_at_the_new_pitch() {
    let bands = Bands::new(48);
    let note = |hz: f32| {
        let partials: Vec<(f32, f32)> = (1..=12)
            .map(|k| (hz * k as f32, 0.3 / k as f32))
            .filter(|&(f, _)| f < 7_500.0)
            .collect();
        measure(&bands, &sines(&partials, 6 * FRAME), FRAME)
    };
    let (c5, a4) = (note(523.25), note(440.0));
    let frame = |env: &[f32]| env[3 * 48..4 * 48].to_vec();
    let distance = |a: &[f32], b: &[f32]| {
        let loudest = a.iter().copied().fold(0f32, f32::max);
        let kept: Vec<(f32, f32)> = a
            .iter()
            .zip(b)
            .filter(|&(&x, _)| db(x) > db(loudest) - 40.0)
            .map(|(&x, &y)| (x, y))
            .collect();
        kept.iter()
            .map(|&(x, y)| (db(x) - db(y)).abs())
            .sum::<f32>()
            / kept.len() as f32
    };
    let mut moved = frame(&c5);
    shift(&mut moved, -3.0);
    let (unmoved, shifted) = (
        distance(&frame(&a4), &frame(&c5)),
        distance(&frame(&a4), &moved),
    );
    assert!(
        shifted < 0.5 * unmoved,
        "unmoved {unmoved} dB, moved {shifted} dB"
    );
    // No interval, no change; an octave up and back down keeps the bands in between.
    let mut same = frame(&c5);
    shift(&mut same, 0.0);
    assert_eq!(same, frame(&c5));
    let mut there_and_back = frame(&c5);
    shift(&mut there_and_back, 12.0);
    shift(&mut there_and_back, -12.0);
    let back = distance(&frame(&c5)[10..30], &there_and_back[10..30]);
    assert!(back < 3.0, "{back} dB");
}

#[test]
fn a_steady_note_shaped_to_its_own_envelope_comes_back_unchanged() {
    let bands = Bands::new(BANDS);
    let note = sines(&[(220.0, 0.3), (660.0, 0.2), (2500.0, 0.1)], 10 * FRAME);
    let env = measure(&bands, &note, FRAME);
    let mut shaped = note.clone();
    shape_note(&bands, &mut shaped, &env, FRAME);
    // Away from the ends (the first and last windows see silence beyond the note).
    let interior = FRAME..9 * FRAME;
    let err = shaped[interior.clone()]
        .iter()
        .zip(&note[interior])
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    // Each window's band power differs from the frame's mean by the sines' beating within
    // a band, a few hundredths of a dB here: the gains are 1 within ~0.5 %.
    assert!(err < 0.01 * 0.6, "{err}");
}

/// Low notes, whose lowest partials leak into DC through the 256-sample window: DC takes
/// the lowest band's gain, so a note at half its level shaped to its own envelope comes
/// back at its level (with DC cut, as the stage first did, E1 came back 3.1 dB quiet and
/// A0 5.5 dB; the default student's notes under ~70 Hz 1–6 dB).
#[test]
fn a_low_note_keeps_its_fundamental() {
    let bands = Bands::new(BANDS);
    for f0 in [27.5f32, 41.2, 55.0, 110.0] {
        let partials: Vec<(f32, f32)> = (1..=8).map(|k| (f0 * k as f32, 0.3 / k as f32)).collect();
        let note = sines(&partials, 10 * FRAME);
        let env = measure(&bands, &note, FRAME);
        let mut shaped: Vec<f32> = note.iter().map(|x| 0.5 * x).collect();
        shape_note(&bands, &mut shaped, &env, FRAME);
        let interior = FRAME..9 * FRAME;
        let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
        let change = db(rms(&shaped[interior.clone()]) / rms(&note[interior]));
        // The window is shorter than A0's period: per-window band powers beat, ±0.7 dB.
        assert!(change.abs() < 0.7, "{f0} Hz: {change} dB");
    }
}

#[test]
fn noise_is_shaped_towards_the_envelope_it_is_given() {
    let bands = Bands::new(BANDS);
    let frames = 12;
    // The target: a bright sawtooth-like note whose level falls 30 dB over the note.
    let target_note: Vec<f32> = sines(
        &(1..=20)
            .map(|k| (180.0 * k as f32, 0.3 / k as f32))
            .collect::<Vec<_>>(),
        frames * FRAME,
    )
    .iter()
    .enumerate()
    .map(|(t, x)| x * 10f32.powf(-1.5 * t as f32 / (frames * FRAME) as f32))
    .collect();
    let target = measure(&bands, &target_note, FRAME);
    let mut shaped = noise(frames * FRAME, 1);
    let before = envelope_distance(&target, &measure(&bands, &shaped, FRAME), 1..frames - 1);
    shape_note(&bands, &mut shaped, &target, FRAME);
    let after = envelope_distance(&target, &measure(&bands, &shaped, FRAME), 1..frames - 1);
    assert!(before > 10.0, "{before}");
    assert!(after < 3.0, "{before} dB → {after} dB");
}

/// A bin takes a mix of its bands' gains and a band reads its neighbours' bins, so one
/// pass leaves a band beside a much louder one off its target; refining the gains brings
/// every window nearer (see `Bands::refine`).
#[test]
fn refining_the_gains_brings_the_shaped_note_nearer_its_envelope() {
    let frames = 12;
    // A low note with a steep spectrum: partials of 58 Hz falling 12 dB an octave, every
    // third one missing (a plucked string's comb), 40 dB down above 1 kHz.
    let target_note = sines(
        &(1..=120)
            .filter(|k| k % 3 != 0)
            .map(|k| {
                let hz = 58.0 * k as f32;
                (
                    hz,
                    0.3 / (k * k) as f32 * if hz > 1000.0 { 0.01 } else { 1.0 },
                )
            })
            .collect::<Vec<_>>(),
        frames * FRAME,
    );
    let bands = |refinements| Bands::new(BANDS).with_refinements(refinements);
    let target = measure(&bands(0), &target_note, FRAME);
    let distance = |refinements| {
        // What the flows might play: the same partials, all there, at 1 / k.
        let mut shaped = sines(
            &(1..=120)
                .map(|k| (58.0 * k as f32, 0.3 / k as f32))
                .collect::<Vec<_>>(),
            frames * FRAME,
        );
        shape_note(&bands(refinements), &mut shaped, &target, FRAME);
        envelope_distance(&target, &measure(&bands(0), &shaped, FRAME), 1..frames - 1)
    };
    let (once, refined, more) = (distance(0), distance(1), distance(3));
    // Measured: 1.28 dB in one pass, 1.18 refined once, 1.07 three times.
    assert!(
        refined < 0.95 * once,
        "one pass {once} dB, refined once {refined} dB"
    );
    assert!(
        more < 0.9 * once,
        "one pass {once} dB, refined three times {more} dB"
    );
}

/// A student's file says how often its stage refines; older files, without the field,
/// read 0 (one pass, as they were trained and measured), and 0 is left out when written.
#[test]
fn a_students_refinements_come_from_its_config() {
    let mut cfg = StudentConfig::small();
    cfg.envelope_bands = BANDS;
    let json = serde_json::to_string(&cfg).unwrap();
    assert!(!json.contains("envelope_refinements"), "{json}");
    let read: StudentConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(read.envelope_refinements, 0);
    assert_eq!(Bands::of(&read).unwrap().refinements(), 0);
    cfg.envelope_refinements = 3;
    let read: StudentConfig = serde_json::from_str(&serde_json::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(Bands::of(&read).unwrap().refinements(), 3);
    cfg.envelope_bands = 0;
    assert!(Bands::of(&cfg).is_none());
}

#[test]
fn silence_is_never_raised_and_a_band_moves_at_most_the_limit() {
    let bands = Bands::new(BANDS);
    let loud = vec![1.0f32; 6 * BANDS];
    let mut silence = vec![0f32; 6 * FRAME];
    shape_note(&bands, &mut silence, &loud, FRAME);
    assert!(silence.iter().all(|&x| x == 0.0));
    // A quiet sine asked to be 60 dB louder comes up by the limit, no more.
    let quiet = sines(&[(1000.0, 0.001)], 6 * FRAME);
    let mut raised = quiet.clone();
    shape_note(&bands, &mut raised, &loud, FRAME);
    let rms = |x: &[f32]| (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt();
    let gain = db(rms(&raised[FRAME..5 * FRAME]) / rms(&quiet[FRAME..5 * FRAME]));
    assert!(
        gain > MAX_GAIN_DB - 1.0 && gain < MAX_GAIN_DB + 0.5,
        "{gain} dB"
    );
}

#[test]
fn the_shaper_streams_in_any_blocks_what_the_whole_note_stage_plays() {
    for refinements in [0, 2] {
        shaper_streams_what_the_whole_note_stage_plays(
            &Bands::new(BANDS).with_refinements(refinements),
        );
    }
}

fn shaper_streams_what_the_whole_note_stage_plays(bands: &Bands) {
    let frames = 7;
    let note = noise(frames * FRAME, 2);
    let target = measure(
        bands,
        &sines(&[(300.0, 0.5), (3000.0, 0.05)], frames * FRAME),
        FRAME,
    );
    let mut whole = note.clone();
    shape_note(bands, &mut whole, &target, FRAME);
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for _ in 0..3 {
        let mut shaper = Shaper::new(bands, FRAME);
        let mut input: Vec<f32> = note.clone();
        input.resize(note.len() + WINDOW, 0.0);
        let mut t = 0;
        while t < input.len() {
            let f = t / FRAME;
            let held = f.min(frames - 1);
            shaper.set_frame(f, &target[held * BANDS..(held + 1) * BANDS]);
            let n = rng
                .random_range(1..=300)
                .min((f + 1) * FRAME - t)
                .min(input.len() - t);
            shaper.process(&mut input[t..t + n]);
            t += n;
        }
        assert_eq!(&input[WINDOW..], &whole[..], "streamed ≠ whole note");
    }
    assert_eq!(WINDOW % HOP, 0);
}

#[test]
fn frames_split_into_the_flows_part_and_the_envelope() {
    let frames: Vec<f32> = (0..10).map(|i| i as f32).collect();
    let (flows, env) = split_frames(&frames, 3, 2);
    assert_eq!(flows, [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]);
    assert_eq!(env, [3.0, 4.0, 8.0, 9.0]);
    let (all, none) = split_frames(&frames, 10, 0);
    assert_eq!(all, frames);
    assert!(none.is_empty());
}

/// With its gains fixed (what training through the stage holds them at), the stage is the
/// whole-note stage itself, and a symmetric linear map: ⟨S x, y⟩ = ⟨x, S y⟩, so the same
/// map carries a loss's gradient back.
#[test]
fn the_stage_with_fixed_gains_is_the_stage_and_its_own_adjoint() {
    for refinements in [0, 2] {
        fixed_gains_are_the_stage_and_its_own_adjoint(
            &Bands::new(BANDS).with_refinements(refinements),
        );
    }
}

fn fixed_gains_are_the_stage_and_its_own_adjoint(bands: &Bands) {
    let frames = 6;
    let note = noise(frames * FRAME, 4);
    let target = measure(
        bands,
        &sines(&[(440.0, 0.3), (1500.0, 0.05)], frames * FRAME),
        FRAME,
    );
    let gains = note_gains(bands, &note, &target, FRAME);
    let shaped = apply_gains(bands, &gains, &note);
    let mut whole = note.clone();
    shape_note(bands, &mut whole, &target, FRAME);
    let peak = whole.iter().fold(0f32, |m, x| m.max(x.abs()));
    let worst = shaped
        .iter()
        .zip(&whole)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst <= 1e-5 * peak, "{worst} of {peak}");
    let (x, y) = (noise(frames * FRAME, 5), noise(frames * FRAME, 6));
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| f64::from(p * q)).sum::<f64>();
    let (sx_y, x_sy) = (
        dot(&apply_gains(bands, &gains, &x), &y),
        dot(&x, &apply_gains(bands, &gains, &y)),
    );
    assert!(
        (sx_y - x_sy).abs() <= 1e-5 * sx_y.abs().max(x_sy.abs()).max(1e-3),
        "{sx_y} vs {x_sy}"
    );
}

/// The stage's gradient with its gains' own derivative (`gains_backward`) is the
/// derivative of the stage: a central difference of `<r, S(x)>` along a random direction
/// agrees with it within 2 % (f32 audio, a step of 1e-3 on samples of ±0.2), where
/// holding the gains fixed misses most of it.
#[test]
fn the_stage_s_gradient_through_its_gains_is_its_derivative() {
    let bands = Bands::new(BANDS);
    let frames = 4;
    let x = noise(frames * FRAME, 7);
    // A target within ±8 dB of the note's own envelope, band by band: no gain at a limit.
    let own = measure(&bands, &x, FRAME);
    let target: Vec<f32> = own
        .iter()
        .enumerate()
        .map(|(i, a)| a * 10f32.powf(0.4 * ((i as f32) * 0.9).sin()))
        .collect();
    let r = noise(frames * FRAME, 8);
    let v = noise(frames * FRAME, 9);
    let loss = |x: &[f32]| -> f64 {
        let g = note_gains(&bands, x, &target, FRAME);
        apply_gains(&bands, &g, x)
            .iter()
            .zip(&r)
            .map(|(a, b)| f64::from(a * b))
            .sum()
    };
    let eps = 1e-3f32;
    let shifted =
        |sign: f32| -> Vec<f32> { x.iter().zip(&v).map(|(a, d)| a + sign * eps * d).collect() };
    let numeric = (loss(&shifted(1.0)) - loss(&shifted(-1.0))) / (2.0 * f64::from(eps));
    let gains = note_gains(&bands, &x, &target, FRAME);
    let dot = |g: &[f32]| g.iter().zip(&v).map(|(a, b)| f64::from(a * b)).sum::<f64>();
    let exact = dot(&gains_backward(&bands, &gains, &x, &r));
    let fixed = dot(&apply_gains(&bands, &gains, &r));
    assert!(
        (exact - numeric).abs() <= 0.02 * numeric.abs(),
        "numeric {numeric}, through the gains {exact}, gains fixed {fixed}"
    );
    assert!(
        (fixed - numeric).abs() > 0.1 * numeric.abs(),
        "numeric {numeric}, gains fixed {fixed}"
    );
}
