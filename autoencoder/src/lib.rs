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
//! One folder per model family: [`wavenet`] (the autoencoder and its generators) and
//! [`student`] (the Parallel WaveNet student); beside them what they share: [`mulaw`],
//! [`sampling`], [`excitation`], [`optim`] and the generator contract ([`generate`]).
//!
//! This crate knows nothing about files, audio devices or the GUI.

pub mod cpu;
mod error;
pub mod excitation;
pub mod family;
mod fused;
mod gemm;
pub mod generate;
pub mod models;
pub mod mulaw;
pub mod nn;
pub mod optim;
pub mod sampling;

pub use models::{samplernn, student, wavenet};

pub use error::{Error, Result};
pub use generate::{Control, FrameShape, Generator, Request, Stepper};
pub use nn::Encoder;
pub use sampling::Sampling;
pub use wavenet::{
    Config, CpuGenerator, Decoder, ExcitationInto, FastGenerator, TensorGenerator,
    WaveNetAutoencoder, nll,
};
