//! Timbrel's engine: everything between files on disk and the model.
//!
//! Sound files ([`audio`]), pitch ([`pitch`]), sample packs ([`pack`]), the model families
//! and their one loader ([`models`]: model directories, the embedded default), parity
//! fixtures ([`golden`]), datasets ([`nsynth`], [`soundfont`], [`pack_dataset`]), training ([`train`]) and
//! evaluation ([`eval`]), the synthesizer itself ([`synth`]): encode (cached), blend,
//! decode, render; and instruments made of its notes ([`instrument`]: SF2, SFZ).

pub mod audio;
pub mod demo;
pub mod device;
mod error;
pub mod eval;
pub mod fsutil;
pub mod golden;
pub mod import_tf;
pub mod instrument;
pub mod live;
pub mod models;
pub mod nsynth;
pub mod pack;
pub mod pack_dataset;
pub mod pitch;
pub mod soundfont;
pub mod synth;
pub mod train;

pub use error::{Error, OptionsError, Result};
