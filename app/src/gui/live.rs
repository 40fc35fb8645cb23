//! Keys played live: MIDI and the computer keyboard drive an `engine::live::LiveEngine`
//! owned by the audio callback.
//!
//! ```text
//! GUI thread ──LiveCommand (rtrb)──▶ callback: LiveEngine::note_on/off, weights, bend, mod
//! worker ──Corners::encode──▶ CornerSwap (lock-free) ──▶ the engine's next block
//! worker ──LiveEngine (built once)──▶ GUI ──rtrb──▶ callback; a replaced one comes back
//! callback ──voices, CPU load (atomics)──▶ the status line
//! ```
//!
//! The callback allocates, frees, locks and logs nothing: the engine is built (and its
//! buffers sized) on the worker, commands are small `Copy` values in a ring made before
//! the stream starts, an engine it lets go goes back to the GUI thread to be dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use engine::live::LiveEngine;

/// What the GUI tells the live engine; one small value per event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LiveCommand {
    /// MIDI key, velocity 0..=1.
    NoteOn {
        key: u8,
        velocity: f32,
    },
    NoteOff {
        key: u8,
    },
    /// Let every key go (the window lost the keyboard, the corners changed).
    AllOff,
    /// The corners' weights (A, B, C, D) of the pad or the slider.
    Weights([f32; 4]),
    /// Pitch bend, semitones.
    Bend(f32),
    /// The mod wheel, 0..=1 (vibrato depth).
    ModWheel(f32),
    /// The amplitude envelope: attack and release, seconds.
    Envelope {
        attack_secs: f32,
        release_secs: f32,
    },
}

/// The commands a frame may send before the callback takes them.
const COMMANDS: usize = 512;

/// The longest piece of a device buffer the engine renders at once (frames).
pub const SCRATCH_FRAMES: usize = 4096;

/// Read by the GUI, written by the callback.
#[derive(Debug, Default)]
pub struct LiveStats {
    /// An engine is installed in the callback.
    running: AtomicBool,
    voices: AtomicUsize,
    /// `f32` bits of `LiveEngine::cpu_load`.
    load_bits: AtomicU32,
}

impl LiveStats {
    pub fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Voices sounding (held or releasing).
    pub fn voices(&self) -> usize {
        self.voices.load(Ordering::Relaxed)
    }

    /// The engine's time over the blocks' duration (1: just in time).
    pub fn cpu_load(&self) -> f32 {
        f32::from_bits(self.load_bits.load(Ordering::Relaxed))
    }
}

/// The callback's side.
pub struct LiveVoices {
    commands: rtrb::Consumer<LiveCommand>,
    installs: rtrb::Consumer<Box<LiveEngine>>,
    retired: rtrb::Producer<Box<LiveEngine>>,
    engine: Option<Box<LiveEngine>>,
    /// Mono output of the engine, `[SCRATCH_FRAMES]`.
    scratch: Vec<f32>,
    stats: Arc<LiveStats>,
}

/// The GUI's side.
pub struct LiveInput {
    commands: rtrb::Producer<LiveCommand>,
    installs: rtrb::Producer<Box<LiveEngine>>,
    retired: rtrb::Consumer<Box<LiveEngine>>,
    pub stats: Arc<LiveStats>,
}

impl std::fmt::Debug for LiveInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveInput")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// A pair of ends, connected.
pub fn channel() -> (LiveInput, LiveVoices) {
    let (commands, command_rx) = rtrb::RingBuffer::new(COMMANDS);
    let (installs, install_rx) = rtrb::RingBuffer::new(2);
    let (retired_tx, retired) = rtrb::RingBuffer::new(2);
    let stats = Arc::new(LiveStats::default());
    (
        LiveInput {
            commands,
            installs,
            retired,
            stats: Arc::clone(&stats),
        },
        LiveVoices {
            commands: command_rx,
            installs: install_rx,
            retired: retired_tx,
            engine: None,
            scratch: vec![0.0; SCRATCH_FRAMES],
            stats,
        },
    )
}

impl LiveInput {
    /// Queues `command` for the callback; false when the ring is full (it is dropped).
    pub fn send(&mut self, command: LiveCommand) -> bool {
        self.commands.push(command).is_ok()
    }

    /// Hands `engine` to the callback (it replaces the one there at the next buffer);
    /// with the ring full, it is given back.
    pub fn install(&mut self, engine: Box<LiveEngine>) -> Result<(), Box<LiveEngine>> {
        self.collect();
        self.installs
            .push(engine)
            .map_err(|rtrb::PushError::Full(e)| e)
    }

    /// Drops, here, the engines the callback let go.
    pub fn collect(&mut self) {
        while self.retired.pop().is_ok() {}
    }
}

impl LiveVoices {
    /// The commands waiting, taken (tests).
    #[cfg(test)]
    pub fn drain_commands(&mut self) -> Vec<LiveCommand> {
        std::iter::from_fn(|| self.commands.pop().ok()).collect()
    }

    /// Adds the engine's next `out.len()` frames (mono) to `out`, after taking the GUI's
    /// commands and, if one is waiting, a new engine. Allocates, frees and locks nothing.
    pub fn add_to(&mut self, out: &mut [f32]) {
        if self.retired.slots() > 0
            && let Ok(new) = self.installs.pop()
            && let Some(old) = self.engine.replace(new)
        {
            // A slot was free: this cannot fail; were it to, the engine is kept (leaked
            // rather than freed here) until the process ends.
            if let Err(rtrb::PushError::Full(old)) = self.retired.push(old) {
                std::mem::forget(old);
            }
        }
        let Some(engine) = &mut self.engine else {
            // Nothing plays the commands: they are let go.
            while self.commands.pop().is_ok() {}
            return;
        };
        while let Ok(command) = self.commands.pop() {
            match command {
                LiveCommand::NoteOn { key, velocity } => engine.note_on(key, velocity),
                LiveCommand::NoteOff { key } => engine.note_off(key),
                LiveCommand::AllOff => engine.all_notes_off(),
                LiveCommand::Weights(w) => engine.set_weights(w),
                LiveCommand::Bend(semitones) => engine.set_pitch_bend(semitones),
                LiveCommand::ModWheel(value) => engine.set_mod_wheel(value),
                LiveCommand::Envelope {
                    attack_secs,
                    release_secs,
                } => engine.set_envelope(attack_secs, release_secs),
            }
        }
        for piece in out.chunks_mut(SCRATCH_FRAMES) {
            let scratch = &mut self.scratch[..piece.len()];
            engine.process(scratch);
            piece
                .iter_mut()
                .zip(scratch.iter())
                .for_each(|(o, s)| *o += s);
        }
        self.stats.running.store(true, Ordering::Relaxed);
        self.stats
            .voices
            .store(engine.active_voices(), Ordering::Relaxed);
        self.stats
            .load_bits
            .store(engine.cpu_load().to_bits(), Ordering::Relaxed);
    }
}
