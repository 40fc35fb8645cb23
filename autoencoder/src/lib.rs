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
//! The crate is a stack of floors; a module imports from its own floor or below, never up
//! and never in a circle (`student` and `samplernn` build on `wavenet`'s config and
//! decoder, which knows neither):
//! - families, one folder each under [`models`], re-exported at the root:
//!   [`wavenet`] (the autoencoder: config, weights, decoder, the reference, CPU and tensor
//!   generators, its fused training step), [`student`] (the Parallel WaveNet student) and
//!   [`samplernn`] (SampleRNN);
//! - what the families share: [`nn`] (`Conv1d`, the gated residual layer, the NSynth
//!   [`Encoder`]), [`cpu`] (the CPU generators' packed kernels and thread exchange) and
//!   `fused` (the hand-written training passes' pieces);
//! - the ground: the generator contract ([`generate`]), [`family`], [`mulaw`],
//!   [`sampling`], [`excitation`], [`optim`], `gemm` and the errors.
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
