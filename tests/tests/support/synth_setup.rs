//! The synthesizer tests' fixture: a tiny random model, sample packs and a cache in a
//! temporary folder (included with `#[path = "support/synth_setup.rs"] mod setup;`).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unused_imports)]

use autoencoder::Config;
use engine::audio::wav::WavFormat;
use std::process::{Command, Output};
use testkit::notes;
use tests::{run_ok, timbrel_in};

/// Hop 64: a 0.5 s note is 125 frames.
pub fn tiny() -> Config {
    testkit::tiny::wavenet()
}

pub struct Setup {
    pub dir: tempfile::TempDir,
}

impl Setup {
    /// A random tiny model, four instruments as sample packs (C3, C4, C5 each) and a cache.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        testkit::tiny::random_model(&dir.path().join("model"), &tiny(), 7);
        for (i, name) in ["flute", "organ", "bass", "reed"].iter().enumerate() {
            let pack = dir.path().join(name);
            std::fs::create_dir_all(&pack).unwrap();
            for pitch in [48u8, 60, 72] {
                let hz = notes::hz(pitch);
                let samples: Vec<f32> = (0..8000)
                    .map(|t| {
                        let t = t as f32 / 16_000.0;
                        let env = (-t * (2.0 + i as f32)).exp();
                        env * (0.5 * (std::f32::consts::TAU * hz * t).sin()
                            + 0.1 * (i as f32) * (std::f32::consts::TAU * 2.0 * hz * t).sin())
                    })
                    .collect();
                notes::write(
                    &pack.join(notes::nsynth_name(name, pitch, 100)),
                    &samples,
                    WavFormat::S16,
                );
            }
        }
        Self { dir }
    }

    pub fn p(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_string()
    }

    pub fn note(&self, pack: &str, pitch: u8) -> String {
        self.p(&format!("{pack}/{}", notes::nsynth_name(pack, pitch, 100)))
    }

    /// `timbrel ARGS --model <the tiny model> --quiet`, with the cache in the folder.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.on_model("model", args);
        cmd.arg("--quiet");
        cmd
    }

    /// `timbrel ARGS --model <the folder's MODEL>` (not quiet), with the cache in the folder.
    pub fn on_model(&self, model: &str, args: &[&str]) -> Command {
        let mut cmd = timbrel_in(&self.dir.path().join("cache"), args);
        cmd.args(["--model", &self.p(model)]);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn ok(&self, args: &[&str]) -> String {
        run_ok(&mut self.command(args))
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
