//! The live voice engine: the Parallel WaveNet student played from a keyboard, voice by
//! voice, block by block, with the timbre moving while notes sound.
//!
//! ```text
//! note on ──▶ a free voice (or a stolen one): a StudentStream at 16 kHz from its own
//!             noise stream, at the key's pitch (+ bend, + vibrato from the mod wheel)
//! each embedding frame (every 512 samples): the corners' notes nearest the key, each at
//!             its place in the note (attack, the sustain back and forth while held, the
//!             release after note off), blended with the XY / mix weights of that moment
//! voices × envelope × velocity ──▶ 16 kHz mix ──rubato──▶ FIFO ──▶ the host's block
//! ```
//!
//! Note-on encodes nothing: the corners ([`Corners`]) are encoded once, off the audio
//! thread, through the engine's cache, and swapped in lock-free ([`CornerSwap`]).
//! [`LiveEngine::process`] allocates, frees and locks nothing and does no I/O (the
//! counting-allocator test in `engine/tests/live_alloc.rs`); everything is sized in
//! [`LiveEngine::new`].
//!
//! A CPU guard keeps the block in time: from the measured cost of a voice-sample it
//! predicts the next block's, and when that would pass [`GUARD_SHARE`] of the block's
//! duration it stops voices (the oldest released first, then the oldest held) before
//! rendering, rather than let every voice glitch.
//!
//! Voices are rendered on the calling thread and, with `helper_threads` in [`LiveConfig`],
//! on that many helper threads started with the engine (`pool.rs`: voices lent through
//! lock-free rings each block).

pub mod corners;
mod output;
mod pool;
mod voice;

use std::sync::Arc;
use std::time::Instant;

use autoencoder::student::StudentAutoencoder;
use autoencoder::student::cpu::CpuStudent;

use crate::error::{Error, Result};
use crate::synth::{PITCH_RANGE, XyMode, xy_weights};
pub use corners::{CornerNote, CornerSwap, Corners, MAX_CORNERS, PACK_KEYS};
pub use output::RATE_RANGE;

/// The latency, in host frames, of an engine for blocks of at most `max_block_frames` at
/// `rate_hz` ([`LiveEngine::latency_secs`] × the rate): known before the engine is
/// built, as a plugin host asks for it when it activates the plugin.
pub fn latency_frames(rate_hz: u32, max_block_frames: usize) -> Result<usize> {
    Ok(output::Output::new(rate_hz, max_block_frames)?
        .0
        .latency_frames())
}

use output::{MODEL_RATE_HZ, Output};
use voice::{Controls, Phase, Voice};
pub use voice::{VIBRATO_DEPTH_SEMITONES, VIBRATO_HZ};

/// The most voices an engine may have.
pub const MAX_VOICES: usize = 128;

/// The longest block an engine may be asked to prepare for.
pub const MAX_BLOCK_FRAMES: usize = 65_536;

/// The most helper threads.
pub const MAX_HELPER_THREADS: usize = 16;

/// The share of a block's duration the guard lets the voices take.
pub const GUARD_SHARE: f64 = 0.8;

/// The widest pitch bend, semitones either way.
pub const MAX_BEND_SEMITONES: f32 = 24.0;

/// The seed every voice's noise streams come from (note `n` plays stream `n`).
const SEED: u64 = 0x7469_6d62;

/// How a [`LiveEngine`] is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveConfig {
    /// The host's rate (see [`RATE_RANGE`]).
    pub output_rate_hz: u32,
    /// The longest block [`LiveEngine::process`] is given (longer ones are split).
    pub max_block_frames: usize,
    /// Voices sounding at once (1 to [`MAX_VOICES`]); a note past them steals one.
    pub max_voices: usize,
    /// Threads rendering voices beside the calling one (0 to [`MAX_HELPER_THREADS`]).
    pub helper_threads: usize,
    /// Whether voices play a student's measured envelope (its output stage, as renders
    /// do; on by default). Its 16 ms window adds no latency (a voice runs its flows that
    /// far ahead from its first block, see `voice.rs`); off, voices play the flows alone
    /// and a note-on costs no burst.
    pub envelope: bool,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            output_rate_hz: 48_000,
            max_block_frames: 512,
            max_voices: 8,
            helper_threads: 0,
            envelope: true,
        }
    }
}

/// The student played live (see the module doc).
#[derive(Debug)]
pub struct LiveEngine {
    cfg: LiveConfig,
    hop: usize,
    corners: Arc<Corners>,
    receiver: corners::Receiver,
    /// Always all at home between blocks (helpers borrow some during one).
    voices: Vec<Option<Box<Voice>>>,
    pool: Option<pool::Pool>,
    /// The 16 kHz mix, `[max samples a refill asks for]`.
    mix: Vec<f32>,
    output: Output,
    /// Weights as set (A, B, C, D); normalised over the corners there are per block.
    weights: [f32; MAX_CORNERS],
    bend: f32,
    /// The bend the last block ended at (a block glides from it to `bend`).
    bend_was: f32,
    mod_wheel: f32,
    attack_secs: f32,
    release_secs: f32,
    gain: f32,
    /// Notes started so far: a voice's age, and its noise stream.
    notes: u64,
    guard: bool,
    /// The share of a block's duration the guard lets the voices take.
    guard_share: f64,
    /// Seconds a voice-sample took lately (the guard's estimate).
    cost_secs: f64,
    load: f32,
}

impl LiveEngine {
    /// An engine on `model` (a pitched student) with `corners` encoded by it.
    pub fn new(model: Arc<StudentAutoencoder>, corners: Corners, cfg: LiveConfig) -> Result<Self> {
        let scfg = &model.config().student;
        if scfg.excitation_harmonics == 0 {
            return Err(Error::Pitch(
                "this student has no excitation: it cannot be played at a key's pitch".into(),
            ));
        }
        if corners.channels() != scfg.frame_channels() {
            return Err(Error::Blend(format!(
                "the corners' frames have {} channels; this student reads {}",
                corners.channels(),
                scfg.frame_channels()
            )));
        }
        if cfg.max_voices == 0 || cfg.max_voices > MAX_VOICES {
            return Err(Error::Audio(format!(
                "the live engine plays 1 to {MAX_VOICES} voices, not {}",
                cfg.max_voices
            )));
        }
        if cfg.max_block_frames == 0 || cfg.max_block_frames > MAX_BLOCK_FRAMES {
            return Err(Error::Audio(format!(
                "blocks of 1 to {MAX_BLOCK_FRAMES} frames, not {}",
                cfg.max_block_frames
            )));
        }
        if cfg.helper_threads > MAX_HELPER_THREADS {
            return Err(Error::Audio(format!(
                "at most {MAX_HELPER_THREADS} helper threads, not {}",
                cfg.helper_threads
            )));
        }
        let (output, max_samples) = Output::new(cfg.output_rate_hz, cfg.max_block_frames)?;
        let cpu = Arc::new(CpuStudent::new(model.student())?);
        let envelope = cfg.envelope && cpu.envelope().is_some();
        let voices = (0..cfg.max_voices)
            .map(|_| {
                Some(Box::new(Voice::new(
                    Arc::clone(&cpu),
                    max_samples,
                    envelope,
                )))
            })
            .collect();
        let pool = (cfg.helper_threads > 0)
            .then(|| pool::Pool::new(cfg.helper_threads, cfg.max_voices, max_samples))
            .transpose()?;
        Ok(Self {
            cfg,
            hop: scfg.hop_length,
            corners: Arc::new(corners),
            receiver: corners::Receiver::new(),
            voices,
            pool,
            mix: vec![0.0; max_samples],
            output,
            weights: [1.0, 0.0, 0.0, 0.0],
            bend: 0.0,
            bend_was: 0.0,
            mod_wheel: 0.0,
            attack_secs: 0.01,
            release_secs: 0.3,
            gain: 1.0,
            notes: 0,
            guard: true,
            guard_share: GUARD_SHARE,
            cost_secs: 0.0,
            load: 0.0,
        })
    }

    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    /// A handle that swaps the corners from any thread (see [`CornerSwap`]).
    pub fn corner_swap(&self) -> CornerSwap {
        self.receiver.handle(self.corners.channels())
    }

    /// The corners playing now.
    pub fn corners(&self) -> &Corners {
        &self.corners
    }

    /// Starts `key` (MIDI; keys outside [`PITCH_RANGE`], the piano's, are ignored) at
    /// `velocity` (0..=1, its gain; 0 is a note-off, as in MIDI). A key already held is
    /// let go first. Past `max_voices` a voice is stolen: the oldest released one, else
    /// the oldest.
    pub fn note_on(&mut self, key: u8, velocity: f32) {
        if !PITCH_RANGE.contains(&f32::from(key)) || !velocity.is_finite() {
            return;
        }
        if velocity <= 0.0 {
            self.note_off(key);
            return;
        }
        self.note_off(key);
        let slot = match self.voices().position(|v| v.phase == Phase::Free) {
            Some(free) => free,
            None => match self.victim() {
                Some(v) => v,
                None => return,
            },
        };
        self.notes += 1;
        if let Some(Some(v)) = self.voices.get_mut(slot) {
            v.start(key, velocity.min(1.0), SEED, self.notes, self.notes);
        }
    }

    /// Lets `key` go: its voices play their release.
    pub fn note_off(&mut self, key: u8) {
        let (count, hop) = (self.notes, self.hop);
        for v in self.voices.iter_mut().flatten() {
            if v.key == key {
                v.release(count, hop);
            }
        }
    }

    /// Lets every key go.
    pub fn all_notes_off(&mut self) {
        let (count, hop) = (self.notes, self.hop);
        self.voices
            .iter_mut()
            .flatten()
            .for_each(|v| v.release(count, hop));
    }

    /// The point of the XY pad, each 0..=1 (clamped): bilinear weights, A at (0, 0), B at
    /// (1, 0), C at (0, 1), D at (1, 1) (`synth::blend`'s bilinear mode).
    pub fn set_xy(&mut self, x: f32, y: f32) {
        if x.is_finite() && y.is_finite() {
            self.weights = xy_weights(x, y, XyMode::Bilinear);
        }
    }

    /// The corners' weights directly (A, B, C, D; normalised; negative or non-finite ones
    /// count as 0; all zero is ignored).
    pub fn set_weights(&mut self, w: [f32; 4]) {
        let w = w.map(|v| if v.is_finite() { v.max(0.0) } else { 0.0 });
        if w.iter().sum::<f32>() > 0.0 {
            self.weights = w;
        }
    }

    /// Pitch bend in semitones (±[`MAX_BEND_SEMITONES`]), glided across the next block.
    pub fn set_pitch_bend(&mut self, semitones: f32) {
        if semitones.is_finite() {
            self.bend = semitones.clamp(-MAX_BEND_SEMITONES, MAX_BEND_SEMITONES);
        }
    }

    /// The mod wheel, 0..=1: vibrato depth, up to ±[`VIBRATO_DEPTH_SEMITONES`] at
    /// [`VIBRATO_HZ`].
    pub fn set_mod_wheel(&mut self, value: f32) {
        if value.is_finite() {
            self.mod_wheel = value.clamp(0.0, 1.0);
        }
    }

    /// The amplitude envelope: a linear rise over `attack_secs` from note-on, a linear
    /// fall over `release_secs` from note-off (each 1 ms to 10 s).
    pub fn set_envelope(&mut self, attack_secs: f32, release_secs: f32) {
        if attack_secs.is_finite() {
            self.attack_secs = attack_secs.clamp(0.001, 10.0);
        }
        if release_secs.is_finite() {
            self.release_secs = release_secs.clamp(0.001, 10.0);
        }
    }

    /// Output gain, linear (0 to 4).
    pub fn set_gain(&mut self, gain: f32) {
        if gain.is_finite() {
            self.gain = gain.clamp(0.0, 4.0);
        }
    }

    /// Whether the CPU guard may stop voices (on by default; a benchmark measuring what
    /// the voices cost turns it off).
    pub fn set_cpu_guard(&mut self, on: bool) {
        self.guard = on;
    }

    /// The share of each block's duration the guard lets the voices take (default
    /// [`GUARD_SHARE`]; clamped to 0 to 1): lower leaves the host more room for other
    /// plugins, and fewer voices sound.
    pub fn set_cpu_share(&mut self, share: f64) {
        self.guard_share = if share.is_finite() {
            share.clamp(0.0, 1.0)
        } else {
            GUARD_SHARE
        };
    }

    /// Voices sounding (held or releasing).
    pub fn active_voices(&self) -> usize {
        self.voices().filter(|v| v.phase != Phase::Free).count()
    }

    fn voices(&self) -> impl Iterator<Item = &Voice> {
        self.voices.iter().flatten().map(|v| &**v)
    }

    /// Each sounding voice's key and whether it is still held (for a display).
    pub fn voice_keys(&self) -> impl Iterator<Item = (u8, bool)> + '_ {
        self.voices()
            .filter(|v| v.phase != Phase::Free)
            .map(|v| (v.key, v.phase == Phase::Held))
    }

    /// The last blocks' time over their duration (1: just in time), a peak decaying by a
    /// tenth a block.
    pub fn cpu_load(&self) -> f32 {
        self.load
    }

    /// Seconds from a note-on (or any change) to its sound leaving a block, beyond the
    /// block itself: the resampler's look-ahead and what the FIFO may hold.
    pub fn latency_secs(&self) -> f64 {
        self.output.latency_frames() as f64 / f64::from(self.cfg.output_rate_hz)
    }

    /// Fills `out` (mono, the output rate) with the next block, overwriting it. Any length
    /// (longer than `max_block_frames` is split). Allocates, frees and locks nothing.
    pub fn process(&mut self, out: &mut [f32]) {
        let started = Instant::now();
        let max = self.cfg.max_block_frames;
        for block in out.chunks_mut(max) {
            self.block(block);
        }
        let secs = started.elapsed().as_secs_f64();
        let duration = out.len() as f64 / f64::from(self.cfg.output_rate_hz);
        if duration > 0.0 {
            let load = (secs / duration) as f32;
            self.load = if load > self.load {
                load
            } else {
                0.9 * self.load + 0.1 * load
            };
        }
    }

    fn block(&mut self, out: &mut [f32]) {
        self.receiver.take(&mut self.corners);
        let controls = self.controls();
        loop {
            let want = self.output.wanted(out.len()).min(self.mix.len());
            if want == 0 {
                break;
            }
            self.guard(want);
            let started = Instant::now();
            let mix = &mut self.mix[..want];
            mix.fill(0.0);
            let rendered = match &mut self.pool {
                Some(pool) => pool.render(&mut self.voices, &self.corners, &controls, mix),
                None => {
                    let mut rendered = 0;
                    for v in self.voices.iter_mut().flatten() {
                        if v.phase != Phase::Free {
                            v.render(&self.corners, &controls, mix);
                            rendered += 1;
                        }
                    }
                    rendered
                }
            };
            if rendered > 0 {
                // What one voice-sample costs one thread (this one's share took this long).
                let per = started.elapsed().as_secs_f64() / (rendered * want) as f64;
                self.cost_secs = if self.cost_secs == 0.0 {
                    per
                } else {
                    0.8 * self.cost_secs + 0.2 * per
                };
            }
            self.output.push(&self.mix[..want]);
        }
        self.output.pop(out);
        if self.gain != 1.0 {
            out.iter_mut().for_each(|o| *o *= self.gain);
        }
        self.bend_was = self.bend;
    }

    /// What every voice reads this block.
    fn controls(&self) -> Controls {
        let n = self.corners.len().min(MAX_CORNERS);
        let mut weights = [0f32; MAX_CORNERS];
        weights[..n].copy_from_slice(&self.weights[..n]);
        let total: f32 = weights.iter().sum();
        if total > 0.0 {
            weights.iter_mut().for_each(|w| *w /= total);
        } else {
            weights[0] = 1.0;
        }
        let rate = MODEL_RATE_HZ as f32;
        Controls {
            weights,
            bend: (self.bend_was, self.bend),
            vibrato: self.mod_wheel,
            attack_samples: self.attack_secs * rate,
            release_samples: self.release_secs * rate,
        }
    }

    /// Stops voices until the next `samples` (16 kHz) fit the block's time.
    fn guard(&mut self, samples: usize) {
        if !self.guard || self.cost_secs <= 0.0 {
            return;
        }
        let budget = samples as f64 / f64::from(MODEL_RATE_HZ) * self.guard_share;
        let threads = 1 + self.pool.as_ref().map_or(0, pool::Pool::threads);
        loop {
            let active = self.active_voices();
            let per_thread = active.div_ceil(threads);
            if active <= 1 || self.cost_secs * (per_thread * samples) as f64 <= budget {
                return;
            }
            match self.victim() {
                Some(v) => {
                    if let Some(Some(voice)) = self.voices.get_mut(v) {
                        voice.stop();
                    }
                }
                None => return,
            }
        }
    }

    /// The voice to give up: the oldest released, else the oldest held.
    fn victim(&self) -> Option<usize> {
        let oldest = |phase: Phase, age: fn(&Voice) -> u64| {
            self.voices
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_deref().map(|v| (i, v)))
                .filter(|(_, v)| v.phase == phase)
                .min_by_key(|(_, v)| age(v))
                .map(|(i, _)| i)
        };
        oldest(Phase::Released, |v| v.released).or_else(|| oldest(Phase::Held, |v| v.started))
    }
}
