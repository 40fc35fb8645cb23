//! One voice of the live engine: a [`StudentStream`] at 16 kHz walking the blend of the
//! corners' frames, at the key's pitch (with bend and vibrato), under an amplitude
//! envelope.
//!
//! A student with a measured envelope streams its output [`StudentStream::delay`] samples
//! (the envelope's window, 16 ms) after its flows. A voice hides that delay rather than
//! adding it to the engine's latency: on its first block it runs the stream through the
//! delay at once (a burst of 256 samples, about 2.5 ms of one core for the shipped
//! student) and drops what comes out (the output before the note's start, which a
//! whole-note render drops too), so its first sample is the note's first sample. From
//! then on its flows run that far ahead of what it plays: the bend, vibrato and the
//! blend's weights reach the flows at once and the sound 16 ms later; a key's note-on
//! is heard with no added delay.

use std::sync::Arc;

use autoencoder::excitation::midi_to_hz;
use autoencoder::student::cpu::CpuStudent;
use autoencoder::student::stream::{Frames, StudentStream};

use super::corners::{Corners, MAX_CORNERS};
use crate::synth::loudness::scale_bands;
use autoencoder::student::envelope::{MAX_BANDS, shift};

/// The model's rate.
const RATE_HZ: f32 = crate::audio::SAMPLE_RATE_HZ as f32;

/// Vibrato at the mod wheel's top: ±this many semitones.
pub const VIBRATO_DEPTH_SEMITONES: f32 = 0.5;

/// Vibrato rate.
pub const VIBRATO_HZ: f32 = 5.5;

/// Where a voice is in its note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Free,
    Held,
    Released,
}

/// What every voice reads once per block (the engine's controls).
#[derive(Debug, Clone, Copy)]
pub(super) struct Controls {
    /// Corner weights, normalised over the corners there are.
    pub weights: [f32; MAX_CORNERS],
    /// Semitones at the block's start and end (interpolated across it).
    pub bend: (f32, f32),
    /// Vibrato depth, 0..=1.
    pub vibrato: f32,
    /// Samples (16 kHz) of the attack and release ramps.
    pub attack_samples: f32,
    pub release_samples: f32,
}

/// The blend of the corners at a voice's place in its note (see [`super::corners::CornerNote::walk`]).
struct Walk<'a> {
    corners: &'a Corners,
    weights: [f32; MAX_CORNERS],
    key: u8,
    /// The bend (semitones) at the block's start: an envelope follows the pitch played.
    bend: f32,
    off: Option<usize>,
}

impl Frames for Walk<'_> {
    fn frame(&mut self, index: usize, frame: &mut [f32]) {
        frame.fill(0.0);
        let moved = self.corners.shift_channels();
        for (c, &w) in self.weights.iter().enumerate().take(self.corners.len()) {
            if w <= 0.0 {
                continue;
            }
            let Some(note) = self.corners.nearest(c, self.key) else {
                continue;
            };
            let f = note.walk(index, self.off);
            let src = note.embedding.frame(f);
            // Without an envelope that moves, `moved` is empty and starts at the end.
            for (o, &v) in frame[..moved.start].iter_mut().zip(&src[..moved.start]) {
                *o += w * v;
            }
            if moved.is_empty() {
                continue;
            }
            // The note's envelope, moved from its pitch to the one played.
            let mut envelope = [0f32; MAX_BANDS];
            let envelope = &mut envelope[..moved.len().min(MAX_BANDS)];
            for (e, &v) in envelope.iter_mut().zip(&src[moved.clone()]) {
                *e = v;
            }
            shift(
                envelope,
                f32::from(self.key) + self.bend - f32::from(note.pitch),
            );
            for (o, &e) in frame[moved.clone()].iter_mut().zip(envelope.iter()) {
                *o += w * e;
            }
        }
        // A measured envelope's blend, as loud as its corners (see `synth::loudness`).
        if let Some((loudness, bands)) = self.corners.loudness(self.key) {
            let n = self.corners.len().min(MAX_CORNERS);
            scale_bands(frame, &bands, loudness.gain(&self.weights[..n]));
        }
    }
}

#[derive(Debug)]
pub(super) struct Voice {
    stream: StudentStream,
    pub phase: Phase,
    pub key: u8,
    velocity: f32,
    /// When the note started and was let go, in the engine's note count (for stealing).
    pub started: u64,
    pub released: u64,
    /// The frame from which the release is walked.
    off: Option<usize>,
    /// The envelope's level, 0..=1.
    level: f32,
    /// Vibrato phase, cycles.
    vibrato_phase: f32,
    /// Samples of the stream still to run and drop before the note sounds (its delay).
    prime: usize,
    f0: Vec<f32>,
    audio: Vec<f32>,
}

impl Voice {
    /// A free voice able to render `max_samples` a block, with the student's measured
    /// envelope (if it has one) or without.
    pub fn new(model: Arc<CpuStudent>, max_samples: usize, envelope: bool) -> Self {
        let mut stream = StudentStream::new(model, 0, 0);
        stream.set_envelope(envelope);
        Self {
            stream,
            phase: Phase::Free,
            key: 0,
            velocity: 0.0,
            started: 0,
            released: 0,
            off: None,
            level: 0.0,
            vibrato_phase: 0.0,
            prime: 0,
            f0: vec![0.0; max_samples],
            audio: vec![0.0; max_samples],
        }
    }

    /// Starts `key` (noise stream `stream` of `seed`) from silence. Allocates nothing.
    pub fn start(&mut self, key: u8, velocity: f32, seed: u64, stream: u64, count: u64) {
        self.stream.reset(seed, stream);
        self.phase = Phase::Held;
        self.key = key;
        self.velocity = velocity.clamp(0.0, 1.0);
        self.started = count;
        self.off = None;
        self.level = 0.0;
        self.vibrato_phase = 0.0;
        self.prime = self.stream.delay();
    }

    /// Lets the key go: the release frames from the next frame on, the envelope's release.
    pub fn release(&mut self, count: u64, hop: usize) {
        if self.phase == Phase::Held {
            self.phase = Phase::Released;
            self.released = count;
            self.off = Some(self.stream.position().div_ceil(hop as u64) as usize);
        }
    }

    /// Runs the stream through its delay (see the module doc) at `hz`, dropping what comes
    /// out; false if the stream refused (it cannot: lengths match by construction).
    fn prime_stream(&mut self, walk: &mut Walk<'_>, hz: f32) -> bool {
        while self.prime > 0 {
            let n = self.prime.min(self.audio.len()).min(self.f0.len());
            if n == 0 {
                return false;
            }
            self.f0[..n].fill(hz);
            if self
                .stream
                .process(&self.f0[..n], walk, &mut self.audio[..n])
                .is_err()
            {
                return false;
            }
            self.prime -= n;
        }
        true
    }

    /// Silences the voice at once.
    pub fn stop(&mut self) {
        self.phase = Phase::Free;
        self.level = 0.0;
    }

    /// Renders `mix.len()` samples and adds them to `mix`. Allocates nothing.
    pub fn render(&mut self, corners: &Corners, controls: &Controls, mix: &mut [f32]) {
        if self.phase == Phase::Free {
            return;
        }
        let n = mix.len().min(self.f0.len());
        let (b0, b1) = controls.bend;
        let depth = controls.vibrato * VIBRATO_DEPTH_SEMITONES;
        let step = VIBRATO_HZ / RATE_HZ;
        let key = f32::from(self.key);
        let mut walk = Walk {
            corners,
            weights: controls.weights,
            key: self.key,
            bend: b0,
            off: self.off,
        };
        if !self.prime_stream(&mut walk, midi_to_hz(key + b0)) {
            self.stop();
            return;
        }
        for (i, hz) in self.f0[..n].iter_mut().enumerate() {
            let bend = b0 + (b1 - b0) * (i as f32 + 1.0) / n as f32;
            let vib = depth * (std::f32::consts::TAU * self.vibrato_phase).sin();
            self.vibrato_phase = (self.vibrato_phase + step).fract();
            *hz = midi_to_hz(key + bend + vib);
        }
        let audio = &mut self.audio[..n];
        // Lengths match by construction, the only error `process` has.
        if self
            .stream
            .process(&self.f0[..n], &mut walk, audio)
            .is_err()
        {
            self.stop();
            return;
        }
        let (up, down) = (
            1.0 / controls.attack_samples.max(1.0),
            1.0 / controls.release_samples.max(1.0),
        );
        for (m, &a) in mix[..n].iter_mut().zip(audio.iter()) {
            self.level = match self.phase {
                Phase::Held => (self.level + up).min(1.0),
                _ => (self.level - down).max(0.0),
            };
            *m += a * self.level * self.velocity;
        }
        if self.phase == Phase::Released && self.level <= 0.0 {
            self.phase = Phase::Free;
        }
    }
}
