//! Keys that render: a MIDI keyboard plays the result transposed, a pitched model's keys
//! get renders of their own, and the piano keys and the note length set the render.

use super::*;

#[test]
fn a_midi_keyboard_plays_the_result_transposed() {
    let s = Setup::new();
    let mut h = s.harness();
    let (keys, midi) = crate::gui::midi::Midi::fake();
    h.state_mut().midi = midi;
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    // Nothing rendered yet: a note says so instead of playing.
    let on = |note| crate::gui::midi::MidiEvent::NoteOn { note, velocity: 90 };
    keys.send(on(60)).unwrap();
    h.run_steps(2);
    assert!(h.state().notice.as_deref().unwrap_or("").contains("render"));

    render_the_saw_pack(&mut h, &s);
    assert_eq!(h.state().result.as_ref().unwrap().pitch, 60);

    // D4 plays the C4 render two semitones up until its note-off.
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), Some(62));
    assert_eq!(h.state().transposed_cached(), vec![2]);
    keys.send(crate::gui::midi::MidiEvent::NoteOff { note: 61 })
        .unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), Some(62), "another key's release");
    keys.send(crate::gui::midi::MidiEvent::NoteOff { note: 62 })
        .unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), None);
    // Three octaves up is past the engine's shift range: not played, and said so.
    keys.send(on(96)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().midi_note(), None);
    assert!(
        h.state()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("two octaves")
    );
    assert!(h.state().error.is_none());
}

#[test]
fn a_pitched_models_keys_get_renders_of_their_own() {
    let s = Setup::with_harmonics(4);
    let mut h = s.harness();
    let (keys, midi) = crate::gui::midi::Midi::fake();
    h.state_mut().midi = midi;
    wait(&mut h, "the model", |a| a.idle() && a.model_ready());
    render_the_saw_pack(&mut h, &s);
    assert_eq!(h.state().result.as_ref().unwrap().pitch, 60);

    // D4: its own render is asked for; meanwhile C4's plays two semitones up.
    let on = |note| crate::gui::midi::MidiEvent::NoteOn { note, velocity: 90 };
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().transposed_cached(), vec![2]);
    let notice = h.state().notice.clone().unwrap_or_default();
    assert!(notice.contains("D4: playing C4 transposed"), "{notice}");
    wait(&mut h, "D4's own render", |a| a.native_keys() == vec![62]);
    assert!(h.state().error.is_none(), "{:?}", h.state().error);
    assert!(
        h.state()
            .notice
            .as_deref()
            .unwrap_or("")
            .contains("D4 rendered at its own pitch")
    );
    // Pressed again, D4 plays its own render: nothing more is transposed.
    keys.send(crate::gui::midi::MidiEvent::NoteOff { note: 62 })
        .unwrap();
    keys.send(on(62)).unwrap();
    h.run_steps(2);
    assert_eq!(h.state().transposed_cached(), vec![2]);
    // E4 meanwhile plays the nearest note rendered so far, D4, a tone up.
    keys.send(on(64)).unwrap();
    h.run_steps(2);
    let notice = h.state().notice.clone().unwrap_or_default();
    assert!(notice.contains("E4: playing D4 transposed"), "{notice}");
    wait(&mut h, "E4's own render", |a| {
        a.native_keys() == vec![62, 64]
    });
}

#[test]
fn the_piano_keys_and_the_note_length_set_the_render() {
    let s = Setup::new();
    let mut h = s.harness();
    wait(&mut h, "the model and the demo packs", |a| {
        a.idle() && a.model_ready()
    });
    // Pitch C4: the keyboard shows C4 to C6, black keys between the white ones.
    let c4 = h.get_by_label("key C4").rect();
    let cs4 = h.get_by_label("key C#4").rect();
    let d4 = h.get_by_label("key D4").rect();
    assert!(cs4.center().x > c4.center().x && cs4.center().x < d4.center().x);
    assert!(cs4.height() < c4.height(), "black keys are shorter");
    h.get_by_label("key C#4").click();
    h.run_steps(2);
    assert_eq!(h.state().state.pitch, 61);
    // The lower half of a white key under a black one is the white key.
    let low_d4 = egui::pos2(d4.center().x, d4.bottom() - 4.0);
    h.drag_at(low_d4);
    h.run_steps(1);
    h.drop_at(low_d4);
    h.run_steps(2);
    assert_eq!(h.state().state.pitch, 62);
    assert!(h.get_all_by_label("Length").next().is_some());

    // A 20 s note from the 0.25 s saw notes (long enough to see it rendering).
    let pack = s.path("mypack");
    h.state_mut().state.mode = PadMode::Slider;
    h.state_mut().state.corners[0] = Some(pack.clone());
    h.state_mut().state.corners[1] = Some(pack);
    h.state_mut().state.seconds = 20.0;
    h.state_mut().state.pitch = 60;
    h.run_steps(2);
    h.get_by_label("Render").click();
    h.run_steps(2);
    assert!(h.state().rendering());
    // The progress shows where the result will be.
    h.get_by_label("Rendering");
    wait(&mut h, "the render", |a| !a.rendering());
    let app = h.state();
    assert!(app.error.is_none(), "{:?}", app.error);
    assert_eq!(app.result.as_ref().unwrap().rendered.audio.len(), 320_000);
}
