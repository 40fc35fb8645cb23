//! A SoundFont small enough to write in a test (included by the tests that render from
//! one: `#[path = ".../engine/tests/support/tiny_sf2.rs"] mod tiny_sf2;`).
#![allow(clippy::expect_used, dead_code)]

/// A minimal, valid SoundFont 2 file: one looped sine instrument (root key 60, C4)
/// playing over keys 36–84 only, as a preset at each of `programs` (bank 0). Tests
/// render from it instead of a 140 MB General MIDI font, and notes outside 36–84 are
/// silent, as notes outside a real instrument's range are.
pub fn tiny_sf2(programs: &[u8]) -> Vec<u8> {
    use engine::instrument::sf2;
    // 20 periods of 100 samples at 26163 Hz: 261.63 Hz, C4.
    let period = 100usize;
    let length = 20 * period;
    let data = (0..length)
        .map(|i| {
            (16000.0 * (2.0 * std::f64::consts::PI * (i % period) as f64 / period as f64).sin())
                as i16
        })
        .collect();
    let font = sf2::Font {
        name: "Timbrel test sine".into(),
        instrument: "Sine".into(),
        presets: programs
            .iter()
            .map(|&program| sf2::Preset {
                name: format!("Sine {program}"),
                bank: 0,
                program,
            })
            .collect(),
        samples: vec![sf2::Sample {
            name: "sine".into(),
            data,
            rate_hz: 26_163,
            root_key: 60,
            sustain_loop: Some((period as u32, (length - period) as u32)),
            loop_after_release: true,
        }],
        zones: vec![sf2::Zone {
            sample: 0,
            keys: (36, 84),
            velocities: (0, 127),
            release_secs: 0.5,
        }],
    };
    sf2::write(&font).expect("the test font is valid")
}
