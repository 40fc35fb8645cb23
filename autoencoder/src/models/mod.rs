//! The model families, one folder each: [`wavenet`] (NSynth's WaveNet autoencoder),
//! [`student`] (the Parallel WaveNet student) and [`samplernn`] (SampleRNN). Each builds
//! on the shared parts ([`crate::nn`], [`crate::cpu`], [`crate::fused`]) and keeps the
//! generator contract ([`crate::generate`]).

pub mod samplernn;
pub mod student;
pub mod wavenet;
