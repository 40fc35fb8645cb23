//! Timbrel's engine: everything between files on disk and the model.
//!
//! Sound files ([`audio`]), pitch ([`pitch`]), sample packs ([`pack`]), model directories
//! ([`model_dir`]), parity fixtures ([`golden`]), datasets ([`nsynth`], [`soundfont`]),
//! training ([`train`]) and evaluation ([`eval`]), the synthesizer itself ([`synth`]):
//! encode (cached), blend, decode, render; and instruments made of its notes
//! ([`instrument`]: SF2, SFZ).

pub mod audio;
pub mod default_model;
pub mod demo;
pub mod device;
mod error;
pub mod eval;
pub mod fsutil;
pub mod golden;
pub mod import_tf;
pub mod instrument;
pub mod live;
pub mod model_dir;
pub mod nsynth;
pub mod pack;
pub mod pitch;
pub mod soundfont;
pub mod synth;
pub mod train;

pub use error::{Error, Result};
