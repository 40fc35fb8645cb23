//! The result of a render: its plots, and playing it at other keys (the computer
//! keyboard's row, a MIDI keyboard; a pitched model's keys rendered at their own pitch).

use super::*;

impl TimbrelApp {
    /// Plays the result `semitones` away from its pitch. A pitched model's key plays its
    /// own render (made on the worker the first time the key is asked for, then kept);
    /// until it is there, the nearest note rendered so far plays transposed, and the
    /// status line says so. Other models' keys play the result transposed.
    pub(super) fn play_key(&mut self, semitones: i32) {
        let pitched = self.pitched();
        let Some(r) = &mut self.result else {
            return;
        };
        let target = i32::from(r.pitch) + semitones;
        let native = pitched && semitones != 0 && (21..=108).contains(&target);
        if !native {
            let audio = r.transposed.entry(semitones).or_insert_with(|| {
                engine::synth::pitch_shift(&r.rendered.audio, semitones).unwrap_or_default()
            });
            self.player.play(audio);
            return;
        }
        let key = target as u8;
        if let Some(audio) = r.native.get(&key) {
            self.player.play(audio);
            return;
        }
        if !r.pending.contains_key(&key)
            && let Some(job) = &r.job
        {
            let control = Arc::new(Control::default());
            let mut job = job.clone();
            job.pitch = key;
            job.control = Arc::clone(&control);
            self.worker.send(Job::Key { of: r.id, job });
            r.pending.insert(key, control);
        }
        // The nearest note there is: the result or a key rendered before.
        let (from, audio) = r
            .native
            .iter()
            .map(|(&p, a)| (p, a))
            .chain(std::iter::once((r.pitch, &r.rendered.audio)))
            .min_by_key(|(p, _)| (i32::from(*p) - target).abs())
            .map(|(p, a)| (p, a.clone()))
            .unwrap_or((r.pitch, Vec::new()));
        let shift = target - i32::from(from);
        let transposed = if from == r.pitch {
            r.transposed
                .entry(shift)
                .or_insert_with(|| engine::synth::pitch_shift(&audio, shift).unwrap_or_default())
                .clone()
        } else {
            engine::synth::pitch_shift(&audio, shift).unwrap_or_default()
        };
        self.player.play(&transposed);
        self.notice = Some(format!(
            "{}: playing {} transposed until its own render is ready",
            engine::pitch::midi_name(key),
            engine::pitch::midi_name(from)
        ));
    }

    /// The keys rendered at their own pitch for the current result (sorted).
    #[cfg(test)]
    pub fn native_keys(&self) -> Vec<u8> {
        let mut keys: Vec<u8> = self
            .result
            .as_ref()
            .map(|r| r.native.keys().copied().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    /// The MIDI note playing, if any.
    pub fn midi_note(&self) -> Option<u8> {
        self.midi_note
    }

    /// The transpositions of the result made so far (sorted).
    #[cfg(test)]
    pub fn transposed_cached(&self) -> Vec<i32> {
        let mut keys: Vec<i32> = self
            .result
            .as_ref()
            .map(|r| r.transposed.keys().copied().collect())
            .unwrap_or_default();
        keys.sort_unstable();
        keys
    }

    /// With a pitched student, MIDI plays the live engine (`live_keys.rs`). Otherwise a
    /// MIDI note-on plays the result at its note (as the computer keyboard's row does):
    /// a pitched model's keys across the piano's range (each rendered at its own pitch),
    /// other models' within the engine's shift range; its note-off stops it.
    pub(super) fn midi_notes(&mut self, commands: &mut Vec<Command>) {
        let pitched = self.pitched();
        while let Ok(event) = self.midi.events.try_recv() {
            if self.live_keys() {
                self.live_midi(event);
                continue;
            }
            match event {
                MidiEvent::NoteOn { note, .. } => {
                    let Some(r) = &self.result else {
                        self.notice = Some("render something to play it from MIDI".into());
                        continue;
                    };
                    let semitones = i32::from(note) - i32::from(r.pitch);
                    if pitched && !engine::synth::PITCH_RANGE.contains(&f32::from(note)) {
                        self.notice = Some(format!(
                            "MIDI {} is outside the model's range (A0 to C8)",
                            midi_name(note)
                        ));
                        continue;
                    }
                    if !pitched && semitones.abs() > engine::synth::MAX_SHIFT_SEMITONES {
                        self.notice = Some(format!(
                            "MIDI {} is more than two octaves from the render's {}",
                            midi_name(note),
                            midi_name(r.pitch)
                        ));
                        continue;
                    }
                    commands.push(Command::PlayTransposed(semitones));
                    self.midi_note = Some(note);
                }
                MidiEvent::NoteOff { note } => {
                    if self.midi_note == Some(note) {
                        self.midi_note = None;
                        commands.push(Command::Stop);
                    }
                }
                MidiEvent::AllNotesOff => {
                    self.midi_note = None;
                    commands.push(Command::Stop);
                }
                // A rendered note has no bend or vibrato to change.
                MidiEvent::PitchBend { .. } | MidiEvent::ModWheel { .. } => {}
            }
        }
    }

    pub(super) fn view_of(&self, rendered: Rendered) -> ResultView {
        let hop = rendered.hop;
        ResultView {
            waveform: plots::waveform(&rendered.audio, 0.0),
            source_waveforms: rendered
                .sources
                .iter()
                .enumerate()
                .map(|(i, s)| plots::waveform(&s.samples[..s.length], 2.0 * (i + 1) as f64))
                .collect(),
            embedding: plots::embedding(&rendered.blend, hop),
            spectrogram: plots::spectrogram(&rendered.audio),
            pitch: self.state.pitch,
            rendered,
            transposed: HashMap::new(),
            id: 0,
            job: None,
            native: HashMap::new(),
            pending: HashMap::new(),
        }
    }
}
