//! The NSynth WaveNet autoencoder (Engel et al. 2017): the Magenta-exact model
//! ([`config`], [`model`]: the teacher-forced decoder on the shared [`crate::nn`] layers
//! and encoder, the loss; [`weights`]:
//! Magenta's variable names and initialisation) and its generators: the reference
//! Fast WaveNet ([`fastgen`]), the fast CPU decoder ([`cpu`]) and the tensor (GPU)
//! decoder ([`tensorgen`]), all keeping the [`crate::generate`] contract.

pub mod config;
pub mod cpu;
pub mod fastgen;
pub mod fused;
pub mod model;
pub mod tensorgen;
pub mod weights;

pub use config::{Config, ExcitationInto};
pub use cpu::CpuGenerator;
pub use fastgen::FastGenerator;
pub use model::{Decoder, WaveNetAutoencoder, nll};
pub use tensorgen::TensorGenerator;
