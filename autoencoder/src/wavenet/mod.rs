//! The NSynth WaveNet autoencoder (Engel et al. 2017): the Magenta-exact model
//! ([`config`], [`layers`], [`model`]: encoder, teacher-forced decoder, loss; [`weights`]:
//! Magenta's variable names and initialisation) and its generators: the reference
//! Fast WaveNet ([`fastgen`]), the fast CPU decoder ([`cpu`]) and the tensor (GPU)
//! decoder ([`tensorgen`]), all keeping the [`crate::generate`] contract.

pub mod config;
pub mod cpu;
pub mod fastgen;
pub mod fused;
pub mod layers;
pub mod model;
pub mod tensorgen;
pub mod weights;

pub use config::{Config, ExcitationInto};
pub use cpu::CpuGenerator;
pub use fastgen::FastGenerator;
pub use model::{Decoder, Encoder, WaveNetAutoencoder, nll};
pub use tensorgen::TensorGenerator;
