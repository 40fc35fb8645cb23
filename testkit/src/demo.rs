//! The shipped student and the demo instruments, as the live engine's tests play them.

use std::path::{Path, PathBuf};

use candle_core::Device;
use engine::live::Corners;
use engine::synth::{DecoderKind, Engine, ModelSource};

/// The embedded default model's student, with no embedding cache (nothing is written
/// outside a temporary folder).
pub fn default_student() -> Engine {
    Engine::load(
        &ModelSource::Default,
        Some(DecoderKind::Parallel),
        &Device::Cpu,
    )
    .unwrap()
    .with_cache(None)
}

/// The four demo instruments (flute, piano, strings, trumpet: corners A, B, C, D),
/// installed under `dir`, and all four encoded as corners.
pub fn demo_corners(engine: &Engine, dir: &Path) -> (Vec<PathBuf>, Corners) {
    let packs = engine::demo::install(dir).unwrap();
    let paths: Vec<&Path> = packs.iter().map(PathBuf::as_path).collect();
    let corners = Corners::encode(engine, &paths).unwrap();
    (packs, corners)
}
