//! A small SFZ player for the tests (sfizz, the reference player, is not in Debian): it
//! reads an `.sfz` and its WAVs and plays a key as a sampler does, with the opcodes the
//! exporter writes and SFZ's defaults for the rest:
//! - the region whose `lokey..=hikey` and `lovel..=hivel` hold the key and velocity;
//! - its sample played `2^((key − pitch_keycenter) / 12)` times as fast (linear
//!   interpolation; at the key centre every sample point exactly as it is);
//! - `loop_mode=loop_sustain`: `loop_start..=loop_end` repeated while the key is held,
//!   then the sample plays on to its end;
//! - `ampeg_release` (from `<global>` or the region): a linear fade to silence after the
//!   key is let go;
//! - velocity: SFZ's default `amp_veltrack=100`, a gain of `(velocity / 127)²`.
//!
//! Included with `#[path = "support/sfz_player.rs"] mod sfz_player;`.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::HashMap;
use std::path::Path;

/// One `<region>`.
#[derive(Debug, Clone)]
pub struct Region {
    pub sample_path: String,
    /// The WAV's sample points (mono), as floats.
    pub sample: Vec<f32>,
    pub rate_hz: u32,
    pub keycenter: u8,
    pub keys: (u8, u8),
    pub velocities: (u8, u8),
    /// `loop_start..=loop_end`, where the loop is `loop_sustain`.
    pub sustain_loop: Option<(usize, usize)>,
    pub release_secs: f32,
}

/// An instrument read from an `.sfz`.
#[derive(Debug, Clone)]
pub struct Instrument {
    pub regions: Vec<Region>,
}

/// Reads a WAV (16- or 24-bit integer, or 32-bit float) as floats in ±1.
pub fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut reader = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{e}: {path:?}"));
    let spec = reader.spec();
    assert_eq!(spec.channels, 1, "{path:?}: the exporter writes mono");
    let samples = match spec.sample_format {
        hound::SampleFormat::Float => reader.samples::<f32>().map(Result::unwrap).collect(),
        hound::SampleFormat::Int => {
            let scale = (1i64 << (spec.bits_per_sample - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.unwrap() as f32 / scale)
                .collect()
        }
    };
    (samples, spec.sample_rate)
}

impl Instrument {
    /// Parses `sfz` (`<global>` and `<region>` headers, `name=value` opcodes, `//`
    /// comments) and reads the WAVs its regions name, relative to its folder.
    pub fn open(sfz: &Path) -> Self {
        let text = std::fs::read_to_string(sfz).unwrap();
        let dir = sfz.parent().unwrap();
        let mut global: HashMap<String, String> = HashMap::new();
        let mut headers: Vec<(String, HashMap<String, String>)> = Vec::new();
        for line in text.lines() {
            let line = line.split("//").next().unwrap_or("");
            for token in line.split_whitespace() {
                if let Some(header) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
                    headers.push((header.to_string(), HashMap::new()));
                } else if let Some((name, value)) = token.split_once('=') {
                    let (_, opcodes) = headers.last_mut().expect("an opcode before any header");
                    opcodes.insert(name.to_string(), value.to_string());
                }
            }
        }
        let mut regions = Vec::new();
        for (header, opcodes) in headers {
            match header.as_str() {
                "global" => global.extend(opcodes),
                "region" => {
                    let get = |name: &str| opcodes.get(name).or_else(|| global.get(name));
                    let num = |name: &str, default: u32| -> u32 {
                        get(name).map_or(default, |v| v.parse().unwrap())
                    };
                    let sample_path = get("sample").expect("a region without a sample").clone();
                    let (sample, rate_hz) = read_wav(&dir.join(&sample_path));
                    let sustain_loop =
                        (get("loop_mode").map(String::as_str) == Some("loop_sustain")).then(|| {
                            (
                                num("loop_start", 0) as usize,
                                num("loop_end", sample.len() as u32 - 1) as usize,
                            )
                        });
                    regions.push(Region {
                        sample_path,
                        sample,
                        rate_hz,
                        keycenter: num("pitch_keycenter", 60) as u8,
                        keys: (num("lokey", 0) as u8, num("hikey", 127) as u8),
                        velocities: (num("lovel", 1) as u8, num("hivel", 127) as u8),
                        sustain_loop,
                        release_secs: get("ampeg_release").map_or(0.001, |v| v.parse().unwrap()),
                    });
                }
                other => panic!("the player does not know <{other}>"),
            }
        }
        Self { regions }
    }

    /// The regions a key at a velocity plays.
    pub fn regions_at(&self, key: u8, velocity: u8) -> Vec<&Region> {
        self.regions
            .iter()
            .filter(|r| (r.keys.0..=r.keys.1).contains(&key))
            .filter(|r| (r.velocities.0..=r.velocities.1).contains(&velocity))
            .collect()
    }

    /// `key` at `velocity` held for `held_secs`, then let go: `total_secs` of audio at
    /// the sample's rate (every region that plays the key, summed).
    pub fn play(&self, key: u8, velocity: u8, held_secs: f32, total_secs: f32) -> Vec<f32> {
        let regions = self.regions_at(key, velocity);
        assert!(!regions.is_empty(), "nothing plays key {key} at {velocity}");
        let rate = regions[0].rate_hz;
        let mut out = vec![0f32; (total_secs * rate as f32) as usize];
        for region in regions {
            assert_eq!(region.rate_hz, rate);
            for (o, s) in out
                .iter_mut()
                .zip(region.play(key, velocity, held_secs, total_secs))
            {
                *o += s;
            }
        }
        out
    }
}

impl Region {
    /// This region alone: see [`Instrument::play`].
    pub fn play(&self, key: u8, velocity: u8, held_secs: f32, total_secs: f32) -> Vec<f32> {
        let rate = self.rate_hz as f32;
        let step = 2f64.powf((f64::from(key) - f64::from(self.keycenter)) / 12.0);
        let gain = (f32::from(velocity) / 127.0).powi(2);
        let held = (held_secs * rate) as usize;
        let release = ((self.release_secs * rate) as usize).max(1);
        let len = (total_secs * rate) as usize;
        let mut out = Vec::with_capacity(len);
        let mut position = 0f64;
        for t in 0..len {
            if t < held
                && let Some((start, end)) = self.sustain_loop
            {
                // Past the loop's last point while held: back by the loop's length.
                while position >= (end + 1) as f64 {
                    position -= (end + 1 - start) as f64;
                }
            }
            let envelope = if t < held {
                1.0
            } else {
                (1.0 - (t - held) as f32 / release as f32).max(0.0)
            };
            out.push(gain * envelope * self.at(position));
            position += step;
        }
        out
    }

    /// The sample at a fractional position (silence past its end).
    fn at(&self, position: f64) -> f32 {
        let i = position.floor() as usize;
        let frac = (position - i as f64) as f32;
        let a = self.sample.get(i).copied().unwrap_or(0.0);
        if frac == 0.0 {
            return a;
        }
        let b = self.sample.get(i + 1).copied().unwrap_or(0.0);
        a + frac * (b - a)
    }
}
