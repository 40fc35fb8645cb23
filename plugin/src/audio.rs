//! The audio thread: note and parameter events become [`LiveEngine`] calls, and the engine
//! renders into the host's buffer. Nothing here allocates, frees, locks, logs or does I/O:
//! the engine arrives built through a lock-free ring and leaves with the processor, which
//! the host drops on the main thread (`deactivate`).

use std::sync::atomic::Ordering;

use clack_plugin::events::spaces::CoreEventSpace;
use clack_plugin::prelude::*;

use engine::live::LiveEngine;

use crate::loader::Job;
use crate::params::{Param, Snapshot, Spec};
use crate::{MainThread, Shared};

/// Pitch-bend range of the MIDI dialect, in semitones each way.
pub const BEND_SEMITONES: f32 = 2.0;

pub struct AudioProcessor<'a> {
    host: HostAudioProcessorHandle<'a>,
    shared: &'a Shared,
    /// Where the loader sends the engine built for this activation.
    engines: rtrb::Consumer<Box<LiveEngine>>,
    live: Option<Box<LiveEngine>>,
    /// The parameter generation last given to the engine (`None`: none yet).
    applied: Option<u32>,
    last: Option<Snapshot>,
    /// Whether the engine played last block (it is told to let go of its notes when
    /// it may no longer).
    played: bool,
    /// The CPU guard's setting last given to the engine.
    guard: Option<bool>,
}

impl std::fmt::Debug for AudioProcessor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioProcessor")
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl<'a> PluginAudioProcessor<'a, Shared, MainThread<'a>> for AudioProcessor<'a> {
    fn activate(
        host: HostAudioProcessorHandle<'a>,
        main_thread: &MainThread<'a>,
        shared: &'a Shared,
        audio_config: PluginAudioConfiguration,
    ) -> Result<Self, PluginError> {
        let (producer, engines) = rtrb::RingBuffer::new(1);
        // A host's rate is a whole number of Hz; anything else is refused by the engine
        // as a rate it cannot serve (silence, no latency to compensate).
        let rate_hz = audio_config.sample_rate.round().clamp(0.0, u32::MAX as f64) as u32;
        let max_block_frames = audio_config.max_frames_count as usize;
        let latency = engine::live::latency_frames(rate_hz, max_block_frames).unwrap_or(0);
        shared.latency_frames.store(
            u32::try_from(latency).unwrap_or(u32::MAX),
            Ordering::Release,
        );
        main_thread.start_corners();
        main_thread.loader.send(Job::Activate {
            rate_hz,
            max_block_frames,
            engines: producer,
        });
        main_thread.log_reports();
        Ok(Self {
            host,
            shared,
            engines,
            live: None,
            applied: None,
            last: None,
            played: false,
            guard: None,
        })
    }

    fn deactivate(self, main_thread: &MainThread<'a>) {
        main_thread.loader.send(Job::Deactivate);
        main_thread.log_reports();
    }

    fn process(
        &mut self,
        _process: Process,
        mut audio: Audio,
        events: Events,
    ) -> Result<ProcessStatus, PluginError> {
        if self.live.is_none()
            && let Ok(live) = self.engines.pop()
        {
            self.live = Some(live);
            self.applied = None;
            self.last = None;
            self.guard = None;
        }
        if self.shared.status.take_news() {
            self.host.shared().request_callback();
        }

        let mut port = audio
            .output_port(0)
            .ok_or(PluginError::Message("no output port"))?;
        let mut channels = port
            .channels()?
            .into_f32()
            .ok_or(PluginError::Message("expected f32 output"))?;
        let playable = self.shared.status.playable();
        if let Some(live) = self.live.as_deref_mut() {
            if self.played && !playable {
                live.all_notes_off();
            }
            let guard = !self.shared.offline.load(Ordering::Acquire);
            if self.guard != Some(guard) {
                live.set_cpu_guard(guard);
                self.guard = Some(guard);
            }
        }
        self.played = playable && self.live.is_some();
        {
            let out = channels
                .channel_mut(0)
                .ok_or(PluginError::Message("expected at least one output channel"))?;
            for batch in events.input.batch() {
                for event in batch.events() {
                    self.handle(event);
                }
                let out = &mut out[batch.sample_bounds()];
                if playable && self.live.is_some() {
                    self.apply_params();
                    if let Some(live) = self.live.as_deref_mut() {
                        live.process(out);
                    }
                } else {
                    out.fill(0.0);
                }
            }
        }
        if channels.channel_count() > 1 {
            let (first, others) = channels.split_at_mut(1);
            if let Some(first) = first.channel(0) {
                for other in others {
                    other.copy_from_slice(first);
                }
            }
        }
        match &self.live {
            Some(live) if playable && live.active_voices() == 0 => Ok(ProcessStatus::Sleep),
            _ => Ok(ProcessStatus::Continue),
        }
    }

    fn reset(&mut self) {
        if let Some(live) = self.live.as_deref_mut() {
            live.all_notes_off();
        }
    }

    fn stop_processing(&mut self) {
        self.reset();
    }
}

impl AudioProcessor<'_> {
    /// Gives the engine the parameters, if any moved since it last had them.
    fn apply_params(&mut self) {
        let generation = self.shared.values.generation();
        if self.applied == Some(generation) {
            return;
        }
        self.applied = Some(generation);
        let now = self.shared.values.snapshot();
        let Some(live) = self.live.as_deref_mut() else {
            return;
        };
        let last = self.last;
        if last.map(|l| l.weights) != Some(now.weights) {
            live.set_weights(now.weights);
        }
        if last.map(|l| (l.attack_secs, l.release_secs))
            != Some((now.attack_secs, now.release_secs))
        {
            live.set_envelope(now.attack_secs, now.release_secs);
        }
        if last.map(|l| l.gain) != Some(now.gain) {
            live.set_gain(now.gain);
        }
        self.last = Some(now);
    }

    pub(crate) fn handle(&mut self, event: &UnknownEvent) {
        match event.as_core_event() {
            Some(CoreEventSpace::ParamValue(e)) => {
                if let Some(id) = e.param_id()
                    && let Some((index, spec)) = Spec::of_id(id.get())
                {
                    self.shared.values.set(index, e.value() as f32);
                    if let Param::Corner(_) = spec.param {
                        // The main thread sends the new corners to the loader.
                        self.host.shared().request_callback();
                    }
                }
            }
            Some(CoreEventSpace::NoteOn(e)) => {
                if let Some(key) = key_of(e.pckn().key.into_specific()) {
                    self.note_on(key, e.velocity() as f32);
                }
            }
            Some(CoreEventSpace::NoteOff(e)) => self.note_off(e.pckn().key.into_specific()),
            Some(CoreEventSpace::NoteChoke(e)) => self.note_off(e.pckn().key.into_specific()),
            Some(CoreEventSpace::Midi(e)) => self.midi(e.data()),
            _ => {}
        }
    }

    fn note_on(&mut self, key: u8, velocity: f32) {
        // A note played while silent is dropped, not held to sound later.
        if !self.shared.status.playable() {
            return;
        }
        // Parameters first, so a note starts with the current envelope and corners.
        self.apply_params();
        if let Some(live) = self.live.as_deref_mut() {
            live.note_on(key, velocity.clamp(0.0, 1.0));
        }
    }

    /// A note-off for `key`, or for every key (a wildcard).
    fn note_off(&mut self, key: Option<u16>) {
        let Some(live) = self.live.as_deref_mut() else {
            return;
        };
        match key {
            Some(k) => {
                if let Some(k) = key_of(Some(k)) {
                    live.note_off(k);
                }
            }
            None => live.all_notes_off(),
        }
    }

    /// The MIDI 1.0 dialect: notes, pitch bend, the mod wheel, all notes off.
    fn midi(&mut self, data: [u8; 3]) {
        let [status, a, b] = data;
        match status & 0xF0 {
            0x90 if b > 0 => self.note_on(a & 0x7F, f32::from(b & 0x7F) / 127.0),
            0x80 | 0x90 => self.note_off(Some(u16::from(a & 0x7F))),
            0xE0 => {
                let bend = (i32::from(b & 0x7F) << 7 | i32::from(a & 0x7F)) - 8192;
                if let Some(live) = self.live.as_deref_mut() {
                    live.set_pitch_bend(bend as f32 / 8192.0 * BEND_SEMITONES);
                }
            }
            0xB0 => match a {
                1 => {
                    if let Some(live) = self.live.as_deref_mut() {
                        live.set_mod_wheel(f32::from(b & 0x7F) / 127.0);
                    }
                }
                120 | 123 => self.note_off(None),
                _ => {}
            },
            _ => {}
        }
    }
}

fn key_of(key: Option<u16>) -> Option<u8> {
    key.and_then(|k| u8::try_from(k).ok()).filter(|k| *k < 128)
}
