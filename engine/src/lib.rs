//! Timbrel's engine: everything between files on disk and the model.
//!
//! For now: model directories ([`model_dir`]) and parity fixtures ([`golden`]). Sound
//! files, sample packs, datasets and the encode/blend/decode jobs come next.

pub mod audio;
mod error;
pub mod fsutil;
pub mod golden;
pub mod model_dir;
pub mod pitch;

pub use error::{Error, Result};
