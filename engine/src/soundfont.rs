//! NSynth-style notes rendered from a SoundFont (rustysynth): note on for 3 s, off, 1 s of
//! release, 4 s at 16 kHz mono, written in NSynth's layout.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use rustysynth::{SoundFont, Synthesizer, SynthesizerSettings};

use crate::audio::{SAMPLE_RATE_HZ, SILENT_PEAK, peak};
use crate::error::{Error, Result};
use crate::fsutil::Overwrite;
use crate::nsynth::{DatasetWriter, Example, FAMILIES, NOTE_SAMPLES};

/// Held for 3 s, then released for 1 s, as NSynth's notes.
pub const NOTE_ON_SAMPLES: usize = 3 * SAMPLE_RATE_HZ as usize;

/// The fixed gain applied to every render (+6 dB). Measured through rustysynth with
/// FluidR3_GM at velocity 127, pitches 21–108: the loudest note of each program 0–119
/// peaks between 0.08 and 0.48 (median 0.20). A gain of 2 brings the loudest to 0.95 and
/// the typical to 0.4, using μ-law's range without clipping. One gain for all notes keeps
/// velocity meaning loudness (no per-note normalisation); a render of another SoundFont
/// that would still pass full scale is clipped and counted.
pub const GAIN: f32 = 2.0;

/// `instrument_source` of every rendered note: "synthetic".
pub const SOURCE_SYNTHETIC: u8 = 2;

/// General MIDI programs 120–127 are sound effects (breath noise, seashore, helicopter,
/// gunshot...), not instrument notes; they are left out of the default programs.
pub const DEFAULT_PROGRAMS: std::ops::RangeInclusive<u8> = 0..=119;

/// The NSynth family (index into [`FAMILIES`]) of a General MIDI program (0-based).
///
/// GM's groups of eight map as: piano → keyboard, chromatic percussion → mallet, organ →
/// organ, guitar → guitar, bass → bass, strings → string (timpani → mallet), ensemble →
/// string (choir and voices → vocal, orchestra hit → brass), brass → brass, reed → reed,
/// pipe → flute, synth lead, pad and effects → synth_lead (NSynth has no pad family),
/// ethnic → by how each is played (sitar, banjo, shamisen, koto → guitar; kalimba →
/// mallet; bagpipe, shanai → reed; fiddle → string), percussive → mallet, sound effects →
/// synth_lead.
pub fn gm_family(program: u8) -> u8 {
    let family = match program {
        0..=7 => "keyboard",
        8..=15 => "mallet",
        16..=23 => "organ",
        24..=31 => "guitar",
        32..=39 => "bass",
        47 => "mallet",
        40..=51 => "string",
        52..=54 => "vocal",
        55..=63 => "brass",
        64..=71 => "reed",
        72..=79 => "flute",
        80..=103 => "synth_lead",
        104..=107 => "guitar",
        108 => "mallet",
        109 | 111 => "reed",
        110 => "string",
        112..=119 => "mallet",
        _ => "synth_lead",
    };
    FAMILIES.iter().position(|f| *f == family).unwrap_or(0) as u8
}

/// NSynth's percussive family, for drum kits.
const MALLET: u8 = 5;

/// What to render.
#[derive(Debug, Clone)]
pub struct RenderOptions {
    /// General MIDI programs, 0-based (with `drum_kits`: the kits of bank 128).
    pub programs: Vec<u8>,
    /// Play the programs as drum kits (General MIDI's percussion channel, bank 128): each
    /// key is another drum, so the notes are marked unpitched (family mallet, the
    /// percussive one NSynth has).
    pub drum_kits: bool,
    /// MIDI pitches.
    pub pitches: Vec<u8>,
    /// MIDI velocities (1..=127).
    pub velocities: Vec<u8>,
    /// Render only this many notes of the program × pitch × velocity grid, drawn at random
    /// with `seed` (all of them when `None`).
    pub sample: Option<usize>,
    pub seed: u64,
    pub overwrite: Overwrite,
}

/// What a render did.
#[derive(Debug, Clone)]
pub struct RenderSummary {
    pub written: usize,
    /// Notes outside an instrument's range: the SoundFont made no sound.
    pub skipped_silent: usize,
    /// Notes whose peak passed full scale after [`GAIN`] and were clipped.
    pub clipped: usize,
    pub examples_path: PathBuf,
}

/// Loads a SoundFont, with a one-line error naming the file.
pub fn load(path: &Path) -> Result<Arc<SoundFont>> {
    let file = std::fs::File::open(path).map_err(|error| Error::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let mut reader = BufReader::new(file);
    let font =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| SoundFont::new(&mut reader)))
            .map_err(|_| Error::invalid(path, "not a SoundFont we can read (the parser failed)"))?
            .map_err(|e| Error::invalid(path, format!("not a SoundFont we can read ({e})")))?;
    Ok(Arc::new(font))
}

/// One note, dry (no reverb or chorus), mono, scaled by [`GAIN`] but not clipped.
pub fn render_note(synth: &mut Synthesizer, program: u8, pitch: u8, velocity: u8) -> Vec<f32> {
    render_on(synth, 0, program, pitch, velocity)
}

/// General MIDI's percussion channel (10, 0-based 9): its programs are bank 128's kits.
pub const DRUM_CHANNEL: i32 = 9;

/// [`render_note`] on a MIDI channel (0-based).
fn render_on(
    synth: &mut Synthesizer,
    channel: i32,
    program: u8,
    pitch: u8,
    velocity: u8,
) -> Vec<f32> {
    synth.reset();
    synth.process_midi_message(channel, 0xC0, i32::from(program), 0);
    synth.note_on(channel, i32::from(pitch), i32::from(velocity));
    let mut left = vec![0f32; NOTE_SAMPLES];
    let mut right = vec![0f32; NOTE_SAMPLES];
    let (l_on, l_off) = left.split_at_mut(NOTE_ON_SAMPLES);
    let (r_on, r_off) = right.split_at_mut(NOTE_ON_SAMPLES);
    synth.render(l_on, r_on);
    synth.note_off(channel, i32::from(pitch));
    synth.render(l_off, r_off);
    left.iter()
        .zip(&right)
        .map(|(l, r)| 0.5 * (l + r) * GAIN)
        .collect()
}

fn synthesizer(font: &Arc<SoundFont>, path: &Path) -> Result<Synthesizer> {
    let mut settings = SynthesizerSettings::new(SAMPLE_RATE_HZ as i32);
    settings.enable_reverb_and_chorus = false;
    Synthesizer::new(font, &settings)
        .map_err(|e| Error::invalid(path, format!("cannot start the synthesizer ({e})")))
}

/// The notes to render, in the order their `note` ids are given.
fn grid(options: &RenderOptions) -> Vec<(u8, u8, u8)> {
    let mut notes: Vec<(u8, u8, u8)> = options
        .programs
        .iter()
        .flat_map(|&p| {
            options
                .pitches
                .iter()
                .flat_map(move |&k| options.velocities.iter().map(move |&v| (p, k, v)))
        })
        .collect();
    if let Some(n) = options.sample.filter(|&n| n < notes.len()) {
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
        notes.shuffle(&mut rng);
        notes.truncate(n);
        notes.sort_unstable();
    }
    notes
}

/// Renders the grid of `options` from the SoundFont at `sf2` into `out` (NSynth layout).
/// `progress(done, total)` is called as notes finish. The output depends only on the
/// SoundFont and the options (note ids follow program, pitch, velocity order).
pub fn render_dataset(
    sf2: &Path,
    out: &Path,
    options: &RenderOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<RenderSummary> {
    if let Some(&bad) = options.programs.iter().find(|&&p| p > 127) {
        return Err(Error::invalid(
            sf2,
            format!("program {bad} is not a General MIDI program (0..=127)"),
        ));
    }
    if let Some(&bad) = options
        .pitches
        .iter()
        .chain(&options.velocities)
        .find(|&&v| v > 127)
    {
        return Err(Error::invalid(
            sf2,
            format!("{bad} is not a MIDI value (0..=127)"),
        ));
    }
    if options.velocities.contains(&0) {
        return Err(Error::invalid(sf2, "velocity 0 is a note-off, not a note"));
    }
    let font = load(sf2)?;
    let notes = grid(options);
    let writer = DatasetWriter::create(out, options.overwrite)?;
    let total = notes.len();
    let done = AtomicUsize::new(0);
    let results: Vec<Result<Option<(Example, bool)>>> = notes
        .par_iter()
        .enumerate()
        .map_init(
            || synthesizer(&font, sf2),
            |synth, (id, &(program, pitch, velocity))| {
                let synth = synth
                    .as_mut()
                    .map_err(|e| Error::invalid(sf2, e.to_string()))?;
                let channel = if options.drum_kits { DRUM_CHANNEL } else { 0 };
                let mut samples = render_on(synth, channel, program, pitch, velocity);
                let level = peak(&samples);
                let outcome = if level < SILENT_PEAK {
                    None
                } else {
                    let clipped = level > 1.0;
                    samples.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
                    let family = if options.drum_kits {
                        MALLET
                    } else {
                        gm_family(program)
                    };
                    let mut example = Example::new(
                        id as u64,
                        u32::from(program),
                        family,
                        SOURCE_SYNTHETIC,
                        pitch,
                        velocity,
                    );
                    example.unpitched = options.drum_kits;
                    writer.write_audio(&example, &samples)?;
                    Some((example, clipped))
                };
                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                Ok(outcome)
            },
        )
        .collect();
    let mut examples = BTreeMap::new();
    let (mut skipped_silent, mut clipped) = (0, 0);
    for result in results {
        match result? {
            Some((example, was_clipped)) => {
                clipped += usize::from(was_clipped);
                examples.insert(example.note_str.clone(), example);
            }
            None => skipped_silent += 1,
        }
    }
    let written = examples.len();
    let examples_path = writer.finish(&examples)?;
    Ok(RenderSummary {
        written,
        skipped_silent,
        clipped,
        examples_path,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn drum_kits_are_nsynths_mallet_family() {
        assert_eq!(
            crate::nsynth::FAMILIES[usize::from(super::MALLET)],
            "mallet"
        );
    }

    use super::*;

    fn family(program: u8) -> &'static str {
        FAMILIES[usize::from(gm_family(program))]
    }

    #[test]
    fn general_midi_programs_map_to_nsynth_families() {
        let cases = [
            (0, "keyboard"),
            (11, "mallet"),
            (19, "organ"),
            (25, "guitar"),
            (33, "bass"),
            (40, "string"),
            (47, "mallet"),
            (52, "vocal"),
            (55, "brass"),
            (56, "brass"),
            (65, "reed"),
            (73, "flute"),
            (81, "synth_lead"),
            (89, "synth_lead"),
            (104, "guitar"),
            (108, "mallet"),
            (109, "reed"),
            (110, "string"),
            (114, "mallet"),
        ];
        for (program, expected) in cases {
            assert_eq!(family(program), expected, "program {program}");
        }
        // Every program has a family, and every NSynth family is reached.
        let reached: std::collections::BTreeSet<u8> = (0..=127).map(gm_family).collect();
        assert_eq!(reached.len(), FAMILIES.len());
    }
}
