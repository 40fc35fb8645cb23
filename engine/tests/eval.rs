#![allow(clippy::unwrap_used)] // test code
//! The blend score and the per-instrument figures of `timbrel eval`, on signals whose
//! answers are known.

use engine::eval::{
    BlendFigures, MelSpectrogram, NoteScore, PairNote, by_instrument, pair_notes, rms_db,
    score_blend, summarise_blends,
};

const RATE_HZ: f32 = 16_000.0;
const LEN: usize = 16_000;

/// A harmonic tone at `hz`: harmonic `h` at amplitude `amplitudes(h)` (up to 7.5 kHz),
/// decaying.
fn unscaled(hz: f32, amplitudes: &dyn Fn(usize) -> f32) -> Vec<f32> {
    (0..LEN)
        .map(|i| {
            let t = i as f32 / RATE_HZ;
            (-t * 1.5).exp()
                * (1..)
                    .take_while(|&h| hz * h as f32 <= 7500.0)
                    .map(|h| amplitudes(h) * (2.0 * std::f32::consts::PI * hz * h as f32 * t).sin())
                    .sum::<f32>()
        })
        .collect()
}

/// The gain that brings [`unscaled`] to an RMS level of −20 dB.
fn gain(hz: f32, amplitudes: &dyn Fn(usize) -> f32) -> f32 {
    10f32.powf((-20.0 - rms_db(&unscaled(hz, amplitudes))) / 20.0)
}

/// [`unscaled`] at −20 dB RMS.
fn tone(hz: f32, amplitudes: &dyn Fn(usize) -> f32) -> Vec<f32> {
    scaled(
        &unscaled(hz, amplitudes),
        20.0 * gain(hz, amplitudes).log10(),
    )
}

/// Two timbres: bright (every harmonic, 1/h) and hollow (odd harmonics only, 1/h²).
fn bright(h: usize) -> f32 {
    1.0 / h as f32
}

fn hollow(h: usize) -> f32 {
    if h % 2 == 1 {
        1.0 / (h * h) as f32
    } else {
        0.0
    }
}

/// The spectral average of `tone(bright)` and `tone(hollow)`, played at `hz`: each
/// harmonic's power the mean of the two tones' (as they are scaled to −20 dB at 220 Hz).
fn average(hz: f32) -> Vec<f32> {
    let (ga, gb) = (gain(220.0, &bright), gain(220.0, &hollow));
    unscaled(hz, &|h| {
        (0.5 * ((ga * bright(h)).powi(2) + (gb * hollow(h)).powi(2))).sqrt()
    })
}

fn scaled(x: &[f32], db: f32) -> Vec<f32> {
    let g = 10f32.powf(db / 20.0);
    x.iter().map(|s| s * g).collect()
}

#[test]
fn the_spectral_average_of_two_timbres_is_nearer_the_average_than_either() {
    let mel = MelSpectrogram::new();
    let hz = 220.0;
    let (a, b) = (tone(hz, &bright), tone(hz, &hollow));
    let mid = average(hz);
    let f = score_blend(&mel, &a, &b, &mid, hz);
    assert!(f.pitch_match, "{f:?}");
    assert!(f.nearer_average, "{f:?}");
    // Its power is the sources' mean, so it is within a fraction of a dB of their level
    // (the mean of two equal levels: −20 dB each).
    assert!(f.loudness_error_db.abs() < 0.5, "{f:?}");
    // Near zero from the average (what differs is window leakage between harmonics; the
    // bands are averaged as powers, the tone's partials add as amplitudes), dBs from each
    // source: 2.6 dB from the bright one, whose partials dominate the average's (it is
    // that tone less 3 dB on the even harmonics), 23 from the hollow one (whose even
    // harmonics are silent).
    assert!(f.distance_average_db < 0.1, "{f:?}");
    assert!(f.distance_a_db > 2.0 && f.distance_b_db > 20.0, "{f:?}");

    // A source itself is nearer that source than the average: not a blend.
    let f = score_blend(&mel, &a, &b, &a, hz);
    assert_eq!(f.distance_a_db, 0.0);
    assert!(!f.nearer_average, "{f:?}");
}

#[test]
fn a_blend_6_db_quiet_reports_minus_6_db() {
    let mel = MelSpectrogram::new();
    let hz = 196.0;
    let (a, b) = (tone(hz, &bright), tone(hz, &hollow));
    // Both sources are at −20 dB: a blend at −26 dB is 6 dB under their mean level.
    let quiet = scaled(&tone(hz, &bright), -6.0);
    let f = score_blend(&mel, &a, &b, &quiet, hz);
    assert!((f.loudness_error_db + 6.0).abs() < 0.01, "{f:?}");
    let loud = scaled(&b, 3.0);
    let f = score_blend(&mel, &a, &b, &loud, hz);
    assert!((f.loudness_error_db - 3.0).abs() < 0.01, "{f:?}");
    // Sources of different levels: the reference is the mean of their dB levels.
    let f = score_blend(&mel, &a, &scaled(&b, -10.0), &scaled(&a, -5.0), hz);
    assert!(f.loudness_error_db.abs() < 0.01, "{f:?}");
}

#[test]
fn an_out_of_tune_blend_is_counted_out() {
    let mel = MelSpectrogram::new();
    let hz = 220.0;
    let (a, b) = (tone(hz, &bright), tone(hz, &hollow));
    let check = |blend_hz: f32, in_tune: bool| {
        let f = score_blend(&mel, &a, &b, &average(blend_hz), hz);
        assert_eq!(
            f.pitch_match, in_tune,
            "a blend at {blend_hz} Hz for {hz} Hz"
        );
    };
    check(220.0, true);
    check(224.0, true); // 31 cents
    check(233.0, false); // 99 cents
    check(330.0, false); // a fifth
    let f = score_blend(&mel, &a, &b, &vec![0.0; LEN], hz);
    assert!(!f.pitch_match && f.loudness_error_db < -90.0, "{f:?}");
}

#[test]
fn the_summary_counts_what_meets_each_target() {
    let figures = |pitch_match, loudness_error_db, nearer_average| BlendFigures {
        pitch_match,
        loudness_error_db,
        distance_a_db: 8.0,
        distance_b_db: 6.0,
        distance_average_db: 5.0,
        nearer_average,
    };
    assert_eq!(summarise_blends(&[]), None);
    let s = summarise_blends(&[
        figures(true, -6.0, true),
        figures(true, 2.0, false),
        figures(false, 1.0, true),
        figures(true, 3.0, true),
    ])
    .unwrap();
    assert_eq!(s.blends, 4);
    assert_eq!(s.in_tune, 0.75);
    assert_eq!(s.mean_abs_loudness_error_db, 3.0);
    assert_eq!(s.within_3_db, 0.75);
    assert_eq!(s.nearer_average, 0.75);
    assert_eq!(s.mean_distance_sources_db, 7.0);
    assert_eq!(s.mean_distance_average_db, 5.0);
}

fn note(instrument: u32, pitch: u8, velocity: u8) -> PairNote {
    PairNote {
        instrument,
        pitch,
        velocity,
    }
}

#[test]
fn pairs_are_two_instruments_at_one_pitch_drawn_by_the_seed() {
    let notes: Vec<PairNote> = (0..6u32)
        .flat_map(|i| {
            [48u8, 60, 72]
                .into_iter()
                .flat_map(move |p| [50u8, 100].map(|v| note(i, p, v)))
        })
        .chain([note(9, 61, 100), note(9, 62, 100)])
        .collect();
    for seed in 0..4 {
        let pairs = pair_notes(&notes, 12, seed);
        assert_eq!(pairs, pair_notes(&notes, 12, seed), "deterministic");
        assert_eq!(pairs.len(), 12);
        for &(i, j) in &pairs {
            assert!(i < j);
            assert_eq!(notes[i].pitch, notes[j].pitch);
            assert_ne!(notes[i].instrument, notes[j].instrument);
            // Like velocities are there for every pair of instruments: always taken.
            assert_eq!(notes[i].velocity, notes[j].velocity);
        }
        let mut unique = pairs.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), pairs.len(), "no pair twice");
        // The first three pairs are six different instruments; each instrument is in
        // four of the twelve.
        let mut first: Vec<u32> = pairs[..3]
            .iter()
            .flat_map(|&(i, j)| [notes[i].instrument, notes[j].instrument])
            .collect();
        first.sort_unstable();
        first.dedup();
        assert_eq!(first.len(), 6, "seed {seed}: {pairs:?}");
        for instrument in 0..6 {
            let uses = pairs
                .iter()
                .filter(|&&(i, j)| {
                    notes[i].instrument == instrument || notes[j].instrument == instrument
                })
                .count();
            assert_eq!(uses, 4, "seed {seed}: instrument {instrument}");
        }
        // The pitches are spread: four pairs at each.
        for pitch in [48, 60, 72] {
            assert_eq!(
                pairs
                    .iter()
                    .filter(|&&(i, _)| notes[i].pitch == pitch)
                    .count(),
                4
            );
        }
    }
    assert_ne!(pair_notes(&notes, 12, 0), pair_notes(&notes, 12, 1));
}

#[test]
fn pairing_prefers_like_velocities_and_gives_what_there_is() {
    // Instrument 1 has a note at velocity 100 and one at 30; instrument 0 only at 90.
    let notes = [
        note(0, 60, 90),
        note(1, 60, 30),
        note(1, 60, 100),
        note(1, 64, 100),
    ];
    assert_eq!(pair_notes(&notes, 1, 7), vec![(0, 2)]);
    assert_eq!(pair_notes(&notes, 5, 7), vec![(0, 2), (0, 1)]);
    // One instrument only, or no shared pitch: no pairs.
    assert!(pair_notes(&notes[1..], 3, 0).is_empty());
    assert!(pair_notes(&[note(0, 60, 100), note(1, 61, 100)], 3, 0).is_empty());
}

#[test]
fn instruments_are_listed_worst_first() {
    let score = |pitch_match, db| NoteScore {
        note: String::new(),
        pitch_match,
        log_mel_distance_db: db,
    };
    let per_note = [
        score(Some(true), 5.0),
        score(Some(false), 11.0),
        score(Some(true), 7.0),
        score(None, 4.0),
        score(Some(true), 10.0),
        score(Some(true), 6.0),
    ];
    let names: Vec<String> = ["flute", "organ", "organ", "drum", "vibes", "flute"]
        .map(String::from)
        .to_vec();
    let by = by_instrument(&per_note, &names);
    let order: Vec<&str> = by.iter().map(|i| i.instrument.as_str()).collect();
    assert_eq!(order, ["vibes", "organ", "flute", "drum"]);
    let organ = &by[1];
    assert_eq!((organ.notes, organ.pitched_notes, organ.in_tune), (2, 2, 1));
    assert_eq!(organ.pitch_accuracy, Some(0.5));
    assert_eq!(organ.log_mel_distance_db, 9.0);
    assert_eq!(by[2].log_mel_distance_db, 5.5);
    assert_eq!(by[3].pitch_accuracy, None);
    // Equal distances: the worse pitch first.
    let by = by_instrument(
        &[score(Some(true), 6.0), score(Some(false), 6.0)],
        &["a".into(), "b".into()],
    );
    assert_eq!(by[0].instrument, "b");
}
