//! Tiny WaveNet autoencoders: random weights decode in milliseconds, so tests exercise the
//! real code paths in seconds, not hours. Tests vary a field or two with struct update
//! syntax (`Config { excitation_harmonics: 4, ..tiny::wavenet() }`).

use std::path::{Path, PathBuf};

use autoencoder::Config;
use candle_core::Device;
use engine::synth::{Engine, ModelSource};

/// Hop 64 (a 0.5 s note at 16 kHz is 125 frames), bottleneck 4; a decoder of 4 stages of
/// 5 layers, width 16; an encoder of 4 stages of 3 layers, width 8; no excitation.
pub fn wavenet() -> Config {
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

/// Smaller still, for tests that render many notes: a decoder of 3 stages of 3 layers
/// (filter 2, width 8), an encoder of 3 stages of 3 layers; hop 64, bottleneck 4.
pub fn small_wavenet() -> Config {
    Config {
        num_stages: 3,
        num_layers: 3,
        filter_length: 2,
        width: 8,
        skip_width: 8,
        ae_num_stages: 3,
        ..wavenet()
    }
}

/// Writes a model folder `dir` of `config` with random weights drawn from `seed`; `dir`.
pub fn random_model(dir: &Path, config: &Config, seed: u64) -> PathBuf {
    engine::models::dir::write_random(dir, config, seed).unwrap();
    dir.to_path_buf()
}

/// The model folder `dir` loaded on the CPU, with no embedding cache (nothing is written
/// outside the test's folder).
pub fn load(dir: &Path) -> Engine {
    Engine::load(&ModelSource::Dir(dir.to_path_buf()), None, &Device::Cpu)
        .unwrap()
        .with_cache(None)
}
