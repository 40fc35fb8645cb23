//! The generator contract every model family keeps: per-voice conditioning (embedding
//! frames and an f0 curve), a random stream per voice, sampling settings, and progress and
//! cancellation through one [`Control`]. The engine runs any [`Generator`] the same way;
//! the conformance tests drive every autoregressive one through [`Stepper`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::sampling::{Sampler, Sampling};
use crate::{Error, Result};

/// Progress and cancellation shared between a generation and whoever watches it.
#[derive(Debug, Default)]
pub struct Control {
    /// Samples generated so far, summed over voices.
    pub samples: AtomicU64,
    /// Set to stop the generation before its next sample (or pass) ([`Error::Cancelled`]).
    pub cancel: AtomicBool,
    /// The sample (per voice) from which a decode split over threads went on with one,
    /// its partners not getting their cores; 0: it did not.
    pub solo_from: AtomicU64,
}

impl Control {
    pub fn samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Counts `n` more samples done.
    pub fn add_samples(&self, n: u64) {
        self.samples.fetch_add(n, Ordering::Relaxed);
    }
}

/// The frames per voice of an encoding `[voice][frame][bottleneck]` of `voices` voices,
/// or why it cannot be one.
pub fn frames_in(encoding: &[f32], voices: usize, bottleneck: usize) -> Result<usize> {
    let per_voice = encoding.len().checked_div(voices).unwrap_or(0);
    if voices == 0
        || bottleneck == 0
        || !per_voice.is_multiple_of(bottleneck)
        || per_voice * voices != encoding.len()
    {
        return Err(Error::Shape(format!(
            "an encoding for {voices} voices of {bottleneck}-channel frames cannot have {} values",
            encoding.len()
        )));
    }
    Ok(per_voice / bottleneck)
}

/// Copies frame `f` of every voice of `encoding` (`[voice][frame][bottleneck]`, `frames`
/// per voice) into `frame` (`[voice][bottleneck]`): what a generator conditions on for
/// the frame's `hop_length` samples.
pub fn frame_of(encoding: &[f32], frames: usize, f: usize, frame: &mut [f32], bottleneck: usize) {
    for (v, z) in frame.chunks_exact_mut(bottleneck).enumerate() {
        let at = (v * frames + f) * bottleneck;
        z.copy_from_slice(&encoding[at..at + bottleneck]);
    }
}

/// What a generator is asked to play.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Every voice's embedding frames, `[voice][frame][bottleneck]`, all voices as long.
    pub encoding: &'a [f32],
    /// Every voice's f0 curve `[voice][sample]` in Hz (`frames × hop_length` per voice;
    /// 0 where unpitched), for a generator that takes one; `None`: all unpitched.
    pub f0: Option<&'a [f32]>,
    /// Voice `v` draws from random stream `streams[v]` of `sampling.seed`: a voice's
    /// audio does not depend on the batch it is generated in.
    pub streams: &'a [u64],
    pub sampling: Sampling,
    /// CPU threads it may use.
    pub threads: usize,
}

/// The conditioning a generator takes: embedding frames of `bottleneck` channels, one
/// per `hop_length` samples, and `excitation_channels` of excitation per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameShape {
    pub hop_length: usize,
    pub bottleneck: usize,
    /// 0: it takes no f0.
    pub excitation_channels: usize,
}

impl Request<'_> {
    /// The frames per voice of the request to a generator of `bottleneck`-channel frames
    /// of `hop_length` samples each, once the encoding is checked to hold whole frames for
    /// every voice and the f0 curves (where given) to be as long as the audio.
    pub fn frames(&self, bottleneck: usize, hop_length: usize) -> Result<usize> {
        let voices = self.streams.len();
        let frames = frames_in(self.encoding, voices, bottleneck)?;
        crate::excitation::check_curves(self.f0, voices, frames * hop_length)?;
        Ok(frames)
    }
}

/// Checks that a [`Stepper::step`] was given one previous sample per voice.
pub fn check_previous(previous: &[f32], voices: usize) -> Result<()> {
    if previous.len() != voices {
        return Err(Error::Shape(format!(
            "{} previous samples for {voices} voices",
            previous.len()
        )));
    }
    Ok(())
}

/// A generator: embedding frames (and f0) in, audio in [-1, 1] out, one `Vec` per voice.
/// It adds each sample it finishes to `control.samples` and stops with
/// [`Error::Cancelled`] soon after `control.cancel()` (autoregressive ones before their
/// next sample or frame, whole-note ones before their next pass).
pub trait Generator: Send + Sync + std::fmt::Debug {
    /// What its conditioning must look like.
    fn shape(&self) -> FrameShape;
    /// Samples per embedding frame.
    fn hop_length(&self) -> usize {
        self.shape().hop_length
    }
    /// Channels of an embedding frame.
    fn bottleneck(&self) -> usize {
        self.shape().bottleneck
    }
    /// Excitation channels it takes per sample (0: it takes no f0).
    fn excitation_channels(&self) -> usize {
        self.shape().excitation_channels
    }
    /// One line for status lines: what runs and where.
    fn describe(&self, threads: usize) -> String;
    fn generate(&self, request: &Request<'_>, control: &Control) -> Result<Vec<Vec<f32>>>;
}

/// An autoregressive generator's voices advanced one sample at a time, as the
/// conformance tests drive every implementation against the reference.
pub trait Stepper {
    /// Sets the embedding frame `[voice][bottleneck]` the next samples are conditioned on.
    fn set_frame(&mut self, frame: &[f32]) -> Result<()>;
    /// One sample: the previous sample of each voice (scaled μ-law input) in, the logits
    /// `[voice][256]` of the next out.
    fn step(&mut self, previous: &[f32]) -> Result<Vec<f32>>;
    /// Draws each voice's class from the logits of the last step, with `sampler`'s
    /// per-voice streams, as the generator itself draws.
    fn draw(&mut self, sampler: &mut Sampler) -> Result<Vec<usize>>;
}
