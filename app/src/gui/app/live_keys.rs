//! Keys played live: with a pitched student, MIDI and the computer keyboard's row play
//! the live engine in the audio callback (no render per key); the pad's weights follow
//! every move of the puck; the worker encodes the corners whenever they change.

use super::*;
use crate::gui::live::LiveCommand;

/// A pitch-bend message's full swing, semitones either way (the General MIDI default).
pub const BEND_RANGE_SEMITONES: f32 = 2.0;

/// The computer keyboard's row as live keys going down and up (repeats ignored); every
/// key let go when the window loses the keyboard (their releases would never come).
pub(super) fn live_key_events(i: &egui::InputState, commands: &mut Vec<Command>) {
    if i.events.contains(&egui::Event::WindowFocused(false)) {
        commands.push(Command::LiveAllOff);
    }
    if i.modifiers.command {
        return;
    }
    for event in &i.events {
        if let egui::Event::Key {
            key,
            pressed,
            repeat: false,
            ..
        } = event
            && let Some(&(_, semitones)) = KEYS.iter().find(|(k, _)| k == key)
        {
            commands.push(Command::LiveKey {
                semitones,
                down: *pressed,
            });
        }
    }
}

impl TimbrelApp {
    /// Whether keys play live: the model is a pitched Parallel WaveNet student.
    pub fn live_keys(&self) -> bool {
        self.pitched() && self.parallel()
    }

    /// The corners the live engine plays (A, B, C, D), a missing one standing in for by
    /// the first there is, so the weights keep their places; `None` with no corner.
    fn live_corners(&self) -> Option<Vec<PathBuf>> {
        let first = self.state.corners.iter().flatten().next()?;
        Some(
            self.state
                .corners
                .iter()
                .map(|c| c.clone().unwrap_or_else(|| first.clone()))
                .collect(),
        )
    }

    /// The corners' weights of the pad (or the slider) now.
    fn live_weights(&self) -> [f32; 4] {
        match self.state.mode {
            PadMode::Slider => {
                let t = self.state.mix.clamp(0.0, 1.0);
                [1.0 - t, t, 0.0, 0.0]
            }
            PadMode::Xy => xy_weights(self.state.xy[0], self.state.xy[1], self.state.xy_mode()),
        }
    }

    /// Once a frame: asks the worker for the engine or new corners when they changed
    /// (with an output to play them), sends the weights when they moved.
    pub(super) fn live_sync(&mut self) {
        if !self.live_keys() {
            return;
        }
        let weights = self.live_weights();
        if self.live.weights != Some(weights) && self.player.live(LiveCommand::Weights(weights)) {
            self.live.weights = Some(weights);
        }
        let envelope = (self.state.live_attack_secs, self.state.live_release_secs);
        if self.live.envelope != Some(envelope)
            && self.player.live(LiveCommand::Envelope {
                attack_secs: envelope.0,
                release_secs: envelope.1,
            })
        {
            self.live.envelope = Some(envelope);
        }
        if !self.player.available() || !self.scans.values().all(Option::is_some) {
            return;
        }
        let Some(corners) = self.live_corners() else {
            return;
        };
        if self.live.corners.as_ref() != Some(&corners) {
            self.live.corners = Some(corners.clone());
            self.live.error = None;
            self.worker.send(Job::Live {
                corners,
                output_rate_hz: self.player.rate_hz,
            });
        }
    }

    /// A key of the computer keyboard's row went down (`down`) or up: a chromatic octave
    /// from the pitch set on the piano.
    pub(super) fn live_key(&mut self, semitones: i32, down: bool) {
        if down {
            let Ok(key) = u8::try_from(i32::from(self.state.pitch) + semitones) else {
                return;
            };
            let velocity = f32::from(self.state.velocity) / 127.0;
            if let Some(old) = self.live.held.insert(semitones, key) {
                self.player.live(LiveCommand::NoteOff { key: old });
            }
            self.player.live(LiveCommand::NoteOn { key, velocity });
            self.live.sent_at = Some(Instant::now());
        } else if let Some(key) = self.live.held.remove(&semitones) {
            self.player.live(LiveCommand::NoteOff { key });
        }
    }

    /// Lets every live key go.
    pub(super) fn live_all_off(&mut self) {
        self.live.held.clear();
        self.player.live(LiveCommand::AllOff);
    }

    /// A MIDI event for the live engine.
    pub(super) fn live_midi(&mut self, event: MidiEvent) {
        let command = match event {
            MidiEvent::NoteOn { note, velocity } => {
                self.midi_note = Some(note);
                LiveCommand::NoteOn {
                    key: note,
                    velocity: f32::from(velocity) / 127.0,
                }
            }
            MidiEvent::NoteOff { note } => {
                if self.midi_note == Some(note) {
                    self.midi_note = None;
                }
                LiveCommand::NoteOff { key: note }
            }
            MidiEvent::PitchBend { value } => {
                LiveCommand::Bend(f32::from(value) / 8192.0 * BEND_RANGE_SEMITONES)
            }
            MidiEvent::ModWheel { value } => LiveCommand::ModWheel(f32::from(value) / 127.0),
            MidiEvent::AllNotesOff => {
                self.midi_note = None;
                LiveCommand::AllOff
            }
        };
        self.player.live(command);
        self.live.sent_at = Some(Instant::now());
    }

    /// Whether live voices sound, or a key was just sent (the status line follows them).
    pub(super) fn live_sounding(&self) -> bool {
        self.live_keys()
            && (self.player.live_stats().voices() > 0
                || self
                    .live
                    .sent_at
                    .is_some_and(|t| t.elapsed().as_secs_f32() < 0.5))
    }

    /// The status line's word on the live engine (`None`: keys do not play live).
    pub(super) fn live_status(&self) -> Option<String> {
        if !self.live_keys() {
            return None;
        }
        let stats = self.player.live_stats();
        Some(if !self.player.available() {
            "keys play live once there is an audio output".into()
        } else if self.state.corners.iter().all(Option::is_none) {
            "keys play live once a corner has an instrument".into()
        } else if let Some(e) = &self.live.error {
            format!("live engine: {e}")
        } else if stats.running() {
            let voices = stats.voices();
            format!(
                "live: {voices} voice{}, CPU {:.0} %",
                if voices == 1 { "" } else { "s" },
                100.0 * stats.cpu_load()
            )
        } else {
            "live engine: encoding the corners…".into()
        })
    }
}

impl LiveKeys {
    /// Sends the weights and the envelope again at the next frame.
    pub(super) fn forget_sent(&mut self) {
        self.weights = None;
        self.envelope = None;
    }
}

/// What the app keeps of the live engine.
#[derive(Debug, Default)]
pub struct LiveKeys {
    /// The corners last sent to the worker.
    corners: Option<Vec<PathBuf>>,
    /// The weights last sent to the engine.
    weights: Option<[f32; 4]>,
    /// The envelope last sent (attack, release, seconds).
    envelope: Option<(f32, f32)>,
    /// The computer keyboard's keys down: semitones from the pitch → the key started.
    held: HashMap<i32, u8>,
    /// Why the engine is not playing.
    pub error: Option<String>,
    /// When a key was last sent.
    sent_at: Option<Instant>,
}
