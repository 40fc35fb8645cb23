//! The synthesizer tests' fixture: a tiny random model, sample packs and a cache in a
//! temporary folder (included with `#[path = "support/synth_setup.rs"] mod setup;`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)]

use autoencoder::{Config, Sampling};
use candle_core::Device;
use engine::audio::wav::{self, WavFormat};
use engine::fsutil::Overwrite;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use tests::timbrel_path;

/// Hop 64: a 0.5 s note is 125 frames.
pub fn tiny() -> Config {
    Config {
        num_stages: 4,
        num_layers: 5,
        filter_length: 3,
        width: 16,
        skip_width: 16,
        ae_num_stages: 4,
        ae_num_layers: 3,
        ae_filter_length: 3,
        ae_width: 8,
        ae_bottleneck_width: 4,
        ae_hop_length: 64,
        excitation_harmonics: 0,
        excitation_into: Default::default(),
    }
}

pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// A random tiny model, four instruments as sample packs (C3, C4, C5 each) and a cache.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        engine::models::dir::write_random(&dir.path().join("model"), &tiny(), 7).unwrap();
        for (i, name) in ["flute", "organ", "bass", "reed"].iter().enumerate() {
            let pack = dir.path().join(name);
            std::fs::create_dir_all(&pack).unwrap();
            for pitch in [48u8, 60, 72] {
                let hz = 440.0 * 2f32.powf((f32::from(pitch) - 69.0) / 12.0);
                let samples: Vec<f32> = (0..8000)
                    .map(|t| {
                        let t = t as f32 / 16_000.0;
                        let env = (-t * (2.0 + i as f32)).exp();
                        env * (0.5 * (std::f32::consts::TAU * hz * t).sin()
                            + 0.1 * (i as f32) * (std::f32::consts::TAU * 2.0 * hz * t).sin())
                    })
                    .collect();
                wav::write(
                    &pack.join(format!("{name}_acoustic_000-{pitch:03}-100.wav")),
                    &samples,
                    16_000,
                    WavFormat::S16,
                    Overwrite::Never,
                )
                .unwrap();
            }
        }
        Self { dir }
    }

    pub fn p(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    pub fn note(&self, pack: &str, pitch: u8) -> String {
        self.p(&format!("{pack}/{pack}_acoustic_000-{pitch:03}-100.wav"))
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(timbrel_path());
        cmd.args(args)
            .args(["--model", &self.p("model"), "--quiet"])
            .env("TIMBREL_CACHE_DIR", self.p("cache"));
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "timbrel {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).unwrap()
    }
}

pub fn read_wav(path: &str) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::open(path).unwrap();
    let spec = r.spec();
    (spec, r.samples::<i16>().map(Result::unwrap).collect())
}
