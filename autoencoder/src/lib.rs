//! NSynth's WaveNet autoencoder on candle.
//!
//! Engel et al., "Neural Audio Synthesis of Musical Notes with WaveNet Autoencoders"
//! (2017), with the WaveNet decoder of van den Oord et al. (2016) and Fast WaveNet
//! generation (Paine et al. 2016). The reference implementation is Magenta's
//! `magenta/models/nsynth/wavenet/h512_bo16.py` (graph), `masked.py` (convolutions) and
//! `fastgen.py` (incremental generation); names, layouts and edge padding follow it so a
//! converted published checkpoint loads as is.
//!
//! Data flow: audio in [-1, 1] → [`mulaw`] classes / 128 → [`Encoder`] → embedding
//! `[batch, frames, bottleneck]` → [`Decoder`] (teacher-forced logits, for training and
//! evaluation) or [`FastGenerator`] (sample by sample, for synthesis).
//!
//! This crate knows nothing about files, audio devices or the GUI.

mod config;
pub mod cpu;
mod error;
pub mod excitation;
pub mod fastgen;
pub mod layers;
mod model;
pub mod mulaw;
pub mod optim;
pub mod sampling;
pub mod student;
pub mod tensorgen;
pub mod weights;

pub use config::{Config, ExcitationInto};
pub use cpu::CpuDecoder;
pub use error::{Error, Result};
pub use fastgen::FastGenerator;
pub use model::{Decoder, Encoder, WaveNetAutoencoder, nll};
pub use sampling::Sampling;
pub use tensorgen::TensorGenerator;
