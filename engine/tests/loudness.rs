#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! Blends of a student whose frames carry a measured envelope come out as loud as their
//! sources (the weighted mean of their whole-note levels in dB), offline and live; one
//! source alone, or level matching off, is the plain mix.

use std::ops::Range;

use engine::synth::NoteSpec;
use engine::synth::blend::{Embedding, Weights, blend};
use engine::synth::loudness::MAX_GAIN_DB;
use testkit::demo::{default_student, demo_corners};

/// Mean band power of `e`'s channels `bands` over its frames, dB.
fn level_db(e: &Embedding, bands: &Range<usize>) -> f64 {
    let mut sum = 0f64;
    for f in 0..e.frames {
        sum += e.frame(f)[bands.clone()]
            .iter()
            .map(|&a| f64::from(a) * f64::from(a))
            .sum::<f64>();
    }
    10.0 * (sum / (e.frames * bands.len()) as f64).log10()
}

#[test]
fn an_envelope_blend_is_as_loud_as_its_sources_in_db() {
    let engine = default_student();
    let bands = engine.loudness_bands();
    assert!(bands > 0, "the shipped student carries an envelope");
    let dir = tempfile::tempdir().unwrap();
    let packs = engine::demo::install(dir.path()).unwrap();
    let spec = NoteSpec {
        pitch: Some(60),
        velocity: None,
        seconds: None,
        read: Default::default(),
    };
    // Flute and piano: a held note and a struck one, their levels apart.
    let sources = engine.sources(&packs[..2], &spec).unwrap();
    assert_eq!(sources.envelope_bands, bands);
    let channels = sources.embeddings[0].channels;
    let range = channels - bands..channels;
    let (a, b) = (&sources.embeddings[0], &sources.embeddings[1]);
    let (la, lb) = (level_db(a, &range), level_db(b, &range));
    assert!(
        (la - lb).abs() > 1.0,
        "{la} {lb}: sources of one level test nothing"
    );
    for w in [0.5f32, 0.25] {
        let weights = Weights::Fixed(vec![1.0 - w, w]);
        let mixed = blend(&[a, b], &weights).unwrap();
        let leveled = sources.blend(&weights, None).unwrap();
        let target = f64::from(1.0 - w) * la + f64::from(w) * lb;
        let gain = target - level_db(&mixed, &range);
        assert!(gain.abs() < f64::from(MAX_GAIN_DB), "{gain}");
        assert!(
            (level_db(&leveled, &range) - target).abs() < 0.01,
            "{w}: {} dB, target {target} dB (the plain mix {} dB)",
            level_db(&leveled, &range),
            level_db(&mixed, &range)
        );
        // Only the envelope moves: the frames the flows read are the plain mix's.
        for f in 0..mixed.frames {
            assert_eq!(
                &leveled.frame(f)[..range.start],
                &mixed.frame(f)[..range.start]
            );
        }
    }
    // One source: its own frames, bit for bit.
    let one = sources
        .blend(&Weights::Fixed(vec![0.0, 1.0]), None)
        .unwrap();
    assert_eq!(one.data[..b.data.len()], b.data[..]);
    // A morph starts and ends at its sources' own level and moves between them.
    let morph = Weights::Morph {
        start: vec![1.0, 0.0],
        end: vec![0.0, 1.0],
    };
    let m = sources.blend(&morph, None).unwrap();
    assert_eq!(m.frame(0), a.frame(0));
    assert_eq!(m.frame(m.frames - 1), b.frame(m.frames - 1));
    // Level matching off: the plain mix.
    let off = engine.with_level_match(false);
    assert_eq!(off.loudness_bands(), 0);
    let sources = off.sources(&packs[..2], &spec).unwrap();
    let half = Weights::Fixed(vec![0.5, 0.5]);
    let refs: Vec<&Embedding> = sources.embeddings.iter().collect();
    assert_eq!(
        sources.blend(&half, None).unwrap(),
        blend(&refs, &half).unwrap()
    );
}

#[test]
fn live_corners_know_the_loudness_of_every_key() {
    let engine = default_student();
    let dir = tempfile::tempdir().unwrap();
    let (_, corners) = demo_corners(&engine, dir.path());
    let channels = corners.channels();
    let bands = engine.loudness_bands();
    for key in [21u8, 60, 108] {
        let (loudness, range) = corners.loudness(key).expect("a table for every key");
        assert_eq!(range, channels - bands..channels);
        // A corner alone: untouched; the centre: the corners' mean level in dB.
        assert_eq!(loudness.gain(&[0.0, 1.0, 0.0, 0.0]), 1.0);
        let g = loudness.gain(&[0.25; 4]);
        assert!(g > 0.0 && (20.0 * g.log10()).abs() <= MAX_GAIN_DB, "{g}");
    }
    let plain = corners.clone().with_loudness(0);
    assert!(plain.loudness(60).is_none());
}

/// A note played away from its source's pitch takes the source's envelope moved by the
/// interval (`envelope::shift`), offline and live alike; at the source's own pitch, or
/// without a pitch, the envelope is the source's, bit for bit.
#[test]
fn an_envelope_follows_the_pitch_a_source_is_played_at() {
    use autoencoder::student::envelope::shift;
    use engine::synth::Glide;
    let engine = default_student();
    let bands = engine.envelope_shift_bands();
    assert!(
        bands > 0,
        "the shipped student carries an envelope and takes a pitch"
    );
    let dir = tempfile::tempdir().unwrap();
    let packs = engine::demo::install(dir.path()).unwrap();
    // The demo flute's C4, played at C4, at A4 and without a pitch.
    let sources = engine.sources(&packs[..1], &NoteSpec::at(60)).unwrap();
    let own = sources.pitches[0].expect("the flute's note has a pitch");
    let source = &sources.embeddings[0];
    let channels = source.channels;
    let one = Weights::Fixed(vec![1.0]);
    assert_eq!(&sources.blend(&one, None).unwrap(), source);
    assert_eq!(&sources.blend(&one, Some(Glide::at(own))).unwrap(), source);
    let up = sources.blend(&one, Some(Glide::at(own + 9.0))).unwrap();
    for f in [0, source.frames / 2, source.frames - 1] {
        let (was, now) = (source.frame(f), up.frame(f));
        assert_eq!(&now[..channels - bands], &was[..channels - bands]);
        let mut moved = was[channels - bands..].to_vec();
        shift(&mut moved, 9.0);
        assert_eq!(&now[channels - bands..], &moved[..], "frame {f}");
    }
    let f = source.frames / 4;
    assert_ne!(
        &up.frame(f)[channels - bands..],
        &source.frame(f)[channels - bands..]
    );
}
