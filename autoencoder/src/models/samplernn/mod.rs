//! SampleRNN (Mehri et al. 2017, arXiv 1612.07837) conditioned on the autoencoder's
//! embedding: the other sample-level family of the WaveNet line.
//!
//! Three tiers: a GRU that runs once every `top_frame` samples over the previous frame's
//! samples (and the embedding frame and excitation there), a GRU every `mid_frame`
//! samples over the previous sub-frame plus the top tier's output upsampled (a learned
//! linear map to one vector per sub-frame), and a sample-level MLP over the learned
//! embeddings of the previous `mid_frame` samples plus the middle tier's output for this
//! sample (and the excitation), ending in the 256-way μ-law softmax. The recurrent tiers
//! run at frame rates, so a sample costs far fewer multiply-adds than a WaveNet's.
//!
//! [`model`] is the teacher-forced pass on candle (what training differentiates, with
//! truncated back-propagation through time); [`generate`] plays it sample by sample.

pub mod config;
pub mod generate;
pub mod model;

pub use config::SampleRnnConfig;
pub use generate::SampleRnnGenerator;
pub use model::{Hidden, SampleRnn};
