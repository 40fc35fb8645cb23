//! MIDI input (midir): a keyboard's notes, pitch bend and mod wheel; they play the live
//! engine (a pitched student) or the rendered sound transposed.
//! midir calls back on its own thread; the notes go to the GUI through a channel, and the
//! GUI plays them as it plays the computer keyboard's.

use std::sync::mpsc::{Receiver, channel};

/// What the app does with MIDI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MidiEvent {
    NoteOn {
        note: u8,
        velocity: u8,
    },
    NoteOff {
        note: u8,
    },
    /// -8192..=8191 (0: centred).
    PitchBend {
        value: i16,
    },
    /// Controller 1, 0..=127.
    ModWheel {
        value: u8,
    },
    /// Controller 123 (all notes off) or 120 (all sound off).
    AllNotesOff,
}

/// A channel voice message as an event (any channel): notes, pitch bend, the mod wheel,
/// all notes off; everything else is `None`. A note-on with velocity 0 is a note-off, as
/// the MIDI specification says.
pub fn parse(message: &[u8]) -> Option<MidiEvent> {
    let (&status, data) = message.split_first()?;
    match (status & 0xF0, data) {
        (0x90, &[note, 0, ..]) | (0x80, &[note, _, ..]) if note < 128 => {
            Some(MidiEvent::NoteOff { note })
        }
        (0x90, &[note, velocity, ..]) if note < 128 && velocity < 128 => {
            Some(MidiEvent::NoteOn { note, velocity })
        }
        (0xE0, &[lsb, msb, ..]) if lsb < 128 && msb < 128 => Some(MidiEvent::PitchBend {
            value: ((i16::from(msb) << 7) | i16::from(lsb)) - 8192,
        }),
        (0xB0, &[1, value, ..]) if value < 128 => Some(MidiEvent::ModWheel { value }),
        (0xB0, &[120 | 123, _, ..]) => Some(MidiEvent::AllNotesOff),
        _ => None,
    }
}

/// The MIDI input connection, or why there is none.
pub struct Midi {
    /// Held, not read: the connection closes when it is dropped.
    _connection: Option<midir::MidiInputConnection<()>>,
    pub events: Receiver<MidiEvent>,
    /// The connected port's name.
    pub port: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for Midi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Midi")
            .field("port", &self.port)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Midi {
    /// No MIDI input (tests, or when asked); `reason` is what the status line says.
    pub fn none(reason: &str) -> Self {
        let (_, events) = channel();
        Self {
            _connection: None,
            events,
            port: None,
            error: Some(reason.to_string()),
        }
    }

    /// A MIDI input fed by the returned sender instead of a device (tests).
    #[cfg(test)]
    pub fn fake() -> (std::sync::mpsc::Sender<MidiEvent>, Self) {
        let (sender, events) = channel();
        let midi = Self {
            _connection: None,
            events,
            port: Some("test".into()),
            error: None,
        };
        (sender, midi)
    }

    /// Connects to the first input port that is not ALSA's "Midi Through" (where nothing
    /// plays unless routed there); `wake` is called after each note so the GUI drains it.
    pub fn open(wake: impl Fn() + Send + 'static) -> Self {
        match Self::try_open(wake) {
            Ok(midi) => midi,
            Err(reason) => Self::none(&format!("no MIDI input ({reason})")),
        }
    }

    fn try_open(wake: impl Fn() + Send + 'static) -> Result<Self, String> {
        let input = midir::MidiInput::new("timbrel").map_err(|e| e.to_string())?;
        let ports = input.ports();
        let (port, name) = ports
            .iter()
            .filter_map(|p| input.port_name(p).ok().map(|name| (p, name)))
            .find(|(_, name)| !name.contains("Midi Through"))
            .ok_or_else(|| "no MIDI device connected".to_string())?;
        let (sender, events) = channel();
        let connection = input
            .connect(
                port,
                "timbrel-in",
                move |_, message, ()| {
                    if let Some(event) = parse(message)
                        && sender.send(event).is_ok()
                    {
                        wake();
                    }
                },
                (),
            )
            .map_err(|e| e.to_string())?;
        Ok(Self {
            _connection: Some(connection),
            events,
            port: Some(name),
            error: None,
        })
    }

    /// One line for the status bar.
    pub fn describe(&self) -> String {
        match (&self.port, &self.error) {
            (Some(port), _) => format!("MIDI: {port}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "no MIDI input".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_messages_on_any_channel() {
        assert_eq!(
            parse(&[0x90, 60, 100]),
            Some(MidiEvent::NoteOn {
                note: 60,
                velocity: 100
            })
        );
        assert_eq!(
            parse(&[0x93, 61, 1]),
            Some(MidiEvent::NoteOn {
                note: 61,
                velocity: 1
            })
        );
        assert_eq!(
            parse(&[0x80, 60, 64]),
            Some(MidiEvent::NoteOff { note: 60 })
        );
        assert_eq!(parse(&[0x9F, 72, 0]), Some(MidiEvent::NoteOff { note: 72 }));
        assert_eq!(
            parse(&[0xE0, 0, 0x40]),
            Some(MidiEvent::PitchBend { value: 0 })
        );
        assert_eq!(
            parse(&[0xE2, 0x7F, 0x7F]),
            Some(MidiEvent::PitchBend { value: 8191 })
        );
        assert_eq!(
            parse(&[0xE0, 0, 0]),
            Some(MidiEvent::PitchBend { value: -8192 })
        );
        assert_eq!(
            parse(&[0xB1, 1, 64]),
            Some(MidiEvent::ModWheel { value: 64 })
        );
        assert_eq!(parse(&[0xB0, 123, 0]), Some(MidiEvent::AllNotesOff));
        // Not notes, or malformed: ignored.
        for message in [
            &[0xB0, 64, 127][..],
            &[0xE0, 0x80, 0],
            &[0xB0, 1, 200],
            &[0xF8],
            &[0x90, 60],
            &[0x90],
            &[],
            &[0x90, 200, 10],
        ] {
            assert_eq!(parse(message), None, "{message:?}");
        }
    }
}
