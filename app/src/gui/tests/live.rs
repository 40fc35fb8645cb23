//! Keys played live, through the real app: MIDI and the computer keyboard reach the live
//! engine's command ring, and no key is rendered.

use super::*;

#[test]
fn with_the_default_student_midi_plays_the_live_engine_without_rendering_keys() {
    let s = Setup::new();
    let mut h = s.harness_on(ModelSource::Default);
    let (keys, midi) = crate::gui::midi::Midi::fake();
    h.state_mut().midi = midi;
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    assert!(h.state().live_keys(), "a pitched student plays keys live");
    // No sound card here: the status line says keys wait for one.
    assert!(
        h.query_by_label_contains("keys play live once there is an audio output")
            .is_some()
    );
    let before = h.state().renders_started();
    let _ = h.state_mut().player_mut().take_live_commands();

    use crate::gui::live::LiveCommand;
    use crate::gui::midi::MidiEvent;
    for event in [
        MidiEvent::NoteOn {
            note: 62,
            velocity: 127,
        },
        MidiEvent::PitchBend { value: 4096 },
        MidiEvent::ModWheel { value: 127 },
        MidiEvent::NoteOff { note: 62 },
    ] {
        keys.send(event).unwrap();
    }
    h.run_steps(2);
    assert_eq!(
        h.state_mut().player_mut().take_live_commands(),
        vec![
            LiveCommand::NoteOn {
                key: 62,
                velocity: 1.0
            },
            LiveCommand::Bend(1.0),
            LiveCommand::ModWheel(1.0),
            LiveCommand::NoteOff { key: 62 },
        ]
    );
    // The key was not rendered: no job queued for it, no result needed.
    assert_eq!(h.state().renders_started(), before);
    assert!(h.state().native_keys().is_empty());
    assert!(h.state().result.is_none());
    assert!(h.state().error.is_none(), "{:?}", h.state().error);

    // The computer keyboard's row: a chromatic octave from the pitch set (C4 here),
    // key down and key up.
    h.state_mut().state.pitch = 60;
    h.key_down(egui::Key::E);
    h.run_steps(1);
    h.key_up(egui::Key::E);
    h.run_steps(1);
    let velocity = f32::from(h.state().state.velocity) / 127.0;
    assert_eq!(
        h.state_mut().player_mut().take_live_commands(),
        vec![
            LiveCommand::NoteOn { key: 63, velocity },
            LiveCommand::NoteOff { key: 63 },
        ]
    );
    // A key held when the window loses the keyboard is let go.
    h.key_down(egui::Key::A);
    h.run_steps(1);
    h.event(egui::Event::WindowFocused(false));
    h.run_steps(1);
    assert_eq!(
        h.state_mut().player_mut().take_live_commands(),
        vec![
            LiveCommand::NoteOn { key: 60, velocity },
            LiveCommand::AllOff
        ]
    );

    // The puck: every move sends the engine the corners' weights of where it is.
    h.state_mut().state.mode = PadMode::Xy;
    h.state_mut().state.xy = [1.0, 0.0];
    h.run_steps(1);
    let commands = h.state_mut().player_mut().take_live_commands();
    let LiveCommand::Weights(w) = commands.last().copied().unwrap() else {
        panic!("{commands:?}")
    };
    let want = engine::synth::xy_weights(1.0, 0.0, h.state().state.xy_mode());
    assert_eq!(w, want);
    // The key release slider: the engine's envelope.
    h.state_mut().state.live_release_secs = 1.5;
    h.run_steps(1);
    assert_eq!(
        h.state_mut().player_mut().take_live_commands(),
        vec![LiveCommand::Envelope {
            attack_secs: h.state().state.live_attack_secs,
            release_secs: 1.5
        }]
    );
    assert_eq!(h.state().renders_started(), before);
}
