//! A SoundFont 2.01 writer: one instrument of key × velocity zones over 16-bit mono
//! samples, played by one or more presets. Just what a sampler instrument needs (root keys,
//! key and velocity ranges, loops, a release), laid out as the specification's RIFF
//! chunks (`INFO`, `sdta`/`smpl`, `pdta` with its nine sub-chunks and terminal records).

/// SF2 generator numbers (specification, section 8.1.2).
mod generator {
    pub const RELEASE_VOL_ENV: u16 = 38;
    pub const INSTRUMENT: u16 = 41;
    pub const KEY_RANGE: u16 = 43;
    pub const VEL_RANGE: u16 = 44;
    pub const SAMPLE_ID: u16 = 53;
    pub const SAMPLE_MODES: u16 = 54;
}

/// Zero sample points the specification requires after each sample.
const GUARD_POINTS: usize = 46;
/// A name field's bytes (the last is always a terminating zero here).
const NAME_BYTES: usize = 20;

/// One mono sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub data: Vec<i16>,
    pub rate_hz: u32,
    /// The MIDI key the sample sounds at when played unshifted.
    pub root_key: u8,
    /// `[start, end)` of the sustain loop in sample points, if it has one: a held key
    /// loops it, and the rest of the sample plays once the key is let go.
    pub sustain_loop: Option<(u32, u32)>,
    /// The loop goes on after the key is let go (fading with the release) instead of the
    /// sample playing on to its end.
    pub loop_after_release: bool,
}

/// A key × velocity region of the instrument and the sample it plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Zone {
    /// Index into [`Font::samples`].
    pub sample: usize,
    pub keys: (u8, u8),
    pub velocities: (u8, u8),
    /// The volume envelope's release after the key is let go, in seconds.
    pub release_secs: f32,
}

/// A preset: what a player lists and a MIDI program change selects.
#[derive(Debug, Clone, PartialEq)]
pub struct Preset {
    pub name: String,
    pub bank: u16,
    pub program: u8,
}

/// A whole font: its presets all play the one instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct Font {
    pub name: String,
    pub instrument: String,
    pub presets: Vec<Preset>,
    pub samples: Vec<Sample>,
    pub zones: Vec<Zone>,
}

/// Why a font cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Sf2Error {
    #[error("a SoundFont needs at least one preset, sample and zone")]
    Empty,
    #[error("zone {0} plays sample {1}, which does not exist")]
    NoSample(usize, usize),
    #[error("sample {0}'s loop {1}..{2} is not inside its {3} points")]
    BadLoop(String, u32, u32, usize),
    #[error("zone {0}'s key or velocity range is empty or above 127")]
    BadRange(usize),
    #[error("the font is too large for SoundFont 2 ({0})")]
    TooLarge(&'static str),
}

/// The font as the bytes of an `.sf2` file.
pub fn write(font: &Font) -> Result<Vec<u8>, Sf2Error> {
    if font.presets.is_empty() || font.samples.is_empty() || font.zones.is_empty() {
        return Err(Sf2Error::Empty);
    }
    for (i, z) in font.zones.iter().enumerate() {
        if z.sample >= font.samples.len() {
            return Err(Sf2Error::NoSample(i, z.sample));
        }
        let ok = |(lo, hi): (u8, u8)| lo <= hi && hi <= 127;
        if !ok(z.keys) || !ok(z.velocities) {
            return Err(Sf2Error::BadRange(i));
        }
    }
    let index16 = |n: usize, what| u16::try_from(n).map_err(|_| Sf2Error::TooLarge(what));
    index16(font.zones.len() * 5 + 1, "generators")?;
    index16(font.samples.len() + 1, "samples")?;
    index16(font.presets.len() + 1, "presets")?;

    // Sample data, each sample followed by its guard points; headers point into it.
    let mut smpl = Vec::new();
    let mut shdr = Vec::new();
    let mut at = 0usize;
    for s in &font.samples {
        let len = s.data.len();
        let (loop_start, loop_end) = match s.sustain_loop {
            Some((a, b)) if a < b && b as usize <= len => (a, b),
            Some((a, b)) => return Err(Sf2Error::BadLoop(s.name.clone(), a, b, len)),
            // Unlooped: a loop over the whole sample, which the sample mode ignores.
            None => (0, len as u32),
        };
        for v in s
            .data
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0, GUARD_POINTS))
        {
            smpl.extend_from_slice(&v.to_le_bytes());
        }
        let start = u32::try_from(at).map_err(|_| Sf2Error::TooLarge("sample data"))?;
        shdr.extend_from_slice(&name(&s.name));
        for v in [
            start,
            start + len as u32,
            start + loop_start,
            start + loop_end,
            s.rate_hz,
        ] {
            shdr.extend_from_slice(&v.to_le_bytes());
        }
        shdr.extend_from_slice(&[s.root_key.min(127), 0]); // original pitch, correction
        shdr.extend_from_slice(&0u16.to_le_bytes()); // sample link
        shdr.extend_from_slice(&1u16.to_le_bytes()); // mono
        at += len + GUARD_POINTS;
    }
    if smpl.len() > u32::MAX as usize / 2 {
        return Err(Sf2Error::TooLarge("sample data"));
    }
    shdr.extend_from_slice(&name("EOS"));
    shdr.extend_from_slice(&[0; 26]);

    // Presets: one bag each, whose one generator is the instrument.
    let mut phdr = Vec::new();
    let mut pbag = Vec::new();
    let mut pgen = Vec::new();
    for (i, p) in font.presets.iter().enumerate() {
        phdr.extend_from_slice(&name(&p.name));
        phdr.extend_from_slice(&u16::from(p.program.min(127)).to_le_bytes());
        phdr.extend_from_slice(&p.bank.to_le_bytes());
        phdr.extend_from_slice(&(i as u16).to_le_bytes());
        phdr.extend_from_slice(&[0; 12]); // library, genre, morphology
        pbag.extend_from_slice(&[(i as u16).to_le_bytes(), 0u16.to_le_bytes()].concat());
        pgen.extend_from_slice(&gen_amount(generator::INSTRUMENT, 0));
    }
    let n = font.presets.len() as u16;
    phdr.extend_from_slice(&name("EOP"));
    phdr.extend_from_slice(&[0u16.to_le_bytes(), 0u16.to_le_bytes(), n.to_le_bytes()].concat());
    phdr.extend_from_slice(&[0; 12]);
    pbag.extend_from_slice(&[n.to_le_bytes(), 0u16.to_le_bytes()].concat());
    pgen.extend_from_slice(&[0; 4]);

    // The instrument: one bag per zone. Key range first and velocity range second, the
    // sample last, as the specification orders them.
    let mut ibag = Vec::new();
    let mut igen = Vec::new();
    let mut generators = 0u16;
    for z in &font.zones {
        ibag.extend_from_slice(&[generators.to_le_bytes(), 0u16.to_le_bytes()].concat());
        let sample = &font.samples[z.sample];
        // Sample modes: 0 no loop, 1 loop for ever, 3 loop while the key is held.
        let mode = match (sample.sustain_loop, sample.loop_after_release) {
            (None, _) => 0,
            (Some(_), true) => 1,
            (Some(_), false) => 3,
        };
        let zone = [
            gen_range(generator::KEY_RANGE, z.keys),
            gen_range(generator::VEL_RANGE, z.velocities),
            gen_amount(generator::RELEASE_VOL_ENV, timecents(z.release_secs)),
            gen_amount(generator::SAMPLE_MODES, mode),
            gen_amount(generator::SAMPLE_ID, z.sample as i16),
        ];
        zone.iter().for_each(|g| igen.extend_from_slice(g));
        generators += zone.len() as u16;
    }
    ibag.extend_from_slice(&[generators.to_le_bytes(), 0u16.to_le_bytes()].concat());
    igen.extend_from_slice(&[0; 4]);
    let inst = [
        name(&font.instrument).as_slice(),
        &0u16.to_le_bytes(),
        &name("EOI"),
        &(font.zones.len() as u16).to_le_bytes(),
    ]
    .concat();
    let terminal_mod = [0u8; 10];

    let mut inam = font.name.as_bytes().to_vec();
    inam.truncate(255);
    inam.push(0);
    let info = list(
        b"INFO",
        &[
            chunk(b"ifil", &[2u16.to_le_bytes(), 1u16.to_le_bytes()].concat()),
            chunk(b"isng", b"EMU8000\0"),
            chunk(b"INAM", &inam),
            chunk(b"ISFT", b"Timbrel\0"),
        ],
    );
    let sdta = list(b"sdta", &[chunk(b"smpl", &smpl)]);
    let pdta = list(
        b"pdta",
        &[
            chunk(b"phdr", &phdr),
            chunk(b"pbag", &pbag),
            chunk(b"pmod", &terminal_mod),
            chunk(b"pgen", &pgen),
            chunk(b"inst", &inst),
            chunk(b"ibag", &ibag),
            chunk(b"imod", &terminal_mod),
            chunk(b"igen", &igen),
            chunk(b"shdr", &shdr),
        ],
    );
    let mut body = b"sfbk".to_vec();
    body.extend_from_slice(&info);
    body.extend_from_slice(&sdta);
    body.extend_from_slice(&pdta);
    Ok(chunk(b"RIFF", &body))
}

/// Seconds as SF2 timecents (1200 · log2 s), within the range players accept.
fn timecents(secs: f32) -> i16 {
    (1200.0 * secs.max(0.001).log2())
        .round()
        .clamp(-12_000.0, 8_000.0) as i16
}

fn gen_amount(op: u16, amount: i16) -> [u8; 4] {
    let [a, b] = op.to_le_bytes();
    let [c, d] = amount.to_le_bytes();
    [a, b, c, d]
}

fn gen_range(op: u16, (lo, hi): (u8, u8)) -> [u8; 4] {
    let [a, b] = op.to_le_bytes();
    [a, b, lo, hi]
}

/// A RIFF chunk. SoundFont chunks are even-sized (its strings are zero-padded to an even
/// length, the padding counted in the size), so an odd body gets its zero inside.
fn chunk(id: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let padded = body.len() + body.len() % 2;
    let mut out = id.to_vec();
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(body);
    out.resize(8 + padded, 0);
    out
}

fn list(kind: &[u8; 4], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut body = kind.to_vec();
    chunks.iter().for_each(|c| body.extend_from_slice(c));
    chunk(b"LIST", &body)
}

/// A 20-byte name field: ASCII (anything else becomes '_'), cut to 19 bytes, zero-filled.
fn name(s: &str) -> [u8; NAME_BYTES] {
    let mut out = [0u8; NAME_BYTES];
    for (o, c) in out.iter_mut().zip(s.chars().take(NAME_BYTES - 1)) {
        *o = if c.is_ascii() && !c.is_ascii_control() {
            c as u8
        } else {
            b'_'
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(period: usize, periods: usize) -> Vec<i16> {
        (0..period * periods)
            .map(|i| {
                (12_000.0
                    * (2.0 * std::f64::consts::PI * (i % period) as f64 / period as f64).sin())
                    as i16
            })
            .collect()
    }

    #[test]
    fn rustysynth_reads_the_font() {
        let font = Font {
            name: "Test font".into(),
            instrument: "Test".into(),
            presets: vec![Preset {
                name: "Test".into(),
                bank: 0,
                program: 0,
            }],
            samples: vec![
                Sample {
                    name: "a".into(),
                    data: sine(100, 40),
                    rate_hz: 26_163,
                    root_key: 60,
                    sustain_loop: Some((100, 3_900)),
                    loop_after_release: false,
                },
                Sample {
                    name: "a very long name that gets cut".into(),
                    data: sine(50, 40),
                    rate_hz: 26_163,
                    root_key: 72,
                    sustain_loop: None,
                    loop_after_release: false,
                },
            ],
            zones: vec![
                Zone {
                    sample: 0,
                    keys: (0, 65),
                    velocities: (0, 127),
                    release_secs: 0.3,
                },
                Zone {
                    sample: 1,
                    keys: (66, 127),
                    velocities: (0, 127),
                    release_secs: 0.3,
                },
            ],
        };
        let bytes = write(&font).unwrap();
        let sf = rustysynth::SoundFont::new(&mut bytes.as_slice()).unwrap();
        assert_eq!(sf.get_presets().len(), 1);
        let inst = &sf.get_instruments()[0];
        assert_eq!(inst.get_regions().len(), 2);
        let r = &inst.get_regions()[0];
        assert_eq!((r.get_key_range_start(), r.get_key_range_end()), (0, 65));
        assert_eq!(r.get_sample_modes(), rustysynth::LoopMode::LoopUntilNoteOff);
        assert_eq!(r.get_sample_end_loop() - r.get_sample_start_loop(), 3_800);
        assert!((r.get_release_volume_envelope() - 0.3).abs() < 0.01);
        assert_eq!(sf.get_sample_headers()[1].get_name(), "a very long name th");
        assert_eq!(
            sf.get_instruments()[0].get_regions()[1].get_sample_modes(),
            rustysynth::LoopMode::NoLoop
        );
    }

    #[test]
    fn refuses_what_it_cannot_write() {
        let empty = Font {
            name: String::new(),
            instrument: String::new(),
            presets: Vec::new(),
            samples: Vec::new(),
            zones: Vec::new(),
        };
        assert_eq!(write(&empty), Err(Sf2Error::Empty));
        let font = Font {
            presets: vec![Preset {
                name: "p".into(),
                bank: 0,
                program: 0,
            }],
            samples: vec![Sample {
                name: "s".into(),
                data: vec![0; 10],
                rate_hz: 16_000,
                root_key: 60,
                sustain_loop: Some((4, 11)),
                loop_after_release: false,
            }],
            zones: vec![Zone {
                sample: 0,
                keys: (0, 127),
                velocities: (0, 127),
                release_secs: 0.1,
            }],
            ..empty
        };
        assert!(matches!(write(&font), Err(Sf2Error::BadLoop(..))));
    }
}
